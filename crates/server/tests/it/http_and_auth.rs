//! The server's HTTP endpoints, authentication in all its forms, and the socket rules that need no
//! run: a real server on 127.0.0.1:0 over SQLite, real JWTs, the suite's own WebSocket client.

use agentwire_check::client::{ClientError, ConnectOptions, Credentials, Session};
use agentwire_testkit::ws::{self, connect_options};
use agentwire_testkit::{
    TestServer, alg_none_token, expired_token, forged_token, token, usage_writer_token,
};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn options(server: &TestServer, credentials: Credentials) -> ConnectOptions {
    connect_options(server.ws_url(), credentials, WAIT)
}

async fn connect(server: &TestServer, credentials: Credentials) -> Session {
    Session::connect(&options(server, credentials))
        .await
        .unwrap()
}

async fn next(session: &mut Session) -> Value {
    session.next_frame(WAIT).await.unwrap().value
}

/// Asserts a frame is an `error` with this code (and request id, when given).
fn assert_error(frame: &Value, code: &str, request_id: Option<&str>) {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["error_code"], code, "{frame}");
    assert!(
        frame["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{frame}"
    );
    assert!(
        frame["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{frame}"
    );
    if let Some(id) = request_id {
        assert_eq!(frame["request_id"], id, "{frame}");
    }
}

async fn assert_closed_with(session: &mut Session, expected: u16) {
    match session.next_frame(WAIT).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, Some(expected)),
        other => panic!("expected close {expected}, got {other:?}"),
    }
}

async fn ping_works(session: &mut Session, id: &str) {
    session
        .send_json(&json!({"type": "ping", "id": id}))
        .await
        .unwrap();
    let pong = next(session).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    assert_eq!(pong["request_id"], id);
}

// ---- HTTP ----

#[tokio::test]
async fn health_has_the_contract_shape() {
    let server = TestServer::start().await;
    for path in ["/health", "/api/health"] {
        let response = server.get(path, &[]).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let body = response.json();
        assert_eq!(body["status"], "healthy");
        assert_eq!(body["service"], "agentwire");
        assert_eq!(body["version"], agentwire_server::VERSION);
        assert!(body["uptime_s"].is_u64(), "{body}");
        assert_eq!(body["checks"], json!({"database": "ok"}));
    }
}

#[tokio::test]
async fn liveness_and_readiness() {
    let server = TestServer::start().await;
    let live = server.get("/health/live", &[]).await;
    assert_eq!(live.status, 200);
    let ready = server.get("/health/ready", &[]).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["status"], "ready");
}

