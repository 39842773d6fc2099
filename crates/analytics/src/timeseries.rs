//! Anomalies in any regular time series: a metric a user tracks, a cloud cost series, the demand
//! of the NAB taxi benchmark.
//!
//! Method, in order:
//! 1. The points are laid on a regular grid (the median gap between timestamps is the step).
//! 2. Seasonal baseline: the median of the same slot in the previous four seasons. The season is
//!    weekly (same weekday and time of day) when the series spans three weeks or more, else daily
//!    (same time of day) when it spans three days, else the series is too short to judge. A median
//!    of four keeps one odd week (a holiday) from becoming the baseline of the next.
//! 3. Residuals are relative (`actual / expected - 1`) when every baseline is positive, so busy
//!    and quiet slots are judged on one scale; absolute otherwise. They are scored with a robust z
//!    (median and MAD over the whole series).
//! 4. Second opinion: an EWMA of the z scores (alpha 0.1). A point is anomalous only when both its
//!    own z and the EWMA pass their thresholds in the same direction, so a lone noisy point is not
//!    an anomaly but a sustained departure is.
//! 5. Flagged points closer than a few slots merge into windows with expected and actual totals.
//!
//! This module must not read the clock or assume units: `impact` is in the series' own unit.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::stats::{mad, median};

/// Robust z above which a point is anomalous.
pub const Z_THRESHOLD: f64 = 3.5;
/// The EWMA of z must pass this too (same sign).
pub const EWMA_THRESHOLD: f64 = 2.0;
/// EWMA smoothing: each point weighs 10%, so about ten points of departure are needed.
pub const EWMA_ALPHA: f64 = 0.1;
/// Seasons the baseline looks back.
pub const SEASONS: usize = 4;
const MAD_TO_SIGMA: f64 = 1.4826;
/// Fewer scored points than this give no trustworthy spread.
const MIN_SCORED: usize = 10;

/// Which departures count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Both rises and drops (a metric).
    Both,
    /// Only rises (a cost: spending less is not an anomaly to chase).
    Up,
}

/// How points that fall into one slot combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    Sum,
    Mean,
}

/// A series on a regular grid; `None` where no point fell.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub start: DateTime<Utc>,
    pub step: Duration,
    pub values: Vec<Option<f64>>,
}

impl Grid {
    /// Lays points on the grid of their median spacing. Empty for fewer than two distinct times.
    pub fn from_points(points: &[(DateTime<Utc>, f64)], combine: Combine) -> Option<Grid> {
        let mut sorted: Vec<(DateTime<Utc>, f64)> = points.to_vec();
        sorted.sort_by_key(|p| p.0);
        let gaps: Vec<f64> = sorted
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).num_milliseconds() as f64)
            .filter(|g| *g > 0.0)
            .collect();
        let step_ms = median(&gaps)?.round() as i64;
        Grid::with_step(&sorted, Duration::milliseconds(step_ms.max(1)), combine)
    }

    /// Lays sorted-or-not points on a grid of `step`, starting at the first point.
    pub fn with_step(
        points: &[(DateTime<Utc>, f64)],
        step: Duration,
        combine: Combine,
    ) -> Option<Grid> {
        let start = points.iter().map(|p| p.0).min()?;
        let end = points.iter().map(|p| p.0).max()?;
        let step_ms = step.num_milliseconds().max(1);
        let n = usize::try_from((end - start).num_milliseconds() / step_ms).ok()? + 1;
        // A grid far finer than the data would be mostly holes; refuse absurd sizes.
        if n > 50_000_000 {
            return None;
        }
        let mut sums = vec![0.0; n];
        let mut counts = vec![0u32; n];
        for &(t, v) in points {
            let i = usize::try_from((t - start).num_milliseconds() / step_ms).unwrap_or(0);
            if let Some(slot) = sums.get_mut(i) {
                *slot += v;
                counts[i] += 1;
            }
        }
        let values = sums
            .into_iter()
            .zip(counts)
            .map(|(s, c)| match (c, combine) {
                (0, _) => None,
                (_, Combine::Sum) => Some(s),
                (c, Combine::Mean) => Some(s / f64::from(c)),
            })
            .collect();
        Some(Grid {
            start,
            step: Duration::milliseconds(step_ms),
            values,
        })
    }

    pub fn time(&self, i: usize) -> DateTime<Utc> {
        self.start + self.step * i32::try_from(i).unwrap_or(i32::MAX)
    }

    /// Slots per day, when the step divides a day.
    pub fn slots_per_day(&self) -> Option<usize> {
        let ms = self.step.num_milliseconds();
        (ms > 0 && 86_400_000 % ms == 0).then(|| usize::try_from(86_400_000 / ms).unwrap_or(0))
    }

    /// The season the data supports: weekly past three weeks, daily past three days.
    pub fn season(&self) -> Option<(usize, &'static str)> {
        let per_day = self.slots_per_day()?;
        let days = self.values.len() / per_day.max(1);
        if days >= 21 {
            Some((7 * per_day, "weekly"))
        } else if days >= 3 && per_day > 1 {
            Some((per_day, "daily"))
        } else {
            None
        }
    }
}

