//! One session: connecting (measured from the scheduled start), running one request at a time,
//! measuring each run from its schedule and from its send, judging it against the grammar,
//! scanning every frame for other users' data, holding it open when asked, and reading what is
//! left before closing.
//!
//! What it must not do: share a lock on the hot path (each session keeps its own measurements in
//! [`Local`] and merges them when it ends), count a run as completed without its
//! `agent_completed` and a clean grammar, or lose a failure (every kind is counted).

use super::{Counters, EXAMPLES, LATE_AFTER, LoadConfig, Model};
use crate::client::{
    ClientError, ConnectOptions, Credentials, FrameDetail, RunTranscript, Session,
};
use crate::grammar;
use crate::isolation::Registry;
use crate::metrics::{MetricSet, Tags, Trend};
use crate::suite::config::{AuthMode, ConfigError};
use crate::target::Target;
use crate::token::{Identity, Minter};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Everything the sessions share.
pub(super) struct Shared {
    pub config: LoadConfig,
    /// Every node of the deployment; session `i` connects to `targets[i % len]`.
    pub targets: Vec<Target>,
    minter: Option<Minter>,
    token: Option<String>,
    /// The tenant minted users read (`org_id`); with `tenants` > 1, a prefix numbered per user.
    org: Option<String>,
    /// Runs asked so far, for drawing questions in turn or at random.
    asked: std::sync::atomic::AtomicU64,
    pub tag: String,
    registry: Registry,
    pub counters: Arc<Counters>,
    pub metrics: Mutex<MetricSet>,
    /// Send-based latencies, reported beside the scheduled ones.
    pub from_send: Mutex<(Trend, Trend)>,
    pub failures: Mutex<BTreeMap<String, u64>>,
    pub violation_examples: Mutex<Vec<String>>,
    pub leak_examples: Mutex<Vec<String>>,
    /// Closed-model users still asking their runs; `all_ran` turns true when none is left,
    /// which is what held sessions wait for.
    running: AtomicUsize,
    all_ran: watch::Sender<bool>,
}

impl Shared {
    /// The sessions' shared state: who they connect as, and where their measurements go.
    ///
    /// # Errors
    /// A token that cannot be read, or a secret too short to sign with.
    pub fn new(
        config: &LoadConfig,
        targets: Vec<Target>,
        counters: Arc<Counters>,
    ) -> Result<Self, ConfigError> {
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
        Ok(Self {
            config: config.clone(),
            targets,
            minter,
            token,
            org,
            asked: std::sync::atomic::AtomicU64::new(0),
            tag,
            registry: Registry::new(),
            counters,
            metrics: Mutex::new(MetricSet::new()),
            from_send: Mutex::default(),
            failures: Mutex::new(BTreeMap::new()),
            violation_examples: Mutex::new(Vec::new()),
            leak_examples: Mutex::new(Vec::new()),
            running: AtomicUsize::new(match config.model {
                Model::Closed { users, .. } => users,
                Model::Open { .. } => 0,
            }),
            all_ran: watch::channel(false).0,
        })
    }

