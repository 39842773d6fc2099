//! Where CPU-heavy work runs: a bounded pool of threads sized to the cores, fed in order (FIFO),
//! and the admission queue that lets a bounded number of runs do their analysis at once.
//!
//! Tools and data decoding must not run on the async workers (they would delay every socket and
//! every `agent_started`), nor on an unbounded blocking pool (under load every run would share the
//! CPU and all of them would finish late together). So:
//! - [`CpuPool`] runs jobs on `cores` threads, first submitted first run; a job not started yet
//!   can be withdrawn (its run was cancelled), and the pool counts the jobs running, so a run can
//!   wait until its own work has really stopped;
//! - [`Admission`] admits runs to their analysis in arrival order, `slots` at a time; the others
//!   wait in line, know their place in it, and are refused up front once the line is full.
//!
//! This module must not know what a job or a run does.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use tokio::sync::oneshot;

use crate::background::Priority;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of threads taking jobs in the order they were submitted.
pub(crate) struct CpuPool {
    shared: Arc<PoolShared>,
    threads: usize,
}

struct PoolShared {
    queue: Mutex<PoolQueue>,
    ready: Condvar,
    /// Jobs a thread is running now.
    running: AtomicUsize,
}

#[derive(Default)]
struct PoolQueue {
    /// With the id a [`Submitted`] withdraws them by.
    jobs: VecDeque<(u64, Job)>,
    next_id: u64,
    closed: bool,
}

/// A job handed to the pool: a future of its result, and the way to take it back while it waits.
pub(crate) struct Submitted<R> {
    shared: Arc<PoolShared>,
    id: u64,
    result: oneshot::Receiver<R>,
}

/// The job panicked; the pool thread survived it.
#[derive(Debug)]
pub(crate) struct JobPanicked;

impl CpuPool {
    /// A pool of `threads` threads (at least one), `nice` steps below the caller's priority.
    pub fn new(threads: usize, nice: i32) -> CpuPool {
        let threads = threads.max(1);
        let shared = Arc::new(PoolShared {
            queue: Mutex::new(PoolQueue::default()),
            ready: Condvar::new(),
            running: AtomicUsize::new(0),
        });
        let priority = Priority::below_this_thread(nice);
        for i in 0..threads {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("agentwire-cpu-{i}"))
                .spawn(move || {
                    priority.apply_to_this_thread();
                    work(&shared);
                });
            if let Err(err) = spawned {
                tracing::error!(error = %err, "could not start a CPU pool thread");
            }
        }
        CpuPool { shared, threads }
    }

    /// A pool with one thread per core.
    pub fn per_core(nice: i32) -> CpuPool {
        CpuPool::new(
            std::thread::available_parallelism().map_or(2, usize::from),
            nice,
        )
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues `job` now, behind every job submitted before it; the returned [`Submitted`] is a
    /// future of its result. Dropping it does not stop a started job (a job that must stop early
    /// watches a cancel flag of its own); it may be withdrawn before it starts.
    pub fn run<R, F>(&self, job: F) -> Submitted<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let shared = self.shared.clone();
        let job: Job = Box::new(move || {
            shared.running.fetch_add(1, Ordering::SeqCst);
            let result = std::panic::catch_unwind(AssertUnwindSafe(job));
            // Counted out before the result is sent: whoever has the result finds the job no
            // longer running.
            shared.running.fetch_sub(1, Ordering::SeqCst);
            if let Ok(result) = result {
                let _ = tx.send(result);
            }
        });
        let mut id = 0;
        if let Ok(mut queue) = self.shared.queue.lock() {
            id = queue.next_id;
            queue.next_id += 1;
            queue.jobs.push_back((id, job));
        }
        self.shared.ready.notify_one();
        Submitted {
            shared: self.shared.clone(),
            id,
            result: rx,
        }
    }

    /// Jobs waiting for a thread.
    pub fn queue_depth(&self) -> usize {
        self.shared.queue.lock().map_or(0, |q| q.jobs.len())
    }

    /// Jobs a thread is running now.
    pub fn running(&self) -> usize {
        self.shared.running.load(Ordering::SeqCst)
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        // The threads finish what is queued, then exit.
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.closed = true;
        }
        self.shared.ready.notify_all();
    }
}

fn work(shared: &PoolShared) {
    loop {
        let job = {
            let Ok(mut queue) = shared.queue.lock() else {
                return;
            };
            loop {
                if let Some((_, job)) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.closed {
                    return;
                }
                queue = match shared.ready.wait(queue) {
                    Ok(queue) => queue,
                    Err(_) => return,
                };
            }
        };
        job();
    }
}

