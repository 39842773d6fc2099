//! The sections of an answer about a tenant's usage, in the order it reads. Each function writes
//! one section's Markdown, adds its sentences to `findings` and sets its own `report` keys; a
//! section whose findings are absent writes nothing (or says there is nothing, where a reader
//! expects the section). Figures are formatted with `analytics::format` only.
//! No section may compute a figure the findings do not hold.

use super::{Report, strip_bold};
use agentwire_analytics::capacity::Capacity;
use agentwire_analytics::format;
use agentwire_analytics::{Breakdown, Summary};
use serde_json::{Value, json};
use std::fmt::Write;

/// The title, and how the question was read. Keys: `question`, `intent`, `scope`.
pub(super) fn heading(r: &mut Report<'_>) {
    let timeframe = r
        .input
        .scope
        .as_ref()
        .map(|s| s.timeframe.clone())
        .unwrap_or_default();
    let period = if timeframe == "all" || timeframe.is_empty() {
        "all the data".to_owned()
    } else {
        format!("last {timeframe}")
    };
    let intent = r.findings.classification.as_ref().map(|c| c.intent);
    let title = match intent {
        Some(intent) => format!("AI spend: {} ({period})", intent.label()),
        None => format!("AI spend report ({period})"),
    };
    let _ = writeln!(r, "## {title}");
    if let Some(intent) = intent {
        let scope_text = r.scope_text.clone();
        let _ = writeln!(
            r,
            "_Question read as {} over {scope_text}._\n",
            intent.label()
        );
    }
    r.set("question", json!(r.input.user_request));
    r.set("intent", json!(intent));
    r.set("scope", json!(r.input.scope));
}

