//! The offline analysis behind `agentwire analyze`: the same tools the agents call, over a file's
//! records instead of a tenant's, composed by the same `compose_report` into the same `report`.
//!
//! Usage files get the whole analysis (summary, daily series, anomalies, capacity, prices, levers,
//! plan). A metric series gets anomalies and a forecast; a FOCUS billing file gets its cost
//! drivers, daily-cost anomalies and forecast, and idle commitments. This module must not do I/O:
//! the caller reads the file.

use std::fmt::Write;
use std::sync::Arc;

use agentwire_analytics::billing::{
    BillingSummary, billing_summary, commitment_recommendations, daily_cost,
};
use agentwire_analytics::capacity::RateLimit;
use agentwire_analytics::forecast::{Backtest, HoltWinters, backtest};
use agentwire_analytics::timeseries::{Combine, Direction, Grid, SeriesAnomalies, detect_series};
use agentwire_analytics::{FocusRow, MetricSeries, PriceTable, UsageRecord};
use serde::Serialize;
use serde_json::{Value, json};

use super::compose_report::{ComposedReport, ReportInput, compose};
use super::{
    Scope, build_plan, detect_anomalies, forecast_capacity, price_lookup, query_usage,
    recommend_optimizations, usage_summary,
};
use crate::agents::Findings;
use crate::context::Stop;
use crate::tenant::TenantData;
use agentwire_analytics::format;

/// A forecast of a series, with its backtest.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesForecast {
    pub season: String,
    pub horizon: usize,
    pub step_seconds: i64,
    pub values: Vec<f64>,
    pub model: HoltWinters,
    pub backtest: Option<Backtest>,
}

/// What the offline analysis of a series or billing file found.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesFindings {
    /// "metric" or "focus".
    pub kind: String,
    pub name: String,
    pub points: usize,
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    pub end: Option<chrono::DateTime<chrono::Utc>>,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub anomalies: SeriesAnomalies,
    pub forecast: Option<SeriesForecast>,
    pub billing: Option<BillingSummary>,
}

fn stop_message(stop: Stop) -> String {
    match stop {
        Stop::Failed { message, .. } => message,
        Stop::Cancelled => "cancelled".to_owned(),
    }
}

/// The whole analysis of usage records, as the agents' report.
///
/// # Errors
/// A message when the records hold nothing to analyse.
pub fn analyze_usage(
    records: Vec<UsageRecord>,
    prices: Arc<PriceTable>,
    limits: &[RateLimit],
    file: &str,
) -> Result<ComposedReport, String> {
    let data = TenantData {
        tenant_id: "file".to_owned(),
        records: Arc::new(records),
        prices,
        demo: false,
    };
    let scope = Scope {
        timeframe: "all".to_owned(),
        // Longer than any data: the filter then has no start and covers every record.
        window: std::time::Duration::from_secs(u64::MAX / 4),
        team: None,
        model: None,
        feature: None,
    };
    let mut f = Findings {
        scope: Some(scope.clone()),
        ..Findings::default()
    };
    let mut used = Vec::new();
    f.summary = Some(
        usage_summary::compute(&data, &scope)
            .map_err(stop_message)?
            .value,
    );
    used.push("usage_summary");
    f.daily = Some(
        query_usage::compute(&data, &scope)
            .map_err(stop_message)?
            .value,
    );
    used.push("query_usage");
    let anomalies = detect_anomalies::compute(&data, &scope)
        .map_err(stop_message)?
        .value;
    used.push("detect_anomalies");
    f.capacity = Some(
        forecast_capacity::compute(&data, &scope, limits)
            .map_err(stop_message)?
            .value,
    );
    used.push("forecast_capacity");
    f.prices = Some(
        price_lookup::compute(&data, &scope)
            .map_err(stop_message)?
            .value,
    );
    used.push("price_lookup");
    let recs = recommend_optimizations::compute(&data, &scope)
        .map_err(stop_message)?
        .value;
    used.push("recommend_optimizations");
    f.plan = Some(
        build_plan::compute(&recs, &anomalies)
            .map_err(stop_message)?
            .value,
    );
    used.push("build_plan");
    f.anomalies = Some(anomalies);
    f.recommendations = Some(recs);
    used.push("compose_report");
    f.tools_used = used.into_iter().map(str::to_owned).collect();
    Ok(compose(&ReportInput {
        user_request: format!("analyze {file}"),
        tenant_id: "file".to_owned(),
        demo_data: false,
        file: Some(file.to_owned()),
        findings: f,
    }))
}