#[tokio::test]
async fn agents_lists_six_agents_with_aliases_and_tools() {
    let server = TestServer::start().await;
    let response = server.get("/api/agents", &[]).await;
    assert_eq!(response.status, 200);
    let body = response.json();
    let agents = body["agents"].as_array().unwrap();
    let names: Vec<&str> = agents.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "supervisor",
            "triage",
            "data",
            "optimization",
            "actions",
            "reporting"
        ]
    );
    let data = &agents[2];
    assert_eq!(data["aliases"], json!(["unified_data_agent", "data_agent"]));
    assert_eq!(
        data["tools"],
        json!([
            "run_query",
            "usage_summary",
            "query_usage",
            "detect_anomalies",
            "forecast_capacity",
            "project_growth"
        ])
    );
    assert_eq!(agents[0]["aliases"], json!(["supervisor_agent"]));
    assert_eq!(agents[0]["tools"], json!([]));
    for agent in agents {
        assert!(agent["description"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

#[tokio::test]
async fn metrics_exposes_every_metric_name() {
    let server = TestServer::start().await;
    let response = server.get("/metrics", &[]).await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("text/plain"))
    );
    let text = response.text();
    for name in [
        "agentwire_connections_active",
        "agentwire_connections_total",
        "agentwire_runs_total{outcome=\"completed\"}",
        "agentwire_runs_total{outcome=\"failed\"}",
        "agentwire_runs_total{outcome=\"cancelled\"}",
        "agentwire_runs_active",
        "agentwire_events_sent_total",
        "agentwire_ws_errors_total{code=\"AUTH_REQUIRED\"}",
        "agentwire_time_to_first_event_seconds_bucket{le=\"0.001\"}",
        "agentwire_time_to_first_event_seconds_bucket{le=\"10\"}",
        "agentwire_time_to_first_event_seconds_bucket{le=\"+Inf\"}",
        "agentwire_time_to_first_event_seconds_sum",
        "agentwire_time_to_first_event_seconds_count",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
}

#[tokio::test]
async fn api_index_unknown_paths_and_home_page() {
    let server = TestServer::start().await;
    let index = server.get("/api", &[]).await;
    assert_eq!(index.status, 200);
    let body = index.json();
    assert_eq!(body["name"], "agentwire");
    assert_eq!(body["protocol"], "agentwire.v1");
    assert!(body["endpoints"].as_array().unwrap().len() >= 8);

    let missing = server.get("/no/such/thing?token=secret", &[]).await;
    assert_eq!(missing.status, 404);
    let body = missing.json();
    assert_eq!(body["error_code"], "NOT_FOUND");
    assert!(!body["message"].as_str().unwrap().contains("secret"));

    let wrong_method = server.post("/health", &[], b"").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.json()["error_code"], "METHOD_NOT_ALLOWED");

    let home = server.get("/", &[]).await;
    assert_eq!(home.status, 200);
    assert!(home.text().contains("/api"));

    // A plain GET of /ws (no upgrade) gets a JSON error, not a crash.
    let plain = server.get("/ws", &[]).await;
    assert!(plain.status >= 400, "{}", plain.status);
    assert_eq!(plain.json()["error_code"], "INVALID_MESSAGE");
}

#[tokio::test]
async fn run_events_needs_a_token_and_hides_other_runs() {
    let server = TestServer::start().await;
    let response = server.get("/api/runs/run_nope/events", &[]).await;
    assert_eq!(response.status, 401);
    assert!(response.header("www-authenticate").is_some());

    let bearer = format!("Bearer {}", token("alice", None));
    let response = server
        .get(
            "/api/runs/run_nope/events?after_seq=0",
            &[("Authorization", &bearer)],
        )
        .await;
    assert_eq!(response.status, 404, "{}", response.text());
    assert_eq!(response.json()["error_code"], "RUN_NOT_FOUND");

    let response = server
        .get(
            "/api/runs/run_nope/events?after_seq=-1",
            &[("Authorization", &bearer)],
        )
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error_code"], "INVALID_MESSAGE");
}

// ---- usage ingest ----

const GOOD_CSV: &str = "timestamp,model,input_tokens,output_tokens,team\n\
    2026-11-20T10:00:00Z,gpt-4o,1000,200,search\n\
    2026-11-20T11:00:00Z,gpt-4o-mini,500,50,search\n\
    2026-11-21T09:30:00Z,claude-sonnet-4,800,120,support\n";

#[tokio::test]
async fn usage_ingest_needs_a_token_with_the_scope() {
    let server = TestServer::start().await;
    let response = server
        .post(
            "/api/usage",
            &[("Content-Type", "text/csv")],
            GOOD_CSV.as_bytes(),
        )
        .await;
    assert_eq!(response.status, 401, "{}", response.text());

    let bad = format!("Bearer {}", forged_token("alice"));
    let response = server
        .post(
            "/api/usage",
            &[("Authorization", &bad)],
            GOOD_CSV.as_bytes(),
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json()["error_code"], "AUTH_FAILED");

    let no_scope = format!("Bearer {}", token("alice", Some("runs:read")));
    let response = server
        .post(
            "/api/usage",
            &[("Authorization", &no_scope), ("Content-Type", "text/csv")],
            GOOD_CSV.as_bytes(),
        )
        .await;
    assert_eq!(response.status, 403, "{}", response.text());
    let body = response.json();
    assert_eq!(body["error_code"], "FORBIDDEN");
    assert!(body["message"].as_str().unwrap().contains("usage:write"));
    assert_eq!(server.store.usage_count("user:alice").await.unwrap(), 0);
}

#[tokio::test]
async fn usage_ingest_is_all_or_nothing() {
    let server = TestServer::start().await;
    let auth = format!("Bearer {}", token("alice", Some("usage:write")));
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/csv"),
    ];

    // Line 4 (the header is line 1) has a bad token count.
    let bad_csv = "timestamp,model,input_tokens,output_tokens\n\
        2026-11-20T10:00:00Z,gpt-4o,1000,200\n\
        2026-11-20T11:00:00Z,gpt-4o,1000,200\n\
        2026-11-20T12:00:00Z,gpt-4o,lots,200\n\
        2026-11-20T13:00:00Z,gpt-4o,1000,200\n";
    let response = server
        .post("/api/usage", &headers, bad_csv.as_bytes())
        .await;
    assert_eq!(response.status, 422, "{}", response.text());
    let body = response.json();
    assert_eq!(body["error_code"], "INVALID_MESSAGE");
    assert_eq!(body["message"], "1 rows have errors; nothing was imported");
    assert_eq!(body["rows_read"], 4);
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["line"], 4);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("input_tokens")
    );
    assert_eq!(server.store.usage_count("user:alice").await.unwrap(), 0);

    let response = server
        .post("/api/usage", &headers, GOOD_CSV.as_bytes())
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({"tenant_id": "user:alice", "imported": 3, "rows_read": 3})
    );
    assert_eq!(server.store.usage_count("user:alice").await.unwrap(), 3);
}

