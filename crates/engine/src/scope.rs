//! What slice of the tenant's data a run looks at: a look-back window ending at the newest record,
//! and optional team, model and feature filters.
//!
//! A run's scope is computed once, when its context is made, from the request's parameters and
//! the timeframe its words name; the triage agent may narrow it to a team the request names.
//! Tools receive it by value. This module must not read the request's words itself (that is
//! `question`) nor any data (it builds the filter; the tools apply it).

use crate::question::Question;
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
    pub team: Option<String>,
    pub model: Option<String>,
    pub feature: Option<String>,
}

impl Scope {
    pub const DEFAULT_TIMEFRAME: &'static str = "30d";

    /// The scope a request asks about: the `timeframe` parameter, else the timeframe its words
    /// name, else 30 days; the team, model and feature parameters.
    pub fn of_request(params: &RunParams, question: &Question) -> Scope {
        let timeframe = params
            .timeframe
            .or(question.timeframe)
            .or_else(|| Timeframe::parse(Self::DEFAULT_TIMEFRAME));
        let (label, window) = match timeframe {
            Some(tf) => (tf.to_string(), tf.duration()),
            None => (
                Self::DEFAULT_TIMEFRAME.to_owned(),
                Duration::from_secs(30 * 86_400),
            ),
        };
        Scope {
            timeframe: label,
            window,
            team: params.team.clone(),
            model: params.model.clone(),
            feature: params
                .extra
                .get("feature")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        }
    }

    /// Every record, whatever its time: the offline analysis of a whole file.
    pub fn all() -> Scope {
        Scope {
            timeframe: "all".to_owned(),
            // Longer than any data: the filter then has no start and covers every record.
            window: Duration::from_secs(u64::MAX / 4),
            team: None,
            model: None,
            feature: None,
        }
    }

    /// The analytics filter for this scope over `records` (the window ends at the newest record,
    /// so answers over the same data are the same whenever they are asked).
    pub fn filter(&self, records: &[UsageRecord]) -> Filter {
        let mut filter = Filter::last(self.window, records);
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
        let mut text = if self.timeframe == "all" {
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
