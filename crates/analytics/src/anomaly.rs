//! Finds the days when spend departed from what the data's own weekly pattern predicts, and says
//! which model, team and feature drove each departure.
//!
//! The detector is the one every series goes through (`crate::timeseries`): the daily cost is laid
//! on a grid of days, its season (weekly, when the data has one) is found from its own
//! autocorrelation, and episodes are reported only above a threshold calibrated on the series' own
//! departures (so that chance gives at most a stated number per 1,000 days). Only rises count: a
//! drop in cost is not an anomaly to chase. Level shifts (spend that settles higher for good) are
//! reported once, on the day of the change.
//!
//! Drivers: each model, team and feature has its own daily cost, split the same way; a key's excess
//! is what it spent over the episode above its own usual value (for a level shift, its level after
//! the change minus before), and the three largest are the episode's contributors.
//!
//! This module must not read the clock or keep state between calls.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::Serialize;

use crate::cancel::{Checkpoint, Ticks, Uninterrupted};
use crate::fastmap::FastMap;
use crate::prices::{PriceCache, PriceTable};
use crate::record::UsageRecord;
use crate::seasonality::decompose;
use crate::stats::median;
use crate::summary::{Filter, NONE_KEY};
use crate::timeseries::{
    Combine, Direction, Grid, SeriesAnomaly, Severity, decomposition, detect_series,
};

/// How far before the filter's start history is read to build baselines.
const HISTORY_DAYS: i64 = 35;
/// The EWMA of the daily scores that counts as confirming an episode (the second opinion).
const EWMA_THRESHOLD: f64 = 2.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contributor {
    /// "model", "team" or "feature".
    pub dimension: String,
    pub key: String,
    /// Dollars above this key's own usual spend over the episode.
    pub excess_usd: f64,
    /// `excess_usd` over the anomaly's impact; can pass 1 when other keys fell meanwhile.
    pub share_of_excess: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    /// First and last UTC day of the episode (inclusive); one day for a level shift.
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Dollars the usual pattern expected over the episode (for a level shift: over the days
    /// since the change, at the old level).
    pub expected: f64,
    /// Dollars spent over the same days.
    pub actual: f64,
    /// actual - expected, in dollars.
    pub impact_usd: f64,
    /// The highest robust z of the episode's days (for a level shift: of the change).
    pub score: f64,
    /// The highest EWMA of the daily z scores in the episode (the second opinion).
    pub ewma_score: f64,
    /// Whether the EWMA passed its threshold too, i.e. the departure is more than one noisy day.
    pub confirmed_by_ewma: bool,
    /// "departure" or "level_shift".
    pub kind: String,
    /// How rarely chance would give an episode this extreme in a series this long.
    pub severity: Severity,
    /// Expected number of chance episodes at least this extreme in the series.
    pub chance: f64,
    pub contributors: Vec<Contributor>,
}

/// The `k` anomalies of largest impact (`anomalies` as `detect_anomalies` returns them, largest
/// first) and how many lesser ones that leaves out.
pub fn top_anomalies(anomalies: &[Anomaly], k: usize) -> (&[Anomaly], usize) {
    let shown = k.min(anomalies.len());
    (&anomalies[..shown], anomalies.len() - shown)
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN))
}

/// Cost anomalies in the filtered records, largest dollar impact first.
/// History up to 35 days before the filter's start is used for baselines but never reported.
pub fn detect_anomalies(
    records: &[UsageRecord],
    prices: &PriceTable,
    filter: &Filter,
) -> Vec<Anomaly> {
    let Ok(anomalies) = detect_anomalies_cancellable(records, prices, filter, &Uninterrupted);
    anomalies
}

