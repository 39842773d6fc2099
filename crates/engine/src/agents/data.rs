//! The data agent (UnifiedDataAgent): what happened. Spend and tokens by model, team, feature and
//! day, the trend against the previous period, and the days that depart from the baseline.
//! It states only figures its tools returned, and must not recommend (that is the optimization
//! agent's job).

use crate::context::RunContext;
use crate::stop::RunResult;
use crate::tools::{detect_anomalies, forecast_capacity, query_usage, usage_summary};
use agentwire_analytics::Breakdown;
use agentwire_analytics::format;

const NAME: &str = "data";

pub(super) async fn work(ctx: &mut RunContext) -> RunResult<String> {
    let scope = ctx.scope.clone();

    let s = {
        let scope = scope.clone();
        ctx.tool(NAME, "usage_summary", scope.args(), move |data| {
            usage_summary::compute(data, &scope)
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
        ctx.tool(NAME, "query_usage", args, move |data| {
            query_usage::compute(data, &scope)
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
        ctx.tool(NAME, "detect_anomalies", scope.args(), move |data| {
            detect_anomalies::compute(data, &scope)
        })
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
        ctx.tool(NAME, "forecast_capacity", args, move |data| {
            forecast_capacity::compute(data, &scope, &limits)
        })
        .await?
    };
    ctx.thinking(NAME, capacity_message(&capacity)).await?;
    ctx.findings.capacity = Some(capacity);
    let summary = format!(
        "{} spent in {}; {} anomal{}",
        format::usd(total),
        scope.describe(),
        anomalies.len(),
        if anomalies.len() == 1 { "y" } else { "ies" }
    );
    Ok(summary)
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
