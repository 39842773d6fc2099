//! Several nodes on one PostgreSQL database, in one process: each `TestServer` here is a whole
//! node (its own store connections, notice listener, lease and sweeper) sharing the database
//! with the others, as `agentwire serve` processes do. What a user checks: a run started on one
//! node is resumed, followed and cancelled from another, each event once and in order; limits
//! hold across nodes; an upload on one node is used by the next run on another, even one admitted
//! before the upload's notice reaches its node; a node that
//! loses the database has its runs ended by a survivor, says it is not ready, and serves again
//! once the database is back, without a restart.
//!
//! The database faults go through a proxy in front of PostgreSQL, so only the node behind it
//! loses the database (stopping the shared server would break the other tests). The same with
//! real processes and SIGKILL is in `crates/cli/tests/it/cluster.rs`. Without
//! `AGENTWIRE_TEST_POSTGRES_URL` these tests skip, saying why; under `CI` they fail.

use agentwire_analytics::UsageRecord;
use agentwire_check::client::{ClientError, Session};
use agentwire_check::grammar;
use agentwire_store::StoreOptions;
use agentwire_testkit::{CuttableProxy, TestDatabase, TestServer, token, usage_writer_token};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(60);

/// A node on `database` with the demo data shown to tenants without their own.
async fn node(database: &Arc<TestDatabase>, step_delay_ms: u64) -> TestServer {
    TestServer::builder()
        .database(database)
        .demo_data()
        .step_delay(Duration::from_millis(step_delay_ms))
        .start()
        .await
}

/// Store options for a node whose database a test takes away: calls fail within seconds.
fn short_timeouts() -> StoreOptions {
    StoreOptions {
        pool_size: Some(4),
        operation_timeout: Duration::from_secs(2),
        acquire_timeout: Duration::from_secs(1),
        listener_probe_interval: Duration::from_millis(500),
    }
}

async fn start(session: &mut Session, id: &str, agent: &str, question: &str) -> String {
    session
        .start_agent(id, agent, question, Map::new())
        .await
        .unwrap();
    session.wait_run_accepted(id, WAIT).await.unwrap().run_id
}

