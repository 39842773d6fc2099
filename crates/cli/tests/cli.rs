//! The `agentwire` binary as a newcomer uses it: `token`, `ingest`, `serve` with SIGTERM, and
//! `demo` answered over a real WebSocket. Each test runs the built binary in a child process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentwire_check::client::{ConnectOptions, Credentials, Session};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_agentwire");
const SECRET: &str = "cli-test-secret-0123456789abcdef0123456789";

fn agentwire(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("AGENTWIRE_JWT_SECRET")
        .env_remove("AGENTWIRE_DATABASE")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn token_needs_a_long_enough_secret_and_signs_the_claims() {
    let missing = agentwire(&["token", "--sub", "alice"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("AGENTWIRE_JWT_SECRET"),
        "{}",
        stderr(&missing)
    );

    let short = agentwire(&["token", "--sub", "alice", "--jwt-secret", "short"]);
    assert_eq!(short.status.code(), Some(2));
    assert!(stderr(&short).contains("at least 32"), "{}", stderr(&short));

    let bad_ttl = agentwire(&[
        "token",
        "--sub",
        "a",
        "--jwt-secret",
        SECRET,
        "--ttl",
        "soon",
    ]);
    assert_eq!(bad_ttl.status.code(), Some(2));
    assert!(stderr(&bad_ttl).contains("30m"), "{}", stderr(&bad_ttl));

    let ok = agentwire(&[
        "token",
        "--sub",
        "alice",
        "--org",
        "acme",
        "--ttl",
        "2h",
        "--jwt-secret",
        SECRET,
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let token = String::from_utf8(ok.stdout).unwrap();
    let claims = claims(token.trim());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["org_id"], "acme");
    let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(ttl, 7200);
}

#[test]
fn ingest_loads_a_good_file_and_refuses_a_bad_one_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "timestamp,model,input_tokens,output_tokens,team\n\
         2026-11-01T10:00:00Z,gpt-4o,1000,50,search\n\
         2026-11-01T11:00:00Z,claude-sonnet-4,2000,80,growth\n",
    )
    .unwrap();
    let out = agentwire(&[
        "ingest",
        good.to_str().unwrap(),
        "--tenant",
        "acme",
        "--database",
        &db,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2"));

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "timestamp,model,input_tokens,output_tokens\n\
         2026-11-02T10:00:00Z,gpt-4o,1000,50\n\
         2026-11-02T11:00:00Z,gpt-4o,lots,50\n",
    )
    .unwrap();
    let out = agentwire(&[
        "ingest",
        bad.to_str().unwrap(),
        "--tenant",
        "acme",
        "--database",
        &db,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(":3:") && err.contains("input_tokens"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let count = runtime.block_on(async {
        let store = agentwire_store::connect(&db).await.unwrap();
        store.usage_count("acme").await.unwrap()
    });
    assert_eq!(count, 2, "the bad file's good row must not be stored");

    let missing = agentwire(&[
        "ingest",
        "/nonexistent/usage.csv",
        "--tenant",
        "acme",
        "--database",
        &db,
    ]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("cannot open"),
        "{}",
        stderr(&missing)
    );
}

/// Kills the child on drop, so a failing test leaves no server behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the process did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_refuses_to_start_without_a_secret() {
    let out = agentwire(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        "sqlite::memory:",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("JWT secret"), "{}", stderr(&out));
}

#[test]
fn serve_on_an_unreachable_postgres_exits_1_saying_why_without_the_password() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://aw:hunter2@127.0.0.1:{port}/agentwire");
    let out = agentwire(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        &url,
        "--jwt-secret",
        SECRET,
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot open the database postgres://aw:***@127.0.0.1"),
        "{err}"
    );
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    let out = agentwire(&[
        "serve",
        "--database",
        "sqlite::memory:",
        "--database-pool-size",
        "0",
        "--jwt-secret",
        SECRET,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--database-pool-size"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("serve.db").display());
    let child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &db,
            "--jwt-secret",
            SECRET,
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Running(child);
    let mut lines = BufReader::new(server.0.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.split("ws://").nth(1) {
            let url = rest.split_whitespace().next().unwrap_or_default();
            break url.trim_end_matches("/ws").to_owned();
        }
    };
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"healthy\""), "{response}");
    sigterm(&server.0);
    let status = wait_exit(&mut server.0, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[test]
fn demo_prints_a_token_that_gets_an_answer_with_the_planted_findings() {
    let child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--step-delay-ms", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Running(child);
    let mut lines = BufReader::new(demo.0.stdout.take().unwrap()).lines();
    let (mut ws, mut token, mut spike) = (None, None, None);
    while ws.is_none() || token.is_none() || spike.is_none() {
        let line = lines.next().expect("demo exited early").unwrap();
        let line = line.trim();
        if let Some(url) = line.strip_prefix("WebSocket:") {
            ws = Some(url.trim().to_owned());
        } else if let Some(t) = line.strip_prefix("export TOKEN=") {
            token = Some(t.to_owned());
        } else if let Some(rest) = line.split("planted cost spike on ").nth(1) {
            spike = Some(rest.split_whitespace().next().unwrap().to_owned());
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let response = runtime.block_on(async {
        let mut session = Session::connect(&ConnectOptions::new(
            ws.unwrap(),
            Credentials::Bearer(token.unwrap()),
        ))
        .await
        .unwrap();
        session
            .start_agent("1", "supervisor", "Why did our spend spike?", Map::new())
            .await
            .unwrap();
        let accepted = session
            .wait_run_accepted("1", Duration::from_secs(30))
            .await
            .unwrap();
        let run = session
            .collect_run(&accepted.run_id, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(run.violations().is_empty(), "{:?}", run.violations());
        run.response().unwrap().to_owned()
    });
    assert!(response.contains(&spike.unwrap()), "{response}");
    sigterm(&demo.0);
    let status = wait_exit(&mut demo.0, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}
