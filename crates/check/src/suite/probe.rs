//! What the cases share: the context of one suite run, and [`Probe`], a [`Session`] that records.
//!
//! Every frame a case reads goes through a probe, which keeps it in the case's transcript (shown
//! when the case fails), scans it for other users' canaries and run ids, checks the section 3
//! rules on frames that are not run events, and, for runs, measures time to first event and to
//! completion and files the run for the grammar cases.
//!
//! What it must not do: hide a frame. A frame read is always in some transcript and always
//! scanned; a run that was followed is always judged.

use crate::client::{ClientError, ConnectOptions, Credentials, RunTranscript, Session};
use crate::grammar::{self, Violation};
use crate::http::{HttpError, HttpTarget};
use crate::isolation::{Leak, Registry};
use crate::metrics::{MetricSet, Tags, tags};
use crate::suite::{RunSummary, SuiteConfig, Verdict};
use crate::token::{Identity, Minter};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A user the suite acts as.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub identity: Identity,
    pub token: String,
}

/// A run the suite followed, kept for the grammar cases and the per-run report.
#[derive(Debug, Clone)]
pub struct JudgedRun {
    pub case: &'static str,
    pub agent: String,
    pub run_id: String,
    /// The run's events as received, plus anything of the run that arrived after its terminal
    /// event while the socket was watched.
    pub events: Vec<Value>,
    pub connect_ms: Option<f64>,
    pub ttfe_ms: Option<f64>,
    pub ttc_ms: Option<f64>,
    pub quality: Option<f64>,
}