/// [`detect_anomalies`], stopping early (with `C::Stop`) when the checkpoint says so.
///
/// # Errors
/// The checkpoint's stop, looked at every few thousand records or days.
pub fn detect_anomalies_cancellable<C: Checkpoint>(
    records: &[UsageRecord],
    prices: &PriceTable,
    filter: &Filter,
    checkpoint: &C,
) -> Result<Vec<Anomaly>, C::Stop> {
    let mut ticks = Ticks::new(checkpoint);
    let history_start = filter
        .start
        .and_then(|s| s.checked_sub_signed(Duration::days(HISTORY_DAYS)));
    let in_range =
        |t: DateTime<Utc>| history_start.is_none_or(|h| t >= h) && filter.end.is_none_or(|e| t < e);
    let mut cache = PriceCache::new(prices);
    let mut daily: FastMap<NaiveDate, f64> = FastMap::default();
    for r in records {
        ticks.tick()?;
        if filter.matches_dims(r) && in_range(r.timestamp) {
            *daily.entry(r.timestamp.date_naive()).or_default() += cache.cost(r).0;
        }
    }
    let (Some(&first), Some(&last)) = (daily.keys().min(), daily.keys().max()) else {
        return Ok(Vec::new());
    };
    let n = usize::try_from((last - first).num_days() + 1).unwrap_or(0);
    // A day without records spent nothing.
    let mut points: Vec<(DateTime<Utc>, f64)> = Vec::with_capacity(n.min(records.len() + 1));
    for i in 0..n {
        // Records far apart make many days: count them like records.
        ticks.tick()?;
        let d = first + Duration::days(i as i64);
        points.push((midnight(d), daily.get(&d).copied().unwrap_or(0.0)));
    }
    let Some(grid) = Grid::with_step(&points, Duration::days(1), Combine::Sum) else {
        return Ok(Vec::new());
    };
    checkpoint.check()?;
    let report_from = filter.start.map(|s| s.date_naive());
    let found = detect_series(&grid, Direction::Up, true);
    let day_of = |t: DateTime<Utc>| usize::try_from((t.date_naive() - first).num_days()).ok();
    let windows: Vec<(usize, usize, &SeriesAnomaly)> = found
        .anomalies
        .iter()
        .filter(|a| report_from.is_none_or(|from| a.end.date_naive() >= from))
        .filter_map(|a| Some((day_of(a.start)?, day_of(a.end)?, a)))
        .collect();
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let per_key = per_key_daily(records, filter, &mut cache, first, n, &in_range, &mut ticks)?;
    let (season, _) = decomposition(&grid);
    checkpoint.check()?;
    let mut anomalies: Vec<Anomaly> = windows
        .iter()
        .map(|&(s, e, a)| {
            let shift = a.kind == "level_shift";
            let contributors = contributors(&per_key, season.period, s, e, shift, a.impact);
            Anomaly {
                start: a.start.date_naive(),
                end: a.end.date_naive(),
                expected: a.expected,
                actual: a.actual,
                impact_usd: a.impact,
                score: a.score,
                ewma_score: a.ewma_score,
                confirmed_by_ewma: shift || a.ewma_score > EWMA_THRESHOLD,
                kind: a.kind.clone(),
                severity: a.severity,
                chance: a.chance,
                contributors,
            }
        })
        .collect();
    anomalies.sort_by(|a, b| {
        b.impact_usd
            .total_cmp(&a.impact_usd)
            .then(a.start.cmp(&b.start))
    });
    Ok(anomalies)
}

const DIMENSIONS: [&str; 3] = ["model", "team", "feature"];

/// Daily cost of each (dimension, key): index 0 is the first day.
type PerKeyDaily<'r> = FastMap<(usize, &'r str), Vec<f64>>;

/// Daily cost of each (dimension, key) over the `n` days from `first`.
fn per_key_daily<'r, C: Checkpoint>(
    records: &'r [UsageRecord],
    filter: &Filter,
    cache: &mut PriceCache<'_, 'r>,
    first: NaiveDate,
    n: usize,
    in_range: &dyn Fn(DateTime<Utc>) -> bool,
    ticks: &mut Ticks<'_, C>,
) -> Result<PerKeyDaily<'r>, C::Stop> {
    let mut per_key: PerKeyDaily<'r> = FastMap::default();
    for r in records {
        ticks.tick()?;
        if !filter.matches_dims(r) || !in_range(r.timestamp) {
            continue;
        }
        let Some(day) = usize::try_from((r.timestamp.date_naive() - first).num_days())
            .ok()
            .filter(|d| *d < n)
        else {
            continue;
        };
        let cost = cache.cost(r).0;
        let keys = [
            r.model.as_str(),
            r.team.as_deref().unwrap_or(NONE_KEY),
            r.feature.as_deref().unwrap_or(NONE_KEY),
        ];
        for (dim, key) in keys.into_iter().enumerate() {
            per_key.entry((dim, key)).or_insert_with(|| vec![0.0; n])[day] += cost;
        }
    }
    Ok(per_key)
}

