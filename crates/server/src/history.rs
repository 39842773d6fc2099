//! The conversation history over HTTP: what a client reads back after the fact, so a reload or a
//! second device shows the threads, their runs and every run's events from the server.
//!
//! - `GET /api/threads?limit=N`: the caller's threads, most recently active first.
//! - `GET /api/threads/{thread_id}`: a thread's runs, oldest first, each with its events.
//! - `GET /api/runs/{run_id}/events?after_seq=N`: one run's persisted events.
//!
//! Every route takes a Bearer token ([`Authenticated`]) and answers for the owner only: another
//! user's thread or run is 404, exactly like one that does not exist. Handlers parse the request,
//! ask the engine and shape JSON; this module must not hold SQL or decide who owns what (the
//! engine does), and must not serve live events (the socket does).
//!
//! A thread or a run can be long, so the two history answers are written as they are read: the
//! body is streamed a page of runs or events at a time, never built whole in memory. The JSON
//! is the same as a whole answer's; only its `last_seq` comes after the run's `events`. Errors
//! found before the first byte are ordinary error answers; a read that fails once the body has
//! begun cuts the body short (the client sees invalid JSON) and is logged under a correlation
//! id.

use crate::AppState;
use crate::error::{AppError, new_correlation_id};
use crate::http::{Authenticated, query_param};
use agentwire_engine::{EngineError, EventPages, ThreadHistory};
use agentwire_protocol::time::format as format_time;
use agentwire_protocol::{RunEvent, ServerFrame};
use agentwire_store::RunRecord;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::{Value, json};
use std::collections::VecDeque;

/// Default and largest number of threads `GET /api/threads` lists.
const DEFAULT_THREADS: u32 = 50;
const MAX_THREADS: u32 = 200;

