//! Which kind of answer a question wants: a lookup, a what-if, a review (cost, anomaly,
//! capacity, overview), or a short reply (greeting, out of scope, unanswerable). Rules over
//! words; it must not look at names or figures.

use crate::query::{Intent, ReviewFocus};
use crate::words::Words;

#[rustfmt::skip]
const GREETING: &[&str] = &[
    "hi", "hello", "hey", "heya", "hiya", "yo", "howdy", "greetings", "good", "morning",
    "afternoon", "evening", "day", "thanks", "thank", "you", "cheers", "ty", "thx", "there", "how",
    "are", "is", "it", "going", "what", "up", "sup", "ok", "okay", "cool", "great", "nice", "bye",
    "goodbye", "please", "folks", "team", "all", "everyone", "again", "so", "much", "a", "lot",
    "doing", "today", "s", "can", "do", "who", "help", "me", "your", "i", "ask", "questions",
    "question", "kind", "of", "things", "know", "about", "work", "does", "this", "the", "an",
    "agent", "bot", "assistant", "for",
];

#[rustfmt::skip]
const OUT_OF_SCOPE: &[&str] = &[
    "weather", "rain", "sunny", "temperature", "joke", "jokes", "recipe", "cook", "football",
    "soccer", "basketball", "movie", "movies", "song", "songs", "poem", "poetry", "capital",
    "president", "bitcoin", "crypto", "news", "horoscope", "lottery", "dating", "vacation",
    "restaurant", "pizza", "sports", "game", "score", "haiku about", "translate", "sing", "meaning",
    "life", "universe", "girlfriend", "boyfriend", "birthday", "traffic jam",
];

#[rustfmt::skip]
const UNANSWERABLE: &[&str] = &[
    "revenue", "profit", "profits", "margin", "margins", "roi", "salary", "salaries", "headcount",
    "employees", "hire", "hiring", "satisfaction", "nps", "csat", "accuracy", "accurate",
    "hallucination", "hallucinations", "hallucinate", "sentiment", "carbon", "emissions",
    "electricity", "energy", "gpu", "gpus", "vram", "ec2", "s3", "kubernetes", "invoice",
    "contract", "churn", "conversion", "stock", "quality", "correct", "lawsuit", "password",
    "passwords", "api key", "prompts say", "what did users ask", "what do users ask",
];

/// What a saving must not cost ("without hurting quality"): named in a cost question, these are a
/// constraint on the review, not a question the records cannot answer.
const CONSTRAINED: &[&str] = &[
    "quality",
    "accuracy",
    "accurate",
    "correct",
    "satisfaction",
    "csat",
    "nps",
];

#[rustfmt::skip]
const CONSTRAINT_LEAD: &[&str] = &[
    "without", "keeping", "keep", "maintaining", "maintain", "preserving", "preserve",
    "sacrificing", "hurting", "losing", "compromising", "degrading", "affecting", "impacting",
];

/// A cost review or what-if whose only unanswerable words are a constraint on the saving.
fn only_a_constraint(w: &Words<'_>, all: &[&str], cues: &IntentCues) -> bool {
    let cost_question = cues.what_if || cues.review == Some(ReviewFocus::Cost);
    cost_question
        && w.any(CONSTRAINT_LEAD)
        && !UNANSWERABLE.iter().any(|p| p.contains(' ') && w.phrase(p))
        && !w.starts(&["hallucinat", "revenue", "profitab", "salar"])
        && all
            .iter()
            .filter(|t| UNANSWERABLE.contains(t) || t.starts_with("accura"))
            .all(|t| CONSTRAINED.contains(t))
}

#[derive(Default)]
pub(crate) struct IntentCues {
    pub what_if: bool,
    pub review: Option<ReviewFocus>,
    /// Names or a metric were found: the question is about the data whatever else it says.
    pub strong: bool,
}

