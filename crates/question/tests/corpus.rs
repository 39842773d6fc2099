//! The question corpus (tests/corpus/*.toml, format in tests/corpus/FORMAT.md): each question is
//! parsed, the parse compared with the entry's expected query, and the parsed query evaluated
//! with `analytics::query` / `analytics::whatif` and compared with the independent computation
//! (tests/common/reference.rs) of the expected query.
//!
//! `cargo test -p agentwire-question --test corpus -- --nocapture` prints accuracy by category
//! and every miss. The dev corpus must stay above its floors; the holdout (written by someone who
//! has not seen the parser) is reported with no floor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use agentwire_analytics::query::{
    Comparison, Condition, Dimension, Group, GroupBy, Metric, Order, Period, QuerySpec, Shape,
    TimeGrain, evaluate,
};
use agentwire_analytics::whatif::{Change, Scenario, price};
use agentwire_analytics::{PriceTable, UsageRecord};
use agentwire_question::{Intent, Query, ReviewFocus, Vocabulary, understand};
use chrono::NaiveDate;
use common::reference::{self, Fact};
use serde::Deserialize;

type Filters = BTreeMap<String, Vec<String>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    question: String,
    category: String,
    today: Option<String>,
    intent: Option<String>,
    review: Option<String>,
    metric: Option<String>,
    filters: Option<Filters>,
    period: Option<[String; 2]>,
    shape: Option<String>,
    by: Option<String>,
    order: Option<String>,
    limit: Option<u32>,
    compare_period: Option<[String; 2]>,
    compare_groups: Option<Vec<Filters>>,
    share_of: Option<Filters>,
    change: Option<String>,
    unknown: Option<Vec<String>>,
    value: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct File {
    entry: Vec<Entry>,
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("bad date {s}: {e}"))
}

fn conditions(f: &Filters) -> Vec<Condition> {
    let mut out: Vec<Condition> = f
        .iter()
        .map(|(d, vs)| {
            let dimension = Dimension::parse(d).unwrap_or_else(|| panic!("unknown dimension {d}"));
            let mut values = vs.clone();
            values.sort();
            Condition::new(dimension, values)
        })
        .collect();
    out.sort_by_key(|c| c.dimension);
    out
}

/// What the parse must equal (labels of compared groups aside).
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    intent: String,
    review: Option<String>,
    spec: Option<QuerySpec>,
    change: Option<String>,
    unknown: Vec<String>,
}

fn normal_name(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

fn expected(e: &Entry, reference_day: NaiveDate) -> Expected {
    let intent = e.intent.clone().unwrap_or_else(|| "lookup".into());
    if matches!(
        intent.as_str(),
        "greeting" | "out_of_scope" | "unanswerable"
    ) {
        return Expected {
            intent,
            review: None,
            spec: None,
            change: None,
            unknown: Vec::new(),
        };
    }
    let period = match &e.period {
        Some([a, b]) => Period::new(date(a), date(b)),
        None => Period::new(reference_day - chrono::Duration::days(29), reference_day),
    };
    let by =
        e.by.as_deref()
            .map(|b| GroupBy::parse(b).unwrap_or_else(|| panic!("unknown by {b}")));
    let shape = match e.shape.as_deref().unwrap_or("figure") {
        "figure" => Shape::Figure,
        "breakdown" => Shape::Breakdown {
            by: by.expect("breakdown needs by"),
        },
        "ranking" => Shape::Ranking {
            by: by.expect("ranking needs by"),
            order: if e.order.as_deref() == Some("least") {
                Order::Least
            } else {
                Order::Most
            },
            limit: e.limit.unwrap_or(1),
        },
        "compare" => {
            let against = if let Some([a, b]) = &e.compare_period {
                Comparison::Period(Period::new(date(a), date(b)))
            } else {
                let groups = e
                    .compare_groups
                    .as_ref()
                    .expect("compare needs compare_period or compare_groups");
                Comparison::Groups(
                    groups
                        .iter()
                        .map(|g| Group {
                            label: String::new(),
                            conditions: conditions(g),
                        })
                        .collect(),
                )
            };
            Shape::Compare { against, by }
        }
        "trend" => Shape::Trend {
            every: match by {
                Some(GroupBy::Time(g)) => g,
                _ => match period.days() {
                    d if d <= 31 => TimeGrain::Day,
                    d if d <= 92 => TimeGrain::Week,
                    _ => TimeGrain::Month,
                },
            },
        },
        other => panic!("unknown shape {other}"),
    };
    let metric: Metric = e
        .metric
        .as_deref()
        .unwrap_or("spend")
        .parse()
        .unwrap_or_else(|err| panic!("{err}"));
    let spec = QuerySpec {
        metric,
        conditions: e.filters.as_ref().map(conditions).unwrap_or_default(),
        period,
        shape,
        share_of: e.share_of.as_ref().map(conditions).unwrap_or_default(),
    };
    let mut unknown: Vec<String> = e
        .unknown
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|u| normal_name(u))
        .collect();
    unknown.sort();
    Expected {
        intent,
        review: e.review.clone(),
        spec: Some(spec),
        change: e.change.clone(),
        unknown,
    }
}