/// The head of a `POST /api/usage` of `GOOD_CSV`, sent by hand so the body can be held back.
fn upload_head(addr: std::net::SocketAddr, auth: &str) -> String {
    format!(
        "POST /api/usage HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: {auth}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
        GOOD_CSV.len()
    )
}

#[tokio::test]
async fn usage_uploads_past_the_cap_are_refused_with_retry_after() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::builder()
        .configure(|server, _| server.max_concurrent_uploads = 2)
        .start()
        .await;
    let auth = format!("Bearer {}", token("alice", Some("usage:write")));
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/csv"),
    ];

    // Two uploads whose bodies are still on their way hold both slots.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(upload_head(server.addr, &auth).as_bytes())
            .await
            .unwrap();
        stream.write_all(&GOOD_CSV.as_bytes()[..10]).await.unwrap();
        slow.push(stream);
    }
    // The deadline only keeps a broken server from hanging the test; nothing is measured.
    tokio::time::timeout(Duration::from_secs(30), async {
        while server.state.uploads.in_use() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the two slow uploads never took their slots");

    let refused = server
        .post("/api/usage", &headers, GOOD_CSV.as_bytes())
        .await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("5"));
    let body = refused.json();
    assert_eq!(body["error_code"], "UNAVAILABLE");
    assert_eq!(body["retry_after_ms"], 5000);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("2 usage uploads")
    );
    let metrics = server.get("/metrics", &[]).await.text();
    for line in [
        "agentwire_usage_uploads_active 2",
        "agentwire_usage_uploads_max 2",
        "agentwire_usage_uploads_refused_total 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert_eq!(server.store.usage_count("user:alice").await.unwrap(), 0);

    // A finished upload gives its slot back: the next one is taken.
    let mut first = slow.remove(0);
    first.write_all(&GOOD_CSV.as_bytes()[10..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), first.read_to_end(&mut answer))
        .await
        .expect("the first upload got no answer")
        .unwrap();
    let answer = agentwire_testkit::http::parse_response(&answer).unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let accepted = server
        .post("/api/usage", &headers, GOOD_CSV.as_bytes())
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    assert_eq!(server.store.usage_count("user:alice").await.unwrap(), 6);
    drop(slow);
}

