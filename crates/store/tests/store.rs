//! Integration tests of the SQLite store against real database files in temporary directories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use agentwire_store::{
    LATEST_SCHEMA_VERSION, RunRecord, RunStatus, SqliteStore, Store, StoreError, StoredEvent,
    UsageRecord,
};
use chrono::{DateTime, TimeZone, Utc};
use tempfile::TempDir;

fn db_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("agentwire.db").display())
}

async fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::connect(&db_url(dir)).await.unwrap()
}

/// Millisecond-precision time (the store keeps milliseconds).
fn at(ms_offset: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_764_000_000_000 + ms_offset)
        .unwrap()
}

fn minimal(ts: DateTime<Utc>, model: &str) -> UsageRecord {
    UsageRecord {
        timestamp: ts,
        provider: "openai".into(),
        model: model.into(),
        input_tokens: 100,
        output_tokens: 20,
        request_count: 1,
        cache_read_input_tokens: None,
        cache_write_input_tokens: None,
        reasoning_tokens: None,
        latency_ms: None,
        ttft_ms: None,
        status: None,
        service_tier: None,
        max_tokens: None,
        cost_usd: None,
        user_id: None,
        team: None,
        project: None,
        feature: None,
        session_id: None,
        prompt_hash: None,
        prefix_hash: None,
        tags: None,
    }
}

fn full(ts: DateTime<Utc>, i: u64) -> UsageRecord {
    UsageRecord {
        timestamp: ts,
        provider: "anthropic".into(),
        model: format!("claude-{i}"),
        input_tokens: 1_000 + i,
        output_tokens: 200 + i,
        request_count: 3,
        cache_read_input_tokens: Some(400),
        cache_write_input_tokens: Some(50),
        reasoning_tokens: Some(30),
        latency_ms: Some(812.5),
        ttft_ms: Some(120.25),
        status: Some("success".into()),
        service_tier: Some("standard".into()),
        max_tokens: Some(4096),
        cost_usd: Some(0.012_345),
        user_id: Some("u-7".into()),
        team: Some("search".into()),
        project: Some("assist".into()),
        feature: Some("summarize".into()),
        session_id: Some("s-1".into()),
        prompt_hash: Some("ph".into()),
        prefix_hash: Some("xh".into()),
        tags: Some("env=prod;region=eu".into()),
    }
}

fn run(run_id: &str, user_id: &str, thread_id: &str, created_at: DateTime<Utc>) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        thread_id: thread_id.into(),
        user_id: user_id.into(),
        tenant_id: "acme".into(),
        agent: "supervisor".into(),
        user_request: "where does the money go?".into(),
        status: RunStatus::Accepted,
        created_at,
        finished_at: None,
        last_seq: 0,
    }
}

fn seqs(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn usage_round_trips_every_field_in_time_order() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let records = vec![
        full(at(3_000), 3),
        minimal(at(1_000), "gpt-4o"),
        full(at(2_000), 2),
        UsageRecord {
            // Extremes that must survive: u64 at i64::MAX, zero, negative-looking floats.
            input_tokens: u64::try_from(i64::MAX).unwrap(),
            output_tokens: 0,
            latency_ms: Some(-0.5),
            ttft_ms: Some(5e-324),
            cost_usd: Some(f64::MAX),
            team: Some("nul \0 inside, tab \t, newline \n, \\ backslash, \u{1F4B8}".into()),
            tags: Some("ünïcode ✓ 'quotes' \"and\" ; DROP TABLE runs; --".into()),
            ..full(at(1_500), 9)
        },
    ];
    assert_eq!(store.insert_usage("acme", &records).await.unwrap(), 4);
    assert_eq!(store.usage_count("acme").await.unwrap(), 4);

    let mut expected = records.clone();
    expected.sort_by_key(|r| r.timestamp);
    assert_eq!(store.load_usage("acme").await.unwrap(), expected);
}

#[tokio::test]
async fn equal_timestamps_load_in_insertion_order_and_nan_reads_back_as_none() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let mut nan = minimal(at(0), "b");
    nan.cost_usd = Some(f64::NAN);
    store
        .insert_usage("acme", &[minimal(at(0), "a"), nan, minimal(at(0), "c")])
        .await
        .unwrap();
    let loaded = store.load_usage("acme").await.unwrap();
    let models: Vec<&str> = loaded.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(models, ["a", "b", "c"]);
    // SQLite stores NaN as NULL; documented on Store::insert_usage.
    assert_eq!(loaded[1].cost_usd, None);
}

