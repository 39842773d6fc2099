//! The typed query a question becomes, and the plan that follows from it.
//!
//! A [`Query`] holds what to compute (an `analytics::query::QuerySpec`: metric, filters, period,
//! shape), what-if change if any, and how it was read (names resolved, names absent from the
//! data, defaults assumed), so the answer can say so. This module must not parse text or compute
//! figures.

use agentwire_analytics::query::{Comparison, Condition, Dimension, QuerySpec, Shape};
use agentwire_analytics::whatif::{Change, Scenario};
use chrono::NaiveDate;
use serde::Serialize;

use crate::names::{MatchKind, Unknown};

/// Days a question covers when it names no period.
pub const DEFAULT_DAYS: i64 = 30;

/// The broad questions that keep the full review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewFocus {
    /// How do we cut costs.
    Cost,
    /// Why did spend spike; is anything unusual.
    Anomaly,
    /// Will we hit our limits; what will we spend.
    Capacity,
    /// A full report.
    Overview,
}

impl ReviewFocus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewFocus::Cost => "cost",
            ReviewFocus::Anomaly => "anomaly",
            ReviewFocus::Capacity => "capacity",
            ReviewFocus::Overview => "overview",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewFocus> {
        [
            ReviewFocus::Cost,
            ReviewFocus::Anomaly,
            ReviewFocus::Capacity,
            ReviewFocus::Overview,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// What kind of answer the question wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "focus")]
pub enum Intent {
    /// A figure, breakdown, ranking, comparison or trend from the records.
    Lookup,
    /// The monthly cost of a scenario.
    WhatIf,
    /// The full review (summary, anomalies, capacity, optimizations, plan).
    Review(ReviewFocus),
    /// Hello, thanks, what can you do.
    Greeting,
    /// Not about the tenant's AI usage ("what's the weather").
    OutOfScope,
    /// About the organisation, but not something usage records hold (revenue, answer quality).
    Unanswerable,
}

impl Intent {
    pub fn name(self) -> &'static str {
        match self {
            Intent::Lookup => "lookup",
            Intent::WhatIf => "what_if",
            Intent::Review(_) => "review",
            Intent::Greeting => "greeting",
            Intent::OutOfScope => "out_of_scope",
            Intent::Unanswerable => "unanswerable",
        }
    }

    /// Greeting, out of scope, unanswerable: answered with a short reply, no tools.
    pub fn is_reply(self) -> bool {
        matches!(
            self,
            Intent::Greeting | Intent::OutOfScope | Intent::Unanswerable
        )
    }
}

/// How one name in the question was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The words as written.
    pub text: String,
    pub dimension: Dimension,
    pub values: Vec<String>,
    pub how: MatchKind,
    /// Why this reading, when another was possible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A question, understood.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    /// The question as asked (or, for a structured task, its description).
    pub question: String,
    pub intent: Intent,
    /// What to compute. For a what-if, its conditions are the scenario's scope.
    pub spec: QuerySpec,
    /// For a what-if: what changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    pub resolved: Vec<Resolved>,
    /// Names the question uses that the data does not have.
    pub unknown: Vec<Unknown>,
    /// Defaults taken and readings worth stating ("no period named: the 30 days to 2026-11-18").
    pub assumed: Vec<String>,
    /// The day time words were read against (the data's last day, or today when earlier).
    pub reference_day: NaiveDate,
}

/// One agent's part of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanStep {
    /// The agent's canonical name (`data`, `optimization`, `actions`, `reporting`).
    pub agent: &'static str,
    pub tools: Vec<&'static str>,
}

/// Which agents and tools a query needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// `lookup`, `what_if`, `review` or `reply`.
    pub kind: &'static str,
    pub steps: Vec<PlanStep>,
}

impl Plan {
    pub fn agents(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.agent).collect()
    }

    /// Whether this is the full review pipeline.
    pub fn is_full_review(&self) -> bool {
        self.kind == "review"
    }
}

fn step(agent: &'static str, tools: &[&'static str]) -> PlanStep {
    PlanStep {
        agent,
        tools: tools.to_vec(),
    }
}

