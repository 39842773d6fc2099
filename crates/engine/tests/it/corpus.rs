//! The question corpus at the answer level: every question of `crates/question/tests/corpus/`
//! is asked of the real engine (a temporary SQLite store with the corpus's generated data set
//! ingested, one shared tenant snapshot), and the fact the test computes independently
//! (`reference.rs`, plain loops over the records on the query the entry expects) must be stated
//! in the answer's first lines: the figure, both sides of a comparison, the leading rows of a
//! breakdown or ranking, the ends of a trend, a what-if's current and scenario monthly cost. A
//! greeting, an out-of-scope or unanswerable question must get the short reply; a broad question
//! the full review with the right total.
//!
//! Accuracy is printed by category (`cargo test -p agentwire-engine --test it corpus --
//! --nocapture`). The dev corpus has floors; the set-aside holdout (`holdout.toml`, which the
//! engine's authors do not read) is run when present and reported with no floor.

#[path = "../../../question/tests/common/mod.rs"]
#[allow(dead_code, clippy::all)]
mod common;

use crate::support::{engine, principal, request};
use agentwire_analytics::query::{Comparison, GroupBy, Metric, Shape};
use agentwire_analytics::whatif::Change;
use agentwire_analytics::{PriceTable, UsageRecord};
use agentwire_engine::{Engine, EngineConfig};
use agentwire_protocol::{AgentKind, EventKind};
use common::corpus::{Entry, Expected, expected, fact_reference, load, today};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lines of the answer the fact must be in.
const FIRST_LINES: usize = 6;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../question/tests/corpus")
}