#[tokio::test]
async fn tenants_never_see_each_others_usage() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    store.ensure_tenant("a").await.unwrap();
    store.ensure_tenant("a").await.unwrap(); // idempotent
    store
        .insert_usage("a", &[minimal(at(0), "a-model"), minimal(at(1), "a-model")])
        .await
        .unwrap();
    store
        .insert_usage("b", &[minimal(at(0), "b-model")])
        .await
        .unwrap();

    let a = store.load_usage("a").await.unwrap();
    let b = store.load_usage("b").await.unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|r| r.model == "a-model"));
    assert_eq!(b.len(), 1);
    assert!(b.iter().all(|r| r.model == "b-model"));
    assert_eq!(store.usage_count("a").await.unwrap(), 2);
    assert_eq!(store.usage_count("b").await.unwrap(), 1);
    assert_eq!(store.usage_count("c").await.unwrap(), 0);
    assert!(store.load_usage("c").await.unwrap().is_empty());
    // A tenant id is matched exactly, never as a pattern.
    assert!(store.load_usage("%").await.unwrap().is_empty());
}

#[tokio::test]
async fn insert_usage_is_all_or_nothing() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    store
        .insert_usage("acme", &[minimal(at(0), "before")])
        .await
        .unwrap();

    // 5,000 good records, then one whose counter cannot be stored. The bad record sits several
    // multi-row statements after the first ones, so the earlier chunks really were written
    // inside the transaction before the failure, and must be rolled back.
    let mut batch: Vec<UsageRecord> = (0..5_000).map(|i| full(at(i), 1)).collect();
    batch.push(UsageRecord {
        output_tokens: u64::MAX,
        ..full(at(9_999), 1)
    });
    let err = store.insert_usage("acme", &batch).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OutOfRange {
                field: "output_tokens",
                value: u64::MAX
            }
        ),
        "{err:?}"
    );
    assert_eq!(store.usage_count("acme").await.unwrap(), 1);
    assert_eq!(store.load_usage("acme").await.unwrap()[0].model, "before");

    // The store is still usable after the rollback.
    batch.pop();
    assert_eq!(store.insert_usage("acme", &batch).await.unwrap(), 5_000);
    assert_eq!(store.usage_count("acme").await.unwrap(), 5_001);
    assert_eq!(store.insert_usage("acme", &[]).await.unwrap(), 0);
}

