//! What the cases of one suite run share: the target, the users the suite acts as, and what every
//! probe records (runs, leaks, frame problems, metrics) for the grammar cases and the report.
//!
//! What it must not do: judge. The context holds evidence; cases and the runner judge it. Nothing
//! recorded here is ever dropped: a run that was followed is filed, a leak that was seen is kept.

use super::config::{AuthMode, SuiteConfig};
use crate::agui::SseEvent;
use crate::client::{ClientError, ConnectOptions, Credentials, Session};
use crate::grammar::{self, Violation};
use crate::http::HttpError;
use crate::isolation::{Leak, Registry};
use crate::metrics::{MetricSet, Tags};
use crate::target::Target;
use crate::token::{Identity, Minter};
use crate::truth::GroundTruth;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One run's figures (the seed suite's metrics).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub case: String,
    pub agent: String,
    pub run_id: String,
    /// The terminal event's type, or why there is none.
    pub outcome: String,
    pub connect_ms: Option<f64>,
    pub ttfe_ms: Option<f64>,
    pub ttc_ms: Option<f64>,
    pub events: usize,
    pub counts_by_type: BTreeMap<String, usize>,
    pub quality: Option<f64>,
    pub errors: u32,
    pub drops: u32,
}

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

impl JudgedRun {
    /// A run assembled from several sockets or read back over HTTP: no latencies of its own.
    pub fn assembled(case: &'static str, agent: &str, run_id: &str, events: Vec<Value>) -> Self {
        Self {
            case,
            agent: agent.to_owned(),
            run_id: run_id.to_owned(),
            events,
            connect_ms: None,
            ttfe_ms: None,
            ttc_ms: None,
            quality: None,
        }
    }
}

/// State shared by every probe of one suite run (several probes run at once in the isolation
/// cases).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub registry: Registry,
    pub metrics: Mutex<MetricSet>,
    runs: Mutex<Vec<JudgedRun>>,
    /// Leaks with the case that saw them and the frame that carried them.
    leaks: Mutex<Vec<(&'static str, Leak, Value)>>,
    /// Section 3 problems of frames that are not run events (pong, errors, ...).
    frame_violations: Mutex<Vec<(&'static str, Violation, Value)>>,
    /// Runs the client could not follow to their end, as reported.
    run_failures: Mutex<Vec<RunSummary>>,
}

impl Shared {
    pub fn with_metrics(&self, f: impl FnOnce(&mut MetricSet)) {
        if let Ok(mut metrics) = self.metrics.lock() {
            f(&mut metrics);
        }
    }

    /// Files a run for the grammar cases and the report.
    pub fn file_run(&self, run: JudgedRun) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.push(run);
        }
    }

    /// Files a run the client could not follow to its end.
    pub fn file_failure(&self, summary: RunSummary) {
        if let Ok(mut failures) = self.run_failures.lock() {
            failures.push(summary);
        }
    }

    /// Records the quality of the last filed run of `run_id`.
    pub fn file_quality(&self, run_id: &str, score: f64) {
        if let Ok(mut runs) = self.runs.lock()
            && let Some(run) = runs.iter_mut().rev().find(|r| r.run_id == run_id)
        {
            run.quality = Some(score);
        }
    }

    pub fn file_leaks(&self, case: &'static str, leaks: Vec<Leak>, frame: &Value) {
        if !leaks.is_empty()
            && let Ok(mut all) = self.leaks.lock()
        {
            all.extend(leaks.into_iter().map(|l| (case, l, frame.clone())));
        }
    }

    pub fn file_frame_violations(
        &self,
        case: &'static str,
        problems: Vec<Violation>,
        frame: &Value,
    ) {
        if !problems.is_empty()
            && let Ok(mut all) = self.frame_violations.lock()
        {
            all.extend(problems.into_iter().map(|v| (case, v, frame.clone())));
        }
    }

    pub fn runs(&self) -> Vec<JudgedRun> {
        self.runs.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn leaks(&self) -> Vec<(&'static str, Leak, Value)> {
        self.leaks.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The leaks seen by the probes of one case.
    pub fn leaks_of(&self, case: &str) -> Vec<(Leak, Value)> {
        self.leaks()
            .into_iter()
            .filter(|(seen_by, _, _)| *seen_by == case)
            .map(|(_, leak, frame)| (leak, frame))
            .collect()
    }

    pub fn frame_violations(&self) -> Vec<(&'static str, Violation, Value)> {
        self.frame_violations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// The seed suite's per-run figures, for every run followed (failed ones included).
    pub fn run_summaries(&self) -> Vec<RunSummary> {
        let mut out: Vec<RunSummary> = self.runs().into_iter().map(summarize).collect();
        if let Ok(failures) = self.run_failures.lock() {
            out.extend(failures.iter().cloned());
        }
        out
    }
}

fn summarize(run: JudgedRun) -> RunSummary {
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
}

/// The context of one suite run.
pub(crate) struct Ctx {
    pub config: SuiteConfig,
    pub target: Target,
    /// The other nodes of the deployment (`--target` given more than once).
    pub other_nodes: Vec<Target>,
    pub shared: Arc<Shared>,
    pub main: User,
    pub minter: Option<Minter>,
    /// Random per suite run, so that users and tenants never collide across runs.
    pub run_tag: String,
    /// The id of the case being carried out: what its probes file their evidence under.
    pub case: &'static str,
    /// Set when the main user's credentials were refused: later cases say so instead of
    /// repeating the refusal.
    pub auth_failure: Option<String>,
    /// The first `connection_established`, for the connectivity report.
    pub connection: Option<Value>,
    /// The ground-truth tenant, set up by the first ground-truth case.
    pub truth: Option<TruthSetup>,
    /// The AG-UI run, asked by the first AG-UI case that needs one.
    pub agui: Option<AguiRun>,
}

/// The ground-truth tenant, set up once (by the first ground-truth case) for every one.
#[derive(Debug, Clone)]
pub(crate) enum TruthSetup {
    Ready { user: User, truth: Box<GroundTruth> },
    Skip(String),
    Fail(String),
}

/// A run the suite read over AG-UI, asked once and judged by every AG-UI case.
#[derive(Debug, Clone)]
pub(crate) struct AguiRun {
    pub thread_id: String,
    /// `RUN_STARTED.runId`: the id to resume and cancel with.
    pub run_id: String,
    pub events: Vec<SseEvent>,
    pub ttfe_ms: f64,
    pub ttc_ms: f64,
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
            AuthMode::Secret { org, .. } => org.clone(),
            AuthMode::Token(_) => None,
        }
    }

    pub fn options(&self, credentials: Credentials) -> ConnectOptions {
        self.options_on(&self.target, credentials)
    }

    /// Options to connect to `node` (the target or one of the other nodes).
    pub fn options_on(&self, node: &Target, credentials: Credentials) -> ConnectOptions {
        ConnectOptions {
            url: node.ws_url.clone(),
            credentials,
            offer_subprotocol: true,
            connect_timeout: self.config.connect_timeout,
            tls: self.target.tls.clone(),
        }
    }
}

