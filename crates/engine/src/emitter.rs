//! A run's event writer: numbers each event, serializes it once ([`EventFrame`]), persists the
//! frames in `seq` order and publishes each one only after it is persisted.
//!
//! Persisting happens beside the run, not in its way: [`Emitter::emit`] queues the frame for the
//! run's persister task and returns, so the run's agents go on working while the store commits
//! (the store groups many runs' events into one commit). Nothing after a failed event is
//! persisted or published, so followers never see a gap, and a failure stops the run as the
//! cluster needs it stopped:
//! - the run was ended by another node (`RunFinished`): the run is stopped as taken over at
//!   once and writes nothing more; its followers read the other node's end from the log;
//! - the database is unreachable: the run is stopped as unreachable at once and writes nothing
//!   more; its followers get `UNAVAILABLE`, and the node's orphan check records the end later;
//! - any other refusal: the next `emit` fails the run with `INTERNAL` and a correlation id.
//!
//! [`Emitter::finish`] queues the terminal event behind the others: the persister writes it
//! together with whatever events were still waiting and the run's final status, in one store
//! transaction (`Store::end_run`), unless one of the above says not to write. Batching is the
//! point: a run's ~30 events take a few commits, not one each.
//!
//! A run's first event, `agent_started`, is not written here: the store keeps it with the run's
//! admission (`Engine::start_run`), and the emitter goes on from it ([`Emitter::after_first`]).
//! Two lanes into the store: the `progress` that says a run waits in line goes straight to the
//! store; every other event first waits until no run is being created (a new run's rows and
//! first event go ahead of other runs' events) and takes room
//! in [`WriteLanes`], which bounds how many bytes of ordinary events wait in the store's queue at
//! once, so a new run's first event never waits behind a long queue of other runs' writes.
//!
//! This module must not decide what events a run emits, or how it ends.

use crate::frame::EventFrame;
use crate::run::{RunShared, StopReason};
use crate::stop::Stop;
use agentwire_protocol::{ErrorCode, EventKind, RunEvent};
use agentwire_store::{EndRun, NewEvent, RunStatus, Store, StoreError};
use std::sync::{Arc, OnceLock};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

/// What a person is told when a run stops because the database cannot be reached.
pub(crate) const DATABASE_LOST: &str = "the server lost its database connection, so the run stopped; start the request again in a moment";

/// KiB of ordinary (not first) events that may wait in the store's queue at once, across runs:
/// what bounds their memory, and the size a commit of them can grow to. Larger commits share
/// each commit's fixed cost (SQLite's fsync among it) among more events. On two cores, 1,000
/// runs arriving in a second: 512 KiB gave 652-681 runs/s, 1 MiB 703-740, 2 MiB 716-792, 4 MiB
/// no more; 200 users back to back: 959-975, 1,127-1,146 and 1,185-1,227 runs/s. The price is
/// the first event of runs started meanwhile, which compete with more runs at work: TTFE p50
/// 17-21, 22-30 and 36-53 ms in the burst, 9, 15-16 and 27 ms back to back (held open below
/// saturation: unchanged). Their admission does not wait behind this queue (SQLite commits it
/// ahead).
const ORDINARY_LANE_KIB: u32 = 2048;

/// The room ordinary events take in the store's queue, and the runs being created, which go
/// first. One per engine.
pub(crate) struct WriteLanes {
    ordinary: Semaphore,
    /// Runs whose records are being written now.
    starting: watch::Sender<usize>,
}

impl WriteLanes {
    pub fn new() -> Arc<WriteLanes> {
        Arc::new(WriteLanes {
            ordinary: Semaphore::new(ORDINARY_LANE_KIB as usize),
            starting: watch::Sender::new(0),
        })
    }

    /// Marks a run being created until the guard is dropped: ordinary writes wait meanwhile.
    /// `None` when `max` runs are being created already: the store is behind, and a run that
    /// waited for it would wait past its client's patience (or the store's own timeouts).
    pub fn starting(self: &Arc<Self>, max: usize) -> Option<Starting> {
        let mut admitted = false;
        self.starting.send_if_modified(|n| {
            admitted = *n < max;
            if admitted {
                *n += 1;
            }
            admitted
        });
        admitted.then(|| Starting(self.clone()))
    }

