//! The final answer, as Markdown for people and as the `report` JSON for programs, composed only
//! from what a run's tools found ([`Findings`]). Nothing here invents a figure: a section without
//! findings says so instead of filling in.
//!
//! The Markdown reads as an analyst writes for a busy reader: a title, a summary of at most five
//! lines (`overview.rs`), then the details, each said once: a recommendation's evidence is written
//! in the recommendation, the plan refers to it by number, and what every recommendation assumes
//! is said once. Everything before the first `###` heading is the summary (the web page shows it
//! first and folds the rest).
//!
//! [`compose`] runs the sections in the order the answer reads; each section function owns one
//! part of the Markdown and the `report` keys of that part (`sections.rs` for a tenant's usage,
//! `series.rs` for the offline analysis of a metric series or billing file). This module must not
//! run tools or emit events: the reporting agent, the entry agents and `agentwire analyze` call
//! it with findings already gathered.

mod answer;
mod lookup;
mod overview;
mod reply;
mod sections;
mod series;
mod task;
mod whatif;
mod words;

pub(crate) use answer::{AnswerInput, resolved_note};
pub(crate) use sections::capacity_summary;
pub(crate) use words::figure;

/// The short answers (lookup, what-if, reply) and a structured task's own section.
pub(crate) mod short {
    pub(crate) use super::lookup::compose as lookup;
    pub(crate) use super::reply::compose as reply;
    pub(crate) use super::task::section as task_section;
    pub(crate) use super::whatif::compose as what_if;
}

use crate::findings::Findings;
use crate::scope::Scope;
use agentwire_analytics::Anomaly;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Write;

/// What the report is built from.
#[derive(Debug, Clone)]
pub(crate) struct ReportInput {
    pub user_request: String,
    pub tenant_id: String,
    pub demo_data: bool,
    /// Set by the offline `agentwire analyze`: the file the records came from.
    pub file: Option<String>,
    /// The slice of the data the findings cover; `None` for a series or billing file.
    pub scope: Option<Scope>,
    pub findings: Findings,
}

/// The final answer in both forms.
#[derive(Debug, Clone, Serialize)]
pub struct ComposedReport {
    pub response: String,
    pub report: Value,
}

/// The keys of the `report` object, every one present in every report (`null` when a section
/// has nothing). docs/protocol.md describes them.
pub(crate) const REPORT_KEYS: [&str; 13] = [
    "question",
    "intent",
    "scope",
    "summary",
    "findings",
    "daily",
    "anomalies",
    "capacity",
    "forecast",
    "recommendations",
    "total_monthly_savings_usd",
    "implementation_plan",
    "data_coverage",
];

pub(crate) fn compose(input: &ReportInput) -> ComposedReport {
    let mut report = Report::new(input);
    sections::heading(&mut report);
    overview::overview(&mut report);
    sections::spend(&mut report);
    sections::anomalies(&mut report);
    sections::billed_against_list(&mut report);
    sections::capacity(&mut report);
    series::sections(&mut report);
    sections::recommendations(&mut report);
    sections::implementation_plan(&mut report);
    sections::classification(&mut report);
    sections::data_coverage(&mut report);
    report.finish()
}

/// A report being written: the Markdown so far, the one-sentence findings every section adds to
/// the `findings` key, and the `report` keys set so far.
pub(crate) struct Report<'a> {
    pub input: &'a ReportInput,
    pub findings: &'a Findings,
    /// The scope as a phrase (`the last 30d, team search`), or `all data`.
    pub scope_text: String,
    md: String,
    sentences: Vec<String>,
    json: Map<String, Value>,
}

impl<'a> Report<'a> {
    fn new(input: &'a ReportInput) -> Self {
        Report {
            input,
            findings: &input.findings,
            scope_text: input
                .scope
                .as_ref()
                .map(Scope::describe)
                .unwrap_or_else(|| "all data".to_owned()),
            md: String::new(),
            sentences: Vec::new(),
            json: Map::new(),
        }
    }

    /// What every recommendation saves per month, together.
    pub fn total_savings(&self) -> f64 {
        self.findings
            .recommendations
            .iter()
            .flatten()
            .map(|rec| rec.monthly_savings_usd)
            .sum()
    }

    /// Adds a sentence to the report's `findings`.
    pub fn finding(&mut self, sentence: String) {
        self.sentences.push(sentence);
    }

