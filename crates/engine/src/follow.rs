//! Following a run through the event log: for a run that executes on another node, or whose
//! executor on this node gave it up (its lease lapsed and a survivor ends it).
//!
//! The event log is the truth; a wake-up only says "read again". `cluster.rs` routes the store's
//! notices here: [`Wakeups::wake`] for new events of a run, [`Wakeups::wake_all`] after a
//! `Resync` (notices may have been missed, so every follower re-reads from its last seq), and
//! [`Wakeups::set_degraded`] while the notice listener is disconnected, when followers poll
//! slowly because nothing else would wake them. Otherwise a follower reads once per wake-up and
//! never polls. Followers yield events strictly in `seq` order, each once: a read that finds a
//! gap keeps what follows it for a later read. This module must not execute runs or decide how
//! one ends.

use crate::error::EngineError;
use crate::frame::EventFrame;
use agentwire_protocol::{RunEvent, ServerFrame};
use agentwire_store::{Store, StoredEvent};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// While the notice listener is down, how often a follower reads the log anyway.
const POLL_WHILE_DISCONNECTED: Duration = Duration::from_secs(1);
/// Events read from the log at a time, unless configured (`EngineConfig::log_page`): a
/// follower, a history read or a recovery holds at most this many events of a log at once.
pub const DEFAULT_LOG_PAGE: u32 = 256;
/// After a failed read (the database is unreachable), how long before the next attempt.
const RETRY_AFTER_READ_ERROR: Duration = Duration::from_secs(1);

/// The wake-up channels of the runs followed through the log on this node.
#[derive(Debug)]
pub(crate) struct Wakeups {
    runs: Mutex<HashMap<String, RunWake>>,
    /// True while notices may be missed (the listener is disconnected).
    degraded: watch::Sender<bool>,
}

#[derive(Debug)]
struct RunWake {
    /// The highest seq a notice announced; every notice marks it changed.
    tx: watch::Sender<u64>,
    followers: usize,
}

impl Wakeups {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            runs: Mutex::new(HashMap::new()),
            degraded: watch::Sender::new(false),
        })
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunWake>> {
        // Held only for map operations that cannot panic: a poisoned lock holds valid data.
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Events of `run_id` up to `seq` are durable: wake its followers, if any.
    pub fn wake(&self, run_id: &str, seq: u64) {
        if let Some(run) = self.runs().get(run_id) {
            run.tx
                .send_modify(|notified| *notified = (*notified).max(seq));
        }
    }

    /// Notices may have been missed: every follower re-reads.
    pub fn wake_all(&self) {
        for run in self.runs().values() {
            run.tx.send_modify(|_| {});
        }
    }

    /// Whether notices are currently arriving; while they are not, followers poll.
    pub fn set_degraded(&self, degraded: bool) {
        self.degraded.send_if_modified(|now| {
            let changed = *now != degraded;
            *now = degraded;
            changed
        });
    }

    /// How many runs are followed through the log here (for tests and metrics).
    #[cfg(test)]
    fn followed(&self) -> usize {
        self.runs().len()
    }

    fn register(self: &Arc<Self>, run_id: &str) -> Wake {
        let mut runs = self.runs();
        let entry = runs.entry(run_id.to_owned()).or_insert_with(|| RunWake {
            tx: watch::Sender::new(0),
            followers: 0,
        });
        entry.followers += 1;
        let rx = entry.tx.subscribe();
        drop(runs);
        Wake {
            wakeups: self.clone(),
            run_id: run_id.to_owned(),
            rx,
            degraded: self.degraded.subscribe(),
        }
    }
}

/// One follower's wake-up registration; dropping it unregisters.
#[derive(Debug)]
struct Wake {
    wakeups: Arc<Wakeups>,
    run_id: String,
    rx: watch::Receiver<u64>,
    degraded: watch::Receiver<bool>,
}

impl Wake {
    /// Marks everything announced so far as seen: call before reading the log, so a wake-up
    /// that arrives during the read makes [`Wake::wait`] return at once.
    fn mark_seen(&mut self) {
        self.rx.borrow_and_update();
    }