/// Issue 15: a body trickled in (each byte inside the idle timeout) must not hold an upload slot
/// for ever: past `http_body_timeout` the upload gets 408 `TIMEOUT` and its slot is free again.
#[tokio::test]
async fn an_upload_body_that_does_not_arrive_in_time_is_refused_and_frees_its_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::builder()
        .configure(|server, _| {
            server.max_concurrent_uploads = 1;
            server.http_body_timeout = Duration::from_secs(1);
        })
        .start()
        .await;
    let auth = format!("Bearer {}", token("alice", Some("usage:write")));
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(upload_head(server.addr, &auth).as_bytes())
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 300 ms: never idle long enough for the idle timeout, never done.
    let trickle = tokio::spawn(async move {
        for byte in GOOD_CSV.as_bytes()[..GOOD_CSV.len() - 1].iter() {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        writer
    });
    let mut answer = Vec::new();
    // The deadline only keeps a broken server from hanging the test; nothing is measured.
    tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut answer))
        .await
        .expect("the trickled upload got no answer")
        .ok();
    trickle.abort();
    let answer = agentwire_testkit::http::parse_response(&answer).unwrap();
    assert_eq!(answer.status, 408, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["error_code"], "TIMEOUT");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("--http-body-timeout-s"),
        "{body}"
    );
    assert_eq!(server.store.usage_count("user:alice").await.unwrap(), 0);

    // The slot is free: the next upload is taken.
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "text/csv"),
    ];
    let accepted = server
        .post("/api/usage", &headers, GOOD_CSV.as_bytes())
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    assert_eq!(server.store.usage_count("user:alice").await.unwrap(), 3);
}

#[tokio::test]
async fn usage_ingest_reads_json_lines_into_the_org_tenant() {
    let server = TestServer::start().await;
    let token = usage_writer_token("bob", "acme");
    let auth = format!("Bearer {token}");
    let body = "{\"timestamp\":\"2026-11-20T10:00:00Z\",\"model\":\"gpt-4o\",\"input_tokens\":10,\"output_tokens\":2}\n\
                {\"timestamp\":\"2026-11-20T11:00:00Z\",\"model\":\"gpt-4o\",\"input_tokens\":20,\"output_tokens\":4}\n";
    // No Content-Type: detected.
    let response = server
        .post("/api/usage", &[("Authorization", &auth)], body.as_bytes())
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["tenant_id"], "acme");
    assert_eq!(server.store.usage_count("acme").await.unwrap(), 2);
    assert_eq!(server.store.usage_count("bob").await.unwrap(), 0);
}

