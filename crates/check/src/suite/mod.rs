//! `agentwire check`: the validation suite, run against any deployment of the wire contract.
//!
//! The suite is a catalogue of cases ([`CaseId`]), each numbered by the PROTOCOL.md section it
//! judges (`5.4 tool pairs are matched`), each a MUST or a SHOULD. [`run`] connects to the target,
//! runs the selected cases in order, judges every run it collected against the grammar, evaluates
//! the thresholds over what it measured, and returns a [`SuiteReport`] with an exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every MUST case passed (and, with `--strict`, every SHOULD) and no threshold was breached |
//! | 1 | a case failed or could not be carried out (`fail` or `error`) |
//! | 2 | the target could not be reached, or the configuration is wrong |
//! | 99 | every case passed but a threshold was breached |
//!
//! When several apply the lowest-numbered non-zero reason wins in the order 2, 1, 99.
//!
//! What it must not do: pass without evidence. There is no mock and no fallback; an unreachable
//! target or refused credentials fail with their reason; a case is `skipped` only when the user
//! deselected it or it needs something the configuration does not give (a `--secret` to mint
//! other users, an endpoint the deployment does not offer), and it then says which.

mod cases;
mod probe;

use crate::http::HttpTarget;
use crate::metrics::{MetricSet, Tags};
use crate::quality::Scenario;
use crate::threshold::{ThresholdResult, ThresholdVerdict, Thresholds};
use crate::token::{Identity, Minter, TokenError};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use probe::JudgedRun;

/// How the suite authenticates.
#[derive(Clone)]
pub enum AuthMode {
    /// Use this token for the main user. Cases that need other users are skipped, saying so.
    Token(String),
    /// Mint HS256 tokens with this secret: distinct users, and fresh tenants for ground truth.
    Secret {
        secret: String,
        issuer: Option<String>,
        audience: Option<String>,
        /// `org_id` for the suite's users (the tenant whose data they read); none: their own.
        org: Option<String>,
    },
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Secret {
                issuer,
                audience,
                org,
                ..
            } => f
                .debug_struct("Secret")
                .field("secret", &"<redacted>")
                .field("issuer", issuer)
                .field("audience", audience)
                .field("org", org)
                .finish(),
        }
    }
}

/// Everything `check` needs to run.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// `http://host:port`, `ws://host:port/ws` or `host:port`.
    pub target: String,
    pub auth: AuthMode,
    /// Connect (TCP, upgrade, `connection_established`) and every HTTP request.
    pub connect_timeout: Duration,
    /// From `start_agent` to the run's first event.
    pub first_event_timeout: Duration,
    /// From `start_agent` to the run's terminal event.
    pub completion_timeout: Duration,
    /// How long a socket is watched after a run's terminal event for anything more of that run.
    pub linger: Duration,
    /// Distinct users (and sockets of one user) in the isolation cases.
    pub users: usize,
    /// Runs in the performance case.
    pub performance_runs: usize,
    /// Minimum quality score per scenario (default 0.7).
    pub min_quality: BTreeMap<String, f64>,
    /// Fail SHOULD cases too.
    pub strict: bool,
    /// Run only cases matching one of these patterns (empty: all).
    pub only: Vec<String>,
    /// Skip cases matching one of these patterns.
    pub skip: Vec<String>,
    pub thresholds: Thresholds,
}

/// The seed suite's numbers.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_FIRST_EVENT_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_COMPLETION_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_USERS: usize = 5;
pub const DEFAULT_PERFORMANCE_RUNS: usize = 5;
pub const DEFAULT_MIN_QUALITY: f64 = 0.7;

impl SuiteConfig {
    /// The seed suite's defaults for `target` and `auth`, with the default thresholds.
    pub fn new(target: impl Into<String>, auth: AuthMode) -> Self {
        Self {
            target: target.into(),
            auth,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            first_event_timeout: DEFAULT_FIRST_EVENT_TIMEOUT,
            completion_timeout: DEFAULT_COMPLETION_TIMEOUT,
            linger: Duration::from_millis(250),
            users: DEFAULT_USERS,
            performance_runs: DEFAULT_PERFORMANCE_RUNS,
            min_quality: BTreeMap::new(),
            strict: false,
            only: Vec::new(),
            skip: Vec::new(),
            thresholds: Thresholds::from_pairs(crate::threshold::CHECK_DEFAULTS)
                .unwrap_or_default(),
        }
    }

