//! FOCUS cloud billing: totals and cost drivers, the daily cost series for the anomaly and
//! forecast analyses, and idle or underused commitments.
//!
//! Amounts: `EffectiveCost` (amortised, what the usage really cost) is the cost analysed;
//! `BilledCost` (what the invoice says) is totalled beside it. Credits are negative and kept.
//! A commitment (savings plan, reservation) is idle for the share of its cost on rows with
//! `CommitmentDiscountStatus = Unused`; that cost bought nothing. This module must not read files.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::fastmap::FastMap;
use crate::format::usd;
use crate::import::FocusRow;
use crate::recommendation::Recommendation;
use crate::timeseries::{Combine, Direction, Grid, SeriesAnomalies, detect_series};

/// Spend of one key (service, sub-account, category).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Driver {
    pub key: String,
    pub effective_cost_usd: f64,
    pub billed_cost_usd: f64,
    /// Share of the total effective cost.
    pub share: f64,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillingSummary {
    pub rows: u64,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub billed_cost_usd: f64,
    pub effective_cost_usd: f64,
    /// Effective cost per day of the period, times 30.
    pub monthly_cost_usd: f64,
    pub days: f64,
    pub by_service: Vec<Driver>,
    pub by_sub_account: Vec<Driver>,
    pub by_service_category: Vec<Driver>,
    pub by_charge_category: Vec<Driver>,
}

