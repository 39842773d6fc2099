//! Errors the engine returns to its callers, each mapped to a protocol error code.
//! These are refusals and failures of the engine's own calls; they must not carry how a run ended
//! (that is `stop::Stop`, turned into the run's terminal event).

use agentwire_protocol::ErrorCode;
use agentwire_store::StoreError;

/// Why the engine refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No such run, or it belongs to another user: the two are indistinguishable on purpose, so
    /// that run ids cannot be probed.
    #[error("no run with that id was found for this user")]
    RunNotFound,
    #[error("the thread already has a running run ({run_id}); wait for it to finish or cancel it")]
    RunConflict { run_id: String },
    #[error("you already have {limit} runs going at once; wait for one to finish or cancel one")]
    TooManyRuns { limit: usize, retry_after_ms: u64 },
    #[error("the server is shutting down and accepts no new runs; reconnect and try again shortly")]
    ShuttingDown,
    /// The database cannot be reached (or this node's lease lapsed): retryable, and not the
    /// client's fault nor a bug. The reason is for logs and readiness, not for clients.
    #[error("the server cannot reach its database right now; try again in a moment")]
    Unavailable(String),
    #[error(
        "the server is at capacity ({waiting} runs are waiting to start or for analysis); try again in a moment"
    )]
    Overloaded { waiting: usize, retry_after_ms: u64 },
    #[error("storage failed: {0}")]
    Store(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for EngineError {
    /// A database that cannot be reached is [`EngineError::Unavailable`]; any other store
    /// failure is [`EngineError::Store`].
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(reason) => Self::Unavailable(reason),
            err => Self::Store(err),
        }
    }
}

impl EngineError {
    /// The protocol error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::RunNotFound => ErrorCode::RunNotFound,
            Self::RunConflict { .. } => ErrorCode::RunConflict,
            Self::TooManyRuns { .. } => ErrorCode::RateLimited,
            Self::ShuttingDown | Self::Unavailable(_) | Self::Overloaded { .. } => {
                ErrorCode::Unavailable
            }
            Self::Store(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Whether the error is the server's own fault (storage, a bug): its detail is logged, not
    /// shown, and the client gets `INTERNAL`. The one place this is decided.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Internal(_))
    }

    /// How long a client should wait before retrying, when the error says so.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::TooManyRuns { retry_after_ms, .. } | Self::Overloaded { retry_after_ms, .. } => {
                Some(*retry_after_ms)
            }
            Self::ShuttingDown | Self::Unavailable(_) => Some(1_000),
            _ => None,
        }
    }

    /// The run that is in the way, for `RUN_CONFLICT`.
    pub fn conflicting_run(&self) -> Option<&str> {
        match self {
            Self::RunConflict { run_id } => Some(run_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_storage_and_bugs_are_internal() {
        assert!(EngineError::Internal("x".into()).is_internal());
        assert_eq!(
            EngineError::Internal("x".into()).code(),
            ErrorCode::Internal
        );
        for refusal in [
            EngineError::RunNotFound,
            EngineError::ShuttingDown,
            EngineError::Unavailable("connection refused".into()),
            EngineError::RunConflict { run_id: "r".into() },
            EngineError::Overloaded {
                waiting: 1,
                retry_after_ms: 1,
            },
            EngineError::TooManyRuns {
                limit: 1,
                retry_after_ms: 1,
            },
        ] {
            assert!(!refusal.is_internal(), "{refusal:?}");
            assert_ne!(refusal.code(), ErrorCode::Internal);
        }
    }

    #[test]
    fn an_unreachable_database_is_retryable_and_keeps_its_detail_out_of_the_message() {
        let err = EngineError::from(StoreError::Unavailable("10.0.0.5:5432 refused".into()));
        assert_eq!(err.code(), ErrorCode::Unavailable);
        assert_eq!(err.retry_after_ms(), Some(1_000));
        assert!(!err.to_string().contains("10.0.0.5"), "{err}");
        assert!(matches!(
            EngineError::from(StoreError::RunNotFound("r".into())),
            EngineError::Store(_)
        ));
    }
}
