//! Group commit for SQLite's one writer of the runs' writes (admissions, status changes, ends,
//! batches of events): a thread of its own that calls SQLite directly and commits many
//! callers' short writes at once.
//!
//! With `synchronous=FULL` every commit is an fsync, and SQLite has one writer: committing each
//! run's admission and end alone caps the server at one run per two fsyncs, whatever the CPU.
//! So these writes are jobs for one thread that takes whatever jobs are waiting (up to
//! [`MOST_JOBS_PER_COMMIT`]) and runs them in one `BEGIN IMMEDIATE` transaction, then commits
//! once and only then answers each caller. The thread owns its connection and calls SQLite
//! synchronously (rusqlite): a whole commit runs without handing each statement to another
//! thread and waiting to be woken with its answer, which, through sqlx's SQLite thread, was
//! ~20 context switches a run and half the writer's time when the cores were busy.
//!
//! Writes that are long or rare (usage uploads, retention, node registration) use sqlx's writer
//! connection, a second connection to the same file. They take a [`Turn`] first: queued like a
//! job, it is given when the thread is between commits and holds the thread there until dropped.
//! So the two connections never wait on SQLite's lock, whose busy handler sleeps and retries
//! (up to 100 ms at a time: a write waiting for a busy writer could starve, or oversleep), and
//! the writes keep their order.
//!
//! A job of several statements must not leave half its writes behind when it fails, so it
//! would need a savepoint of its own, which most batches never use. So a batch first runs
//! without savepoints; only if a job that needs one fails is the whole transaction rolled back
//! and the batch run again, each such job under its own savepoint. Jobs are therefore run more
//! than once, and must depend on nothing but the database.
//!
//! A job may be marked to go ahead ([`Writes::run_ahead`]: a run's admission, whose first event
//! a person is waiting to see). When jobs of both kinds are waiting, those ahead are committed
//! first, in a small transaction of their own, and the others after. While the others' batch
//! is being run, the thread looks at what arrived after each of its jobs: a job ahead that
//! arrived is run then and the batch is committed at once, the jobs of it not yet run waiting
//! for the next. So an admission waits for one job and a commit, not for a large batch of
//! other runs' events queued before it. For the same reason the thread copies the WAL into the
//! database file itself, between commits, instead of letting SQLite do it inside the commit
//! that crossed its threshold: in small steps (from [`IDLE_CHECKPOINT_PAGES`]) after a commit
//! that leaves nothing waiting, and at SQLite's 1,000 pages, once the waiting admissions are
//! committed, while writes keep coming. A write that arrives during a checkpoint waits for it,
//! so a short one is what it should find; a busy writer pays each checkpoint's fixed cost (two
//! fsyncs) less often. Checkpoints from another connection, beside the writer, made its commits
//! slower (their syncs compete).
//!
//! This module must not answer a job before the commit that holds its writes, nor let one job's
//! failure undo another's writes (a failed job's savepoint is rolled back, the others commit).

use std::cell::Cell;
use std::collections::VecDeque;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreResult};

/// Most jobs per commit: many enough to share one fsync among all runs writing at once, few
/// enough that one commit does not hold the writer long.
const MOST_JOBS_PER_COMMIT: usize = 512;

/// Jobs waiting for the thread; past it callers wait to queue (a slow disk pushes back).
const QUEUE_CAPACITY: usize = 4 * MOST_JOBS_PER_COMMIT;

/// The writer thread's name (`comm`, at most 15 bytes on Linux), as profilers show it.
const THREAD_NAME: &str = "sqlite-commits";

/// One caller's write, run inside the batch's transaction; answered after the commit.
trait Job: Send {
    /// Runs the write on the connection (inside a savepoint or the transaction itself) and
    /// keeps its outcome, replacing the one of an earlier attempt; false when it failed and
    /// its writes must be rolled back.
    fn run(&mut self, conn: &Connection) -> bool;

    /// Whether a failure could leave some of its writes behind: then it runs under a
    /// savepoint of its own.
    fn needs_savepoint(&self) -> bool;

    /// Whether it is committed ahead of the jobs that are not ([`Writes::run_ahead`]).
    fn ahead(&self) -> bool;

    /// Answers the caller: the write's outcome if it failed or `commit` is `None` (the batch
    /// committed), else the commit's error.
    fn answer(self: Box<Self>, commit: Option<&StoreError>);
}

