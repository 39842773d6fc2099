//! When runs start: the closed model's users arriving over the ramp and asking one run after
//! another, the open model's runs started on a fixed schedule on fresh sockets, both bounded by
//! `duration`, `max_runs` and a hard stop.
//!
//! What it must not do: wait for a slow run before scheduling the next one in the open model, or
//! start a run past `duration` or `max_runs`.

use super::Model;
use super::session::{Local, Shared, closed, connect, counted_run, finish, hold};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// Runs the configured model from `t0` until every session ends or the hard stop
/// (`duration + completion_timeout + connect_timeout + 5 s`) aborts what is left.
pub(super) async fn drive(shared: &Arc<Shared>, t0: Instant) {
    let config = &shared.config;
    let hard_stop = t0
        + config.duration
        + config.completion_timeout
        + config.connect_timeout
        + Duration::from_secs(5);
    let mut tasks = tokio::task::JoinSet::new();
    match config.model.clone() {
        Model::Closed {
            users,
            ramp,
            runs_per_user,
            pace,
            hold,
        } => {
            for i in 0..users {
                let arrival = t0 + ramp.mul_f64(i as f64 / users as f64);
                let shared = shared.clone();
                let runs = Runs {
                    per_user: runs_per_user,
                    pace,
                    hold,
                };
                tasks.spawn(closed_user(shared, i, arrival, t0, runs));
            }
        }
        Model::Open {
            rate,
            max_in_flight,
        } => {
            let shared = shared.clone();
            tasks.spawn(open_dispatcher(shared, t0, rate, max_in_flight));
        }
    }
    loop {
        match tokio::time::timeout_at(hard_stop, tasks.join_next()).await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                let left = tasks.len();
                tasks.abort_all();
                shared.fail(format!(
                    "aborted at the hard stop ({left} session task(s) still running)"
                ));
                break;
            }
        }
    }
}

/// Tokio's timer for all but this much of a wait; the operating system's for the rest.
const COARSE_MARGIN: Duration = Duration::from_millis(2);

/// Waits until `deadline`, to within tens of microseconds.
///
/// Every latency `load` reports counts from the scheduled start, so a start that wakes late
/// is counted against the server. Tokio's timer has a resolution of one millisecond and fires
/// up to about a millisecond after its deadline (a median 1.2 ms at 200 runs/s, more than the
/// server's own median time to first event). So Tokio's timer waits for all but the last
/// [`COARSE_MARGIN`], and a blocking thread sleeps the rest on the kernel's high-resolution
/// timer, off the runtime's workers.
async fn sleep_until_exact(deadline: Instant) {
    if let Some(early) = deadline.checked_sub(COARSE_MARGIN) {
        tokio::time::sleep_until(early).await;
    }
    if Instant::now() >= deadline {
        return;
    }
    let deadline = deadline.into_std();
    // The blocking pool cannot fail to run it short of a shutting-down runtime, and then no
    // start matters any more.
    let _ = tokio::task::spawn_blocking(move || {
        std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()));
    })
    .await;
}

/// Reserves one run slot; false once `max_runs` runs were scheduled.
fn reserve(shared: &Shared) -> bool {
    let previous = shared.counters.scheduled.fetch_add(1, Ordering::Relaxed);
    if previous >= shared.config.max_runs as u64 {
        shared.counters.scheduled.fetch_sub(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// What each closed-model user asks: how many runs (None: until the duration), how far apart,
/// and whether its session then stays open until every user has run.
#[derive(Clone, Copy)]
struct Runs {
    per_user: Option<usize>,
    pace: Duration,
    hold: bool,
}

/// Counts a closed-model user as having run when dropped, however its task ends (a user that
/// never connects, or a task aborted at the hard stop, included), so no held session waits for
/// it.
struct Running<'a>(&'a Shared);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.user_ran();
    }
}

async fn closed_user(shared: Arc<Shared>, index: usize, arrival: Instant, t0: Instant, runs: Runs) {
    let running = Running(&shared);
    let end = t0 + shared.config.duration;
    if arrival >= end || !reserve(&shared) {
        return;
    }
    sleep_until_exact(arrival).await;
    let mut local = Local::new();
    let user = format!("load-{}-u{index}", shared.tag);
    let mut open = match connect(&shared, &user, index, arrival, &mut local).await {
        Ok(open) => open,
        Err(kind) => {
            shared.fail(kind);
            local.flush(&shared);
            return;
        }
    };
    let mut scheduled = arrival;
    let mut done = 0usize;
    let mut open_still = true;
    loop {
        // A session whose socket closed after a failed run cannot go on.
        if !counted_run(&shared, &mut open, scheduled, &mut local).await && closed(&mut open).await
        {
            open_still = false;
            break;
        }
        done += 1;
        if runs.per_user.is_some_and(|n| done >= n) {
            break;
        }
        let next = if runs.pace.is_zero() {
            Instant::now()
        } else {
            scheduled + runs.pace
        };
        if next >= end || !reserve(&shared) {
            break;
        }
        scheduled = next;
        sleep_until_exact(scheduled).await;
    }
    drop(running);
    if runs.hold && open_still {
        hold(&shared, &mut open).await;
    }
    finish(&shared, open, &mut local).await;
    local.flush(&shared);
}

async fn open_dispatcher(shared: Arc<Shared>, t0: Instant, rate: f64, max_in_flight: usize) {
    let end = t0 + shared.config.duration;
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let mut runs = tokio::task::JoinSet::new();
    let mut j: u64 = 0;
    loop {
        let scheduled = t0 + Duration::from_secs_f64(j as f64 / rate);
        if scheduled >= end || !reserve(&shared) {
            break;
        }
        sleep_until_exact(scheduled).await;
        // Waiting for a free slot makes the run late; its latency still counts from `scheduled`.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        let index = j;
        runs.spawn(async move {
            let mut local = Local::new();
            let user = format!("load-{}-r{index}", shared.tag);
            let session = usize::try_from(index).unwrap_or_default();
            match connect(&shared, &user, session, scheduled, &mut local).await {
                Ok(mut open) => {
                    counted_run(&shared, &mut open, scheduled, &mut local).await;
                    finish(&shared, open, &mut local).await;
                }
                Err(kind) => shared.fail(kind),
            }
            local.flush(&shared);
            drop(permit);
        });
        j += 1;
        // Reap finished tasks as we go so the set does not grow with the whole run.
        while runs.try_join_next().is_some() {}
    }
    while runs.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exact_sleep_never_wakes_before_its_deadline() {
        // Deadlines inside the coarse margin, past it, and already gone.
        for micros in [0u64, 150, 900, 1_999, 2_000, 2_500, 4_321] {
            let deadline = Instant::now() + Duration::from_micros(micros);
            sleep_until_exact(deadline).await;
            assert!(
                Instant::now() >= deadline,
                "woke early for a {micros} µs wait"
            );
        }
        let past = Instant::now();
        sleep_until_exact(past).await;
    }
}
