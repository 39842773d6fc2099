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
            json: Arc::from(text(event)),
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

/// An event's frame as JSON text, as `ServerFrame::Event` writes it (without cloning the event).
pub(crate) fn text(event: &RunEvent) -> String {
    serde_json::to_string(&FrameRef(event))
        // Unreachable for our types; keep the frame well-formed rather than panic.
        .unwrap_or_else(|_| ServerFrame::Event(event.clone()).to_json())
}

/// Serializes a borrowed event exactly as `ServerFrame::Event` does, without cloning it.
struct FrameRef<'a>(&'a RunEvent);

impl serde::Serialize for FrameRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}
