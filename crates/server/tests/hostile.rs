//! The hostile-input catalogue (issue 5): a table of malformed, oversized, forged and abusive
//! inputs, each with the error code a client must get, run against a real server on 127.0.0.1:0
//! (SQLite in a temp dir, real JWTs, real WebSockets).
//!
//! After every input the runner checks what a user would: the attacker's own connection still
//! answers (where it is meant to stay open), a second user's run that was going at the same time
//! completed with a valid event grammar, and `/health` still says healthy. It prints the
//! catalogue's size and result, and fails listing every case that did not hold.
//!
//! The whole binary's logs are captured (`trace` level, every target) and searched at the end for
//! every token the catalogue minted and for the JWT secret: none may appear.
//!
//! Each case acts as a fresh user, so that one case's rate limits never decide another's outcome.
//!
//! A test binary of its own rather than a module of `tests/it`: the log capture is a process-wide
//! tracing subscriber at `trace`, and everything the process logs is searched. Other tests in the
//! same process would be logged (and slowed) with it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentwire_check::client::{ClientError, ConnectOptions, Credentials, Session};
use agentwire_check::grammar;
use agentwire_server::{JwtConfig, RateLimit};
use agentwire_testkit::http::parse_response;
use agentwire_testkit::jwt::{RSA_PRIVATE_PEM, RSA_PUBLIC_PEM, now, sign_with};
use agentwire_testkit::ws::{RawSocket, Refusal, raw_connect};
use agentwire_testkit::{HttpResponse, SECRET, TestServer};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

const WAIT: Duration = Duration::from_secs(30);
const ISSUER: &str = "https://issuer.agentwire.test";
const AUDIENCE: &str = "agentwire-api";
/// The main server's limits, chosen so the catalogue can reach each one quickly.
const MAX_CONNECTIONS: usize = 64;
const MAX_INGEST_ROWS: usize = 5_000;
const MAX_RUNS_PER_USER: usize = 8;
const MAX_UNAUTHENTICATED_PER_IP: usize = 8;
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECTION_RATE: RateLimit = RateLimit {
    per_second: 20,
    burst: 40,
};
const USER_RATE: RateLimit = RateLimit {
    per_second: 50,
    burst: 100,
};
const ONE_MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Log capture.

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.0.clone())
    }
}

/// Everything every test in this binary logs, at `trace` level.
fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(logs.clone())
            .init();
        logs
    })
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// The world the catalogue runs in.

struct World {
    /// HS256, `iss` and `aud` required, small connection and ingest limits.
    main: TestServer,
    /// RS256 with the test key's public half: for algorithm confusion.
    rsa: TestServer,
    /// Every token minted, to search the logs for.
    minted: Mutex<Vec<String>>,
    next_user: AtomicUsize,
    /// The run the second user (bob) has going while the current case runs.
    bob_run: Mutex<String>,
}

fn claims_for(sub: &str, org: &str) -> Value {
    json!({
        "sub": sub, "org_id": org, "scope": "usage:write",
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600,
    })
}

impl World {
    async fn start() -> World {
        let mut jwt = JwtConfig::hs256(SECRET);
        jwt.issuer = Some(ISSUER.into());
        jwt.audience = Some(AUDIENCE.into());
        let main = TestServer::builder()
            .jwt(jwt)
            .max_connections(MAX_CONNECTIONS)
            .max_ingest_rows(MAX_INGEST_ROWS)
            .message_rates(CONNECTION_RATE, USER_RATE)
            .slow_client_timeout(Duration::from_secs(1))
            .max_runs_per_user(MAX_RUNS_PER_USER)
            .configure(|server, _| {
                server.max_unauthenticated_per_ip = MAX_UNAUTHENTICATED_PER_IP;
                server.max_followed_runs = MAX_RUNS_PER_USER;
                server.http_header_timeout = HEADER_TIMEOUT;
            })
            // Long enough for cancels and floods to land mid-run, short enough for 70 cases.
            .step_delay(Duration::from_millis(15))
            .start()
            .await;
        let rsa = TestServer::builder()
            .jwt(JwtConfig::public_key(Algorithm::RS256, RSA_PUBLIC_PEM))
            .start()
            .await;
        let world = World {
            main,
            rsa,
            minted: Mutex::new(Vec::new()),
            next_user: AtomicUsize::new(0),
            bob_run: Mutex::new(String::new()),
        };
        // Both tenants get a small, real upload through the API.
        for org in ["acme", "bobco"] {
            let token = world.hs(&claims_for(&format!("loader-{org}"), org));
            let response = world
                .main
                .post(
                    "/api/usage?format=csv",
                    &[("authorization", &format!("Bearer {token}"))],
                    usage_csv(14).as_bytes(),
                )
                .await;
            assert_eq!(response.status, 200, "{}", response.text());
        }
        world
    }

    fn remember(&self, token: String) -> String {
        self.minted.lock().unwrap().push(token.clone());
        token
    }

    /// Signs with the main server's secret.
    fn hs(&self, claims: &Value) -> String {
        self.remember(sign_with(
            claims,
            Algorithm::HS256,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        ))
    }

    fn rs(&self, claims: &Value) -> String {
        self.remember(sign_with(
            claims,
            Algorithm::RS256,
            &EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap(),
        ))
    }

    /// A user no case has used yet, in tenant `acme`, with a valid token.
    fn attacker(&self) -> (String, String) {
        let n = self.next_user.fetch_add(1, Ordering::Relaxed);
        let user = format!("mallory-{n:03}");
        let token = self.hs(&claims_for(&user, "acme"));
        (user, token)
    }

    /// A fresh attacker's authenticated socket.
    async fn attacker_session(&self) -> Session {
        let (_, token) = self.attacker();
        connect(&self.main, Credentials::Bearer(token))
            .await
            .unwrap()
    }

    fn bob_run(&self) -> String {
        self.bob_run.lock().unwrap().clone()
    }
}

/// A usage CSV with `days` days of traffic on three models and two teams.
fn usage_csv(days: u32) -> String {
    let mut csv = String::from("timestamp,model,input_tokens,output_tokens,team\n");
    for day in 0..days {
        for hour in [2, 9, 13, 17, 21] {
            for (i, model) in ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4"]
                .iter()
                .enumerate()
            {
                let team = if (day + hour) % 2 == 0 {
                    "search"
                } else {
                    "support"
                };
                csv.push_str(&format!(
                    "2026-11-{:02}T{hour:02}:15:00Z,{model},{},{},{team}\n",
                    day + 1,
                    800 + 100 * i as u32 + day * 7,
                    60 + 10 * i as u32 + hour
                ));
            }
        }
    }
    csv
}

fn options(url: String, credentials: Credentials) -> ConnectOptions {
    ConnectOptions {
        url,
        credentials,
        offer_subprotocol: true,
        connect_timeout: WAIT,
        tls: None,
    }
}

async fn connect(server: &TestServer, credentials: Credentials) -> Result<Session, ClientError> {
    Session::connect(&options(server.ws_url(), credentials)).await
}

// ---------------------------------------------------------------------------------------------
// Observing replies.

/// A case's result: what was observed, in the catalogue's words, and the attacker's socket when
/// it is meant to stay open.
struct Outcome {
    observed: String,
    open: Option<Session>,
}

impl Outcome {
    fn closed(observed: impl Into<String>) -> Self {
        Self {
            observed: observed.into(),
            open: None,
        }
    }

    fn open(observed: impl Into<String>, session: Session) -> Self {
        Self {
            observed: observed.into(),
            open: Some(session),
        }
    }
}

/// Checks an `error` frame's shape (PROTOCOL.md section 6) and returns its code.
fn error_code(frame: &Value) -> Result<String, String> {
    let code = frame["error_code"]
        .as_str()
        .ok_or_else(|| format!("error frame without error_code: {frame}"))?;
    if frame["message"].as_str().is_none_or(str::is_empty) {
        return Err(format!("error frame without a message: {frame}"));
    }
    if !frame["retryable"].is_boolean() {
        return Err(format!("error frame without retryable: {frame}"));
    }
    if !grammar::check_frame(frame).is_empty() {
        return Err(format!("malformed error frame: {frame}"));
    }
    if code == "RATE_LIMITED" && frame["retry_after_ms"].as_u64().is_none_or(|ms| ms == 0) {
        return Err(format!("RATE_LIMITED without retry_after_ms: {frame}"));
    }
    Ok(code.to_owned())
}

/// The next frame in the catalogue's words: an error's code, another frame's type, or
/// `close N`.
async fn reply(session: &mut Session) -> Result<(String, Value), String> {
    match session.next_frame(WAIT).await {
        Ok(frame) => {
            let value = frame.value;
            let name = match value["type"].as_str() {
                Some("error") => error_code(&value)?,
                Some(kind) => kind.to_owned(),
                None => return Err(format!("frame without type: {value}")),
            };
            Ok((name, value))
        }
        Err(ClientError::Closed { code, .. }) => Ok((
            format!("close {}", code.map_or("none".into(), |c| c.to_string())),
            Value::Null,
        )),
        Err(err) => Err(err.to_string()),
    }
}

