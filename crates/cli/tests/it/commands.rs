//! The `agentwire` binary as a newcomer uses it: `token`, `ingest`, `serve` with SIGTERM, and
//! `demo` answered over a real WebSocket. Each test runs the built binary in a child process.

use crate::{agentwire, run};
use agentwire_check::client::{ConnectOptions, Credentials, Session};
use agentwire_testkit::{ChildProcess, TestDatabase, decode_claims, http_blocking};
use serde_json::Map;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

const SECRET: &str = "cli-test-secret-0123456789abcdef0123456789";

#[test]
fn token_needs_a_long_enough_secret_and_signs_the_claims() {
    let missing = run(&["token", "--sub", "alice"]);
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("AGENTWIRE_JWT_SECRET"),
        "{}",
        missing.stderr
    );

    let short = run(&["token", "--sub", "alice", "--jwt-secret", "short"]);
    assert_eq!(short.code, Some(2));
    assert!(short.stderr.contains("at least 32"), "{}", short.stderr);

    let bad_ttl = run(&[
        "token",
        "--sub",
        "a",
        "--jwt-secret",
        SECRET,
        "--ttl",
        "soon",
    ]);
    assert_eq!(bad_ttl.code, Some(2));
    assert!(bad_ttl.stderr.contains("30m"), "{}", bad_ttl.stderr);

    let ok = run(&[
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
    assert!(ok.success(), "{}", ok.stderr);
    let claims = decode_claims(ok.stdout.trim());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["org_id"], "acme");
    let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(ttl, 7200);
}

#[test]
fn ingest_loads_a_good_file_and_refuses_a_bad_one_whole() {
    let database = TestDatabase::new();
    let db = database.url();
    let good = database.dir().join("good.csv");
    std::fs::write(
        &good,
        "timestamp,model,input_tokens,output_tokens,team\n\
         2026-11-01T10:00:00Z,gpt-4o,1000,50,search\n\
         2026-11-01T11:00:00Z,claude-sonnet-4,2000,80,growth\n",
    )
    .unwrap();
    let out = run(&[
        "ingest",
        good.to_str().unwrap(),
        "--tenant",
        "acme",
        "--database",
        db,
    ]);
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("imported 2"));

    let bad = database.dir().join("bad.csv");
    std::fs::write(
        &bad,
        "timestamp,model,input_tokens,output_tokens\n\
         2026-11-02T10:00:00Z,gpt-4o,1000,50\n\
         2026-11-02T11:00:00Z,gpt-4o,lots,50\n",
    )
    .unwrap();
    let out = run(&[
        "ingest",
        bad.to_str().unwrap(),
        "--tenant",
        "acme",
        "--database",
        db,
    ]);
    assert_eq!(out.code, Some(2));
    let err = out.stderr;
    assert!(err.contains(":3:") && err.contains("input_tokens"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let count = runtime.block_on(async {
        let store = database.connect().await;
        store.usage_count("acme").await.unwrap()
    });
    assert_eq!(count, 2, "the bad file's good row must not be stored");

    let missing = run(&[
        "ingest",
        "/nonexistent/usage.csv",
        "--tenant",
        "acme",
        "--database",
        db,
    ]);
    assert_eq!(missing.code, Some(2));
    assert!(missing.stderr.contains("cannot open"), "{}", missing.stderr);
}

/// Issue 15: the retention age is a flag of `serve`, with its variable and default.
#[test]
fn serve_help_shows_the_retention_flag() {
    let out = run(&["serve", "--help"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for text in [
        "--retain-runs-days",
        "AGENTWIRE_RETAIN_RUNS_DAYS",
        "[default: 30]",
    ] {
        assert!(
            out.stdout.contains(text),
            "{text} missing in\n{}",
            out.stdout
        );
    }
}

#[test]
fn serve_refuses_to_start_without_a_secret() {
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        "sqlite::memory:",
    ]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("JWT secret"), "{}", out.stderr);
}

#[test]
fn serve_on_an_unreachable_postgres_exits_1_saying_why_without_the_password() {
    let addr = agentwire_testkit::unused_port();
    let url = format!("postgres://aw:hunter2@{addr}/agentwire");
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        &url,
        "--jwt-secret",
        SECRET,
    ]);
    let err = &out.stderr;
    assert_eq!(out.code, Some(1), "{err}");
    assert!(
        err.contains("cannot open the database postgres://aw:***@127.0.0.1"),
        "{err}"
    );
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    let out = run(&[
        "serve",
        "--database",
        "sqlite::memory:",
        "--database-pool-size",
        "0",
        "--jwt-secret",
        SECRET,
    ]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("--database-pool-size"),
        "{}",
        out.stderr
    );
}

