//! The fake's AG-UI endpoints: `POST /api/agui[/{agent}]` answers one canned run as Server-Sent
//! Events (ids `seq` / `seq.n`, as the contract's deployments write them), resume by
//! `Last-Event-ID` sends the same bytes, cancel answers 202, and the refusals are the contract's.
//! The AG-UI flaws of [`Flaw`] each break one rule; [`Flaw::NoAgui`] leaves the endpoints out.

use super::{Flaw, authorized, refuse};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One run's events as `(id, data)`.
type Events = Vec<(String, Value)>;

struct AguiState {
    flaw: Flaw,
    /// run id -> (owner, its events).
    runs: Mutex<HashMap<String, (String, Events)>>,
    next: AtomicU64,
}

/// The AG-UI routes, or none with [`Flaw::NoAgui`].
pub fn router(flaw: Flaw) -> Router {
    if flaw == Flaw::NoAgui {
        return Router::new();
    }
    let state = Arc::new(AguiState {
        flaw,
        runs: Mutex::new(HashMap::new()),
        next: AtomicU64::new(1),
    });
    Router::new()
        .route("/api/agui", post(run_supervisor))
        .route("/api/agui/{agent}", post(run_agent))
        .route("/api/agui/runs/{run_id}/events", get(resume))
        .route("/api/agui/runs/{run_id}/cancel", post(cancel))
        .with_state(state)
}

/// One run's events: a step, a tool call with its result, the answer, the end.
fn canned(thread_id: &str, run_id: &str, flaw: Flaw) -> Events {
    let tool = format!("{run_id}:call_1");
    let answer = format!("{run_id}:answer");
    let mut events = vec![
        (
            "1",
            json!({"type": "RUN_STARTED", "threadId": thread_id, "runId": run_id}),
        ),
        ("1.1", json!({"type": "STEP_STARTED", "stepName": "data"})),
        (
            "2",
            json!({"type": "TOOL_CALL_START", "toolCallId": tool, "toolCallName": "usage_summary"}),
        ),
        (
            "2.1",
            json!({"type": "TOOL_CALL_ARGS", "toolCallId": tool, "delta": "{\"days\":30}"}),
        ),
        ("2.2", json!({"type": "TOOL_CALL_END", "toolCallId": tool})),
        (
            "3",
            json!({"type": "TOOL_CALL_RESULT", "toolCallId": tool, "messageId": format!("{tool}:result"),
                      "content": "$1,234 over 30 days", "role": "tool"}),
        ),
        (
            "4",
            json!({"type": "TEXT_MESSAGE_START", "messageId": answer, "role": "assistant"}),
        ),
        (
            "4.1",
            json!({"type": "TEXT_MESSAGE_CONTENT", "messageId": answer, "delta": "You spent $1,234."}),
        ),
        (
            "4.2",
            json!({"type": "TEXT_MESSAGE_END", "messageId": answer}),
        ),
        ("4.3", json!({"type": "STEP_FINISHED", "stepName": "data"})),
        (
            "4.4",
            json!({"type": "RUN_FINISHED", "threadId": thread_id, "runId": run_id,
                        "result": {"summary": {"total_cost_usd": 1234.0}}}),
        ),
    ];
    if flaw == Flaw::AguiStepLeftOpen {
        events.retain(|(_, e)| e["type"] != "STEP_FINISHED");
    }
    events
        .into_iter()
        .map(|(id, e)| (id.to_owned(), e))
        .collect()
}

fn sse(events: &[(String, Value)], spaced: bool) -> Response {
    let mut body = String::new();
    for (id, data) in events {
        let data = if spaced {
            serde_json::to_string_pretty(data)
                .unwrap()
                .replace('\n', " ")
        } else {
            data.to_string()
        };
        body.push_str(&format!("id: {id}\ndata: {data}\n\n"));
    }
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn not_found() -> Response {
    refuse(
        StatusCode::NOT_FOUND,
        "RUN_NOT_FOUND",
        "no such run for this user",
    )
}

async fn run_supervisor(
    State(state): State<Arc<AguiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    start(&state, &headers, &body)
}

async fn run_agent(
    State(state): State<Arc<AguiState>>,
    Path(agent): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = authorized(&headers) {
        return *refusal;
    }
    if !["supervisor", "data", "optimization"].contains(&agent.as_str()) {
        return refuse(StatusCode::NOT_FOUND, "AGENT_NOT_FOUND", "no such agent");
    }
    start(&state, &headers, &body)
}

fn start(state: &AguiState, headers: &HeaderMap, body: &[u8]) -> Response {
    let claims = match authorized(headers) {
        Ok(claims) => claims,
        Err(refusal) => return *refusal,
    };
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let has_question = input["messages"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["role"] == "user"));
    let (Some(thread_id), true, true) = (
        input["threadId"].as_str(),
        input["runId"].is_string(),
        has_question,
    ) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "INVALID_MESSAGE",
            "not a RunAgentInput",
        );
    };
    let run_id = format!("agui_run_{}", state.next.fetch_add(1, Ordering::Relaxed));
    let events = canned(thread_id, &run_id, state.flaw);
    let response = sse(&events, false);
    state
        .runs
        .lock()
        .unwrap()
        .insert(run_id, (claims.sub, events));
    response
}

async fn resume(
    State(state): State<Arc<AguiState>>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let claims = match authorized(&headers) {
        Ok(claims) => claims,
        Err(refusal) => return *refusal,
    };
    let Some((owner, events)) = state.runs.lock().unwrap().get(&run_id).cloned() else {
        return not_found();
    };
    if owner != claims.sub {
        return foreign(state.flaw);
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(agentwire_check::agui::parse_event_id);
    let rest: Vec<_> = events
        .into_iter()
        .filter(|(id, _)| {
            after.is_none_or(|after| agentwire_check::agui::parse_event_id(id).unwrap() > after)
        })
        .collect();
    sse(&rest, state.flaw == Flaw::AguiResumeRewritten)
}

async fn cancel(
    State(state): State<Arc<AguiState>>,
    Path(run_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let claims = match authorized(&headers) {
        Ok(claims) => claims,
        Err(refusal) => return *refusal,
    };
    match state.runs.lock().unwrap().get(&run_id) {
        Some((owner, _)) if *owner == claims.sub => {
            (StatusCode::ACCEPTED, Json(json!({"run_id": run_id}))).into_response()
        }
        Some(_) => foreign(state.flaw),
        None => not_found(),
    }
}

/// Another user's run: like one that does not exist, unless the flaw tells them it exists.
fn foreign(flaw: Flaw) -> Response {
    if flaw == Flaw::AguiRunOracle {
        refuse(StatusCode::FORBIDDEN, "FORBIDDEN", "this run is not yours")
    } else {
        not_found()
    }
}
