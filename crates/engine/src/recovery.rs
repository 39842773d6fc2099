//! Ending runs whose executor is gone, so that their logs keep the run grammar when replayed.
//!
//! Such a run gets `agent_error` `INTERRUPTED` (retryable) after its last persisted event,
//! preceded by a `tool_completed` of status `error` for any tool call left open, all written
//! with the terminal status in one transaction ([`Store::end_run`]), which writes nothing if the
//! run moved on or finished meanwhile. Three callers: startup on SQLite (every run in flight was
//! left by a previous process: [`recover_interrupted`]), the sweeper (runs of a node whose lease
//! lapsed) and a node's own orphan check (runs whose end it could not record while the database
//! was away), the last two in `cluster.rs`. This module must not decide which runs are gone:
//! its callers do. Also undoes usage uploads a dead process left half written
//! ([`sweep_usage_uploads`]).

use crate::error::EngineError;
use agentwire_protocol::{ErrorCode, EventKind, RunEvent, ServerFrame};
use agentwire_store::{
    Backend, EndRun, NewEvent, RunRecord, RunStatus, Store, StoredEvent,
    USAGE_UPLOAD_ABANDONED_AFTER,
};

/// Why a run is ended, in words for the person who started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gone {
    /// The process (or node) executing the run stopped.
    Stopped,
    /// This node lost the database while the run was going and could not record its end.
    DatabaseLost,
}

impl Gone {
    fn message(self) -> &'static str {
        match self {
            Gone::Stopped => "the server stopped while this run was going; start the request again",
            Gone::DatabaseLost => {
                "the server lost its database while this run was going; start the request again"
            }
        }
    }

    fn tool_result(self) -> &'static str {
        match self {
            Gone::Stopped => "the server stopped before the tool finished",
            Gone::DatabaseLost => "the server lost its database before the tool finished",
        }
    }
}

/// How often [`end_interrupted`] re-reads a run that keeps moving before it gives up (a run
/// that moves is not gone; the caller looks again later).
const MAX_ATTEMPTS: usize = 3;

/// Ends every run left in flight on a database this process owns alone (SQLite, at startup);
/// returns how many there were.
///
/// # Errors
/// `Store` when the runs cannot be read or updated.
pub(crate) async fn recover_interrupted(store: &dyn Store) -> Result<usize, EngineError> {
    let runs = store.runs_in_flight().await?;
    for run in &runs {
        end_interrupted(store, run, Gone::Stopped).await?;
    }
    if !runs.is_empty() {
        tracing::warn!(
            runs = runs.len(),
            "runs left in flight by a previous process were ended INTERRUPTED"
        );
    }
    Ok(runs.len())
}

/// Undoes the usage uploads a dead process left half written (their rows were never visible):
/// those idle for [`USAGE_UPLOAD_ABANDONED_AFTER`]; and `at_startup` on SQLite, which this
/// process owns alone and where it has started none yet, every open one.
///
/// # Errors
/// `Store` when the uploads cannot be read or deleted.
pub(crate) async fn sweep_usage_uploads(
    store: &dyn Store,
    at_startup: bool,
) -> Result<u64, EngineError> {
    let idle_for = if at_startup && store.backend() == Backend::Sqlite {
        std::time::Duration::ZERO
    } else {
        USAGE_UPLOAD_ABANDONED_AFTER
    };
    let swept = store.sweep_usage_uploads(idle_for).await?;
    if swept > 0 {
        tracing::warn!(
            uploads = swept,
            "usage uploads left unfinished by a previous process were undone"
        );
    }
    Ok(swept)
}

