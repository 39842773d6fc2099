//! Store size under churn with retention on: a soak, not a test.
//!
//! ```sh
//! cargo run -p agentwire-engine --release --example retention_soak -- \
//!     [--seconds 150] [--age-s 5] [--interval-s 1] [--writers 4] [--events 40] [--batch 500]
//! ```
//!
//! Starts an [`Engine`] on a fresh SQLite file with retention of `--age-s` seconds checked
//! every `--interval-s` (the engine's own background task, as `serve --retain-runs-days`
//! runs it), while `--writers` tasks append runs of `--events` events each (~400-byte
//! payloads, as real runs write) straight to the store, for `--seconds`. Every 10 s it prints
//! the database file size (main file + WAL), the rows left in `runs` and `run_events`, the runs
//! written and deleted so far, and the append latency of that window (p50/p99/max), which shows
//! whether retention's batches hold writers up. Row counts are read over a separate read-only
//! connection. Numbers depend on the machine and the disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::arg;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use agentwire_engine::{Engine, EngineConfig, RetentionConfig};
use agentwire_store::{RunRecord, RunStatus, SqliteStore, Store};
use sqlx::Connection;

fn file_size(path: &std::path::Path) -> u64 {
    let wal = path.with_extension("db-wal");
    [path.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

async fn writer(
    store: Arc<dyn Store>,
    id: u64,
    events: u64,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    latencies: Arc<std::sync::Mutex<Vec<u32>>>,
) {
    let payload = format!(
        "{{\"type\":\"agent_thinking\",\"text\":\"{}\"}}",
        "x".repeat(360)
    );
    let mut n = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        let run_id = format!("run_{id}_{n}");
        n += 1;
        let now = agentwire_protocol::time::now();
        store
            .create_run(&RunRecord {
                run_id: run_id.clone(),
                thread_id: format!("thr_{id}_{n}"),
                user_id: format!("user{id}"),
                tenant_id: "soak".into(),
                agent: "supervisor".into(),
                user_request: "where does the money go?".into(),
                status: RunStatus::Running,
                created_at: now,
                finished_at: None,
                last_seq: 0,
            })
            .await
            .unwrap();
        store
            .upsert_thread(
                &format!("user{id}"),
                "soak",
                &format!("thr_{id}_{n}"),
                "soak",
            )
            .await
            .unwrap();
        for seq in 1..=events {
            let started = Instant::now();
            store
                .append_event(&run_id, seq, "agent_thinking", &payload)
                .await
                .unwrap();
            let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
            latencies.lock().unwrap().push(micros);
        }
        store
            .set_run_status(
                &run_id,
                RunStatus::Completed,
                Some(agentwire_protocol::time::now()),
            )
            .await
            .unwrap();
        written.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() {
    let seconds = arg("--seconds", 150);
    let age = Duration::from_secs(arg("--age-s", 5));
    let interval = Duration::from_secs(arg("--interval-s", 1));
    let writers = arg("--writers", 4);
    let events = arg("--events", 40);
    let batch = u32::try_from(arg("--batch", 500)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("soak.db");
    let url = format!("sqlite://{}", path.display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
    let engine = Engine::start(
        store.clone(),
        EngineConfig {
            retention: Some(RetentionConfig {
                interval,
                batch,
                ..RetentionConfig::new(age)
            }),
            ..EngineConfig::default()
        },
    )
    .await
    .unwrap();
    let mut counter = sqlx::sqlite::SqliteConnection::connect(&format!("{url}?mode=ro"))
        .await
        .unwrap();

    println!(
        "soak: {seconds} s, retention age {age:?} every {interval:?} (batch {batch}), \
         {writers} writers, {events} events/run"
    );
    println!(
        "{:>5} {:>10} {:>8} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "t_s", "file_kib", "runs", "events", "written", "deleted", "p50_us", "p99_us", "max_ms"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..writers)
        .map(|id| {
            tokio::spawn(writer(
                store.clone(),
                id,
                events,
                stop.clone(),
                written.clone(),
                latencies.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    ticks.tick().await;
    while started.elapsed() < Duration::from_secs(seconds) {
        ticks.tick().await;
        let (runs, rows): (i64, i64) =
            sqlx::query_as("SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM run_events)")
                .fetch_one(&mut counter)
                .await
                .unwrap();
        let mut window = std::mem::take(&mut *latencies.lock().unwrap());
        window.sort_unstable();
        let pct = |p: f64| {
            window
                .get(((window.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(0)
        };
        println!(
            "{:>5} {:>10} {:>8} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8.1}",
            started.elapsed().as_secs(),
            file_size(&path) / 1024,
            runs,
            rows,
            written.load(Ordering::Relaxed),
            engine.metrics().runs_deleted,
            pct(0.5),
            pct(0.99),
            f64::from(window.last().copied().unwrap_or(0)) / 1000.0,
        );
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    engine.shutdown(Duration::from_secs(1)).await;
    store.close().await;
}
