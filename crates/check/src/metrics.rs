//! The measurements `check` and `load` take, by name, for thresholds and reports.
//!
//! Three kinds, as in k6: a **trend** (latencies, scores: count, mean, min, max and percentiles), a
//! **counter** (leaks, errors, drops), and a **rate** (the share of runs that succeeded). Trends keep
//! exact count, sum, min and max beside an HdrHistogram (3 significant digits) for percentiles, so
//! ten thousand runs cost the same memory as ten. Values go in with tags (`scenario`, `agent`, ...),
//! so a threshold can select `quality{scenario:cost_optimization}`.
//!
//! [`CATALOGUE`] is the closed list of metric names: a threshold on a name not in it is a
//! configuration error, because a typo would otherwise make a threshold that can never fail.
//!
//! What it must not do: invent data. A metric nothing was ever recorded into has no value, and a
//! counter only has one after something was actually checked ([`MetricSet::observe`]).

use hdrhistogram::Histogram;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Which kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Trend,
    Counter,
    Rate,
}

/// One metric of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct MetricInfo {
    pub name: &'static str,
    pub kind: MetricKind,
    /// Unit of the values, for reports.
    pub unit: &'static str,
    pub meaning: &'static str,
}

/// Every metric `check` and `load` record.
pub const CATALOGUE: [MetricInfo; 14] = [
    MetricInfo {
        name: "connect",
        kind: MetricKind::Trend,
        unit: "ms",
        meaning: "WebSocket connect latency: TCP, upgrade and connection_established (load: from the session's scheduled start)",
    },
    MetricInfo {
        name: "ttfe",
        kind: MetricKind::Trend,
        unit: "ms",
        meaning: "time to the run's first event (load: from the run's scheduled start)",
    },
    MetricInfo {
        name: "ttc",
        kind: MetricKind::Trend,
        unit: "ms",
        meaning: "time to the run's terminal event (load: from the run's scheduled start)",
    },
    MetricInfo {
        name: "event_gap",
        kind: MetricKind::Trend,
        unit: "ms",
        meaning: "time between consecutive events of one run, as received",
    },
    MetricInfo {
        name: "events",
        kind: MetricKind::Trend,
        unit: "events",
        meaning: "events received per run",
    },
    MetricInfo {
        name: "quality",
        kind: MetricKind::Trend,
        unit: "score",
        meaning: "answer quality score in [0, 1], tagged by scenario",
    },
    MetricInfo {
        name: "duration",
        kind: MetricKind::Trend,
        unit: "ms",
        meaning: "wall time of each case (check) or of each session (load)",
    },
    MetricInfo {
        name: "runs",
        kind: MetricKind::Counter,
        unit: "runs",
        meaning: "runs started",
    },
    MetricInfo {
        name: "run_success",
        kind: MetricKind::Rate,
        unit: "share",
        meaning: "share of runs that ended with agent_completed and a valid grammar",
    },
    MetricInfo {
        name: "errors",
        kind: MetricKind::Counter,
        unit: "errors",
        meaning: "error frames, agent_error terminals and client errors",
    },
    MetricInfo {
        name: "drops",
        kind: MetricKind::Counter,
        unit: "connections",
        meaning: "connections that closed while a run was being followed",
    },
    MetricInfo {
        name: "isolation_leaks",
        kind: MetricKind::Counter,
        unit: "frames",
        meaning: "frames that carried another user's canary or run_id",
    },
    MetricInfo {
        name: "grammar_violations",
        kind: MetricKind::Counter,
        unit: "violations",
        meaning: "breaches of the run grammar (PROTOCOL.md sections 3 and 5)",
    },
    MetricInfo {
        name: "late_starts",
        kind: MetricKind::Counter,
        unit: "runs",
        meaning: "runs (load) that started more than 10 ms after their scheduled start",
    },
];

/// The catalogue entry for `name`.
pub fn info(name: &str) -> Option<&'static MetricInfo> {
    CATALOGUE.iter().find(|m| m.name == name)
}

/// Tags of one value: `(key, value)` pairs such as `("scenario", "cost_optimization")`.
pub type Tags = Vec<(String, String)>;

/// Values are stored in histograms at this many units per reported unit (ms -> µs, a 0..1 score ->
/// thousandths), so integer histograms keep three decimals.
const SCALE: f64 = 1000.0;

/// A trend's values: exact count, sum, min and max, and a histogram for percentiles.
///
/// The first few values wait in a short list and go into a histogram only when there are more
/// or the trend is merged into one that has it: `load` keeps one set of trends per session and
/// merges them at its end, and building a histogram (zeroed counts, grown as values arrive) for
/// the two or three values of each of thousands of sessions was a tenth of its CPU. Percentiles
/// are the same either way: every value is counted in a histogram before one is read.
#[derive(Debug, Clone)]
pub struct Trend {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Scaled values not yet in `histogram`, at most [`PENDING_MOST`].
    pending: Vec<u64>,
    histogram: Option<Histogram<u64>>,
}

