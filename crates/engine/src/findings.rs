//! What the agents of one run have found so far: each agent reads what earlier ones left, and the
//! report is composed from it (`report/`). The types of the values the tools return are defined
//! here too, beside the findings that keep them.
//!
//! Plain data, nothing derived. This module must not compute, format or emit anything, so that
//! tools, agents, the report composer and the offline analysis can all depend on it without
//! depending on each other.

use crate::question::Intent;
use agentwire_analytics::billing::BillingSummary;
use agentwire_analytics::capacity::Capacity;
use agentwire_analytics::forecast::{Backtest, HoltWinters};
use agentwire_analytics::query::{Condition, GroupBy, QueryResult, QuerySpec, Row};
use agentwire_analytics::timeseries::SeriesAnomalies;
use agentwire_analytics::whatif::{Scenario, WhatIf};
use agentwire_analytics::{Anomaly, DailyPoint, ModelPrice, Recommendation, Summary};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Default)]
pub(crate) struct Findings {
    pub classification: Option<Classification>,
    pub summary: Option<Summary>,
    pub daily: Option<DailyUsage>,
    pub anomalies: Option<Vec<Anomaly>>,
    pub capacity: Option<Capacity>,
    /// Offline analysis of a metric series or FOCUS billing file (`agentwire analyze`).
    pub series: Option<SeriesFindings>,
    pub prices: Option<Vec<PricedModel>>,
    pub recommendations: Option<Vec<Recommendation>>,
    pub implementation_plan: Option<Vec<PlanStep>>,
    /// A lookup's answer (`run_query`).
    pub lookup: Option<Lookup>,
    /// A what-if's answer (`price_scenario`).
    pub what_if: Option<PricedScenario>,
    /// A structured task's projection of spend and traffic (`project_growth`).
    pub growth: Option<GrowthProjection>,
    /// A structured task's `metrics`, each by day over its window (`run_query`).
    pub metric_series: Vec<Lookup>,
    /// The tools that answered, in call order.
    pub tools_used: Vec<String>,
}

/// What the offline analysis of a series or billing file found.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesFindings {
    /// "metric" or "focus".
    pub kind: String,
    pub name: String,
    pub points: usize,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub anomalies: SeriesAnomalies,
    pub forecast: Option<SeriesForecast>,
    pub billing: Option<BillingSummary>,
}

/// A forecast of a series, with its backtest.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesForecast {
    pub season: String,
    pub horizon: usize,
    pub step_seconds: i64,
    pub values: Vec<f64>,
    pub model: HoltWinters,
    pub backtest: Option<Backtest>,
}

/// Names from the tenant's data that the request mentions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Entities {
    pub models: Vec<String>,
    pub teams: Vec<String>,
    pub features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub intent: Intent,
    /// Every intent that matched, strongest first.
    pub intents: Vec<Intent>,
    pub matched_keywords: Vec<String>,
    pub entities: Entities,
    pub timeframe: String,
    /// The agents the run's plan says a review of this question needs.
    pub agents: Vec<String>,
    /// What the scope holds, so the classification is grounded in the tenant's data.
    pub scope_records: u64,
    pub scope_requests: u64,
    pub scope_cost_usd: f64,
    /// The typed query the request became (metric, filters, period, shape, how names were read).
    pub query: agentwire_question::Query,
    /// The query on one line, and the plan in words.
    pub reading: String,
    pub plan: String,
    /// For each name the data does not have: a sentence naming the closest it does.
    pub unknown: Vec<String>,
}

/// One step of the implementation plan (`build_plan`). A step that carries out a recommendation
/// names it instead of repeating its steps and evidence, which the recommendation holds.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStep {
    pub order: usize,
    pub title: String,
    pub owner: String,
    pub effort: String,
    pub risk: String,
    pub monthly_savings_usd: f64,
    /// The recommendation this step carries out: its number (1-based) in `recommendations`.
    pub recommendation: Option<usize>,
    /// What to do, for a step of the plan's own (containing an anomaly); empty for a
    /// recommendation's step.
    pub steps: Vec<String>,
    /// Why, for a step of the plan's own; `None` for a recommendation's step.
    pub rationale: Option<String>,
}

/// The daily series of the scope, with its peak and weekday/weekend pattern (`query_usage`).
#[derive(Debug, Clone, Serialize)]
pub struct DailyUsage {
    pub group_by: &'static str,
    pub days: Vec<DailyPoint>,
    pub peak: Option<DailyPoint>,
    pub average_daily_cost_usd: f64,
    pub weekday_average_cost_usd: f64,
    pub weekend_average_cost_usd: f64,
}

/// A model in use, its list price and its cheaper same-provider alternative (`price_lookup`).
#[derive(Debug, Clone, Serialize)]
pub struct PricedModel {
    pub model: String,
    /// `None` when the model is not in the price table: its cost can only come from billed `cost_usd`.
    pub price: Option<ModelPrice>,
    pub cheaper_alternative: Option<ModelPrice>,
}

/// A lookup's answer: the query, its result, the rows that support it, and for an empty
/// selection what the question holds without each filter (`run_query`).
#[derive(Debug, Clone, Serialize)]
pub struct Lookup {
    pub spec: QuerySpec,
    pub result: QueryResult,
    pub support: Option<Support>,
    pub without: Vec<Relaxed>,
}

/// Rows beside a figure: a breakdown (with the other period's values in a comparison), or every
/// group of a ranking in order.
#[derive(Debug, Clone, Serialize)]
pub struct Support {
    pub by: GroupBy,
    pub rows: Vec<Row>,
}

/// The question without one of its filters, ranked by that filter's dimension.
#[derive(Debug, Clone, Serialize)]
pub struct Relaxed {
    pub dropped: Condition,
    /// The filters the question keeps without it.
    pub kept: Vec<Condition>,
    pub result: QueryResult,
}

/// A what-if's answer (`price_scenario`): the scenario priced, or why it could not be.
#[derive(Debug, Clone, Serialize)]
pub struct PricedScenario {
    pub scenario: Scenario,
    pub priced: Option<WhatIf>,
    pub error: Option<String>,
}

/// Spend and traffic projected month by month over a planning horizon at a stated growth
/// (`project_growth`, for a structured task's `planning_horizon` and `growth_projection`).
#[derive(Debug, Clone, Serialize)]
pub struct GrowthProjection {
    pub horizon_months: u32,
    /// The factor reached at the end of the horizon (1.3 = 30% more than today).
    pub growth: f64,
    /// The monthly factor that compounds to `growth` over the horizon.
    pub monthly_factor: f64,
    /// Where today's figures come from: the last 30 days of data.
    pub basis_start: chrono::NaiveDate,
    pub basis_end: chrono::NaiveDate,
    pub monthly_cost_usd: f64,
    pub monthly_requests: f64,
    pub monthly_tokens: f64,
    /// The busiest minute's tokens in the basis window (the peak a rate limit meets).
    pub peak_tokens_per_minute: f64,
    /// The growth the data itself shows: the last 30 days' spend over the 30 before, when both
    /// are in the data.
    pub observed_monthly_growth: Option<f64>,
    pub months: Vec<ProjectedMonth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectedMonth {
    /// 1 is the month after the data ends.
    pub month: u32,
    pub factor: f64,
    pub cost_usd: f64,
    pub requests: f64,
    pub tokens: f64,
    pub peak_tokens_per_minute: f64,
}
