//! The summary an answer opens with: at most five lines a busy reader can stop after. Total
//! spend and its change, the costliest anomaly with its dollar impact, capacity against its
//! limits (for a capacity question, or when a limit was given), the largest saving, and the
//! plan's first action. Each line is written only when the run found what it states.
//!
//! The details below do not repeat these lines (the total spend and the total saving are stated
//! here only). It must not compute a figure: it picks from the findings, and the total saving is
//! the report's `total_monthly_savings_usd`.

use super::words::window;
use super::{Report, ranked_anomalies};
use crate::question::Intent;
use agentwire_analytics::capacity::Capacity;
use agentwire_analytics::format;
use std::fmt::Write;

/// The most lines the summary has.
pub(super) const MAX_LINES: usize = 5;

/// Writes the summary as a short list, before every section of details.
pub(super) fn overview(r: &mut Report<'_>) {
    let lines = lines(r);
    debug_assert!(lines.len() <= MAX_LINES, "{lines:?}");
    if lines.is_empty() {
        return;
    }
    for line in lines.iter().take(MAX_LINES) {
        let _ = writeln!(r, "- {line}");
    }
    let _ = writeln!(r);
}

fn lines(r: &Report<'_>) -> Vec<String> {
    let f = r.findings;
    let mut lines = Vec::new();
    if let Some(s) = &f.summary {
        let mut line = format!(
            "**Spend:** {} in {}",
            format::usd(s.total_cost_usd),
            r.scope_text
        );
        if let Some(trend) = &s.trend
            && let Some(change) = trend.change_pct
        {
            let _ = write!(
                line,
                ", {} vs the previous period ({})",
                format::pct_change(change),
                format::usd(trend.previous_cost_usd)
            );
        }
        let _ = write!(
            line,
            "; run-rate {} per month.",
            format::usd(s.monthly_cost_usd)
        );
        lines.push(line);
    }
    if let Some(anomalies) = &f.anomalies {
        let ranked = ranked_anomalies(anomalies);
        lines.push(match ranked.first() {
            None => format!(
                "**Anomalies:** none; no day in {} departs from the seasonal baseline.",
                r.scope_text
            ),
            Some(top) => {
                let drivers = top
                    .contributors
                    .iter()
                    .take(3)
                    .map(|c| format!("{} {}", c.dimension, c.key))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut line = format!(
                    "**Top anomaly:** {}, {} above baseline",
                    window(top.start, top.end),
                    format::usd(top.impact_usd)
                );
                if !drivers.is_empty() {
                    let _ = write!(line, ", driven by {drivers}");
                }
                line.push('.');
                if ranked.len() > 1 {
                    let _ = write!(line, " {} more, each smaller.", ranked.len() - 1);
                }
                line
            }
        });
    }
    if let Some(series) = &f.series {
        lines.push(super::series::headline(series));
    }
    if let Some(c) = &f.capacity
        && (asked_about_capacity(r) || !c.limits.is_empty())
    {
        lines.push(capacity_line(c));
    }
    if let Some(recs) = &f.recommendations {
        let largest = recs
            .iter()
            .max_by(|a, b| a.monthly_savings_usd.total_cmp(&b.monthly_savings_usd));
        lines.push(match largest {
            None => format!(
                "**Savings:** no lever with a quantifiable saving in {}.",
                r.scope_text
            ),
            Some(top) if recs.len() == 1 => format!(
                "**Saving:** {} saves {} per month.",
                top.title,
                format::usd(top.monthly_savings_usd)
            ),
            Some(top) => format!(
                "**Largest saving:** {} saves {} per month. All {} recommendations: {} per month.",
                top.title,
                format::usd(top.monthly_savings_usd),
                recs.len(),
                format::usd(r.total_savings())
            ),
        });
    }
    if let Some(first) = f.implementation_plan.as_ref().and_then(|p| p.first()) {
        lines.push(match first.recommendation {
            Some(number) => format!(
                "**First action:** recommendation {number}, {} (owner {}).",
                first.title, first.owner
            ),
            None => format!("**First action:** {} (owner {}).", first.title, first.owner),
        });
    }
    lines
}

fn asked_about_capacity(r: &Report<'_>) -> bool {
    r.findings
        .classification
        .as_ref()
        .is_some_and(|c| c.intent == Intent::Capacity)
}

/// The busiest minute against the nearest limit.
fn capacity_line(c: &Capacity) -> String {
    let t = &c.tokens_per_minute;
    let mut line = format!(
        "**Capacity:** peak {} tokens/min (p99 {})",
        format::count(t.max.round() as u64),
        format::count(t.p99.round() as u64)
    );
    match c.limits.first() {
        None => line.push_str("; no rate limit given."),
        Some(l) => {
            let _ = write!(line, "; {}.", super::sections::limit_text(l));
        }
    }
    line
}
