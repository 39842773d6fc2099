//! The cluster primitives, on both backends: admission enforced by the database, node leases
//! and sweeps, ending a run atomically, cancel requests and notices.
//!
//! "Nodes" are separate store instances on one database: on PostgreSQL each has its own pool
//! (as separate processes would); on SQLite they are separate connections to one file, which
//! SQLite serializes, so the same invariants hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agentwire_store::{
    Admission, EndRun, NewEvent, Notice, RunRecord, RunStatus, Store, StoreError, thread_title,
};
use common::{Kind, TestDb, at, expect_notice, minimal, run, seqs};

const HOUR: Duration = Duration::from_secs(3_600);

on_both_backends!(
    admission_limits_runs_per_user_and_per_thread,
    admission_records_the_thread_only_with_the_run,
    admission_stores_the_first_event_only_with_the_run,
    admission_reads_the_usage_version_of_every_upload_committed_before_it,
    concurrent_admission_from_many_nodes_never_exceeds_the_limit,
    one_thread_admits_one_run_however_many_nodes_race,
    leases_renew_expire_and_are_lost_to_a_sweep,
    two_sweepers_claim_a_dead_node_once,
    a_sweep_abandoned_by_a_dead_sweeper_can_be_taken_over,
    end_run_is_all_or_nothing_and_nothing_follows_it,
    end_run_stores_more_events_than_one_statement_holds,
    an_executor_presumed_dead_never_writes_past_the_sweep,
    notices_reach_subscribers_once_committed,
    cancel_requests_are_recorded_for_the_executing_node,
);

async fn admission_records_the_thread_only_with_the_run(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store.register_node("n1", HOUR).await.unwrap();
    let question = "q".repeat(100);
    let first = RunRecord {
        user_request: question.clone(),
        ..run("r1", "alice", "t1", at(0))
    };
    assert_eq!(
        store.admit_run(&first, "n1", 1, None).await.unwrap(),
        Admission::Admitted { usage_version: 0 }
    );
    // Admitted: the thread is there, titled by the question.
    let threads = store.list_threads("alice", "acme", 10).await.unwrap();
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].thread_id, "t1");
    assert_eq!(threads[0].tenant_id, "acme");
    assert_eq!(threads[0].title, thread_title(&question));
    assert_eq!(threads[0].title.chars().count(), 80);

    tokio::time::sleep(Duration::from_millis(5)).await;
    // A conflict on the thread does not touch it.
    assert!(matches!(
        store
            .admit_run(&run("r2", "alice", "t1", at(1)), "n1", 5, None)
            .await
            .unwrap(),
        Admission::Conflict { .. }
    ));
    // Too many runs: a new thread is not created.
    assert!(matches!(
        store
            .admit_run(&run("r3", "alice", "t2", at(2)), "n1", 1, None)
            .await
            .unwrap(),
        Admission::TooMany { .. }
    ));
    assert_eq!(
        store.list_threads("alice", "acme", 10).await.unwrap(),
        threads
    );

    // Once admitted again, the existing thread is touched, its title kept.
    store
        .set_run_status("r1", RunStatus::Completed, Some(at(3)))
        .await
        .unwrap();
    assert_eq!(
        store
            .admit_run(&run("r4", "alice", "t1", at(4)), "n1", 1, None)
            .await
            .unwrap(),
        Admission::Admitted { usage_version: 0 }
    );
    let touched = store.list_threads("alice", "acme", 10).await.unwrap();
    assert_eq!(touched.len(), 1);
    assert_eq!(touched[0].title, threads[0].title);
    assert!(touched[0].updated_at > threads[0].updated_at);
}

