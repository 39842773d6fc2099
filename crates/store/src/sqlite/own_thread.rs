//! The SQLite store's grouping of appended events on a thread of its own: the task that gathers
//! the runs' appends into batches for the writer (`writes`) runs on a single-threaded Tokio
//! runtime there, not on the server's.
//!
//! The writer takes the next batch when it finishes a commit; on the server's runtime the task
//! that hands it over queued behind hundreds of runs' tasks when it was busy (at 1,000 runs
//! arriving in a second the writer, which every run's events wait for, idled). Here it waits
//! for nothing but the OS scheduler.
//!
//! This module must not run anything but the store's own write path: work placed here delays
//! every commit.

use std::future::Future;

use crate::StoreResult;

/// The thread's name (`comm`, at most 15 bytes on Linux), as profilers show it.
const THREAD_NAME: &str = "sqlite-events";

/// Starts a thread that runs `work` to its end on a runtime of its own, then exits.
pub(super) fn run(work: impl Future<Output = ()> + Send + 'static) -> StoreResult<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(super::local_io)?;
    std::thread::Builder::new()
        .name(THREAD_NAME.to_owned())
        .spawn(move || runtime.block_on(work))
        .map_err(super::local_io)?;
    Ok(())
}
