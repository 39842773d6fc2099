//! `compose_report`: the final answer, as Markdown for people and as structured JSON for programs,
//! built only from what the run's tools computed. Nothing here invents a figure: a section without
//! findings says so instead of filling in.

use crate::agents::Findings;
use crate::context::{Step, ToolOutput};
use agentwire_analytics::format;
use agentwire_analytics::{Breakdown, Summary};
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt::Write;

/// What the report is built from.
#[derive(Debug, Clone)]
pub struct ReportInput {
    pub user_request: String,
    pub tenant_id: String,
    pub demo_data: bool,
    /// Set by the offline `agentwire analyze`: the file the records came from.
    pub file: Option<String>,
    pub findings: Findings,
}

/// The final answer in both forms.
#[derive(Debug, Clone, Serialize)]
pub struct ComposedReport {
    pub response: String,
    pub report: Value,
}

pub fn compute(input: &ReportInput) -> Step<ToolOutput<ComposedReport>> {
    let composed = compose(input);
    let sections = composed
        .response
        .lines()
        .filter(|l| l.starts_with("### "))
        .count();
    let summary = format!(
        "report with {sections} section(s), {} characters",
        composed.response.len()
    );
    Ok(ToolOutput {
        value: composed,
        summary,
    })
}

pub fn compose(input: &ReportInput) -> ComposedReport {
    let f = &input.findings;
    let mut md = String::new();
    let mut findings: Vec<String> = Vec::new();
    let scope_text = f
        .scope
        .as_ref()
        .map(|s| s.describe())
        .unwrap_or_else(|| "all data".to_owned());

    let _ = writeln!(md, "## {}", heading(f));
    if let Some(c) = &f.classification {
        let _ = writeln!(
            md,
            "_Question read as {} over {}._\n",
            c.intent.label(),
            scope_text
        );
    }

    if let Some(s) = &f.summary {
        let mut line = format!(
            "**Total spend: {}** over {} requests ({} input / {} output tokens) in {}",
            format::usd(s.total_cost_usd),
            format::count(s.requests),
            format::tokens(s.input_tokens),
            format::tokens(s.output_tokens),
            scope_text
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
            ". Run-rate: **{} per month**.",
            format::usd(s.monthly_cost_usd)
        );
        let _ = writeln!(md, "{line}\n");
        findings.push(strip_bold(&line));
        for (title, rows) in [
            ("Model", &s.by_model),
            ("Team", &s.by_team),
            ("Feature", &s.by_feature),
        ] {
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(md, "### Spend by {}\n", title.to_lowercase());
            breakdown_table(&mut md, title, rows);
            if let Some(top) = rows.first() {
                findings.push(format!(
                    "Top {}: {} at {} ({} of spend).",
                    title.to_lowercase(),
                    top.key,
                    format::usd(top.cost_usd),
                    format::share(top.share)
                ));
            }
        }
        if s.unpriced_records > 0 {
            let _ = writeln!(
                md,
                "_{} record(s) use models without a list price ({}) and count only their billed cost._\n",
                format::count(s.unpriced_records),
                s.unpriced_models.join(", ")
            );
        }
    }

    if let Some(daily) = &f.daily
        && let Some(peak) = &daily.peak
    {
        let line = format!(
            "Daily spend averaged {} (weekdays {}, weekends {}); the peak was {} on {}.",
            format::usd(daily.average_daily_cost_usd),
            format::usd(daily.weekday_average_cost_usd),
            format::usd(daily.weekend_average_cost_usd),
            format::usd(peak.cost_usd),
            peak.date
        );
        let _ = writeln!(md, "{line}\n");
        findings.push(line);
    }

    if let Some(anomalies) = &f.anomalies {
        let _ = writeln!(md, "### Anomalies\n");
        if anomalies.is_empty() {
            let _ = writeln!(
                md,
                "No day in {scope_text} departs from the seasonal baseline.\n"
            );
        }
        for a in anomalies {
            let drivers = a
                .contributors
                .iter()
                .map(|c| {
                    format!(
                        "{} **{}** ({} of the excess)",
                        c.dimension,
                        c.key,
                        format::share(c.share_of_excess)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let window = if a.start == a.end {
                a.start.to_string()
            } else {
                format!("{} to {}", a.start, a.end)
            };
            let line = format!(
                "**{window}**: {} spent vs {} expected (**{} above baseline**{}). Drivers: {drivers}.",
                format::usd(a.actual),
                format::usd(a.expected),
                format::usd(a.impact_usd),
                if a.confirmed_by_ewma {
                    ", confirmed by the EWMA"
                } else {
                    "; the EWMA does not confirm it, so it may be one noisy day"
                }
            );
            let _ = writeln!(md, "- {line}");
            findings.push(strip_bold(&line));
        }
        if !anomalies.is_empty() {
            md.push('\n');
        }
    }

    if let Some(s) = &f.summary
        && s.billed_records_with_list_price > 0
    {
        let diff = s.billed_cost_with_list_price_usd - s.billed_at_list_usd;
        if diff.abs() > 0.01 * s.billed_at_list_usd.abs().max(0.01) {
            let line = format!(
                "{} record(s) carry a billed cost of {}; at list prices they would cost {}: billed is {} {} list ({}).",
                format::count(s.billed_records_with_list_price),
                format::usd(s.billed_cost_with_list_price_usd),
                format::usd(s.billed_at_list_usd),
                format::usd(diff.abs()),
                if diff < 0.0 { "below" } else { "above" },
                if diff < 0.0 {
                    "a discount or cache the list price does not know"
                } else {
                    "check for a markup or a pricing error"
                }
            );
            let _ = writeln!(md, "{line}\n");
            findings.push(line);
        }
    }

    if let Some(c) = &f.capacity {
        let _ = writeln!(md, "### Capacity\n");
        let _ = writeln!(
            md,
            "| per minute | p50 | p95 | p99 | max |\n|---|---:|---:|---:|---:|\n| tokens | {} | {} | {} | {} |\n| requests | {} | {} | {} | {} |\n",
            format::count(c.tokens_per_minute.p50.round() as u64),
            format::count(c.tokens_per_minute.p95.round() as u64),
            format::count(c.tokens_per_minute.p99.round() as u64),
            format::count(c.tokens_per_minute.max.round() as u64),
            format::count(c.requests_per_minute.p50.round() as u64),
            format::count(c.requests_per_minute.p95.round() as u64),
            format::count(c.requests_per_minute.p99.round() as u64),
            format::count(c.requests_per_minute.max.round() as u64),
        );
        let line = format!("Capacity: {}.", crate::tools::forecast_capacity::summary(c));
        let _ = writeln!(md, "{line}\n");
        for note in &c.notes {
            let _ = writeln!(md, "_{note}_\n");
        }
        findings.push(line);
    }

    if let Some(series) = &f.series {
        crate::tools::analysis::series_markdown(series, &mut md, &mut findings);
    }

    let mut total_savings = 0.0;
    if let Some(recs) = &f.recommendations {
        let _ = writeln!(md, "### Recommendations\n");
        if recs.is_empty() {
            let _ = writeln!(
                md,
                "No lever with a quantifiable saving was found in {scope_text}.\n"
            );
        } else {
            let _ = writeln!(
                md,
                "| # | Recommendation | Monthly savings | Effort | Risk |\n|---|---|---:|---|---|"
            );
            for (i, r) in recs.iter().enumerate() {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    i + 1,
                    r.title,
                    format::usd(r.monthly_savings_usd),
                    r.effort,
                    r.risk
                );
            }
            md.push('\n');
            for (i, r) in recs.iter().enumerate() {
                let _ = writeln!(
                    md,
                    "{}. **{}** saves **{} per month**. {}",
                    i + 1,
                    r.title,
                    format::usd(r.monthly_savings_usd),
                    r.evidence
                );
                for step in &r.steps {
                    let _ = writeln!(md, "   - {step}");
                }
                if !r.assumptions.is_empty() {
                    let _ = writeln!(md, "   - _Assumes: {}_", r.assumptions.join("; "));
                }
            }
            total_savings = recs.iter().map(|r| r.monthly_savings_usd).sum();
            let _ = writeln!(
                md,
                "\nTogether: **{} per month**.\n",
                format::usd(total_savings)
            );
            findings.push(format!(
                "Recommendations save {} per month in total.",
                format::usd(total_savings)
            ));
        }
    }

    if let Some(plan) = &f.plan
        && !plan.is_empty()
    {
        let _ = writeln!(md, "### Implementation plan\n");
        for step in plan {
            let _ = writeln!(
                md,
                "{}. **{}**: owner {}, effort {}, risk {}{}",
                step.order,
                step.title,
                step.owner,
                step.effort,
                step.risk,
                if step.monthly_savings_usd > 0.0 {
                    format!(", saves {}/month", format::usd(step.monthly_savings_usd))
                } else {
                    String::new()
                }
            );
            for action in &step.steps {
                let _ = writeln!(md, "   - {action}");
            }
        }
        md.push('\n');
    }

    if let Some(c) = &f.classification
        && f.summary.is_none()
    {
        let _ = writeln!(
            md,
            "Intent: **{}**. Named in the request: models [{}], teams [{}], features [{}]. Timeframe {}: \
                 {} records, {} requests, **{}** of spend in scope. Suggested agents: {}.\n",
            c.intent.label(),
            c.entities.models.join(", "),
            c.entities.teams.join(", "),
            c.entities.features.join(", "),
            c.timeframe,
            format::count(c.scope_records),
            format::count(c.scope_requests),
            format::usd(c.scope_cost_usd),
            c.agents.join(" → ")
        );
    }

    let coverage = coverage(input, f.summary.as_ref());
    let _ = writeln!(md, "### Data coverage\n\n{}", coverage.1);

    let summary = match (&f.summary, &f.series) {
        (Some(s), _) => Some(summary_json(s)),
        (None, Some(series)) => Some(crate::tools::analysis::series_summary_json(series)),
        (None, None) => None,
    };
    let anomalies = match (&f.anomalies, &f.series) {
        (Some(a), _) => serde_json::to_value(a).ok(),
        (None, Some(series)) => serde_json::to_value(&series.anomalies.anomalies).ok(),
        (None, None) => None,
    };
    let report = json!({
        "question": input.user_request,
        "intent": f.classification.as_ref().map(|c| c.intent),
        "scope": f.scope,
        "summary": summary,
        "findings": findings,
        "daily": f.daily.as_ref().map(|d| &d.days),
        "anomalies": anomalies,
        "capacity": f.capacity.as_ref().map(capacity_json),
        "forecast": f.series.as_ref().and_then(|s| s.forecast.as_ref()),
        "recommendations": f.recommendations,
        "total_monthly_savings_usd": total_savings,
        "implementation_plan": f.plan,
        "data_coverage": coverage.0,
    });
    ComposedReport {
        response: md,
        report,
    }
}

fn heading(f: &Findings) -> String {
    let scope = f
        .scope
        .as_ref()
        .map(|s| s.timeframe.clone())
        .unwrap_or_default();
    let period = if scope == "all" || scope.is_empty() {
        "all the data".to_owned()
    } else {
        format!("last {scope}")
    };
    match f.classification.as_ref().map(|c| c.intent) {
        Some(intent) => format!("AI spend: {} ({period})", intent.label()),
        None => format!("AI spend report ({period})"),
    }
}

fn breakdown_table(md: &mut String, title: &str, rows: &[Breakdown]) {
    let _ = writeln!(
        md,
        "| {title} | Spend | Share | Requests | vs previous |\n|---|---:|---:|---:|---:|"
    );
    for row in rows.iter().take(8) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            row.key,
            format::usd(row.cost_usd),
            format::share(row.share),
            format::count(row.requests),
            row.change_pct
                .map(format::pct_change)
                .unwrap_or_else(|| "new".to_owned())
        );
    }
    if rows.len() > 8 {
        let _ = writeln!(md, "| _{} more_ | | | | |", rows.len() - 8);
    }
    md.push('\n');
}

