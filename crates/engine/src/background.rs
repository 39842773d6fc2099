//! Where admitted runs execute: an async runtime of their own, on threads the OS schedules below
//! the ones that accept requests.
//!
//! A run's `agent_started` is written by the task that read the request, on the server's runtime.
//! When every run's work shared that runtime's threads, a new request waited in their queue behind
//! hundreds of runs' steps, and its threads shared the cores equally with the CPU pool's: at 1,000
//! runs arriving in a second, a first event waited for a core. Here the runs' steps (and the
//! tools on the CPU pool, see `pool.rs`) run on threads with a higher nice value, so the OS gives
//! a core to reading a request and admitting it first, and to the runs whenever it is free:
//! nothing is refused or dropped by this, a run just yields to a newcomer's first event.
//!
//! This module must not know what a run does; it only owns the threads.

use std::io;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
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
    /// The runtime or the thread that owns it could not be created.
    pub async fn start(threads: usize, nice: i32) -> io::Result<RunThreads> {
        let priority = Priority::below_this_thread(nice);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let (built_tx, built) = oneshot::channel();
        // The runtime is built, and later dropped, on a thread of its own: dropping it in an
        // async context (an engine's last holder may be an async worker, and a failed start
        // is one) would panic.
        std::thread::Builder::new()
            .name(format!("{THREAD_NAME}s"))
            .spawn(move || {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                if threads > 0 {
                    builder.worker_threads(threads);
                }
                let built = builder
                    .enable_all()
                    .thread_name(THREAD_NAME)
                    .on_thread_start(move || priority.apply_to_this_thread())
                    .build();
                match built {
                    Ok(runtime) => {
                        if built_tx.send(Ok(runtime.handle().clone())).is_ok() {
                            runtime.block_on(stopped.cancelled());
                        }
                        runtime.shutdown_timeout(SHUTDOWN_GRACE);
                    }
                    Err(err) => {
                        let _ = built_tx.send(Err(err));
                    }
                }
            })?;
        let handle = built
            .await
            .map_err(|_| io::Error::other("the run threads' owner ended before building them"))??;
        Ok(RunThreads {
            handle,
            _stop: stop.drop_guard(),
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// A thread priority: the nice value of the thread that made it, raised by some steps (a lower
/// priority). Computed once, on the creating thread, and applied to each new thread as it
/// starts: a thread a lowered one spawns (a runtime's blocking threads) would otherwise inherit
/// the lowered value and go lower still.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Priority {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    nice: Option<i32>,
}

impl Priority {
    /// `steps` below the calling thread's priority; none for 0 (new threads keep what they
    /// inherit).
    pub fn below_this_thread(steps: i32) -> Priority {
        #[cfg(target_os = "linux")]
        let nice = (steps > 0).then(|| {
            let now = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
            now.unwrap_or(0).saturating_add(steps).min(MAX_NICE)
        });
        #[cfg(not(target_os = "linux"))]
        let nice = None;
        Priority { nice }
    }

    /// Gives the calling thread this priority. Lowering needs no privilege; a failure leaves
    /// the thread as it was, which costs latency under load, never correctness.
    pub fn apply_to_this_thread(self) {
        #[cfg(target_os = "linux")]
        if let Some(nice) = self.nice {
            let tid = rustix::thread::gettid();
            if let Err(err) = rustix::process::setpriority_process(Some(tid), nice) {
                tracing::debug!(error = %err, "could not lower a background thread's priority");
            }
        }
    }
}

/// The lowest priority Linux has.
#[cfg(target_os = "linux")]
const MAX_NICE: i32 = 19;

/// The calling thread's nice value, for tests of who runs where.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn nice_of_this_thread() -> i32 {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(i32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn run_threads_are_below_the_callers_priority() {
        let mine = nice_of_this_thread();
        let threads = RunThreads::start(1, 5).await.unwrap();
        let theirs = threads.handle().spawn(async { nice_of_this_thread() });
        assert_eq!(theirs.await.unwrap(), (mine + 5).min(19));
        // A blocking thread the (lowered) runtime starts is as low as its workers, not lower.
        let blocking = threads
            .handle()
            .spawn(async { tokio::task::spawn_blocking(nice_of_this_thread).await });
        assert_eq!(blocking.await.unwrap().unwrap(), (mine + 5).min(19));
        // This thread is unchanged: only the runtime's own threads are lowered.
        assert_eq!(nice_of_this_thread(), mine);
    }

    #[tokio::test]
    async fn dropping_the_threads_ends_their_runtime() {
        let threads = RunThreads::start(1, 0).await.unwrap();
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
