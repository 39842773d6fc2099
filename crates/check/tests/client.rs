//! The client against real sockets: small tokio-tungstenite servers on 127.0.0.1:0, each scripted to
//! play one side of a conversation, so that connect, the three credential forms, refusals, closes
//! and the backlog are exercised over the network rather than by substitution.

// tungstenite's handshake callback type fixes the (large) error type.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use agentwire_check::{
    ClientError, ConnectOptions, Credentials, RunTranscript, Session, jwt_subprotocol,
    websocket_url,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws = WebSocketStream<TcpStream>;

const TS: &str = "2026-11-26T18:04:05.123Z";
const SHORT: Duration = Duration::from_secs(5);

/// How the test server answers the upgrade.
#[derive(Clone)]
enum Upgrade {
    /// As the contract says: select `agentwire.v1` when offered, never a `jwt.*` item.
    Contract,
    /// Select no subprotocol even when one was offered.
    SelectNothing,
    /// Refuse with this status and body.
    Refuse(u16, String),
}

/// Serves one connection: answers the upgrade per `upgrade`, then runs `script` with the socket and
/// the upgrade request's headers. Returns the `ws://` URL and the server task.
async fn server<F, Fut>(upgrade: Upgrade, script: F) -> (String, JoinHandle<()>)
where
    F: FnOnce(Ws, HeaderMap) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut headers = HeaderMap::new();
        let captured = &mut headers;
        let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
            *captured = req.headers().clone();
            let offered: Vec<String> = req
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default();
            match upgrade {
                Upgrade::Contract => {
                    if offered.iter().any(|p| p == "agentwire.v1") {
                        resp.headers_mut().insert(
                            "sec-websocket-protocol",
                            HeaderValue::from_static("agentwire.v1"),
                        );
                    }
                    Ok(resp)
                }
                Upgrade::SelectNothing => Ok(resp),
                Upgrade::Refuse(status, body) => {
                    let mut refusal = ErrorResponse::new(Some(body));
                    *refusal.status_mut() = StatusCode::from_u16(status).unwrap();
                    refusal
                        .headers_mut()
                        .insert("content-type", HeaderValue::from_static("application/json"));
                    Err(refusal)
                }
            }
        };
        if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
            script(ws, headers).await;
        }
    });
    (format!("ws://{addr}/ws"), task)
}

fn established() -> String {
    json!({
        "type": "connection_established", "connection_id": "conn_1", "user_id": "u1",
        "tenant_id": "u1", "protocol": "agentwire.v1", "server_version": "test",
        "agents": ["supervisor", "triage", "data", "optimization", "actions", "reporting"],
        "limits": {"max_frame_bytes": 1_048_576, "max_concurrent_runs": 8}, "timestamp": TS,
    })
    .to_string()
}

fn opts(url: &str, credentials: Credentials) -> ConnectOptions {
    ConnectOptions {
        url: url.to_owned(),
        credentials,
        offer_subprotocol: true,
        connect_timeout: SHORT,
        tls: None,
    }
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::text(value.to_string())).await.unwrap();
}

/// Reads the next text frame the client sent, as JSON.
async fn recv_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Connects without credentials (the scripted server does not check them), offering
/// `agentwire.v1`.
async fn connect(url: &str) -> Session {
    Session::connect(&opts(url, Credentials::None))
        .await
        .unwrap()
}

/// Closes the client's side and waits for the scripted server to finish its script.
async fn done(session: Session, task: JoinHandle<()>) {
    session.close().await.unwrap();
    task.await.unwrap();
}

/// Sends a close frame, then keeps reading until the client goes away.
async fn close(mut ws: Ws, code: CloseCode, reason: &str) {
    ws.close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
    .await
    .unwrap();
    drain(ws).await;
}

/// Keeps the socket open until the client goes away.
async fn drain(mut ws: Ws) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// A run event of run `run` with the common fields and `fields`.
fn event(run: &str, seq: u64, kind: &str, fields: Value) -> Value {
    let mut value = json!({
        "type": kind, "timestamp": TS, "run_id": run, "thread_id": format!("thr_{run}"),
        "seq": seq, "agent": "supervisor",
    });
    for (key, field) in fields.as_object().unwrap() {
        value[key] = field.clone();
    }
    value
}

