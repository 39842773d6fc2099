//! Which season a series has, found from its own autocorrelation, and a robust split of the
//! series into level, seasonal profile and residual, with the residual's usual spread at each
//! point of the season.
//!
//! Season: the candidates are a day and a week (in slots of the grid), each only when the series
//! spans at least three of them. For each, the series minus its rolling median over one period
//! (which removes the trend and keeps the season) is clipped at four robust standard deviations
//! (so a few spikes cannot make or break a season) and correlated with itself one period later.
//! A candidate whose autocorrelation reaches `MIN_AUTOCORRELATION` is a season; the week wins over
//! the day only when it explains clearly more (`WEEKLY_GAIN`), since a week has seven times fewer
//! cycles to learn each slot from.
//!
//! Decomposition (in the spirit of STL, with medians): level = rolling median over the level
//! window of the series minus its season; season = per slot, the median over cycles of the
//! series minus its level; residual = series - level - season. Both are computed twice so the
//! season does not leak into the level at the ends of the series. The spread is the MAD of the
//! residuals at and around each slot of the season, over all cycles, so busy afternoons and quiet
//! nights are each judged against their own noise.
//!
//! This module must not decide what is anomalous: it describes what is usual.

use serde::Serialize;

use crate::stats::{MAD_TO_SIGMA, mad, median, rolling_median};

/// Autocorrelation one period apart that makes a candidate period a season.
pub const MIN_AUTOCORRELATION: f64 = 0.3;
/// How much more the week must explain than the day to be preferred.
pub const WEEKLY_GAIN: f64 = 0.05;
/// Residuals are clipped at this many robust standard deviations before correlating.
const CLIP_SIGMAS: f64 = 4.0;
/// A series must span this many periods for the period to be considered.
const MIN_CYCLES: usize = 3;
/// Each slot of the seasonal profile is the median of at least this many values...
const MIN_PROFILE_SAMPLES: usize = 5;
/// ...taken from neighbouring slots when it has fewer, up to this fraction of the period each side.
const MAX_PROFILE_POOL: f64 = 1.0 / 48.0;
/// Each slot's spread pools this fraction of the period around it (on each side)...
const SPREAD_POOL_FRACTION: f64 = 1.0 / 48.0;
/// ...and at least this many residuals.
const MIN_SPREAD_SAMPLES: usize = 30;
/// A slot with enough values of its own uses its own spread when it is this many times the
/// pooled one.
const OWN_SPREAD_RATIO: f64 = 1.5;
/// No slot's spread falls below this fraction of the whole series' spread, so a slot that is
/// almost always zero (night-time counts) does not turn one unit into an alarm.
const MIN_SLOT_SPREAD: f64 = 0.25;

/// The season found in a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Season {
    /// "weekly", "daily" or "none".
    pub name: String,
    /// Slots per season; 1 when there is none.
    pub period: usize,
    /// Autocorrelation one day apart, when a day was a candidate.
    pub daily_autocorrelation: Option<f64>,
    /// Autocorrelation one week apart, when a week was a candidate.
    pub weekly_autocorrelation: Option<f64>,
}

/// Finds the season of `values` (a regular grid with holes), given how many slots make a day.
pub fn detect_season(values: &[Option<f64>], slots_per_day: Option<usize>) -> Season {
    let n = values.len();
    let candidate = |period: usize| {
        (period >= 2 && n >= MIN_CYCLES * period).then(|| autocorrelation(values, period))
    };
    let day = slots_per_day.filter(|&d| d >= 2);
    let daily = day.and_then(candidate).flatten();
    let weekly = slots_per_day.and_then(|d| candidate(7 * d)).flatten();
    let (name, period) = match (daily, weekly) {
        (d, Some(w)) if w >= MIN_AUTOCORRELATION && d.is_none_or(|d| w >= d + WEEKLY_GAIN) => {
            ("weekly", 7 * slots_per_day.unwrap_or(1))
        }
        (Some(d), _) if d >= MIN_AUTOCORRELATION => ("daily", day.unwrap_or(1)),
        _ => ("none", 1),
    };
    Season {
        name: name.to_string(),
        period,
        daily_autocorrelation: daily,
        weekly_autocorrelation: weekly,
    }
}

/// Correlation of the detrended, clipped series with itself `lag` slots later, over the pairs
/// where both are present. None when fewer than `lag` pairs exist or the series is constant.
fn autocorrelation(values: &[Option<f64>], lag: usize) -> Option<f64> {
    let trend = rolling_median(values, lag);
    let detrended: Vec<Option<f64>> = values
        .iter()
        .zip(&trend)
        .map(|(v, t)| Some((*v)? - (*t)?))
        .collect();
    let present: Vec<f64> = detrended.iter().flatten().copied().collect();
    let center = median(&present)?;
    let sigma = spread(&present, center);
    if sigma <= 0.0 {
        return None;
    }
    let clip = |v: f64| (v - center).clamp(-CLIP_SIGMAS * sigma, CLIP_SIGMAS * sigma);
    let (mut xy, mut xx, mut yy, mut pairs) = (0.0, 0.0, 0.0, 0usize);
    for (a, b) in detrended.iter().zip(&detrended[lag.min(detrended.len())..]) {
        if let (Some(a), Some(b)) = (a, b) {
            let (a, b) = (clip(*a), clip(*b));
            xy += a * b;
            xx += a * a;
            yy += b * b;
            pairs += 1;
        }
    }
    (pairs >= lag && xx > 0.0 && yy > 0.0).then(|| xy / (xx * yy).sqrt())
}