    /// Waits until no run is being created.
    pub async fn after_starts(&self) {
        let mut starting = self.starting.subscribe();
        // Only fails when the sender is gone, i.e. never while `self` lives.
        let _ = starting.wait_for(|n| *n == 0).await;
    }
}

/// A run being created; see [`WriteLanes::starting`].
pub(crate) struct Starting(Arc<WriteLanes>);

impl Drop for Starting {
    fn drop(&mut self) {
        self.0.starting.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Which lane an event takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A run's early events (the wait for an analysis slot): they must reach the client at
    /// once.
    First,
    Ordinary,
}

struct Pending {
    frame: EventFrame,
    /// What the log stores when it is not the frame's text (`logged.rs`: the question left
    /// out). A frame stored as sent is not copied: the store shares the frame's text.
    stored: Option<Arc<str>>,
    type_name: &'static str,
    lane: Lane,
    /// The terminal event: the run ends with this status when it is written.
    end: Option<RunStatus>,
}

/// What the persister did with the terminal event: `None` when it stopped before it (a failure,
/// see [`Emitter::failure`]), else what `Store::end_run` answered.
type Ending = Option<Result<EndRun, StoreError>>;

/// Why the persister stopped writing.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// Another node ended the run.
    TakenOver,
    /// The database is unreachable.
    LogLost,
    /// The store refused a write; the message carries the correlation id.
    Refused(String),
}

impl Failure {
    /// How the run stops on it.
    pub fn stop(&self) -> Stop {
        match self {
            Failure::TakenOver => Stop::Cancelled,
            Failure::LogLost => Stop::failed(ErrorCode::Unavailable, DATABASE_LOST),
            Failure::Refused(message) => Stop::failed(ErrorCode::Internal, message.clone()),
        }
    }
}

type FailureCell = Arc<OnceLock<Failure>>;

/// Classifies a failed write and stops the run at once when it must write no more.
fn failed(run: &RunShared, seq: u64, err: StoreError) -> Failure {
    match err {
        StoreError::RunFinished { .. } => {
            tracing::warn!(run_id = %run.run_id, "the run was ended by another node; this node stops it without writing");
            run.stop(StopReason::TakenOver);
            Failure::TakenOver
        }
        StoreError::Unavailable(_) => {
            tracing::error!(run_id = %run.run_id, seq, error = %err, "the database is unreachable; the run stops");
            run.stop(StopReason::Unreachable);
            Failure::LogLost
        }
        err => {
            // The database's words stay in the log; the client gets the id to quote.
            let correlation = uuid::Uuid::new_v4().simple().to_string();
            tracing::error!(run_id = %run.run_id, seq, %correlation, error = %err, "persisting a run event failed");
            Failure::Refused(format!(
                "the event log could not be written; the server log has the details under correlation id {correlation}"
            ))
        }
    }
}

pub(crate) struct Emitter {
    run: Arc<RunShared>,
    store: Arc<dyn Store>,
    next_seq: u64,
    queue: Option<mpsc::UnboundedSender<Pending>>,
    persister: Option<JoinHandle<Ending>>,
    failure: FailureCell,
    /// The run's question, which `agent_started` stated ([`Emitter::after_first`]): the log
    /// stores it only in the run's row.
    question: Option<String>,
}

impl Emitter {
    pub fn new(run: Arc<RunShared>, store: Arc<dyn Store>, lanes: Arc<WriteLanes>) -> Emitter {
        let (queue, pending) = mpsc::unbounded_channel();
        let failure = FailureCell::default();
        let persister = tokio::spawn(persist(
            run.clone(),
            store.clone(),
            lanes,
            pending,
            failure.clone(),
        ));
        Emitter {
            run,
            store,
            next_seq: 1,
            queue: Some(queue),
            persister: Some(persister),
            failure,
            question: None,
        }
    }

    /// The run's next event, stamped now.
    fn next_event(&self, agent: &str, kind: EventKind) -> RunEvent {
        RunEvent {
            run_id: self.run.run_id.clone(),
            thread_id: self.run.thread_id.clone(),
            seq: self.next_seq,
            agent: agent.to_owned(),
            timestamp: agentwire_protocol::time::now(),
            kind,
        }
    }

    /// Goes on from the run's first event, `agent_started` stating `question`, which was
    /// stored with the run's admission and published then: the next event is seq 2. Called
    /// before the first `emit`.
    pub fn after_first(&mut self, question: String) {
        self.next_seq = 2;
        self.question = Some(question);
    }