#[test]
fn serve_answers_health_and_stops_cleanly_on_sigterm() {
    let database = TestDatabase::new();
    let mut server =
        agentwire().serve(&["--database", database.url(), "--jwt-secret", SECRET], &[]);
    let response = http_blocking(server.addr, "GET", "/health", &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.text().contains("\"healthy\""),
        "{}",
        response.text()
    );
    server.process.sigterm();
    let status = server.process.wait_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "{status:?}; its log:\n{}",
        server.log_text()
    );
}

#[test]
fn demo_prints_a_token_that_gets_an_answer_with_the_planted_findings() {
    let mut command =
        agentwire().command(&["demo", "--listen", "127.0.0.1:0", "--step-delay-ms", "1"]);
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut demo = ChildProcess::spawn(command);
    let mut lines = BufReader::new(demo.child.stdout.take().unwrap()).lines();
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
    demo.sigterm();
    let status = demo.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// A tenant whose load and analyses take seconds: a million requests over 90 days.
fn write_big_usage_file(path: &std::path::Path) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(
        out,
        "timestamp,model,input_tokens,output_tokens,team,feature"
    )
    .unwrap();
    for r in agentwire_analytics::bulk_usage(1_000_000) {
        writeln!(
            out,
            "{},{},{},{},{},{}",
            r.timestamp.format("%Y-%m-%dT%H:%M:%SZ"),
            r.model,
            r.input_tokens,
            r.output_tokens,
            r.team.unwrap_or_default(),
            r.feature.unwrap_or_default()
        )
        .unwrap();
    }
    out.flush().unwrap();
}

#[test]
fn serve_exits_on_sigterm_within_the_drain_timeout_while_a_run_is_busy_with_a_large_tenant() {
    let database = TestDatabase::new();
    let file = database.dir().join("big.csv");
    write_big_usage_file(&file);
    let out = run(&[
        "ingest",
        file.to_str().unwrap(),
        "--tenant",
        "big",
        "--database",
        database.url(),
    ]);
    assert!(out.success(), "{}", out.stderr);
    let drain = Duration::from_secs(1);
    let mut server = agentwire().serve(
        &[
            "--database",
            database.url(),
            "--jwt-secret",
            SECRET,
            "--drain-timeout-s",
            "1",
        ],
        &[],
    );
    let token = agentwire().token("alice", "big", SECRET);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut session = Session::connect(&ConnectOptions::new(
            server.ws_url(),
            Credentials::Bearer(token),
        ))
        .await
        .unwrap();
        session
            .start_agent(
                "1",
                "supervisor",
                "How can we reduce our AI costs?",
                Map::new(),
            )
            .await
            .unwrap();
        session
            .wait_run_accepted("1", Duration::from_secs(30))
            .await
            .unwrap();
        // The run is now reading the tenant's million records, then analysing them: busy for
        // many seconds. The drain timeout interrupts it; nothing it computes may hold the
        // process past that (the bound is a hang detector, not a measure).
        server.process.sigterm();
        let status = server.process.wait_exit(drain + Duration::from_secs(10));
        assert!(
            status.success(),
            "{status:?}; its log:\n{}",
            server.log_text()
        );
    });
}