/// The top three (dimension, key) pairs by dollars above their own usual spend over days
/// `s..=e`: split the same way as the total (season `period`, a week of level). For a level shift
/// at `s`, a key's excess is its level over the week after minus the week before.
fn contributors(
    per_key: &FastMap<(usize, &str), Vec<f64>>,
    period: usize,
    s: usize,
    e: usize,
    shift: bool,
    impact: f64,
) -> Vec<Contributor> {
    const WEEK: usize = 7;
    let mut found: Vec<Contributor> = per_key
        .iter()
        .filter_map(|(&(dim, key), costs)| {
            let excess = if shift {
                let after = median(&costs[s..(s + WEEK).min(costs.len())])?;
                let before = median(&costs[s.saturating_sub(WEEK)..s])?;
                // The new level over the rest of the series, as the shift's impact is.
                (after - before) * (costs.len() - s) as f64
            } else {
                let values: Vec<Option<f64>> = costs.iter().map(|c| Some(*c)).collect();
                let d = decompose(&values, period, period.max(WEEK));
                (s..=e)
                    .map(|i| costs[i] - d.expected[i].unwrap_or(costs[i]))
                    .sum()
            };
            (excess > 0.0).then(|| Contributor {
                dimension: DIMENSIONS[dim].to_string(),
                key: key.to_string(),
                excess_usd: excess,
                share_of_excess: if impact > 0.0 { excess / impact } else { 0.0 },
            })
        })
        .collect();
    found.sort_by(|a, b| {
        b.excess_usd
            .total_cmp(&a.excess_usd)
            .then_with(|| dim_rank(&a.dimension).cmp(&dim_rank(&b.dimension)))
            .then_with(|| a.key.cmp(&b.key))
    });
    found.truncate(3);
    found
}

