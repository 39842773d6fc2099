//! `recommend_optimizations`: the quantified levers (model routing and more), each with monthly
//! savings in dollars computed from the tenant's own records and the price table.
//! The levers live in `analytics::optimize`; this tool must not adjust their figures.

use super::{ToolOutput, no_data};
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::format;
use agentwire_analytics::{Cancel, Recommendation, recommend_cancellable};

pub fn compute(
    data: &TenantData,
    scope: &Scope,
    cancel: &Cancel,
) -> RunResult<ToolOutput<Vec<Recommendation>>> {
    let filter = scope.filter(&data.records);
    if data.records.is_empty() {
        return Err(no_data(&data.tenant_id, scope));
    }
    let recommendations = recommend_cancellable(&data.records, &data.prices, &filter, cancel)?;
    let total: f64 = recommendations.iter().map(|r| r.monthly_savings_usd).sum();
    let summary = match recommendations.first() {
        None => format!("no quantifiable saving found in {}", scope.describe()),
        Some(top) => format!(
            "{} recommendation(s) worth {}/month; largest: {} ({}/month)",
            recommendations.len(),
            format::usd(total),
            top.title,
            format::usd(top.monthly_savings_usd)
        ),
    };
    Ok(ToolOutput {
        value: recommendations,
        summary,
    })
}
