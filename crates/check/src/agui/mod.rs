//! AG-UI (the Agent-User Interaction protocol) from the client side: what `agentwire check` needs
//! to judge a deployment's `POST /api/agui` streams, and what the server's tests use to read them.
//!
//! - [`sse`]: a Server-Sent Events answer read event by event, each event's bytes kept.
//! - [`rules`]: AG-UI's ordering rules for one run's events.
//!
//! Here too: the protocol crate only, no server code.

pub mod rules;
pub mod sse;

pub use rules::{Violation, verify};
pub use sse::{SseEvent, SseStream};

use serde_json::{Value, json};

/// An event id as the contract writes them: the run event's `seq` (`7`), or `seq.n` for the
/// second and later AG-UI events of one run event (`7.2`). Ordered as written.
pub fn parse_event_id(text: &str) -> Option<(u64, u64)> {
    let (seq, part) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(seq) || !digits(part) {
        return None;
    }
    Some((seq.parse().ok()?, part.parse().ok()?))
}

/// A `RunAgentInput` whose question is one user message, as an AG-UI client sends it.
pub fn run_input(thread_id: &str, run_id: &str, question: &str) -> Value {
    json!({
        "threadId": thread_id,
        "runId": run_id,
        "state": {},
        "messages": [{"id": format!("{run_id}-question"), "role": "user", "content": question}],
        "tools": [],
        "context": [],
        "forwardedProps": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_seq_or_seq_dot_part() {
        assert_eq!(parse_event_id("7"), Some((7, 0)));
        assert_eq!(parse_event_id("7.12"), Some((7, 12)));
        for bad in ["", "x", "7.", ".1", "-1", "7.1.1", " 7"] {
            assert_eq!(parse_event_id(bad), None, "{bad:?}");
        }
        assert!(parse_event_id("7.2") < parse_event_id("7.10"));
        assert!(parse_event_id("7.10") < parse_event_id("8"));
    }
}
