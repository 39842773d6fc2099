//! Cancelling a run stops its CPU work: over a tenant large enough that one analysis takes a
//! while, a cancelled run's analysis stops, and the run ends (freeing its run slot) only once it
//! has; a run waiting for the same memoized result still gets one. No test here judges a timing:
//! only what the pool is running when the terminal event comes, and which events come.

use crate::support::{drain, engine, principal, request, until};
use agentwire_analytics::UsageRecord;
use agentwire_engine::{Engine, EngineConfig};
use agentwire_protocol::{AgentKind, EventKind, RunEvent};
use std::sync::OnceLock;
use std::time::Duration;

/// Upper bound for an awaited event or state; never a pass/fail timing.
const LIVENESS: Duration = Duration::from_secs(120);

/// Enough records that one analysis runs for a good while in a debug build (and for tens of
/// milliseconds in a release one), spread over 90 days, teams, features and models.
fn big_tenant() -> &'static [UsageRecord] {
    static RECORDS: OnceLock<Vec<UsageRecord>> = OnceLock::new();
    RECORDS.get_or_init(|| agentwire_analytics::bulk_usage(400_000))
}

async fn engine_with_big_tenant(config: EngineConfig) -> (Engine, tempfile::TempDir) {
    let (engine, dir) = engine(config).await;
    engine.ingest("big", big_tenant().to_vec()).await.unwrap();
    (engine, dir)
}

fn executing(tool: &'static str) -> impl FnMut(&RunEvent) -> bool {
    move |e| matches!(&e.kind, EventKind::ToolExecuting { tool: t, .. } if t == tool)
}

/// Waits until the pool runs `jobs` jobs.
async fn pool_runs(engine: &Engine, jobs: u64) {
    tokio::time::timeout(LIVENESS, async {
        while engine.metrics().pool_jobs_running != jobs {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the pool never ran {jobs} job(s)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_ends_only_once_its_analysis_has_stopped() {
    let config = EngineConfig {
        cpu_threads: 1,
        max_concurrent_runs_per_user: 1,
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_big_tenant(config).await;
    let who = principal("alice", "big");
    for round in 0..3 {
        // Each round asks something new, so the analysis is computed, not memoized.
        let asked = format!("What did we spend in the last {} days?", 20 + round);
        let mut run = engine
            .start_run(&who, request(AgentKind::Data, &asked))
            .await
            .unwrap();
        until(&mut run.events, executing("run_query")).await;
        pool_runs(&engine, 1).await;
        engine.cancel(&who, &run.run_id).await.unwrap();
        let rest = drain(run.events).await;
        // The terminal event (and the run's slot with it) comes after the analysis stopped:
        // a start/cancel loop never has more than the user's runs computing.
        assert_eq!(
            engine.metrics().pool_jobs_running,
            0,
            "round {round}: the run ended while its analysis still ran"
        );
        assert!(
            matches!(
                rest.last().map(|e| &e.kind),
                Some(EventKind::AgentCancelled { .. })
            ),
            "{:#?}",
            rest.last()
        );
    }
    // The slot is free: the user's next run is admitted.
    let next = engine
        .start_run(&who, request(AgentKind::Data, "What did we spend?"))
        .await
        .unwrap();
    engine.cancel(&who, &next.run_id).await.unwrap();
    drain(next.events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waiting_for_a_cancelled_runs_computation_still_gets_its_result() {
    let config = EngineConfig {
        cpu_threads: 1,
        analysis_slots: 2,
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_big_tenant(config).await;
    let (first, second) = (principal("alice", "big"), principal("bob", "big"));
    let mut computing = engine
        .start_run(&first, request(AgentKind::Data, "What did we spend?"))
        .await
        .unwrap();
    until(&mut computing.events, executing("run_query")).await;
    pool_runs(&engine, 1).await;
    // The same question over the same data: it waits for the first run's computation.
    let mut waiting = engine
        .start_run(&second, request(AgentKind::Data, "What did we spend?"))
        .await
        .unwrap();
    until(&mut waiting.events, executing("run_query")).await;
    engine.cancel(&first, &computing.run_id).await.unwrap();
    drain(computing.events).await;

    let rest = drain(waiting.events).await;
    let summary = rest
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::ToolCompleted {
                tool,
                status,
                cached,
                ..
            } if tool == "run_query" => Some((*status, *cached)),
            _ => None,
        })
        .expect("the waiting run's run_query completed");
    // Computed by the waiting run itself: the cancelled run's computation stopped.
    assert_eq!(
        summary,
        (agentwire_protocol::ToolStatus::Ok, false),
        "{rest:#?}"
    );
    assert!(
        matches!(
            rest.last().map(|e| &e.kind),
            Some(EventKind::AgentCompleted { .. })
        ),
        "{:#?}",
        rest.last()
    );
}
