//! The active runs: which run occupies which thread, how many runs each user has going, and the
//! counters of how runs ended (for `/metrics`).
//!
//! Admission happens under one lock, so the limits are checked and the reservation is made
//! atomically. A run frees its thread and its place in the user's limit just before its terminal
//! event goes out (so a client that starts again on seeing it is not refused), and leaves the
//! registry once the terminal event is persisted (so a follower that misses it here finds it
//! complete in the store). This module must not touch the store or run anything.

use crate::error::EngineError;
use crate::run::RunShared;
use agentwire_store::RunStatus;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Tool computations waiting for a CPU pool thread, and the pool's threads.
    pub pool_jobs_queued: u64,
    pub pool_threads: u64,
}

pub(crate) struct Registry {
    slots: Mutex<Slots>,
    /// The number of active runs; shutdown waits on it.
    active: watch::Sender<usize>,
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
}

#[derive(Default)]
struct Slots {
    runs: HashMap<String, Arc<RunShared>>,
    /// (user, thread) -> the run occupying it.
    busy_threads: HashMap<(String, String), String>,
    per_user: HashMap<String, usize>,
}

impl Registry {
    pub fn new() -> Self {
        Self {
            slots: Mutex::new(Slots::default()),
            active: watch::Sender::new(0),
            started: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        }
    }

    /// Admits a run of its user on its thread, within the user's limit of concurrent runs.
    ///
    /// # Errors
    /// `RunConflict` when the thread has a running run; `TooManyRuns` past the limit.
    pub fn reserve(&self, run: &Arc<RunShared>, limit: usize) -> Result<(), EngineError> {
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| EngineError::Internal("registry lock poisoned".into()))?;
        let thread_key = (run.user_id.clone(), run.thread_id.clone());
        if let Some(running) = slots.busy_threads.get(&thread_key) {
            return Err(EngineError::RunConflict {
                run_id: running.clone(),
            });
        }
        let count = slots.per_user.entry(run.user_id.clone()).or_insert(0);
        if *count >= limit {
            return Err(EngineError::TooManyRuns {
                limit,
                retry_after_ms: 1_000,
            });
        }
        *count += 1;
        slots.busy_threads.insert(thread_key, run.run_id.clone());
        slots.runs.insert(run.run_id.clone(), run.clone());
        let active = slots.runs.len();
        drop(slots);
        self.active.send_replace(active);
        Ok(())
    }

    /// Counts a run that was admitted and recorded.
    pub fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// Frees the run's thread and its place in the user's limit, and counts how it ended.
    pub fn release_slots(&self, run: &RunShared, status: RunStatus) {
        match status {
            RunStatus::Completed => &self.completed,
            RunStatus::Cancelled => &self.cancelled,
            _ => &self.failed,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.free(run);
    }

    fn free(&self, run: &RunShared) {
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        slots
            .busy_threads
            .remove(&(run.user_id.clone(), run.thread_id.clone()));
        if let Some(count) = slots.per_user.get_mut(&run.user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                slots.per_user.remove(&run.user_id);
            }
        }
    }

    /// Removes the run once its terminal event is persisted: later followers read the store.
    pub fn remove(&self, run: &RunShared) {
        let Ok(mut slots) = self.slots.lock() else {
            return;
        };
        slots.runs.remove(&run.run_id);
        let active = slots.runs.len();
        drop(slots);
        self.active.send_replace(active);
    }

    /// Undoes a reservation whose run could not be recorded; it is not counted.
    pub fn withdraw(&self, run: &RunShared) {
        self.free(run);
        self.remove(run);
    }

    pub fn get(&self, run_id: &str) -> Option<Arc<RunShared>> {
        self.slots.lock().ok()?.runs.get(run_id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<RunShared>> {
        match self.slots.lock() {
            Ok(slots) => slots.runs.values().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Follows the number of active runs.
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
            ..EngineMetrics::default()
        }
    }
}
