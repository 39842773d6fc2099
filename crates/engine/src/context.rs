//! What an agent holds while it works: the run's plan and scope, the findings the agents of one run
//! share, and the run's event emitter, tool calls and handoffs.
//!
//! Every event goes through [`RunContext::emit`], which hands it to the run's [`Emitter`]: it is
//! serialized once, persisted, and only then published, so the log a client resumes from is
//! always complete; a write the store refuses stops the run the way the cluster needs (see
//! `emitter.rs`). Nothing here is interrupted mid-write: a cancel or a time limit is noticed at
//! the next step (`pace`, a tool call), never by dropping a future that is writing to the store.
//!
//! Tools run on the engine's CPU pool, never on an async worker; results of the tools that are pure
//! functions of the tenant's data and their arguments are memoized (`memo.rs`) and the tool event
//! says `cached: true` when a run reused one. A cancelled run's tool stops its analysis (it watches
//! the run's cancel flag) and the run waits for that before it ends, so its end (and the freeing
//! of its run slot and analysis slot) comes only once its CPU work has really stopped. This module
//! must not decide what an agent does or how a run ends: the agents and the driver do.

use crate::emitter::{Emitter, Failure, Lane, WriteLanes};
use crate::findings::Findings;
use crate::memo::{Cached, Lookup, Memo, MemoKey, memoizable};
use crate::plan::RunPlan;
use crate::pool::CpuPool;
use crate::report::ComposedReport;
use crate::run::{RunShared, StopReason};
use crate::scope::Scope;
use crate::stop::{RunResult, Stop};
use crate::tenant::TenantData;
use crate::tools::ToolOutput;
use agentwire_analytics::{Cancel, Checkpoint};
use agentwire_protocol::{ErrorCode, EventKind, RunParams, ToolData, ToolStatus};
use agentwire_store::{RunStatus, Store};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request a run was started with.
#[derive(Debug, Clone)]
pub(crate) struct RunInput {
    pub user_request: String,
    pub params: RunParams,
}

/// What runs share to do their work: the CPU pool, the memoized tool results and the store's
/// write lanes. One per engine.
#[derive(Clone)]
pub(crate) struct Workshop {
    pub pool: Arc<CpuPool>,
    pub memo: Arc<Memo>,
    pub lanes: Arc<WriteLanes>,
}

