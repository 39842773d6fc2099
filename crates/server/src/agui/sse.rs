//! The Server-Sent Events side: event ids, the bytes of each event, and the body stream that maps
//! a run's events as they come and writes them out.
//!
//! **Ids.** The AG-UI events mapped from the agentwire event with `seq` N are numbered in order:
//! the first is `N`, the next `N.1`, `N.2`, ... Ids are ordered by `(seq, sub)`, so
//! `Last-Event-ID: 7` resumes at `7.1` (or `8`), and `7.2` at `8`. Since the mapping is a pure
//! function of the run's events, the event with a given id is always the same bytes.
//!
//! **Bytes.** Each event is `id: <id>\ndata: <json>\n\n` (the JSON never holds a raw newline).
//! The events of one agentwire event leave in one body chunk. Written here rather than with
//! axum's `Sse`, which sends every event as its own chunk and keeps its bytes private. A comment
//! line (`:\n\n`) goes out after [`KEEP_ALIVE`] without events, so proxies keep the connection
//! and a vanished client is noticed; it is not an event and has no id.
//!
//! The stream holds the caller's limit permits and gives them back when it ends or the client goes
//! away. A client going away stops the stream, never the run. This file must not decide what the
//! events are (see [`super::mapping`]).

use super::mapping::Mapper;
use crate::metrics::Metrics;
use agentwire_engine::EventStream;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Idle time after which a comment line is sent to keep the connection alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The id of one AG-UI event: the `seq` of the agentwire event it came from and its place among
/// the events mapped from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub seq: u64,
    pub sub: u32,
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sub == 0 {
            write!(f, "{}", self.seq)
        } else {
            write!(f, "{}.{}", self.seq, self.sub)
        }
    }
}

/// A `Last-Event-ID` that is not an id this server writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`Last-Event-ID` must be an event id this server sent: a whole number (`7`) or a number with a part (`7.2`)"
)]
pub struct BadEventId;

impl FromStr for EventId {
    type Err = BadEventId;

    fn from_str(text: &str) -> Result<Self, BadEventId> {
        let (seq, sub) = text.split_once('.').unwrap_or((text, "0"));
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(seq) || !digits(sub) {
            return Err(BadEventId);
        }
        Ok(EventId {
            seq: seq.parse().map_err(|_| BadEventId)?,
            sub: sub.parse().map_err(|_| BadEventId)?,
        })
    }
}

/// What the stream keeps until it ends: limit permits, and anything else whose lifetime is the
/// stream's.
pub type Held = Box<dyn Send + Sync>;

/// How one stream is written.
pub struct StreamSettings {
    /// Only events with a greater id are written (resume); `None` writes them all.
    pub after: Option<EventId>,
    pub keep_alive: Duration,
    pub metrics: Arc<Metrics>,
    /// When the request came in, for the time-to-first-event histogram (new runs only).
    pub received_at: Option<Instant>,
    pub held: Held,
}

/// The `200 text/event-stream` answer carrying the run's AG-UI events.
pub fn response(run_id: String, events: EventStream, settings: StreamSettings) -> Response {
    let body = Body::from_stream(body_stream(run_id, events, settings));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies such as nginx buffer responses unless told not to; events must leave at once.
    headers.insert(
        header::HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// Appends one event's bytes: `id: <id>\ndata: <json>\n\n`.
pub fn write_event(out: &mut Vec<u8>, id: EventId, json: &str) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(id.to_string().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// The SSE bytes of one agentwire event's AG-UI events, skipping those at or before `after`.
pub fn encode(
    mapper: &mut Mapper,
    event: &agentwire_protocol::RunEvent,
    after: Option<EventId>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (sub, stamped) in mapper.map(event).iter().enumerate() {
        let id = EventId {
            seq: event.seq,
            sub: u32::try_from(sub).unwrap_or(u32::MAX),
        };
        if after.is_some_and(|after| id <= after) {
            continue;
        }
        write_event(&mut out, id, &stamped.to_json());
    }
    out
}

/// The state of one stream; logs how it ended when dropped.
struct Writer {
    run_id: String,
    events: EventStream,
    mapper: Mapper,
    settings: StreamSettings,
    written: u64,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.mapper.is_finished() {
            tracing::debug!(run_id = %self.run_id, events = self.written, "AG-UI stream ended");
        } else {
            tracing::info!(run_id = %self.run_id, events = self.written, "AG-UI client went away; the run goes on and can be resumed");
        }
    }
}

fn body_stream(
    run_id: String,
    events: EventStream,
    settings: StreamSettings,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let writer = Writer {
        run_id,
        events,
        mapper: Mapper::new(),
        settings,
        written: 0,
    };
    futures_util::stream::unfold(writer, |mut writer| async move {
        loop {
            if writer.mapper.is_finished() {
                return None;
            }
            let keep_alive = writer.settings.keep_alive;
            let next = tokio::select! {
                next = writer.events.next() => next,
                () = tokio::time::sleep(keep_alive) => {
                    return Some((Ok(Bytes::from_static(b":\n\n")), writer));
                }
            };
            // The engine's stream ends after the terminal event; a run's log cannot end sooner.
            let event = next?;
            let bytes = encode(&mut writer.mapper, &event, writer.settings.after);
            if bytes.is_empty() {
                continue;
            }
            writer.written += 1;
            writer.settings.metrics.event_sent();
            if let Some(received_at) = writer.settings.received_at.take() {
                writer
                    .settings
                    .metrics
                    .observe_first_event(received_at.elapsed());
            }
            return Some((Ok(Bytes::from(bytes)), writer));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_in_their_order() {
        let cases = [("7", 7, 0), ("7.1", 7, 1), ("12.10", 12, 10), ("0", 0, 0)];
        for (text, seq, sub) in cases {
            let id: EventId = text.parse().unwrap();
            assert_eq!(id, EventId { seq, sub });
            assert_eq!(id.to_string(), text);
        }
        assert_eq!("7.0".parse::<EventId>().unwrap().to_string(), "7");
        let mut ids: Vec<EventId> = ["8", "7.2", "7", "7.10", "7.1"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        ids.sort();
        let sorted: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(sorted, ["7", "7.1", "7.2", "7.10", "8"]);
    }

    #[test]
    fn anything_else_is_not_an_id() {
        for bad in [
            "",
            "x",
            "-1",
            "+1",
            " 7",
            "7.",
            ".1",
            "7.1.2",
            "1e3",
            "99999999999999999999",
        ] {
            assert_eq!(bad.parse::<EventId>(), Err(BadEventId), "{bad:?}");
        }
    }

    #[test]
    fn an_event_is_an_id_line_and_a_data_line() {
        let mut out = Vec::new();
        write_event(&mut out, EventId { seq: 3, sub: 2 }, r#"{"type":"CUSTOM"}"#);
        assert_eq!(out, b"id: 3.2\ndata: {\"type\":\"CUSTOM\"}\n\n");
    }
}
