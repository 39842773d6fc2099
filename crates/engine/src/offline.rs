//! The offline analysis behind `agentwire analyze`: the same tools the agents call, over a file's
//! records instead of a tenant's, composed by the same report composer into the same `report`.
//!
//! Usage files get the whole analysis (summary, daily series, anomalies, capacity, prices, levers,
//! plan). A metric series gets anomalies and a forecast; a FOCUS billing file gets its cost
//! drivers, daily-cost anomalies and forecast, and idle commitments. This module must not do I/O:
//! the caller reads the file.

use crate::findings::{Findings, SeriesFindings, SeriesForecast};
use crate::report::{ComposedReport, ReportInput, compose};
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use crate::tools::{
    ToolOutput, build_plan, detect_anomalies, forecast_capacity, price_lookup, query_usage,
    recommend_optimizations, usage_summary,
};
use agentwire_analytics::billing::{billing_summary, commitment_recommendations, daily_cost};
use agentwire_analytics::capacity::RateLimit;
use agentwire_analytics::forecast::{HoltWinters, backtest};
use agentwire_analytics::timeseries::{Combine, Direction, Grid, detect_series};
use agentwire_analytics::{Cancel, FocusRow, MetricSeries, PriceTable, UsageRecord};
use std::sync::Arc;

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
        // The offline analysis reads no question.
        vocab: Arc::new(agentwire_question::Vocabulary::default()),
        generation: 1,
        usage_version: 0,
        totals: Default::default(),
    };
    let scope = Scope::all();
    // Nobody cancels the offline analysis: the command runs to its report.
    let never = Cancel::new();
    let mut used = Vec::new();
    let summary = answered(
        "usage_summary",
        &mut used,
        usage_summary::compute(&data, &scope, &never),
    )?;
    let daily = answered(
        "query_usage",
        &mut used,
        query_usage::compute(&data, &scope, &never),
    )?;
    let anomalies = answered(
        "detect_anomalies",
        &mut used,
        detect_anomalies::compute(&data, &scope, &never),
    )?;
    let capacity = answered(
        "forecast_capacity",
        &mut used,
        forecast_capacity::compute(&data, &scope, limits, &never),
    )?;
    let prices = answered(
        "price_lookup",
        &mut used,
        price_lookup::compute(&data, &scope),
    )?;
    let recommendations = answered(
        "recommend_optimizations",
        &mut used,
        recommend_optimizations::compute(&data, &scope, &never),
    )?;
    let plan = answered(
        "build_plan",
        &mut used,
        build_plan::compute(&recommendations, &anomalies),
    )?;
    used.push("compose_report".to_owned());
    let f = Findings {
        summary: Some(summary),
        daily: Some(daily),
        anomalies: Some(anomalies),
        capacity: Some(capacity),
        prices: Some(prices),
        recommendations: Some(recommendations),
        implementation_plan: Some(plan),
        tools_used: used,
        ..Findings::default()
    };
    Ok(finish(Some(scope), f, file))
}

/// A tool's value, noting that the tool answered; a tool's failure is the analysis' error.
fn answered<T>(
    tool: &str,
    used: &mut Vec<String>,
    output: RunResult<ToolOutput<T>>,
) -> Result<T, String> {
    let value = output.map_err(|stop| stop.message())?.value;
    used.push(tool.to_owned());
    Ok(value)
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

/// The report of a file's findings, as the agents would compose it.
fn finish(scope: Option<Scope>, findings: Findings, file: &str) -> ComposedReport {
    compose(&ReportInput {
        user_request: format!("analyze {file}"),
        tenant_id: "file".to_owned(),
        demo_data: false,
        file: Some(file.to_owned()),
        scope,
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
        None,
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
        None,
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
