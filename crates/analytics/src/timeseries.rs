//! Anomalies in any regular time series: a metric a user tracks, a cloud or AI cost per day, the
//! demand of the NAB taxi benchmark. The one detector behind every anomaly the product reports.
//!
//! Method, in order:
//! 1. The points are laid on a regular grid (the median gap between timestamps is the step).
//! 2. The season (a day, a week, or none) is found from the series' own autocorrelation, and the
//!    series is split robustly into level, season and residual (`crate::seasonality`).
//! 3. Each residual is scored in units of its slot's usual spread (a robust z). Runs of departing
//!    points are departures; each is measured by its peak z and its excess, and is an episode only
//!    when a tail calibrated on the series' own departures says chance would rarely reach it, for
//!    a budget of `Settings::false_episodes_per_1000` per 1,000 points (`crate::episodes`).
//! 4. A lasting change of level is found by comparing the level before and after each point, on
//!    its own budget (`Settings::false_shifts_per_1000`), and reported once, as one episode at the
//!    change (`crate::shifts`).
//! 5. Episodes carry expected and actual totals, the impact (actual - expected, in the series'
//!    unit; in dollars for a cost), a severity from how rarely chance would produce them, and are
//!    ranked by the size of their impact. `STATED_FALSE_EPISODES_PER_1000` is the bound on chance
//!    episodes the tests hold the whole to; docs/anomalies.md has the method and the figures.
//!
//! This module must not read the clock or assume units: `impact` is in the series' own unit.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::episodes::{self, Calibration, Episode, Settings};
use crate::seasonality::{Decomposition, Season, decompose, detect_season};
use crate::shifts;
use crate::stats::median;

/// The false-alarm bound the detector states and its tests check: expected chance episodes per
/// 1,000 points. The thresholds are set for `Settings::false_episodes_per_1000` plus
/// `false_shifts_per_1000` (0.3 in all); each series' tail is fitted from its own few dozen
/// departures, and the error of that fit lets chance through somewhat more often, so the bound
/// stated is the one simulation shows to hold (on normal and Laplace noise, with sharp weekly
/// changes: about 0.5 and 0.9 per 1,000).
pub const STATED_FALSE_EPISODES_PER_1000: f64 = 1.0;
/// Fewer scored points than this give no trustworthy spread.
const MIN_SCORED: usize = 10;
/// EWMA of the point scores reported beside each episode as a second opinion (not used to decide).
const EWMA_ALPHA: f64 = 0.3;
/// A cost episode must be worth at least this many dollars...
const MIN_COST_IMPACT_USD: f64 = 1.0;
/// ...and this fraction of what was expected, so near-constant spend does not flag cents.
const MIN_COST_IMPACT_FRACTION: f64 = 0.02;

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

/// How rarely chance alone would produce an episode as extreme, in a series this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Significant, but chance would give one in a series about ten times longer.
    Low,
    /// Chance would give one in fewer than one series in ten of this length.
    Medium,
    /// Chance would give one in fewer than one series in a hundred of this length.
    High,
}

