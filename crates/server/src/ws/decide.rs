//! What each client frame means, decided without I/O: [`process_message`] turns a frame into a
//! [`Decision`] for the reader to carry out, or a [`Closing`] when the connection must end
//! (in the style of axum's `examples/websockets`, `process_message -> ControlFlow`).
//!
//! Everything here is synchronous and pure (the clock is the only input besides the arguments),
//! so it is tested without a socket. This file must not call the engine, touch the queue, or log:
//! the reader ([`super::connection`]) does all of that with what these functions return.

use super::error_frames;
use agentwire_protocol::server::{ControlFrame, Pong};
use agentwire_protocol::{ClientMessage, ErrorCode, ErrorFrame, ServerFrame, StartRun};
use axum::extract::ws::Message;
use serde_json::Value;
use std::ops::ControlFlow;
use std::time::Instant;

/// What the reader should do about one client frame.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Send this frame back (pong, or an error).
    Reply(ServerFrame),
    Authenticate {
        request_id: Option<String>,
        token: String,
    },
    Start {
        start: StartRun,
        received_at: Instant,
    },
    Cancel {
        request_id: Option<String>,
        run_id: String,
    },
    Resume {
        request_id: Option<String>,
        run_id: String,
        after_seq: u64,
    },
    /// Nothing to do (protocol ping/pong frames).
    Nothing,
}

/// Why the reader stops after a frame or a read error.
#[derive(Debug, PartialEq)]
pub(crate) enum Closing {
    /// The client sent a close frame.
    ClientClosed,
    /// The frame was over the limit: send this error, then close 1009. `library_refused`: the
    /// library stopped reading at the frame header, so the stream must not be read again.
    TooBig {
        frame: ErrorFrame,
        library_refused: bool,
    },
    /// A text frame was not UTF-8: send this error, then close 1007 (RFC 6455). The frame was
    /// read whole, so the stream is still in step.
    InvalidUtf8(ErrorFrame),
    /// The socket failed; nothing more can be sent.
    SocketError,
}

/// What [`process_message`] needs to know about the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageContext {
    pub authenticated: bool,
    pub max_frame_bytes: usize,
    /// The upgrade URL had a token in its query string (ignored); said in `AUTH_REQUIRED`.
    pub query_token_ignored: bool,
}

/// Message types that need an authenticated connection.
const AUTHENTICATED_TYPES: [&str; 7] = [
    "start_agent",
    "agent_execute",
    "user_message",
    "chat_message",
    "message",
    "cancel",
    "resume",
];

/// Decides what one client frame means. Pure: the caller does the I/O.
pub(crate) fn process_message(msg: Message, ctx: MessageContext) -> ControlFlow<Closing, Decision> {
    let text = match msg {
        Message::Text(text) => text,
        Message::Binary(bytes) => {
            if bytes.len() > ctx.max_frame_bytes {
                return ControlFlow::Break(too_big(Some(bytes.len()), ctx.max_frame_bytes));
            }
            return ControlFlow::Continue(Decision::Reply(error_frames::binary_refused()));
        }
        // Pings are answered by the library; pongs only prove liveness (recorded by the caller).
        Message::Ping(_) | Message::Pong(_) => return ControlFlow::Continue(Decision::Nothing),
        Message::Close(_) => return ControlFlow::Break(Closing::ClientClosed),
    };
    if text.len() > ctx.max_frame_bytes {
        return ControlFlow::Break(too_big(Some(text.len()), ctx.max_frame_bytes));
    }
    if let Some(reply) = refuse_nul(text.as_str()) {
        return ControlFlow::Continue(Decision::Reply(reply));
    }
    let parsed = match ClientMessage::parse(text.as_str()) {
        Ok(parsed) => parsed,
        Err(err) => {
            let reply = if !ctx.authenticated && wants_authentication(text.as_str()) {
                error_frames::auth_required(err.request_id, ctx.query_token_ignored)
            } else {
                error_frames::error(err.code, err.message, err.request_id)
            };
            return ControlFlow::Continue(Decision::Reply(reply));
        }
    };
    let decision = match parsed {
        ClientMessage::Ping { id } => {
            Decision::Reply(ServerFrame::Control(ControlFrame::Pong(Pong {
                request_id: id,
                timestamp: agentwire_protocol::time::now(),
            })))
        }
        ClientMessage::Authenticate { id, token } => Decision::Authenticate {
            request_id: id,
            token,
        },
        other if !ctx.authenticated => Decision::Reply(error_frames::auth_required(
            other.request_id().map(str::to_owned),
            ctx.query_token_ignored,
        )),
        ClientMessage::StartRun(start) => Decision::Start {
            start,
            received_at: Instant::now(),
        },
        ClientMessage::Cancel { id, run_id } => Decision::Cancel {
            request_id: id,
            run_id,
        },
        ClientMessage::Resume {
            id,
            run_id,
            after_seq,
        } => Decision::Resume {
            request_id: id,
            run_id,
            after_seq,
        },
    };
    ControlFlow::Continue(decision)
}

