//! The data agent (UnifiedDataAgent): what happened. For a lookup, the one fact asked
//! (`run_query`); for a review, spend and tokens by model, team, feature and day, the trend
//! against the previous period, the days that depart from the baseline and capacity, and for a
//! structured task the metrics it names and its growth projection. It states only figures its
//! tools returned, and must not recommend (that is the optimization agent's job).

use super::answers;
use crate::context::RunContext;
use crate::plan::Answer;
use crate::stop::RunResult;
use crate::tools::{
    detect_anomalies, forecast_capacity, project_growth, query_usage, run_query, usage_summary,
};
use agentwire_analytics::Breakdown;
use agentwire_analytics::format;
use agentwire_analytics::query::{Metric, Period, QuerySpec, Shape, TimeGrain};

const NAME: &str = "data";

pub(super) async fn work(ctx: &mut RunContext) -> RunResult<String> {
    match ctx.plan.answer() {
        Answer::Lookup => answers::lookup(ctx, NAME).await,
        Answer::WhatIf => answers::what_if(ctx, NAME).await,
        Answer::Reply | Answer::Review => review(ctx).await,
    }
}

async fn review(ctx: &mut RunContext) -> RunResult<String> {
    let scope = ctx.scope.clone();

    let s = {
        let scope = scope.clone();
        ctx.tool(NAME, "usage_summary", scope.args(), move |data, cancel| {
            usage_summary::compute(data, &scope, cancel)
        })
        .await?
    };
    let mut message = format!(
        "Spend over {} was {} across {} requests",
        scope.describe(),
        format::usd(s.total_cost_usd),
        format::count(s.requests)
    );
    if let Some(trend) = &s.trend
        && let Some(change) = trend.change_pct
    {
        message.push_str(&format!(
            ", {} vs the {} before ({})",
            format::pct_change(change),
            scope.timeframe,
            format::usd(trend.previous_cost_usd)
        ));
    }
    message.push('.');
    if let Some(top) = s.by_model.first() {
        message.push_str(&format!(
            " {} leads at {} ({}).",
            top.key,
            format::usd(top.cost_usd),
            format::share(top.share)
        ));
    }
    if let Some(team) = s.by_team.first() {
        message.push_str(&format!(
            " Team {} spends most: {}.",
            team.key,
            format::usd(team.cost_usd)
        ));
    }
    if let Some(mover) = biggest_rise(&[&s.by_team, &s.by_feature, &s.by_model]) {
        message.push_str(&format!(
            " The largest rise is {}: +{} ({}).",
            mover.key,
            format::usd(mover.cost_usd - mover.previous_cost_usd),
            mover.change_pct.map(format::pct_change).unwrap_or_default()
        ));
    }
    ctx.thinking(NAME, message).await?;
    let total = s.total_cost_usd;
    ctx.findings.summary = Some(s);

    let daily = {
        let scope = scope.clone();
        let args = serde_json::json!({ "group_by": "day", "timeframe": scope.timeframe, "team": scope.team, "model": scope.model });
        ctx.tool(NAME, "query_usage", args, move |data, cancel| {
            query_usage::compute(data, &scope, cancel)
        })
        .await?
    };
    if let Some(peak) = &daily.peak {
        let pattern = if daily.weekend_average_cost_usd > 0.0 {
            format!(
                "weekdays average {} and weekends {} ({:.1}x)",
                format::usd(daily.weekday_average_cost_usd),
                format::usd(daily.weekend_average_cost_usd),
                daily.weekday_average_cost_usd / daily.weekend_average_cost_usd
            )
        } else {
            format!(
                "weekdays average {}",
                format::usd(daily.weekday_average_cost_usd)
            )
        };
        ctx.thinking(
            NAME,
            format!(
                "Daily spend averages {}; {pattern}. The most expensive day was {} at {}.",
                format::usd(daily.average_daily_cost_usd),
                peak.date,
                format::usd(peak.cost_usd)
            ),
        )
        .await?;
    }
    ctx.findings.daily = Some(daily);

    let anomalies = {
        let scope = scope.clone();
        ctx.tool(
            NAME,
            "detect_anomalies",
            scope.args(),
            move |data, cancel| detect_anomalies::compute(data, &scope, cancel),
        )
        .await?
    };
    let message = match anomalies.first() {
        None => format!(
            "No day in {} departs from the weekly seasonal baseline.",
            scope.describe()
        ),
        Some(a) => {
            let drivers = detect_anomalies::drivers(&a.contributors);
            format!(
                "{} stands out: {} spent against {} expected, {} above the baseline. It is driven by {drivers}.{}",
                a.start,
                format::usd(a.actual),
                format::usd(a.expected),
                format::usd(a.impact_usd),
                if anomalies.len() > 1 {
                    format!(
                        " {} more anomalous window(s) follow in the report.",
                        anomalies.len() - 1
                    )
                } else {
                    String::new()
                }
            )
        }
    };
    ctx.thinking(NAME, message).await?;
    ctx.findings.anomalies = Some(anomalies.clone());

    let limits = forecast_capacity::limits_from_params(ctx.input.params.extra.get("rate_limits"))?;
    let capacity = {
        let scope = scope.clone();
        let mut args = scope.args();
        if let Some(object) = args.as_object_mut() {
            object.insert(
                "rate_limits".into(),
                serde_json::to_value(&limits).unwrap_or_default(),
            );
        }
        ctx.tool(NAME, "forecast_capacity", args, move |data, cancel| {
            forecast_capacity::compute(data, &scope, &limits, cancel)
        })
        .await?
    };
    ctx.thinking(NAME, capacity_message(&capacity)).await?;
    let peak = capacity.tokens_per_minute.max;
    ctx.findings.capacity = Some(capacity);
    task_figures(ctx, peak).await?;
    let summary = format!(
        "{} spent in {}; {} anomal{}",
        format::usd(total),
        scope.describe(),
        anomalies.len(),
        if anomalies.len() == 1 { "y" } else { "ies" }
    );
    Ok(summary)
}

