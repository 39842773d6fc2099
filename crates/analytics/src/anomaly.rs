//! Finds days when spend jumped above what the recent weekly pattern predicts, and says which
//! model, team and feature caused the jump.
//!
//! Baseline: the median of the same weekday over the previous four weeks, each week scaled by
//! the recent week-over-week growth; for the first week, the median of earlier days of the same
//! kind (weekday or weekend). Residuals are relative (actual / expected - 1) so busy weekdays and
//! quiet weekends are judged on one scale, and scored with a robust z (median and MAD). Only
//! overspend is reported: a drop in cost is not a cost anomaly. As a second opinion an EWMA of
//! the daily z scores (alpha 0.3) is reported with each window: `confirmed_by_ewma` says whether
//! the smoothed score passed 2 as well, i.e. whether the departure is more than one noisy day.
//! (Finer series, where one slot is minutes, gate on that opinion: see `crate::timeseries`.)
//! This module must not read the clock or keep state between calls.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use serde::Serialize;

use crate::fastmap::FastMap;
use crate::prices::{PriceCache, PriceTable};
use crate::record::UsageRecord;
use crate::stats::{mad, median};
use crate::summary::{Filter, NONE_KEY};

/// Robust z above which a day is anomalous (the usual cut-off for MAD scores).
const Z_THRESHOLD: f64 = 3.5;
/// A day must exceed its baseline by at least this many dollars...
const MIN_EXCESS_USD: f64 = 1.0;
/// ...and by this fraction of it, so near-constant series do not flag cent-level noise.
const MIN_EXCESS_FRACTION: f64 = 0.02;
/// Lower bound on the relative spread, for series so regular their MAD is ~0.
const MIN_REL_SIGMA: f64 = 0.01;
/// How far before the filter's start history is read to build baselines.
const HISTORY_DAYS: i64 = 35;
const WEEKS: usize = 4;
/// Fewer scored days than this give no trustworthy spread.
const MIN_SCORED_DAYS: usize = 5;
/// A first-week baseline mixes weekdays (Monday is not Tuesday), so its z is divided by this.
const WEAK_BASELINE_DAMPING: f64 = 2.0;
/// Caps the score of spend that appears from nothing, which would otherwise be infinite.
const MAX_SCORE: f64 = 1000.0;
/// 1.4826 * MAD estimates a standard deviation for normally distributed data.
const MAD_TO_SIGMA: f64 = 1.4826;
/// EWMA smoothing of the daily z scores, and the level the smoothed score must pass.
const EWMA_ALPHA: f64 = 0.3;
const EWMA_THRESHOLD: f64 = 2.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contributor {
    /// "model", "team" or "feature".
    pub dimension: String,
    pub key: String,
    /// Dollars above this key's own baseline over the window.
    pub excess_usd: f64,
    /// `excess_usd` over the anomaly's impact; can pass 1 when other keys fell meanwhile.
    pub share_of_excess: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    /// First and last UTC day of the window (inclusive).
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Dollars the seasonal baseline expected over the window.
    pub expected: f64,
    /// Dollars spent over the window.
    pub actual: f64,
    /// actual - expected, in dollars.
    pub impact_usd: f64,
    /// The highest robust z of the window's days.
    pub score: f64,
    /// The highest EWMA of the daily z scores in the window (the second opinion).
    pub ewma_score: f64,
    /// Whether the EWMA passed its threshold too.
    pub confirmed_by_ewma: bool,
    pub contributors: Vec<Contributor>,
}