    fn min_quality(&self, scenario: Scenario) -> f64 {
        self.min_quality
            .get(scenario.name())
            .copied()
            .unwrap_or(DEFAULT_MIN_QUALITY)
    }
}

/// Why the suite could not start: a configuration problem (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid target: {0}")]
    Target(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{0}")]
    Invalid(String),
}

/// MUST or SHOULD, as the contract words the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Must => "MUST",
            Self::Should => "SHOULD",
        }
    }
}

/// A case's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// The deployment broke the rule.
    Fail,
    /// The case could not be carried out (the target was unreachable, the credentials were
    /// refused, a step before the judged one failed). Counts as a failure.
    Error,
    /// Not run, with the reason (deselected, or needs what the configuration does not give).
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }
}

/// Which part of the catalogue a case belongs to (for reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Connectivity,
    Authentication,
    Runs,
    Grammar,
    Recovery,
    Isolation,
    Execution,
    Quality,
    GroundTruth,
}

impl Group {
    pub fn title(self) -> &'static str {
        match self {
            Self::Connectivity => "Connectivity",
            Self::Authentication => "Authentication",
            Self::Runs => "Runs",
            Self::Grammar => "Event grammar",
            Self::Recovery => "Error recovery",
            Self::Isolation => "Isolation",
            Self::Execution => "Agent execution",
            Self::Quality => "Answer quality",
            Self::GroundTruth => "Ground truth",
        }
    }
}

/// What a case needs beyond a reachable target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Nothing: it judges the HTTP surface or presents its own (bad) credentials.
    Nothing,
    /// The main user's credentials.
    MainUser,
    /// `--secret`, to mint tokens for other users or fresh tenants.
    Secret,
}

/// Every case of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseId {
    Health,
    LiveReady,
    Connect,
    Ping,
    Subprotocol,
    BinaryRefused,
    AuthSubprotocol,
    AuthFirstFrame,
    AuthRequired,
    AuthForged,
    AuthExpired,
    AuthAlgNone,
    RequestIds,
    RunAccepted,
    Aliases,
    UnknownAgent,
    SeveralRuns,
    RunConflict,
    Cancel,
    OneUserManySockets,
    Handoffs,
    Resume,
    DataAgent,
    OptimizationAgent,
    Performance,
    QualityCost,
    QualityAnomaly,
    QualityCapacity,
    TruthSpike,
    TruthSaving,
    Malformed,
    UnknownType,
    ResumeOther,
    UsersIsolated,
    RunEventsOwnerOnly,
    /// One of the grammar rules of [`crate::grammar::rules::ALL`], judged over every run the
    /// suite collected.
    Grammar(&'static str),
}

/// A case's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaseInfo {
    /// Numbered by PROTOCOL.md section, e.g. `5.4`.
    pub id: &'static str,
    pub title: &'static str,
    pub level: Level,
    pub group: Group,
    /// The rule as the contract states it: what a failure is measured against.
    pub rule: &'static str,
    /// Whether the case needs `--secret`.
    pub needs_secret: bool,
}

impl CaseId {
    /// Every case, in the order they run (grammar rules last: they judge what the others
    /// collected).
    pub fn all() -> Vec<CaseId> {
        use CaseId::*;
        let mut out = vec![
            Health,
            LiveReady,
            Connect,
            Ping,
            Subprotocol,
            BinaryRefused,
            AuthSubprotocol,
            AuthFirstFrame,
            AuthRequired,
            AuthForged,
            AuthExpired,
            AuthAlgNone,
            RequestIds,
            RunAccepted,
            Aliases,
            UnknownAgent,
            SeveralRuns,
            RunConflict,
            Cancel,
            OneUserManySockets,
            Malformed,
            UnknownType,
            Resume,
            ResumeOther,
            UsersIsolated,
            RunEventsOwnerOnly,
            DataAgent,
            OptimizationAgent,
            Handoffs,
            Performance,
            QualityCost,
            QualityAnomaly,
            QualityCapacity,
            TruthSpike,
            TruthSaving,
        ];
        out.extend(crate::grammar::rules::ALL.iter().map(|rule| Grammar(rule)));
        out
    }

    fn needs(self) -> Needs {
        use CaseId::*;
        match self {
            Health | LiveReady | AuthForged | AuthAlgNone | Grammar(_) => Needs::Nothing,
            AuthExpired | ResumeOther | UsersIsolated | RunEventsOwnerOnly | TruthSpike
            | TruthSaving => Needs::Secret,
            _ => Needs::MainUser,
        }
    }

