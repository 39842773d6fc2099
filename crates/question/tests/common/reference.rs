//! The second computation: the answer to an expected query, by plain loops over the records.
//!
//! Written apart from `analytics::query` and `analytics::whatif` on purpose (it uses only the
//! spec types and the price table's per-record prices), so a fact the corpus checks is never the
//! code under test agreeing with itself.

use std::collections::BTreeMap;

use agentwire_analytics::query::{
    Comparison, Condition, GroupBy, Metric, Order, Period, QuerySpec, Shape, Stat, TimeGrain,
};
use agentwire_analytics::whatif::Change;
use agentwire_analytics::{PriceTable, UsageRecord};
use chrono::{Datelike, Duration, NaiveDate};

/// What an expected query evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub value: Option<f64>,
    pub rows: Vec<(String, Option<f64>)>,
    pub previous: Option<Option<f64>>,
}

fn field<'r>(r: &'r UsageRecord, dimension: &str) -> Option<&'r str> {
    match dimension {
        "model" => Some(r.model.as_str()),
        "provider" => Some(r.provider.as_str()),
        "team" => r.team.as_deref(),
        "feature" => r.feature.as_deref(),
        "project" => r.project.as_deref(),
        "user" => r.user_id.as_deref(),
        "status" => r.status.as_deref(),
        _ => None,
    }
}

fn keep(r: &UsageRecord, conditions: &[Condition]) -> bool {
    for c in conditions {
        let Some(v) = field(r, c.dimension.as_str()) else {
            return false;
        };
        let mut any = false;
        for want in &c.values {
            if want.to_lowercase() == v.to_lowercase() {
                any = true;
            }
        }
        if !any {
            return false;
        }
    }
    true
}

fn in_period(r: &UsageRecord, p: &Period) -> bool {
    let d = r.timestamp.date_naive();
    d >= p.first && d <= p.last
}

fn span(records: &[UsageRecord]) -> (NaiveDate, NaiveDate) {
    let mut first = records[0].timestamp.date_naive();
    let mut last = first;
    for r in records {
        let d = r.timestamp.date_naive();
        if d < first {
            first = d;
        }
        if d > last {
            last = d;
        }
    }
    (first, last)
}

fn days_in_data(records: &[UsageRecord], p: &Period) -> f64 {
    let (first, last) = span(records);
    let a = if p.first > first { p.first } else { first };
    let b = if p.last < last { p.last } else { last };
    if b < a {
        0.0
    } else {
        ((b - a).num_days() + 1) as f64
    }
}

/// The metric over a set of records; `whole` is the share metrics' denominator.
fn metric(
    records: &[&UsageRecord],
    prices: &PriceTable,
    m: Metric,
    days: f64,
    whole: f64,
) -> Option<f64> {
    let mut cost = 0.0;
    let mut requests = 0.0;
    let mut input = 0.0;
    let mut output = 0.0;
    let mut cached = 0.0;
    let mut with_status = 0.0;
    let mut failed = 0.0;
    let mut samples: Vec<(f64, f64)> = Vec::new();
    for r in records {
        cost += prices.cost_usd(r);
        let n = r.request_count as f64;
        requests += n;
        input += r.input_tokens as f64;
        output += r.output_tokens as f64;
        cached += r.cache_read_input_tokens.unwrap_or(0) as f64;
        if let Some(s) = &r.status {
            with_status += n;
            if s != "success" {
                failed += n;
            }
        }
        let sample = match m {
            Metric::Latency(_) => r.latency_ms,
            Metric::Ttft(_) => r.ttft_ms,
            _ => None,
        };
        if let Some(v) = sample {
            samples.push((v, n));
        }
    }
    let div = |a: f64, b: f64| if b > 0.0 { Some(a / b) } else { None };
    match m {
        Metric::Spend => Some(cost),
        Metric::SpendPerDay => div(cost, days),
        Metric::Requests => Some(requests),
        Metric::InputTokens => Some(input),
        Metric::OutputTokens => Some(output),
        Metric::CachedTokens => Some(cached),
        Metric::TotalTokens => Some(input + output),
        Metric::InputTokensPerRequest => div(input, requests),
        Metric::OutputTokensPerRequest => div(output, requests),
        Metric::TokensPerRequest => div(input + output, requests),
        Metric::CostPerRequest => div(cost, requests),
        Metric::ErrorRate => div(failed, with_status),
        Metric::CacheHitShare => div(cached, input),
        Metric::ShareOfSpend => div(cost, whole),
        Metric::ShareOfRequests => div(requests, whole),
        Metric::ShareOfTokens => div(input + output, whole),
        Metric::Latency(stat) | Metric::Ttft(stat) => {
            if samples.is_empty() {
                return None;
            }
            let total: f64 = samples.iter().map(|s| s.1).sum();
            let p = match stat {
                Stat::Mean => {
                    let sum: f64 = samples.iter().map(|(v, n)| v * n).sum();
                    return Some(sum / total);
                }
                Stat::P50 => 0.50,
                Stat::P90 => 0.90,
                Stat::P95 => 0.95,
                Stat::P99 => 0.99,
            };
            samples.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
            // Nearest rank over requests: the smallest value with at least p of them at or below.
            let rank = (p * total).ceil().max(1.0);
            let mut seen = 0.0;
            for (v, n) in &samples {
                seen += n;
                if seen >= rank {
                    return Some(*v);
                }
            }
            None
        }
    }
}

