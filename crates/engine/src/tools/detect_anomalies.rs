//! `detect_anomalies`: days whose spend departs from the seasonal baseline, with their dollar
//! impact and what drove them. The baseline uses the whole history of the scope; only anomalies
//! that overlap the asked window are reported.
//! The statistics live in `analytics::anomaly`; this tool must not add its own.

use super::{ToolOutput, no_data};
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::format;
use agentwire_analytics::{Anomaly, Cancel, Contributor, detect_anomalies_cancellable};

pub fn compute(
    data: &TenantData,
    scope: &Scope,
    cancel: &Cancel,
) -> RunResult<ToolOutput<Vec<Anomaly>>> {
    let window = scope.filter(&data.records);
    let all = detect_anomalies_cancellable(
        &data.records,
        &data.prices,
        &scope.filter_all_time(),
        cancel,
    )?;
    if data.records.is_empty() {
        return Err(no_data(&data.tenant_id, scope));
    }
    let in_window: Vec<Anomaly> = all
        .into_iter()
        .filter(|a| {
            let starts_before_end = window.end.is_none_or(|end| a.start <= end.date_naive());
            let ends_after_start = window.start.is_none_or(|start| a.end >= start.date_naive());
            starts_before_end && ends_after_start
        })
        .collect();
    let text = match in_window.first() {
        None => format!("no anomalous days in {}", scope.describe()),
        Some(top) => format!(
            "{} anomal{}; largest {}..{}: {} actual vs {} expected ({} impact)",
            in_window.len(),
            if in_window.len() == 1 { "y" } else { "ies" },
            top.start,
            top.end,
            format::usd(top.actual),
            format::usd(top.expected),
            format::usd(top.impact_usd)
        ),
    };
    Ok(ToolOutput {
        value: in_window,
        summary: text,
    })
}

/// An anomaly's drivers for a sentence: `team growth (99.8%), feature email-drafts (99.8%)`.
pub fn drivers(contributors: &[Contributor]) -> String {
    contributors
        .iter()
        .take(3)
        .map(|c| {
            format!(
                "{} {} ({})",
                c.dimension,
                c.key,
                format::share(c.share_of_excess)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