/// State shared by every probe of one suite run (several probes run at once in the isolation
/// cases).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub registry: Registry,
    pub metrics: Mutex<MetricSet>,
    pub runs: Mutex<Vec<JudgedRun>>,
    /// Leaks with the case that saw them and the frame that carried them.
    pub leaks: Mutex<Vec<(&'static str, Leak, Value)>>,
    /// Section 3 problems of frames that are not run events (pong, errors, ...).
    pub frame_violations: Mutex<Vec<(&'static str, Violation, Value)>>,
    /// Client-side failures while following runs: (case, drop?).
    pub run_failures: Mutex<Vec<RunSummary>>,
}

impl Shared {
    pub fn with_metrics(&self, f: impl FnOnce(&mut MetricSet)) {
        if let Ok(mut metrics) = self.metrics.lock() {
            f(&mut metrics);
        }
    }

    pub fn runs(&self) -> Vec<JudgedRun> {
        self.runs.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn leaks(&self) -> Vec<(&'static str, Leak, Value)> {
        self.leaks.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The seed suite's per-run figures, for every run followed (failed ones included).
    pub fn run_summaries(&self) -> Vec<RunSummary> {
        let mut out: Vec<RunSummary> = self
            .runs()
            .into_iter()
            .map(|run| {
                let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                let mut errors = 0;
                for event in &run.events {
                    let kind = event
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("<no type>");
                    *counts.entry(kind.to_owned()).or_default() += 1;
                    if kind == "agent_error" {
                        errors += 1;
                    }
                }
                let outcome = run
                    .events
                    .iter()
                    .rev()
                    .filter_map(|e| e.get("type").and_then(Value::as_str))
                    .find(|k| grammar::is_terminal_type(k))
                    .unwrap_or("no terminal event")
                    .to_owned();
                RunSummary {
                    case: run.case.to_owned(),
                    agent: run.agent,
                    run_id: run.run_id,
                    outcome,
                    connect_ms: run.connect_ms,
                    ttfe_ms: run.ttfe_ms,
                    ttc_ms: run.ttc_ms,
                    events: run.events.len(),
                    counts_by_type: counts,
                    quality: run.quality,
                    errors,
                    drops: 0,
                }
            })
            .collect();
        if let Ok(failures) = self.run_failures.lock() {
            out.extend(failures.iter().cloned());
        }
        out
    }
}

/// The ground-truth tenant, set up once for both ground-truth cases.
#[derive(Debug, Clone)]
pub(crate) enum TruthSetup {
    Ready {
        user: User,
        truth: Box<crate::truth::GroundTruth>,
    },
    Skip(String),
    Fail(String),
}

/// The context of one suite run.
pub(crate) struct Ctx {
    pub config: SuiteConfig,
    pub ws_url: String,
    pub http: HttpTarget,
    pub shared: Arc<Shared>,
    pub main: User,
    pub minter: Option<Minter>,
    /// Random per suite run, so that users and tenants never collide across runs.
    pub run_tag: String,
    /// Set when the main user's credentials were refused: later cases say so instead of
    /// repeating the refusal.
    pub auth_failure: Option<String>,
    pub connection: Option<Value>,
    pub truth: Option<TruthSetup>,
}

impl Ctx {
    /// Another user with a minted token (None without `--secret`).
    pub fn other_user(&self, label: &str, org: Option<String>) -> Option<User> {
        let minter = self.minter.as_ref()?;
        let identity = Identity::new(format!("check-{}-{label}", self.run_tag), org);
        Some(User {
            token: minter.token(&identity),
            identity,
        })
    }

    /// The org the suite's users read (only with `--secret`).
    pub fn org(&self) -> Option<String> {
        match &self.config.auth {
            crate::suite::AuthMode::Secret { org, .. } => org.clone(),
            crate::suite::AuthMode::Token(_) => None,
        }
    }

    pub fn options(&self, credentials: Credentials) -> ConnectOptions {
        ConnectOptions {
            url: self.ws_url.clone(),
            credentials,
            offer_subprotocol: true,
            connect_timeout: self.config.connect_timeout,
        }
    }

    /// A probe for the main user with a Bearer token. A refusal of the credentials is remembered
    /// so that later cases report it rather than repeat it.
    pub async fn main_probe(&mut self, case: &'static str) -> Result<Probe, Outcome> {
        let user = self.main.clone();
        match Probe::connect(self, case, &user, Credentials::Bearer(user.token.clone())).await {
            Ok(probe) => {
                if self.connection.is_none() {
                    self.connection = probe.session.connection_info().cloned();
                }
                Ok(probe)
            }
            Err(err) => {
                if is_auth_refusal(&err) {
                    self.auth_failure = Some(err.to_string());
                }
                Err(Outcome::fail(
                    format!("could not connect as the suite's user: {err}"),
                    Vec::new(),
                ))
            }
        }
    }
}

fn is_auth_refusal(err: &ClientError) -> bool {
    match err {
        ClientError::Http { status, .. } => *status == 401 || *status == 403,
        ClientError::ServerError { error_code, .. } => {
            error_code == "AUTH_FAILED" || error_code == "AUTH_REQUIRED"
        }
        _ => false,
    }
}

/// Decides whether the target can be reached at all: TCP, then any HTTP answer (to `/health`) or
/// any WebSocket upgrade answer within the connect timeout.
///
/// # Errors
/// The reason, for the report and exit code 2.
pub(crate) async fn reachability(ctx: &Ctx) -> Result<(), String> {
    let limit = ctx.config.connect_timeout;
    match ctx.http.get("/health", &[], limit).await {
        Ok(_) => return Ok(()),
        Err(HttpError::Connect { authority, reason }) => {
            return Err(format!("cannot connect to {authority}: {reason}"));
        }
        Err(_) => {}
    }
    // No HTTP answer: a WebSocket-only deployment still counts as reachable if it upgrades.
    let opts = ctx.options(Credentials::None);
    match Session::connect(&opts).await {
        Ok(session) => {
            let _ = session.close().await;
            Ok(())
        }
        Err(ClientError::Http { .. } | ClientError::Handshake(_)) => Ok(()),
        Err(ClientError::Timeout { .. }) => Err(format!(
            "{} accepts TCP connections but answered neither GET /health nor the WebSocket upgrade within {limit:?}",
            ctx.http.authority
        )),
        Err(err) => Err(err.to_string()),
    }
}

/// A case's result before the runner adds the case's id and rule.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub transcript: Vec<Value>,
}

impl Outcome {
    pub fn pass(note: impl Into<Option<String>>) -> Self {
        Self {
            verdict: Verdict::Pass,
            reason: note.into(),
            transcript: Vec::new(),
        }
    }

    pub fn fail(reason: impl Into<String>, transcript: Vec<Value>) -> Self {
        Self {
            verdict: Verdict::Fail,
            reason: Some(reason.into()),
            transcript,
        }
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Error,
            reason: Some(reason.into()),
            transcript: Vec::new(),
        }
    }

    pub fn skip(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Skipped,
            reason: Some(reason.into()),
            transcript: Vec::new(),
        }
    }
}