/// A robust standard deviation: 1.4826 MAD, or when more than half the values are equal (so the
/// MAD is 0) 1.2533 times the mean absolute deviation, its normal-consistent stand-in.
pub(crate) fn spread(values: &[f64], center: f64) -> f64 {
    let m = MAD_TO_SIGMA * mad(values, center).unwrap_or(0.0);
    if m > 0.0 || values.is_empty() {
        return m;
    }
    1.2533 * values.iter().map(|v| (v - center).abs()).sum::<f64>() / values.len() as f64
}

/// A series split into what is usual and what is left.
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposition {
    /// Slots per season (1: no season).
    pub period: usize,
    /// Slots of the rolling median that makes the level.
    pub level_window: usize,
    /// The level of each slot (the series without its season, smoothed over the level window);
    /// defined in holes too, wherever the window holds a value.
    pub level: Vec<Option<f64>>,
    /// The usual value of each slot: level plus season. None in holes.
    pub expected: Vec<Option<f64>>,
    /// The series minus `expected`. None in holes.
    pub residual: Vec<Option<f64>>,
    /// The residuals' usual spread at each slot of the season (`period` values, all positive).
    pub spread: Vec<f64>,
}

impl Decomposition {
    /// The residual of slot `i` in spreads (a robust z), when the slot has a value.
    pub fn score(&self, i: usize) -> Option<f64> {
        Some(self.residual[i]? / self.spread[i % self.period])
    }
}

/// Splits `values` into level, season (of `period` slots; 1 for none) and residual; the level is
/// a rolling median over `level_window` slots.
pub fn decompose(values: &[Option<f64>], period: usize, level_window: usize) -> Decomposition {
    let period = period.max(1);
    let n = values.len();
    let minus = |a: &[Option<f64>], b: &dyn Fn(usize) -> Option<f64>| -> Vec<Option<f64>> {
        (0..n).map(|i| Some(a[i]? - b(i)?)).collect()
    };
    // First pass: the level of the raw series, trusted only where its window is whole.
    let rough_level = rolling_median(values, level_window);
    let half = level_window / 2;
    let whole = |i: usize| i >= half && i + (level_window - half) <= n;
    let rough: Vec<Option<f64>> = (0..n)
        .map(|i| {
            if whole(i) || n < level_window {
                Some(values[i]? - rough_level[i]?)
            } else {
                None
            }
        })
        .collect();
    let season = seasonal_profile(&rough, period);
    // Second pass: the level of the deseasonalised series, then the season around that level.
    let deseasoned = minus(values, &|i| Some(season[i % period]));
    let level = rolling_median(&deseasoned, level_window);
    let detrended = minus(values, &|i| level[i]);
    let season = seasonal_profile(&detrended, period);
    let expected: Vec<Option<f64>> = (0..n)
        .map(|i| {
            values[i]?;
            Some(level[i]? + season[i % period])
        })
        .collect();
    let residual = minus(values, &|i| expected[i]);
    let spread = slot_spreads(&residual, period);
    Decomposition {
        period,
        level_window,
        level,
        expected,
        residual,
        spread,
    }
}

/// Per slot of the season, the median of the values at that slot; centred on zero so the level
/// keeps the series' own level.
fn seasonal_profile(values: &[Option<f64>], period: usize) -> Vec<f64> {
    if period == 1 {
        return vec![0.0];
    }
    let mut by_slot: Vec<Vec<f64>> = vec![Vec::new(); period];
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            by_slot[i % period].push(*v);
        }
    }
    // Sparse series have few values per slot; a slot then borrows its nearest neighbours' values
    // (never further than `MAX_PROFILE_POOL` of the period) so its median describes the season,
    // not the one or two values that happened to fall there.
    let max_pool = ((MAX_PROFILE_POOL * period as f64) as usize).min(period / 2);
    let raw: Vec<f64> = (0..period)
        .map(|s| {
            let mut pooled: Vec<f64> = by_slot[s].clone();
            let mut h = 0;
            while pooled.len() < MIN_PROFILE_SAMPLES && h < max_pool {
                h += 1;
                pooled.extend(&by_slot[(s + h) % period]);
                pooled.extend(&by_slot[(s + period - h) % period]);
            }
            median(&pooled).unwrap_or(f64::NAN)
        })
        .collect();
    let known: Vec<f64> = raw.iter().copied().filter(|v| v.is_finite()).collect();
    let center = median(&known).unwrap_or(0.0);
    raw.iter()
        .map(|v| if v.is_finite() { v - center } else { 0.0 })
        .collect()
}