impl Severity {
    /// From the expected number of chance departures at least as extreme in the series.
    pub fn from_chance(chance: f64) -> Severity {
        if chance <= 0.01 {
            Severity::High
        } else if chance <= 0.1 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// One episode of anomaly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesAnomaly {
    pub start: DateTime<Utc>,
    /// The start of the episode's last slot.
    pub end: DateTime<Utc>,
    /// Slots with a value in the episode.
    pub points: usize,
    /// The usual value (level plus season) summed over the episode's slots.
    pub expected: f64,
    pub actual: f64,
    /// actual - expected, in the series' unit.
    pub impact: f64,
    /// The same in dollars when the series is a cost.
    pub impact_usd: Option<f64>,
    /// "above" or "below" the usual value.
    pub direction: String,
    /// "departure" (the series left its usual course and came back) or "level_shift" (it settled
    /// at a new level from `start` on; `impact` then covers the rest of the series).
    pub kind: String,
    pub severity: Severity,
    /// Expected number of departures at least this extreme that chance alone would produce in a
    /// series this long (over all the scores tried); at most the series' false-alarm budget.
    pub chance: f64,
    /// The largest |robust z| of a point in the episode.
    pub score: f64,
    /// The largest |EWMA of the z scores| in the episode (alpha 0.3): a second opinion on how
    /// sustained the departure was, not used to decide.
    pub ewma_score: f64,
}

/// What the detector saw and found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesAnomalies {
    pub step_seconds: i64,
    /// "weekly", "daily", or "none" (no season found in the data).
    pub season: String,
    /// The season test: autocorrelation one day and one week apart.
    pub seasonality: Season,
    pub slots: usize,
    pub scored_slots: usize,
    /// The false-alarm bound the thresholds were set for: chance episodes per 1,000 points.
    pub false_episodes_per_1000: f64,
    /// The same for this series: expected chance episodes over its scored points.
    pub expected_false_episodes: f64,
    /// The threshold of each score and direction tested.
    pub calibrations: Vec<Calibration>,
    /// The start of every slot past a threshold, for checking against labelled windows.
    pub flagged: Vec<DateTime<Utc>>,
    /// Every significant episode, largest |impact| first.
    pub anomalies: Vec<SeriesAnomaly>,
}

impl SeriesAnomalies {
    /// The `k` episodes of largest impact, and how many lesser ones that leaves out.
    pub fn top(&self, k: usize) -> (&[SeriesAnomaly], usize) {
        let shown = k.min(self.anomalies.len());
        (&self.anomalies[..shown], self.anomalies.len() - shown)
    }
}

/// Detects anomalies in `grid` with the product's settings (see the module doc). `cost` marks a
/// dollar series.
pub fn detect_series(grid: &Grid, direction: Direction, cost: bool) -> SeriesAnomalies {
    detect_series_with(grid, direction, cost, &Settings::default())
}

/// The season of `grid` and its split into usual value and residual (None with too few points).
/// The level is a rolling median over the season, and never less than a day (or seven slots), so
/// that a departure lasting hours stays a departure instead of moving the level.
pub fn decomposition(grid: &Grid) -> (Season, Option<Decomposition>) {
    let x = &grid.values;
    let per_day = grid.slots_per_day();
    let season = detect_season(x, per_day);
    if x.iter().flatten().count() < MIN_SCORED {
        return (season, None);
    }
    let day_slots = per_day.unwrap_or_else(|| {
        (86_400_000.0 / grid.step.num_milliseconds().max(1) as f64)
            .round()
            .max(1.0) as usize
    });
    let level_window = season.period.max(day_slots).max(7);
    let d = decompose(x, season.period, level_window);
    (season, Some(d))
}

/// `detect_series` with explicit settings (for tests that show how the figures move).
pub fn detect_series_with(
    grid: &Grid,
    direction: Direction,
    cost: bool,
    settings: &Settings,
) -> SeriesAnomalies {
    let step_seconds = grid.step.num_seconds();
    let (season, d) = decomposition(grid);
    let n = grid.values.len();
    let mut result = SeriesAnomalies {
        step_seconds,
        season: season.name.clone(),
        seasonality: season,
        slots: n,
        scored_slots: 0,
        false_episodes_per_1000: settings.false_episodes_per_1000 + settings.false_shifts_per_1000,
        expected_false_episodes: 0.0,
        calibrations: Vec::new(),
        flagged: Vec::new(),
        anomalies: Vec::new(),
    };
    let Some(d) = d else { return result };
    let slots_per_hour = 3_600_000.0 / grid.step.num_milliseconds().max(1) as f64;
    let merge_gap = (settings.merge_hours * slots_per_hour).round() as usize;
    let found = episodes::find(&d, direction == Direction::Up, merge_gap, settings);
    let z: Vec<Option<f64>> = (0..n).map(|i| d.score(i)).collect();
    let mut ewma = 0.0;
    let smooth_z: Vec<f64> = z
        .iter()
        .map(|v| {
            if let Some(v) = v {
                ewma = EWMA_ALPHA * v + (1.0 - EWMA_ALPHA) * ewma;
            }
            ewma
        })
        .collect();
    let mut flagged = Vec::new();
    let mut anomalies: Vec<SeriesAnomaly> = found
        .episodes
        .iter()
        .filter_map(|e| {
            let a = describe(grid, &d.expected, &smooth_z, e, "departure", cost);
            let material = !cost
                || a.impact.abs()
                    >= MIN_COST_IMPACT_USD.max(MIN_COST_IMPACT_FRACTION * a.expected.abs());
            material.then(|| {
                flagged.extend(e.flagged.iter().map(|&i| grid.time(i)));
                a
            })
        })
        .collect();
    let week_slots = (7.0 * 24.0 * slots_per_hour).round() as usize;
    for shift in shifts::find_shifts(&d, week_slots, direction == Direction::Up, settings) {
        let a = describe_shift(grid, &d, &shift, cost);
        flagged.push(a.start);
        anomalies.push(a);
    }
    anomalies.sort_by(|a, b| {
        b.impact
            .abs()
            .total_cmp(&a.impact.abs())
            .then(a.start.cmp(&b.start))
    });
    flagged.sort();
    result.scored_slots = found.scored;
    result.expected_false_episodes =
        (settings.false_episodes_per_1000 + settings.false_shifts_per_1000) * found.scored as f64
            / 1000.0;
    result.calibrations = found.calibrations;
    result.flagged = flagged;
    result.anomalies = anomalies;
    result
}