fn summary_json(s: &Summary) -> Value {
    let top = |rows: &[Breakdown]| -> Value {
        rows.iter()
            .take(8)
            .map(|b| json!({"key": b.key, "cost_usd": b.cost_usd, "share": b.share, "requests": b.requests, "change_pct": b.change_pct}))
            .collect()
    };
    json!({
        "records": s.records,
        "requests": s.requests,
        "start": s.start,
        "end": s.end,
        "total_cost_usd": s.total_cost_usd,
        "monthly_cost_usd": s.monthly_cost_usd,
        "window_days": s.window_days,
        "billed_records": s.billed_records,
        "billed_cost_usd": s.billed_cost_usd,
        "billed_at_list_usd": s.billed_at_list_usd,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "previous_cost_usd": s.trend.as_ref().map(|t| t.previous_cost_usd),
        "change_pct": s.trend.as_ref().and_then(|t| t.change_pct),
        "by_model": top(&s.by_model),
        "by_team": top(&s.by_team),
        "by_feature": top(&s.by_feature),
        "by_provider": top(&s.by_provider),
    })
}

/// The capacity section of the report: percentiles, limits and the forecast's model and
/// backtest (the hourly series itself stays in the tool's output).
fn capacity_json(c: &agentwire_analytics::capacity::Capacity) -> Value {
    json!({
        "resolution": c.resolution,
        "start": c.start,
        "end": c.end,
        "minutes": c.minutes,
        "tokens_per_minute": c.tokens_per_minute,
        "requests_per_minute": c.requests_per_minute,
        "by_model": c.by_model,
        "limits": c.limits,
        "forecast": c.forecast.as_ref().map(|f| json!({
            "season": f.season,
            "model": f.model,
            "backtest": f.backtest,
            "next_24h_peak_tokens_per_minute": f.model.forecast(24),
        })),
        "notes": c.notes,
    })
}