fn whole(records: &[UsageRecord], prices: &PriceTable, spec: &QuerySpec, p: &Period) -> f64 {
    let mut total = 0.0;
    for r in records {
        if in_period(r, p) && keep(r, &spec.share_of) {
            total += match spec.metric {
                Metric::ShareOfRequests => r.request_count as f64,
                Metric::ShareOfTokens => (r.input_tokens + r.output_tokens) as f64,
                _ => prices.cost_usd(r),
            };
        }
    }
    total
}

fn bucket(d: NaiveDate, g: TimeGrain) -> String {
    match g {
        TimeGrain::Day => d.to_string(),
        TimeGrain::Week => {
            (d - Duration::days(d.weekday().num_days_from_monday() as i64)).to_string()
        }
        TimeGrain::Month => format!("{}-{:02}", d.year(), d.month()),
    }
}

fn key(r: &UsageRecord, by: GroupBy) -> String {
    match by {
        GroupBy::Dimension(d) => field(r, d.as_str()).unwrap_or("(none)").to_string(),
        GroupBy::Time(g) => bucket(r.timestamp.date_naive(), g),
    }
}

fn series_keys(records: &[UsageRecord], p: &Period, g: TimeGrain) -> Vec<String> {
    let (first, last) = span(records);
    let a = if p.first > first { p.first } else { first };
    let b = if p.last < last { p.last } else { last };
    let mut keys: Vec<String> = Vec::new();
    let mut d = a;
    while d <= b {
        let k = bucket(d, g);
        if !keys.contains(&k) {
            keys.push(k);
        }
        d += Duration::days(1);
    }
    keys
}

fn grouped(
    records: &[UsageRecord],
    prices: &PriceTable,
    spec: &QuerySpec,
    p: &Period,
    by: GroupBy,
) -> BTreeMap<String, Option<f64>> {
    let mut groups: BTreeMap<String, Vec<&UsageRecord>> = BTreeMap::new();
    for r in records {
        if in_period(r, p) && keep(r, &spec.conditions) {
            groups.entry(key(r, by)).or_default().push(r);
        }
    }
    let days = days_in_data(records, p);
    let w = whole(records, prices, spec, p);
    groups
        .into_iter()
        .map(|(k, rs)| (k, metric(&rs, prices, spec.metric, days, w)))
        .collect()
}

fn additive(m: Metric) -> bool {
    matches!(
        m,
        Metric::Spend
            | Metric::Requests
            | Metric::InputTokens
            | Metric::OutputTokens
            | Metric::CachedTokens
            | Metric::TotalTokens
    )
}