/// `INVALID_MESSAGE` naming the field, for a frame with a NUL character (U+0000) in any string:
/// no database can store one, so it is refused here rather than fail later as `INTERNAL`. In
/// JSON a NUL can only arrive escaped (`\u0000`), so frames without that text are not parsed
/// twice.
fn refuse_nul(text: &str) -> Option<ServerFrame> {
    if !text.contains("\\u0000") {
        return None;
    }
    let value: Value = serde_json::from_str(text).ok()?;
    let field = nul_path(&value, "")?;
    let request_id = match value.get("id") {
        Some(Value::String(id)) => Some(id.clone()),
        _ => None,
    };
    Some(error_frames::error(
        ErrorCode::InvalidMessage,
        format!(
            "field `{field}` contains a NUL character (U+0000), which cannot be stored; remove it and send the message again"
        ),
        request_id,
    ))
}

/// The path (`payload.user_request`, `items[2]`) of the first key or string value holding a
/// NUL character.
pub(crate) fn nul_path(value: &Value, at: &str) -> Option<String> {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    };
    match value {
        Value::String(text) => text.contains('\0').then(|| at.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item, &format!("{at}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "\\u0000")))
            } else {
                nul_path(item, &join(key))
            }
        }),
        _ => None,
    }
}

/// Decides what a failed read means: a frame the library refused as too big, a text frame that is
/// not UTF-8 (both answered before the close), or a dead socket.
pub(crate) fn process_read_error(err: &axum::Error, max_frame_bytes: usize) -> Closing {
    if is_too_big(err) {
        // The library stopped at the header, so the frame's size is not known.
        Closing::TooBig {
            frame: error_frames::too_big(None, max_frame_bytes),
            library_refused: true,
        }
    } else if is_invalid_utf8(err) {
        Closing::InvalidUtf8(error_frames::invalid_utf8())
    } else {
        Closing::SocketError
    }
}

fn too_big(len: Option<usize>, max_frame_bytes: usize) -> Closing {
    Closing::TooBig {
        frame: error_frames::too_big(len, max_frame_bytes),
        library_refused: false,
    }
}

/// Whether a frame that failed to parse was meant as a message that needs authentication; an
/// unauthenticated client gets `AUTH_REQUIRED` for those rather than details about their shape.
fn wants_authentication(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| {
            value
                .get("type")
                .and_then(|kind| kind.as_str())
                .map(|kind| AUTHENTICATED_TYPES.contains(&kind))
        })
        .unwrap_or(false)
}

/// Whether a read error is the library refusing a frame over its size limit.
fn is_too_big(err: &axum::Error) -> bool {
    tungstenite_error(err).is_some_and(|err| {
        matches!(
            err,
            tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong { .. })
        )
    })
}

/// Whether a read error is a text frame that is not UTF-8.
fn is_invalid_utf8(err: &axum::Error) -> bool {
    tungstenite_error(err).is_some_and(|err| matches!(err, tungstenite::Error::Utf8(_)))
}

fn tungstenite_error(err: &axum::Error) -> Option<&tungstenite::Error> {
    std::error::Error::source(err)?.downcast_ref::<tungstenite::Error>()
}

/// Longest `thread_id` a client may choose; ids are database keys and log fields.
pub const MAX_THREAD_ID_CHARS: usize = 128;

/// Whether a client-chosen thread id may be used: 1 to [`MAX_THREAD_ID_CHARS`] characters, not
/// blank, no control characters. The one rule for every transport that lets a client name a thread.
pub(crate) fn thread_id_is_valid(thread_id: &str) -> bool {
    !thread_id.trim().is_empty()
        && thread_id.chars().count() <= MAX_THREAD_ID_CHARS
        && !thread_id.chars().any(char::is_control)
}

