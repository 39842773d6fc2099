//! One run's shared state, and the stream a follower reads it through.
//!
//! Each event is serialized once, into an [`EventFrame`] (`frame.rs`). While a run is active its frames live in an in-memory log beside
//! the persisted one; followers read the log by `seq` and wait on a watch channel for more. Nobody
//! can lag out of it (unlike a broadcast channel) and a slow follower never slows the run: the run
//! only appends and notifies. Once the run ends, late followers read the store instead, which by
//! then holds every event; so do followers of a run that executes on another node (`follow.rs`),
//! and the followers of a run this node gave up because another node took it over
//! ([`RunShared::hand_over`]).
//!
//! Order matters and is the reason this works without gaps: an event is persisted, then appended to
//! the log, then announced; a run leaves the registry only after its terminal event is persisted.
//! The log and its "finished" and "handed over" marks change under one lock, so a follower that
//! finds no next frame and the run finished (or handed over) knows there is nothing more here
//! (reading them separately could miss the terminal frame published in between).

use crate::follow::{LogFollower, LogReader};
use crate::frame::EventFrame;
use agentwire_analytics::Cancel;
use agentwire_protocol::RunEvent;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Why a run was told to stop before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    User,
    Timeout,
    Shutdown,
    /// Another node ends the run (this node's lease lapsed and a survivor claimed its runs, or
    /// the log already holds a terminal event): stop without writing; followers read the log.
    TakenOver,
    /// This node cannot reach the database and may be losing its lease: stop without writing;
    /// followers here get an `UNAVAILABLE` error, the log is mended once the database is back.
    Unreachable,
}

/// State shared by a running run, its cancellers and its followers.
#[derive(Debug)]
pub(crate) struct RunShared {
    pub run_id: String,
    pub thread_id: String,
    pub user_id: String,
    /// The tenant whose data the run reads: a run is its owner's only within that tenant.
    pub tenant_id: String,
    /// Every frame published so far, in `seq` order, and whether the terminal one is among them.
    log: Mutex<Log>,
    /// The highest `seq` published; followers wait on it.
    published: watch::Sender<u64>,
    pub cancel: CancellationToken,
    /// The same stop, as the flag the run's analyses look at on the CPU pool (they cannot await
    /// the token).
    pub analysis: Cancel,
    stop_reason: OnceLock<StopReason>,
    /// Counts the run's end: called once, when its terminal frame is published (before the frame
    /// enters the log, so before any follower can see it), or by [`RunShared::end_here`] when
    /// it ends without one here.
    on_end: EndHook,
}

/// What [`RunShared::on_end`] set, until it is called.
#[derive(Default)]
struct EndHook(Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl EndHook {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Box<dyn FnOnce() + Send>>> {
        // Only set and taken, neither of which can panic: a poisoned lock holds valid data.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, hook: Box<dyn FnOnce() + Send>) {
        *self.slot() = Some(hook);
    }

    fn take(&self) -> Option<Box<dyn FnOnce() + Send>> {
        self.slot().take()
    }
}

impl std::fmt::Debug for EndHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EndHook")
    }
}

#[derive(Debug, Default)]
struct Log {
    /// index = seq - 1
    frames: Vec<EventFrame>,
    finished: bool,
    /// Set when this node stopped executing the run without ending it: followers continue
    /// from the log.
    handed_over: bool,
}

impl RunShared {
    pub fn new(run_id: String, thread_id: String, user_id: String, tenant_id: String) -> Arc<Self> {
        Arc::new(Self {
            run_id,
            thread_id,
            user_id,
            tenant_id,
            log: Mutex::new(Log::default()),
            published: watch::Sender::new(0),
            cancel: CancellationToken::new(),
            analysis: Cancel::new(),
            stop_reason: OnceLock::new(),
            on_end: EndHook::default(),
        })
    }

    /// Sets what counts the run's end (`/metrics`' outcomes): run when the terminal frame is
    /// published, so a client that has seen a run end finds it counted, whatever the run's own
    /// task does after (it runs on lower-priority threads, and may run later).
    pub fn on_end(&self, hook: impl FnOnce() + Send + 'static) {
        self.on_end.set(Box::new(hook));
    }

    /// Counts the run's end if publishing its terminal frame has not (it ended without one
    /// here: given up to another node); whether this call counted it.
    pub fn end_here(&self) -> bool {
        self.on_end.take().map(|hook| hook()).is_some()
    }

    /// Appends an already persisted frame and wakes followers.
    pub fn publish(&self, frame: EventFrame) {
        let seq = frame.seq();
        let terminal = frame.is_terminal();
        // Before the frame is in the log: a follower already awake reads the log without
        // waiting for the announcement below.
        if terminal && let Some(hook) = self.on_end.take() {
            hook();
        }
        // The lock is never held across an await: a std Mutex is right here.
        if let Ok(mut log) = self.log.lock() {
            log.finished |= terminal;
            log.frames.push(frame);
        }
        self.published.send_replace(seq);
    }

