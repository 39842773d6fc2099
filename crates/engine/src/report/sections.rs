//! The sections of an answer about a tenant's usage, in the order it reads. Each function writes
//! one section's Markdown, adds its sentences to `findings` and sets its own `report` keys; a
//! section whose findings are absent writes nothing (or says there is nothing, where a reader
//! expects the section). Figures are formatted with `analytics::format` only.
//! No section may compute a figure the findings do not hold.

use super::words::window;
use super::{Report, SHOWN_ANOMALIES, ranked_anomalies};
use agentwire_analytics::capacity::{Capacity, LimitCheck};
use agentwire_analytics::format;
use agentwire_analytics::{Breakdown, Summary};
use serde_json::{Value, json};
use std::fmt::Write;

/// The title: what the question was read as, over which slice of the data. Keys: `question`,
/// `intent`, `scope`.
pub(super) fn heading(r: &mut Report<'_>) {
    let intent = r.findings.classification.as_ref().map(|c| c.intent);
    let title = match (&r.findings.series, intent) {
        (Some(s), _) if s.billing.is_some() => format!("Cloud billing: {}", file_name(r)),
        (Some(s), _) => format!("Series {}: {}", s.name, file_name(r)),
        (None, Some(intent)) => format!("AI spend: {} ({})", intent.label(), r.scope_text),
        (None, None) => format!("AI spend report ({})", r.scope_text),
    };
    let _ = writeln!(r, "## {title}\n");
    r.set("question", json!(r.input.user_request));
    r.set("intent", json!(intent));
    r.set("scope", json!(r.input.scope));
}

fn file_name(r: &Report<'_>) -> String {
    r.input
        .file
        .clone()
        .unwrap_or_else(|| "the file".to_owned())
}

