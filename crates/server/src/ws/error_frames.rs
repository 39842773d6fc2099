//! The `error` frames the socket sends: each refusal's code and a message a person can act on.
//!
//! One builder per refusal, so the wording of a refusal lives in one place whichever part of the
//! connection sends it. Builders only build: this file must not send, close or decide anything,
//! and must not put a token, a frame's content or an internal error's detail into a message
//! (internal failures are logged under a correlation id, see [`crate::error`]).

use crate::auth::AuthError;
use crate::error;
use crate::limits::{LimitError, RateLimited};
use agentwire_engine::EngineError;
use agentwire_protocol::{ErrorCode, ErrorFrame, ServerFrame};
use axum::extract::ws::Message;
use std::time::Duration;

/// An `error` frame with this code and message.
pub(super) fn error(
    code: ErrorCode,
    message: impl Into<String>,
    request_id: Option<String>,
) -> ServerFrame {
    ServerFrame::from(ErrorFrame::new(code, message, request_id))
}

/// `AUTH_REQUIRED` for a message sent before the connection authenticated.
pub(super) fn auth_required(request_id: Option<String>, query_token_ignored: bool) -> ServerFrame {
    let mut message = String::from(
        "authenticate first: send {\"type\":\"authenticate\",\"token\":\"<JWT>\"}, or connect with `Authorization: Bearer <JWT>` or the `jwt.<base64url JWT>` subprotocol",
    );
    if query_token_ignored {
        message.push_str("; a token in the URL query string is ignored (URLs end up in logs)");
    }
    error(ErrorCode::AuthRequired, message, request_id)
}

/// `AUTH_REQUIRED` sent before the close when no valid `authenticate` came in time.
pub(super) fn auth_timeout(auth_timeout: Duration) -> ErrorFrame {
    ErrorFrame::new(
        ErrorCode::AuthRequired,
        format!(
            "no valid `authenticate` frame within {} ms; closing. Send {{\"type\":\"authenticate\",\"token\":\"<JWT>\"}} first, or connect with `Authorization: Bearer <JWT>`",
            auth_timeout.as_millis()
        ),
        None,
    )
}

/// The answer to an `authenticate` whose token does not verify. A missing token is a failed
/// authentication here, not a missing one: the client did try.
pub(super) fn auth_refused(err: &AuthError, request_id: Option<String>) -> ServerFrame {
    let code = match err.code() {
        ErrorCode::AuthRequired => ErrorCode::AuthFailed,
        code => code,
    };
    error(code, err.to_string(), request_id)
}

/// `AUTH_EXPIRED`, sent before close 4401 when the connection's token expired and no fresh
/// `authenticate` came in time.
pub(super) fn auth_expired(leeway_s: u64) -> ErrorFrame {
    ErrorFrame::new(
        ErrorCode::AuthExpired,
        format!(
            "the connection's token expired ({leeway_s} s of clock leeway included); closing. Send `authenticate` with a fresh token before the old one expires to keep a connection open, or reconnect with a fresh token and `resume` your runs"
        ),
        None,
    )
}

/// `RATE_LIMITED` for a `start_agent` or `resume` on a socket that already follows as many runs
/// as it may.
pub(super) fn too_many_followed(limit: usize, request_id: Option<String>) -> ServerFrame {
    let mut frame = ErrorFrame::new(
        ErrorCode::RateLimited,
        format!(
            "this connection already follows {limit} runs, the limit; wait for one to end, or follow more runs on another connection"
        ),
        request_id,
    );
    frame.retry_after_ms = Some(1_000);
    ServerFrame::from(frame)
}

/// The answer to an `authenticate` for another user on an authenticated connection.
pub(super) fn already_authenticated(current_user: &str, request_id: Option<String>) -> ServerFrame {
    error(
        ErrorCode::AuthFailed,
        format!(
            "this connection is already authenticated as {current_user}; open a new connection to act as another user"
        ),
        request_id,
    )
}

/// `RATE_LIMITED` for an `authenticate` refused by the user's connection cap.
pub(super) fn connection_cap(err: &LimitError, request_id: Option<String>) -> ServerFrame {
    let mut frame = ErrorFrame::new(ErrorCode::RateLimited, err.to_string(), request_id);
    frame.retry_after_ms = Some(err.retry_after_ms());
    ServerFrame::from(frame)
}

/// `INVALID_MESSAGE` for a binary frame; the connection stays open.
pub(super) fn binary_refused() -> ServerFrame {
    error(
        ErrorCode::InvalidMessage,
        "binary frames are not accepted; send each message as a JSON text frame",
        None,
    )
}

/// `PAYLOAD_TOO_LARGE`, sent before close 1009. `len` is `None` when the library refused the
/// frame at its header, before its size was known.
pub(super) fn too_big(len: Option<usize>, max_frame_bytes: usize) -> ErrorFrame {
    let frame = match len {
        Some(len) => format!("frame of {len} bytes"),
        None => "frame".to_owned(),
    };
    ErrorFrame::new(
        ErrorCode::PayloadTooLarge,
        format!("{frame} is over the {max_frame_bytes} byte limit; the connection will be closed"),
        None,
    )
}