/// Decides whether the target (and every other node given) can be reached at all: TCP, then any
/// HTTP answer (to `/health`) or any WebSocket upgrade answer within the connect timeout.
///
/// # Errors
/// The reason, for the report and exit code 2.
pub(crate) async fn reachability(ctx: &Ctx) -> Result<(), String> {
    for node in std::iter::once(&ctx.target).chain(&ctx.other_nodes) {
        reach(ctx, node).await?;
    }
    Ok(())
}

async fn reach(ctx: &Ctx, node: &Target) -> Result<(), String> {
    let limit = ctx.config.connect_timeout;
    match node.http.get("/health", &[], limit).await {
        Ok(_) => return Ok(()),
        Err(HttpError::Connect { authority, reason }) => {
            return Err(format!("cannot connect to {authority}: {reason}"));
        }
        // A certificate the suite does not trust is no reason to try the socket: it would be
        // refused the same way.
        Err(err @ HttpError::Tls { .. }) => return Err(err.to_string()),
        Err(_) => {}
    }
    // No HTTP answer: a WebSocket-only deployment still counts as reachable if it upgrades.
    let opts = ctx.options_on(node, Credentials::None);
    match Session::connect(&opts).await {
        Ok(session) => {
            let _ = session.close().await;
            Ok(())
        }
        Err(ClientError::Http { .. } | ClientError::Handshake(_)) => Ok(()),
        Err(ClientError::Timeout { .. }) => Err(format!(
            "{} accepts TCP connections but answered neither GET /health nor the WebSocket upgrade within {limit:?}",
            node.http.authority
        )),
        Err(err) => Err(err.to_string()),
    }
}

/// Tags for a metric value recorded by a case.
pub(crate) fn case_tags(case: &str) -> Tags {
    crate::metrics::tags(&[("case", case)])
}
