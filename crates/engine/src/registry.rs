//! The runs this node executes, and the counters of how they ended and how many retention
//! deleted (for `/metrics`).
//!
//! Admission is not here: the limits (one run per thread, runs per user) hold across every node
//! sharing the database, so the store decides them in one transaction (`Store::admit_run`). A
//! run enters the registry before it is admitted (so the node's orphan check never mistakes a
//! run being admitted for one it lost) and leaves it once its terminal event is persisted (so a
//! follower that misses it here finds it complete in the store). This module must not touch the
//! store or run anything.

use crate::run::{RunShared, StopReason};
use agentwire_store::RunStatus;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineMetrics {
    pub runs_started: u64,
    pub runs_completed: u64,
    pub runs_failed: u64,
    pub runs_cancelled: u64,
    pub runs_active: u64,
    /// Memoized tool results reused, and computed.
    pub memo_hits: u64,
    pub memo_misses: u64,
    /// Bytes and entries of memoized results kept now.
    pub memo_bytes: u64,
    pub memo_entries: u64,
    /// Runs waiting in line for an analysis slot, and runs doing their analysis now.
    pub runs_waiting: u64,
    pub runs_admitted: u64,
    /// Tool computations waiting for a CPU pool thread, those running on one now, and the pool's
    /// threads.
    pub pool_jobs_queued: u64,
    pub pool_jobs_running: u64,
    pub pool_threads: u64,
    /// Runs this node deleted past the retention age (with their events).
    pub runs_deleted: u64,
}

pub(crate) struct Registry {
    runs: Mutex<HashMap<String, Arc<RunShared>>>,
    /// The number of runs executing here; shutdown waits on it.
    active: watch::Sender<usize>,
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    /// Runs deleted by retention (`retention.rs`), for `/metrics`.
    deleted: AtomicU64,
    /// Set when a run may be left in flight in the database with nobody executing it (its end
    /// could not be recorded): the node's orphan check looks for it.
    unrecorded: AtomicBool,
}

impl Registry {
    pub fn new() -> Self {
        Self {
            runs: Mutex::new(HashMap::new()),
            active: watch::Sender::new(0),
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            unrecorded: AtomicBool::new(false),
        }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<RunShared>>> {
        // Held only for map operations that cannot panic: a poisoned lock holds valid data.
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a run about to be admitted.
    pub fn insert(&self, run: &Arc<RunShared>) {
        let mut runs = self.runs();
        runs.insert(run.run_id.clone(), run.clone());
        let active = runs.len();
        drop(runs);
        self.active.send_replace(active);
    }

    /// Counts a run that was admitted and recorded.
    pub fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts how a run ended.
    pub fn ended(&self, status: RunStatus) {
        match status {
            RunStatus::Completed => &self.completed,
            RunStatus::Cancelled => &self.cancelled,
            _ => &self.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Removes the run: once its terminal event is persisted, or when it was not admitted.
    pub fn remove(&self, run: &RunShared) {
        let mut runs = self.runs();
        runs.remove(&run.run_id);
        let active = runs.len();
        drop(runs);
        self.active.send_replace(active);
    }

    pub fn get(&self, run_id: &str) -> Option<Arc<RunShared>> {
        self.runs().get(run_id).cloned()
    }

    pub fn contains(&self, run_id: &str) -> bool {
        self.runs().contains_key(run_id)
    }

    pub fn all(&self) -> Vec<Arc<RunShared>> {
        self.runs().values().cloned().collect()
    }

    /// Tells every run executing here to stop; returns how many there were.
    pub fn stop_all(&self, reason: StopReason) -> usize {
        let runs = self.all();
        for run in &runs {
            run.stop(reason);
        }
        runs.len()
    }

    /// Counts runs retention deleted.
    pub fn deleted(&self, runs: u64) {
        self.deleted.fetch_add(runs, Ordering::Relaxed);
    }

    /// A run stopped (or was refused) without its end recorded in the database.
    pub fn note_unrecorded(&self) {
        self.unrecorded.store(true, Ordering::SeqCst);
    }

    /// Whether a run was noted since the last call.
    pub fn take_unrecorded(&self) -> bool {
        self.unrecorded.swap(false, Ordering::SeqCst)
    }

    /// Follows the number of runs executing here.
    pub fn watch_active(&self) -> watch::Receiver<usize> {
        self.active.subscribe()
    }

    pub fn metrics(&self) -> EngineMetrics {
        EngineMetrics {
            runs_started: self.started.load(Ordering::Relaxed),
            runs_completed: self.completed.load(Ordering::Relaxed),
            runs_failed: self.failed.load(Ordering::Relaxed),
            runs_cancelled: self.cancelled.load(Ordering::Relaxed),
            runs_active: *self.active.borrow() as u64,
            runs_deleted: self.deleted.load(Ordering::Relaxed),
            ..EngineMetrics::default()
        }
    }
}