    /// Waits for a wake-up, or while notices are not arriving, for the poll interval.
    async fn wait(&mut self) {
        let degraded = *self.degraded.borrow_and_update();
        tokio::select! {
            _ = self.rx.changed() => {}
            _ = self.degraded.changed() => {}
            () = tokio::time::sleep(POLL_WHILE_DISCONNECTED), if degraded => {}
        }
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        let mut runs = self.wakeups.runs();
        if let Some(run) = runs.get_mut(&self.run_id) {
            run.followers = run.followers.saturating_sub(1);
            if run.followers == 0 {
                runs.remove(&self.run_id);
            }
        }
    }
}

/// What a follower needs to read runs from the log: the store and this node's wake-ups.
#[derive(Clone)]
pub(crate) struct LogReader {
    pub store: Arc<dyn Store>,
    pub wakeups: Arc<Wakeups>,
    /// Events read from the log at a time (at least 1).
    pub page: u32,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader").finish_non_exhaustive()
    }
}

impl LogReader {
    /// Follows `run_id` from the log, after `after_seq`, to its terminal event.
    pub fn follow(&self, run_id: &str, after_seq: u64) -> LogFollower {
        LogFollower {
            store: self.store.clone(),
            wake: self.wakeups.register(run_id),
            run_id: run_id.to_owned(),
            page: self.page.max(1),
            question: None,
            next_seq: after_seq.saturating_add(1),
            buffered: VecDeque::new(),
            done: false,
        }
    }
}

/// One run's events read from the log, in `seq` order, each once, ending with its terminal
/// event (or when the run is finished and nothing more is logged).
pub(crate) struct LogFollower {
    store: Arc<dyn Store>,
    wake: Wake,
    run_id: String,
    page: u32,
    /// The run's question, once read: the log keeps it only in the run's row.
    question: Option<String>,
    next_seq: u64,
    /// Frames read and not yet yielded, contiguous from `next_seq`.
    buffered: VecDeque<EventFrame>,
    done: bool,
}

impl std::fmt::Debug for LogFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFollower")
            .field("run_id", &self.run_id)
            .field("next_seq", &self.next_seq)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl LogFollower {
    /// The next event, read back from its frame.
    #[cfg(test)]
    pub async fn next(&mut self) -> Option<RunEvent> {
        self.next_frame().await.and_then(|frame| frame.decode())
    }

    /// The next event's frame, its text exactly as it was logged.
    pub async fn next_frame(&mut self) -> Option<EventFrame> {
        loop {
            if let Some(frame) = self.buffered.pop_front() {
                self.next_seq = frame.seq().saturating_add(1);
                if frame.is_terminal() {
                    self.done = true;
                    self.buffered.clear();
                }
                return Some(frame);
            }
            if self.done {
                return None;
            }
            self.wake.mark_seen();
            match self.read().await {
                Ok(Read::Events) => continue,
                Ok(Read::Ended) => {
                    self.done = true;
                    return None;
                }
                Ok(Read::Nothing) => self.wake.wait().await,
                Err(err @ EngineError::Internal(_)) => {
                    tracing::error!(run_id = %self.run_id, error = %err, "a followed run's log cannot be read back; the follower stops");
                    self.done = true;
                    return None;
                }
                Err(err) => {
                    // Every follower retries while the database is away: the node's lease
                    // task already says so once, at warn.
                    tracing::debug!(run_id = %self.run_id, error = %err, "reading a followed run's log failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY_AFTER_READ_ERROR) => {}
                        () = self.wake.wait() => {}
                    }
                }
            }
        }
    }

    /// Reads what the log holds after the last yielded event.
    async fn read(&mut self) -> Result<Read, EngineError> {
        if self.read_events().await? {
            return Ok(Read::Events);
        }
        // Nothing new. A finished run has nothing more to give once the log, read after seeing
        // it finished, holds nothing after our seq (asked past its end, or it ended without a
        // terminal event in the log).
        match self.store.get_run(&self.run_id).await? {
            None => Ok(Read::Ended),
            Some(run) if run.status.is_terminal() => {
                if self.read_events().await? {
                    Ok(Read::Events)
                } else {
                    if run.last_seq >= self.next_seq {
                        tracing::error!(run_id = %self.run_id, seq = self.next_seq, "a finished run's log has a gap; the follower stops there");
                    }
                    Ok(Read::Ended)
                }
            }
            Some(_) => Ok(Read::Nothing),
        }
    }

    /// Buffers the contiguous events after `next_seq - 1`, a page at most (the next read,
    /// once they are yielded, brings the next page); true when there were any.
    async fn read_events(&mut self) -> Result<bool, EngineError> {
        let after = self.next_seq.saturating_sub(1);
        let stored = self
            .store
            .events_after(&self.run_id, after, self.page)
            .await?;
        // Counted by hand, not with `(next_seq..)`: a resume past the end may ask for u64::MAX.
        let mut expected = self.next_seq;
        for stored in stored {
            if stored.seq != expected {
                // A later event committed before an earlier one: the earlier one's wake-up
                // brings the rest.
                break;
            }
            // Read back once to be sure the log holds a run event; sent as it was logged,
            // unless the log left the run's question out of it (`logged.rs`).
            let mut event = decode_stored(&stored)?;
            let frame = if crate::logged::needs_question(&event) {
                crate::logged::restore(&mut event, &self.question().await?);
                EventFrame::encode(&event)
            } else {
                EventFrame::stored(stored.seq, stored.payload)
            };
            self.buffered.push_back(frame);
            expected = expected.saturating_add(1);
        }
        Ok(!self.buffered.is_empty())
    }
}