#[tokio::test]
async fn usage_ingest_refuses_bodies_over_the_limit() {
    let server = TestServer::builder().max_body_bytes(1024).start().await;
    let auth = format!("Bearer {}", token("alice", Some("usage:write")));
    let big = GOOD_CSV.repeat(40);
    let response = server
        .post("/api/usage", &[("Authorization", &auth)], big.as_bytes())
        .await;
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.json()["error_code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(server.store.usage_count("user:alice").await.unwrap(), 0);
}

#[tokio::test]
async fn usage_ingest_accepts_bodies_past_axums_default_limit() {
    // axum's default body limit is 2 MB; uploads are held to `max_body_bytes` (64 MiB) instead.
    let server = TestServer::start().await;
    let auth = format!("Bearer {}", token("alice", Some("usage:write")));
    let pad = "p".repeat(400);
    let mut csv = String::from("timestamp,model,input_tokens,output_tokens,project\n");
    for i in 0..6000 {
        csv.push_str(&format!(
            "2026-11-{:02}T10:00:00Z,gpt-4o,{},10,{pad}\n",
            1 + i % 28,
            100 + i
        ));
    }
    assert!(csv.len() > 2 * 1024 * 1024);
    let response = server
        .post(
            "/api/usage?format=csv",
            &[("Authorization", &auth)],
            csv.as_bytes(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["imported"], 6000);
}

// ---- WebSocket authentication ----

#[tokio::test]
async fn unauthenticated_socket_serves_only_ping_and_authenticate() {
    let server = TestServer::start().await;
    let mut session = connect(&server, Credentials::None).await;
    ping_works(&mut session, "p0").await;

    session
        .send_json(&json!({
            "type": "start_agent", "id": "s1",
            "payload": {"user_request": "what did we spend?"}
        }))
        .await
        .unwrap();
    assert_error(&next(&mut session).await, "AUTH_REQUIRED", Some("s1"));

    // A bad token is refused and the socket stays open for another try.
    session
        .send_json(&json!({"type": "authenticate", "token": expired_token("alice")}))
        .await
        .unwrap();
    let refused = next(&mut session).await;
    assert_error(&refused, "AUTH_FAILED", None);
    assert!(refused["message"].as_str().unwrap().contains("expired at"));

    session
        .send_json(&json!({"type": "authenticate", "token": token("alice", None)}))
        .await
        .unwrap();
    let established = next(&mut session).await;
    assert_eq!(
        established["type"], "connection_established",
        "{established}"
    );
    assert_eq!(established["user_id"], "alice");
    // No `org_id`: the user's personal tenant.
    assert_eq!(established["tenant_id"], "user:alice");
    assert_eq!(established["protocol"], "agentwire.v1");
    assert_eq!(
        established["agents"],
        json!([
            "supervisor",
            "triage",
            "data",
            "optimization",
            "actions",
            "reporting"
        ])
    );
    assert_eq!(established["limits"]["max_frame_bytes"], 1_048_576);
    assert_eq!(established["limits"]["max_concurrent_runs"], 8);
    assert!(
        established["connection_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

#[tokio::test]
async fn first_frame_credentials_connect() {
    let server = TestServer::start().await;
    let session = connect(&server, Credentials::FirstFrame(token("carol", None))).await;
    assert_eq!(session.connection_info().unwrap()["user_id"], "carol");
}

#[tokio::test]
async fn bad_credentials_at_the_upgrade_get_http_401() {
    let server = TestServer::start().await;
    let cases = [
        ("forged", forged_token("alice")),
        ("expired", expired_token("alice")),
        ("alg none", alg_none_token("alice")),
        ("garbage", "not-a-jwt".to_owned()),
    ];
    for (what, bad) in cases {
        for credentials in [
            Credentials::Bearer(bad.clone()),
            Credentials::Subprotocol(bad.clone()),
        ] {
            let err = Session::connect(&options(&server, credentials.clone()))
                .await
                .err()
                .unwrap_or_else(|| panic!("{what} {credentials:?} was accepted"));
            match &err {
                ClientError::Http { status, .. } => assert_eq!(*status, 401, "{what}"),
                other => panic!("{what} {credentials:?}: expected HTTP 401, got {other:?}"),
            }
            let body = err.http_body_json().unwrap();
            assert_eq!(body["error_code"], "AUTH_FAILED", "{what}: {body}");
            let message = body["message"].as_str().unwrap();
            assert!(!message.is_empty());
            assert!(!message.contains(&bad), "{what}: the token was echoed");
        }
    }
}

#[tokio::test]
async fn subprotocol_auth_selects_agentwire_and_never_echoes_the_jwt() {
    let server = TestServer::start().await;
    let session = connect(&server, Credentials::Subprotocol(token("dave", None))).await;
    assert_eq!(session.selected_subprotocol(), Some("agentwire.v1"));
    assert_eq!(session.connection_info().unwrap()["user_id"], "dave");

    // Bearer without offering agentwire.v1: nothing is selected.
    let mut opts = options(&server, Credentials::Bearer(token("dave", None)));
    opts.offer_subprotocol = false;
    let session = Session::connect(&opts).await.unwrap();
    assert_eq!(session.selected_subprotocol(), None);
}

#[tokio::test]
async fn auth_timeout_sends_auth_required_then_closes_4401() {
    let server = TestServer::builder()
        .auth_timeout(Duration::from_millis(300))
        .start()
        .await;
    let mut session = connect(&server, Credentials::None).await;
    let frame = next(&mut session).await;
    assert_error(&frame, "AUTH_REQUIRED", None);
    assert_closed_with(&mut session, 4401).await;
}

#[tokio::test]
async fn token_in_the_query_string_is_ignored() {
    let server = TestServer::start().await;
    let opts = ConnectOptions {
        url: format!("{}?token={}", server.ws_url(), token("erin", None)),
        credentials: Credentials::None,
        offer_subprotocol: true,
        connect_timeout: WAIT,
        tls: None,
    };
    let mut session = Session::connect(&opts).await.unwrap();
    session
        .send_json(&json!({"type": "resume", "id": "r1", "run_id": "run_x"}))
        .await
        .unwrap();
    let frame = next(&mut session).await;
    assert_error(&frame, "AUTH_REQUIRED", Some("r1"));
    assert!(frame["message"].as_str().unwrap().contains("query string"));
}

// ---- WebSocket message handling ----

#[tokio::test]
async fn json_ping_gets_pong_with_request_id() {
    let server = TestServer::start().await;
    let mut session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    ping_works(&mut session, "ping-1").await;
    session.send_json(&json!({"type": "ping"})).await.unwrap();
    let pong = next(&mut session).await;
    assert_eq!(pong["type"], "pong");
    assert!(pong.get("request_id").is_none());
}

#[tokio::test]
async fn binary_frame_is_refused_and_the_socket_keeps_serving() {
    let server = TestServer::start().await;
    let mut session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    session.send_binary(vec![0, 1, 2, 3]).await.unwrap();
    assert_error(&next(&mut session).await, "INVALID_MESSAGE", None);
    ping_works(&mut session, "after-binary").await;
}

#[tokio::test]
async fn malformed_json_is_refused_and_the_socket_keeps_serving() {
    let server = TestServer::start().await;
    let mut session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    for bad in [
        "{not json",
        "[1,2,3]",
        "{\"no_type\":1}",
        "\"just a string\"",
    ] {
        session.send_text(bad).await.unwrap();
        assert_error(&next(&mut session).await, "INVALID_MESSAGE", None);
    }
    session
        .send_json(&json!({"type": "launch_rockets", "id": "u1"}))
        .await
        .unwrap();
    assert_error(
        &next(&mut session).await,
        "UNKNOWN_MESSAGE_TYPE",
        Some("u1"),
    );
    ping_works(&mut session, "after-garbage").await;
}

/// No database can store a NUL character (U+0000) in text: a message or an upload holding one is
/// refused at the edge, naming the field, instead of failing later as `INTERNAL`; nothing is
/// stored and the socket keeps serving. (Run on PostgreSQL by `.ci/run`, where it matters most.)
#[tokio::test]
async fn nul_characters_are_refused_at_the_edge_naming_the_field() {
    let server = TestServer::start().await;
    let mut session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    session
        .send_text(r#"{"type":"start_agent","id":"n1","payload":{"user_request":"spend\u0000?"}}"#)
        .await
        .unwrap();
    let frame = next(&mut session).await;
    assert_error(&frame, "INVALID_MESSAGE", Some("n1"));
    let message = frame["message"].as_str().unwrap();
    assert!(
        message.contains("`payload.user_request`") && message.contains("NUL"),
        "{message}"
    );
    session
        .send_text(r#"{"type":"resume","id":"n2","run_id":"run_\u0000","after_seq":0}"#)
        .await
        .unwrap();
    let frame = next(&mut session).await;
    assert_error(&frame, "INVALID_MESSAGE", Some("n2"));
    assert!(
        frame["message"].as_str().unwrap().contains("`run_id`"),
        "{frame}"
    );
    ping_works(&mut session, "after-nul").await;

    let auth = format!("Bearer {}", token("alice", Some("usage:write")));
    let body = "{\"timestamp\":\"2026-11-20T10:00:00Z\",\"model\":\"gpt-4o\",\"input_tokens\":10,\"output_tokens\":2}\n\
                {\"timestamp\":\"2026-11-20T11:00:00Z\",\"model\":\"gpt-4o\",\"input_tokens\":20,\"output_tokens\":4,\"team\":\"se\\u0000arch\"}\n";
    let response = server
        .post(
            "/api/usage?format=jsonl",
            &[("Authorization", &auth)],
            body.as_bytes(),
        )
        .await;
    assert_eq!(response.status, 422, "{}", response.text());
    let answer = response.json();
    assert_eq!(answer["error_code"], "INVALID_MESSAGE");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("record 2") && message.contains("`team`"),
        "{message}"
    );
    assert_eq!(server.store.usage_count("alice").await.unwrap(), 0);

    // An id with a NUL names nothing that exists.
    let response = server
        .get("/api/runs/run_%00x/events", &[("Authorization", &auth)])
        .await;
    assert_eq!(response.status, 404, "{}", response.text());
}

#[tokio::test]
async fn unknown_agent_is_agent_not_found() {
    let server = TestServer::start().await;
    let mut session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    session
        .send_json(&json!({
            "type": "start_agent", "id": "bad-agent",
            "payload": {"user_request": "hello", "agent_type": "nonexistent_agent"}
        }))
        .await
        .unwrap();
    assert_error(
        &next(&mut session).await,
        "AGENT_NOT_FOUND",
        Some("bad-agent"),
    );
    ping_works(&mut session, "after-agent").await;
}

#[tokio::test]
async fn cancel_and_resume_of_unknown_runs_are_run_not_found() {
    let server = TestServer::start().await;
    let mut session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    session
        .send_json(&json!({"type": "cancel", "id": "c1", "run_id": "run_missing"}))
        .await
        .unwrap();
    assert_error(&next(&mut session).await, "RUN_NOT_FOUND", Some("c1"));
    session
        .send_json(&json!({"type": "resume", "id": "r1", "run_id": "run_missing", "after_seq": 3}))
        .await
        .unwrap();
    assert_error(&next(&mut session).await, "RUN_NOT_FOUND", Some("r1"));
}

#[tokio::test]
async fn oversized_frame_gets_payload_too_large_then_close_1009() {
    let server = TestServer::builder().max_frame_bytes(1024).start().await;
    let mut session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    let big = json!({"type": "ping", "pad": "x".repeat(2000)}).to_string();
    session.send_text(&big).await.unwrap();
    assert_error(&next(&mut session).await, "PAYLOAD_TOO_LARGE", None);
    assert_closed_with(&mut session, 1009).await;
}

#[tokio::test]
async fn frame_over_the_library_limit_also_gets_the_error_and_1009() {
    let server = TestServer::builder().max_frame_bytes(1024).start().await;
    let mut session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    // Well past the library's own limit (our limit plus 64 KiB of slack).
    let huge = json!({"type": "ping", "pad": "x".repeat(200 * 1024)}).to_string();
    session.send_text(&huge).await.unwrap();
    assert_error(&next(&mut session).await, "PAYLOAD_TOO_LARGE", None);
    assert_closed_with(&mut session, 1009).await;
}

#[tokio::test]
async fn connection_metrics_count_sockets() {
    let server = TestServer::start().await;
    let session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    let text = server.get("/metrics", &[]).await.text();
    assert!(text.contains("agentwire_connections_active 1"), "{text}");
    assert!(text.contains("agentwire_connections_total 1"), "{text}");
    session.close().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001_and_serve_returns() {
    let server = TestServer::builder()
        .drain_timeout(Duration::from_millis(200))
        .start()
        .await;
    let mut session = connect(&server, Credentials::Bearer(token("alice", None))).await;
    let addr = server.addr;
    server.stop().await.unwrap();
    assert_closed_with(&mut session, 1001).await;
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn peers_that_answer_pings_stay_and_silent_ones_are_dropped() {
    let server = TestServer::builder()
        .ping_interval(Duration::from_millis(100))
        .start()
        .await;

    // Reading (which answers protocol pings) for five intervals keeps the connection.
    let mut reader = connect(&server, Credentials::Bearer(token("alice", None))).await;
    match reader.next_frame(Duration::from_millis(500)).await {
        Err(ClientError::Timeout { .. }) => {}
        other => panic!("expected only pings (answered, not surfaced), got {other:?}"),
    }
    ping_works(&mut reader, "still-here").await;
    reader.close().await.unwrap();

    // Not reading at all answers no ping: dropped after two intervals.
    let mut silent = connect(&server, Credentials::Bearer(token("bob", None))).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let text = server.get("/metrics", &[]).await.text();
    assert!(text.contains("agentwire_connections_active 0\n"), "{text}");
    assert!(text.contains("agentwire_connections_total 2\n"), "{text}");
    match silent.next_frame(WAIT).await {
        Err(ClientError::Closed { .. }) => {}
        other => panic!("expected the silent peer to be dropped, got {other:?}"),
    }
}

/// Every HTTP answer carries the security headers, and CORS answers only listed origins.
#[tokio::test]
async fn security_headers_and_cors_allow_list() {
    let closed = TestServer::start().await;
    for path in [
        "/health",
        "/api",
        "/api/agents",
        "/metrics",
        "/no/such/path",
        "/",
    ] {
        let response = closed
            .get(path, &[("origin", "https://app.example.com")])
            .await;
        for (name, value) in [
            ("x-content-type-options", Some("nosniff")),
            ("x-frame-options", Some("DENY")),
            ("referrer-policy", Some("no-referrer")),
            ("content-security-policy", None),
        ] {
            let got = response.header(name);
            assert!(got.is_some(), "{path}: no {name}");
            if let Some(value) = value {
                assert_eq!(got, Some(value), "{path}: {name}");
            }
        }
        assert_eq!(
            response.header("access-control-allow-origin"),
            None,
            "{path}: CORS is closed by default"
        );
    }

    let open = TestServer::builder()
        .cors_allow_origin("https://app.example.com")
        .start()
        .await;
    let preflight = open
        .request(
            "OPTIONS",
            "/api/usage",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
            ],
            b"",
        )
        .await;
    assert_eq!(preflight.status, 204, "{}", preflight.text());
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(
        preflight
            .header("access-control-allow-headers")
            .is_some_and(|h| h.contains("authorization"))
    );
    let get = open
        .get("/api/agents", &[("origin", "https://app.example.com")])
        .await;
    assert_eq!(get.status, 200);
    assert_eq!(
        get.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(get.header("vary").is_some_and(|v| v.contains("origin")));
    let other = open
        .get("/api/agents", &[("origin", "https://evil.example")])
        .await;
    assert_eq!(other.header("access-control-allow-origin"), None);

    // A listed origin may also open sockets from its pages.
    let token = token("paula", None);
    let ws = ws::raw_connect(
        &open.ws_url(),
        &[
            ("origin", "https://app.example.com"),
            ("authorization", &format!("Bearer {token}")),
        ],
    )
    .await;
    assert!(ws.is_ok(), "a listed origin was refused");
    let same_origin = ws::raw_connect(
        &closed.ws_url(),
        &[
            ("origin", &format!("http://{}", closed.addr)),
            ("authorization", &format!("Bearer {token}")),
        ],
    )
    .await;
    assert!(same_origin.is_ok(), "the server's own pages were refused");
}