/// Every number written in `text` but the dates (`2026-10-14`, `October 2026`): `$1,234.56` →
/// 1234.56, `4.23%` → 4.23, `1,234 ms` → 1234.
fn numbers(text: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    for word in text.split(' ') {
        let bare = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '-');
        let is_date = bare.len() == 10
            && bare.chars().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            });
        let is_year = bare.len() == 4
            && bare.starts_with("20")
            && words.last().is_some_and(|w| {
                w.starts_with(|c: char| c.is_ascii_uppercase()) && !w.starts_with('$')
            });
        if !is_date && !is_year {
            words.push(word.to_owned());
        } else {
            words.push(String::new());
        }
    }
    let text = words.join(" ");
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut s = String::new();
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (chars[i] == ',' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
                    || (chars[i] == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                if chars[i] != ',' {
                    s.push(chars[i]);
                }
                i += 1;
            }
            if let Ok(v) = s.parse::<f64>() {
                out.push(v);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Whether `want` (of `metric`) is written in `text`, to the precision answers write it.
fn states(text: &str, metric: Metric, want: Option<f64>) -> bool {
    let lower = text.to_lowercase();
    let Some(want) = want else {
        return [
            "no figure",
            "hold no",
            "nothing recorded",
            "no usage",
            "no records",
        ]
        .iter()
        .any(|p| lower.contains(p));
    };
    if want.abs() < 1e-9
        && ["no usage", "no records", "nothing", "no figure"]
            .iter()
            .any(|p| lower.contains(p))
    {
        return true;
    }
    let target = if metric.is_fraction() {
        want * 100.0
    } else {
        want
    }
    .abs();
    numbers(text)
        .iter()
        .any(|n| (n - target).abs() <= (0.005 * target).max(0.006))
}

/// What the answer's first lines must state for the expected query, as (what, metric, value,
/// name that must appear too).
fn facts(
    records: &[UsageRecord],
    prices: &PriceTable,
    want: &Expected,
) -> Vec<(String, Metric, Option<f64>, Option<String>)> {
    let Some(spec) = &want.spec else {
        return Vec::new();
    };
    let Some(fact) = fact_reference(records, prices, want) else {
        return Vec::new();
    };
    let m = spec.metric;
    let row = |i: usize, named: bool| {
        fact.rows
            .get(i)
            .map(|(k, v)| (format!("row {k}"), m, *v, named.then(|| k.clone())))
    };
    if want.intent == "what_if" {
        return vec![
            (
                "current monthly cost".into(),
                Metric::Spend,
                fact.value,
                None,
            ),
            (
                "scenario monthly cost".into(),
                Metric::Spend,
                fact.rows.first().and_then(|r| r.1),
                None,
            ),
        ];
    }
    if want.intent == "review" {
        // The review's total spend over its scope.
        let mut spend = spec.clone();
        spend.metric = Metric::Spend;
        spend.shape = Shape::Figure;
        let total = common::reference::compute(records, prices, &spend);
        return vec![(
            "review total spend".into(),
            Metric::Spend,
            total.value,
            None,
        )];
    }
    let mut out = Vec::new();
    match &spec.shape {
        Shape::Figure => out.push(("figure".into(), m, fact.value, None)),
        Shape::Compare {
            against: Comparison::Period(_),
            ..
        } => {
            out.push(("this period".into(), m, fact.value, None));
            out.push(("other period".into(), m, fact.previous.flatten(), None));
        }
        Shape::Compare {
            against: Comparison::Groups(_),
            ..
        } => out.extend((0..fact.rows.len()).filter_map(|i| row(i, false))),
        Shape::Breakdown {
            by: GroupBy::Dimension(_),
        } => {
            if m.is_additive() {
                out.push(("total".into(), m, fact.value, None));
                out.extend(row(0, true));
            } else {
                let present: Vec<usize> = (0..fact.rows.len())
                    .filter(|i| fact.rows[*i].1.is_some())
                    .collect();
                if let (Some(&hi), Some(&lo)) = (present.first(), present.last()) {
                    out.extend(row(hi, true));
                    out.extend(row(lo, true));
                }
            }
        }
        Shape::Breakdown {
            by: GroupBy::Time(_),
        }
        | Shape::Trend { .. } => {
            let present: Vec<usize> = (0..fact.rows.len())
                .filter(|i| fact.rows[*i].1.is_some())
                .collect();
            if let (Some(&first), Some(&last)) = (present.first(), present.last()) {
                out.extend(row(first, false));
                out.extend(row(last, false));
            }
        }
        Shape::Ranking { limit, .. } => out
            .extend((0..fact.rows.len().min(*limit as usize).min(5)).filter_map(|i| row(i, true))),
    }
    out
}

/// The kind of answer a report says it is.
fn kind_of(report: &Value) -> String {
    if !report["lookup"].is_null() {
        "lookup".into()
    } else if !report["what_if"].is_null() {
        "what_if".into()
    } else if !report["reply"].is_null() {
        report["reply"]["kind"].as_str().unwrap_or("reply").into()
    } else {
        "review".into()
    }
}

struct Outcome {
    category: String,
    right: bool,
    detail: String,
}

async fn ask(engine: &Engine, e: &Entry) -> Result<(String, Value), String> {
    let mut start = request(AgentKind::Supervisor, &e.question);
    start
        .params
        .extra
        .insert("as_of".into(), Value::from(today(e).to_string()));
    let started = engine
        .start_run(&principal("corpus", "corpus"), start)
        .await
        .map_err(|err| err.to_string())?;
    let events = crate::support::drain(started.events).await;
    match events.last().map(|e| &e.kind) {
        Some(EventKind::AgentCompleted {
            response, report, ..
        }) => Ok((response.clone(), report.clone())),
        other => Err(format!("the run did not complete: {other:?}")),
    }
}

async fn run(engine: &Engine, path: &Path, records: &[UsageRecord]) -> Vec<Outcome> {
    let prices = PriceTable::embedded();
    let last = common::dataset::day(common::dataset::LAST_DAY);
    let mut out = Vec::new();
    for e in load(path) {
        let want = expected(&e, today(&e).min(last));
        let answer = ask(engine, &e).await;
        let (right, detail) = match &answer {
            Err(err) => (false, err.clone()),
            Ok((response, report)) => {
                // The opening paragraph: the lines before the first blank line.
                let first: String = response
                    .lines()
                    .take_while(|l| !l.trim().is_empty())
                    .take(FIRST_LINES)
                    .collect::<Vec<_>>()
                    .join("\n");
                let kind = kind_of(report);
                let want_kind = match want.intent.as_str() {
                    "greeting" | "out_of_scope" | "unanswerable" => want.intent.clone(),
                    other => other.to_owned(),
                };
                let mut missing: Vec<String> = Vec::new();
                if kind != want_kind {
                    missing.push(format!("a {want_kind} answer, got {kind}"));
                }
                let text = if want.intent == "review" {
                    response.lines().take(15).collect::<Vec<_>>().join("\n")
                } else {
                    first.clone()
                };
                for (what, metric, value, name) in facts(records, &prices, &want) {
                    let named = name.as_ref().is_none_or(|n| text.contains(n.as_str()));
                    if !(named && states(&text, metric, value)) {
                        missing.push(format!("{what} = {value:?}"));
                    }
                }
                if let Some(Change::ToModel(m)) = want.change.as_deref().and_then(Change::parse)
                    && !text.contains(&m)
                {
                    missing.push(format!("the target {m}"));
                }
                (
                    missing.is_empty(),
                    format!("  missing: {}\n  answer:\n{first}", missing.join("; ")),
                )
            }
        };
        out.push(Outcome {
            category: e.category.clone(),
            right,
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
        if o.right {
            e.0 += 1;
        }
    }
    let right = outcomes.iter().filter(|o| o.right).count();
    let total = outcomes.len();
    println!(
        "\n{name}, answer level: {right}/{total} ({:.1}%)",
        100.0 * right as f64 / total.max(1) as f64
    );
    for (c, (r, n)) in &by {
        println!(
            "  {c:<16} {r:>3}/{n:<3} {:>6.1}%",
            100.0 * *r as f64 / *n as f64
        );
    }
    for o in outcomes.iter().filter(|o| misses && !o.right) {
        println!("MISS [{}] {}", o.category, o.detail);
    }
    (right as f64 / total.max(1) as f64, by)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_answers_state_the_fact_in_their_first_lines() {
    let records = common::dataset::generate();
    let (engine, _dir) = engine(EngineConfig::default()).await;
    engine.ingest("corpus", records.clone()).await.unwrap();
    let dev = run(&engine, &corpus_dir().join("dev.toml"), &records).await;
    let (overall, by) = report("dev corpus", &dev, true);
    let holdout = corpus_dir().join("holdout.toml");
    if holdout.exists() {
        let outcomes = run(&engine, &holdout, &records).await;
        report("holdout corpus (no floor)", &outcomes, false);
    } else {
        println!("\nholdout corpus: {} is absent", holdout.display());
    }
    assert!(
        overall >= 0.95,
        "dev answer-level accuracy {:.1}% is under the 95% floor",
        overall * 100.0
    );
    for (c, (r, n)) in by {
        assert!(
            r as f64 / n as f64 >= 0.8,
            "category {c}: {r}/{n} is under the 80% floor"
        );
    }
}
