//! From a question's words to a [`Query`]: which intent, which metric, which names (as filters,
//! comparison sides or what-if targets), which period, which shape.
//!
//! The readers run in a fixed order over the tokens — time, metric phrases, names, then the
//! words that shape the answer — and each marks the tokens it explained, so a word is read once.
//! Everything is a rule over words; nothing here computes a figure or reads the clock.

use agentwire_analytics::query::{
    Comparison, Condition, Dimension, Group, GroupBy, Metric, Order, Period, QuerySpec, Shape,
    Stat, TimeGrain,
};
use agentwire_analytics::whatif::Change;
use chrono::{Duration, NaiveDate};

use crate::names::{Mention, find_names};
use crate::query::{Intent, Query, Resolved, ReviewFocus};
use crate::text::{Token, number, singular, tokenize};
use crate::time::{Kind, TimeSpan, find_times, previous};
use crate::vocabulary::Vocabulary;

/// Days a question covers when it names no period.
pub const DEFAULT_DAYS: i64 = 30;

/// Words the question's own grammar uses (not names), for telling names from the rest.
pub(crate) fn is_keyword(w: &str) -> bool {
    const WORDS: &[&str] = &[
        "latency",
        "ttft",
        "tokens",
        "requests",
        "spend",
        "cost",
        "trend",
        "breakdown",
        "share",
        "rate",
        "daily",
        "weekly",
        "monthly",
        "average",
        "median",
        "total",
        "overall",
        "usage",
        "bill",
        "budget",
        "limit",
        "limits",
        "capacity",
        "forecast",
        "anomaly",
        "spike",
    ];
    WORDS.contains(&w)
}

struct Words<'a> {
    tokens: &'a mut Vec<Token>,
}

impl Words<'_> {
    fn text(&self, i: usize) -> Option<&str> {
        self.tokens.get(i).map(|t| t.text.as_str())
    }

    fn has(&self, w: &str) -> bool {
        self.tokens.iter().any(|t| t.text == w)
    }

    fn any(&self, ws: &[&str]) -> bool {
        self.tokens.iter().any(|t| ws.contains(&t.text.as_str()))
    }

    fn starts(&self, prefixes: &[&str]) -> bool {
        self.tokens
            .iter()
            .any(|t| prefixes.iter().any(|p| t.text.starts_with(p)))
    }

    /// Where a phrase starts (whole words), among tokens not yet explained.
    fn find(&self, phrase: &[&str]) -> Option<usize> {
        let n = phrase.len();
        (0..self.tokens.len().saturating_sub(n - 1)).find(|&i| {
            phrase
                .iter()
                .enumerate()
                .all(|(k, w)| self.tokens[i + k].text == *w && !self.tokens[i + k].used)
        })
    }

    fn phrase(&self, phrase: &str) -> bool {
        let p: Vec<&str> = phrase.split(' ').collect();
        let n = p.len();
        (0..self.tokens.len().saturating_sub(n - 1)).any(|i| {
            p.iter()
                .enumerate()
                .all(|(k, w)| self.tokens[i + k].text == *w)
        })
    }

    fn any_phrase(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|p| self.phrase(p))
    }

    /// Marks a phrase used if present; returns whether it was.
    fn take(&mut self, phrase: &str) -> bool {
        let p: Vec<&str> = phrase.split(' ').collect();
        match self.find(&p) {
            Some(i) => {
                for t in self.tokens.iter_mut().skip(i).take(p.len()) {
                    t.used = true;
                }
                true
            }
            None => false,
        }
    }

    fn take_any(&mut self, phrases: &[&str]) -> bool {
        let mut hit = false;
        for p in phrases {
            hit |= self.take(p);
        }
        hit
    }
}

const GREETING: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "heya",
    "hiya",
    "yo",
    "howdy",
    "greetings",
    "good",
    "morning",
    "afternoon",
    "evening",
    "day",
    "thanks",
    "thank",
    "you",
    "cheers",
    "ty",
    "thx",
    "there",
    "how",
    "are",
    "is",
    "it",
    "going",
    "what",
    "up",
    "sup",
    "ok",
    "okay",
    "cool",
    "great",
    "nice",
    "bye",
    "goodbye",
    "please",
    "folks",
    "team",
    "all",
    "everyone",
    "again",
    "so",
    "much",
    "a",
    "lot",
    "doing",
    "today",
    "s",
    "can",
    "do",
    "who",
    "help",
    "me",
    "your",
    "i",
    "ask",
    "questions",
    "question",
    "kind",
    "of",
    "things",
    "know",
    "about",
    "work",
    "does",
    "this",
    "the",
    "an",
    "agent",
    "bot",
    "assistant",
    "for",
];