pub(crate) struct RunContext {
    pub run: Arc<RunShared>,
    emitter: Emitter,
    workshop: Workshop,
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
        workshop: Workshop,
        data: Arc<TenantData>,
        input: RunInput,
        plan: RunPlan,
        step_delay: Duration,
    ) -> Self {
        let scope = Scope::of_request(&input.params, &plan.question);
        // The run's `agent_started` was stored with its admission and published
        // (`Engine::start_run`): its events go on from it.
        let mut emitter = Emitter::new(run.clone(), store, workshop.lanes.clone());
        emitter.after_first(input.user_request.clone());
        Self {
            emitter,
            run,
            workshop,
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

    /// Queues one event; it is persisted, then published to the run's followers.
    ///
    /// # Errors
    /// How the run stops when the store refused an earlier event of the run: `Stop::Cancelled`
    /// when another node ended it, `UNAVAILABLE` when the database is unreachable, else
    /// `INTERNAL` with a correlation id.
    pub async fn emit(&mut self, agent: &str, kind: EventKind) -> RunResult {
        self.emitter.emit(agent, kind, Lane::Ordinary)
    }

    /// Queues one of the run's early events (the wait for an analysis slot): it goes to the
    /// store ahead of other runs' events.
    pub fn emit_first(&mut self, agent: &str, kind: EventKind) -> RunResult {
        self.emitter.emit(agent, kind, Lane::First)
    }

    /// Ends the run with its terminal event, after closing any tool call left open (unless the
    /// run may write no more); see [`Emitter::finish`]. Returns whether the end is recorded;
    /// when it is not, the node's orphan check records it later.
    pub async fn emit_terminal(&mut self, agent: &str, kind: EventKind, status: RunStatus) -> bool {
        let may_write = !matches!(
            self.run.stop_reason(),
            Some(StopReason::TakenOver | StopReason::Unreachable)
        ) && !matches!(
            self.emitter.failure(),
            Some(Failure::TakenOver | Failure::LogLost)
        );
        if may_write {
            self.close_open_tools().await;
        }
        self.emitter.finish(agent, kind, status).await
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
                data: ToolData::null(),
                duration_ms: elapsed_ms(open.started),
                cached: false,
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

    /// Runs a tool over the tenant's data on the CPU pool, emitting the tool pair. A tool that
    /// is a pure function of the data ([`memoizable`]) is computed once per snapshot and
    /// arguments: a run that finds the result already computed (or being computed) uses it, and
    /// its `tool_completed` says `cached: true`.
    ///
    /// A cancel while the tool computes stops the computation: `compute` gets the run's cancel
    /// flag, which the analyses look at every few thousand records, and the run returns once the
    /// computation has stopped (at once if it had not started). A memoized computation given up
    /// this way wakes the runs waiting for the same result, and the next of them computes it. A
    /// tool error ends the run with the tool's code.
    pub async fn tool<T, F>(
        &mut self,
        agent: &str,
        tool: &str,
        args: Value,
        compute: F,
    ) -> RunResult<T>
    where
        T: Serialize + Clone + Send + Sync + 'static,
        F: FnOnce(&TenantData, &Cancel) -> RunResult<ToolOutput<T>> + Send + 'static,
    {
        self.pace().await?;
        let tool_call_id = format!("call_{}", self.next_tool_call);
        self.next_tool_call += 1;
        let key = memoizable(tool).then(|| {
            let (data_id, generation) = self.data.identity();
            // The scope goes into the key beside the arguments (a tool reads both), and the price
            // table the snapshot prices with.
            let inputs = json!({
                "args": &args,
                "scope": self.scope.args(),
                "window_s": self.scope.window.as_secs(),
                "prices": self.data.prices_id(),
            });
            MemoKey::new(data_id, generation, tool, &inputs)
        });
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
        let outcome = self.compute(key, compute).await;
        if matches!(outcome, Err(ToolFailure::Stopped(Stop::Cancelled)))
            || self.checkpoint().is_err()
        {
            // The open call is closed with the run's stop reason (`emit_terminal`).
            return Err(Stop::Cancelled);
        }
        self.open_tools
            .retain(|open| open.tool_call_id != tool_call_id);
        let completed =
            |status, result: String, data: ToolData, cached: bool| EventKind::ToolCompleted {
                tool: tool.to_owned(),
                tool_call_id: tool_call_id.clone(),
                status,
                result,
                data,
                duration_ms: elapsed_ms(started),
                cached,
            };
        match outcome {
            Ok((result, cached)) => {
                let (summary, data) = (result.summary.clone(), result.data.clone());
                let Some(value) = take_value::<T>(result) else {
                    return Err(Stop::failed(
                        ErrorCode::Internal,
                        format!("the tool {tool} returned a result of another type"),
                    ));
                };
                self.emit(agent, completed(ToolStatus::Ok, summary, data, cached))
                    .await?;
                self.findings.tools_used.push(tool.to_owned());
                Ok(value)
            }
            Err(ToolFailure::Stopped(stop)) => {
                self.emit(
                    agent,
                    completed(ToolStatus::Error, stop.message(), ToolData::null(), false),
                )
                .await?;
                Err(stop)
            }
            Err(ToolFailure::Panicked) => {
                let correlation = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(%correlation, tool, "tool panicked");
                let message =
                    format!("the tool {tool} failed unexpectedly (correlation id {correlation})");
                self.emit(
                    agent,
                    completed(ToolStatus::Error, message.clone(), ToolData::null(), false),
                )
                .await?;
                Err(Stop::failed(ErrorCode::Internal, message))
            }
        }
    }

    /// The tool's result: memoized, or computed on the pool (and memoized when `key` is set).
    /// The flag says whether it was reused. On the run's cancel: `Stopped(Cancelled)`, once the
    /// computation (if it started) has stopped.
    async fn compute<T, F>(
        &self,
        key: Option<MemoKey>,
        compute: F,
    ) -> Result<(Arc<Cached>, bool), ToolFailure>
    where
        T: Serialize + Send + Sync + 'static,
        F: FnOnce(&TenantData, &Cancel) -> RunResult<ToolOutput<T>> + Send + 'static,
    {
        let cancelled = || ToolFailure::Stopped(Stop::Cancelled);
        let flight = match key {
            // Waiting for another run's computation is no work of this run's: a cancel ends it.
            Some(key) => tokio::select! {
                found = self.workshop.memo.lookup(key) => match found {
                    Lookup::Hit(cached) => return Ok((cached, true)),
                    Lookup::Compute(flight) => Some(flight),
                },
                () = self.run.cancel.cancelled() => return Err(cancelled()),
            },
            None => None,
        };
        let data = self.data.clone();
        let cancel = self.run.analysis.clone();
        let job = move || {
            // A job that starts after its run was cancelled does nothing; dropping the flight
            // wakes the runs waiting for it.
            cancel.check()?;
            let output = compute(&data, &cancel)?;
            // Serializing the value for the event is part of the work: on the pool, once.
            let shown = crate::shown::event_data(&output.value);
            let bytes = shown.get().len() + output.summary.len();
            let cached = Arc::new(Cached {
                value: Box::new(output.value),
                summary: output.summary,
                data: shown,
                bytes,
            });
            if let Some(flight) = flight {
                flight.complete(cached.clone());
            }
            Ok(cached)
        };
        let mut submitted = self.workshop.pool.run(job);
        let finished = tokio::select! {
            finished = &mut submitted => finished,
            () = self.run.cancel.cancelled() => {
                if submitted.withdraw() {
                    return Err(cancelled());
                }
                // Started: its analysis notices the cancel within a few thousand records. The
                // run (and its slots) waits for that, so a start/cancel loop cannot pile up work.
                let _ = submitted.await;
                return Err(cancelled());
            }
        };
        match finished {
            Ok(Ok(cached)) => Ok((cached, false)),
            Ok(Err(stop)) => Err(ToolFailure::Stopped(stop)),
            Err(_) => Err(ToolFailure::Panicked),
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

/// How a tool call failed.
enum ToolFailure {
    Stopped(Stop),
    Panicked,
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The typed value of a tool's result: moved out when the run holds the only reference (a result
/// no other run shares, such as a composed report, whose deep copy cost ~3% of the server's CPU
/// in the mix), else cloned from the shared one. `None` for a value of another type.
fn take_value<T: Clone + 'static>(result: Arc<Cached>) -> Option<T> {
    match Arc::try_unwrap(result) {
        Ok(owned) => owned.value.downcast::<T>().ok().map(|value| *value),
        Err(shared) => shared.value.downcast_ref::<T>().cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static CLONES: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug, PartialEq)]
    struct Counted(u32);

    impl Clone for Counted {
        fn clone(&self) -> Self {
            CLONES.fetch_add(1, Ordering::Relaxed);
            Counted(self.0)
        }
    }

    fn cached(value: Counted) -> Arc<Cached> {
        Arc::new(Cached {
            value: Box::new(value),
            summary: String::new(),
            data: ToolData::null(),
            bytes: 0,
        })
    }

    #[test]
    fn a_result_only_this_run_holds_is_moved_and_a_shared_one_copied() {
        assert_eq!(take_value::<Counted>(cached(Counted(1))), Some(Counted(1)));
        assert_eq!(CLONES.load(Ordering::Relaxed), 0, "moved, not copied");
        let shared = cached(Counted(2));
        let memo = shared.clone();
        assert_eq!(take_value::<Counted>(shared), Some(Counted(2)));
        assert_eq!(CLONES.load(Ordering::Relaxed), 1);
        assert!(
            memo.value.downcast_ref::<Counted>().is_some(),
            "the memo keeps its own"
        );
        assert_eq!(take_value::<String>(memo), None);
    }
}