/// A complete, valid run of five events.
fn valid_run(run: &str) -> Vec<Value> {
    vec![
        event(
            run,
            1,
            "agent_started",
            json!({"user_request": "q", "plan": ["data"]}),
        ),
        event(run, 2, "agent_thinking", json!({"message": "looking"})),
        event(
            run,
            3,
            "tool_executing",
            json!({"tool": "usage_summary", "tool_call_id": "c1", "args": {}}),
        ),
        event(
            run,
            4,
            "tool_completed",
            json!({"tool": "usage_summary", "tool_call_id": "c1", "status": "ok",
                   "result": "ok", "data": {}, "duration_ms": 3}),
        ),
        event(
            run,
            5,
            "agent_completed",
            json!({"response": format!("answer for {run}"), "report": {}, "duration_ms": 9}),
        ),
    ]
}

#[test]
fn targets_map_to_websocket_urls() {
    for (target, url) in [
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws"),
        ("http://127.0.0.1:8080/", "ws://127.0.0.1:8080/ws"),
        (
            "https://agents.example/prefix",
            "wss://agents.example/prefix/ws",
        ),
        ("http://h:1/ws?x=1", "ws://h:1/ws?x=1"),
        ("localhost:9", "ws://localhost:9/ws"),
        ("ws://h:1/custom", "ws://h:1/custom"),
    ] {
        assert_eq!(websocket_url(target).unwrap(), url, "{target}");
    }
    assert!(matches!(
        websocket_url("ftp://h"),
        Err(ClientError::InvalidUrl { .. })
    ));
    assert!(matches!(
        websocket_url("http://"),
        Err(ClientError::InvalidUrl { .. })
    ));
}

#[test]
fn jwt_subprotocol_is_unpadded_base64url() {
    // "a?" encodes to "YT8=" in standard base64; base64url unpadded is "YT8".
    assert_eq!(jwt_subprotocol("a?"), "jwt.YT8");
    assert_eq!(jwt_subprotocol("a>"), "jwt.YT4");
}

#[test]
fn credentials_debug_never_shows_the_token() {
    let shown = format!("{:?}", Credentials::Bearer("secret-token".into()));
    assert!(!shown.contains("secret"));
}

#[tokio::test]
async fn bearer_credentials_go_in_the_authorization_header() {
    let (url, task) = server(Upgrade::Contract, |mut ws, headers| async move {
        assert_eq!(headers["authorization"], "Bearer tok.en.1");
        assert_eq!(headers["sec-websocket-protocol"], "agentwire.v1");
        ws.send(Message::text(established())).await.unwrap();
        drain(ws).await;
    })
    .await;
    let session = Session::connect(&opts(&url, Credentials::Bearer("tok.en.1".into())))
        .await
        .unwrap();
    let info = session.connection_info().unwrap();
    assert_eq!(info["type"], "connection_established");
    assert_eq!(info["connection_id"], "conn_1");
    assert_eq!(session.selected_subprotocol(), Some("agentwire.v1"));
    done(session, task).await;
}

