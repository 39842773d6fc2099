//! The questions of issue 11's table, asked of the demo data set, and the structured tasks of
//! issue 10: each becomes the typed query and plan it should, and its figure matches a plain
//! loop over the records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentwire_analytics::query::{
    Comparison, Condition, Dimension, GroupBy, Metric, Order, Period, Shape, Stat, evaluate,
};
use agentwire_analytics::whatif::{Change, price};
use agentwire_analytics::{DemoConfig, PriceTable, generate_demo};
use agentwire_question::{
    Intent, ReviewFocus, Vocabulary, example_questions, reply, understand, understand_task,
    unknown_sentence,
};
use chrono::NaiveDate;
use serde_json::{Map, Value, json};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

struct Demo {
    records: Vec<agentwire_analytics::UsageRecord>,
    prices: PriceTable,
    vocab: Vocabulary,
    today: NaiveDate,
}

fn demo() -> Demo {
    let data = generate_demo(&DemoConfig::default());
    let prices = PriceTable::embedded();
    let vocab = Vocabulary::from_records(&data.records, &prices);
    Demo {
        records: data.records,
        prices,
        vocab,
        today: d(2026, 12, 4),
    }
}

#[test]
fn issue_11_the_search_team_on_claude_october_vs_september() {
    let demo = demo();
    let q = understand(
        "What did the search team spend on Claude in October compared with September?",
        &demo.vocab,
        demo.today,
    );
    assert_eq!(q.intent, Intent::Lookup);
    assert_eq!(q.plan().agents(), ["data"]);
    assert_eq!(q.spec.metric, Metric::Spend);
    assert_eq!(
        q.spec.conditions,
        vec![
            Condition::new(
                Dimension::Model,
                vec!["claude-3-5-haiku".into(), "claude-sonnet-4".into()]
            ),
            Condition::new(Dimension::Team, vec!["search".into()]),
        ]
    );
    assert_eq!(q.spec.period, Period::new(d(2026, 10, 1), d(2026, 10, 31)));
    assert_eq!(
        q.spec.shape,
        Shape::Compare {
            against: Comparison::Period(Period::new(d(2026, 9, 1), d(2026, 9, 30))),
            by: None
        }
    );
    assert!(q.describe().contains("team = search"), "{}", q.describe());
    // The demo's search team runs no Claude model: the figure is $0 from no records, which the
    // answer must say rather than show a table.
    let out = evaluate(&demo.records, &demo.prices, &q.spec);
    assert_eq!(out.records, 0);
    assert_eq!(out.value, Some(0.0));
}

#[test]
fn issue_11_the_feature_with_most_output_tokens_per_request() {
    let demo = demo();
    let q = understand(
        "Which feature uses the most output tokens per request?",
        &demo.vocab,
        demo.today,
    );
    assert_eq!(q.spec.metric, Metric::OutputTokensPerRequest);
    assert_eq!(
        q.spec.shape,
        Shape::Ranking {
            by: GroupBy::Dimension(Dimension::Feature),
            order: Order::Most,
            limit: 1
        }
    );
    let out = evaluate(&demo.records, &demo.prices, &q.spec);
    // Independently: output tokens / requests per feature over the same 30 days.
    let mut best = (String::new(), 0.0);
    let mut sums: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for r in &demo.records {
        if q.spec.period.contains(r.timestamp.date_naive()) {
            let e = sums
                .entry(r.feature.clone().unwrap_or_default())
                .or_default();
            e.0 += r.output_tokens as f64;
            e.1 += r.request_count as f64;
        }
    }
    for (f, (o, n)) in sums {
        if o / n > best.1 {
            best = (f, o / n);
        }
    }
    assert_eq!(out.rows[0].key, best.0);
    assert!((out.rows[0].value.unwrap() - best.1).abs() < 1e-9);
}

