//! Rough timings of the SQLite store on a real file:
//! `cargo run -p agentwire-store --release --example store_bench [records]`.
//!
//! Not a test: numbers depend on the machine and the disk (fsync cost dominates appends).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use agentwire_store::{RunRecord, RunStatus, Store, UsageRecord};
use chrono::{TimeZone, Utc};

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
        thread_id: "t".into(),
        user_id: "u".into(),
        tenant_id: "acme".into(),
        agent: "supervisor".into(),
        user_request: "bench".into(),
        status: RunStatus::Running,
        created_at: Utc::now(),
        finished_at: None,
        last_seq: 0,
    }
}

#[tokio::main]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("records must be a number"))
        .unwrap_or(100_000);
    let dir = tempfile::TempDir::new().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store: Arc<dyn Store> = agentwire_store::connect(&url).await.unwrap();
    let records: Vec<UsageRecord> = (0..n).map(record).collect();

    let t = Instant::now();
    store.insert_usage("acme", &records).await.unwrap();
    println!("insert_usage {n} records: {:?}", t.elapsed());

    let t = Instant::now();
    let loaded = store.load_usage("acme").await.unwrap();
    println!("load_usage   {} records: {:?}", loaded.len(), t.elapsed());
    assert_eq!(loaded, records);

    let t = Instant::now();
    let count = store.usage_count("acme").await.unwrap();
    println!("usage_count  {count}: {:?}", t.elapsed());
    let t = Instant::now();
    let count = store.usage_count("acme").await.unwrap();
    println!("usage_count  {count}: {:?}", t.elapsed());
    let t = Instant::now();
    let loaded = store.load_usage("acme").await.unwrap();
    println!("load_usage   {} records: {:?}", loaded.len(), t.elapsed());

    let events = 1_000u64;
    store.create_run(&run("seq")).await.unwrap();
    let payload =
        r#"{"type":"agent_thinking","message":"spend on gpt-4o rose 41% in the week of 11-10"}"#;
    let t = Instant::now();
    for seq in 1..=events {
        store
            .append_event("seq", seq, "agent_thinking", payload)
            .await
            .unwrap();
    }
    let e = t.elapsed();
    println!(
        "append_event sequential: {events} in {e:?} ({:.0}/s, {:?} each; synchronous={:?})",
        events as f64 / e.as_secs_f64(),
        e / events as u32,
        agentwire_store::EVENT_LOG_SYNCHRONOUS
    );

    let tasks = 64u64;
    let per_task = 100u64;
    for r in 0..tasks {
        store.create_run(&run(&format!("c{r}"))).await.unwrap();
    }
    let t = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|r| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for seq in 1..=per_task {
                    store
                        .append_event(&format!("c{r}"), seq, "progress", payload)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let e = t.elapsed();
    println!(
        "append_event {tasks} concurrent tasks: {} in {e:?} ({:.0}/s)",
        tasks * per_task,
        (tasks * per_task) as f64 / e.as_secs_f64()
    );

    let t = Instant::now();
    let replay = store.events_after("seq", 0).await.unwrap();
    println!("events_after {} events: {:?}", replay.len(), t.elapsed());
}