    /// The highest `seq` published so far.
    pub fn published_seq(&self) -> u64 {
        *self.published.borrow()
    }

    /// The frame with this `seq`, or whether none will ever come (the run finished before it).
    fn frame_at(&self, seq: u64) -> Next {
        let Ok(log) = self.log.lock() else {
            return Next::End;
        };
        let index = seq
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(usize::MAX);
        match log.frames.get(index) {
            Some(frame) => Next::Frame(frame.clone()),
            None if log.finished => Next::End,
            None if log.handed_over => Next::HandedOver,
            None => Next::Wait,
        }
    }

    /// Asks the run to stop; the first reason given wins.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.stop_reason.set(reason);
        self.analysis.cancel();
        self.cancel.cancel();
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason.get().copied()
    }

    /// Gives the run up without a terminal event of this node's: its followers here read the
    /// rest (the terminal event another node writes) from the log.
    pub fn hand_over(&self) {
        if let Ok(mut log) = self.log.lock() {
            log.handed_over = true;
        }
        self.published.send_modify(|_| {});
    }
}

enum Next {
    Frame(EventFrame),
    Wait,
    End,
    HandedOver,
}

/// The events of one run, in `seq` order, ending with its terminal event.
///
/// Obtained from [`crate::Engine::start_run`] or [`crate::Engine::follow`]. Reading is
/// independent of the run: a follower that stops reading holds up nobody.
#[derive(Debug)]
pub struct EventStream {
    source: Source,
}

#[derive(Debug)]
enum Source {
    Live {
        run: Arc<RunShared>,
        next_seq: u64,
        published: watch::Receiver<u64>,
        done: bool,
        /// Where to continue if the run is handed over.
        log: LogReader,
    },
    /// From the event log: a run executing elsewhere, finished, or handed over.
    Log(Box<LogFollower>),
}

impl EventStream {
    pub(crate) fn live(run: Arc<RunShared>, after_seq: u64, log: LogReader) -> Self {
        let published = run.published.subscribe();
        Self {
            source: Source::Live {
                run,
                next_seq: after_seq.saturating_add(1),
                published,
                done: false,
                log,
            },
        }
    }

    pub(crate) fn from_log(follower: LogFollower) -> Self {
        Self {
            source: Source::Log(Box::new(follower)),
        }
    }

    /// The next event's frame, or `None` once the terminal event has been yielded (or the run's
    /// events after the requested `seq` are exhausted).
    pub async fn next_frame(&mut self) -> Option<EventFrame> {
        loop {
            let handed_over = match &mut self.source {
                Source::Log(follower) => return follower.next_frame().await,
                Source::Live {
                    run,
                    next_seq,
                    published,
                    done,
                    log,
                } => loop {
                    if *done {
                        return None;
                    }
                    match run.frame_at(*next_seq) {
                        Next::Frame(frame) => {
                            *next_seq += 1;
                            *done = frame.is_terminal();
                            return Some(frame);
                        }
                        // Asked to resume past the terminal event: nothing more will come.
                        Next::End => return None,
                        Next::HandedOver => {
                            break log.follow(&run.run_id, next_seq.saturating_sub(1));
                        }
                        Next::Wait => {
                            // `changed` returns at once for anything published since the last
                            // look, so a frame published after `frame_at` is not missed.
                            if published.changed().await.is_err() {
                                // The run state is gone; everything published was read above.
                                *done = true;
                            }
                        }
                    }
                },
            };
            self.source = Source::Log(Box::new(handed_over));
        }
    }

