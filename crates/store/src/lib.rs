//! Persistence for agentwire: tenants, usage records, threads, runs and the event log, plus the
//! primitives several nodes sharing one database need (leases, sweeps, admission, notices).
//!
//! This is the only crate with SQL. Callers see the [`Store`] trait and typed [`StoreError`]s;
//! [`connect`] picks the backend from the database URL: embedded SQLite (the default) or a
//! shared PostgreSQL, with the same behaviour behind the same trait. The crate must not know
//! about sockets, agents or the wire protocol beyond storing event frames as opaque text, and
//! must never read tenant data without a tenant.
//!
//! Module map: `store` (the trait), `model` (records), `error`, `notice` (wake-ups between
//! nodes), `sqlite` and `postgres` (the backends), `group_commit` (batched, durable event
//! appends), `migrate` (embedded schema migrations, SQL in `crates/store/migrations/`), `rows`
//! (reading records out of rows), `convert` (u64/time/text ↔ database values).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod convert;
mod error;
mod group_commit;
mod migrate;
mod model;
mod notice;
mod postgres;
mod rows;
mod sqlite;
mod store;

use std::sync::Arc;
use std::time::Duration;

pub use agentwire_analytics::UsageRecord;
pub use error::{AppendFailed, StoreError, StoreResult};
pub use model::{
    Admission, Backend, EndRun, NewEvent, NodeRecord, RunCursor, RunPage, RunRecord, RunStatus,
    StoredEvent, ThreadRecord, UsageUpload, thread_title,
};
pub use notice::{Notice, Notices, ResyncReason};
pub use postgres::{DEFAULT_POOL_SIZE, PostgresStore};
pub use sqlite::{BUSY_TIMEOUT, DEFAULT_READ_POOL_SIZE, EVENT_LOG_SYNCHRONOUS, SqliteStore};
pub use store::Store;

/// Rows per chunk of a usage upload ([`Store::insert_usage`]): each chunk is one transaction,
/// and on SQLite other writers (event appends) wait for at most one chunk. Large enough that
/// the per-transaction cost (a commit, an fsync) is small against the rows' own. Measured with
/// `examples/upload_stall.rs` (1M rows, SQLite, shared 2-core machine): 5,000 rows kept event
/// appends during the upload at p50 ~50 ms, p99 75-180 ms, with the upload no slower than one
/// transaction; 10,000 doubled those.
pub const USAGE_UPLOAD_CHUNK_ROWS: usize = 5_000;

/// An upload not written to for this long is taken as abandoned by a process that died
/// ([`Store::sweep_usage_uploads`] on a shared database): a live upload writes a chunk every few
/// seconds at most, each bounded by the operation timeout.
pub const USAGE_UPLOAD_ABANDONED_AFTER: Duration = Duration::from_secs(15 * 60);

/// How to open a store. The defaults suit a server; tests shorten the timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Connections in the pool: PostgreSQL's (default [`DEFAULT_POOL_SIZE`]; the notice
    /// listener holds one more of its own), SQLite's readers (default
    /// [`DEFAULT_READ_POOL_SIZE`]; there is always exactly one writer).
    pub pool_size: Option<u32>,
    /// PostgreSQL: the longest one call may take, waiting for a connection included, before it
    /// fails as [`StoreError::Unavailable`] instead of hanging on a database that went away.
    pub operation_timeout: Duration,
    /// PostgreSQL: how long a call waits for a free (or new) pool connection.
    pub acquire_timeout: Duration,
    /// PostgreSQL: how often the notice listener proves its connection alive by sending itself
    /// a notification; one that does not come back within this time means the connection is
    /// dead (a network partition sends no reset), and the listener reconnects.
    pub listener_probe_interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            pool_size: None,
            operation_timeout: Duration::from_secs(15),
            acquire_timeout: Duration::from_secs(5),
            listener_probe_interval: Duration::from_secs(5),
        }
    }
}

/// Opens the store named by `url` with default options; see [`connect_with`].
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    connect_with(url, &StoreOptions::default()).await
}

/// Opens the store named by `url`, choosing the backend by scheme: `postgres://` /
/// `postgresql://` give [`PostgresStore`]; `sqlite:...`, a bare path or `:memory:` give
/// [`SqliteStore`]; any other scheme is [`StoreError::InvalidUrl`]. Either way the schema is
/// migrated before this returns. A PostgreSQL server that cannot be reached is
/// [`StoreError::Unavailable`]. Errors never repeat a password from the URL.
pub async fn connect_with(url: &str, options: &StoreOptions) -> StoreResult<Arc<dyn Store>> {
    if is_postgres_url(url) {
        Ok(Arc::new(PostgresStore::connect_with(url, options).await?))
    } else {
        // SqliteStore::connect refuses any other scheme with a clear InvalidUrl.
        Ok(Arc::new(SqliteStore::connect_with(url, options).await?))
    }
}

/// True for `postgres://` and `postgresql://` URLs (any case).
pub fn is_postgres_url(url: &str) -> bool {
    url.trim().split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
    })
}

/// The URL with any password replaced by `***`, for logs and error messages. Works on any
/// `scheme://user:password@host/...` URL; anything else comes back unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the first '/', '?' or '#'; a password is the part of the userinfo
    // (before the last '@' in the authority) after its first ':'.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    // libpq also takes `?password=...`.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact_url("postgres://aw:s3cr3t@db.example:5432/agentwire?sslmode=disable"),
            "postgres://aw:***@db.example:5432/agentwire?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgresql://aw:p@ss@word@db/x"),
            "postgresql://aw:***@db/x"
        );
        assert_eq!(redact_url("postgres://aw@db/x"), "postgres://aw@db/x");
        assert_eq!(redact_url("sqlite://agentwire.db"), "sqlite://agentwire.db");
        assert_eq!(redact_url("/tmp/a:b@c.db"), "/tmp/a:b@c.db");
        assert_eq!(
            redact_url("postgres://db/x?user=aw&password=s3cr3t"),
            "postgres://db/x?user=aw&password=***"
        );
        assert!(is_postgres_url(" POSTGRESQL://x"));
        assert!(!is_postgres_url("sqlite://x"));
    }
}
