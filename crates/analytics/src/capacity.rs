//! Capacity: tokens and requests per minute, their percentiles, the comparison with rate limits,
//! a Holt-Winters forecast of the hourly peak, and the time until a limit is reached.
//!
//! Resolution: records of single requests are counted in the minute they started. Bucketed records
//! (`request_count > 1`, e.g. hourly rollups) say nothing about minutes inside the bucket, so their
//! tokens are spread evenly over the bucket's width (the data's own spacing, at most a day); the
//! result says which resolution it had, since spreading hides bursts. Percentiles are nearest-rank
//! over every minute from the first record's to the last's, idle minutes included, within the last
//! 92 days of the records (older ones are left out, with a note): memory is bounded whatever the
//! span, and per-model series exist only for the busiest models and those a limit names.
//!
//! Forecast: the hourly series of the busiest minute of each hour (tokens), seasonal by day or
//! week as the history allows, backtested on its own last season against seasonal-naive. The time
//! to a limit is the first forecast hour whose peak reaches it, else, when the trend rises, the
//! hours until the seasonal peak grows to it at that trend. This module must not read the clock.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::cancel::{Checkpoint, Ticks, Uninterrupted};
use crate::fastmap::FastMap;
use crate::forecast::{Backtest, HoltWinters, backtest};
use crate::record::UsageRecord;
use crate::stats::median;
use crate::summary::Filter;

/// Forecast horizon in hours (two weeks).
pub const FORECAST_HOURS: usize = 14 * 24;
/// Trend extrapolation beyond this many hours (two years) is not reported.
const MAX_EXTRAPOLATION_HOURS: f64 = 2.0 * 365.0 * 24.0;
/// Minute series cover at most the last this many days of the records in scope (132,480 minutes,
/// about 2 MB a series), so one request's memory is bounded whatever the span of the data.
const MAX_DAYS_BY_MINUTE: i64 = 92;
/// Per-model minute series are built for this many models with the most tokens (and for the
/// model each rate limit names), never for every model of the tenant.
const MODELS_BY_MINUTE: usize = 5;

/// A configured rate limit: per model, or for all traffic with model `*`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimit {
    pub model: String,
    pub tokens_per_minute: Option<f64>,
    pub requests_per_minute: Option<f64>,
}

impl RateLimit {
    /// `MODEL=TPM` or `MODEL=TPM:RPM` (either number may be empty), e.g. `gpt-4o=2000000:10000`,
    /// `*=:500`.
    ///
    /// # Errors
    /// A message saying what is wrong with the text.
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let (model, limits) = text
            .split_once('=')
            .ok_or_else(|| format!("rate limit {text:?}: expected MODEL=TPM[:RPM]"))?;
        let model = model.trim();
        if model.is_empty() {
            return Err(format!(
                "rate limit {text:?}: the model is empty (use * for all traffic)"
            ));
        }
        let (tpm, rpm) = limits.split_once(':').unwrap_or((limits, ""));
        let number = |s: &str, what: &str| -> Result<Option<f64>, String> {
            let s = s.trim().replace('_', "");
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
                _ => Err(format!(
                    "rate limit {text:?}: {what} {s:?} is not a positive number"
                )),
            }
        };
        let limit = RateLimit {
            model: model.to_string(),
            tokens_per_minute: number(tpm, "tokens per minute")?,
            requests_per_minute: number(rpm, "requests per minute")?,
        };
        if limit.tokens_per_minute.is_none() && limit.requests_per_minute.is_none() {
            return Err(format!(
                "rate limit {text:?}: give tokens and/or requests per minute"
            ));
        }
        Ok(limit)
    }

    fn applies_to(&self, model: &str) -> bool {
        self.model == "*" || self.model.eq_ignore_ascii_case(model)
    }
}