    /// The next event, decoded from its frame (see [`EventStream::next_frame`]). A frame that is
    /// not a run event (a corrupt log) ends the stream.
    pub async fn next(&mut self) -> Option<RunEvent> {
        let frame = self.next_frame().await?;
        let event = frame.decode();
        if event.is_none() {
            tracing::error!(seq = frame.seq(), "a run's event frame is not a run event");
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::Wakeups;
    use agentwire_protocol::{EventKind, ServerFrame};

    async fn log_reader(dir: &tempfile::TempDir) -> LogReader {
        let url = format!("sqlite://{}", dir.path().join("run.db").display());
        LogReader {
            store: agentwire_store::connect(&url).await.unwrap(),
            wakeups: Wakeups::new(),
            page: crate::follow::DEFAULT_LOG_PAGE,
        }
    }

    fn frame(run: &RunShared, seq: u64, kind: EventKind) -> EventFrame {
        EventFrame::encode(&RunEvent {
            run_id: run.run_id.clone(),
            thread_id: run.thread_id.clone(),
            seq,
            agent: "supervisor".into(),
            timestamp: agentwire_protocol::time::now(),
            kind,
        })
    }

    /// A follower that has the terminal frame finds the run's end already counted: `/metrics`
    /// read by a client that has seen a run end counts it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_end_is_counted_before_a_follower_sees_the_terminal_frame() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_reader(&dir).await;
        for i in 0..200u64 {
            let run = RunShared::new(format!("run_{i}"), "thr".into(), "u".into(), "t".into());
            let counted = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = counted.clone();
            run.on_end(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
            let mut stream = EventStream::live(run.clone(), 0, log.clone());
            let follower = tokio::spawn(async move {
                let mut seen = Vec::new();
                while let Some(frame) = stream.next_frame().await {
                    seen.push((
                        frame.is_terminal(),
                        counted.load(std::sync::atomic::Ordering::SeqCst),
                    ));
                }
                seen
            });
            let started = EventKind::AgentStarted {
                user_request: "q".into(),
                plan: vec![],
            };
            run.publish(frame(&run, 1, started));
            tokio::task::yield_now().await;
            let done = EventKind::AgentCancelled { reason: "r".into() };
            run.publish(frame(&run, 2, done));
            let seen = follower.await.unwrap();
            // (The first frame may be read before or after the end: only the terminal one is
            // bound to it.)
            assert_eq!(seen.len(), 2, "run {i}");
            assert_eq!(seen[1], (true, true), "run {i}");
            // Ending it here again (a run whose end was published) counts nothing more.
            assert!(!run.end_here());
        }
    }

    #[test]
    fn a_run_ended_without_its_terminal_frame_here_is_counted_once() {
        let run = RunShared::new("r".into(), "thr".into(), "u".into(), "t".into());
        let count = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = count.clone();
        run.on_end(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        assert!(run.end_here());
        assert!(!run.end_here());
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// Thousands of short runs, each with followers that start before, during and after it:
    /// every follower must end with the run's terminal event.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_live_follower_gets_the_terminal_event() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_reader(&dir).await;
        let mut followers = tokio::task::JoinSet::new();
        for i in 0..3_000u64 {
            let run = RunShared::new(format!("run_{i}"), "thr".into(), "u".into(), "t".into());
            for _ in 0..2 {
                let mut stream = EventStream::live(run.clone(), 0, log.clone());
                followers.spawn(async move {
                    let mut last = None;
                    while let Some(frame) = stream.next_frame().await {
                        last = Some(frame);
                    }
                    last
                });
            }
            let publisher = run.clone();
            tokio::spawn(async move {
                let started = frame(
                    &publisher,
                    1,
                    EventKind::AgentStarted {
                        user_request: "q".into(),
                        plan: vec![],
                    },
                );
                publisher.publish(started);
                tokio::task::yield_now().await;
                let done = frame(
                    &publisher,
                    2,
                    EventKind::AgentCancelled { reason: "r".into() },
                );
                publisher.publish(done);
            });
            let mut late = EventStream::live(run, 1, log.clone());
            followers.spawn(async move {
                let mut last = None;
                while let Some(frame) = late.next_frame().await {
                    last = Some(frame);
                }
                last
            });
        }
        let mut ended = 0;
        while let Some(last) = followers.join_next().await {
            let last = last.unwrap().expect("a follower saw no event");
            assert!(last.is_terminal(), "a follower ended at seq {}", last.seq());
            assert_eq!(last.seq(), 2);
            ended += 1;
        }
        assert_eq!(ended, 9_000);
    }

    #[test]
    fn a_frame_is_the_event_serialized_once_and_reads_back() {
        let run = RunShared::new("run_1".into(), "thr_1".into(), "u".into(), "t".into());
        let f = frame(
            &run,
            3,
            EventKind::AgentThinking {
                message: "m".into(),
            },
        );
        let event = f.decode().unwrap();
        assert_eq!(f.as_str(), ServerFrame::Event(event.clone()).to_json());
        assert!(!f.is_terminal());
        let stored = EventFrame::stored(3, f.as_str().to_owned());
        assert_eq!(stored, f);
        let done = frame(&run, 4, EventKind::AgentCancelled { reason: "r".into() });
        assert!(EventFrame::stored(4, done.as_str().to_owned()).is_terminal());
        // The socket's bytes and the event log's entry are the frame's own text, not copies.
        assert_eq!(f.bytes().as_ptr(), f.as_str().as_ptr());
        let entry = crate::emitter::log_entry(&f, "agent_thinking", None);
        assert_eq!(entry.payload.as_ptr(), f.as_str().as_ptr());
        assert_eq!(&*entry.payload, f.as_str());
    }
}
