//! How a request is read: a question becomes a typed query (`agentwire_question::understand`), a
//! structured task its fields mapped onto one (`understand_task`), against the tenant's own
//! names (its [`Vocabulary`], built once per data snapshot).
//!
//! The run's driver reads the request once before `agent_started` (with the tenant's vocabulary
//! when its data is already in memory, else from the words and the price table alone) and once
//! more, grounded, when the data has loaded; nothing else reads the request's words for meaning.
//! This module must not look at records or do I/O: the vocabulary is all it knows of the tenant.

use agentwire_analytics::query::{Dimension, Metric, Period};
use agentwire_protocol::{AgentKind, RunParams};
use agentwire_question::{Intent as QueryIntent, Query, ReviewFocus, Task, Vocabulary};
use chrono::{Duration, NaiveDate};
use serde::Serialize;
use serde_json::{Map, Value};

/// What a run was asked: the words, or the fields of a structured task.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub agent: AgentKind,
    pub text: String,
    pub task: Option<Map<String, Value>>,
}

/// How a request was read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Question {
    /// The typed query (for a task, the one its fields map onto).
    pub query: Query,
    /// The structured task, when the request was one.
    pub task: Option<Task>,
    /// The snapshot (its generation, `TenantData::generation`) whose names and dates the request
    /// was read against; `None`: the words and the price table alone, before the data was
    /// loaded. A run answering from another snapshot reads the request again.
    pub read_with: Option<u64>,
}

impl Question {
    /// Reads a request against a vocabulary; `read_with` is the generation of the snapshot it is
    /// the vocabulary of, `None` for the price table's alone.
    pub fn read(
        request: &Request,
        vocab: &Vocabulary,
        today: NaiveDate,
        read_with: Option<u64>,
    ) -> Self {
        match &request.task {
            Some(fields) => {
                let task = agentwire_question::understand_task(
                    request.agent.as_str(),
                    fields,
                    vocab,
                    today,
                );
                Question {
                    query: task.query.clone(),
                    task: Some(task),
                    read_with,
                }
            }
            None => Question {
                query: agentwire_question::understand(&request.text, vocab, today),
                task: None,
                read_with,
            },
        }
    }

    /// The intent, as the full review's heading names it.
    pub fn intent(&self) -> Intent {
        match self.query.intent {
            QueryIntent::Review(ReviewFocus::Cost) => Intent::CostOptimization,
            QueryIntent::Review(ReviewFocus::Anomaly) => Intent::Anomaly,
            QueryIntent::Review(ReviewFocus::Capacity) => Intent::Capacity,
            QueryIntent::Review(ReviewFocus::Overview) => Intent::General,
            QueryIntent::Lookup => match self.query.spec.metric {
                Metric::Latency(_) | Metric::Ttft(_) | Metric::ErrorRate => Intent::Performance,
                _ => Intent::Spend,
            },
            QueryIntent::WhatIf => Intent::WhatIf,
            QueryIntent::Greeting | QueryIntent::OutOfScope | QueryIntent::Unanswerable => {
                Intent::Reply
            }
        }
    }

    /// The period the words named, or `None` when the default (the 30 days to the data's last
    /// day) was taken.
    pub fn named_period(&self) -> Option<Period> {
        let q = &self.query;
        let r = q.reference_day;
        let default = Period::new(r - Duration::days(agentwire_question::DEFAULT_DAYS - 1), r);
        (q.spec.period != default).then_some(q.spec.period)
    }

    /// The one value the query keeps of a dimension, when it keeps exactly one.
    pub fn single(&self, dimension: Dimension) -> Option<String> {
        match self
            .query
            .spec
            .conditions
            .iter()
            .find(|c| c.dimension == dimension)
        {
            Some(c) if c.values.len() == 1 => c.values.first().cloned(),
            _ => None,
        }
    }
}

/// The day a request is asked: its `as_of` parameter (`YYYY-MM-DD`: answers as if asked that
/// day, for reproducible answers), else today. Time words are read from the data's last day when
/// that is earlier.
pub(crate) fn asked_on(params: &RunParams) -> NaiveDate {
    params
        .extra
        .get("as_of")
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s.trim().get(..10).unwrap_or(s), "%Y-%m-%d").ok())
        .unwrap_or_else(|| chrono::Utc::now().date_naive())
}

/// The readable description a structured task is recorded under, as its question.
pub(crate) fn describe_task(
    agent: AgentKind,
    fields: &Map<String, Value>,
    vocab: &Vocabulary,
    today: NaiveDate,
) -> String {
    agentwire_question::understand_task(agent.as_str(), fields, vocab, today).description
}

/// What a request is about, as a word for people (the review's heading and triage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    CostOptimization,
    Anomaly,
    Capacity,
    Performance,
    Spend,
    General,
    WhatIf,
    Reply,
}

impl Intent {
    pub fn label(self) -> &'static str {
        match self {
            Intent::CostOptimization => "cost optimization",
            Intent::Anomaly => "anomaly detection",
            Intent::Capacity => "capacity planning",
            Intent::Performance => "performance",
            Intent::Spend => "spend analysis",
            Intent::General => "an overview of AI usage",
            Intent::WhatIf => "a what-if scenario",
            Intent::Reply => "a question without a data lookup",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use agentwire_analytics::PriceTable;

    /// A question read from its words and the price table alone, asked on 2026-12-04.
    pub fn ask(text: &str) -> Question {
        let vocab = Vocabulary::from_records(&[], &PriceTable::embedded());
        let request = Request {
            agent: AgentKind::Supervisor,
            text: text.into(),
            task: None,
        };
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
        Question::read(&request, &vocab, today, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_analytics::PriceTable;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()
    }

    fn ask(text: &str) -> Question {
        let vocab = Vocabulary::from_records(&[], &PriceTable::embedded());
        let request = Request {
            agent: AgentKind::Supervisor,
            text: text.into(),
            task: None,
        };
        Question::read(&request, &vocab, today(), None)
    }

    #[test]
    fn intents_follow_the_typed_query() {
        assert_eq!(
            ask("How can we reduce our AI costs?").intent(),
            Intent::CostOptimization
        );
        assert_eq!(
            ask("Why did spend spike last week?").intent(),
            Intent::Anomaly
        );
        assert_eq!(
            ask("Will we hit our rate limits?").intent(),
            Intent::Capacity
        );
        assert_eq!(
            ask("What's our p95 latency by model?").intent(),
            Intent::Performance
        );
        assert_eq!(ask("hello").intent(), Intent::Reply);
    }

    #[test]
    fn a_named_period_is_told_from_the_default() {
        assert!(ask("spend by model").named_period().is_none());
        let p = ask("spend by model in October").named_period().unwrap();
        assert_eq!(p.first, NaiveDate::from_ymd_opt(2026, 10, 1).unwrap());
    }

    #[test]
    fn a_task_is_read_from_its_fields() {
        let vocab = Vocabulary::from_records(&[], &PriceTable::embedded());
        let fields =
            serde_json::json!({"analysis_type": "anomaly_detection", "time_range": "last_7_days"});
        let request = Request {
            agent: AgentKind::Data,
            text: String::new(),
            task: fields.as_object().cloned(),
        };
        let q = Question::read(&request, &vocab, today(), None);
        assert_eq!(q.intent(), Intent::Anomaly);
        assert_eq!(q.named_period().map(|p| p.days()), Some(7));
        assert!(q.task.is_some());
    }
}