impl LogFollower {
    /// The run's question, for a caller that has just read the run's row: the log keeps it only
    /// there (`logged.rs`), so the follower need not read the row again.
    pub fn knowing_question(mut self, question: String) -> LogFollower {
        self.question = Some(question);
        self
    }

    /// The run's question, from its row (read once, unless given).
    async fn question(&mut self) -> Result<String, EngineError> {
        if self.question.is_none() {
            // A run deleted meanwhile (retention) has no question left to give.
            let run = self.store.get_run(&self.run_id).await?;
            self.question = Some(run.map(|run| run.user_request).unwrap_or_default());
        }
        Ok(self.question.clone().unwrap_or_default())
    }
}

/// What one read of the log found.
enum Read {
    /// Events to yield.
    Events,
    /// Nothing yet: wait for a wake-up.
    Nothing,
    /// Nothing more will come.
    Ended,
}

/// Parses a stored frame back into its run event; anything else means the log is corrupt.
pub(crate) fn decode_event(stored: StoredEvent) -> Result<RunEvent, EngineError> {
    decode_stored(&stored)
}

fn decode_stored(stored: &StoredEvent) -> Result<RunEvent, EngineError> {
    match serde_json::from_str::<ServerFrame>(&stored.payload) {
        Ok(ServerFrame::Event(event)) => Ok(event),
        Ok(_) | Err(_) => Err(EngineError::Internal(format!(
            "event {}#{} in the log is not a run event",
            stored.run_id, stored.seq
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_protocol::{EventKind, ServerFrame};
    use agentwire_store::{RunRecord, RunStatus};
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);

    async fn store_with_run(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let url = format!("sqlite://{}", dir.path().join("follow.db").display());
        let store = agentwire_store::connect(&url).await.unwrap();
        store
            .create_run(&RunRecord {
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

    async fn append(store: &Arc<dyn Store>, seq: u64, kind: EventKind) {
        let event = RunEvent {
            run_id: "r".into(),
            thread_id: "t".into(),
            seq,
            agent: "data".into(),
            timestamp: agentwire_protocol::time::now(),
            kind,
        };
        let type_name = event.kind.type_name();
        store
            .append_event("r", seq, type_name, &ServerFrame::Event(event).to_json())
            .await
            .unwrap();
    }

    fn thinking(text: &str) -> EventKind {
        EventKind::AgentThinking {
            message: text.into(),
        }
    }

    async fn next(follower: &mut LogFollower) -> Option<u64> {
        tokio::time::timeout(WAIT, follower.next())
            .await
            .expect("the follower stalled")
            .map(|e| e.seq)
    }

    #[tokio::test]
    async fn a_follower_yields_each_event_once_in_order_and_waits_out_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_run(&dir).await;
        let wakeups = Wakeups::new();
        let reader = LogReader {
            store: store.clone(),
            wakeups: wakeups.clone(),
            page: DEFAULT_LOG_PAGE,
        };
        append(&store, 1, thinking("one")).await;
        append(&store, 2, thinking("two")).await;
        let mut follower = reader.follow("r", 0);
        assert_eq!(next(&mut follower).await, Some(1));
        assert_eq!(next(&mut follower).await, Some(2));

        // 4 commits before 3: nothing is yielded until 3 is there.
        append(&store, 4, thinking("four")).await;
        wakeups.wake("r", 4);
        let waiting = tokio::time::timeout(Duration::from_millis(300), follower.next()).await;
        assert!(waiting.is_err(), "yielded past a gap: {waiting:?}");
        append(&store, 3, thinking("three")).await;
        wakeups.wake("r", 3);
        assert_eq!(next(&mut follower).await, Some(3));
        assert_eq!(next(&mut follower).await, Some(4));

        let error = EventKind::AgentError {
            error_code: agentwire_protocol::ErrorCode::Interrupted,
            message: "gone".into(),
            retryable: true,
        };
        append(&store, 5, error).await;
        wakeups.wake("r", 5);
        assert_eq!(next(&mut follower).await, Some(5));
        assert_eq!(
            next(&mut follower).await,
            None,
            "nothing after the terminal"
        );
        drop(follower);
        assert_eq!(
            wakeups.followed(),
            0,
            "the run's wake-up goes with its last follower"
        );
    }

    #[tokio::test]
    async fn a_finished_run_with_nothing_after_the_asked_seq_ends_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_run(&dir).await;
        append(&store, 1, thinking("one")).await;
        store
            .set_run_status(
                "r",
                RunStatus::Failed,
                Some(agentwire_protocol::time::now()),
            )
            .await
            .unwrap();
        let reader = LogReader {
            store,
            wakeups: Wakeups::new(),
            page: DEFAULT_LOG_PAGE,
        };
        let mut from_start = reader.follow("r", 0);
        assert_eq!(next(&mut from_start).await, Some(1));
        assert_eq!(next(&mut from_start).await, None);
        let mut past_the_end = reader.follow("r", 7);
        assert_eq!(next(&mut past_the_end).await, None);
        let mut unknown = reader.follow("nope", 0);
        assert_eq!(next(&mut unknown).await, None);
    }

    #[tokio::test]
    async fn a_follower_reads_a_long_log_a_page_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_run(&dir).await;
        for seq in 1..=6 {
            append(&store, seq, thinking("step")).await;
        }
        let error = EventKind::AgentError {
            error_code: agentwire_protocol::ErrorCode::Interrupted,
            message: "gone".into(),
            retryable: true,
        };
        append(&store, 7, error).await;
        for page in [1, 2, 3] {
            let reader = LogReader {
                store: store.clone(),
                wakeups: Wakeups::new(),
                page,
            };
            let mut follower = reader.follow("r", 1);
            let mut seqs = Vec::new();
            while let Some(seq) = next(&mut follower).await {
                assert!(
                    follower.buffered.len() < page as usize,
                    "more than a page held"
                );
                seqs.push(seq);
            }
            assert_eq!(seqs, [2, 3, 4, 5, 6, 7], "pages of {page}");
        }
    }

    #[tokio::test]
    async fn while_notices_are_down_followers_poll() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_run(&dir).await;
        let wakeups = Wakeups::new();
        let reader = LogReader {
            store: store.clone(),
            wakeups: wakeups.clone(),
            page: DEFAULT_LOG_PAGE,
        };
        let mut follower = reader.follow("r", 0);
        let reading = tokio::spawn(async move { next(&mut follower).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        wakeups.set_degraded(true);
        // No wake-up for this event: only the poll finds it.
        append(&store, 1, thinking("one")).await;
        assert_eq!(reading.await.unwrap(), Some(1));
    }
}