/// Sends one frame on a fresh attacker socket and reports the reply (and the close that follows
/// it, when the case expects one).
async fn frame_probe(
    w: &World,
    message: Message,
    request_id: Option<&str>,
    expects_close: bool,
) -> Result<Outcome, String> {
    let mut session = w.attacker_session().await;
    match message {
        Message::Text(text) => session.send_text(text.as_str()).await,
        Message::Binary(bytes) => session.send_binary(bytes.to_vec()).await,
        other => panic!("not a data frame: {other:?}"),
    }
    .map_err(|e| e.to_string())?;
    let (name, frame) = reply(&mut session).await?;
    if let Some(id) = request_id
        && frame["request_id"] != id
    {
        return Err(format!("expected request_id {id}: {frame}"));
    }
    if expects_close {
        let (close, _) = reply(&mut session).await?;
        return Ok(Outcome::closed(format!("{name} + {close}")));
    }
    Ok(Outcome::open(name, session))
}

/// The socket still serves: a JSON ping gets its pong (after waiting as told if rate limited).
async fn still_serves(session: &mut Session, tag: &str) -> Result<(), String> {
    for attempt in 0..50 {
        let id = format!("alive-{tag}-{attempt}");
        session
            .send_json(&json!({"type": "ping", "id": id}))
            .await
            .map_err(|e| format!("the connection is gone: {e}"))?;
        let (frame, _) = session
            .wait_for(WAIT, |f| f["request_id"] == id.as_str())
            .await
            .map_err(|e| format!("no answer to a ping: {e}"))?;
        match frame["type"].as_str() {
            Some("pong") => return Ok(()),
            Some("error") if frame["error_code"] == "RATE_LIMITED" => {
                let ms = frame["retry_after_ms"].as_u64().unwrap_or(100);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            _ => return Err(format!("a ping got {frame}")),
        }
    }
    Err("still rate limited after 50 pings".into())
}

// ---------------------------------------------------------------------------------------------
// The catalogue.

type CaseFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome, String>> + 'a>>;
type CaseFn = for<'a> fn(&'a World) -> CaseFuture<'a>;

enum Probe {
    /// One text frame on a fresh authenticated socket.
    Text {
        text: String,
        request_id: Option<&'static str>,
    },
    /// One binary frame on a fresh authenticated socket.
    Binary(Vec<u8>),
    /// Anything else.
    Custom(CaseFn),
}

struct Case {
    name: String,
    /// The error code (or frame type, or HTTP status and code) the input must get;
    /// `CODE + close N` when the connection is then closed.
    expect: &'static str,
    probe: Probe,
}

fn text(name: &str, expect: &'static str, frame: impl Into<String>) -> Case {
    Case {
        name: name.to_owned(),
        expect,
        probe: Probe::Text {
            text: frame.into(),
            request_id: None,
        },
    }
}

fn text_with_id(name: &str, expect: &'static str, frame: Value, id: &'static str) -> Case {
    Case {
        name: name.to_owned(),
        expect,
        probe: Probe::Text {
            text: frame.to_string(),
            request_id: Some(id),
        },
    }
}

macro_rules! custom {
    ($name:expr, $expect:expr, $f:ident) => {
        Case {
            name: $name.to_owned(),
            expect: $expect,
            probe: Probe::Custom(|w| Box::pin($f(w))),
        }
    };
}

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}{}", open.repeat(depth), close.repeat(depth))
}

