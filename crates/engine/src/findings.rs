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
use agentwire_analytics::timeseries::SeriesAnomalies;
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
