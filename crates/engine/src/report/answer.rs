//! The short answers — a lookup, a what-if, a reply — as Markdown and as the `report` JSON. Each
//! opens with what was asked in one or two sentences (the fact, the scenario's monthly cost and
//! saving, or what the agents can answer), then what supports it, then how the question was read
//! and where the figures come from; nothing unrelated.
//!
//! `lookup.rs`, `whatif.rs` and `reply.rs` write the Markdown; this module holds what they share:
//! their input, the notes on how the question was read, and the `report` object (every key of the
//! full review's report, `null` where it does not apply, plus `query` and the answer's own key).
//! It must not run tools or compute figures.

use super::{ComposedReport, REPORT_KEYS};
use crate::findings::Findings;
use agentwire_analytics::format;
use agentwire_question::{MatchKind, Query, Resolved, Task, Vocabulary, unknown_sentence};
use serde_json::{Map, Value, json};

/// What a short answer is composed from.
pub(crate) struct AnswerInput<'a> {
    pub query: &'a Query,
    pub task: Option<&'a Task>,
    pub tenant_id: &'a str,
    pub demo_data: bool,
    /// Records in the tenant's data, and their first and last day.
    pub records: usize,
    pub vocab: &'a Vocabulary,
    pub findings: &'a Findings,
}

impl AnswerInput<'_> {
    /// Sentences for the names the data does not have, each naming the closest it does.
    pub fn unknown_sentences(&self) -> Vec<String> {
        self.query.unknown.iter().map(unknown_sentence).collect()
    }

    /// How the question was read, the names resolved and the defaults taken, in italics.
    pub fn reading_notes(&self) -> String {
        let q = self.query;
        let mut notes = vec![format!("Read as: {}.", q.describe())];
        notes.extend(q.resolved.iter().filter_map(resolved_note));
        notes.extend(q.assumed.iter().cloned());
        if let Some(task) = self.task {
            notes.push(format!("Task fields used: {}.", task.used.join(", ")));
            if !task.unused.is_empty() {
                notes.push(format!(
                    "Fields kept but not used: {}.",
                    task.unused.join(", ")
                ));
            }
        }
        format!("_{}_\n", notes.join(" ").replace("..", "."))
    }

    /// Where the figures come from.
    pub fn coverage(&self) -> (String, Value) {
        let source = if self.demo_data {
            "the generated demo data set (the tenant has no data of its own)"
        } else {
            "the tenant's ingested usage records"
        };
        let span = self.vocab.span();
        let text = format!(
            "From {} record(s){} in {source}, priced with the list-price table; tools used: {}.",
            format::count(self.records as u64),
            span.map(|s| format!(" ({s})")).unwrap_or_default(),
            self.findings.tools_used.join(", ")
        );
        let value = json!({
            "tenant_id": self.tenant_id,
            "source": if self.demo_data { "demo" } else { "tenant" },
            "records": self.records,
            "start": span.map(|s| s.first),
            "end": span.map(|s| s.last),
            "tools": self.findings.tools_used,
        });
        (text, value)
    }

    /// The answer: Markdown, and the report with the full review's keys (`null` where they do
    /// not apply), `query`, and the answer's own key (`lookup`, `what_if`, `reply`).
    pub fn finish(
        &self,
        markdown: String,
        sentences: Vec<String>,
        key: &'static str,
        value: Value,
    ) -> ComposedReport {
        let (coverage_text, coverage) = self.coverage();
        // A reply has no figures, so nothing to say where they come from.
        let response = if key == "reply" {
            format!("{}\n", markdown.trim_end())
        } else {
            format!("{}\n\n_{coverage_text}_\n", markdown.trim_end())
        };
        let mut report = Map::new();
        report.insert("question".into(), json!(self.query.question));
        report.insert("intent".into(), json!(self.query.intent.name()));
        report.insert(
            "scope".into(),
            json!({ "period": self.query.spec.period, "conditions": self.query.spec.conditions }),
        );
        report.insert("findings".into(), json!(sentences));
        report.insert("data_coverage".into(), coverage);
        for k in REPORT_KEYS {
            report.entry(k).or_insert(Value::Null);
        }
        report.insert("query".into(), json!(self.query));
        if let Some(task) = self.task {
            report.insert("task".into(), task_json(task));
        }
        report.insert(key.into(), value);
        ComposedReport {
            response,
            report: Value::Object(report),
        }
    }
}

/// How one name was read, when it was not the value itself: "\"Claude\" read as the Claude
/// models in your data: claude-3-5-haiku, claude-sonnet-4.", or the reader's own note.
pub(crate) fn resolved_note(r: &Resolved) -> Option<String> {
    if let Some(note) = &r.note {
        return Some(format!("{note}."));
    }
    let mut values = r.values.clone();
    values.sort();
    let text = super::words::capitalise(&r.text);
    match r.how {
        MatchKind::Exact => None,
        MatchKind::Family => Some(format!(
            "\"{text}\" read as the {text} {}s in your data: {}.",
            r.dimension.as_str(),
            values.join(", ")
        )),
        MatchKind::Typo => Some(format!(
            "\"{}\" read as the {} {} (a typo?).",
            r.text,
            r.dimension.as_str(),
            values.join(", ")
        )),
        MatchKind::Partial | MatchKind::Alias => Some(format!(
            "\"{}\" read as the {} {}.",
            r.text,
            r.dimension.as_str(),
            values.join(", ")
        )),
    }
}

/// A structured task as the report carries it.
pub(crate) fn task_json(task: &Task) -> Value {
    json!({
        "description": task.description,
        "used": task.used,
        "unused": task.unused,
        "stated_monthly_spend_usd": task.stated_monthly_spend,
        "horizon_months": task.horizon_months,
        "growth": task.growth,
    })
}

/// Markdown `**bold**` removed, for the plain sentences of `findings`.
pub(crate) fn plain(text: &str) -> String {
    text.replace("**", "")
}
