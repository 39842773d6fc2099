//! One run event as text: the JSON a frame is serialized to once, shared by the store, the run's
//! in-memory log and every socket that sends it.
//!
//! What it must not do: serialize an event twice, or hold anything but the frame's own bytes.

use agentwire_protocol::{RunEvent, ServerFrame};
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;

/// One run event as it goes on the wire: the frame's JSON text, serialized once and shared (a
/// clone is a reference count) by the store, the run's log and every socket that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFrame {
    seq: u64,
    terminal: bool,
    json: Arc<str>,
}

/// A frame's text as the bytes a socket sends, without a copy.
struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Just the `type` of a stored frame.
#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(borrow, rename = "type")]
    kind: &'a str,
}

impl EventFrame {
    /// Serializes an event; the one place a run event becomes text.
    pub fn encode(event: &RunEvent) -> EventFrame {
        EventFrame {
            seq: event.seq,
            terminal: event.kind.is_terminal(),
            json: text(event),
        }
    }

    /// A frame read back from the event log (its text exactly as it was sent).
    pub fn stored(seq: u64, payload: String) -> EventFrame {
        let terminal = serde_json::from_str::<TypeOnly<'_>>(&payload).is_ok_and(|t| {
            matches!(
                t.kind,
                "agent_completed" | "agent_error" | "agent_cancelled"
            )
        });
        EventFrame {
            seq,
            terminal,
            json: Arc::from(payload),
        }
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether this event ends its run.
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// The length of the frame's JSON text in bytes.
    pub fn len(&self) -> usize {
        self.json.len()
    }

    /// Whether the frame is empty (never, for a frame of an event).
    pub fn is_empty(&self) -> bool {
        self.json.is_empty()
    }

    /// The frame's JSON text.
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// The frame's JSON text, shared (no copy): what the event log stores.
    pub fn text(&self) -> Arc<str> {
        Arc::clone(&self.json)
    }

    /// The frame's JSON text as shared bytes (no copy).
    pub fn bytes(&self) -> Bytes {
        Bytes::from_owner(SharedText(Arc::clone(&self.json)))
    }

    /// Reads the event back. `None` only for a frame that is not a run event (a corrupt log).
    pub fn decode(&self) -> Option<RunEvent> {
        match serde_json::from_str::<ServerFrame>(&self.json) {
            Ok(ServerFrame::Event(event)) => Some(event),
            _ => None,
        }
    }
}

/// Bytes a thread's serialization buffer may keep between frames; a larger frame's buffer is
/// let go after it.
const KEPT_BUFFER_BYTES: usize = 256 << 10;

thread_local! {
    /// Where this thread serializes frames: it keeps its size between frames, so a frame is
    /// written without the buffer growing (and being copied) step by step as it goes.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An event's frame as JSON text, as `ServerFrame::Event` writes it (without cloning the event),
/// in an allocation of its exact size.
pub(crate) fn text(event: &RunEvent) -> Arc<str> {
    let written = SCRATCH.with_borrow_mut(|buffer| {
        buffer.clear();
        let text = serde_json::to_writer(&mut *buffer, &FrameRef(event))
            .ok()
            .and_then(|()| std::str::from_utf8(buffer).ok())
            .map(Arc::from);
        if buffer.capacity() > KEPT_BUFFER_BYTES {
            *buffer = Vec::new();
        }
        text
    });
    // Unreachable for our types; keep the frame well-formed rather than panic.
    written.unwrap_or_else(|| Arc::from(ServerFrame::Event(event.clone()).to_json()))
}

/// Serializes a borrowed event exactly as `ServerFrame::Event` does, without cloning it.
struct FrameRef<'a>(&'a RunEvent);

impl serde::Serialize for FrameRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_protocol::EventKind;

    fn thinking(seq: u64, message: String) -> RunEvent {
        RunEvent {
            run_id: "r".into(),
            thread_id: "t".into(),
            seq,
            agent: "data".into(),
            timestamp: agentwire_protocol::time::now(),
            kind: EventKind::AgentThinking { message },
        }
    }

    /// The text is the protocol's own serialization of the frame, whatever the thread's buffer
    /// held before: a small frame, one larger than the buffer keeps, and a small one after it.
    #[test]
    fn a_frame_is_the_protocols_serialization_whatever_came_before() {
        for event in [
            thinking(1, "Spend was $1,234.".into()),
            thinking(2, "\"quoted\" \u{e9} ".repeat(KEPT_BUFFER_BYTES / 8)),
            thinking(3, "short".into()),
        ] {
            let expected = ServerFrame::Event(event.clone()).to_json();
            assert_eq!(EventFrame::encode(&event).as_str(), expected);
            assert_eq!(&*text(&event), expected);
        }
        let kept = SCRATCH.with_borrow(Vec::capacity);
        assert!(kept <= KEPT_BUFFER_BYTES, "{kept} bytes kept");
    }
}