/// What `start` returns.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub request_id: String,
    pub run_id: String,
    pub agent: String,
    pub canary: String,
    pub sent_at: Instant,
}

/// A session that records what it reads.
pub(crate) struct Probe {
    pub session: Session,
    pub user: String,
    pub case: &'static str,
    pub transcript: Vec<Value>,
    pub connect_ms: f64,
    /// Run ids this socket itself named in a request (`cancel`, `resume`): an error reply that
    /// echoes one back tells the sender nothing new, so it is not a leak.
    named_runs: Vec<String>,
    shared: Arc<Shared>,
    config: SuiteConfig,
}

impl Probe {
    /// Connects as `user`, measuring the connect latency.
    pub async fn connect(
        ctx: &Ctx,
        case: &'static str,
        user: &User,
        credentials: Credentials,
    ) -> Result<Probe, ClientError> {
        Self::connect_with(ctx, case, &user.identity.user, ctx.options(credentials)).await
    }

    pub async fn connect_with(
        ctx: &Ctx,
        case: &'static str,
        user: &str,
        options: ConnectOptions,
    ) -> Result<Probe, ClientError> {
        let begun = Instant::now();
        let session = Session::connect(&options).await?;
        let connect_ms = begun.elapsed().as_secs_f64() * 1e3;
        ctx.shared
            .with_metrics(|m| m.record("connect", connect_ms, &super::case_tags(case)));
        let mut probe = Probe {
            session,
            user: user.to_owned(),
            case,
            transcript: Vec::new(),
            connect_ms,
            named_runs: Vec::new(),
            shared: ctx.shared.clone(),
            config: ctx.config.clone(),
        };
        if let Some(info) = probe.session.connection_info().cloned() {
            probe.observe(&info);
        }
        Ok(probe)
    }

    /// Files a frame: transcript, leak scan, section 3 checks for frames outside runs.
    fn observe(&mut self, frame: &Value) {
        self.transcript.push(frame.clone());
        let echoed = |leak: &Leak| {
            leak.kind == crate::isolation::LeakKind::RunId
                && frame.get("type").and_then(Value::as_str) == Some("error")
                && self.named_runs.contains(&leak.value)
        };
        let leaks: Vec<Leak> = self
            .shared
            .registry
            .scan(frame, &self.user)
            .into_iter()
            .filter(|leak| !echoed(leak))
            .collect();
        self.shared.with_metrics(|m| {
            m.observe("isolation_leaks", &Tags::new());
            m.add("isolation_leaks", leaks.len() as f64, &Tags::new());
        });
        if !leaks.is_empty()
            && let Ok(mut all) = self.shared.leaks.lock()
        {
            all.extend(leaks.into_iter().map(|l| (self.case, l, frame.clone())));
        }
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or("");
        if kind == "error" {
            self.shared
                .with_metrics(|m| m.add("errors", 1.0, &super::case_tags(self.case)));
        }
        if !grammar::is_run_event_type(kind) {
            let problems = grammar::check_frame(frame);
            if !problems.is_empty()
                && let Ok(mut all) = self.shared.frame_violations.lock()
            {
                all.extend(problems.into_iter().map(|v| (self.case, v, frame.clone())));
            }
        }
    }

    /// The transcript plus whatever waits unread in the session's backlog.
    pub fn transcript_with_backlog(&mut self) -> Vec<Value> {
        for frame in self.session.take_backlog() {
            self.observe(&frame.value);
        }
        self.transcript.clone()
    }

    pub async fn send(&mut self, value: &Value) -> Result<(), ClientError> {
        if let Some(run_id) = value.get("run_id").and_then(Value::as_str) {
            self.named_runs.push(run_id.to_owned());
        }
        self.session.send_json(value).await
    }

