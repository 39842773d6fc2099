//! Parsing never panics and is deterministic, whatever the input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentwire_analytics::query::Dimension;
use agentwire_question::{Vocabulary, understand, understand_task};
use chrono::NaiveDate;
use proptest::prelude::*;

fn vocab() -> Vocabulary {
    Vocabulary::from_lists(
        &[
            (Dimension::Team, &["search", "support", "growth"]),
            (
                Dimension::Feature,
                &["doc-summaries", "chatbot", "code-review"],
            ),
            (Dimension::User, &["alice", "bob"]),
            (Dimension::Status, &["success", "error", "timeout"]),
        ],
        &[
            ("gpt-4o", "openai"),
            ("gpt-4o-mini", "openai"),
            ("claude-sonnet-4", "anthropic"),
        ],
        &[("gpt-5", "openai"), ("gemini-2.5-flash", "google")],
        Some((
            NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 18).unwrap(),
        )),
    )
}

const WORDS: &[&str] = &[
    "spend",
    "by",
    "team",
    "vs",
    "last",
    "month",
    "october",
    "q3",
    "top",
    "3",
    "claude",
    "gpt-4o",
    "what",
    "if",
    "we",
    "moved",
    "to",
    "between",
    "and",
    "since",
    "oct",
    "1",
    "p95",
    "latency",
    "per",
    "request",
    "share",
    "of",
    "the",
    "search",
    "doc",
    "summaries",
    "most",
    "least",
    "trend",
    "weekly",
    "previous",
    "from",
    "2026-10-01",
    "10/1",
    "cache",
    "prefix",
    "hello",
    "mini",
    "?",
    "'s",
    "-",
    "week",
    "over",
    "yesterday",
    "errors",
    "rate",
    "marketing",
    "gpt-5",
    "instead",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_is_deterministic(text in ".{0,300}") {
        let v = vocab();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let a = understand(&text, &v, today);
        let b = understand(&text, &v, today);
        prop_assert_eq!(&a, &b);
        let _ = a.plan();
        let _ = a.describe();
        prop_assert!(a.spec.period.first <= a.spec.period.last);
    }

    #[test]
    fn word_salad_never_panics(words in prop::collection::vec(prop::sample::select(WORDS), 0..25), day in 0u32..400) {
        let v = vocab();
        let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(i64::from(day));
        let text = words.join(" ");
        let a = understand(&text, &v, today);
        prop_assert_eq!(&a, &understand(&text, &v, today));
        prop_assert!(a.spec.period.first <= a.spec.period.last, "{}: {:?}", text, a.spec.period);
    }

    #[test]
    fn tasks_never_panic(key in "[a-z_]{1,20}", value in prop_oneof![
        Just(serde_json::Value::Null),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,30}".prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
    ]) {
        let v = vocab();
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let mut fields = serde_json::Map::new();
        fields.insert(key, value);
        for known in ["time_range", "planning_horizon", "analysis_type"] {
            let mut f = fields.clone();
            if let Some(x) = fields.values().next() {
                f.insert(known.to_string(), x.clone());
            }
            let t = understand_task("data", &f, &v, today);
            prop_assert_eq!(&t, &understand_task("data", &f, &v, today));
        }
    }
}