struct Pending<T, F> {
    work: F,
    savepoint: bool,
    ahead: bool,
    outcome: Option<StoreResult<T>>,
    done: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let outcome = (self.work)(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn needs_savepoint(&self) -> bool {
        self.savepoint
    }

    fn ahead(&self) -> bool {
        self.ahead
    }

    fn answer(self: Box<Self>, commit: Option<&StoreError>) {
        let answer = match (self.outcome, commit) {
            (Some(Err(failed)), _) => Err(failed),
            (Some(Ok(value)), None) => Ok(value),
            (_, Some(error)) => Err(error.for_each_caller()),
            (None, None) => Err(StoreError::Database(sqlx::Error::Protocol(
                "a write was answered without being run".into(),
            ))),
        };
        let _ = self.done.send(answer); // the caller may have given up; fine
    }
}

/// What waits for the writer thread: a job, or another connection's turn to write.
enum Queued {
    Job(Box<dyn Job>),
    Turn(TurnRequest),
}

/// A turn asked for ([`Writes::turn`]): told when it is given, released when its holder drops
/// the sender of `released`.
struct TurnRequest {
    given: oneshot::Sender<()>,
    released: std::sync::mpsc::Receiver<()>,
}

/// The writer thread held between commits, for a write through another connection: it is
/// released when this is dropped.
#[derive(Debug)]
pub(super) struct Turn {
    _held: std::sync::mpsc::Sender<()>,
}

/// The queue in front of the writer thread. Cloning shares the queue; the thread stops (and
/// closes its connection) when the last handle is dropped.
#[derive(Clone)]
pub(super) struct Writes {
    queue: mpsc::Sender<Queued>,
}

impl std::fmt::Debug for Writes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writes").finish_non_exhaustive()
    }
}

impl Writes {
    /// Starts the writer thread over the connection `open` makes there (opening a file is
    /// blocking work, kept off the caller's runtime). Returns once the connection is open.
    pub(super) async fn start(
        open: impl FnOnce() -> StoreResult<Connection> + Send + 'static,
    ) -> StoreResult<Writes> {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        let (opened, is_open) = oneshot::channel();
        std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || match open() {
                Ok(conn) => {
                    // In place of SQLite's own checkpoint inside the commit (see
                    // `checkpoint_past`).
                    conn.wal_hook(Some(note_wal_size));
                    let _ = opened.send(Ok(()));
                    run_batches(&conn, jobs);
                }
                Err(error) => {
                    let _ = opened.send(Err(error));
                }
            })
            .map_err(super::local_io)?;
        is_open.await.map_err(gone)??;
        Ok(Writes { queue })
    }

    /// Runs `work` in the next batch and returns its outcome once that batch has committed.
    /// `work` must not begin or end a transaction of its own (a savepoint is fine, released or
    /// rolled back before it returns): an error it returns rolls back what it wrote, and only
    /// that. It may be called again after such a rollback (see the module's doc), so it must
    /// not consume what it writes.
    pub(super) async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.queue(work, true, false).await
    }

    /// [`Writes::run`] for work that is committed ahead of other waiting work, in a commit of
    /// its own (see the module's doc): a run's admission.
    pub(super) async fn run_ahead<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.queue(work, true, true).await
    }

    /// [`Writes::run`] for work that writes in one statement, or that undoes its own partial
    /// writes: it needs no savepoint.
    pub(super) async fn run_atomic<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.queue(work, false, false).await
    }

    /// Waits until every job queued before it is committed and the thread is between commits,
    /// and holds it there until the turn is dropped: for a write through another connection
    /// to the same file, which then finds SQLite's write lock free. Given in queue order.
    pub(super) async fn turn(&self) -> StoreResult<Turn> {
        let (given, is_given) = oneshot::channel();
        let (held, released) = std::sync::mpsc::channel();
        self.queue
            .send(Queued::Turn(TurnRequest { given, released }))
            .await
            .map_err(gone)?;
        is_given.await.map_err(gone)?;
        Ok(Turn { _held: held })
    }

    async fn queue<T, F>(&self, work: F, savepoint: bool, ahead: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work,
            savepoint,
            ahead,
            outcome: None,
            done,
        });
        // Either side failing means the thread is gone.
        self.queue.send(Queued::Job(job)).await.map_err(gone)?;
        answer.await.map_err(gone)?
    }
}