/// Ends one run whose executor is gone. True when this call ended it; false when it had
/// finished already (or kept moving: then it is not gone).
///
/// # Errors
/// `Store` when the log cannot be read or written.
pub(crate) async fn end_interrupted(
    store: &dyn Store,
    run: &RunRecord,
    gone: Gone,
) -> Result<bool, EngineError> {
    let mut last_seq = run.last_seq;
    for _ in 0..MAX_ATTEMPTS {
        let logged = LogTail::read(store, &run.run_id).await?;
        // A crash between persisting the terminal event and recording the status (possible
        // with builds that wrote them apart, or a status update that failed after the
        // terminal event was written) leaves a finished run marked in flight: only its status
        // needs mending.
        if let Some(last) = &logged.last
            && let Some(status) = terminal_status(&last.payload)
        {
            store
                .set_run_status(&run.run_id, status, Some(agentwire_protocol::time::now()))
                .await?;
            return Ok(true);
        }
        let after_seq = logged
            .last
            .as_ref()
            .map_or(last_seq, |e| e.seq.max(last_seq));
        let events = closing_events(run, logged.open, after_seq, gone);
        match store
            .end_run(
                &run.run_id,
                after_seq,
                events,
                RunStatus::Failed,
                agentwire_protocol::time::now(),
            )
            .await?
        {
            EndRun::Ended => return Ok(true),
            EndRun::AlreadyFinished { .. } => return Ok(false),
            EndRun::Moved { last_seq: now } => last_seq = now,
        }
    }
    Ok(false)
}

/// The events that end the run after `after_seq`: a `tool_completed` of status `error` for each
/// open tool call (by the agent that opened it, so the grammar stays whole: every
/// `tool_executing` has its `tool_completed` before the terminal event), then `agent_error`.
fn closing_events(
    run: &RunRecord,
    open: Vec<OpenCall>,
    after_seq: u64,
    gone: Gone,
) -> Vec<NewEvent> {
    let mut closing: Vec<(String, EventKind)> = open
        .into_iter()
        .map(|(agent, tool, tool_call_id)| {
            let kind = EventKind::ToolCompleted {
                tool,
                tool_call_id,
                status: agentwire_protocol::ToolStatus::Error,
                result: gone.tool_result().into(),
                data: agentwire_protocol::ToolData::null(),
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
            message: gone.message().into(),
            retryable: true,
        },
    ));
    closing
        .into_iter()
        .zip(after_seq + 1..)
        .map(|((agent, kind), seq)| {
            let event_type = kind.type_name().to_owned();
            let frame = ServerFrame::Event(RunEvent {
                run_id: run.run_id.clone(),
                thread_id: run.thread_id.clone(),
                seq,
                agent,
                timestamp: agentwire_protocol::time::now(),
                kind,
            });
            NewEvent {
                seq,
                event_type,
                payload: frame.to_json().into(),
            }
        })
        .collect()
}

/// A tool call opened and not yet closed: (agent, tool, tool_call_id).
type OpenCall = (String, String, String);

/// What ending a run needs from its log: the last event and the tool calls left open. Read a
/// page at a time, so a long log is never held whole.
struct LogTail {
    last: Option<StoredEvent>,
    open: Vec<OpenCall>,
}

impl LogTail {
    async fn read(store: &dyn Store, run_id: &str) -> Result<LogTail, EngineError> {
        let page = crate::follow::DEFAULT_LOG_PAGE;
        let mut tail = LogTail {
            last: None,
            open: Vec::new(),
        };
        loop {
            let after = tail.last.as_ref().map_or(0, |e| e.seq);
            let events = store.events_after(run_id, after, page).await?;
            let full = events.len() >= page as usize;
            for stored in events {
                tail.track(&stored);
                tail.last = Some(stored);
            }
            if !full {
                return Ok(tail);
            }
        }
    }

    fn track(&mut self, stored: &StoredEvent) {
        let Ok(ServerFrame::Event(event)) = serde_json::from_str::<ServerFrame>(&stored.payload)
        else {
            return;
        };
        match event.kind {
            EventKind::ToolExecuting {
                tool, tool_call_id, ..
            } => self.open.push((event.agent, tool, tool_call_id)),
            EventKind::ToolCompleted { tool_call_id, .. } => {
                self.open.retain(|(_, _, id)| *id != tool_call_id);
            }
            _ => {}
        }
    }
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