impl<R> Submitted<R> {
    /// Takes the job out of the queue if no thread has started it: it never runs, and what it
    /// holds is dropped now. `false` once it has started (its end is awaited instead).
    pub fn withdraw(&self) -> bool {
        let withdrawn = {
            let Ok(mut queue) = self.shared.queue.lock() else {
                return false;
            };
            match queue.jobs.iter().position(|(id, _)| *id == self.id) {
                Some(index) => queue.jobs.remove(index),
                None => None,
            }
        };
        // Dropped outside the lock: the job may hold anything (a memo flight wakes its waiters).
        withdrawn.is_some()
    }
}

impl<R> Future for Submitted<R> {
    type Output = Result<R, JobPanicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.result)
            .poll(cx)
            .map(|result| result.map_err(|_| JobPanicked))
    }
}

/// Admits runs to their analysis `slots` at a time, in arrival order.
pub(crate) struct Admission {
    state: Mutex<Line>,
    slots: usize,
    max_waiting: usize,
}

#[derive(Default)]
struct Line {
    running: usize,
    /// In ticket order.
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
    next_ticket: u64,
}

/// A place among the runs doing analysis; given to the next in line when dropped.
pub(crate) struct Slot {
    admission: Arc<Admission>,
}

/// A place in line.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    ticket: u64,
    granted: Option<oneshot::Receiver<()>>,
}

/// What [`Admission::enter`] gives.
pub(crate) enum Entry {
    Admitted(Slot),
    Queued(Ticket),
}

/// The line is full: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineFull {
    pub waiting: usize,
}

impl Admission {
    pub fn new(slots: usize, max_waiting: usize) -> Arc<Admission> {
        Arc::new(Admission {
            state: Mutex::new(Line::default()),
            slots: slots.max(1),
            max_waiting,
        })
    }

    /// Whether a new run would find room in line; checked before a run is accepted, so an
    /// overloaded server refuses at once instead of failing runs later.
    pub fn check_room(&self) -> Result<(), LineFull> {
        let waiting = self.state.lock().map_or(0, |l| l.waiting.len());
        if waiting >= self.max_waiting {
            Err(LineFull { waiting })
        } else {
            Ok(())
        }
    }

    /// A slot now if one is free and nobody waits, else a place at the end of the line.
    pub fn enter(self: &Arc<Self>) -> Entry {
        let Ok(mut line) = self.state.lock() else {
            return Entry::Admitted(Slot {
                admission: self.clone(),
            });
        };
        if line.running < self.slots && line.waiting.is_empty() {
            line.running += 1;
            return Entry::Admitted(Slot {
                admission: self.clone(),
            });
        }
        let ticket = line.next_ticket;
        line.next_ticket += 1;
        let (tx, rx) = oneshot::channel();
        line.waiting.push_back((ticket, tx));
        Entry::Queued(Ticket {
            admission: self.clone(),
            ticket,
            granted: Some(rx),
        })
    }

    pub fn waiting(&self) -> usize {
        self.state.lock().map_or(0, |l| l.waiting.len())
    }

    pub fn admitted(&self) -> usize {
        self.state.lock().map_or(0, |l| l.running)
    }

    /// Gives a freed slot to the first in line, or frees it.
    fn release(&self) {
        let Ok(mut line) = self.state.lock() else {
            return;
        };
        while let Some((_, tx)) = line.waiting.pop_front() {
            // A receiver that is gone belongs to a ticket being dropped right now; its drop
            // finds itself out of line and takes no slot, so the slot goes on to the next.
            if tx.send(()).is_ok() {
                return;
            }
        }
        line.running = line.running.saturating_sub(1);
    }
}

impl Ticket {
    /// Runs ahead of this one in line (0: next).
    pub fn position(&self) -> usize {
        self.admission.state.lock().map_or(0, |line| {
            line.waiting
                .partition_point(|(ticket, _)| *ticket < self.ticket)
        })
    }