#[tokio::test]
async fn subprotocol_credentials_offer_agentwire_and_the_jwt_item() {
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.sig-_";
    let (url, task) = server(Upgrade::Contract, move |mut ws, headers| async move {
        assert!(headers.get("authorization").is_none());
        let offered: Vec<String> = headers["sec-websocket-protocol"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect();
        assert_eq!(offered[0], "agentwire.v1");
        let encoded = offered[1].strip_prefix("jwt.").unwrap();
        assert!(!encoded.contains('='), "unpadded");
        let decoded = URL_SAFE_NO_PAD.decode(encoded).unwrap();
        assert_eq!(decoded, token.as_bytes());
        ws.send(Message::text(established())).await.unwrap();
        drain(ws).await;
    })
    .await;
    // Even with offer_subprotocol off, agentwire.v1 is offered beside the jwt item.
    let mut options = opts(&url, Credentials::Subprotocol(token.into()));
    options.offer_subprotocol = false;
    let session = Session::connect(&options).await.unwrap();
    assert_eq!(session.selected_subprotocol(), Some("agentwire.v1"));
    assert!(session.connection_info().is_some());
    done(session, task).await;
}

#[tokio::test]
async fn first_frame_credentials_authenticate_after_the_upgrade() {
    let (url, task) = server(Upgrade::Contract, |mut ws, headers| async move {
        assert!(headers.get("authorization").is_none());
        assert!(headers.get("sec-websocket-protocol").is_none());
        let first = recv_json(&mut ws).await;
        assert_eq!(first, json!({"type": "authenticate", "token": "t0k"}));
        ws.send(Message::text(established())).await.unwrap();
        drain(ws).await;
    })
    .await;
    let mut options = opts(&url, Credentials::FirstFrame("t0k".into()));
    options.offer_subprotocol = false;
    let session = Session::connect(&options).await.unwrap();
    assert_eq!(session.selected_subprotocol(), None);
    assert_eq!(
        session.connection_info().unwrap()["type"],
        "connection_established"
    );
    done(session, task).await;
}

#[tokio::test]
async fn without_credentials_connect_does_not_wait() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        // Nothing is sent until the client authenticates by hand.
        let first = recv_json(&mut ws).await;
        assert_eq!(first["type"], "authenticate");
        ws.send(Message::text(established())).await.unwrap();
        drain(ws).await;
    })
    .await;
    let mut session = connect(&url).await;
    assert!(session.connection_info().is_none());
    session
        .send_json(&json!({"type": "authenticate", "token": "x"}))
        .await
        .unwrap();
    let frame = session.next_frame(SHORT).await.unwrap();
    assert_eq!(frame.type_name(), Some("connection_established"));
    // Recorded when first read, even after connect.
    assert_eq!(session.connection_info(), Some(&frame.value));
    done(session, task).await;
}

#[tokio::test]
async fn a_refused_upgrade_surfaces_status_and_body() {
    let body = r#"{"error_code":"AUTH_FAILED","message":"token expired"}"#;
    let (url, task) = server(Upgrade::Refuse(401, body.to_owned()), |_, _| async {}).await;
    let err = Session::connect(&opts(&url, Credentials::Bearer("expired".into())))
        .await
        .unwrap_err();
    match &err {
        ClientError::Http { status, body: got } => {
            assert_eq!(*status, 401);
            assert_eq!(got, body);
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_eq!(err.http_body_json().unwrap()["error_code"], "AUTH_FAILED");
    assert!(err.to_string().contains("401"));
    task.await.unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_with_its_reason() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = Session::connect(&opts(
        &format!("http://127.0.0.1:{port}"),
        Credentials::Bearer("t".into()),
    ))
    .await
    .unwrap_err();
    match err {
        ClientError::Connect { url, reason } => {
            assert_eq!(url, format!("ws://127.0.0.1:{port}/ws"));
            assert!(!reason.is_empty());
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

/// A CA and a server certificate for `127.0.0.1` signed by it, in PEM: (CA, cert, key).
fn throwaway_ca() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// A TLS WebSocket server for one connection that greets with `connection_established`.
async fn tls_server(cert_pem: &str, key_pem: &str) -> (String, JoinHandle<()>) {
    use rustls_pki_types::pem::PemObject as _;
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // A client that refuses the certificate ends the handshake; nothing more to serve.
        let Ok(tls) = acceptor.accept(stream).await else {
            return;
        };
        let callback = |_: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
            resp.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static("agentwire.v1"),
            );
            Ok(resp)
        };
        if let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tls, callback).await {
            ws.send(Message::text(established())).await.unwrap();
            while let Some(Ok(_)) = ws.next().await {}
        }
    });
    (format!("wss://{addr}/ws"), task)
}

