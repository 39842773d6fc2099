//! Three `agentwire serve` processes (the built binary) on one PostgreSQL database, as a user
//! deploys them behind a load balancer, and a client that lands on any of them. What a user
//! checks: a run started on A and resumed on B arrives whole, each event once; a cancel sent to
//! C stops a run executing on A; users spread over the nodes never see each other's frames; an
//! upload on B is used by a run on C; and when A is killed with SIGKILL mid-run, a survivor ends
//! its run `INTERRUPTED` once A's lease lapses, and a resume on C returns every persisted event
//! then that terminal one.
//!
//! Without `AGENTWIRE_TEST_POSTGRES_URL` this skips, saying why; under `CI` it fails.

use crate::{WAIT, agentwire};
use agentwire_check::client::{ConnectOptions, Credentials, Session};
use agentwire_check::grammar;
use agentwire_testkit::{ServeProcess, TestDatabase, sign_hs256};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const SECRET: &str = "cluster-test-secret-0123456789abcdef0123456789";
/// Short, so that the kill is noticed within seconds; long enough for a busy CI machine.
const LEASE_S: &str = "2";

fn start_node(database: &str, name: &str) -> ServeProcess {
    agentwire().serve(
        &[
            "--database",
            database,
            "--demo-data",
            "--step-delay-ms",
            "120",
            "--node-lease-s",
            LEASE_S,
            "--node-name",
            name,
        ],
        &[("AGENTWIRE_JWT_SECRET", SECRET)],
    )
}

fn token(sub: &str, org: &str) -> String {
    let exp = chrono::Utc::now().timestamp() + 3600;
    sign_hs256(
        &json!({"sub": sub, "org_id": org, "exp": exp, "scope": "usage:write"}),
        SECRET.as_bytes(),
    )
}

async fn connect(node: &ServeProcess, token: &str) -> Session {
    Session::connect(&ConnectOptions::new(
        node.ws_url(),
        Credentials::Bearer(token.to_owned()),
    ))
    .await
    .unwrap()
}

async fn start(session: &mut Session, id: &str, agent: &str, question: &str) -> String {
    session
        .start_agent(id, agent, question, Map::new())
        .await
        .unwrap();
    session.wait_run_accepted(id, WAIT).await.unwrap().run_id
}

/// Reads events of `run_id` until `until` says stop (it sees each event as read).
async fn read_until(
    session: &mut Session,
    run_id: &str,
    mut until: impl FnMut(&[Value]) -> bool,
) -> Vec<Value> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !until(&seen) {
        assert!(
            Instant::now() < deadline,
            "the run never got there: {seen:#?}"
        );
        let frame = session.next_frame(WAIT).await.unwrap().value;
        if frame["run_id"] == run_id && frame["seq"].is_u64() {
            assert!(
                !grammar::is_terminal_type(frame["type"].as_str().unwrap_or_default()),
                "the run ended too early: {frame}"
            );
            seen.push(frame);
        }
    }
    seen
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