/// Values a trend keeps before it builds its histogram.
const PENDING_MOST: usize = 64;

impl Default for Trend {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            pending: Vec::new(),
            histogram: None,
        }
    }
}

/// An auto-resizing histogram with three significant digits.
#[allow(clippy::expect_used)]
fn new_histogram() -> Histogram<u64> {
    // `Histogram::new` fails only for more than 5 significant digits; 3 is a constant.
    Histogram::new(3).expect("3 significant digits are within hdrhistogram's 0..=5")
}

/// Counts scaled values in `histogram`.
fn count_in(histogram: &mut Histogram<u64>, values: impl IntoIterator<Item = u64>) {
    for value in values {
        // `record` grows the auto-resizing histogram; only a value past what it can ever track
        // (beyond u64 after scaling) falls back to its top bucket.
        if histogram.record(value).is_err() {
            histogram.saturating_record(value);
        }
    }
}

impl Trend {
    /// Adds one value (negative values count as zero in the histogram, exactly in the mean).
    pub fn record(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.pending.push((value.max(0.0) * SCALE).round() as u64);
        self.settle_if_long();
    }

    /// Moves the waiting values into the histogram once there are too many to keep waiting.
    fn settle_if_long(&mut self) {
        if self.pending.len() >= PENDING_MOST {
            let histogram = self.histogram.get_or_insert_with(new_histogram);
            count_in(histogram, self.pending.drain(..));
        }
    }

    /// The histogram of every value recorded (built for the call when some still wait).
    fn settled(&self) -> Cow<'_, Histogram<u64>> {
        match &self.histogram {
            Some(histogram) if self.pending.is_empty() => Cow::Borrowed(histogram),
            _ => {
                let mut histogram = self.histogram.clone().unwrap_or_else(new_histogram);
                count_in(&mut histogram, self.pending.iter().copied());
                Cow::Owned(histogram)
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The `p`-th percentile (0..=100), to the histogram's precision; the max for 100.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentile_in(&self.settled(), p)
    }

    fn percentile_in(&self, histogram: &Histogram<u64>, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        if p >= 100.0 {
            return self.max();
        }
        let value = histogram.value_at_quantile((p / 100.0).clamp(0.0, 1.0)) as f64 / SCALE;
        // The histogram's bucket edge can sit a hair outside the exact range.
        Some(value.clamp(self.min, self.max))
    }

    /// Merges another trend into this one.
    pub fn merge(&mut self, other: &Trend) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if let Some(theirs) = &other.histogram {
            // Both histograms auto-resize, so adding cannot run out of range.
            let _ = self.histogram.get_or_insert_with(new_histogram).add(theirs);
        }
        self.pending.extend_from_slice(&other.pending);
        self.settle_if_long();
    }

    /// The usual summary: count, mean, min, p50, p90, p99, p99.9, max.
    pub fn summary(&self) -> TrendSummary {
        let histogram = self.settled();
        TrendSummary {
            count: self.count,
            mean: self.mean(),
            min: self.min(),
            p50: self.percentile_in(&histogram, 50.0),
            p90: self.percentile_in(&histogram, 90.0),
            p95: self.percentile_in(&histogram, 95.0),
            p99: self.percentile_in(&histogram, 99.0),
            p999: self.percentile_in(&histogram, 99.9),
            max: self.max(),
        }
    }
}

/// A trend's figures for reports (values in the metric's unit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrendSummary {
    pub count: u64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    #[serde(rename = "p99.9")]
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

/// One metric's values, split by tag set.
#[derive(Debug, Clone, Default)]
struct Series {
    /// Tag set -> values. The empty tag set holds untagged values.
    trends: BTreeMap<Tags, Trend>,
    counts: BTreeMap<Tags, f64>,
    /// Rate: (hits, total) per tag set.
    rates: BTreeMap<Tags, (u64, u64)>,
}

/// Everything measured in one `check` or `load`, by metric name.
#[derive(Debug, Clone, Default)]
pub struct MetricSet {
    series: BTreeMap<&'static str, Series>,
}

/// Whether a stored tag set matches a selector: every selector pair is in the set.
fn tags_match(stored: &Tags, selector: &Tags) -> bool {
    selector.iter().all(|pair| stored.contains(pair))
}

impl MetricSet {
    pub fn new() -> Self {
        Self::default()
    }