#[test]
fn issue_11_is_gemini_pro_worth_it_for_doc_summaries() {
    let demo = demo();
    let q = understand(
        "Is gemini-2.5-pro worth it for doc-summaries, or should we switch?",
        &demo.vocab,
        demo.today,
    );
    assert_eq!(q.intent, Intent::WhatIf);
    assert_eq!(q.plan().agents(), ["optimization"]);
    assert_eq!(q.change, Some(Change::CheaperModel));
    let w = price(&demo.records, &demo.prices, &q.scenario().unwrap()).unwrap();
    assert_eq!(w.moves.len(), 1);
    assert_eq!(
        w.moves[0].to_model.as_deref(),
        Some("gemini-2.5-flash-lite")
    );
    assert!(w.monthly_saving_usd > 0.0 && w.monthly_saving_usd < w.current_monthly_usd);
    assert!(!w.assumptions.is_empty());
}

#[test]
fn issue_11_everything_from_anthropic_to_openai() {
    let demo = demo();
    let q = understand(
        "How much would we save if we moved everything from Anthropic to OpenAI?",
        &demo.vocab,
        demo.today,
    );
    assert_eq!(q.intent, Intent::WhatIf);
    assert_eq!(
        q.spec.conditions,
        vec![Condition::new(
            Dimension::Provider,
            vec!["anthropic".into()]
        )]
    );
    assert_eq!(q.change, Some(Change::ToProvider("openai".into())));
    let w = price(&demo.records, &demo.prices, &q.scenario().unwrap()).unwrap();
    // Independently: the current monthly cost is the scope's cost over the window, times 30/days.
    let (mut cost, mut first, mut last) = (0.0, None::<NaiveDate>, None::<NaiveDate>);
    for r in &demo.records {
        let day = r.timestamp.date_naive();
        first = Some(first.map_or(day, |f: NaiveDate| f.min(day)));
        last = Some(last.map_or(day, |l: NaiveDate| l.max(day)));
        if r.provider == "anthropic" && q.spec.period.contains(day) {
            cost += demo.prices.cost_usd(r);
        }
    }
    assert!((w.current_monthly_usd - cost * 30.0 / w.days).abs() < 1e-6);
    assert!(w.moves.iter().all(|m| {
        m.to_model
            .as_deref()
            .is_some_and(|t| demo.prices.lookup(t).unwrap().provider == "openai")
    }));
}

