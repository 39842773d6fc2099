//! `usage_summary`: spend and tokens in the scope, by model, team, feature, provider and day, with
//! the trend against the previous period of the same length.
//! It must not filter beyond the scope: the agents' figures and the report's must agree.

use super::{ToolOutput, no_data};
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::format;
use agentwire_analytics::{Cancel, Summary, summarize_cancellable};

pub fn compute(
    data: &TenantData,
    scope: &Scope,
    cancel: &Cancel,
) -> RunResult<ToolOutput<Summary>> {
    let filter = scope.filter(&data.records);
    let summary = summarize_cancellable(&data.records, &data.prices, &filter, cancel)?;
    if summary.records == 0 {
        return Err(no_data(&data.tenant_id, scope));
    }
    let mut text = format!(
        "{} over {} requests in {}",
        format::usd(summary.total_cost_usd),
        format::count(summary.requests),
        scope.describe()
    );
    if let Some(top) = summary.by_model.first() {
        text.push_str(&format!(
            "; top model {} ({})",
            top.key,
            format::share(top.share)
        ));
    }
    if let Some(change) = summary.trend.as_ref().and_then(|t| t.change_pct) {
        text.push_str(&format!(
            "; {} vs the previous period",
            format::pct_change(change)
        ));
    }
    Ok(ToolOutput {
        value: summary,
        summary: text,
    })
}