fn forecast_of(grid: &Grid) -> Option<SeriesForecast> {
    let (period, season) = grid.season()?;
    // Holes are taken as the last value seen (a metric that was not reported did not vanish).
    let mut last = 0.0;
    let values: Vec<f64> = grid
        .values
        .iter()
        .map(|v| {
            if let Some(v) = v {
                last = *v;
            }
            last
        })
        .collect();
    let model = HoltWinters::fit(&values, period)?;
    Some(SeriesForecast {
        season: season.to_owned(),
        horizon: period,
        step_seconds: grid.step.num_seconds(),
        values: model.forecast(period),
        backtest: backtest(&values, period),
        model,
    })
}

fn series_findings(
    kind: &str,
    name: &str,
    points: &[(chrono::DateTime<chrono::Utc>, f64)],
    grid: Option<Grid>,
    direction: Direction,
    cost: bool,
) -> Result<SeriesFindings, String> {
    let grid =
        grid.ok_or_else(|| "the series needs at least two points at different times".to_owned())?;
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    Ok(SeriesFindings {
        kind: kind.to_owned(),
        name: name.to_owned(),
        points: points.len(),
        start: points.iter().map(|p| p.0).min(),
        end: points.iter().map(|p| p.0).max(),
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        anomalies: detect_series(&grid, direction, cost),
        forecast: forecast_of(&grid),
        billing: None,
    })
}

fn finish(findings: Findings, file: &str) -> ComposedReport {
    compose(&ReportInput {
        user_request: format!("analyze {file}"),
        tenant_id: "file".to_owned(),
        demo_data: false,
        file: Some(file.to_owned()),
        findings,
    })
}

/// Anomalies and forecast of a metric series.
///
/// # Errors
/// A message when the series is too short to analyse.
pub fn analyze_series(series: &MetricSeries, file: &str) -> Result<ComposedReport, String> {
    let grid = Grid::from_points(&series.points, Combine::Mean);
    let s = series_findings(
        "metric",
        &series.name,
        &series.points,
        grid,
        Direction::Both,
        false,
    )?;
    Ok(finish(
        Findings {
            series: Some(s),
            tools_used: vec![
                "detect_anomalies".into(),
                "forecast".into(),
                "compose_report".into(),
            ],
            ..Findings::default()
        },
        file,
    ))
}

/// Cost drivers, daily-cost anomalies and forecast, and idle commitments of FOCUS billing rows.
///
/// # Errors
/// A message when the file holds too little to analyse.
pub fn analyze_focus(rows: &[FocusRow], file: &str) -> Result<ComposedReport, String> {
    let billing = billing_summary(rows);
    let daily = daily_cost(rows);
    let grid = Grid::with_step(&daily, chrono::Duration::days(1), Combine::Sum);
    let mut s = series_findings(
        "focus",
        "EffectiveCost per day",
        &daily,
        grid,
        Direction::Up,
        true,
    )?;
    let recs = commitment_recommendations(rows, billing.days);
    s.billing = Some(billing);
    Ok(finish(
        Findings {
            series: Some(s),
            recommendations: Some(recs),
            tools_used: vec![
                "billing_summary".into(),
                "detect_anomalies".into(),
                "forecast".into(),
                "commitments".into(),
                "compose_report".into(),
            ],
            ..Findings::default()
        },
        file,
    ))
}

