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

use agentwire_analytics::query::{Comparison, Dimension, Group, Shape, evaluate};
use agentwire_analytics::whatif::{Change, Scenario, price};
use agentwire_analytics::{PriceTable, UsageRecord};
use agentwire_question::{Intent, Query, ReviewFocus, Vocabulary, understand};
use common::corpus::{Expected, close, expected, fact_reference, load, normal_name, today};
use common::reference::Fact;

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

fn run(
    path: &Path,
    records: &[UsageRecord],
    prices: &PriceTable,
    vocab: &Vocabulary,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    for e in &load(path) {
        let today = today(e);
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

/// Prints accuracy by category, and each miss when `misses` (never for the holdout: its
/// questions are not for reading while developing).
fn report(
    name: &str,
    outcomes: &[Outcome],
    misses: bool,
) -> (f64, BTreeMap<String, (usize, usize)>) {
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
    for o in outcomes
        .iter()
        .filter(|o| misses && !(o.parse_ok && o.fact_ok))
    {
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
    let (overall, by) = report("dev corpus", &dev, true);
    let holdout = dir.join("holdout.toml");
    if holdout.exists() {
        let outcomes = run(&holdout, &records, &prices, &vocab);
        report("holdout corpus (no floor)", &outcomes, false);
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
