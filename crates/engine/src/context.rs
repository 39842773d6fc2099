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
use agentwire_store::{RunStatus, Store};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
            // The database's words stay in the log; the client gets the id to quote.
            let correlation = uuid::Uuid::new_v4().simple().to_string();
            tracing::error!(run_id = %self.run.run_id, seq = self.next_seq, %correlation, error = %err, "persisting a run event failed");
            return Err(Stop::failed(
                ErrorCode::Internal,
                format!(
                    "the event log could not be written; the server log has the details under correlation id {correlation}"
                ),
            ));
        }
        self.next_seq += 1;
        if let ServerFrame::Event(event) = frame {
            self.run.publish(event);
        }
        Ok(())
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

    /// Ends the run: persists the terminal event, records the run's final `status`, and only then
    /// publishes the event, so a client that sees the terminal event and reads the run's history
    /// finds it finished. A crash between the two writes leaves the run "in flight" with its
    /// terminal event persisted; startup recovery mends the status. If the store cannot take the
    /// event, an `INTERNAL` error is published anyway, so no follower waits forever.
    pub async fn emit_terminal(&mut self, agent: &str, kind: EventKind, status: RunStatus) {
        self.close_open_tools().await;
        let event = self.next_event(agent, kind);
        let type_name = event.kind.type_name();
        let frame = ServerFrame::Event(event);
        let persisted = self
            .store
            .append_event(&self.run.run_id, self.next_seq, type_name, &frame.to_json())
            .await;
        let event = match (persisted, frame) {
            (Ok(()), ServerFrame::Event(event)) => {
                let finished = Some(agentwire_protocol::time::now());
                if let Err(err) = self
                    .store
                    .set_run_status(&self.run.run_id, status, finished)
                    .await
                {
                    tracing::error!(run_id = %self.run.run_id, error = %err, "recording the run's final status failed");
                }
                event
            }
            (persisted, _) => {
                if let Err(err) = persisted {
                    tracing::error!(run_id = %self.run.run_id, error = %err, "persisting the terminal event failed");
                }
                self.next_event(
                    agent,
                    EventKind::AgentError {
                        error_code: ErrorCode::Internal,
                        message: "the event log could not be written; the run was stopped".into(),
                        retryable: true,
                    },
                )
            }
        };
        self.next_seq += 1;
        self.run.publish(event);
    }

    /// Ends every open tool call with an error result, so the run's grammar stays whole.
    async fn close_open_tools(&mut self) {
        let reason = match self.run.stop_reason() {
            Some(StopReason::User) => "cancelled before the tool finished",
            Some(StopReason::Timeout) => {
                "the run's time limit was reached before the tool finished"
            }
            Some(StopReason::Shutdown) => "the server shut down before the tool finished",
            None => "the run stopped before the tool finished",
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
