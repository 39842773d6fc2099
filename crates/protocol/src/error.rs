//! The stable error codes of PROTOCOL.md section 6.
//!
//! Codes are part of the contract: a client branches on them, so a variant is never renamed. Each
//! code says whether retrying the same request can succeed.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A machine-readable error code, serialized as `SCREAMING_SNAKE_CASE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    AuthRequired,
    AuthFailed,
    /// The token of an open connection expired (after the leeway) and no fresh `authenticate`
    /// came; the connection is then closed with 4401.
    AuthExpired,
    Forbidden,
    InvalidMessage,
    UnknownMessageType,
    AgentNotFound,
    RunNotFound,
    RunConflict,
    RateLimited,
    PayloadTooLarge,
    NoData,
    Timeout,
    Interrupted,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, for catalogues and tests.
    pub const ALL: [ErrorCode; 16] = [
        Self::AuthRequired,
        Self::AuthFailed,
        Self::AuthExpired,
        Self::Forbidden,
        Self::InvalidMessage,
        Self::UnknownMessageType,
        Self::AgentNotFound,
        Self::RunNotFound,
        Self::RunConflict,
        Self::RateLimited,
        Self::PayloadTooLarge,
        Self::NoData,
        Self::Timeout,
        Self::Interrupted,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthRequired => "AUTH_REQUIRED",
            Self::AuthFailed => "AUTH_FAILED",
            Self::AuthExpired => "AUTH_EXPIRED",
            Self::Forbidden => "FORBIDDEN",
            Self::InvalidMessage => "INVALID_MESSAGE",
            Self::UnknownMessageType => "UNKNOWN_MESSAGE_TYPE",
            Self::AgentNotFound => "AGENT_NOT_FOUND",
            Self::RunNotFound => "RUN_NOT_FOUND",
            Self::RunConflict => "RUN_CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::NoData => "NO_DATA",
            Self::Timeout => "TIMEOUT",
            Self::Interrupted => "INTERRUPTED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    /// Whether the same request may succeed when sent again later.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited
                | Self::Timeout
                | Self::Interrupted
                | Self::Unavailable
                | Self::Internal
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
            let back: ErrorCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, code);
        }
    }
}