/// Reads `n` events of `run_id` off the socket.
async fn read_events(session: &mut Session, run_id: &str, n: usize) -> Vec<Value> {
    let mut seen = Vec::new();
    while seen.len() < n {
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

fn resume(run_id: &str, after_seq: u64) -> Value {
    json!({"type": "resume", "id": format!("resume-{after_seq}"), "run_id": run_id, "after_seq": after_seq})
}

/// Polls `GET /health/ready` until it answers `status` (readiness is what a load balancer
/// polls; the deadline only keeps a broken test from hanging).
async fn wait_ready(server: &TestServer, status: u16) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let response = server.get("/health/ready", &[]).await;
        if response.status == status {
            return response.json();
        }
        assert!(
            Instant::now() < deadline,
            "/health/ready never answered {status}: {} {}",
            response.status,
            response.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_resumed_and_followed_on_another_node_arrives_whole_and_once() {
    let Some(database) = TestDatabase::postgres() else {
        return;
    };
    let database = Arc::new(database);
    let a = node(&database, 40).await;
    let b = node(&database, 40).await;
    let token = token("rae", None);

    let mut on_a = a.connect_bearer(&token).await;
    let run_id = start(&mut on_a, "r1", "supervisor", "Why did spend spike?").await;
    // A second client follows the whole run on B from the start, while it executes on A.
    let mut follower = b.connect_bearer(&token).await;
    follower.send_json(&resume(&run_id, 0)).await.unwrap();
    let seen = read_events(&mut on_a, &run_id, 6).await;
    drop(on_a); // the socket goes away mid-run; the run does not
    let last_seq = seen.last().unwrap()["seq"].as_u64().unwrap();

    let mut on_b = b.connect_bearer(&token).await;
    on_b.send_json(&resume(&run_id, last_seq)).await.unwrap();
    let rest = on_b.collect_run(&run_id, WAIT).await.unwrap();
    let union: Vec<Value> = seen.into_iter().chain(rest.events).collect();
    assert!(grammar::check_run(&union).is_empty(), "{union:#?}");
    assert_eq!(union.last().unwrap()["type"], "agent_completed");
    assert_eq!(seqs(&union), (1..=union.len() as u64).collect::<Vec<_>>());

    let followed = follower.collect_run(&run_id, WAIT).await.unwrap();
    assert_eq!(
        followed.events, union,
        "the follower on B saw the run as it was sent on A"
    );

    // Once finished, the history reads the same from either node.
    let auth = format!("Bearer {token}");
    for server in [&a, &b] {
        let stored = server
            .get(
                &format!("/api/runs/{run_id}/events"),
                &[("authorization", &auth)],
            )
            .await;
        assert_eq!(stored.json(), Value::Array(union.clone()));
    }
    // Another user cannot follow it from either node, nor learn that it exists.
    let mut eve = b.connect_as("eve").await;
    eve.send_json(&resume(&run_id, 0)).await.unwrap();
    let frame = eve.next_frame(WAIT).await.unwrap().value;
    assert_eq!(frame["error_code"], "RUN_NOT_FOUND", "{frame}");
}

/// A node that starts on a shared database ends no run of the nodes already there (on SQLite,
/// which one process owns, startup ends every run a previous process left).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_leaves_the_runs_of_live_nodes_alone() {
    let Some(database) = TestDatabase::postgres() else {
        return;
    };
    let database = Arc::new(database);
    let a = node(&database, 60).await;
    let token = token("joy", None);
    let mut on_a = a.connect_bearer(&token).await;
    let run_id = start(
        &mut on_a,
        "j",
        "supervisor",
        "How can we reduce our AI costs?",
    )
    .await;
    let first = read_events(&mut on_a, &run_id, 3).await;
    let b = node(&database, 60).await;
    let rest = on_a.collect_run(&run_id, WAIT).await.unwrap();
    assert!(rest.completed(), "{:#?}", rest.events);
    // And the newcomer serves it too, whole.
    let mut on_b = b.connect_bearer(&token).await;
    on_b.send_json(&resume(&run_id, 0)).await.unwrap();
    let replay = on_b.collect_run(&run_id, WAIT).await.unwrap();
    let sent: Vec<Value> = first.into_iter().chain(rest.events).collect();
    assert_eq!(replay.events, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_from_another_node_stops_the_run_where_it_executes() {
    let Some(database) = TestDatabase::postgres() else {
        return;
    };
    let database = Arc::new(database);
    let a = node(&database, 60).await;
    let b = node(&database, 60).await;
    let token = token("cal", None);
    let mut on_a = a.connect_bearer(&token).await;
    let run_id = start(&mut on_a, "c1", "supervisor", "How can we reduce costs?").await;
    on_a.wait_for(WAIT, |f| {
        f["type"] == "tool_completed" && f["run_id"] == run_id.as_str()
    })
    .await
    .unwrap();
    let mut on_b = b.connect_bearer(&token).await;
    on_b.send_json(&json!({"type": "cancel", "id": "x", "run_id": run_id}))
        .await
        .unwrap();
    let run = on_a.collect_run(&run_id, WAIT).await.unwrap();
    assert_eq!(run.terminal_type(), Some("agent_cancelled"));
    // Nothing of this run reaches A's socket after the terminal event.
    match on_a.next_frame(Duration::from_millis(500)).await {
        Err(ClientError::Timeout { .. }) => {}
        other => panic!("a frame came after agent_cancelled: {other:?}"),
    }
    on_b.send_json(&resume(&run_id, 0)).await.unwrap();
    let stored = on_b.collect_run(&run_id, WAIT).await.unwrap();
    assert!(grammar::check_run(&stored.events).is_empty());
    assert_eq!(stored.terminal_type(), Some("agent_cancelled"));
    assert!(stored.events.len() < 40, "the run went on to the end");
    // Cancelling a finished run from any node changes nothing and is not an error.
    on_b.send_json(&json!({"type": "cancel", "id": "again", "run_id": run_id}))
        .await
        .unwrap();
    on_b.send_json(&json!({"type": "ping", "id": "p"}))
        .await
        .unwrap();
    let frame = on_b.next_frame(WAIT).await.unwrap().value;
    assert_eq!(frame["type"], "pong", "{frame}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_limits_hold_across_nodes_and_stay_within_a_tenant() {
    let Some(database) = TestDatabase::postgres() else {
        return;
    };
    let database = Arc::new(database);
    let limited = |db: &Arc<TestDatabase>| {
        TestServer::builder()
            .database(db)
            .demo_data()
            .step_delay(Duration::from_millis(150))
            .max_runs_per_user(2)
    };
    let a = limited(&database).start().await;
    let b = limited(&database).start().await;
    let acme = agentwire_testkit::sign(&json!({
        "sub": "lee", "org_id": "acme", "exp": chrono::Utc::now().timestamp() + 600
    }));
    let other = agentwire_testkit::sign(&json!({
        "sub": "lee", "org_id": "other-co", "exp": chrono::Utc::now().timestamp() + 600
    }));
    let on_thread = |id: &str| {
        let mut payload = Map::new();
        payload.insert("thread_id".into(), json!(id));
        payload
    };
    let mut on_a = a.connect_bearer(&acme).await;
    on_a.start_agent("a", "data", "spend?", on_thread("t-1"))
        .await
        .unwrap();
    let first = on_a.wait_run_accepted("a", WAIT).await.unwrap();

    // The same thread on the other node is busy.
    let mut on_b = b.connect_bearer(&acme).await;
    on_b.start_agent("b", "data", "spend again?", on_thread("t-1"))
        .await
        .unwrap();
    match on_b.wait_run_accepted("b", WAIT).await {
        Err(ClientError::ServerError {
            error_code, frame, ..
        }) => {
            assert_eq!(error_code, "RUN_CONFLICT");
            assert_eq!(frame["run_id"], first.run_id.as_str());
        }
        other => panic!("{other:?}"),
    }
    // The same user and thread id in another tenant is another thread, and never learns the
    // first tenant's run id.
    let mut elsewhere = b.connect_bearer(&other).await;
    elsewhere
        .start_agent("e", "data", "spend?", on_thread("t-1"))
        .await
        .unwrap();
    let theirs = elsewhere.wait_run_accepted("e", WAIT).await.unwrap();
    assert_ne!(theirs.run_id, first.run_id);

    // Two runs of the user in flight (one per node): a third, on either node, is refused.
    let second = start(&mut on_b, "c", "triage", "what is this about?").await;
    for session in [&mut on_a, &mut on_b] {
        session
            .start_agent("d", "data", "one more?", Map::new())
            .await
            .unwrap();
        match session.wait_run_accepted("d", WAIT).await {
            Err(ClientError::ServerError {
                error_code, frame, ..
            }) => {
                assert_eq!(error_code, "RATE_LIMITED", "{frame}");
                assert!(frame["retry_after_ms"].is_u64(), "{frame}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Once one ends, the next is admitted on either node.
    on_a.collect_run(&first.run_id, WAIT).await.unwrap();
    let third = start(&mut on_b, "f", "triage", "and now?").await;
    assert!(on_b.collect_run(&second, WAIT).await.unwrap().completed());
    assert!(on_b.collect_run(&third, WAIT).await.unwrap().completed());
}

/// A session of `user` in `tenant`, which has no data on any node: its first run (seq "1") ends
/// `NO_DATA`, and leaves the node holding the tenant's empty snapshot in memory.
async fn without_data(node: &TestServer, user: &str, tenant: &str) -> Session {
    let token = agentwire_testkit::sign(&json!({
        "sub": user, "org_id": tenant, "exp": chrono::Utc::now().timestamp() + 600
    }));
    let mut session = node.connect_bearer(&token).await;
    let before = start(&mut session, "1", "data", "What did we spend?").await;
    let run = session.collect_run(&before, WAIT).await.unwrap();
    assert_eq!(run.events.last().unwrap()["error_code"], "NO_DATA");
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_on_one_node_is_used_by_the_next_run_on_another() {
    let Some(database) = TestDatabase::postgres() else {
        return;
    };
    let database = Arc::new(database);
    // No demo data: a tenant sees only what it uploaded.
    let a = TestServer::builder().database(&database).start().await;
    let b = TestServer::builder().database(&database).start().await;
    let mut on_b = without_data(&b, "uma", "uplo").await;

    let records: Vec<UsageRecord> = (0..48)
        .map(|hour| {
            let at = chrono::Utc::now() - chrono::Duration::hours(hour);
            UsageRecord::new(at, "openai", "gpt-4o", 1_000_000, 100_000)
        })
        .collect();
    let body: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let auth = format!("Bearer {}", usage_writer_token("uma", "uplo"));
    let uploaded = a
        .post(
            "/api/usage?format=jsonl",
            &[
                ("authorization", &auth),
                ("content-type", "application/x-ndjson"),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text());

    let after = start(&mut on_b, "2", "data", "What did we spend?").await;
    let run = on_b.collect_run(&after, WAIT).await.unwrap();
    // The tenant had no data on any node before: only the upload can be answered from.
    assert!(run.completed(), "{:#?}", run.events);
}

/// The upload's notice reaches other nodes after its commit: a run admitted on another node in
/// between must use the upload all the same, and read its question against it (the period a
/// question without one means ends on the last day of the data). Here the notices never come
/// (the uploads are written into the database as a committed upload is, with the tenant's usage
/// version, but without a notice), so only the version the run's admission reads can tell the
/// node that the records it holds in memory are stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_admitted_after_an_upload_commits_uses_it_before_the_notice_arrives() {
    let Some(database) = TestDatabase::postgres() else {
        return;
    };
    let database = Arc::new(database);
    let node = TestServer::builder().database(&database).start().await;
    let mut session = without_data(&node, "lee", "late").await;

    // Two days of records, two months ago: the next run's question is read against them.
    upload_without_notice(&database, "late", "gpt-4o", 60 * 24).await;
    let after = start(&mut session, "2", "data", "What did we spend?").await;
    let run = session.collect_run(&after, WAIT).await.unwrap();
    assert!(run.completed(), "{:#?}", run.events);

    // Two days up to now, of a model only this upload has.
    upload_without_notice(&database, "late", "uploaded-model-xyz", 0).await;
    let latest = start(&mut session, "3", "data", "Which models did we spend on?").await;
    let run = session.collect_run(&latest, WAIT).await.unwrap();
    let answer = serde_json::to_string(&run.events).unwrap();
    assert!(
        answer.contains("uploaded-model-xyz"),
        "the run did not use the latest upload: {:#?}",
        run.events
    );
}

/// 48 hourly records of `model` for `tenant`, the newest `hours_ago` hours before now, written
/// with the usage version bump of their commit in one transaction, as a committed upload is, but
/// with no notice to any node.
async fn upload_without_notice(database: &TestDatabase, tenant: &str, model: &str, hours_ago: i64) {
    use sqlx::Connection as _;
    let mut db = sqlx::PgConnection::connect(database.url()).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO tenants (tenant_id, created_at) VALUES ($1, 0) \
         ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO usage_records \
         (tenant_id, ts, provider, model, input_tokens, output_tokens, request_count, cost_usd) \
         SELECT $1, (extract(epoch FROM now()) * 1000)::bigint - h * 3600000, \
                'acme-ai', $2, 1000000, 100000, 1, 10.0 \
         FROM generate_series($3::bigint, $3::bigint + 47) AS h",
    )
    .bind(tenant)
    .bind(model)
    .bind(hours_ago)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE tenants SET usage_version = usage_version + 1 WHERE tenant_id = $1")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    db.close().await.unwrap();
}

/// A node cut off from the database: its own clients get a retryable error instead of waiting,
/// it says it is not ready, a survivor ends its run `INTERRUPTED` once its lease lapses (the
/// run's log then holds every persisted event and the terminal one), and when the database is
/// back the node joins again under a new id and serves, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_the_database_is_swept_and_serves_again_when_it_returns() {
    let Some(database) = TestDatabase::postgres() else {
        return;
    };
    let database = Arc::new(database);
    let proxy = CuttableProxy::start(database.server_addr()).await;
    let lease = Duration::from_secs(3);
    let a = TestServer::builder()
        .database(&database)
        .database_url(database.url_via(proxy.addr))
        .store_options(short_timeouts())
        .node_lease(lease)
        .demo_data()
        .step_delay(Duration::from_millis(150))
        .start()
        .await;
    let b = TestServer::builder()
        .database(&database)
        .node_lease(lease)
        .demo_data()
        .start()
        .await;
    let a_node = a.state.engine.node_id().unwrap();
    let token = token("noa", None);
    let mut on_a = a.connect_bearer(&token).await;
    let run_id = start(
        &mut on_a,
        "r",
        "supervisor",
        "How can we reduce our AI costs?",
    )
    .await;
    let seen = read_events(&mut on_a, &run_id, 3).await;

    proxy.go_down();
    // A's client is told, retryably, rather than left waiting.
    let run = on_a.collect_run(&run_id, WAIT).await.unwrap();
    let last = run.events.last().unwrap();
    assert_eq!(last["type"], "agent_error", "{last}");
    assert_eq!(last["error_code"], "UNAVAILABLE", "{last}");
    assert_eq!(last["retryable"], true);
    let ready = wait_ready(&a, 503).await;
    assert_eq!(ready["status"], "not_ready");
    on_a.start_agent("n", "data", "spend?", Map::new())
        .await
        .unwrap();
    match on_a.wait_run_accepted("n", WAIT).await {
        Err(ClientError::ServerError { error_code, .. }) => assert_eq!(error_code, "UNAVAILABLE"),
        other => panic!("{other:?}"),
    }

    // B ends the run once A's lease lapses; a client on B reads the whole log.
    let mut on_b = b.connect_bearer(&token).await;
    on_b.send_json(&resume(&run_id, 0)).await.unwrap();
    let ended = on_b.collect_run(&run_id, WAIT).await.unwrap();
    assert!(
        grammar::check_run(&ended.events).is_empty(),
        "{:#?}",
        ended.events
    );
    assert_eq!(
        ended.events[..seen.len()],
        seen[..],
        "what A's client saw is in the log"
    );
    let terminal = ended.events.last().unwrap();
    assert_eq!(terminal["error_code"], "INTERRUPTED", "{terminal}");
    assert_eq!(
        seqs(&ended.events),
        (1..=ended.events.len() as u64).collect::<Vec<_>>()
    );

    // The database comes back: A learns its runs were taken over, joins again and serves.
    proxy.come_back();
    wait_ready(&a, 200).await;
    assert_ne!(
        a.state.engine.node_id().unwrap(),
        a_node,
        "A joined under a new id"
    );
    let mut again = a.connect_bearer(&token).await;
    let run_id = start(&mut again, "after", "triage", "What is this about?").await;
    assert!(again.collect_run(&run_id, WAIT).await.unwrap().completed());
}

/// A database that goes away for less than a lease: the run that could not write ends with a
/// retryable error, and once the database is back the node itself records the end of that run
/// (no other node is involved: its lease never lapsed in the database's eyes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_records_the_end_of_runs_it_could_not_write_once_the_database_returns() {
    let Some(database) = TestDatabase::postgres() else {
        return;
    };
    let database = Arc::new(database);
    let proxy = CuttableProxy::start(database.server_addr()).await;
    let a = TestServer::builder()
        .database(&database)
        .database_url(database.url_via(proxy.addr))
        .store_options(short_timeouts())
        .node_lease(Duration::from_secs(30))
        .demo_data()
        .step_delay(Duration::from_millis(150))
        .start()
        .await;
    let token = token("ola", None);
    let mut on_a = a.connect_bearer(&token).await;
    let run_id = start(
        &mut on_a,
        "r",
        "supervisor",
        "How can we reduce our AI costs?",
    )
    .await;
    read_events(&mut on_a, &run_id, 3).await;
    proxy.go_down();
    let run = on_a.collect_run(&run_id, WAIT).await.unwrap();
    assert_eq!(run.events.last().unwrap()["error_code"], "UNAVAILABLE");
    wait_ready(&a, 503).await;
    proxy.come_back();
    wait_ready(&a, 200).await;

    // The log gets its terminal event from the node's own check, within a few renewals.
    let deadline = Instant::now() + WAIT;
    let auth = format!("Bearer {token}");
    let stored = loop {
        let stored = a
            .get(
                &format!("/api/runs/{run_id}/events"),
                &[("authorization", &auth)],
            )
            .await;
        let events = stored.json();
        let events = events.as_array().unwrap().clone();
        if events
            .last()
            .is_some_and(|e| grammar::is_terminal_type(e["type"].as_str().unwrap_or_default()))
        {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "the run was never ended: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(grammar::check_run(&stored).is_empty(), "{stored:#?}");
    assert_eq!(stored.last().unwrap()["error_code"], "INTERRUPTED");
    // The thread is free again.
    let again = start(&mut on_a, "n", "triage", "spend?").await;
    assert!(on_a.collect_run(&again, WAIT).await.unwrap().completed());
}