    /// The case's id, title, level, group and rule.
    pub fn info(self) -> CaseInfo {
        use CaseId::*;
        use Group as G;
        use Level::{Must, Should};
        let (id, title, level, group, rule) = match self {
            Health => (
                "7.1",
                "GET /health answers healthy",
                Must,
                G::Connectivity,
                "GET /health (and /api/health) answers 200 {\"status\":\"healthy\",...,\"checks\":{...}}",
            ),
            LiveReady => (
                "7.2",
                "liveness and readiness answer 200",
                Must,
                G::Connectivity,
                "GET /health/live and GET /health/ready answer 200 while the deployment serves",
            ),
            Connect => (
                "1.1",
                "WebSocket at /ws connects with a Bearer token",
                Must,
                G::Connectivity,
                "GET /ws upgrades; with valid credentials the server sends connection_established with connection_id, user_id (the token's sub), protocol agentwire.v1, the agents and limits",
            ),
            Ping => (
                "1.2",
                "JSON ping gets pong",
                Must,
                G::Connectivity,
                "{\"type\":\"ping\"} is answered with {\"type\":\"pong\"}",
            ),
            Subprotocol => (
                "1.3",
                "agentwire.v1 is selected, jwt.* never echoed",
                Must,
                G::Connectivity,
                "if the client offers agentwire.v1 the server selects it; it never echoes a jwt.* item and selects nothing when agentwire.v1 was not offered",
            ),
            BinaryRefused => (
                "1.4",
                "binary frames are refused, the socket keeps serving",
                Must,
                G::Connectivity,
                "binary frames are refused with error INVALID_MESSAGE; a bad message never closes the connection",
            ),
            AuthSubprotocol => (
                "2.1",
                "a jwt.<token> subprotocol item authenticates",
                Must,
                G::Authentication,
                "a subprotocol item jwt.<base64url(JWT), unpadded> authenticates the connection",
            ),
            AuthFirstFrame => (
                "2.2",
                "a first-frame authenticate authenticates",
                Must,
                G::Authentication,
                "a first frame {\"type\":\"authenticate\",\"token\":...} authenticates a connection opened without credentials",
            ),
            AuthRequired => (
                "2.3",
                "without credentials only ping and authenticate are served",
                Must,
                G::Authentication,
                "no credentials at the upgrade: the upgrade succeeds; until authenticate succeeds only ping and authenticate are served, anything else gets error AUTH_REQUIRED",
            ),
            AuthForged => (
                "2.4",
                "a forged token is refused with HTTP 401",
                Must,
                G::Authentication,
                "credentials presented at the upgrade and invalid (bad signature): HTTP 401 with {\"error_code\":\"AUTH_FAILED\",\"message\":...}",
            ),
            AuthExpired => (
                "2.5",
                "an expired token is refused with HTTP 401",
                Must,
                G::Authentication,
                "credentials presented at the upgrade and expired: HTTP 401 with {\"error_code\":\"AUTH_FAILED\",...}",
            ),
            AuthAlgNone => (
                "2.6",
                "an alg:none token is refused with HTTP 401",
                Must,
                G::Authentication,
                "credentials with alg: none: HTTP 401 with {\"error_code\":\"AUTH_FAILED\",...}",
            ),
            RequestIds => (
                "3.4",
                "replies carry the request's id as request_id",
                Must,
                G::Grammar,
                "a reply to a client message carries that message's id as request_id",
            ),
            RunAccepted => (
                "4.1",
                "start_agent gets run_accepted before the run's first event",
                Must,
                G::Runs,
                "on acceptance the server replies run_accepted with request_id, run_id and thread_id before the run's first event",
            ),
            Aliases => (
                "4.2",
                "agent aliases and message aliases start runs",
                Must,
                G::Runs,
                "agent_type accepts canonical names and aliases (unified_data_agent, optimization_agent); agent_execute and user_message start runs like start_agent",
            ),
            UnknownAgent => (
                "4.3",
                "an unknown agent is AGENT_NOT_FOUND and starts no run",
                Must,
                G::Runs,
                "unknown agent_type: error AGENT_NOT_FOUND, and no run is created",
            ),
            SeveralRuns => (
                "4.4",
                "several runs at once on one connection",
                Must,
                G::Runs,
                "one connection may run several runs at once (different threads)",
            ),
            RunConflict => (
                "4.5",
                "a second run on a busy thread is RUN_CONFLICT",
                Should,
                G::Runs,
                "a second start_agent on a thread whose run is still going gets error RUN_CONFLICT (default policy; enqueue is configurable)",
            ),
            Cancel => (
                "4.6",
                "cancel ends the run with agent_cancelled",
                Must,
                G::Runs,
                "cancel stops the run and all its tools and sub-agents; terminal agent_cancelled, nothing after it",
            ),
            OneUserManySockets => (
                "4.7",
                "one user on several sockets at once",
                Must,
                G::Isolation,
                "a user may hold several connections at once; each gets its own runs complete, and no other user's data",
            ),
            Handoffs => (
                "5.9",
                "a supervisor run hands off to other agents",
                Should,
                G::Execution,
                "a run is executed by its entry agent, which may hand off to others: agent_handoff events and events from at least two distinct agents",
            ),
            Resume => (
                "5.10",
                "resume after a disconnect: no gap, no duplicate",
                Must,
                G::Recovery,
                "resume replays the run's events with seq > after_seq, then follows it live: across a reconnect the client loses nothing and sees nothing twice",
            ),
            DataAgent => (
                "5.11",
                "the data agent completes a run",
                Must,
                G::Execution,
                "a run of the data agent (unified_data_agent) ends with agent_completed carrying a response",
            ),
            OptimizationAgent => (
                "5.12",
                "the optimization agent completes a run",
                Must,
                G::Execution,
                "a run of the optimization agent ends with agent_completed carrying a response",
            ),
            Performance => (
                "5.13",
                "performance: runs in sequence all complete",
                Must,
                G::Execution,
                "runs one after another on one connection all complete; their latencies are judged by the thresholds",
            ),
            QualityCost => (
                "5.14",
                "quality: cost optimization",
                Must,
                G::Quality,
                "the answer names concrete recommendations with monthly savings and implementation steps, grounded in what its tools found",
            ),
            QualityAnomaly => (
                "5.15",
                "quality: anomaly detection",
                Must,
                G::Quality,
                "the answer names the anomalous day with figures, grounded in what its tools found",
            ),
            QualityCapacity => (
                "5.16",
                "quality: capacity planning",
                Must,
                G::Quality,
                "the answer gives volumes with a time base and a forward-looking figure, grounded in what its tools found",
            ),
            TruthSpike => (
                "5.17",
                "ground truth: the planted spike's day is named",
                Must,
                G::GroundTruth,
                "on an uploaded data set with a planted daily spike, the answer names that day as anomalous",
            ),
            TruthSaving => (
                "5.18",
                "ground truth: the routing saving is within 10%",
                Must,
                G::GroundTruth,
                "on an uploaded data set with a known routing opportunity, the answer states a monthly saving within 10% of the truth at list prices",
            ),
            Malformed => (
                "6.1",
                "malformed JSON, then a good request on the same socket",
                Must,
                G::Recovery,
                "a frame that is not JSON gets error INVALID_MESSAGE; a bad message never closes the connection, and the next good request is served",
            ),
            UnknownType => (
                "6.2",
                "an unknown message type is UNKNOWN_MESSAGE_TYPE",
                Must,
                G::Recovery,
                "a message whose type is not in section 4 gets error UNKNOWN_MESSAGE_TYPE; the connection stays open",
            ),
            ResumeOther => (
                "6.3",
                "resume or cancel of another user's run is RUN_NOT_FOUND",
                Must,
                G::Isolation,
                "cancel/resume of a run that belongs to another user: error RUN_NOT_FOUND, and none of its events",
            ),
            UsersIsolated => (
                "6.4",
                "concurrent users are isolated",
                Must,
                G::Isolation,
                "nothing a client sends can affect another user's connections or runs: no socket ever sees another user's run_id or request",
            ),
            RunEventsOwnerOnly => (
                "7.3",
                "run events over HTTP are owner-only",
                Must,
                G::Isolation,
                "GET /api/runs/{run_id}/events answers the run's owner only; no token: 401; another user: 404",
            ),
            Grammar(rule) => {
                let (id, title) = rule.split_once(' ').unwrap_or((rule, rule));
                return CaseInfo {
                    id,
                    title,
                    level: Must,
                    group: G::Grammar,
                    rule: grammar_rule_text(rule),
                    needs_secret: false,
                };
            }
        };
        CaseInfo {
            id,
            title,
            level,
            group,
            rule,
            needs_secret: self.needs() == Needs::Secret,
        }
    }
}

