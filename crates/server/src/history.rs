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

use crate::AppState;
use crate::error::AppError;
use crate::http::{Authenticated, query_param};
use agentwire_engine::RunHistory;
use agentwire_protocol::ServerFrame;
use agentwire_protocol::time::format as format_time;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};

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
) -> Result<Json<Value>, AppError> {
    let Path(thread_id) = path?;
    let history = state
        .engine
        .thread_history(&identity.principal, &thread_id)
        .await?;
    if history.is_empty() {
        return Err(AppError::NotFound(
            "no thread with that id was found for this user; GET /api/threads lists yours".into(),
        ));
    }
    let runs: Vec<Value> = history.into_iter().map(run_json).collect();
    Ok(Json(json!({ "thread_id": thread_id, "runs": runs })))
}

fn run_json(history: RunHistory) -> Value {
    let RunHistory { run, events } = history;
    json!({
        "run_id": run.run_id,
        "agent": run.agent,
        "user_request": run.user_request,
        "status": run.status.as_str(),
        "created_at": format_time(&run.created_at),
        "finished_at": run.finished_at.as_ref().map(format_time),
        "last_seq": events.last().map_or(0, |event| event.seq),
        "events": events.into_iter().map(ServerFrame::Event).collect::<Vec<_>>(),
    })
}

/// `GET /api/runs/{run_id}/events?after_seq=N`: the run's persisted events, owner only.
pub async fn run_events(
    State(state): State<AppState>,
    Authenticated(identity): Authenticated,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ServerFrame>>, AppError> {
    let Path(run_id) = path?;
    let after_seq = match query_param(query.as_deref(), "after_seq") {
        None | Some("") => 0,
        Some(text) => text.parse::<u64>().map_err(|_| {
            AppError::BadRequest(
                "`after_seq` must be a whole number >= 0 (the last seq you saw)".into(),
            )
        })?,
    };
    let events = state
        .engine
        .run_events(&identity.principal, &run_id, after_seq)
        .await?;
    Ok(Json(events.into_iter().map(ServerFrame::Event).collect()))
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
