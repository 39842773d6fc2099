//! Shared test helpers: our real server started in-process on a temporary SQLite database, and
//! `Fake`, a small deployment of the protocol written here with one switchable flaw at a time, for
//! proving that `check` and `load` fail for the right reason.
//!
//! The fake is a real axum server on 127.0.0.1:0 with real WebSockets and real HS256 tokens. With
//! no flaw it honours the contract closely enough that the whole suite passes against it (a test
//! asserts that), so a failure against a flawed fake is caused by that flaw and nothing else.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod agui;

use agentwire_engine::{Engine, EngineConfig};
use agentwire_server::{AppState, JwtConfig, ServerConfig};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, Duration as ChronoDuration, DurationRound as _, NaiveDate, Utc};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The HS256 secret of every server in these tests.
pub const SECRET: &str = "check-suite-test-secret-0123456789abcdef";

/// `--secret SECRET`: the suite and the load generator mint their own users.
pub fn secret_auth() -> agentwire_check::suite::AuthMode {
    agentwire_check::suite::AuthMode::Secret {
        secret: SECRET.to_owned(),
        issuer: None,
        audience: None,
        org: None,
    }
}

/// An HS256 token for `sub`, valid for ten minutes, signed with `key`.
pub fn token(sub: &str, key: &[u8]) -> String {
    agentwire_check::token::sign_hs256(
        &json!({"sub": sub, "exp": Utc::now().timestamp() + 600}),
        key,
    )
}

// ------------------------------------------------------------------------------ our server

/// Our server on `127.0.0.1:0` over a SQLite file in a temp dir, with demo data for tenants
/// without their own.
pub struct OurServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl OurServer {
    pub async fn start() -> OurServer {
        Self::start_pinging(ServerConfig::default().ping_interval).await
    }

