//! The AG-UI endpoints: start a run, resume its stream, cancel it.
//!
//! - `POST /api/agui` (the supervisor) and `POST /api/agui/{agent_type}` (any agent or alias):
//!   a `RunAgentInput` in, `200 text/event-stream` of the run's AG-UI events out.
//! - `GET /api/agui/runs/{run_id}/events` with `Last-Event-ID: <id>`: the events after that id,
//!   byte for byte as first sent, then live to the end. Without the header: from the start.
//! - `POST /api/agui/runs/{run_id}/cancel`: asks the run to stop; `202`, and its stream ends with
//!   `RUN_FINISHED` (outcome `cancelled`).
//!
//! The limits are the socket's: every request takes a message from the user's rate bucket, every
//! open stream holds a place among the server's and the user's connections, and runs count against
//! the user's concurrent runs (`429 RATE_LIMITED` / `503 UNAVAILABLE` with `Retry-After`). Another
//! user's run is 404 `RUN_NOT_FOUND`, exactly like one that does not exist (the engine decides).
//!
//! Handlers read the request, call the engine, and hand the events to [`super::sse`]; they must
//! not map events or hold run state. A client that goes away stops its stream, never its run.

use super::input::parse_input;
use super::sse::{self, EventId, Held, KEEP_ALIVE, StreamSettings};
use crate::AppState;
use crate::error::AppError;
use crate::http::Authenticated;
use crate::limits::{LimitError, RateLimited};
use agentwire_engine::Principal;
use agentwire_protocol::{AgentKind, ErrorCode, StartRun};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::Instant;

/// The header a client resumes with (the SSE standard's).
const LAST_EVENT_ID: &str = "last-event-id";

/// Bodies larger than this are parsed off the async runtime.
const PARSE_INLINE_BYTES: usize = 64 << 10;

/// `POST /api/agui`: a supervisor run.
pub async fn run_supervisor(
    State(state): State<AppState>,
    Authenticated(identity): Authenticated,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    start(state, identity.principal, AgentKind::Supervisor, body).await
}

/// `POST /api/agui/{agent_type}`: a run of the named agent (canonical name or alias).
pub async fn run_agent(
    State(state): State<AppState>,
    Authenticated(identity): Authenticated,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let Path(agent_type) = path?;
    let agent = AgentKind::from_name(&agent_type).ok_or_else(|| {
        AppError::AgentNotFound(format!(
            "no agent is called `{}`; POST /api/agui/{{agent}} with one of {} (or an alias from GET /api/agents)",
            agent_type.chars().take(64).collect::<String>(),
            AgentKind::ALL.map(AgentKind::as_str).join(", ")
        ))
    })?;
    start(state, identity.principal, agent, body).await
}

async fn start(
    state: AppState,
    principal: Principal,
    agent: AgentKind,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let received_at = Instant::now();
    let held = admit_stream(&state, &principal)?;
    let body = body.map_err(|rejection| body_refused(&state, &rejection))?;
    let max_question = state.config.max_user_request_bytes;
    let input = if body.len() > PARSE_INLINE_BYTES {
        tokio::task::spawn_blocking(move || read_input(&body, max_question))
            .await
            .map_err(|err| AppError::internal(format!("parsing an AG-UI body panicked: {err}")))?
    } else {
        read_input(&body, max_question)
    }
    .map_err(AppError::BadRequest)?;
    let started = state
        .engine
        .start_run(
            &principal,
            StartRun {
                id: None,
                agent,
                user_request: input.question,
                thread_id: Some(input.thread_id),
                params: input.params,
            },
        )
        .await?;
    tracing::info!(
        run_id = %started.run_id,
        thread_id = %started.thread_id,
        agent = started.agent.as_str(),
        user_id = %principal.user_id,
        client_run_id = %input.client_run_id.chars().take(128).collect::<String>(),
        "AG-UI run started"
    );
    Ok(sse::response(
        started.run_id,
        started.events,
        StreamSettings {
            after: None,
            keep_alive: KEEP_ALIVE,
            metrics: state.metrics.clone(),
            received_at: Some(received_at),
            held,
        },
    ))
}

fn read_input(body: &[u8], max_question: usize) -> Result<super::input::AguiInput, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(
            "the body is empty; send a RunAgentInput (threadId, runId, messages, ...) as JSON"
                .into(),
        );
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|err| format!("the body is not valid JSON: {err}"))?;
    parse_input(value, max_question)
}

