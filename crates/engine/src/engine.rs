//! The engine's face: starting, cancelling and following runs, reading a user's run history,
//! ingesting usage, and draining on shutdown.
//!
//! [`Engine::start`] joins the database as a node (`cluster.rs`: a lease, the sweeper, the
//! notices); on SQLite it first ends the runs a previous process left. A run's life:
//! `start_run` refuses it at once when this node is overloaded (the line for analysis or the
//! runs being created are full: `UNAVAILABLE` with `retry_after_ms`), puts it in the registry,
//! has the store admit it (thread free, user within the limit, across every node) and record it
//! with its node and its thread in one transaction, and spawns its driver (`driver.rs`), which
//! emits every event from `agent_started` to the terminal one. The runs of this node share its CPU pool, its line for
//! analysis, its memoized tool results and its write lanes (`pool.rs`, `memo.rs`, `emitter.rs`). Callers follow
//! a run through an [`EventStream`]: live from the run while it executes here, from the log
//! otherwise (`follow.rs`: after it ended, or while it executes on another node). A cancel for a
//! run executing elsewhere is a request in the store that wakes its node. This module must not
//! run agents or tools itself, nor hold run state beyond the registry's.

use crate::background::RunThreads;
use crate::cluster::{Duties, Node};
use crate::context::Workshop;
use crate::driver::Driver;
use crate::emitter::WriteLanes;
use crate::error::EngineError;
use crate::follow::{DEFAULT_LOG_PAGE, LogReader, Wakeups, decode_event};
use crate::memo::Memo;
use crate::pool::{Admission as AnalysisLine, CpuPool};
use crate::registry::{EngineMetrics, Registry};
use crate::retention::{Retention, RetentionConfig};
use crate::run::{EventStream, RunShared, StopReason};
use crate::tenant::Tenants;
use agentwire_analytics::{PriceTable, UsageRecord};
use agentwire_protocol::{AgentKind, RunEvent, StartRun};
use agentwire_store::{
    Admission, Backend, RunCursor, RunRecord, RunStatus, Store, StoredEvent, ThreadRecord,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What an overloaded engine tells a client to wait before asking again.
const OVERLOADED_RETRY_AFTER_MS: u64 = 2_000;

/// Who is asking: the user (`sub`) and the tenant whose data their agents read (`org_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub tenant_id: String,
}

/// Analysis slots per CPU pool thread (see [`EngineConfig::analysis_slots`]).
const ANALYSIS_SLOTS_PER_THREAD: usize = 8;

/// Analysis slots when runs are paced by a step delay (see [`EngineConfig::analysis_slots`]).
const PACED_ANALYSIS_SLOTS: usize = 256;

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
    /// The prefix of this node's id in the database (the id adds random digits: a restarted
    /// process is a new node).
    pub node_name: String,
    /// How long this node's lease lasts without a renewal; it renews every third of it. Once it
    /// lapses, another node may end this node's runs (within a further third, its sweep
    /// interval).
    pub node_lease: Duration,
    /// Threads of the CPU pool that runs the tools; 0 is one per core.
    pub cpu_threads: usize,
    /// Async worker threads admitted runs execute on, apart from the caller's runtime; 0 is one
    /// per core.
    pub run_threads: usize,
    /// How many nice steps below the caller's threads the run threads and the CPU pool run
    /// (0: the same priority). Reading a request and writing its `agent_started` then come
    /// before other runs' steps whenever the cores are busy.
    pub background_nice: i32,
    /// Runs doing their analysis at once; the others wait in line, in arrival order. 0 is eight
    /// times the CPU pool's threads, or 256 with a `step_delay` (paced runs mostly sleep). The
    /// pool itself bounds the CPU work (it runs `threads` jobs at once, in order); most admitted
    /// runs are waiting for a memoized result or a commit, and with twice the threads 100
    /// concurrent runs waited in line for twice as long (TTC p50 81-93 ms against 43 ms).
    pub analysis_slots: usize,
    /// Runs that may wait in line for an analysis slot. Past it a new run is refused at once with
    /// `UNAVAILABLE` and `retry_after_ms`, instead of joining a line it would wait too long in.
    pub max_waiting_runs: usize,
    /// Bytes of memoized tool results kept (least recently used results go first).
    pub memo_max_bytes: usize,
    /// Runs whose records may be waiting for the store at once. Past it `start_agent` is
    /// refused at once with `UNAVAILABLE` and `retry_after_ms`: the store is behind, and the run
    /// would otherwise wait for it past its client's patience and the store's own timeouts.
    /// Admissions are committed many at a time (SQLite's group commit, PostgreSQL's pool), so
    /// the default is a burst of a few seconds' arrivals, not a queue of minutes.
    pub max_starting_runs: usize,
    /// Event-log retention: finished runs older than its age are deleted with their events
    /// (and threads left without runs), by a background task on every node. `None` keeps
    /// them forever.
    pub retention: Option<RetentionConfig>,
    /// Events read from a run's log at a time, for `resume`, following a run through the log
    /// and the history reads: the most of one log held in memory at once (at least 1).
    pub log_page: u32,
    /// Runs of a thread read at a time for its history (at least 1).
    pub runs_page: u32,
}

