//! Startup recovery: ends the runs a previous process left without a terminal event (it crashed
//! or was killed), so that their logs keep the run grammar when replayed.
//!
//! Each such run gets `agent_error` `INTERRUPTED` (retryable) after its last persisted event,
//! preceded by a `tool_completed` of status `error` for any tool call the crash left open. This
//! module must only be used at startup, before serving, on a database no other node is using.

use crate::error::EngineError;
use agentwire_protocol::{ErrorCode, EventKind, RunEvent, ServerFrame};
use agentwire_store::{RunStatus, Store, StoredEvent};

/// Ends every run left in flight; returns how many there were.
///
/// # Errors
/// `Store` when the runs cannot be read or updated.
pub(crate) async fn recover_interrupted(store: &dyn Store) -> Result<usize, EngineError> {
    let runs = store.runs_in_flight().await?;
    for run in &runs {
        let logged = store.events_after(&run.run_id, 0).await?;
        // A crash between persisting the terminal event and recording the status leaves a
        // finished run marked in flight: only its status needs mending.
        if let Some(last) = logged.last()
            && let Some(status) = terminal_status(&last.payload)
        {
            store
                .set_run_status(&run.run_id, status, Some(agentwire_protocol::time::now()))
                .await?;
            continue;
        }
        // A kill while a tool computed leaves its call open; close it first, as a cancel
        // does, so the run's grammar stays whole (every tool_executing has its
        // tool_completed before the terminal event).
        let mut closing: Vec<(String, EventKind)> = open_tool_calls(&logged)
            .into_iter()
            .map(|(agent, tool, tool_call_id)| {
                let kind = EventKind::ToolCompleted {
                    tool,
                    tool_call_id,
                    status: agentwire_protocol::ToolStatus::Error,
                    result: "the server stopped before the tool finished".into(),
                    data: serde_json::Value::Null,
                    duration_ms: 0,
                    cached: false,
                };
                (agent, kind)
            })
            .collect();
        closing.push((
            run.agent.clone(),
            EventKind::AgentError {
                error_code: ErrorCode::Interrupted,
                message: "the server stopped while this run was going; start the request again"
                    .into(),
                retryable: true,
            },
        ));
        let mut seq = logged
            .last()
            .map_or(run.last_seq, |e| e.seq.max(run.last_seq));
        for (agent, kind) in closing {
            seq += 1;
            let event_type = kind.type_name();
            let frame = ServerFrame::Event(RunEvent {
                run_id: run.run_id.clone(),
                thread_id: run.thread_id.clone(),
                seq,
                agent,
                timestamp: agentwire_protocol::time::now(),
                kind,
            });
            store
                .append_event(&run.run_id, seq, event_type, &frame.to_json())
                .await?;
        }
        store
            .set_run_status(
                &run.run_id,
                RunStatus::Failed,
                Some(agentwire_protocol::time::now()),
            )
            .await?;
    }
    if !runs.is_empty() {
        tracing::warn!(
            runs = runs.len(),
            "marked runs left in flight by a previous process as interrupted"
        );
    }
    Ok(runs.len())
}

/// The tool calls a logged run opened and never closed: (agent, tool, tool_call_id), in order.
fn open_tool_calls(logged: &[StoredEvent]) -> Vec<(String, String, String)> {
    let mut open: Vec<(String, String, String)> = Vec::new();
    for stored in logged {
        let Ok(ServerFrame::Event(event)) = serde_json::from_str::<ServerFrame>(&stored.payload)
        else {
            continue;
        };
        match event.kind {
            EventKind::ToolExecuting {
                tool, tool_call_id, ..
            } => open.push((event.agent, tool, tool_call_id)),
            EventKind::ToolCompleted { tool_call_id, .. } => {
                open.retain(|(_, _, id)| *id != tool_call_id);
            }
            _ => {}
        }
    }
    open
}

/// The run status a persisted terminal event stands for, if the event is terminal.
fn terminal_status(payload: &str) -> Option<RunStatus> {
    match serde_json::from_str::<ServerFrame>(payload).ok()? {
        ServerFrame::Event(event) => match event.kind {
            EventKind::AgentCompleted { .. } => Some(RunStatus::Completed),
            EventKind::AgentCancelled { .. } => Some(RunStatus::Cancelled),
            EventKind::AgentError { .. } => Some(RunStatus::Failed),
            _ => None,
        },
        ServerFrame::Control(_) => None,
    }
}
