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
//! (counted as failed). Traffic goes where the target says; the CLI only allows loopback targets.
//!
//! What it must not do: count a run as completed without its terminal `agent_completed` and a
//! clean grammar, lose a failure (every failure kind is counted), or share a lock on the hot path
//! (each session keeps its own histograms and merges them when it ends).

use crate::client::{ClientError, ConnectOptions, Credentials, RunTranscript, Session};
use crate::grammar;
use crate::isolation::Registry;
use crate::metrics::{MetricSet, Tags, TrendSummary};
use crate::suite::{AuthMode, ConfigError};
use crate::threshold::{ThresholdResult, ThresholdVerdict, Thresholds};
use crate::token::{Identity, Minter};
use serde::Serialize;
use serde_json::{Map, Value};
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
    pub auth: AuthMode,
    pub model: Model,
    /// No run is scheduled after this.
    pub duration: Duration,
    /// At most this many runs are scheduled.
    pub max_runs: usize,
    pub agent: String,
    pub question: String,
    pub connect_timeout: Duration,
    pub first_event_timeout: Duration,
    pub completion_timeout: Duration,
    pub thresholds: Thresholds,
}

impl LoadConfig {
    /// A closed workload of `users` users, one supervisor run each, with the seed suite's timeouts.
    pub fn closed(target: impl Into<String>, auth: AuthMode, users: usize) -> Self {
        Self {
            target: target.into(),
            auth,
            model: Model::Closed {
                users,
                ramp: Duration::ZERO,
                runs_per_user: Some(1),
                pace: Duration::ZERO,
            },
            duration: Duration::from_secs(60),
            max_runs: users,
            agent: "supervisor".to_owned(),
            question: "How can we reduce our AI costs?".to_owned(),
            connect_timeout: crate::suite::DEFAULT_CONNECT_TIMEOUT,
            first_event_timeout: crate::suite::DEFAULT_FIRST_EVENT_TIMEOUT,
            completion_timeout: crate::suite::DEFAULT_COMPLETION_TIMEOUT,
            thresholds: Thresholds::from_pairs(crate::threshold::LOAD_DEFAULTS).unwrap_or_default(),
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

    fn up(&self, gauge: &AtomicU64, peak: &AtomicU64) {
        let now = gauge.fetch_add(1, Ordering::Relaxed) + 1;
        peak.fetch_max(now, Ordering::Relaxed);
    }

    fn down(gauge: &AtomicU64) {
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
    pub thresholds: Vec<ThresholdResult>,
    pub unreachable: Option<String>,
    pub exit_code: u8,
}

/// Everything the sessions share.
struct Shared {
    config: LoadConfig,
    ws_url: String,
    minter: Option<Minter>,
    token: Option<String>,
    org: Option<String>,
    tag: String,
    registry: Registry,
    counters: Arc<Counters>,
    metrics: Mutex<MetricSet>,
    /// Send-based latencies, reported beside the scheduled ones.
    from_send: Mutex<(crate::metrics::Trend, crate::metrics::Trend)>,
    failures: Mutex<BTreeMap<String, u64>>,
    violation_examples: Mutex<Vec<String>>,
    leak_examples: Mutex<Vec<String>>,
}

impl Shared {
    fn fail(&self, kind: impl Into<String>) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut failures) = self.failures.lock() {
            *failures.entry(kind.into()).or_default() += 1;
        }
    }

    fn example(list: &Mutex<Vec<String>>, text: impl FnOnce() -> String) {
        if let Ok(mut list) = list.lock()
            && list.len() < EXAMPLES
        {
            list.push(text());
        }
    }

    fn credentials(&self, user: &str) -> (String, Credentials) {
        match (&self.minter, &self.token) {
            (Some(minter), _) => {
                let identity = Identity::new(user, self.org.clone());
                (
                    user.to_owned(),
                    Credentials::Bearer(minter.token(&identity)),
                )
            }
            (None, Some(token)) => {
                let sub = crate::token::claims_of(token)
                    .ok()
                    .and_then(|c| c.get("sub").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                (sub, Credentials::Bearer(token.clone()))
            }
            (None, None) => (user.to_owned(), Credentials::None),
        }
    }

    fn options(&self, credentials: Credentials) -> ConnectOptions {
        ConnectOptions {
            url: self.ws_url.clone(),
            credentials,
            offer_subprotocol: true,
            connect_timeout: self.config.connect_timeout,
        }
    }
}

/// One session's own measurements, merged into the shared set when it ends.
struct Local {
    metrics: MetricSet,
    ttfe_sent: crate::metrics::Trend,
    ttc_sent: crate::metrics::Trend,
}

impl Local {
    fn new() -> Self {
        Self {
            metrics: MetricSet::new(),
            ttfe_sent: crate::metrics::Trend::default(),
            ttc_sent: crate::metrics::Trend::default(),
        }
    }

    fn flush(self, shared: &Shared) {
        if let Ok(mut metrics) = shared.metrics.lock() {
            metrics.merge(&self.metrics);
        }
        if let Ok(mut from_send) = shared.from_send.lock() {
            from_send.0.merge(&self.ttfe_sent);
            from_send.1.merge(&self.ttc_sent);
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs the workload. `counters` can be read while it runs.
///
/// # Errors
/// [`ConfigError`] for an unusable configuration (exit code 2).
pub async fn run(config: LoadConfig, counters: Arc<Counters>) -> Result<LoadReport, ConfigError> {
    let ws_url = crate::client::websocket_url(&config.target)
        .map_err(|e| ConfigError::Target(e.to_string()))?;
    let http = crate::http::HttpTarget::parse(&config.target)
        .map_err(|e| ConfigError::Target(e.to_string()))?;
    match &config.model {
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
    if config.max_runs == 0 {
        return Err(ConfigError::Invalid(
            "--max-runs must be at least 1".to_owned(),
        ));
    }
    let tag = crate::token::random_hex(8);
    let (minter, token, org) = match &config.auth {
        AuthMode::Token(token) => {
            crate::token::claims_of(token)?;
            (None, Some(token.clone()), None)
        }
        AuthMode::Secret {
            secret,
            issuer,
            audience,
            org,
        } => (
            Some(Minter::new(secret, issuer.clone(), audience.clone())?),
            None,
            // One tenant for every load user: with demo data on the server nothing is duplicated.
            Some(org.clone().unwrap_or_else(|| format!("load-{tag}"))),
        ),
    };
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let t0 = Instant::now();

    // Reachability: a TCP connection to the target, or exit code 2.
    let unreachable = match tokio::time::timeout(
        config.connect_timeout,
        tokio::net::TcpStream::connect(&http.authority),
    )
    .await
    {
        Ok(Ok(_)) => None,
        Ok(Err(err)) => Some(format!("cannot connect to {}: {err}", http.authority)),
        Err(_) => Some(format!(
            "no TCP connection to {} within {:?}",
            http.authority, config.connect_timeout
        )),
    };
    let model_text = match &config.model {
        Model::Closed {
            users,
            ramp,
            runs_per_user,
            pace,
        } => format!(
            "closed: {users} users, ramp {ramp:?}, {} run(s) each, pace {pace:?}",
            runs_per_user.map_or_else(|| "unbounded".to_owned(), |n| n.to_string())
        ),
        Model::Open {
            rate,
            max_in_flight,
        } => format!("open: {rate} runs/s, at most {max_in_flight} in flight"),
    };
    let shared = Arc::new(Shared {
        ws_url,
        minter,
        token,
        org,
        tag,
        registry: Registry::new(),
        counters: counters.clone(),
        metrics: Mutex::new(MetricSet::new()),
        from_send: Mutex::new(Default::default()),
        failures: Mutex::new(BTreeMap::new()),
        violation_examples: Mutex::new(Vec::new()),
        leak_examples: Mutex::new(Vec::new()),
        config: config.clone(),
    });
    if unreachable.is_none() {
        let hard_stop = t0
            + config.duration
            + config.completion_timeout
            + config.connect_timeout
            + Duration::from_secs(5);
        let mut tasks = tokio::task::JoinSet::new();
        match config.model.clone() {
            Model::Closed {
                users,
                ramp,
                runs_per_user,
                pace,
            } => {
                for i in 0..users {
                    let arrival = t0 + ramp.mul_f64(i as f64 / users as f64);
                    let shared = shared.clone();
                    tasks.spawn(closed_user(shared, i, arrival, t0, runs_per_user, pace));
                }
            }
            Model::Open {
                rate,
                max_in_flight,
            } => {
                let shared = shared.clone();
                tasks.spawn(open_dispatcher(shared, t0, rate, max_in_flight));
            }
        }
        loop {
            match tokio::time::timeout_at(hard_stop, tasks.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    let left = tasks.len();
                    tasks.abort_all();
                    shared.fail(format!(
                        "aborted at the hard stop ({left} session task(s) still running)"
                    ));
                    break;
                }
            }
        }
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
        target: config.target.clone(),
        model: model_text,
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
        thresholds,
        unreachable,
        exit_code,
    })
}

/// Reserves one run slot; false once `max_runs` runs were scheduled.
fn reserve(shared: &Shared) -> bool {
    let previous = shared.counters.scheduled.fetch_add(1, Ordering::Relaxed);
    if previous >= shared.config.max_runs as u64 {
        shared.counters.scheduled.fetch_sub(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// Connects a session, measuring from `scheduled`.
async fn connect(
    shared: &Shared,
    user: &str,
    scheduled: Instant,
    local: &mut Local,
) -> Result<(Session, String), String> {
    let (me, credentials) = shared.credentials(user);
    match Session::connect(&shared.options(credentials)).await {
        Ok(session) => {
            local
                .metrics
                .record("connect", ms(scheduled.elapsed()), &Tags::new());
            shared
                .counters
                .up(&shared.counters.connected, &shared.counters.peak_connected);
            Ok((session, me))
        }
        Err(err) => Err(format!("connect: {}", error_kind(&err))),
    }
}

/// A short, countable kind for a client error (no ids or addresses in it).
fn error_kind(err: &ClientError) -> String {
    match err {
        ClientError::Http { status, body } => {
            let code = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|b| {
                    b.get("error_code")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            format!("HTTP {status} {code}").trim_end().to_owned()
        }
        ClientError::Connect { reason, .. } => format!("cannot connect: {reason}"),
        ClientError::Timeout { waiting_for, .. } => {
            let what = if waiting_for.starts_with("the first event") {
                "first event"
            } else if waiting_for.starts_with("the terminal event") {
                "terminal event"
            } else if waiting_for.starts_with("run_accepted") {
                "run_accepted"
            } else if waiting_for.contains("upgrade") {
                "upgrade"
            } else {
                waiting_for.as_str()
            };
            format!("timeout: {what}")
        }
        ClientError::Closed { code, .. } => format!(
            "connection closed (code {})",
            code.map_or_else(|| "none".to_owned(), |c| c.to_string())
        ),
        ClientError::ServerError { error_code, .. } => format!("error {error_code}"),
        ClientError::Protocol(_) => "protocol violation".to_owned(),
        ClientError::Transport(_) => "transport error".to_owned(),
        ClientError::Handshake(_) => "handshake failed".to_owned(),
        ClientError::InvalidUrl { .. } | ClientError::InvalidCredentials(_) => {
            "configuration".to_owned()
        }
    }
}

/// Scans frames for leaks and counts them.
fn scan(shared: &Shared, frames: &[Value], me: &str, local: &mut Local) {
    local.metrics.observe("isolation_leaks", &Tags::new());
    for frame in frames {
        for leak in shared.registry.scan(frame, me) {
            shared.counters.leaks.fetch_add(1, Ordering::Relaxed);
            local.metrics.add("isolation_leaks", 1.0, &Tags::new());
            Shared::example(&shared.leak_examples, || leak.to_string());
        }
    }
}

/// One run on an open session, scheduled at `scheduled`. Returns the run's transcript when it was
/// followed to its end.
async fn one_run(
    shared: &Shared,
    session: &mut Session,
    me: &str,
    scheduled: Instant,
    local: &mut Local,
    finished_runs: &mut Vec<String>,
) -> Result<(), String> {
    let sent = Instant::now();
    shared.counters.started.fetch_add(1, Ordering::Relaxed);
    if sent.duration_since(scheduled) > LATE_AFTER {
        shared.counters.late.fetch_add(1, Ordering::Relaxed);
        local.metrics.add("late_starts", 1.0, &Tags::new());
    }
    local.metrics.observe("late_starts", &Tags::new());
    local.metrics.add("runs", 1.0, &Tags::new());
    let canary = shared.registry.canary(me);
    let request_id = format!("load-{}", crate::token::random_hex(10));
    let question = format!("{} [ref {canary}]", shared.config.question);
    session
        .start_agent(&request_id, &shared.config.agent, &question, Map::new())
        .await
        .map_err(|e| error_kind(&e))?;
    let accepted = session
        .wait_run_accepted(&request_id, shared.config.first_event_timeout)
        .await
        .map_err(|e| error_kind(&e))?;
    shared.registry.register_run(&accepted.run_id, me);
    shared
        .counters
        .up(&shared.counters.in_flight, &shared.counters.peak_in_flight);
    let followed = follow(shared, session, &accepted.run_id, scheduled, sent, local).await;
    Counters::down(&shared.counters.in_flight);
    let run = followed.map_err(|e| error_kind(&e))?;
    scan(shared, &run.events, me, local);
    finished_runs.push(accepted.run_id.clone());
    judge(shared, &run, scheduled, sent, local)
}

/// Follows a run to its terminal event. Time to first event is recorded as soon as it is known,
/// so a run that fails later still counts in that histogram.
async fn follow(
    shared: &Shared,
    session: &mut Session,
    run_id: &str,
    scheduled: Instant,
    sent: Instant,
    local: &mut Local,
) -> Result<RunTranscript, ClientError> {
    let first_left = shared
        .config
        .first_event_timeout
        .saturating_sub(sent.elapsed());
    let first = session.wait_first_event(run_id, first_left).await?;
    local.metrics.record(
        "ttfe",
        ms(first.duration_since(scheduled.into_std())),
        &Tags::new(),
    );
    local
        .ttfe_sent
        .record(ms(first.duration_since(sent.into_std())));
    let left = shared
        .config
        .completion_timeout
        .saturating_sub(sent.elapsed());
    session.collect_run(run_id, left).await
}

/// Measures and judges one followed run.
fn judge(
    shared: &Shared,
    run: &RunTranscript,
    scheduled: Instant,
    sent: Instant,
    local: &mut Local,
) -> Result<(), String> {
    let empty = Tags::new();
    let scheduled_std = scheduled.into_std();
    let sent_std = sent.into_std();
    // Time to first event was recorded while following; completion exists only for runs that
    // ended, and those that did not are counted by kind in the failures.
    if let Some(done) = run.completed_at {
        local
            .metrics
            .record("ttc", ms(done.duration_since(scheduled_std)), &empty);
        local.ttc_sent.record(ms(done.duration_since(sent_std)));
    }
    for pair in run.received_at.windows(2) {
        local
            .metrics
            .record("event_gap", ms(pair[1].duration_since(pair[0])), &empty);
    }
    local
        .metrics
        .record("events", run.events.len() as f64, &empty);
    let violations = grammar::check_run(&run.events);
    local.metrics.observe("grammar_violations", &empty);
    local
        .metrics
        .add("grammar_violations", violations.len() as f64, &empty);
    if !violations.is_empty() {
        shared
            .counters
            .violations
            .fetch_add(violations.len() as u64, Ordering::Relaxed);
        for v in &violations {
            Shared::example(&shared.violation_examples, || {
                format!("run {}: {v}", run.run_id)
            });
        }
    }
    let completed = run.terminal_type() == Some("agent_completed");
    local
        .metrics
        .hit("run_success", completed && violations.is_empty(), &empty);
    if !completed {
        let last = run.events.last();
        let kind = last
            .and_then(|e| e.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("no terminal event");
        let code = last
            .and_then(|e| e.get("error_code"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(format!("{kind} {code}").trim_end().to_owned());
    }
    if !violations.is_empty() {
        return Err("grammar violation".to_owned());
    }
    Ok(())
}

/// Reads what is left on a session before it closes: leaks, and events of finished runs that
/// arrived after their terminal event.
async fn finish(
    shared: &Shared,
    mut session: Session,
    me: &str,
    finished_runs: &[String],
    local: &mut Local,
) {
    let mut frames: Vec<Value> = session
        .take_backlog()
        .into_iter()
        .map(|f| f.value)
        .collect();
    while let Ok(frame) = session.next_frame(Duration::from_millis(20)).await {
        frames.push(frame.value);
    }
    scan(shared, &frames, me, local);
    for frame in &frames {
        let run_id = frame.get("run_id").and_then(Value::as_str).unwrap_or("");
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or("");
        if finished_runs.iter().any(|r| r == run_id) && grammar::is_run_event_type(kind) {
            shared.counters.violations.fetch_add(1, Ordering::Relaxed);
            local.metrics.add("grammar_violations", 1.0, &Tags::new());
            Shared::example(&shared.violation_examples, || {
                format!(
                    "run {run_id}: [{}] {kind} after the terminal event",
                    grammar::rules::ONE_TERMINAL_LAST
                )
            });
        }
    }
    Counters::down(&shared.counters.connected);
    let _ = session.close().await;
}

async fn closed_user(
    shared: Arc<Shared>,
    index: usize,
    arrival: Instant,
    t0: Instant,
    runs_per_user: Option<usize>,
    pace: Duration,
) {
    let end = t0 + shared.config.duration;
    if arrival >= end || !reserve(&shared) {
        return;
    }
    tokio::time::sleep_until(arrival).await;
    let mut local = Local::new();
    let user = format!("load-{}-u{index}", shared.tag);
    let (mut session, me) = match connect(&shared, &user, arrival, &mut local).await {
        Ok(pair) => pair,
        Err(kind) => {
            shared.fail(kind);
            local.flush(&shared);
            return;
        }
    };
    let mut finished_runs = Vec::new();
    let mut scheduled = arrival;
    let mut done = 0usize;
    loop {
        if let Err(kind) = one_run(
            &shared,
            &mut session,
            &me,
            scheduled,
            &mut local,
            &mut finished_runs,
        )
        .await
        {
            shared.fail(kind);
            // A session whose socket closed cannot go on.
            if session_closed(&mut session).await {
                break;
            }
        } else {
            shared.counters.completed.fetch_add(1, Ordering::Relaxed);
        }
        done += 1;
        if runs_per_user.is_some_and(|n| done >= n) {
            break;
        }
        let next = if pace.is_zero() {
            Instant::now()
        } else {
            scheduled + pace
        };
        if next >= end || !reserve(&shared) {
            break;
        }
        scheduled = next;
        tokio::time::sleep_until(scheduled).await;
    }
    finish(&shared, session, &me, &finished_runs, &mut local).await;
    local.flush(&shared);
}

/// Whether the session can no longer send (after a failed run).
async fn session_closed(session: &mut Session) -> bool {
    matches!(
        session
            .send_json(&serde_json::json!({"type": "ping"}))
            .await,
        Err(ClientError::Closed { .. })
    )
}

async fn open_dispatcher(shared: Arc<Shared>, t0: Instant, rate: f64, max_in_flight: usize) {
    let end = t0 + shared.config.duration;
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let mut runs = tokio::task::JoinSet::new();
    let mut j: u64 = 0;
    loop {
        let scheduled = t0 + Duration::from_secs_f64(j as f64 / rate);
        if scheduled >= end || !reserve(&shared) {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        // Waiting for a free slot makes the run late; its latency still counts from `scheduled`.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        let index = j;
        runs.spawn(async move {
            let mut local = Local::new();
            let user = format!("load-{}-r{index}", shared.tag);
            match connect(&shared, &user, scheduled, &mut local).await {
                Ok((mut session, me)) => {
                    let mut finished_runs = Vec::new();
                    match one_run(
                        &shared,
                        &mut session,
                        &me,
                        scheduled,
                        &mut local,
                        &mut finished_runs,
                    )
                    .await
                    {
                        Ok(()) => {
                            shared.counters.completed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(kind) => shared.fail(kind),
                    }
                    finish(&shared, session, &me, &finished_runs, &mut local).await;
                }
                Err(kind) => shared.fail(kind),
            }
            local.flush(&shared);
            drop(permit);
        });
        j += 1;
        // Reap finished tasks as we go so the set does not grow with the whole run.
        while runs.try_join_next().is_some() {}
    }
    while runs.join_next().await.is_some() {}
}

/// A one-line rendering of the counters for a progress display.
pub fn progress_line(s: &Snapshot, elapsed: Duration) -> String {
    format!(
        "{:>6.1}s  scheduled {}  started {}  completed {}  failed {}  late {}  sockets {} (peak {})  in flight {} (peak {})  violations {}  leaks {}",
        elapsed.as_secs_f64(),
        s.scheduled,
        s.started,
        s.completed,
        s.failed,
        s.late,
        s.connected,
        s.peak_connected,
        s.in_flight,
        s.peak_in_flight,
        s.violations,
        s.leaks
    )
}

/// A human summary of a load report.
pub fn summary(report: &LoadReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &report.counts;
    let _ = writeln!(out, "agentwire load {} ({})", report.target, report.model);
    if let Some(reason) = &report.unreachable {
        let _ = writeln!(out, "target unreachable: {reason}");
    }
    let _ = writeln!(
        out,
        "runs: {} scheduled, {} started, {} completed, {} failed, {} late starts; sockets peak {}, runs in flight peak {}; {:.1} s",
        c.scheduled,
        c.started,
        c.completed,
        c.failed,
        c.late,
        c.peak_connected,
        c.peak_in_flight,
        report.elapsed_s
    );
    let _ = writeln!(
        out,
        "grammar violations: {}; isolation leaks: {}",
        c.violations, c.leaks
    );
    if !report.failures.is_empty() {
        let _ = writeln!(out, "failures:");
        for (kind, n) in &report.failures {
            let _ = writeln!(out, "  {n:>7}  {kind}");
        }
    }
    for (label, list) in [
        ("violations", &report.violation_examples),
        ("leaks", &report.leak_examples),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "{label} (first {}):", list.len());
            for line in list {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{:<15} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    for (name, t) in &report.latency_ms {
        let _ = writeln!(
            out,
            "{:<15} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            name,
            t.count,
            f(t.p50),
            f(t.p90),
            f(t.p99),
            f(t.p999),
            f(t.max),
            f(t.mean)
        );
    }
    if !report.thresholds.is_empty() {
        let _ = writeln!(out, "\nthresholds:");
        for t in &report.thresholds {
            let _ = writeln!(
                out,
                "  {:<40} {:<9} observed {}",
                format!("{} {}", t.metric, t.expression),
                match t.verdict {
                    ThresholdVerdict::Pass => "pass",
                    ThresholdVerdict::Breached => "breached",
                    ThresholdVerdict::NoData => "no data",
                },
                t.observed
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
            );
        }
    }
    let meaning = match report.exit_code {
        0 => "every run completed cleanly and no threshold was breached",
        1 => "runs failed, broke the grammar or leaked across users",
        2 => "the target could not be reached or the configuration is wrong",
        99 => "a threshold was breached",
        _ => "unknown",
    };
    let _ = writeln!(out, "\nexit code {}: {meaning}", report.exit_code);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_carry_no_ids() {
        let timeout = ClientError::Timeout {
            waited: Duration::from_secs(1),
            waiting_for: "the terminal event of run run_123".to_owned(),
        };
        assert_eq!(error_kind(&timeout), "timeout: terminal event");
        let refused = ClientError::Http {
            status: 503,
            body: r#"{"error_code":"UNAVAILABLE","message":"busy"}"#.to_owned(),
        };
        assert_eq!(error_kind(&refused), "HTTP 503 UNAVAILABLE");
    }

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
