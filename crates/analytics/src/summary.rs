//! Where the money went: totals, breakdowns by model/team/feature/provider, a daily series and
//! the change against the previous equally long period, in one pass over the records.
//!
//! It also owns `Filter`, the selection every analysis shares. This module must not read the
//! clock ("last 7 days" is relative to the newest record, so answers stay reproducible) and must
//! not allocate per record: it has to stay well under a second for a million records.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::cancel::{Checkpoint, Ticks, Uninterrupted};
use crate::fastmap::FastMap;
use crate::prices::{PriceCache, PriceTable};
use crate::record::UsageRecord;

/// The key used for records without a team or feature.
pub const NONE_KEY: &str = "(none)";

/// Which records an analysis looks at. Time bounds are half-open: `start <= t < end`.
/// Text filters compare case-insensitively; `"(none)"` selects records without the field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub team: Option<String>,
    pub model: Option<String>,
    pub feature: Option<String>,
}

fn text_matches(want: Option<&str>, have: Option<&str>) -> bool {
    match want {
        None => true,
        Some(w) => match have {
            Some(h) => h.eq_ignore_ascii_case(w.trim()),
            None => w.trim() == NONE_KEY,
        },
    }
}

impl Filter {
    /// The window of length `duration` that ends with (and includes) the newest record: it ends
    /// at the first whole hour after it, so hourly buckets fall wholly in or out and the bounds
    /// read well. With no records it selects everything: there is no "now" to measure from.
    pub fn last(duration: std::time::Duration, records: &[UsageRecord]) -> Filter {
        let Some(latest) = records.iter().map(|r| r.timestamp).max() else {
            return Filter::default();
        };
        let hour = latest.timestamp().div_euclid(3600);
        let end = hour
            .checked_add(1)
            .and_then(|h| h.checked_mul(3600))
            .and_then(|secs| DateTime::from_timestamp(secs, 0));
        let start = match (end, Duration::from_std(duration)) {
            (Some(end), Ok(d)) => end.checked_sub_signed(d),
            _ => None,
        };
        Filter {
            start,
            end,
            ..Filter::default()
        }
    }

    /// Whether the team/model/feature conditions hold, ignoring time.
    pub fn matches_dims(&self, r: &UsageRecord) -> bool {
        text_matches(self.team.as_deref(), r.team.as_deref())
            && text_matches(self.model.as_deref(), Some(&r.model))
            && text_matches(self.feature.as_deref(), r.feature.as_deref())
    }

    pub fn contains_time(&self, t: DateTime<Utc>) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t < e)
    }

    pub fn matches(&self, r: &UsageRecord) -> bool {
        self.contains_time(r.timestamp) && self.matches_dims(r)
    }

    /// The previous window of the same length, when the window is bounded on both sides.
    pub fn previous_window(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (start, end) = (self.start?, self.end?);
        if end <= start {
            return None;
        }
        Some((start.checked_sub_signed(end - start)?, start))
    }
}

/// Days a window covers: the filter's own length when bounded on both sides, otherwise the
/// calendar days from the first to the last matched record (inclusive).
pub(crate) fn window_days(
    filter: &Filter,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
) -> f64 {
    if let (Some(s), Some(e)) = (filter.start, filter.end)
        && e > s
    {
        let d = e - s;
        return d.num_seconds() as f64 / 86_400.0 + f64::from(d.subsec_nanos()) / 86_400.0 / 1e9;
    }
    match (first, last) {
        // A trace shorter than a day (an hour of requests) is scaled by its own length, not by a
        // whole calendar day it did not fill.
        (Some(f), Some(l)) if l - f < Duration::hours(23) => {
            let span = (l - f).num_milliseconds().max(60_000) as f64;
            span / 86_400_000.0
        }
        (Some(f), Some(l)) => ((l.date_naive() - f.date_naive()).num_days() + 1) as f64,
        _ => 0.0,
    }
}

