//! Slow, greedy and TLS clients on a live server (issue 15): the HTTP header and idle timeouts,
//! the cap on TCP connections, unauthenticated sockets per address, runs followed per socket, and
//! the server terminating TLS itself. Real server on 127.0.0.1:0, raw TCP where a well-behaved
//! client library would not misbehave.
//!
//! Bounds here are generous upper limits on something that must happen at all (a connection is
//! closed, an answer comes), several times the configured timeout; they are not speed tests.

use agentwire_check::client::{ClientError, Credentials};
use agentwire_check::http::HttpTarget;
use agentwire_testkit::{TestCa, TestServer, token};
use serde_json::{Map, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

/// Reads until the server closes the connection; what it sent, or `None` if it did not close
/// within `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
        }
    }
}

/// What the server sent before it closed the connection, as text.
async fn answer(client: &mut TcpStream) -> String {
    let answer = read_until_closed(client, WAIT)
        .await
        .expect("the connection neither answered nor closed");
    String::from_utf8_lossy(&answer).into_owned()
}

/// A server with these HTTP idle and header timeouts.
async fn with_timeouts(idle: Duration, header: Duration) -> TestServer {
    TestServer::builder()
        .configure(move |server, _| {
            server.http_idle_timeout = idle;
            server.http_header_timeout = header;
        })
        .start()
        .await
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_closed() {
    let server = TestServer::builder()
        .configure(|server, _| server.http_header_timeout = Duration::from_secs(1))
        .start()
        .await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut slow, Duration::from_secs(15)).await;
    assert!(
        answer.is_some(),
        "a 1 s header timeout left the connection open for 15 s"
    );
    println!("closed after {:?}", started.elapsed());
    // A client that sends its headers is served as before.
    let health = server.get("/health", &[]).await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = with_timeouts(Duration::from_secs(1), Duration::from_secs(60)).await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    client
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut client, Duration::from_secs(15))
        .await
        .expect("an idle keep-alive connection stayed open for 15 s with a 1 s idle timeout");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn a_new_connection_has_the_header_timeout_for_its_first_request_not_the_idle_one() {
    // A client that connects and sends its first request later than the idle timeout, but
    // within the header timeout, is served: an overloaded client (10,000 sessions from one
    // load generator) may take seconds between its connect and its upgrade request, and 53 such
    // clients got "Handshake not finished" when the idle timeout closed their connections.
    let server = with_timeouts(Duration::from_millis(200), Duration::from_secs(10)).await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Written into a connection the server may already have closed: then the read below sees
    // the close, not an answer.
    let _ = client
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let text = answer(&mut client).await;
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "the first request, within the header timeout, was refused: {text:?}"
    );
}

#[tokio::test]
async fn a_request_waiting_for_a_busy_server_is_served_not_taken_for_idle() {
    // Under load a connection's task may not run for longer than the idle timeout while its
    // request waits in the socket. When it runs, it must read the request, not close the
    // connection as idle (10,000 sessions: 467 to 1,550 "Handshake not finished").
    let server = TestServer::builder()
        .configure(|server, _| server.http_idle_timeout = Duration::from_millis(200))
        .start()
        .await;
    for attempt in 0..20 {
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        // The server accepts and starts waiting for the request, which comes well within the
        // idle timeout...
        tokio::time::sleep(Duration::from_millis(10)).await;
        client
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // ... while the server is too busy to look, past the idle timeout (this test's thread is
        // the server's runtime: blocking it starves every task of the server, as a saturated
        // runtime does).
        std::thread::sleep(Duration::from_millis(300));
        let text = answer(&mut client).await;
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "attempt {attempt}: the request was dropped: {text:?}"
        );
    }
}

