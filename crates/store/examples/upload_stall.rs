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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agentwire_store::{RunRecord, RunStatus, Store, StoreOptions, UsageRecord};
use chrono::{TimeZone, Utc};
use hdrhistogram::Histogram;
use sqlx::Connection;

const APPENDERS: usize = 4;
const BASELINE: Duration = Duration::from_secs(3);

const PAYLOAD: &str = r#"{"type":"agent_thinking","run_id":"run_0123456789abcdef","thread_id":"thr_0123456789abcdef","seq":1,"agent":"data","timestamp":"2026-11-26T21:48:22.123Z","message":"spend on gpt-4o rose 41% in the week of 11-10"}"#;

fn record(i: u64) -> UsageRecord {
    let ts = Utc
        .timestamp_millis_opt(1_764_000_000_000 + (i as i64) * 1_000)
        .unwrap();
    UsageRecord {
        timestamp: ts,
        provider: "openai".into(),
        model: ["gpt-4o", "gpt-4o-mini", "o3"][(i % 3) as usize].into(),
        input_tokens: 1_000 + i % 500,
        output_tokens: 200 + i % 50,
        request_count: 1,
        cache_read_input_tokens: Some(300),
        cache_write_input_tokens: None,
        reasoning_tokens: Some(20),
        latency_ms: Some(640.0),
        ttft_ms: Some(110.0),
        status: Some("success".into()),
        service_tier: Some("default".into()),
        max_tokens: Some(2048),
        cost_usd: Some(0.0042),
        user_id: Some(format!("user-{}", i % 97)),
        team: Some(["search", "ads", "support"][(i % 3) as usize].into()),
        project: Some("assist".into()),
        feature: Some("chat".into()),
        session_id: Some(format!("s-{}", i / 10)),
        prompt_hash: Some(format!("{:016x}", i % 1_000)),
        prefix_hash: Some(format!("{:016x}", i % 100)),
        tags: Some("env=prod".into()),
    }
}

fn run(id: &str) -> RunRecord {
    RunRecord {
        run_id: id.into(),
        thread_id: id.into(),
        user_id: "u".into(),
        tenant_id: "other".into(),
        agent: "supervisor".into(),
        user_request: "bench".into(),
        status: RunStatus::Running,
        created_at: Utc::now(),
        finished_at: None,
        last_seq: 0,
    }
}

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
        store.create_run(&run(&run_id)).await.unwrap();
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
                let t = Instant::now();
                store
                    .create_run(&run(&format!("{phase}-created-{n}")))
                    .await
                    .unwrap();
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
            let name = format!("aw_bench_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .unwrap();
            let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
            let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
            let url = if query.is_empty() {
                format!("{server}/{name}")
            } else {
                format!("{server}/{name}?{query}")
            };
            let options = StoreOptions {
                operation_timeout: Duration::from_secs(60),
                ..StoreOptions::default()
            };
            let store = agentwire_store::connect_with(&url, &options).await.unwrap();
            measure("postgres", Arc::clone(&store), rows).await;
            store.close().await;
            drop(store);
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}