    /// Why the run's events stopped being written, if they did.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.get()
    }

    /// Queues one event to be persisted and then published.
    ///
    /// # Errors
    /// How the run stops when an earlier event could not be persisted.
    pub fn emit(&mut self, agent: &str, kind: EventKind, lane: Lane) -> Result<(), Stop> {
        if let Some(failure) = self.failure.get() {
            return Err(failure.stop());
        }
        let mut event = self.next_event(agent, kind);
        let (frame, stored) = encode(&mut event, self.question.as_deref());
        let pending = Pending {
            frame,
            stored,
            type_name: event.kind.type_name(),
            lane,
            end: None,
        };
        self.next_seq += 1;
        match &self.queue {
            Some(queue) if queue.send(pending).is_ok() => Ok(()),
            // The persister stopped at a failure it recorded just now.
            _ => Err(self.failure.get().map_or_else(
                || Stop::failed(ErrorCode::Internal, "the event writer stopped"),
                Failure::stop,
            )),
        }
    }

    /// Ends the run: waits until every queued event is persisted and published, then persists
    /// the terminal event and the run's final `status` together (`Store::end_run`), and only
    /// then publishes the event, so a client that sees it and reads the run's history finds it
    /// finished. Returns whether the end is recorded; when it is not, the node's orphan check
    /// records it later.
    ///
    /// Unless the run was taken over by another node (then nothing is written or published here:
    /// the followers read the other node's terminal event from the log), a terminal event is
    /// always published, so no follower waits forever: when the store cannot take it, a
    /// retryable error (`UNAVAILABLE` when the database is unreachable, else `INTERNAL`) that is
    /// not in the log.
    pub async fn finish(&mut self, agent: &str, kind: EventKind, status: RunStatus) -> bool {
        let mut terminal = self.next_event(agent, kind);
        // Unless the run is known to write no more, the terminal event goes to the persister
        // behind the run's other events: it is written with the last of them, in the same
        // transaction as the run's final status, one commit for both.
        if self.failure.get().is_none()
            && !matches!(
                self.run.stop_reason(),
                Some(StopReason::TakenOver | StopReason::Unreachable)
            )
            && let Some(queue) = &self.queue
        {
            // A send fails only when the persister stopped at a failure it recorded.
            let (frame, stored) = encode(&mut terminal, self.question.as_deref());
            let _ = queue.send(Pending {
                frame,
                stored,
                type_name: terminal.kind.type_name(),
                lane: Lane::Ordinary,
                end: Some(status),
            });
        }
        self.queue = None;
        let mut ending: Ending = None;
        if let Some(persister) = self.persister.take() {
            match persister.await {
                Ok(ended) => ending = ended,
                Err(err) => {
                    let correlation = uuid::Uuid::new_v4().simple().to_string();
                    tracing::error!(run_id = %self.run.run_id, %correlation, error = %err, "the run's event writer failed");
                    let _ = self.failure.set(Failure::Refused(format!(
                        "the event log could not be written; the server log has the details under correlation id {correlation}"
                    )));
                }
            }
        }
        // Events queued after a failure were never published: continue the seq from the last
        // published one, so what followers see stays contiguous (and the log's last seq is
        // what `end_run` expects).
        self.next_seq = self.run.published_seq() + 1;
        let failure = self.failure.get().cloned();
        if self.run.stop_reason() == Some(StopReason::TakenOver)
            || matches!(failure, Some(Failure::TakenOver))
        {
            self.run.hand_over();
            return true;
        }
        let ended = match ending {
            Some(ended) => ended,
            // The persister stopped before the terminal event: it was not written.
            None => {
                terminal.seq = self.next_seq;
                if self.run.stop_reason() == Some(StopReason::Unreachable)
                    || matches!(failure, Some(Failure::LogLost))
                {
                    return self.publish_unrecorded(agent, terminal, ErrorCode::Unavailable);
                }
                self.end_alone(&mut terminal, status).await
            }
        };
        match ended {
            Ok(EndRun::Ended) => {
                // Published once the commit held it (by the persister, or `end_alone`).
                self.next_seq = self.run.published_seq() + 1;
                true
            }
            Ok(EndRun::AlreadyFinished { .. } | EndRun::Moved { .. }) => {
                tracing::warn!(run_id = %self.run.run_id, "the run was ended by another node; this node hands it over");
                self.run.stop(StopReason::TakenOver);
                self.run.hand_over();
                true
            }
            Err(err) => {
                tracing::error!(run_id = %self.run.run_id, error = %err, "persisting the terminal event failed");
                let code = if matches!(err, StoreError::Unavailable(_)) {
                    ErrorCode::Unavailable
                } else {
                    ErrorCode::Internal
                };
                terminal.seq = self.next_seq;
                self.publish_unrecorded(agent, terminal, code)
            }
        }
    }

    /// Ends the run with its terminal `event` alone, after the persister stopped on a refusal
    /// (the end is still worth recording: it says why the run stopped). Publishes the event
    /// when the end is stored.
    async fn end_alone(
        &self,
        event: &mut RunEvent,
        status: RunStatus,
    ) -> Result<EndRun, StoreError> {
        let (frame, stored) = encode(event, self.question.as_deref());
        let terminal = log_entry(&frame, event.kind.type_name(), stored);
        let ended = self
            .store
            .end_run(
                &self.run.run_id,
                event.seq - 1,
                vec![terminal],
                status,
                agentwire_protocol::time::now(),
            )
            .await;
        if matches!(ended, Ok(EndRun::Ended)) {
            self.run.publish(frame);
        }
        ended
    }

    /// Publishes a terminal event that is not in the log: `event` itself when it already says
    /// what `code` says, else a retryable error with `code`. Always false (the end is not
    /// recorded).
    fn publish_unrecorded(&mut self, agent: &str, event: RunEvent, code: ErrorCode) -> bool {
        let event = match &event.kind {
            EventKind::AgentError { error_code, .. } if *error_code == code => event,
            _ => self.next_event(
                agent,
                EventKind::AgentError {
                    error_code: code,
                    message: if code == ErrorCode::Unavailable {
                        DATABASE_LOST.into()
                    } else {
                        "the event log could not be written; the run was stopped".into()
                    },
                    retryable: true,
                },
            ),
        };
        self.next_seq += 1;
        self.run.publish(EventFrame::encode(&event));
        false
    }
}

