//! What the store's examples share: generated usage records, a run row, an event payload of a
//! realistic size, and a scratch PostgreSQL database. Not a test helper: tests have
//! `tests/common`; this must not grow assertions.

use agentwire_store::{RunRecord, RunStatus, UsageRecord};
use chrono::{TimeZone, Utc};
use sqlx::Connection;

/// An `agent_thinking` frame of the size runs write.
pub const PAYLOAD: &str = r#"{"type":"agent_thinking","run_id":"run_0123456789abcdef","thread_id":"thr_0123456789abcdef","seq":1,"agent":"data","timestamp":"2026-11-26T21:48:22.123Z","message":"spend on gpt-4o rose 41% in the week of 11-10"}"#;

/// The `i`th generated usage record: every field set, a second apart.
pub fn record(i: u64) -> UsageRecord {
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

/// A running supervisor run of `tenant_id` on `thread_id`.
pub fn run(id: &str, thread_id: &str, tenant_id: &str) -> RunRecord {
    RunRecord {
        run_id: id.into(),
        thread_id: thread_id.into(),
        user_id: "u".into(),
        tenant_id: tenant_id.into(),
        agent: "supervisor".into(),
        user_request: "bench".into(),
        status: RunStatus::Running,
        created_at: Utc::now(),
        finished_at: None,
        last_seq: 0,
    }
}

/// A fresh PostgreSQL database made with an admin URL, dropped by [`ScratchDatabase::remove`].
pub struct ScratchDatabase {
    admin: sqlx::PgConnection,
    name: String,
    /// The URL of the new database (the admin URL's server and query, the new name).
    pub url: String,
}

impl ScratchDatabase {
    pub async fn create(admin_url: &str) -> ScratchDatabase {
        let name = format!("aw_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap();
        let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let url = if query.is_empty() {
            format!("{server}/{name}")
        } else {
            format!("{server}/{name}?{query}")
        };
        ScratchDatabase { admin, name, url }
    }

    /// Drops the database (close its stores first).
    pub async fn remove(mut self) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await
        .unwrap();
    }
}
