//! `agentwire load`: many sessions at once, every latency measured from when the run was
//! *scheduled* to start, every session's events judged, every frame scanned for other users'
//! data.
//!
//! Two workload models:
//! - **Closed** (`users`, `ramp`, `runs_per_user`, `pace`): user *i* arrives at
//!   `t0 + ramp * i / users`, opens one socket and asks its runs one after another. Its first run
//!   is scheduled at its arrival (so it includes connecting, as a person's first question does);
//!   each later run at the previous one's schedule plus `pace`, or, with no pace, at the moment
//!   the previous run ended.
//!   With `hold`, a session that has asked its runs stays open until every user has, so the
//!   users are all connected at once (1,000 users over a 1 s ramp otherwise have a few hundred
//!   sockets open at most: each closes after its run).
//! - **Open** (`rate`): run *j* is scheduled at `t0 + j / rate` on a fresh socket, whether or not
//!   earlier runs have finished, up to `max_in_flight` at once.
//!
//! Coordinated omission: a slow server makes the generator late, and a generator that measures
//! from its own (late) send hides exactly that slowness. Here connect, time to first event (TTFE)
//! and time to completion (TTC) are measured from the scheduled start; a run that starts more than
//! [`LATE_AFTER`] after its schedule is counted in `late_starts`. The send-based figures are
//! reported beside them (`*_from_send`) so the difference is visible.
//!
//! Bounds: no run is scheduled at or after `duration`, at most `max_runs` runs are scheduled, and
//! a hard stop at `duration + completion_timeout + connect_timeout + 5 s` aborts whatever is left
//! (counted as failed). Traffic goes where the targets say, session `i` to target `i mod n` when
//! several nodes of one deployment are given; the CLI only allows loopback targets.
//!
//! What it must not do: count a run as completed without its terminal `agent_completed` and a
//! clean grammar, lose a failure (every failure kind is counted), or share a lock on the hot path
//! (each session keeps its own histograms and merges them when it ends).
//!
//! Layout: this file holds the configuration, the counters and the report; `schedule` decides
//! when each run starts under either model; `session` connects, runs, measures and judges one
//! session's runs; `summary` renders the report for a terminal; `server_metrics` reads the
//! server's own `/metrics` around the load (cache hits, queue peaks) when it can.

mod schedule;
mod server_metrics;
mod session;
mod summary;

pub use summary::{progress_line, summary};

use crate::metrics::{Tags, TrendSummary};
use crate::suite::config::{AuthMode, ConfigError};
use crate::target::Target;
use crate::threshold::{ThresholdResult, ThresholdVerdict, Thresholds};
use serde::Serialize;
use serde_json::Value;
use session::Shared;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A run that starts later than this after its schedule is a late start.
pub const LATE_AFTER: Duration = Duration::from_millis(10);
/// How many examples of each kind of problem the report keeps.
const EXAMPLES: usize = 10;

/// The workload model.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    Closed {
        users: usize,
        ramp: Duration,
        /// Runs each user asks (None: as many as fit in the duration).
        runs_per_user: Option<usize>,
        /// Time between the scheduled starts of one user's runs (zero: back to back).
        pace: Duration,
        /// Each session stays open after its runs (reading, answering pings) until every user
        /// has run, so all of them are open at once; otherwise a session closes after its runs.
        hold: bool,
    },
    Open {
        /// New runs per second.
        rate: f64,
        max_in_flight: usize,
    },
}

/// Everything `load` needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: String,
    /// Further nodes of the same deployment (each another `--target`): sessions are spread over
    /// all of them in turn, as a load balancer without sticky sessions would.
    pub other_targets: Vec<String>,
    pub auth: AuthMode,
    pub model: Model,
    /// No run is scheduled after this.
    pub duration: Duration,
    /// At most this many runs are scheduled.
    pub max_runs: usize,
    pub agent: String,
    pub question: String,
    /// When not empty, each run asks one of these instead of `question`: in turn, or drawn at
    /// random with `seed`.
    pub questions: Vec<String>,
    pub seed: Option<u64>,
    /// Minted users (`--secret`) are spread over this many tenants (`org_id` claims); 0 or 1 is
    /// one shared tenant.
    pub tenants: usize,
    pub connect_timeout: Duration,
    pub first_event_timeout: Duration,
    pub completion_timeout: Duration,
    pub thresholds: Thresholds,
    /// PEM CA certificates a TLS target is also verified against (`--ca-cert`).
    pub ca_cert: Option<Vec<u8>>,
}