#[tokio::test]
async fn wss_is_spoken_over_tls_verified_against_the_given_ca() {
    let (ca, cert, key) = throwaway_ca();
    let (url, task) = tls_server(&cert, &key).await;
    let mut options = opts(&url, Credentials::Bearer("t".into()));
    options.tls = Some(agentwire_check::tls::TlsClient::new(Some(ca.as_bytes())).unwrap());
    let session = Session::connect(&options).await.unwrap();
    assert_eq!(session.connection_info().unwrap()["user_id"], "u1");
    done(session, task).await;
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_fails_with_the_reason() {
    let (_, cert, key) = throwaway_ca();
    let (other_ca, _, _) = throwaway_ca();
    let (url, task) = tls_server(&cert, &key).await;
    let mut options = opts(&url, Credentials::Bearer("t".into()));
    options.tls = Some(agentwire_check::tls::TlsClient::new(Some(other_ca.as_bytes())).unwrap());
    match Session::connect(&options).await.unwrap_err() {
        ClientError::Connect { reason, .. } => assert!(
            reason.contains("not signed by a trusted CA") && reason.contains("--ca-cert"),
            "{reason}"
        ),
        other => panic!("expected Connect, got {other:?}"),
    }
    task.await.unwrap();
}

#[tokio::test]
async fn wss_to_a_plain_server_fails_and_is_never_downgraded() {
    let (plain, task) = server(Upgrade::Contract, |ws, _| drain(ws)).await;
    let url = plain.replacen("ws://", "wss://", 1);
    match Session::connect(&opts(&url, Credentials::None))
        .await
        .unwrap_err()
    {
        ClientError::Connect { reason, .. } => assert!(reason.contains("TLS"), "{reason}"),
        other => panic!("expected Connect, got {other:?}"),
    }
    task.abort();
}

#[tokio::test]
async fn a_server_that_selects_no_subprotocol_fails_the_handshake() {
    let (url, task) = server(Upgrade::SelectNothing, |ws, _| drain(ws)).await;
    let err = Session::connect(&opts(&url, Credentials::Bearer("t".into())))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Handshake(_)), "{err:?}");
    task.await.unwrap();
}

#[tokio::test]
async fn an_error_frame_instead_of_connection_established_is_a_server_error() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        let _ = recv_json(&mut ws).await;
        send(
            &mut ws,
            json!({"type": "error", "error_code": "AUTH_FAILED", "message": "bad signature",
                   "retryable": false, "timestamp": TS}),
        )
        .await;
        drain(ws).await;
    })
    .await;
    let err = Session::connect(&opts(&url, Credentials::FirstFrame("forged".into())))
        .await
        .unwrap_err();
    match err {
        ClientError::ServerError {
            error_code,
            message,
            frame,
        } => {
            assert_eq!(error_code, "AUTH_FAILED");
            assert_eq!(message, "bad signature");
            assert_eq!(frame["type"], "error");
        }
        other => panic!("expected ServerError, got {other:?}"),
    }
    task.await.unwrap();
}

#[tokio::test]
async fn connect_times_out_when_connection_established_never_comes() {
    let (url, task) = server(Upgrade::Contract, |ws, _| drain(ws)).await;
    let mut options = opts(&url, Credentials::Bearer("t".into()));
    options.connect_timeout = Duration::from_millis(200);
    let err = Session::connect(&options).await.unwrap_err();
    match err {
        ClientError::Timeout {
            waited,
            waiting_for,
        } => {
            assert_eq!(waited, Duration::from_millis(200));
            assert!(waiting_for.contains("connection_established"));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    task.await.unwrap();
}

#[tokio::test]
async fn the_close_code_is_reported_and_stays_reported() {
    let (url, task) = server(Upgrade::Contract, |ws, _| {
        close(ws, CloseCode::from(4401), "authentication timed out")
    })
    .await;
    let mut session = connect(&url).await;
    for _ in 0..2 {
        match session.next_frame(SHORT).await.unwrap_err() {
            ClientError::Closed { code, reason } => {
                assert_eq!(code, Some(4401));
                assert_eq!(reason, "authentication timed out");
            }
            other => panic!("expected Closed, got {other:?}"),
        }
    }
    let err = session.send_text("{}").await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Closed {
                code: Some(4401),
                ..
            }
        ),
        "{err:?}"
    );
    done(session, task).await;
}

#[tokio::test]
async fn next_frame_times_out() {
    let (url, task) = server(Upgrade::Contract, |ws, _| drain(ws)).await;
    let mut session = connect(&url).await;
    let err = session
        .next_frame(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    done(session, task).await;
}

#[tokio::test]
async fn non_json_and_binary_frames_are_protocol_errors() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        ws.send(Message::text("not json {")).await.unwrap();
        ws.send(Message::text("[1,2]")).await.unwrap();
        ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
        send(&mut ws, json!({"type": "pong", "timestamp": TS})).await;
        drain(ws).await;
    })
    .await;
    let mut session = connect(&url).await;
    for expected in ["not JSON", "not an object", "binary"] {
        match session.next_frame(SHORT).await.unwrap_err() {
            ClientError::Protocol(reason) => assert!(reason.contains(expected), "{reason}"),
            other => panic!("expected Protocol, got {other:?}"),
        }
    }
    // The connection is still usable.
    let frame = session.next_frame(SHORT).await.unwrap();
    assert_eq!(frame.type_name(), Some("pong"));
    done(session, task).await;
}

