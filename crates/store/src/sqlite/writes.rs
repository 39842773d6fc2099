//! Group commit for SQLite's one writer connection: the short write transactions of many runs
//! (admissions, status changes, ends, batches of events), one commit.
//!
//! With `synchronous=FULL` every commit is an fsync, and SQLite has one writer: committing each
//! run's admission and end alone caps the server at one run per two fsyncs, whatever the CPU.
//! So these writes are jobs for one task that takes whatever jobs are waiting (up to
//! [`MOST_JOBS_PER_COMMIT`]) and runs them in one `BEGIN IMMEDIATE` transaction, then commits
//! once and only then answers each caller. Writes that are long or rare (usage uploads,
//! retention, node registration) keep using the writer connection directly and simply take
//! turns with the batches.
//!
//! A job of several statements must not leave half its writes behind when it fails, so it
//! would need a savepoint of its own; but every statement is a round trip to sqlx's SQLite
//! thread, and a savepoint costs two of them for a failure that almost never happens. So a
//! batch first runs without savepoints; only if a job that needs one fails is the whole
//! transaction rolled back and the batch run again, each such job under its own savepoint.
//! Jobs are therefore run more than once, and must depend on nothing but the database.
//!
//! A job may be marked to go ahead ([`Writes::run_ahead`]: a run's admission, whose first event
//! a person is waiting to see). When jobs of both kinds are waiting, those ahead are committed
//! first, in a small transaction of their own, and the others after: the admission waits for
//! the commit in progress and its own, not for a large batch of other runs' events.
//!
//! This module must not answer a job before the commit that holds its writes, nor let one job's
//! failure undo another's writes (a failed job's savepoint is rolled back, the others commit).

use futures_util::future::BoxFuture;
use sqlx::{Connection, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::Checkpoints;
use crate::{StoreError, StoreResult};

/// Most jobs per commit: many enough to share one fsync among all runs writing at once, few
/// enough that one commit does not hold the writer long.
const MOST_JOBS_PER_COMMIT: usize = 512;

/// Jobs waiting for the task; past it callers wait to queue (a slow disk pushes back).
const QUEUE_CAPACITY: usize = 4 * MOST_JOBS_PER_COMMIT;

/// One caller's write, run inside the batch's transaction; answered after the commit.
trait Job: Send {
    /// Runs the write on the connection (inside a savepoint or the transaction itself) and
    /// keeps its outcome, replacing the one of an earlier attempt; false when it failed and
    /// its writes must be rolled back.
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool>;

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
    F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send,
{
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let outcome = (self.work)(conn).await;
            let ok = outcome.is_ok();
            self.outcome = Some(outcome);
            ok
        })
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

/// The queue in front of the writer connection's batches. Cloning shares the queue; the task
/// stops when the last handle is dropped.
#[derive(Clone)]
pub(super) struct Writes {
    queue: mpsc::Sender<Box<dyn Job>>,
}

impl std::fmt::Debug for Writes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writes").finish_non_exhaustive()
    }
}

impl Writes {
    /// The writes and the task that commits them through `writer`, for the caller to run (see
    /// `own_thread`); a commit that leaves no job waiting wakes `checkpoints`, if given. The
    /// task ends once every handle is gone.
    pub(super) fn start(
        writer: SqlitePool,
        checkpoints: Option<Checkpoints>,
    ) -> (Writes, impl Future<Output = ()> + Send + 'static) {
        let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
        (Writes { queue }, run_batches(writer, jobs, checkpoints))
    }

