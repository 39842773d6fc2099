//! `forecast_capacity`: tokens and requests per minute in the scope (p50/p95/p99/max), the
//! configured rate limits against them, and the Holt-Winters forecast of the hourly peak with its
//! backtest and the time until a limit is reached.
//!
//! Limits come from the run's `rate_limits` parameter: `MODEL=TPM[:RPM]` strings (a list, or one
//! string separated by commas), `*` for all traffic. Without limits the rates and forecast are
//! still reported, and the summary says no limit was given. The statistics live in
//! `analytics::capacity`; this tool must not add its own.

use super::{ToolOutput, no_data};
use crate::report::capacity_summary;
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::Cancel;
use agentwire_analytics::capacity::{Capacity, RateLimit, capacity_cancellable};
use agentwire_protocol::ErrorCode;

/// Reads `rate_limits` from the run's parameters.
///
/// # Errors
/// `INVALID_MESSAGE`-style failure naming the bad limit, so the person can fix it.
pub fn limits_from_params(value: Option<&serde_json::Value>) -> RunResult<Vec<RateLimit>> {
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
        .map_err(|message| crate::stop::Stop::failed(ErrorCode::InvalidMessage, message))
}

pub fn compute(
    data: &TenantData,
    scope: &Scope,
    limits: &[RateLimit],
    cancel: &Cancel,
) -> RunResult<ToolOutput<Capacity>> {
    let filter = scope.filter(&data.records);
    let c = capacity_cancellable(&data.records, &filter, limits, cancel)?;
    if c.minutes == 0 {
        return Err(no_data(&data.tenant_id, scope));
    }
    Ok(ToolOutput {
        summary: capacity_summary(&c),
        value: c,
    })
}
