//! One run's shared state, and the stream a follower reads it through.
//!
//! While a run is active its events live in an in-memory log beside the persisted one; followers
//! read the log by `seq` and wait on a watch channel for more. Nobody can lag out of it (unlike a
//! broadcast channel) and a slow follower never slows the run: the run only appends and notifies.
//! Once the run ends, late followers read the store instead, which by then holds every event; so
//! do followers of a run that executes on another node (`follow.rs`), and the followers of a run
//! this node gave up because another node took it over ([`RunShared::hand_over`]).
//!
//! Order matters and is the reason this works without gaps: an event is persisted, then appended to
//! the log, then announced; a run leaves the registry only after its terminal event is persisted.

use crate::follow::{LogFollower, LogReader};
use agentwire_protocol::RunEvent;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Why a run was told to stop before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    User,
    Timeout,
    Shutdown,
    /// Another node ends the run (this node's lease lapsed and a survivor claimed its runs, or
    /// the log already holds a terminal event): stop without writing; followers read the log.
    TakenOver,
    /// This node cannot reach the database and may be losing its lease: stop without writing;
    /// followers here get an `UNAVAILABLE` error, the log is mended once the database is back.
    Unreachable,
}

/// State shared by a running run, its cancellers and its followers.
#[derive(Debug)]
pub(crate) struct RunShared {
    pub run_id: String,
    pub thread_id: String,
    pub user_id: String,
    /// The tenant whose data the run reads: a run is its owner's only within that tenant.
    pub tenant_id: String,
    /// Every event published so far, in `seq` order (index = seq - 1).
    log: Mutex<Vec<RunEvent>>,
    /// The highest `seq` published; followers wait on it.
    published: watch::Sender<u64>,
    /// Set once the terminal event is published.
    finished: watch::Sender<bool>,
    pub cancel: CancellationToken,
    stop_reason: OnceLock<StopReason>,
    /// Set when this node stopped executing the run without ending it: followers continue
    /// from the log.
    handed_over: AtomicBool,
}

impl RunShared {
    pub fn new(run_id: String, thread_id: String, user_id: String, tenant_id: String) -> Arc<Self> {
        Arc::new(Self {
            run_id,
            thread_id,
            user_id,
            tenant_id,
            log: Mutex::new(Vec::new()),
            published: watch::Sender::new(0),
            finished: watch::Sender::new(false),
            cancel: CancellationToken::new(),
            stop_reason: OnceLock::new(),
            handed_over: AtomicBool::new(false),
        })
    }

    /// Appends an already persisted event and wakes followers.
    pub fn publish(&self, event: RunEvent) {
        let seq = event.seq;
        let terminal = event.kind.is_terminal();
        // The lock is never held across an await: a std Mutex is right here.
        if let Ok(mut log) = self.log.lock() {
            log.push(event);
        }
        self.published.send_replace(seq);
        if terminal {
            self.finished.send_replace(true);
        }
    }

    fn event_at(&self, seq: u64) -> Option<RunEvent> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.log.lock().ok()?.get(index).cloned()
    }

    /// Asks the run to stop; the first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.stop_reason.set(reason);
        self.cancel.cancel();
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason.get().copied()
    }

    pub fn is_finished(&self) -> bool {
        *self.finished.borrow()
    }

    /// Gives the run up without a terminal event of this node's: its followers here read the
    /// rest (the terminal event another node writes) from the log.
    pub fn hand_over(&self) {
        self.handed_over.store(true, Ordering::SeqCst);
        self.published.send_modify(|_| {});
    }

    fn is_handed_over(&self) -> bool {
        self.handed_over.load(Ordering::SeqCst)
    }
}

/// The events of one run, in `seq` order, ending with its terminal event.
///
/// Obtained from [`crate::Engine::start_run`] or [`crate::Engine::follow`]. Reading is
/// independent of the run: a follower that stops reading holds up nobody.
#[derive(Debug)]
pub struct EventStream {
    source: Source,
}

#[derive(Debug)]
enum Source {
    Live {
        run: Arc<RunShared>,
        next_seq: u64,
        published: watch::Receiver<u64>,
        done: bool,
        /// Where to continue if the run is handed over.
        log: LogReader,
    },
    /// From the event log: a run executing elsewhere, finished, or handed over.
    Log(Box<LogFollower>),
}

impl EventStream {
    pub(crate) fn live(run: Arc<RunShared>, after_seq: u64, log: LogReader) -> Self {
        let published = run.published.subscribe();
        Self {
            source: Source::Live {
                run,
                next_seq: after_seq.saturating_add(1),
                published,
                done: false,
                log,
            },
        }
    }

    pub(crate) fn from_log(follower: LogFollower) -> Self {
        Self {
            source: Source::Log(Box::new(follower)),
        }
    }

    /// The next event, or `None` once the terminal event has been yielded (or the run's events
    /// after the requested `seq` are exhausted).
    pub async fn next(&mut self) -> Option<RunEvent> {
        loop {
            let handed_over = match &mut self.source {
                Source::Log(follower) => return follower.next().await,
                Source::Live {
                    run,
                    next_seq,
                    published,
                    done,
                    log,
                } => loop {
                    if *done {
                        return None;
                    }
                    if let Some(event) = run.event_at(*next_seq) {
                        *next_seq += 1;
                        *done = event.kind.is_terminal();
                        return Some(event);
                    }
                    if run.is_finished() {
                        // Asked to resume past the terminal event: nothing more will come.
                        return None;
                    }
                    if run.is_handed_over() {
                        break log.follow(&run.run_id, next_seq.saturating_sub(1));
                    }
                    if published.changed().await.is_err() {
                        // The run state is gone; everything published was read above.
                        *done = true;
                    }
                },
            };
            self.source = Source::Log(Box::new(handed_over));
        }
    }
}