    /// The first frame that matches; frames that do not stay in the session's backlog for later
    /// reads (and are filed when read).
    pub async fn until(
        &mut self,
        timeout: Duration,
        pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value, ClientError> {
        let frame = self.session.take_matching(timeout, pred).await?.value;
        self.observe(&frame);
        Ok(frame)
    }

    /// The reply to request `id` (a frame with `request_id == id`).
    pub async fn reply(&mut self, id: &str) -> Result<Value, ClientError> {
        let timeout = self.config.first_event_timeout;
        self.until(timeout, |f| request_id_of(f).as_deref() == Some(id))
            .await
    }

    /// Registers a fresh canary for this probe's user.
    pub fn canary(&self) -> String {
        self.shared.registry.canary(&self.user)
    }

    /// Sends `start_agent` with a canary in the question and waits for `run_accepted`.
    pub async fn start(
        &mut self,
        agent: &str,
        question: &str,
        params: Map<String, Value>,
    ) -> Result<Started, ClientError> {
        let request_id = format!("req-{}", crate::token::random_hex(10));
        let canary = self.canary();
        let question = format!("{question} [ref {canary}]");
        let sent_at = Instant::now();
        self.session
            .start_agent(&request_id, agent, &question, params)
            .await?;
        self.accepted(request_id, agent, canary, sent_at).await
    }

    /// Sends any message that starts a run (an alias form) and waits for `run_accepted`.
    pub async fn start_raw(
        &mut self,
        message: Value,
        agent: &str,
        canary: String,
    ) -> Result<Started, ClientError> {
        let request_id = message_id_of(&message).unwrap_or_default();
        let sent_at = Instant::now();
        self.session.send_json(&message).await?;
        self.accepted(request_id, agent, canary, sent_at).await
    }

    async fn accepted(
        &mut self,
        request_id: String,
        agent: &str,
        canary: String,
        sent_at: Instant,
    ) -> Result<Started, ClientError> {
        let accepted = match self
            .session
            .wait_run_accepted(&request_id, self.config.first_event_timeout)
            .await
        {
            Ok(accepted) => accepted,
            Err(err) => {
                if let ClientError::ServerError { frame, .. } = &err {
                    self.observe(frame);
                }
                return Err(err);
            }
        };
        self.observe(&accepted.frame);
        self.shared
            .registry
            .register_run(&accepted.run_id, &self.user);
        self.shared
            .with_metrics(|m| m.add("runs", 1.0, &super::case_tags(self.case)));
        Ok(Started {
            request_id,
            run_id: accepted.run_id,
            agent: agent.to_owned(),
            canary,
            sent_at,
        })
    }

    /// Follows a started run to its terminal event within the first-event and completion
    /// timeouts (measured from `start_agent`), then watches the socket for `linger` for anything
    /// more of that run. Files the run for the grammar cases and the metrics.
    pub async fn follow(&mut self, started: &Started) -> Result<RunTranscript, ClientError> {
        let tags = super::case_tags(self.case);
        let first_left = self
            .config
            .first_event_timeout
            .saturating_sub(started.sent_at.elapsed());
        let result = match self
            .session
            .wait_first_event(&started.run_id, first_left)
            .await
        {
            Ok(_) => {
                let left = self
                    .config
                    .completion_timeout
                    .saturating_sub(started.sent_at.elapsed());
                self.session.collect_run(&started.run_id, left).await
            }
            Err(err) => Err(err),
        };
        let run = match result {
            Ok(run) => run,
            Err(err) => {
                let dropped = matches!(err, ClientError::Closed { .. });
                let partial: Vec<Value> = self
                    .transcript_with_backlog()
                    .into_iter()
                    .filter(|f| f.get("run_id").and_then(Value::as_str) == Some(&started.run_id))
                    .collect();
                self.shared.with_metrics(|m| {
                    m.add("errors", 1.0, &tags);
                    m.observe("drops", &Tags::new());
                    if dropped {
                        m.add("drops", 1.0, &tags);
                    }
                    m.hit("run_success", false, &tags);
                });
                if let Ok(mut failures) = self.shared.run_failures.lock() {
                    failures.push(RunSummary {
                        case: self.case.to_owned(),
                        agent: started.agent.clone(),
                        run_id: started.run_id.clone(),
                        outcome: format!("client error: {err}"),
                        connect_ms: Some(self.connect_ms),
                        ttfe_ms: None,
                        ttc_ms: None,
                        events: partial.len(),
                        counts_by_type: BTreeMap::new(),
                        quality: None,
                        errors: 1,
                        drops: u32::from(dropped),
                    });
                }
                return Err(err);
            }
        };
        for event in &run.events {
            self.observe(event);
        }
        // Anything more of this run after its terminal event breaks rule 5.2: it is filed with the
        // run for the grammar cases, while the case itself sees the run as it ended.
        let linger = self.config.linger;
        let run_id = started.run_id.clone();
        let deadline = Instant::now() + linger;
        let mut late_events: Vec<Value> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self
                .session
                .take_matching(left, |f| {
                    f.get("run_id").and_then(Value::as_str) == Some(&run_id)
                })
                .await
            {
                Ok(late) => {
                    self.observe(&late.value);
                    late_events.push(late.value);
                }
                Err(_) => break,
            }
        }
        let ttfe = run
            .first_event_at
            .map(|at| at.duration_since(started.sent_at).as_secs_f64() * 1e3);
        let ttc = run
            .completed_at
            .map(|at| at.duration_since(started.sent_at).as_secs_f64() * 1e3);
        let completed = run.terminal_type() == Some("agent_completed");
        let mut judged_events = run.events.clone();
        judged_events.extend(late_events);
        let violations = grammar::check_run(&judged_events);
        let agent_errors = run
            .events
            .iter()
            .filter(|e| e.get("type").and_then(Value::as_str) == Some("agent_error"))
            .count();
        self.shared.with_metrics(|m| {
            if let Some(ttfe) = ttfe {
                m.record("ttfe", ttfe, &tags);
            }
            if let Some(ttc) = ttc {
                m.record("ttc", ttc, &tags);
            }
            m.record("events", run.events.len() as f64, &tags);
            for pair in run.received_at.windows(2) {
                m.record(
                    "event_gap",
                    pair[1].duration_since(pair[0]).as_secs_f64() * 1e3,
                    &tags,
                );
            }
            m.observe("drops", &Tags::new());
            m.observe("errors", &Tags::new());
            m.add("errors", agent_errors as f64, &tags);
            m.hit("run_success", completed && violations.is_empty(), &tags);
        });
        if let Ok(mut runs) = self.shared.runs.lock() {
            runs.push(JudgedRun {
                case: self.case,
                agent: started.agent.clone(),
                run_id: started.run_id.clone(),
                events: judged_events,
                connect_ms: Some(self.connect_ms),
                ttfe_ms: ttfe,
                ttc_ms: ttc,
                quality: None,
            });
        }
        Ok(run)
    }