    fn series(&mut self, name: &str) -> Option<&mut Series> {
        let info = info(name)?;
        Some(self.series.entry(info.name).or_default())
    }

    /// Adds a value to the trend `name`. Unknown names are ignored (a programming error that tests
    /// catch through the catalogue).
    pub fn record(&mut self, name: &str, value: f64, tags: &Tags) {
        debug_assert!(
            info(name).is_some_and(|m| m.kind == MetricKind::Trend),
            "{name} is not a trend"
        );
        if let Some(series) = self.series(name) {
            series.trends.entry(tags.clone()).or_default().record(value);
        }
    }

    /// Adds `by` to the counter `name`.
    pub fn add(&mut self, name: &str, by: f64, tags: &Tags) {
        debug_assert!(
            info(name).is_some_and(|m| m.kind == MetricKind::Counter),
            "{name} is not a counter"
        );
        if let Some(series) = self.series(name) {
            *series.counts.entry(tags.clone()).or_default() += by;
        }
    }

    /// Marks the counter `name` as checked (it now has a value, zero if nothing was added), so
    /// `isolation_leaks: count==0` passes only when isolation was actually checked.
    pub fn observe(&mut self, name: &str, tags: &Tags) {
        self.add(name, 0.0, tags);
    }

    /// Records one outcome for the rate `name`.
    pub fn hit(&mut self, name: &str, success: bool, tags: &Tags) {
        debug_assert!(
            info(name).is_some_and(|m| m.kind == MetricKind::Rate),
            "{name} is not a rate"
        );
        if let Some(series) = self.series(name) {
            let entry = series.rates.entry(tags.clone()).or_default();
            entry.0 += u64::from(success);
            entry.1 += 1;
        }
    }

    /// Adds another trend into `name` (load merges per-task histograms).
    pub fn merge_trend(&mut self, name: &str, trend: &Trend, tags: &Tags) {
        if let Some(series) = self.series(name) {
            series.trends.entry(tags.clone()).or_default().merge(trend);
        }
    }

    /// Adds everything recorded in `other` (load merges each session's own set at the end, so
    /// sessions never contend for one lock).
    pub fn merge(&mut self, other: &MetricSet) {
        for (name, theirs) in &other.series {
            let ours = self.series.entry(name).or_default();
            for (tags, trend) in &theirs.trends {
                ours.trends.entry(tags.clone()).or_default().merge(trend);
            }
            for (tags, value) in &theirs.counts {
                *ours.counts.entry(tags.clone()).or_default() += value;
            }
            for (tags, (hits, total)) in &theirs.rates {
                let entry = ours.rates.entry(tags.clone()).or_default();
                entry.0 += hits;
                entry.1 += total;
            }
        }
    }

    /// The trend `name` over every tag set that matches `selector` (empty: all values).
    pub fn trend(&self, name: &str, selector: &Tags) -> Option<Trend> {
        let series = self.series.get(name)?;
        let mut out = Trend::default();
        let mut any = false;
        for (tags, trend) in &series.trends {
            if tags_match(tags, selector) {
                out.merge(trend);
                any = true;
            }
        }
        (any && out.count() > 0).then_some(out)
    }

    /// The counter `name` over matching tag sets; `None` when it was never observed.
    pub fn count(&self, name: &str, selector: &Tags) -> Option<f64> {
        let series = self.series.get(name)?;
        let mut total = None;
        for (tags, value) in &series.counts {
            if tags_match(tags, selector) {
                *total.get_or_insert(0.0) += value;
            }
        }
        total
    }

    /// The rate `name` over matching tag sets: `(hits, total)`.
    pub fn rate(&self, name: &str, selector: &Tags) -> Option<(u64, u64)> {
        let series = self.series.get(name)?;
        let mut out: Option<(u64, u64)> = None;
        for (tags, (hits, total)) in &series.rates {
            if tags_match(tags, selector) {
                let entry = out.get_or_insert((0, 0));
                entry.0 += hits;
                entry.1 += total;
            }
        }
        out.filter(|(_, total)| *total > 0)
    }

    /// Every metric with a value, untagged totals, for reports: name -> JSON figures.
    pub fn summary(&self) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        for info in &CATALOGUE {
            let empty = Tags::new();
            let value = match info.kind {
                MetricKind::Trend => self
                    .trend(info.name, &empty)
                    .map(|t| serde_json::json!(t.summary())),
                MetricKind::Counter => self
                    .count(info.name, &empty)
                    .map(|c| serde_json::json!({ "count": c })),
                MetricKind::Rate => self.rate(info.name, &empty).map(|(hits, total)| {
                    serde_json::json!({ "rate": hits as f64 / total as f64, "hits": hits, "total": total })
                }),
            };
            if let Some(value) = value {
                out.insert(info.name.to_owned(), value);
            }
        }
        out
    }
}