    /// Runs `work` in the next batch and returns its outcome once that batch has committed.
    /// `work` must not begin or end a transaction of its own (nested `begin` is a savepoint,
    /// which is fine): an error it returns rolls back what it wrote, and only that. It may be
    /// called again after such a rollback (see the module's doc), so it must not consume what
    /// it writes.
    pub(super) async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        self.queue(work, true, false).await
    }

    /// [`Writes::run`] for work that is committed ahead of other waiting work, in a commit of
    /// its own (see the module's doc): a run's admission.
    pub(super) async fn run_ahead<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        self.queue(work, true, true).await
    }

    /// [`Writes::run`] for work that writes in one statement, or that undoes its own partial
    /// writes: it needs no savepoint (two fewer statements on the one writer).
    pub(super) async fn run_atomic<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        self.queue(work, false, false).await
    }

    async fn queue<T, F>(&self, work: F, savepoint: bool, ahead: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work,
            savepoint,
            ahead,
            outcome: None,
            done,
        });
        // Either side failing means the task is gone: its runtime shut down, or the store is
        // being dropped. Same meaning to the caller as a closed pool.
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

async fn run_batches(
    writer: SqlitePool,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    checkpoints: Option<Checkpoints>,
) {
    let mut jobs = Vec::with_capacity(MOST_JOBS_PER_COMMIT);
    while queue.recv_many(&mut jobs, MOST_JOBS_PER_COMMIT).await > 0 {
        let mut batch = std::mem::take(&mut jobs);
        if batch.iter().any(|job| job.ahead()) && batch.iter().any(|job| !job.ahead()) {
            let (ahead, rest) = batch.into_iter().partition(|job| job.ahead());
            settle(&writer, ahead).await;
            batch = rest;
        }
        if settle(&writer, batch).await
            && let Some(checkpoints) = checkpoints.as_ref().filter(|_| queue.is_empty())
        {
            // Only when nothing is waiting: a writer that never pauses is better off
            // checkpointing alone (see `checkpoint`'s module doc).
            checkpoints.wrote();
        }
    }
}

/// Commits the batch and answers its jobs; whether it committed.
async fn settle(writer: &SqlitePool, batch: Vec<Box<dyn Job>>) -> bool {
    match commit(writer, batch).await {
        (batch, None) => {
            batch.into_iter().for_each(|job| job.answer(None));
            true
        }
        (batch, Some(error)) => {
            tracing::warn!(%error, writes = batch.len(), "a batch of writes failed as a whole");
            batch.into_iter().for_each(|job| job.answer(Some(&error)));
            false
        }
    }
}