/// Requests and tokens, the daily pattern, and the spend by model, team and feature (the total
/// and its change are in the summary). Keys: `summary` (when the usage was summarised), `daily`.
pub(super) fn spend(r: &mut Report<'_>) {
    let daily = r.findings.daily.as_ref();
    r.set("daily", json!(daily.map(|d| &d.days)));
    let Some(s) = r.findings.summary.as_ref() else {
        return;
    };
    // The sentence for `findings` keeps the totals the summary line states.
    let mut total = format!(
        "Total spend: {} over {} requests ({} input / {} output tokens) in {}",
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
            total,
            ", {} vs the previous period ({})",
            format::pct_change(change),
            format::usd(trend.previous_cost_usd)
        );
    }
    let _ = write!(
        total,
        ". Run-rate: {} per month.",
        format::usd(s.monthly_cost_usd)
    );
    r.finding(total);
    let _ = writeln!(r, "### Spend\n");
    let _ = write!(
        r,
        "{} requests ({} input / {} output tokens).",
        format::count(s.requests),
        format::tokens(s.input_tokens),
        format::tokens(s.output_tokens),
    );
    let mut daily_finding = None;
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
        let _ = write!(r, " {line}");
        daily_finding = Some(line);
    }
    let _ = writeln!(r, "\n");
    for (title, rows) in [
        ("Model", &s.by_model),
        ("Team", &s.by_team),
        ("Feature", &s.by_feature),
    ] {
        if rows.is_empty() {
            continue;
        }
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
    if let Some(line) = daily_finding {
        r.finding(line);
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

/// Rows of a breakdown the answer and the `report` show; the rest are counted.
const TABLE_ROWS: usize = 8;

fn change(row: &Breakdown) -> String {
    row.change_pct
        .map(format::pct_change)
        .unwrap_or_else(|| "new".to_owned())
}

fn breakdown_table(r: &mut Report<'_>, title: &str, rows: &[Breakdown]) {
    let _ = writeln!(
        r,
        "| {title} | Spend | Share | Requests | vs previous |\n|---|---:|---:|---:|---:|"
    );
    for row in rows.iter().take(TABLE_ROWS) {
        let _ = writeln!(
            r,
            "| {} | {} | {} | {} | {} |",
            row.key,
            format::usd(row.cost_usd),
            format::share(row.share),
            format::count(row.requests),
            change(row)
        );
    }
    if rows.len() > TABLE_ROWS {
        let _ = writeln!(r, "| _{} more_ | | | | |", rows.len() - TABLE_ROWS);
    }
    let _ = writeln!(r);
}

fn summary_json(s: &Summary) -> Value {
    let top = |rows: &[Breakdown]| -> Value {
        rows.iter()
            .take(TABLE_ROWS)
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

/// The costliest anomalous windows (at most [`SHOWN_ANOMALIES`]) in one table with their
/// drivers, and how many lesser ones were left out. Key: `anomalies` (every one the detector
/// reported, when anomalies were looked for). With none, the summary says so and this section
/// is left out.
pub(super) fn anomalies(r: &mut Report<'_>) {
    let Some(anomalies) = r.findings.anomalies.as_ref() else {
        return;
    };
    r.set("anomalies", json!(anomalies));
    let ranked = ranked_anomalies(anomalies);
    if ranked.is_empty() {
        return;
    }
    let _ = writeln!(
        r,
        "### Anomalies\n\n| Day | Spent | Expected | Above baseline | Drivers (share of the excess) |\n|---|---:|---:|---:|---|"
    );
    let mut unconfirmed = Vec::new();
    for a in ranked.iter().take(SHOWN_ANOMALIES) {
        let when = window(a.start, a.end);
        let drivers = a
            .contributors
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c.dimension,
                    c.key,
                    format::share(c.share_of_excess)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            r,
            "| {when}{} | {} | {} | {} | {drivers} |",
            if a.confirmed_by_ewma { "" } else { " *" },
            format::usd(a.actual),
            format::usd(a.expected),
            format::usd(a.impact_usd),
        );
        if !a.confirmed_by_ewma {
            unconfirmed.push(when.clone());
        }
        r.finding(format!(
            "{when}: {} spent vs {} expected ({} above baseline{}). Drivers: {}.",
            format::usd(a.actual),
            format::usd(a.expected),
            format::usd(a.impact_usd),
            if a.confirmed_by_ewma {
                ", confirmed by the EWMA"
            } else {
                "; the EWMA does not confirm it, so it may be one noisy day"
            },
            a.contributors
                .iter()
                .map(|c| format!(
                    "{} {} ({} of the excess)",
                    c.dimension,
                    c.key,
                    format::share(c.share_of_excess)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let _ = writeln!(r);
    if !unconfirmed.is_empty() {
        let _ = writeln!(
            r,
            "_* The EWMA does not confirm it: it may be one noisy day._\n"
        );
    }
    if ranked.len() > SHOWN_ANOMALIES {
        let _ = writeln!(
            r,
            "_{} lesser anomalous window(s) left out._\n",
            ranked.len() - SHOWN_ANOMALIES
        );
    }
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

/// Tokens and requests per minute, the forecast's backtest and the limits. Key: `capacity`.
pub(super) fn capacity(r: &mut Report<'_>) {
    let capacity = r.findings.capacity.as_ref();
    if let Some(c) = capacity {
        let t = &c.tokens_per_minute;
        let q = &c.requests_per_minute;
        let round = |v: f64| format::count(v.round() as u64);
        let mut text = format!(
            "Peak rates: {} tokens/min (p50 {}, p95 {}, p99 {}) and {} requests/min (p50 {}, p95 {}, p99 {}).",
            round(t.max),
            round(t.p50),
            round(t.p95),
            round(t.p99),
            round(q.max),
            round(q.p50),
            round(q.p95),
            round(q.p99),
        );
        if let Some(b) = c.forecast.as_ref().and_then(|f| f.backtest.as_ref()) {
            let _ = write!(
                text,
                " The forecast's backtest is off by {} tokens/min against {} for seasonal-naive{}.",
                round(b.holt_winters_mae),
                round(b.seasonal_naive_mae),
                if b.beats_seasonal_naive {
                    ""
                } else {
                    ", so repeating the last season is the better guide"
                }
            );
        }
        if c.limits.is_empty() {
            text.push_str(" No rate limit given.");
        }
        for l in &c.limits {
            let _ = write!(text, " {}.", capitalised(&limit_text(l)));
        }
        let _ = writeln!(r, "### Capacity\n\n{text}\n");
        if c.notes.is_empty() {
            let _ = writeln!(r, "_Resolution: {}._\n", c.resolution);
        }
        for note in &c.notes {
            let _ = writeln!(r, "_{}._\n", note.trim_end_matches('.'));
        }
        r.finding(format!("Capacity: {}.", capacity_summary(c)));
    }
    r.set("capacity", capacity.map_or(Value::Null, capacity_json));
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One limit: the traffic it covers, its peak utilisation and when it is reached.
pub(super) fn limit_text(l: &LimitCheck) -> String {
    format!(
        "the {} limit: peak at {:.0}% of it, {}",
        if l.limit.model == "*" {
            "all-traffic"
        } else {
            l.limit.model.as_str()
        },
        l.peak_utilisation * 100.0,
        match l.hours_until_limit {
            _ if l.minutes_over_limit > 0 => "already exceeded".to_owned(),
            Some(h) => format!("reached in {:.0} h ({})", h, l.basis),
            None => l.basis.clone(),
        }
    )
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
        Some(l) => {
            text.push_str("; ");
            text.push_str(&limit_text(l));
        }
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

/// Each recommendation once: its monthly saving, effort and risk and the evidence behind the
/// saving; what every recommendation assumes (all of it, for a single one) is said once, after
/// them, as a short list. Each one's steps and own assumptions stay in the `report`, where the web
/// page shows them one click away beside the recommendation: written out here they would double
/// the answer. Keys: `recommendations`,
/// `total_monthly_savings_usd`.
pub(super) fn recommendations(r: &mut Report<'_>) {
    let recs = r.findings.recommendations.as_ref();
    let total_savings = r.total_savings();
    if let Some(recs) = recs
        && !recs.is_empty()
    {
        let _ = writeln!(r, "### Recommendations\n");
        let shared: Vec<&String> = recs[0]
            .assumptions
            .iter()
            .filter(|a| recs.iter().all(|rec| rec.assumptions.contains(a)))
            .collect();
        for (i, rec) in recs.iter().enumerate() {
            let _ = writeln!(
                r,
                "{}. **{}** saves **{} per month** (effort {}, risk {}). {}",
                i + 1,
                rec.title,
                format::usd(rec.monthly_savings_usd),
                rec.effort,
                rec.risk,
                rec.evidence
            );
        }
        let _ = writeln!(r);
        let lead = if recs.len() == 1 {
            "It assumes"
        } else {
            "Every saving assumes"
        };
        match shared.as_slice() {
            [] => {}
            [one] => {
                let _ = writeln!(r, "_{lead}:_ {one}\n");
            }
            many => {
                let _ = writeln!(r, "_{lead}:_\n");
                for assumption in many {
                    let _ = writeln!(r, "- {assumption}");
                }
                let _ = writeln!(r);
            }
        }
        r.finding(format!(
            "Recommendations save {} per month in total.",
            format::usd(total_savings)
        ));
    }
    r.set("recommendations", json!(recs));
    r.set("total_monthly_savings_usd", json!(total_savings));
}

/// The order to act in, with owners. A step that carries out a recommendation refers to it by
/// number; only the plan's own steps (containing an anomaly) say what to do. Key:
/// `implementation_plan`.
pub(super) fn implementation_plan(r: &mut Report<'_>) {
    let plan = r.findings.implementation_plan.as_ref();
    if let Some(plan) = plan
        && !plan.is_empty()
    {
        let _ = writeln!(r, "### Implementation plan\n");
        for step in plan {
            match step.recommendation {
                Some(number) => {
                    let _ = writeln!(
                        r,
                        "{}. Recommendation {number} (owner {}).",
                        step.order, step.owner
                    );
                }
                None => {
                    let _ = writeln!(
                        r,
                        "{}. **{}** (owner {}, effort {}, risk {}): {}",
                        step.order,
                        step.title,
                        step.owner,
                        step.effort,
                        step.risk,
                        step.steps.join(" ")
                    );
                }
            }
        }
        let _ = writeln!(r);
    }
    r.set("implementation_plan", json!(plan));
}

/// What triage found, when it is all the run found (triage addressed directly): how the question
/// was read and what the scope holds.
pub(super) fn classification(r: &mut Report<'_>) {
    let f = r.findings;
    let Some(c) = f.classification.as_ref() else {
        return;
    };
    if f.summary.is_some() {
        return;
    }
    let named = [
        ("models", &c.entities.models),
        ("teams", &c.entities.teams),
        ("features", &c.entities.features),
    ]
    .iter()
    .filter(|(_, values)| !values.is_empty())
    .map(|(label, values)| format!("{label} {}", values.join(", ")))
    .collect::<Vec<_>>();
    let scope_text = r.scope_text.clone();
    let _ = writeln!(
        r,
        "Read as **{}** over {}: {} records, {} requests and **{}** of spend in scope. \
         Named in the question: {}. A full review asks {}.\n",
        c.intent.label(),
        scope_text,
        format::count(c.scope_records),
        format::count(c.scope_requests),
        format::usd(c.scope_cost_usd),
        if named.is_empty() {
            "nothing from the tenant's data".to_owned()
        } else {
            named.join("; ")
        },
        c.agents.join(" → ")
    );
}

/// Where the figures come from: the tenant's records, the demo data set or a file. Key:
/// `data_coverage` (with the tools that ran, which the run's timeline shows too).
pub(super) fn data_coverage(r: &mut Report<'_>) {
    let input = r.input;
    let summary = r.findings.summary.as_ref();
    let (value, text) = if let Some(file) = &input.file {
        let text = match summary {
            Some(s) => format!(
                "{} records from {} to {} in the file {file}, analysed offline.",
                format::count(s.records),
                date(s.start),
                date(s.end),
            ),
            None => format!("The file {file}, analysed offline."),
        };
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
                "{} records from {} to {} in {source}, at the embedded list prices.",
                format::count(s.records),
                date(s.start),
                date(s.end),
            ),
            None => format!("Based on {source}."),
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

fn date(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.date_naive().to_string()).unwrap_or_default()
}
