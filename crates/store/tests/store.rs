//! The store's contract, run against both backends: SQLite on a real file in a temporary
//! directory, and PostgreSQL in a fresh database per test (see `common`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use agentwire_store::{
    Backend, NewEvent, Notice, RunRecord, RunStatus, SqliteStore, Store, StoreError,
    USAGE_UPLOAD_CHUNK_ROWS, UsageRecord,
};
use common::{Kind, TestDb, at, expect_notice, full, minimal, run, seqs, thread_runs};
use sqlx::Connection;
use tempfile::TempDir;

on_both_backends!(
    usage_round_trips_every_field_in_time_order,
    equal_timestamps_load_in_insertion_order_and_nan_reads_back_as_none,
    text_with_nul_is_refused_alike_on_both_backends,
    tenants_never_see_each_others_usage,
    insert_usage_is_all_or_nothing,
    a_failed_upload_leaves_no_rows_visible_or_behind,
    an_open_upload_is_invisible_and_other_tenants_write_meanwhile,
    abandoned_uploads_are_swept_and_committed_ones_kept,
    threads_are_namespaced_by_user,
    threads_are_namespaced_by_tenant_too,
    run_lifecycle_and_user_scoping,
    runs_in_flight_lists_accepted_and_running_only,
    append_event_refuses_duplicates_unknown_and_finished_runs,
    events_after_is_ordered_filtered_and_tracks_last_seq,
    events_after_reads_a_log_in_pages,
    thread_runs_are_read_in_pages_in_order_within_the_tenant,
    concurrent_appends_from_many_tasks_all_land,
    racing_appends_of_one_seq_store_exactly_one,
    a_run_appends_several_events_at_once_as_a_prefix,
    a_reopened_database_has_the_same_data,
    data_survives_a_reopen_without_close,
    migrations_are_idempotent_on_reopen,
    retention_deletes_old_finished_runs_and_their_events_only,
    retention_batches_are_bounded_oldest_first_and_repeat_as_no_ops,
    retention_deletes_emptied_threads_but_keeps_busy_ones,
    racing_retention_calls_delete_each_run_once,
);

async fn usage_round_trips_every_field_in_time_order(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
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
            team: Some("tab \t, newline \n, \\ backslash, \u{1F4B8}, \u{7f} del".into()),
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

async fn equal_timestamps_load_in_insertion_order_and_nan_reads_back_as_none(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let mut nan = minimal(at(0), "b");
    nan.cost_usd = Some(f64::NAN);
    store
        .insert_usage("acme", &[minimal(at(0), "a"), nan, minimal(at(0), "c")])
        .await
        .unwrap();
    let loaded = store.load_usage("acme").await.unwrap();
    let models: Vec<&str> = loaded.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(models, ["a", "b", "c"]);
    // NaN is stored as NULL on both backends; documented on Store::insert_usage.
    assert_eq!(loaded[1].cost_usd, None);
}

async fn text_with_nul_is_refused_alike_on_both_backends(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let bad = UsageRecord {
        team: Some("nul \0 inside".into()),
        ..full(at(0), 1)
    };
    let err = store
        .insert_usage("acme", &[minimal(at(0), "fine"), bad])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NulInText { field: "team" }),
        "{err:?}"
    );
    assert!(err.to_string().contains("team contains a NUL character"));
    assert_eq!(store.usage_count("acme").await.unwrap(), 0);

    let mut nul_request = run("r1", "alice", "t1", at(0));
    nul_request.user_request = "hello\0".into();
    assert!(matches!(
        store.create_run(&nul_request).await,
        Err(StoreError::NulInText {
            field: "user_request"
        })
    ));
    assert!(matches!(
        store.upsert_thread("alice", "acme", "t1", "a\0b").await,
        Err(StoreError::NulInText { field: "title" })
    ));
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();
    assert!(matches!(
        store
            .append_event("r1", 1, "progress", "{\"a\":\"\0\"}")
            .await,
        Err(StoreError::NulInText {
            field: "event payload"
        })
    ));
    // JSON's escaped form is plain text and fine.
    store
        .append_event("r1", 1, "progress", "{\"a\":\"\\u0000\"}")
        .await
        .unwrap();
}