#[tokio::test]
async fn protocol_pings_are_answered() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .unwrap();
        match ws.next().await.unwrap().unwrap() {
            Message::Pong(payload) => assert_eq!(payload.as_ref(), b"are you there"),
            other => panic!("expected a pong, got {other:?}"),
        }
        send(
            &mut ws,
            json!({"type": "pong", "timestamp": TS, "note": "after ping"}),
        )
        .await;
        drain(ws).await;
    })
    .await;
    let mut session = connect(&url).await;
    let frame = session.next_frame(SHORT).await.unwrap();
    assert_eq!(frame.value["note"], "after ping");
    done(session, task).await;
}

/// A session held open reads on: it answers the server's pings, keeps every frame for later
/// reads in arrival order, and stops when told to.
#[tokio::test]
async fn read_until_answers_pings_and_keeps_every_frame() {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        for n in 0..3 {
            send(&mut ws, json!({"type": "pong", "timestamp": TS, "n": n})).await;
            ws.send(Message::Ping(b"still there?".to_vec().into()))
                .await
                .unwrap();
            match ws.next().await.unwrap().unwrap() {
                Message::Pong(payload) => assert_eq!(payload.as_ref(), b"still there?"),
                other => panic!("expected a pong, got {other:?}"),
            }
        }
        release.send(()).unwrap();
        drain(ws).await;
    })
    .await;
    let mut session = connect(&url).await;
    session
        .read_until(async move { released.await.unwrap() })
        .await
        .unwrap();
    assert_eq!(session.backlog_len(), 3);
    for n in 0..3 {
        let frame = session.next_frame(SHORT).await.unwrap();
        assert_eq!(frame.value["n"], n);
    }
    done(session, task).await;
}

/// A held session the server closes says so, with the close code.
#[tokio::test]
async fn read_until_reports_a_close() {
    let (url, task) = server(Upgrade::Contract, |ws, _| {
        close(ws, CloseCode::from(4408), "no answer to pings")
    })
    .await;
    let mut session = connect(&url).await;
    // Bounded, so that a read that missed the close fails here instead of hanging.
    let err = tokio::time::timeout(SHORT, session.read_until(std::future::pending()))
        .await
        .expect("read_until did not notice the close")
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Closed {
                code: Some(4408),
                ..
            }
        ),
        "{err:?}"
    );
    done(session, task).await;
}

#[tokio::test]
async fn start_agent_sends_the_contract_shape() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        let start = recv_json(&mut ws).await;
        assert_eq!(
            start,
            json!({"id": "req_1", "type": "start_agent", "payload": {
                "user_request": "where does the money go?", "agent_type": "data",
                "timeframe": "30d", "team": "search"}})
        );
        let raw = ws.next().await.unwrap().unwrap();
        assert_eq!(raw, Message::text("{not json"));
        let binary = ws.next().await.unwrap().unwrap();
        assert_eq!(binary, Message::binary(vec![0u8, 159]));
        drain(ws).await;
    })
    .await;
    let mut session = connect(&url).await;
    let mut extra = Map::new();
    extra.insert("timeframe".into(), json!("30d"));
    extra.insert("team".into(), json!("search"));
    // The explicit arguments win over same-named extras.
    extra.insert("agent_type".into(), json!("ignored"));
    session
        .start_agent("req_1", "data", "where does the money go?", extra)
        .await
        .unwrap();
    session.send_text("{not json").await.unwrap();
    session.send_binary(vec![0, 159]).await.unwrap();
    done(session, task).await;
}