#[tokio::test]
async fn connections_past_the_total_cap_get_503_and_the_cap_counts_sockets() {
    let server = TestServer::builder()
        .configure(|server, _| server.max_tcp_connections = 3)
        .start()
        .await;
    // Two idle TCP connections and one WebSocket fill the cap.
    let idle_a = TcpStream::connect(server.addr).await.unwrap();
    let _idle_b = TcpStream::connect(server.addr).await.unwrap();
    let socket = server.connect_as("olga").await;
    // The server has taken the connections by the time a request on one of them is answered;
    // this one is over the cap.
    let mut over = TcpStream::connect(server.addr).await.unwrap();
    over.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut over, WAIT).await.unwrap();
    let response = agentwire_testkit::http::parse_response(&answer).unwrap();
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.json()["error_code"], "UNAVAILABLE");
    assert!(response.header("retry-after").is_some());
    // A place comes back when a connection closes.
    drop(idle_a);
    drop(socket);
    let deadline = Instant::now() + WAIT;
    loop {
        let health = server.get("/health", &[]).await;
        if health.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no place came back: {}",
            health.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn unauthenticated_sockets_are_capped_per_address() {
    let server = TestServer::builder()
        .configure(|server, _| server.max_unauthenticated_per_ip = 2)
        .start()
        .await;
    let mut first = server.connect(Credentials::None).await.unwrap();
    let _second = server.connect(Credentials::None).await.unwrap();
    match server.connect(Credentials::None).await {
        Err(ClientError::Http { status, body }) => {
            assert_eq!(status, 429);
            assert!(
                body.contains("RATE_LIMITED") && body.contains("authenticate"),
                "{body}"
            );
        }
        other => panic!("a third unauthenticated socket got {:?}", other.err()),
    }
    // Authenticated sockets are not counted; one that authenticates gives its place back.
    let _alice = server.connect_as("alice").await;
    first
        .send_json(&json!({"type": "authenticate", "token": token("petra", None)}))
        .await
        .unwrap();
    let established = first.next_frame(WAIT).await.unwrap().value;
    assert_eq!(established["type"], "connection_established");
    let _third = server.connect(Credentials::None).await.unwrap();
}

#[tokio::test]
async fn a_socket_follows_at_most_max_followed_runs() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(200))
        .configure(|server, _| server.max_followed_runs = 2)
        .start()
        .await;
    let mut session = server.connect_as("quinn").await;
    let mut runs = Vec::new();
    for id in ["r1", "r2"] {
        session
            .start_agent(id, "data", "What did we spend?", Map::new())
            .await
            .unwrap();
        runs.push(session.wait_run_accepted(id, WAIT).await.unwrap().run_id);
    }
    session
        .start_agent("r3", "data", "What did we spend?", Map::new())
        .await
        .unwrap();
    match session.wait_run_accepted("r3", WAIT).await {
        Err(ClientError::ServerError {
            error_code, frame, ..
        }) => {
            assert_eq!(error_code, "RATE_LIMITED", "{frame}");
            assert!(frame["retry_after_ms"].as_u64().is_some(), "{frame}");
        }
        other => panic!("a third followed run got {other:?}"),
    }
    // Resuming a run the socket already follows takes no new place.
    session
        .send_json(&json!({"type": "resume", "id": "again", "run_id": runs[0], "after_seq": 0}))
        .await
        .unwrap();
    for run_id in &runs {
        let run = session.collect_run(run_id, WAIT).await.unwrap();
        assert_eq!(run.terminal_type(), Some("agent_completed"));
    }
    // Once they ended, the socket may follow again.
    session
        .start_agent("r4", "data", "What did we spend?", Map::new())
        .await
        .unwrap();
    let accepted = session.wait_run_accepted("r4", WAIT).await.unwrap();
    let run = session.collect_run(&accepted.run_id, WAIT).await.unwrap();
    assert_eq!(run.terminal_type(), Some("agent_completed"));
}

#[tokio::test]
async fn the_server_terminates_tls_and_refuses_plain_talk() {
    let ca = TestCa::new("agentwire test CA");
    let server = TestServer::builder()
        .demo_data()
        .tls(&ca.server_cert(), &ca.pem())
        .start()
        .await;
    // HTTPS with the test CA.
    let tls = agentwire_check::tls::TlsClient::new(Some(ca.pem().as_bytes())).unwrap();
    let http = HttpTarget::parse(&server.url()).unwrap().with_tls(tls);
    let health = http.get("/health", &[], WAIT).await.unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    // WSS: a whole run.
    let mut session = server.connect_as("rosa").await;
    session
        .start_agent("s1", "triage", "What did we spend?", Map::new())
        .await
        .unwrap();
    let accepted = session.wait_run_accepted("s1", WAIT).await.unwrap();
    let run = session.collect_run(&accepted.run_id, WAIT).await.unwrap();
    assert_eq!(run.terminal_type(), Some("agent_completed"));
    // Another CA's client is refused with the reason.
    let stranger = TestCa::new("another CA");
    let other = agentwire_check::tls::TlsClient::new(Some(stranger.pem().as_bytes())).unwrap();
    let err = HttpTarget::parse(&server.url())
        .unwrap()
        .with_tls(other)
        .get("/health", &[], WAIT)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not signed by a trusted CA"),
        "{err}"
    );
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut plain, WAIT).await.unwrap();
    assert!(!String::from_utf8_lossy(&answer).contains("healthy"));
    server.stop().await.unwrap();
}