/// What a structured task's fields ask for beyond the review: each metric it names, by day over
/// its window, and the projection over its planning horizon at its growth.
async fn task_figures(ctx: &mut RunContext, peak_tokens_per_minute: f64) -> RunResult {
    let Some(task) = ctx.plan.question.task.clone() else {
        return Ok(());
    };
    let scope = ctx.scope.clone();
    let period = scope.period.unwrap_or(ctx.plan.question.query.spec.period);
    for metric in task.metrics.iter().filter(|m| **m != Metric::Spend).take(3) {
        let spec = QuerySpec {
            metric: *metric,
            conditions: ctx.plan.question.query.spec.conditions.clone(),
            period,
            shape: Shape::Trend {
                every: TimeGrain::Day,
            },
            share_of: Vec::new(),
        };
        let args = serde_json::to_value(&spec).unwrap_or_default();
        let found = ctx
            .tool(NAME, "run_query", args, move |data, cancel| {
                run_query::compute(data, &spec, cancel)
            })
            .await?;
        ctx.thinking(NAME, series_message(&found.spec, &found.result, period))
            .await?;
        ctx.findings.metric_series.push(found);
    }
    if task.horizon_months.is_some() || task.growth.is_some() {
        let horizon = task.horizon_months.unwrap_or(12);
        let growth = task.growth.unwrap_or(1.0);
        let args = serde_json::json!({
            "horizon_months": horizon,
            "growth": growth,
            "peak_tokens_per_minute": peak_tokens_per_minute,
            "scope": scope.args(),
        });
        let projection = ctx
            .tool(NAME, "project_growth", args, move |data, cancel| {
                project_growth::compute(
                    data,
                    &scope,
                    horizon,
                    growth,
                    peak_tokens_per_minute,
                    cancel,
                )
            })
            .await?;
        let end = projection.months.last();
        ctx.thinking(
            NAME,
            format!(
                "At {growth}x over {horizon} month(s), monthly spend goes from {} to {} and the busiest minute from {} to {} tokens.",
                format::usd(projection.monthly_cost_usd),
                format::usd(end.map_or(projection.monthly_cost_usd, |m| m.cost_usd)),
                format::count(projection.peak_tokens_per_minute.round() as u64),
                format::count(
                    end.map_or(projection.peak_tokens_per_minute, |m| m.peak_tokens_per_minute)
                        .round() as u64
                )
            ),
        )
        .await?;
        ctx.findings.growth = Some(projection);
    }
    Ok(())
}

