//! A structured task's own section (issue 10): what the task asked, in the figures its fields ask
//! for — the window it named, the monthly spend it states against what the data shows, the
//! projection over its planning horizon at its growth — and the fields it sent that were kept but
//! not used. A review's answer opens with it; a short answer carries it after the fact.
//!
//! Wording only, over the run's findings; this module must not compute a figure beyond comparing
//! two that were computed.

use super::words::{change, figure, money};
use crate::findings::Findings;
use agentwire_analytics::format;
use agentwire_question::Task;
use serde_json::{Value, json};
use std::fmt::Write;

/// The task's section (Markdown ending with a blank line), its sentences for `findings`, and
/// the `task` key of the report.
pub(crate) fn section(
    task: &Task,
    findings: &Findings,
    window: &str,
) -> (String, Vec<String>, Value) {
    let mut md = String::new();
    let mut sentences = Vec::new();
    let _ = writeln!(md, "**Task:** {}.\n", task.description);
    if ["time_range", "timeframe", "period", "window", "date_range"]
        .iter()
        .any(|k| task.used.iter().any(|u| u == k))
    {
        let s = format!("Window: {window}, as the task's time range asks.");
        let _ = writeln!(md, "{s}\n");
        sentences.push(s);
    }
    let mut compared = Value::Null;
    if let Some(stated) = task.stated_monthly_spend {
        let shown = findings
            .summary
            .as_ref()
            .map(|s| (s.monthly_cost_usd, "the scope's run-rate"))
            .or_else(|| {
                findings
                    .growth
                    .as_ref()
                    .map(|g| (g.monthly_cost_usd, "the last 30 days, scaled to a month"))
            });
        let s = match shown {
            Some((actual, basis)) => {
                let diff = if stated > 0.0 {
                    format!(
                        ": {} the stated figure",
                        match change((actual - stated) / stated * 100.0).as_str() {
                            "unchanged" => "the same as".to_owned(),
                            other => format!("{other} on"),
                        }
                    )
                } else {
                    String::new()
                };
                compared = json!({ "stated_usd": stated, "data_usd": actual });
                format!(
                    "You state a monthly spend of **{}**; the data shows **{} a month** ({basis}){diff}.",
                    money(stated),
                    money(actual)
                )
            }
            None => format!(
                "You state a monthly spend of {}; this run computed no monthly figure to compare it with.",
                money(stated)
            ),
        };
        let _ = writeln!(md, "{s}\n");
        sentences.push(s.replace("**", ""));
    }
    for series in &findings.metric_series {
        let r = &series.result;
        let metric = series.spec.metric;
        let days: Vec<(&str, f64)> = r
            .rows
            .iter()
            .filter_map(|x| x.value.map(|v| (x.key.as_str(), v)))
            .collect();
        let hi = days.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        let lo = days.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        let s = match (r.value, hi, lo) {
            (Some(v), Some(hi), Some(lo)) => format!(
                "{} over the window: **{}** overall; by day from {} ({}) to {} ({}).",
                super::words::capitalise(&metric.label()),
                figure(metric, v),
                figure(metric, lo.1),
                lo.0,
                figure(metric, hi.1),
                hi.0
            ),
            _ => format!(
                "{} over the window: nothing recorded.",
                super::words::capitalise(&metric.label())
            ),
        };
        let _ = writeln!(md, "{s}\n");
        sentences.push(s.replace("**", ""));
    }
    if let Some(g) = &findings.growth {
        let end = g.months.last();
        let mut s = format!(
            "Capacity forecast over **{} months at {}x growth** ({:.1}% a month, compounding): monthly spend goes from {} today to **{}** in month {}, requests from {} to {}, and the busiest minute from {} to **{}** tokens.",
            g.horizon_months,
            g.growth,
            (g.monthly_factor - 1.0) * 100.0,
            money(g.monthly_cost_usd),
            money(end.map_or(g.monthly_cost_usd, |m| m.cost_usd)),
            g.horizon_months,
            format::count(g.monthly_requests.round() as u64),
            format::count(end.map_or(g.monthly_requests, |m| m.requests).round() as u64),
            format::count(g.peak_tokens_per_minute.round() as u64),
            format::count(
                end.map_or(g.peak_tokens_per_minute, |m| m.peak_tokens_per_minute)
                    .round() as u64
            ),
        );
        if let Some(o) = g.observed_monthly_growth {
            s.push_str(&format!(
                " For comparison, the data's own spend is {} over its last 30 days against the 30 before.",
                change((o - 1.0) * 100.0)
            ));
        }
        for l in findings.capacity.iter().flat_map(|c| &c.limits) {
            let Some(tpm) = l.limit.tokens_per_minute else {
                continue;
            };
            let month = g
                .months
                .iter()
                .find(|m| l.peak_tokens_per_minute * m.factor > tpm);
            s.push_str(&match month {
                Some(m) => format!(
                    " The {} limit of {} tokens/min is reached in month {}.",
                    l.limit.model,
                    format::count(tpm.round() as u64),
                    m.month
                ),
                None => format!(
                    " The {} limit of {} tokens/min holds through month {}.",
                    l.limit.model,
                    format::count(tpm.round() as u64),
                    g.horizon_months
                ),
            });
        }
        let _ = writeln!(md, "{s}\n");
        sentences.push(s.replace("**", ""));
        let _ = writeln!(
            md,
            "| Month | Growth | Spend | Requests | Tokens | Busiest minute (tokens) |\n|---:|---:|---:|---:|---:|---:|"
        );
        for m in &g.months {
            let _ = writeln!(
                md,
                "| {} | {:.3}x | {} | {} | {} | {} |",
                m.month,
                m.factor,
                money(m.cost_usd),
                format::count(m.requests.round() as u64),
                format::tokens(m.tokens.round() as u64),
                format::count(m.peak_tokens_per_minute.round() as u64)
            );
        }
        let _ = writeln!(
            md,
            "\n_Assumes today's mix of models and prices, and traffic from {} to {} as the base; the growth is the task's, not a forecast._\n",
            g.basis_start, g.basis_end
        );
    }
    if !task.unused.is_empty() {
        let s = format!(
            "Not used: {} (kept as parameters of the run; this analysis has no use for them).",
            task.unused.join(", ")
        );
        let _ = writeln!(md, "{s}\n");
        sentences.push(s);
    }
    let mut value = super::answer::task_json(task);
    if let Some(o) = value.as_object_mut() {
        o.insert("monthly_spend_compared".into(), compared);
        o.insert("growth_projection".into(), json!(findings.growth));
    }
    (md, sentences, value)
}