/// The contract's words for each grammar rule.
fn grammar_rule_text(rule: &str) -> &'static str {
    use crate::grammar::rules as r;
    match rule {
        r::TYPE_AND_TIMESTAMP => {
            "every server frame has a top-level string type and an RFC 3339 UTC timestamp"
        }
        r::TIMESTAMP_MILLIS => {
            "timestamps have millisecond precision, e.g. 2026-11-26T18:04:05.123Z"
        }
        r::RUN_EVENT_FIELDS => "run events also carry run_id, thread_id, seq and agent",
        r::ONE_STARTED_FIRST => "exactly one agent_started, and it is the run's first event",
        r::ONE_TERMINAL_LAST => {
            "exactly one terminal event (agent_completed, agent_error or agent_cancelled), last; nothing after it"
        }
        r::SEQ_CONTIGUOUS => "seq starts at 1 and is contiguous within the run",
        r::TOOL_PAIRS => {
            "every tool_executing is followed by its tool_completed (same tool_call_id) before the terminal event"
        }
        r::CRITICAL_EVENTS => {
            "a completed run contains at least one agent_thinking, one tool pair and the agent_completed"
        }
        r::EVENT_FIELDS => "each event type carries the fields of the section 5 table",
        r::ONE_RUN => "a run's events share one run_id (and one thread_id)",
        r::RUN_EVENT_TYPES => "a run consists of the event types of the section 5 grammar",
        _ => "see PROTOCOL.md sections 3 and 5",
    }
}

