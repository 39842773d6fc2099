//! Crash and restart with the real binary (issue 5): `agentwire serve` is killed with SIGKILL in
//! the middle of a run and started again on the same SQLite database. What a user checks:
//! `resume` of the run returns every event they saw before the crash, unchanged, then the events
//! persisted after it, then a terminal `agent_error` `INTERRUPTED` (retryable); `seq` has no gap
//! and no duplicate; the run's grammar holds (every tool call closed); and a new run works.
//!
//! Two kills: one between agent steps, one while a tool is computing (right after its
//! `tool_executing` was seen), the spot where a tool call could be left open.

use crate::{WAIT, agentwire};
use agentwire_check::client::{ConnectOptions, Credentials, Session};
use agentwire_check::grammar;
use agentwire_testkit::{ServeProcess, TestDatabase};
use serde_json::{Map, Value, json};
use std::time::Instant;

const SECRET: &str = "crash-test-secret-0123456789abcdef0123456789";

fn start_server(database: &str) -> ServeProcess {
    agentwire().serve(
        &[
            "--database",
            database,
            "--demo-data",
            "--step-delay-ms",
            "150",
        ],
        &[("AGENTWIRE_JWT_SECRET", SECRET)],
    )
}

async fn connect(server: &ServeProcess, token: &str) -> Session {
    Session::connect(&ConnectOptions::new(
        server.ws_url(),
        Credentials::Bearer(token.to_owned()),
    ))
    .await
    .unwrap()
}

/// Where to pull the plug.
#[derive(Clone, Copy, Debug)]
enum KillPoint {
    /// After the second `agent_thinking`, while the run waits its step delay.
    BetweenSteps,
    /// As soon as a `tool_executing` arrives, while the tool computes.
    DuringATool,
}

/// Starts a supervisor run and reads its events until the kill point. Returns the run id and the
/// events seen.
async fn run_until(session: &mut Session, point: KillPoint) -> (String, Vec<Value>) {
    session
        .start_agent(
            "crash",
            "supervisor",
            "How can we reduce our AI costs?",
            Map::new(),
        )
        .await
        .unwrap();
    let run_id = session
        .wait_run_accepted("crash", WAIT)
        .await
        .unwrap()
        .run_id;
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the kill point never came: {seen:#?}"
        );
        let frame = session.next_frame(WAIT).await.unwrap().value;
        if frame["run_id"] != run_id.as_str() {
            continue;
        }
        assert!(
            !grammar::is_terminal_type(frame["type"].as_str().unwrap_or_default()),
            "the run ended before the kill: {frame}"
        );
        let kind = frame["type"].as_str().unwrap_or_default().to_owned();
        seen.push(frame);
        let thoughts = seen
            .iter()
            .filter(|e| e["type"] == "agent_thinking")
            .count();
        match point {
            KillPoint::BetweenSteps if kind == "agent_thinking" && thoughts >= 2 => break,
            KillPoint::DuringATool if kind == "tool_executing" => break,
            _ => {}
        }
    }
    (run_id, seen)
}

async fn crash_and_resume(point: KillPoint) {
    // Startup recovery is SQLite's (one process owns the file); on PostgreSQL a survivor ends
    // a dead node's runs instead (`cluster.rs`).
    let database = TestDatabase::sqlite();
    let token = agentwire().token("carla", "acme", SECRET);

    let server = start_server(database.url());
    let mut session = connect(&server, &token).await;
    let (run_id, seen) = run_until(&mut session, point).await;
    let first_log = server.log_text();
    server.kill_9();
    drop(session);

    let server = start_server(database.url());
    let mut session = connect(&server, &token).await;
    session
        .send_json(
            &json!({"type": "resume", "id": "after-crash", "run_id": run_id, "after_seq": 0}),
        )
        .await
        .unwrap();
    let replay = session.collect_run(&run_id, WAIT).await.unwrap();
    let events = &replay.events;

    // Every event seen before the crash comes back unchanged, in place.
    assert!(events.len() > seen.len(), "{point:?}: {events:#?}");
    assert_eq!(
        &events[..seen.len()],
        &seen[..],
        "{point:?}: the log changed"
    );
    // No gap, no duplicate.
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "{point:?}"
    );
    // One terminal event, INTERRUPTED and retryable, and the grammar holds (tool calls closed).
    let last = events.last().unwrap();
    assert_eq!(last["type"], "agent_error", "{point:?}: {last}");
    assert_eq!(last["error_code"], "INTERRUPTED", "{point:?}: {last}");
    assert_eq!(last["retryable"], true, "{point:?}: {last}");
    let violations = grammar::check_run(events);
    assert!(
        violations.is_empty(),
        "{point:?}: {violations:#?}\n{events:#?}"
    );
    let log = server.log_text();
    assert!(
        log.contains("INTERRUPTED"),
        "{point:?}: the restart did not say so:\n{log}"
    );

    // The same replay over HTTP, and a new run on the restarted server completes.
    let http = server.http(
        "GET",
        &format!("/api/runs/{run_id}/events"),
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(http.status, 200, "{}", http.text());
    let stored: Vec<Value> = serde_json::from_slice(&http.body).unwrap();
    assert_eq!(
        &stored, events,
        "{point:?}: HTTP and WebSocket replays differ"
    );
    session
        .start_agent("again", "data", "What did we spend?", Map::new())
        .await
        .unwrap();
    let again = session
        .wait_run_accepted("again", WAIT)
        .await
        .unwrap()
        .run_id;
    let run = session.collect_run(&again, WAIT).await.unwrap();
    assert_eq!(run.terminal_type(), Some("agent_completed"));

    // Neither process logged the token or the secret.
    for text in [&first_log, &log] {
        assert!(!text.contains(&token), "a token is in the log");
        assert!(!text.contains(SECRET), "the secret is in the log");
    }
    // Whether the kill left a tool call open, which the restart then closed.
    let open_tool = events.iter().any(|e| {
        e["type"] == "tool_completed"
            && e["status"] == "error"
            && e["result"]
                .as_str()
                .is_some_and(|r| r.contains("server stopped"))
    });
    println!(
        "{point:?}: {} events before the kill, {} after restart (tool call left open by the kill: {open_tool})",
        seen.len(),
        events.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_steps_then_resume_ends_interrupted() {
    crash_and_resume(KillPoint::BetweenSteps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_tool_then_resume_ends_interrupted_with_the_tool_closed() {
    crash_and_resume(KillPoint::DuringATool).await;
}
