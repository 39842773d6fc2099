//! A run's event writer: numbers each event, serializes it once ([`EventFrame`]), persists the
//! frames in `seq` order and publishes each one only after it is persisted.
//!
//! Persisting happens beside the run, not in its way: [`Emitter::emit`] queues the frame for the
//! run's persister task and returns, so the run's agents go on working while the store commits
//! (the store groups many runs' events into one commit). A store failure is noticed at the next
//! `emit` and stops the run; nothing after a failed event is published, so followers never see a
//! gap. [`Emitter::finish`] waits for every queued frame, then writes the terminal event.
//!
//! Two lanes into the store: a run's first events (`agent_started`, and the `progress` that says
//! it waits in line) go straight to the store; every other event first waits until no run is
//! being created (a new run's rows and first event go ahead of other runs' events) and takes room
//! in [`WriteLanes`], which bounds how many bytes of ordinary events wait in the store's queue at
//! once, so a new run's first event never waits behind a long queue of other runs' writes.
//!
//! This module must not decide what events a run emits, or how it ends.

use crate::run::{EventFrame, RunShared};
use agentwire_protocol::{ErrorCode, EventKind, RunEvent};
use agentwire_store::{RunStatus, Store};
use std::sync::{Arc, OnceLock};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

/// KiB of ordinary (not first) events that may wait in the store's queue at once, across runs.
const ORDINARY_LANE_KIB: u32 = 512;

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
    /// The run's first events: they must reach the client at once.
    First,
    Ordinary,
}

struct Pending {
    frame: EventFrame,
    type_name: &'static str,
    lane: Lane,
}

/// What stopped the persister: the store's error, for the run's `INTERNAL` message.
type Failure = Arc<OnceLock<String>>;

pub(crate) struct Emitter {
    run: Arc<RunShared>,
    store: Arc<dyn Store>,
    next_seq: u64,
    queue: Option<mpsc::UnboundedSender<Pending>>,
    persister: Option<JoinHandle<()>>,
    failure: Failure,
}

impl Emitter {
    pub fn new(run: Arc<RunShared>, store: Arc<dyn Store>, lanes: Arc<WriteLanes>) -> Emitter {
        let (queue, pending) = mpsc::unbounded_channel();
        let failure = Failure::default();
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

    /// Queues one event to be persisted and then published.
    ///
    /// # Errors
    /// The store's error when an earlier event could not be persisted: the run must stop.
    pub fn emit(&mut self, agent: &str, kind: EventKind, lane: Lane) -> Result<(), String> {
        if let Some(err) = self.failure.get() {
            return Err(err.clone());
        }
        let event = self.next_event(agent, kind);
        let pending = Pending {
            frame: EventFrame::encode(&event),
            type_name: event.kind.type_name(),
            lane,
        };
        self.next_seq += 1;
        match &self.queue {
            Some(queue) if queue.send(pending).is_ok() => Ok(()),
            _ => Err("the event writer stopped".to_owned()),
        }
    }

    /// Ends the run: waits until every queued event is persisted and published, persists the
    /// terminal event, records the run's final `status`, and only then publishes the terminal
    /// event, so a client that sees it and reads the run's history finds it finished. A crash
    /// between the two writes leaves the run "in flight" with its terminal event persisted;
    /// startup recovery mends the status. If the store failed, an `INTERNAL` error is published
    /// anyway (not persisted), so no follower waits forever.
    pub async fn finish(&mut self, agent: &str, kind: EventKind, status: RunStatus) {
        self.queue = None;
        if let Some(persister) = self.persister.take()
            && let Err(err) = persister.await
        {
            let _ = self.failure.set(format!("the event writer failed: {err}"));
        }
        // Events queued after a failure were never published: continue the seq from the last
        // published one, so what followers see stays contiguous.
        if self.failure.get().is_some() {
            self.next_seq = self.run.published_seq() + 1;
        }
        let event = self.next_event(agent, kind);
        let frame = EventFrame::encode(&event);
        let persisted = match self.failure.get() {
            Some(err) => Err(err.clone()),
            None => self
                .store
                .append_event(
                    &self.run.run_id,
                    self.next_seq,
                    event.kind.type_name(),
                    frame.as_str(),
                )
                .await
                .map_err(|err| err.to_string()),
        };
        let frame = match persisted {
            Ok(()) => {
                let finished = Some(agentwire_protocol::time::now());
                if let Err(err) = self
                    .store
                    .set_run_status(&self.run.run_id, status, finished)
                    .await
                {
                    tracing::error!(run_id = %self.run.run_id, error = %err, "recording the run's final status failed");
                }
                frame
            }
            Err(err) => {
                tracing::error!(run_id = %self.run.run_id, error = %err, "persisting the run's events failed");
                EventFrame::encode(&self.next_event(
                    agent,
                    EventKind::AgentError {
                        error_code: ErrorCode::Internal,
                        message: "the event log could not be written; the run was stopped".into(),
                        retryable: true,
                    },
                ))
            }
        };
        self.next_seq += 1;
        self.run.publish(frame);
    }
}

/// The run's persister: appends each queued frame, in order, then publishes it. Stops at the
/// first failure (what follows is neither persisted nor published).
async fn persist(
    run: Arc<RunShared>,
    store: Arc<dyn Store>,
    lanes: Arc<WriteLanes>,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    failure: Failure,
) {
    while let Some(Pending {
        frame,
        type_name,
        lane,
    }) = pending.recv().await
    {
        let _room = match lane {
            Lane::First => None,
            Lane::Ordinary => {
                lanes.after_starts().await;
                let kib = u32::try_from(frame.as_str().len() / 1024 + 1)
                    .unwrap_or(u32::MAX)
                    .min(ORDINARY_LANE_KIB);
                lanes.ordinary.acquire_many(kib).await.ok()
            }
        };
        let appended = store
            .append_event(&run.run_id, frame.seq(), type_name, frame.as_str())
            .await;
        if let Err(err) = appended {
            tracing::error!(run_id = %run.run_id, seq = frame.seq(), error = %err, "persisting a run event failed");
            let _ = failure.set(format!("the event log could not be written: {err}"));
            return;
        }
        run.publish(frame);
    }
}

/// The error a run stops with when its events cannot be persisted.
pub(crate) fn write_failed(message: String) -> crate::stop::Stop {
    crate::stop::Stop::failed(ErrorCode::Internal, message)
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
}
