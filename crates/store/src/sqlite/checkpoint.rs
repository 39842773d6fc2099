//! Copies the WAL's pages into the database file from a connection of its own, beside the
//! writer, so that a run's commit rarely waits for that copy.
//!
//! SQLite checkpoints automatically in the connection whose commit takes the WAL past 1,000
//! pages: the writer then copies about 4 MiB and syncs the database file before it takes the
//! next batch, and every admission and first event queued behind it waits (the TTFE tail at 200
//! runs/s was these pauses). A `PASSIVE` checkpoint from another connection takes no write lock,
//! so the writer goes on committing while it runs; it copies what was committed since the last
//! one, a few dozen pages. The writer keeps SQLite's own threshold (checking it between commits,
//! not inside one: `writes`): when it is reached, nearly every page is already in the database
//! file, so the writer's checkpoint is short and, being the writer's, completes, and the next
//! write starts the WAL over. (A passive checkpoint alone never catches up with a writer that
//! never pauses, so without the writer's the WAL would only grow.)
//!
//! The writer wakes this task only after a commit that leaves no write waiting. Under saturation
//! (10,000 sessions arriving in 10 s, after a busy minute) checkpoints beside a writer that
//! never pauses made it fall behind (TTFE p99 1.4 s, against 0.18 s without them; most likely
//! the extra syncs of the database file competing with the WAL's): a writer with a queue is
//! better off checkpointing alone, as SQLite does.
//!
//! A checkpoint that takes long is a busy disk: the task then waits nine times as long before
//! the next one, so that it spends at most a tenth of the time checkpointing.
//!
//! This module must not write anything but checkpoints, and is not used for an in-memory
//! database (it has no WAL).

use std::time::{Duration, Instant};

use sqlx::SqlitePool;
use tokio::sync::mpsc;

/// Least time between two checkpoints: the commits in between share one (and its fsync).
const LEAST_INTERVAL: Duration = Duration::from_millis(20);

/// Wakes the checkpoint task after commits; cheap enough to call after every one. The task
/// stops (closing its connection) when the handle is dropped.
#[derive(Debug)]
pub(super) struct Checkpoints {
    wrote: mpsc::Sender<()>,
}

impl Checkpoints {
    /// Starts the task on the current Tokio runtime, checkpointing through `conn`: a pool of
    /// one connection to the database file that is not `query_only`.
    pub(super) fn spawn(conn: SqlitePool) -> Checkpoints {
        // One pending wake-up is all it needs: commits while a checkpoint runs share the next.
        let (wrote, wakes) = mpsc::channel(1);
        tokio::spawn(run(conn, wakes));
        Checkpoints { wrote }
    }

    /// A handle whose wake-ups go to `wrote` instead of a task (for tests of who wakes it).
    #[cfg(test)]
    pub(super) fn to(wrote: mpsc::Sender<()>) -> Checkpoints {
        Checkpoints { wrote }
    }

    /// Says that the WAL grew.
    pub(super) fn wrote(&self) {
        // Full: a checkpoint is already due, and will copy this commit too.
        let _ = self.wrote.try_send(());
    }
}

async fn run(conn: SqlitePool, mut wakes: mpsc::Receiver<()>) {
    // Said once when checkpoints start failing (a full disk fails every one of them, as often
    // as the writer goes idle) and once when they work again.
    let mut failing = false;
    while wakes.recv().await.is_some() {
        let began = Instant::now();
        // A failure costs nothing but time: the writer's own checkpoint still bounds the WAL.
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&conn)
            .await
        {
            Err(error) if !failing => {
                tracing::warn!(%error, "background WAL checkpoints fail; the writer still checkpoints at 1,000 pages");
                failing = true;
            }
            Err(_) => {}
            Ok(_) if failing => {
                tracing::info!("background WAL checkpoints work again");
                failing = false;
            }
            Ok(_) => {}
        }
        tokio::time::sleep(pause_after(began.elapsed())).await;
    }
    conn.close().await;
}

/// How long to wait after a checkpoint that took `took`: [`LEAST_INTERVAL`], or longer after a
/// slow one. A slow checkpoint means a busy disk: the task then checkpoints at most a tenth of
/// the time and leaves the disk to the writer's commits.
fn pause_after(took: Duration) -> Duration {
    LEAST_INTERVAL.max(took * 9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_checkpoint_is_followed_by_a_longer_pause() {
        assert_eq!(pause_after(Duration::from_micros(300)), LEAST_INTERVAL);
        assert_eq!(pause_after(Duration::from_millis(2)), LEAST_INTERVAL);
        // Past the least interval the task checkpoints a tenth of the time.
        let took = Duration::from_millis(30);
        let pause = pause_after(took);
        assert_eq!(pause, Duration::from_millis(270));
        assert_eq!((took + pause) / 10, took);
    }
}