#[test]
fn issue_11_p95_latency_by_model_and_hello() {
    let demo = demo();
    let q = understand("What's our p95 latency by model?", &demo.vocab, demo.today);
    assert_eq!(q.spec.metric, Metric::Latency(Stat::P95));
    assert_eq!(
        q.spec.shape,
        Shape::Breakdown {
            by: GroupBy::Dimension(Dimension::Model)
        }
    );
    let out = evaluate(&demo.records, &demo.prices, &q.spec);
    assert_eq!(out.rows.len(), demo.vocab.models().len());

    let hello = understand("hello", &demo.vocab, demo.today);
    assert_eq!(hello.intent, Intent::Greeting);
    assert!(hello.plan().steps.is_empty());
    let text = reply(&hello, &demo.vocab);
    assert!(text.len() < 1_500, "a greeting gets a short reply");
    let examples = example_questions(&demo.vocab);
    assert_eq!(examples.len(), 3);
    for e in &examples {
        assert!(text.contains(e.as_str()));
        let q = understand(e, &demo.vocab, demo.today);
        assert_eq!(q.intent, Intent::Lookup, "{e}");
        assert!(
            !q.spec.conditions.is_empty(),
            "{e} names the tenant's own values"
        );
        assert!(q.unknown.is_empty(), "{e}");
    }
    let weather = understand("what's the weather", &demo.vocab, demo.today);
    assert_eq!(weather.intent, Intent::OutOfScope);
    let marketing = understand(
        "How much did the marketing team spend?",
        &demo.vocab,
        demo.today,
    );
    assert_eq!(marketing.unknown.len(), 1);
    let sentence = unknown_sentence(&marketing.unknown[0]);
    assert!(
        sentence.starts_with("Your data has no team named marketing; the closest are"),
        "{sentence}"
    );
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn issue_10_structured_tasks() {
    let demo = demo();
    let reference = d(2026, 11, 25);

    let t = understand_task(
        "optimization",
        &fields(
            json!({"optimization_target":"cost_reduction","current_metrics":{"monthly_spend":25000,"utilization_rate":0.73},"constraints":{"max_performance_impact":0.05}}),
        ),
        &demo.vocab,
        demo.today,
    );
    assert_eq!(t.query.intent, Intent::Review(ReviewFocus::Cost));
    assert_eq!(t.stated_monthly_spend, Some(25_000.0));
    assert_eq!(
        t.unused,
        [
            "constraints.max_performance_impact",
            "current_metrics.utilization_rate"
        ]
    );
    assert!(
        t.used
            .contains(&"current_metrics.monthly_spend".to_string())
    );
    assert!(
        t.description.contains("cost optimization") && t.description.contains("$25,000.00"),
        "{}",
        t.description
    );
    assert_eq!(t.query.question, t.description);

    let t = understand_task(
        "supervisor",
        &fields(
            json!({"task":"comprehensive_system_analysis","requirements":{"data_analysis":true,"optimization_recommendations":true,"implementation_plan":true},"priority":"high"}),
        ),
        &demo.vocab,
        demo.today,
    );
    assert_eq!(t.query.intent, Intent::Review(ReviewFocus::Overview));
    assert!(t.query.plan().is_full_review());
    assert_eq!(t.unused, ["priority"]);
    assert!(
        t.description
            .starts_with("Supervisor task: comprehensive system analysis"),
        "{}",
        t.description
    );

    let t = understand_task(
        "data",
        &fields(
            json!({"analysis_type":"anomaly_detection","metrics":["response_time","error_rate"],"time_range":"last_7_days"}),
        ),
        &demo.vocab,
        demo.today,
    );
    assert_eq!(t.query.intent, Intent::Review(ReviewFocus::Anomaly));
    assert_eq!(t.query.spec.period, Period::new(d(2026, 11, 19), reference));
    assert_eq!(t.query.spec.metric, Metric::Latency(Stat::P95));
    assert!(t.unused.is_empty());
    assert!(
        t.description.contains("anomaly detection"),
        "{}",
        t.description
    );

    let t = understand_task(
        "data",
        &fields(json!({"planning_horizon":"6_months","growth_projection":1.3})),
        &demo.vocab,
        demo.today,
    );
    assert_eq!(t.query.intent, Intent::Review(ReviewFocus::Capacity));
    assert_eq!(t.horizon_months, Some(6));
    assert_eq!(t.growth, Some(1.3));
    assert!(
        t.description.contains("6 months ahead at 1.3x growth"),
        "{}",
        t.description
    );

    // Filters in a task are resolved like a question's names.
    let t = understand_task(
        "data",
        &fields(json!({"team":"Search","time_range":"30d","analysis_type":"cost_analysis"})),
        &demo.vocab,
        demo.today,
    );
    assert_eq!(t.query.intent, Intent::Lookup);
    assert_eq!(
        t.query.spec.conditions,
        vec![Condition::new(Dimension::Team, vec!["search".into()])]
    );
    assert_eq!(
        t.query.spec.shape,
        Shape::Breakdown {
            by: GroupBy::Dimension(Dimension::Model)
        }
    );
}

#[test]
fn cutting_spend_without_hurting_quality_is_a_cost_review_not_unanswerable() {
    let demo = demo();
    for question in [
        "Where can we cut our AI spend without hurting quality?",
        "How do we reduce costs while keeping accuracy?",
        "Can we lower spend without losing answer quality?",
    ] {
        let q = understand(question, &demo.vocab, demo.today);
        assert_eq!(q.intent, Intent::Review(ReviewFocus::Cost), "{question}");
    }
    // Asked for on its own, quality is still not in usage records.
    for question in [
        "How good is the quality of our answers?",
        "Is gpt-4o accurate?",
    ] {
        let q = understand(question, &demo.vocab, demo.today);
        assert_eq!(q.intent, Intent::Unanswerable, "{question}");
    }
}