    /// Waits for a slot. Cancel-safe: dropping the future keeps the place in line.
    pub async fn admitted(&mut self) -> Slot {
        if let Some(granted) = self.granted.as_mut() {
            // The sender is only dropped unsent when the admission itself is gone.
            let _ = granted.await;
        }
        self.granted = None;
        Slot {
            admission: self.admission.clone(),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(mut granted) = self.granted.take() else {
            return; // turned into a Slot
        };
        let Ok(mut line) = self.admission.state.lock() else {
            return;
        };
        if let Some(index) = line.waiting.iter().position(|(t, _)| *t == self.ticket) {
            line.waiting.remove(index);
            return;
        }
        drop(line);
        // Out of line: a slot was handed to us (or is being handed right now). Pass it on.
        if granted.try_recv().is_ok() {
            self.admission.release();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn jobs_run_below_the_callers_priority() {
        use crate::background::nice_of_this_thread;
        let mine = nice_of_this_thread();
        let pool = CpuPool::new(1, 4);
        assert_eq!(
            pool.run(nice_of_this_thread).await.unwrap(),
            (mine + 4).min(19)
        );
    }

    #[tokio::test]
    async fn jobs_start_in_the_order_they_were_submitted() {
        let pool = CpuPool::new(1, 0);
        let order = Arc::new(Mutex::new(Vec::new()));
        // Hold the only thread so the rest queue up behind it.
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let blocker = pool.run(move || {
            let _ = started_tx.send(());
            let _ = hold.recv();
        });
        started.recv().unwrap();
        let jobs: Vec<_> = (0..20)
            .map(|i| {
                let order = order.clone();
                pool.run(move || order.lock().unwrap().push(i))
            })
            .collect();
        assert_eq!(pool.queue_depth(), 20);
        release.send(()).unwrap();
        blocker.await.unwrap();
        for job in jobs {
            job.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
        assert_eq!(pool.queue_depth(), 0);
    }

    #[tokio::test]
    async fn a_queued_job_can_be_withdrawn_and_a_running_one_is_counted() {
        let pool = CpuPool::new(1, 0);
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let blocker = pool.run(move || {
            let _ = started_tx.send(());
            let _ = hold.recv();
        });
        started.recv().unwrap();
        assert_eq!(pool.running(), 1);
        let ran = Arc::new(Mutex::new(false));
        let queued = {
            let ran = ran.clone();
            pool.run(move || *ran.lock().unwrap() = true)
        };
        assert!(!blocker.withdraw(), "a started job cannot be withdrawn");
        assert!(queued.withdraw());
        assert_eq!(pool.queue_depth(), 0);
        release.send(()).unwrap();
        blocker.await.unwrap();
        assert_eq!(pool.running(), 0, "counted out before its result is sent");
        assert!(queued.await.is_err(), "a withdrawn job has no result");
        assert_eq!(pool.run(|| 1).await.unwrap(), 1);
        assert!(!*ran.lock().unwrap(), "a withdrawn job never runs");
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_pool_goes_on() {
        let pool = CpuPool::new(1, 0);
        assert!(pool.run(|| panic!("boom")).await.is_err());
        assert_eq!(pool.run(|| 2 + 2).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn runs_are_admitted_in_order_within_the_slots() {
        let admission = Admission::new(2, 100);
        let Entry::Admitted(first) = admission.enter() else {
            panic!("a free slot admits at once")
        };
        let Entry::Admitted(second) = admission.enter() else {
            panic!()
        };
        let mut tickets = Vec::new();
        for _ in 0..5 {
            match admission.enter() {
                Entry::Queued(ticket) => tickets.push(ticket),
                Entry::Admitted(_) => panic!("over the bound"),
            }
        }
        let positions: Vec<usize> = tickets.iter().map(Ticket::position).collect();
        assert_eq!(positions, [0, 1, 2, 3, 4]);
        assert_eq!(admission.waiting(), 5);
        assert_eq!(admission.admitted(), 2);

        // The third in line leaves (its run was cancelled): those behind move up.
        drop(tickets.remove(2));
        let positions: Vec<usize> = tickets.iter().map(Ticket::position).collect();
        assert_eq!(positions, [0, 1, 2, 3]);

        // Freed slots go to the line in order.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = tokio::task::JoinSet::new();
        for (i, ticket) in tickets.into_iter().enumerate() {
            let order = order.clone();
            let mut ticket = ticket;
            waiters.spawn(async move {
                let slot = ticket.admitted().await;
                order.lock().unwrap().push(i);
                slot
            });
        }
        drop(first);
        let slot = waiters.join_next().await.unwrap().unwrap();
        assert_eq!(*order.lock().unwrap(), [0]);
        assert_eq!(admission.admitted(), 2, "never more than the slots");
        drop(second);
        drop(slot);
        let mut rest = Vec::new();
        while let Some(slot) = waiters.join_next().await {
            rest.push(slot.unwrap());
            if rest.len() == 2 {
                assert_eq!(admission.admitted(), 2);
                rest.clear();
            }
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
    }

    #[test]
    fn a_full_line_refuses_up_front() {
        let admission = Admission::new(1, 2);
        let _slot = admission.enter();
        let _a = admission.enter();
        assert!(admission.check_room().is_ok());
        let _b = admission.enter();
        assert_eq!(admission.check_room(), Err(LineFull { waiting: 2 }));
    }
}
