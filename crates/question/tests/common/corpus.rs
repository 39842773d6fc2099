//! The corpus files (tests/corpus/*.toml, format in tests/corpus/FORMAT.md): an entry, the
//! typed query it expects with its defaults filled in, and that query's fact by the independent
//! computation (`reference.rs`). Shared by the parse-level test (`tests/corpus.rs`) and the
//! engine's answer-level test, which asks each question of the real engine.

use std::collections::BTreeMap;
use std::path::Path;

use agentwire_analytics::query::{
    Comparison, Condition, Dimension, Group, GroupBy, Metric, Order, Period, QuerySpec, Shape,
    TimeGrain,
};
use agentwire_analytics::whatif::Change;
use agentwire_analytics::{PriceTable, UsageRecord};
use chrono::NaiveDate;
use serde::Deserialize;

use super::reference::{self, Fact};

/// The entries of a corpus file.
pub fn load(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: File = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.entry
}

/// The day an entry is asked.
pub fn today(e: &Entry) -> NaiveDate {
    e.today
        .as_deref()
        .map_or(super::dataset::day(super::dataset::TODAY), date)
}

pub type Filters = BTreeMap<String, Vec<String>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub question: String,
    pub category: String,
    pub today: Option<String>,
    pub intent: Option<String>,
    pub review: Option<String>,
    pub metric: Option<String>,
    pub filters: Option<Filters>,
    pub period: Option<[String; 2]>,
    pub shape: Option<String>,
    pub by: Option<String>,
    pub order: Option<String>,
    pub limit: Option<u32>,
    pub compare_period: Option<[String; 2]>,
    pub compare_groups: Option<Vec<Filters>>,
    pub share_of: Option<Filters>,
    pub change: Option<String>,
    pub unknown: Option<Vec<String>>,
    pub value: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct File {
    pub entry: Vec<Entry>,
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("bad date {s}: {e}"))
}

pub fn conditions(f: &Filters) -> Vec<Condition> {
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
pub struct Expected {
    pub intent: String,
    pub review: Option<String>,
    pub spec: Option<QuerySpec>,
    pub change: Option<String>,
    pub unknown: Vec<String>,
}

pub fn normal_name(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

pub fn expected(e: &Entry, reference_day: NaiveDate) -> Expected {
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

pub fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 + 0.005 * x.abs().max(y.abs()),
        (None, None) => true,
        _ => false,
    }
}

pub fn fact_reference(records: &[UsageRecord], prices: &PriceTable, e: &Expected) -> Option<Fact> {
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