/// What a caller is told when the writer thread is gone (the store is being dropped): the same
/// as a closed pool.
fn gone<E>(_: E) -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// What waits for the writer thread: the channel, and what the thread already took from it (up
/// to [`MOST_JOBS_PER_COMMIT`]), so that a job that goes ahead is seen between two jobs of a
/// batch being run.
struct Waiting {
    channel: mpsc::Receiver<Queued>,
    taken: VecDeque<Queued>,
}

impl Waiting {
    /// Blocks until something waits; false once every handle is gone and nothing is left.
    fn wait(&mut self) -> bool {
        if self.taken.is_empty() {
            match self.channel.blocking_recv() {
                Some(queued) => self.taken.push_back(queued),
                None => return false,
            }
        }
        true
    }

    /// Takes what arrived in the channel, up to the bound (beyond it, callers wait to queue);
    /// whether a job that goes ahead arrived. Only an arrival can be one that
    /// [`Waiting::take_ahead`] has not taken yet, so a batch being run looks no further.
    fn take_arrivals(&mut self) -> bool {
        let mut ahead = false;
        while self.taken.len() < MOST_JOBS_PER_COMMIT {
            match self.channel.try_recv() {
                Ok(queued) => {
                    ahead |= matches!(&queued, Queued::Job(job) if job.ahead());
                    self.taken.push_back(queued);
                }
                Err(_) => break,
            }
        }
        ahead
    }

    fn is_empty(&self) -> bool {
        self.taken.is_empty() && self.channel.is_empty()
    }

    /// The turn at the front, if one is there: every job queued before it is committed.
    fn take_turn(&mut self) -> Option<TurnRequest> {
        match self.taken.pop_front() {
            Some(Queued::Turn(request)) => Some(request),
            Some(job) => {
                self.taken.push_front(job);
                None
            }
            None => None,
        }
    }

    /// The jobs that go ahead, of those queued before any turn (jobs queued after a turn wait
    /// for it), in their order.
    fn take_ahead(&mut self) -> Vec<Box<dyn Job>> {
        let before_turn = self
            .taken
            .iter()
            .position(|queued| matches!(queued, Queued::Turn(_)))
            .unwrap_or(self.taken.len());
        let is_ahead = |queued: &Queued| matches!(queued, Queued::Job(job) if job.ahead());
        if !self.taken.range(..before_turn).any(is_ahead) {
            return Vec::new();
        }
        let after_turn = self.taken.split_off(before_turn);
        let mut ahead = Vec::new();
        for queued in std::mem::take(&mut self.taken) {
            match queued {
                Queued::Job(job) if job.ahead() => ahead.push(job),
                other => self.taken.push_back(other),
            }
        }
        self.taken.extend(after_turn);
        ahead
    }

    /// The jobs at the front, up to a turn or [`MOST_JOBS_PER_COMMIT`].
    fn take_batch(&mut self) -> VecDeque<Box<dyn Job>> {
        let mut batch = VecDeque::new();
        while batch.len() < MOST_JOBS_PER_COMMIT {
            match self.taken.pop_front() {
                Some(Queued::Job(job)) => batch.push_back(job),
                Some(turn) => {
                    self.taken.push_front(turn);
                    break;
                }
                None => break,
            }
        }
        batch
    }

    /// Puts jobs taken but not run back at the front, in their order.
    fn put_back(&mut self, jobs: impl DoubleEndedIterator<Item = Box<dyn Job>>) {
        for job in jobs.rev() {
            self.taken.push_front(Queued::Job(job));
        }
    }
}

/// The writer thread's loop: the jobs that go ahead in a commit of their own, then the others
/// (up to [`MOST_JOBS_PER_COMMIT`] or a turn) in one that ends early for a job ahead that
/// arrives meanwhile, then the turn, until every handle is gone.
fn run_batches(conn: &Connection, channel: mpsc::Receiver<Queued>) {
    let mut waiting = Waiting {
        channel,
        taken: VecDeque::new(),
    };
    while waiting.wait() {
        waiting.take_arrivals();
        if let Some(TurnRequest { given, released }) = waiting.take_turn() {
            if given.send(()).is_ok() {
                // Until the holder drops its turn (a holder that gave up early drops it too).
                let _ = released.recv();
            }
            continue;
        }
        let mut committed = true;
        let ahead = waiting.take_ahead();
        if !ahead.is_empty() {
            committed = settle(conn, ahead.into(), None);
        }
        checkpoint_past(conn, CHECKPOINT_PAGES);
        let batch = waiting.take_batch();
        if !batch.is_empty() {
            committed = settle(conn, batch, Some(&mut waiting));
        }
        if committed && waiting.is_empty() {
            checkpoint_past(conn, IDLE_CHECKPOINT_PAGES);
        }
    }
}

