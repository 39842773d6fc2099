//! Group commit for the event log: many concurrent `append_events` calls, one commit.
//!
//! Every append must be durable before it returns (the event is sent only after), and each
//! commit costs a flush to disk (SQLite's fsync with `synchronous=FULL`, PostgreSQL's WAL flush
//! with `synchronous_commit=on`). Committing each event alone caps the whole server at one flush
//! per event. Instead appends are queued to one task per store that drains whatever is waiting
//! (up to [`MAX_APPENDS_PER_COMMIT`] calls, each a run's consecutive events) and hands the lot to
//! the backend's [`EventSink`], which writes it in a single commit: one flush for all of them.
//! Each caller still gets its own result, only after the commit that holds its events.
//!
//! Two appends of the same `(run_id, seq)` in one batch are resolved here, before the sink sees
//! them: the first goes to the database and the later ones get its fate (a duplicate if it was
//! stored). So a sink never has to order duplicates within one statement. This module must not
//! reorder one caller's events (a run appends one event at a time and awaits it) or report
//! success for an event that was not committed.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::convert::{check_text, time_to_db, u64_to_db};
use crate::{AppendFailed, NewEvent, RunStatus, StoreError, StoreResult};

/// Most appends (each one or more events of a run) per commit: large enough to amortize the
/// flush, small enough that one batch does not hold a connection for long.
pub(crate) const MAX_APPENDS_PER_COMMIT: usize = 256;

/// Appends waiting for the writer task. Bounded so a stalled disk pushes back on the runs
/// instead of growing memory without limit.
const QUEUE_CAPACITY: usize = 4 * MAX_APPENDS_PER_COMMIT;

/// One event on its way to the database, range-checked.
#[derive(Debug)]
pub(crate) struct PendingEvent {
    pub run_id: String,
    pub seq: u64,
    /// `seq` as stored.
    pub seq_db: i64,
    pub event_type: String,
    pub payload: Arc<str>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The previous event of the batch is this run's previous event, appended by the same call:
    /// when that one is refused, this one must not be stored either (a caller's events are
    /// stored as a prefix, never with a hole).
    pub follows: bool,
}

impl PendingEvent {
    /// Checks and converts one event, taking its text without copying it.
    pub(crate) fn new(run_id: &str, event: NewEvent) -> StoreResult<PendingEvent> {
        check_text("event type", &event.event_type)?;
        check_text("event payload", &event.payload)?;
        Ok(PendingEvent {
            run_id: run_id.to_owned(),
            seq: event.seq,
            seq_db: u64_to_db("seq", event.seq)?,
            event_type: event.event_type,
            payload: event.payload,
            created_at: time_to_db(chrono::Utc::now()),
            follows: false,
        })
    }

    /// Checks and converts a run's consecutive events for one append call.
    pub(crate) fn group(run_id: &str, events: Vec<NewEvent>) -> StoreResult<Vec<PendingEvent>> {
        let mut group: Vec<PendingEvent> = Vec::with_capacity(events.len());
        for event in events {
            if let Some(previous) = group.last()
                && previous.seq.checked_add(1) != Some(event.seq)
            {
                return Err(StoreError::InvalidArgument(format!(
                    "append_events needs consecutive seqs; {} follows {}",
                    event.seq, previous.seq
                )));
            }
            let follows = !group.is_empty();
            let mut pending = PendingEvent::new(run_id, event)?;
            pending.follows = follows;
            group.push(pending);
        }
        Ok(group)
    }
}

/// Checks `admit_run`'s first event (seq 1) and converts it.
pub(crate) fn check_first_event(
    run_id: &str,
    first: Option<NewEvent>,
) -> StoreResult<Option<PendingEvent>> {
    first
        .map(|event| {
            if event.seq != 1 {
                return Err(StoreError::InvalidArgument(format!(
                    "a run's first event has seq 1, not {}",
                    event.seq
                )));
            }
            PendingEvent::new(run_id, event)
        })
        .transpose()
}

/// Checks `end_run`'s arguments and converts its events: the status must be terminal and the
/// seqs must continue from `after_seq` without a gap.
pub(crate) fn check_end_run(
    run_id: &str,
    after_seq: u64,
    events: Vec<NewEvent>,
    status: RunStatus,
) -> StoreResult<Vec<PendingEvent>> {
    if !status.is_terminal() {
        return Err(StoreError::InvalidArgument(format!(
            "end_run needs a terminal status, not {status}"
        )));
    }
    let mut expected = after_seq;
    events
        .into_iter()
        .map(|event| {
            expected = expected.checked_add(1).ok_or(StoreError::OutOfRange {
                field: "seq",
                value: u64::MAX,
            })?;
            if event.seq != expected {
                return Err(StoreError::InvalidArgument(format!(
                    "end_run's events must continue from seq {after_seq} without gaps; \
                     expected {expected}, got {}",
                    event.seq
                )));
            }
            PendingEvent::new(run_id, event)
        })
        .collect()
}

