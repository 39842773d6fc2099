//! How long a cancelled run's CPU work goes on after the cancel: a measure, not a test.
//!
//! ```sh
//! cargo run -p agentwire-engine --release --example cancel_latency -- [--records 1000000] [--rounds 5]
//! ```
//!
//! Ingests `--records` usage records (90 days, four models, teams and features) into a tenant on
//! a fresh SQLite file, then `--rounds` times: starts a run whose `run_query` reads every record,
//! waits until the CPU pool runs its computation, cancels the run and prints the time from the
//! cancel until the pool runs nothing (the computation stopped) and until the terminal event.
//! For comparison it first lets one such run complete and prints the `run_query`'s own
//! duration: how long the computation would have gone on had the cancel not stopped it. Numbers
//! depend on the machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::arg;

use agentwire_engine::{Engine, EngineConfig, Principal};
use agentwire_protocol::{AgentKind, EventKind, RunParams, StartRun};
use std::time::{Duration, Instant};

fn ask(text: &str) -> StartRun {
    StartRun {
        id: None,
        agent: AgentKind::Data,
        user_request: text.into(),
        thread_id: None,
        params: RunParams::default(),
    }
}

#[tokio::main]
async fn main() {
    let n = u32::try_from(arg("--records", 1_000_000)).expect("--records fits in 32 bits");
    let rounds = arg("--rounds", 5);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cancel.db").display());
    let store = agentwire_store::connect(&url).await.unwrap();
    let engine = Engine::start(
        store,
        EngineConfig {
            cpu_threads: 1,
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    engine
        .ingest("big", agentwire_analytics::bulk_usage(n))
        .await
        .unwrap();
    let who = Principal {
        user_id: "alice".into(),
        tenant_id: "big".into(),
    };

    let mut whole = engine
        .start_run(&who, ask("What did we spend in the last 60 days?"))
        .await
        .unwrap();
    while let Some(event) = whole.events.next().await {
        if let EventKind::ToolCompleted {
            tool, duration_ms, ..
        } = &event.kind
            && tool == "run_query"
        {
            println!("{n} records: run_query computes for {duration_ms} ms when not cancelled");
        }
    }

    for round in 0..rounds {
        let text = format!("What did we spend in the last {} days?", 20 + round);
        let mut run = engine.start_run(&who, ask(&text)).await.unwrap();
        while let Some(event) = run.events.next().await {
            if matches!(&event.kind, EventKind::ToolExecuting { tool, .. } if tool == "run_query") {
                break;
            }
        }
        while engine.metrics().pool_jobs_running == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Let the computation get going before the cancel.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let cancelled = Instant::now();
        engine.cancel(&who, &run.run_id).await.unwrap();
        while engine.metrics().pool_jobs_running != 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let stopped = cancelled.elapsed();
        while run.events.next().await.is_some() {}
        let ended = cancelled.elapsed();
        println!(
            "round {round}: cancel to CPU work stopped {:.1} ms, to the terminal event {:.1} ms",
            stopped.as_secs_f64() * 1e3,
            ended.as_secs_f64() * 1e3
        );
    }
    engine.shutdown(Duration::from_secs(1)).await;
}