/// `INVALID_MESSAGE` sent before close 1007: RFC 6455 requires failing the connection, and the
/// client is told why first.
pub(super) fn invalid_utf8() -> ErrorFrame {
    ErrorFrame::new(
        ErrorCode::InvalidMessage,
        "a text frame was not valid UTF-8; text frames must carry UTF-8 JSON. The connection will be closed",
        None,
    )
}

/// The `error` frame for a message dropped by a rate limit, with the message's `id` when it has
/// one so the client knows which request to send again.
pub(super) fn rate_limited(limited: &RateLimited, msg: &Message) -> ServerFrame {
    let request_id = match msg {
        Message::Text(text) => frame_request_id(text.as_str()),
        _ => None,
    };
    let mut frame = ErrorFrame::new(ErrorCode::RateLimited, limited.message(), request_id);
    frame.retry_after_ms = Some(limited.retry_after_ms());
    ServerFrame::from(frame)
}

/// The `id` of a frame, read without interpreting the rest (for replies to dropped frames).
fn frame_request_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Option<serde_json::Value>,
    }
    match serde_json::from_str::<IdOnly>(text).ok()?.id? {
        serde_json::Value::String(id) => Some(id.chars().take(128).collect()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The error frame for an engine refusal. Internal failures are logged under a correlation id
/// that the client sees; their details are not sent.
pub(super) fn engine_refusal(
    err: &EngineError,
    request_id: Option<String>,
    run_id: Option<&str>,
    connection_id: &str,
) -> ServerFrame {
    let message = if err.is_internal() {
        let correlation_id = error::new_correlation_id();
        tracing::error!(%connection_id, %correlation_id, error = %err, "engine failed");
        error::internal_message(&correlation_id)
    } else {
        err.to_string()
    };
    let mut frame = ErrorFrame::new(err.code(), message, request_id);
    frame.retry_after_ms = err.retry_after_ms();
    frame.run_id = err.conflicting_run().or(run_id).map(str::to_owned);
    ServerFrame::from(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(frame: &ServerFrame) -> Value {
        serde_json::from_str(&frame.to_json()).unwrap()
    }

    #[test]
    fn request_ids_are_read_from_frames_that_are_not_interpreted() {
        assert_eq!(
            frame_request_id(r#"{"id":"a1","type":"x"}"#).as_deref(),
            Some("a1")
        );
        assert_eq!(frame_request_id(r#"{"id":7}"#).as_deref(), Some("7"));
        assert_eq!(frame_request_id(r#"{"id":[1]}"#), None);
        assert_eq!(frame_request_id("not json"), None);
        // Skipping a value does not recurse: nesting as deep as a 1 MiB frame allows is harmless.
        let deep = format!(
            "{{\"id\":\"d\",\"x\":{}{}}}",
            "[".repeat(500_000),
            "]".repeat(500_000)
        );
        assert_eq!(frame_request_id(&deep).as_deref(), Some("d"));
        let long = format!("{{\"id\":\"{}\"}}", "i".repeat(1000));
        assert_eq!(frame_request_id(&long).unwrap().len(), 128);
    }

    #[test]
    fn rate_limited_frames_carry_the_request_id_and_when_to_retry() {
        let limited = RateLimited {
            scope: crate::limits::RateScope::Connection,
            retry_after: Duration::from_millis(250),
            per_second: 20,
        };
        let frame = rate_limited(
            &limited,
            &Message::Text(r#"{"type":"ping","id":"p9"}"#.into()),
        );
        let value = json(&frame);
        assert_eq!(value["error_code"], "RATE_LIMITED");
        assert_eq!(value["request_id"], "p9");
        assert_eq!(value["retry_after_ms"], 250);
        assert_eq!(value["retryable"], true);
    }

    #[test]
    fn too_big_says_the_size_when_it_is_known() {
        let known = too_big(Some(2000), 1024);
        assert_eq!(known.error_code, ErrorCode::PayloadTooLarge);
        assert_eq!(
            known.message,
            "frame of 2000 bytes is over the 1024 byte limit; the connection will be closed"
        );
        assert_eq!(
            too_big(None, 1024).message,
            "frame is over the 1024 byte limit; the connection will be closed"
        );
    }

    #[test]
    fn engine_errors_become_error_frames() {
        let frame = engine_refusal(
            &EngineError::RunConflict {
                run_id: "run_9".into(),
            },
            Some("q".into()),
            None,
            "conn",
        );
        let value = json(&frame);
        assert_eq!(value["error_code"], "RUN_CONFLICT");
        assert_eq!(value["run_id"], "run_9");
        assert_eq!(value["request_id"], "q");

        let frame = engine_refusal(
            &EngineError::TooManyRuns {
                limit: 8,
                retry_after_ms: 1500,
            },
            None,
            None,
            "conn",
        );
        assert_eq!(json(&frame)["retry_after_ms"], 1500);

        let frame = engine_refusal(
            &EngineError::Internal("secret detail".into()),
            None,
            None,
            "conn",
        );
        let value = json(&frame);
        assert_eq!(value["error_code"], "INTERNAL");
        assert!(!value["message"].as_str().unwrap().contains("secret"));
        assert!(
            value["message"]
                .as_str()
                .unwrap()
                .contains("correlation id")
        );
    }
}