/// Nearest-rank percentiles of a per-minute rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateStats {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl RateStats {
    fn of(values: &[f64]) -> RateStats {
        if values.is_empty() {
            return RateStats {
                p50: 0.0,
                p95: 0.0,
                p99: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        RateStats {
            p50: nearest_rank(&v, 0.50),
            p95: nearest_rank(&v, 0.95),
            p99: nearest_rank(&v, 0.99),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// The smallest value with at least `p` of the sorted values at or below it.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRates {
    pub model: String,
    pub tokens_per_minute: RateStats,
    pub requests_per_minute: RateStats,
}

/// A rate limit against what the traffic does and where the forecast takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitCheck {
    pub limit: RateLimit,
    pub peak_tokens_per_minute: f64,
    pub p99_tokens_per_minute: f64,
    pub peak_requests_per_minute: f64,
    pub p99_requests_per_minute: f64,
    /// Peak over limit, for the binding dimension (1.0 = at the limit).
    pub peak_utilisation: f64,
    /// Minutes whose tokens or requests exceeded the limit.
    pub minutes_over_limit: u64,
    /// Hours from the end of the data until the forecast peak reaches the token limit.
    pub hours_until_limit: Option<f64>,
    pub limit_reached_at: Option<DateTime<Utc>>,
    /// How `hours_until_limit` was found: "already exceeded", "forecast", "trend", or why not.
    pub basis: String,
}

/// The hourly peak forecast and its backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityForecast {
    /// "daily" (24 h) or "weekly" (168 h).
    pub season: String,
    pub start: DateTime<Utc>,
    /// Peak tokens per minute, one value per hour from `start`.
    pub peak_tokens_per_minute: Vec<f64>,
    pub model: HoltWinters,
    pub backtest: Option<Backtest>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    /// "per request" or "bucketed (spread over N minutes)".
    pub resolution: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub minutes: usize,
    pub tokens_per_minute: RateStats,
    pub requests_per_minute: RateStats,
    /// The models with the most tokens, at most five.
    pub by_model: Vec<ModelRates>,
    pub limits: Vec<LimitCheck>,
    pub forecast: Option<CapacityForecast>,
    pub notes: Vec<String>,
}

/// Per-minute series of one slice of traffic.
struct Minutes {
    tokens: Vec<f64>,
    requests: Vec<f64>,
}

impl Minutes {
    fn new(n: usize) -> Self {
        Minutes {
            tokens: vec![0.0; n],
            requests: vec![0.0; n],
        }
    }

    fn add(&mut self, first: usize, width: usize, tokens: f64, requests: f64) {
        let width = width.max(1);
        let end = (first + width).min(self.tokens.len());
        let (t, r) = (tokens / width as f64, requests / width as f64);
        for i in first..end {
            self.tokens[i] += t;
            self.requests[i] += r;
        }
    }
}

/// Capacity of the filtered records against `limits`.
pub fn capacity(records: &[UsageRecord], filter: &Filter, limits: &[RateLimit]) -> Capacity {
    let Ok(capacity) = capacity_cancellable(records, filter, limits, &Uninterrupted);
    capacity
}

/// [`capacity`], stopping early (with `C::Stop`) when the checkpoint says so.
///
/// # Errors
/// The checkpoint's stop, looked at every few thousand records and between the stages.
pub fn capacity_cancellable<C: Checkpoint>(
    records: &[UsageRecord],
    filter: &Filter,
    limits: &[RateLimit],
    checkpoint: &C,
) -> Result<Capacity, C::Stop> {
    let mut ticks = Ticks::new(checkpoint);
    let mut selected: Vec<&UsageRecord> = Vec::new();
    for r in records {
        ticks.tick()?;
        if filter.matches(r) {
            selected.push(r);
        }
    }
    let mut notes = Vec::new();
    let empty = |resolution: &str, notes: Vec<String>| Capacity {
        resolution: resolution.to_string(),
        start: None,
        end: None,
        minutes: 0,
        tokens_per_minute: RateStats::of(&[]),
        requests_per_minute: RateStats::of(&[]),
        by_model: Vec::new(),
        limits: Vec::new(),
        forecast: None,
        notes,
    };
    let Some(last) = selected.iter().map(|r| r.timestamp).max() else {
        return Ok(empty("none", vec!["no records in scope".to_string()]));
    };
    let earliest = floor_minute(last) - Duration::days(MAX_DAYS_BY_MINUTE);
    let before = selected.len();
    selected.retain(|r| r.timestamp >= earliest);
    if selected.len() < before {
        notes.push(format!(
            "capacity is measured over the last {MAX_DAYS_BY_MINUTE} days of the records (from {}); {} earlier record(s) are left out",
            earliest.format("%Y-%m-%d"),
            before - selected.len()
        ));
    }
    let Some(first) = selected.iter().map(|r| r.timestamp).min() else {
        return Ok(empty("none", vec!["no records in scope".to_string()]));
    };
    let bucketed = selected.iter().any(|r| r.request_count > 1);
    let width = if bucketed {
        bucket_minutes(&selected)
    } else {
        1
    };
    let first_minute = floor_minute(first);
    let span = (floor_minute(last) - first_minute).num_minutes() + width as i64;
    let n = usize::try_from(span).unwrap_or(0);
    // Which models get a series of their own: the busiest, and each limit's model.
    checkpoint.check()?;
    let mut totals: FastMap<&str, f64> = FastMap::default();
    for r in &selected {
        ticks.tick()?;
        *totals.entry(r.model.as_str()).or_insert(0.0) +=
            r.input_tokens as f64 + r.output_tokens as f64;
    }
    let mut models: Vec<(&str, f64)> = totals.into_iter().collect();
    models.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let mut tracked: Vec<&str> = models
        .iter()
        .take(MODELS_BY_MINUTE)
        .map(|(m, _)| *m)
        .collect();
    for limit in limits.iter().filter(|l| l.model != "*") {
        if let Some((m, _)) = models.iter().find(|(m, _)| limit.applies_to(m))
            && !tracked.contains(m)
        {
            tracked.push(m);
        }
    }
    let mut total = Minutes::new(n);
    let mut per_model: FastMap<&str, (f64, Minutes)> = tracked
        .iter()
        .map(|m| (*m, (0.0, Minutes::new(n))))
        .collect();
    for r in &selected {
        ticks.tick()?;
        let i =
            usize::try_from((floor_minute(r.timestamp) - first_minute).num_minutes()).unwrap_or(0);
        let tokens = r.input_tokens as f64 + r.output_tokens as f64;
        let requests = r.request_count as f64;
        total.add(i, width, tokens, requests);
        if let Some(entry) = per_model.get_mut(r.model.as_str()) {
            entry.0 += tokens;
            entry.1.add(i, width, tokens, requests);
        }
    }
    let resolution = if bucketed {
        notes.push(format!(
            "records are buckets of many requests: each bucket's tokens are spread evenly over {width} minute(s), so bursts inside a bucket are not visible"
        ));
        format!("bucketed (spread over {width} minutes)")
    } else {
        "per request".to_string()
    };
    let by_model = models
        .iter()
        .take(MODELS_BY_MINUTE)
        .filter_map(|(m, _)| {
            let (_, minutes) = per_model.get(m)?;
            Some(ModelRates {
                model: (*m).to_string(),
                tokens_per_minute: RateStats::of(&minutes.tokens),
                requests_per_minute: RateStats::of(&minutes.requests),
            })
        })
        .collect();

    checkpoint.check()?;
    let forecast = hourly_forecast(&total.tokens, first_minute);
    checkpoint.check()?;
    if forecast.is_none() {
        notes.push(
            "fewer than three days of data: no seasonal forecast (Holt-Winters needs two seasons to fit and one to test)"
                .to_string(),
        );
    }
    let data_end = first_minute + Duration::minutes(span);
    let limits = limits
        .iter()
        .map(|limit| {
            let slice = if limit.model == "*" {
                Some(&total)
            } else {
                models
                    .iter()
                    .find(|(m, _)| limit.applies_to(m))
                    .and_then(|(m, _)| per_model.get(m))
                    .map(|(_, minutes)| minutes)
            };
            let empty_minutes = Minutes::new(0);
            let slice = slice.unwrap_or(&empty_minutes);
            let own_forecast;
            let forecast_ref = if limit.model == "*" {
                forecast.as_ref()
            } else {
                own_forecast = hourly_forecast(&slice.tokens, first_minute);
                own_forecast.as_ref()
            };
            check_limit(limit, slice, forecast_ref, data_end)
        })
        .collect();

    Ok(Capacity {
        resolution,
        start: Some(first),
        end: Some(last),
        minutes: n,
        tokens_per_minute: RateStats::of(&total.tokens),
        requests_per_minute: RateStats::of(&total.requests),
        by_model,
        limits,
        forecast,
        notes,
    })
}

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp().div_euclid(60) * 60, 0).unwrap_or(t)
}