/// Plays two runs interleaved on one socket: replies to two `start_agent`s, then A1 B1 A2 pong B2 A3
/// B3 A4 B4 A5, waits for a `ping` from the client, then B5.
async fn interleaved_runs(mut ws: Ws, _: HeaderMap) {
    for (request, run) in [("req_a", "run_a"), ("req_b", "run_b")] {
        let start = recv_json(&mut ws).await;
        assert_eq!(start["id"], request);
        send(
            &mut ws,
            json!({"type": "run_accepted", "request_id": request, "run_id": run,
                   "thread_id": format!("thr_{run}"), "agent_type": "supervisor", "timestamp": TS}),
        )
        .await;
    }
    let a = valid_run("run_a");
    let b = valid_run("run_b");
    send(&mut ws, a[0].clone()).await;
    send(&mut ws, b[0].clone()).await;
    send(&mut ws, a[1].clone()).await;
    send(&mut ws, json!({"type": "pong", "timestamp": TS})).await;
    for i in 1..4 {
        send(&mut ws, b[i].clone()).await;
        send(&mut ws, a[i + 1].clone()).await;
    }
    let ping = recv_json(&mut ws).await;
    assert_eq!(ping["type"], "ping");
    send(&mut ws, b[4].clone()).await;
    drain(ws).await;
}

#[tokio::test]
async fn collect_run_keeps_other_runs_in_the_backlog() {
    let (url, task) = server(Upgrade::Contract, interleaved_runs).await;
    let mut session = connect(&url).await;
    session
        .start_agent("req_a", "supervisor", "q", Map::new())
        .await
        .unwrap();
    let accepted_a = session.wait_run_accepted("req_a", SHORT).await.unwrap();
    session
        .start_agent("req_b", "supervisor", "q", Map::new())
        .await
        .unwrap();
    let accepted_b = session.wait_run_accepted("req_b", SHORT).await.unwrap();
    assert_eq!(accepted_a.run_id, "run_a");
    assert_eq!(accepted_b.thread_id, "thr_run_b");

    let run_a = session.collect_run("run_a", SHORT).await.unwrap();
    assert_eq!(run_a.events, valid_run("run_a"));
    assert_eq!(run_a.violations(), vec![]);
    assert!(run_a.first_event_at.unwrap() <= run_a.completed_at.unwrap());
    // B1, the pong, B2, B3 and B4 were read while collecting A and wait in order.
    assert_eq!(session.backlog_len(), 5);

    session.send_json(&json!({"type": "ping"})).await.unwrap();
    let run_b = session.collect_run("run_b", SHORT).await.unwrap();
    assert_eq!(run_b.events, valid_run("run_b"));
    assert_eq!(run_b.terminal_type(), Some("agent_completed"));
    // Only the pong is left, and next_frame hands it out before reading the socket.
    let frame = session.next_frame(Duration::from_millis(1)).await.unwrap();
    assert_eq!(frame.type_name(), Some("pong"));
    assert_eq!(session.backlog_len(), 0);
    done(session, task).await;
}

#[tokio::test]
async fn next_frame_drains_the_backlog_first() {
    let (url, task) = server(Upgrade::Contract, interleaved_runs).await;
    let mut session = connect(&url).await;
    for request in ["req_a", "req_b"] {
        session
            .start_agent(request, "supervisor", "q", Map::new())
            .await
            .unwrap();
        session.wait_run_accepted(request, SHORT).await.unwrap();
    }
    session.collect_run("run_a", SHORT).await.unwrap();
    let b = valid_run("run_b");
    let first = session.next_frame(SHORT).await.unwrap();
    assert_eq!(first.value, b[0]);
    let second = session.next_frame(SHORT).await.unwrap();
    assert_eq!(second.type_name(), Some("pong"));
    session.send_json(&json!({"type": "ping"})).await.unwrap();
    done(session, task).await;
}

#[tokio::test]
async fn a_failed_collect_run_loses_nothing() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        let a = valid_run("run_a");
        let b = valid_run("run_b");
        send(&mut ws, a[0].clone()).await;
        send(&mut ws, b[0].clone()).await;
        send(&mut ws, a[1].clone()).await;
        close(ws, CloseCode::Away, "draining").await;
    })
    .await;
    let mut session = connect(&url).await;
    let err = session.collect_run("run_a", SHORT).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Closed {
                code: Some(1001),
                ..
            }
        ),
        "{err:?}"
    );
    let kept: Vec<Value> = session
        .take_backlog()
        .into_iter()
        .map(|f| f.value)
        .collect();
    let a = valid_run("run_a");
    let b = valid_run("run_b");
    assert_eq!(kept, vec![a[0].clone(), b[0].clone(), a[1].clone()]);
    done(session, task).await;
}