/// Total spend, its trend and run-rate, and the spend by model, team and feature. Key:
/// `summary` (when the usage was summarised).
pub(super) fn spend(r: &mut Report<'_>) {
    let Some(s) = r.findings.summary.as_ref() else {
        return;
    };
    let mut line = format!(
        "**Total spend: {}** over {} requests ({} input / {} output tokens) in {}",
        format::usd(s.total_cost_usd),
        format::count(s.requests),
        format::tokens(s.input_tokens),
        format::tokens(s.output_tokens),
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
        ". Run-rate: **{} per month**.",
        format::usd(s.monthly_cost_usd)
    );
    let _ = writeln!(r, "{line}\n");
    r.finding(strip_bold(&line));
    for (title, rows) in [
        ("Model", &s.by_model),
        ("Team", &s.by_team),
        ("Feature", &s.by_feature),
    ] {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(r, "### Spend by {}\n", title.to_lowercase());
        breakdown_table(r, title, rows);
        if let Some(top) = rows.first() {
            r.finding(format!(
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
            r,
            "_{} record(s) use models without a list price ({}) and count only their billed cost._\n",
            format::count(s.unpriced_records),
            s.unpriced_models.join(", ")
        );
    }
    r.set("summary", summary_json(s));
}

fn breakdown_table(r: &mut Report<'_>, title: &str, rows: &[Breakdown]) {
    let _ = writeln!(
        r,
        "| {title} | Spend | Share | Requests | vs previous |\n|---|---:|---:|---:|---:|"
    );
    for row in rows.iter().take(8) {
        let _ = writeln!(
            r,
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
        let _ = writeln!(r, "| _{} more_ | | | | |", rows.len() - 8);
    }
    let _ = writeln!(r);
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

/// The daily average, weekday and weekend averages and the peak day. Key: `daily`.
pub(super) fn daily(r: &mut Report<'_>) {
    let daily = r.findings.daily.as_ref();
    if let Some(daily) = daily
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
        let _ = writeln!(r, "{line}\n");
        r.finding(line);
    }
    r.set("daily", json!(daily.map(|d| &d.days)));
}

/// The days that departed from the seasonal baseline, with their drivers. Key: `anomalies`
/// (when anomalies were looked for).
pub(super) fn anomalies(r: &mut Report<'_>) {
    let Some(anomalies) = r.findings.anomalies.as_ref() else {
        return;
    };
    let _ = writeln!(r, "### Anomalies\n");
    if anomalies.is_empty() {
        let scope_text = r.scope_text.clone();
        let _ = writeln!(
            r,
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
        let _ = writeln!(r, "- {line}");
        r.finding(strip_bold(&line));
    }
    if !anomalies.is_empty() {
        let _ = writeln!(r);
    }
    r.set("anomalies", json!(anomalies));
}

/// Billed cost against the list price, when records carry both and they differ by over 1 %.
pub(super) fn billed_against_list(r: &mut Report<'_>) {
    let Some(s) = r.findings.summary.as_ref() else {
        return;
    };
    if s.billed_records_with_list_price == 0 {
        return;
    }
    let diff = s.billed_cost_with_list_price_usd - s.billed_at_list_usd;
    if diff.abs() <= 0.01 * s.billed_at_list_usd.abs().max(0.01) {
        return;
    }
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
    let _ = writeln!(r, "{line}\n");
    r.finding(line);
}

/// Tokens and requests per minute, the limits and the forecast. Key: `capacity`.
pub(super) fn capacity(r: &mut Report<'_>) {
    let capacity = r.findings.capacity.as_ref();
    if let Some(c) = capacity {
        let _ = writeln!(r, "### Capacity\n");
        let _ = writeln!(
            r,
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
        let line = format!("Capacity: {}.", capacity_summary(c));
        let _ = writeln!(r, "{line}\n");
        for note in &c.notes {
            let _ = writeln!(r, "_{note}_\n");
        }
        r.finding(line);
    }
    r.set("capacity", capacity.map_or(Value::Null, capacity_json));
}

/// Capacity in one line: the percentiles, the forecast's backtest and the nearest limit (also the
/// `forecast_capacity` tool's summary).
pub(crate) fn capacity_summary(c: &Capacity) -> String {
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

/// The capacity section of the report: percentiles, limits and the forecast's model and
/// backtest (the hourly series itself stays in the tool's output).
fn capacity_json(c: &Capacity) -> Value {
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

/// Each lever with its monthly saving, evidence, steps and assumptions, and their total. Keys:
/// `recommendations`, `total_monthly_savings_usd`.
pub(super) fn recommendations(r: &mut Report<'_>) {
    let recs = r.findings.recommendations.as_ref();
    let mut total_savings = 0.0;
    if let Some(recs) = recs {
        let _ = writeln!(r, "### Recommendations\n");
        if recs.is_empty() {
            let scope_text = r.scope_text.clone();
            let _ = writeln!(
                r,
                "No lever with a quantifiable saving was found in {scope_text}.\n"
            );
        } else {
            let _ = writeln!(
                r,
                "| # | Recommendation | Monthly savings | Effort | Risk |\n|---|---|---:|---|---|"
            );
            for (i, rec) in recs.iter().enumerate() {
                let _ = writeln!(
                    r,
                    "| {} | {} | {} | {} | {} |",
                    i + 1,
                    rec.title,
                    format::usd(rec.monthly_savings_usd),
                    rec.effort,
                    rec.risk
                );
            }
            let _ = writeln!(r);
            for (i, rec) in recs.iter().enumerate() {
                let _ = writeln!(
                    r,
                    "{}. **{}** saves **{} per month**. {}",
                    i + 1,
                    rec.title,
                    format::usd(rec.monthly_savings_usd),
                    rec.evidence
                );
                for step in &rec.steps {
                    let _ = writeln!(r, "   - {step}");
                }
                if !rec.assumptions.is_empty() {
                    let _ = writeln!(r, "   - _Assumes: {}_", rec.assumptions.join("; "));
                }
            }
            total_savings = recs.iter().map(|rec| rec.monthly_savings_usd).sum();
            let _ = writeln!(
                r,
                "\nTogether: **{} per month**.\n",
                format::usd(total_savings)
            );
            r.finding(format!(
                "Recommendations save {} per month in total.",
                format::usd(total_savings)
            ));
        }
    }
    r.set("recommendations", json!(recs));
    r.set("total_monthly_savings_usd", json!(total_savings));
}

/// The ordered steps with owner, effort, risk and saving. Key: `implementation_plan`.
pub(super) fn implementation_plan(r: &mut Report<'_>) {
    let plan = r.findings.implementation_plan.as_ref();
    if let Some(plan) = plan
        && !plan.is_empty()
    {
        let _ = writeln!(r, "### Implementation plan\n");
        for step in plan {
            let _ = writeln!(
                r,
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
                let _ = writeln!(r, "   - {action}");
            }
        }
        let _ = writeln!(r);
    }
    r.set("implementation_plan", json!(plan));
}

/// What triage found, when it is all the run found (triage addressed directly).
pub(super) fn classification(r: &mut Report<'_>) {
    let f = r.findings;
    let Some(c) = f.classification.as_ref() else {
        return;
    };
    if f.summary.is_some() {
        return;
    }
    let _ = writeln!(
        r,
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

/// Where the figures come from: the tenant's records, the demo data set or a file, and the tools
/// that ran. Key: `data_coverage`.
pub(super) fn data_coverage(r: &mut Report<'_>) {
    let input = r.input;
    let summary = r.findings.summary.as_ref();
    let tools = input.findings.tools_used.join(", ");
    let (value, text) = if let Some(file) = &input.file {
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
        (value, text)
    } else {
        let source = if input.demo_data {
            "the generated demo data set (tenant has no data of its own)"
        } else {
            "the tenant's ingested usage records"
        };
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
    };
    let _ = writeln!(r, "### Data coverage\n\n{text}");
    r.set("data_coverage", value);
}
