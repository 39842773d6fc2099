//! What the server says about itself while the load runs: `GET /metrics` (Prometheus text) read
//! before the load, every half second during it (for the peaks of its queues) and after it.
//!
//! Optional by nature: a target without `/metrics`, or without our metric names, shows nothing
//! and fails nothing. What it must not do: slow the load (one small request at a time) or mix
//! its figures with the load's own measurements.

use crate::target::Target;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the gauges are read during the load.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Counters reported as what the load added (after minus before).
const COUNTERS: [(&str, &str); 2] = [
    ("agentwire_memo_hits_total", "memo_hits"),
    ("agentwire_memo_misses_total", "memo_misses"),
];
/// Gauges reported at their peak during the load.
const PEAKS: [(&str, &str); 3] = [
    ("agentwire_runs_waiting", "runs_waiting_peak"),
    ("agentwire_runs_admitted", "runs_admitted_peak"),
    ("agentwire_pool_queue_depth", "pool_queue_depth_peak"),
];
/// Gauges reported as they are after the load.
const AFTER: [(&str, &str); 3] = [
    ("agentwire_memo_bytes", "memo_bytes"),
    ("agentwire_memo_entries", "memo_entries"),
    ("agentwire_runs_active", "runs_active_after"),
];

/// The unlabelled samples of a Prometheus text page, by metric name.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            if name.contains('{') {
                return None;
            }
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

async fn read(target: &Target) -> Option<BTreeMap<String, f64>> {
    let answer = target
        .http
        .get("/metrics", &[], REQUEST_TIMEOUT)
        .await
        .ok()?;
    (answer.status == 200).then(|| parse(&answer.text()))
}

/// Reads the server's metrics around a load.
pub struct Sampler {
    before: Option<BTreeMap<String, f64>>,
    peaks: Arc<Mutex<BTreeMap<String, f64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Reads the metrics once, then keeps reading the gauges until [`Sampler::finish`].
    pub async fn start(target: &Target) -> Sampler {
        let before = read(target).await;
        let peaks = Arc::new(Mutex::new(BTreeMap::new()));
        let task = {
            let target = target.clone();
            let peaks = peaks.clone();
            let readable = before.is_some();
            tokio::spawn(async move {
                if !readable {
                    return;
                }
                loop {
                    if let Some(now) = read(&target).await
                        && let Ok(mut peaks) = peaks.lock()
                    {
                        record_peaks(&mut peaks, &now);
                    }
                    tokio::time::sleep(SAMPLE_EVERY).await;
                }
            })
        };
        Sampler {
            before,
            peaks,
            task,
        }
    }

    /// The figures of the load: counters' increase, gauges' peaks, and what is kept after.
    /// Empty when the target has no `/metrics` we can read.
    pub async fn finish(self, target: &Target) -> BTreeMap<String, f64> {
        self.task.abort();
        let mut out = BTreeMap::new();
        let (Some(before), Some(after)) = (self.before, read(target).await) else {
            return out;
        };
        for (metric, label) in COUNTERS {
            if let (Some(b), Some(a)) = (before.get(metric), after.get(metric)) {
                out.insert(label.to_owned(), a - b);
            }
        }
        if let (Some(hits), Some(misses)) = (out.get("memo_hits"), out.get("memo_misses"))
            && hits + misses > 0.0
        {
            out.insert("memo_hit_rate".to_owned(), hits / (hits + misses));
        }
        let mut peaks = self.peaks.lock().map(|p| p.clone()).unwrap_or_default();
        record_peaks(&mut peaks, &after);
        out.extend(peaks);
        for (metric, label) in AFTER {
            if let Some(v) = after.get(metric) {
                out.insert(label.to_owned(), *v);
            }
        }
        out
    }
}

/// The figures of several nodes as one: each figure summed over the nodes that report it (a
/// peak is then the sum of each node's own peak, an upper bound of the deployment's), and the
/// hit rate computed again from the summed hits and misses.
pub fn combine(per_node: Vec<BTreeMap<String, f64>>) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for node in per_node {
        for (label, value) in node {
            if label != "memo_hit_rate" {
                *out.entry(label).or_default() += value;
            }
        }
    }
    if let (Some(hits), Some(misses)) = (out.get("memo_hits"), out.get("memo_misses"))
        && hits + misses > 0.0
    {
        let rate = hits / (hits + misses);
        out.insert("memo_hit_rate".to_owned(), rate);
    }
    out
}

fn record_peaks(peaks: &mut BTreeMap<String, f64>, now: &BTreeMap<String, f64>) {
    for (metric, label) in PEAKS {
        if let Some(v) = now.get(metric) {
            let peak = peaks.entry(label.to_owned()).or_insert(*v);
            *peak = peak.max(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unlabelled_samples_and_skips_the_rest() {
        let text = "# HELP agentwire_memo_hits_total x\n# TYPE agentwire_memo_hits_total counter\n\
                    agentwire_memo_hits_total 42\nagentwire_runs_total{outcome=\"completed\"} 3\n\
                    agentwire_memo_bytes 1.5e3\nnot a number here\n";
        let parsed = parse(text);
        assert_eq!(parsed.get("agentwire_memo_hits_total"), Some(&42.0));
        assert_eq!(parsed.get("agentwire_memo_bytes"), Some(&1500.0));
        assert_eq!(parsed.len(), 2);
    }

    #[test]
    fn several_nodes_add_up_and_the_hit_rate_is_computed_again() {
        let node = |hits: f64, misses: f64| {
            BTreeMap::from([
                ("memo_hits".to_owned(), hits),
                ("memo_misses".to_owned(), misses),
                ("memo_hit_rate".to_owned(), hits / (hits + misses)),
            ])
        };
        let both = combine(vec![node(3.0, 1.0), node(1.0, 3.0)]);
        assert_eq!(both["memo_hits"], 4.0);
        assert_eq!(both["memo_misses"], 4.0);
        assert_eq!(both["memo_hit_rate"], 0.5);
        assert!(combine(Vec::new()).is_empty());
    }

    #[test]
    fn peaks_keep_the_highest_reading() {
        let mut peaks = BTreeMap::new();
        for waiting in [3.0, 9.0, 4.0] {
            let now = BTreeMap::from([("agentwire_runs_waiting".to_owned(), waiting)]);
            record_peaks(&mut peaks, &now);
        }
        assert_eq!(peaks.get("runs_waiting_peak"), Some(&9.0));
    }
}
