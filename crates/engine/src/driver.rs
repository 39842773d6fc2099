//! One run from `agent_started` to its terminal event.
//!
//! [`plan`] plans the run (once: the plan is what `agent_started` announces and what the agents
//! follow) and writes `agent_started`, which the engine stores with the run's admission and
//! sends before anything heavy. Then the driver has the run wait for an
//! analysis slot (in arrival order; while it waits, `progress` events say how many runs are
//! ahead), loads the tenant's data, reads the request against the tenant's names when it could
//! not before (the plan follows that reading), runs the entry agent and emits exactly one terminal
//! event, whatever happens (answer, error, cancel, time limit, shutdown, a database that went
//! away), unless another node took the run over and writes it. Only then does the run leave the
//! registry, so a follower that misses it there finds it complete in the store. The time limit
//! counts from the run's admission to the analysis, so waiting in line never times a run out (the
//! line's length is bounded instead: see `Engine::start_run`). This module must not decide what an
//! agent does (the agents do) or admit runs (the engine and the store do).

use crate::agents;
use crate::context::{RunContext, RunInput, Workshop};
use crate::plan::RunPlan;
use crate::pool::{Admission, Entry, Slot};
use crate::question::{Question, Request, asked_on};
use crate::registry::Registry;
use crate::report::ComposedReport;
use crate::run::{RunShared, StopReason};
use crate::scope::Scope;
use crate::stop::{RunResult, Stop};
use crate::tenant::Tenants;
use agentwire_protocol::{ErrorCode, EventKind, RunEvent, StartRun};
use agentwire_store::{RunStatus, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a run waiting in line looks whether to tell its client how far it has come.
const LINE_CHECK: Duration = Duration::from_secs(1);

/// What a run's driver uses of the engine.
pub(crate) struct Driver<'a> {
    pub store: &'a Arc<dyn Store>,
    pub registry: &'a Arc<Registry>,
    pub tenants: &'a Arc<Tenants>,
    pub workshop: &'a Workshop,
    pub admission: &'a Arc<Admission>,
    pub step_delay: Duration,
    pub run_timeout: Duration,
}

/// Stops the run at its time limit unless dropped first.
struct TimeLimit(tokio::task::JoinHandle<()>);

impl TimeLimit {
    fn start(run: &Arc<RunShared>, limit: Duration) -> TimeLimit {
        let run = run.clone();
        // The time limit stops the run through its token, like a cancel, so no write is cut
        // short.
        TimeLimit(tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            run.stop(StopReason::Timeout);
        }))
    }
}

impl Drop for TimeLimit {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Plans a run and writes its first event, `agent_started` (seq 1), announcing the plan.
pub(crate) fn plan(tenants: &Tenants, run: &RunShared, request: &StartRun) -> (RunPlan, RunEvent) {
    // Read with the tenant's names when its data is in memory (the usual case); else from the
    // words alone, and again once the data has loaded (`answer`).
    let (vocab, read_with) = tenants.vocabulary(&run.tenant_id);
    let asked = Request {
        agent: request.agent,
        text: request.user_request.clone(),
        task: request.task().cloned(),
    };
    let question = Question::read(&asked, &vocab, asked_on(&request.params), read_with);
    let plan = RunPlan::new(request.agent, question);
    let started = RunEvent {
        run_id: run.run_id.clone(),
        thread_id: run.thread_id.clone(),
        seq: 1,
        agent: plan.entry_agent().as_str().to_owned(),
        timestamp: agentwire_protocol::time::now(),
        kind: EventKind::AgentStarted {
            user_request: request.user_request.clone(),
            plan: plan.announced(),
        },
    };
    (plan, started)
}

impl Driver<'_> {
    /// Runs one request from its [`plan`] (`agent_started` already stored and published) to
    /// its terminal event, answering from the tenant's records at `usage_version` or newer
    /// (what its admission read).
    pub async fn drive(
        &self,
        run: Arc<RunShared>,
        request: StartRun,
        plan: RunPlan,
        usage_version: u64,
    ) {
        let started = Instant::now();
        let entry_name = plan.entry_agent().as_str();
        let input = RunInput {
            user_request: request.user_request,
            params: request.params,
        };
        let mut ctx = RunContext::new(
            run.clone(),
            self.store.clone(),
            self.workshop.clone(),
            self.tenants.empty(&run.tenant_id),
            input,
            plan,
            self.step_delay,
        );
        let outcome = self.answer(&mut ctx, usage_version).await;

        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (terminal, status) = self.terminal(&run, outcome, duration_ms);
        let registry = Arc::clone(self.registry);
        run.on_end(move || registry.ended(status));
        if !ctx.emit_terminal(entry_name, terminal, status).await {
            self.registry.note_unrecorded();
        }
        run.end_here();
        self.registry.remove(&run);
    }