/// Spend for one key of one dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breakdown {
    pub key: String,
    pub cost_usd: f64,
    /// Fraction of the window's total cost, 0..=1.
    pub share: f64,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Cost in the previous equally long window (0 when there is none).
    pub previous_cost_usd: f64,
    /// Percent change against the previous window (41.0 means +41%); None without a base.
    pub change_pct: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailyPoint {
    pub date: NaiveDate,
    pub cost_usd: f64,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub current_cost_usd: f64,
    pub previous_cost_usd: f64,
    /// Percent, as in `Breakdown::change_pct`.
    pub change_pct: Option<f64>,
    pub previous_start: DateTime<Utc>,
    pub previous_end: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub records: u64,
    pub requests: u64,
    /// The filter's bounds, or the first/last matched record where the filter has none.
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub total_cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Cost per day over the window, times 30.
    pub monthly_cost_usd: f64,
    /// The days `monthly_cost_usd` was scaled from: the filter's length, else the calendar days
    /// of the data, else (for a trace shorter than a day) the trace's own span.
    pub window_days: f64,
    /// Records with no billed cost whose model is not in the price table (counted as $0).
    pub unpriced_records: u64,
    pub unpriced_models: Vec<String>,
    /// Records that carry a billed `cost_usd` (it is what they cost).
    pub billed_records: u64,
    /// Their billed cost.
    pub billed_cost_usd: f64,
    /// The same billed records at list prices (those whose model is in the price table), so
    /// the difference to what was billed is itself a finding: a discount, a markup, or a
    /// pricing error.
    pub billed_at_list_usd: f64,
    /// Billed records whose model has a list price (the ones `billed_at_list_usd` covers).
    pub billed_records_with_list_price: u64,
    /// Billed cost of those same records.
    pub billed_cost_with_list_price_usd: f64,
    pub by_model: Vec<Breakdown>,
    pub by_team: Vec<Breakdown>,
    pub by_feature: Vec<Breakdown>,
    pub by_provider: Vec<Breakdown>,
    /// One point per UTC day from the first to the last matched day, gaps filled with zeros.
    /// Not serialized when empty: a caller that sends the series elsewhere clears it here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub daily: Vec<DailyPoint>,
    /// Present when the filter has both a start and an end.
    pub trend: Option<Trend>,
}

#[derive(Default, Clone, Copy)]
struct Acc {
    cost: f64,
    requests: u64,
    input: u64,
    output: u64,
    previous: f64,
}

impl Acc {
    fn add(&mut self, r: &UsageRecord, cost: f64) {
        self.cost += cost;
        self.requests = self.requests.saturating_add(r.request_count);
        self.input = self.input.saturating_add(r.input_tokens);
        self.output = self.output.saturating_add(r.output_tokens);
    }
}

pub(crate) fn change_pct(current: f64, previous: f64) -> Option<f64> {
    (previous > 0.0).then(|| (current - previous) / previous * 100.0)
}

