//! What a lever recommends: the change, its monthly saving in dollars, the evidence and
//! assumptions it rests on, and the steps to make it. Every lever (model routing in `optimize`,
//! the levers of `levers`, commitments in `billing`) returns this type; it holds no logic, so
//! that the levers can share it without importing each other.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// Which lever: "model_routing".
    pub lever: String,
    pub title: String,
    pub monthly_savings_usd: f64,
    /// What the affected traffic costs per month today.
    pub current_monthly_cost_usd: f64,
    pub from_model: Option<String>,
    pub to_model: Option<String>,
    pub feature: Option<String>,
    /// Set when all of the affected traffic belongs to one team.
    pub team: Option<String>,
    pub affected_requests: u64,
    pub affected_records: u64,
    pub evidence: String,
    pub assumptions: Vec<String>,
    pub steps: Vec<String>,
    /// "low", "medium" or "high".
    pub effort: String,
    /// "low", "medium" or "high".
    pub risk: String,
    /// Lever-specific figures, e.g. `reusable_share` for prompt caching.
    pub figures: BTreeMap<String, f64>,
}