impl LoadConfig {
    /// A closed workload of `users` users, one supervisor run each, with the seed suite's timeouts.
    pub fn closed(target: impl Into<String>, auth: AuthMode, users: usize) -> Self {
        Self {
            target: target.into(),
            other_targets: Vec::new(),
            auth,
            model: Model::Closed {
                users,
                ramp: Duration::ZERO,
                runs_per_user: Some(1),
                pace: Duration::ZERO,
                hold: false,
            },
            duration: Duration::from_secs(60),
            max_runs: users,
            agent: "supervisor".to_owned(),
            question: "How can we reduce our AI costs?".to_owned(),
            questions: Vec::new(),
            seed: None,
            tenants: 1,
            connect_timeout: crate::suite::config::DEFAULT_CONNECT_TIMEOUT,
            first_event_timeout: crate::suite::config::DEFAULT_FIRST_EVENT_TIMEOUT,
            completion_timeout: crate::suite::config::DEFAULT_COMPLETION_TIMEOUT,
            thresholds: Thresholds::from_pairs(crate::threshold::LOAD_DEFAULTS).unwrap_or_default(),
            ca_cert: None,
        }
    }
}

/// Live counters, readable while the load runs (for a progress display).
#[derive(Debug, Default)]
pub struct Counters {
    pub scheduled: AtomicU64,
    pub started: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub late: AtomicU64,
    pub connected: AtomicU64,
    pub peak_connected: AtomicU64,
    pub in_flight: AtomicU64,
    pub peak_in_flight: AtomicU64,
    pub violations: AtomicU64,
    pub leaks: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub scheduled: u64,
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    pub late: u64,
    pub connected: u64,
    pub peak_connected: u64,
    pub in_flight: u64,
    pub peak_in_flight: u64,
    pub violations: u64,
    pub leaks: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Snapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            scheduled: get(&self.scheduled),
            started: get(&self.started),
            completed: get(&self.completed),
            failed: get(&self.failed),
            late: get(&self.late),
            connected: get(&self.connected),
            peak_connected: get(&self.peak_connected),
            in_flight: get(&self.in_flight),
            peak_in_flight: get(&self.peak_in_flight),
            violations: get(&self.violations),
            leaks: get(&self.leaks),
        }
    }

    pub(super) fn up(&self, gauge: &AtomicU64, peak: &AtomicU64) {
        let now = gauge.fetch_add(1, Ordering::Relaxed) + 1;
        peak.fetch_max(now, Ordering::Relaxed);
    }

    pub(super) fn down(gauge: &AtomicU64) {
        gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one `load` measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub target: String,
    pub model: String,
    pub agent: String,
    pub started_at: String,
    pub elapsed_s: f64,
    pub counts: Snapshot,
    /// Failures by kind (`agent_error TIMEOUT`, `connect: HTTP 503`, `timeout: first event`...).
    pub failures: BTreeMap<String, u64>,
    pub violation_examples: Vec<String>,
    pub leak_examples: Vec<String>,
    /// connect, ttfe, ttc, event_gap (from the scheduled start), and ttfe_from_send,
    /// ttc_from_send (from the actual send), in milliseconds.
    pub latency_ms: BTreeMap<String, TrendSummary>,
    pub metrics: BTreeMap<String, Value>,
    /// What the server's `/metrics` said of the load, when it could be read: `memo_hits` and
    /// `memo_misses` (added during the load), `memo_hit_rate`, `memo_bytes`, and the peaks of
    /// `runs_waiting`, `runs_admitted` and `pool_queue_depth`.
    pub server_metrics: BTreeMap<String, f64>,
    pub thresholds: Vec<ThresholdResult>,
    pub unreachable: Option<String>,
    pub exit_code: u8,
}