/// `GET /api/agui/runs/{run_id}/events`: the run's AG-UI events after `Last-Event-ID`, then live.
pub async fn resume(
    State(state): State<AppState>,
    Authenticated(identity): Authenticated,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Path(run_id) = path?;
    let after = last_event_id(&headers)?;
    let held = admit_stream(&state, &identity.principal)?;
    // From the first event: what was open at the resume point decides what comes after it.
    let events = state.engine.follow(&identity.principal, &run_id, 0).await?;
    Ok(sse::response(
        run_id,
        events,
        StreamSettings {
            after,
            keep_alive: KEEP_ALIVE,
            metrics: state.metrics.clone(),
            received_at: None,
            held,
        },
    ))
}

/// `POST /api/agui/runs/{run_id}/cancel`: stops the run; its stream tells how it ended.
pub async fn cancel(
    State(state): State<AppState>,
    Authenticated(identity): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let Path(run_id) = path?;
    let principal = &identity.principal;
    state
        .limiter
        .take_user_message(principal, Instant::now())
        .map_err(|limited| rate_limited(&limited))?;
    state.engine.cancel(principal, &run_id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id }))).into_response())
}

/// The `Last-Event-ID` header, if any. Empty is the same as absent (a fresh `EventSource`).
fn last_event_id(headers: &HeaderMap) -> Result<Option<EventId>, AppError> {
    let Some(value) = headers.get(LAST_EVENT_ID) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| AppError::BadRequest(sse::BadEventId.to_string()))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|err: sse::BadEventId| AppError::BadRequest(err.to_string()))
}

/// A stream is held to the socket's limits: it takes a place among the server's connections and
/// the user's, and a message from the user's rate bucket. The places are kept until it ends.
fn admit_stream(state: &AppState, principal: &Principal) -> Result<Held, AppError> {
    let now = Instant::now();
    let connection = state
        .limiter
        .open()
        .map_err(|err| connection_refused(&err, ErrorCode::Unavailable))?;
    let user = state
        .limiter
        .join(principal, now)
        .map_err(|err| connection_refused(&err, ErrorCode::RateLimited))?;
    user.try_take(now)
        .map_err(|limited| rate_limited(&limited))?;
    Ok(Box::new((connection, user)))
}

fn connection_refused(err: &LimitError, code: ErrorCode) -> AppError {
    AppError::Limited {
        code,
        message: format!("{err} (an open AG-UI stream counts as a connection)"),
        retry_after_ms: err.retry_after_ms(),
    }
}

fn rate_limited(limited: &RateLimited) -> AppError {
    AppError::Limited {
        code: ErrorCode::RateLimited,
        message: format!(
            "too many requests: you may make {} per second over your connections and AG-UI requests together; retry after retry_after_ms",
            limited.per_second
        ),
        retry_after_ms: limited.retry_after_ms(),
    }
}

fn body_refused(state: &AppState, rejection: &BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::PayloadTooLarge {
            limit: state.config.max_body_bytes,
        }
    } else {
        AppError::BadRequest(format!(
            "the body could not be read: {}",
            rejection.body_text()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_last_event_id(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LAST_EVENT_ID, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn last_event_id_is_optional_and_must_be_an_id() {
        assert_eq!(last_event_id(&HeaderMap::new()).unwrap(), None);
        assert_eq!(last_event_id(&with_last_event_id("")).unwrap(), None);
        assert_eq!(
            last_event_id(&with_last_event_id("12.3")).unwrap(),
            Some(EventId { seq: 12, sub: 3 })
        );
        assert!(matches!(
            last_event_id(&with_last_event_id("abc")),
            Err(AppError::BadRequest(message)) if message.contains("Last-Event-ID")
        ));
    }

    #[test]
    fn bodies_are_read_or_refused_with_a_reason() {
        assert!(read_input(b"  ", 100).unwrap_err().contains("empty"));
        assert!(
            read_input(b"{nope", 100)
                .unwrap_err()
                .contains("not valid JSON")
        );
        let ok =
            br#"{"threadId":"t","runId":"r","messages":[{"id":"m","role":"user","content":"q"}]}"#;
        assert_eq!(read_input(ok, 100).unwrap().question, "q");
    }
}