/// Whether a case matches a `--only`/`--skip` pattern: `*`/`?` globs over the id or the title;
/// a plain pattern matches an id with that prefix at a dot boundary (`5` matches `5.4`, `5.1`
/// matches `5.1` but not `5.10`) or a title containing it (case-insensitive).
pub fn matches_pattern(info: &CaseInfo, pattern: &str) -> bool {
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return false;
    }
    let full = format!("{} {}", info.id, info.title).to_lowercase();
    let lower = pattern.to_lowercase();
    if lower.contains(['*', '?']) {
        return glob(&lower, info.id) || glob(&lower, &full);
    }
    info.id == pattern
        || info.id.starts_with(&format!("{pattern}."))
        || (!pattern.chars().next().is_some_and(|c| c.is_ascii_digit()) && full.contains(&lower))
}

fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// One case's outcome, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: &'static str,
    pub title: &'static str,
    pub level: Level,
    pub group: Group,
    pub verdict: Verdict,
    /// The rule the case holds the deployment to.
    pub expected: &'static str,
    /// What was observed, when the case did not pass (and notes when it did).
    pub reason: Option<String>,
    /// Frames that show what happened (on failure), in order.
    pub transcript: Vec<Value>,
    pub duration_ms: f64,
}

impl CaseResult {
    /// Whether this result makes the suite fail (exit code 1).
    pub fn is_failure(&self, strict: bool) -> bool {
        matches!(self.verdict, Verdict::Fail | Verdict::Error)
            && (self.level == Level::Must || strict)
    }
}

/// What happened in one `check`.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub target: String,
    pub started_at: String,
    pub duration_ms: f64,
    /// Why the target was taken as unreachable (exit code 2), when it was.
    pub unreachable: Option<String>,
    /// The first `connection_established` frame, for the connectivity report.
    pub connection: Option<Value>,
    pub strict: bool,
    /// Cases in catalogue order (by section number).
    pub cases: Vec<CaseResult>,
    pub thresholds: Vec<ThresholdResult>,
    /// Every metric with a value: trends with count/mean/percentiles, counters, rates.
    pub metrics: BTreeMap<String, Value>,
    /// The seed suite's per-run figures.
    pub runs: Vec<RunSummary>,
    /// Every frame that carried another user's canary or run id, with the case that saw it.
    pub leaks: Vec<LeakRecord>,
    pub exit_code: u8,
}

/// One isolation leak as reported.
#[derive(Debug, Clone, Serialize)]
pub struct LeakRecord {
    pub case: String,
    pub leak: crate::isolation::Leak,
    pub description: String,
    pub frame: Value,
}

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

impl SuiteReport {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.cases.iter().filter(|c| c.verdict == verdict).count()
    }

    pub fn breached(&self) -> usize {
        self.thresholds
            .iter()
            .filter(|t| t.verdict == ThresholdVerdict::Breached)
            .count()
    }
}

