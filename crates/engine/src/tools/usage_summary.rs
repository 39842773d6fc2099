//! `usage_summary`: spend and tokens in the scope, by model, team, feature and provider, with the
//! trend against the previous period of the same length. The daily series is `query_usage`'s
//! alone: a run that calls both would otherwise store and send it twice.
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
    let mut summary = summarize_cancellable(&data.records, &data.prices, &filter, cancel)?;
    summary.daily = Vec::new();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{query_usage, test_support};

    #[test]
    fn the_daily_series_is_sent_by_query_usage_alone() {
        let data = test_support::demo_tenant();
        let scope = Scope::all();
        let summary = compute(&data, &scope, &Cancel::new()).unwrap().value;
        let days = query_usage::compute(&data, &scope, &Cancel::new())
            .unwrap()
            .value
            .days;
        assert!(days.len() >= 28, "{} days", days.len());
        let sent = serde_json::to_value(&summary).unwrap();
        assert!(sent.get("daily").is_none(), "{sent}");
        // What the summary states is still of the whole scope.
        let days_cost: f64 = days.iter().map(|d| d.cost_usd).sum();
        assert!((summary.total_cost_usd - days_cost).abs() < 1e-6 * days_cost);
    }
}