async fn tenants_never_see_each_others_usage(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
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

async fn insert_usage_is_all_or_nothing(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store
        .insert_usage("acme", &[minimal(at(0), "before")])
        .await
        .unwrap();

    // 25,000 good records, then one whose counter cannot be stored. The bad record comes
    // after several full statements on both backends (SQLite writes 1,000 rows per statement,
    // PostgreSQL 10,000), so earlier statements really were executed inside the transaction
    // before the failure, and must be rolled back.
    let mut batch: Vec<UsageRecord> = (0..25_000).map(|i| full(at(i), 1)).collect();
    batch.push(UsageRecord {
        output_tokens: u64::MAX,
        ..full(at(99_999), 1)
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
    assert_eq!(store.insert_usage("acme", &batch).await.unwrap(), 25_000);
    assert_eq!(store.usage_count("acme").await.unwrap(), 25_001);
    assert_eq!(store.insert_usage("acme", &[]).await.unwrap(), 0);
    let loaded = store.load_usage("acme").await.unwrap();
    assert_eq!(loaded.len(), 25_001);
    assert!(loaded.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
}

/// Every usage row and upload in the database, visible or not, read past the store: what a
/// failed or abandoned upload may have left behind.
async fn stored_rows(db: &TestDb) -> (i64, i64) {
    const SQL: [&str; 2] = [
        "SELECT COUNT(*) FROM usage_records",
        "SELECT COUNT(*) FROM usage_uploads",
    ];
    let mut counts = [0_i64; 2];
    match db.kind {
        Kind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            for (count, sql) in counts.iter_mut().zip(SQL) {
                *count = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            }
            pool.close().await;
        }
        Kind::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            for (count, sql) in counts.iter_mut().zip(SQL) {
                *count = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
    (counts[0], counts[1])
}

/// The next `UsageChanged` notice's tenant.
async fn next_usage_change(notices: &mut agentwire_store::Notices) -> String {
    match expect_notice(notices, |n| matches!(n, Notice::UsageChanged { .. })).await {
        Notice::UsageChanged { tenant_id } => tenant_id,
        other => panic!("{other:?}"),
    }
}

async fn a_failed_upload_leaves_no_rows_visible_or_behind(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let mut notices = store.subscribe().await.unwrap();
    store
        .insert_usage("acme", &[minimal(at(0), "before")])
        .await
        .unwrap();
    assert_eq!(next_usage_change(&mut notices).await, "acme");

    // More than two chunks' worth of records with a bad one in the last chunk: refused whole,
    // with nothing visible or left behind (records are checked before the first chunk is
    // written; staged chunks undone by an abort are covered below).
    let good = 2 * USAGE_UPLOAD_CHUNK_ROWS + 5_000;
    let mut batch: Vec<UsageRecord> = (0..good).map(|i| full(at(i as i64), 1)).collect();
    batch.push(UsageRecord {
        team: Some("nul \0 here".into()),
        ..full(at(99_999), 1)
    });
    let err = store.insert_usage("acme", &batch).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NulInText { field: "team" }),
        "{err:?}"
    );
    batch.pop();
    batch.push(UsageRecord {
        input_tokens: u64::MAX,
        ..full(at(99_999), 1)
    });
    let err = store.insert_usage("acme", &batch).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OutOfRange {
                field: "input_tokens",
                ..
            }
        ),
        "{err:?}"
    );

    assert_eq!(store.usage_count("acme").await.unwrap(), 1);
    assert_eq!(store.load_usage("acme").await.unwrap().len(), 1);
    assert_eq!(stored_rows(&db).await, (1, 0), "rows left behind");

    // Nothing was announced for the failed uploads: the next notice is the next success.
    store
        .insert_usage("beta", &[minimal(at(0), "b")])
        .await
        .unwrap();
    assert_eq!(next_usage_change(&mut notices).await, "beta");
}

async fn an_open_upload_is_invisible_and_other_tenants_write_meanwhile(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let mut notices = store.subscribe().await.unwrap();
    let chunk: Vec<UsageRecord> = (0..USAGE_UPLOAD_CHUNK_ROWS)
        .map(|i| full(at(i as i64), 2))
        .collect();
    let upload = store.begin_usage_upload("acme").await.unwrap();
    store.stage_usage(&upload, &chunk).await.unwrap();

    // The upload is paused between two chunks. Another tenant's runs, events and usage are
    // written meanwhile, before the upload's final commit. (The timeout only turns a writer
    // held by the upload into a failure instead of a hang; nothing is measured.)
    let other = RunRecord {
        tenant_id: "other".into(),
        ..run("r-other", "u-other", "t-other", at(0))
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        store.create_run(&other).await.unwrap();
        for seq in 1..=3 {
            store
                .append_event("r-other", seq, "step", "{}")
                .await
                .unwrap();
        }
        store
            .insert_usage("other", &[minimal(at(0), "o")])
            .await
            .unwrap();
    })
    .await
    .expect("other tenants' writes waited for an open upload");
    assert_eq!(
        seqs(&store.events_after("r-other", 0, u32::MAX).await.unwrap()),
        [1, 2, 3]
    );
    assert_eq!(store.usage_count("other").await.unwrap(), 1);

    // Staged rows are invisible to every reader until the commit.
    assert_eq!(store.usage_count("acme").await.unwrap(), 0);
    assert!(store.load_usage("acme").await.unwrap().is_empty());
    store.stage_usage(&upload, &chunk[..7]).await.unwrap();
    assert_eq!(store.usage_count("acme").await.unwrap(), 0);

    let committed = store.commit_usage_upload(&upload).await.unwrap();
    assert_eq!(committed, (USAGE_UPLOAD_CHUNK_ROWS + 7) as u64);
    assert_eq!(store.usage_count("acme").await.unwrap(), committed);
    assert_eq!(
        store.load_usage("acme").await.unwrap().len() as u64,
        committed
    );
    assert_eq!(stored_rows(&db).await, (committed as i64 + 1, 0));

    // UsageChanged for acme came once, after its commit: not at begin or at either chunk.
    assert_eq!(next_usage_change(&mut notices).await, "other");
    assert_eq!(next_usage_change(&mut notices).await, "acme");
    store
        .insert_usage("beta", &[minimal(at(0), "b")])
        .await
        .unwrap();
    assert_eq!(next_usage_change(&mut notices).await, "beta");

    // A committed upload is closed.
    assert!(matches!(
        store.stage_usage(&upload, &chunk[..1]).await,
        Err(StoreError::UploadNotOpen(id)) if id == upload.upload_id
    ));
    assert!(matches!(
        store.commit_usage_upload(&upload).await,
        Err(StoreError::UploadNotOpen(_))
    ));
}