/// Checks the fields of a run request that the server limits: the question's size and the
/// thread id's shape. The message says what to change.
pub(crate) fn check_start_fields(
    start: &StartRun,
    max_user_request_bytes: usize,
) -> Result<(), String> {
    let question = start.user_request.len();
    if question > max_user_request_bytes {
        return Err(format!(
            "`user_request` is {question} bytes; this server takes questions of up to {max_user_request_bytes} bytes. Ask a shorter question; upload data with POST /api/usage instead of pasting it"
        ));
    }
    if let Some(thread_id) = &start.thread_id
        && !thread_id_is_valid(thread_id)
    {
        return Err(format!(
            "`thread_id` must be 1 to {MAX_THREAD_ID_CHARS} printable characters; leave it out to start a new thread"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_protocol::ErrorCode;
    use axum::body::Bytes;
    use serde_json::Value;

    fn ctx(authenticated: bool) -> MessageContext {
        MessageContext {
            authenticated,
            max_frame_bytes: 1024,
            query_token_ignored: false,
        }
    }

    fn reply(flow: ControlFlow<Closing, Decision>) -> Value {
        match flow {
            ControlFlow::Continue(Decision::Reply(frame)) => {
                serde_json::from_str(&frame.to_json()).unwrap()
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn text(s: &str) -> Message {
        Message::Text(s.into())
    }

    #[test]
    fn ping_is_answered_with_its_request_id_even_before_auth() {
        let value = reply(process_message(
            text(r#"{"type":"ping","id":"p1"}"#),
            ctx(false),
        ));
        assert_eq!(value["type"], "pong");
        assert_eq!(value["request_id"], "p1");
        assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn unauthenticated_start_gets_auth_required() {
        let value = reply(process_message(
            text(r#"{"type":"start_agent","id":"s1","payload":{"user_request":"hi"}}"#),
            ctx(false),
        ));
        assert_eq!(value["error_code"], "AUTH_REQUIRED");
        assert_eq!(value["request_id"], "s1");
        for frame in [
            r#"{"type":"cancel","id":"c1","run_id":"r"}"#,
            r#"{"type":"resume","id":"c1","run_id":"r"}"#,
            // Malformed, but clearly a start: still AUTH_REQUIRED.
            r#"{"type":"start_agent","id":"c1","payload":{"user_request":"x","agent_type":"nope"}}"#,
        ] {
            let value = reply(process_message(text(frame), ctx(false)));
            assert_eq!(value["error_code"], "AUTH_REQUIRED", "{frame}");
            assert_eq!(value["request_id"], "c1", "{frame}");
        }
    }

    #[test]
    fn query_token_hint() {
        let mut context = ctx(false);
        context.query_token_ignored = true;
        let value = reply(process_message(
            text(r#"{"type":"start_agent","payload":{"user_request":"hi"}}"#),
            context,
        ));
        assert!(value["message"].as_str().unwrap().contains("query string"));
    }

    #[test]
    fn authenticate_is_passed_on() {
        match process_message(
            text(r#"{"type":"authenticate","token":"t","id":"a"}"#),
            ctx(false),
        ) {
            ControlFlow::Continue(Decision::Authenticate { request_id, token }) => {
                assert_eq!(request_id.as_deref(), Some("a"));
                assert_eq!(token, "t");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn authenticated_messages_become_decisions() {
        assert!(matches!(
            process_message(
                text(r#"{"type":"start_agent","payload":{"user_request":"hi"}}"#),
                ctx(true)
            ),
            ControlFlow::Continue(Decision::Start { .. })
        ));
        assert!(matches!(
            process_message(text(r#"{"type":"cancel","run_id":"r"}"#), ctx(true)),
            ControlFlow::Continue(Decision::Cancel { .. })
        ));
        match process_message(
            text(r#"{"type":"resume","run_id":"r","after_seq":4}"#),
            ctx(true),
        ) {
            ControlFlow::Continue(Decision::Resume { after_seq, .. }) => assert_eq!(after_seq, 4),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parse_errors_keep_their_code_and_request_id() {
        let value = reply(process_message(text("{not json"), ctx(true)));
        assert_eq!(value["error_code"], "INVALID_MESSAGE");
        let value = reply(process_message(
            text(
                r#"{"type":"start_agent","id":"n","payload":{"user_request":"x","agent_type":"nonexistent_agent"}}"#,
            ),
            ctx(true),
        ));
        assert_eq!(value["error_code"], "AGENT_NOT_FOUND");
        assert_eq!(value["request_id"], "n");
        let value = reply(process_message(text(r#"{"type":"launch"}"#), ctx(false)));
        assert_eq!(value["error_code"], "UNKNOWN_MESSAGE_TYPE");
    }

    #[test]
    fn binary_frames_are_refused_but_do_not_close() {
        let value = reply(process_message(
            Message::Binary(Bytes::from_static(b"\x00\x01")),
            ctx(true),
        ));
        assert_eq!(value["error_code"], "INVALID_MESSAGE");
    }

    #[test]
    fn oversized_frames_close() {
        let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(2000));
        match process_message(text(&big), ctx(true)) {
            ControlFlow::Break(Closing::TooBig {
                frame,
                library_refused,
            }) => {
                assert_eq!(frame.error_code, ErrorCode::PayloadTooLarge);
                assert!(!library_refused);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            process_message(Message::Binary(Bytes::from(vec![0u8; 2000])), ctx(true)),
            ControlFlow::Break(Closing::TooBig { .. })
        ));
    }

    #[test]
    fn close_and_protocol_frames() {
        assert!(matches!(
            process_message(Message::Close(None), ctx(true)),
            ControlFlow::Break(Closing::ClientClosed)
        ));
        assert!(matches!(
            process_message(Message::Pong(Bytes::new()), ctx(false)),
            ControlFlow::Continue(Decision::Nothing)
        ));
    }

    fn too_long() -> axum::Error {
        axum::Error::new(tungstenite::Error::Capacity(
            tungstenite::error::CapacityError::MessageTooLong {
                size: 10,
                max_size: 5,
            },
        ))
    }

    fn not_utf8() -> axum::Error {
        axum::Error::new(tungstenite::Error::Utf8("\u{fffd}".into()))
    }

    #[test]
    fn library_capacity_errors_are_recognised() {
        assert!(is_too_big(&too_long()));
        assert!(!is_invalid_utf8(&too_long()));
        assert!(!is_too_big(&axum::Error::new(
            tungstenite::Error::ConnectionClosed
        )));
        assert!(is_invalid_utf8(&not_utf8()));
        assert!(!is_too_big(&not_utf8()));
    }

    #[test]
    fn read_errors_decide_how_the_connection_closes() {
        match process_read_error(&too_long(), 1024) {
            Closing::TooBig {
                frame,
                library_refused,
            } => {
                assert_eq!(frame.error_code, ErrorCode::PayloadTooLarge);
                assert!(
                    frame.message.contains("1024 byte limit"),
                    "{}",
                    frame.message
                );
                assert!(library_refused);
            }
            other => panic!("{other:?}"),
        }
        match process_read_error(&not_utf8(), 1024) {
            Closing::InvalidUtf8(frame) => {
                assert_eq!(frame.error_code, ErrorCode::InvalidMessage);
            }
            other => panic!("{other:?}"),
        }
        let closed = axum::Error::new(tungstenite::Error::ConnectionClosed);
        assert_eq!(process_read_error(&closed, 1024), Closing::SocketError);
    }

    fn start(user_request: &str, thread_id: Option<&str>) -> StartRun {
        match ClientMessage::parse(
            &serde_json::json!({
                "type": "start_agent",
                "payload": {"user_request": user_request, "thread_id": thread_id}
            })
            .to_string(),
        )
        .unwrap()
        {
            ClientMessage::StartRun(start) => start,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_nul_character_is_refused_naming_its_field() {
        for (frame, field) in [
            (
                r#"{"type":"start_agent","id":"r1","payload":{"user_request":"spend\u0000?"}}"#,
                "payload.user_request",
            ),
            (
                r#"{"type":"resume","id":"r1","run_id":"run_\u0000","after_seq":0}"#,
                "run_id",
            ),
            (
                r#"{"type":"start_agent","id":"r1","payload":{"user_request":"x","tags":["a","b\u0000"]}}"#,
                "payload.tags[1]",
            ),
        ] {
            let reply = reply(process_message(text(frame), ctx(true)));
            assert_eq!(reply["error_code"], "INVALID_MESSAGE", "{frame}");
            assert_eq!(reply["request_id"], "r1");
            let message = reply["message"].as_str().unwrap();
            assert!(message.contains(&format!("`{field}`")), "{message}");
            assert!(message.contains("NUL"), "{message}");
        }
        // An escaped backslash before "u0000" is no NUL.
        let fine = r#"{"type":"start_agent","id":"r1","payload":{"user_request":"a \\u0000 b"}}"#;
        assert!(matches!(
            process_message(text(fine), ctx(true)),
            ControlFlow::Continue(Decision::Start { .. })
        ));
    }

    #[test]
    fn start_fields_are_held_to_their_limits() {
        assert!(check_start_fields(&start("what did we spend?", None), 64).is_ok());
        let long = start(&"x".repeat(65), None);
        let message = check_start_fields(&long, 64).unwrap_err();
        assert!(
            message.contains("65 bytes") && message.contains("64 bytes"),
            "{message}"
        );
        assert!(check_start_fields(&start("q", Some("thread-1")), 64).is_ok());
        for bad in ["   ", "a\u{0}b", &"t".repeat(MAX_THREAD_ID_CHARS + 1)] {
            let message = check_start_fields(&start("q", Some(bad)), 64).unwrap_err();
            assert!(message.contains("thread_id"), "{message}");
        }
    }
}