#[tokio::test]
async fn threads_are_namespaced_by_user() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;

    let alice = store
        .upsert_thread("alice", "acme", "t1", "Alice's spend")
        .await
        .unwrap();
    let bob = store
        .upsert_thread("bob", "globex", "t1", "Bob's spend")
        .await
        .unwrap();
    assert_eq!(alice.title, "Alice's spend");
    assert_eq!(bob.title, "Bob's spend");
    assert_eq!(bob.tenant_id, "globex");

    let listed = store.list_threads("alice", 10).await.unwrap();
    assert_eq!(listed, vec![alice.clone()]);
    let listed = store.list_threads("bob", 10).await.unwrap();
    assert_eq!(listed, vec![bob]);
    assert!(store.list_threads("mallory", 10).await.unwrap().is_empty());

    // Touching keeps title, tenant and created_at; updated_at never moves backwards.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let touched = store
        .upsert_thread("alice", "other-tenant", "t1", "a new title")
        .await
        .unwrap();
    assert_eq!(touched.title, "Alice's spend");
    assert_eq!(touched.tenant_id, "acme");
    assert_eq!(touched.created_at, alice.created_at);
    assert!(touched.updated_at > alice.updated_at);

    // Newest first, and limited.
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .upsert_thread("alice", "acme", "t2", "second")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .upsert_thread("alice", "acme", "t3", "third")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .upsert_thread("alice", "acme", "t1", "ignored")
        .await
        .unwrap();
    let ids: Vec<String> = store
        .list_threads("alice", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.thread_id)
        .collect();
    assert_eq!(ids, ["t1", "t3", "t2"]);
    assert_eq!(store.list_threads("alice", 2).await.unwrap().len(), 2);
    assert!(store.list_threads("alice", 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn run_lifecycle_and_user_scoping() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    let r1 = run("r1", "alice", "t1", at(0));
    store.create_run(&r1).await.unwrap();
    assert!(matches!(
        store.create_run(&r1).await,
        Err(StoreError::DuplicateRun(id)) if id == "r1"
    ));

    assert_eq!(store.get_run("r1").await.unwrap(), Some(r1.clone()));
    assert_eq!(
        store.get_user_run("alice", "r1").await.unwrap(),
        Some(r1.clone())
    );
    assert_eq!(store.get_user_run("bob", "r1").await.unwrap(), None);
    assert_eq!(store.get_user_run("alice", "nope").await.unwrap(), None);
    assert_eq!(store.get_run("nope").await.unwrap(), None);

    store
        .set_run_status("r1", RunStatus::Running, None)
        .await
        .unwrap();
    assert_eq!(
        store.get_run("r1").await.unwrap().unwrap().status,
        RunStatus::Running
    );

    store
        .set_run_status("r1", RunStatus::Completed, Some(at(500)))
        .await
        .unwrap();
    let done = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(done.finished_at, Some(at(500)));

    // Terminal is final: a late cancel cannot overwrite the completion; repeating is a no-op.
    let err = store
        .set_run_status("r1", RunStatus::Cancelled, Some(at(900)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidTransition {
                from: RunStatus::Completed,
                to: RunStatus::Cancelled,
                ..
            }
        ),
        "{err:?}"
    );
    store
        .set_run_status("r1", RunStatus::Completed, Some(at(900)))
        .await
        .unwrap();
    assert_eq!(store.get_run("r1").await.unwrap().unwrap(), done);

    assert!(matches!(
        store.set_run_status("nope", RunStatus::Running, None).await,
        Err(StoreError::RunNotFound(id)) if id == "nope"
    ));

    // Thread runs: oldest first, only the asking user's, only that thread.
    store
        .create_run(&run("r3", "alice", "t1", at(20)))
        .await
        .unwrap();
    store
        .create_run(&run("r2", "alice", "t1", at(10)))
        .await
        .unwrap();
    store
        .create_run(&run("r4", "alice", "t2", at(5)))
        .await
        .unwrap();
    store
        .create_run(&run("r5", "bob", "t1", at(1)))
        .await
        .unwrap();
    let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_thread_runs("alice", "t1").await.unwrap()),
        ["r1", "r2", "r3"]
    );
    assert_eq!(
        ids(store.list_thread_runs("bob", "t1").await.unwrap()),
        ["r5"]
    );
    assert!(
        store
            .list_thread_runs("bob", "t2")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn runs_in_flight_lists_accepted_and_running_only() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    for (id, status) in [
        ("accepted", RunStatus::Accepted),
        ("running", RunStatus::Running),
        ("completed", RunStatus::Completed),
        ("failed", RunStatus::Failed),
        ("cancelled", RunStatus::Cancelled),
    ] {
        let mut r = run(id, "alice", id, at(0));
        r.status = status;
        store.create_run(&r).await.unwrap();
    }
    let mut in_flight: Vec<String> = store
        .runs_in_flight()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    in_flight.sort();
    assert_eq!(in_flight, ["accepted", "running"]);

    // Crash recovery marks them failed; then nothing is in flight.
    for r in store.runs_in_flight().await.unwrap() {
        store
            .set_run_status(&r.run_id, RunStatus::Failed, Some(at(1)))
            .await
            .unwrap();
    }
    assert!(store.runs_in_flight().await.unwrap().is_empty());
}

#[tokio::test]
async fn append_event_refuses_duplicates_and_unknown_runs() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();

    store
        .append_event(
            "r1",
            1,
            "agent_started",
            r#"{"type":"agent_started","seq":1}"#,
        )
        .await
        .unwrap();
    let err = store
        .append_event(
            "r1",
            1,
            "agent_thinking",
            r#"{"type":"agent_thinking","seq":1}"#,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicateEvent { run_id, seq: 1 } if run_id == "r1"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "duplicate event r1#1");
    // The first write wins; the duplicate changed nothing.
    let events = store.events_after("r1", 0).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload, r#"{"type":"agent_started","seq":1}"#);
    assert_eq!(store.get_run("r1").await.unwrap().unwrap().last_seq, 1);

    assert!(matches!(
        store.append_event("ghost", 1, "agent_started", "{}").await,
        Err(StoreError::RunNotFound(id)) if id == "ghost"
    ));
    assert!(matches!(
        store.append_event("r1", u64::MAX, "progress", "{}").await,
        Err(StoreError::OutOfRange { field: "seq", .. })
    ));
}