fn strip_labels(shape: &Shape) -> Shape {
    match shape {
        Shape::Compare {
            against: Comparison::Groups(gs),
            by,
        } => Shape::Compare {
            against: Comparison::Groups(
                gs.iter()
                    .map(|g| Group {
                        label: String::new(),
                        conditions: g.conditions.clone(),
                    })
                    .collect(),
            ),
            by: *by,
        },
        other => other.clone(),
    }
}

fn actual(q: &Query) -> Expected {
    let intent = q.intent.name().to_string();
    if q.intent.is_reply() {
        return Expected {
            intent,
            review: None,
            spec: None,
            change: None,
            unknown: Vec::new(),
        };
    }
    let review = match q.intent {
        Intent::Review(f) => Some(f.as_str().to_string()),
        _ => None,
    };
    let mut spec = q.spec.clone();
    spec.shape = strip_labels(&spec.shape);
    let mut unknown: Vec<String> = q.unknown.iter().map(|u| normal_name(&u.text)).collect();
    unknown.sort();
    Expected {
        intent,
        review,
        spec: Some(spec),
        change: q.change.as_ref().map(Change::name),
        unknown,
    }
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 + 0.005 * x.abs().max(y.abs()),
        (None, None) => true,
        _ => false,
    }
}

fn facts_agree(got: &Fact, want: &Fact) -> bool {
    close(got.value, want.value)
        && got.rows.len() == want.rows.len()
        && got
            .rows
            .iter()
            .zip(&want.rows)
            .all(|(a, b)| a.0 == b.0 && close(a.1, b.1))
        && match (&got.previous, &want.previous) {
            (Some(a), Some(b)) => close(*a, *b),
            (None, None) => true,
            _ => false,
        }
}

struct Outcome {
    category: String,
    parse_ok: bool,
    fact_ok: bool,
    detail: String,
}

/// The answer the code under test gives to a parsed query, in the reference's shape.
fn fact_under_test(
    records: &[UsageRecord],
    prices: &PriceTable,
    q: &Query,
) -> Result<Fact, String> {
    if q.intent == Intent::WhatIf {
        let s = q.scenario().ok_or("what-if without a change")?;
        let w = price(records, prices, &s).map_err(|e| e.to_string())?;
        return Ok(Fact {
            value: Some(w.current_monthly_usd),
            rows: vec![("scenario".into(), Some(w.scenario_monthly_usd))],
            previous: None,
        });
    }
    let out = evaluate(records, prices, &q.spec);
    let mut rows: Vec<(String, Option<f64>)> =
        out.rows.iter().map(|r| (r.key.clone(), r.value)).collect();
    if let Shape::Compare {
        against: Comparison::Groups(_),
        ..
    } = q.spec.shape
    {
        // group labels are the question's words; the reference labels them blank
        for r in &mut rows {
            r.0 = String::new();
        }
    }
    Ok(Fact {
        value: out.value,
        rows,
        previous: out.previous.map(|p| p.value),
    })
}

fn fact_reference(records: &[UsageRecord], prices: &PriceTable, e: &Expected) -> Option<Fact> {
    let spec = e.spec.as_ref()?;
    if e.intent == "what_if" {
        let change = Change::parse(e.change.as_deref()?)?;
        let (current, scenario) =
            reference::what_if(records, prices, &spec.conditions, &change, &spec.period);
        return Some(Fact {
            value: Some(current),
            rows: vec![("scenario".into(), Some(scenario))],
            previous: None,
        });
    }
    Some(reference::compute(records, prices, spec))
}

