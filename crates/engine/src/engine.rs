//! The run registry: starting, cancelling, following and draining runs, and the limits on them.
//!
//! A run's life: `start_run` checks the limits and reserves the thread under one lock, records the
//! thread and run in the store, registers the run's shared state and spawns its driver task. The
//! driver emits `agent_started`, loads the tenant's data, runs the entry agent and emits exactly one
//! terminal event, whatever happens (answer, error, cancel, time limit, shutdown). Only then does
//! the run leave the registry, so a follower that misses it there finds it complete in the store.

use crate::agents::{self, Completed};
use crate::context::{RunContext, RunInput, Stop};
use crate::error::EngineError;
use crate::run::{EventStream, RunShared, StopReason};
use crate::tenant::{TenantCache, TenantData};
use agentwire_analytics::{DemoConfig, PriceTable, UsageRecord, generate_demo};
use agentwire_protocol::{AgentKind, ErrorCode, EventKind, RunEvent, ServerFrame, StartRun};
use agentwire_store::{RunRecord, RunStatus, Store, StoredEvent, ThreadRecord};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, watch};

/// Who is asking: the user (`sub`) and the tenant whose data their agents read (`org_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub tenant_id: String,
}

/// Engine settings. Defaults suit a production server; tests shorten the times.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Runs one user may have going at once, across all their connections.
    pub max_concurrent_runs_per_user: usize,
    /// A run still going after this gets `agent_error` `TIMEOUT`.
    pub run_timeout: Duration,
    /// A pause before each step, so that a person watching can follow; zero in production.
    pub step_delay: Duration,
    /// Tenants without data of their own are shown the generated demo data set.
    pub demo_data: bool,
    /// The price table runs price with; `None` is the embedded table (`--prices` lays a LiteLLM
    /// file over it).
    pub prices: Option<Arc<PriceTable>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_concurrent_runs_per_user: 8,
            run_timeout: Duration::from_secs(120),
            step_delay: Duration::ZERO,
            demo_data: false,
            prices: None,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineMetrics {
    pub runs_started: u64,
    pub runs_completed: u64,
    pub runs_failed: u64,
    pub runs_cancelled: u64,
    pub runs_active: u64,
}

/// A run that was accepted, with the stream of its events from the first.
#[derive(Debug)]
pub struct StartedRun {
    pub run_id: String,
    pub thread_id: String,
    pub agent: AgentKind,
    pub events: EventStream,
}

/// One run of a thread as it was recorded: the run and its persisted events, in `seq` order.
#[derive(Debug, Clone)]
pub struct RunHistory {
    pub run: RunRecord,
    pub events: Vec<RunEvent>,
}

/// The engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<dyn Store>,
    config: EngineConfig,
    prices: Arc<PriceTable>,
    registry: Mutex<Registry>,
    tenants: TenantCache,
    /// The demo data set, generated on first use and shared by every tenant that shows it.
    demo: OnceCell<Arc<Vec<UsageRecord>>>,
    shutting_down: AtomicBool,
    /// The number of active runs; shutdown waits on it.
    active: watch::Sender<usize>,
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
}