/// A level shift as an episode: at its first slot, with the impact of the new level over the
/// rest of the series (actual against the old level carried on).
fn describe_shift(grid: &Grid, d: &Decomposition, s: &shifts::Shift, cost: bool) -> SeriesAnomaly {
    let slots: Vec<usize> = (s.at..grid.values.len())
        .filter(|&i| grid.values[i].is_some() && d.expected[i].is_some())
        .collect();
    let actual: f64 = slots.iter().filter_map(|&i| grid.values[i]).sum();
    let expected: f64 = slots
        .iter()
        .filter_map(|&i| d.expected[i])
        .map(|e| e - s.delta)
        .sum();
    let impact = actual - expected;
    SeriesAnomaly {
        start: grid.time(s.at),
        end: grid.time(s.at),
        points: slots.len(),
        expected,
        actual,
        impact,
        impact_usd: cost.then_some(impact),
        direction: if s.delta > 0.0 { "above" } else { "below" }.to_string(),
        kind: "level_shift".to_string(),
        severity: Severity::from_chance(s.chance),
        chance: s.chance,
        score: s.score,
        ewma_score: 0.0,
    }
}

fn describe(
    grid: &Grid,
    expected: &[Option<f64>],
    smooth_z: &[f64],
    e: &Episode,
    kind: &str,
    cost: bool,
) -> SeriesAnomaly {
    let slots: Vec<usize> = (e.start..=e.end)
        .filter(|&i| grid.values[i].is_some() && expected[i].is_some())
        .collect();
    let actual: f64 = slots.iter().filter_map(|&i| grid.values[i]).sum();
    let expected_sum: f64 = slots.iter().filter_map(|&i| expected[i]).sum();
    let impact = actual - expected_sum;
    SeriesAnomaly {
        start: grid.time(e.start),
        end: grid.time(e.end),
        points: slots.len(),
        expected: expected_sum,
        actual,
        impact,
        impact_usd: cost.then_some(impact),
        direction: if e.up { "above" } else { "below" }.to_string(),
        kind: kind.to_string(),
        severity: Severity::from_chance(e.chance),
        chance: e.chance,
        score: e.peak_z,
        ewma_score: smooth_z[e.start..=e.end]
            .iter()
            .map(|v| v.abs())
            .fold(0.0, f64::max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// splitmix64 of `i` as a uniform number in (0, 1): deterministic noise.
    fn uniform(i: u64) -> f64 {
        let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal noise (Box-Muller).
    fn gaussian(i: u64) -> f64 {
        let (a, b) = (uniform(2 * i), uniform(2 * i + 1));
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    }

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).unwrap()
    }

    fn hourly(days: i64, f: impl Fn(i64) -> f64) -> Vec<(DateTime<Utc>, f64)> {
        (0..days * 24)
            .map(|h| (start() + Duration::hours(h), f(h)))
            .collect()
    }

    /// Weekdays busier than weekends, a daily wave, and 5% normal noise.
    fn usual(h: i64, seed: u64) -> f64 {
        let hour = (h % 24) as f64;
        let weekend = matches!((h / 24) % 7, 5 | 6);
        let base = if weekend { 40.0 } else { 100.0 };
        base * (1.0 + 0.5 * (std::f64::consts::TAU * hour / 24.0).sin())
            * (1.0 + 0.05 * gaussian(seed * 1_000_003 + h as u64))
    }

    fn detect(points: &[(DateTime<Utc>, f64)], direction: Direction) -> SeriesAnomalies {
        let g = Grid::from_points(points, Combine::Sum).unwrap();
        detect_series(&g, direction, direction == Direction::Up)
    }

    #[test]
    fn grid_and_season() {
        let g = Grid::from_points(&hourly(30, |h| usual(h, 1)), Combine::Sum).unwrap();
        assert_eq!(g.step, Duration::hours(1));
        assert_eq!(g.values.len(), 720);
        assert_eq!(g.season(), Some((168, "weekly")));
        let found = detect_series(&g, Direction::Both, false);
        assert_eq!(found.season, "weekly");
        assert!(found.seasonality.weekly_autocorrelation.unwrap() > 0.5);
        let g = Grid::from_points(&hourly(2, |h| usual(h, 1)), Combine::Sum).unwrap();
        assert_eq!(detect_series(&g, Direction::Both, false).season, "none");
        assert!(Grid::from_points(&[], Combine::Sum).is_none());
    }

    #[test]
    fn a_sustained_rise_is_one_episode_with_its_excess() {
        // Day 35, 08:00 to 19:59: three times the usual level.
        let rise = |h: i64| (35 * 24 + 8..35 * 24 + 20).contains(&h);
        let points = hourly(42, |h| usual(h, 2) * if rise(h) { 3.0 } else { 1.0 });
        let found = detect(&points, Direction::Up);
        assert_eq!(found.season, "weekly");
        assert_eq!(found.anomalies.len(), 1, "{:#?}", found.anomalies);
        let a = &found.anomalies[0];
        let day = start() + Duration::days(35);
        assert!(a.start >= day + Duration::hours(8) && a.end <= day + Duration::hours(19));
        assert!(a.end - a.start >= Duration::hours(9), "{a:#?}");
        assert_eq!(
            (a.kind.as_str(), a.direction.as_str()),
            ("departure", "above")
        );
        assert_eq!(a.severity, Severity::High);
        assert!(a.impact > 0.0 && a.impact_usd == Some(a.impact));
        assert!((a.actual - a.expected - a.impact).abs() < 1e-9);
        // The excess is the added two thirds of the window's spend, give or take the noise.
        let added: f64 = points
            .iter()
            .enumerate()
            .filter(|(h, _)| rise(*h as i64))
            .map(|(_, p)| p.1 * 2.0 / 3.0)
            .sum();
        assert!(
            (a.impact - added).abs() < 0.15 * added,
            "{} vs {added}",
            a.impact
        );
    }

    #[test]
    fn a_drop_counts_for_a_metric_not_for_a_cost() {
        let drop = |h: i64| (35 * 24 + 8..35 * 24 + 20).contains(&h);
        let points = hourly(42, |h| usual(h, 3) * if drop(h) { 0.2 } else { 1.0 });
        assert!(detect(&points, Direction::Up).anomalies.is_empty());
        let both = detect(&points, Direction::Both);
        assert_eq!(both.anomalies.len(), 1, "{:#?}", both.anomalies);
        assert_eq!(both.anomalies[0].direction, "below");
        assert!(both.anomalies[0].impact < 0.0);
        assert_eq!(both.anomalies[0].impact_usd, None);
    }

    /// The bound, by simulation: series of pure noise (normal and heavier, Laplace) around a
    /// daily and weekly pattern, with sharp weekday/weekend changes, get no more chance episodes
    /// than the stated bound.
    #[test]
    fn chance_episodes_stay_within_the_bound() {
        let (mut episodes, mut points) = (0usize, 0usize);
        for seed in 0..24u64 {
            let laplace = seed % 2 == 1;
            let series = hourly(60, |h| {
                let i = seed * 1_000_003 + h as u64;
                let e = if laplace {
                    let u = uniform(i) - 0.5;
                    -u.signum() * (1.0 - 2.0 * u.abs()).ln() / std::f64::consts::SQRT_2
                } else {
                    gaussian(i)
                };
                usual(h, 0) / (1.0 + 0.05 * gaussian(h as u64)) * (1.0 + 0.05 * e)
            });
            let found = detect(&series, Direction::Both);
            episodes += found.anomalies.len();
            points += found.scored_slots;
        }
        let allowed = STATED_FALSE_EPISODES_PER_1000 * points as f64 / 1000.0;
        println!("{episodes} chance episodes in {points} points ({allowed:.1} allowed)");
        assert!(
            (episodes as f64) <= allowed,
            "{episodes} episodes in {points} points; the bound allows {allowed:.1}"
        );
    }

    #[test]
    fn a_level_shift_is_reported_once() {
        // From day 28 on, the series runs 50% higher for good.
        let points = hourly(56, |h| usual(h, 4) * if h >= 28 * 24 { 1.5 } else { 1.0 });
        let found = detect(&points, Direction::Both);
        let shifts: Vec<&SeriesAnomaly> = found
            .anomalies
            .iter()
            .filter(|a| a.kind == "level_shift")
            .collect();
        assert_eq!(shifts.len(), 1, "{:#?}", found.anomalies);
        let change = start() + Duration::days(28);
        assert!(
            (shifts[0].start - change).num_hours().abs() <= 24,
            "{:#?}",
            shifts[0]
        );
        assert_eq!(shifts[0].direction, "above");
        // Not also a run of departures after the change.
        let after = found
            .anomalies
            .iter()
            .filter(|a| a.kind == "departure" && a.start >= change)
            .count();
        assert_eq!(after, 0, "{:#?}", found.anomalies);
        // Its impact is the extra level over the rest of the series.
        let extra: f64 = points[28 * 24..].iter().map(|p| p.1 / 3.0).sum();
        assert!(
            (shifts[0].impact - extra).abs() < 0.25 * extra,
            "{:#?}",
            shifts[0]
        );
    }

    #[test]
    fn episodes_are_ranked_by_impact_and_top_says_how_many_are_left() {
        // Three rises of different sizes on different days.
        let bump = |h: i64| match h / 24 {
            30 if (10..14).contains(&(h % 24)) => 2.0,
            36 if (10..14).contains(&(h % 24)) => 4.0,
            42 if (10..14).contains(&(h % 24)) => 3.0,
            _ => 1.0,
        };
        let points = hourly(49, |h| usual(h, 5) * bump(h));
        let found = detect(&points, Direction::Up);
        let days: Vec<i64> = found
            .anomalies
            .iter()
            .map(|a| (a.start - start()).num_days())
            .collect();
        // The three rises lead, largest first; a lesser chance departure may follow.
        assert_eq!(days[..3], [36, 42, 30], "{:#?}", found.anomalies);
        assert!(found.anomalies.len() <= 4, "{:#?}", found.anomalies);
        let (shown, left_out) = found.top(2);
        assert_eq!((shown.len(), left_out), (2, found.anomalies.len() - 2));
        assert_eq!(found.top(5).1, 0);
    }

    #[test]
    fn a_series_without_noise_reports_only_a_real_break() {
        let flat = hourly(30, |h| if h % 24 < 8 { 10.0 } else { 50.0 });
        assert!(detect(&flat, Direction::Both).anomalies.is_empty());
        let mut broken = flat.clone();
        broken[24 * 20 + 12].1 = 90.0;
        let found = detect(&broken, Direction::Both);
        assert_eq!(found.anomalies.len(), 1, "{:#?}", found.anomalies);
        assert_eq!(found.anomalies[0].points, 1);
    }
}