#[tokio::test]
async fn events_after_is_ordered_filtered_and_tracks_last_seq() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir).await;
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();
    store
        .create_run(&run("r2", "bob", "t1", at(0)))
        .await
        .unwrap();

    // Written out of order on purpose: reads must come back in seq order regardless.
    for seq in [3, 1, 5, 2, 4] {
        let payload = format!(r#"{{"type":"progress","seq":{seq}}}"#);
        store
            .append_event("r1", seq, "progress", &payload)
            .await
            .unwrap();
    }
    store
        .append_event("r2", 1, "agent_started", "{}")
        .await
        .unwrap();

    assert_eq!(
        seqs(&store.events_after("r1", 0).await.unwrap()),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(seqs(&store.events_after("r1", 3).await.unwrap()), [4, 5]);
    assert!(store.events_after("r1", 5).await.unwrap().is_empty());
    assert!(store.events_after("r1", u64::MAX).await.unwrap().is_empty());
    assert!(store.events_after("nope", 0).await.unwrap().is_empty());

    let events = store.events_after("r1", 1).await.unwrap();
    assert!(events.iter().all(|e| e.run_id == "r1"));
    assert_eq!(events[0].payload, r#"{"type":"progress","seq":2}"#);

    // last_seq is the highest seq, even though 5 was not written last.
    assert_eq!(store.get_run("r1").await.unwrap().unwrap().last_seq, 5);
    assert_eq!(store.get_run("r2").await.unwrap().unwrap().last_seq, 1);
}

#[tokio::test]
async fn concurrent_appends_from_many_tasks_all_land() {
    let dir = TempDir::new().unwrap();
    let store: Arc<dyn Store> = agentwire_store::connect(&db_url(&dir)).await.unwrap();
    let runs = 16u64;
    let per_run = 50u64;
    for r in 0..runs {
        store
            .create_run(&run(&format!("r{r}"), &format!("u{r}"), "t", at(0)))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for r in 0..runs {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let run_id = format!("r{r}");
            for seq in 1..=per_run {
                store
                    .append_event(&run_id, seq, "progress", &format!("{r}/{seq}"))
                    .await
                    .unwrap();
                // Interleave reads with the writes, as resuming clients do.
                if seq % 10 == 0 {
                    let seen = store.events_after(&run_id, 0).await.unwrap();
                    assert_eq!(seen.len() as u64, seq);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for r in 0..runs {
        let run_id = format!("r{r}");
        let events = store.events_after(&run_id, 0).await.unwrap();
        assert_eq!(seqs(&events), (1..=per_run).collect::<Vec<_>>());
        assert!(
            events
                .iter()
                .all(|e| e.payload.starts_with(&format!("{r}/")))
        );
        assert_eq!(
            store.get_run(&run_id).await.unwrap().unwrap().last_seq,
            per_run
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_appends_of_one_seq_store_exactly_one() {
    // Many appends queued at once land in one group-commit batch; refusals inside a batch must
    // be answered one by one without failing the batch's other events.
    let dir = TempDir::new().unwrap();
    let store: Arc<dyn Store> = Arc::new(open(&dir).await);
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                // 50 racers for seq 1: one wins.
                0 => {
                    store
                        .append_event("r1", 1, "progress", &format!("racer {i}"))
                        .await
                }
                // 50 distinct seqs: all land.
                1 => {
                    store
                        .append_event("r1", 100 + i, "progress", "distinct")
                        .await
                }
                // 50 appends to a run that does not exist: all refused.
                2 => store.append_event("ghost", i, "progress", "x").await,
                // 50 more distinct seqs.
                _ => {
                    store
                        .append_event("r1", 1_000 + i, "progress", "distinct")
                        .await
                }
            }
        }));
    }
    let mut ok = 0;
    let mut duplicates = 0;
    let mut missing = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::DuplicateEvent { seq: 1, .. }) => duplicates += 1,
            Err(StoreError::RunNotFound(id)) if id == "ghost" => missing += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, duplicates, missing), (101, 49, 50));
    let events = store.events_after("r1", 0).await.unwrap();
    assert_eq!(events.len(), 101);
    assert_eq!(events[0].seq, 1);
    assert!(events[0].payload.starts_with("racer "));
    assert_eq!(store.get_run("r1").await.unwrap().unwrap().last_seq, 1_199);
    assert!(store.events_after("ghost", 0).await.unwrap().is_empty());
}

async fn write_everything(store: &dyn Store) {
    store
        .insert_usage("acme", &[full(at(0), 1), minimal(at(1), "m")])
        .await
        .unwrap();
    store
        .upsert_thread("alice", "acme", "t1", "title")
        .await
        .unwrap();
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();
    store
        .append_event("r1", 1, "agent_started", "{\"a\":1}")
        .await
        .unwrap();
    store
        .append_event("r1", 2, "agent_completed", "{\"a\":2}")
        .await
        .unwrap();
    store
        .set_run_status("r1", RunStatus::Completed, Some(at(2)))
        .await
        .unwrap();
}

async fn assert_everything(store: &dyn Store) {
    assert_eq!(
        store.load_usage("acme").await.unwrap(),
        vec![full(at(0), 1), minimal(at(1), "m")]
    );
    assert_eq!(
        store.list_threads("alice", 10).await.unwrap()[0].title,
        "title"
    );
    let r1 = store.get_user_run("alice", "r1").await.unwrap().unwrap();
    assert_eq!(r1.status, RunStatus::Completed);
    assert_eq!(r1.last_seq, 2);
    assert_eq!(seqs(&store.events_after("r1", 0).await.unwrap()), [1, 2]);
}

#[tokio::test]
async fn a_reopened_file_database_has_the_same_data() {
    let dir = TempDir::new().unwrap();
    {
        let store = open(&dir).await;
        write_everything(&store).await;
        store.close().await;
    }
    let store = open(&dir).await;
    assert_everything(&store).await;
}

#[tokio::test]
async fn data_survives_a_reopen_without_close() {
    // No orderly shutdown (as after a crash): committed data is in the WAL and must be seen.
    let dir = TempDir::new().unwrap();
    let first = open(&dir).await;
    write_everything(&first).await;
    let second = open(&dir).await;
    assert_everything(&second).await;
    drop(first);
    drop(second);
    let third = open(&dir).await;
    assert_everything(&third).await;
}

#[tokio::test]
async fn migrations_are_idempotent_on_reopen() {
    let dir = TempDir::new().unwrap();
    for _ in 0..3 {
        let store = open(&dir).await;
        assert_eq!(store.schema_version().await.unwrap(), LATEST_SCHEMA_VERSION);
        store.ping().await.unwrap();
        store.close().await;
    }
    // Other spellings of the same file reach the same, already migrated database.
    let path = dir.path().join("agentwire.db");
    for url in [
        path.display().to_string(),
        format!("sqlite:{}", path.display()),
    ] {
        let store = SqliteStore::connect(&url).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), LATEST_SCHEMA_VERSION);
        store.close().await;
    }
}