/// The frame sent for `event`, and the text the log stores when it is not the frame's own: the
/// event without the run's `question` (`logged.rs`). Each is written once.
pub(crate) fn encode(
    event: &mut RunEvent,
    question: Option<&str>,
) -> (EventFrame, Option<Arc<str>>) {
    let frame = EventFrame::encode(event);
    let stored = question.and_then(|question| crate::logged::stored_form(event, question));
    (frame, stored)
}

/// What the log gets for a frame: its stored form (moved in), or else the frame's own text,
/// shared.
pub(crate) fn log_entry(
    frame: &EventFrame,
    event_type: &str,
    stored: Option<Arc<str>>,
) -> NewEvent {
    NewEvent {
        seq: frame.seq(),
        event_type: event_type.to_owned(),
        payload: stored.unwrap_or_else(|| frame.text()),
    }
}

/// Most of a run's queued events written by one append: enough that a run's events take a
/// few commits instead of one each, few enough that one run cannot fill a commit alone.
const MOST_EVENTS_PER_APPEND: usize = 64;

/// The run's persister: appends the queued frames, in order, whatever has queued up since the
/// last append in one call (the store commits many runs' calls together), then publishes the
/// ones stored. Stops at the first failure (what follows is neither persisted nor published).
async fn persist(
    run: Arc<RunShared>,
    store: Arc<dyn Store>,
    lanes: Arc<WriteLanes>,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    failure: FailureCell,
) -> Ending {
    let mut carried: Option<Pending> = None;
    let mut batch: Vec<Pending> = Vec::with_capacity(MOST_EVENTS_PER_APPEND);
    loop {
        let first = match carried.take() {
            Some(first) => first,
            None => match pending.recv().await {
                Some(first) => first,
                None => return None,
            },
        };
        let lane = first.lane;
        batch.push(first);
        while batch.len() < MOST_EVENTS_PER_APPEND {
            match pending.try_recv() {
                Ok(next) if next.lane == lane => batch.push(next),
                Ok(next) => {
                    carried = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        let bytes: usize = batch.iter().map(|p| p.frame.len()).sum();
        let _room = match lane {
            Lane::First => None,
            Lane::Ordinary => {
                // A run's end does not wait for other runs' starts: it frees the run's slots,
                // and runs waiting to end are what a run being created waits for.
                if batch.last().is_none_or(|p| p.end.is_none()) {
                    lanes.after_starts().await;
                }
                let kib = u32::try_from(bytes / 1024 + 1)
                    .unwrap_or(u32::MAX)
                    .min(ORDINARY_LANE_KIB);
                lanes.ordinary.acquire_many(kib).await.ok()
            }
        };
        let events: Vec<NewEvent> = batch
            .iter_mut()
            .map(|p| log_entry(&p.frame, p.type_name, p.stored.take()))
            .collect();
        if let Some(status) = batch.last().and_then(|p| p.end) {
            // The terminal event, with whatever came just before it: one transaction with the
            // run's final status. Everything earlier is published, so the log ends at the seq
            // before this batch.
            let after_seq = run.published_seq();
            let ended = store
                .end_run(
                    &run.run_id,
                    after_seq,
                    events,
                    status,
                    agentwire_protocol::time::now(),
                )
                .await;
            if matches!(ended, Ok(EndRun::Ended)) {
                for p in batch.drain(..) {
                    run.publish(p.frame);
                }
            }
            return Some(ended);
        }
        let appended = store.append_events(&run.run_id, events).await;
        let (stored, refused_seq) = match &appended {
            Ok(()) => (batch.len(), 0),
            Err(refused) => (
                refused.stored,
                batch.get(refused.stored).map_or(0, |p| p.frame.seq()),
            ),
        };
        // Draining drops the events after a refusal: they are never published.
        for p in batch.drain(..).take(stored) {
            run.publish(p.frame);
        }
        if let Err(refused) = appended {
            let _ = failure.set(failed(&run, refused_seq, refused.error));
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ordinary_writes_wait_while_a_run_is_being_created() {
        let lanes = WriteLanes::new();
        let first = lanes.starting(2).unwrap();
        let second = lanes.starting(2).unwrap();
        assert!(
            lanes.starting(2).is_none(),
            "past the bound a run is refused"
        );
        let waiter = {
            let lanes = lanes.clone();
            tokio::spawn(async move { lanes.after_starts().await })
        };
        tokio::task::yield_now().await;
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one run is still being created");
        drop(second);
        waiter.await.unwrap();
        // Nothing being created: no wait at all.
        lanes.after_starts().await;
    }

    async fn store_with_run(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let url = format!("sqlite://{}", dir.path().join("emitter.db").display());
        let store = agentwire_store::connect(&url).await.unwrap();
        store
            .create_run(&agentwire_store::RunRecord {
                run_id: "r".into(),
                thread_id: "t".into(),
                user_id: "u".into(),
                tenant_id: "acme".into(),
                agent: "data".into(),
                user_request: "spend?".into(),
                status: RunStatus::Running,
                created_at: agentwire_protocol::time::now(),
                finished_at: None,
                last_seq: 0,
            })
            .await
            .unwrap();
        store
    }

    /// A run (of user `u` in tenant `acme`) and its emitter over `store`.
    fn emitter_for(run_id: &str, store: &Arc<dyn Store>) -> (Arc<RunShared>, Emitter) {
        let run = RunShared::new(run_id.into(), "t".into(), "u".into(), "acme".into());
        let emitter = Emitter::new(run.clone(), store.clone(), WriteLanes::new());
        (run, emitter)
    }

    fn completed() -> EventKind {
        EventKind::AgentCompleted {
            response: "the answer".into(),
            report: serde_json::Value::Null,
            duration_ms: 1,
        }
    }

    fn thinking() -> EventKind {
        EventKind::AgentThinking {
            message: "m".into(),
        }
    }

    /// A run whose end another node wrote: the refused write stops it as taken over, it writes
    /// and publishes nothing more (not even a terminal event of its own) and hands its
    /// followers over to the log.
    #[tokio::test]
    async fn a_run_ended_elsewhere_stops_writing_and_hands_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_run(&dir).await;
        let (run, mut emitter) = emitter_for("r", &store);
        emitter.emit("data", thinking(), Lane::First).unwrap();
        // Wait for seq 1 to be published, then another node ends the run.
        while run.published_seq() < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let ended = store
            .end_run(
                "r",
                1,
                vec![],
                RunStatus::Failed,
                agentwire_protocol::time::now(),
            )
            .await
            .unwrap();
        assert_eq!(ended, EndRun::Ended);
        emitter.emit("data", thinking(), Lane::First).unwrap();
        run.cancel.cancelled().await;
        assert_eq!(run.stop_reason(), Some(StopReason::TakenOver));
        assert!(matches!(
            emitter.emit("data", thinking(), Lane::First),
            Err(Stop::Cancelled)
        ));
        let recorded = emitter
            .finish(
                "data",
                EventKind::AgentCancelled { reason: "r".into() },
                RunStatus::Cancelled,
            )
            .await;
        assert!(recorded, "the other node recorded the end");
        assert_eq!(run.published_seq(), 1, "nothing after the refused write");
        assert_eq!(store.events_after("r", 0, u32::MAX).await.unwrap().len(), 1);
    }

    /// The terminal event goes behind the run's other events (written with the last of them,
    /// in one transaction with the final status): the log holds every event in order, the run
    /// is finished, and followers saw exactly what the log holds.
    #[tokio::test]
    async fn a_run_ends_with_all_its_events_in_order_and_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_run(&dir).await;
        let (run, mut emitter) = emitter_for("r", &store);
        for _ in 0..200 {
            emitter.emit("data", thinking(), Lane::Ordinary).unwrap();
        }
        let recorded = emitter
            .finish("data", completed(), RunStatus::Completed)
            .await;
        assert!(recorded);
        let logged = store.events_after("r", 0, u32::MAX).await.unwrap();
        assert_eq!(
            logged.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=201).collect::<Vec<_>>()
        );
        assert!(logged[200].payload.contains("\"type\":\"agent_completed\""));
        let stored = store.get_run("r").await.unwrap().unwrap();
        assert_eq!(stored.status, RunStatus::Completed);
        assert_eq!(stored.last_seq, 201);
        assert_eq!(run.published_seq(), 201);
    }

    /// Issue 15: a terminal event the store refuses is not published as if it were logged.
    /// Followers get a retryable `INTERNAL` error naming no detail instead of the answer, the
    /// end is reported unrecorded (so the node's orphan check ends the run in the log later),
    /// and the log holds nothing.
    #[tokio::test]
    async fn a_terminal_event_the_store_refuses_is_not_published_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_run(&dir).await;
        // No such run in the store: its end_run is refused (RunNotFound).
        let (run, mut emitter) = emitter_for("ghost", &store);
        let recorded = emitter
            .finish("data", completed(), RunStatus::Completed)
            .await;
        assert!(!recorded, "the end is not recorded");
        let log = crate::follow::LogReader {
            store: store.clone(),
            wakeups: crate::follow::Wakeups::new(),
            page: crate::follow::DEFAULT_LOG_PAGE,
        };
        let mut followed = crate::run::EventStream::live(run, 0, log);
        let event = followed.next().await.unwrap();
        match event.kind {
            EventKind::AgentError {
                error_code,
                retryable,
                ..
            } => {
                assert_eq!(error_code, ErrorCode::Internal);
                assert!(retryable);
            }
            other => panic!("published as if written: {other:?}"),
        }
        assert!(
            store
                .events_after("ghost", 0, u32::MAX)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// A refused write (not a lost database, not another node's end): the run fails with a
    /// correlation id, and its end is written only while the log is where the run left it.
    #[tokio::test]
    async fn a_refused_write_fails_the_run_with_a_correlation_id_and_never_ends_it_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_run(&dir).await;
        // seq 1 is taken already: the emitter's first write is a duplicate.
        store
            .append_event("r", 1, "agent_thinking", "{}")
            .await
            .unwrap();
        let (run, mut emitter) = emitter_for("r", &store);
        emitter.emit("data", thinking(), Lane::First).unwrap();
        let stop = loop {
            tokio::task::yield_now().await;
            if let Err(stop) = emitter.emit("data", thinking(), Lane::First) {
                break stop;
            }
        };
        let Stop::Failed { code, message } = stop else {
            panic!("{stop:?}")
        };
        assert_eq!(code, ErrorCode::Internal);
        assert!(message.contains("correlation id"), "{message}");
        assert_eq!(run.published_seq(), 0);
        // The log already holds seq 1 (not this run's): end_run sees it moved, and the run is
        // handed over to the log rather than ended twice.
        let recorded = emitter
            .finish(
                "data",
                EventKind::AgentError {
                    error_code: code,
                    message,
                    retryable: true,
                },
                RunStatus::Failed,
            )
            .await;
        assert!(recorded);
        assert_eq!(run.stop_reason(), Some(StopReason::TakenOver));
    }
}
