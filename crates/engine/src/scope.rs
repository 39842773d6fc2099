//! What slice of the tenant's data a run looks at: a look-back window ending at the newest record
//! (or the whole days the question names), and optional team, model and feature filters.
//!
//! A run's scope is computed from the request's parameters and how its words were read (the
//! period and the one team, model or feature they name); the driver computes it again once the
//! request has been read against the tenant's names. Tools receive it by value. This module must
//! not read the request's words itself (that is `question`) nor any data (it builds the filter;
//! the tools apply it).

use crate::question::Question;
use agentwire_analytics::query::{Dimension, Period};
use agentwire_analytics::{Filter, UsageRecord};
use agentwire_protocol::RunParams;
use agentwire_protocol::client::Timeframe;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scope {
    /// The look-back window as written (`30d`), ending at the newest record.
    pub timeframe: String,
    #[serde(skip)]
    pub window: Duration,
    /// The whole days the question names, instead of the look-back window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    pub team: Option<String>,
    pub model: Option<String>,
    pub feature: Option<String>,
}

impl Scope {
    pub const DEFAULT_TIMEFRAME: &'static str = "30d";

    /// The scope a request asks about: the `timeframe` parameter, else the period its words
    /// name, else 30 days; the team, model and feature parameters, else the one its words name.
    pub fn of_request(params: &RunParams, question: &Question) -> Scope {
        let period = match params.timeframe {
            Some(_) => None,
            None => question.named_period(),
        };
        let timeframe = params
            .timeframe
            .or_else(|| Timeframe::parse(Self::DEFAULT_TIMEFRAME));
        let (label, window) = match (period, timeframe) {
            (Some(p), _) => (
                format!("{}d", p.days()),
                Duration::from_secs(86_400 * u64::try_from(p.days()).unwrap_or(1)),
            ),
            (None, Some(tf)) => (tf.to_string(), tf.duration()),
            (None, None) => (
                Self::DEFAULT_TIMEFRAME.to_owned(),
                Duration::from_secs(30 * 86_400),
            ),
        };
        let param = |key: &str| {
            params
                .extra
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Scope {
            timeframe: label,
            window,
            period,
            team: params
                .team
                .clone()
                .or_else(|| question.single(Dimension::Team)),
            model: params
                .model
                .clone()
                .or_else(|| question.single(Dimension::Model)),
            feature: param("feature").or_else(|| question.single(Dimension::Feature)),
        }
    }

    /// Every record, whatever its time: the offline analysis of a whole file.
    pub fn all() -> Scope {
        Scope {
            timeframe: "all".to_owned(),
            // Longer than any data: the filter then has no start and covers every record.
            window: Duration::from_secs(u64::MAX / 4),
            period: None,
            team: None,
            model: None,
            feature: None,
        }
    }

    /// The analytics filter for this scope over `records` (the window ends at the newest record,
    /// so answers over the same data are the same whenever they are asked).
    pub fn filter(&self, records: &[UsageRecord]) -> Filter {
        let mut filter = match self.period {
            Some(p) => {
                let (start, end) = p.bounds();
                Filter {
                    start: Some(start),
                    end: Some(end),
                    ..Filter::default()
                }
            }
            None => Filter::last(self.window, records),
        };
        filter.team = self.team.clone();
        filter.model = self.model.clone();
        filter.feature = self.feature.clone();
        filter
    }

    /// The same scope with no time window: for baselines that need history.
    pub fn filter_all_time(&self) -> Filter {
        Filter {
            team: self.team.clone(),
            model: self.model.clone(),
            feature: self.feature.clone(),
            ..Filter::default()
        }
    }

    /// The scope as tool arguments.
    pub fn args(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    /// A phrase for people: `the last 30d, team search`.
    pub fn describe(&self) -> String {
        let mut text = if let Some(p) = self.period {
            p.to_string()
        } else if self.timeframe == "all" {
            "all the data".to_owned()
        } else {
            format!("the last {}", self.timeframe)
        };
        for (label, value) in [
            ("team", &self.team),
            ("model", &self.model),
            ("feature", &self.feature),
        ] {
            if let Some(value) = value {
                text.push_str(&format!(", {label} {value}"));
            }
        }
        text
    }
}