/// The width of the data's buckets in minutes: the median spacing of distinct timestamps,
/// between one minute and one day.
fn bucket_minutes(records: &[&UsageRecord]) -> usize {
    let mut times: Vec<i64> = records.iter().map(|r| r.timestamp.timestamp()).collect();
    times.sort_unstable();
    times.dedup();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 60.0)
        .collect();
    median(&gaps).map_or(60, |m| m.round().clamp(1.0, 1440.0) as usize)
}

/// The busiest minute of each hour, and its Holt-Winters forecast when the history allows.
fn hourly_forecast(tokens: &[f64], first_minute: DateTime<Utc>) -> Option<CapacityForecast> {
    // Hours are aligned to the clock so that the daily season lines up with the time of day.
    let offset = usize::try_from(first_minute.timestamp().div_euclid(60).rem_euclid(60)).ok()?;
    let hours = (offset + tokens.len()).div_ceil(60);
    let mut peaks = vec![0.0f64; hours];
    for (i, &t) in tokens.iter().enumerate() {
        let h = (offset + i) / 60;
        peaks[h] = peaks[h].max(t);
    }
    let (period, season) = if hours >= 3 * 168 {
        (168, "weekly")
    } else if hours >= 3 * 24 {
        (24, "daily")
    } else {
        return None;
    };
    let model = HoltWinters::fit(&peaks, period)?;
    let start = first_minute - Duration::minutes(offset as i64);
    Some(CapacityForecast {
        season: season.to_string(),
        start,
        backtest: backtest(&peaks, period),
        peak_tokens_per_minute: peaks,
        model,
    })
}