/// One anomalous window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesAnomaly {
    pub start: DateTime<Utc>,
    /// The start of the window's last slot.
    pub end: DateTime<Utc>,
    pub points: usize,
    /// The seasonal baseline summed over the window's slots.
    pub expected: f64,
    pub actual: f64,
    /// actual - expected, in the series' unit.
    pub impact: f64,
    /// The same in dollars when the series is a cost.
    pub impact_usd: Option<f64>,
    /// "above" or "below" the baseline.
    pub direction: String,
    /// The largest |z| in the window.
    pub score: f64,
    /// The largest |EWMA of z| in the window (the second opinion).
    pub ewma_score: f64,
}

/// What the detector saw and found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesAnomalies {
    pub step_seconds: i64,
    /// "weekly", "daily", or "none" when the series is too short for a seasonal baseline.
    pub season: String,
    pub slots: usize,
    pub scored_slots: usize,
    /// The start of every flagged slot, for checking against labelled windows.
    pub flagged: Vec<DateTime<Utc>>,
    pub anomalies: Vec<SeriesAnomaly>,
}

/// Detects anomalies in `grid` (see the module doc). `cost` marks a dollar series.
pub fn detect_series(grid: &Grid, direction: Direction, cost: bool) -> SeriesAnomalies {
    let step_seconds = grid.step.num_seconds();
    let empty = |season: &str| SeriesAnomalies {
        step_seconds,
        season: season.to_string(),
        slots: grid.values.len(),
        scored_slots: 0,
        flagged: Vec::new(),
        anomalies: Vec::new(),
    };
    let Some((period, season)) = grid.season() else {
        return empty("none");
    };
    let x = &grid.values;
    let n = x.len();
    let baseline: Vec<Option<f64>> = (0..n)
        .map(|i| {
            let past: Vec<f64> = (1..=SEASONS)
                .filter_map(|k| i.checked_sub(k * period).and_then(|j| x[j]))
                .collect();
            if past.len() >= 2 { median(&past) } else { None }
        })
        .collect();
    let relative = baseline.iter().flatten().all(|b| *b > 0.0);
    let residual: Vec<Option<f64>> = (0..n)
        .map(|i| match (x[i], baseline[i]) {
            (Some(a), Some(b)) if relative => Some(a / b - 1.0),
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        })
        .collect();
    let scored: Vec<f64> = residual.iter().flatten().copied().collect();
    if scored.len() < MIN_SCORED {
        return empty(season);
    }
    let center = median(&scored).unwrap_or(0.0);
    let spread = MAD_TO_SIGMA * mad(&scored, center).unwrap_or(0.0);
    // A near-constant series has no spread; judge it against a sliver of its own level instead.
    let floor = if relative {
        0.01
    } else {
        1e-9 + 0.01 * scored.iter().map(|v| v.abs()).fold(0.0, f64::max)
    };
    let sigma = spread.max(floor);
    let mut ewma = 0.0;
    let mut z = vec![0.0; n];
    let mut smooth = vec![0.0; n];
    let mut flag = vec![false; n];
    for i in 0..n {
        let Some(r) = residual[i] else { continue };
        let zi = (r - center) / sigma;
        ewma = EWMA_ALPHA * zi + (1.0 - EWMA_ALPHA) * ewma;
        z[i] = zi;
        smooth[i] = ewma;
        let up = zi > Z_THRESHOLD && ewma > EWMA_THRESHOLD;
        let down = zi < -Z_THRESHOLD && ewma < -EWMA_THRESHOLD;
        flag[i] = up || (down && direction == Direction::Both);
    }
    // Flagged slots within a few steps of each other are one event.
    let max_gap = (period / 84).max(2);
    let mut windows: Vec<(usize, usize)> = Vec::new();
    for i in (0..n).filter(|&i| flag[i]) {
        match windows.last_mut() {
            Some((_, end)) if i - *end <= max_gap && (z[i] > 0.0) == (z[*end] > 0.0) => *end = i,
            _ => windows.push((i, i)),
        }
    }
    let anomalies = windows
        .iter()
        .map(|&(s, e)| {
            let slots: Vec<usize> = (s..=e).filter(|&i| flag[i]).collect();
            let actual: f64 = slots.iter().filter_map(|&i| x[i]).sum();
            let expected: f64 = slots.iter().filter_map(|&i| baseline[i]).sum();
            let impact = actual - expected;
            SeriesAnomaly {
                start: grid.time(s),
                end: grid.time(e),
                points: slots.len(),
                expected,
                actual,
                impact,
                impact_usd: cost.then_some(impact),
                direction: if z[s] > 0.0 { "above" } else { "below" }.to_string(),
                score: slots.iter().map(|&i| z[i].abs()).fold(0.0, f64::max),
                ewma_score: slots.iter().map(|&i| smooth[i].abs()).fold(0.0, f64::max),
            }
        })
        .collect();
    SeriesAnomalies {
        step_seconds,
        season: season.to_string(),
        slots: n,
        scored_slots: scored.len(),
        flagged: (0..n).filter(|&i| flag[i]).map(|i| grid.time(i)).collect(),
        anomalies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, TimeZone};
    use std::path::PathBuf;

    fn hourly(days: i64, f: impl Fn(i64) -> f64) -> Vec<(DateTime<Utc>, f64)> {
        let start = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap();
        (0..days * 24)
            .map(|h| (start + Duration::hours(h), f(h)))
            .collect()
    }

    fn daily_shape(h: i64) -> f64 {
        let hour = (h % 24) as f64;
        let weekend = matches!((h / 24) % 7, 5 | 6);
        let base = if weekend { 40.0 } else { 100.0 };
        base * (1.0 + 0.5 * (std::f64::consts::TAU * hour / 24.0).sin())
            * (1.0 + 0.01 * ((h * 7919) % 13) as f64 / 13.0)
    }

    #[test]
    fn grid_and_season() {
        let g = Grid::from_points(&hourly(30, daily_shape), Combine::Sum).unwrap();
        assert_eq!(g.step, Duration::hours(1));
        assert_eq!(g.values.len(), 720);
        assert_eq!(g.season(), Some((168, "weekly")));
        let g = Grid::from_points(&hourly(5, daily_shape), Combine::Sum).unwrap();
        assert_eq!(g.season(), Some((24, "daily")));
        let g = Grid::from_points(&hourly(2, daily_shape), Combine::Sum).unwrap();
        assert_eq!(detect_series(&g, Direction::Both, false).season, "none");
        assert!(Grid::from_points(&[], Combine::Sum).is_none());
    }

    #[test]
    fn a_sustained_rise_is_one_window_with_its_excess() {
        let points = hourly(42, |h| {
            let v = daily_shape(h);
            // Day 35, 08:00 to 19:59: three times the usual level.
            if (35 * 24 + 8..35 * 24 + 20).contains(&h) {
                v * 3.0
            } else {
                v
            }
        });
        let g = Grid::from_points(&points, Combine::Sum).unwrap();
        let found = detect_series(&g, Direction::Up, true);
        assert_eq!(found.season, "weekly");
        assert_eq!(found.anomalies.len(), 1, "{found:#?}");
        let a = &found.anomalies[0];
        let day = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap() + Duration::days(35);
        assert!(a.start >= day + Duration::hours(8) && a.end <= day + Duration::hours(19));
        assert!(a.impact > 0.0 && a.impact_usd == Some(a.impact));
        assert!((a.actual - a.expected - a.impact).abs() < 1e-9);
        assert!(a.ewma_score > EWMA_THRESHOLD && a.score > Z_THRESHOLD);
        // A drop of the same size counts for a metric, not for a cost.
        let dropped = hourly(42, |h| {
            let v = daily_shape(h);
            if (35 * 24 + 8..35 * 24 + 20).contains(&h) {
                v * 0.2
            } else {
                v
            }
        });
        let g = Grid::from_points(&dropped, Combine::Sum).unwrap();
        assert!(detect_series(&g, Direction::Up, true).anomalies.is_empty());
        let both = detect_series(&g, Direction::Both, false);
        assert_eq!(both.anomalies.len(), 1);
        assert_eq!(both.anomalies[0].direction, "below");
        assert_eq!(both.anomalies[0].impact_usd, None);
    }

    #[test]
    fn a_lone_outlier_is_not_an_anomaly() {
        // 5% noise; one point 30% high scores a high z, but the EWMA does not confirm it.
        let noisy = |h: i64| {
            // splitmix64 of the hour: uniform noise in [0.95, 1.05).
            let mut z = (h as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let u = ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64;
            daily_shape(h) * (0.95 + 0.1 * u)
        };
        let points = hourly(42, |h| if h == 900 { noisy(h) * 1.3 } else { noisy(h) });
        let g = Grid::from_points(&points, Combine::Sum).unwrap();
        let found = detect_series(&g, Direction::Both, false);
        assert!(found.anomalies.is_empty(), "{:#?}", found.anomalies);
    }

    fn shared(path: &str) -> Option<PathBuf> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data")
            .join(path);
        if p.exists() {
            Some(p)
        } else {
            println!("skipped: {} is absent", p.display());
            None
        }
    }

    /// NAB nyc_taxi (Numenta Anomaly Benchmark, MIT): at least 4 of the 5 labelled windows hit,
    /// and at least half of the flagged points inside a window.
    #[test]
    fn nab_nyc_taxi_windows_are_found_with_precision() {
        let (Some(csv), Some(labels)) = (
            shared("nab/nyc_taxi.csv"),
            shared("nab/nyc_taxi_windows.json"),
        ) else {
            return;
        };
        let series = crate::import::import_series(std::fs::File::open(csv).unwrap()).unwrap();
        assert!(series.errors.is_empty());
        assert_eq!(series.series.points.len(), 10_320);
        let labels: serde_json::Value =
            serde_json::from_reader(std::fs::File::open(labels).unwrap()).unwrap();
        let parse = |v: &serde_json::Value| {
            NaiveDateTime::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d %H:%M:%S%.f")
                .unwrap()
                .and_utc()
        };
        let windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = labels["realKnownCause/nyc_taxi.csv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (parse(&w[0]), parse(&w[1])))
            .collect();
        assert_eq!(windows.len(), 5);
        let grid = Grid::from_points(&series.series.points, Combine::Mean).unwrap();
        let found = detect_series(&grid, Direction::Both, false);
        assert_eq!(found.season, "weekly");
        let inside = |t: &DateTime<Utc>| windows.iter().any(|(s, e)| s <= t && t <= e);
        let flagged = found.flagged.len();
        let flagged_inside = found.flagged.iter().filter(|t| inside(t)).count();
        let hit = windows
            .iter()
            .filter(|(s, e)| found.flagged.iter().any(|t| s <= t && t <= e))
            .count();
        let precision = flagged_inside as f64 / flagged.max(1) as f64;
        println!(
            "NAB nyc_taxi: {hit} of 5 labelled windows hit; {flagged_inside} of {flagged} flagged points inside windows (precision {:.1}%); {} anomaly windows",
            precision * 100.0,
            found.anomalies.len()
        );
        assert!(hit >= 4, "only {hit} windows hit");
        assert!(precision >= 0.5, "precision {precision}");
    }
}