/// Active runs, the thread each occupies and how many each user has, under one lock so that the
/// limits are checked and the reservation is made atomically.
#[derive(Default)]
struct Registry {
    runs: HashMap<String, Arc<RunShared>>,
    busy_threads: HashMap<(String, String), String>,
    per_user: HashMap<String, usize>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, config: EngineConfig) -> Engine {
        let prices = config
            .prices
            .clone()
            .unwrap_or_else(|| Arc::new(PriceTable::embedded()));
        Engine {
            inner: Arc::new(Inner {
                store,
                config,
                prices,
                registry: Mutex::new(Registry::default()),
                tenants: TenantCache::default(),
                demo: OnceCell::new(),
                shutting_down: AtomicBool::new(false),
                active: watch::Sender::new(0),
                started: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
            }),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The store the engine writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Starts a run; its events begin with `agent_started` on the returned stream.
    ///
    /// # Errors
    /// `ShuttingDown` while draining; `RunConflict` when the thread has a running run;
    /// `TooManyRuns` past the per-user limit; `Store` when the run cannot be recorded.
    pub async fn start_run(
        &self,
        principal: &Principal,
        request: StartRun,
    ) -> Result<StartedRun, EngineError> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let run_id = format!("run_{}", uuid::Uuid::new_v4().simple());
        let thread_id = request
            .thread_id
            .clone()
            .unwrap_or_else(|| format!("thr_{}", uuid::Uuid::new_v4().simple()));
        let run = RunShared::new(
            run_id.clone(),
            thread_id.clone(),
            principal.user_id.clone(),
            principal.tenant_id.clone(),
        );
        self.reserve(principal, &run)?;

        let title: String = request.user_request.chars().take(80).collect();
        let record = RunRecord {
            run_id: run_id.clone(),
            thread_id: thread_id.clone(),
            user_id: principal.user_id.clone(),
            tenant_id: principal.tenant_id.clone(),
            agent: request.agent.as_str().to_owned(),
            user_request: request.user_request.clone(),
            status: RunStatus::Accepted,
            created_at: agentwire_protocol::time::now(),
            finished_at: None,
            last_seq: 0,
        };
        let recorded = async {
            inner
                .store
                .upsert_thread(&principal.user_id, &principal.tenant_id, &thread_id, &title)
                .await?;
            inner.store.create_run(&record).await
        }
        .await;
        if let Err(err) = recorded {
            self.release(&run);
            return Err(err.into());
        }

        inner.started.fetch_add(1, Ordering::Relaxed);
        let events = EventStream::live(run.clone(), 0);
        let engine = self.clone();
        let principal = principal.clone();
        let agent = request.agent;
        tokio::spawn(async move { engine.drive(run, principal, request).await });
        Ok(StartedRun {
            run_id,
            thread_id,
            agent,
            events,
        })
    }

    fn reserve(&self, principal: &Principal, run: &Arc<RunShared>) -> Result<(), EngineError> {
        let limit = self.inner.config.max_concurrent_runs_per_user;
        let mut registry = self
            .inner
            .registry
            .lock()
            .map_err(|_| EngineError::Internal("registry lock poisoned".into()))?;
        let thread_key = (principal.user_id.clone(), run.thread_id.clone());
        if let Some(running) = registry.busy_threads.get(&thread_key) {
            return Err(EngineError::RunConflict {
                run_id: running.clone(),
            });
        }
        let count = registry
            .per_user
            .entry(principal.user_id.clone())
            .or_insert(0);
        if *count >= limit {
            return Err(EngineError::TooManyRuns {
                limit,
                retry_after_ms: 1_000,
            });
        }
        *count += 1;
        registry.busy_threads.insert(thread_key, run.run_id.clone());
        registry.runs.insert(run.run_id.clone(), run.clone());
        let active = registry.runs.len();
        drop(registry);
        self.inner.active.send_replace(active);
        Ok(())
    }

    /// Frees the run's thread and its place in the user's limit. Called just before the terminal
    /// event goes out, so a client that starts again on seeing it is not refused.
    fn release_slots(&self, run: &RunShared) {
        let Ok(mut registry) = self.inner.registry.lock() else {
            return;
        };
        registry
            .busy_threads
            .remove(&(run.user_id.clone(), run.thread_id.clone()));
        if let Some(count) = registry.per_user.get_mut(&run.user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                registry.per_user.remove(&run.user_id);
            }
        }
    }

    /// Removes the run from the registry once its terminal event is persisted: later followers
    /// read it from the store.
    fn remove_run(&self, run: &RunShared) {
        let Ok(mut registry) = self.inner.registry.lock() else {
            return;
        };
        registry.runs.remove(&run.run_id);
        let active = registry.runs.len();
        drop(registry);
        self.inner.active.send_replace(active);
    }

    fn release(&self, run: &RunShared) {
        self.release_slots(run);
        self.remove_run(run);
    }

    fn active_run(&self, run_id: &str) -> Option<Arc<RunShared>> {
        self.inner.registry.lock().ok()?.runs.get(run_id).cloned()
    }

    /// Asks a run of this user to stop; its stream ends with `agent_cancelled`. Cancelling a run
    /// that already finished changes nothing and is not an error.
    ///
    /// # Errors
    /// `RunNotFound` when no run with this id belongs to the user.
    pub async fn cancel(&self, principal: &Principal, run_id: &str) -> Result<(), EngineError> {
        match self.active_run(run_id) {
            Some(run) if owns(principal, &run.user_id, &run.tenant_id) => {
                run.stop(StopReason::User);
                Ok(())
            }
            Some(_) => Err(EngineError::RunNotFound),
            None => match self.owned_run(principal, run_id).await? {
                Some(_) => Ok(()),
                None => Err(EngineError::RunNotFound),
            },
        }
    }

    /// The run's events after `after_seq`: replayed from the log, then live while it runs.
    ///
    /// # Errors
    /// `RunNotFound` when no run with this id belongs to the user.
    pub async fn follow(
        &self,
        principal: &Principal,
        run_id: &str,
        after_seq: u64,
    ) -> Result<EventStream, EngineError> {
        match self.active_run(run_id) {
            Some(run) if owns(principal, &run.user_id, &run.tenant_id) => {
                Ok(EventStream::live(run, after_seq))
            }
            Some(_) => Err(EngineError::RunNotFound),
            None => Ok(EventStream::replay(
                self.stored_events(principal, run_id, after_seq).await?,
            )),
        }
    }

    /// The run's persisted events after `after_seq`.
    ///
    /// # Errors
    /// `RunNotFound` when no run with this id belongs to the user.
    pub async fn run_events(
        &self,
        principal: &Principal,
        run_id: &str,
        after_seq: u64,
    ) -> Result<Vec<RunEvent>, EngineError> {
        self.stored_events(principal, run_id, after_seq).await
    }

    async fn stored_events(
        &self,
        principal: &Principal,
        run_id: &str,
        after_seq: u64,
    ) -> Result<Vec<RunEvent>, EngineError> {
        if self.owned_run(principal, run_id).await?.is_none() {
            return Err(EngineError::RunNotFound);
        }
        decode_events(self.inner.store.events_after(run_id, after_seq).await?)
    }

    /// The stored run, when it belongs to this user in this tenant. A user who belongs to several
    /// tenants (the same `sub` with another `org_id`) sees each tenant's runs only under it, since
    /// a run's events carry figures from its tenant's data.
    async fn owned_run(
        &self,
        principal: &Principal,
        run_id: &str,
    ) -> Result<Option<RunRecord>, EngineError> {
        Ok(self
            .inner
            .store
            .get_user_run(&principal.user_id, run_id)
            .await?
            .filter(|run| run.tenant_id == principal.tenant_id))
    }

    /// The user's threads in this tenant, most recently active first, at most `limit`.
    ///
    /// # Errors
    /// `Store` when the threads cannot be read.
    pub async fn threads(
        &self,
        principal: &Principal,
        limit: u32,
    ) -> Result<Vec<ThreadRecord>, EngineError> {
        Ok(self
            .inner
            .store
            .list_threads(&principal.user_id, limit)
            .await?
            .into_iter()
            .filter(|thread| thread.tenant_id == principal.tenant_id)
            .collect())
    }

    /// One of the user's threads: its runs, oldest first, each with its persisted events. A run
    /// still going has the events persisted so far; follow it with [`Engine::follow`] from its
    /// last `seq`.
    ///
    /// Empty when the user has no run on a thread with this id; another user's thread looks the
    /// same (no existence oracle).
    ///
    /// # Errors
    /// `Store` when the runs or their logs cannot be read; `Internal` for a corrupt log.
    pub async fn thread_history(
        &self,
        principal: &Principal,
        thread_id: &str,
    ) -> Result<Vec<RunHistory>, EngineError> {
        let store = &self.inner.store;
        let runs = store
            .list_thread_runs(&principal.user_id, thread_id)
            .await?;
        let mut history = Vec::with_capacity(runs.len());
        for run in runs
            .into_iter()
            .filter(|run| run.tenant_id == principal.tenant_id)
        {
            // The runs were listed for this user, so reading their logs needs no further check.
            let events = decode_events(store.events_after(&run.run_id, 0).await?)?;
            history.push(RunHistory { run, events });
        }
        Ok(history)
    }

    /// Stores usage records for a tenant, all or nothing, and makes the next run see them.
    ///
    /// # Errors
    /// `Store` when the records could not be written; then none were.
    pub async fn ingest(
        &self,
        tenant_id: &str,
        records: Vec<UsageRecord>,
    ) -> Result<u64, EngineError> {
        self.inner.store.ensure_tenant(tenant_id).await?;
        let inserted = self.inner.store.insert_usage(tenant_id, &records).await?;
        self.inner.tenants.invalidate(tenant_id);
        Ok(inserted)
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// `Store` with the database's error.
    pub async fn health(&self) -> Result<(), EngineError> {
        Ok(self.inner.store.ping().await?)
    }

    pub fn metrics(&self) -> EngineMetrics {
        let inner = &self.inner;
        EngineMetrics {
            runs_started: inner.started.load(Ordering::Relaxed),
            runs_completed: inner.completed.load(Ordering::Relaxed),
            runs_failed: inner.failed.load(Ordering::Relaxed),
            runs_cancelled: inner.cancelled.load(Ordering::Relaxed),
            runs_active: *inner.active.borrow() as u64,
        }
    }

    /// Refuses new runs, lets active ones finish for up to `drain`, then stops the rest (each gets
    /// `agent_error` `INTERRUPTED`, retryable) and returns once every terminal event is persisted.
    pub async fn shutdown(&self, drain: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let mut active = self.inner.active.subscribe();
        if tokio::time::timeout(drain, active.wait_for(|n| *n == 0))
            .await
            .is_ok()
        {
            return;
        }
        let remaining: Vec<Arc<RunShared>> = match self.inner.registry.lock() {
            Ok(registry) => registry.runs.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        tracing::info!(
            runs = remaining.len(),
            "drain timeout reached; interrupting the remaining runs"
        );
        for run in &remaining {
            run.stop(StopReason::Shutdown);
        }
        let _ = active.wait_for(|n| *n == 0).await;
    }

    /// Ends runs that a previous process left without a terminal event (it crashed or was killed):
    /// each gets `agent_error` `INTERRUPTED` (retryable) after its last persisted event, preceded by
    /// a `tool_completed` of status `error` for any tool call the crash left open. Call once
    /// at startup, before serving, on a database no other node is using.
    ///
    /// # Errors
    /// `Store` when the runs cannot be read or updated.
    pub async fn recover_interrupted(&self) -> Result<usize, EngineError> {
        let store = &self.inner.store;
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

    /// The tenant's data snapshot: cached, else loaded; the demo set when it has none and the
    /// engine shows demo data.
    async fn tenant_data(&self, tenant_id: &str) -> Result<Arc<TenantData>, EngineError> {
        let generation = match self.inner.tenants.get(tenant_id) {
            Ok(data) => return Ok(data),
            Err(generation) => generation,
        };
        let mut records = Arc::new(self.inner.store.load_usage(tenant_id).await?);
        let mut demo = false;
        if records.is_empty() && self.inner.config.demo_data {
            let set = self
                .inner
                .demo
                .get_or_init(|| async {
                    let generated = tokio::task::spawn_blocking(|| {
                        generate_demo(&DemoConfig::default()).records
                    })
                    .await;
                    Arc::new(generated.unwrap_or_default())
                })
                .await;
            records = set.clone();
            demo = true;
        }
        let data = Arc::new(TenantData {
            tenant_id: tenant_id.to_owned(),
            records,
            prices: self.inner.prices.clone(),
            demo,
        });
        self.inner.tenants.put(data.clone(), generation);
        Ok(data)
    }

    /// Runs one request from `agent_started` to its terminal event.
    async fn drive(&self, run: Arc<RunShared>, principal: Principal, request: StartRun) {
        let started = Instant::now();
        let store = self.inner.store.clone();
        let entry = request.agent;
        let entry_name = entry.as_str();
        let empty = Arc::new(TenantData {
            tenant_id: principal.tenant_id.clone(),
            records: Arc::new(Vec::new()),
            prices: self.inner.prices.clone(),
            demo: false,
        });
        let input = RunInput {
            user_request: request.user_request.clone(),
            params: request.params.clone(),
        };
        let mut ctx = RunContext::new(
            run.clone(),
            store.clone(),
            empty,
            input,
            self.inner.config.step_delay,
        );

        // The time limit stops the run through its token, like a cancel, so no write is cut short.
        let timer = {
            let run = run.clone();
            let limit = self.inner.config.run_timeout;
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                run.stop(StopReason::Timeout);
            })
        };

        let plan = agents::plan_for(entry, &request.user_request);
        let outcome: Result<Completed, Stop> = async {
            ctx.emit(
                entry_name,
                EventKind::AgentStarted {
                    user_request: request.user_request.clone(),
                    plan,
                },
            )
            .await?;
            let _ = store
                .set_run_status(&run.run_id, RunStatus::Running, None)
                .await;
            ctx.data = self
                .tenant_data(&principal.tenant_id)
                .await
                .map_err(|err| {
                    Stop::failed(
                        ErrorCode::Internal,
                        format!("the tenant's usage data could not be loaded: {err}"),
                    )
                })?;
            agents::run_entry(&mut ctx, entry).await
        }
        .await;
        timer.abort();

        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (terminal, status) = match outcome {
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
                            self.inner.config.run_timeout.as_secs()
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
        };
        match status {
            RunStatus::Completed => &self.inner.completed,
            RunStatus::Cancelled => &self.inner.cancelled,
            _ => &self.inner.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.release_slots(&run);
        ctx.emit_terminal(entry_name, terminal, status).await;
        self.remove_run(&run);
    }
}

/// Parses stored frames back into run events; a frame that is not a run event means the log is
/// corrupt.
fn decode_events(stored: Vec<StoredEvent>) -> Result<Vec<RunEvent>, EngineError> {
    stored
        .into_iter()
        .map(
            |stored| match serde_json::from_str::<ServerFrame>(&stored.payload) {
                Ok(ServerFrame::Event(event)) => Ok(event),
                Ok(_) | Err(_) => Err(EngineError::Internal(format!(
                    "event {}#{} in the log is not a run event",
                    stored.run_id, stored.seq
                ))),
            },
        )
        .collect()
}

/// Whether a run of `user_id` in `tenant_id` is this principal's.
fn owns(principal: &Principal, user_id: &str, tenant_id: &str) -> bool {
    principal.user_id == user_id && principal.tenant_id == tenant_id
}

/// The run status a persisted terminal event stands for, if the event is terminal.
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
