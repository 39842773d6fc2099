//! Rough timings of the store on SQLite (a real file) and, given a server, on PostgreSQL:
//!
//! ```sh
//! cargo run -p agentwire-store --release --example store_bench -- [RECORDS] [--rounds N] [--postgres ADMIN_URL]
//! ```
//!
//! `ADMIN_URL` may create databases: the bench runs in a fresh one and drops it afterwards.
//! Usage insert/load for RECORDS records (default 100,000), then event appends: one appender,
//! then 16, 64 and 256 concurrent appenders (one run each, 100 events each, as concurrent runs
//! append), which group commit shares among commits; N rounds each (default 5), the backends
//! taking turns, medians reported. Not a test: numbers depend on the machine and the disk (the
//! flush per commit dominates appends).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use agentwire_store::{Store, StoreOptions, UsageRecord};
use support::{PAYLOAD, ScratchDatabase, record, run};

async fn usage(label: &str, store: &dyn Store, records: u64) {
    let batch: Vec<UsageRecord> = (0..records).map(record).collect();
    let t = Instant::now();
    store.insert_usage("acme", &batch).await.unwrap();
    println!(
        "{label:<8} insert_usage {records} records: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let loaded = store.load_usage("acme").await.unwrap();
    println!(
        "{label:<8} load_usage   {} records: {:?}",
        loaded.len(),
        t.elapsed()
    );
    assert_eq!(loaded, batch);
    let t = Instant::now();
    let count = store.usage_count("acme").await.unwrap();
    println!("{label:<8} usage_count  {count}: {:?}", t.elapsed());
}

/// `tasks` concurrent appenders, one run each, `PER_RUN` events each; events per second.
async fn appends(store: &Arc<dyn Store>, prefix: &str, tasks: u64) -> f64 {
    for r in 0..tasks {
        store
            .create_run(&run(&format!("{prefix}-{r}"), "t", "acme"))
            .await
            .unwrap();
    }
    let t = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|r| {
            let store = Arc::clone(store);
            let run_id = format!("{prefix}-{r}");
            tokio::spawn(async move {
                for seq in 1..=PER_RUN {
                    store
                        .append_event(&run_id, seq, "agent_thinking", PAYLOAD)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    (tasks * PER_RUN) as f64 / t.elapsed().as_secs_f64()
}

const PER_RUN: u64 = 100;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut records = 100_000u64;
    let mut rounds = 5usize;
    let mut postgres = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--postgres" => postgres = Some(args.next().expect("--postgres needs an admin URL")),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds needs a number")
            }
            n => records = n.parse().expect("records must be a number"),
        }
    }
    println!(
        "SQLite synchronous={:?}; PostgreSQL synchronous_commit=on",
        agentwire_store::EVENT_LOG_SYNCHRONOUS
    );

    let dir = tempfile::TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut stores: Vec<(&str, Arc<dyn Store>)> =
        vec![("sqlite", agentwire_store::connect(&url).await.unwrap())];
    let mut scratch = None;
    if let Some(admin) = postgres {
        let database = ScratchDatabase::create(&admin).await;
        let store = agentwire_store::connect_with(&database.url, &StoreOptions::default())
            .await
            .unwrap();
        stores.push(("postgres", store));
        scratch = Some(database);
    }

    for (label, store) in &stores {
        usage(label, store.as_ref(), records).await;
    }
    // The disk's flush time dominates and varies on a shared machine, so the backends take
    // turns, round after round, and the median of each is reported.
    for tasks in [1u64, 16, 64, 256] {
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); stores.len()];
        for round in 0..rounds {
            for (i, (_, store)) in stores.iter().enumerate() {
                rates[i].push(appends(store, &format!("c{tasks}-{round}"), tasks).await);
            }
        }
        for ((label, _), rates) in stores.iter().zip(rates) {
            let median = median(rates.clone());
            let spread: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
            println!(
                "{label:<8} append_event {tasks:>3} concurrent appenders: median {median:>7.0} events/s  (rounds: {})",
                spread.join(", ")
            );
        }
    }
    for (label, store) in &stores {
        let t = Instant::now();
        let replay = store.events_after("c1-0-0", 0, u32::MAX).await.unwrap();
        println!(
            "{label:<8} events_after {} events: {:?}",
            replay.len(),
            t.elapsed()
        );
        store.close().await;
    }
    if let Some(database) = scratch {
        database.remove().await;
    }
}
