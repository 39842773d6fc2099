//! Evaluating a [`QuerySpec`] over records: one pass per period, grouped as the shape needs,
//! each group summarised by the metric. It must not allocate per record beyond the latency
//! samples a percentile needs.

use std::collections::BTreeMap;

use super::{
    Comparison, Condition, GroupBy, Metric, Order, Period, Previous, QueryResult, QuerySpec, Row,
    Shape, Stat, TimeGrain,
};
use crate::cancel::{Checkpoint, Ticks, Uninterrupted};
use crate::fastmap::FastMap;
use crate::prices::{PriceCache, PriceTable};
use crate::record::UsageRecord;

/// What one group of records adds up to.
#[derive(Default)]
struct Acc {
    records: u64,
    requests: u64,
    cost: f64,
    input: u64,
    output: u64,
    cached: u64,
    with_status: u64,
    failed: u64,
    /// (value, weight) of latency or TTFT, only when the metric needs them.
    samples: Vec<(f64, u64)>,
}

/// Statuses that count as success; any 2xx code does too.
pub fn is_success_status(status: &str) -> bool {
    let s = status.trim();
    ["success", "ok", "succeeded", "completed"]
        .iter()
        .any(|w| s.eq_ignore_ascii_case(w))
        || (s.len() == 3 && s.starts_with('2') && s.bytes().all(|b| b.is_ascii_digit()))
}

impl Acc {
    fn add(&mut self, r: &UsageRecord, cost: f64, metric: Metric) {
        self.records += 1;
        self.requests = self.requests.saturating_add(r.request_count);
        self.cost += cost;
        self.input = self.input.saturating_add(r.input_tokens);
        self.output = self.output.saturating_add(r.output_tokens);
        self.cached = self
            .cached
            .saturating_add(r.cache_read_input_tokens.unwrap_or(0));
        if let Some(status) = &r.status {
            self.with_status = self.with_status.saturating_add(r.request_count);
            if !is_success_status(status) {
                self.failed = self.failed.saturating_add(r.request_count);
            }
        }
        let sample = match metric {
            Metric::Latency(_) => r.latency_ms,
            Metric::Ttft(_) => r.ttft_ms,
            _ => None,
        };
        if let Some(v) = sample.filter(|v| v.is_finite()) {
            self.samples.push((v, r.request_count.max(1)));
        }
    }

    /// The additive base of a share metric.
    fn base(&self, metric: Metric) -> f64 {
        match metric {
            Metric::ShareOfRequests => self.requests as f64,
            Metric::ShareOfTokens => (self.input + self.output) as f64,
            _ => self.cost,
        }
    }

    fn value(&mut self, metric: Metric, days: f64, whole: f64) -> Option<f64> {
        let ratio = |num: f64, den: f64| (den > 0.0).then(|| num / den);
        let requests = self.requests as f64;
        match metric {
            Metric::Spend => Some(self.cost),
            Metric::SpendPerDay => ratio(self.cost, days),
            Metric::Requests => Some(requests),
            Metric::InputTokens => Some(self.input as f64),
            Metric::OutputTokens => Some(self.output as f64),
            Metric::CachedTokens => Some(self.cached as f64),
            Metric::TotalTokens => Some((self.input + self.output) as f64),
            Metric::InputTokensPerRequest => ratio(self.input as f64, requests),
            Metric::OutputTokensPerRequest => ratio(self.output as f64, requests),
            Metric::TokensPerRequest => ratio((self.input + self.output) as f64, requests),
            Metric::CostPerRequest => ratio(self.cost, requests),
            Metric::ErrorRate => ratio(self.failed as f64, self.with_status as f64),
            Metric::CacheHitShare => ratio(self.cached as f64, self.input as f64),
            Metric::ShareOfSpend | Metric::ShareOfRequests | Metric::ShareOfTokens => {
                ratio(self.base(metric), whole)
            }
            Metric::Latency(stat) | Metric::Ttft(stat) => summarise(&mut self.samples, stat),
        }
    }
}