fn check_limit(
    limit: &RateLimit,
    minutes: &Minutes,
    forecast: Option<&CapacityForecast>,
    data_end: DateTime<Utc>,
) -> LimitCheck {
    let tokens = RateStats::of(&minutes.tokens);
    let requests = RateStats::of(&minutes.requests);
    let over = minutes
        .tokens
        .iter()
        .zip(&minutes.requests)
        .filter(|(t, r)| {
            limit.tokens_per_minute.is_some_and(|l| **t > l)
                || limit.requests_per_minute.is_some_and(|l| **r > l)
        })
        .count() as u64;
    let utilisation = [
        limit.tokens_per_minute.map(|l| tokens.max / l),
        limit.requests_per_minute.map(|l| requests.max / l),
    ]
    .into_iter()
    .flatten()
    .fold(0.0, f64::max);
    let (hours, basis) = match (limit.tokens_per_minute, forecast) {
        (None, _) => (None, "no token limit to forecast against".to_string()),
        (Some(_), _) if over > 0 => (Some(0.0), "already exceeded".to_string()),
        (Some(_), None) => (None, "not enough history to forecast".to_string()),
        (Some(l), Some(f)) => {
            let ahead = f.model.forecast(FORECAST_HOURS);
            match ahead.iter().position(|v| *v >= l) {
                Some(h) => (Some(h as f64 + 1.0), "forecast".to_string()),
                None if f.model.trend > 0.0 => {
                    let h = (l - f.model.seasonal_peak()) / f.model.trend;
                    if h <= MAX_EXTRAPOLATION_HOURS {
                        (Some(h.max(0.0)), "trend".to_string())
                    } else {
                        (None, "beyond two years at the current trend".to_string())
                    }
                }
                None => (
                    None,
                    "not reached: the trend is flat or falling".to_string(),
                ),
            }
        }
    };
    LimitCheck {
        limit: limit.clone(),
        peak_tokens_per_minute: tokens.max,
        p99_tokens_per_minute: tokens.p99,
        peak_requests_per_minute: requests.max,
        p99_requests_per_minute: requests.p99,
        peak_utilisation: utilisation,
        minutes_over_limit: over,
        hours_until_limit: hours,
        limit_reached_at: hours.and_then(|h| {
            data_end.checked_add_signed(Duration::seconds((h * 3600.0).round() as i64))
        }),
        basis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::path::PathBuf;

    fn at(min: i64, sec: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()
            + Duration::minutes(min)
            + Duration::seconds(sec)
    }

    #[test]
    fn a_span_of_years_and_many_models_is_measured_over_a_bounded_window() {
        // Two rows ten years apart and sixty models: by the minute over the whole span this was
        // 5.3 million minutes per series, one series per model (gigabytes).
        let last = at(0, 0);
        let mut records = vec![UsageRecord::new(
            last - Duration::days(3650),
            "openai",
            "gpt-4o",
            10,
            10,
        )];
        for m in 0..60 {
            records.push(UsageRecord::new(
                last - Duration::minutes(m),
                "openai",
                format!("model-{m}"),
                100 + m as u64,
                0,
            ));
        }
        let limits = [
            RateLimit::parse("model-59=1000").unwrap(),
            RateLimit::parse("*=100000").unwrap(),
        ];
        let c = capacity(&records, &Filter::default(), &limits);
        assert!(
            c.minutes <= (MAX_DAYS_BY_MINUTE * 24 * 60) as usize,
            "{} minutes",
            c.minutes
        );
        assert!(c.minutes >= 60);
        assert!(
            c.notes.iter().any(|n| n.contains("last 92 days")),
            "{:?}",
            c.notes
        );
        assert_eq!(c.by_model.len(), 5);
        assert_eq!(c.by_model[0].model, "model-59");
        // A limit on a model outside the top five still gets that model's own series.
        assert_eq!(c.limits.len(), 2);
        assert!(
            (c.limits[0].peak_utilisation - 0.159).abs() < 1e-9,
            "{:?}",
            c.limits[0]
        );
    }

    #[test]
    fn per_minute_percentiles_exact() {
        // Minute 0: 100 + 200 tokens in 2 requests; minute 1: idle; minute 2: 1000 tokens.
        let records = vec![
            UsageRecord::new(at(0, 5), "openai", "gpt-4o", 90, 10),
            UsageRecord::new(at(0, 50), "openai", "gpt-4o", 150, 50),
            UsageRecord::new(at(2, 1), "anthropic", "claude-sonnet-4", 900, 100),
        ];
        let c = capacity(&records, &Filter::default(), &[]);
        assert_eq!(c.resolution, "per request");
        assert_eq!(c.minutes, 3);
        assert_eq!(c.tokens_per_minute.max, 1000.0);
        assert_eq!(c.tokens_per_minute.p50, 300.0);
        assert_eq!(c.tokens_per_minute.p99, 1000.0);
        assert_eq!(c.requests_per_minute.p50, 1.0);
        assert_eq!(c.requests_per_minute.max, 2.0);
        assert_eq!(c.by_model[0].model, "claude-sonnet-4");
        assert!(c.forecast.is_none());
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 0.51), 3.0);
    }

    #[test]
    fn limits_are_checked_and_parsed() {
        let records = vec![
            UsageRecord::new(at(0, 0), "openai", "gpt-4o", 900, 100),
            UsageRecord::new(at(1, 0), "openai", "gpt-4o", 400, 100),
        ];
        let limit = RateLimit::parse("gpt-4o=800:5").unwrap();
        assert_eq!(limit.tokens_per_minute, Some(800.0));
        let c = capacity(&records, &Filter::default(), &[limit]);
        let l = &c.limits[0];
        assert_eq!(l.minutes_over_limit, 1);
        assert!((l.peak_utilisation - 1.25).abs() < 1e-12);
        assert_eq!(l.hours_until_limit, Some(0.0));
        assert_eq!(l.basis, "already exceeded");
        assert!(RateLimit::parse("gpt-4o").is_err());
        assert!(RateLimit::parse("=5").is_err());
        assert!(RateLimit::parse("x=:").is_err());
        assert!(RateLimit::parse("x=-5").is_err());
        assert_eq!(
            RateLimit::parse("*=:500").unwrap().requests_per_minute,
            Some(500.0)
        );
    }

    #[test]
    fn bucketed_records_are_spread_and_growth_reaches_a_limit() {
        // Hourly buckets over 5 weeks, growing 1% a day, with a daily cycle.
        let start = Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap();
        let records: Vec<UsageRecord> = (0..35 * 24)
            .map(|h| {
                let hour = (h % 24) as f64;
                let level = 60_000.0 * (1.0 + 0.01 * (h / 24) as f64);
                let tokens = level * (1.0 + 0.5 * (std::f64::consts::TAU * hour / 24.0).sin());
                let mut r = UsageRecord::new(
                    start + Duration::hours(h),
                    "openai",
                    "gpt-4o",
                    tokens as u64,
                    0,
                );
                r.request_count = 60;
                r
            })
            .collect();
        let limit = RateLimit::parse("*=2500").unwrap();
        let c = capacity(&records, &Filter::default(), &[limit]);
        assert!(
            c.resolution
                .starts_with("bucketed (spread over 60 minutes)")
        );
        assert_eq!(c.requests_per_minute.p50, 1.0);
        let f = c.forecast.as_ref().unwrap();
        assert_eq!(f.season, "weekly");
        assert!(f.model.trend > 0.0);
        let l = &c.limits[0];
        assert_eq!(l.minutes_over_limit, 0);
        assert!(l.hours_until_limit.is_some_and(|h| h > 0.0), "{l:?}");
        assert!(l.limit_reached_at.is_some());
    }

    /// Azure LLM inference trace (code, 2023-11-16, CC-BY-4.0): per-minute token percentiles
    /// checked against a direct computation over the raw CSV.
    #[test]
    fn azure_trace_per_minute_tokens_match_a_direct_computation() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/azure_llm_2023/AzureLLMInferenceTrace_code.csv");
        if !path.exists() {
            println!("skipped: {} is absent", path.display());
            return;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Direct: sum tokens per minute straight from the text.
        let mut per_minute: std::collections::BTreeMap<String, f64> = Default::default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split(',').collect();
            let tokens: f64 = cols[1].parse::<f64>().unwrap() + cols[2].parse::<f64>().unwrap();
            *per_minute.entry(cols[0][..16].to_string()).or_default() += tokens;
        }
        let first = per_minute.keys().next().unwrap().clone();
        let last = per_minute.keys().last().unwrap().clone();
        let parse = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        let minutes = (parse(&last) - parse(&first)).num_minutes() as usize + 1;
        let mut direct: Vec<f64> = per_minute.values().copied().collect();
        direct.resize(minutes, 0.0); // idle minutes count as zero
        direct.sort_by(f64::total_cmp);

        let report = crate::import::import_usage_with(
            text.as_bytes(),
            &crate::import::ImportOptions {
                format: None,
                model: Some("gpt-4o".into()),
            },
        )
        .unwrap();
        assert_eq!(report.records.len(), 8_819);
        let c = capacity(&report.records, &Filter::default(), &[]);
        assert_eq!(c.minutes, minutes);
        let t = c.tokens_per_minute;
        println!(
            "Azure code trace: {} minutes; tokens/minute p50 {:.0}, p95 {:.0}, p99 {:.0}, max {:.0}; requests/minute p50 {:.0}, max {:.0}",
            c.minutes,
            t.p50,
            t.p95,
            t.p99,
            t.max,
            c.requests_per_minute.p50,
            c.requests_per_minute.max
        );
        for (p, got) in [(0.5, t.p50), (0.95, t.p95), (0.99, t.p99), (1.0, t.max)] {
            assert_eq!(got, nearest_rank(&direct, p), "p{p}");
        }
    }
}
