//! Typed errors of the store.
//!
//! Every failure a caller can act on has its own variant (a duplicate event, an unknown run, a
//! value the database cannot hold, a database that cannot be reached); everything else from the
//! driver is `Database`. This module must not log or decide policy: callers choose what to tell
//! the client.

use crate::RunStatus;

/// Result of every store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now: connection refused or lost, no connection
    /// free within the pool's timeout, no answer within the operation timeout, or the server is
    /// shutting down. Retryable ([`StoreError::is_retryable`]). The failed call wrote nothing,
    /// or (when the connection was lost during a commit) its outcome is unknown: an append
    /// retried after this may find its event already stored.
    #[error("the database is unreachable: {0}")]
    Unavailable(String),

    /// The driver or the database reported an error (I/O on a local file, busy beyond the
    /// timeout, constraint, ...).
    #[error("database error: {0}")]
    Database(sqlx::Error),

    /// SQLite reported an error on the SQLite store's writer connection, which calls SQLite
    /// directly rather than through sqlx (busy beyond the timeout, I/O on the file, constraint,
    /// ...).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),

    /// `(run_id, seq)` is already in the event log. The earlier event is kept.
    #[error("duplicate event {run_id}#{seq}")]
    DuplicateEvent { run_id: String, seq: u64 },

    /// `create_run` with a `run_id` that already exists.
    #[error("duplicate run {0}")]
    DuplicateRun(String),

    /// The run does not exist (for `set_run_status`, `append_event`, `end_run`).
    #[error("run not found: {0}")]
    RunNotFound(String),

    /// An event for a run that has already finished: nothing may follow the terminal event
    /// (this is what stops a node whose lease lapsed from writing into a run another node ended).
    #[error("run {run_id} is {status}; no event may be appended to it")]
    RunFinished { run_id: String, status: RunStatus },

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

    /// Text with a NUL character. PostgreSQL text cannot hold one, and both backends refuse it
    /// alike rather than store it on one and not the other.
    #[error("{field} contains a NUL character (U+0000), which the database cannot store")]
    NulInText { field: &'static str },

    /// A call whose arguments contradict each other (e.g. `end_run` with a non-terminal status
    /// or events that do not follow the given seq).
    #[error("invalid store call: {0}")]
    InvalidArgument(String),

    /// A usage upload that is no longer open: it was committed already, or aborted (by its
    /// caller, or by [`crate::Store::sweep_usage_uploads`] after it sat idle). Nothing of it
    /// became visible unless it was committed.
    #[error("usage upload {0} is no longer open (committed, aborted or swept as abandoned)")]
    UploadNotOpen(i64),

    /// `register_node` with a node id that is already registered.
    #[error("node id {0} is already registered; each process needs its own node id")]
    NodeIdInUse(String),

    /// The node's row is gone or another node has claimed its sweep: its lease lapsed and its
    /// runs are being (or were) ended by a survivor. The node must stop its runs without
    /// writing and register again under a new id to serve on.
    #[error("node {0} lost its lease; its runs are being ended by another node")]
    LeaseLost(String),

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
    /// timestamp out of range). Means the data was written by something else, or is damaged.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Why [`crate::Store::append_events`] did not store all of its events: the first `stored` of
/// them are committed; the next one was refused with `error`, and none after it is stored
/// unless `error` is [`StoreError::DuplicateEvent`] (two writers appending the same run, which
/// the engine never does: an existing event is skipped, not overwritten, and the ones after it
/// may be stored).
#[derive(Debug, thiserror::Error)]
#[error("{error} ({stored} earlier event(s) of the append were stored)")]
pub struct AppendFailed {
    pub stored: usize,
    pub error: StoreError,
}

impl StoreError {
    /// The same failure again, for each caller of a batch that failed as a whole: unreachable
    /// stays unreachable (so callers still retry), anything else keeps its words. (A
    /// `StoreError` cannot be cloned: it may hold the driver's error.)
    pub(crate) fn for_each_caller(&self) -> StoreError {
        match self {
            StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
            // SQLite's codes kept: a busy writer stays retryable for each caller.
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            other => StoreError::Database(sqlx::Error::Protocol(other.to_string())),
        }
    }

    /// True when the same call may succeed later without any change: the database was
    /// unreachable, or it aborted the call to resolve a conflict with another transaction
    /// (serialization failure, deadlock, SQLite busy or locked).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(sqlx::Error::Database(e)) => {
                if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // BUSY and LOCKED; the primary result code is the low byte of the
                    // extended one the driver reports.
                    e.code()
                        .and_then(|code| code.parse::<i32>().ok())
                        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
                } else {
                    // PostgreSQL: serialization_failure, deadlock_detected.
                    matches!(e.code().as_deref(), Some("40001" | "40P01"))
                }
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Sqlite(error)
    }
}

impl From<sqlx::Error> for StoreError {
    /// Sorts driver errors: the ones that mean "cannot reach the database" become
    /// [`StoreError::Unavailable`], everything else stays [`StoreError::Database`].
    fn from(error: sqlx::Error) -> Self {
        if is_unreachable(&error) {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::Database(error)
        }
    }
}

/// Whether a driver error means the database is out of reach (as opposed to a refusal).
fn is_unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(e) => {
            let Some(pg) = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() else {
                return false;
            };
            let code = pg.code();
            // Class 08: connection exception. 57P01-57P03: admin shutdown, crash shutdown,
            // cannot connect now (starting up or shutting down). 53300: too many connections.
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable_and_retryable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for error in [sqlx::Error::Io(refused), sqlx::Error::PoolTimedOut] {
            let error = StoreError::from(error);
            assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
            assert!(error.is_retryable());
        }
        let closed = StoreError::from(sqlx::Error::PoolClosed);
        assert!(matches!(closed, StoreError::Database(_)));
        assert!(!closed.is_retryable());
        assert!(!StoreError::RunNotFound("r".into()).is_retryable());
    }

    #[test]
    fn a_busy_writer_connection_is_retryable_a_constraint_is_not() {
        let failure = |code| {
            StoreError::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        assert!(failure(rusqlite::ffi::SQLITE_BUSY).is_retryable());
        assert!(failure(rusqlite::ffi::SQLITE_LOCKED).is_retryable());
        assert!(!failure(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE).is_retryable());
    }
}