/// Runs the batch in one transaction, commits it and answers its jobs; whether it committed.
/// With `waiting`, the batch ends early when a job that goes ahead arrives (see
/// [`run_until_ahead`]).
fn settle(conn: &Connection, batch: VecDeque<Box<dyn Job>>, waiting: Option<&mut Waiting>) -> bool {
    let (ran, failed) = match control(conn, "BEGIN IMMEDIATE") {
        Ok(()) => {
            let (mut ran, clean) = run_until_ahead(conn, batch, waiting);
            let failed = finish(conn, &mut ran, clean).err();
            (ran, failed)
        }
        Err(error) => (Vec::from(batch), Some(error)),
    };
    if let Some(error) = &failed {
        tracing::warn!(%error, writes = ran.len(), "a batch of writes failed as a whole");
        // A failed COMMIT may leave the transaction open; the next batch begins afresh.
        if !conn.is_autocommit() {
            let _ = control(conn, "ROLLBACK");
        }
    }
    ran.into_iter().for_each(|job| job.answer(failed.as_ref()));
    failed.is_none()
}

/// Runs the batch's jobs in the open transaction, without savepoints, and returns those that
/// belong to its commit, and false when one that needs a savepoint failed (the transaction
/// then holds its partial writes, and the batch's jobs not run yet belong to it too).
///
/// With `waiting`, arrivals are looked at after each job: when a job that goes ahead has
/// arrived, it is run and the batch ends there, so that it waits for one job and a commit, not
/// for the rest of the batch; the jobs not run are put back at the front, to go next.
fn run_until_ahead(
    conn: &Connection,
    mut batch: VecDeque<Box<dyn Job>>,
    mut waiting: Option<&mut Waiting>,
) -> (Vec<Box<dyn Job>>, bool) {
    let mut ran = Vec::with_capacity(batch.len());
    while let Some(job) = batch.pop_front() {
        if !run_one(conn, job, &mut ran) {
            ran.extend(batch);
            return (ran, false);
        }
        let Some(waiting) = waiting.as_deref_mut() else {
            continue;
        };
        if !waiting.take_arrivals() {
            continue;
        }
        // (Empty when the job ahead arrived after a turn: it waits for the turn.)
        let ahead = waiting.take_ahead();
        if ahead.is_empty() {
            continue;
        }
        waiting.put_back(batch.into_iter());
        let mut ahead = ahead.into_iter();
        while let Some(job) = ahead.next() {
            if !run_one(conn, job, &mut ran) {
                ran.extend(ahead);
                return (ran, false);
            }
        }
        return (ran, true);
    }
    (ran, true)
}

/// Runs one job into `ran`; false when it failed and left writes that need its savepoint.
fn run_one(conn: &Connection, mut job: Box<dyn Job>, ran: &mut Vec<Box<dyn Job>>) -> bool {
    let clean = job.run(conn) || !job.needs_savepoint();
    ran.push(job);
    clean
}

/// Ends the transaction the jobs ran in: commits it when `clean`; otherwise rolls it back and,
/// unless the failed job ran alone (its failure undoes the whole transaction), runs them all
/// again, each that needs one under its own savepoint, and commits.
fn finish(conn: &Connection, ran: &mut [Box<dyn Job>], clean: bool) -> StoreResult<()> {
    if clean {
        return control(conn, "COMMIT");
    }
    control(conn, "ROLLBACK")?;
    if let [_] = ran {
        return Ok(());
    }
    control(conn, "BEGIN IMMEDIATE")?;
    for job in ran.iter_mut() {
        if !job.needs_savepoint() {
            // Its failure wrote nothing (or undid itself): nothing to roll back.
            job.run(conn);
            continue;
        }
        control(conn, "SAVEPOINT job")?;
        if !job.run(conn) {
            control(conn, "ROLLBACK TO job")?;
        }
        control(conn, "RELEASE job")?;
    }
    control(conn, "COMMIT")
}