impl Query {
    /// The agents and tools this query needs (the engine's names): a lookup only the data
    /// agent's query tool; a what-if the optimization agent's scenario pricing; a review the full
    /// pipeline for its focus; a reply none.
    pub fn plan(&self) -> Plan {
        const DATA: &[&str] = &[
            "usage_summary",
            "query_usage",
            "detect_anomalies",
            "forecast_capacity",
        ];
        match self.intent {
            Intent::Lookup => Plan {
                kind: "lookup",
                steps: vec![step("data", &["run_query"])],
            },
            Intent::WhatIf => Plan {
                kind: "what_if",
                steps: vec![step("optimization", &["price_scenario"])],
            },
            Intent::Review(focus) => {
                let steps = match focus {
                    ReviewFocus::Cost | ReviewFocus::Overview => vec![
                        step("data", DATA),
                        step("optimization", &["price_lookup", "recommend_optimizations"]),
                        step("actions", &["build_plan"]),
                        step("reporting", &["compose_report"]),
                    ],
                    ReviewFocus::Anomaly => vec![
                        step("data", DATA),
                        step("actions", &["build_plan"]),
                        step("reporting", &["compose_report"]),
                    ],
                    ReviewFocus::Capacity => {
                        vec![step("data", DATA), step("reporting", &["compose_report"])]
                    }
                };
                Plan {
                    kind: "review",
                    steps,
                }
            }
            Intent::Greeting | Intent::OutOfScope | Intent::Unanswerable => Plan {
                kind: "reply",
                steps: Vec::new(),
            },
        }
    }

    /// The scenario a what-if prices (its scope is the query's filters).
    pub fn scenario(&self) -> Option<Scenario> {
        Some(Scenario {
            scope: self.spec.conditions.clone(),
            change: self.change.clone()?,
            period: self.spec.period,
        })
    }

    /// One line for the triage step: "spend · team = search · model ∈ {…} · 2026-10-01 to
    /// 2026-10-31 vs 2026-09-01 to 2026-09-30".
    pub fn describe(&self) -> String {
        if self.intent.is_reply() {
            return self.intent.name().replace('_', " ");
        }
        let mut parts: Vec<String> = Vec::new();
        match self.intent {
            Intent::Review(f) => parts.push(format!("review ({})", f.as_str())),
            Intent::WhatIf => parts.push(format!(
                "what-if: {}",
                self.change.as_ref().map_or_else(String::new, |c| c.name())
            )),
            _ => parts.push(self.spec.metric.label()),
        }
        for c in &self.spec.conditions {
            parts.push(condition_text(c));
        }
        parts.push(self.spec.period.to_string());
        match &self.spec.shape {
            Shape::Figure => {}
            Shape::Breakdown { by } => parts.push(format!("by {}", by.as_str())),
            Shape::Ranking { by, order, limit } => parts.push(format!(
                "{} {limit} {} by {}",
                if *order == agentwire_analytics::query::Order::Most {
                    "top"
                } else {
                    "bottom"
                },
                by.as_str(),
                self.spec.metric.label()
            )),
            Shape::Compare { against, by } => {
                let side = match against {
                    Comparison::Period(p) => format!("vs {p}"),
                    Comparison::Groups(gs) => format!(
                        "compare {}",
                        gs.iter()
                            .map(|g| g.label.as_str())
                            .collect::<Vec<_>>()
                            .join(" vs ")
                    ),
                };
                parts.push(side);
                if let Some(by) = by {
                    parts.push(format!("by {}", by.as_str()));
                }
            }
            Shape::Trend { every } => parts.push(format!("trend by {}", every.as_str())),
        }
        for u in &self.unknown {
            parts.push(format!("unknown {}", u.text));
        }
        parts.join(" · ")
    }
}

/// `team = search`, `model in {a, b}`.
pub(crate) fn condition_text(c: &Condition) -> String {
    if c.values.len() == 1 {
        format!("{} = {}", c.dimension.as_str(), c.values[0])
    } else {
        format!("{} in {{{}}}", c.dimension.as_str(), c.values.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Intent, Vocabulary, understand};
    use agentwire_analytics::query::Dimension;
    use chrono::NaiveDate;

    #[test]
    fn the_plan_follows_the_query() {
        let vocab = Vocabulary::from_lists(
            &[
                (Dimension::Team, &["search"]),
                (Dimension::Feature, &["doc-summaries"]),
            ],
            &[("gpt-4o", "openai"), ("gpt-4o-mini", "openai")],
            &[],
            None,
        );
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let plan = |q: &str| understand(q, &vocab, today).plan();
        assert_eq!(plan("spend by team last month").agents(), ["data"]);
        assert_eq!(
            plan("what if we moved doc-summaries to gpt-4o-mini").agents(),
            ["optimization"]
        );
        assert!(plan("how can we cut costs?").is_full_review());
        assert_eq!(
            plan("will we hit our rate limits?").agents(),
            ["data", "reporting"]
        );
        assert!(plan("hello").steps.is_empty());
        let q = understand("top 3 teams by spend in october", &vocab, today);
        assert_eq!(q.intent, Intent::Lookup);
        assert_eq!(
            q.describe(),
            "spend · 2026-10-01 to 2026-10-31 · top 3 team by spend"
        );
        assert!(q.assumed.is_empty(), "{:?}", q.assumed);
        let q = understand("spend", &vocab, today);
        assert!(
            q.assumed[0].starts_with("No period named"),
            "{:?}",
            q.assumed
        );
    }
}
