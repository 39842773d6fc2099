//! Why a run stops before its answer, and [`RunResult`], what every part of a run returns.
//!
//! Agents, tools and the run context all return `RunResult`: their value, or the [`Stop`] that
//! ends the run (a cancel, or a failure with the code that goes into `agent_error`). The driver
//! turns a `Stop` into the run's terminal event; nothing else decides how a run ends. This module
//! must not depend on anything of the engine: everything depends on it. An analysis stopped by
//! its cancel flag (`analytics::Cancelled`) is a `Stop::Cancelled`.

use agentwire_protocol::ErrorCode;

/// Why an agent or tool stopped before finishing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stop {
    /// The run was cancelled (by the user, its time limit or shutdown); see the run's stop reason.
    Cancelled,
    /// The run cannot go on; the code and message go into `agent_error`.
    Failed { code: ErrorCode, message: String },
}

impl Stop {
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Failed {
            code,
            message: message.into(),
        }
    }

    /// What a person reads about the stop (a tool's error result, the offline analysis' error).
    pub fn message(&self) -> String {
        match self {
            Stop::Failed { message, .. } => message.clone(),
            Stop::Cancelled => "cancelled".to_owned(),
        }
    }
}

/// An analysis that noticed the run's cancel stops the run like any cancel.
impl From<agentwire_analytics::Cancelled> for Stop {
    fn from(_: agentwire_analytics::Cancelled) -> Self {
        Stop::Cancelled
    }
}

/// The result of any part of a run: its value, or why the run stops.
pub(crate) type RunResult<T = ()> = Result<T, Stop>;