/// The default [`EngineConfig::node_lease`].
pub const DEFAULT_NODE_LEASE: Duration = Duration::from_secs(10);

/// The default [`EngineConfig::background_nice`]: enough that a request's first event rarely
/// waits for other runs' steps, not so much that their events wait long (docs/benchmarks.md,
/// the tenth pass, has the values tried).
pub const DEFAULT_BACKGROUND_NICE: i32 = 3;

/// The default [`EngineConfig::runs_page`].
pub const DEFAULT_RUNS_PAGE: u32 = 32;

/// The default retention age (`agentwire serve --retain-runs-days 30`).
pub const DEFAULT_RETAIN_RUNS: Duration = Duration::from_secs(30 * 24 * 60 * 60);

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_concurrent_runs_per_user: 8,
            run_timeout: Duration::from_secs(120),
            step_delay: Duration::ZERO,
            demo_data: false,
            prices: None,
            node_name: "node".to_owned(),
            node_lease: DEFAULT_NODE_LEASE,
            cpu_threads: 0,
            run_threads: 0,
            background_nice: DEFAULT_BACKGROUND_NICE,
            analysis_slots: 0,
            max_waiting_runs: 16_384,
            memo_max_bytes: crate::memo::DEFAULT_MAX_BYTES,
            max_starting_runs: 4_096,
            retention: Some(RetentionConfig::new(DEFAULT_RETAIN_RUNS)),
            log_page: DEFAULT_LOG_PAGE,
            runs_page: DEFAULT_RUNS_PAGE,
        }
    }
}

/// A run that was accepted, with the stream of its events from the first.
#[derive(Debug)]
pub struct StartedRun {
    pub run_id: String,
    pub thread_id: String,
    pub agent: AgentKind,
    pub events: EventStream,
}

/// A run's persisted events, read from its log a page at a time so that a long run is never
/// held whole ([`Engine::run_events`], [`ThreadHistory::events`]).
pub struct EventPages {
    store: Arc<dyn Store>,
    run_id: String,
    /// The run's question, which the log keeps only in the run's row (`logged.rs`).
    question: String,
    after_seq: u64,
    page: u32,
    done: bool,
}

impl std::fmt::Debug for EventPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPages")
            .field("run_id", &self.run_id)
            .field("after_seq", &self.after_seq)
            .finish_non_exhaustive()
    }
}

impl EventPages {
    /// The log of `run` after `after_seq`, read `page` events at a time.
    fn of(store: Arc<dyn Store>, run: &RunRecord, after_seq: u64, page: u32) -> EventPages {
        EventPages {
            store,
            run_id: run.run_id.clone(),
            question: run.user_request.clone(),
            after_seq,
            page,
            done: false,
        }
    }

