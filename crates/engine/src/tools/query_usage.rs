//! `query_usage`: the daily series of the scope, with its peak and the weekday/weekend pattern.
//! It must not filter beyond the scope: the agents' figures and the report's must agree.

use super::{ToolOutput, no_data};
use crate::findings::DailyUsage;
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::format;
use agentwire_analytics::{Cancel, DailyPoint, summarize_cancellable};
use chrono::{Datelike, Weekday};

pub fn compute(
    data: &TenantData,
    scope: &Scope,
    cancel: &Cancel,
) -> RunResult<ToolOutput<DailyUsage>> {
    let filter = scope.filter(&data.records);
    let summary = summarize_cancellable(&data.records, &data.prices, &filter, cancel)?;
    if summary.daily.is_empty() {
        return Err(no_data(&data.tenant_id, scope));
    }
    let days = summary.daily;
    let peak = days
        .iter()
        .max_by(|a, b| a.cost_usd.total_cmp(&b.cost_usd))
        .cloned();
    let mean = |points: Vec<&DailyPoint>| -> f64 {
        if points.is_empty() {
            0.0
        } else {
            points.iter().map(|p| p.cost_usd).sum::<f64>() / points.len() as f64
        }
    };
    let is_weekend = |p: &&DailyPoint| matches!(p.date.weekday(), Weekday::Sat | Weekday::Sun);
    let average_daily_cost_usd = mean(days.iter().collect());
    let weekday_average_cost_usd = mean(days.iter().filter(|p| !is_weekend(p)).collect());
    let weekend_average_cost_usd = mean(days.iter().filter(is_weekend).collect());
    let text = match &peak {
        Some(peak) => format!(
            "{} days; average {} per day; peak {} on {}",
            days.len(),
            format::usd(average_daily_cost_usd),
            format::usd(peak.cost_usd),
            peak.date
        ),
        None => format!("{} days", days.len()),
    };
    Ok(ToolOutput {
        value: DailyUsage {
            group_by: "day",
            days,
            peak,
            average_daily_cost_usd,
            weekday_average_cost_usd,
            weekend_average_cost_usd,
        },
        summary: text,
    })
}