const OUT_OF_SCOPE: &[&str] = &[
    "weather",
    "rain",
    "sunny",
    "temperature",
    "joke",
    "jokes",
    "recipe",
    "cook",
    "football",
    "soccer",
    "basketball",
    "movie",
    "movies",
    "song",
    "songs",
    "poem",
    "poetry",
    "capital",
    "president",
    "bitcoin",
    "crypto",
    "news",
    "horoscope",
    "lottery",
    "dating",
    "vacation",
    "restaurant",
    "pizza",
    "sports",
    "game",
    "score",
    "haiku about",
    "translate",
    "sing",
    "meaning",
    "life",
    "universe",
    "girlfriend",
    "boyfriend",
    "birthday",
    "traffic jam",
];

const UNANSWERABLE: &[&str] = &[
    "revenue",
    "profit",
    "profits",
    "margin",
    "margins",
    "roi",
    "salary",
    "salaries",
    "headcount",
    "employees",
    "hire",
    "hiring",
    "satisfaction",
    "nps",
    "csat",
    "accuracy",
    "accurate",
    "hallucination",
    "hallucinations",
    "hallucinate",
    "sentiment",
    "carbon",
    "emissions",
    "electricity",
    "energy",
    "gpu",
    "gpus",
    "vram",
    "ec2",
    "s3",
    "kubernetes",
    "invoice",
    "contract",
    "churn",
    "conversion",
    "stock",
    "quality",
    "correct",
    "lawsuit",
    "password",
    "passwords",
    "api key",
    "prompts say",
    "what did users ask",
    "what do users ask",
];

/// Reads a question against a tenant's vocabulary. `today` is the day it is asked; time words
/// are read against the data's last day when that is earlier.
pub fn understand(question: &str, vocab: &Vocabulary, today: NaiveDate) -> Query {
    let reference = vocab.span().map_or(today, |s| s.last.min(today));
    let mut tokens = tokenize(question);
    let mut assumed: Vec<String> = Vec::new();
    let times = find_times(&mut tokens, reference);
    let mut w = Words {
        tokens: &mut tokens,
    };
    let intent_hint = intent_cues(&w);
    let (metric, metric_said) = read_metric(&mut w);
    let share_base_at = share_base_position(&w);
    let (mentions, unknown) = find_names(w.tokens, vocab);
    let shape_words = read_shape_words(&mut w);
    let domain = metric_said
        || !times.is_empty()
        || !mentions.is_empty()
        || !unknown.is_empty()
        || shape_words
            .group
            .is_some_and(|g| g != GroupBy::Dimension(Dimension::User) || !w.has("who"))
        || intent_hint.review.is_some()
        || intent_hint.what_if;
    let mut intent_hint = intent_hint;
    intent_hint.strong = metric_said || !mentions.is_empty() || !unknown.is_empty();
    let intent = decide_intent(&w, &intent_hint, domain);
    let mut metric = metric;
    let mut shape_words = shape_words;
    if !metric_said {
        metric = match shape_words.order_word.as_str() {
            "busiest" | "quietest" => Metric::Requests,
            "slowest" | "fastest" | "quickest" => Metric::Latency(Stat::P50),
            _ => metric,
        };
    }
    if matches!(shape_words.order_word.as_str(), "best" | "worst") {
        // Best is low for what costs or slows, high for what helps.
        let low_is_good = !matches!(metric, Metric::CacheHitShare | Metric::CachedTokens);
        let best = shape_words.order_word == "best";
        shape_words.order = Some(if best == low_is_good {
            Order::Least
        } else {
            Order::Most
        });
    }

    let default_period = Period::new(reference - Duration::days(DEFAULT_DAYS - 1), reference);
    let mut spec = QuerySpec {
        metric,
        conditions: Vec::new(),
        period: default_period,
        shape: Shape::Figure,
        share_of: Vec::new(),
    };
    let mut query = Query {
        question: question.to_string(),
        intent,
        spec: spec.clone(),
        change: None,
        resolved: Vec::new(),
        unknown: Vec::new(),
        assumed: Vec::new(),
        reference_day: reference,
    };
    if intent.is_reply() {
        return query;
    }

    // Names: what-if targets first, then comparison sides, then filters.
    let mut mentions = mentions;
    let mut change = None;
    if intent == Intent::WhatIf {
        change = Some(what_if_change(&w, &mut mentions));
    }
    let (groups, sides) = match compare_groups(&w, &mut mentions, &shape_words) {
        Some((g, sides)) => (Some(g), sides),
        None => (None, Vec::new()),
    };
    for m in &mentions {
        if m.priced_only {
            continue;
        }
        if let Some(c) = spec
            .conditions
            .iter_mut()
            .find(|c| c.dimension == m.dimension)
        {
            for v in &m.values {
                if !c.values.contains(v) {
                    c.values.push(v.clone());
                }
            }
            c.values.sort();
        } else {
            let mut values = m.values.clone();
            values.sort();
            spec.conditions.push(Condition::new(m.dimension, values));
        }
        if let Some(at) = share_base_at
            && m.at >= at
            && m.at <= at + 3
        {
            let mut values = m.values.clone();
            values.sort();
            spec.share_of.push(Condition::new(m.dimension, values));
        }
    }
    spec.conditions.sort_by_key(|c| c.dimension);
    let mut unknown = unknown;
    for m in mentions.iter().filter(|m| m.priced_only) {
        // A model the price table knows but the data does not, named outside a what-if target.
        let data: Vec<String> = vocab.models().iter().map(|x| x.name.clone()).collect();
        unknown.push(crate::names::Unknown {
            text: m.text.clone(),
            dimension: Some(m.dimension),
            closest: crate::names::closest(&m.values[0], &data),
            at: m.at,
        });
    }
    unknown.sort_by_key(|u| u.at);
    let mut read: Vec<&Mention> = mentions.iter().chain(sides.iter()).collect();
    read.sort_by_key(|m| m.at);
    let resolved: Vec<Resolved> = read
        .into_iter()
        .filter(|m| !m.priced_only)
        .map(|m| Resolved {
            text: m.text.clone(),
            dimension: m.dimension,
            values: m.values.clone(),
            how: m.how,
            note: m.note.clone(),
        })
        .collect();

    // Period and comparison of periods.
    let (period, other) = periods(&w, &times, reference, &shape_words, default_period);
    spec.period = period.unwrap_or_else(|| {
        assumed.push(format!(
            "No period named: the {DEFAULT_DAYS} days to {reference} (the last day of the data)."
        ));
        default_period
    });
    if reference < today {
        assumed.push(format!(
            "Time words are read from {reference}, the last day of the data."
        ));
    }

    spec.shape = shape(&shape_words, groups, other, &spec, intent);
    if let Metric::Latency(_) | Metric::Ttft(_) = spec.metric
        && !shape_words.stat_said
    {
        assumed.push("No statistic named: the median (p50).".to_string());
    }
    query.intent = intent;
    if intent == Intent::WhatIf {
        spec.metric = Metric::Spend;
    }
    query.spec = spec;
    query.change = change;
    query.resolved = resolved;
    query.unknown = unknown;
    query.assumed = assumed;
    query
}