    /// The next events in `seq` order, at most a page; `None` once the log holds no more. A
    /// run still going gives the events persisted by the time each page is read.
    ///
    /// # Errors
    /// `Store` when the log cannot be read; `Internal` for a corrupt log.
    pub async fn next_page(&mut self) -> Result<Option<Vec<RunEvent>>, EngineError> {
        if self.done {
            return Ok(None);
        }
        let stored = self
            .store
            .events_after(&self.run_id, self.after_seq, self.page)
            .await?;
        // A page that is not full was the end of the log when it was read.
        self.done = stored.len() < self.page as usize;
        let Some(last) = stored.last() else {
            return Ok(None);
        };
        self.after_seq = last.seq;
        let mut events = decode_events(stored)?;
        for event in &mut events {
            crate::logged::restore(event, &self.question);
        }
        Ok(Some(events))
    }
}

/// One of a user's threads as it was recorded: its runs, oldest first, read a page at a time
/// ([`Engine::thread_history`]), and each run's events through [`ThreadHistory::events`].
pub struct ThreadHistory {
    store: Arc<dyn Store>,
    principal: Principal,
    thread_id: String,
    after: Option<RunCursor>,
    runs_page: u32,
    log_page: u32,
    done: bool,
}

impl std::fmt::Debug for ThreadHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadHistory")
            .field("thread_id", &self.thread_id)
            .finish_non_exhaustive()
    }
}

impl ThreadHistory {
    /// The next runs of the thread, oldest first, at most a page; `None` once there are no
    /// more (at once for a thread with no run of this user in this tenant).
    ///
    /// # Errors
    /// `Store` when the runs cannot be read.
    pub async fn next_runs(&mut self) -> Result<Option<Vec<RunRecord>>, EngineError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .list_thread_runs(
                &self.principal.user_id,
                &self.principal.tenant_id,
                &self.thread_id,
                self.after.as_ref(),
                self.runs_page,
            )
            .await?;
        self.done = page.next.is_none();
        self.after = page.next;
        Ok(Some(page.runs).filter(|runs| !runs.is_empty()))
    }

    /// The persisted events of one of the runs [`ThreadHistory::next_runs`] gave.
    pub fn events(&self, run: &RunRecord) -> EventPages {
        // The runs were listed for this user, so reading their logs needs no further check.
        EventPages::of(self.store.clone(), run, 0, self.log_page)
    }
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
    registry: Arc<Registry>,
    tenants: Arc<Tenants>,
    node: Arc<Node>,
    log: LogReader,
    workshop: Workshop,
    analysis: Arc<AnalysisLine>,
    shutting_down: AtomicBool,
    /// Ends the cluster duties and retention (at shutdown, or when the engine is dropped).
    duties: CancellationToken,
    runs: RunThreads,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.duties.cancel();
    }
}

