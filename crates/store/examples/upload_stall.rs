//! How long other tenants' writes wait while one large usage upload is stored:
//!
//! ```sh
//! cargo run -p agentwire-store --release --example upload_stall -- [ROWS] [--postgres ADMIN_URL]
//! ```
//!
//! On SQLite (a real file in a temporary directory) or, with `--postgres`, in a fresh PostgreSQL
//! database (dropped afterwards). Four tasks append events to runs of tenant `other`, one after
//! another each, and a fifth creates runs of `other`, while `insert_usage` stores ROWS records
//! (default 1,000,000) for tenant `acme`. Prints the latency histograms (p50, p99, p99.9, max) of
//! those appends and run creations: first for a few seconds without an upload (the baseline),
//! then during the upload. Uses only `insert_usage`, `create_run` and `append_event`, so the same
//! file measures any version of the store. Not a test: numbers depend on the machine and the
//! disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentwire_store::{Store, StoreOptions, UsageRecord};
use hdrhistogram::Histogram;
use support::{PAYLOAD, ScratchDatabase, record, run};

const APPENDERS: usize = 4;
const BASELINE: Duration = Duration::from_secs(3);

fn histogram() -> Histogram<u64> {
    // Microseconds, up to a minute, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

fn micros(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The writers of tenant `other`, until `stop`: (append latencies, run creation latencies).
async fn other_tenant(
    store: Arc<dyn Store>,
    phase: &str,
    stop: Arc<AtomicBool>,
) -> (Histogram<u64>, Histogram<u64>) {
    let mut tasks = Vec::new();
    for a in 0..APPENDERS {
        let store = Arc::clone(&store);
        let stop = Arc::clone(&stop);
        let run_id = format!("{phase}-append-{a}");
        store
            .create_run(&run(&run_id, &run_id, "other"))
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let t = Instant::now();
                store
                    .append_event(&run_id, seq, "agent_thinking", PAYLOAD)
                    .await
                    .unwrap();
                h.saturating_record(micros(t));
            }
            h
        }));
    }
    let creator = {
        let phase = phase.to_owned();
        tokio::spawn(async move {
            let mut h = histogram();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("{phase}-created-{n}");
                let t = Instant::now();
                store.create_run(&run(&id, &id, "other")).await.unwrap();
                h.saturating_record(micros(t));
                // A run is created now and then, not in a tight loop like appends.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            h
        })
    };
    let mut appends = histogram();
    for task in tasks {
        appends.add(task.await.unwrap()).unwrap();
    }
    (appends, creator.await.unwrap())
}

fn report(phase: &str, what: &str, h: &Histogram<u64>) {
    let ms = |v: u64| v as f64 / 1_000.0;
    println!(
        "{phase:<9} {what:<11} n={:<7} p50={:>8.2}ms p99={:>8.2}ms p99.9={:>8.2}ms max={:>8.2}ms",
        h.len(),
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    );
}

async fn measure(label: &str, store: Arc<dyn Store>, rows: u64) {
    let records: Vec<UsageRecord> =
        tokio::task::spawn_blocking(move || (0..rows).map(record).collect())
            .await
            .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let baseline = tokio::spawn(other_tenant(
        Arc::clone(&store),
        "baseline",
        Arc::clone(&stop),
    ));
    tokio::time::sleep(BASELINE).await;
    stop.store(true, Ordering::Relaxed);
    let (appends, creates) = baseline.await.unwrap();
    report(&format!("{label} idle"), "append", &appends);
    report(&format!("{label} idle"), "create_run", &creates);

    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(other_tenant(
        Arc::clone(&store),
        "upload",
        Arc::clone(&stop),
    ));
    let t = Instant::now();
    let inserted = store.insert_usage("acme", &records).await.unwrap();
    let took = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (appends, creates) = during.await.unwrap();
    println!("{label} insert_usage {inserted} rows: {took:.2?}");
    report(&format!("{label} upload"), "append", &appends);
    report(&format!("{label} upload"), "create_run", &creates);
    assert_eq!(store.usage_count("acme").await.unwrap(), rows);
}

#[tokio::main]
async fn main() {
    let mut rows = 1_000_000u64;
    let mut postgres = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--postgres" => postgres = Some(args.next().expect("--postgres needs an admin URL")),
            n => rows = n.parse().expect("ROWS must be a number"),
        }
    }
    match postgres {
        None => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            let store = agentwire_store::connect(&url).await.unwrap();
            measure("sqlite", store, rows).await;
        }
        Some(admin) => {
            let database = ScratchDatabase::create(&admin).await;
            let options = StoreOptions {
                operation_timeout: Duration::from_secs(60),
                ..StoreOptions::default()
            };
            let store = agentwire_store::connect_with(&database.url, &options)
                .await
                .unwrap();
            measure("postgres", Arc::clone(&store), rows).await;
            store.close().await;
            drop(store);
            database.remove().await;
        }
    }
}