fn catalogue() -> Vec<Case> {
    let start =
        |payload: Value, id: &str| json!({"type": "start_agent", "id": id, "payload": payload});
    vec![
        // -- transport and JSON shape
        custom!(
            "invalid UTF-8 in a text frame",
            "INVALID_MESSAGE + close 1007",
            invalid_utf8
        ),
        Case {
            name: "binary frame".into(),
            expect: "INVALID_MESSAGE",
            probe: Probe::Binary(vec![0x00, 0x9f, 0x92, 0x96, 0xff]),
        },
        text("not JSON", "INVALID_MESSAGE", "{\"type\": \"ping\", "),
        text("empty text frame", "INVALID_MESSAGE", ""),
        text("JSON array, not an object", "INVALID_MESSAGE", "[1, 2, 3]"),
        text(
            "JSON string, not an object",
            "INVALID_MESSAGE",
            "\"start_agent\"",
        ),
        text("JSON number, not an object", "INVALID_MESSAGE", "42"),
        text("JSON null", "INVALID_MESSAGE", "null"),
        text(
            "arrays nested 10,000 deep",
            "INVALID_MESSAGE",
            nested("[", "]", 10_000),
        ),
        text(
            "objects nested 10,000 deep inside a message",
            "INVALID_MESSAGE",
            format!(
                "{{\"type\":\"ping\",\"x\":{}null{}}}",
                "{\"a\":".repeat(10_000),
                "}".repeat(10_000)
            ),
        ),
        text(
            "number beyond f64 (1e400)",
            "INVALID_MESSAGE",
            r#"{"type":"resume","id":"h1","run_id":"run_x","after_seq":1e400}"#,
        ),
        text_with_id(
            "after_seq of 2^64",
            "INVALID_MESSAGE",
            json!({"type": "resume", "id": "h2", "run_id": "run_x", "after_seq": 18446744073709551616.0}),
            "h2",
        ),
        text(
            "request id of 300 digits",
            "pong",
            format!(r#"{{"type":"ping","id":{}}}"#, "9".repeat(300)),
        ),
        text(
            "request id of 400 digits (beyond f64)",
            "INVALID_MESSAGE",
            format!(r#"{{"type":"ping","id":{}}}"#, "9".repeat(400)),
        ),
        custom!(
            "string of 10 MB",
            "PAYLOAD_TOO_LARGE + close 1009",
            ten_megabyte_string
        ),
        custom!(
            "text frame just over the 1 MiB limit",
            "PAYLOAD_TOO_LARGE + close 1009",
            frame_just_over_limit
        ),
        custom!(
            "binary frame over the limit",
            "PAYLOAD_TOO_LARGE + close 1009",
            binary_over_limit
        ),
        text_with_id(
            "missing type",
            "INVALID_MESSAGE",
            json!({"id": "m1", "payload": {}}),
            "m1",
        ),
        text_with_id(
            "unknown type",
            "UNKNOWN_MESSAGE_TYPE",
            json!({"type": "launch_rockets", "id": "u1"}),
            "u1",
        ),
        text_with_id(
            "type is a number",
            "INVALID_MESSAGE",
            json!({"type": 7, "id": "t1"}),
            "t1",
        ),
        text(
            "id is an object",
            "INVALID_MESSAGE",
            r#"{"type":"ping","id":{"a":1}}"#,
        ),
        text_with_id(
            "payload is a string",
            "INVALID_MESSAGE",
            json!({"type": "start_agent", "id": "w1", "payload": "what did we spend?"}),
            "w1",
        ),
        text_with_id(
            "user_request is a number",
            "INVALID_MESSAGE",
            start(json!({"user_request": 42}), "w2"),
            "w2",
        ),
        text_with_id(
            "timeframe of the wrong type",
            "INVALID_MESSAGE",
            start(json!({"user_request": "spend?", "timeframe": 30}), "w3"),
            "w3",
        ),
        text_with_id(
            "timeframe that is not a duration",
            "INVALID_MESSAGE",
            start(
                json!({"user_request": "spend?", "timeframe": "forever"}),
                "w4",
            ),
            "w4",
        ),
        text_with_id(
            "negative monthly_spend",
            "INVALID_MESSAGE",
            start(json!({"user_request": "spend?", "monthly_spend": -5}), "w5"),
            "w5",
        ),
        text(
            "null everywhere",
            "INVALID_MESSAGE",
            r#"{"type":null,"id":null,"payload":null,"run_id":null}"#,
        ),
        text(
            "start_agent with every field null",
            "INVALID_MESSAGE",
            r#"{"type":"start_agent","id":null,"payload":{"user_request":null,"agent_type":null,"thread_id":null}}"#,
        ),
        text_with_id(
            "cancel with run_id null",
            "INVALID_MESSAGE",
            json!({"type": "cancel", "id": "n3", "run_id": null}),
            "n3",
        ),
        text(
            "duplicate keys: the last `type` wins",
            "pong",
            r#"{"type":"start_agent","type":"ping","id":"d1"}"#,
        ),
        text(
            "duplicate keys in the payload: the last agent_type wins",
            "AGENT_NOT_FOUND",
            r#"{"type":"start_agent","id":"d2","payload":{"user_request":"spend?","agent_type":"data","agent_type":"hal9000"}}"#,
        ),
        // -- run requests
        text_with_id(
            "unknown agent",
            "AGENT_NOT_FOUND",
            start(
                json!({"user_request": "spend?", "agent_type": "nonexistent_agent"}),
                "a1",
            ),
            "a1",
        ),
        text_with_id(
            "empty user_request",
            "INVALID_MESSAGE",
            start(json!({"user_request": ""}), "e1"),
            "e1",
        ),
        text_with_id(
            "blank user_request",
            "INVALID_MESSAGE",
            start(json!({"user_request": " \n\t "}), "e2"),
            "e2",
        ),
        text_with_id(
            "user_request of 1 MB",
            "INVALID_MESSAGE",
            start(json!({"user_request": "why? ".repeat(200_000)}), "big"),
            "big",
        ),
        text_with_id(
            "thread_id of 10 KB",
            "INVALID_MESSAGE",
            start(
                json!({"user_request": "spend?", "thread_id": "t".repeat(10_000)}),
                "th1",
            ),
            "th1",
        ),
        text_with_id(
            "thread_id with control characters",
            "INVALID_MESSAGE",
            start(
                json!({"user_request": "spend?", "thread_id": "a\u{0}\u{1b}[31m"}),
                "th2",
            ),
            "th2",
        ),
        text_with_id(
            "cancel of a run that does not exist",
            "RUN_NOT_FOUND",
            json!({"type": "cancel", "id": "c1", "run_id": "run_does_not_exist"}),
            "c1",
        ),
        text_with_id(
            "resume of a run that does not exist",
            "RUN_NOT_FOUND",
            json!({"type": "resume", "id": "r1", "run_id": "run_does_not_exist", "after_seq": 0}),
            "r1",
        ),
        custom!(
            "cancel of another user's run",
            "RUN_NOT_FOUND",
            cancel_other_users_run
        ),
        custom!(
            "resume of another user's run",
            "RUN_NOT_FOUND",
            resume_other_users_run
        ),
        text_with_id(
            "resume with a negative after_seq",
            "INVALID_MESSAGE",
            json!({"type": "resume", "id": "r2", "run_id": "run_x", "after_seq": -1}),
            "r2",
        ),
        text_with_id(
            "resume with a fractional after_seq",
            "INVALID_MESSAGE",
            json!({"type": "resume", "id": "r3", "run_id": "run_x", "after_seq": 1.5}),
            "r3",
        ),
        custom!(
            "resume of an own finished run with after_seq u64::MAX",
            "nothing replayed",
            resume_with_huge_after_seq
        ),
        custom!("second run on a busy thread", "RUN_CONFLICT", busy_thread),
        custom!(
            "start and cancel racing",
            "every run ends once",
            start_and_cancel_racing
        ),
        custom!(
            "100 start_agent at once",
            "RATE_LIMITED",
            hundred_starts_at_once
        ),
        custom!("a flood of 10,000 messages", "RATE_LIMITED", flood),
        custom!(
            "one user's 3 sockets flooding together",
            "RATE_LIMITED",
            flood_across_connections
        ),
        custom!(
            "a client that stops reading mid-run",
            "disconnected, run resumed whole",
            stops_reading
        ),
        custom!(
            "start_agent before authenticating",
            "AUTH_REQUIRED",
            start_before_authenticating
        ),
        // -- credentials
        custom!("forged signature", "HTTP 401 AUTH_FAILED", forged_signature),
        custom!(
            "forged signature in an authenticate frame",
            "AUTH_FAILED",
            forged_authenticate_frame
        ),
        custom!("alg: none", "HTTP 401 AUTH_FAILED", alg_none),
        custom!(
            "HS256 token (signed with the public key) on an RS256 server",
            "HTTP 401 AUTH_FAILED",
            hs256_on_rs256_server
        ),
        custom!(
            "RS256 token on an HS256 server",
            "HTTP 401 AUTH_FAILED",
            rs256_on_hs256_server
        ),
        custom!("expired token", "HTTP 401 AUTH_FAILED", expired),
        custom!("nbf in the future", "HTTP 401 AUTH_FAILED", not_yet_valid),
        custom!("wrong iss", "HTTP 401 AUTH_FAILED", wrong_issuer),
        custom!("wrong aud", "HTTP 401 AUTH_FAILED", wrong_audience),
        custom!(
            "no iss where one is required",
            "HTTP 401 AUTH_FAILED",
            missing_issuer
        ),
        custom!("sub of 10 KB", "HTTP 401 AUTH_FAILED", huge_sub),
        custom!(
            "sub with a leading space (another user's name, trimmed)",
            "HTTP 401 AUTH_FAILED",
            padded_sub
        ),
        custom!(
            "org_id in the personal-tenant namespace (user:...)",
            "HTTP 401 AUTH_FAILED",
            personal_namespace_org
        ),
        custom!(
            "token that expires while its socket is open",
            "AUTH_EXPIRED + close 4401",
            expires_on_open_socket
        ),
        custom!(
            "same sub and thread id under another org_id",
            "run_accepted, no foreign run id",
            same_sub_other_tenant
        ),
        custom!(
            "Basic instead of Bearer",
            "HTTP 401 AUTH_FAILED",
            basic_scheme
        ),
        custom!(
            "jwt. subprotocol that is not base64url",
            "HTTP 401 AUTH_FAILED",
            bad_subprotocol
        ),
        custom!(
            "token in the WebSocket query string",
            "AUTH_REQUIRED",
            token_in_ws_query
        ),
        custom!(
            "token in an HTTP query string",
            "HTTP 401 AUTH_REQUIRED",
            token_in_http_query
        ),
        custom!(
            "page of another origin opening a socket",
            "HTTP 403 FORBIDDEN",
            foreign_origin_socket
        ),
        custom!(
            "CORS preflight from an origin not on the list",
            "HTTP 403 FORBIDDEN",
            foreign_origin_preflight
        ),
        custom!(
            "more sockets for one user than allowed",
            "HTTP 429 RATE_LIMITED",
            too_many_user_connections
        ),
        custom!(
            "more sockets than the server allows",
            "HTTP 503 UNAVAILABLE",
            too_many_connections
        ),
        // -- slow and greedy clients
        custom!(
            "unauthenticated sockets past the per-address cap",
            "HTTP 429 RATE_LIMITED",
            unauthenticated_flood
        ),
        custom!(
            "request headers sent a byte at a time, never finished",
            "connection closed",
            slow_headers
        ),
        custom!(
            "one socket following more runs than allowed",
            "RATE_LIMITED",
            too_many_followed
        ),
        // -- usage uploads
        custom!(
            "CSV with bad rows",
            "HTTP 422 INVALID_MESSAGE",
            csv_bad_rows
        ),
        custom!("CSV in UTF-16", "HTTP 422 INVALID_MESSAGE", csv_utf16),
        custom!("CSV in Latin-1", "HTTP 422 INVALID_MESSAGE", csv_latin1),
        custom!(
            "CSV body of 100 MB",
            "HTTP 413 PAYLOAD_TOO_LARGE",
            csv_100_mb
        ),
        custom!(
            "chunked body of 100 MB (no Content-Length)",
            "HTTP 413 PAYLOAD_TOO_LARGE",
            chunked_100_mb
        ),
        custom!(
            "CSV with more rows than one upload may carry",
            "HTTP 413 PAYLOAD_TOO_LARGE",
            csv_too_many_rows
        ),
        custom!(
            "formula-like cells in text columns",
            "HTTP 200 stored verbatim",
            csv_formula_text_cells
        ),
        custom!(
            "formula in a numeric column",
            "HTTP 422 INVALID_MESSAGE",
            csv_formula_number_cell
        ),
        custom!(
            "binary garbage as a usage upload",
            "HTTP 422 INVALID_MESSAGE",
            upload_garbage
        ),
        custom!("empty upload", "HTTP 400 INVALID_MESSAGE", upload_empty),
        custom!(
            "upload with a token lacking usage:write",
            "HTTP 403 FORBIDDEN",
            upload_without_scope
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The runner.

/// Bob: the second user whose concurrent run must not notice anything.
struct Bob {
    session: Session,
    count: usize,
}

impl Bob {
    async fn start_run(&mut self) -> String {
        self.count += 1;
        let id = format!("bob-{}", self.count);
        self.session
            .start_agent(
                &id,
                "data",
                "What did we spend by model and team?",
                Map::new(),
            )
            .await
            .unwrap();
        self.session
            .wait_run_accepted(&id, WAIT)
            .await
            .unwrap()
            .run_id
    }

    async fn finish_run(&mut self, run_id: &str) -> Result<(), String> {
        let run = self
            .session
            .collect_run(run_id, WAIT)
            .await
            .map_err(|e| format!("bob's run did not finish: {e}"))?;
        let violations = run.violations();
        if !violations.is_empty() {
            return Err(format!("bob's run broke the grammar: {violations:?}"));
        }
        if run.terminal_type() != Some("agent_completed") {
            return Err(format!(
                "bob's run ended with {:?}, not agent_completed",
                run.terminal_type()
            ));
        }
        Ok(())
    }
}

async fn run_case(w: &World, bob: &mut Bob, case: &Case, index: usize) -> Result<(), String> {
    let bob_run = bob.start_run().await;
    *w.bob_run.lock().unwrap() = bob_run.clone();
    let outcome = match &case.probe {
        Probe::Text { text, request_id } => {
            frame_probe(
                w,
                Message::text(text.as_str()),
                *request_id,
                case.expect.contains("close"),
            )
            .await
        }
        Probe::Binary(bytes) => {
            frame_probe(
                w,
                Message::binary(bytes.clone()),
                None,
                case.expect.contains("close"),
            )
            .await
        }
        Probe::Custom(f) => f(w).await,
    };
    let mut problems = Vec::new();
    match outcome {
        Err(err) => problems.push(err),
        Ok(outcome) => {
            if outcome.observed != case.expect {
                problems.push(format!(
                    "expected {:?}, observed {:?}",
                    case.expect, outcome.observed
                ));
            }
            if let Some(mut session) = outcome.open
                && let Err(err) = still_serves(&mut session, &index.to_string()).await
            {
                problems.push(format!("the same connection: {err}"));
            }
        }
    }
    if let Err(err) = bob.finish_run(&bob_run).await {
        problems.push(err);
    }
    let health = w.main.get("/health", &[]).await;
    if health.status != 200 || health.json()["status"] != "healthy" {
        problems.push(format!("/health: {} {}", health.status, health.text()));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_catalogue() {
    let logs = logs();
    let w = World::start().await;
    let bob_token = w.hs(&claims_for("bob", "bobco"));
    let mut bob = Bob {
        session: connect(&w.main, Credentials::Bearer(bob_token))
            .await
            .unwrap(),
        count: 0,
    };
    let cases = catalogue();
    let mut failures = Vec::new();
    let started = Instant::now();
    for (index, case) in cases.iter().enumerate() {
        let case_started = Instant::now();
        let result = run_case(&w, &mut bob, case, index).await;
        let verdict = match &result {
            Ok(()) => "ok".to_owned(),
            Err(err) => format!("FAILED: {err}"),
        };
        println!(
            "{:>3} {:<62} {:<34} {:>6} ms  {verdict}",
            index + 1,
            case.name,
            case.expect,
            case_started.elapsed().as_millis()
        );
        if let Err(err) = result {
            failures.push(format!("{}: {err}", case.name));
        }
    }
    // Nothing a case sent may have put a token or the secret into the logs.
    let text = logs.text();
    let minted = w.minted.lock().unwrap().clone();
    for token in &minted {
        if text.contains(token.as_str()) {
            failures.push("a token appears in the logs".into());
        }
        if let Some(signature) = token.rsplit('.').next()
            && signature.len() >= 16
            && text.contains(signature)
        {
            failures.push("a token's signature appears in the logs".into());
        }
    }
    if text.contains(SECRET) {
        failures.push("the JWT secret appears in the logs".into());
    }
    println!(
        "hostile input catalogue: {} inputs, {} passed, {} failed ({} tokens searched for in {} KiB of logs) in {:.1} s",
        cases.len(),
        cases.len() - failures.len().min(cases.len()),
        failures.len(),
        minted.len(),
        text.len() / 1024,
        started.elapsed().as_secs_f64()
    );
    assert!(cases.len() >= 40, "the issue asks for at least 40 inputs");
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// Raw sockets, for what the suite's client will not send.

/// Reads a raw socket up to the next text frame or the close; `close N` for the close.
async fn raw_reply(ws: &mut RawSocket) -> Result<(String, Value), String> {
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .map_err(|_| "nothing arrived".to_owned())?;
        match next {
            Some(Ok(Message::Text(text))) => {
                let value: Value =
                    serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
                let name = match value["type"].as_str() {
                    Some("error") => error_code(&value)?,
                    Some(kind) => kind.to_owned(),
                    None => return Err(format!("frame without type: {value}")),
                };
                return Ok((name, value));
            }
            Some(Ok(Message::Close(frame))) => {
                return Ok((
                    format!(
                        "close {}",
                        frame.map_or("none".into(), |f| u16::from(f.code).to_string())
                    ),
                    Value::Null,
                ));
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(format!("socket error: {err}")),
            None => return Err("the socket ended without a close frame".into()),
        }
    }
}

/// An HTTP refusal in the catalogue's words, with the body's shape checked.
fn http_refusal(status: u16, body: &Value, token: Option<&str>) -> Result<String, String> {
    let code = body["error_code"]
        .as_str()
        .ok_or_else(|| format!("HTTP {status} without a JSON error body: {body}"))?;
    let message = body["message"].as_str().unwrap_or_default();
    if message.is_empty() {
        return Err(format!("HTTP {status} without a message: {body}"));
    }
    if let Some(token) = token
        && message.contains(token)
    {
        return Err("the token was echoed back".into());
    }
    Ok(format!("HTTP {status} {code}"))
}

async fn upgrade_refusal(server: &TestServer, token: &str) -> Result<Outcome, String> {
    match connect(server, Credentials::Bearer(token.to_owned())).await {
        Ok(_) => Err("the upgrade was accepted".into()),
        Err(err @ ClientError::Http { status, .. }) => {
            let body = err.http_body_json().unwrap_or(Value::Null);
            // The same token in a subprotocol item is refused the same way.
            match connect(server, Credentials::Subprotocol(token.to_owned())).await {
                Err(ClientError::Http { status: 401, .. }) => {}
                other => return Err(format!("as a subprotocol: {:?}", other.err())),
            }
            Ok(Outcome::closed(http_refusal(status, &body, Some(token))?))
        }
        Err(err) => Err(format!("expected an HTTP refusal, got {err}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Transport cases.

async fn invalid_utf8(w: &World) -> Result<Outcome, String> {
    let (_, token) = w.attacker();
    let mut ws = raw_connect(
        &w.main.ws_url(),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .map_err(|refusal| format!("upgrade refused: {}", refusal.status))?;
    let (established, _) = raw_reply(&mut ws).await?;
    assert_eq!(established, "connection_established");
    let payload: &[u8] = b"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}";
    ws.send(Message::Frame(Frame::message(
        payload.to_vec(),
        OpCode::Data(Data::Text),
        true,
    )))
    .await
    .map_err(|e| e.to_string())?;
    let (code, _) = raw_reply(&mut ws).await?;
    let (close, _) = raw_reply(&mut ws).await?;
    Ok(Outcome::closed(format!("{code} + {close}")))
}

async fn ten_megabyte_string(w: &World) -> Result<Outcome, String> {
    let (_, token) = w.attacker();
    let ws = raw_connect(
        &w.main.ws_url(),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .map_err(|refusal| format!("upgrade refused: {}", refusal.status))?;
    let (mut sink, mut stream) = ws.split();
    let huge = format!(
        r#"{{"type":"start_agent","id":"x","payload":{{"user_request":"{}"}}}}"#,
        "x".repeat(10_000_000)
    );
    // The server refuses the frame at its header and stops reading, so the send may never
    // finish; read the answer meanwhile.
    let sender = tokio::spawn(async move {
        let _ = sink.send(Message::text(huge)).await;
        sink
    });
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Err(_) => return Err(format!("no close after {seen:?}")),
            Ok(Some(Ok(Message::Text(text)))) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                seen.push(match value["type"].as_str() {
                    Some("error") => error_code(&value)?,
                    other => other.unwrap_or("?").to_owned(),
                });
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                seen.push(format!(
                    "close {}",
                    frame.map_or("none".into(), |f| u16::from(f.code).to_string())
                ));
                break;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(err))) => return Err(format!("socket error after {seen:?}: {err}")),
            Ok(None) => return Err(format!("ended without a close after {seen:?}")),
        }
    }
    sender.abort();
    match seen.as_slice() {
        [established, code, close] if established == "connection_established" => {
            Ok(Outcome::closed(format!("{code} + {close}")))
        }
        other => Err(format!("unexpected frames: {other:?}")),
    }
}

async fn frame_just_over_limit(w: &World) -> Result<Outcome, String> {
    let frame = json!({"type": "ping", "id": "o1", "pad": "p".repeat(ONE_MIB)}).to_string();
    frame_probe(w, Message::text(frame), None, true).await
}

async fn binary_over_limit(w: &World) -> Result<Outcome, String> {
    frame_probe(w, Message::binary(vec![7u8; ONE_MIB + 1]), None, true).await
}

// ---------------------------------------------------------------------------------------------
// Run cases.

async fn cancel_other_users_run(w: &World) -> Result<Outcome, String> {
    let run_id = w.bob_run();
    let frame = json!({"type": "cancel", "id": "steal", "run_id": run_id});
    // The runner then checks that bob's run completed rather than being cancelled.
    frame_probe(w, Message::text(frame.to_string()), Some("steal"), false).await
}

async fn resume_other_users_run(w: &World) -> Result<Outcome, String> {
    let run_id = w.bob_run();
    let mut session = w.attacker_session().await;
    session
        .send_json(&json!({"type": "resume", "id": "peek", "run_id": run_id, "after_seq": 0}))
        .await
        .map_err(|e| e.to_string())?;
    let (code, frame) = reply(&mut session).await?;
    if frame["request_id"] != "peek" {
        return Err(format!("reply without the request id: {frame}"));
    }
    // Nothing of bob's run reaches the attacker, before or after a round trip.
    session
        .send_json(&json!({"type": "ping", "id": "after-peek"}))
        .await
        .map_err(|e| e.to_string())?;
    let (_, before) = session
        .wait_for(WAIT, |f| f["request_id"] == "after-peek")
        .await
        .map_err(|e| e.to_string())?;
    if let Some(leak) = before.iter().find(|f| f["run_id"] == run_id.as_str()) {
        return Err(format!("bob's event reached the attacker: {leak}"));
    }
    let (_, token) = w.attacker();
    let http = w
        .main
        .get(
            &format!("/api/runs/{run_id}/events"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    if http.status != 404 || http.json()["error_code"] != "RUN_NOT_FOUND" {
        return Err(format!(
            "HTTP read of bob's run: {} {}",
            http.status,
            http.text()
        ));
    }
    Ok(Outcome::open(code, session))
}

/// Starts a run and reads it to its terminal event.
async fn own_run(
    session: &mut Session,
    id: &str,
    thread: Option<&str>,
) -> Result<Vec<Value>, String> {
    let mut extra = Map::new();
    if let Some(thread) = thread {
        extra.insert("thread_id".into(), Value::from(thread));
    }
    session
        .start_agent(id, "data", "What did we spend last week?", extra)
        .await
        .map_err(|e| e.to_string())?;
    let accepted = session
        .wait_run_accepted(id, WAIT)
        .await
        .map_err(|e| e.to_string())?;
    let run = session
        .collect_run(&accepted.run_id, WAIT)
        .await
        .map_err(|e| e.to_string())?;
    Ok(run.events)
}

async fn resume_with_huge_after_seq(w: &World) -> Result<Outcome, String> {
    let (_, token) = w.attacker();
    let mut session = connect(&w.main, Credentials::Bearer(token.clone()))
        .await
        .map_err(|e| e.to_string())?;
    let events = own_run(&mut session, "own", None).await?;
    let run_id = events[0]["run_id"].as_str().unwrap().to_owned();
    session
        .send_json(&json!({"type": "resume", "id": "far", "run_id": run_id, "after_seq": u64::MAX}))
        .await
        .map_err(|e| e.to_string())?;
    session
        .send_json(&json!({"type": "ping", "id": "after-far"}))
        .await
        .map_err(|e| e.to_string())?;
    let (_, before) = session
        .wait_for(WAIT, |f| f["request_id"] == "after-far")
        .await
        .map_err(|e| e.to_string())?;
    if let Some(unexpected) = before.first() {
        return Err(format!("resume past the end sent {unexpected}"));
    }
    let http = w
        .main
        .get(
            &format!("/api/runs/{run_id}/events?after_seq={}", u64::MAX),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    if http.status != 200 || http.json() != json!([]) {
        return Err(format!(
            "HTTP with after_seq u64::MAX: {} {}",
            http.status,
            http.text()
        ));
    }
    Ok(Outcome::open("nothing replayed", session))
}

async fn busy_thread(w: &World) -> Result<Outcome, String> {
    let mut session = w.attacker_session().await;
    let mut extra = Map::new();
    extra.insert("thread_id".into(), Value::from("thread-busy"));
    session
        .start_agent("first", "data", "What did we spend?", extra.clone())
        .await
        .map_err(|e| e.to_string())?;
    session
        .start_agent("second", "data", "And by team?", extra)
        .await
        .map_err(|e| e.to_string())?;
    let first = session
        .wait_run_accepted("first", WAIT)
        .await
        .map_err(|e| e.to_string())?;
    let second = session.wait_run_accepted("second", WAIT).await;
    let code = match second {
        Err(ClientError::ServerError {
            error_code, frame, ..
        }) => {
            if frame["run_id"] != first.run_id.as_str() {
                return Err(format!("RUN_CONFLICT should name the running run: {frame}"));
            }
            error_code
        }
        other => return Err(format!("the second start got {other:?}")),
    };
    let run = session
        .collect_run(&first.run_id, WAIT)
        .await
        .map_err(|e| e.to_string())?;
    if !run.violations().is_empty() {
        return Err(format!("{:?}", run.violations()));
    }
    Ok(Outcome::open(code, session))
}

async fn start_and_cancel_racing(w: &World) -> Result<Outcome, String> {
    let mut session = w.attacker_session().await;
    let mut cancelled = 0;
    for i in 0..10 {
        let id = format!("race-{i}");
        session
            .start_agent(&id, "data", "What did we spend?", Map::new())
            .await
            .map_err(|e| e.to_string())?;
        let accepted = session
            .wait_run_accepted(&id, WAIT)
            .await
            .map_err(|e| e.to_string())?;
        // Cancel at once, twice, racing the run's first steps.
        for _ in 0..2 {
            session
                .send_json(&json!({"type": "cancel", "run_id": accepted.run_id}))
                .await
                .map_err(|e| e.to_string())?;
        }
        let run = session
            .collect_run(&accepted.run_id, WAIT)
            .await
            .map_err(|e| e.to_string())?;
        let violations = run.violations();
        if !violations.is_empty() {
            return Err(format!("run {i}: {violations:?}"));
        }
        match run.terminal_type() {
            Some("agent_cancelled") => cancelled += 1,
            Some("agent_completed") => {}
            other => return Err(format!("run {i} ended with {other:?}")),
        }
    }
    if cancelled == 0 {
        return Err("no run was cancelled".into());
    }
    // A cancel of a run that already ended is not an error: nothing comes back for it.
    Ok(Outcome::open("every run ends once", session))
}

async fn hundred_starts_at_once(w: &World) -> Result<Outcome, String> {
    let mut session = w.attacker_session().await;
    for i in 0..100 {
        let mut extra = Map::new();
        extra.insert("thread_id".into(), Value::from(format!("burst-{i}")));
        session
            .start_agent(&format!("s{i}"), "data", "What did we spend?", extra)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut accepted = Vec::new();
    let mut limited = 0;
    for i in 0..100 {
        match session.wait_run_accepted(&format!("s{i}"), WAIT).await {
            Ok(run) => accepted.push(run.run_id),
            Err(ClientError::ServerError {
                error_code, frame, ..
            }) if error_code == "RATE_LIMITED" => {
                error_code_checked(&frame)?;
                limited += 1;
            }
            Err(err) => return Err(format!("start s{i}: {err}")),
        }
    }
    if accepted.is_empty() {
        return Err("no run was accepted out of 100".into());
    }
    for run_id in &accepted {
        let run = session
            .collect_run(run_id, WAIT)
            .await
            .map_err(|e| e.to_string())?;
        if !run.violations().is_empty() || run.terminal_type() != Some("agent_completed") {
            return Err(format!("accepted run {run_id}: {:?}", run.violations()));
        }
    }
    let observed = if limited > 0 {
        "RATE_LIMITED"
    } else {
        "all accepted"
    };
    Ok(Outcome::open(observed, session))
}

fn error_code_checked(frame: &Value) -> Result<(), String> {
    error_code(frame).map(|_| ())
}

async fn flood(w: &World) -> Result<Outcome, String> {
    const MESSAGES: usize = 10_000;
    const CHUNK: usize = 100;
    let mut session = w.attacker_session().await;
    let started = Instant::now();
    let (mut pongs, mut limited) = (0usize, 0usize);
    for chunk in 0..MESSAGES / CHUNK {
        for i in 0..CHUNK {
            session
                .send_json(&json!({"type": "ping", "id": format!("f{}", chunk * CHUNK + i)}))
                .await
                .map_err(|e| e.to_string())?;
        }
        // Replies come in order, one per message: nothing is silently dropped.
        for i in 0..CHUNK {
            let id = format!("f{}", chunk * CHUNK + i);
            let (name, frame) = reply(&mut session).await?;
            if frame["request_id"] != id.as_str() {
                return Err(format!("expected the reply to {id}, got {frame}"));
            }
            match name.as_str() {
                "pong" => pongs += 1,
                "RATE_LIMITED" => limited += 1,
                other => return Err(format!("{id} got {other}")),
            }
        }
    }
    // However slow this machine, the bucket cannot have let more through than its burst plus
    // its rate over the time the client spent.
    let ceiling = f64::from(CONNECTION_RATE.burst)
        + f64::from(CONNECTION_RATE.per_second) * started.elapsed().as_secs_f64()
        + 1.0;
    if pongs as f64 > ceiling {
        return Err(format!(
            "{pongs} pongs passed, more than the bucket allows ({ceiling:.0})"
        ));
    }
    if pongs + limited != MESSAGES {
        return Err(format!("{pongs} pongs + {limited} refusals != {MESSAGES}"));
    }
    let observed = if limited > 0 {
        "RATE_LIMITED"
    } else {
        "no limit"
    };
    Ok(Outcome::open(observed, session))
}

async fn flood_across_connections(w: &World) -> Result<Outcome, String> {
    let (_, token) = w.attacker();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(
            connect(&w.main, Credentials::Bearer(token.clone()))
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    // Each socket stays within its own burst (40); together they exceed the user's (100).
    for (n, session) in sessions.iter_mut().enumerate() {
        for i in 0..40 {
            session
                .send_json(&json!({"type": "ping", "id": format!("u{n}-{i}")}))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let mut user_limited = 0;
    for session in &mut sessions {
        for _ in 0..40 {
            let (name, frame) = reply(session).await?;
            if name == "RATE_LIMITED"
                && frame["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("your connections together"))
            {
                user_limited += 1;
            } else if name != "pong" {
                return Err(format!("unexpected {frame}"));
            }
        }
    }
    let mut session = sessions.pop().unwrap_or_else(|| unreachable!());
    still_serves(&mut session, "user-flood").await?;
    let observed = if user_limited > 0 {
        "RATE_LIMITED"
    } else {
        "no user limit"
    };
    Ok(Outcome::open(observed, session))
}

/// A client with a tiny receive window starts a run, then floods without reading: its queue
/// fills, the server disconnects it, the run goes on, and a resume gets every event.
async fn stops_reading(w: &World) -> Result<Outcome, String> {
    let (_, token) = w.attacker();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(w.main.addr).await.unwrap();
    let mut request = w.main.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sink, mut stream) = ws.split();
    let established = stream.next().await;
    if !matches!(established, Some(Ok(Message::Text(_)))) {
        return Err(format!("no connection_established: {established:?}"));
    }
    sink.send(Message::text(
        json!({"type": "start_agent", "id": "slow", "payload": {"user_request": "What did we spend?", "agent_type": "data"}})
            .to_string(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    let run_id = loop {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                if value["type"] == "run_accepted" {
                    break value["run_id"].as_str().unwrap().to_owned();
                }
            }
            other => return Err(format!("no run_accepted: {other:?}")),
        }
    };
    // From here on nothing is read. Each ping gets an answer the server must queue.
    let flooding = tokio::spawn(async move {
        for i in 0..20_000 {
            let ping = json!({"type": "ping", "id": format!("{i:0>200}")}).to_string();
            if sink.send(Message::text(ping)).await.is_err() {
                break;
            }
        }
    });
    // The server gives up on the client after `slow_client_timeout` (1 s); wait for its log line.
    let gave_up = async {
        while !logs().text().contains("client is not reading its frames") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, gave_up)
        .await
        .map_err(|_| "the server never disconnected the client that stopped reading".to_owned())?;
    flooding.abort();
    drop(stream);
    // The run went on without its reader; a new socket resumes it from the start.
    let mut session = connect(&w.main, Credentials::Bearer(token))
        .await
        .map_err(|e| e.to_string())?;
    session
        .send_json(&json!({"type": "resume", "id": "back", "run_id": run_id, "after_seq": 0}))
        .await
        .map_err(|e| e.to_string())?;
    let run = session
        .collect_run(&run_id, WAIT)
        .await
        .map_err(|e| e.to_string())?;
    let seqs: Vec<u64> = run
        .events
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    if !run.violations().is_empty()
        || run.terminal_type() != Some("agent_completed")
        || seqs != (1..=seqs.len() as u64).collect::<Vec<_>>()
    {
        return Err(format!("resumed run: {:?} {:?}", run.violations(), seqs));
    }
    Ok(Outcome::open("disconnected, run resumed whole", session))
}

async fn start_before_authenticating(w: &World) -> Result<Outcome, String> {
    let mut session = connect(&w.main, Credentials::None)
        .await
        .map_err(|e| e.to_string())?;
    session
        .send_json(
            &json!({"type": "start_agent", "id": "early", "payload": {"user_request": "hi"}}),
        )
        .await
        .map_err(|e| e.to_string())?;
    let (code, frame) = reply(&mut session).await?;
    if frame["request_id"] != "early" {
        return Err(format!("no request id: {frame}"));
    }
    Ok(Outcome::open(code, session))
}

// ---------------------------------------------------------------------------------------------
// Credential cases.

async fn forged_signature(w: &World) -> Result<Outcome, String> {
    let claims = claims_for("mallory-forged", "acme");
    let forged = w.remember(sign_with(
        &claims,
        Algorithm::HS256,
        &EncodingKey::from_secret(b"guessed-secret-guessed-secret-guessed"),
    ));
    upgrade_refusal(&w.main, &forged).await
}

async fn forged_authenticate_frame(w: &World) -> Result<Outcome, String> {
    let forged = w.remember(sign_with(
        &claims_for("mallory-frame", "acme"),
        Algorithm::HS256,
        &EncodingKey::from_secret(b"guessed-secret-guessed-secret-guessed"),
    ));
    let mut session = connect(&w.main, Credentials::None)
        .await
        .map_err(|e| e.to_string())?;
    session
        .send_json(&json!({"type": "authenticate", "id": "auth1", "token": forged}))
        .await
        .map_err(|e| e.to_string())?;
    let (code, frame) = reply(&mut session).await?;
    if frame["message"]
        .as_str()
        .is_some_and(|m| m.contains(&forged))
    {
        return Err("the token was echoed".into());
    }
    // The socket stays unauthenticated and usable: a good token still works.
    let (_, good) = w.attacker();
    session
        .send_json(&json!({"type": "authenticate", "token": good}))
        .await
        .map_err(|e| e.to_string())?;
    let (established, _) = reply(&mut session).await?;
    if established != "connection_established" {
        return Err(format!("a good token after a bad one got {established}"));
    }
    Ok(Outcome::open(code, session))
}

async fn alg_none(w: &World) -> Result<Outcome, String> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims_for("mallory-none", "acme").to_string());
    let token = w.remember(format!("{header}.{claims}."));
    upgrade_refusal(&w.main, &token).await
}

async fn hs256_on_rs256_server(w: &World) -> Result<Outcome, String> {
    // The classic confusion: HMAC "signed" with the server's public key as the secret.
    let token = w.remember(sign_with(
        &json!({"sub": "mallory-confused", "exp": now() + 600}),
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes()),
    ));
    // A correctly signed RS256 token is accepted there, so the refusal is about the algorithm.
    let good = w.rs(&json!({"sub": "rita", "exp": now() + 600}));
    connect(&w.rsa, Credentials::Bearer(good))
        .await
        .map_err(|e| format!("a good RS256 token was refused: {e}"))?;
    upgrade_refusal(&w.rsa, &token).await
}

async fn rs256_on_hs256_server(w: &World) -> Result<Outcome, String> {
    let token = w.rs(&claims_for("mallory-rsa", "acme"));
    upgrade_refusal(&w.main, &token).await
}

async fn with_claims(w: &World, edit: impl FnOnce(&mut Value)) -> Result<Outcome, String> {
    let mut claims = claims_for("mallory-claims", "acme");
    edit(&mut claims);
    let token = w.hs(&claims);
    upgrade_refusal(&w.main, &token).await
}

async fn expired(w: &World) -> Result<Outcome, String> {
    with_claims(w, |c| c["exp"] = json!(now() - 3600)).await
}

async fn not_yet_valid(w: &World) -> Result<Outcome, String> {
    with_claims(w, |c| c["nbf"] = json!(now() + 3600)).await
}

async fn wrong_issuer(w: &World) -> Result<Outcome, String> {
    with_claims(w, |c| c["iss"] = json!("https://evil.example")).await
}

async fn wrong_audience(w: &World) -> Result<Outcome, String> {
    with_claims(w, |c| c["aud"] = json!("some-other-api")).await
}

async fn missing_issuer(w: &World) -> Result<Outcome, String> {
    with_claims(w, |c| {
        c.as_object_mut().unwrap().remove("iss");
    })
    .await
}

async fn huge_sub(w: &World) -> Result<Outcome, String> {
    with_claims(w, |c| c["sub"] = json!("s".repeat(10_000))).await
}

async fn basic_scheme(w: &World) -> Result<Outcome, String> {
    match raw_connect(
        &w.main.ws_url(),
        &[("authorization", "Basic bWFsbG9yeTpodW50ZXIy")],
    )
    .await
    {
        Ok(_) => Err("the upgrade was accepted".into()),
        Err(Refusal { status, body, .. }) => {
            Ok(Outcome::closed(http_refusal(status, &body, None)?))
        }
    }
}

async fn bad_subprotocol(w: &World) -> Result<Outcome, String> {
    match raw_connect(
        &w.main.ws_url(),
        &[(
            "sec-websocket-protocol",
            "agentwire.v1, jwt.***not-base64***",
        )],
    )
    .await
    {
        Ok(_) => Err("the upgrade was accepted".into()),
        Err(Refusal { status, body, .. }) => {
            Ok(Outcome::closed(http_refusal(status, &body, None)?))
        }
    }
}

async fn token_in_ws_query(w: &World) -> Result<Outcome, String> {
    let (_, token) = w.attacker();
    let url = format!("{}?token={token}&access_token={token}", w.main.ws_url());
    let mut session = Session::connect(&options(url, Credentials::None))
        .await
        .map_err(|e| e.to_string())?;
    session
        .send_json(&json!({"type": "resume", "id": "q1", "run_id": "run_x"}))
        .await
        .map_err(|e| e.to_string())?;
    let (code, frame) = reply(&mut session).await?;
    if !frame["message"]
        .as_str()
        .is_some_and(|m| m.contains("query string"))
    {
        return Err(format!("the refusal does not say why: {frame}"));
    }
    Ok(Outcome::open(code, session))
}

async fn token_in_http_query(w: &World) -> Result<Outcome, String> {
    let (_, token) = w.attacker();
    let response = w
        .main
        .get(
            &format!("/api/runs/run_x/events?access_token={token}&token={token}"),
            &[],
        )
        .await;
    Ok(Outcome::closed(http_refusal(
        response.status,
        &response.json(),
        Some(&token),
    )?))
}

async fn foreign_origin_socket(w: &World) -> Result<Outcome, String> {
    let (_, token) = w.attacker();
    match raw_connect(
        &w.main.ws_url(),
        &[
            ("origin", "https://evil.example"),
            ("authorization", &format!("Bearer {token}")),
        ],
    )
    .await
    {
        Ok(_) => Err("a page of another origin opened a socket".into()),
        Err(Refusal { status, body, .. }) => {
            Ok(Outcome::closed(http_refusal(status, &body, Some(&token))?))
        }
    }
}

async fn foreign_origin_preflight(w: &World) -> Result<Outcome, String> {
    let response = w
        .main
        .request(
            "OPTIONS",
            "/api/usage",
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization"),
            ],
            b"",
        )
        .await;
    if response.header("access-control-allow-origin").is_some() {
        return Err("a CORS grant for an origin not on the list".into());
    }
    if response.header("x-content-type-options") != Some("nosniff") {
        return Err("no security headers on the refusal".into());
    }
    Ok(Outcome::closed(http_refusal(
        response.status,
        &response.json(),
        None,
    )?))
}

async fn too_many_user_connections(w: &World) -> Result<Outcome, String> {
    let (_, token) = w.attacker();
    let limit = w.main.state.config.max_connections_per_user;
    let mut open = Vec::new();
    for _ in 0..limit {
        open.push(
            connect(&w.main, Credentials::Bearer(token.clone()))
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let observed = match connect(&w.main, Credentials::Bearer(token.clone())).await {
        Err(err @ ClientError::Http { .. }) => {
            let ClientError::Http { status, .. } = &err else {
                unreachable!()
            };
            let body = err.http_body_json().unwrap_or(Value::Null);
            if body["retry_after_ms"].as_u64().is_none() {
                return Err(format!("no retry_after_ms: {body}"));
            }
            http_refusal(*status, &body, Some(&token))?
        }
        other => return Err(format!("connection {} got {:?}", limit + 1, other.err())),
    };
    // The same user authenticating with a first frame is refused the same way, on the socket.
    match connect(&w.main, Credentials::FirstFrame(token.clone())).await {
        Err(ClientError::ServerError { error_code, .. }) if error_code == "RATE_LIMITED" => {}
        other => return Err(format!("first-frame authentication got {:?}", other.err())),
    }
    // Closing one lets the user in again.
    open.pop()
        .unwrap_or_else(|| unreachable!())
        .close()
        .await
        .map_err(|e| e.to_string())?;
    let again = retry_connect(&w.main, &token).await?;
    drop(open);
    Ok(Outcome::open(observed, again))
}

/// Connects, retrying while the server has not yet seen a just-closed socket go.
async fn retry_connect(server: &TestServer, token: &str) -> Result<Session, String> {
    let mut last = String::new();
    for _ in 0..100 {
        match connect(server, Credentials::Bearer(token.to_owned())).await {
            Ok(session) => return Ok(session),
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("could not connect again: {last}"))
}

async fn too_many_connections(w: &World) -> Result<Outcome, String> {
    let mut open = Vec::new();
    let refusal = loop {
        if open.len() > MAX_CONNECTIONS {
            return Err(format!("{} sockets open past the cap", open.len()));
        }
        let (_, token) = w.attacker();
        match connect(&w.main, Credentials::Bearer(token)).await {
            Ok(session) => open.push(session),
            Err(err @ ClientError::Http { .. }) => break err,
            Err(err) => return Err(err.to_string()),
        }
    };
    let ClientError::Http { status, .. } = &refusal else {
        unreachable!()
    };
    let body = refusal.http_body_json().unwrap_or(Value::Null);
    if body["retry_after_ms"].as_u64().is_none() {
        return Err(format!("no retry_after_ms: {body}"));
    }
    let observed = http_refusal(*status, &body, None)?;
    // HTTP still answers while the socket cap is reached (the runner checks /health too).
    drop(open);
    let (_, token) = w.attacker();
    let again = retry_connect(&w.main, &token).await?;
    Ok(Outcome::open(observed, again))
}

// ---------------------------------------------------------------------------------------------
// Identity cases (issue 15).

async fn padded_sub(w: &World) -> Result<Outcome, String> {
    with_claims(w, |c| c["sub"] = json!(" mallory-claims")).await
}

async fn personal_namespace_org(w: &World) -> Result<Outcome, String> {
    with_claims(w, |c| c["org_id"] = json!("user:bob")).await
}

async fn expires_on_open_socket(w: &World) -> Result<Outcome, String> {
    // Accepted within the 30 s leeway at the upgrade, then due 5 s later on the open socket.
    let (user, _) = w.attacker();
    let mut claims = claims_for(&user, "acme");
    claims["exp"] = json!(now() - 25);
    let token = w.hs(&claims);
    let mut session = connect(&w.main, Credentials::Bearer(token))
        .await
        .map_err(|e| e.to_string())?;
    let (name, _) = reply(&mut session).await?;
    let (close, _) = reply(&mut session).await?;
    Ok(Outcome::closed(format!("{name} + {close}")))
}

async fn same_sub_other_tenant(w: &World) -> Result<Outcome, String> {
    let (user, acme_token) = w.attacker();
    let bobco_token = w.hs(&claims_for(&user, "bobco"));
    let mut acme = connect(&w.main, Credentials::Bearer(acme_token))
        .await
        .map_err(|e| e.to_string())?;
    let mut bobco = connect(&w.main, Credentials::Bearer(bobco_token))
        .await
        .map_err(|e| e.to_string())?;
    let mut extra = Map::new();
    extra.insert("thread_id".into(), json!("the-same-thread"));
    acme.start_agent("t1", "data", "What did we spend?", extra.clone())
        .await
        .map_err(|e| e.to_string())?;
    let acme_run = acme
        .wait_run_accepted("t1", WAIT)
        .await
        .map_err(|e| e.to_string())?
        .run_id;
    bobco
        .start_agent("t2", "data", "What did we spend?", extra)
        .await
        .map_err(|e| e.to_string())?;
    let bobco_run = match bobco.wait_run_accepted("t2", WAIT).await {
        Ok(accepted) => accepted.run_id,
        Err(ClientError::ServerError {
            error_code, frame, ..
        }) => {
            let leaked = frame.to_string().contains(&acme_run);
            return Ok(Outcome::closed(format!(
                "{error_code}{}",
                if leaked {
                    " naming the other tenant's run"
                } else {
                    ""
                }
            )));
        }
        Err(err) => return Err(err.to_string()),
    };
    for (session, run_id) in [(&mut acme, &acme_run), (&mut bobco, &bobco_run)] {
        session
            .collect_run(run_id, WAIT)
            .await
            .map_err(|e| e.to_string())?;
    }
    let leaked = bobco
        .take_backlog()
        .iter()
        .any(|frame| frame.value.to_string().contains(&acme_run));
    let observed = if leaked {
        "run_accepted, acme's run id leaked"
    } else {
        "run_accepted, no foreign run id"
    };
    Ok(Outcome::open(observed, bobco))
}

// ---------------------------------------------------------------------------------------------
// Slow and greedy clients (issue 15).

async fn unauthenticated_flood(w: &World) -> Result<Outcome, String> {
    let mut open = Vec::new();
    let refusal = loop {
        if open.len() > MAX_UNAUTHENTICATED_PER_IP {
            return Err(format!(
                "{} unauthenticated sockets open past the cap",
                open.len()
            ));
        }
        match connect(&w.main, Credentials::None).await {
            Ok(session) => open.push(session),
            Err(err @ ClientError::Http { .. }) => break err,
            Err(err) => return Err(err.to_string()),
        }
    };
    let ClientError::Http { status, .. } = &refusal else {
        unreachable!()
    };
    let body = refusal.http_body_json().unwrap_or(Value::Null);
    if body["retry_after_ms"].as_u64().is_none() {
        return Err(format!("no retry_after_ms: {body}"));
    }
    Ok(Outcome::closed(http_refusal(*status, &body, None)?))
}

async fn slow_headers(w: &World) -> Result<Outcome, String> {
    let mut stream = TcpStream::connect(w.main.addr)
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + WAIT;
    let mut buffer = [0u8; 1024];
    while Instant::now() < deadline {
        if stream.write_all(b"a").await.is_err() {
            return Ok(Outcome::closed("connection closed"));
        }
        match tokio::time::timeout(Duration::from_millis(250), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return Ok(Outcome::closed("connection closed")),
            Ok(Ok(_)) => return Ok(Outcome::closed("answered an unfinished request")),
            Err(_) => {}
        }
    }
    Ok(Outcome::closed(format!(
        "still open after {WAIT:?} (header timeout {HEADER_TIMEOUT:?})"
    )))
}

async fn too_many_followed(w: &World) -> Result<Outcome, String> {
    let mut session = w.attacker_session().await;
    let question = "What did we spend?";
    // A finished run to resume later.
    session
        .start_agent("done", "data", question, Map::new())
        .await
        .map_err(|e| e.to_string())?;
    let finished = session
        .wait_run_accepted("done", WAIT)
        .await
        .map_err(|e| e.to_string())?
        .run_id;
    session
        .collect_run(&finished, WAIT)
        .await
        .map_err(|e| e.to_string())?;
    // As many runs going as the socket may follow...
    let mut going = Vec::new();
    for i in 0..MAX_RUNS_PER_USER {
        let id = format!("f{i}");
        session
            .start_agent(&id, "data", question, Map::new())
            .await
            .map_err(|e| e.to_string())?;
        going.push(
            session
                .wait_run_accepted(&id, WAIT)
                .await
                .map_err(|e| e.to_string())?
                .run_id,
        );
    }
    // ...and one more to follow.
    session
        .send_json(&json!({"type": "resume", "id": "one-more", "run_id": finished, "after_seq": 0}))
        .await
        .map_err(|e| e.to_string())?;
    let frame = session
        .take_matching(WAIT, |f| f["request_id"] == "one-more")
        .await
        .map_err(|e| e.to_string())?
        .value;
    let observed = match frame["type"].as_str() {
        Some("error") => error_code(&frame)?,
        _ => format!("{frame}"),
    };
    for run_id in &going {
        session
            .collect_run(run_id, WAIT)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(Outcome::open(observed, session))
}

// ---------------------------------------------------------------------------------------------
// Upload cases.

/// A fresh tenant with an uploader token; returns (tenant, `Bearer ...`).
fn uploader(w: &World) -> (String, String) {
    let n = w.next_user.fetch_add(1, Ordering::Relaxed);
    let tenant = format!("upload-{n:03}");
    let token = w.hs(&claims_for(&format!("uploader-{n:03}"), &tenant));
    (tenant, format!("Bearer {token}"))
}

async fn upload(w: &World, body: &[u8], content_type: &str) -> (String, HttpResponse) {
    let (tenant, auth) = uploader(w);
    let response = w
        .main
        .post(
            "/api/usage",
            &[("authorization", &auth), ("content-type", content_type)],
            body,
        )
        .await;
    (tenant, response)
}

/// The refusal in the catalogue's words, after checking that nothing was stored.
async fn refused_upload(
    w: &World,
    tenant: &str,
    response: &HttpResponse,
) -> Result<Outcome, String> {
    let stored = w
        .main
        .store
        .usage_count(tenant)
        .await
        .map_err(|e| e.to_string())?;
    if stored != 0 {
        return Err(format!(
            "{stored} records were stored from a refused upload"
        ));
    }
    Ok(Outcome::closed(http_refusal(
        response.status,
        &response.json(),
        None,
    )?))
}

async fn csv_bad_rows(w: &World) -> Result<Outcome, String> {
    let csv = "timestamp,model,input_tokens,output_tokens\n\
               2026-11-02T10:00:00Z,gpt-4o,1000,50\n\
               yesterday,gpt-4o,1000,50\n\
               2026-11-02T12:00:00Z,gpt-4o,-5,50\n\
               2026-11-02T13:00:00Z,,100,50\n\
               2026-11-02T14:00:00Z,gpt-4o,1000\n";
    let (tenant, response) = upload(w, csv.as_bytes(), "text/csv").await;
    let lines: Vec<u64> = response.json()["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["line"].as_u64()).collect())
        .unwrap_or_default();
    if lines.len() < 3 || lines.iter().any(|l| *l < 3) {
        return Err(format!(
            "row errors should name lines 3 to 6: {}",
            response.text()
        ));
    }
    refused_upload(w, &tenant, &response).await
}

async fn csv_utf16(w: &World) -> Result<Outcome, String> {
    let text = "timestamp,model,input_tokens,output_tokens\n2026-11-02T10:00:00Z,gpt-4o,1000,50\n";
    let mut body = vec![0xff, 0xfe];
    for unit in text.encode_utf16() {
        body.extend_from_slice(&unit.to_le_bytes());
    }
    let (tenant, response) = upload(w, &body, "text/csv").await;
    refused_upload(w, &tenant, &response).await
}

async fn csv_latin1(w: &World) -> Result<Outcome, String> {
    let mut body = b"timestamp,model,input_tokens,output_tokens,team\n\
                     2026-11-02T10:00:00Z,gpt-4o,1000,50,search\n\
                     2026-11-02T11:00:00Z,gpt-4o,1000,50,Z"
        .to_vec();
    body.extend_from_slice(&[0xfc]); // "ü" in Latin-1
    body.extend_from_slice(b"rich\n");
    let (tenant, response) = upload(w, &body, "text/csv").await;
    if response.json()["errors"][0]["line"] != 3 {
        return Err(format!(
            "the refusal should name line 3: {}",
            response.text()
        ));
    }
    refused_upload(w, &tenant, &response).await
}

/// Posts `total` bytes of CSV without waiting to be asked: with `Content-Length`, or chunked.
/// Reads the answer while still writing, as a client that ignores `413` would.
async fn post_huge(w: &World, auth: &str, total: usize, chunked: bool) -> HttpResponse {
    let mut stream = TcpStream::connect(w.main.addr).await.unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {total}")
    };
    let head = format!(
        "POST /api/usage HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nContent-Type: text/csv\r\n{framing}\r\nConnection: close\r\n\r\n",
        w.main.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let row = b"2026-11-02T10:00:00Z,gpt-4o,1000,50\n".repeat(1800);
        let mut sent = 0;
        while sent < total {
            let piece = &row[..row.len().min(total - sent)];
            let result = if chunked {
                let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
                chunk.extend_from_slice(piece);
                chunk.extend_from_slice(b"\r\n");
                write.write_all(&chunk).await
            } else {
                write.write_all(piece).await
            };
            if result.is_err() {
                return sent;
            }
            sent += piece.len();
        }
        if chunked {
            let _ = write.write_all(b"0\r\n\r\n").await;
        }
        sent
    });
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WAIT, read.read_to_end(&mut raw)).await;
    writer.abort();
    parse_response(&raw).unwrap_or_else(|err| panic!("no HTTP answer: {err}"))
}

async fn csv_100_mb(w: &World) -> Result<Outcome, String> {
    let (tenant, auth) = uploader(w);
    let response = post_huge(w, &auth, 100_000_000, false).await;
    refused_upload(w, &tenant, &response).await
}

async fn chunked_100_mb(w: &World) -> Result<Outcome, String> {
    let (tenant, auth) = uploader(w);
    let response = post_huge(w, &auth, 100_000_000, true).await;
    refused_upload(w, &tenant, &response).await
}

async fn csv_too_many_rows(w: &World) -> Result<Outcome, String> {
    let mut csv = String::from("timestamp,model,input_tokens,output_tokens\n");
    for i in 0..=MAX_INGEST_ROWS {
        csv.push_str(&format!(
            "2026-11-02T10:{:02}:00Z,gpt-4o,{},50\n",
            i % 60,
            100 + i
        ));
    }
    let (tenant, response) = upload(w, csv.as_bytes(), "text/csv").await;
    refused_upload(w, &tenant, &response).await
}

async fn csv_formula_text_cells(w: &World) -> Result<Outcome, String> {
    let cells = [
        "=HYPERLINK(\"http://evil.example\",\"click\")",
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A9)",
    ];
    let mut csv = String::from("timestamp,model,input_tokens,output_tokens,team,project\n");
    for (i, cell) in cells.iter().enumerate() {
        let quoted = format!("\"{}\"", cell.replace('"', "\"\""));
        csv.push_str(&format!(
            "2026-11-02T1{i}:00:00Z,gpt-4o,1000,50,{quoted},p\n"
        ));
    }
    let (tenant, response) = upload(w, csv.as_bytes(), "text/csv").await;
    if response.status != 200 {
        return Err(format!("{} {}", response.status, response.text()));
    }
    // Data, not formulas: stored exactly as sent, nothing evaluated or rewritten.
    let stored = w
        .main
        .store
        .load_usage(&tenant)
        .await
        .map_err(|e| e.to_string())?;
    let teams: Vec<String> = stored.iter().filter_map(|r| r.team.clone()).collect();
    if teams != cells {
        return Err(format!("stored {teams:?}, sent {cells:?}"));
    }
    Ok(Outcome::closed("HTTP 200 stored verbatim"))
}

async fn csv_formula_number_cell(w: &World) -> Result<Outcome, String> {
    let csv = "timestamp,model,input_tokens,output_tokens\n\
               2026-11-02T10:00:00Z,gpt-4o,=1000+1,50\n";
    let (tenant, response) = upload(w, csv.as_bytes(), "text/csv").await;
    refused_upload(w, &tenant, &response).await
}

async fn upload_garbage(w: &World) -> Result<Outcome, String> {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (tenant, response) = upload(w, &garbage, "application/octet-stream").await;
    refused_upload(w, &tenant, &response).await
}

async fn upload_empty(w: &World) -> Result<Outcome, String> {
    let (tenant, response) = upload(w, b"", "text/csv").await;
    refused_upload(w, &tenant, &response).await
}

async fn upload_without_scope(w: &World) -> Result<Outcome, String> {
    let mut claims = claims_for("reader", "acme");
    claims["scope"] = json!("runs:read");
    let token = w.hs(&claims);
    let before = w
        .main
        .store
        .usage_count("acme")
        .await
        .map_err(|e| e.to_string())?;
    let response = w
        .main
        .post(
            "/api/usage",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("content-type", "text/csv"),
            ],
            usage_csv(1).as_bytes(),
        )
        .await;
    let after = w
        .main
        .store
        .usage_count("acme")
        .await
        .map_err(|e| e.to_string())?;
    if before != after {
        return Err("records were stored without the scope".into());
    }
    Ok(Outcome::closed(http_refusal(
        response.status,
        &response.json(),
        Some(&token),
    )?))
}