#[derive(Default)]
struct IntentCues {
    what_if: bool,
    review: Option<ReviewFocus>,
    /// Names or a metric were found: the question is about the data whatever else it says.
    strong: bool,
}

fn intent_cues(w: &Words<'_>) -> IntentCues {
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
    ]) && !w.any_phrase(&["how much did we save"]);
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

fn decide_intent(w: &Words<'_>, cues: &IntentCues, domain: bool) -> Intent {
    let all: Vec<&str> = w.tokens.iter().map(|t| t.text.as_str()).collect();
    if all.is_empty() {
        return Intent::Unanswerable;
    }
    if w.any(UNANSWERABLE)
        || UNANSWERABLE.iter().any(|p| p.contains(' ') && w.phrase(p))
        || w.starts(&["hallucinat", "accura", "revenue", "profitab", "salar"])
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

/// The metric the question asks for, and whether it named one (spend is the default).
fn read_metric(w: &mut Words<'_>) -> (Metric, bool) {
    let stat = if w.any(&["p99", "99th", "tail"]) {
        Some(Stat::P99)
    } else if w.any(&["p95", "95th"]) {
        Some(Stat::P95)
    } else if w.any(&["p90", "90th"]) {
        Some(Stat::P90)
    } else if w.any(&["p50", "50th", "median"]) {
        Some(Stat::P50)
    } else if w.any(&["average", "avg", "mean", "typical"]) {
        Some(Stat::Mean)
    } else {
        None
    };
    let percentile_said = w.any(&[
        "p99", "p95", "p90", "p50", "99th", "95th", "90th", "50th", "median",
    ]);
    if w.take_any(&[
        "time to first token",
        "time-to-first-token",
        "ttft",
        "first token",
        "first-token",
    ]) {
        w.take_any(&[
            "p99", "p95", "p90", "p50", "median", "average", "avg", "mean",
        ]);
        return (Metric::Ttft(stat.unwrap_or(Stat::P50)), true);
    }
    if w.take_any(&[
        "latency",
        "latencies",
        "response time",
        "response times",
        "slowest",
        "slow",
        "slower",
        "fastest",
        "faster",
        "quickest",
        "how long",
        "duration",
        "speed",
    ]) || percentile_said
    {
        w.take_any(&[
            "p99",
            "p95",
            "p90",
            "p50",
            "median",
            "99th",
            "95th",
            "90th",
            "50th",
            "percentile",
        ]);
        if stat == Some(Stat::Mean) {
            w.take_any(&["average", "avg", "mean", "typical"]);
        }
        return (Metric::Latency(stat.unwrap_or(Stat::P50)), true);
    }
    if w.take_any(&[
        "error rate",
        "failure rate",
        "fail rate",
        "error ratio",
        "error percentage",
        "success rate",
        "reliability",
        "reliable",
        "flaky",
        "flakiest",
        "errors rate",
    ]) || (w.any(&[
        "percentage",
        "percent",
        "share",
        "fraction",
        "proportion",
        "often",
    ]) && w.any(&[
        "fail", "failed", "fails", "error", "errored", "errors", "failing",
    ])) {
        w.take_any(&[
            "fail",
            "failed",
            "fails",
            "failing",
            "errors",
            "error",
            "errored",
            "percentage",
            "percent",
            "share",
            "how often",
            "fraction",
            "proportion",
        ]);
        return (Metric::ErrorRate, true);
    }
    if w.take_any(&[
        "cache hit rate",
        "cache hit ratio",
        "cache hit share",
        "cache hits",
        "cache hit",
        "hit rate",
        "cache rate",
        "cache efficiency",
        "cache ratio",
        "cached share",
        "share cached",
        "cache utilization",
        "cache usage",
    ]) || (w.any(&[
        "percentage",
        "percent",
        "share",
        "fraction",
        "proportion",
        "much",
    ]) && w.any(&["cached", "cache"])
        && w.any(&["input", "prompt", "tokens"])
        && !w.has("saving"))
    {
        w.take_any(&["cached", "cache", "percentage", "percent", "share"]);
        return (Metric::CacheHitShare, true);
    }
    if w.take_any(&[
        "cached tokens",
        "cached input tokens",
        "cache read tokens",
        "cache reads",
        "cache read",
        "tokens read from cache",
        "tokens from cache",
        "tokens from the cache",
    ]) {
        return (Metric::CachedTokens, true);
    }
    let per_request = w.any_phrase(&[
        "per request",
        "per call",
        "per query",
        "a request",
        "each request",
        "per api call",
        "per-request",
        "per invocation",
    ]) || (w.has("per") && w.any(&["request", "call", "query"]));
    let input = w.any(&["input", "prompt", "prompts"]);
    let output = w.any(&[
        "output",
        "completion",
        "completions",
        "generated",
        "response",
        "responses",
        "answer",
        "answers",
    ]);
    let tokens = w.any(&["tokens", "token"]);
    let money = w.starts(&[
        "cost", "spen", "expens", "pric", "cheap", "dollar", "money", "bill", "paid", "pay",
    ]);
    if (per_request
        || w.any_phrase(&[
            "unit cost",
            "average cost",
            "avg cost",
            "average request cost",
            "cost of a request",
            "cost of each request",
        ]))
        && money
        && !tokens
    {
        w.take_any(&[
            "per request",
            "per call",
            "per query",
            "per-request",
            "unit cost",
            "a request",
            "each request",
        ]);
        return (Metric::CostPerRequest, true);
    }
    let length = w.any_phrase(&[
        "prompt length",
        "prompt size",
        "response length",
        "output length",
        "input length",
        "how long are",
        "prompt sizes",
        "average prompt",
        "avg prompt",
    ]) || (w.any(&["longest", "shortest", "biggest", "largest"])
        && w.any(&[
            "prompt",
            "prompts",
            "response",
            "responses",
            "answers",
            "completions",
        ]));
    if (tokens && (per_request || w.any(&["average", "avg", "mean", "typical"]))) || length {
        w.take_any(&[
            "per request",
            "per call",
            "per query",
            "per-request",
            "tokens",
            "token",
            "average",
            "avg",
        ]);
        let m = if input && !output {
            Metric::InputTokensPerRequest
        } else if output && !input {
            Metric::OutputTokensPerRequest
        } else {
            Metric::TokensPerRequest
        };
        return (m, true);
    }
    let share = w.any(&[
        "share",
        "percentage",
        "percent",
        "proportion",
        "fraction",
        "portion",
    ]) || w.any_phrase(&["what part of", "how much of our", "how much of the"]);
    if tokens {
        w.take_any(&["tokens", "token"]);
        if share {
            w.take_any(&[
                "share",
                "percentage",
                "percent",
                "proportion",
                "fraction",
                "portion",
            ]);
            return (Metric::ShareOfTokens, true);
        }
        let m = if input && !output {
            Metric::InputTokens
        } else if output && !input {
            Metric::OutputTokens
        } else {
            Metric::TotalTokens
        };
        return (m, true);
    }
    if w.any_phrase(&[
        "average daily spend",
        "average daily cost",
        "avg daily spend",
        "daily average",
        "average per day",
        "per day on average",
        "average spend per day",
        "average cost per day",
        "average a day",
        "burn rate",
        "daily burn",
        "typical day",
        "average day",
    ]) {
        w.take_any(&[
            "average",
            "avg",
            "daily",
            "per day",
            "burn rate",
            "a day",
            "typical day",
            "average day",
        ]);
        return (Metric::SpendPerDay, true);
    }
    let requests = w.any(&[
        "requests",
        "request",
        "calls",
        "call",
        "queries",
        "invocations",
        "traffic",
        "volume",
        "hits",
    ]) || w.any_phrase(&["how many times", "how often"])
        || (w.phrase("how many") && !money);
    if requests && !money || (requests && share) {
        w.take_any(&[
            "requests",
            "request",
            "calls",
            "queries",
            "invocations",
            "traffic",
            "volume",
            "api calls",
        ]);
        if share {
            w.take_any(&[
                "share",
                "percentage",
                "percent",
                "proportion",
                "fraction",
                "portion",
            ]);
            return (Metric::ShareOfRequests, true);
        }
        return (Metric::Requests, true);
    }
    if share {
        w.take_any(&[
            "share",
            "percentage",
            "percent",
            "proportion",
            "fraction",
            "portion",
        ]);
        return (Metric::ShareOfSpend, true);
    }
    (Metric::Spend, money || w.phrase("how much"))
}

/// Where "share of X's spend" names the whole (the names right after it).
fn share_base_position(w: &Words<'_>) -> Option<usize> {
    let toks = &w.tokens;
    for (i, t) in toks.iter().enumerate() {
        if matches!(
            t.text.as_str(),
            "share" | "percentage" | "percent" | "proportion" | "fraction" | "portion"
        ) && toks.get(i + 1).is_some_and(|n| n.text == "of")
        {
            let mut base = i + 2;
            if toks.get(base).is_some_and(|n| n.text == "the") {
                base += 1;
            }
            // "of our spend", "of requests": the whole is everything; "of support's spend" names it.
            let word = toks.get(base).map_or("", |n| n.text.as_str());
            if matches!(
                word,
                "our"
                    | "total"
                    | "all"
                    | "spend"
                    | "cost"
                    | "costs"
                    | "requests"
                    | "tokens"
                    | "traffic"
                    | "calls"
                    | "usage"
                    | "money"
                    | "bill"
            ) {
                return None;
            }
            return Some(base);
        }
    }
    None
}

/// Words that shape the answer.
#[derive(Default)]
struct ShapeWords {
    /// The grouping named ("by model", "which team", "per day").
    group: Option<GroupBy>,
    /// The group word was plural ("which models", "top features").
    plural: bool,
    order: Option<Order>,
    limit: Option<u32>,
    top: bool,
    compare: bool,
    trend: bool,
    change: bool,
    previous: bool,
    grain: Option<TimeGrain>,
    stat_said: bool,
    joined_periods: bool,
    /// The superlative as written ("best" orders by what is good for the metric).
    order_word: String,
    /// "month over month", "week over week": a comparison with the period before, or a trend.
    over: Option<TimeGrain>,
}

fn group_word(w: &str) -> Option<(GroupBy, bool)> {
    let plural = w.ends_with('s') && !matches!(w, "status" | "process");
    let g = match singular(w).as_str() {
        "model" | "llm" | "engine" => GroupBy::Dimension(Dimension::Model),
        "provider" | "vendor" => GroupBy::Dimension(Dimension::Provider),
        "team" | "department" | "dept" | "org" | "squad" => GroupBy::Dimension(Dimension::Team),
        "feature" | "workload" | "usecase" | "endpoint" | "app" | "application" | "product"
        | "pipeline" => GroupBy::Dimension(Dimension::Feature),
        "project" | "repo" => GroupBy::Dimension(Dimension::Project),
        "user" | "person" | "people" | "developer" | "engineer" | "who" | "whom" | "member"
        | "employee" => GroupBy::Dimension(Dimension::User),
        "status" | "statuse" | "outcome" => GroupBy::Dimension(Dimension::Status),
        "day" | "date" | "daily" => GroupBy::Time(TimeGrain::Day),
        "week" | "weekly" => GroupBy::Time(TimeGrain::Week),
        "month" | "monthly" => GroupBy::Time(TimeGrain::Month),
        _ => return None,
    };
    Some((g, plural || w == "people"))
}

fn read_shape_words(w: &mut Words<'_>) -> ShapeWords {
    let mut s = ShapeWords {
        stat_said: w.any(&[
            "p99", "p95", "p90", "p50", "99th", "95th", "90th", "50th", "median", "average", "avg",
            "mean", "typical", "tail",
        ]),
        ..ShapeWords::default()
    };
    let n = w.tokens.len();
    let mut order_at: Option<usize> = None;
    for i in 0..n {
        let t = w.tokens[i].text.clone();
        let (order, hint) = match t.as_str() {
            "most" | "highest" | "biggest" | "largest" | "max" | "maximum" | "greatest"
            | "heaviest" | "top" | "costliest" | "priciest" | "busiest" | "slowest" | "worst"
            | "leader" | "leading" | "longest" => (Some(Order::Most), true),
            "least" | "lowest" | "smallest" | "fewest" | "min" | "minimum" | "bottom"
            | "cheapest" | "fastest" | "quickest" | "quietest" | "best" | "shortest" => {
                (Some(Order::Least), true)
            }
            _ => (None, false),
        };
        if hint {
            // "most expensive" orders; "least expensive" too; "at most" does not.
            if i > 0 && w.tokens[i - 1].text == "at" {
                continue;
            }
            // "best" only orders when it says "most reliable" ("best latency").
            s.order = order;
            s.order_word = t.clone();
            s.top |= t == "top";
            order_at = Some(i);
            w.tokens[i].used = true;
            if let Some(next) = w.tokens.get(i + 1).map(|x| x.text.clone())
                && let Some(k) = number(&next).filter(|k| (2..=50).contains(k))
            {
                s.limit = Some(k);
                w.tokens[i + 1].used = true;
            }
            if i > 0
                && let Some(k) = number(&w.tokens[i - 1].text).filter(|k| (2..=50).contains(k))
                && !w.tokens[i - 1].used
            {
                s.limit = Some(k);
                w.tokens[i - 1].used = true;
            }
            break;
        }
    }
    if s.order.is_none() && w.any(&["rank", "ranked", "ranking", "leaderboard"]) {
        s.order = Some(Order::Most);
        s.top = true;
    }
    // "the 3 biggest", "5 most expensive" handled above; "top" may follow the number too.
    // The grouping: after "by/per/each/across/which/what/top", or a plural dimension word.
    let mut best: Option<(usize, GroupBy, bool)> = None;
    for i in 0..n {
        if w.tokens[i].used {
            continue;
        }
        let t = w.tokens[i].text.clone();
        let Some((g, plural)) = group_word(&t) else {
            continue;
        };
        let before = if i > 0 {
            w.tokens[i - 1].text.as_str()
        } else {
            ""
        };
        let before2 = if i > 1 {
            w.tokens[i - 2].text.as_str()
        } else {
            ""
        };
        let cue = matches!(
            before,
            "by" | "per"
                | "each"
                | "every"
                | "which"
                | "what"
                | "across"
                | "top"
                | "among"
                | "between"
        ) || matches!(
            before2,
            "by" | "per"
                | "each"
                | "which"
                | "what"
                | "across"
                | "top"
                | "among"
                | "broken"
                | "breakdown"
                | "split"
                | "grouped"
        ) || t == "who"
            || t == "whom"
            || (matches!(t.as_str(), "daily" | "weekly" | "monthly")
                && !w.any(&["average", "avg"]))
            || order_at.is_some_and(|o| i > o && i <= o + 4)
            || order_at.is_some_and(|o| {
                o > i && o <= i + 6 && (matches!(before, "the" | "our") || i == 0)
            })
            || (plural
                && matches!(
                    before,
                    "our" | "the" | "all" | "different" | "most" | "many"
                ));
        // "this month", "last week": time words already read as a period.
        if !cue || matches!(before, "this" | "last" | "past" | "next" | "previous") {
            continue;
        }
        // "per day" after an average is the metric's unit, not a grouping.
        if matches!(g, GroupBy::Time(TimeGrain::Day))
            && w.any(&["average", "avg"])
            && s.order.is_none()
        {
            continue;
        }
        let strength =
            usize::from(matches!(before, "by" | "per")) * 2 + usize::from(order_at.is_some());
        if best.as_ref().is_none_or(|(sb, _, _)| strength > *sb) {
            best = Some((strength, g, plural));
        }
        w.tokens[i].used = true;
    }
    if let Some((_, g, plural)) = best {
        s.group = Some(g);
        s.plural = plural;
    }
    s.compare = w.any(&[
        "vs",
        "versus",
        "compare",
        "compared",
        "comparing",
        "comparison",
        "against",
        "relative",
    ]) || w.any_phrase(&[
        "difference between",
        "differ from",
        "stack up",
        "than in",
        "than the",
        "than last",
        "than it",
    ]);
    s.previous = w.any_phrase(&[
        "previous",
        "prior",
        "preceding",
        "before that",
        "the month before",
        "the week before",
        "vs last",
        "versus last",
        "than last",
        "compared to last",
        "compared with last",
        "quarter over quarter",
        "from the previous",
        "the one before",
    ]);
    s.over = if w.any_phrase(&["month over month", "mom"]) {
        Some(TimeGrain::Month)
    } else if w.any_phrase(&["week over week", "wow"]) {
        Some(TimeGrain::Week)
    } else if w.any_phrase(&["day over day"]) {
        Some(TimeGrain::Day)
    } else {
        None
    };
    s.trend = w.starts(&["trend"])
        || w.any(&[
            "trajectory",
            "evolution",
            "evolve",
            "evolved",
            "growing",
            "grown",
        ])
        || w.any_phrase(&["over time", "going up", "going down", "been changing"]);
    s.change = w.any(&[
        "change",
        "changed",
        "grow",
        "grew",
        "growing",
        "rise",
        "rose",
        "risen",
        "increase",
        "increased",
        "decrease",
        "decreased",
        "drop",
        "dropped",
        "fell",
        "fall",
        "up",
        "down",
        "higher",
        "lower",
        "more",
        "less",
        "jump",
        "jumped",
        "declined",
        "decline",
    ]);
    s.grain = if w.any(&["daily", "day-by-day"])
        || w.phrase("per day")
        || w.phrase("by day")
        || w.phrase("each day")
    {
        Some(TimeGrain::Day)
    } else if w.any(&["weekly"])
        || w.phrase("per week")
        || w.phrase("by week")
        || w.phrase("week over week")
        || w.phrase("each week")
    {
        Some(TimeGrain::Week)
    } else if w.any(&["monthly"])
        || w.phrase("per month")
        || w.phrase("by month")
        || w.phrase("month over month")
        || w.phrase("each month")
    {
        Some(TimeGrain::Month)
    } else {
        None
    };
    s.joined_periods = w.has("and") || w.has("through") || w.has("to");
    s
}

/// The what-if change, taking the target name out of the mentions.
fn what_if_change(w: &Words<'_>, mentions: &mut Vec<Mention>) -> Change {
    if w.starts(&["cach"])
        || w.any_phrase(&[
            "shared prefix",
            "prompt prefix",
            "system prompt",
            "system prompts",
        ])
    {
        return Change::CachePrefix;
    }
    let word = |i: usize| w.text(i).unwrap_or("");
    // "use Y instead of X", "replace X with Y", "X to Y", "onto Y", "with Y"
    let target_index = mentions.iter().enumerate().rev().find_map(|(k, m)| {
        if !matches!(m.dimension, Dimension::Model | Dimension::Provider) {
            return None;
        }
        let before = m.at.checked_sub(1).map_or("", word);
        let before2 = m.at.checked_sub(2).map_or("", word);
        let after = word(m.at + m.len);
        let to = matches!(before, "to" | "onto" | "into" | "with" | "for")
            && !matches!(before2, "spend" | "cost" | "costs");
        let used = matches!(before, "use" | "used" | "using" | "try" | "on")
            && (after == "instead" || w.has("instead") || m.priced_only);
        let instead = after == "instead";
        (to || used || instead || m.priced_only).then_some(k)
    });
    if let Some(k) = target_index {
        let m = mentions.remove(k);
        return match m.dimension {
            Dimension::Provider => Change::ToProvider(m.values[0].clone()),
            _ if m.values.len() == 1 => Change::ToModel(m.values[0].clone()),
            // A family as a target ("to Gemini"): the family's provider.
            _ => Change::CheaperModel,
        };
    }
    Change::CheaperModel
}

/// Two or more names of one dimension set against each other ("Claude vs GPT").
fn compare_groups(
    w: &Words<'_>,
    mentions: &mut Vec<Mention>,
    s: &ShapeWords,
) -> Option<(Vec<Group>, Vec<Mention>)> {
    let or_cue = w.has("or")
        && (w.any(&["which", "more", "less", "cheaper", "faster", "slower"])
            || w.starts(&["expensiv"]));
    if !(s.compare || or_cue || w.any_phrase(&["than", "and how"])) {
        return None;
    }
    for d in Dimension::ALL {
        let sides: Vec<usize> = (0..mentions.len())
            .filter(|&k| mentions[k].dimension == d && !mentions[k].priced_only)
            .collect();
        if sides.len() >= 2 {
            let groups: Vec<Group> = sides
                .iter()
                .map(|&k| {
                    let mut values = mentions[k].values.clone();
                    values.sort();
                    Group {
                        label: mentions[k].text.clone(),
                        conditions: vec![Condition::new(d, values)],
                    }
                })
                .collect();
            // The sides leave the filters but stay among the names read.
            let (sides, keep): (Vec<Mention>, Vec<Mention>) = mentions
                .drain(..)
                .partition(|m| m.dimension == d && !m.priced_only);
            *mentions = keep;
            return Some((groups, sides));
        }
    }
    None
}

/// The period asked about and, for a comparison of periods, the other one.
fn periods(
    w: &Words<'_>,
    times: &[TimeSpan],
    reference: NaiveDate,
    s: &ShapeWords,
    default_period: Period,
) -> (Option<Period>, Option<Period>) {
    let mut absolute: Vec<&TimeSpan> = times.iter().filter(|t| !t.relative).collect();
    let mut relative = times.iter().any(|t| t.relative);
    if absolute.is_empty() {
        // "the previous month" alone is just last month.
        absolute = times.iter().take(1).collect();
        relative = false;
    }
    let over_matches = |t: &TimeSpan| match s.over {
        Some(TimeGrain::Month) => t.kind == Kind::Month,
        Some(TimeGrain::Week) => matches!(t.kind, Kind::Week | Kind::Days(7)),
        Some(TimeGrain::Day) => t.kind == Kind::Day,
        None => false,
    };
    match absolute.as_slice() {
        [] => {
            if s.previous && !s.trend {
                return (
                    None,
                    Some(previous(default_period, Kind::Days(DEFAULT_DAYS))),
                );
            }
            (None, None)
        }
        [one] if one.parts.is_some() && s.change && !s.trend => {
            // "how did X change from September to October": October against September.
            let (a, b) = one.parts.unwrap_or((one.period, one.period));
            (Some(b), Some(a))
        }
        [one] => {
            let wants_previous = relative
                || s.previous
                || over_matches(one)
                || (s.change
                    && !s.trend
                    && !one.open_ended
                    && w.any(&["did", "has", "was", "is", "how"])
                    && !w.any(&["which", "what", "who"]));
            if wants_previous && (!s.trend || over_matches(one)) {
                (Some(one.period), Some(previous(one.period, one.kind)))
            } else {
                (Some(one.period), None)
            }
        }
        [a, b, ..] => {
            let from_to = w
                .tokens
                .get(a.at.wrapping_sub(1))
                .is_some_and(|t| t.text == "from")
                && s.change;
            if s.compare || from_to || s.change {
                if from_to {
                    (Some(b.period), Some(a.period))
                } else {
                    (Some(a.period), Some(b.period))
                }
            } else {
                // "in September and October": one period covering both.
                let first = a.period.first.min(b.period.first);
                let last = a.period.last.max(b.period.last).min(reference.max(first));
                (Some(Period::new(first, last)), None)
            }
        }
    }
}

fn default_grain(p: &Period) -> TimeGrain {
    match p.days() {
        d if d <= 31 => TimeGrain::Day,
        d if d <= 92 => TimeGrain::Week,
        _ => TimeGrain::Month,
    }
}

fn shape(
    s: &ShapeWords,
    groups: Option<Vec<Group>>,
    other: Option<Period>,
    spec: &QuerySpec,
    intent: Intent,
) -> Shape {
    if intent != Intent::Lookup {
        return Shape::Figure;
    }
    if let Some(groups) = groups {
        return Shape::Compare {
            against: Comparison::Groups(groups),
            by: None,
        };
    }
    if let Some(other) = other {
        return Shape::Compare {
            against: Comparison::Period(other),
            by: s.group.filter(|g| matches!(g, GroupBy::Dimension(_))),
        };
    }
    if s.trend || s.over.is_some() {
        let every = s
            .over
            .or(s.grain)
            .unwrap_or_else(|| default_grain(&spec.period));
        return Shape::Trend { every };
    }
    if let Some(order) = s.order
        && (s.group.is_some() || s.top)
    {
        let by = s.group.unwrap_or(GroupBy::Dimension(Dimension::Model));
        let limit = s
            .limit
            .unwrap_or(if s.plural || (s.top && s.limit.is_none() && s.plural) {
                5
            } else {
                1
            });
        return Shape::Ranking { by, order, limit };
    }
    if let Some(by) = s.group {
        return Shape::Breakdown { by };
    }
    if let Some(g) = s.grain
        && spec.metric != Metric::SpendPerDay
    {
        return Shape::Breakdown {
            by: GroupBy::Time(g),
        };
    }
    Shape::Figure
}