/// Progress as the suite goes, for a live display.
#[derive(Debug)]
pub enum Progress<'a> {
    Started {
        total: usize,
    },
    CaseStarted {
        index: usize,
        total: usize,
        info: CaseInfo,
    },
    CaseFinished {
        index: usize,
        total: usize,
        result: &'a CaseResult,
    },
}

/// A case runs at most this long beyond its own timeouts; a hung case cannot hang the suite.
fn case_deadline(config: &SuiteConfig) -> Duration {
    config.completion_timeout * 3 + config.connect_timeout * 4 + Duration::from_secs(30)
}

/// Checks the configuration and turns it into the context the cases share.
fn prepare(config: &SuiteConfig) -> Result<probe::Ctx, ConfigError> {
    let ws_url = crate::client::websocket_url(&config.target)
        .map_err(|e| ConfigError::Target(e.to_string()))?;
    if ws_url.starts_with("wss://") {
        return Err(ConfigError::Target(
            "wss:// and https:// need TLS, which this build does not include; use ws:// or http://"
                .to_owned(),
        ));
    }
    let http = HttpTarget::parse(&config.target).map_err(|e| ConfigError::Target(e.to_string()))?;
    if config.users == 0 || config.users > 1000 {
        return Err(ConfigError::Invalid(
            "--users must be between 1 and 1000".to_owned(),
        ));
    }
    if config.performance_runs == 0 || config.performance_runs > 1000 {
        return Err(ConfigError::Invalid(
            "--performance-runs must be between 1 and 1000".to_owned(),
        ));
    }
    let run_tag = crate::token::random_hex(8);
    let (main, minter) = match &config.auth {
        AuthMode::Token(token) => {
            let claims = crate::token::claims_of(token)?;
            let user = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            (
                probe::User {
                    identity: Identity::new(user, None),
                    token: token.clone(),
                },
                None,
            )
        }
        AuthMode::Secret {
            secret,
            issuer,
            audience,
            org,
        } => {
            let minter = Minter::new(secret, issuer.clone(), audience.clone())?;
            let identity = Identity::new(format!("check-{run_tag}"), org.clone());
            (
                probe::User {
                    token: minter.token(&identity),
                    identity,
                },
                Some(minter),
            )
        }
    };
    Ok(probe::Ctx {
        config: config.clone(),
        ws_url,
        http,
        shared: Arc::new(probe::Shared::default()),
        main,
        minter,
        run_tag,
        auth_failure: None,
        connection: None,
        truth: None,
    })
}

