//! What an agent holds while it works: the run's plan and scope, the findings the agents of one run
//! share, and the run's event emitter, tool calls and handoffs.
//!
//! Every event goes through [`RunContext::emit`], which persists it before publishing it, so the
//! log a client resumes from is always complete. Nothing here is interrupted mid-write: a cancel or
//! a time limit is noticed at the next step (`pace`, a tool call), never by dropping a future that
//! is writing to the store, which would leave a gap in `seq`. This module must not decide what an
//! agent does or how a run ends: the agents and the driver do.

use crate::findings::Findings;
use crate::plan::RunPlan;
use crate::report::ComposedReport;
use crate::run::{RunShared, StopReason};
use crate::scope::Scope;
use crate::stop::{RunResult, Stop};
use crate::tenant::TenantData;
use crate::tools::ToolOutput;
use agentwire_protocol::{ErrorCode, EventKind, RunEvent, RunParams, ServerFrame, ToolStatus};
use agentwire_store::{EndRun, NewEvent, RunStatus, Store, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a person is told when a run stops because the database cannot be reached.
pub(crate) const DATABASE_LOST: &str = "the server lost its database connection, so the run stopped; start the request again in a moment";

/// The request a run was started with.
#[derive(Debug, Clone)]
pub(crate) struct RunInput {
    pub user_request: String,
    pub params: RunParams,
}

pub(crate) struct RunContext {
    pub run: Arc<RunShared>,
    store: Arc<dyn Store>,
    next_seq: u64,
    next_tool_call: u64,
    /// Tool calls started and not yet completed: closed with an error result if the run stops.
    open_tools: Vec<OpenTool>,
    pub data: Arc<TenantData>,
    pub input: RunInput,
    /// Decided before `agent_started`; the agents follow it.
    pub plan: RunPlan,
    /// The slice of the data the run looks at; triage may narrow it to a team the request names.
    pub scope: Scope,
    pub findings: Findings,
    /// The reporting agent's answer, once it has composed one.
    pub answer: Option<ComposedReport>,
    step_delay: Duration,
    /// Set once a write found the database unreachable: nothing more is written, and the end is
    /// recorded by the node's orphan check once the database is back.
    log_lost: bool,
}

#[derive(Debug)]
struct OpenTool {
    agent: String,
    tool: String,
    tool_call_id: String,
    started: Instant,
}

impl RunContext {
    pub fn new(
        run: Arc<RunShared>,
        store: Arc<dyn Store>,
        data: Arc<TenantData>,
        input: RunInput,
        plan: RunPlan,
        step_delay: Duration,
    ) -> Self {
        let scope = Scope::of_request(&input.params, &plan.question);
        Self {
            run,
            store,
            next_seq: 1,
            next_tool_call: 1,
            open_tools: Vec::new(),
            data,
            input,
            plan,
            scope,
            findings: Findings::default(),
            answer: None,
            step_delay,
            log_lost: false,
        }
    }

    /// Persists one event, then publishes it to the run's followers.
    ///
    /// # Errors
    /// `Stop::Failed` with `INTERNAL` when the store refuses the write; the event is not published.
    pub async fn emit(&mut self, agent: &str, kind: EventKind) -> RunResult {
        let event = self.next_event(agent, kind);
        let type_name = event.kind.type_name();
        let frame = ServerFrame::Event(event);
        let payload = frame.to_json();
        if let Err(err) = self
            .store
            .append_event(&self.run.run_id, self.next_seq, type_name, &payload)
            .await
        {
            return Err(self.write_failed(err));
        }
        self.next_seq += 1;
        if let ServerFrame::Event(event) = frame {
            self.run.publish(event);
        }
        Ok(())
    }

    /// How the run stops when its log cannot be written: another node ended it (stop without
    /// writing, followers read the log), the database is unreachable (stop without writing,
    /// retryable), or the store refused the write.
    fn write_failed(&mut self, err: StoreError) -> Stop {
        match err {
            StoreError::RunFinished { .. } => {
                tracing::warn!(run_id = %self.run.run_id, "the run was ended by another node; this node stops it without writing");
                self.run.stop(StopReason::TakenOver);
                Stop::Cancelled
            }
            StoreError::Unavailable(_) => {
                tracing::error!(run_id = %self.run.run_id, seq = self.next_seq, error = %err, "the database is unreachable; the run stops");
                self.log_lost = true;
                Stop::failed(ErrorCode::Unavailable, DATABASE_LOST)
            }
            err => {
                // The database's words stay in the log; the client gets the id to quote.
                let correlation = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(run_id = %self.run.run_id, seq = self.next_seq, %correlation, error = %err, "persisting a run event failed");
                Stop::failed(
                    ErrorCode::Internal,
                    format!(
                        "the event log could not be written; the server log has the details under correlation id {correlation}"
                    ),
                )
            }
        }
    }

    /// The run's next event, stamped now.
    fn next_event(&self, agent: &str, kind: EventKind) -> RunEvent {
        RunEvent {
            run_id: self.run.run_id.clone(),
            thread_id: self.run.thread_id.clone(),
            seq: self.next_seq,
            agent: agent.to_owned(),
            timestamp: agentwire_protocol::time::now(),
            kind,
        }
    }

    /// Ends the run: persists the terminal event and the run's final `status` together, and only
    /// then publishes the event, so a client that sees the terminal event and reads the run's
    /// history finds it finished. Returns whether the end is recorded; when it is not, the node's
    /// orphan check records it later.
    ///
    /// Unless the run was taken over by another node (then nothing is written or published here:
    /// the followers read the other node's terminal event from the log), a terminal event is
    /// always published, so no follower waits forever: when the store cannot take it, a
    /// retryable error (`UNAVAILABLE` when the database is unreachable, else `INTERNAL`) that is
    /// not in the log.
    pub async fn emit_terminal(&mut self, agent: &str, kind: EventKind, status: RunStatus) -> bool {
        if self.run.stop_reason() == Some(StopReason::Unreachable) {
            self.log_lost = true;
        }
        if !self.log_lost && self.run.stop_reason() != Some(StopReason::TakenOver) {
            self.close_open_tools().await;
        }
        if self.run.stop_reason() == Some(StopReason::TakenOver) {
            self.run.hand_over();
            return true;
        }
        let event = self.next_event(agent, kind);
        if self.log_lost {
            return self.publish_unrecorded(agent, event, ErrorCode::Unavailable);
        }
        let terminal = NewEvent {
            seq: self.next_seq,
            event_type: event.kind.type_name().to_owned(),
            payload: ServerFrame::Event(event.clone()).to_json(),
        };
        let ended = self
            .store
            .end_run(
                &self.run.run_id,
                self.next_seq - 1,
                std::slice::from_ref(&terminal),
                status,
                agentwire_protocol::time::now(),
            )
            .await;
        match ended {
            Ok(EndRun::Ended) => {
                self.next_seq += 1;
                self.run.publish(event);
                true
            }
            Ok(EndRun::AlreadyFinished { .. } | EndRun::Moved { .. }) => {
                tracing::warn!(run_id = %self.run.run_id, "the run was ended by another node; this node hands it over");
                self.run.stop(StopReason::TakenOver);
                self.run.hand_over();
                true
            }
            Err(err) => {
                tracing::error!(run_id = %self.run.run_id, error = %err, "persisting the terminal event failed");
                let code = if matches!(err, StoreError::Unavailable(_)) {
                    ErrorCode::Unavailable
                } else {
                    ErrorCode::Internal
                };
                self.publish_unrecorded(agent, event, code)
            }
        }
    }

    /// Publishes a terminal event that is not in the log: `event` itself when it already says
    /// the database is unreachable, else a retryable error with `code`. Always false (the end
    /// is not recorded).
    fn publish_unrecorded(&mut self, agent: &str, event: RunEvent, code: ErrorCode) -> bool {
        let event = match &event.kind {
            EventKind::AgentError { error_code, .. } if *error_code == code => event,
            _ => self.next_event(
                agent,
                EventKind::AgentError {
                    error_code: code,
                    message: if code == ErrorCode::Unavailable {
                        DATABASE_LOST.into()
                    } else {
                        "the event log could not be written; the run was stopped".into()
                    },
                    retryable: true,
                },
            ),
        };
        self.next_seq += 1;
        self.run.publish(event);
        false
    }

    /// Ends every open tool call with an error result, so the run's grammar stays whole.
    async fn close_open_tools(&mut self) {
        let reason = match self.run.stop_reason() {
            Some(StopReason::User) => "cancelled before the tool finished",
            Some(StopReason::Timeout) => {
                "the run's time limit was reached before the tool finished"
            }
            Some(StopReason::Shutdown) => "the server shut down before the tool finished",
            Some(StopReason::TakenOver | StopReason::Unreachable) | None => {
                "the run stopped before the tool finished"
            }
        };
        for open in std::mem::take(&mut self.open_tools) {
            let kind = EventKind::ToolCompleted {
                tool: open.tool,
                tool_call_id: open.tool_call_id,
                status: ToolStatus::Error,
                result: reason.to_owned(),
                data: Value::Null,
                duration_ms: elapsed_ms(open.started),
            };
            if self.emit(&open.agent, kind).await.is_err() {
                return;
            }
        }
    }

    /// Fails fast once the run has been told to stop.
    pub fn checkpoint(&self) -> RunResult {
        if self.run.cancel.is_cancelled() {
            Err(Stop::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Waits the configured step delay (so a person can watch), or returns early on cancel.
    pub async fn pace(&self) -> RunResult {
        self.checkpoint()?;
        if !self.step_delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(self.step_delay) => {}
                _ = self.run.cancel.cancelled() => return Err(Stop::Cancelled),
            }
        }
        Ok(())
    }

    /// One reasoning step, stated in plain language with what was found.
    pub async fn thinking(&mut self, agent: &str, message: impl Into<String>) -> RunResult {
        self.pace().await?;
        self.emit(
            agent,
            EventKind::AgentThinking {
                message: message.into(),
            },
        )
        .await
    }

    /// Runs a tool over the tenant's data off the async runtime, emitting the tool pair.
    ///
    /// A cancel while the tool computes stops the wait at once; the computation is pure and is
    /// simply discarded. A tool error ends the run with the tool's code.
    pub async fn tool<T, F>(
        &mut self,
        agent: &str,
        tool: &str,
        args: Value,
        compute: F,
    ) -> RunResult<T>
    where
        T: Serialize + Send + 'static,
        F: FnOnce(&TenantData) -> RunResult<ToolOutput<T>> + Send + 'static,
    {
        self.pace().await?;
        let tool_call_id = format!("call_{}", self.next_tool_call);
        self.next_tool_call += 1;
        self.emit(
            agent,
            EventKind::ToolExecuting {
                tool: tool.to_owned(),
                tool_call_id: tool_call_id.clone(),
                args,
            },
        )
        .await?;
        let started = Instant::now();
        self.open_tools.push(OpenTool {
            agent: agent.to_owned(),
            tool: tool.to_owned(),
            tool_call_id: tool_call_id.clone(),
            started,
        });
        let data = self.data.clone();
        let handle = tokio::task::spawn_blocking(move || compute(&data));
        let outcome = tokio::select! {
            joined = handle => joined,
            _ = self.run.cancel.cancelled() => return Err(Stop::Cancelled),
        };
        self.open_tools
            .retain(|open| open.tool_call_id != tool_call_id);
        let completed = |status, result: String, data: Value| EventKind::ToolCompleted {
            tool: tool.to_owned(),
            tool_call_id: tool_call_id.clone(),
            status,
            result,
            data,
            duration_ms: elapsed_ms(started),
        };
        match outcome {
            Ok(Ok(output)) => {
                let data = serde_json::to_value(&output.value).unwrap_or(Value::Null);
                self.emit(agent, completed(ToolStatus::Ok, output.summary, data))
                    .await?;
                self.findings.tools_used.push(tool.to_owned());
                Ok(output.value)
            }
            Ok(Err(stop)) => {
                self.emit(
                    agent,
                    completed(ToolStatus::Error, stop.message(), Value::Null),
                )
                .await?;
                Err(stop)
            }
            Err(join_error) => {
                let correlation = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(%correlation, tool, error = %join_error, "tool panicked");
                let message =
                    format!("the tool {tool} failed unexpectedly (correlation id {correlation})");
                self.emit(
                    agent,
                    completed(ToolStatus::Error, message.clone(), Value::Null),
                )
                .await?;
                Err(Stop::failed(ErrorCode::Internal, message))
            }
        }
    }

    /// Records that `from` passes the work to `to`, and that `to` starts as a sub-agent.
    pub async fn handoff(&mut self, from: &str, to: &str, reason: impl Into<String>) -> RunResult {
        self.pace().await?;
        self.emit(
            from,
            EventKind::AgentHandoff {
                from_agent: from.to_owned(),
                to_agent: to.to_owned(),
                reason: reason.into(),
            },
        )
        .await?;
        self.emit(
            to,
            EventKind::SubagentStarted {
                parent_agent: from.to_owned(),
            },
        )
        .await
    }

    /// Records that the sub-agent `agent` finished and returned to `parent`.
    pub async fn subagent_done(
        &mut self,
        agent: &str,
        parent: &str,
        summary: impl Into<String>,
    ) -> RunResult {
        self.emit(
            agent,
            EventKind::SubagentCompleted {
                parent_agent: parent.to_owned(),
                summary: summary.into(),
            },
        )
        .await
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
