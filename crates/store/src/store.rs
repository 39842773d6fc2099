//! The `Store` trait: everything the engine and the server may ask of persistence.
//!
//! Backends implement it ([`crate::SqliteStore`], [`crate::PostgresStore`]) with the same
//! behaviour, so the whole store test suite runs against both. The trait speaks in records,
//! never in SQL, and must not grow methods that read tenant data without a tenant, or a user's
//! runs and threads without the user, except the few documented engine-only calls.
//!
//! Cluster primitives (nodes, leases, sweeps, admission, cancel requests, notices) exist on
//! both backends; on SQLite there is only ever one node, so they hold trivially.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{
    Admission, AppendFailed, Backend, EndRun, NewEvent, NodeRecord, Notices, RunCursor, RunPage,
    RunRecord, RunStatus, StoreResult, StoredEvent, ThreadRecord, UsageRecord, UsageUpload,
};

/// Persistence for tenants, usage records, threads, runs and the event log.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Round trip to the database (for `/health/ready`). Cheap; [`crate::StoreError::Unavailable`]
    /// when the database cannot be reached.
    async fn ping(&self) -> StoreResult<()>;

    /// Highest applied schema migration (this build writes
    /// [`crate::Backend::latest_schema_version`]).
    async fn schema_version(&self) -> StoreResult<i64>;

    /// Closes the connections after the operations in progress; later calls fail. Also ends
    /// the notice listener, so subscriptions end (`recv` returns `None`).
    async fn close(&self);

    // ---- tenants and usage ----

    /// Creates the tenant if it does not exist; a no-op otherwise.
    async fn ensure_tenant(&self, tenant_id: &str) -> StoreResult<()>;

    /// Inserts all records, all or nothing for readers. Returns how many were inserted.
    /// Creates the tenant if needed, and sends [`crate::Notice::UsageChanged`] once, when the
    /// records become visible. A `u64` above `i64::MAX` fails the whole batch with
    /// [`crate::StoreError::OutOfRange`], text with a NUL character with
    /// [`crate::StoreError::NulInText`]; timestamps keep millisecond precision; a NaN float
    /// reads back as `None` (stored as NULL).
    ///
    /// Written as one upload ([`Store::begin_usage_upload`]) of chunks of
    /// [`crate::USAGE_UPLOAD_CHUNK_ROWS`], each its own short transaction, so other writers
    /// (event appends, run creation) go on between chunks; on failure the staged chunks are
    /// deleted before the error is returned (or, if even that fails, by a later sweep). Not
    /// cancel-safe: a call dropped midway leaves its upload for [`Store::sweep_usage_uploads`].
    async fn insert_usage(&self, tenant_id: &str, records: &[UsageRecord]) -> StoreResult<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        // A bad record late in a large upload must not cost hundreds of chunks written and
        // deleted again on the one writer: every record is checked before the first chunk.
        for record in records {
            crate::convert::check_usage_record(record)?;
        }
        let upload = self.begin_usage_upload(tenant_id).await?;
        for chunk in records.chunks(crate::USAGE_UPLOAD_CHUNK_ROWS) {
            if let Err(err) = self.stage_usage(&upload, chunk).await {
                if let Err(abort) = self.abort_usage_upload(&upload).await {
                    // The rows stay invisible; a sweep deletes them once the upload is idle.
                    tracing::warn!(
                        upload_id = upload.upload_id,
                        error = %abort,
                        "could not undo a failed usage upload; it will be swept"
                    );
                }
                return Err(err);
            }
        }
        self.commit_usage_upload(&upload).await
    }

    /// Starts a usage upload for the tenant (created if needed). Its rows, written with
    /// [`Store::stage_usage`], are invisible to every reader ([`Store::load_usage`],
    /// [`Store::usage_count`]) until [`Store::commit_usage_upload`] makes all of them visible
    /// at once.
    async fn begin_usage_upload(&self, tenant_id: &str) -> StoreResult<UsageUpload>;

    /// Writes one chunk of an open upload in one short transaction (keep chunks to
    /// [`crate::USAGE_UPLOAD_CHUNK_ROWS`] or so: on SQLite the chunk holds the only writer).
    /// A bad record fails the chunk with nothing of it written; the upload stays open, and the
    /// caller aborts it. [`crate::StoreError::UploadNotOpen`] if it was committed or aborted.
    async fn stage_usage(&self, upload: &UsageUpload, records: &[UsageRecord]) -> StoreResult<()>;

    /// Makes every staged row of the upload visible in one short transaction that also adds
    /// one to the tenant's [`Store::usage_version`], sends
    /// [`crate::Notice::UsageChanged`] once committed, and returns how many rows there were.
    /// [`crate::StoreError::UploadNotOpen`] if it was committed or aborted already.
    async fn commit_usage_upload(&self, upload: &UsageUpload) -> StoreResult<u64>;

    /// Abandons the upload: its staged rows are deleted, a chunk per transaction, and it can no
    /// longer be staged to or committed. Idempotent; a committed upload is left alone.
    async fn abort_usage_upload(&self, upload: &UsageUpload) -> StoreResult<()>;

    /// Aborts every upload not written to for `idle_for` (uploads of a crashed process, or of
    /// a caller dropped midway). Returns how many it aborted. On SQLite, where one process owns
    /// the file, startup may sweep with zero; on a shared database use an age no live upload
    /// reaches between two chunks. Times are the database's on PostgreSQL.
    async fn sweep_usage_uploads(&self, idle_for: Duration) -> StoreResult<u64>;

    /// The tenant's usage records, ordered by timestamp (then insertion order).
    async fn load_usage(&self, tenant_id: &str) -> StoreResult<Vec<UsageRecord>>;

    /// How many usage uploads of the tenant have been committed: grows by one with each, in
    /// the upload's own commit; 0 for a tenant without any (or unknown). Read it before
    /// [`Store::load_usage`]: the records read after are at least that new. A node compares it
    /// with [`Admission::Admitted`]'s to know whether records it holds are still current.
    async fn usage_version(&self, tenant_id: &str) -> StoreResult<u64>;

    /// How many usage records the tenant has.
    async fn usage_count(&self, tenant_id: &str) -> StoreResult<u64>;

    // ---- threads ----
    // A thread id is namespaced by principal: (tenant_id, user_id, thread_id) is the key, so
    // two users, or one `sub` in two tenants, may use the same thread id without seeing each
    // other.

    /// Creates the thread, or touches its `updated_at` (the title of an existing thread is
    /// kept). Returns the thread as stored. The engine does not call it: [`Store::admit_run`]
    /// records a run's thread in the run's own transaction. It stays for tests, tools and
    /// examples that need a thread without a run.
    async fn upsert_thread(
        &self,
        user_id: &str,
        tenant_id: &str,
        thread_id: &str,
        title: &str,
    ) -> StoreResult<ThreadRecord>;

    /// The user's threads in one tenant, most recently updated first, at most `limit`.
    async fn list_threads(
        &self,
        user_id: &str,
        tenant_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<ThreadRecord>>;

    // ---- runs ----

    /// Stores a new run, with no node and no admission check (single-node engines, tests).
    /// [`crate::StoreError::DuplicateRun`] if the id exists.
    async fn create_run(&self, run: &RunRecord) -> StoreResult<()>;

    /// Stores a new run executed by `node_id` if the database admits it, atomically across
    /// nodes: [`Admission::Conflict`] when the run's (tenant, user, thread) already has a run
    /// in flight, [`Admission::TooMany`] when the (tenant, user) has `max_in_flight` runs in
    /// flight or more; otherwise the run is stored and [`Admission::Admitted`]. "In flight" is
    /// status accepted or running; a run stops counting when its terminal status is set. The
    /// run's status must be accepted or running ([`crate::StoreError::InvalidArgument`]).
    ///
    /// An admitted run's thread is created (titled [`crate::thread_title`] of the question) or
    /// touched as by [`Store::upsert_thread`], in the same transaction: a refused run leaves
    /// its thread as it was, and no crash can leave a new thread without its run.
    ///
    /// `first`, the run's first event (seq 1), is stored with an admitted run in the same
    /// transaction: the client told that the run was accepted can be sent it at once, without
    /// a second commit in between. [`crate::StoreError::InvalidArgument`] for another seq.
    async fn admit_run(
        &self,
        run: &RunRecord,
        node_id: &str,
        max_in_flight: u32,
        first: Option<NewEvent>,
    ) -> StoreResult<Admission>;

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

    /// A page of the user's runs on one of their threads in one tenant, oldest first: at most
    /// `limit` runs after `after` (from the start when `None`), and the cursor of the next
    /// page when this one is full. Runs created after a page was read appear on a later page.
    async fn list_thread_runs(
        &self,
        user_id: &str,
        tenant_id: &str,
        thread_id: &str,
        after: Option<&RunCursor>,
        limit: u32,
    ) -> StoreResult<RunPage>;

    /// Retention: deletes at most `limit` finished runs (completed, failed or cancelled; never
    /// accepted or running) whose finish time, or creation time when it has none, is before
    /// `cutoff`, oldest first, together with their events, in one short transaction. Returns
    /// how many runs it deleted: fewer than `limit` means none is left to delete. A deleted
    /// run is gone as if it never existed ([`Store::get_run`] is `None`, appends fail with
    /// [`crate::StoreError::RunNotFound`]).
    ///
    /// A thread whose last run this deletes goes with it, but only when the thread itself was
    /// last touched before `cutoff`: a thread being started on again is kept (its new run may
    /// not be stored yet), as is a thread that never had a run. Idempotent and safe to call
    /// from several nodes at once: each run is deleted once, and racing callers skip each
    /// other's runs instead of waiting on them. `cutoff` is the caller's clock (retention is
    /// measured in days; node clock skew does not matter). Unscoped: for the engine only.
    async fn delete_finished_runs_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64>;

    /// Runs with status accepted or running, oldest first (crash recovery at startup). All
    /// nodes' runs: on a shared database use [`Store::node_runs_in_flight`].
    async fn runs_in_flight(&self) -> StoreResult<Vec<RunRecord>>;

    /// Ends an unfinished run in one transaction: appends `events` (their seqs must be
    /// `after_seq + 1`, `after_seq + 2`, ...) and sets the terminal `status`, but only while
    /// the run is still in flight and its `last_seq` is still `after_seq`. So a sweeper racing
    /// the run's own (presumed dead) executor never interleaves events with it: the loser
    /// gets [`EndRun::AlreadyFinished`] or [`EndRun::Moved`] and nothing is written; once this
    /// commits, further appends to the run fail with [`crate::StoreError::RunFinished`].
    /// [`crate::StoreError::RunNotFound`] for an unknown run.
    async fn end_run(
        &self,
        run_id: &str,
        after_seq: u64,
        events: Vec<NewEvent>,
        status: RunStatus,
        finished_at: DateTime<Utc>,
    ) -> StoreResult<EndRun>;

    /// Records a request to cancel the run and wakes every node ([`crate::Notice::CancelRequested`]
    /// once committed); the node executing it stops it. True when the run was in flight (a
    /// finished or unknown run is left alone). Unscoped: check ownership first.
    async fn request_cancel(&self, run_id: &str) -> StoreResult<bool>;

    /// Runs of `node_id` still in flight with a cancel request: what a node re-reads after
    /// [`crate::Notice::Resync`], since the notice itself may have been lost.
    async fn cancel_requested_runs(&self, node_id: &str) -> StoreResult<Vec<String>>;

    // ---- nodes and leases ----
    // Times are the database's (PostgreSQL) so skewed node clocks agree. A lease expires when
    // the clock reaches `lease_expires_at`; a lease of zero expires at once.

    /// Registers a node with a lease of `lease` from now. A node id is used once: an id that
    /// is already registered (live or not) gives [`crate::StoreError::NodeIdInUse`].
    async fn register_node(&self, node_id: &str, lease: Duration) -> StoreResult<NodeRecord>;

    /// Extends the node's lease to `lease` from now (never shortens it) and returns the new
    /// expiry. [`crate::StoreError::LeaseLost`] when the node was deregistered or another node
    /// claimed its sweep: its runs are no longer its own. A renewal that arrives after expiry
    /// but before any claim succeeds, and then no sweep can claim the node.
    async fn renew_node_lease(&self, node_id: &str, lease: Duration) -> StoreResult<DateTime<Utc>>;

    /// Removes the node at an orderly shutdown, when it has no run in flight (true); with runs
    /// still in flight the row stays, so the runs are swept once the lease lapses (false).
    async fn deregister_node(&self, node_id: &str) -> StoreResult<bool>;

    /// Nodes whose lease has expired and whose sweep is unclaimed, or claimed by a node whose
    /// own lease has expired since (a sweeper that died mid-sweep).
    async fn expired_nodes(&self) -> StoreResult<Vec<NodeRecord>>;

    /// Claims the sweep of `node_id` for `sweeper`: true for exactly one live claimant while
    /// the node's lease is expired (repeating a claim one already holds is true again). False
    /// when the node is alive, unknown, already claimed by a live sweeper, or when `sweeper`
    /// itself is not a live node.
    async fn claim_node_sweep(&self, node_id: &str, sweeper: &str) -> StoreResult<bool>;

    /// The runs `node_id` executes that are still in flight, oldest first: what the sweeper
    /// ends (with [`Store::end_run`]) after claiming the node.
    async fn node_runs_in_flight(&self, node_id: &str) -> StoreResult<Vec<RunRecord>>;

    /// Removes a swept node once none of its runs is in flight and `sweeper` holds its claim
    /// (true); false otherwise, and the node stays for another sweep.
    async fn finish_node_sweep(&self, node_id: &str, sweeper: &str) -> StoreResult<bool>;

    // ---- the event log: unique (run_id, seq); written before the event is sent ----

    /// Appends a run's consecutive events (`seq`s ascending without gaps) durably and raises
    /// `runs.last_seq` to the last one stored, atomically; concurrent appends share a commit.
    /// Once committed, subscribers get [`crate::Notice::RunEvents`]. On a refusal the events
    /// before the refused one are stored and those after it are not (see
    /// [`crate::AppendFailed`]): [`crate::StoreError::DuplicateEvent`] on a repeated
    /// `(run_id, seq)` (the stored event is kept); [`crate::StoreError::RunNotFound`] if the run
    /// does not exist; [`crate::StoreError::RunFinished`] once its terminal status is set.
    /// Nothing to append is a success.
    async fn append_events(&self, run_id: &str, events: Vec<NewEvent>) -> Result<(), AppendFailed>;

    /// [`Store::append_events`] with one event.
    async fn append_event(
        &self,
        run_id: &str,
        seq: u64,
        event_type: &str,
        payload: &str,
    ) -> StoreResult<()> {
        let event = NewEvent {
            seq,
            event_type: event_type.to_owned(),
            payload: payload.into(),
        };
        self.append_events(run_id, vec![event])
            .await
            .map_err(|failed| failed.error)
    }

    /// At most `limit` of the run's events with `seq > after_seq`, ordered by seq: a page of
    /// the log. Read a whole log page by page (the next `after_seq` is the last seq read);
    /// fewer than `limit` events means the log holds no more for now. Unscoped: check
    /// ownership with [`Store::get_user_run`] first.
    async fn events_after(
        &self,
        run_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>>;

    // ---- notices ----

    /// Subscribes to the notices of every node sharing the database (this one included). On
    /// PostgreSQL the first call starts the listener connection and returns once it listens
    /// (or fails with [`crate::StoreError::Unavailable`]); if the listener is down when a later
    /// subscription starts, its first notice is [`crate::Notice::Disconnected`].
    async fn subscribe(&self) -> StoreResult<Notices>;
}