/// A metric's daily series over the window in one step: its overall value, highest and lowest day.
fn series_message(
    spec: &QuerySpec,
    r: &agentwire_analytics::query::QueryResult,
    period: Period,
) -> String {
    let days: Vec<(&str, f64)> = r
        .rows
        .iter()
        .filter_map(|x| x.value.map(|v| (x.key.as_str(), v)))
        .collect();
    let hi = days.iter().max_by(|a, b| a.1.total_cmp(&b.1));
    let lo = days.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    let fig = |v: f64| crate::report::figure(spec.metric, v);
    match (r.value, hi, lo) {
        (Some(v), Some(hi), Some(lo)) => format!(
            "{} over {period}: {} overall; highest {} on {}, lowest {} on {}.",
            spec.metric.label(),
            fig(v),
            fig(hi.1),
            hi.0,
            fig(lo.1),
            lo.0
        ),
        _ => format!("{} over {period}: nothing recorded.", spec.metric.label()),
    }
}

/// What the capacity figures say, in one step: the peak rates, the forecast and any limit.
fn capacity_message(c: &agentwire_analytics::capacity::Capacity) -> String {
    let t = &c.tokens_per_minute;
    let mut text = format!(
        "Traffic runs at {} tokens/min at the median, {} at p99 and {} at the busiest minute ({} requests/min at p99; {}).",
        format::count(t.p50.round() as u64),
        format::count(t.p99.round() as u64),
        format::count(t.max.round() as u64),
        format::count(c.requests_per_minute.p99.round() as u64),
        c.resolution
    );
    if let Some(f) = &c.forecast
        && let Some(b) = &f.backtest
    {
        text.push_str(&format!(
            " A Holt-Winters forecast with a {} season, tested on the last {} hours, is off by {} tokens/min on average against {} for repeating the previous season{}.",
            f.season,
            b.holdout,
            format::count(b.holt_winters_mae.round() as u64),
            format::count(b.seasonal_naive_mae.round() as u64),
            if b.beats_seasonal_naive { "" } else { " (so the naive forecast is the better guide here)" }
        ));
    }
    for l in &c.limits {
        text.push_str(&format!(
            " Limit {} ({} tokens/min): peak at {:.0}% of it, {}.",
            l.limit.model,
            l.limit
                .tokens_per_minute
                .map(|v| format::count(v.round() as u64))
                .unwrap_or_else(|| "-".to_owned()),
            l.peak_utilisation * 100.0,
            match (l.hours_until_limit, l.limit_reached_at) {
                _ if l.minutes_over_limit > 0 =>
                    format!("exceeded in {} minute(s) already", l.minutes_over_limit),
                (Some(h), Some(at)) => format!(
                    "reached in about {:.0} hours ({}, by {})",
                    h,
                    at.date_naive(),
                    l.basis
                ),
                _ => l.basis.clone(),
            }
        ));
    }
    text
}

/// The breakdown row with the largest dollar increase over the previous period, if any rose.
fn biggest_rise<'a>(groups: &[&'a Vec<Breakdown>]) -> Option<&'a Breakdown> {
    groups
        .iter()
        .flat_map(|rows| rows.iter())
        .filter(|row| row.previous_cost_usd > 0.0 && row.cost_usd > row.previous_cost_usd)
        .max_by(|a, b| {
            (a.cost_usd - a.previous_cost_usd).total_cmp(&(b.cost_usd - b.previous_cost_usd))
        })
}