    /// One closed-model user has asked all its runs, or given up: the last one releases every
    /// held session.
    pub fn user_ran(&self) {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_ran.send_replace(true);
        }
    }

    pub fn fail(&self, kind: impl Into<String>) {
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

    /// The tenant of the `index`th user: one shared tenant, or with `--tenants N` users spread
    /// over N tenants in turn.
    fn org_of(&self, index: usize) -> Option<String> {
        let org = self.org.clone()?;
        Some(match self.config.tenants {
            0 | 1 => org,
            n => format!("{org}-t{}", index % n),
        })
    }

    /// The question of the next run: the one question, or the next of the list (in turn, or
    /// drawn with the seed).
    pub fn next_question(&self) -> &str {
        let asked = self.asked.fetch_add(1, Ordering::Relaxed);
        let questions = &self.config.questions;
        if questions.is_empty() {
            return &self.config.question;
        }
        let n = questions.len() as u64;
        let index = match self.config.seed {
            None => asked % n,
            Some(seed) => splitmix64(seed ^ splitmix64(asked)) % n,
        };
        &questions[usize::try_from(index).unwrap_or(0)]
    }

    fn credentials(&self, user: &str, index: usize) -> (String, Credentials) {
        match (&self.minter, &self.token) {
            (Some(minter), _) => {
                let identity = Identity::new(user, self.org_of(index));
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

    /// Options for session number `session`: the nodes take turns.
    fn options(&self, credentials: Credentials, session: usize) -> ConnectOptions {
        let target = &self.targets[session % self.targets.len().max(1)];
        ConnectOptions {
            url: target.ws_url.clone(),
            credentials,
            offer_subprotocol: true,
            connect_timeout: self.config.connect_timeout,
            tls: target.tls.clone(),
        }
    }
}

/// A well-mixed 64-bit hash (SplitMix64's finalizer): a seeded, reproducible draw without a
/// random number crate.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One session's own measurements, merged into the shared set when it ends.
pub(super) struct Local {
    metrics: MetricSet,
    ttfe_sent: Trend,
    ttc_sent: Trend,
}

impl Local {
    pub fn new() -> Self {
        Self {
            metrics: MetricSet::new(),
            ttfe_sent: Trend::default(),
            ttc_sent: Trend::default(),
        }
    }

    pub fn flush(self, shared: &Shared) {
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

/// A connected session: the socket, the user it is (the token's `sub`), and the runs it followed
/// to their end (anything more of those is a violation).
pub(super) struct Open {
    session: Session,
    me: String,
    finished_runs: Vec<String>,
}

/// Connects a session, measuring from `scheduled`.
pub(super) async fn connect(
    shared: &Shared,
    user: &str,
    session: usize,
    scheduled: Instant,
    local: &mut Local,
) -> Result<Open, String> {
    let (me, credentials) = shared.credentials(user, session);
    match Session::connect(&shared.options(credentials, session)).await {
        Ok(mut session) => {
            // What `load` judges is in the envelope; the canaries are found in all of it.
            session.set_frame_detail(FrameDetail::Envelope);
            local
                .metrics
                .record("connect", ms(scheduled.elapsed()), &Tags::new());
            shared
                .counters
                .up(&shared.counters.connected, &shared.counters.peak_connected);
            Ok(Open {
                session,
                me,
                finished_runs: Vec::new(),
            })
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
        // tungstenite's reasons are fixed phrases ("Handshake not finished", ...): grouping by
        // them keeps the failure table short and says what went wrong.
        ClientError::Handshake(reason) => format!("handshake failed: {reason}"),
        ClientError::InvalidUrl { .. } | ClientError::InvalidCredentials(_) => {
            "configuration".to_owned()
        }
    }
}

/// Scans frames, each with the canaries found in it, for leaks and counts them.
fn scan<'f>(
    shared: &Shared,
    frames: impl IntoIterator<Item = (&'f Value, &'f Vec<String>)>,
    me: &str,
    local: &mut Local,
) {
    local.metrics.observe("isolation_leaks", &Tags::new());
    for (frame, canaries) in frames {
        for leak in shared.registry.leaks_in(frame, canaries, me) {
            shared.counters.leaks.fetch_add(1, Ordering::Relaxed);
            local.metrics.add("isolation_leaks", 1.0, &Tags::new());
            Shared::example(&shared.leak_examples, || leak.to_string());
        }
    }
}

/// One run on an open session, scheduled at `scheduled`, counted as completed or failed (by
/// kind). Returns whether it completed.
pub(super) async fn counted_run(
    shared: &Shared,
    open: &mut Open,
    scheduled: Instant,
    local: &mut Local,
) -> bool {
    match one_run(shared, open, scheduled, local).await {
        Ok(()) => {
            shared.counters.completed.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(kind) => {
            shared.fail(kind);
            false
        }
    }
}

/// One run on an open session; `Err` is the kind of failure.
async fn one_run(
    shared: &Shared,
    open: &mut Open,
    scheduled: Instant,
    local: &mut Local,
) -> Result<(), String> {
    let Open {
        session,
        me,
        finished_runs,
    } = open;
    let me = me.as_str();
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
    let question = format!("{} [ref {canary}]", shared.next_question());
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
    scan(shared, run.events.iter().zip(&run.canaries), me, local);
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
    let completed = run.completed();
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
pub(super) async fn finish(shared: &Shared, open: Open, local: &mut Local) {
    let Open {
        mut session,
        me,
        finished_runs,
    } = open;
    let mut frames = session.take_backlog();
    while let Ok(frame) = session.next_frame(Duration::from_millis(20)).await {
        frames.push(frame);
    }
    scan(
        shared,
        frames.iter().map(|f| (&f.value, &f.canaries)),
        &me,
        local,
    );
    for frame in frames.iter().map(|f| &f.value) {
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

/// Keeps a session that has asked its runs open until every user has (`hold`), reading as it
/// waits. A session closed meanwhile is a failure: the load meant it to stay open.
pub(super) async fn hold(shared: &Shared, open: &mut Open) {
    let mut all_ran = shared.all_ran.subscribe();
    let until = async move {
        // An error means the sender is gone, with the load itself: nothing left to wait for.
        let _ = all_ran.wait_for(|ran| *ran).await;
    };
    if let Err(err) = open.session.read_until(until).await {
        shared.fail(format!("held open: {}", error_kind(&err)));
    }
}

/// Whether the session can no longer send (after a failed run).
pub(super) async fn closed(open: &mut Open) -> bool {
    matches!(
        open.session
            .send_json(&serde_json::json!({"type": "ping"}))
            .await,
        Err(ClientError::Closed { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(questions: &[&str], seed: Option<u64>, tenants: usize) -> Shared {
        let auth = AuthMode::Secret {
            secret: "0123456789abcdef0123456789abcdef".to_owned(),
            issuer: None,
            audience: None,
            org: Some("acme".to_owned()),
        };
        let mut config = LoadConfig::closed("http://127.0.0.1:1", auth, 4);
        config.questions = questions.iter().map(|q| (*q).to_owned()).collect();
        config.seed = seed;
        config.tenants = tenants;
        let target = Target::parse(&config.target).unwrap();
        Shared::new(&config, vec![target], Arc::default()).unwrap()
    }

    #[test]
    fn questions_are_drawn_in_turn_or_reproducibly_at_random() {
        let in_turn = shared(&["a", "b", "c"], None, 1);
        let drawn: Vec<&str> = (0..6).map(|_| in_turn.next_question()).collect();
        assert_eq!(drawn, ["a", "b", "c", "a", "b", "c"]);

        let draw = |seed| {
            let s = shared(&["a", "b", "c"], Some(seed), 1);
            (0..60)
                .map(|_| s.next_question().to_owned())
                .collect::<Vec<_>>()
        };
        let first = draw(7);
        assert_eq!(first, draw(7), "the same seed draws the same questions");
        assert_ne!(first, draw(8));
        for q in ["a", "b", "c"] {
            assert!(first.iter().any(|d| d == q), "{q} never drawn in 60");
        }
        assert_ne!(first[..6], ["a", "b", "c", "a", "b", "c"]);

        let single = shared(&[], None, 1);
        assert_eq!(single.next_question(), "How can we reduce our AI costs?");
    }

    #[test]
    fn users_are_spread_over_the_tenants_with_org_id_claims() {
        let spread = shared(&[], None, 3);
        let orgs: Vec<String> = (0..6)
            .map(|i| {
                let (_, credentials) = spread.credentials(&format!("u{i}"), i);
                let Credentials::Bearer(token) = credentials else {
                    panic!("minted users carry a bearer token")
                };
                crate::token::claims_of(&token).unwrap()["org_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            orgs,
            [
                "acme-t0", "acme-t1", "acme-t2", "acme-t0", "acme-t1", "acme-t2"
            ]
        );
        let one = shared(&[], None, 1);
        let (_, Credentials::Bearer(token)) = one.credentials("u5", 5) else {
            panic!()
        };
        assert_eq!(crate::token::claims_of(&token).unwrap()["org_id"], "acme");
    }

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
}