pub(crate) fn intent_cues(w: &Words<'_>) -> IntentCues {
    let what_if = w.any_phrase(&[
        "what if",
        "would we save",
        "would it cost",
        "could we save",
        "how much would",
        "would we spend",
        "would that save",
        "would it save",
        "if we moved",
        "if we switched",
        "if we used",
        "if we migrated",
        "if we replaced",
        "if we cached",
        "if we routed",
        "if we move",
        "if we switch",
        "if we use",
        "if we migrate",
        "if we cache",
        "if we went",
        "instead of",
        "worth it",
        "should we switch",
        "should we move",
        "should we use",
        "cheaper alternative",
        "cache the",
        "caching the",
        "by caching",
        "we cached",
        "switching to",
        "moving to",
        "migrating to",
        "if we had",
        "would be the saving",
        "what would",
        "were we to",
        "shared prefix",
        "prompt prefix",
        "system prompt",
    ]) || (w.any(&[
        "switch",
        "switched",
        "switching",
        "move",
        "moved",
        "moving",
        "migrate",
        "migrated",
        "replace",
        "swap",
        "swapped",
        "downgrade",
        "route",
    ]) && w.has("to")
        && w.any(&[
            "save", "saving", "savings", "cost", "costs", "would", "could", "if",
        ]));
    let cost = w.any(&[
        "reduce",
        "cut",
        "lower",
        "optimize",
        "optimise",
        "optimization",
        "optimisation",
        "saving",
        "savings",
        "save",
        "waste",
        "wasting",
        "wasted",
        "efficient",
        "efficiency",
        "recommendations",
        "recommend",
        "trim",
    ]) || w.any_phrase(&[
        "spend less",
        "pay less",
        "cost less",
        "too much",
        "bring down",
        "bring costs down",
    ]);
    let cost = cost && !w.any_phrase(&["how much did we save"]);
    let anomaly = w.starts(&["anomal", "spike", "spiking", "outlier"])
        || w.any(&[
            "unusual",
            "weird",
            "strange",
            "sudden",
            "suddenly",
            "unexpected",
            "jumped",
            "surged",
            "blew",
            "explode",
            "exploded",
        ])
        || (w.has("why")
            && w.any(&[
                "up",
                "increase",
                "increased",
                "rise",
                "rose",
                "higher",
                "jump",
                "jumped",
                "high",
                "spiked",
                "grow",
                "grew",
                "double",
                "doubled",
                "expensive",
            ]))
        || w.any_phrase(&[
            "what happened",
            "what caused",
            "went wrong",
            "something wrong",
        ]);
    let capacity = w.any(&[
        "capacity",
        "headroom",
        "throughput",
        "forecast",
        "forecasting",
        "predict",
        "prediction",
        "projected",
        "projection",
        "projections",
        "runway",
        "scale",
        "scaling",
    ]) || w.any_phrase(&[
        "rate limit",
        "rate limits",
        "hit our limit",
        "hit our limits",
        "hit the limit",
        "our limits",
        "run out",
        "next month",
        "next quarter",
        "next year",
        "end of the year",
        "end of year",
        "going to spend",
        "will we spend",
        "will we hit",
        "will we exceed",
        "going to hit",
        "over budget",
        "exceed our budget",
        "tokens per minute",
        "requests per minute",
        "tpm",
        "rpm",
    ]);
    let overview = w.any(&[
        "overview",
        "report",
        "summary",
        "summarize",
        "summarise",
        "audit",
        "analyze",
        "analyse",
        "recap",
    ]) || w.any_phrase(&[
        "full picture",
        "state of",
        "health check",
        "big picture",
        "how are we doing",
        "everything about",
        "tell me about our",
    ]);
    let review = if capacity {
        Some(ReviewFocus::Capacity)
    } else if anomaly {
        Some(ReviewFocus::Anomaly)
    } else if cost {
        Some(ReviewFocus::Cost)
    } else if overview {
        Some(ReviewFocus::Overview)
    } else {
        None
    };
    IntentCues {
        what_if,
        review,
        strong: false,
    }
}

pub(crate) fn decide_intent(w: &Words<'_>, cues: &IntentCues, domain: bool) -> Intent {
    let all: Vec<&str> = w.tokens.iter().map(|t| t.text.as_str()).collect();
    if all.is_empty() {
        return Intent::Unanswerable;
    }
    if (w.any(UNANSWERABLE)
        || UNANSWERABLE.iter().any(|p| p.contains(' ') && w.phrase(p))
        || w.starts(&["hallucinat", "accura", "revenue", "profitab", "salar"]))
        && !only_a_constraint(w, &all, cues)
    {
        return Intent::Unanswerable;
    }
    let spend_word = w.starts(&[
        "spen", "cost", "bill", "pay", "paid", "expens", "token", "request", "latenc", "model",
        "usage",
    ]);
    if !spend_word
        && !cues.strong
        && (w.any(OUT_OF_SCOPE) || OUT_OF_SCOPE.iter().any(|p| p.contains(' ') && w.phrase(p)))
    {
        return Intent::OutOfScope;
    }
    if !domain && !spend_word {
        if all.iter().all(|t| GREETING.contains(t)) {
            return Intent::Greeting;
        }
        if w.any(OUT_OF_SCOPE) || OUT_OF_SCOPE.iter().any(|p| p.contains(' ') && w.phrase(p)) {
            return Intent::OutOfScope;
        }
        if w.any_phrase(&[
            "what can you do",
            "what do you do",
            "who are you",
            "how does this work",
            "what can i ask",
            "what should i ask",
        ]) {
            return Intent::Greeting;
        }
        return Intent::OutOfScope;
    }
    if cues.what_if {
        return Intent::WhatIf;
    }
    if let Some(f) = cues.review {
        return Intent::Review(f);
    }
    Intent::Lookup
}
