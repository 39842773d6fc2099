//! What a request asks, read from its words alone: the intent and a timeframe named in plain
//! words ("last 14 days").
//!
//! Deterministic keyword rules, not a model: the rules are few, documented here, and tested. The
//! run's driver reads the question once, before `agent_started`, and the plan follows from it
//! (`plan.rs`); nothing else reads the request's words for meaning. This is the one place a
//! richer reading (a typed query) replaces. It must not look at the tenant's data (naming a team
//! of the tenant is the `classify_request` tool's job) or do I/O.

use agentwire_protocol::client::Timeframe;
use serde::Serialize;

/// How a request was read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Question {
    /// The strongest intent; `General` when no keyword matched.
    pub intent: Intent,
    /// Every intent that matched, strongest first.
    pub intents: Vec<Intent>,
    pub matched_keywords: Vec<String>,
    /// The timeframe the words name, if any (`the last 14 days` is `14d`).
    pub timeframe: Option<Timeframe>,
}

impl Question {
    pub fn read(text: &str) -> Question {
        let (intent, intents, matched_keywords) = classify_text(text);
        Question {
            intent,
            intents,
            matched_keywords,
            timeframe: timeframe_from_text(text).and_then(|t| Timeframe::parse(&t)),
        }
    }
}

/// What a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    CostOptimization,
    Anomaly,
    Capacity,
    Performance,
    Spend,
    General,
}

impl Intent {
    /// Words that signal each intent, in priority order when several match equally.
    const RULES: [(Intent, &'static [&'static str]); 5] = [
        (
            Intent::CostOptimization,
            &[
                "optimi",
                "reduce",
                "saving",
                "save ",
                "cheaper",
                "cut ",
                "lower",
                "recommend",
                "waste",
                "too much",
                "spend less",
                "pay less",
                "efficien",
            ],
        ),
        (
            Intent::Anomaly,
            &[
                "anomal",
                "spike",
                "unusual",
                "jump",
                "sudden",
                "surge",
                "outlier",
                "why did",
                "unexpected",
                "runaway",
            ],
        ),
        (
            Intent::Capacity,
            &[
                "capacity",
                "rate limit",
                "throughput",
                "forecast",
                "headroom",
                "tokens per minute",
                "tpm",
                "rpm",
                "scale",
                "growth",
            ],
        ),
        (
            Intent::Performance,
            &[
                "latency",
                "slow",
                "ttft",
                "p95",
                "p99",
                "performance",
                "time to first",
            ],
        ),
        (
            Intent::Spend,
            &[
                "spend",
                "cost",
                "bill",
                "usage",
                "breakdown",
                "how much",
                "where",
                "budget",
            ],
        ),
    ];

    pub fn label(self) -> &'static str {
        match self {
            Intent::CostOptimization => "cost optimization",
            Intent::Anomaly => "anomaly detection",
            Intent::Capacity => "capacity planning",
            Intent::Performance => "performance",
            Intent::Spend => "spend analysis",
            Intent::General => "a general question about AI usage",
        }
    }
}

/// The intent by keyword: the strongest, every intent that matched, and the words that did.
fn classify_text(text: &str) -> (Intent, Vec<Intent>, Vec<String>) {
    let lower = format!("{} ", text.to_lowercase());
    let mut scored: Vec<(usize, usize, Intent, Vec<String>)> = Intent::RULES
        .iter()
        .enumerate()
        .filter_map(|(priority, (intent, words))| {
            let hits: Vec<String> = words
                .iter()
                .filter(|w| lower.contains(*w))
                .map(|w| w.trim().to_owned())
                .collect();
            (!hits.is_empty()).then_some((hits.len(), priority, *intent, hits))
        })
        .collect();
    // Most hits first; ties go to the more specific intent (earlier in RULES).
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let intents: Vec<Intent> = scored.iter().map(|s| s.2).collect();
    let keywords = scored.into_iter().flat_map(|s| s.3).collect();
    (
        intents.first().copied().unwrap_or(Intent::General),
        intents,
        keywords,
    )
}

/// Reads a timeframe out of plain words ("last week", "past 14 days"), if the request has one.
fn timeframe_from_text(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        if let Ok(n) = pair[0].parse::<u32>() {
            let unit = match pair[1] {
                "hour" | "hours" => 'h',
                "day" | "days" => 'd',
                "week" | "weeks" => 'w',
                "month" | "months" => 'm',
                _ => continue,
            };
            if n > 0 && n <= 365 {
                return Some(format!("{n}{unit}"));
            }
        }
    }
    let phrases = [
        ("yesterday", "1d"),
        ("today", "24h"),
        ("last week", "7d"),
        ("this week", "7d"),
        ("past week", "7d"),
        ("last month", "30d"),
        ("this month", "30d"),
        ("past month", "30d"),
        ("quarter", "90d"),
    ];
    phrases
        .iter()
        .find(|(phrase, _)| lower.contains(phrase))
        .map(|(_, tf)| (*tf).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_by_keywords() {
        assert_eq!(
            classify_text("How can we reduce our OpenAI costs?").0,
            Intent::CostOptimization
        );
        assert_eq!(
            classify_text("Why did spend spike last Tuesday?").0,
            Intent::Anomaly
        );
        assert_eq!(
            classify_text("When will we hit our rate limit?").0,
            Intent::Capacity
        );
        assert_eq!(
            classify_text("Which model has the worst latency?").0,
            Intent::Performance
        );
        assert_eq!(classify_text("Where did our AI spend go?").0, Intent::Spend);
        assert_eq!(classify_text("hello").0, Intent::General);
    }

    #[test]
    fn timeframes_from_words() {
        assert_eq!(
            timeframe_from_text("spend in the last 14 days").as_deref(),
            Some("14d")
        );
        assert_eq!(
            timeframe_from_text("what happened last week").as_deref(),
            Some("7d")
        );
        assert_eq!(timeframe_from_text("over 3 months").as_deref(), Some("3m"));
        assert_eq!(timeframe_from_text("all of it"), None);
    }

    #[test]
    fn a_question_reads_intent_and_timeframe_together() {
        let q = Question::read("Why did spend spike in the last 14 days?");
        assert_eq!(q.intent, Intent::Anomaly);
        assert_eq!(q.intents, vec![Intent::Anomaly, Intent::Spend]);
        assert_eq!(q.matched_keywords, vec!["spike", "why did", "spend"]);
        assert_eq!(q.timeframe.map(|t| t.to_string()).as_deref(), Some("14d"));
    }
}
