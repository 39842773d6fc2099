//! What to say when a question cannot be looked up: a greeting, a question outside the data, or
//! one usage records cannot answer. The reply says what the agents can answer and offers three
//! example questions made from the tenant's own teams, models and features (the ones it spends
//! most on), so the next question lands.
//!
//! Pure text from the vocabulary; this module must not compute figures.

use agentwire_analytics::query::Dimension;

use crate::names::Unknown;
use crate::query::{Intent, Query};
use crate::vocabulary::Vocabulary;

/// Three questions the tenant can ask about its own data.
pub fn example_questions(vocab: &Vocabulary) -> Vec<String> {
    let team = vocab.values(Dimension::Team).first();
    let features = vocab.values(Dimension::Feature);
    let models = vocab.models();
    let model = models.first().map(|m| m.name.as_str());
    let mut out = Vec::new();
    match (team, model) {
        (Some(t), Some(m)) => out.push(format!("What did the {t} team spend on {m} last month?")),
        (None, Some(m)) => out.push(format!("What did we spend on {m} last month?")),
        _ => out.push("What did we spend last month, by model?".to_string()),
    }
    match features.first() {
        Some(f) => out.push(format!(
            "How did {f}'s spend change this month compared with last month?"
        )),
        None => {
            out.push("How did our spend change this month compared with last month?".to_string())
        }
    }
    match models.get(1).or(models.first()) {
        Some(m) => out.push(format!("What's the p95 latency of {} by feature?", m.name)),
        None => out.push("What's our p95 latency by model?".to_string()),
    }
    out
}

const CAN_ANSWER: &str = "I answer questions about your AI usage data: spend, requests, tokens, cost per request, latency (p50/p95/p99), time to first token, error rate and cache hits — as one figure, broken down or ranked by model, provider, team, feature, project, user or day, compared between periods or groups, or as a trend; what-ifs such as moving a feature to another model; and reviews of where to cut costs, what spiked and whether you will hit your limits.";

/// The short reply to a greeting, an out-of-scope or an unanswerable question.
pub fn reply(query: &Query, vocab: &Vocabulary) -> String {
    let opening = match query.intent {
        Intent::Greeting => "Hello!".to_string(),
        Intent::OutOfScope => "That is outside what I can see: I only have your AI usage data.".to_string(),
        Intent::Unanswerable => "Your usage records cannot answer that (they hold requests, tokens, cost, latency and status, not business results or answer quality).".to_string(),
        _ => String::new(),
    };
    let examples: Vec<String> = example_questions(vocab)
        .into_iter()
        .map(|q| format!("- {q}"))
        .collect();
    format!(
        "{opening} {CAN_ANSWER}\n\nFor example:\n{}",
        examples.join("\n")
    )
    .trim_start()
    .to_string()
}

/// "There is no team named marketing; the closest are growth, platform and search."
pub fn unknown_sentence(u: &Unknown) -> String {
    let what = u.dimension.map_or("name", |d| d.as_str());
    let closest = match u.closest.as_slice() {
        [] => String::new(),
        [one] => format!("; the closest is {one}"),
        [init @ .., last] => format!("; the closest are {} and {last}", init.join(", ")),
    };
    format!("Your data has no {what} named {}{closest}.", u.text)
}
