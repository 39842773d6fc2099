//! PostgreSQL going away while a node serves: the listener's connection killed, a silent
//! network partition, the server unreachable. Calls must fail as `Unavailable` instead of
//! hanging, subscribers must be told to re-read, and everything must work again once the
//! database is back, without reopening the store. Skips (or fails under CI) without
//! `AGENTWIRE_TEST_POSTGRES_URL`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentwire_store::{Notice, ResyncReason, Store, StoreError, StoreOptions};
use common::{Kind, Proxy, TestDb, at, expect_notice, run, target, via};

/// Options that notice a vanished database within seconds.
fn impatient() -> StoreOptions {
    StoreOptions {
        pool_size: Some(4),
        operation_timeout: Duration::from_secs(2),
        acquire_timeout: Duration::from_secs(1),
        listener_probe_interval: Duration::from_millis(300),
    }
}

/// The listener's own notices, skipping wake-ups for writes made before the fault.
fn is_listener_state(notice: &Notice) -> bool {
    matches!(notice, Notice::Disconnected | Notice::Resync(_))
}

/// Retries `call` while the database is unavailable; the bound only keeps a broken test from
/// spinning forever.
async fn eventually<T, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut last = None;
    for _ in 0..100 {
        match call().await {
            Ok(value) => return value,
            Err(e) if e.is_retryable() => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("not a retryable error: {e:?}"),
        }
    }
    panic!("still failing: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_connection_is_killed_reconnects_and_says_so() {
    let Some(db) = TestDb::new(Kind::Postgres).await else {
        return;
    };
    let store = db.open().await;
    let mut notices = store.subscribe().await.unwrap();
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();

    // The operator (or a failover) kills the listening backend.
    let mut admin = db.admin().await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND application_name = 'agentwire-listener'",
    )
    .bind(db.name())
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, 1);

    assert_eq!(
        expect_notice(&mut notices, is_listener_state).await,
        Notice::Disconnected
    );
    assert_eq!(
        expect_notice(&mut notices, is_listener_state).await,
        Notice::Resync(ResyncReason::Reconnected)
    );
    // Listening again: what is written from now on is announced.
    store
        .append_event("r1", 1, "agent_started", "{}")
        .await
        .unwrap();
    assert_eq!(
        expect_notice(&mut notices, |n| matches!(n, Notice::RunEvents { .. })).await,
        Notice::RunEvents {
            run_id: "r1".into(),
            seq: 1
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_partition_is_found_by_the_probe_and_healed() {
    let Some(db) = TestDb::new(Kind::Postgres).await else {
        return;
    };
    let proxy = Proxy::start(target(&db.url)).await;
    let through_proxy: Arc<dyn Store> =
        agentwire_store::connect_with(&via(&db.url, proxy.addr), &impatient())
            .await
            .unwrap();
    let mut notices = through_proxy.subscribe().await.unwrap();
    through_proxy
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();

    // Every open connection goes silent: no reset, no EOF. Only the probe can tell.
    proxy.freeze();
    assert_eq!(
        expect_notice(&mut notices, is_listener_state).await,
        Notice::Disconnected
    );
    // New connections get through, so the listener comes back and says so.
    assert_eq!(
        expect_notice(&mut notices, is_listener_state).await,
        Notice::Resync(ResyncReason::Reconnected)
    );
    // The pool sheds its silent connections and serves again without a restart.
    eventually(|| through_proxy.append_event("r1", 1, "agent_started", "{}")).await;
    expect_notice(&mut notices, |n| {
        matches!(n, Notice::RunEvents { seq: 1, .. })
    })
    .await;
    proxy.down();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_calls_and_recovery_needs_no_restart() {
    let Some(db) = TestDb::new(Kind::Postgres).await else {
        return;
    };
    let proxy = Proxy::start(target(&db.url)).await;
    let store: Arc<dyn Store> =
        agentwire_store::connect_with(&via(&db.url, proxy.addr), &impatient())
            .await
            .unwrap();
    let mut notices = store.subscribe().await.unwrap();
    store
        .register_node("n1", Duration::from_secs(3_600))
        .await
        .unwrap();
    store
        .admit_run(&run("r1", "alice", "t1", at(0)), "n1", 10, None)
        .await
        .unwrap();
    store
        .append_event("r1", 1, "agent_started", "{}")
        .await
        .unwrap();

    proxy.down();
    // Each call fails, retryably, instead of hanging: a run whose event cannot be persisted
    // can be ended with a retryable error.
    for result in [
        store.ping().await,
        store.append_event("r1", 2, "progress", "{}").await,
        store
            .renew_node_lease("n1", Duration::from_secs(3_600))
            .await
            .map(|_| ()),
        store.events_after("r1", 0, u32::MAX).await.map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(err.is_retryable());
    }
    assert_eq!(
        expect_notice(&mut notices, is_listener_state).await,
        Notice::Disconnected
    );

    proxy.up().await;
    eventually(|| store.ping()).await;
    assert_eq!(
        expect_notice(&mut notices, is_listener_state).await,
        Notice::Resync(ResyncReason::Reconnected)
    );
    // The failed append wrote nothing; the run goes on from where the log is.
    let events = eventually(|| store.events_after("r1", 0, u32::MAX)).await;
    assert_eq!(events.len(), 1);
    store.append_event("r1", 2, "progress", "{}").await.unwrap();
    expect_notice(&mut notices, |n| {
        matches!(n, Notice::RunEvents { seq: 2, .. })
    })
    .await;
    proxy.down();
}
