//! `forecast_capacity`: tokens and requests per minute in the scope (p50/p95/p99/max), the
//! configured rate limits against them, and the Holt-Winters forecast of the hourly peak with its
//! backtest and the time until a limit is reached.
//!
//! Limits come from the run's `rate_limits` parameter: `MODEL=TPM[:RPM]` strings (a list, or one
//! string separated by commas), `*` for all traffic. Without limits the rates and forecast are
//! still reported, and the summary says no limit was given.

use super::{Scope, no_data};
use crate::context::{Step, ToolOutput};
use crate::tenant::TenantData;
use agentwire_analytics::capacity::{Capacity, RateLimit, capacity};
use agentwire_analytics::format;
use agentwire_protocol::ErrorCode;

/// Reads `rate_limits` from the run's parameters.
///
/// # Errors
/// `INVALID_MESSAGE`-style failure naming the bad limit, so the person can fix it.
pub fn limits_from_params(value: Option<&serde_json::Value>) -> Step<Vec<RateLimit>> {
    let texts: Vec<String> = match value {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect(),
        Some(other) => vec![other.to_string()],
    };
    texts
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| RateLimit::parse(t.trim()))
        .collect::<Result<_, _>>()
        .map_err(|message| crate::context::Stop::failed(ErrorCode::InvalidMessage, message))
}

pub fn compute(
    data: &TenantData,
    scope: &Scope,
    limits: &[RateLimit],
) -> Step<ToolOutput<Capacity>> {
    let filter = scope.filter(&data.records);
    let c = capacity(&data.records, &filter, limits);
    if c.minutes == 0 {
        return Err(no_data(&data.tenant_id, scope));
    }
    Ok(ToolOutput {
        summary: summary(&c),
        value: c,
    })
}

/// One line for people: the percentiles, the forecast's backtest and the nearest limit.
pub fn summary(c: &Capacity) -> String {
    let t = &c.tokens_per_minute;
    let mut text = format!(
        "tokens/min p50 {} p95 {} p99 {} max {}; requests/min p99 {} ({})",
        format::count(t.p50.round() as u64),
        format::count(t.p95.round() as u64),
        format::count(t.p99.round() as u64),
        format::count(t.max.round() as u64),
        format::count(c.requests_per_minute.p99.round() as u64),
        c.resolution
    );
    if let Some(b) = c.forecast.as_ref().and_then(|f| f.backtest.as_ref()) {
        text.push_str(&format!(
            "; forecast backtest MAE {} vs seasonal-naive {}",
            format::count(b.holt_winters_mae.round() as u64),
            format::count(b.seasonal_naive_mae.round() as u64)
        ));
    }
    match c.limits.first() {
        None => text.push_str("; no rate limit given"),
        Some(l) => text.push_str(&format!(
            "; {} limit: peak at {:.0}% of it, {}",
            l.limit.model,
            l.peak_utilisation * 100.0,
            match l.hours_until_limit {
                _ if l.minutes_over_limit > 0 => "already exceeded".to_owned(),
                Some(h) => format!("reached in {:.0} h ({})", h, l.basis),
                None => l.basis.clone(),
            }
        )),
    }
    text
}