/// Runs the suite. `progress` is called as cases start and finish.
///
/// # Errors
/// [`ConfigError`] when the configuration is unusable (exit code 2); everything the deployment
/// does wrong is in the report instead.
pub async fn run(
    config: SuiteConfig,
    progress: &(dyn Fn(Progress<'_>) + Send + Sync),
) -> Result<SuiteReport, ConfigError> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut ctx = prepare(&config)?;
    let unreachable = probe::reachability(&ctx).await.err();

    let selected = |info: &CaseInfo| {
        (config.only.is_empty() || config.only.iter().any(|p| matches_pattern(info, p)))
            && !config.skip.iter().any(|p| matches_pattern(info, p))
    };
    let all = CaseId::all();
    let total = all.len();
    progress(Progress::Started { total });
    let mut results: Vec<CaseResult> = Vec::with_capacity(total);
    for (index, case) in all.into_iter().enumerate() {
        let info = case.info();
        progress(Progress::CaseStarted { index, total, info });
        let begun = Instant::now();
        let outcome = if !selected(&info) {
            probe::Outcome::skip("not selected by --only/--skip")
        } else if let Some(reason) = &unreachable {
            probe::Outcome::error(format!(
                "not run: the target could not be reached: {reason}"
            ))
        } else if case.needs() == Needs::Secret && ctx.minter.is_none() {
            probe::Outcome::skip(match case {
                CaseId::AuthExpired => {
                    "needs --secret: an expired token must be signed with the deployment's key, which a --token does not give"
                }
                CaseId::TruthSpike | CaseId::TruthSaving => {
                    "needs --secret: ground truth uploads its data set into a fresh tenant, which only a minted token can name"
                }
                _ => "needs --secret: this case acts as several users, and a --token is one user",
            })
        } else if case.needs() == Needs::MainUser
            && let Some(reason) = &ctx.auth_failure
        {
            probe::Outcome::error(format!(
                "not run: the suite's own credentials were refused ({reason})"
            ))
        } else {
            match tokio::time::timeout(case_deadline(&config), cases::run(case, &mut ctx)).await {
                Ok(outcome) => outcome,
                Err(_) => probe::Outcome::error(format!(
                    "the case did not finish within {:?}",
                    case_deadline(&config)
                )),
            }
        };
        let duration_ms = begun.elapsed().as_secs_f64() * 1e3;
        if outcome.verdict != Verdict::Skipped
            && let Ok(mut metrics) = ctx.shared.metrics.lock()
        {
            metrics.record("duration", duration_ms, &case_tags(info.id));
        }
        let result = CaseResult {
            id: info.id,
            title: info.title,
            level: info.level,
            group: info.group,
            verdict: outcome.verdict,
            expected: info.rule,
            reason: outcome.reason,
            transcript: outcome.transcript,
            duration_ms,
        };
        progress(Progress::CaseFinished {
            index,
            total,
            result: &result,
        });
        results.push(result);
    }

    let metrics: MetricSet = ctx
        .shared
        .metrics
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    let thresholds = config.thresholds.evaluate(&metrics);
    let runs = ctx.shared.run_summaries();
    let leaks = ctx
        .shared
        .leaks()
        .into_iter()
        .map(|(case, leak, frame)| LeakRecord {
            case: case.to_owned(),
            description: leak.to_string(),
            leak,
            frame: probe::abbreviate(&frame),
        })
        .collect();
    results.sort_by_key(|r| section_order(r.id));
    let mut report = SuiteReport {
        target: config.target.clone(),
        started_at,
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
        unreachable,
        connection: ctx.connection.clone(),
        strict: config.strict,
        cases: results,
        thresholds,
        metrics: metrics.summary().into_iter().collect(),
        runs,
        leaks,
        exit_code: 0,
    };
    report.exit_code = exit_code(&report);
    Ok(report)
}

/// `5.10` after `5.9`: ids compared as numbers, section by section.
pub fn section_order(id: &str) -> Vec<u32> {
    id.split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect()
}

/// The exit code of a finished suite (see the module docs).
pub fn exit_code(report: &SuiteReport) -> u8 {
    if report.unreachable.is_some() {
        2
    } else if report.cases.iter().any(|c| c.is_failure(report.strict)) {
        1
    } else if report.breached() > 0 {
        99
    } else {
        0
    }
}

/// Tags for a metric value recorded by a case.
pub(crate) fn case_tags(case: &str) -> Tags {
    crate::metrics::tags(&[("case", case)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_numbered_by_section() {
        let infos: Vec<CaseInfo> = CaseId::all().into_iter().map(CaseId::info).collect();
        let mut ids: Vec<&str> = infos.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), infos.len(), "duplicate case ids");
        for info in &infos {
            let section: u32 = info.id.split('.').next().unwrap().parse().unwrap();
            assert!((1..=7).contains(&section), "{}", info.id);
            assert!(!info.rule.is_empty());
        }
    }

    #[test]
    fn patterns_select_by_section_id_or_title() {
        let tool_pairs = CaseId::Grammar(crate::grammar::rules::TOOL_PAIRS).info();
        assert_eq!(tool_pairs.id, "5.4");
        assert!(matches_pattern(&tool_pairs, "5"));
        assert!(matches_pattern(&tool_pairs, "5.4"));
        assert!(matches_pattern(&tool_pairs, "tool pairs"));
        assert!(matches_pattern(&tool_pairs, "5.*"));
        assert!(!matches_pattern(&tool_pairs, "4"));
        let resume = CaseId::Resume.info();
        assert_eq!(resume.id, "5.10");
        assert!(!matches_pattern(
            &CaseId::Grammar(crate::grammar::rules::ONE_STARTED_FIRST).info(),
            "5.10"
        ));
        assert!(matches_pattern(&resume, "5.1?"));
        assert!(!matches_pattern(&resume, "5.1"));
        assert!(matches_pattern(&resume, "*resume*"));
    }

    #[test]
    fn section_order_is_numeric() {
        let mut ids = vec!["5.10", "5.9", "1.1", "7.1", "5.2"];
        ids.sort_by_key(|id| section_order(id));
        assert_eq!(ids, vec!["1.1", "5.2", "5.9", "5.10", "7.1"]);
    }
}
