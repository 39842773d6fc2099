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

use std::sync::Arc;
use std::time::Instant;

use agentwire_store::{RunRecord, RunStatus, Store, StoreOptions, UsageRecord};
use chrono::{TimeZone, Utc};
use sqlx::Connection;

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

const PAYLOAD: &str = r#"{"type":"agent_thinking","run_id":"run_0123456789abcdef","thread_id":"thr_0123456789abcdef","seq":1,"agent":"data","timestamp":"2026-11-26T21:48:22.123Z","message":"spend on gpt-4o rose 41% in the week of 11-10"}"#;

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
            .create_run(&run(&format!("{prefix}-{r}")))
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
    let mut dropper = None;
    if let Some(admin) = postgres {
        let name = format!("agentwire_bench_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
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
        let store = agentwire_store::connect_with(&url, &StoreOptions::default())
            .await
            .unwrap();
        stores.push(("postgres", store));
        dropper = Some((conn, name));
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
    if let Some((mut conn, name)) = dropper {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}