/// WAL pages at which a writer with writes waiting copies them into the database file:
/// SQLite's own threshold.
const CHECKPOINT_PAGES: i32 = 1_000;

/// WAL pages at which a writer with nothing waiting copies them: a checkpoint of about 1 ms,
/// which is what a write arriving during it waits for. (50 and 250 did as well, with 1,000
/// runs held open asking up to 900 times a second: docs/benchmarks.md, the twelfth pass.)
const IDLE_CHECKPOINT_PAGES: i32 = 100;

thread_local! {
    /// Pages in the WAL after the writer's last commit, as SQLite's WAL hook told it (a hook
    /// is a plain function: this is its only way to say something to the writer's loop).
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// SQLite's WAL hook on the writer's connection, called by each commit. Setting it turns off
/// SQLite's automatic checkpoint, which would copy ~4 MiB and sync the database file inside
/// the commit that crosses 1,000 pages, before that commit's callers (admissions among them)
/// are answered.
fn note_wal_size(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// The checkpoint SQLite would have run inside a commit, run between commits instead, once the
/// WAL holds `pages`: after the callers of the commit that crossed it (and, while writes keep
/// coming, the admissions waiting since) are answered. Passive, as SQLite's own: it copies what
/// no reader still needs, and the next write starts the WAL over once all of it is copied.
fn checkpoint_past(conn: &Connection, pages: i32) {
    if WAL_PAGES.get() < pages {
        return;
    }
    WAL_PAGES.set(0);
    // A failure costs only WAL space: the next commit past the threshold tries again.
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::debug!(%error, "the writer's WAL checkpoint failed");
    }
}

/// Runs one statement of transaction control (cached: every batch runs the same few).
fn control(conn: &Connection, sql: &str) -> StoreResult<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    /// A database with one table of unique keys, in a directory of its own.
    fn database() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        (dir, path)
    }

    async fn writes(path: &std::path::Path) -> Writes {
        let path = path.to_owned();
        Writes::start(move || Ok(Connection::open(path)?))
            .await
            .unwrap()
    }

    /// What is committed, read beside the writer.
    fn keys(path: &std::path::Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut select = conn.prepare("SELECT k FROM t ORDER BY k").unwrap();
        select
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn insert(key: &'static str) -> impl FnMut(&Connection) -> StoreResult<()> + Send + 'static {
        move |conn| {
            conn.execute("INSERT INTO t (k) VALUES (?1)", [key])?;
            Ok(())
        }
    }

    /// Writes "c", then fails: what it wrote must be undone.
    fn failing(conn: &Connection) -> StoreResult<()> {
        conn.execute("INSERT INTO t (k) VALUES ('c')", [])?;
        Err(StoreError::InvalidArgument("changed my mind".into()))
    }

    /// A gate a job waits at, on the writer thread, until the test opens it.
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<bool>, Condvar)>);

    impl Gate {
        fn open(&self) {
            *self.0.0.lock().unwrap() = true;
            self.0.1.notify_all();
        }

        fn wait(&self) {
            let mut open = self.0.0.lock().unwrap();
            while !*open {
                open = self.0.1.wait(open).unwrap();
            }
        }
    }

    /// `insert(key)` that says when it starts, then holds the writer until `go` opens.
    fn held(
        key: &'static str,
        started: tokio::sync::watch::Sender<bool>,
        go: Gate,
    ) -> impl FnMut(&Connection) -> StoreResult<()> + Send + 'static {
        let mut insert = insert(key);
        move |conn| {
            started.send_replace(true);
            go.wait();
            insert(conn)
        }
    }

    /// A job writing `key` that holds the writer busy, running by the time this returns,
    /// until the gate opens.
    async fn hold(
        writes: &Writes,
        key: &'static str,
    ) -> (Gate, tokio::task::JoinHandle<StoreResult<()>>) {
        let gate = Gate::default();
        let (job, mut running) = queue_held(writes, key, &gate);
        running.wait_for(|yes| *yes).await.unwrap();
        (gate, job)
    }

    /// Queues `held(key)`, waiting at `go`, from a task of its own: the task, and whether the
    /// job has started.
    fn queue_held(
        writes: &Writes,
        key: &'static str,
        go: &Gate,
    ) -> (
        tokio::task::JoinHandle<StoreResult<()>>,
        tokio::sync::watch::Receiver<bool>,
    ) {
        let (started, running) = tokio::sync::watch::channel(false);
        let job = tokio::spawn({
            let writes = writes.clone();
            let go = go.clone();
            async move { writes.run(held(key, started, go)).await }
        });
        (job, running)
    }

    /// Queues `insert(key)` ahead of other jobs, from a task of its own.
    fn queue_ahead(writes: &Writes, key: &'static str) -> tokio::task::JoinHandle<StoreResult<()>> {
        let writes = writes.clone();
        tokio::spawn(async move { writes.run_ahead(insert(key)).await })
    }

    /// Jobs waiting in the queue, not yet taken by the writer.
    fn queued(writes: &Writes) -> usize {
        QUEUE_CAPACITY - writes.queue.capacity()
    }

    async fn until_queued(writes: &Writes, jobs: usize) {
        while queued(writes) < jobs {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// A job run ahead is committed before the jobs queued with it, in a commit of its own: it
    /// is answered while the job queued before it is still being written.
    #[tokio::test]
    async fn a_job_ahead_is_committed_before_the_jobs_waiting_with_it() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        let release_slow = Gate::default();
        // The writer is busy with "hold" while "slow" and then "ahead" queue behind it.
        let (release_hold, hold) = hold(&writes, "hold").await;
        let (slow, mut slow_running) = queue_held(&writes, "slow", &release_slow);
        until_queued(&writes, 1).await;
        let ahead = queue_ahead(&writes, "ahead");
        until_queued(&writes, 2).await;
        release_hold.open();
        hold.await.unwrap().unwrap();
        // Committed while "slow", queued first, has not even started.
        tokio::time::timeout(Duration::from_secs(10), ahead)
            .await
            .expect("the job ahead waits for the one queued before it")
            .unwrap()
            .unwrap();
        assert_eq!(keys(&path), ["ahead", "hold"]);
        slow_running.wait_for(|yes| *yes).await.unwrap();
        release_slow.open();
        slow.await.unwrap().unwrap();
        assert_eq!(keys(&path), ["ahead", "hold", "slow"]);
    }

    /// A job ahead that arrives while a batch is being run does not wait for the rest of that
    /// batch: it is committed with the jobs run so far, and the others are run after it.
    #[tokio::test]
    async fn a_job_ahead_that_arrives_during_a_batch_is_committed_before_the_rest_of_it() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        // "first" and "second" queue while "hold" holds the writer, so they form one batch.
        let (release_hold, hold) = hold(&writes, "hold").await;
        let (release_first, release_second) = (Gate::default(), Gate::default());
        let (first, mut first_running) = queue_held(&writes, "first", &release_first);
        until_queued(&writes, 1).await;
        let (second, _) = queue_held(&writes, "second", &release_second);
        until_queued(&writes, 2).await;
        release_hold.open();
        hold.await.unwrap().unwrap();
        // The batch is being run: "first" is running, "second" waits its turn in the batch.
        first_running.wait_for(|yes| *yes).await.unwrap();
        let ahead = queue_ahead(&writes, "ahead");
        until_queued(&writes, 1).await;
        release_first.open();
        tokio::time::timeout(Duration::from_secs(10), ahead)
            .await
            .expect("the job ahead waited for the rest of the batch")
            .unwrap()
            .unwrap();
        first.await.unwrap().unwrap();
        assert_eq!(keys(&path), ["ahead", "first", "hold"]);
        release_second.open();
        second.await.unwrap().unwrap();
        assert_eq!(keys(&path), ["ahead", "first", "hold", "second"]);
    }

    /// `bytes` in one job, as one row (keyed by its size).
    fn large(bytes: usize) -> impl FnMut(&Connection) -> StoreResult<()> + Send + 'static {
        let value = format!("{bytes}{}", "x".repeat(bytes));
        move |conn| {
            conn.execute("INSERT INTO t (k) VALUES (?1)", [&value])?;
            Ok(())
        }
    }

    /// A write and a turn queued behind a held one, so that the write is committed while
    /// something still waits (the turn); the turn, once given.
    async fn commit_busy(
        writes: &Writes,
        write: impl FnMut(&Connection) -> StoreResult<()> + Send + 'static,
    ) -> Turn {
        let (release, first) = hold(writes, "first").await;
        let job = tokio::spawn({
            let writes = writes.clone();
            async move { writes.run(write).await }
        });
        until_queued(writes, 1).await;
        let turn = tokio::spawn({
            let writes = writes.clone();
            async move { writes.turn().await }
        });
        until_queued(writes, 2).await;
        release.open();
        first.await.unwrap().unwrap();
        job.await.unwrap().unwrap();
        turn.await.unwrap().unwrap()
    }

    /// The WAL is copied into the database file between commits: not inside the commit that
    /// takes it past the threshold (its callers are answered first), and before the next.
    #[tokio::test]
    async fn the_writer_checkpoints_between_commits_not_inside_one() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        // ~6 MiB in one commit: past the 1,000 pages at which the writer checkpoints. The turn
        // holds the writer right after its commit.
        let turn = commit_busy(&writes, large(6 << 20)).await;
        assert!(
            database_bytes(&path) < 1 << 20,
            "the commit was checkpointed before its caller was answered"
        );
        drop(turn);
        writes.run(insert("next")).await.unwrap();
        assert!(
            database_bytes(&path) > 6 << 20,
            "the WAL was not checkpointed before the next commit ({} bytes)",
            database_bytes(&path)
        );
    }

    /// A writer with writes waiting leaves a WAL below 1,000 pages as it is; the commit that
    /// leaves nothing waiting is followed by the checkpoint.
    #[tokio::test]
    async fn a_busy_writer_leaves_small_checkpoints_for_later() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        // ~150 pages.
        let turn = commit_busy(&writes, large(600 << 10)).await;
        assert!(database_bytes(&path) < 400 << 10, "checkpointed while busy");
        drop(turn);
        writes.run(insert("next")).await.unwrap();
        until_database_holds(&path, 400 << 10).await;
    }

    /// The size of the database file (not its WAL).
    fn database_bytes(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    /// Waits up to 10 s for the database file to reach `bytes`: a checkpoint after the last
    /// commit follows its answer.
    async fn until_database_holds(path: &std::path::Path, bytes: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while database_bytes(path) < bytes && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            database_bytes(path) >= bytes,
            "the WAL was not copied ({} bytes in the database file)",
            database_bytes(path)
        );
    }

    /// A writer with nothing left to do copies the WAL into the database file once it holds a
    /// hundred pages or so, long before the 1,000 at which a busy one does.
    #[tokio::test]
    async fn an_idle_writer_checkpoints_in_small_steps() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        // ~150 pages, one commit at a time, each leaving nothing waiting.
        for n in 0..6 {
            writes.run(large((100 << 10) + n)).await.unwrap();
        }
        until_database_holds(&path, 400 << 10).await;
    }

    #[tokio::test]
    async fn a_failed_write_is_undone_alone_and_the_others_commit_together() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        // Queued while the writer is held busy, so they share a batch: the second "b" fails on
        // the primary key, and `failing` is undone, while the others commit.
        let (release, hold) = hold(&writes, "held").await;
        let (a, b1, b2, b3, c, d, ()) = tokio::join!(
            writes.run(insert("a")),
            writes.run(insert("b")),
            writes.run(insert("b")),
            // One statement: SQLite undoes a failed statement by itself.
            writes.run_atomic(insert("b")),
            writes.run(failing),
            writes.run_atomic(insert("d")),
            async {
                until_queued(&writes, 6).await;
                release.open();
            }
        );
        hold.await.unwrap().unwrap();
        assert!(a.is_ok() && b1.is_ok() && d.is_ok());
        assert!(b2.is_err() && b3.is_err(), "a duplicate key is refused");
        assert!(matches!(c, Err(StoreError::InvalidArgument(_))));
        assert_eq!(keys(&path), ["a", "b", "d", "held"]);
    }

    /// `insert(key)` that counts how often it was run.
    fn counted(
        key: &'static str,
        runs: &Arc<AtomicUsize>,
    ) -> impl FnMut(&Connection) -> StoreResult<()> + Send + 'static {
        let (runs, mut insert) = (Arc::clone(runs), insert(key));
        move |conn| {
            runs.fetch_add(1, Ordering::SeqCst);
            insert(conn)
        }
    }

    #[tokio::test]
    async fn a_batch_is_run_again_with_savepoints_only_when_a_job_that_needs_one_fails() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        let runs = Arc::new(AtomicUsize::new(0));
        // Nothing fails: each job runs once.
        let (a, b) = tokio::join!(
            writes.run(counted("a", &runs)),
            writes.run(counted("b", &runs))
        );
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // A job of several statements fails: the batch is rolled back and run again, and what
        // the first attempt wrote is not kept twice (the keys are unique). The writer is held
        // busy until all three wait, so they share a batch.
        let (release, hold) = hold(&writes, "held").await;
        let (c, failed, d, ()) = tokio::join!(
            writes.run(counted("c", &runs)),
            writes.run(failing),
            writes.run(counted("d", &runs)),
            async {
                until_queued(&writes, 3).await;
                release.open();
            }
        );
        hold.await.unwrap().unwrap();
        assert!(c.is_ok() && d.is_ok());
        assert!(failed.is_err());
        // c ran in both attempts; d only in the second (the first stopped at the failure).
        assert_eq!(runs.load(Ordering::SeqCst), 2 + 3);
        assert_eq!(keys(&path), ["a", "b", "c", "d", "held"]);
        // A failed one-statement job wrote nothing: no second attempt.
        let (e, duplicate) = tokio::join!(
            writes.run(counted("e", &runs)),
            writes.run_atomic(insert("a"))
        );
        assert!(e.is_ok() && duplicate.is_err());
        assert_eq!(runs.load(Ordering::SeqCst), 6);
    }

    #[tokio::test]
    async fn a_lone_failed_write_leaves_nothing() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        writes.run(insert("a")).await.unwrap();
        assert!(writes.run(insert("a")).await.is_err());
        writes.run(insert("b")).await.unwrap();
        assert_eq!(keys(&path), ["a", "b"]);
    }

    /// A turn asked for while a job writing `key` holds the writer: the gate that releases
    /// the job, the job, and the turn, queued behind it.
    async fn turn_behind(
        writes: &Writes,
        key: &'static str,
    ) -> (
        Gate,
        tokio::task::JoinHandle<StoreResult<()>>,
        tokio::task::JoinHandle<StoreResult<Turn>>,
    ) {
        let (release, held) = hold(writes, key).await;
        let turn = tokio::spawn({
            let writes = writes.clone();
            async move { writes.turn().await }
        });
        until_queued(writes, 1).await;
        (release, held, turn)
    }

    /// A turn is given once the jobs queued before it are committed, and holds the writer
    /// between commits: another connection writes at once, with no wait for SQLite's lock,
    /// and a job queued meanwhile is committed only after the turn.
    #[tokio::test]
    async fn a_turn_waits_for_the_jobs_before_it_and_holds_the_writer_until_dropped() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        let (release, held, turn) = turn_behind(&writes, "before").await;
        release.open();
        let turn = turn.await.unwrap().unwrap();
        held.await.unwrap().unwrap();
        assert_eq!(keys(&path), ["before"]);
        let after = tokio::spawn({
            let writes = writes.clone();
            async move { writes.run(insert("after")).await }
        });
        // Another connection, not willing to wait at all for the lock, writes now.
        let other = Connection::open(&path).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();
        other
            .execute("INSERT INTO t (k) VALUES ('during')", [])
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!after.is_finished(), "a job ran during another's turn");
        drop(turn);
        after.await.unwrap().unwrap();
        assert_eq!(keys(&path), ["after", "before", "during"]);
    }

    /// A caller that gives up waiting for its turn does not hold the writer.
    #[tokio::test]
    async fn a_turn_given_up_does_not_hold_the_writer() {
        let (_dir, path) = database();
        let writes = writes(&path).await;
        let (release, held, waiting) = turn_behind(&writes, "a").await;
        waiting.abort();
        release.open();
        held.await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(10), writes.run(insert("b")))
            .await
            .expect("the writer is held by a turn nobody holds")
            .unwrap();
        assert_eq!(keys(&path), ["a", "b"]);
    }

    /// A connection that cannot be opened is the caller's error, not a writer that never
    /// answers.
    #[tokio::test]
    async fn a_writer_that_cannot_open_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/w.db");
        let opened = Writes::start(move || {
            Ok(Connection::open_with_flags(
                missing,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
            )?)
        })
        .await;
        assert!(matches!(opened, Err(StoreError::Sqlite(_))), "{opened:?}");
    }
}