/// A backend's way of committing a batch of events.
#[async_trait::async_trait]
pub(crate) trait EventSink: Send + Sync + 'static {
    /// Writes the batch durably: one result per event, in order. Events with distinct
    /// `(run_id, seq)` only. Per-event refusals (duplicate, unknown or finished run) must not
    /// keep the other events from committing, except that an event that `follows` a refused
    /// one is not stored (an unknown or finished run refuses all of its events anyway; see
    /// [`crate::AppendFailed`] for duplicates).
    async fn write(&self, batch: Arc<[PendingEvent]>) -> Vec<StoreResult<()>>;

    /// Wakes the subscribers: run R has committed events up to seq S, for each `(R, S)`.
    /// Called once the batch's callers have their answers: a wake-up must not run ahead of the
    /// data, and the callers need not wait for it.
    async fn announce(&self, runs: Vec<(String, u64)>);
}

/// Each run's highest committed seq in a batch: what one wake-up per run announces.
pub(crate) fn highest_seqs(
    batch: &[PendingEvent],
    results: &[StoreResult<()>],
) -> Vec<(String, u64)> {
    let mut highest: HashMap<&str, u64> = HashMap::new();
    for (event, result) in batch.iter().zip(results) {
        if result.is_ok() {
            let seq = highest.entry(event.run_id.as_str()).or_insert(event.seq);
            *seq = (*seq).max(event.seq);
        }
    }
    highest
        .into_iter()
        .map(|(run_id, seq)| (run_id.to_owned(), seq))
        .collect()
}

/// One caller's events (consecutive, of one run) and where its answer goes.
struct AppendRequest {
    events: Vec<PendingEvent>,
    done: oneshot::Sender<Result<(), AppendFailed>>,
}

/// The queue in front of the event writer task. Cloning shares the queue; the task stops when
/// the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct EventWriter {
    queue: mpsc::Sender<AppendRequest>,
}

impl EventWriter {
    /// Starts the writer task on the current Tokio runtime, with at most `in_flight` batches
    /// being committed at once (1 for SQLite's single writer; a few for PostgreSQL, which
    /// flushes concurrent commits together, so a batch does not wait for the previous one's
    /// flush).
    pub(crate) fn spawn<S: EventSink>(sink: S, in_flight: usize) -> EventWriter {
        let (writer, task) = EventWriter::start(sink, in_flight);
        tokio::spawn(task);
        writer
    }

    /// [`EventWriter::spawn`] with the task handed back, for the caller to run where it
    /// chooses; the task ends once every handle is gone.
    pub(crate) fn start<S: EventSink>(
        sink: S,
        in_flight: usize,
    ) -> (EventWriter, impl Future<Output = ()> + Send + 'static) {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        let task = run_writer(Arc::new(sink), rx, in_flight.max(1));
        (EventWriter { queue }, task)
    }

    /// Queues a run's consecutive events and waits until they are committed (or refused):
    /// see [`crate::Store::append_events`].
    pub(crate) async fn append(
        &self,
        run_id: &str,
        events: Vec<NewEvent>,
    ) -> Result<(), AppendFailed> {
        let refused = |error| AppendFailed { stored: 0, error };
        let events = PendingEvent::group(run_id, events).map_err(refused)?;
        if events.is_empty() {
            return Ok(());
        }
        let (done, result) = oneshot::channel();
        // Either side failing means the writer task is gone: its runtime shut down, or the
        // store is being dropped. Same meaning to the caller as a closed pool.
        let gone = || refused(StoreError::Database(sqlx::Error::PoolClosed));
        self.queue
            .send(AppendRequest { events, done })
            .await
            .map_err(|_| gone())?;
        result.await.map_err(|_| gone())?
    }
}