    /// Starts and follows one run.
    pub async fn ask(
        &mut self,
        agent: &str,
        question: &str,
        params: Map<String, Value>,
    ) -> Result<(Started, RunTranscript), ClientError> {
        let started = self.start(agent, question, params).await?;
        let run = self.follow(&started).await?;
        Ok((started, run))
    }

    /// Reads whatever arrives within `window` (and the backlog); files every frame.
    pub async fn drain(&mut self, window: Duration) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for frame in self.session.take_backlog() {
            self.observe(&frame.value);
            out.push(frame.value);
        }
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.session.next_frame(left).await {
                Ok(frame) => {
                    self.observe(&frame.value);
                    out.push(frame.value);
                }
                Err(_) => break,
            }
        }
        out
    }

    /// Records the quality of the last filed run of `run_id`.
    pub fn file_quality(&self, run_id: &str, score: f64, scenario: &str) {
        if let Ok(mut runs) = self.shared.runs.lock()
            && let Some(run) = runs.iter_mut().rev().find(|r| r.run_id == run_id)
        {
            run.quality = Some(score);
        }
        self.shared
            .with_metrics(|m| m.record("quality", score, &tags(&[("scenario", scenario)])));
    }

    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

/// A reply's `request_id` as text (numbers are accepted as their decimal form).
pub(crate) fn request_id_of(frame: &Value) -> Option<String> {
    id_text(frame.get("request_id"))
}

/// A client message's `id` as text.
pub(crate) fn message_id_of(message: &Value) -> Option<String> {
    id_text(message.get("id"))
}

fn id_text(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// A `start_agent` payload with extra parameters.
pub(crate) fn params(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Shortens long strings in a frame for display (answers and data can be kilobytes).
pub(crate) fn abbreviate(frame: &Value) -> Value {
    match frame {
        Value::String(s) if s.chars().count() > 200 => {
            let cut: String = s.chars().take(197).collect();
            Value::String(format!("{cut}..."))
        }
        Value::Array(items) if items.len() > 8 => {
            let mut out: Vec<Value> = items.iter().take(8).map(abbreviate).collect();
            out.push(json!(format!("... {} more", items.len() - 8)));
            Value::Array(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(abbreviate).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), abbreviate(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
