//! Fuzzes the client-message parser, `agentwire_protocol::ClientMessage::parse`: every text frame
//! a socket can carry goes through it before anything else looks at it.
//!
//! Beyond "never panics", it checks the parser's promises: a refusal has one of the parser's
//! three codes and a message a person can act on; an accepted run request has a non-blank
//! question and parameters within their documented ranges; parsing text and parsing the same
//! JSON value agree.
#![no_main]

use agentwire_protocol::{ClientMessage, ErrorCode};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

/// The longest look-back a `timeframe` may name (ten years).
const MAX_TIMEFRAME: Duration = Duration::from_secs(3650 * 86_400);

fuzz_target!(|data: &[u8]| {
    // The WebSocket layer refuses text frames that are not UTF-8 before the parser sees them.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = ClientMessage::parse(text);
    match &parsed {
        Ok(message) => check_message(message),
        Err(err) => {
            assert!(
                matches!(
                    err.code,
                    ErrorCode::InvalidMessage
                        | ErrorCode::UnknownMessageType
                        | ErrorCode::AgentNotFound
                ),
                "unexpected code {:?}",
                err.code
            );
            assert!(
                !err.message.trim().is_empty(),
                "a refusal without a message"
            );
            // Messages quote client text only in bounded pieces.
            assert!(
                err.message.len() <= 1_024,
                "message of {} bytes",
                err.message.len()
            );
            if let Some(id) = &err.request_id {
                assert!(
                    id.chars().count() <= 128,
                    "request id of {} chars",
                    id.chars().count()
                );
            }
        }
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        assert_eq!(
            ClientMessage::from_value(value),
            parsed,
            "text and value disagree"
        );
    }
});

fn check_message(message: &ClientMessage) {
    if let Some(id) = message.request_id() {
        assert!(
            id.chars().count() <= 128,
            "request id of {} chars",
            id.chars().count()
        );
    }
    match message {
        ClientMessage::StartRun(start) => {
            assert!(
                !start.user_request.trim().is_empty(),
                "a blank question was accepted"
            );
            if let Some(timeframe) = start.params.timeframe {
                assert!(timeframe.amount > 0, "a zero timeframe was accepted");
                assert!(
                    timeframe.duration() <= MAX_TIMEFRAME,
                    "{timeframe} is over ten years"
                );
            }
            if let Some(spend) = start.params.monthly_spend {
                assert!(spend.is_finite() && spend >= 0.0, "monthly_spend {spend}");
            }
        }
        ClientMessage::Cancel { run_id, .. } | ClientMessage::Resume { run_id, .. } => {
            assert!(!run_id.is_empty(), "an empty run id was accepted");
        }
        ClientMessage::Authenticate { token, .. } => {
            assert!(!token.is_empty(), "an empty token was accepted");
        }
        ClientMessage::Ping { .. } => {}
    }
}
