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
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// The protocol error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::RunNotFound => ErrorCode::RunNotFound,
            Self::RunConflict { .. } => ErrorCode::RunConflict,
            Self::TooManyRuns { .. } => ErrorCode::RateLimited,
            Self::ShuttingDown => ErrorCode::Unavailable,
            Self::Store(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// How long a client should wait before retrying, when the error says so.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Self::TooManyRuns { retry_after_ms, .. } => Some(*retry_after_ms),
            Self::ShuttingDown => Some(1_000),
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