fn run(
    path: &Path,
    records: &[UsageRecord],
    prices: &PriceTable,
    vocab: &Vocabulary,
) -> Vec<Outcome> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: File = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let default_today = common::dataset::day(common::dataset::TODAY);
    let mut out = Vec::new();
    for e in &file.entry {
        let today = e.today.as_deref().map_or(default_today, date);
        let q = understand(&e.question, vocab, today);
        let want = expected(e, q.reference_day);
        let got = actual(&q);
        let parse_ok = got == want;
        let mut detail = String::new();
        if !parse_ok {
            detail = format!("  parse: want {want:?}\n         got  {got:?}\n");
        }
        let fact_ok = if want.intent == "greeting"
            || want.intent == "out_of_scope"
            || want.intent == "unanswerable"
        {
            parse_ok
        } else {
            let reference_fact = fact_reference(records, prices, &want);
            let tested = fact_under_test(records, prices, &q);
            let mut ok = match (&tested, &reference_fact) {
                (Ok(a), Some(b)) => facts_agree(a, b),
                _ => false,
            };
            if let (Some(v), Some(b)) = (e.value, &reference_fact) {
                ok &= close(Some(v), b.value);
            }
            if !ok {
                detail.push_str(&format!(
                    "  fact:  want {reference_fact:?}\n         got  {tested:?}\n"
                ));
            }
            ok
        };
        out.push(Outcome {
            category: e.category.clone(),
            parse_ok,
            fact_ok,
            detail: format!("{}\n{detail}", e.question),
        });
    }
    out
}

fn report(name: &str, outcomes: &[Outcome]) -> (f64, BTreeMap<String, (usize, usize)>) {
    let mut by: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for o in outcomes {
        let e = by.entry(o.category.clone()).or_default();
        e.1 += 1;
        if o.parse_ok && o.fact_ok {
            e.0 += 1;
        }
    }
    let total = outcomes.len();
    let right = outcomes.iter().filter(|o| o.parse_ok && o.fact_ok).count();
    let parse = outcomes.iter().filter(|o| o.parse_ok).count();
    let fact = outcomes.iter().filter(|o| o.fact_ok).count();
    println!(
        "\n{name}: {right}/{total} right ({:.1}%); parse {parse}/{total}, fact {fact}/{total}",
        100.0 * right as f64 / total.max(1) as f64
    );
    println!("  {:<16} {:>7} {:>9}", "category", "right", "accuracy");
    for (c, (r, n)) in &by {
        println!(
            "  {c:<16} {:>3}/{:<3} {:>8.1}%",
            r,
            n,
            100.0 * *r as f64 / *n as f64
        );
    }
    for o in outcomes.iter().filter(|o| !(o.parse_ok && o.fact_ok)) {
        println!("MISS [{}] {}", o.category, o.detail);
    }
    (right as f64 / total.max(1) as f64, by)
}

#[test]
fn corpus() {
    let records = common::dataset::generate();
    let prices = PriceTable::embedded();
    let vocab = Vocabulary::from_records(&records, &prices);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let dev = run(&dir.join("dev.toml"), &records, &prices, &vocab);
    assert!(
        dev.len() >= 150,
        "the dev corpus has {} entries; it needs at least 150",
        dev.len()
    );
    let (overall, by) = report("dev corpus", &dev);
    let holdout = dir.join("holdout.toml");
    if holdout.exists() {
        let outcomes = run(&holdout, &records, &prices, &vocab);
        report("holdout corpus (no floor)", &outcomes);
    } else {
        println!("\nholdout corpus: tests/corpus/holdout.toml is absent");
    }
    assert!(
        overall >= 0.90,
        "dev accuracy {:.1}% is under the 90% floor",
        overall * 100.0
    );
    for (c, (r, n)) in by {
        assert!(
            r as f64 / n as f64 >= 0.75,
            "category {c}: {r}/{n} is under the 75% floor"
        );
    }
}

/// The data set is what FORMAT.md says it is.
#[test]
fn the_data_set_is_as_documented() {
    let records = common::dataset::generate();
    let prices = PriceTable::embedded();
    let vocab = Vocabulary::from_records(&records, &prices);
    let mut teams = vocab.values(Dimension::Team).to_vec();
    teams.sort();
    assert_eq!(
        teams,
        ["growth", "platform", "research", "search", "support"]
    );
    assert_eq!(vocab.values(Dimension::Feature).len(), 11);
    assert_eq!(vocab.models().len(), 9);
    let span = vocab.span().unwrap();
    assert_eq!(
        (span.first, span.last),
        (
            common::dataset::day(common::dataset::FIRST_DAY),
            common::dataset::day(common::dataset::LAST_DAY)
        )
    );
    assert_eq!(
        records,
        common::dataset::generate(),
        "the generator is deterministic"
    );
    assert!(
        records.iter().all(|r| prices.lookup(&r.model).is_some()),
        "every model is priced"
    );
    let _ = ReviewFocus::Cost;
    let _: Option<Scenario> = None;
}