    /// Our server pinging each socket every `interval` (it closes a socket that stays silent
    /// for two).
    pub async fn start_pinging(interval: Duration) -> OurServer {
        let config = ServerConfig {
            jwt: JwtConfig::hs256(SECRET),
            ping_interval: interval,
            ..ServerConfig::default()
        };
        let dir = tempfile::TempDir::new().unwrap();
        let url = format!("sqlite://{}/check.db", dir.path().display());
        let store = agentwire_store::connect(&url).await.unwrap();
        let engine = Engine::start(
            store,
            EngineConfig {
                demo_data: true,
                ..EngineConfig::default()
            },
        )
        .await
        .unwrap();
        let state = AppState::new(engine, config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(agentwire_server::serve(listener, state, async move {
            let _ = rx.await;
        }));
        OurServer {
            addr,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

// ------------------------------------------------------------------------- other targets

/// A port nothing listens on.
pub fn unused_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// A server that accepts TCP connections and never sends a byte.
pub async fn silent_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

// ------------------------------------------------------------------------------ the fake

/// What the fake gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flaw {
    /// Nothing: the contract as written.
    None,
    /// Runs never send `agent_thinking`.
    OmitThinking,
    /// After the terminal event, one more event of the run is sent.
    EventsAfterTerminal,
    /// Every run event goes to every connected socket, whoever's it is.
    CrossDeliver,
    /// Each run's tool data carries, deep inside its rows, the question of the run started
    /// before it (another user's, canary and all); nothing else of it leaks.
    ForeignQuestionDeepInData,
    /// Long, keyword-rich answers with tools behind them, but naming the wrong day and a saving
    /// three times the real one.
    WrongAnswers,
    /// No AG-UI endpoints at all (a deployment of the WebSocket contract only).
    NoAgui,
    /// The AG-UI stream ends with RUN_FINISHED while a step is still open.
    AguiStepLeftOpen,
    /// A resumed AG-UI stream carries the same events, re-serialized (other bytes).
    AguiResumeRewritten,
    /// Another user's AG-UI run answers 403, telling that it exists.
    AguiRunOracle,
}

/// A running fake deployment.
pub struct Fake {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Fake {
    pub async fn start(flaw: Flaw) -> Fake {
        let state = Arc::new(FakeState {
            flaw,
            runs: Mutex::new(HashMap::new()),
            sockets: Mutex::new(Vec::new()),
            tenants: Mutex::new(HashMap::new()),
            threads: Mutex::new(HashMap::new()),
            default_data: Arc::new(parse_csv(
                &agentwire_check::truth::generate(Utc::now(), 42).csv,
            )),
            next_id: AtomicU64::new(1),
            last_question: Mutex::new(None),
        });
        let app = Router::new()
            .route("/ws", get(ws_upgrade))
            .route("/health", get(health))
            .route("/api/health", get(health))
            .route("/health/live", get(ok))
            .route("/health/ready", get(ok))
            .route("/api/usage", post(upload))
            .route("/api/runs/{run_id}/events", get(run_events))
            .with_state(state)
            .merge(agui::router(flaw));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Outbox = mpsc::UnboundedSender<String>;

struct RunLog {
    owner: String,
    events: Mutex<Vec<Value>>,
    done: AtomicBool,
    cancel: AtomicBool,
}

struct FakeState {
    flaw: Flaw,
    runs: Mutex<HashMap<String, Arc<RunLog>>>,
    /// Every connected, authenticated socket: (user, outbox).
    sockets: Mutex<Vec<(String, Outbox)>>,
    tenants: Mutex<HashMap<String, Arc<Dataset>>>,
    /// (user, thread) -> the run going on it.
    threads: Mutex<HashMap<(String, String), String>>,
    default_data: Arc<Dataset>,
    next_id: AtomicU64,
    /// The question of the last run started (for `ForeignQuestionDeepInData`).
    last_question: Mutex<Option<String>>,
}

impl FakeState {
    fn id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

#[derive(Debug, Clone)]
struct Claims {
    sub: String,
    tenant: String,
    scope: String,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn verify(token: &str) -> Result<Claims, String> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["sub", "exp"]);
    validation.leeway = 5;
    let data = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .map_err(|e| e.to_string())?;
    let sub = data.claims["sub"].as_str().unwrap_or_default().to_owned();
    let tenant = data.claims["org_id"].as_str().unwrap_or(&sub).to_owned();
    let scope = data.claims["scope"].as_str().unwrap_or_default().to_owned();
    Ok(Claims { sub, tenant, scope })
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

/// The claims of the request's Bearer token, or the HTTP refusal.
fn authorized(headers: &HeaderMap) -> Result<Claims, Box<Response>> {
    let Some(token) = bearer(headers) else {
        return Err(Box::new(refuse(
            StatusCode::UNAUTHORIZED,
            "AUTH_REQUIRED",
            "a Bearer token is needed",
        )));
    };
    verify(&token).map_err(|e| Box::new(refuse(StatusCode::UNAUTHORIZED, "AUTH_FAILED", &e)))
}

async fn health() -> Json<Value> {
    Json(
        json!({"status": "healthy", "service": "fake", "version": "0", "uptime_s": 1,
                "checks": {"database": "ok"}}),
    )
}

async fn ok() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn upload(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: String) -> Response {
    let claims = match authorized(&headers) {
        Ok(claims) => claims,
        Err(refusal) => return *refusal,
    };
    if !claims.scope.split(' ').any(|s| s == "usage:write") {
        return refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "needs scope usage:write",
        );
    }
    let data = parse_csv(&body);
    let imported = data.rows.len();
    state
        .tenants
        .lock()
        .unwrap()
        .insert(claims.tenant.clone(), Arc::new(data));
    Json(json!({"tenant_id": claims.tenant, "imported": imported})).into_response()
}

async fn run_events(
    State(state): State<Arc<FakeState>>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let claims = match authorized(&headers) {
        Ok(claims) => claims,
        Err(refusal) => return *refusal,
    };
    let log = state.runs.lock().unwrap().get(&run_id).cloned();
    match log {
        Some(log) if log.owner == claims.sub => {
            Json(Value::Array(log.events.lock().unwrap().clone())).into_response()
        }
        _ => refuse(
            StatusCode::NOT_FOUND,
            "RUN_NOT_FOUND",
            "no such run for this user",
        ),
    }
}

async fn ws_upgrade(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let offered: Vec<String> = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default();
    let from_protocol = offered.iter().find_map(|p| {
        let encoded = p.strip_prefix("jwt.")?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()?;
        String::from_utf8(bytes).ok()
    });
    let token = bearer(&headers).or(from_protocol);
    let user = match token {
        None => None,
        Some(token) => match verify(&token) {
            Ok(claims) => Some(claims),
            Err(e) => return refuse(StatusCode::UNAUTHORIZED, "AUTH_FAILED", &e),
        },
    };
    ws.protocols(["agentwire.v1"])
        .on_upgrade(move |socket| connection(state, socket, user))
}

fn established(claims: &Claims) -> String {
    json!({"type": "connection_established", "connection_id": "conn_fake", "user_id": claims.sub,
           "protocol": "agentwire.v1", "server_version": "fake",
           "agents": ["supervisor", "triage", "data", "optimization", "actions", "reporting"],
           "limits": {"max_frame_bytes": 1_048_576, "max_concurrent_runs": 8}, "timestamp": now()})
    .to_string()
}

fn error(code: &str, message: &str, request_id: Option<&Value>, run_id: Option<&str>) -> String {
    let mut frame = json!({"type": "error", "error_code": code, "message": message,
                           "retryable": false, "timestamp": now()});
    if let Some(id) = request_id {
        frame["request_id"] = json!(id_text(id));
    }
    if let Some(run_id) = run_id {
        frame["run_id"] = json!(run_id);
    }
    frame.to_string()
}

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn connection(state: Arc<FakeState>, socket: WebSocket, mut user: Option<Claims>) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    if let Some(claims) = &user {
        let _ = tx.send(established(claims));
        state
            .sockets
            .lock()
            .unwrap()
            .push((claims.sub.clone(), tx.clone()));
    }
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => handle(&state, &tx, &mut user, text.as_str()),
            Message::Binary(_) => {
                let _ = tx.send(error(
                    "INVALID_MESSAGE",
                    "binary frames are not accepted",
                    None,
                    None,
                ));
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    state
        .sockets
        .lock()
        .unwrap()
        .retain(|(_, outbox)| !outbox.same_channel(&tx));
    drop(tx);
    let _ = writer.await;
}

fn handle(state: &Arc<FakeState>, tx: &Outbox, user: &mut Option<Claims>, text: &str) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        let _ = tx.send(error("INVALID_MESSAGE", "not JSON", None, None));
        return;
    };
    let id = message.get("id");
    let kind = message["type"].as_str().unwrap_or_default();
    match kind {
        "ping" => {
            let mut pong = json!({"type": "pong", "timestamp": now()});
            if let Some(id) = id {
                pong["request_id"] = json!(id_text(id));
            }
            let _ = tx.send(pong.to_string());
            return;
        }
        "authenticate" => {
            match verify(message["token"].as_str().unwrap_or_default()) {
                Ok(claims) => {
                    let _ = tx.send(established(&claims));
                    state
                        .sockets
                        .lock()
                        .unwrap()
                        .push((claims.sub.clone(), tx.clone()));
                    *user = Some(claims);
                }
                Err(e) => {
                    let _ = tx.send(error("AUTH_FAILED", &e, id, None));
                }
            }
            return;
        }
        _ => {}
    }
    let Some(claims) = user.clone() else {
        let _ = tx.send(error("AUTH_REQUIRED", "authenticate first", id, None));
        return;
    };
    match kind {
        "start_agent" | "agent_execute" | "user_message" => start(state, tx, &claims, &message),
        "cancel" | "resume" => {
            let run_id = message["run_id"].as_str().unwrap_or_default();
            let log = state.runs.lock().unwrap().get(run_id).cloned();
            let Some(log) = log.filter(|l| l.owner == claims.sub) else {
                let _ = tx.send(error(
                    "RUN_NOT_FOUND",
                    "no such run for this user",
                    id,
                    Some(run_id),
                ));
                return;
            };
            if kind == "cancel" {
                log.cancel.store(true, Ordering::Relaxed);
            } else {
                let after = message["after_seq"].as_u64().unwrap_or(0);
                tokio::spawn(follow(log, after, tx.clone()));
            }
        }
        _ => {
            let _ = tx.send(error("UNKNOWN_MESSAGE_TYPE", "unknown type", id, None));
        }
    }
}

/// Replays a run's events after `after` and follows it until its terminal event.
async fn follow(log: Arc<RunLog>, mut after: u64, tx: Outbox) {
    loop {
        let done = log.done.load(Ordering::Acquire);
        let fresh: Vec<Value> = log
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["seq"].as_u64().unwrap_or(0) > after)
            .cloned()
            .collect();
        for event in fresh {
            after = event["seq"].as_u64().unwrap_or(after);
            if tx.send(event.to_string()).is_err() {
                return;
            }
        }
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

fn start(state: &Arc<FakeState>, tx: &Outbox, claims: &Claims, message: &Value) {
    let id = message.get("id");
    let payload = message.get("payload").cloned().unwrap_or(json!({}));
    let pick = |name: &str| {
        payload
            .get(name)
            .or_else(|| message.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let question = pick("user_request")
        .or_else(|| pick("query"))
        .or_else(|| pick("content"))
        .unwrap_or_default();
    // A structured task: fields in `data`, no question (issue 10).
    let task = message
        .get("data")
        .filter(|d| d.is_object() && question.is_empty())
        .cloned();
    let agent_name = if message["type"] == "user_message" {
        "supervisor".to_owned()
    } else {
        pick("agent_type").unwrap_or_else(|| "supervisor".to_owned())
    };
    let Some(agent) = agentwire_protocol::AgentKind::from_name(&agent_name) else {
        let _ = tx.send(error("AGENT_NOT_FOUND", "no such agent", id, None));
        return;
    };
    let thread = pick("thread_id").unwrap_or_else(|| state.id("thr"));
    let run_id = state.id("run");
    {
        let mut threads = state.threads.lock().unwrap();
        let key = (claims.sub.clone(), thread.clone());
        if let Some(running) = threads.get(&key) {
            let _ = tx.send(error(
                "RUN_CONFLICT",
                "the thread has a running run",
                id,
                Some(running),
            ));
            return;
        }
        threads.insert(key, run_id.clone());
    }
    let log = Arc::new(RunLog {
        owner: claims.sub.clone(),
        events: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
        cancel: AtomicBool::new(false),
    });
    state
        .runs
        .lock()
        .unwrap()
        .insert(run_id.clone(), log.clone());
    let mut accepted = json!({"type": "run_accepted", "run_id": run_id, "thread_id": thread,
                              "timestamp": now()});
    if let Some(id) = id {
        accepted["request_id"] = json!(id_text(id));
    }
    let _ = tx.send(accepted.to_string());
    let data = state
        .tenants
        .lock()
        .unwrap()
        .get(&claims.tenant)
        .cloned()
        .unwrap_or_else(|| state.default_data.clone());
    tokio::spawn(run(
        state.clone(),
        log,
        tx.clone(),
        claims.sub.clone(),
        thread,
        run_id,
        agent.as_str().to_owned(),
        question,
        task,
        data,
    ));
}

/// Plays one run: the script for the agent, with the flaw, one event every few milliseconds so
/// that a cancel can land mid-run.
#[allow(clippy::too_many_arguments)]
async fn run(
    state: Arc<FakeState>,
    log: Arc<RunLog>,
    tx: Outbox,
    user: String,
    thread: String,
    run_id: String,
    agent: String,
    question: String,
    task: Option<Value>,
    data: Arc<Dataset>,
) {
    let findings = data.findings(state.flaw == Flaw::WrongAnswers);
    let mut script = script(&agent, &question, &findings, state.flaw);
    let answer = match &task {
        Some(fields) => Some(task_answer(fields, &findings, state.flaw)),
        None => lookup_answer(&question, &data, state.flaw),
    };
    if let Some(answer) = answer {
        for (kind, _, fields) in &mut script {
            match *kind {
                "agent_completed" => fields["response"] = json!(answer),
                "response_delta" => fields["delta"] = json!(answer),
                _ => {}
            }
        }
    }
    let foreign = (state.flaw == Flaw::ForeignQuestionDeepInData)
        .then(|| {
            state
                .last_question
                .lock()
                .unwrap()
                .replace(question.clone())
        })
        .flatten();
    let mut seq = 0u64;
    let mut open_tool: Option<(String, String, String)> = None;
    let deliver = |event: &Value| {
        log.events.lock().unwrap().push(event.clone());
        let text = event.to_string();
        if state.flaw == Flaw::CrossDeliver {
            for (_, outbox) in state.sockets.lock().unwrap().iter() {
                let _ = outbox.send(text.clone());
            }
        } else {
            let _ = tx.send(text);
        }
    };
    let base = |seq: u64, kind: &str, agent: &str| {
        json!({"type": kind, "timestamp": now(), "run_id": run_id, "thread_id": thread,
               "seq": seq, "agent": agent})
    };
    for (kind, by, fields) in script {
        if log.cancel.load(Ordering::Relaxed) && seq > 0 {
            if let Some((tool, call, by)) = open_tool.take() {
                seq += 1;
                let mut closing = base(seq, "tool_completed", &by);
                for (k, v) in [
                    ("tool", json!(tool)),
                    ("tool_call_id", json!(call)),
                    ("status", json!("error")),
                    ("result", json!("cancelled")),
                    ("data", json!({})),
                    ("duration_ms", json!(0)),
                ] {
                    closing[k] = v;
                }
                deliver(&closing);
            }
            seq += 1;
            let mut cancelled = base(seq, "agent_cancelled", &agent);
            cancelled["reason"] = json!("cancelled by the user");
            deliver(&cancelled);
            break;
        }
        seq += 1;
        let mut event = base(seq, kind, &by);
        for (k, v) in fields.as_object().unwrap() {
            event[k] = v.clone();
        }
        match kind {
            "tool_executing" => {
                open_tool = Some((
                    event["tool"].as_str().unwrap().to_owned(),
                    event["tool_call_id"].as_str().unwrap().to_owned(),
                    by.clone(),
                ));
            }
            "tool_completed" => {
                open_tool = None;
                if let Some(question) = &foreign {
                    event["data"] = json!({"rows": [{"note": question}]});
                }
            }
            _ => {}
        }
        deliver(&event);
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    if state.flaw == Flaw::EventsAfterTerminal {
        seq += 1;
        let mut late = base(seq, "progress", &agent);
        late["percent"] = json!(100);
        late["message"] = json!("one more thing");
        deliver(&late);
    }
    log.done.store(true, Ordering::Release);
    state.threads.lock().unwrap().remove(&(user, thread));
}

/// What the fake computed from a tenant's data (or, with the wrong-answers flaw, what it claims).
struct Findings {
    total: f64,
    requests: u64,
    tokens: u64,
    daily_avg: f64,
    spike_day: NaiveDate,
    spike_cost: f64,
    baseline: f64,
    feature: String,
    saving: f64,
}

fn script(
    agent: &str,
    question: &str,
    f: &Findings,
    flaw: Flaw,
) -> Vec<(&'static str, String, Value)> {
    let think = flaw != Flaw::OmitThinking;
    let money = |v: f64| format!("${v:.2}");
    let summary = json!({"total_cost_usd": f.total, "requests": f.requests,
                         "daily_average_usd": f.daily_avg, "spike_day": f.spike_day.to_string(),
                         "spike_cost_usd": f.spike_cost, "baseline_usd": f.baseline});
    let recommendation = json!({"feature": f.feature, "monthly_savings_usd": f.saving});
    let mut out: Vec<(&'static str, String, Value)> = Vec::new();
    let plan = if agent == "supervisor" {
        json!(["data", "optimization"])
    } else {
        json!([agent])
    };
    out.push((
        "agent_started",
        agent.to_owned(),
        json!({"user_request": question, "plan": plan}),
    ));
    if think {
        out.push(("agent_thinking", agent.to_owned(),
                  json!({"message": format!("Spend over the last 30 days was {} in {} requests.", money(f.total), f.requests)})));
    }
    let sub = |out: &mut Vec<(&'static str, String, Value)>,
               name: &str,
               tool: &str,
               call: &str,
               data: Value,
               thought: String| {
        if agent == "supervisor" {
            out.push((
                "agent_handoff",
                "supervisor".to_owned(),
                json!({"from_agent": "supervisor", "to_agent": name, "reason": "needs it"}),
            ));
            out.push((
                "subagent_started",
                name.to_owned(),
                json!({"parent_agent": "supervisor"}),
            ));
        }
        out.push((
            "tool_executing",
            name.to_owned(),
            json!({"tool": tool, "tool_call_id": call, "args": {"timeframe": "30d"}}),
        ));
        out.push((
            "tool_completed",
            name.to_owned(),
            json!({"tool": tool, "tool_call_id": call, "status": "ok",
                         "result": format!("{tool} done"), "data": data, "duration_ms": 1}),
        ));
        if think {
            out.push((
                "agent_thinking",
                name.to_owned(),
                json!({"message": thought}),
            ));
        }
        if agent == "supervisor" {
            out.push((
                "subagent_completed",
                name.to_owned(),
                json!({"parent_agent": "supervisor", "summary": format!("{name} done")}),
            ));
        }
    };
    sub(
        &mut out,
        "data",
        "usage_summary",
        "call_1",
        summary,
        format!(
            "{} stands out at {} against {} expected.",
            f.spike_day,
            money(f.spike_cost),
            money(f.baseline)
        ),
    );
    out.push((
        "progress",
        agent.to_owned(),
        json!({"percent": 50, "message": "half way"}),
    ));
    sub(
        &mut out,
        "optimization",
        "recommend_optimizations",
        "call_2",
        recommendation,
        format!(
            "Routing {} to gpt-4o-mini saves {} per month.",
            f.feature,
            money(f.saving)
        ),
    );
    let mut response = format!(
        "## AI spend (last 30 days)\n\
         Total spend: {} over {} requests in the last 30 days, about {} per day.\n\n\
         ### Anomalies\n\
         - {} stands out: {} spent against {} expected, a spike above the baseline.\n\n\
         ### Recommendations\n\
         1. Route {} from gpt-4o to gpt-4o-mini: saves {} per month.\n\n\
         ### Implementation plan\n\
         1. Put the route behind a feature flag.\n\
         2. Shadow-evaluate 500 recent requests and compare the answers.\n\
         3. Ramp to 100% over a week while watching accuracy.\n\n\
         ### Capacity\n\
         We run about {} requests per day and {} tokens per day; at this rate next month needs about {} requests.\n",
        money(f.total),
        f.requests,
        money(f.daily_avg),
        f.spike_day,
        money(f.spike_cost),
        money(f.baseline),
        f.feature,
        money(f.saving),
        f.requests / 30,
        f.tokens / 30,
        f.requests
    );
    if flaw == Flaw::WrongAnswers {
        response.push_str(
            "\n### Summary\nOur cost optimization analysis found savings, spend anomalies, a spike, \
             forecast capacity, rate limits, requests per day, tokens per minute, recommendations, \
             implementation steps, a rollout plan, model routing, prompt caching and batching: \
             every lever a FinOps team needs to cut AI costs next month.\n",
        );
    }
    out.push((
        "response_delta",
        agent.to_owned(),
        json!({"delta": response}),
    ));
    out.push((
        "agent_completed",
        agent.to_owned(),
        json!({"response": response, "report": {}, "duration_ms": 40}),
    ));
    out
}

/// Usage rows: (timestamp, model, input tokens, output tokens, requests, feature), and each
/// row's team.
struct Dataset {
    rows: Vec<(DateTime<Utc>, String, u64, u64, u64, String)>,
    teams: Vec<String>,
}

fn parse_csv(text: &str) -> Dataset {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(ts), Some(model), Some(input), Some(output)) = (
        col("timestamp"),
        col("model"),
        col("input_tokens"),
        col("output_tokens"),
    ) else {
        return Dataset {
            rows: Vec::new(),
            teams: Vec::new(),
        };
    };
    let (requests, feature, team) = (col("request_count"), col("feature"), col("team"));
    let (rows, teams) = lines
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let team = team
                .and_then(|i| cells.get(i))
                .map_or_else(String::new, |s| (*s).to_owned());
            Some((
                (
                    DateTime::parse_from_rfc3339(cells.get(ts)?)
                        .ok()?
                        .with_timezone(&Utc),
                    (*cells.get(model)?).to_owned(),
                    cells.get(input)?.parse().ok()?,
                    cells.get(output)?.parse().ok()?,
                    requests
                        .and_then(|i| cells.get(i)?.parse().ok())
                        .unwrap_or(1),
                    feature
                        .and_then(|i| cells.get(i))
                        .map_or_else(String::new, |s| (*s).to_owned()),
                ),
                team,
            ))
        })
        .unzip();
    Dataset { rows, teams }
}

fn price(model: &str) -> (f64, f64) {
    let p = agentwire_check::truth::PRICES
        .iter()
        .find(|p| p.model == model)
        .unwrap_or(&agentwire_check::truth::PRICES[0]);
    (p.input_per_mtok / 1e6, p.output_per_mtok / 1e6)
}

impl Dataset {
    /// The last 30 days' spend, the most expensive day, and the best gpt-4o -> gpt-4o-mini route
    /// for short traffic. With `wrong`, a quiet day and three times the saving instead.
    fn findings(&self, wrong: bool) -> Findings {
        let newest = self.rows.iter().map(|r| r.0).max().unwrap_or_else(Utc::now);
        let end =
            newest.duration_trunc(ChronoDuration::hours(1)).unwrap() + ChronoDuration::hours(1);
        let start = end - ChronoDuration::days(30);
        let mut daily: BTreeMap<NaiveDate, f64> = BTreeMap::new();
        let mut groups: BTreeMap<String, (u64, u64, u64, f64, f64)> = BTreeMap::new();
        let (mut total, mut requests, mut tokens) = (0.0, 0u64, 0u64);
        for (at, model, input, output, count, feature) in &self.rows {
            if *at < start || *at >= end {
                continue;
            }
            let (pi, po) = price(model);
            let cost = *input as f64 * pi + *output as f64 * po;
            total += cost;
            requests += count;
            tokens += input + output;
            *daily.entry(at.date_naive()).or_default() += cost;
            if model == "gpt-4o" {
                let (mi, mo) = price("gpt-4o-mini");
                let g = groups.entry(feature.clone()).or_default();
                g.0 += count;
                g.1 += input;
                g.2 += output;
                g.3 += cost;
                g.4 += *input as f64 * mi + *output as f64 * mo;
            }
        }
        let (spike_day, spike_cost) = daily
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(d, c)| (*d, *c))
            .unwrap_or((start.date_naive(), 0.0));
        let mut costs: Vec<f64> = daily.values().copied().collect();
        costs.sort_by(f64::total_cmp);
        let baseline = costs.get(costs.len() / 2).copied().unwrap_or(0.0);
        let (feature, saving) = groups
            .iter()
            .filter(|(_, g)| {
                g.0 > 0 && g.2 as f64 / g.0 as f64 <= 64.0 && g.1 as f64 / g.0 as f64 <= 2000.0
            })
            .map(|(f, g)| (f.clone(), g.3 - g.4))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or_default();
        let quiet_day = daily
            .iter()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map_or(spike_day, |(d, _)| *d);
        Findings {
            total,
            requests,
            tokens,
            daily_avg: total / daily.len().max(1) as f64,
            spike_day: if wrong { quiet_day } else { spike_day },
            spike_cost,
            baseline,
            feature,
            saving: if wrong { saving * 3.0 } else { saving },
        }
    }
}

// ------------------------------------------------------------------ lookups and tasks

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The month a question names ("in November 2026"): its first and last day.
fn named_month(q: &str) -> Option<(NaiveDate, NaiveDate)> {
    for (i, name) in MONTHS.iter().enumerate() {
        if let Some(at) = q.find(name) {
            let year: i32 = q[at + name.len()..].trim_start().get(..4)?.parse().ok()?;
            let month = u32::try_from(i).ok()? + 1;
            let first = NaiveDate::from_ymd_opt(year, month, 1)?;
            let next = if month == 12 {
                NaiveDate::from_ymd_opt(year + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(year, month + 1, 1)?
            };
            return Some((first, next.pred_opt()?));
        }
    }
    None
}

/// The `YYYY-MM-DD` dates a question names, in order.
fn iso_dates(q: &str) -> Vec<NaiveDate> {
    q.split(|c: char| c.is_whitespace() || c == '?')
        .filter_map(|w| NaiveDate::parse_from_str(w, "%Y-%m-%d").ok())
        .collect()
}

/// The word after `prefix` in `q` ("the support team" → support).
fn word_after<'q>(q: &'q str, prefix: &str) -> Option<&'q str> {
    let rest = &q[q.find(prefix)? + prefix.len()..];
    rest.split(|c: char| c.is_whitespace() || matches!(c, ',' | '?'))
        .next()
}

impl Dataset {
    /// Spend and requests of the rows between two days that `keep` (model, team) selects.
    fn sum(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        keep: impl Fn(&str, &str) -> bool,
    ) -> (f64, u64) {
        let (mut cost, mut requests) = (0.0, 0);
        for ((at, model, input, output, count, _), team) in self.rows.iter().zip(&self.teams) {
            let day = at.date_naive();
            if day < first || day > last || !keep(model, team) {
                continue;
            }
            let (pi, po) = price(model);
            cost += *input as f64 * pi + *output as f64 * po;
            requests += count;
        }
        (cost, requests)
    }
}

/// The fake's answer to the suite's lookup questions, the fact first. With the wrong-answers flaw
/// it is a long keyword-rich answer with the figure late, or with wrong figures.
fn lookup_answer(q: &str, data: &Dataset, flaw: Flaw) -> Option<String> {
    let money = |v: f64| format!("${v:.2}");
    let wrong = flaw == Flaw::WrongAnswers;
    let (fact, off) = if q.starts_with("How much did the ") && q.contains(" spend from ") {
        let team = word_after(q, "How much did the ")?;
        let [a, b, c, d] = iso_dates(q)[..] else {
            return None;
        };
        let (now, _) = data.sum(a, b, |_, t| t == team);
        let (before, _) = data.sum(c, d, |_, t| t == team);
        let k = if wrong { 1.25 } else { 1.0 };
        (
            format!(
                "The {team} team spent {} from {a} to {b}, against {} from {c} to {d}.",
                money(now * k),
                money(before * k)
            ),
            true,
        )
    } else if q.starts_with("How much did the ") {
        let team = word_after(q, "How much did the ")?;
        let (first, last) = named_month(q)?;
        let (cost, _) = data.sum(first, last, |_, t| t == team);
        (format!("The {team} team spent {}.", money(cost)), false)
    } else if q.starts_with("Which team spent the most") {
        let (first, last) = named_month(q)?;
        let mut best = (String::new(), 0.0);
        for team in data.teams.iter().collect::<std::collections::BTreeSet<_>>() {
            let (cost, _) = data.sum(first, last, |_, t| t == team);
            if cost > best.1 {
                best = (team.clone(), cost);
            }
        }
        (
            format!("The {} team spent the most: {}.", best.0, money(best.1)),
            false,
        )
    } else if q.starts_with("How many requests went to ") {
        let model = word_after(q, "How many requests went to ")?;
        let (first, last) = named_month(q)?;
        let (_, requests) = data.sum(first, last, |m, _| m == model);
        (format!("{model} served {requests} requests."), false)
    } else if q.starts_with("Which cost more in ") {
        let (first, last) = named_month(q)?;
        let rest = &q[q.find(", ")? + 2..];
        let (m1, rest) = rest.split_once(" or ")?;
        let m2 = rest.split(|c: char| c == '?' || c.is_whitespace()).next()?;
        let (c1, _) = data.sum(first, last, |m, _| m == m1);
        let (c2, _) = data.sum(first, last, |m, _| m == m2);
        let k = if wrong { 0.8 } else { 1.0 };
        (
            format!(
                "{m1} cost {} and {m2} cost {}.",
                money(c1 * k),
                money(c2 * k)
            ),
            true,
        )
    } else {
        return None;
    };
    if !wrong {
        return Some(format!("{fact}\n"));
    }
    let preamble = "## Spend analysis\nOur cost optimization analysis looked at spend, tokens,         requests, models, teams and features. Every lever a FinOps team needs was reviewed: routing,         caching and batching. The forecast and the rate limits were checked as well. ";
    Some(if off {
        format!("{fact} {preamble}\n")
    } else {
        format!("{preamble}\n\n{fact}\n")
    })
}

/// The fake's answer to a structured task: the stated monthly spend against the data's, and the
/// fields it does not use. With the wrong-answers flaw, the data's figure is three times too high.
fn task_answer(fields: &Value, f: &Findings, flaw: Flaw) -> String {
    let stated = fields["current_metrics"]["monthly_spend"]
        .as_f64()
        .unwrap_or(0.0);
    let shown = if flaw == Flaw::WrongAnswers {
        f.total * 3.0
    } else {
        f.total
    };
    format!(
        "You state a monthly spend of ${stated:.2}; the data shows ${shown:.2} a month. \
         Routing {} to gpt-4o-mini saves ${:.2} per month. \
         Not used: current_metrics.utilization_rate, constraints.max_performance_impact.\n",
        f.feature, f.saving
    )
}
