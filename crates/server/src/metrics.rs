//! Server counters and their Prometheus text rendering (`GET /metrics`).
//!
//! Hand-written with atomics: a handful of counters, one gauge and one histogram do not justify a
//! metrics crate, and recording stays a single relaxed atomic add on the hot path (every frame).
//! Run outcomes come from the engine ([`agentwire_engine::EngineMetrics`]) at render time, so the
//! two layers never double count.
//!
//! This module must not take locks or allocate when recording.

use agentwire_engine::EngineMetrics;
use agentwire_protocol::ErrorCode;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the `agentwire_time_to_first_event_seconds` buckets.
pub const FIRST_EVENT_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters shared by every connection and handler.
#[derive(Debug)]
pub struct Metrics {
    connections_active: AtomicU64,
    connections_total: AtomicU64,
    events_sent: AtomicU64,
    uploads_refused: AtomicU64,
    /// One counter per [`ErrorCode`], in the order of [`ErrorCode::ALL`].
    ws_errors: [AtomicU64; ErrorCode::ALL.len()],
    first_event: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            connections_active: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            events_sent: AtomicU64::new(0),
            uploads_refused: AtomicU64::new(0),
            ws_errors: std::array::from_fn(|_| AtomicU64::new(0)),
            first_event: Histogram::default(),
        }
    }
}