/// The residuals' robust spread at each slot of the season, pooling neighbouring slots.
fn slot_spreads(residual: &[Option<f64>], period: usize) -> Vec<f64> {
    let all: Vec<f64> = residual.iter().flatten().copied().collect();
    let overall = median(&all).map_or(0.0, |c| spread(&all, c));
    // A series with no noise at all still needs a unit to count departures in: a millionth of
    // its typical size (so only real departures from an exact pattern register).
    let tiny = 1e-6 * median(&all.iter().map(|v| v.abs()).collect::<Vec<_>>()).unwrap_or(0.0);
    let floor = (MIN_SLOT_SPREAD * overall).max(tiny).max(f64::MIN_POSITIVE);
    if period == 1 {
        return vec![overall.max(floor)];
    }
    let mut by_slot: Vec<Vec<f64>> = vec![Vec::new(); period];
    for (i, v) in residual.iter().enumerate() {
        if let Some(v) = v {
            by_slot[i % period].push(*v);
        }
    }
    let cycles = residual.len().div_ceil(period).max(1);
    let pool = ((SPREAD_POOL_FRACTION * period as f64).round() as usize)
        .max(MIN_SPREAD_SAMPLES.div_ceil(cycles) / 2)
        .min(period / 2);
    (0..period)
        .map(|s| {
            let pooled: Vec<f64> = (0..=2 * pool)
                .flat_map(|k| &by_slot[(s + period + k - pool) % period])
                .copied()
                .collect();
            let local = median(&pooled).map_or(overall, |c| spread(&pooled, c));
            // Pooling blurs a sharp change of noise between neighbouring slots (a quiet Sunday
            // night before a busy Monday): a slot whose own values are clearly noisier than its
            // neighbourhood is judged against its own spread.
            let own = &by_slot[s];
            let own = if own.len() >= MIN_PROFILE_SAMPLES {
                median(own).map_or(0.0, |c| spread(own, c))
            } else {
                0.0
            };
            let local = if own > OWN_SPREAD_RATIO * local {
                own
            } else {
                local
            };
            local.max(floor)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64 of `i`, as a uniform number in [0, 1): deterministic noise for tests.
    pub(crate) fn noise(i: u64) -> f64 {
        let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn hourly(days: usize, f: impl Fn(usize) -> f64) -> Vec<Option<f64>> {
        (0..days * 24).map(|h| Some(f(h))).collect()
    }

    #[test]
    fn a_daily_pattern_is_daily_and_weekends_make_it_weekly() {
        let day = |h: usize| (std::f64::consts::TAU * (h % 24) as f64 / 24.0).sin();
        let daily = hourly(28, |h| 100.0 + 30.0 * day(h) + 5.0 * noise(h as u64));
        let s = detect_season(&daily, Some(24));
        assert_eq!((s.name.as_str(), s.period), ("daily", 24), "{s:?}");
        let weekly = hourly(28, |h| {
            let weekend = (h / 24) % 7 >= 5;
            (if weekend { 40.0 } else { 100.0 }) * (1.0 + 0.3 * day(h)) + 5.0 * noise(h as u64)
        });
        let s = detect_season(&weekly, Some(24));
        assert_eq!((s.name.as_str(), s.period), ("weekly", 168), "{s:?}");
        let flat = hourly(28, |h| 100.0 + 5.0 * noise(h as u64));
        assert_eq!(detect_season(&flat, Some(24)).name, "none");
        // Too short for a week: only the day is tried.
        let short = hourly(10, |h| 100.0 + 30.0 * day(h) + 5.0 * noise(h as u64));
        let s = detect_season(&short, Some(24));
        assert_eq!((s.name.as_str(), s.weekly_autocorrelation), ("daily", None));
    }

    #[test]
    fn an_exact_pattern_leaves_no_residual_even_at_the_ends() {
        let values: Vec<Option<f64>> = (0..24 * 10)
            .map(|h| Some(if h % 24 < 8 { 10.0 } else { 50.0 }))
            .collect();
        let d = decompose(&values, 24, 24);
        for (i, r) in d.residual.iter().enumerate() {
            assert!(r.unwrap().abs() < 1e-9, "slot {i}: {r:?}");
        }
        assert!(d.spread.iter().all(|s| *s > 0.0));
    }

    #[test]
    fn a_spike_stands_out_against_its_own_slot() {
        let mut values = hourly(21, |h| {
            let busy = (8..20).contains(&(h % 24));
            (if busy { 100.0 } else { 10.0 }) * (0.9 + 0.2 * noise(h as u64))
        });
        values[24 * 15 + 3] = Some(60.0); // 03:00, usually ~10
        let d = decompose(&values, 24, 24);
        let z = d.score(24 * 15 + 3).unwrap();
        assert!(z > 20.0, "{z}");
        // Busy hours are noisier, so their spread is larger.
        assert!(d.spread[12] > 3.0 * d.spread[3], "{:?}", d.spread);
    }
}