/// The report's `summary` for a series or billing file (the same keys as for usage).
pub fn series_summary_json(s: &SeriesFindings) -> Value {
    match &s.billing {
        Some(b) => {
            let top = |rows: &[agentwire_analytics::billing::Driver]| -> Value {
                rows.iter()
                    .take(8)
                    .map(|d| json!({"key": d.key, "cost_usd": d.effective_cost_usd, "billed_cost_usd": d.billed_cost_usd, "share": d.share, "rows": d.rows}))
                    .collect()
            };
            json!({
                "records": b.rows,
                "start": b.start,
                "end": b.end,
                "total_cost_usd": b.effective_cost_usd,
                "monthly_cost_usd": b.monthly_cost_usd,
                "billed_cost_usd": b.billed_cost_usd,
                "effective_cost_usd": b.effective_cost_usd,
                "by_service": top(&b.by_service),
                "by_sub_account": top(&b.by_sub_account),
                "by_service_category": top(&b.by_service_category),
                "by_charge_category": top(&b.by_charge_category),
            })
        }
        None => json!({
            "records": s.points,
            "start": s.start,
            "end": s.end,
            "total_cost_usd": null,
            "monthly_cost_usd": null,
            "metric": s.name,
            "min": s.min,
            "mean": s.mean,
            "max": s.max,
        }),
    }
}

/// The Markdown of a series or billing analysis.
pub fn series_markdown(s: &SeriesFindings, md: &mut String, findings: &mut Vec<String>) {
    if let Some(b) = &s.billing {
        let line = format!(
            "Cloud billing: {} effective cost ({} billed) over {:.1} days, {} per month; top service {} at {} ({}).",
            format::usd(b.effective_cost_usd),
            format::usd(b.billed_cost_usd),
            b.days,
            format::usd(b.monthly_cost_usd),
            b.by_service.first().map_or("-", |d| d.key.as_str()),
            format::usd(b.by_service.first().map_or(0.0, |d| d.effective_cost_usd)),
            format::share(b.by_service.first().map_or(0.0, |d| d.share)),
        );
        let _ = writeln!(md, "### Cost drivers\n\n{line}\n");
        let _ = writeln!(
            md,
            "| Service | Effective | Billed | Share |\n|---|---:|---:|---:|"
        );
        for d in b.by_service.iter().take(8) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                d.key,
                format::usd(d.effective_cost_usd),
                format::usd(d.billed_cost_usd),
                format::share(d.share)
            );
        }
        md.push('\n');
        findings.push(line);
    } else {
        let line = format!(
            "Series {}: {} points from {} to {}, min {:.2}, mean {:.2}, max {:.2}.",
            s.name,
            format::count(s.points as u64),
            s.start.map(|t| t.to_rfc3339()).unwrap_or_default(),
            s.end.map(|t| t.to_rfc3339()).unwrap_or_default(),
            s.min,
            s.mean,
            s.max
        );
        let _ = writeln!(md, "{line}\n");
        findings.push(line);
    }
    let a = &s.anomalies;
    let _ = writeln!(md, "### Anomalies\n");
    if a.anomalies.is_empty() {
        let _ = writeln!(
            md,
            "No window departs from the {} seasonal baseline ({} of {} slots scored).\n",
            a.season, a.scored_slots, a.slots
        );
    }
    for w in &a.anomalies {
        let line = format!(
            "{} to {}: {:.2} vs {:.2} expected ({} the {} baseline by {:.2}; z {:.1}, EWMA {:.1}).",
            w.start.to_rfc3339(),
            w.end.to_rfc3339(),
            w.actual,
            w.expected,
            w.direction,
            a.season,
            w.impact.abs(),
            w.score,
            w.ewma_score
        );
        let _ = writeln!(md, "- {line}");
        findings.push(line);
    }
    md.push('\n');
    if let Some(f) = &s.forecast {
        let backtest = f.backtest.as_ref().map_or_else(
            || "no backtest (fewer than three seasons)".to_owned(),
            |b| {
                format!(
                    "backtest on the last season: MAE {:.2} against {:.2} for seasonal-naive{}",
                    b.holt_winters_mae,
                    b.seasonal_naive_mae,
                    if b.beats_seasonal_naive {
                        ""
                    } else {
                        " (seasonal-naive is better here)"
                    }
                )
            },
        );
        let line = format!(
            "Forecast (Holt-Winters, {} season, alpha {}, beta {}, gamma {}): next {} steps average {:.2}; {backtest}.",
            f.season,
            f.model.alpha,
            f.model.beta,
            f.model.gamma,
            f.horizon,
            f.values.iter().sum::<f64>() / f.values.len().max(1) as f64
        );
        let _ = writeln!(md, "### Forecast\n\n{line}\n");
        findings.push(line);
    }
}