/// Runs the batch in one transaction: the jobs back, and the error that undid all of them, if
/// one did.
async fn commit(
    writer: &SqlitePool,
    mut batch: Vec<Box<dyn Job>>,
) -> (Vec<Box<dyn Job>>, Option<StoreError>) {
    let outcome = async {
        let mut conn = writer.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        if let [job] = batch.as_mut_slice() {
            // Alone, the job's failure may roll back the whole transaction: no savepoint.
            if job.run(&mut tx).await {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            return Ok(());
        }
        if run_all(&mut tx, &mut batch).await {
            tx.commit().await?;
            return Ok(());
        }
        // A job left writes it must not keep: start again, with its savepoints this time.
        tx.rollback().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for job in &mut batch {
            if !job.needs_savepoint() {
                // Its failure wrote nothing (or undid itself): nothing to roll back.
                job.run(&mut tx).await;
                continue;
            }
            let mut savepoint = tx.begin().await?;
            if job.run(&mut savepoint).await {
                savepoint.commit().await?;
            } else {
                savepoint.rollback().await?;
            }
        }
        tx.commit().await?;
        Ok::<(), StoreError>(())
    }
    .await;
    (batch, outcome.err())
}

/// Runs every job without savepoints, stopping at the first that failed and needs one: false
/// then, and the transaction holds that job's partial writes.
async fn run_all(tx: &mut SqliteConnection, batch: &mut [Box<dyn Job>]) -> bool {
    for job in batch {
        if !job.run(&mut *tx).await && job.needs_savepoint() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// The writes, their task spawned on the test's runtime.
    fn spawned((writes, task): (Writes, impl Future<Output = ()> + Send + 'static)) -> Writes {
        tokio::spawn(task);
        writes
    }

    async fn writer() -> (tempfile::TempDir, SqlitePool) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        (dir, pool)
    }

    fn insert(
        key: &'static str,
    ) -> impl for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<()>> + Send + 'static
    {
        move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (k) VALUES (?)")
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        }
    }

    async fn keys(pool: &SqlitePool) -> Vec<String> {
        sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    /// Writes "c", then fails: what it wrote must be undone.
    fn failing(conn: &mut SqliteConnection) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO t (k) VALUES ('c')")
                .execute(&mut *conn)
                .await?;
            Err(StoreError::InvalidArgument("changed my mind".into()))
        })
    }

    /// `insert(key)` that says when it starts, then waits until `go` says true.
    fn held(
        key: &'static str,
        started: tokio::sync::watch::Sender<bool>,
        go: tokio::sync::watch::Receiver<bool>,
    ) -> impl for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<()>> + Send + 'static
    {
        move |conn| {
            started.send_replace(true);
            let mut go = go.clone();
            Box::pin(async move {
                go.wait_for(|go| *go).await.ok();
                insert(key)(conn).await
            })
        }
    }

    /// Jobs waiting in the queue, not yet taken by the writer.
    fn queued(writes: &Writes) -> usize {
        QUEUE_CAPACITY - writes.queue.capacity()
    }

    /// A commit with writes still waiting does not wake the background checkpoint; the commit
    /// that leaves none waiting does.
    #[tokio::test]
    async fn only_a_writer_with_nothing_waiting_wakes_the_checkpoints() {
        let (_dir, pool) = writer().await;
        let (wrote, mut wakes) = tokio::sync::mpsc::channel(16);
        let writes = spawned(Writes::start(pool.clone(), Some(Checkpoints::to(wrote))));
        // The first write says it is running, and holds its batch open until released.
        let (release, released) = tokio::sync::watch::channel(false);
        let (running, mut is_running) = tokio::sync::watch::channel(false);
        let first = tokio::spawn({
            let writes = writes.clone();
            async move { writes.run(held("a", running, released)).await }
        });
        is_running.wait_for(|yes| *yes).await.unwrap();
        // Its batch is open: queue two more behind it.
        let (w1, w2) = (writes.clone(), writes.clone());
        let second = tokio::spawn(async move { w1.run(insert("b")).await });
        let third = tokio::spawn(async move { w2.run(insert("c")).await });
        while queued(&writes) < 2 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        third.await.unwrap().unwrap();
        assert_eq!(keys(&pool).await, ["a", "b", "c"]);
        // Two commits ("a" with "b" and "c" waiting, then "b" and "c"), one wake-up.
        assert!(wakes.try_recv().is_ok());
        assert!(wakes.try_recv().is_err());
    }

    /// A job run ahead is committed before the jobs queued with it, in a commit of its own: it
    /// is answered while the job queued before it is still being written.
    #[tokio::test]
    async fn a_job_ahead_is_committed_before_the_jobs_waiting_with_it() {
        let (dir, pool) = writer().await;
        let writes = spawned(Writes::start(pool.clone(), None));
        // What is committed, seen beside the writer (which holds its one connection).
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let reader = SqlitePoolOptions::new().connect(&url).await.unwrap();
        let (hold_started, mut hold_running) = tokio::sync::watch::channel(false);
        let (release_hold, hold_go) = tokio::sync::watch::channel(false);
        let (slow_started, mut slow_running) = tokio::sync::watch::channel(false);
        let (release_slow, slow_go) = tokio::sync::watch::channel(false);
        // The writer is busy with "hold" while "slow" and then "ahead" queue behind it.
        let hold = tokio::spawn({
            let writes = writes.clone();
            async move { writes.run(held("hold", hold_started, hold_go)).await }
        });
        hold_running.wait_for(|yes| *yes).await.unwrap();
        let slow = tokio::spawn({
            let writes = writes.clone();
            async move { writes.run(held("slow", slow_started, slow_go)).await }
        });
        while queued(&writes) < 1 {
            tokio::task::yield_now().await;
        }
        let ahead = tokio::spawn({
            let writes = writes.clone();
            async move { writes.run_ahead(insert("ahead")).await }
        });
        while queued(&writes) < 2 {
            tokio::task::yield_now().await;
        }
        release_hold.send(true).unwrap();
        hold.await.unwrap().unwrap();
        // Committed while "slow", queued first, has not even started.
        tokio::time::timeout(Duration::from_secs(10), ahead)
            .await
            .expect("the job ahead waits for the one queued before it")
            .unwrap()
            .unwrap();
        assert_eq!(keys(&reader).await, ["ahead", "hold"]);
        slow_running.wait_for(|yes| *yes).await.unwrap();
        release_slow.send(true).unwrap();
        slow.await.unwrap().unwrap();
        assert_eq!(keys(&pool).await, ["ahead", "hold", "slow"]);
    }

    #[tokio::test]
    async fn a_failed_write_is_undone_alone_and_the_others_commit_together() {
        let (_dir, pool) = writer().await;
        let writes = spawned(Writes::start(pool.clone(), None));
        // Queued at once, so they share a batch: the second "b" fails on the primary key, and
        // `failing` is undone, while the others commit.
        let (a, b1, b2, b3, c, d) = tokio::join!(
            writes.run(insert("a")),
            writes.run(insert("b")),
            writes.run(insert("b")),
            // One statement: SQLite undoes a failed statement by itself.
            writes.run_atomic(insert("b")),
            writes.run(failing),
            writes.run_atomic(insert("d")),
        );
        assert!(a.is_ok() && b1.is_ok() && d.is_ok());
        assert!(b2.is_err() && b3.is_err(), "a duplicate key is refused");
        assert!(matches!(c, Err(StoreError::InvalidArgument(_))));
        assert_eq!(keys(&pool).await, ["a", "b", "d"]);
    }

    /// `insert(key)` that counts how often it was run.
    fn counted(
        key: &'static str,
        runs: &Arc<AtomicUsize>,
    ) -> impl for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<()>> + Send + 'static
    {
        let (runs, insert) = (Arc::clone(runs), insert(key));
        move |conn| {
            runs.fetch_add(1, Ordering::SeqCst);
            insert(conn)
        }
    }

    #[tokio::test]
    async fn a_batch_is_run_again_with_savepoints_only_when_a_job_that_needs_one_fails() {
        let (_dir, pool) = writer().await;
        let writes = spawned(Writes::start(pool.clone(), None));
        let runs = Arc::new(AtomicUsize::new(0));
        // Nothing fails: each job runs once.
        let (a, b) = tokio::join!(
            writes.run(counted("a", &runs)),
            writes.run(counted("b", &runs))
        );
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // A job of several statements fails: the batch is rolled back and run again, and what
        // the first attempt wrote is not kept twice (the keys are unique).
        let (c, failed, d) = tokio::join!(
            writes.run(counted("c", &runs)),
            writes.run(failing),
            writes.run(counted("d", &runs))
        );
        assert!(c.is_ok() && d.is_ok());
        assert!(failed.is_err());
        // c ran in both attempts; d only in the second (the first stopped at the failure).
        assert_eq!(runs.load(Ordering::SeqCst), 2 + 3);
        assert_eq!(keys(&pool).await, ["a", "b", "c", "d"]);
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
        let (_dir, pool) = writer().await;
        let writes = spawned(Writes::start(pool.clone(), None));
        writes.run(insert("a")).await.unwrap();
        assert!(writes.run(insert("a")).await.is_err());
        writes.run(insert("b")).await.unwrap();
        assert_eq!(keys(&pool).await, ["a", "b"]);
    }
}