#[tokio::test]
async fn wait_for_returns_the_frames_before_the_match_and_loses_none_on_timeout() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        for n in 1..=3 {
            send(&mut ws, json!({"type": "pong", "timestamp": TS, "n": n})).await;
        }
        drain(ws).await;
    })
    .await;
    let mut session = connect(&url).await;
    let (found, before) = session.wait_for(SHORT, |v| v["n"] == 2).await.unwrap();
    assert_eq!(found["n"], 2);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["n"], 1);

    let err = session
        .wait_for(Duration::from_millis(100), |v| v["n"] == 99)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    // The frame read during the failed wait is still there.
    let frame = session.next_frame(SHORT).await.unwrap();
    assert_eq!(frame.value["n"], 3);
    done(session, task).await;
}

#[tokio::test]
async fn a_refused_start_is_a_server_error() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        let start = recv_json(&mut ws).await;
        // An unrelated frame first: it must stay in the backlog.
        send(&mut ws, json!({"type": "pong", "timestamp": TS})).await;
        send(
            &mut ws,
            json!({"type": "error", "error_code": "AGENT_NOT_FOUND", "message": "no agent nope",
                   "request_id": start["id"], "retryable": false, "timestamp": TS}),
        )
        .await;
        drain(ws).await;
    })
    .await;
    let mut session = connect(&url).await;
    session
        .start_agent("req_9", "nope", "q", Map::new())
        .await
        .unwrap();
    let err = session.wait_run_accepted("req_9", SHORT).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::ServerError { error_code, .. } if error_code == "AGENT_NOT_FOUND"),
        "{err:?}"
    );
    assert_eq!(session.backlog_len(), 1);
    done(session, task).await;
}

#[tokio::test]
async fn close_sends_a_normal_close_frame() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        match ws.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("expected a close frame, got {other:?}"),
        }
    })
    .await;
    let session = connect(&url).await;
    done(session, task).await;
}

#[test]
fn transcript_helpers_read_the_events() {
    let mut events = valid_run("r");
    events[2]["agent"] = json!("data");
    let transcript = RunTranscript {
        run_id: "r".into(),
        events,
        received_at: Vec::new(),
        canaries: Vec::new(),
        first_event_at: None,
        completed_at: None,
    };
    assert_eq!(transcript.terminal_type(), Some("agent_completed"));
    assert_eq!(transcript.response(), Some("answer for r"));
    assert_eq!(
        transcript.types(),
        vec![
            "agent_started",
            "agent_thinking",
            "tool_executing",
            "tool_completed",
            "agent_completed"
        ]
    );
    assert_eq!(
        transcript.agents().into_iter().collect::<Vec<_>>(),
        vec!["data".to_owned(), "supervisor".to_owned()]
    );
    let unfinished = RunTranscript {
        events: transcript.events[..2].to_vec(),
        ..transcript.clone()
    };
    assert_eq!(unfinished.terminal_type(), None);
    assert_eq!(unfinished.response(), None);
}

#[tokio::test]
async fn take_matching_and_wait_first_event_leave_every_other_frame_in_place() {
    let (url, task) = server(Upgrade::Contract, |mut ws, _| async move {
        let a = valid_run("run_a");
        let b = valid_run("run_b");
        // B's start, then A's whole run, then the rest of B.
        send(&mut ws, b[0].clone()).await;
        for event in &a {
            send(&mut ws, event.clone()).await;
        }
        for event in &b[1..] {
            send(&mut ws, event.clone()).await;
        }
        drain(ws).await;
    })
    .await;
    let mut session = connect(&url).await;
    // Waiting for A's first event keeps it (and B's start before it) for later reads.
    session.wait_first_event("run_a", SHORT).await.unwrap();
    assert_eq!(session.backlog_len(), 2);
    // Taking A's terminal event out of order leaves everything else, in order.
    let terminal = session
        .take_matching(SHORT, |f| {
            f["run_id"] == "run_a" && f["type"] == "agent_completed"
        })
        .await
        .unwrap();
    assert_eq!(terminal.value, valid_run("run_a")[4]);
    let run_b = session.collect_run("run_b", SHORT).await.unwrap();
    assert_eq!(run_b.events, valid_run("run_b"));
    assert_eq!(run_b.received_at.len(), run_b.events.len());
    let left: Vec<Value> = session
        .take_backlog()
        .into_iter()
        .map(|f| f.value)
        .collect();
    assert_eq!(left, valid_run("run_a")[..4].to_vec());
    done(session, task).await;
}