async fn abandoned_uploads_are_swept_and_committed_ones_kept(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let rows: Vec<UsageRecord> = (0..USAGE_UPLOAD_CHUNK_ROWS + 10)
        .map(|i| full(at(i as i64), 3))
        .collect();
    let (kept, abandoned) = {
        let store = db.open().await;
        let kept = store.begin_usage_upload("acme").await.unwrap();
        store.stage_usage(&kept, &rows[..5]).await.unwrap();
        store.commit_usage_upload(&kept).await.unwrap();
        let abandoned = store.begin_usage_upload("acme").await.unwrap();
        store.stage_usage(&abandoned, &rows).await.unwrap();
        // The process dies here: the store goes away without a close.
        (kept, abandoned)
    };
    assert_ne!(kept.upload_id, abandoned.upload_id);

    let store = db.open().await;
    assert_eq!(store.usage_count("acme").await.unwrap(), 5);
    // A recent upload may still be alive (on another node): not swept by an age it is below.
    assert_eq!(
        store
            .sweep_usage_uploads(Duration::from_secs(3_600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(stored_rows(&db).await, (5 + rows.len() as i64, 1));
    assert_eq!(store.sweep_usage_uploads(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(stored_rows(&db).await, (5, 0));
    assert_eq!(store.usage_count("acme").await.unwrap(), 5);

    // The swept upload can be neither written nor committed; aborting is idempotent, and
    // never touches a committed upload's rows.
    assert!(matches!(
        store.stage_usage(&abandoned, &rows[..1]).await,
        Err(StoreError::UploadNotOpen(_))
    ));
    assert!(matches!(
        store.commit_usage_upload(&abandoned).await,
        Err(StoreError::UploadNotOpen(_))
    ));
    store.abort_usage_upload(&abandoned).await.unwrap();
    store.abort_usage_upload(&kept).await.unwrap();
    assert_eq!(store.usage_count("acme").await.unwrap(), 5);

    // An explicit abort of an open upload undoes it, and a later upload gets a fresh id.
    let aborted = store.begin_usage_upload("acme").await.unwrap();
    store.stage_usage(&aborted, &rows).await.unwrap();
    store.abort_usage_upload(&aborted).await.unwrap();
    assert_eq!(stored_rows(&db).await, (5, 0));
    let next = store.begin_usage_upload("acme").await.unwrap();
    assert!(next.upload_id > aborted.upload_id);
}

async fn threads_are_namespaced_by_user(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;

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

    let listed = store.list_threads("alice", "acme", 10).await.unwrap();
    assert_eq!(listed, vec![alice.clone()]);
    let listed = store.list_threads("bob", "globex", 10).await.unwrap();
    assert_eq!(listed, vec![bob]);
    assert!(
        store
            .list_threads("mallory", "acme", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Touching keeps title, tenant and created_at; updated_at never moves backwards. (The same
    // thread id under another tenant is another thread: see the next test.)
    tokio::time::sleep(Duration::from_millis(5)).await;
    let touched = store
        .upsert_thread("alice", "acme", "t1", "a new title")
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
        .list_threads("alice", "acme", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.thread_id)
        .collect();
    assert_eq!(ids, ["t1", "t3", "t2"]);
    assert_eq!(
        store.list_threads("alice", "acme", 2).await.unwrap().len(),
        2
    );
    assert!(
        store
            .list_threads("alice", "acme", 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn threads_are_namespaced_by_tenant_too(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    // The same `sub` in two tenants is two principals: the same thread id is two threads.
    let acme = store
        .upsert_thread("alice", "acme", "t1", "acme's question")
        .await
        .unwrap();
    let globex = store
        .upsert_thread("alice", "globex", "t1", "globex's question")
        .await
        .unwrap();
    assert_eq!(acme.tenant_id, "acme");
    assert_eq!(globex.tenant_id, "globex");
    assert_eq!(globex.title, "globex's question");
    assert_eq!(
        store.list_threads("alice", "acme", 10).await.unwrap(),
        [acme]
    );
    assert_eq!(
        store.list_threads("alice", "globex", 10).await.unwrap(),
        [globex]
    );

    // The limit applies within the tenant: newer threads elsewhere do not crowd it out.
    for t in ["t2", "t3", "t4"] {
        tokio::time::sleep(Duration::from_millis(2)).await;
        store
            .upsert_thread("alice", "globex", t, "more")
            .await
            .unwrap();
    }
    let first = store.list_threads("alice", "acme", 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].thread_id, "t1");
    assert_eq!(
        store
            .list_threads("alice", "globex", 10)
            .await
            .unwrap()
            .len(),
        4
    );

    // Retention empties acme's t1 only: globex's t1 still has a run and stays.
    let old = RunRecord {
        status: RunStatus::Completed,
        finished_at: Some(at(1)),
        ..run("old", "alice", "t1", at(0))
    };
    store.create_run(&old).await.unwrap();
    let kept = RunRecord {
        tenant_id: "globex".into(),
        status: RunStatus::Completed,
        finished_at: Some(chrono::Utc::now() + chrono::Duration::seconds(60)),
        ..run("kept", "alice", "t1", at(0))
    };
    store.create_run(&kept).await.unwrap();
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(
        store.delete_finished_runs_before(later, 10).await.unwrap(),
        1
    );
    assert!(
        store
            .list_threads("alice", "acme", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_threads("alice", "globex", 10)
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn run_lifecycle_and_user_scoping(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
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

    // Thread runs: oldest first (ties in insertion order), only the asking user's, only that
    // thread.
    store
        .create_run(&run("r3", "alice", "t1", at(20)))
        .await
        .unwrap();
    store
        .create_run(&run("r2", "alice", "t1", at(10)))
        .await
        .unwrap();
    store
        .create_run(&run("r2b", "alice", "t1", at(10)))
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
        ids(thread_runs(store.as_ref(), "alice", "t1").await),
        ["r1", "r2", "r2b", "r3"]
    );
    assert_eq!(ids(thread_runs(store.as_ref(), "bob", "t1").await), ["r5"]);
    assert!(thread_runs(store.as_ref(), "bob", "t2").await.is_empty());
}

async fn runs_in_flight_lists_accepted_and_running_only(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
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

async fn append_event_refuses_duplicates_unknown_and_finished_runs(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
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
    let events = store.events_after("r1", 0, u32::MAX).await.unwrap();
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

    // The terminal event is appended while the run is in flight, then the status is set; after
    // that nothing more may be appended.
    store
        .append_event("r1", 2, "agent_completed", "{}")
        .await
        .unwrap();
    store
        .set_run_status("r1", RunStatus::Completed, Some(at(9)))
        .await
        .unwrap();
    let err = store
        .append_event("r1", 3, "progress", "{}")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::RunFinished { run_id, status: RunStatus::Completed } if run_id == "r1"),
        "{err:?}"
    );
    assert_eq!(
        seqs(&store.events_after("r1", 0, u32::MAX).await.unwrap()),
        [1, 2]
    );
}

async fn events_after_is_ordered_filtered_and_tracks_last_seq(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
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
        seqs(&store.events_after("r1", 0, u32::MAX).await.unwrap()),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(
        seqs(&store.events_after("r1", 3, u32::MAX).await.unwrap()),
        [4, 5]
    );
    assert!(
        store
            .events_after("r1", 5, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .events_after("r1", u64::MAX, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .events_after("nope", 0, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    let events = store.events_after("r1", 1, u32::MAX).await.unwrap();
    assert!(events.iter().all(|e| e.run_id == "r1"));
    assert_eq!(events[0].payload, r#"{"type":"progress","seq":2}"#);

    // last_seq is the highest seq, even though 5 was not written last.
    assert_eq!(store.get_run("r1").await.unwrap().unwrap().last_seq, 5);
    assert_eq!(store.get_run("r2").await.unwrap().unwrap().last_seq, 1);
}

async fn events_after_reads_a_log_in_pages(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();
    for seq in 1..=5 {
        store
            .append_event("r1", seq, "progress", &format!(r#"{{"seq":{seq}}}"#))
            .await
            .unwrap();
    }
    // A page holds at most `limit` events; the next page starts after the last seq read.
    assert_eq!(seqs(&store.events_after("r1", 0, 2).await.unwrap()), [1, 2]);
    assert_eq!(seqs(&store.events_after("r1", 2, 2).await.unwrap()), [3, 4]);
    assert_eq!(seqs(&store.events_after("r1", 4, 2).await.unwrap()), [5]);
    assert!(store.events_after("r1", 5, 2).await.unwrap().is_empty());
    assert!(store.events_after("r1", 0, 0).await.unwrap().is_empty());
    let mut read = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_after("r1", after, 1).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        read.extend(page);
    }
    assert_eq!(read, store.events_after("r1", 0, u32::MAX).await.unwrap());
}

async fn thread_runs_are_read_in_pages_in_order_within_the_tenant(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    // Inserted out of order, with runs sharing a millisecond (they keep insertion order).
    for (id, ms) in [
        ("d", 30),
        ("a", 10),
        ("c", 20),
        ("b", 10),
        ("e", 20),
        ("f", 40),
    ] {
        store
            .create_run(&run(id, "alice", "t", at(ms)))
            .await
            .unwrap();
    }
    // The same user and thread id under another tenant is another principal's thread.
    let elsewhere = RunRecord {
        tenant_id: "globex".into(),
        ..run("g", "alice", "t", at(15))
    };
    store.create_run(&elsewhere).await.unwrap();

    let ids = |runs: &[RunRecord]| runs.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>();
    let whole = store
        .list_thread_runs("alice", "acme", "t", None, 100)
        .await
        .unwrap();
    assert_eq!(ids(&whole.runs), ["a", "b", "c", "e", "d", "f"]);
    assert_eq!(whole.next, None, "a page that is not full is the last");
    for limit in [1, 2, 4, 6] {
        let mut read = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_thread_runs("alice", "acme", "t", after.as_ref(), limit)
                .await
                .unwrap();
            assert!(page.runs.len() <= limit as usize);
            read.extend(page.runs);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(read, whole.runs, "pages of {limit}");
    }
    let globex = store
        .list_thread_runs("alice", "globex", "t", None, 100)
        .await
        .unwrap();
    assert_eq!(ids(&globex.runs), ["g"]);
    assert!(
        store
            .list_thread_runs("alice", "acme", "t", None, 0)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
}

async fn concurrent_appends_from_many_tasks_all_land(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
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
                    let seen = store.events_after(&run_id, 0, u32::MAX).await.unwrap();
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
        let events = store.events_after(&run_id, 0, u32::MAX).await.unwrap();
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

fn events(from: u64, to: u64) -> Vec<NewEvent> {
    (from..=to)
        .map(|seq| NewEvent {
            seq,
            event_type: "progress".into(),
            payload: format!("#{seq}").into(),
        })
        .collect()
}

async fn a_run_appends_several_events_at_once_as_a_prefix(kind: Kind) {
    // How the engine writes: a run's queued events in one call, many runs' calls in one commit.
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    for r in 0..8 {
        store
            .create_run(&run(&format!("r{r}"), &format!("u{r}"), "t", at(0)))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for r in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let run_id = format!("r{r}");
            for chunk in 0..10u64 {
                let from = chunk * 30 + 1;
                store
                    .append_events(&run_id, events(from, from + 29))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for r in 0..8 {
        let run_id = format!("r{r}");
        let stored = store.events_after(&run_id, 0, u32::MAX).await.unwrap();
        assert_eq!(seqs(&stored), (1..=300).collect::<Vec<_>>());
        assert!(stored.iter().all(|e| e.payload == format!("#{}", e.seq)));
        assert_eq!(store.get_run(&run_id).await.unwrap().unwrap().last_seq, 300);
    }

    // Nothing to append is a success; seqs with a gap are refused before anything is written.
    store.append_events("r0", Vec::new()).await.unwrap();
    let mut gap = events(301, 303);
    gap[2].seq = 305;
    let failed = store.append_events("r0", gap).await.unwrap_err();
    assert_eq!(failed.stored, 0);
    assert!(
        matches!(failed.error, StoreError::InvalidArgument(_)),
        "{failed:?}"
    );
    assert_eq!(store.get_run("r0").await.unwrap().unwrap().last_seq, 300);

    // A repeated first event: nothing of the call is stored before it.
    let failed = store
        .append_events("r0", events(300, 302))
        .await
        .unwrap_err();
    assert_eq!(failed.stored, 0);
    assert!(
        matches!(&failed.error, StoreError::DuplicateEvent { seq: 300, .. }),
        "{failed:?}"
    );

    // A finished run refuses every event of the call; an unknown run too.
    store
        .set_run_status("r1", RunStatus::Completed, Some(at(9)))
        .await
        .unwrap();
    let failed = store
        .append_events("r1", events(301, 303))
        .await
        .unwrap_err();
    assert_eq!(failed.stored, 0);
    assert!(
        matches!(
            &failed.error,
            StoreError::RunFinished {
                status: RunStatus::Completed,
                ..
            }
        ),
        "{failed:?}"
    );
    assert_eq!(
        store.events_after("r1", 300, u32::MAX).await.unwrap().len(),
        0
    );
    let failed = store
        .append_events("ghost", events(1, 2))
        .await
        .unwrap_err();
    assert!(matches!(&failed.error, StoreError::RunNotFound(id) if id == "ghost"));
}

async fn racing_appends_of_one_seq_store_exactly_one(kind: Kind) {
    // Many appends queued at once land in one group-commit batch; refusals inside a batch must
    // be answered one by one without failing the batch's other events.
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();
    let mut finished = run("done", "alice", "t2", at(0));
    finished.status = RunStatus::Completed;
    store.create_run(&finished).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..250u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            match i % 5 {
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
                // 50 appends to a finished run: all refused.
                3 => store.append_event("done", i, "progress", "x").await,
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
    let mut finished_refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::DuplicateEvent { seq: 1, .. }) => duplicates += 1,
            Err(StoreError::RunNotFound(id)) if id == "ghost" => missing += 1,
            Err(StoreError::RunFinished { run_id, .. }) if run_id == "done" => {
                finished_refused += 1
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(
        (ok, duplicates, missing, finished_refused),
        (101, 49, 50, 50)
    );
    let events = store.events_after("r1", 0, u32::MAX).await.unwrap();
    assert_eq!(events.len(), 101);
    assert_eq!(events[0].seq, 1);
    assert!(events[0].payload.starts_with("racer "));
    assert_eq!(store.get_run("r1").await.unwrap().unwrap().last_seq, 1_249);
    assert!(
        store
            .events_after("ghost", 0, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .events_after("done", 0, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );
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
        store.list_threads("alice", "acme", 10).await.unwrap()[0].title,
        "title"
    );
    let r1 = store.get_user_run("alice", "r1").await.unwrap().unwrap();
    assert_eq!(r1.status, RunStatus::Completed);
    assert_eq!(r1.last_seq, 2);
    assert_eq!(
        seqs(&store.events_after("r1", 0, u32::MAX).await.unwrap()),
        [1, 2]
    );
}

async fn a_reopened_database_has_the_same_data(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    {
        let store = db.open().await;
        write_everything(store.as_ref()).await;
        store.close().await;
    }
    let store = db.open().await;
    assert_everything(store.as_ref()).await;
}

async fn data_survives_a_reopen_without_close(kind: Kind) {
    // No orderly shutdown (as after a crash): committed data must be seen.
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let first = db.open().await;
    write_everything(first.as_ref()).await;
    let second = db.open().await;
    assert_everything(second.as_ref()).await;
    drop(first);
    drop(second);
    let third = db.open().await;
    assert_everything(third.as_ref()).await;
}

async fn migrations_are_idempotent_on_reopen(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let backend = match kind {
        Kind::Sqlite => Backend::Sqlite,
        Kind::Postgres => Backend::Postgres,
    };
    // Several stores opening at once (nodes starting together) migrate once between them.
    let (a, b, c) = tokio::join!(db.open(), db.open(), db.open());
    for store in [a, b, c] {
        assert_eq!(store.backend(), backend);
        assert_eq!(
            store.schema_version().await.unwrap(),
            backend.latest_schema_version()
        );
        store.ping().await.unwrap();
        store.close().await;
    }
    let store = db.open().await;
    assert_eq!(
        store.schema_version().await.unwrap(),
        backend.latest_schema_version()
    );
}

// ---- SQLite only: files and in-memory databases ----

#[tokio::test]
async fn other_spellings_of_a_sqlite_file_reach_the_same_database() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("agentwire.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    write_everything(&store).await;
    store.close().await;
    for url in [
        path.display().to_string(),
        format!("sqlite:{}", path.display()),
    ] {
        let store = SqliteStore::connect(&url).await.unwrap();
        assert_everything(&store).await;
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

#[tokio::test]
async fn a_postgres_url_with_nobody_listening_is_unavailable_without_the_password() {
    // A port that was free a moment ago: connection refused, at once (no PostgreSQL needed).
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    for scheme in ["postgres", "postgresql", "POSTGRES"] {
        let url = format!("{scheme}://aw:hunter2@127.0.0.1:{port}/agentwire");
        let err = agentwire_store::connect(&url).await.err().unwrap();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(err.is_retryable());
        let message = err.to_string();
        assert!(
            message.contains("cannot connect to PostgreSQL"),
            "{message}"
        );
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    let err = agentwire_store::connect("postgres://aw:hunter2@127.0.0.1:notaport/db")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
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

// ---- retention (issue 15): old finished runs go with their events, nothing else does ----

/// Stores a run that ran and finished with `status` at `finished_at`, with `events` events.
async fn finished_run(
    store: &dyn Store,
    run_id: &str,
    thread_id: &str,
    created_ms: i64,
    status: RunStatus,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    events: u64,
) {
    let mut r = run(run_id, "alice", thread_id, at(created_ms));
    r.status = RunStatus::Running;
    store.create_run(&r).await.unwrap();
    for seq in 1..=events {
        store
            .append_event(run_id, seq, "progress", "{\"type\":\"progress\"}")
            .await
            .unwrap();
    }
    store
        .set_run_status(run_id, status, finished_at)
        .await
        .unwrap();
}

async fn retention_deletes_old_finished_runs_and_their_events_only(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let cutoff = at(10_000);
    // Gone: every terminal status, finished before the cutoff (or, with no finish time,
    // created before it).
    for (id, status) in [
        ("old_completed", RunStatus::Completed),
        ("old_failed", RunStatus::Failed),
        ("old_cancelled", RunStatus::Cancelled),
    ] {
        finished_run(store.as_ref(), id, "t1", 0, status, Some(at(5_000)), 3).await;
    }
    finished_run(
        store.as_ref(),
        "old_no_finish",
        "t2",
        1_000,
        RunStatus::Completed,
        None,
        2,
    )
    .await;
    // Kept: in flight however old, finished at or after the cutoff however old its creation.
    let mut running = run("old_running", "alice", "t3", at(0));
    running.status = RunStatus::Running;
    store.create_run(&running).await.unwrap();
    store
        .append_event("old_running", 1, "progress", "{}")
        .await
        .unwrap();
    store
        .create_run(&run("old_accepted", "alice", "t4", at(0)))
        .await
        .unwrap();
    finished_run(
        store.as_ref(),
        "finished_late",
        "t5",
        0,
        RunStatus::Completed,
        Some(at(20_000)),
        2,
    )
    .await;
    finished_run(
        store.as_ref(),
        "at_cutoff",
        "t6",
        0,
        RunStatus::Failed,
        Some(cutoff),
        1,
    )
    .await;

    assert_eq!(
        store
            .delete_finished_runs_before(cutoff, 100)
            .await
            .unwrap(),
        4
    );
    for gone in [
        "old_completed",
        "old_failed",
        "old_cancelled",
        "old_no_finish",
    ] {
        assert!(store.get_run(gone).await.unwrap().is_none(), "{gone}");
        assert!(
            store
                .events_after(gone, 0, u32::MAX)
                .await
                .unwrap()
                .is_empty(),
            "{gone}"
        );
        // A deleted run is an unknown run: nothing can be appended to it.
        assert!(
            matches!(
                store.append_event(gone, 9, "progress", "{}").await,
                Err(StoreError::RunNotFound(_))
            ),
            "{gone}"
        );
    }
    for (kept, events) in [
        ("old_running", vec![1]),
        ("old_accepted", vec![]),
        ("finished_late", vec![1, 2]),
        ("at_cutoff", vec![1]),
    ] {
        assert!(store.get_run(kept).await.unwrap().is_some(), "{kept}");
        assert_eq!(
            seqs(&store.events_after(kept, 0, u32::MAX).await.unwrap()),
            events,
            "{kept}"
        );
    }
    // The running run goes on as before.
    store
        .append_event("old_running", 2, "progress", "{}")
        .await
        .unwrap();
    // Nothing more to delete, and a limit of zero deletes nothing.
    assert_eq!(
        store
            .delete_finished_runs_before(cutoff, 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_finished_runs_before(at(1_000_000), 0)
            .await
            .unwrap(),
        0
    );
    assert!(store.get_run("finished_late").await.unwrap().is_some());
}

async fn retention_batches_are_bounded_oldest_first_and_repeat_as_no_ops(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    for i in 0..7_i64 {
        let id = format!("r{i}");
        finished_run(
            store.as_ref(),
            &id,
            &id,
            0,
            RunStatus::Completed,
            Some(at(100 * (7 - i))),
            2,
        )
        .await;
    }
    let cutoff = at(10_000);
    let remaining = |store: Arc<dyn Store>| async move {
        let mut left = Vec::new();
        for i in 0..7 {
            if store.get_run(&format!("r{i}")).await.unwrap().is_some() {
                left.push(i);
            }
        }
        left
    };
    assert_eq!(
        store.delete_finished_runs_before(cutoff, 3).await.unwrap(),
        3
    );
    // Oldest finish first: r6 (at 100), r5, r4.
    assert_eq!(remaining(store.clone()).await, [0, 1, 2, 3]);
    assert_eq!(
        store.delete_finished_runs_before(cutoff, 3).await.unwrap(),
        3
    );
    assert_eq!(remaining(store.clone()).await, [0]);
    assert_eq!(
        store.delete_finished_runs_before(cutoff, 3).await.unwrap(),
        1
    );
    assert_eq!(
        store.delete_finished_runs_before(cutoff, 3).await.unwrap(),
        0
    );
    assert!(remaining(store.clone()).await.is_empty());
    assert!(
        store
            .events_after("r0", 0, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn retention_deletes_emptied_threads_but_keeps_busy_ones(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    for thread in ["emptied", "busy", "runless"] {
        store
            .upsert_thread("alice", "acme", thread, thread)
            .await
            .unwrap();
    }
    // bob's thread of the same id has a run of its own: his thread is not alice's.
    store
        .upsert_thread("bob", "acme", "emptied", "bob's")
        .await
        .unwrap();
    finished_run(
        store.as_ref(),
        "a1",
        "emptied",
        0,
        RunStatus::Completed,
        Some(at(1)),
        1,
    )
    .await;
    finished_run(
        store.as_ref(),
        "a2",
        "emptied",
        0,
        RunStatus::Failed,
        Some(at(2)),
        1,
    )
    .await;
    finished_run(
        store.as_ref(),
        "b1",
        "busy",
        0,
        RunStatus::Completed,
        Some(at(1)),
        1,
    )
    .await;
    let mut live = run("b2", "alice", "busy", at(5));
    live.status = RunStatus::Running;
    store.create_run(&live).await.unwrap();
    let mut bobs = run("bob1", "bob", "emptied", at(0));
    bobs.status = RunStatus::Running;
    store.create_run(&bobs).await.unwrap();

    // The threads were touched just now: a cutoff in the past leaves them all, runs or not.
    assert_eq!(
        store.delete_finished_runs_before(at(1), 10).await.unwrap(),
        0
    );
    assert_eq!(
        store.delete_finished_runs_before(at(2), 1).await.unwrap(),
        1
    );
    let threads = |user: &'static str, store: Arc<dyn Store>| async move {
        let mut ids: Vec<String> = store
            .list_threads(user, "acme", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.thread_id)
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        threads("alice", store.clone()).await,
        ["busy", "emptied", "runless"]
    );

    // Past the threads' last activity: a thread whose last run went goes with it.
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert_eq!(
        store.delete_finished_runs_before(later, 10).await.unwrap(),
        2
    );
    assert_eq!(threads("alice", store.clone()).await, ["busy", "runless"]);
    assert_eq!(threads("bob", store.clone()).await, ["emptied"]);
    assert_eq!(thread_runs(store.as_ref(), "alice", "busy").await.len(), 1);
}

async fn racing_retention_calls_delete_each_run_once(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    // Two handles: on PostgreSQL, two nodes' pools.
    let first = db.open().await;
    let second = db.open().await;
    for i in 0..40_i64 {
        let id = format!("r{i}");
        finished_run(
            first.as_ref(),
            &id,
            "t",
            i,
            RunStatus::Completed,
            Some(at(i)),
            3,
        )
        .await;
    }
    let cutoff = at(10_000);
    let drain = |store: Arc<dyn Store>| async move {
        let mut deleted = 0;
        loop {
            match store.delete_finished_runs_before(cutoff, 4).await.unwrap() {
                0 => return deleted,
                n => deleted += n,
            }
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(drain(first.clone())),
        tokio::spawn(drain(second.clone()))
    );
    assert_eq!(a.unwrap() + b.unwrap(), 40);
    assert!(thread_runs(first.as_ref(), "alice", "t").await.is_empty());
}

/// PostgreSQL's version 3 keys threads by tenant: a thread row one `sub` shared across two
/// tenants under version 2 stays with its tenant, and the other tenant gets a row of its own,
/// titled by its first question. (SQLite's version 4 is tested in src/migrate.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_upgrade_gives_each_tenant_its_own_thread() {
    let Some(db) = TestDb::new(Kind::Postgres).await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, \
         applied_at BIGINT NOT NULL)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for sql in [
        include_str!("../migrations/postgres/0001_initial.sql"),
        include_str!("../migrations/postgres/0002_retention.sql"),
    ] {
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    }
    let long = "é".repeat(100);
    sqlx::raw_sql(
        "INSERT INTO schema_migrations VALUES (1, 0), (2, 0);
         INSERT INTO threads VALUES ('u', 't', 'acme', 'acme title', 1, 5);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for (run_id, tenant, question, created) in [
        ("r1", "acme", "q1", 1_i64),
        ("r3", "globex", "later", 9),
        ("r2", "globex", long.as_str(), 7),
    ] {
        sqlx::query(
            "INSERT INTO runs (run_id, thread_id, user_id, tenant_id, agent, user_request, \
             status, created_at, last_seq) \
             VALUES ($1, 't', 'u', $2, 'supervisor', $3, 'completed', $4, 0)",
        )
        .bind(run_id)
        .bind(tenant)
        .bind(question)
        .bind(created)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();

    let store = db.open().await;
    assert_eq!(
        store.schema_version().await.unwrap(),
        Backend::Postgres.latest_schema_version()
    );
    let acme = store.list_threads("u", "acme", 10).await.unwrap();
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0].title, "acme title");
    let globex = store.list_threads("u", "globex", 10).await.unwrap();
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0].title, agentwire_store::thread_title(&long));
    assert_eq!(globex[0].created_at.timestamp_millis(), 7);
    assert_eq!(globex[0].updated_at.timestamp_millis(), 9);
    store.close().await;
}

/// An append raises its runs' `last_seq` by their key and never reads the other runs, however
/// PostgreSQL judges `runs`. Up to schema version 5 the append trigger joined the batch to
/// `runs` in one statement, which PL/pgSQL plans once per connection: planned while `runs` was
/// new (a fresh database, until its first ANALYZE) it was a hash join over a scan of every run,
/// and the connection kept that plan for each later append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_append_finds_its_runs_by_key_and_scans_no_others() {
    let Some(db) = TestDb::new(Kind::Postgres).await else {
        return;
    };
    let store = db.open().await;
    // Fewer than autovacuum's 50 changes, so `runs` stays unanalyzed, as in a new database: on
    // a table PostgreSQL knows to be one page, a scan is what it should choose.
    for i in 0..40 {
        let run_id = format!("r{i}");
        store
            .create_run(&run(&run_id, "alice", &format!("t{i}"), at(i)))
            .await
            .unwrap();
    }
    store.close().await;

    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO run_events (run_id, seq, event_type, payload, created_at) VALUES \
         ('r7', 1, 'progress', '{}', 0), ('r7', 2, 'progress', '{}', 0), \
         ('r9', 1, 'progress', '{}', 0)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    // This transaction's own reads of `runs`, the trigger's included.
    let scans: i64 =
        sqlx::query_scalar("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'runs'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(scans, 0, "the append scanned runs");
    let last: Vec<(String, i64)> = sqlx::query_as(
        "SELECT run_id, last_seq FROM runs WHERE run_id IN ('r7', 'r8', 'r9') ORDER BY run_id",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(last, [("r7".into(), 2), ("r8".into(), 0), ("r9".into(), 1)]);
    tx.rollback().await.unwrap();
}

/// A large event's payload is compressed with lz4 on a PostgreSQL built with it: PostgreSQL's
/// default, pglz, costs several times the CPU for about the same size on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_event_log_compresses_large_payloads_with_lz4_when_it_can() {
    let Some(db) = TestDb::new(Kind::Postgres).await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    if version < 140_000 {
        eprintln!("skipped: PostgreSQL {version} has no lz4 for values (14 and later do)");
        return;
    }
    let lz4: bool = sqlx::query_scalar(
        "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();

    let store = db.open().await;
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();
    let rows: Vec<String> = (0..200)
        .map(|i| format!(r#"{{"day":"2026-11-{:02}","cost_usd":{i}.25}}"#, i % 28 + 1))
        .collect();
    let payload = format!(r#"{{"type":"tool_completed","rows":[{}]}}"#, rows.join(","));
    assert!(
        payload.len() > 4_000,
        "large enough to be compressed at all"
    );
    store
        .append_events(
            "r1",
            vec![NewEvent {
                seq: 1,
                event_type: "tool_completed".into(),
                payload: payload.into(),
            }],
        )
        .await
        .unwrap();
    store.close().await;

    let method: Option<String> = sqlx::query_scalar(
        "SELECT pg_column_compression(payload) FROM run_events WHERE run_id = 'r1' AND seq = 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let expected = if lz4 { "lz4" } else { "pglz" };
    assert_eq!(method.as_deref(), Some(expected));
}