fn sort_rows(rows: &mut [(String, Option<f64>)], order: Order) {
    rows.sort_by(|a, b| {
        let o = match (a.1, b.1) {
            (Some(x), Some(y)) => {
                let c = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                if order == Order::Most { c.reverse() } else { c }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        o.then_with(|| a.0.cmp(&b.0))
    });
}

fn figure(
    records: &[UsageRecord],
    prices: &PriceTable,
    spec: &QuerySpec,
    p: &Period,
    extra: &[Condition],
) -> Option<f64> {
    let selected: Vec<&UsageRecord> = records
        .iter()
        .filter(|r| in_period(r, p) && keep(r, &spec.conditions) && keep(r, extra))
        .collect();
    metric(
        &selected,
        prices,
        spec.metric,
        days_in_data(records, p),
        whole(records, prices, spec, p),
    )
}

/// The fact for a lookup spec.
pub fn compute(records: &[UsageRecord], prices: &PriceTable, spec: &QuerySpec) -> Fact {
    let p = spec.period;
    let value = figure(records, prices, spec, &p, &[]);
    let mut rows = Vec::new();
    let mut previous = None;
    let zero = |m: Metric| if additive(m) { Some(0.0) } else { None };
    match &spec.shape {
        Shape::Figure => {}
        Shape::Breakdown {
            by: GroupBy::Time(g),
        }
        | Shape::Trend { every: g } => {
            let groups = grouped(records, prices, spec, &p, GroupBy::Time(*g));
            for k in series_keys(records, &p, *g) {
                let v = groups.get(&k).copied().unwrap_or_else(|| zero(spec.metric));
                rows.push((k, v));
            }
        }
        Shape::Breakdown { by } => {
            rows = grouped(records, prices, spec, &p, *by)
                .into_iter()
                .collect();
            sort_rows(&mut rows, Order::Most);
        }
        Shape::Ranking { by, order, limit } => {
            rows = grouped(records, prices, spec, &p, *by)
                .into_iter()
                .filter(|(_, v)| v.is_some())
                .collect();
            sort_rows(&mut rows, *order);
            rows.truncate(*limit as usize);
        }
        Shape::Compare {
            against: Comparison::Period(other),
            by,
        } => {
            previous = Some(figure(records, prices, spec, other, &[]));
            if let Some(by) = by {
                let cur = grouped(records, prices, spec, &p, *by);
                rows = cur.into_iter().collect();
                sort_rows(&mut rows, Order::Most);
            }
        }
        Shape::Compare {
            against: Comparison::Groups(groups),
            ..
        } => {
            for g in groups {
                rows.push((
                    g.label.clone(),
                    figure(records, prices, spec, &p, &g.conditions),
                ));
            }
        }
    }
    Fact {
        value,
        rows,
        previous,
    }
}

/// Current and scenario monthly cost of a what-if.
pub fn what_if(
    records: &[UsageRecord],
    prices: &PriceTable,
    scope: &[Condition],
    change: &Change,
    p: &Period,
) -> (f64, f64) {
    let days = days_in_data(records, p);
    let per_month = if days > 0.0 { 30.0 / days } else { 0.0 };
    let selected: Vec<&UsageRecord> = records
        .iter()
        .filter(|r| in_period(r, p) && keep(r, scope) && prices.lookup(&r.model).is_some())
        .collect();
    let mut current = 0.0;
    let mut scenario = 0.0;
    match change {
        Change::CachePrefix => {
            for r in &selected {
                current += prices.cost_usd(r);
            }
            let saving = prefix_saving(&selected, prices);
            return (current * per_month, (current - saving) * per_month);
        }
        _ => {
            for r in &selected {
                let now = prices.cost_usd(r);
                current += now;
                let Some(source) = prices.lookup(&r.model) else {
                    continue;
                };
                let target = match change {
                    Change::ToModel(m) => prices.lookup(m),
                    Change::CheaperModel => prices.cheaper_alternative(&r.model),
                    Change::ToProvider(provider) => {
                        if source.provider == *provider {
                            None
                        } else {
                            let all: Vec<_> = prices
                                .models()
                                .filter(|m| m.provider == *provider)
                                .collect();
                            let same: Vec<_> = all
                                .iter()
                                .copied()
                                .filter(|m| m.tier == source.tier)
                                .collect();
                            let pool = if same.is_empty() { all } else { same };
                            let src = source.blended_cost_per_token();
                            let mut best = None;
                            let mut best_d = f64::INFINITY;
                            let mut best_b = f64::INFINITY;
                            for m in pool {
                                let b = m.blended_cost_per_token();
                                let d = (b / src).ln().abs();
                                if d < best_d - 1e-12
                                    || ((d - best_d).abs() <= 1e-12
                                        && (b < best_b
                                            || (b == best_b
                                                && best.is_some_and(
                                                    |x: &agentwire_analytics::ModelPrice| {
                                                        m.model < x.model
                                                    },
                                                ))))
                                {
                                    best = Some(m);
                                    best_d = d;
                                    best_b = b;
                                }
                            }
                            best
                        }
                    }
                    Change::CachePrefix => None,
                };
                scenario += match target {
                    Some(t) if t.model != source.model => t.cost_for(r),
                    _ => now,
                };
            }
        }
    }
    (current * per_month, scenario * per_month)
}

/// Prompt caching of a shared prefix (prefix_hash + prefix_tokens tag), one request per record:
/// a prefix used within the previous 5 minutes is read from the cache, otherwise written.
fn prefix_saving(selected: &[&UsageRecord], prices: &PriceTable) -> f64 {
    let mut order: Vec<&UsageRecord> = selected
        .iter()
        .copied()
        .filter(|r| r.prefix_hash.is_some())
        .collect();
    order.sort_by_key(|r| r.timestamp);
    let mut last: BTreeMap<String, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    let mut by_group: BTreeMap<(String, String), f64> = BTreeMap::new();
    for r in order {
        let Some(tokens) = r
            .tags
            .as_deref()
            .and_then(|t| {
                t.split(';')
                    .find_map(|kv| kv.trim().strip_prefix("prefix_tokens="))
            })
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        let prefix = r.prefix_hash.clone().unwrap_or_default();
        let n = r.request_count.max(1);
        let tokens = tokens.min(r.input_tokens / n);
        if tokens < 1024 {
            continue;
        }
        let Some(price) = prices.lookup(&r.model) else {
            continue;
        };
        let (reads, writes) = if n == 1 {
            let warm = last
                .get(&prefix)
                .is_some_and(|t| r.timestamp - *t <= chrono::Duration::minutes(5));
            if warm { (1, 0) } else { (0, 1) }
        } else {
            let writes = n.min(12);
            (n - writes, writes)
        };
        last.insert(prefix, r.timestamp);
        let rates = price.rates(r.input_tokens as f64 / n as f64, false);
        let already = r.cache_read_input_tokens.unwrap_or(0) as f64;
        let reused = ((reads * tokens) as f64 - already).max(0.0);
        let written = (writes * tokens) as f64;
        let saving = reused * (rates.input - rates.cache_read)
            - written * (rates.cache_write - rates.input).max(0.0);
        *by_group
            .entry((price.model.clone(), r.feature.clone().unwrap_or_default()))
            .or_default() += saving;
    }
    by_group.values().filter(|s| **s > 0.0).sum()
}