/// `n` stores on the same database ("nodes").
fn first_event(seq: u64) -> NewEvent {
    NewEvent {
        seq,
        event_type: "agent_started".into(),
        payload: format!(r#"{{"type":"agent_started","seq":{seq}}}"#).into(),
    }
}

/// Admits alice's run `r1` (thread t1) on node n1 with its first event.
async fn admit_r1(store: &dyn Store) -> Admission {
    store
        .admit_run(
            &run("r1", "alice", "t1", at(0)),
            "n1",
            2,
            Some(first_event(1)),
        )
        .await
        .unwrap()
}

async fn admission_stores_the_first_event_only_with_the_run(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store.register_node("n1", HOUR).await.unwrap();
    assert_eq!(
        admit_r1(&*store).await,
        Admission::Admitted { usage_version: 0 }
    );
    // Stored in the admission's commit: readable at once, and the run's log goes on from it.
    let events = store.events_after("r1", 0, u32::MAX).await.unwrap();
    assert_eq!(seqs(&events), [1]);
    assert_eq!(*events[0].payload, *first_event(1).payload);
    assert_eq!(store.get_run("r1").await.unwrap().unwrap().last_seq, 1);
    store
        .append_event("r1", 2, "agent_thinking", "{}")
        .await
        .unwrap();

    // Refused runs store nothing, not even their first event.
    assert!(matches!(
        store
            .admit_run(
                &run("r2", "alice", "t1", at(1)),
                "n1",
                2,
                Some(first_event(1))
            )
            .await
            .unwrap(),
        Admission::Conflict { .. }
    ));
    assert!(store.get_run("r2").await.unwrap().is_none());
    assert!(
        store
            .events_after("r2", 0, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    // A first event is seq 1; anything else is refused before the run is stored.
    assert!(matches!(
        store
            .admit_run(
                &run("r3", "alice", "t3", at(2)),
                "n1",
                2,
                Some(first_event(2))
            )
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(store.get_run("r3").await.unwrap().is_none());
}

async fn nodes(db: &TestDb, n: usize) -> Vec<Arc<dyn Store>> {
    let mut stores = Vec::with_capacity(n);
    for _ in 0..n {
        stores.push(db.open().await);
    }
    stores
}

async fn admission_limits_runs_per_user_and_per_thread(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store.register_node("n1", HOUR).await.unwrap();

    let r1 = run("r1", "alice", "t1", at(0));
    assert_eq!(
        store.admit_run(&r1, "n1", 2, None).await.unwrap(),
        Admission::Admitted { usage_version: 0 }
    );
    // The thread is busy: RUN_CONFLICT names the run in the way.
    assert_eq!(
        store
            .admit_run(&run("r2", "alice", "t1", at(1)), "n1", 2, None)
            .await
            .unwrap(),
        Admission::Conflict {
            run_id: "r1".into()
        }
    );
    assert_eq!(
        store
            .admit_run(&run("r2", "alice", "t2", at(1)), "n1", 2, None)
            .await
            .unwrap(),
        Admission::Admitted { usage_version: 0 }
    );
    assert_eq!(
        store
            .admit_run(&run("r3", "alice", "t3", at(2)), "n1", 2, None)
            .await
            .unwrap(),
        Admission::TooMany {
            active: 2,
            limit: 2
        }
    );
    // Refused runs were not stored.
    assert_eq!(store.get_run("r3").await.unwrap(), None);
    // Another user, and the same user in another tenant, have their own limits and threads.
    assert_eq!(
        store
            .admit_run(&run("b1", "bob", "t1", at(3)), "n1", 2, None)
            .await
            .unwrap(),
        Admission::Admitted { usage_version: 0 }
    );
    let mut elsewhere = run("g1", "alice", "t1", at(3));
    elsewhere.tenant_id = "globex".into();
    assert_eq!(
        store.admit_run(&elsewhere, "n1", 2, None).await.unwrap(),
        Admission::Admitted { usage_version: 0 }
    );

    // A run stops counting once its terminal status is set.
    store
        .append_event("r1", 1, "agent_completed", "{}")
        .await
        .unwrap();
    store
        .set_run_status("r1", RunStatus::Completed, Some(at(5)))
        .await
        .unwrap();
    assert_eq!(
        store
            .admit_run(&run("r4", "alice", "t1", at(6)), "n1", 2, None)
            .await
            .unwrap(),
        Admission::Admitted { usage_version: 0 }
    );
    let on_node: HashSet<String> = store
        .node_runs_in_flight("n1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    let expected: HashSet<String> = ["r2", "b1", "g1", "r4"].map(String::from).into();
    assert_eq!(on_node, expected);

    // Duplicates and finished runs are refused.
    assert!(matches!(
        store.admit_run(&run("r4", "carol", "x", at(7)), "n1", 2, None).await,
        Err(StoreError::DuplicateRun(id)) if id == "r4"
    ));
    let mut done = run("r5", "carol", "x", at(7));
    done.status = RunStatus::Completed;
    assert!(matches!(
        store.admit_run(&done, "n1", 2, None).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert_eq!(
        store
            .admit_run(&run("r6", "dave", "x", at(7)), "n1", 0, None)
            .await
            .unwrap(),
        Admission::TooMany {
            active: 0,
            limit: 0
        }
    );
}

/// A node holding a tenant's records in memory compares this version with its own to know
/// they are stale, even before the upload's notice reaches it.
async fn admission_reads_the_usage_version_of_every_upload_committed_before_it(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let (uploader, admitter) = (db.open().await, db.open().await);
    admitter.register_node("n1", HOUR).await.unwrap();
    let admit = |id: &str| {
        let (admitter, r) = (admitter.clone(), run(id, "alice", id, at(0)));
        async move { admitter.admit_run(&r, "n1", 100, None).await.unwrap() }
    };
    assert_eq!(admitter.usage_version("acme").await.unwrap(), 0);
    assert_eq!(admit("r1").await, Admission::Admitted { usage_version: 0 });

    uploader
        .insert_usage("acme", &[minimal(at(0), "m")])
        .await
        .unwrap();
    assert_eq!(admitter.usage_version("acme").await.unwrap(), 1);
    assert_eq!(admit("r2").await, Admission::Admitted { usage_version: 1 });

    // Uploads not committed do not count, aborted or still open; nor other tenants' uploads.
    let aborted = uploader.begin_usage_upload("acme").await.unwrap();
    uploader
        .stage_usage(&aborted, &[minimal(at(1), "m")])
        .await
        .unwrap();
    uploader.abort_usage_upload(&aborted).await.unwrap();
    let open = uploader.begin_usage_upload("acme").await.unwrap();
    uploader
        .stage_usage(&open, &[minimal(at(2), "m")])
        .await
        .unwrap();
    uploader
        .insert_usage("other", &[minimal(at(0), "m")])
        .await
        .unwrap();
    assert_eq!(admit("r3").await, Admission::Admitted { usage_version: 1 });
    assert_eq!(admitter.usage_version("other").await.unwrap(), 1);

    uploader.commit_usage_upload(&open).await.unwrap();
    assert_eq!(admitter.usage_version("acme").await.unwrap(), 2);
    assert_eq!(admit("r4").await, Admission::Admitted { usage_version: 2 });
    assert_eq!(admitter.usage_version("nobody").await.unwrap(), 0);
}

async fn concurrent_admission_from_many_nodes_never_exceeds_the_limit(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let stores = nodes(&db, 3).await;
    let limit = 5u32;
    let mut tasks = Vec::new();
    for i in 0..60usize {
        let store = Arc::clone(&stores[i % stores.len()]);
        tasks.push(tokio::spawn(async move {
            let node = format!("n{}", i % 3);
            let r = run(&format!("r{i}"), "alice", &format!("t{i}"), at(0));
            store.admit_run(&r, &node, limit, None).await
        }));
    }
    let mut admitted = 0;
    let mut too_many = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Admission::Admitted { .. } => admitted += 1,
            Admission::TooMany { active, limit: 5 } => {
                assert_eq!(active, 5);
                too_many += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((admitted, too_many), (5, 55));
    let in_flight = stores[0].runs_in_flight().await.unwrap();
    assert_eq!(in_flight.len(), 5);
}

async fn one_thread_admits_one_run_however_many_nodes_race(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let stores = nodes(&db, 3).await;
    let mut tasks = Vec::new();
    for i in 0..30usize {
        let store = Arc::clone(&stores[i % stores.len()]);
        tasks.push(tokio::spawn(async move {
            let r = run(&format!("r{i}"), "alice", "the-thread", at(0));
            (
                format!("r{i}"),
                store.admit_run(&r, "n", 100, None).await.unwrap(),
            )
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (id, Admission::Admitted { .. }) => winners.push(id),
            (_, Admission::Conflict { run_id }) => conflicts.push(run_id),
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(conflicts.len(), 29);
    // Every refusal names the one run that got in.
    assert!(conflicts.iter().all(|id| *id == winners[0]));
}

async fn leases_renew_expire_and_are_lost_to_a_sweep(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    let a = store.register_node("a", HOUR).await.unwrap();
    assert_eq!(a.node_id, "a");
    assert!(a.lease_expires_at > a.started_at);
    assert_eq!(a.swept_by, None);
    assert!(matches!(
        store.register_node("a", HOUR).await,
        Err(StoreError::NodeIdInUse(id)) if id == "a"
    ));
    // Renewing never shortens a lease.
    let renewed = store.renew_node_lease("a", Duration::ZERO).await.unwrap();
    assert_eq!(renewed, a.lease_expires_at);
    let renewed = store.renew_node_lease("a", 2 * HOUR).await.unwrap();
    assert!(renewed > a.lease_expires_at);

    // A lease of zero has expired at once; renewing before anyone claims it revives the node,
    // and then it cannot be claimed.
    store.register_node("b", Duration::ZERO).await.unwrap();
    let expired: Vec<String> = store
        .expired_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(expired, ["b"]);
    store.renew_node_lease("b", HOUR).await.unwrap();
    assert!(store.expired_nodes().await.unwrap().is_empty());
    assert!(!store.claim_node_sweep("b", "a").await.unwrap());

    // Once claimed, the dead node's renewals fail: its runs are no longer its own.
    store.register_node("c", Duration::ZERO).await.unwrap();
    assert!(store.claim_node_sweep("c", "a").await.unwrap());
    assert!(matches!(
        store.renew_node_lease("c", HOUR).await,
        Err(StoreError::LeaseLost(id)) if id == "c"
    ));
    assert!(matches!(
        store.renew_node_lease("nobody", HOUR).await,
        Err(StoreError::LeaseLost(_))
    ));

    // Deregistering waits for the node's runs to end.
    assert_eq!(
        store
            .admit_run(&run("r1", "alice", "t1", at(0)), "a", 10, None)
            .await
            .unwrap(),
        Admission::Admitted { usage_version: 0 }
    );
    assert!(!store.deregister_node("a").await.unwrap());
    store
        .set_run_status("r1", RunStatus::Cancelled, Some(at(1)))
        .await
        .unwrap();
    assert!(store.deregister_node("a").await.unwrap());
    assert!(matches!(
        store.renew_node_lease("a", HOUR).await,
        Err(StoreError::LeaseLost(_))
    ));
}

async fn two_sweepers_claim_a_dead_node_once(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let stores = nodes(&db, 4).await;
    for (i, store) in stores.iter().enumerate() {
        store
            .register_node(&format!("survivor{i}"), HOUR)
            .await
            .unwrap();
    }
    stores[0]
        .register_node("dead", Duration::ZERO)
        .await
        .unwrap();
    for i in 0..3 {
        let r = run(&format!("r{i}"), &format!("u{i}"), "t", at(i));
        stores[0].admit_run(&r, "dead", 10, None).await.unwrap();
    }

    // Every survivor tries, several times each, all at once: exactly one claim succeeds.
    let mut tasks = Vec::new();
    for round in 0..5 {
        for (i, store) in stores.iter().enumerate() {
            let store = Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                let sweeper = format!("survivor{i}");
                let won = store.claim_node_sweep("dead", &sweeper).await.unwrap();
                (round, sweeper, won)
            }));
        }
    }
    let mut winners = HashSet::new();
    for task in tasks {
        let (_, sweeper, won) = task.await.unwrap();
        if won {
            winners.insert(sweeper);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = winners.into_iter().next().unwrap();
    let loser = if winner == "survivor0" {
        "survivor1"
    } else {
        "survivor0"
    };
    // The claim holds: the winner may repeat it, nobody else gets it, and the dead node is
    // no longer offered for sweeping.
    assert!(stores[0].claim_node_sweep("dead", &winner).await.unwrap());
    assert!(!stores[0].claim_node_sweep("dead", loser).await.unwrap());
    assert!(stores[0].expired_nodes().await.unwrap().is_empty());
    // Live, unknown and self claims are refused.
    assert!(
        !stores[0]
            .claim_node_sweep("survivor2", loser)
            .await
            .unwrap()
    );
    assert!(!stores[0].claim_node_sweep("ghost", loser).await.unwrap());
    assert!(!stores[0].claim_node_sweep("dead", "dead").await.unwrap());
    assert!(
        !stores[0]
            .claim_node_sweep("dead", "not-a-node")
            .await
            .unwrap()
    );

    // The winner ends the dead node's runs, then removes it.
    let runs = stores[0].node_runs_in_flight("dead").await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        ["r0", "r1", "r2"]
    );
    assert!(!stores[0].finish_node_sweep("dead", &winner).await.unwrap());
    for r in &runs {
        let interrupted = NewEvent {
            seq: r.last_seq + 1,
            event_type: "agent_error".into(),
            payload: r#"{"type":"agent_error","error_code":"INTERRUPTED"}"#.into(),
        };
        assert_eq!(
            stores[0]
                .end_run(
                    &r.run_id,
                    r.last_seq,
                    vec![interrupted],
                    RunStatus::Failed,
                    at(9)
                )
                .await
                .unwrap(),
            EndRun::Ended
        );
    }
    assert!(!stores[0].finish_node_sweep("dead", loser).await.unwrap());
    assert!(stores[0].finish_node_sweep("dead", &winner).await.unwrap());
    assert!(
        stores[0]
            .node_runs_in_flight("dead")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        stores[0].renew_node_lease("dead", HOUR).await,
        Err(StoreError::LeaseLost(_))
    ));
}

async fn a_sweep_abandoned_by_a_dead_sweeper_can_be_taken_over(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store.register_node("dead", Duration::ZERO).await.unwrap();
    store.register_node("sweeper", HOUR).await.unwrap();
    store.register_node("other", HOUR).await.unwrap();
    assert!(store.claim_node_sweep("dead", "sweeper").await.unwrap());
    assert!(!store.claim_node_sweep("dead", "other").await.unwrap());
    // The sweeper goes away before finishing (here: it stops being a node at all, exactly
    // what an expired lease looks like to the claim): the sweep is offered again.
    assert!(store.deregister_node("sweeper").await.unwrap());
    let offered: Vec<String> = store
        .expired_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(offered, ["dead"]);
    assert!(store.claim_node_sweep("dead", "other").await.unwrap());
    let dead = store.expired_nodes().await.unwrap();
    assert!(dead.is_empty(), "{dead:?}");
}

async fn end_run_is_all_or_nothing_and_nothing_follows_it(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();
    store
        .append_event("r1", 1, "agent_started", "{}")
        .await
        .unwrap();
    store
        .append_event("r1", 2, "tool_executing", "{}")
        .await
        .unwrap();
    let closing = |from: u64| {
        vec![
            NewEvent {
                seq: from + 1,
                event_type: "tool_completed".into(),
                payload: "{\"status\":\"error\"}".into(),
            },
            NewEvent {
                seq: from + 2,
                event_type: "agent_error".into(),
                payload: "{\"error_code\":\"INTERRUPTED\"}".into(),
            },
        ]
    };
    // The caller read an old log: nothing is written, and it learns where the log is.
    assert_eq!(
        store
            .end_run("r1", 1, closing(1), RunStatus::Failed, at(5))
            .await
            .unwrap(),
        EndRun::Moved { last_seq: 2 }
    );
    assert_eq!(
        seqs(&store.events_after("r1", 0, u32::MAX).await.unwrap()),
        [1, 2]
    );
    // Arguments that contradict each other are refused before anything is written.
    assert!(matches!(
        store
            .end_run("r1", 2, closing(2), RunStatus::Running, at(5))
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    let mut gap = closing(2);
    gap[1].seq = 9;
    assert!(matches!(
        store.end_run("r1", 2, gap, RunStatus::Failed, at(5)).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store
            .end_run("ghost", 0, vec![], RunStatus::Failed, at(5))
            .await,
        Err(StoreError::RunNotFound(_))
    ));

    assert_eq!(
        store
            .end_run("r1", 2, closing(2), RunStatus::Failed, at(5))
            .await
            .unwrap(),
        EndRun::Ended
    );
    let ended = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(ended.status, RunStatus::Failed);
    assert_eq!(ended.finished_at, Some(at(5)));
    assert_eq!(ended.last_seq, 4);
    assert_eq!(
        seqs(&store.events_after("r1", 0, u32::MAX).await.unwrap()),
        [1, 2, 3, 4]
    );
    assert!(matches!(
        store.append_event("r1", 5, "progress", "{}").await,
        Err(StoreError::RunFinished {
            status: RunStatus::Failed,
            ..
        })
    ));
    assert_eq!(
        store
            .end_run("r1", 4, closing(4), RunStatus::Failed, at(6))
            .await
            .unwrap(),
        EndRun::AlreadyFinished {
            status: RunStatus::Failed
        }
    );
    // A run with its terminal event already logged only needs its status: no events.
    store
        .create_run(&run("r2", "alice", "t2", at(0)))
        .await
        .unwrap();
    store
        .append_event("r2", 1, "agent_completed", "{}")
        .await
        .unwrap();
    assert_eq!(
        store
            .end_run("r2", 1, vec![], RunStatus::Completed, at(7))
            .await
            .unwrap(),
        EndRun::Ended
    );
    assert_eq!(
        store.get_run("r2").await.unwrap().unwrap().status,
        RunStatus::Completed
    );
}

/// A run that ends with a long backlog (SQLite writes at most 512 events a statement): every
/// event is stored, in order, with the end.
async fn end_run_stores_more_events_than_one_statement_holds(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store.register_node("n1", HOUR).await.unwrap();
    assert_eq!(
        admit_r1(&*store).await,
        Admission::Admitted { usage_version: 0 }
    );
    let backlog: Vec<NewEvent> = (2..=1_200)
        .map(|seq| NewEvent {
            seq,
            event_type: "agent_thinking".into(),
            payload: format!(r#"{{"seq":{seq}}}"#).into(),
        })
        .collect();
    assert_eq!(
        store
            .end_run("r1", 1, backlog, RunStatus::Completed, at(5))
            .await
            .unwrap(),
        EndRun::Ended
    );
    let logged = store.events_after("r1", 0, u32::MAX).await.unwrap();
    assert_eq!(seqs(&logged), (1..=1_200).collect::<Vec<u64>>());
    assert_eq!(*logged[1_199].payload, *r#"{"seq":1200}"#);
    let ended = store.get_run("r1").await.unwrap().unwrap();
    assert_eq!(
        (ended.status, ended.last_seq),
        (RunStatus::Completed, 1_200)
    );
}

async fn an_executor_presumed_dead_never_writes_past_the_sweep(kind: Kind) {
    // The executor keeps appending (it was only paused, not dead) while a sweeper on another
    // node ends the run. Whatever the interleaving, the log is gap-free and ends with the
    // sweeper's terminal event; the executor's next append after it is refused.
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let stores = nodes(&db, 2).await;
    for r in 0..4 {
        let run_id = format!("r{r}");
        stores[0]
            .create_run(&run(&run_id, "alice", &format!("t{r}"), at(0)))
            .await
            .unwrap();
        let executor = Arc::clone(&stores[0]);
        let id = run_id.clone();
        let writer = tokio::spawn(async move {
            let mut seq = 1;
            loop {
                match executor.append_event(&id, seq, "progress", "{}").await {
                    Ok(()) => seq += 1,
                    Err(e) => return (seq, e),
                }
            }
        });
        // Let the executor get going (more so for later runs), then sweep.
        tokio::time::sleep(Duration::from_millis(5 * r)).await;
        let sweeper = &stores[1];
        let terminal_seq = loop {
            let last = sweeper.get_run(&run_id).await.unwrap().unwrap().last_seq;
            let event = NewEvent {
                seq: last + 1,
                event_type: "agent_error".into(),
                payload: "sweeper".into(),
            };
            match sweeper
                .end_run(&run_id, last, vec![event], RunStatus::Failed, at(1))
                .await
                .unwrap()
            {
                EndRun::Ended => break last + 1,
                EndRun::Moved { .. } => continue,
                EndRun::AlreadyFinished { status } => panic!("finished as {status}"),
            }
        };
        let (refused_seq, error) = writer.await.unwrap();
        assert!(
            matches!(
                error,
                StoreError::RunFinished { .. } | StoreError::DuplicateEvent { .. }
            ),
            "{error:?}"
        );
        assert!(refused_seq <= terminal_seq + 1);
        let events = stores[0].events_after(&run_id, 0, u32::MAX).await.unwrap();
        assert_eq!(seqs(&events), (1..=terminal_seq).collect::<Vec<_>>());
        assert_eq!(events.last().unwrap().payload, "sweeper");
        assert!(events[..events.len() - 1].iter().all(|e| e.payload == "{}"));
    }
}

async fn notices_reach_subscribers_once_committed(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    // On PostgreSQL the writer is another node; SQLite has one node, so it is the same store.
    let listener = db.open().await;
    let writer = match kind {
        Kind::Postgres => db.open().await,
        Kind::Sqlite => Arc::clone(&listener),
    };
    let mut first = listener.subscribe().await.unwrap();
    let mut second = listener.subscribe().await.unwrap();

    writer
        .create_run(&run("r1", "alice", "t1", at(0)))
        .await
        .unwrap();
    writer
        .append_event("r1", 1, "agent_started", "{}")
        .await
        .unwrap();
    for notices in [&mut first, &mut second] {
        let notice = expect_notice(notices, |n| matches!(n, Notice::RunEvents { .. })).await;
        assert_eq!(
            notice,
            Notice::RunEvents {
                run_id: "r1".into(),
                seq: 1
            }
        );
    }
    // When a notice arrives, the events it announces are readable. (Wake-ups of consecutive
    // commits may arrive in either order: each says "up to at least", and a follower reads
    // from its own last seq.)
    for seq in 2..=20 {
        writer
            .append_event("r1", seq, "progress", "{}")
            .await
            .unwrap();
    }
    let mut highest = 1;
    while highest < 20 {
        let notice = expect_notice(&mut first, |n| matches!(n, Notice::RunEvents { .. })).await;
        let Notice::RunEvents { seq, .. } = notice else {
            unreachable!()
        };
        let events = listener.events_after("r1", 0, u32::MAX).await.unwrap();
        assert_eq!(
            seqs(&events[..usize::try_from(seq).unwrap()]),
            (1..=seq).collect::<Vec<_>>(),
            "seq {seq} announced before it was readable"
        );
        highest = highest.max(seq);
    }

    writer
        .insert_usage("acme", &[minimal(at(0), "m")])
        .await
        .unwrap();
    assert_eq!(
        expect_notice(&mut second, |n| matches!(n, Notice::UsageChanged { .. })).await,
        Notice::UsageChanged {
            tenant_id: "acme".into()
        }
    );

    assert!(writer.request_cancel("r1").await.unwrap());
    assert_eq!(
        expect_notice(&mut first, |n| matches!(n, Notice::CancelRequested { .. })).await,
        Notice::CancelRequested {
            run_id: "r1".into()
        }
    );

    // Dropping a subscription does not disturb the others; a closed store ends them.
    drop(second);
    writer
        .append_event("r1", 21, "progress", "{}")
        .await
        .unwrap();
    expect_notice(&mut first, |n| {
        matches!(n, Notice::RunEvents { seq: 21, .. })
    })
    .await;
    listener.close().await;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while first.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "a subscription outlived its store");
}

async fn cancel_requests_are_recorded_for_the_executing_node(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let store = db.open().await;
    store.register_node("n1", HOUR).await.unwrap();
    for (id, thread) in [("r1", "t1"), ("r2", "t2"), ("r3", "t3")] {
        store
            .admit_run(&run(id, "alice", thread, at(0)), "n1", 10, None)
            .await
            .unwrap();
    }
    assert!(store.cancel_requested_runs("n1").await.unwrap().is_empty());
    assert!(store.request_cancel("r2").await.unwrap());
    assert!(store.request_cancel("r2").await.unwrap()); // asking twice is fine
    assert!(store.request_cancel("r3").await.unwrap());
    // A node that missed the notices finds the requests by asking.
    assert_eq!(
        store.cancel_requested_runs("n1").await.unwrap(),
        ["r2", "r3"]
    );
    assert!(store.cancel_requested_runs("n2").await.unwrap().is_empty());
    // Finished and unknown runs are left alone.
    store
        .set_run_status("r3", RunStatus::Cancelled, Some(at(1)))
        .await
        .unwrap();
    assert_eq!(store.cancel_requested_runs("n1").await.unwrap(), ["r2"]);
    assert!(!store.request_cancel("r3").await.unwrap());
    assert!(!store.request_cancel("ghost").await.unwrap());
}
