//! Test support: a fresh database per test on either backend, and a TCP proxy that can make
//! PostgreSQL go away.
//!
//! PostgreSQL is found through `AGENTWIRE_TEST_POSTGRES_URL`, an admin URL of a private
//! instance (`.ci/run` starts one); each test creates its own database there and drops it when
//! done. Without the variable the PostgreSQL tests skip, saying why; with `CI` set they fail
//! instead, so CI cannot pass without having run them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agentwire_store::{
    Notice, Notices, RunRecord, RunStatus, Store, StoreOptions, StoredEvent, UsageRecord,
};
use chrono::{DateTime, TimeZone, Utc};
use sqlx::Connection;
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The variable naming the PostgreSQL admin URL.
pub const POSTGRES_URL_VAR: &str = "AGENTWIRE_TEST_POSTGRES_URL";

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(kind: Kind)`,
/// in modules `sqlite` and `postgres`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::common::Kind::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::common::Kind::Postgres).await
                }
            )*
        }
    };
}

/// The admin URL, or `None` after saying why the test is skipped. Panics under `CI`.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {POSTGRES_URL_VAR} is not: the PostgreSQL tests must run in CI \
                 (.ci/run starts a private PostgreSQL and sets it)"
            );
            eprintln!(
                "skipping: {POSTGRES_URL_VAR} is not set (an admin URL of a PostgreSQL \
                 instance, e.g. postgres://postgres@127.0.0.1:5432/postgres; .ci/run starts one)"
            );
            None
        }
    }
}

/// Options for tests: short enough that a lost database fails a test in seconds.
pub fn test_options() -> StoreOptions {
    StoreOptions {
        pool_size: Some(8),
        operation_timeout: Duration::from_secs(10),
        acquire_timeout: Duration::from_secs(3),
        listener_probe_interval: Duration::from_secs(1),
    }
}

/// A fresh, empty database for one test; removed when dropped.
pub struct TestDb {
    pub kind: Kind,
    /// The database's URL.
    pub url: String,
    _dir: Option<TempDir>,
    /// PostgreSQL: the admin URL and the database's name, to drop it.
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// `None` when the backend is not available here (PostgreSQL without the variable).
    pub async fn new(kind: Kind) -> Option<TestDb> {
        match kind {
            Kind::Sqlite => {
                let dir = TempDir::new().unwrap();
                let url = format!("sqlite://{}", dir.path().join("agentwire.db").display());
                Some(TestDb {
                    kind,
                    url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Kind::Postgres => {
                let admin = postgres_admin_url()?;
                let name = format!("aw_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach {POSTGRES_URL_VAR}: {e}"));
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                Some(TestDb {
                    kind,
                    url: with_database(&admin, &name),
                    _dir: None,
                    postgres: Some((admin, name)),
                })
            }
        }
    }

    /// Opens a store on this database (another "node" each time on PostgreSQL).
    pub async fn open(&self) -> Arc<dyn Store> {
        self.open_with(&test_options()).await
    }

    pub async fn open_with(&self, options: &StoreOptions) -> Arc<dyn Store> {
        agentwire_store::connect_with(&self.url, options)
            .await
            .unwrap()
    }

    /// An admin connection to this PostgreSQL database (to play the operator).
    pub async fn admin(&self) -> sqlx::PgConnection {
        let (admin, _) = self.postgres.as_ref().expect("a PostgreSQL test database");
        sqlx::PgConnection::connect(admin).await.unwrap()
    }

    /// This PostgreSQL database's name.
    pub fn name(&self) -> &str {
        &self
            .postgres
            .as_ref()
            .expect("a PostgreSQL test database")
            .1
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Async work cannot run in Drop; a short-lived runtime on its own thread does it.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop a test database: {e}");
        }
    }
}

/// `url` pointing at database `name` instead (same server, user and parameters).
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.split_once('?').map(|(_, q)| q);
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// `url` with its host and port replaced by `addr` (to go through a [`Proxy`]).
pub fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let userinfo = authority
        .rsplit_once('@')
        .map(|(userinfo, _)| format!("{userinfo}@"))
        .unwrap_or_default();
    format!("{scheme}://{userinfo}{addr}{tail}")
}

/// The host and port of a URL.
pub fn target(url: &str) -> String {
    let rest = url.split_once("://").expect("a URL with a scheme").1;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// Waits for a notice matching `wanted`, skipping others. The timeout only keeps a broken
/// test from hanging; nothing is measured.
pub async fn expect_notice(notices: &mut Notices, wanted: impl Fn(&Notice) -> bool) -> Notice {
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match notices.recv().await {
                Some(notice) if wanted(&notice) => return notice,
                Some(_) => {}
                None => panic!("the notice stream ended"),
            }
        }
    })
    .await;
    found.expect("the expected notice never came")
}

/// A TCP proxy in front of PostgreSQL that can cut the database off: `down` refuses new
/// connections and resets the open ones (a crashed or unreachable server), `freeze` stops
/// forwarding on the open ones while keeping them open (a network partition, which sends no
/// reset), `up` restores service.
pub struct Proxy {
    pub addr: SocketAddr,
    target: String,
    /// True while down.
    down: watch::Sender<bool>,
    /// Bumped by each freeze; connections opened before the bump stop forwarding.
    freezes: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (down, _) = watch::channel(false);
        let (freezes, _) = watch::channel(0);
        let proxy = Proxy {
            addr,
            target,
            down,
            freezes,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target.clone();
        let mut down = self.down.subscribe();
        let freezes = self.freezes.clone();
        let down_tx = self.down.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = until(&mut down, |d| *d) => return, // drops the listener: refused
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { return };
                        let target = target.clone();
                        let mut down = down_tx.subscribe();
                        let mut frozen = freezes.subscribe();
                        let born = *frozen.borrow();
                        tokio::spawn(async move {
                            let Ok(server) = TcpStream::connect(&target).await else { return };
                            let (mut client, mut server) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                () = until(&mut down, |d| *d) => {}
                                () = until(&mut frozen, |n| *n > born) => {
                                    // Hold both ends open, silent, until the proxy goes down.
                                    until(&mut down, |d| *d).await;
                                }
                            }
                        });
                    }
                }
            }
        });
    }

    /// Refuses new connections and resets the open ones.
    pub fn down(&self) {
        self.down.send_replace(true);
    }

    /// Serves again on the same port.
    pub async fn up(&self) {
        self.down.send_replace(false);
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// Open connections go silent; new ones are served.
    pub fn freeze(&self) {
        self.freezes.send_modify(|n| *n += 1);
    }
}

/// Waits until the watched value satisfies `ready` (or its sender is gone).
async fn until<T>(rx: &mut watch::Receiver<T>, ready: impl FnMut(&T) -> bool) {
    let _ = rx.wait_for(ready).await;
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down.send_replace(true);
    }
}

/// Millisecond-precision time (the store keeps milliseconds).
pub fn at(ms_offset: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_764_000_000_000 + ms_offset)
        .unwrap()
}

pub fn minimal(ts: DateTime<Utc>, model: &str) -> UsageRecord {
    UsageRecord::new(ts, "openai", model, 100, 20)
}

pub fn full(ts: DateTime<Utc>, i: u64) -> UsageRecord {
    UsageRecord {
        timestamp: ts,
        provider: "anthropic".into(),
        model: format!("claude-{i}"),
        input_tokens: 1_000 + i,
        output_tokens: 200 + i,
        request_count: 3,
        cache_read_input_tokens: Some(400),
        cache_write_input_tokens: Some(50),
        reasoning_tokens: Some(30),
        latency_ms: Some(812.5),
        ttft_ms: Some(120.25),
        status: Some("success".into()),
        service_tier: Some("standard".into()),
        max_tokens: Some(4096),
        cost_usd: Some(0.012_345),
        user_id: Some("u-7".into()),
        team: Some("search".into()),
        project: Some("assist".into()),
        feature: Some("summarize".into()),
        session_id: Some("s-1".into()),
        prompt_hash: Some("ph".into()),
        prefix_hash: Some("xh".into()),
        tags: Some("env=prod;region=eu".into()),
    }
}

/// An accepted run of `user_id` in tenant "acme".
pub fn run(run_id: &str, user_id: &str, thread_id: &str, created_at: DateTime<Utc>) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        thread_id: thread_id.into(),
        user_id: user_id.into(),
        tenant_id: "acme".into(),
        agent: "supervisor".into(),
        user_request: "where does the money go?".into(),
        status: RunStatus::Accepted,
        created_at,
        finished_at: None,
        last_seq: 0,
    }
}

/// All of the user's runs on a thread in tenant "acme", read two at a time so that every
/// listing also exercises the paging.
pub async fn thread_runs(store: &dyn Store, user_id: &str, thread_id: &str) -> Vec<RunRecord> {
    let mut runs = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_thread_runs(user_id, "acme", thread_id, after.as_ref(), 2)
            .await
            .unwrap();
        assert!(page.runs.len() <= 2, "a page holds at most its limit");
        runs.extend(page.runs);
        match page.next {
            Some(next) => after = Some(next),
            None => return runs,
        }
    }
}

pub fn seqs(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}