impl Engine {
    /// Joins the database as a node and starts its duties (lease, sweeper, notices, and
    /// retention when [`EngineConfig::retention`] is set), the threads admitted runs execute on
    /// and the CPU pool (both [`EngineConfig::background_nice`] below the caller's priority).
    /// On SQLite, which one process owns, it first ends the runs a previous process left in flight
    /// (`agent_error` `INTERRUPTED`, after closing any open tool call); on PostgreSQL those are
    /// ended by whichever node sweeps the dead node once its lease lapses, never at startup,
    /// since other nodes' runs are alive.
    ///
    /// # Errors
    /// `Store` (or `Unavailable`) when the database cannot be read, the node registered or the
    /// notices listened to; `Internal` when the OS refuses the run threads.
    pub async fn start(store: Arc<dyn Store>, config: EngineConfig) -> Result<Engine, EngineError> {
        if store.backend() == Backend::Sqlite {
            crate::recovery::recover_interrupted(store.as_ref()).await?;
        }
        crate::recovery::sweep_usage_uploads(store.as_ref(), true).await?;
        let notices = store.subscribe().await?;
        let node =
            Arc::new(Node::register(store.as_ref(), &config.node_name, config.node_lease).await?);
        let prices = config
            .prices
            .clone()
            .unwrap_or_else(|| Arc::new(PriceTable::embedded()));
        let registry = Arc::new(Registry::new());
        let tenants = Arc::new(Tenants::new(prices, config.demo_data));
        let wakeups = Wakeups::new();
        let duties = CancellationToken::new();
        let runs = RunThreads::start(config.run_threads, config.background_nice)
            .await
            .map_err(|err| EngineError::Internal(format!("cannot start the run threads: {err}")))?;
        let pool = match config.cpu_threads {
            0 => CpuPool::per_core(config.background_nice),
            n => CpuPool::new(n, config.background_nice),
        };
        let slots = match config.analysis_slots {
            // A paced run (the demo's step delay) spends its time asleep between steps, holding
            // its slot: slots would bound the demo's sleeping runs, not the CPU.
            0 if !config.step_delay.is_zero() => PACED_ANALYSIS_SLOTS,
            0 => pool.threads() * ANALYSIS_SLOTS_PER_THREAD,
            n => n,
        };
        let workshop = Workshop {
            pool: Arc::new(pool),
            memo: Memo::new(config.memo_max_bytes),
            lanes: WriteLanes::new(),
        };
        Duties {
            store: store.clone(),
            node: node.clone(),
            registry: registry.clone(),
            tenants: tenants.clone(),
            wakeups: wakeups.clone(),
        }
        .spawn(notices, duties.clone());
        if let Some(retention) = config.retention {
            Retention {
                store: store.clone(),
                registry: registry.clone(),
                config: retention,
            }
            .spawn(duties.clone());
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                log: LogReader {
                    store: store.clone(),
                    wakeups,
                    page: config.log_page.max(1),
                },
                store,
                tenants,
                workshop,
                analysis: AnalysisLine::new(slots, config.max_waiting_runs),
                config,
                registry,
                node,
                shutting_down: AtomicBool::new(false),
                duties,
                runs,
            }),
        })
    }

    /// This node's id in the database (it changes if the node loses its lease and joins again).
    pub fn node_id(&self) -> Option<String> {
        self.inner.node.id()
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
    /// `ShuttingDown` while draining; `Unavailable` without the database or the node's lease;
    /// `Overloaded` when the line for analysis or the runs being created are full;
    /// `RunConflict` when the thread has a running run; `TooManyRuns` past the per-user limit;
    /// `Store` when the run cannot be recorded.
    pub async fn start_run(
        &self,
        principal: &Principal,
        request: StartRun,
    ) -> Result<StartedRun, EngineError> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::SeqCst) {
            return Err(EngineError::ShuttingDown);
        }
        let node_id = inner
            .node
            .admitting_id()
            .map_err(|reason| EngineError::Unavailable(reason.to_string()))?;
        if let Err(full) = inner.analysis.check_room() {
            return Err(EngineError::Overloaded {
                waiting: full.waiting,
                retry_after_ms: OVERLOADED_RETRY_AFTER_MS,
            });
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
        // A structured task is recorded under a readable description of it, as its question.
        let mut request = request;
        if let Some(fields) = request
            .task()
            .filter(|_| request.user_request.trim().is_empty())
        {
            let (vocab, _) = inner.tenants.vocabulary(&principal.tenant_id);
            let today = crate::question::asked_on(&request.params);
            request.user_request =
                crate::question::describe_task(request.agent, fields, &vocab, today);
        }
        // Planned before it is admitted: its first event is stored with it, so the client is
        // sent `agent_started` right after `run_accepted`, with no second commit in between.
        let (plan, mut started) = crate::driver::plan(&inner.tenants, &run, &request);
        let (first_frame, stored) =
            crate::emitter::encode(&mut started, Some(&request.user_request));
        let first = crate::emitter::log_entry(&first_frame, started.kind.type_name(), stored);
        let record = RunRecord {
            run_id: run_id.clone(),
            thread_id: thread_id.clone(),
            user_id: principal.user_id.clone(),
            tenant_id: principal.tenant_id.clone(),
            agent: request.agent.as_str().to_owned(),
            user_request: request.user_request.clone(),
            // Running from its admission: the driver starts it at once (waiting in the analysis
            // line is part of running, and says so with `progress`), and a status change of its
            // own would cost every run another write.
            status: RunStatus::Running,
            created_at: agentwire_protocol::time::now(),
            finished_at: None,
            last_seq: 0,
        };
        // The run's rows go to the store ahead of other runs' ordinary events; when too many
        // runs are being created already, the store is behind: refuse now rather than fail later.
        let Some(starting) = inner
            .workshop
            .lanes
            .starting(inner.config.max_starting_runs.max(1))
        else {
            return Err(EngineError::Overloaded {
                waiting: inner.config.max_starting_runs,
                retry_after_ms: OVERLOADED_RETRY_AFTER_MS,
            });
        };
        // In the registry before the store admits it: the node's orphan check must never take a
        // run being admitted for one nobody executes.
        inner.registry.insert(&run);
        let limit = inner.config.max_concurrent_runs_per_user;
        let admitted = inner
            .store
            .admit_run(
                &record,
                &node_id,
                u32::try_from(limit).unwrap_or(u32::MAX),
                Some(first),
            )
            .await;
        let admitted = match admitted {
            Ok(Admission::Admitted { usage_version }) => Ok(usage_version),
            Ok(Admission::Conflict { run_id }) => Err(EngineError::RunConflict { run_id }),
            Ok(Admission::TooMany { .. }) => Err(EngineError::TooManyRuns {
                limit,
                retry_after_ms: 1_000,
            }),
            Err(err) => {
                // Lost during the commit, the run may be stored after all.
                inner.registry.note_unrecorded();
                Err(err.into())
            }
        };
        let usage_version = match admitted {
            Ok(usage_version) => usage_version,
            Err(err) => {
                inner.registry.remove(&run);
                return Err(err);
            }
        };
        drop(starting);
        run.publish(first_frame);

        inner.registry.started();
        let events = EventStream::live(run.clone(), 0, inner.log.clone());
        let engine = self.inner.clone();
        let agent = request.agent;
        self.inner.runs.handle().spawn(async move {
            let driver = Driver {
                store: &engine.store,
                registry: &engine.registry,
                tenants: &engine.tenants,
                workshop: &engine.workshop,
                admission: &engine.analysis,
                step_delay: engine.config.step_delay,
                run_timeout: engine.config.run_timeout,
            };
            driver.drive(run, request, plan, usage_version).await;
        });
        Ok(StartedRun {
            run_id,
            thread_id,
            agent,
            events,
        })
    }

    fn active_run(&self, run_id: &str) -> Option<Arc<RunShared>> {
        self.inner.registry.get(run_id)
    }

    /// Asks a run of this user to stop; its stream ends with `agent_cancelled`. A run executing
    /// on another node is asked through the store, which wakes that node. Cancelling a run that
    /// already finished changes nothing and is not an error.
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
                Some(run) if !run.status.is_terminal() => {
                    self.inner.store.request_cancel(run_id).await?;
                    Ok(())
                }
                Some(_) => Ok(()),
                None => Err(EngineError::RunNotFound),
            },
        }
    }

    /// The run's events after `after_seq`, each once, in `seq` order, to its terminal event:
    /// live while it executes here, otherwise from the log (woken by the executing node's
    /// writes while it executes elsewhere).
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
                Ok(EventStream::live(run, after_seq, self.inner.log.clone()))
            }
            Some(_) => Err(EngineError::RunNotFound),
            None => {
                let Some(run) = self.owned_run(principal, run_id).await? else {
                    return Err(EngineError::RunNotFound);
                };
                Ok(EventStream::from_log(
                    self.inner
                        .log
                        .follow(run_id, after_seq)
                        .knowing_question(run.user_request),
                ))
            }
        }
    }

    /// The run's persisted events after `after_seq`, to be read a page at a time.
    ///
    /// # Errors
    /// `RunNotFound` when no run with this id belongs to the user.
    pub async fn run_events(
        &self,
        principal: &Principal,
        run_id: &str,
        after_seq: u64,
    ) -> Result<EventPages, EngineError> {
        let Some(run) = self.owned_run(principal, run_id).await? else {
            return Err(EngineError::RunNotFound);
        };
        Ok(EventPages::of(
            self.inner.store.clone(),
            &run,
            after_seq,
            self.inner.log.page,
        ))
    }

    /// The stored run, when it belongs to this user in this tenant. A user who belongs to several
    /// tenants (the same `sub` with another `org_id`) sees each tenant's runs only under it, since
    /// a run's events carry figures from its tenant's data.
    async fn owned_run(
        &self,
        principal: &Principal,
        run_id: &str,
    ) -> Result<Option<RunRecord>, EngineError> {
        if run_id.contains('\0') {
            // No stored id holds a NUL (the store refuses them), and PostgreSQL cannot even
            // compare with one: such a run does not exist.
            return Ok(None);
        }
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
            .list_threads(&principal.user_id, &principal.tenant_id, limit)
            .await?)
    }

    /// One of the user's threads in this tenant: its runs, oldest first, each with its
    /// persisted events, read a page at a time. A run still going has the events persisted so
    /// far; follow it with [`Engine::follow`] from its last `seq`.
    ///
    /// No runs when the user has no run on a thread with this id; another user's thread looks
    /// the same (no existence oracle).
    pub fn thread_history(&self, principal: &Principal, thread_id: &str) -> ThreadHistory {
        ThreadHistory {
            store: self.inner.store.clone(),
            principal: principal.clone(),
            thread_id: thread_id.to_owned(),
            after: None,
            runs_page: self.inner.config.runs_page.max(1),
            log_page: self.inner.log.page,
            // No stored id holds a NUL, and PostgreSQL cannot even compare with one.
            done: thread_id.contains('\0'),
        }
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
        self.inner.workshop.memo.forget_tenant(tenant_id);
        Ok(inserted)
    }

    /// Whether this node can take runs: the database answers and the node holds its lease.
    ///
    /// # Errors
    /// `Store` or `Unavailable` with the reason.
    pub async fn health(&self) -> Result<(), EngineError> {
        self.inner.store.ping().await?;
        self.inner
            .node
            .admitting_id()
            .map(|_| ())
            .map_err(|reason| EngineError::Unavailable(reason.to_string()))
    }

    pub fn metrics(&self) -> EngineMetrics {
        let inner = &self.inner;
        let memo = inner.workshop.memo.metrics();
        EngineMetrics {
            memo_hits: memo.hits,
            memo_misses: memo.misses,
            memo_bytes: memo.bytes,
            memo_entries: memo.entries,
            runs_waiting: inner.analysis.waiting() as u64,
            runs_admitted: inner.analysis.admitted() as u64,
            pool_jobs_queued: inner.workshop.pool.queue_depth() as u64,
            pool_jobs_running: inner.workshop.pool.running() as u64,
            pool_threads: inner.workshop.pool.threads() as u64,
            ..inner.registry.metrics()
        }
    }

    /// Refuses new runs, lets active ones finish for up to `drain`, then stops the rest (each gets
    /// `agent_error` `INTERRUPTED`, retryable) and returns once every terminal event is persisted;
    /// then leaves the cluster (the node's row goes unless a run's end could not be recorded:
    /// then its lease lapses and a survivor ends that run).
    pub async fn shutdown(&self, drain: Duration) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let mut active = self.inner.registry.watch_active();
        if tokio::time::timeout(drain, active.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            let stopped = self.inner.registry.stop_all(StopReason::Shutdown);
            tracing::info!(
                runs = stopped,
                "drain timeout reached; interrupting the remaining runs"
            );
            let _ = active.wait_for(|n| *n == 0).await;
        }
        self.inner.duties.cancel();
        if let Some(node_id) = self.inner.node.id() {
            match self.inner.store.deregister_node(&node_id).await {
                Ok(true) => tracing::info!(%node_id, "node deregistered"),
                Ok(false) => tracing::warn!(
                    %node_id,
                    "runs of this node are still in flight in the database; another node ends them once its lease lapses"
                ),
                Err(err) => {
                    tracing::warn!(%node_id, error = %err, "deregistering the node failed; its lease lapses by itself")
                }
            }
        }
    }
}

/// Parses stored frames back into run events; a frame that is not a run event means the log is
/// corrupt.
fn decode_events(stored: Vec<StoredEvent>) -> Result<Vec<RunEvent>, EngineError> {
    stored.into_iter().map(decode_event).collect()
}

/// Whether a run of `user_id` in `tenant_id` is this principal's.
fn owns(principal: &Principal, user_id: &str, tenant_id: &str) -> bool {
    principal.user_id == user_id && principal.tenant_id == tenant_id
}
