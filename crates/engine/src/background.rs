//! Where admitted runs execute: an async runtime of their own, on threads the OS schedules below
//! the ones that accept requests.
//!
//! A run's `agent_started` is written by the task that read the request, on the server's runtime.
//! When every run's work shared that runtime's threads, a new request waited in their queue behind
//! hundreds of runs' steps, and its threads shared the cores equally with the CPU pool's: at 1,000
//! runs arriving in a second, most of a first event's latency was waiting for a core. Here the
//! runs' steps (and the tools on the CPU pool, see `pool.rs`) run on threads with a higher nice
//! value, so the OS gives a core to reading a request and admitting it first, and to the runs
//! whenever it is free: nothing is refused or dropped by this, a run just yields to a newcomer's
//! first event.
//!
//! This module must not know what a run does; it only owns the threads.

use std::io;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// The threads' name (`comm`, at most 15 bytes on Linux), as profilers show it.
const THREAD_NAME: &str = "agentwire-run";

/// How long the runtime's blocking tasks (a tenant's decode) may go on once the engine is gone.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// The runtime admitted runs execute on. It lives until this is dropped (with the engine, once
/// its last run has ended: each run holds the engine).
pub(crate) struct RunThreads {
    handle: Handle,
    _stop: DropGuard,
}

impl RunThreads {
    /// A multi-threaded runtime of `threads` workers (0: one per core) whose threads, workers and
    /// blocking ones alike, run `nice` steps below the caller's priority (0: the same).
    ///
    /// # Errors
    /// The runtime or its owning thread could not be created.
    pub fn start(threads: usize, nice: i32) -> io::Result<RunThreads> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if threads > 0 {
            builder.worker_threads(threads);
        }
        let runtime = builder
            .enable_all()
            .thread_name(THREAD_NAME)
            .on_thread_start(move || lower_this_thread(nice))
            .build()?;
        let handle = runtime.handle().clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        // The runtime is dropped on a thread of its own: dropping it on an async worker (the
        // engine's last holder may be one) would panic.
        std::thread::Builder::new()
            .name(format!("{THREAD_NAME}s"))
            .spawn(move || {
                runtime.block_on(stopped.cancelled());
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })?;
        Ok(RunThreads {
            handle,
            _stop: stop.drop_guard(),
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// Raises the calling thread's nice value by `nice` (lowers its priority). Lowering needs no
/// privilege; a failure (a platform without per-thread priorities) leaves the thread as it was,
/// which costs latency under load, never correctness.
pub(crate) fn lower_this_thread(nice: i32) {
    if nice <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let tid = rustix::thread::gettid();
        let now = getpriority_process(Some(tid)).unwrap_or(0);
        if let Err(err) = setpriority_process(Some(tid), now.saturating_add(nice).min(19)) {
            tracing::debug!(error = %err, "could not lower a background thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn run_threads_are_below_the_callers_priority() {
        let nice_here = || rustix::process::getpriority_process(Some(rustix::thread::gettid()));
        let mine = nice_here().unwrap();
        let threads = RunThreads::start(1, 5).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        threads.handle().spawn(async move {
            let _ = tx.send(nice_here().unwrap());
        });
        let theirs = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(theirs, (mine + 5).min(19));
        // This thread is unchanged: only the runtime's own threads are lowered.
        assert_eq!(nice_here().unwrap(), mine);
    }

    #[test]
    fn dropping_the_threads_ends_their_runtime() {
        let threads = RunThreads::start(1, 0).unwrap();
        let handle = threads.handle().clone();
        drop(threads);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // A runtime that has shut down refuses new tasks' results: their JoinHandle errs.
        loop {
            let joined = handle.spawn(async {});
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let _ = tx.send(rt.block_on(joined).is_err());
            });
            if rx.recv_timeout(Duration::from_secs(10)).unwrap() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the runtime is still running"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
