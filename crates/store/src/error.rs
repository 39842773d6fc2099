//! Typed errors of the store.
//!
//! Every failure a caller can act on has its own variant (a duplicate event, an unknown run, a
//! value the database cannot hold); everything else from the driver is `Database`. This module
//! must not log or decide policy: callers choose what to tell the client.

use crate::RunStatus;

/// Result of every store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The driver or SQLite reported an error (I/O, busy beyond the timeout, constraint, ...).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// `(run_id, seq)` is already in the event log. The earlier event is kept.
    #[error("duplicate event {run_id}#{seq}")]
    DuplicateEvent { run_id: String, seq: u64 },

    /// `create_run` with a `run_id` that already exists.
    #[error("duplicate run {0}")]
    DuplicateRun(String),

    /// The run does not exist (for `set_run_status` and `append_event`).
    #[error("run not found: {0}")]
    RunNotFound(String),

    /// A finished run (completed, failed or cancelled) cannot change status: a late cancel must
    /// not overwrite a completion. Setting the same terminal status again is not an error.
    #[error("run {run_id} is {from}; it cannot become {to}")]
    InvalidTransition {
        run_id: String,
        from: RunStatus,
        to: RunStatus,
    },

    /// A `u64` that does not fit the database's signed 64-bit integer. Values are never wrapped
    /// or clamped.
    #[error("{field} = {value} does not fit in a signed 64-bit database integer")]
    OutOfRange { field: &'static str, value: u64 },

    /// The database URL could not be understood.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),

    /// The URL names a backend this build does not provide.
    #[error("{0}")]
    Unsupported(String),

    /// The schema could not be brought up to date (or is newer than this build knows).
    #[error("migration failed: {0}")]
    Migration(String),

    /// A row read back from the database breaks an invariant (negative counter, unknown status,
    /// timestamp out of range). Means the file was written by something else, or is damaged.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}