    /// Waits for an analysis slot, loads the tenant's data and runs the entry agent to its
    /// answer.
    async fn answer(&self, ctx: &mut RunContext, usage_version: u64) -> RunResult<ComposedReport> {
        let entry_name = ctx.plan.entry_agent().as_str();
        let _slot = self.admit(ctx, entry_name).await?;
        let _limit = TimeLimit::start(&ctx.run, self.run_timeout);
        // A large tenant takes seconds to read: a cancel (or shutdown) stops the wait, and the
        // load finishes for the tenant's next run (`Tenants::load`).
        let loaded = tokio::select! {
            loaded = self.tenants.load(self.store, &ctx.run.tenant_id, usage_version) => loaded,
            () = ctx.run.cancel.cancelled() => return Err(Stop::Cancelled),
        };
        ctx.data = loaded
            .map_err(|err| {
                // The database's words stay in the log; the client gets the id to quote.
                let correlation = uuid::Uuid::new_v4().simple().to_string();
                tracing::error!(run_id = %ctx.run.run_id, %correlation, error = %err, "loading the tenant's usage failed");
                Stop::failed(
                    ErrorCode::Internal,
                    format!(
                        "the tenant's usage data could not be loaded; the server log has the details under correlation id {correlation}"
                    ),
                )
            })?;
        let asked = Request {
            agent: ctx.plan.entry_agent(),
            text: ctx.input.user_request.clone(),
            task: ctx.input.params.task.clone(),
        };
        ctx.plan
            .ground(&asked, &ctx.data, asked_on(&ctx.input.params));
        ctx.scope = Scope::of_request(&ctx.input.params, &ctx.plan.question);
        agents::run_entry(ctx).await
    }

    /// Waits for an analysis slot, in arrival order. A run that has to wait says so with a
    /// `progress` event naming how many runs are ahead, and again whenever that number has
    /// halved.
    async fn admit(&self, ctx: &mut RunContext, entry_name: &str) -> RunResult<Slot> {
        let mut ticket = match self.admission.enter() {
            Entry::Admitted(slot) => return Ok(slot),
            Entry::Queued(ticket) => ticket,
        };
        let mut told: Option<usize> = None;
        loop {
            let ahead = ticket.position();
            if told.is_none_or(|last| ahead <= last / 2 && ahead < last) {
                let kind = EventKind::Progress {
                    percent: 0.0,
                    message: line_message(ahead),
                };
                if told.is_none() {
                    ctx.emit_first(entry_name, kind)?;
                } else {
                    ctx.emit(entry_name, kind).await?;
                }
                told = Some(ahead);
            }
            tokio::select! {
                slot = ticket.admitted() => return Ok(slot),
                () = tokio::time::sleep(LINE_CHECK) => {}
                () = ctx.run.cancel.cancelled() => return Err(Stop::Cancelled),
            }
        }
    }

    /// The terminal event and final status for how the run ended.
    fn terminal(
        &self,
        run: &RunShared,
        outcome: RunResult<ComposedReport>,
        duration_ms: u64,
    ) -> (EventKind, RunStatus) {
        match outcome {
            Ok(done) => (
                EventKind::AgentCompleted {
                    response: done.response,
                    report: done.report,
                    duration_ms,
                },
                RunStatus::Completed,
            ),
            Err(Stop::Cancelled) => match run.stop_reason() {
                Some(StopReason::Timeout) => (
                    EventKind::AgentError {
                        error_code: ErrorCode::Timeout,
                        message: format!(
                            "the run exceeded its time limit of {} s; narrow the question (a shorter timeframe, one team) and ask again",
                            self.run_timeout.as_secs()
                        ),
                        retryable: true,
                    },
                    RunStatus::Failed,
                ),
                Some(StopReason::Shutdown) => (
                    EventKind::AgentError {
                        error_code: ErrorCode::Interrupted,
                        message: "the server is shutting down; start the request again in a moment"
                            .into(),
                        retryable: true,
                    },
                    RunStatus::Failed,
                ),
                Some(StopReason::Unreachable) => (
                    EventKind::AgentError {
                        error_code: ErrorCode::Unavailable,
                        message: crate::emitter::DATABASE_LOST.into(),
                        retryable: true,
                    },
                    RunStatus::Failed,
                ),
                // Another node writes the end; this one is never written or sent.
                Some(StopReason::TakenOver) => (
                    EventKind::AgentError {
                        error_code: ErrorCode::Interrupted,
                        message: "another server ended this run".into(),
                        retryable: true,
                    },
                    RunStatus::Failed,
                ),
                Some(StopReason::User) | None => (
                    EventKind::AgentCancelled {
                        reason: "cancelled by the user".into(),
                    },
                    RunStatus::Cancelled,
                ),
            },
            Err(Stop::Failed { code, message }) => (
                EventKind::AgentError {
                    error_code: code,
                    message,
                    retryable: code.retryable(),
                },
                RunStatus::Failed,
            ),
        }
    }
}

/// What a `progress` event says while the run waits for an analysis slot; docs/protocol.md
/// documents the wording.
pub(crate) fn line_message(ahead: usize) -> String {
    match ahead {
        0 => "Waiting for an analysis slot: this run is next.".to_owned(),
        1 => "Waiting for an analysis slot: 1 run is ahead of this one.".to_owned(),
        n => format!("Waiting for an analysis slot: {n} runs are ahead of this one."),
    }
}