async fn run_writer<S: EventSink>(
    sink: Arc<S>,
    mut rx: mpsc::Receiver<AppendRequest>,
    in_flight: usize,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        // A free slot first: while every slot is busy, appends pile up in the queue and the
        // next batch takes them all.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut requests = Vec::with_capacity(MAX_APPENDS_PER_COMMIT);
        if rx.recv_many(&mut requests, MAX_APPENDS_PER_COMMIT).await == 0 {
            return; // every handle is gone; batches still being committed finish on their own
        }
        if in_flight == 1 {
            commit(sink.as_ref(), requests).await;
            drop(slot);
        } else {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                commit(sink.as_ref(), requests).await;
                drop(slot);
            });
        }
    }
}

/// Writes one batch and answers each of its callers.
async fn commit<S: EventSink>(sink: &S, requests: Vec<AppendRequest>) {
    let mut sizes = Vec::with_capacity(requests.len());
    let mut dones = Vec::with_capacity(requests.len());
    let mut events = Vec::with_capacity(requests.len());
    for request in requests {
        sizes.push(request.events.len());
        dones.push(request.done);
        events.extend(request.events);
    }
    // Later appends of a (run_id, seq) already in this batch wait for the first one's
    // fate: (position in the batch, slot of the first one among the unique events).
    let mut slot_of: HashMap<(&str, u64), usize> = HashMap::new();
    let mut slots = Vec::with_capacity(events.len());
    let mut repeats = 0;
    for event in &events {
        let next = slot_of.len();
        let slot = *slot_of
            .entry((event.run_id.as_str(), event.seq))
            .or_insert(next);
        if slot != next {
            repeats += 1;
        }
        slots.push(slot);
    }
    drop(slot_of);
    let (batch, repeated): (Vec<PendingEvent>, Vec<(usize, String, u64)>) = if repeats == 0 {
        (events, Vec::new())
    } else {
        let mut batch = Vec::with_capacity(events.len() - repeats);
        let mut repeated = Vec::with_capacity(repeats);
        for (i, event) in events.into_iter().enumerate() {
            if slots[i] == batch.len() {
                batch.push(event);
            } else {
                repeated.push((i, event.run_id, event.seq));
            }
        }
        (batch, repeated)
    };
    let batch: Arc<[PendingEvent]> = batch.into();
    let mut results = sink.write(Arc::clone(&batch)).await;
    if results.len() != batch.len() {
        // A sink bug; never leave a caller without an answer.
        results = batch
            .iter()
            .map(|_| {
                Err(StoreError::Database(sqlx::Error::Protocol(
                    "event sink returned the wrong number of results".into(),
                )))
            })
            .collect();
    }
    let mut answers: Vec<Option<StoreResult<()>>> = slots.iter().map(|_| None).collect();
    for (i, run_id, seq) in repeated {
        answers[i] = Some(echo(results.get(slots[i]), run_id, seq));
    }
    let committed = highest_seqs(&batch, &results);
    let mut results = results.into_iter();
    for answer in &mut answers {
        if answer.is_none() {
            *answer = results.next();
        }
    }
    // Back to the callers: each gets the first refusal among its events, and how many came
    // before it.
    let mut answers = answers.into_iter();
    for (done, size) in dones.into_iter().zip(sizes) {
        let mut outcome = Ok(());
        for (stored, answer) in answers.by_ref().take(size).enumerate() {
            let answer = answer.unwrap_or_else(|| {
                Err(StoreError::Database(sqlx::Error::Protocol(
                    "an event of the batch has no result".into(),
                )))
            });
            if let (Ok(()), Err(error)) = (&outcome, answer) {
                outcome = Err(AppendFailed { stored, error });
            }
        }
        let _ = done.send(outcome); // the caller may have given up; fine
    }
    if !committed.is_empty() {
        sink.announce(committed).await;
    }
}

/// The answer for a repeat of an event whose first append got `first`.
fn echo(first: Option<&StoreResult<()>>, run_id: String, seq: u64) -> StoreResult<()> {
    match first {
        Some(Ok(()) | Err(StoreError::DuplicateEvent { .. })) => {
            Err(StoreError::DuplicateEvent { run_id, seq })
        }
        Some(Err(StoreError::RunNotFound(id))) => Err(StoreError::RunNotFound(id.clone())),
        Some(Err(StoreError::RunFinished { run_id, status })) => Err(StoreError::RunFinished {
            run_id: run_id.clone(),
            status: *status,
        }),
        Some(Err(StoreError::Unavailable(message))) => {
            Err(StoreError::Unavailable(message.clone()))
        }
        Some(Err(other)) => Err(StoreError::Database(sqlx::Error::Protocol(format!(
            "the same event's first append failed: {other}"
        )))),
        None => Err(StoreError::Database(sqlx::Error::Protocol(
            "the same event's first append has no result".into(),
        ))),
    }
}