fn coverage(input: &ReportInput, summary: Option<&Summary>) -> (Value, String) {
    if let Some(file) = &input.file {
        let tools = input.findings.tools_used.join(", ");
        let text = format!("Based on the file {file}, analysed offline; tools used: {tools}.");
        let value = json!({
            "source": "file",
            "file": file,
            "records": summary.map(|s| s.records),
            "start": summary.and_then(|s| s.start),
            "end": summary.and_then(|s| s.end),
            "unpriced_records": summary.map(|s| s.unpriced_records),
            "tools": input.findings.tools_used,
        });
        return (value, text);
    }
    let source = if input.demo_data {
        "the generated demo data set (tenant has no data of its own)"
    } else {
        "the tenant's ingested usage records"
    };
    let tools = input.findings.tools_used.join(", ");
    let text = match summary {
        Some(s) => format!(
            "Based on {} record(s) ({} requests) from {} to {} in {source}, priced with the embedded list-price table; tools used: {tools}.",
            format::count(s.records),
            format::count(s.requests),
            s.start
                .map(|t| t.date_naive().to_string())
                .unwrap_or_default(),
            s.end
                .map(|t| t.date_naive().to_string())
                .unwrap_or_default(),
        ),
        None => format!("Based on {source}; tools used: {tools}."),
    };
    let value = json!({
        "tenant_id": input.tenant_id,
        "source": if input.demo_data { "demo" } else { "tenant" },
        "records": summary.map(|s| s.records),
        "requests": summary.map(|s| s.requests),
        "start": summary.and_then(|s| s.start),
        "end": summary.and_then(|s| s.end),
        "unpriced_records": summary.map(|s| s.unpriced_records),
        "tools": input.findings.tools_used,
    });
    (value, text)
}

fn strip_bold(text: &str) -> String {
    text.replace("**", "")
}