/// Weighted mean, or nearest-rank percentile over requests (a sample of weight w counts w times).
fn summarise(samples: &mut [(f64, u64)], stat: Stat) -> Option<f64> {
    let total: u64 = samples.iter().map(|s| s.1).sum();
    if total == 0 {
        return None;
    }
    let Some(p) = stat.percentile() else {
        let sum: f64 = samples.iter().map(|(v, w)| v * *w as f64).sum();
        return Some(sum / total as f64);
    };
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (v, w) in samples.iter() {
        seen += w;
        if seen >= rank {
            return Some(*v);
        }
    }
    samples.last().map(|s| s.0)
}

fn change_pct(current: Option<f64>, previous: Option<f64>) -> Option<f64> {
    match (current, previous) {
        (Some(c), Some(p)) if p.abs() > f64::EPSILON => Some((c - p) / p.abs() * 100.0),
        _ => None,
    }
}

fn group_key(by: GroupBy, r: &UsageRecord) -> String {
    match by {
        GroupBy::Dimension(d) => d.value(r).unwrap_or(crate::summary::NONE_KEY).to_string(),
        GroupBy::Time(g) => g.key(g.bucket_start(r.timestamp.date_naive())),
    }
}

/// The accumulated selection of one period: its total, its groups, and what it cost.
struct Pass {
    total: Acc,
    groups: BTreeMap<String, Acc>,
    whole: f64,
    unpriced: Vec<String>,
}

struct Ctx<'a> {
    records: &'a [UsageRecord],
    costs: Vec<(f64, bool)>,
    data_span: Option<Period>,
}

impl<'a> Ctx<'a> {
    fn new<C: Checkpoint>(
        records: &'a [UsageRecord],
        prices: &PriceTable,
        ticks: &mut Ticks<'_, C>,
    ) -> Result<Ctx<'a>, C::Stop> {
        let mut cache = PriceCache::new(prices);
        let mut span: Option<Period> = None;
        let mut costs = Vec::with_capacity(records.len());
        for r in records {
            ticks.tick()?;
            costs.push(cache.cost(r));
            let d = r.timestamp.date_naive();
            span = Some(match span {
                None => Period::new(d, d),
                Some(p) => Period::new(p.first.min(d), p.last.max(d)),
            });
        }
        Ok(Ctx {
            records,
            costs,
            data_span: span,
        })
    }

    /// Days of `period` within the data's span.
    fn days(&self, period: &Period) -> f64 {
        self.data_span
            .and_then(|s| s.intersect(period))
            .map_or(0.0, |p| p.days() as f64)
    }

    fn pass<C: Checkpoint>(
        &self,
        spec: &QuerySpec,
        period: Period,
        extra: &[Condition],
        by: Option<GroupBy>,
        ticks: &mut Ticks<'_, C>,
    ) -> Result<Pass, C::Stop> {
        let mut pass = Pass {
            total: Acc::default(),
            groups: BTreeMap::new(),
            whole: 0.0,
            unpriced: Vec::new(),
        };
        let mut unpriced: FastMap<&str, ()> = FastMap::default();
        let mut whole = Acc::default();
        let share = matches!(
            spec.metric,
            Metric::ShareOfSpend | Metric::ShareOfRequests | Metric::ShareOfTokens
        );
        for (r, &(cost, priced)) in self.records.iter().zip(&self.costs) {
            ticks.tick()?;
            if !period.contains(r.timestamp.date_naive()) {
                continue;
            }
            if share && spec.share_of.iter().all(|c| c.matches(r)) {
                whole.add(r, cost, Metric::Spend);
            }
            if !(spec.conditions.iter().all(|c| c.matches(r)) && extra.iter().all(|c| c.matches(r)))
            {
                continue;
            }
            if !priced {
                unpriced.insert(&r.model, ());
            }
            pass.total.add(r, cost, spec.metric);
            if let Some(by) = by {
                pass.groups
                    .entry(group_key(by, r))
                    .or_default()
                    .add(r, cost, spec.metric);
            }
        }
        pass.whole = whole.base(spec.metric);
        let mut names: Vec<String> = unpriced.keys().map(|m| (*m).to_string()).collect();
        names.sort();
        pass.unpriced = names;
        Ok(pass)
    }

    /// Every bucket of `grain` from the period's (data-clipped) start to its end, so a series has
    /// no gaps.
    fn buckets<C: Checkpoint>(
        &self,
        period: &Period,
        grain: TimeGrain,
        ticks: &mut Ticks<'_, C>,
    ) -> Result<Vec<String>, C::Stop> {
        let Some(p) = self.data_span.and_then(|s| s.intersect(period)) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut start = grain.bucket_start(p.first);
        while start <= p.last {
            // A long span at a fine grain makes many buckets: count them like records.
            ticks.tick()?;
            out.push(grain.key(start));
            start = grain.next(start);
        }
        Ok(out)
    }
}