/// `GET /api/threads?limit=N`: the caller's threads, most recently active first.
pub async fn threads(
    State(state): State<AppState>,
    Authenticated(identity): Authenticated,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, AppError> {
    let limit = thread_limit(query.as_deref())?;
    let threads = state.engine.threads(&identity.principal, limit).await?;
    let threads: Vec<Value> = threads
        .iter()
        .map(|thread| {
            json!({
                "thread_id": thread.thread_id,
                "title": thread.title,
                "created_at": format_time(&thread.created_at),
                "updated_at": format_time(&thread.updated_at),
            })
        })
        .collect();
    Ok(Json(json!({ "threads": threads })))
}

/// `limit` from the query: 1 to [`MAX_THREADS`], [`DEFAULT_THREADS`] when absent.
fn thread_limit(query: Option<&str>) -> Result<u32, AppError> {
    match query_param(query, "limit") {
        None | Some("") => Ok(DEFAULT_THREADS),
        Some(text) => match text.parse::<u32>() {
            Ok(limit) if (1..=MAX_THREADS).contains(&limit) => Ok(limit),
            _ => Err(AppError::BadRequest(format!(
                "`limit` must be a whole number from 1 to {MAX_THREADS}"
            ))),
        },
    }
}

/// `GET /api/threads/{thread_id}`: the thread's runs, oldest first, each with its events.
///
/// A run still going has the events persisted so far and `status` `running`; the page follows it
/// with `resume` from the last `seq`. An unknown thread, or another user's, is 404 `NOT_FOUND`.
pub async fn thread(
    State(state): State<AppState>,
    Authenticated(identity): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let Path(thread_id) = path?;
    let mut history = state.engine.thread_history(&identity.principal, &thread_id);
    let Some(first) = history.next_runs().await? else {
        return Err(AppError::NotFound(
            "no thread with that id was found for this user; GET /api/threads lists yours".into(),
        ));
    };
    let head = format!(r#"{{"thread_id":{},"runs":["#, Value::String(thread_id));
    let body = ThreadBody {
        history,
        runs: first.into(),
        run: None,
        runs_written: 0,
        head: Some(head),
    };
    Ok(json_stream(pages(body, "thread history")))
}

/// `GET /api/runs/{run_id}/events?after_seq=N`: the run's persisted events, owner only.
pub async fn run_events(
    State(state): State<AppState>,
    Authenticated(identity): Authenticated,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let Path(run_id) = path?;
    let after_seq = match query_param(query.as_deref(), "after_seq") {
        None | Some("") => 0,
        Some(text) => text.parse::<u64>().map_err(|_| {
            AppError::BadRequest(
                "`after_seq` must be a whole number >= 0 (the last seq you saw)".into(),
            )
        })?,
    };
    let mut events = state
        .engine
        .run_events(&identity.principal, &run_id, after_seq)
        .await?;
    // The first page is read before answering, so that a database out of reach is an ordinary
    // error answer, not a cut body.
    let first = events.next_page().await?;
    let body = EventsBody {
        events,
        first: Some(first),
        written: 0,
    };
    Ok(json_stream(pages(body, "run events")))
}

/// A `200 application/json` answer whose body is written as `chunks` yields it.
fn json_stream(
    chunks: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> Response {
    let mut response = Body::from_stream(chunks).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON body written a piece at a time: each call appends the next piece to `out`, false once
/// the body is complete.
trait JsonPages: Send + 'static {
    fn next(&mut self, out: &mut Vec<u8>)
    -> impl Future<Output = Result<bool, EngineError>> + Send;
}

/// The body's chunks, one piece each. A failed read ends the body early with an error, which
/// makes the server cut the connection instead of finishing a body that would look complete.
fn pages<P: JsonPages>(
    body: P,
    what: &'static str,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        let mut out = Vec::new();
        match body.next(&mut out).await {
            Ok(true) => Some((Ok(Bytes::from(out)), Some(body))),
            Ok(false) => Some((Ok(Bytes::from(out)), None)),
            Err(err) => {
                let correlation_id = new_correlation_id();
                tracing::error!(%correlation_id, error = %err, "reading the {what} failed after the answer began; its body was cut short");
                Some((Err(std::io::Error::other(correlation_id)), None))
            }
        }
    })
}

/// `[event, event, ...]`, a page of events at a time.
struct EventsBody {
    events: EventPages,
    /// The page read before answering, until it is written (`Some(None)`: the log was empty).
    first: Option<Option<Vec<RunEvent>>>,
    written: usize,
}

impl JsonPages for EventsBody {
    async fn next(&mut self, out: &mut Vec<u8>) -> Result<bool, EngineError> {
        let page = match self.first.take() {
            Some(first) => {
                out.push(b'[');
                first
            }
            None => self.events.next_page().await?,
        };
        match page {
            Some(events) => {
                push_events(out, &mut self.written, events);
                Ok(true)
            }
            None => {
                out.push(b']');
                Ok(false)
            }
        }
    }
}

/// `{"thread_id": ..., "runs": [run, ...]}`, a page of runs or of one run's events at a time.
struct ThreadBody {
    history: ThreadHistory,
    /// Runs read and not yet written.
    runs: VecDeque<RunRecord>,
    /// The run being written: its remaining events, how many were written and the last seq.
    run: Option<(EventPages, usize, u64)>,
    runs_written: usize,
    /// The opening of the object, until it is written.
    head: Option<String>,
}

impl JsonPages for ThreadBody {
    async fn next(&mut self, out: &mut Vec<u8>) -> Result<bool, EngineError> {
        if let Some(head) = self.head.take() {
            out.extend_from_slice(head.as_bytes());
        }
        if let Some((events, written, last_seq)) = &mut self.run {
            match events.next_page().await? {
                Some(page) => {
                    if let Some(seq) = push_events(out, written, page) {
                        *last_seq = seq;
                    }
                }
                None => {
                    out.extend_from_slice(format!(r#"],"last_seq":{last_seq}}}"#).as_bytes());
                    self.run = None;
                }
            }
            return Ok(true);
        }
        if self.runs.is_empty()
            && let Some(more) = self.history.next_runs().await?
        {
            self.runs.extend(more);
        }
        let Some(run) = self.runs.pop_front() else {
            out.extend_from_slice(b"]}");
            return Ok(false);
        };
        let mut head = run_head(&run).to_string();
        // `{...}` becomes `{...,"events":[`: the events follow, then `last_seq` closes it.
        head.pop();
        head.push_str(r#","events":["#);
        push_item(out, &mut self.runs_written, &head);
        self.run = Some((self.history.events(&run), 0, 0));
        Ok(true)
    }
}

/// The run's fields in the thread history, but its `events` and `last_seq`.
fn run_head(run: &RunRecord) -> Value {
    json!({
        "run_id": run.run_id,
        "agent": run.agent,
        "user_request": run.user_request,
        "status": run.status.as_str(),
        "created_at": format_time(&run.created_at),
        "finished_at": run.finished_at.as_ref().map(format_time),
    })
}

/// Appends a page of events to a JSON array as their frames; the last one's seq, if any.
fn push_events(out: &mut Vec<u8>, written: &mut usize, events: Vec<RunEvent>) -> Option<u64> {
    let mut last = None;
    for event in events {
        last = Some(event.seq);
        push_item(out, written, &ServerFrame::Event(event).to_json());
    }
    last
}

/// Appends one item of a JSON array, with the comma before every item but the first.
fn push_item(out: &mut Vec<u8>, written: &mut usize, item: &str) {
    if *written > 0 {
        out.push(b',');
    }
    out.extend_from_slice(item.as_bytes());
    *written += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_limits() {
        assert_eq!(thread_limit(None).unwrap(), DEFAULT_THREADS);
        assert_eq!(thread_limit(Some("limit=5")).unwrap(), 5);
        assert_eq!(thread_limit(Some("x=1&limit=")).unwrap(), DEFAULT_THREADS);
        for bad in ["limit=0", "limit=201", "limit=-1", "limit=ten"] {
            assert!(matches!(
                thread_limit(Some(bad)),
                Err(AppError::BadRequest(_))
            ));
        }
    }
}
