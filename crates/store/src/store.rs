//! The `Store` trait: everything the engine and the server may ask of persistence.
//!
//! Backends implement it (today [`crate::SqliteStore`]). The trait speaks in records, never in
//! SQL, and must not grow methods that read tenant data without a tenant, or a user's runs and
//! threads without the user, except the few documented engine-only calls.

use chrono::{DateTime, Utc};

use crate::{RunRecord, RunStatus, StoreResult, StoredEvent, ThreadRecord, UsageRecord};

/// Persistence for tenants, usage records, threads, runs and the event log.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Round trip to the database (for `/health`).
    async fn ping(&self) -> StoreResult<()>;

    // ---- tenants and usage ----

    /// Creates the tenant if it does not exist; a no-op otherwise.
    async fn ensure_tenant(&self, tenant_id: &str) -> StoreResult<()>;

    /// Inserts all records in one transaction: all or nothing. Returns how many were inserted.
    /// Creates the tenant if needed. A `u64` above `i64::MAX` fails the whole batch with
    /// [`crate::StoreError::OutOfRange`]; timestamps keep millisecond precision; a NaN float
    /// reads back as `None` (SQLite stores NaN as NULL).
    async fn insert_usage(&self, tenant_id: &str, records: &[UsageRecord]) -> StoreResult<u64>;

    /// The tenant's usage records, ordered by timestamp (then insertion order).
    async fn load_usage(&self, tenant_id: &str) -> StoreResult<Vec<UsageRecord>>;

    /// How many usage records the tenant has.
    async fn usage_count(&self, tenant_id: &str) -> StoreResult<u64>;

    // ---- threads ----
    // A thread id is namespaced by user: (user_id, thread_id) is the key, so two users may use
    // the same thread id without seeing each other.

    /// Creates the thread, or touches its `updated_at` (title and tenant of an existing thread
    /// are kept). Returns the thread as stored.
    async fn upsert_thread(
        &self,
        user_id: &str,
        tenant_id: &str,
        thread_id: &str,
        title: &str,
    ) -> StoreResult<ThreadRecord>;

    /// The user's threads, most recently updated first, at most `limit`.
    async fn list_threads(&self, user_id: &str, limit: u32) -> StoreResult<Vec<ThreadRecord>>;

    // ---- runs ----

    /// Stores a new run. [`crate::StoreError::DuplicateRun`] if the id exists.
    async fn create_run(&self, run: &RunRecord) -> StoreResult<()>;

    /// Moves a run to `status`. A terminal run cannot change status
    /// ([`crate::StoreError::InvalidTransition`]); setting the same terminal status again is a
    /// no-op. [`crate::StoreError::RunNotFound`] for an unknown run.
    async fn set_run_status(
        &self,
        run_id: &str,
        status: RunStatus,
        finished_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;

    /// Any run by id. Unscoped: for the engine only, never for answering a client.
    async fn get_run(&self, run_id: &str) -> StoreResult<Option<RunRecord>>;

    /// The run if it belongs to `user_id`; `None` when it does not exist or belongs to another
    /// user (the two are indistinguishable on purpose: no existence oracle).
    async fn get_user_run(&self, user_id: &str, run_id: &str) -> StoreResult<Option<RunRecord>>;

    /// The user's runs on one of their threads, oldest first.
    async fn list_thread_runs(&self, user_id: &str, thread_id: &str)
    -> StoreResult<Vec<RunRecord>>;

    /// Runs with status accepted or running, oldest first (crash recovery at startup).
    async fn runs_in_flight(&self) -> StoreResult<Vec<RunRecord>>;

    // ---- the event log: unique (run_id, seq); written before the event is sent ----

    /// Appends one event durably and raises `runs.last_seq` to `seq` if higher, atomically.
    /// [`crate::StoreError::DuplicateEvent`] on a repeated `(run_id, seq)` (nothing changes);
    /// [`crate::StoreError::RunNotFound`] if the run does not exist.
    async fn append_event(
        &self,
        run_id: &str,
        seq: u64,
        event_type: &str,
        payload: &str,
    ) -> StoreResult<()>;

    /// The run's events with `seq > after_seq`, ordered by seq. Unscoped: check ownership with
    /// [`Store::get_user_run`] first.
    async fn events_after(&self, run_id: &str, after_seq: u64) -> StoreResult<Vec<StoredEvent>>;
}