/// Answers a spec over the records, priced with the table.
pub fn evaluate(records: &[UsageRecord], prices: &PriceTable, spec: &QuerySpec) -> QueryResult {
    let Ok(result) = evaluate_cancellable(records, prices, spec, &Uninterrupted);
    result
}

/// [`evaluate`], stopping early (with `C::Stop`) when the checkpoint says so.
///
/// # Errors
/// The checkpoint's stop, looked at every few thousand records (or buckets of a series).
pub fn evaluate_cancellable<C: Checkpoint>(
    records: &[UsageRecord],
    prices: &PriceTable,
    spec: &QuerySpec,
    checkpoint: &C,
) -> Result<QueryResult, C::Stop> {
    let mut ticks = Ticks::new(checkpoint);
    let ticks = &mut ticks;
    let ctx = Ctx::new(records, prices, ticks)?;
    let days = ctx.days(&spec.period);
    let by = match &spec.shape {
        Shape::Figure => None,
        Shape::Breakdown { by } | Shape::Ranking { by, .. } => Some(*by),
        Shape::Compare { by, .. } => *by,
        Shape::Trend { every } => Some(GroupBy::Time(*every)),
    };
    let mut current = ctx.pass(spec, spec.period, &[], by, ticks)?;
    let value = current.total.value(spec.metric, days, current.whole);
    let mut rows: Vec<Row> = Vec::new();
    let mut previous = None;
    let take_rows = |pass: &mut Pass, keys: Option<Vec<String>>| -> Vec<Row> {
        let keys = keys.unwrap_or_else(|| pass.groups.keys().cloned().collect());
        keys.into_iter()
            .map(|key| {
                let (value, requests, cost) = match pass.groups.get_mut(&key) {
                    Some(acc) => (
                        acc.value(spec.metric, days, pass.whole),
                        acc.requests,
                        acc.cost,
                    ),
                    None => (spec.metric.is_additive().then_some(0.0), 0, 0.0),
                };
                Row {
                    key,
                    value,
                    previous: None,
                    requests,
                    cost_usd: cost,
                }
            })
            .collect()
    };
    match &spec.shape {
        Shape::Figure => {}
        Shape::Breakdown { by } => {
            rows = match by {
                GroupBy::Time(g) => {
                    take_rows(&mut current, Some(ctx.buckets(&spec.period, *g, ticks)?))
                }
                GroupBy::Dimension(_) => {
                    let mut rows = take_rows(&mut current, None);
                    sort_rows(&mut rows, Order::Most);
                    rows
                }
            };
        }
        Shape::Trend { every } => {
            rows = take_rows(
                &mut current,
                Some(ctx.buckets(&spec.period, *every, ticks)?),
            );
        }
        Shape::Ranking { order, limit, .. } => {
            let mut all = take_rows(&mut current, None);
            all.retain(|r| r.value.is_some());
            sort_rows(&mut all, *order);
            all.truncate(*limit as usize);
            rows = all;
        }
        Shape::Compare { against, by } => match against {
            Comparison::Period(other) => {
                let other_days = ctx.days(other);
                let mut prev = ctx.pass(spec, *other, &[], *by, ticks)?;
                let prev_value = prev.total.value(spec.metric, other_days, prev.whole);
                if by.is_some() {
                    let mut keys: Vec<String> = current.groups.keys().cloned().collect();
                    for k in prev.groups.keys() {
                        if !current.groups.contains_key(k) {
                            keys.push(k.clone());
                        }
                    }
                    let mut cur_rows = take_rows(&mut current, Some(keys.clone()));
                    let prev_rows = {
                        let mut days_rows = Vec::new();
                        for key in &keys {
                            let v = match prev.groups.get_mut(key) {
                                Some(acc) => acc.value(spec.metric, other_days, prev.whole),
                                None => spec.metric.is_additive().then_some(0.0),
                            };
                            days_rows.push(v);
                        }
                        days_rows
                    };
                    for (row, p) in cur_rows.iter_mut().zip(prev_rows) {
                        row.previous = p;
                    }
                    sort_rows(&mut cur_rows, Order::Most);
                    rows = cur_rows;
                }
                previous = Some(Previous {
                    period: *other,
                    value: prev_value,
                    requests: prev.total.requests,
                    cost_usd: prev.total.cost,
                    change_pct: change_pct(value, prev_value),
                });
            }
            Comparison::Groups(groups) => {
                for g in groups {
                    let mut pass = ctx.pass(spec, spec.period, &g.conditions, None, ticks)?;
                    rows.push(Row {
                        key: g.label.clone(),
                        value: pass.total.value(spec.metric, days, pass.whole),
                        previous: None,
                        requests: pass.total.requests,
                        cost_usd: pass.total.cost,
                    });
                }
            }
        },
    }
    Ok(QueryResult {
        metric: spec.metric,
        period: spec.period,
        value,
        rows,
        previous,
        records: current.total.records,
        requests: current.total.requests,
        cost_usd: current.total.cost,
        data_first: ctx.data_span.map(|p| p.first),
        data_last: ctx.data_span.map(|p| p.last),
        unpriced_models: current.unpriced,
    })
}

