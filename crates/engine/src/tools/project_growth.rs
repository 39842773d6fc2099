//! `project_growth`: a structured task's capacity forecast over its planning horizon — today's
//! monthly spend, requests, tokens and peak tokens per minute (from the scope's window, scaled to
//! 30 days), grown month by month so that the stated growth is reached at the end of the horizon,
//! beside the growth the data itself shows.
//!
//! Plain arithmetic on the scope's figures; the peak rate comes from `forecast_capacity`. This
//! tool must not forecast by itself what the client did not state: the growth is the client's.

use super::{ToolOutput, no_data};
use crate::findings::{GrowthProjection, ProjectedMonth};
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::{Cancel, Ticks, format};

pub fn compute(
    data: &TenantData,
    scope: &Scope,
    horizon_months: u32,
    growth: f64,
    peak_tokens_per_minute: f64,
    cancel: &Cancel,
) -> RunResult<ToolOutput<GrowthProjection>> {
    let filter = scope.filter(&data.records);
    let mut ticks = Ticks::new(cancel);
    let (mut cost, mut requests, mut tokens) = (0.0, 0u64, 0u64);
    let (mut first, mut last) = (None, None);
    for r in data.records.iter() {
        ticks.tick()?;
        if !filter.matches(r) {
            continue;
        }
        cost += data.prices.cost_usd(r);
        requests += r.request_count;
        tokens += r.input_tokens + r.output_tokens;
        let day = r.timestamp.date_naive();
        first = Some(first.map_or(day, |f: chrono::NaiveDate| f.min(day)));
        last = Some(last.map_or(day, |l: chrono::NaiveDate| l.max(day)));
    }
    let (Some(first), Some(last)) = (first, last) else {
        return Err(no_data(&data.tenant_id, scope));
    };
    let days = ((last - first).num_days() + 1) as f64;
    let per_month = 30.0 / days;
    // The data's own growth: the window against the one before it, when the data reaches back.
    let mut observed_monthly_growth = None;
    if let Some((start, end)) = filter.previous_window() {
        let mut previous = 0.0;
        for r in data.records.iter() {
            ticks.tick()?;
            if r.timestamp >= start && r.timestamp < end && filter.matches_dims(r) {
                previous += data.prices.cost_usd(r);
            }
        }
        observed_monthly_growth = (previous > 0.0).then(|| (cost / previous).powf(30.0 / days));
    }
    let horizon = horizon_months.max(1);
    let monthly_factor = growth.powf(1.0 / f64::from(horizon));
    let (monthly_cost_usd, monthly_requests, monthly_tokens) = (
        cost * per_month,
        requests as f64 * per_month,
        tokens as f64 * per_month,
    );
    let months: Vec<ProjectedMonth> = (1..=horizon)
        .map(|m| {
            let factor = monthly_factor.powi(i32::try_from(m).unwrap_or(i32::MAX));
            ProjectedMonth {
                month: m,
                factor,
                cost_usd: monthly_cost_usd * factor,
                requests: monthly_requests * factor,
                tokens: monthly_tokens * factor,
                peak_tokens_per_minute: peak_tokens_per_minute * factor,
            }
        })
        .collect();
    let end = months.last().map_or(monthly_cost_usd, |m| m.cost_usd);
    let summary = format!(
        "{} a month today ({first} to {last}), {} a month after {horizon} month(s) at {growth}x",
        format::usd(monthly_cost_usd),
        format::usd(end)
    );
    Ok(ToolOutput {
        value: GrowthProjection {
            horizon_months: horizon,
            growth,
            monthly_factor,
            basis_start: first,
            basis_end: last,
            monthly_cost_usd,
            monthly_requests,
            monthly_tokens,
            peak_tokens_per_minute,
            observed_monthly_growth,
            months,
        },
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_compounds_to_the_stated_factor_at_the_horizon() {
        let data = crate::tools::test_support::demo_tenant();
        let scope = Scope::of_request(
            &Default::default(),
            &crate::question::tests_support::ask(""),
        );
        let out = compute(&data, &scope, 6, 1.3, 1000.0, &Cancel::new())
            .unwrap()
            .value;
        assert_eq!(out.months.len(), 6);
        let last = out.months.last().unwrap();
        assert!((last.factor - 1.3).abs() < 1e-9);
        assert!((last.cost_usd - out.monthly_cost_usd * 1.3).abs() < 1e-6);
        assert!((last.peak_tokens_per_minute - 1300.0).abs() < 1e-6);
        assert!(out.observed_monthly_growth.is_some());
    }
}