    /// Sets one of the [`REPORT_KEYS`].
    pub fn set(&mut self, key: &'static str, value: Value) {
        debug_assert!(REPORT_KEYS.contains(&key), "{key} is not a report key");
        self.json.insert(key.to_owned(), value);
    }

    fn finish(mut self) -> ComposedReport {
        let sentences = std::mem::take(&mut self.sentences);
        self.set("findings", Value::from(sentences));
        for key in REPORT_KEYS {
            self.json.entry(key).or_insert(Value::Null);
        }
        ComposedReport {
            response: self.md,
            report: Value::Object(self.json),
        }
    }
}

/// Sections write their Markdown with `write!`/`writeln!`, and end each paragraph with a blank
/// line.
impl Write for Report<'_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.md.push_str(text);
        Ok(())
    }
}

/// How many anomalies the answer shows: the costliest; it says how many lesser ones it left out.
pub(crate) const SHOWN_ANOMALIES: usize = 5;

/// The anomalies by dollar impact, costliest first (ties keep the detector's order).
fn ranked_anomalies(anomalies: &[Anomaly]) -> Vec<&Anomaly> {
    let mut ranked: Vec<&Anomaly> = anomalies.iter().collect();
    ranked.sort_by(|a, b| b.impact_usd.total_cmp(&a.impact_usd));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_analytics::Contributor;
    use chrono::NaiveDate;

    fn anomaly(day: u32, impact: f64) -> Anomaly {
        let date = NaiveDate::from_ymd_opt(2026, 11, day).unwrap_or_default();
        Anomaly {
            start: date,
            end: date,
            expected: 100.0,
            actual: 100.0 + impact,
            impact_usd: impact,
            score: 9.0,
            ewma_score: 4.0,
            confirmed_by_ewma: day != 7,
            kind: "departure".into(),
            severity: agentwire_analytics::timeseries::Severity::High,
            chance: 0.001,
            contributors: vec![Contributor {
                dimension: "team".into(),
                key: format!("team-{day}"),
                excess_usd: impact,
                share_of_excess: 1.0,
            }],
        }
    }

    fn compose_anomalies(anomalies: Vec<Anomaly>) -> ComposedReport {
        compose(&ReportInput {
            user_request: "Why did spend spike?".into(),
            tenant_id: "acme".into(),
            demo_data: false,
            file: None,
            scope: Some(Scope::all()),
            findings: Findings {
                anomalies: Some(anomalies),
                ..Findings::default()
            },
        })
    }

    #[test]
    fn the_anomaly_section_shows_the_five_costliest_and_counts_the_rest() {
        let impacts = [
            (3, 50.0),
            (5, 900.0),
            (7, 300.0),
            (9, 20.0),
            (11, 700.0),
            (13, 10.0),
            (15, 400.0),
        ];
        let composed = compose_anomalies(impacts.iter().map(|&(d, i)| anomaly(d, i)).collect());
        let md = &composed.response;
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| 2026-")).collect();
        let days: Vec<&str> = rows.iter().map(|r| &r[2..12]).collect();
        assert_eq!(
            days,
            vec![
                "2026-11-05",
                "2026-11-11",
                "2026-11-15",
                "2026-11-07",
                "2026-11-03"
            ],
            "{md}"
        );
        assert!(
            md.contains("_2 lesser anomalous window(s) left out._"),
            "{md}"
        );
        // The one the EWMA does not confirm is marked, and the mark explained.
        assert!(rows[3].starts_with("| 2026-11-07 * |"), "{md}");
        assert!(md.contains("_* The EWMA does not confirm it"), "{md}");
        // The summary names the costliest one and how many more there are.
        assert!(
            md.contains("- **Top anomaly:** 2026-11-05, $900.00 above baseline, driven by team team-5. 6 more, each smaller."),
            "{md}"
        );
        // The report keeps every anomaly the detector found.
        assert_eq!(
            composed.report["anomalies"].as_array().map(Vec::len),
            Some(7)
        );
    }

    #[test]
    fn no_anomaly_is_said_once_in_the_summary() {
        let md = compose_anomalies(Vec::new()).response;
        assert!(md.contains("- **Anomalies:** none;"), "{md}");
        assert!(!md.contains("### Anomalies"), "{md}");
    }
}