fn dim_rank(d: &str) -> usize {
    DIMENSIONS
        .iter()
        .position(|x| *x == d)
        .unwrap_or(DIMENSIONS.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{DemoConfig, generate_demo};
    use chrono::{Datelike, Weekday};

    /// A steady series: weekdays $100 of gpt-4o-mini output, weekends $40, team "base".
    fn steady(days: u32) -> Vec<UsageRecord> {
        let start = Utc.with_ymd_and_hms(2026, 9, 1, 12, 0, 0).unwrap();
        (0..days)
            .map(|d| {
                let t = start + Duration::days(i64::from(d));
                let dollars = if matches!(t.weekday(), Weekday::Sat | Weekday::Sun) {
                    40.0
                } else {
                    100.0
                };
                // Small deterministic wobble so the MAD is not zero.
                let wobble = 1.0 + 0.01 * f64::from((d * 7) % 5) - 0.02;
                let tokens = (dollars * wobble / 0.6e-6) as u64;
                let mut r = UsageRecord::new(t, "openai", "gpt-4o-mini", 0, tokens);
                r.team = Some("base".into());
                r.feature = Some("chat".into());
                r
            })
            .collect()
    }

    #[test]
    fn steady_series_has_no_anomalies() {
        let records = steady(70);
        let found = detect_anomalies(&records, &PriceTable::embedded(), &Filter::default());
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_planted_two_day_spike_is_one_window_with_its_cause() {
        let mut records = steady(70);
        let spike_start = records[50].timestamp;
        for d in 0..2 {
            let mut r = UsageRecord::new(
                spike_start + Duration::days(d),
                "openai",
                "gpt-4o",
                0,
                50_000_000, // $500
            );
            r.team = Some("rogue".into());
            r.feature = Some("loop".into());
            records.push(r);
        }
        let found = detect_anomalies(&records, &PriceTable::embedded(), &Filter::default());
        assert_eq!(found.len(), 1, "{found:?}");
        let a = &found[0];
        assert_eq!(a.start, spike_start.date_naive());
        assert_eq!(a.end, spike_start.date_naive() + Duration::days(1));
        assert!((a.impact_usd - 1000.0).abs() < 20.0, "{}", a.impact_usd);
        assert!(a.score > 10.0, "{a:#?}");
        assert_eq!((a.kind.as_str(), a.severity), ("departure", Severity::High));
        assert!(a.confirmed_by_ewma, "{a:?}");
        assert!((a.actual - a.expected - a.impact_usd).abs() < 1e-9);
        let keys: Vec<(&str, &str)> = a
            .contributors
            .iter()
            .map(|c| (c.dimension.as_str(), c.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![("model", "gpt-4o"), ("team", "rogue"), ("feature", "loop")]
        );
        assert!((a.contributors[0].share_of_excess - 1.0).abs() < 0.05);

        // A filter on another team sees nothing; a window after the spike sees nothing.
        let other = Filter {
            team: Some("base".into()),
            ..Filter::default()
        };
        assert!(detect_anomalies(&records, &PriceTable::embedded(), &other).is_empty());
        let later = Filter {
            start: Some(spike_start + Duration::days(5)),
            ..Filter::default()
        };
        assert!(detect_anomalies(&records, &PriceTable::embedded(), &later).is_empty());
        // A window that starts on the spike still uses the history before it.
        let from_spike = Filter {
            start: Some(spike_start - Duration::hours(12)),
            ..Filter::default()
        };
        assert_eq!(
            detect_anomalies(&records, &PriceTable::embedded(), &from_spike).len(),
            1
        );
    }

    #[test]
    fn too_little_history_gives_no_anomalies() {
        assert!(
            detect_anomalies(&steady(4), &PriceTable::embedded(), &Filter::default()).is_empty()
        );
        assert!(detect_anomalies(&[], &PriceTable::embedded(), &Filter::default()).is_empty());
    }

    #[test]
    fn demo_spike_is_the_top_anomaly() {
        let demo = generate_demo(&DemoConfig::default());
        let prices = PriceTable::embedded();
        let found = detect_anomalies(&demo.records, &prices, &Filter::default());
        assert!(!found.is_empty());
        assert!(found.len() <= 2, "{found:#?}");
        let top = &found[0];
        assert_eq!(top.start, demo.facts.spike_day);
        assert_eq!(top.end, demo.facts.spike_day);
        let has = |dim: &str, key: &str| {
            top.contributors
                .iter()
                .any(|c| c.dimension == dim && c.key == key)
        };
        assert!(has("team", &demo.facts.spike_team), "{top:#?}");
        assert!(has("feature", &demo.facts.spike_feature), "{top:#?}");
        assert!(has("model", &demo.facts.spike_model), "{top:#?}");
        // The impact is the planted extra cost, give or take the baseline's own noise.
        let planted = demo.facts.spike_extra_cost_usd;
        // Asking about the last two weeks still finds it, judged against the weeks before.
        let recent = Filter::last(std::time::Duration::from_secs(14 * 86_400), &demo.records);
        let found_recent = detect_anomalies(&demo.records, &prices, &recent);
        assert_eq!(found_recent.len(), 1, "{found_recent:#?}");
        // Same day and causes, about the same dollars: the usual pattern is learnt from less
        // history, so the expected spend of the day moves a little.
        assert_eq!(found_recent[0].start, top.start);
        assert!((found_recent[0].impact_usd - top.impact_usd).abs() < 0.02 * top.impact_usd);
        let keys = |a: &Anomaly| {
            let mut k: Vec<(String, String)> = a
                .contributors
                .iter()
                .map(|c| (c.dimension.clone(), c.key.clone()))
                .collect();
            k.sort();
            k
        };
        assert_eq!(keys(&found_recent[0]), keys(top));
        assert!(
            (top.impact_usd - planted).abs() < 0.1 * planted,
            "{} vs {planted}",
            top.impact_usd
        );
    }
}