fn whole(events: &[Value]) -> Vec<u64> {
    (1..=events.len() as u64).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_database_serve_any_run_from_any_node() {
    let Some(database) = TestDatabase::postgres() else {
        return;
    };
    let a = start_node(database.url(), "node-a");
    let b = start_node(database.url(), "node-b");
    let c = start_node(database.url(), "node-c");

    // Start on A, disconnect mid-run, resume on B: the union is the whole run, once.
    let rae = token("rae", "acme");
    let mut on_a = connect(&a, &rae).await;
    let run_id = start(&mut on_a, "r1", "supervisor", "Why did spend spike?").await;
    let seen = read_until(&mut on_a, &run_id, |seen| seen.len() >= 6).await;
    drop(on_a);
    let last = seen.last().unwrap()["seq"].as_u64().unwrap();
    let mut on_b = connect(&b, &rae).await;
    on_b.send_json(&json!({"type": "resume", "id": "r", "run_id": run_id, "after_seq": last}))
        .await
        .unwrap();
    let rest = on_b.collect_run(&run_id, WAIT).await.unwrap();
    let union: Vec<Value> = seen.into_iter().chain(rest.events).collect();
    assert!(grammar::check_run(&union).is_empty(), "{union:#?}");
    assert_eq!(union.last().unwrap()["type"], "agent_completed");
    assert_eq!(seqs(&union), whole(&union));

    // Cancel from C while A executes.
    let cal = token("cal", "acme");
    let mut on_a = connect(&a, &cal).await;
    let run_id = start(&mut on_a, "c1", "supervisor", "How can we reduce costs?").await;
    read_until(&mut on_a, &run_id, |seen| {
        seen.iter().any(|e| e["type"] == "tool_completed")
    })
    .await;
    let mut on_c = connect(&c, &cal).await;
    on_c.send_json(&json!({"type": "cancel", "id": "x", "run_id": run_id}))
        .await
        .unwrap();
    let cancelled = on_a.collect_run(&run_id, WAIT).await.unwrap();
    assert_eq!(cancelled.terminal_type(), Some("agent_cancelled"));

    // Users spread over the nodes, each with a canary in its question: no frame of one reaches
    // another.
    let nodes = [&a, &b, &c];
    let mut tasks = Vec::new();
    for i in 0..6 {
        let user = format!("iso-{i}");
        let mut session = connect(nodes[i % 3], &token(&user, &format!("org-{i}"))).await;
        tasks.push(tokio::spawn(async move {
            let canary = format!("canary-{i}-{}", uuid::Uuid::new_v4().simple());
            let question = format!("Where does our AI spend go? ref {canary}");
            let run_id = start(&mut session, "q", "data", &question).await;
            let run = session.collect_run(&run_id, WAIT).await.unwrap();
            let mut extra = Vec::new();
            while let Ok(frame) = session.next_frame(Duration::from_millis(200)).await {
                extra.push(frame.value);
            }
            (canary, run_id, run.events, extra)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let canaries: Vec<String> = results.iter().map(|r| r.0.clone()).collect();
    assert_eq!(
        results.iter().map(|r| &r.1).collect::<HashSet<_>>().len(),
        6
    );
    for (canary, run_id, events, extra) in &results {
        assert!(
            events.last().unwrap()["type"] == "agent_completed",
            "{events:#?}"
        );
        for frame in events.iter().chain(extra) {
            if let Some(other) = frame["run_id"].as_str() {
                assert_eq!(other, run_id);
            }
            let text = frame.to_string();
            for foreign in canaries.iter().filter(|c| *c != canary) {
                assert!(!text.contains(foreign.as_str()), "{canary} saw {foreign}");
            }
        }
    }

    // An upload on B is used by the next run on C (a tenant with no data before).
    let uma = token("uma", "uploads");
    let mut on_c = connect(&c, &uma).await;
    let before = start(&mut on_c, "1", "data", "What did we spend?").await;
    let run = on_c.collect_run(&before, WAIT).await.unwrap();
    // Demo data is shown to tenants without their own: the answer comes from it.
    assert!(run.completed());
    let mut body = String::new();
    for hour in 0..72 {
        let at = chrono::Utc::now() - chrono::Duration::hours(hour);
        body.push_str(&format!(
            "{{\"timestamp\":\"{}\",\"provider\":\"acme-ai\",\"model\":\"uploaded-model-xyz\",\"input_tokens\":1000000,\"output_tokens\":1000,\"cost_usd\":10.0}}\n",
            at.to_rfc3339()
        ));
    }
    let auth = format!("Bearer {uma}");
    let uploaded = agentwire_testkit::http(
        b.addr,
        "POST",
        "/api/usage?format=jsonl",
        &[
            ("authorization", &auth),
            ("content-type", "application/x-ndjson"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text());
    // The very next run on C uses it, whether or not the upload's notice has reached C: its
    // admission reads the tenant's usage version (docs/deploy.md).
    let after = start(&mut on_c, "2", "data", "Which models did we spend on?").await;
    let run = on_c.collect_run(&after, WAIT).await.unwrap();
    let answer = serde_json::to_string(&run.events).unwrap();
    assert!(
        answer.contains("uploaded-model-xyz"),
        "the run on C did not use the upload on B: {:#?}",
        run.events
    );

    // `agentwire check` with two targets runs its cases across nodes; `agentwire load` with
    // three spreads its sessions over all of them.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("check.json");
    let out = agentwire().run(
        &[
            "check",
            "--target",
            &a.url(),
            "--target",
            &b.url(),
            "--secret",
            SECRET,
            "--only",
            "4.8",
            "--only",
            "5.25",
            "--only",
            "7.4",
            "--json",
            report.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    for id in ["4.8", "5.25", "7.4"] {
        let case = report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap();
        assert_eq!(case["verdict"], "pass", "{case}");
    }
    let completed = |node: &ServeProcess| -> u64 {
        let metrics = node.http("GET", "/metrics", &[]).text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("agentwire_runs_total{outcome=\"completed\"} "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let before: Vec<u64> = nodes.iter().map(|n| completed(n)).collect();
    let targets: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let out = agentwire().run(
        &[
            "load",
            "--target",
            &targets[0],
            "--target",
            &targets[1],
            "--target",
            &targets[2],
            "--secret",
            SECRET,
            "--users",
            "6",
            "--agent",
            "triage",
            "--no-progress",
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let after: Vec<u64> = nodes.iter().map(|n| completed(n)).collect();
    for (i, (before, after)) in before.iter().zip(&after).enumerate() {
        assert_eq!(
            after - before,
            2,
            "node {i} ran {} of the 6 load runs",
            after - before
        );
    }

    // SIGKILL A mid-run: a survivor ends the run INTERRUPTED; a resume on C returns every
    // persisted event, then that terminal event.
    let kim = token("kim", "acme");
    let mut on_a = connect(&a, &kim).await;
    let run_id = start(
        &mut on_a,
        "k",
        "supervisor",
        "How can we reduce our AI costs?",
    )
    .await;
    let seen = read_until(&mut on_a, &run_id, |seen| {
        seen.iter()
            .filter(|e| e["type"] == "agent_thinking")
            .count()
            >= 2
    })
    .await;
    let killed_at = Instant::now();
    a.kill_9();
    drop(on_a);
    let mut on_c = connect(&c, &kim).await;
    on_c.send_json(&json!({"type": "resume", "id": "k", "run_id": run_id, "after_seq": 0}))
        .await
        .unwrap();
    let ended = on_c.collect_run(&run_id, WAIT).await.unwrap();
    eprintln!(
        "SIGKILL to INTERRUPTED seen on another node: {} ms (lease {LEASE_S} s)",
        killed_at.elapsed().as_millis()
    );
    let events = &ended.events;
    assert!(grammar::check_run(events).is_empty(), "{events:#?}");
    assert_eq!(
        events[..seen.len()],
        seen[..],
        "what the client saw on A is in the log"
    );
    let terminal = events.last().unwrap();
    assert_eq!(terminal["type"], "agent_error", "{terminal}");
    assert_eq!(terminal["error_code"], "INTERRUPTED", "{terminal}");
    assert_eq!(terminal["retryable"], true);
    assert_eq!(seqs(events), whole(events));
    // The sweeper logs once its sweep is finished, just after the terminal event is out.
    let swept = |node: &ServeProcess| node.log_text().contains("swept a node whose lease lapsed");
    let deadline = Instant::now() + WAIT;
    while !(swept(&b) || swept(&c)) {
        assert!(
            Instant::now() < deadline,
            "no survivor says it swept A:\n{}\n{}",
            b.log_text(),
            c.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The survivors keep serving.
    let mut on_b = connect(&b, &kim).await;
    let next = start(&mut on_b, "n", "triage", "What is this about?").await;
    assert!(on_b.collect_run(&next, WAIT).await.unwrap().completed());
}
