//! The sections of an offline analysis of a metric series or FOCUS billing file (`agentwire
//! analyze`): cost drivers or the series' range, its anomalies and its forecast. Keys: `forecast`,
//! and `summary` and `anomalies` when no usage findings set them.
//! It must not compute statistics: the offline analysis (`offline.rs`) already did.

use super::words::window;
use super::{Report, SHOWN_ANOMALIES};
use crate::findings::SeriesFindings;
use agentwire_analytics::format;
use agentwire_analytics::timeseries::SeriesAnomaly;
use serde_json::{Value, json};
use std::fmt::Write;

pub(super) fn sections(r: &mut Report<'_>) {
    let f = r.findings;
    let series = f.series.as_ref();
    if let Some(s) = series {
        markdown(r, s);
        if f.summary.is_none() {
            r.set("summary", summary_json(s));
        }
        if f.anomalies.is_none() {
            r.set("anomalies", json!(s.anomalies.anomalies));
        }
    }
    r.set("forecast", json!(series.and_then(|s| s.forecast.as_ref())));
}

/// The windows by the size of their departure (dollars for a cost series), largest first.
fn ranked(s: &SeriesFindings) -> Vec<&SeriesAnomaly> {
    let size = |w: &SeriesAnomaly| w.impact_usd.unwrap_or(w.impact).abs();
    let mut ranked: Vec<&SeriesAnomaly> = s.anomalies.anomalies.iter().collect();
    ranked.sort_by(|a, b| size(b).total_cmp(&size(a)));
    ranked
}

/// The summary's line: the largest departure and how many windows departed.
pub(super) fn headline(s: &SeriesFindings) -> String {
    let ranked = ranked(s);
    let Some(top) = ranked.first() else {
        return format!(
            "**Anomalies:** none; no window departs from the {} seasonal baseline.",
            s.anomalies.season
        );
    };
    let size = match top.impact_usd {
        Some(usd) => format::usd(usd.abs()),
        None => format!("{:.2}", top.impact.abs()),
    };
    format!(
        "**Largest anomaly:** {}, {size} {} the {} baseline; {} anomalous window(s) in all.",
        window(top.start.to_rfc3339(), top.end.to_rfc3339()),
        top.direction,
        s.anomalies.season,
        ranked.len()
    )
}

/// The report's `summary` for a series or billing file (the same keys as for usage).
fn summary_json(s: &SeriesFindings) -> Value {
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

/// The cost drivers (billing) or the series' range, its anomalies and its forecast.
fn markdown(r: &mut Report<'_>, s: &SeriesFindings) {
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
        let _ = writeln!(r, "### Cost drivers\n\n{line}\n");
        let _ = writeln!(
            r,
            "| Service | Effective | Billed | Share |\n|---|---:|---:|---:|"
        );
        for d in b.by_service.iter().take(8) {
            let _ = writeln!(
                r,
                "| {} | {} | {} | {} |",
                d.key,
                format::usd(d.effective_cost_usd),
                format::usd(d.billed_cost_usd),
                format::share(d.share)
            );
        }
        let _ = writeln!(r);
        r.finding(line);
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
        let _ = writeln!(r, "{line}\n");
        r.finding(line);
    }
    let a = &s.anomalies;
    let ranked = ranked(s);
    let _ = writeln!(r, "### Anomalies\n");
    if ranked.is_empty() {
        let _ = writeln!(
            r,
            "No window departs from the {} seasonal baseline ({} of {} slots scored).\n",
            a.season, a.scored_slots, a.slots
        );
    }
    for w in ranked.iter().take(SHOWN_ANOMALIES) {
        let line = format!(
            "{}: {:.2} vs {:.2} expected ({} the {} baseline by {:.2}; z {:.1}, EWMA {:.1}).",
            window(w.start.to_rfc3339(), w.end.to_rfc3339()),
            w.actual,
            w.expected,
            w.direction,
            a.season,
            w.impact.abs(),
            w.score,
            w.ewma_score
        );
        let _ = writeln!(r, "- {line}");
        r.finding(line);
    }
    if ranked.len() > SHOWN_ANOMALIES {
        let _ = writeln!(
            r,
            "\n_{} lesser anomalous window(s) left out; the `report` lists every one._",
            ranked.len() - SHOWN_ANOMALIES
        );
    }
    if !ranked.is_empty() {
        let _ = writeln!(r);
    }
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
        let _ = writeln!(r, "### Forecast\n\n{line}\n");
        r.finding(line);
    }
}