fn drivers<'a>(
    rows: &'a [FocusRow],
    key: impl Fn(&'a FocusRow) -> Option<&'a str>,
    total: f64,
) -> Vec<Driver> {
    let mut map: FastMap<&str, (f64, f64, u64)> = FastMap::default();
    for r in rows {
        let e = map.entry(key(r).unwrap_or("(none)")).or_default();
        e.0 += r.effective_cost;
        e.1 += r.billed_cost;
        e.2 += 1;
    }
    let mut out: Vec<Driver> = map
        .into_iter()
        .map(|(k, (effective, billed, rows))| Driver {
            key: k.to_string(),
            effective_cost_usd: effective,
            billed_cost_usd: billed,
            share: if total.abs() > 0.0 {
                effective / total
            } else {
                0.0
            },
            rows,
        })
        .collect();
    out.sort_by(|a, b| {
        b.effective_cost_usd
            .total_cmp(&a.effective_cost_usd)
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

/// Totals and the biggest cost drivers.
pub fn billing_summary(rows: &[FocusRow]) -> BillingSummary {
    let billed: f64 = rows.iter().map(|r| r.billed_cost).sum();
    let effective: f64 = rows.iter().map(|r| r.effective_cost).sum();
    let start = rows.iter().map(|r| r.charge_period_start).min();
    let end = rows
        .iter()
        .map(|r| r.charge_period_end.unwrap_or(r.charge_period_start))
        .max();
    let days = match (start, end) {
        (Some(s), Some(e)) => ((e - s).num_seconds() as f64 / 86_400.0).max(1.0 / 24.0),
        _ => 0.0,
    };
    BillingSummary {
        rows: rows.len() as u64,
        start,
        end,
        billed_cost_usd: billed,
        effective_cost_usd: effective,
        monthly_cost_usd: if days > 0.0 {
            effective / days * 30.0
        } else {
            0.0
        },
        days,
        by_service: drivers(rows, |r| r.service_name.as_deref(), effective),
        by_sub_account: drivers(
            rows,
            |r| {
                r.sub_account_name
                    .as_deref()
                    .or(r.sub_account_id.as_deref())
            },
            effective,
        ),
        by_service_category: drivers(rows, |r| r.service_category.as_deref(), effective),
        by_charge_category: drivers(rows, |r| r.charge_category.as_deref(), effective),
    }
}

/// Effective cost per UTC day, every day of the period (days without rows are zero).
pub fn daily_cost(rows: &[FocusRow]) -> Vec<(DateTime<Utc>, f64)> {
    let mut by_day: BTreeMap<chrono::NaiveDate, f64> = BTreeMap::new();
    for r in rows {
        *by_day
            .entry(r.charge_period_start.date_naive())
            .or_default() += r.effective_cost;
    }
    let (Some(&first), Some(&last)) = (by_day.keys().next(), by_day.keys().last()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut d = first;
    while d <= last {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            out.push((t.and_utc(), by_day.get(&d).copied().unwrap_or(0.0)));
        }
        d += Duration::days(1);
    }
    out
}

/// Days of unusual effective cost (rises only).
pub fn billing_anomalies(rows: &[FocusRow]) -> Option<SeriesAnomalies> {
    let grid = Grid::with_step(&daily_cost(rows), Duration::days(1), Combine::Sum)?;
    Some(detect_series(&grid, Direction::Up, true))
}

/// Idle or underused commitments: one recommendation per commitment with unused cost.
pub fn commitment_recommendations(rows: &[FocusRow], days: f64) -> Vec<Recommendation> {
    let mut by_id: FastMap<&str, (f64, f64, u64, Option<&str>)> = FastMap::default();
    for r in rows {
        let Some(id) = r.commitment_discount_id.as_deref() else {
            continue;
        };
        let e = by_id.entry(id).or_insert((0.0, 0.0, 0, None));
        match r.commitment_discount_status.as_deref() {
            Some(s) if s.eq_ignore_ascii_case("unused") => e.1 += r.effective_cost,
            Some(s) if s.eq_ignore_ascii_case("used") => e.0 += r.effective_cost,
            _ => {}
        }
        e.2 += 1;
        e.3 = e.3.or(r
            .commitment_discount_name
            .as_deref()
            .or(r.commitment_discount_type.as_deref()));
    }
    if days <= 0.0 {
        return Vec::new();
    }
    let per_month = 30.0 / days;
    let mut out: Vec<Recommendation> = by_id
        .into_iter()
        .filter(|(_, (_, unused, _, _))| *unused > 0.0)
        .map(|(id, (used, unused, rows, name))| {
            let utilisation = if used + unused > 0.0 { used / (used + unused) } else { 0.0 };
            let label = name.unwrap_or(id);
            let mut figures = BTreeMap::new();
            figures.insert("utilisation".to_string(), utilisation);
            figures.insert("unused_cost_usd".to_string(), unused);
            Recommendation {
                lever: "commitment".to_string(),
                title: format!("Right-size the underused commitment {label}"),
                monthly_savings_usd: unused * per_month,
                current_monthly_cost_usd: (used + unused) * per_month,
                from_model: None,
                to_model: None,
                feature: None,
                team: None,
                affected_requests: 0,
                affected_records: rows,
                evidence: format!(
                    "Commitment {id}: {} of its {} effective cost over {days:.1} days was unused ({:.1}% utilisation).",
                    usd(unused),
                    usd(used + unused),
                    utilisation * 100.0
                ),
                assumptions: vec![
                    "The unused share stays unused unless eligible usage moves onto it or the commitment is reduced at renewal.".to_string(),
                    format!("The {days:.1} days of the billing data are representative of a month."),
                ],
                steps: vec![
                    format!("Find usage eligible for {label} that runs at on-demand prices and move it under the commitment."),
                    "At renewal, size the commitment to the p10 of the hourly eligible usage of the last 30 days.".to_string(),
                    "Alert when utilisation drops below 90% for a week.".to_string(),
                ],
                effort: "medium".to_string(),
                risk: "low".to_string(),
                figures,
            }
        })
        .collect();
    out.sort_by(|a, b| b.monthly_savings_usd.total_cmp(&a.monthly_savings_usd));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::import_focus;

    #[test]
    fn commitments_and_drivers_exact_values() {
        let text = "ChargePeriodStart,ChargePeriodEnd,BilledCost,EffectiveCost,ServiceName,CommitmentDiscountId,CommitmentDiscountStatus,CommitmentDiscountName\n\
            2024-09-01 00:00:00,2024-09-01 01:00:00,0,6,EC2,sp-1,Used,Compute SP\n\
            2024-09-01 01:00:00,2024-09-01 02:00:00,0,4,EC2,sp-1,Unused,Compute SP\n\
            2024-09-10 23:00:00,2024-09-11 00:00:00,12,12,S3,NULL,NULL,NULL\n";
        let rows = import_focus(text.as_bytes()).unwrap().rows;
        let s = billing_summary(&rows);
        assert_eq!((s.billed_cost_usd, s.effective_cost_usd), (12.0, 22.0));
        assert_eq!(s.by_service[0].key, "S3");
        assert!((s.days - 10.0).abs() < 1e-9);
        let recs = commitment_recommendations(&rows, s.days);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].lever, "commitment");
        assert!((recs[0].monthly_savings_usd - 4.0 * 3.0).abs() < 1e-9);
        assert!((recs[0].figures["utilisation"] - 0.6).abs() < 1e-12);
        assert_eq!(daily_cost(&rows).len(), 10);
    }

    /// FOCUS sample (FinOps Foundation, CC-BY-4.0): totals as published, 9 AI rows.
    #[test]
    fn focus_sample_totals() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/focus/focus_sample.csv");
        if !path.exists() {
            println!("skipped: {} is absent", path.display());
            return;
        }
        let import = import_focus(std::fs::File::open(path).unwrap()).unwrap();
        assert!(import.errors.is_empty(), "{:?}", import.errors.first());
        assert_eq!(import.rows.len(), 1_000);
        let s = billing_summary(&import.rows);
        assert!(
            (s.billed_cost_usd - 20.52).abs() < 0.005,
            "{}",
            s.billed_cost_usd
        );
        assert!(
            (s.effective_cost_usd - 14.98).abs() < 0.005,
            "{}",
            s.effective_cost_usd
        );
        let ai = s
            .by_service_category
            .iter()
            .find(|d| d.key == "AI and Machine Learning")
            .unwrap();
        assert_eq!(ai.rows, 9);
        // The sample's commitments are all fully used: no idle commitment to recommend.
        assert!(commitment_recommendations(&import.rows, s.days).is_empty());
        let anomalies = billing_anomalies(&import.rows).unwrap();
        assert_eq!(anomalies.season, "weekly");
        println!(
            "FOCUS sample: billed ${:.2}, effective ${:.2}, top service {} ({:.1}%), {} anomalous day window(s)",
            s.billed_cost_usd,
            s.effective_cost_usd,
            s.by_service[0].key,
            s.by_service[0].share * 100.0,
            anomalies.anomalies.len()
        );
    }
}
