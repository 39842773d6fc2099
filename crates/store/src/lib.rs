//! Persistence for agentwire: tenants, usage records, threads, runs and the event log.
//!
//! This is the only crate with SQL. Callers see the [`Store`] trait and typed [`StoreError`]s;
//! [`connect`] picks the backend from the database URL (SQLite today; PostgreSQL later, behind
//! the same trait). The crate must not know about sockets, agents or the wire protocol beyond
//! storing event frames as opaque text, and must never read tenant data without a tenant.
//!
//! Module map: `store` (the trait), `model` (records), `error`, `sqlite` (the backend),
//! `group_commit` (batched, durable event appends), `migrate` (embedded schema migrations, SQL
//! in `crates/store/migrations/`), `convert` (u64/time ↔ SQLite integers).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod convert;
mod error;
mod group_commit;
mod migrate;
mod model;
mod sqlite;
mod store;

use std::sync::Arc;

pub use agentwire_analytics::UsageRecord;
pub use error::{StoreError, StoreResult};
pub use migrate::LATEST_SCHEMA_VERSION;
pub use model::{RunRecord, RunStatus, StoredEvent, ThreadRecord};
pub use sqlite::{BUSY_TIMEOUT, EVENT_LOG_SYNCHRONOUS, SqliteStore};
pub use store::Store;

/// Opens the store named by `url`, choosing the backend by scheme: `sqlite:...`, a bare path or
/// `:memory:` give [`SqliteStore`]; `postgres://` / `postgresql://` are recognised but not built
/// yet ([`StoreError::Unsupported`]); any other scheme is [`StoreError::InvalidUrl`].
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    let scheme = url
        .trim()
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => Err(StoreError::Unsupported(
            "PostgreSQL backend is not built yet; use sqlite://...".into(),
        )),
        // SqliteStore::connect refuses any other scheme with a clear InvalidUrl.
        _ => Ok(Arc::new(SqliteStore::connect(url).await?)),
    }
}
