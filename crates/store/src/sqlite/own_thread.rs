//! The SQLite store's write path on a thread of its own: the group commits of the runs' writes
//! and of their events run on a single-threaded Tokio runtime there, not on the server's.
//!
//! A commit is a chain of short waits on sqlx's SQLite thread (begin, each job's statement,
//! commit), and the task driving it is woken after each. On the server's runtime each wake-up
//! queued behind hundreds of runs' tasks when it was busy: at 1,000 runs arriving in a second
//! a commit took 4.2 ms of which SQLite's thread worked 1.4, and the one writer, which every
//! run's events wait for, idled. Here the wake-ups wait for nothing but the OS scheduler.
//!
//! This module must not run anything but the store's own write path: work placed here delays
//! every commit.

use std::future::Future;

use crate::{StoreError, StoreResult};

/// The thread's name (`comm`, at most 15 bytes on Linux), as profilers show it.
const THREAD_NAME: &str = "sqlite-commits";

/// Starts a thread that runs `work` to its end on a runtime of its own, then exits.
pub(super) fn run(work: impl Future<Output = ()> + Send + 'static) -> StoreResult<()> {
    let unstartable = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(unstartable)?;
    std::thread::Builder::new()
        .name(THREAD_NAME.to_owned())
        .spawn(move || runtime.block_on(work))
        .map_err(unstartable)?;
    Ok(())
}