#[tokio::test]
async fn in_memory_databases_work_and_are_private() {
    let a: Arc<dyn Store> = agentwire_store::connect("sqlite::memory:").await.unwrap();
    let b = SqliteStore::connect(":memory:").await.unwrap();
    write_everything(a.as_ref()).await;
    assert_everything(a.as_ref()).await;
    a.ping().await.unwrap();
    // Each in-memory store is its own database.
    assert_eq!(b.usage_count("acme").await.unwrap(), 0);
    assert_eq!(b.get_run("r1").await.unwrap(), None);
}

#[tokio::test]
async fn urls_pick_or_refuse_a_backend() {
    let err = agentwire_store::connect("postgres://u@localhost/db")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Unsupported(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("PostgreSQL backend is not built yet")
    );
    assert!(matches!(
        agentwire_store::connect("postgresql://u@localhost/db")
            .await
            .err()
            .unwrap(),
        StoreError::Unsupported(_)
    ));
    let err = agentwire_store::connect("mysql://u:hunter2@localhost/db")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(matches!(
        SqliteStore::connect("").await.err().unwrap(),
        StoreError::InvalidUrl(_)
    ));
    // A missing directory is a database error, not a panic.
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("no/such/dir/a.db");
    assert!(matches!(
        SqliteStore::connect(&missing.display().to_string())
            .await
            .err()
            .unwrap(),
        StoreError::Database(_)
    ));
}

#[test]
fn run_status_names_round_trip() {
    for status in RunStatus::ALL {
        assert_eq!(RunStatus::parse(status.as_str()), Some(status));
        assert_eq!(status.as_str().parse::<RunStatus>().unwrap(), status);
    }
    assert_eq!(RunStatus::parse("Running"), None);
    assert!(!RunStatus::Accepted.is_terminal());
    assert!(!RunStatus::Running.is_terminal());
    assert!(RunStatus::Completed.is_terminal());
    assert!(RunStatus::Failed.is_terminal());
    assert!(RunStatus::Cancelled.is_terminal());
}