impl Metrics {
    /// A socket was upgraded. Pair with [`Metrics::connection_closed`].
    pub fn connection_opened(&self) {
        self.connections_active.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        // Saturating: a gauge that wrapped to 2^64 would be worse than one that is briefly low.
        let _ = self
            .connections_active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// A usage upload was refused because every upload slot was taken.
    pub fn upload_refused(&self) {
        self.uploads_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the usage upload metrics: slots in use now and the cap (from `uploads`), and
    /// refusals since start.
    pub fn render_uploads(&self, out: &mut String, uploads: &crate::limits::UploadSlots) {
        let _ = write!(
            out,
            "# HELP agentwire_usage_uploads_active Usage uploads in progress now.\n\
             # TYPE agentwire_usage_uploads_active gauge\n\
             agentwire_usage_uploads_active {}\n\
             # HELP agentwire_usage_uploads_max Usage uploads this server takes at once.\n\
             # TYPE agentwire_usage_uploads_max gauge\n\
             agentwire_usage_uploads_max {}\n\
             # HELP agentwire_usage_uploads_refused_total Usage uploads refused (503) because the cap was reached.\n\
             # TYPE agentwire_usage_uploads_refused_total counter\n\
             agentwire_usage_uploads_refused_total {}\n",
            uploads.in_use(),
            uploads.capacity(),
            self.uploads_refused.load(Ordering::Relaxed),
        );
    }

    /// A run event frame was written to a socket.
    pub fn event_sent(&self) {
        self.events_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// An `error` frame was written to a socket.
    pub fn ws_error(&self, code: ErrorCode) {
        if let Some(idx) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.ws_errors[idx].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Time from receiving a `start_agent` to writing the run's first event.
    pub fn observe_first_event(&self, elapsed: Duration) {
        self.first_event.observe(elapsed);
    }

    pub fn connections_active(&self) -> u64 {
        self.connections_active.load(Ordering::Relaxed)
    }

    /// Renders everything in the Prometheus text exposition format, version 0.0.4.
    pub fn render(&self, engine: &EngineMetrics) -> String {
        let mut out = String::with_capacity(4096);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        // `write!` into a String cannot fail; the results are ignored for that reason.
        let _ = write!(
            out,
            "# HELP agentwire_connections_active WebSocket connections open now.\n\
             # TYPE agentwire_connections_active gauge\n\
             agentwire_connections_active {}\n\
             # HELP agentwire_connections_total WebSocket connections accepted since start.\n\
             # TYPE agentwire_connections_total counter\n\
             agentwire_connections_total {}\n",
            load(&self.connections_active),
            load(&self.connections_total),
        );
        let _ = write!(
            out,
            "# HELP agentwire_runs_started_total Runs started since start.\n\
             # TYPE agentwire_runs_started_total counter\n\
             agentwire_runs_started_total {}\n\
             # HELP agentwire_runs_total Runs finished since start, by outcome.\n\
             # TYPE agentwire_runs_total counter\n\
             agentwire_runs_total{{outcome=\"completed\"}} {}\n\
             agentwire_runs_total{{outcome=\"failed\"}} {}\n\
             agentwire_runs_total{{outcome=\"cancelled\"}} {}\n\
             # HELP agentwire_runs_active Runs executing now.\n\
             # TYPE agentwire_runs_active gauge\n\
             agentwire_runs_active {}\n\
             # HELP agentwire_runs_deleted_total Runs this node deleted, with their events, past the retention age.\n\
             # TYPE agentwire_runs_deleted_total counter\n\
             agentwire_runs_deleted_total {}\n",
            engine.runs_started,
            engine.runs_completed,
            engine.runs_failed,
            engine.runs_cancelled,
            engine.runs_active,
            engine.runs_deleted,
        );
        let _ = write!(
            out,
            "# HELP agentwire_memo_hits_total Tool calls answered from memoized results.\n\
             # TYPE agentwire_memo_hits_total counter\n\
             agentwire_memo_hits_total {}\n\
             # HELP agentwire_memo_misses_total Tool calls that computed their result.\n\
             # TYPE agentwire_memo_misses_total counter\n\
             agentwire_memo_misses_total {}\n\
             # HELP agentwire_memo_bytes Bytes of memoized tool results kept.\n\
             # TYPE agentwire_memo_bytes gauge\n\
             agentwire_memo_bytes {}\n\
             # HELP agentwire_memo_entries Memoized tool results kept.\n\
             # TYPE agentwire_memo_entries gauge\n\
             agentwire_memo_entries {}\n\
             # HELP agentwire_runs_waiting Runs waiting in line for an analysis slot.\n\
             # TYPE agentwire_runs_waiting gauge\n\
             agentwire_runs_waiting {}\n\
             # HELP agentwire_runs_admitted Runs doing their analysis now.\n\
             # TYPE agentwire_runs_admitted gauge\n\
             agentwire_runs_admitted {}\n\
             # HELP agentwire_pool_queue_depth Tool computations waiting for a CPU pool thread.\n\
             # TYPE agentwire_pool_queue_depth gauge\n\
             agentwire_pool_queue_depth {}\n\
             # HELP agentwire_pool_jobs_running Tool computations running on a CPU pool thread (a cancelled run's stop once its analysis notices the cancel).\n\
             # TYPE agentwire_pool_jobs_running gauge\n\
             agentwire_pool_jobs_running {}\n\
             # HELP agentwire_pool_threads Threads of the CPU pool.\n\
             # TYPE agentwire_pool_threads gauge\n\
             agentwire_pool_threads {}\n",
            engine.memo_hits,
            engine.memo_misses,
            engine.memo_bytes,
            engine.memo_entries,
            engine.runs_waiting,
            engine.runs_admitted,
            engine.pool_jobs_queued,
            engine.pool_jobs_running,
            engine.pool_threads,
        );
        let _ = write!(
            out,
            "# HELP agentwire_events_sent_total Run event frames written to sockets.\n\
             # TYPE agentwire_events_sent_total counter\n\
             agentwire_events_sent_total {}\n\
             # HELP agentwire_ws_errors_total Error frames written to sockets, by code.\n\
             # TYPE agentwire_ws_errors_total counter\n",
            load(&self.events_sent),
        );
        for (code, counter) in ErrorCode::ALL.iter().zip(&self.ws_errors) {
            let _ = writeln!(
                out,
                "agentwire_ws_errors_total{{code=\"{}\"}} {}",
                code.as_str(),
                load(counter)
            );
        }
        self.first_event.render(
            &mut out,
            "agentwire_time_to_first_event_seconds",
            "Time from receiving start_agent to writing the run's first event.",
        );
        out
    }
}

/// A fixed-bucket histogram over [`FIRST_EVENT_BUCKETS`].
#[derive(Debug)]
struct Histogram {
    /// Non-cumulative counts; the last slot is the overflow (`+Inf` only).
    buckets: [AtomicU64; FIRST_EVENT_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let idx = FIRST_EVENT_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(FIRST_EVENT_BUCKETS.len());
        self.buckets[idx].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} histogram\n");
        let mut cumulative = 0;
        for (bound, bucket) in FIRST_EVENT_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[FIRST_EVENT_BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        // The count is the +Inf bucket by definition; using it keeps the two consistent even
        // while observations race with rendering.
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    #![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
    use super::*;

    fn engine() -> EngineMetrics {
        EngineMetrics {
            runs_started: 5,
            runs_completed: 3,
            runs_failed: 1,
            runs_cancelled: 1,
            runs_active: 0,
            memo_hits: 7,
            memo_misses: 2,
            memo_bytes: 4096,
            memo_entries: 2,
            runs_waiting: 3,
            runs_admitted: 4,
            pool_jobs_queued: 1,
            pool_jobs_running: 5,
            pool_threads: 2,
            runs_deleted: 7,
        }
    }

    #[test]
    fn renders_every_metric() {
        let metrics = Metrics::default();
        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed();
        metrics.event_sent();
        metrics.ws_error(ErrorCode::AuthRequired);
        metrics.observe_first_event(Duration::from_micros(1500));
        metrics.observe_first_event(Duration::from_secs(30));
        let text = metrics.render(&engine());
        for line in [
            "agentwire_connections_active 1",
            "agentwire_connections_total 2",
            "agentwire_runs_total{outcome=\"completed\"} 3",
            "agentwire_runs_total{outcome=\"failed\"} 1",
            "agentwire_runs_total{outcome=\"cancelled\"} 1",
            "agentwire_runs_active 0",
            "agentwire_memo_hits_total 7",
            "agentwire_memo_misses_total 2",
            "agentwire_memo_bytes 4096",
            "agentwire_memo_entries 2",
            "agentwire_runs_waiting 3",
            "agentwire_runs_admitted 4",
            "agentwire_pool_queue_depth 1",
            "agentwire_pool_jobs_running 5",
            "agentwire_pool_threads 2",
            "agentwire_runs_deleted_total 7",
            "agentwire_events_sent_total 1",
            "agentwire_ws_errors_total{code=\"AUTH_REQUIRED\"} 1",
            "agentwire_ws_errors_total{code=\"INTERNAL\"} 0",
            "agentwire_time_to_first_event_seconds_bucket{le=\"0.001\"} 0",
            "agentwire_time_to_first_event_seconds_bucket{le=\"0.0025\"} 1",
            "agentwire_time_to_first_event_seconds_bucket{le=\"10\"} 1",
            "agentwire_time_to_first_event_seconds_bucket{le=\"+Inf\"} 2",
            "agentwire_time_to_first_event_seconds_count 2",
            "agentwire_time_to_first_event_seconds_sum 30.0015",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn gauge_never_goes_below_zero() {
        let metrics = Metrics::default();
        metrics.connection_closed();
        assert_eq!(metrics.connections_active(), 0);
    }
}