/// Highest (or lowest) value first, rows without a value last, ties by key.
fn sort_rows(rows: &mut [Row], order: Order) {
    rows.sort_by(|a, b| {
        let by_value = match (a.value, b.value) {
            (Some(x), Some(y)) => match order {
                Order::Most => y.total_cmp(&x),
                Order::Least => x.total_cmp(&y),
            },
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        by_value.then_with(|| a.key.cmp(&b.key))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Dimension, Group};
    use chrono::TimeZone;
    use chrono::{NaiveDate, Utc};

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }

    fn rec(m: u32, day: u32, model: &str, team: &str, requests: u64, latency: f64) -> UsageRecord {
        let mut r = UsageRecord::new(
            Utc.with_ymd_and_hms(2026, m, day, 12, 0, 0).unwrap(),
            "openai",
            model,
            1_000_000 * requests,
            100_000 * requests,
        );
        r.request_count = requests;
        r.team = Some(team.to_string());
        r.latency_ms = Some(latency);
        r.status = Some(
            if latency > 1000.0 {
                "timeout"
            } else {
                "success"
            }
            .to_string(),
        );
        r
    }

    fn data() -> Vec<UsageRecord> {
        vec![
            rec(9, 10, "gpt-4o", "search", 1, 100.0),
            rec(10, 3, "gpt-4o", "search", 2, 200.0),
            rec(10, 4, "gpt-4o-mini", "support", 1, 2000.0),
            rec(10, 5, "gpt-4o", "support", 1, 300.0),
        ]
    }

    fn spec(metric: Metric, shape: Shape) -> QuerySpec {
        QuerySpec {
            metric,
            conditions: Vec::new(),
            period: Period::new(d(10, 1), d(10, 31)),
            shape,
            share_of: Vec::new(),
        }
    }

    #[test]
    fn names_round_trip() {
        for name in [
            "spend",
            "latency_p95",
            "ttft_mean",
            "share_of_spend",
            "error_rate",
        ] {
            assert_eq!(name.parse::<Metric>().unwrap().name(), name);
        }
        assert!("latency_p42".parse::<Metric>().is_err());
        assert_eq!(GroupBy::parse("week"), Some(GroupBy::Time(TimeGrain::Week)));
        assert_eq!(
            TimeGrain::Week.bucket_start(d(11, 18)),
            d(11, 16),
            "2026-11-18 is a Wednesday"
        );
    }

    #[test]
    fn figure_filters_and_prices() {
        let prices = PriceTable::embedded();
        let mut s = spec(Metric::Spend, Shape::Figure);
        s.conditions = vec![Condition::new(Dimension::Team, vec!["SEARCH".into()])];
        let out = evaluate(&data(), &prices, &s);
        // 2 requests of 1M input + 100k output on gpt-4o: 2 * (2.5 + 1.0)
        assert!((out.value.unwrap() - 7.0).abs() < 1e-9, "{out:?}");
        assert_eq!(out.requests, 2);
        assert_eq!(out.data_first, Some(d(9, 10)));
    }

    #[test]
    fn percentiles_weigh_buckets_by_requests() {
        let prices = PriceTable::embedded();
        let out = evaluate(
            &data(),
            &prices,
            &spec(Metric::Latency(Stat::P50), Shape::Figure),
        );
        // October requests: 200, 200, 300, 2000 -> nearest rank 2 of 4 is 200.
        assert_eq!(out.value, Some(200.0));
        let out = evaluate(
            &data(),
            &prices,
            &spec(Metric::Latency(Stat::P99), Shape::Figure),
        );
        assert_eq!(out.value, Some(2000.0));
        let out = evaluate(
            &data(),
            &prices,
            &spec(Metric::Latency(Stat::Mean), Shape::Figure),
        );
        assert_eq!(out.value, Some(675.0));
        let out = evaluate(&data(), &prices, &spec(Metric::ErrorRate, Shape::Figure));
        assert_eq!(out.value, Some(0.25));
    }

    #[test]
    fn ranking_comparison_and_series() {
        let prices = PriceTable::embedded();
        let ranking = Shape::Ranking {
            by: GroupBy::Dimension(Dimension::Team),
            order: Order::Least,
            limit: 1,
        };
        let out = evaluate(&data(), &prices, &spec(Metric::Spend, ranking));
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].key, "support");

        let compare = Shape::Compare {
            against: Comparison::Period(Period::new(d(9, 1), d(9, 30))),
            by: None,
        };
        let out = evaluate(&data(), &prices, &spec(Metric::Requests, compare));
        assert_eq!(out.value, Some(4.0));
        let prev = out.previous.unwrap();
        assert_eq!(prev.value, Some(1.0));
        assert_eq!(prev.change_pct, Some(300.0));

        let mut s = spec(
            Metric::Requests,
            Shape::Trend {
                every: TimeGrain::Day,
            },
        );
        s.period = Period::new(d(10, 3), d(10, 6));
        let out = evaluate(&data(), &prices, &s);
        let series: Vec<(String, Option<f64>)> =
            out.rows.iter().map(|r| (r.key.clone(), r.value)).collect();
        // The series stops at the data's last day (10-05), with no gaps before it.
        assert_eq!(
            series,
            vec![
                ("2026-10-03".to_string(), Some(2.0)),
                ("2026-10-04".to_string(), Some(1.0)),
                ("2026-10-05".to_string(), Some(1.0)),
            ]
        );

        let groups = Shape::Compare {
            against: Comparison::Groups(vec![
                Group {
                    label: "search".into(),
                    conditions: vec![Condition::new(Dimension::Team, vec!["search".into()])],
                },
                Group {
                    label: "support".into(),
                    conditions: vec![Condition::new(Dimension::Team, vec!["support".into()])],
                },
            ]),
            by: None,
        };
        let out = evaluate(&data(), &prices, &spec(Metric::ShareOfRequests, groups));
        let shares: Vec<Option<f64>> = out.rows.iter().map(|r| r.value).collect();
        assert_eq!(shares, vec![Some(0.5), Some(0.5)]);
    }
}