/// The expected cost of one day and the earlier days (with weights) it was derived from, so
/// contributors can be judged against the very same history.
struct Baseline {
    expected: f64,
    samples: Vec<(usize, f64)>,
    /// Built without a same-weekday sample (first week), so its z counts for less.
    weak: bool,
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Week-over-week growth at day `i`: the median of cost[j] / cost[j-7] over the previous seven
/// days. A median, so one spike moves it by one rank, not by its size.
fn weekly_growth(series: &[f64], i: usize) -> f64 {
    let ratios: Vec<f64> = (i.saturating_sub(7)..i)
        .filter(|&j| j >= 7 && series[j - 7] > 0.0)
        .map(|j| series[j] / series[j - 7])
        .collect();
    if ratios.len() < 3 {
        return 1.0;
    }
    median(&ratios).map_or(1.0, |g| g.clamp(0.8, 1.25))
}

fn weighted_median(values: &[f64], samples: &[(usize, f64)]) -> Option<f64> {
    let scaled: Vec<f64> = samples.iter().map(|&(j, w)| values[j] * w).collect();
    median(&scaled)
}

fn baseline(series: &[f64], first: NaiveDate, i: usize) -> Option<Baseline> {
    let weak = i < 7;
    let samples: Vec<(usize, f64)> = if !weak {
        let g = weekly_growth(series, i);
        (1..=WEEKS)
            .filter_map(|k| i.checked_sub(7 * k).map(|j| (j, g.powi(k as i32))))
            .collect()
    } else {
        let weekend = is_weekend(first + Duration::days(i as i64));
        let same_kind: Vec<(usize, f64)> = (0..i)
            .filter(|&j| is_weekend(first + Duration::days(j as i64)) == weekend)
            .map(|j| (j, 1.0))
            .collect();
        if same_kind.len() < 2 {
            return None;
        }
        same_kind
    };
    let expected = weighted_median(series, &samples)?;
    Some(Baseline {
        expected,
        samples,
        weak,
    })
}

/// Cost anomalies in the filtered records, largest dollar impact first.
/// History up to 35 days before the filter's start is used for baselines but never flagged.
pub fn detect_anomalies(
    records: &[UsageRecord],
    prices: &PriceTable,
    filter: &Filter,
) -> Vec<Anomaly> {
    let history_start = filter
        .start
        .and_then(|s| s.checked_sub_signed(Duration::days(HISTORY_DAYS)));
    let in_range =
        |t: DateTime<Utc>| history_start.is_none_or(|h| t >= h) && filter.end.is_none_or(|e| t < e);
    let mut cache = PriceCache::new(prices);
    let mut daily: FastMap<NaiveDate, f64> = FastMap::default();
    for r in records {
        if filter.matches_dims(r) && in_range(r.timestamp) {
            *daily.entry(r.timestamp.date_naive()).or_default() += cache.cost(r).0;
        }
    }
    let (Some(&first), Some(&last)) = (daily.keys().min(), daily.keys().max()) else {
        return Vec::new();
    };
    let n = usize::try_from((last - first).num_days() + 1).unwrap_or(0);
    let series: Vec<f64> = (0..n)
        .map(|i| {
            let d = first + Duration::days(i as i64);
            daily.get(&d).copied().unwrap_or(0.0)
        })
        .collect();
    let baselines: Vec<Option<Baseline>> = (0..n).map(|i| baseline(&series, first, i)).collect();

    let relative: Vec<f64> = baselines
        .iter()
        .zip(&series)
        .filter_map(|(b, &actual)| match b {
            Some(b) if b.expected > 0.0 => Some(actual / b.expected - 1.0),
            _ => None,
        })
        .collect();
    if relative.len() < MIN_SCORED_DAYS {
        return Vec::new();
    }
    let center = median(&relative).unwrap_or(0.0);
    let sigma = (MAD_TO_SIGMA * mad(&relative, center).unwrap_or(0.0)).max(MIN_REL_SIGMA);
    let report_from = filter.start.map(|s| s.date_naive());

    // Score every day, then merge runs of flagged days into windows.
    let mut windows: Vec<(usize, usize, f64)> = Vec::new();
    let mut ewma = 0.0;
    let mut smooth = vec![0.0; n];
    for (i, b) in baselines.iter().enumerate() {
        let Some(b) = b else { continue };
        let actual = series[i];
        let excess = actual - b.expected;
        let mut z = if b.expected > 0.0 {
            ((actual / b.expected - 1.0 - center) / sigma).min(MAX_SCORE)
        } else {
            MAX_SCORE
        };
        if b.weak {
            z /= WEAK_BASELINE_DAMPING;
        }
        ewma = EWMA_ALPHA * z + (1.0 - EWMA_ALPHA) * ewma;
        smooth[i] = ewma;
        let date = first + Duration::days(i as i64);
        if report_from.is_some_and(|from| date < from) {
            continue;
        }
        if z > Z_THRESHOLD && excess > MIN_EXCESS_USD.max(MIN_EXCESS_FRACTION * b.expected) {
            match windows.last_mut() {
                Some((_, end, score)) if *end + 1 == i => {
                    *end = i;
                    *score = score.max(z);
                }
                _ => windows.push((i, i, z)),
            }
        }
    }
    if windows.is_empty() {
        return Vec::new();
    }

    let contributors = contributors(
        records, filter, &mut cache, first, &series, &baselines, &windows, &in_range,
    );
    let mut anomalies: Vec<Anomaly> = windows
        .iter()
        .zip(contributors)
        .map(|(&(s, e, score), contributors)| {
            let actual: f64 = series[s..=e].iter().sum();
            let expected: f64 = baselines[s..=e]
                .iter()
                .map(|b| b.as_ref().map_or(0.0, |b| b.expected))
                .sum();
            let ewma_score = smooth[s..=e].iter().copied().fold(f64::MIN, f64::max);
            Anomaly {
                start: first + Duration::days(s as i64),
                end: first + Duration::days(e as i64),
                expected,
                actual,
                impact_usd: actual - expected,
                score,
                ewma_score,
                confirmed_by_ewma: ewma_score > EWMA_THRESHOLD,
                contributors,
            }
        })
        .collect();
    anomalies.sort_by(|a, b| {
        b.impact_usd
            .total_cmp(&a.impact_usd)
            .then(a.start.cmp(&b.start))
    });
    anomalies
}

const DIMENSIONS: [&str; 3] = ["model", "team", "feature"];

/// For each window, the top three (dimension, key) pairs by dollars above their own baseline.
#[allow(clippy::too_many_arguments)]
fn contributors<'r>(
    records: &'r [UsageRecord],
    filter: &Filter,
    cache: &mut PriceCache<'_, 'r>,
    first: NaiveDate,
    series: &[f64],
    baselines: &[Option<Baseline>],
    windows: &[(usize, usize, f64)],
    in_range: &dyn Fn(DateTime<Utc>) -> bool,
) -> Vec<Vec<Contributor>> {
    // Only the window days and the history days their baselines use need per-key costs.
    let mut slot_of: FastMap<usize, usize> = FastMap::default();
    for &(s, e, _) in windows {
        for (i, b) in baselines.iter().enumerate().take(e + 1).skip(s) {
            let next = slot_of.len();
            slot_of.entry(i).or_insert(next);
            if let Some(b) = b {
                for &(j, _) in &b.samples {
                    let next = slot_of.len();
                    slot_of.entry(j).or_insert(next);
                }
            }
        }
    }
    let slots = slot_of.len();
    let mut per_key: FastMap<(usize, &'r str), Vec<f64>> = FastMap::default();
    for r in records {
        if !filter.matches_dims(r) || !in_range(r.timestamp) {
            continue;
        }
        let Ok(day) = usize::try_from((r.timestamp.date_naive() - first).num_days()) else {
            continue;
        };
        let Some(&slot) = slot_of.get(&day) else {
            continue;
        };
        let cost = cache.cost(r).0;
        let keys = [
            r.model.as_str(),
            r.team.as_deref().unwrap_or(NONE_KEY),
            r.feature.as_deref().unwrap_or(NONE_KEY),
        ];
        for (dim, key) in keys.into_iter().enumerate() {
            per_key
                .entry((dim, key))
                .or_insert_with(|| vec![0.0; slots])[slot] += cost;
        }
    }

    windows
        .iter()
        .map(|&(s, e, _)| {
            let impact: f64 = (s..=e)
                .map(|i| series[i] - baselines[i].as_ref().map_or(0.0, |b| b.expected))
                .sum();
            let mut found: Vec<Contributor> = per_key
                .iter()
                .filter_map(|(&(dim, key), costs)| {
                    let mut excess = 0.0;
                    for (i, b) in baselines.iter().enumerate().take(e + 1).skip(s) {
                        let actual = slot_of.get(&i).map_or(0.0, |&k| costs[k]);
                        let expected = b.as_ref().map_or(0.0, |b| {
                            let scaled: Vec<f64> = b
                                .samples
                                .iter()
                                .map(|&(j, w)| slot_of.get(&j).map_or(0.0, |&k| costs[k]) * w)
                                .collect();
                            median(&scaled).unwrap_or(0.0)
                        });
                        excess += actual - expected;
                    }
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
        })
        .collect()
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
    use chrono::TimeZone;

    /// A steady series: weekdays $100 of gpt-4o-mini output, weekends $40, team "base".
    fn steady(days: u32) -> Vec<UsageRecord> {
        let start = Utc.with_ymd_and_hms(2026, 9, 1, 12, 0, 0).unwrap();
        (0..days)
            .map(|d| {
                let t = start + Duration::days(i64::from(d));
                let dollars = if is_weekend(t.date_naive()) {
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
        assert!(a.score > Z_THRESHOLD);
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
        // Same day, dollars and causes; the score differs as its spread comes from less history.
        assert_eq!(found_recent[0].start, top.start);
        assert_eq!(found_recent[0].impact_usd, top.impact_usd);
        assert_eq!(found_recent[0].contributors, top.contributors);
        assert!(
            (top.impact_usd - planted).abs() < 0.1 * planted,
            "{} vs {planted}",
            top.impact_usd
        );
    }
}