/// A tag set from pairs.
pub fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_give_exact_means_and_close_percentiles() {
        let mut t = Trend::default();
        for v in 1..=1000 {
            t.record(v as f64);
        }
        assert_eq!(t.count(), 1000);
        assert_eq!(t.mean(), Some(500.5));
        assert_eq!(t.min(), Some(1.0));
        assert_eq!(t.max(), Some(1000.0));
        let p50 = t.percentile(50.0).unwrap();
        assert!((p50 - 500.0).abs() <= 1.0, "{p50}");
        let p99 = t.percentile(99.0).unwrap();
        assert!((p99 - 990.0).abs() <= 1.0, "{p99}");
        assert_eq!(t.percentile(100.0), Some(1000.0));
    }

    #[test]
    fn merged_trends_keep_their_percentiles() {
        let mut a = Trend::default();
        let mut b = Trend::default();
        for v in 1..=50 {
            a.record(v as f64);
            b.record((v + 50) as f64);
        }
        let mut merged = Trend::default();
        merged.merge(&a);
        merged.merge(&b);
        assert_eq!(merged.count(), 100);
        let p50 = merged.percentile(50.0).unwrap();
        assert!((p50 - 50.0).abs() <= 1.0, "{p50}");
        let p99 = merged.percentile(99.0).unwrap();
        assert!((p99 - 99.0).abs() <= 1.0, "{p99}");
    }

    #[test]
    fn percentiles_do_not_depend_on_how_values_were_split_and_merged() {
        // One trend fed every value, and the same values spread over "sessions" of 1 to 130
        // values (some below the waiting list's length, some past it) merged in turn.
        let values: Vec<f64> = (0..5_000u64)
            .map(|i| (i.wrapping_mul(7_919) % 10_007) as f64 / 7.0)
            .collect();
        let mut whole = Trend::default();
        values.iter().for_each(|v| whole.record(*v));
        let mut merged = Trend::default();
        let mut rest = values.as_slice();
        let mut size = 1;
        while !rest.is_empty() {
            let (session, tail) = rest.split_at(size.min(rest.len()));
            let mut local = Trend::default();
            session.iter().for_each(|v| local.record(*v));
            merged.merge(&local);
            rest = tail;
            size = size % 130 + 17;
        }
        assert_eq!(merged.count(), whole.count());
        for p in [0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            assert_eq!(merged.percentile(p), whole.percentile(p), "p{p}");
        }
        let (a, b) = (merged.summary(), whole.summary());
        assert_eq!((a.p50, a.p99, a.p999), (b.p50, b.p99, b.p999));
        // A trend of three values, never merged, answers from them.
        let mut few = Trend::default();
        [3.0, 1.0, 2.0].iter().for_each(|v| few.record(*v));
        assert_eq!(few.percentile(50.0), Some(2.0));
    }

    #[test]
    fn fractional_scores_keep_three_decimals() {
        let mut t = Trend::default();
        t.record(0.734);
        t.record(0.5);
        assert_eq!(t.min(), Some(0.5));
        assert!((t.percentile(99.0).unwrap() - 0.734).abs() < 0.001);
    }

    #[test]
    fn tags_select_values_and_empty_selects_all() {
        let mut m = MetricSet::new();
        m.record("quality", 0.9, &tags(&[("scenario", "cost")]));
        m.record("quality", 0.5, &tags(&[("scenario", "capacity")]));
        assert_eq!(m.trend("quality", &Tags::new()).unwrap().count(), 2);
        let cost = m.trend("quality", &tags(&[("scenario", "cost")])).unwrap();
        assert_eq!(cost.mean(), Some(0.9));
        assert!(m.trend("quality", &tags(&[("scenario", "x")])).is_none());
    }

    #[test]
    fn counters_have_no_value_until_observed() {
        let mut m = MetricSet::new();
        assert_eq!(m.count("isolation_leaks", &Tags::new()), None);
        m.observe("isolation_leaks", &Tags::new());
        assert_eq!(m.count("isolation_leaks", &Tags::new()), Some(0.0));
        m.add("isolation_leaks", 2.0, &Tags::new());
        assert_eq!(m.count("isolation_leaks", &Tags::new()), Some(2.0));
    }

    #[test]
    fn rates_count_hits_over_total() {
        let mut m = MetricSet::new();
        assert_eq!(m.rate("run_success", &Tags::new()), None);
        m.hit("run_success", true, &Tags::new());
        m.hit("run_success", false, &Tags::new());
        assert_eq!(m.rate("run_success", &Tags::new()), Some((1, 2)));
    }

    #[test]
    fn catalogue_names_are_unique() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
    }
}