fn breakdown(map: FastMap<&str, Acc>, total: f64, with_previous: bool) -> Vec<Breakdown> {
    let mut out: Vec<Breakdown> = map
        .into_iter()
        .map(|(key, a)| Breakdown {
            key: key.to_string(),
            cost_usd: a.cost,
            share: if total > 0.0 { a.cost / total } else { 0.0 },
            requests: a.requests,
            input_tokens: a.input,
            output_tokens: a.output,
            previous_cost_usd: a.previous,
            change_pct: if with_previous {
                change_pct(a.cost, a.previous)
            } else {
                None
            },
        })
        .collect();
    // HashMap order is random; a total order keeps the output identical run to run.
    out.sort_by(|a, b| {
        b.cost_usd
            .total_cmp(&a.cost_usd)
            .then(b.previous_cost_usd.total_cmp(&a.previous_cost_usd))
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

/// Totals and breakdowns for the records the filter selects. Keys that only had spend in the
/// previous window are listed too (cost 0, change -100%), since a stopped cost is a finding.
pub fn summarize(records: &[UsageRecord], prices: &PriceTable, filter: &Filter) -> Summary {
    let Ok(summary) = summarize_cancellable(records, prices, filter, &Uninterrupted);
    summary
}

/// [`summarize`], stopping early (with `C::Stop`) when the checkpoint says so.
///
/// # Errors
/// The checkpoint's stop, looked at every few thousand records.
pub fn summarize_cancellable<C: Checkpoint>(
    records: &[UsageRecord],
    prices: &PriceTable,
    filter: &Filter,
    checkpoint: &C,
) -> Result<Summary, C::Stop> {
    let mut ticks = Ticks::new(checkpoint);
    let mut cache = PriceCache::new(prices);
    let previous = filter.previous_window();

    let mut count = 0u64;
    let mut totals = Acc::default();
    let mut previous_total = 0.0;
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    let mut unpriced_records = 0u64;
    let mut unpriced_models: FastMap<&str, ()> = FastMap::default();
    let mut by_model: FastMap<&str, Acc> = FastMap::default();
    let mut by_team: FastMap<&str, Acc> = FastMap::default();
    let mut by_feature: FastMap<&str, Acc> = FastMap::default();
    let mut by_provider: FastMap<&str, Acc> = FastMap::default();
    let mut daily: FastMap<NaiveDate, Acc> = FastMap::default();
    let (mut billed_records, mut billed_cost, mut billed_at_list) = (0u64, 0.0, 0.0);
    let (mut billed_listed, mut billed_listed_cost) = (0u64, 0.0);

    for r in records {
        ticks.tick()?;
        if !filter.matches_dims(r) {
            continue;
        }
        let t = r.timestamp;
        let team = r.team.as_deref().unwrap_or(NONE_KEY);
        let feature = r.feature.as_deref().unwrap_or(NONE_KEY);
        if filter.contains_time(t) {
            let (cost, priced) = cache.cost(r);
            count += 1;
            totals.add(r, cost);
            first = Some(first.map_or(t, |f| f.min(t)));
            last = Some(last.map_or(t, |l| l.max(t)));
            if !priced {
                unpriced_records += 1;
                unpriced_models.insert(&r.model, ());
            }
            if r.cost_usd.is_some() {
                billed_records += 1;
                billed_cost += cost;
                if let Some(p) = cache.price(&r.model) {
                    billed_listed += 1;
                    billed_listed_cost += cost;
                    billed_at_list += p.cost_for(r);
                }
            }
            by_model.entry(&r.model).or_default().add(r, cost);
            by_team.entry(team).or_default().add(r, cost);
            by_feature.entry(feature).or_default().add(r, cost);
            by_provider.entry(&r.provider).or_default().add(r, cost);
            daily.entry(t.date_naive()).or_default().add(r, cost);
        } else if let Some((ps, pe)) = previous
            && t >= ps
            && t < pe
        {
            let (cost, _) = cache.cost(r);
            previous_total += cost;
            by_model.entry(&r.model).or_default().previous += cost;
            by_team.entry(team).or_default().previous += cost;
            by_feature.entry(feature).or_default().previous += cost;
            by_provider.entry(&r.provider).or_default().previous += cost;
        }
    }

    let total = totals.cost;
    let days = window_days(filter, first, last);
    let mut daily_points = Vec::new();
    if let (Some(f), Some(l)) = (first, last) {
        let mut d = f.date_naive();
        let end = l.date_naive();
        while d <= end {
            // Records far apart make many days: count them like records.
            ticks.tick()?;
            let a = daily.get(&d).copied().unwrap_or_default();
            daily_points.push(DailyPoint {
                date: d,
                cost_usd: a.cost,
                requests: a.requests,
                input_tokens: a.input,
                output_tokens: a.output,
            });
            match d.succ_opt() {
                Some(next) => d = next,
                None => break,
            }
        }
    }
    let mut unpriced: Vec<String> = unpriced_models.into_keys().map(str::to_string).collect();
    unpriced.sort();

    Ok(Summary {
        records: count,
        requests: totals.requests,
        start: filter.start.or(first),
        end: filter.end.or(last),
        total_cost_usd: total,
        input_tokens: totals.input,
        output_tokens: totals.output,
        monthly_cost_usd: if days > 0.0 { total / days * 30.0 } else { 0.0 },
        window_days: days,
        unpriced_records,
        unpriced_models: unpriced,
        billed_records,
        billed_cost_usd: billed_cost,
        billed_at_list_usd: billed_at_list,
        billed_records_with_list_price: billed_listed,
        billed_cost_with_list_price_usd: billed_listed_cost,
        by_model: breakdown(by_model, total, previous.is_some()),
        by_team: breakdown(by_team, total, previous.is_some()),
        by_feature: breakdown(by_feature, total, previous.is_some()),
        by_provider: breakdown(by_provider, total, previous.is_some()),
        daily: daily_points,
        trend: previous.map(|(ps, pe)| Trend {
            current_cost_usd: total,
            previous_cost_usd: previous_total,
            change_pct: change_pct(total, previous_total),
            previous_start: ps,
            previous_end: pe,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    fn rec(
        t: DateTime<Utc>,
        model: &str,
        team: Option<&str>,
        input: u64,
        output: u64,
    ) -> UsageRecord {
        let mut r = UsageRecord::new(t, "openai", model, input, output);
        r.team = team.map(str::to_string);
        r
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn totals_breakdowns_and_unpriced() {
        let prices = PriceTable::embedded();
        let mut billed = rec(at(2, 0), "custom", Some("b"), 5, 5);
        billed.cost_usd = Some(2.0);
        let records = vec![
            rec(at(1, 10), "gpt-4o", Some("a"), 1_000_000, 0), // $2.50
            rec(at(1, 11), "gpt-4o-mini", None, 0, 1_000_000), // $0.60
            rec(at(3, 0), "mystery", Some("a"), 10, 10),       // unpriced
            billed,                                            // $2.00 billed
        ];
        let s = summarize(&records, &prices, &Filter::default());
        assert_eq!(s.records, 4);
        assert_eq!(s.requests, 4);
        assert!(close(s.total_cost_usd, 5.1));
        assert_eq!(s.unpriced_records, 1);
        assert_eq!(s.unpriced_models, vec!["mystery".to_string()]);
        assert_eq!(s.by_model[0].key, "gpt-4o");
        assert!(close(s.by_model[0].share, 2.5 / 5.1));
        let keys: Vec<&str> = s.by_team.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(keys, vec!["a", "b", NONE_KEY]);
        assert_eq!(s.daily.len(), 3);
        assert!(close(s.daily[0].cost_usd, 3.1));
        assert_eq!(s.start, Some(at(1, 10)));
        assert_eq!(s.end, Some(at(3, 0)));
        // Three calendar days of data.
        assert!(close(s.monthly_cost_usd, 5.1 / 3.0 * 30.0));
        assert!(s.trend.is_none());
        assert!(s.by_model.iter().all(|b| b.change_pct.is_none()));
        // The billed record's model has no list price, so there is nothing to compare it with.
        assert_eq!(s.billed_records, 1);
        assert!(close(s.billed_cost_usd, 2.0));
        assert_eq!(s.billed_records_with_list_price, 0);
    }

    #[test]
    fn billed_cost_is_compared_with_list_price() {
        let prices = PriceTable::embedded();
        let mut r = rec(at(1, 0), "gpt-4o", None, 1_000_000, 0); // list $2.50
        r.cost_usd = Some(2.0);
        let s = summarize(&[r], &prices, &Filter::default());
        assert!(close(s.total_cost_usd, 2.0), "billed cost wins");
        assert_eq!(s.billed_records_with_list_price, 1);
        assert!(close(s.billed_at_list_usd, 2.5));
        assert!(close(s.billed_cost_with_list_price_usd, 2.0));
    }

    #[test]
    fn filter_window_and_previous_period() {
        let prices = PriceTable::embedded();
        let records = vec![
            rec(at(1, 0), "gpt-4o", Some("a"), 1_000_000, 0), // previous: $2.50
            rec(at(2, 0), "gpt-4o-mini", Some("b"), 1_000_000, 0), // previous: $0.15
            rec(at(3, 0), "gpt-4o", Some("a"), 2_000_000, 0), // current: $5.00
            rec(at(3, 5), "gpt-4o", Some("c"), 1_000_000, 0), // current, other team
            rec(at(5, 0), "gpt-4o", Some("a"), 1_000_000, 0), // after the window
        ];
        let filter = Filter {
            start: Some(at(3, 0)),
            end: Some(at(5, 0)),
            team: Some("A".into()),
            ..Filter::default()
        };
        let s = summarize(&records, &prices, &filter);
        assert_eq!(s.records, 1);
        assert!(close(s.total_cost_usd, 5.0));
        assert!(close(s.monthly_cost_usd, 5.0 / 2.0 * 30.0));
        let trend = s.trend.unwrap();
        assert!(close(trend.previous_cost_usd, 2.5));
        assert!(close(trend.change_pct.unwrap(), 100.0));
        assert_eq!(trend.previous_start, at(1, 0));
        assert_eq!(trend.previous_end, at(3, 0));
        assert!(close(s.by_model[0].change_pct.unwrap(), 100.0));

        // Without the team filter, team b only spent in the previous window.
        let filter = Filter {
            team: None,
            ..filter
        };
        let s = summarize(&records, &prices, &filter);
        let b = s.by_team.iter().find(|b| b.key == "b").unwrap();
        assert_eq!(b.cost_usd, 0.0);
        assert!(close(b.change_pct.unwrap(), -100.0));
        assert_eq!(s.by_team.last().unwrap().key, "b");
    }

    #[test]
    fn none_key_filters_missing_fields() {
        let prices = PriceTable::embedded();
        let records = vec![
            rec(at(1, 0), "gpt-4o", None, 10, 0),
            rec(at(1, 0), "gpt-4o", Some("x"), 10, 0),
        ];
        let filter = Filter {
            team: Some(NONE_KEY.into()),
            ..Filter::default()
        };
        assert_eq!(summarize(&records, &prices, &filter).records, 1);
    }

    #[test]
    fn last_window_ends_at_the_newest_record() {
        let records: Vec<UsageRecord> = (1..=10)
            .flat_map(|d| (0..24).map(move |h| rec(at(d, h), "gpt-4o", None, 1, 1)))
            .collect();
        let f = Filter::last(std::time::Duration::from_secs(7 * 86_400), &records);
        let n = records.iter().filter(|r| f.matches(r)).count();
        assert_eq!(n, 7 * 24);
        assert!(f.contains_time(at(10, 23)));
        assert!(!f.contains_time(at(3, 23)));
        assert!(f.contains_time(at(4, 0)));
        assert_eq!(
            Filter::last(std::time::Duration::from_secs(1), &[]),
            Filter::default()
        );
        let s = summarize(&records, &PriceTable::embedded(), &f);
        assert_eq!(s.daily.len(), 7);
        assert!(s.trend.is_some());
    }

    #[test]
    fn empty_input_gives_an_empty_summary() {
        let s = summarize(&[], &PriceTable::embedded(), &Filter::default());
        assert_eq!(s.records, 0);
        assert_eq!(s.total_cost_usd, 0.0);
        assert_eq!(s.monthly_cost_usd, 0.0);
        assert!(s.daily.is_empty() && s.by_model.is_empty());
    }
}