impl LoadConfig {
    /// Refuses a workload that could not run.
    fn check(&self) -> Result<(), ConfigError> {
        match &self.model {
            Model::Closed { users, .. } if *users == 0 => {
                return Err(ConfigError::Invalid(
                    "--users must be at least 1".to_owned(),
                ));
            }
            Model::Open {
                rate,
                max_in_flight,
            } if !(rate.is_finite() && *rate > 0.0) || *max_in_flight == 0 => {
                return Err(ConfigError::Invalid(
                    "--rate must be a positive number of runs per second and --max-in-flight at least 1"
                        .to_owned(),
                ));
            }
            _ => {}
        }
        if self.max_runs == 0 {
            return Err(ConfigError::Invalid(
                "--max-runs must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

impl Model {
    /// The model in one line, for the report.
    fn describe(&self) -> String {
        match self {
            Model::Closed {
                users,
                ramp,
                runs_per_user,
                pace,
                hold,
            } => format!(
                "closed: {users} users, ramp {ramp:?}, {} run(s) each, pace {pace:?}{}",
                runs_per_user.map_or_else(|| "unbounded".to_owned(), |n| n.to_string()),
                if *hold {
                    ", each held open until the last has run"
                } else {
                    ""
                }
            ),
            Model::Open {
                rate,
                max_in_flight,
            } => format!("open: {rate} runs/s, at most {max_in_flight} in flight"),
        }
    }
}

/// Reachability: a TCP connection to the target within the connect timeout; else the reason
/// (exit code 2).
async fn unreachable(target: &Target, limit: Duration) -> Option<String> {
    let authority = target.http.dial_address();
    match tokio::time::timeout(limit, tokio::net::TcpStream::connect(&authority)).await {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(format!("cannot connect to {authority}: {err}")),
        Err(_) => Some(format!("no TCP connection to {authority} within {limit:?}")),
    }
}

/// Runs the workload. `counters` can be read while it runs.
///
/// # Errors
/// [`ConfigError`] for an unusable configuration (exit code 2).
pub async fn run(config: LoadConfig, counters: Arc<Counters>) -> Result<LoadReport, ConfigError> {
    let targets = std::iter::once(&config.target)
        .chain(&config.other_targets)
        .map(|target| Target::parse_with_ca(target, config.ca_cert.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    config.check()?;
    let shared = Arc::new(Shared::new(&config, targets, counters.clone())?);
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let t0 = Instant::now();
    let mut unreachable = None;
    for target in &shared.targets {
        unreachable = self::unreachable(target, config.connect_timeout).await;
        if unreachable.is_some() {
            break;
        }
    }
    let mut server_metrics = BTreeMap::new();
    if unreachable.is_none() {
        let mut samplers = Vec::with_capacity(shared.targets.len());
        for target in &shared.targets {
            samplers.push(server_metrics::Sampler::start(target).await);
        }
        schedule::drive(&shared, t0).await;
        let mut per_node = Vec::with_capacity(samplers.len());
        for (sampler, target) in samplers.into_iter().zip(&shared.targets) {
            per_node.push(sampler.finish(target).await);
        }
        server_metrics = server_metrics::combine(per_node);
    }

    let metrics = shared.metrics.lock().map(|m| m.clone()).unwrap_or_default();
    let mut latency_ms = BTreeMap::new();
    for name in ["connect", "ttfe", "ttc", "event_gap"] {
        if let Some(trend) = metrics.trend(name, &Tags::new()) {
            latency_ms.insert(name.to_owned(), trend.summary());
        }
    }
    if let Ok(from_send) = shared.from_send.lock() {
        if from_send.0.count() > 0 {
            latency_ms.insert("ttfe_from_send".to_owned(), from_send.0.summary());
        }
        if from_send.1.count() > 0 {
            latency_ms.insert("ttc_from_send".to_owned(), from_send.1.summary());
        }
    }
    let thresholds = config.thresholds.evaluate(&metrics);
    let counts = counters.snapshot();
    let exit_code = if unreachable.is_some() {
        2
    } else if counts.failed > 0
        || counts.violations > 0
        || counts.leaks > 0
        || counts.completed == 0
    {
        1
    } else if thresholds
        .iter()
        .any(|t| t.verdict == ThresholdVerdict::Breached)
    {
        99
    } else {
        0
    };
    let take = |list: &Mutex<Vec<String>>| list.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(LoadReport {
        target: std::iter::once(&config.target)
            .chain(&config.other_targets)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        model: config.model.describe(),
        agent: config.agent.clone(),
        started_at,
        elapsed_s: t0.elapsed().as_secs_f64(),
        counts,
        failures: shared
            .failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default(),
        violation_examples: take(&shared.violation_examples),
        leak_examples: take(&shared.leak_examples),
        latency_ms,
        metrics: metrics.summary(),
        server_metrics,
        thresholds,
        unreachable,
        exit_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_configurations_are_refused() {
        let auth = AuthMode::Token("a.b.c".to_owned());
        let mut config = LoadConfig::closed("http://127.0.0.1:1", auth.clone(), 0);
        assert!(matches!(
            run(config.clone(), Arc::default()).await,
            Err(ConfigError::Invalid(_))
        ));
        config.model = Model::Open {
            rate: 0.0,
            max_in_flight: 1,
        };
        assert!(run(config, Arc::default()).await.is_err());
    }

    #[tokio::test]
    async fn an_unreachable_target_is_exit_code_two() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let auth = AuthMode::Secret {
            secret: "0123456789abcdef0123456789abcdef".to_owned(),
            issuer: None,
            audience: None,
            org: None,
        };
        let report = run(
            LoadConfig::closed(format!("http://{addr}"), auth, 3),
            Arc::default(),
        )
        .await
        .unwrap();
        assert_eq!(report.exit_code, 2);
        assert!(report.unreachable.unwrap().contains("cannot connect"));
        assert_eq!(report.counts.completed, 0);
    }
}
