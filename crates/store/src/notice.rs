//! Wake-ups between nodes: "run R has events up to seq S", "cancel run R", "tenant T's usage
//! changed", and the listener's own state.
//!
//! A notice is a hint, never the data: the event log and the run rows stay the truth, and a
//! notice may be lost (a listener that lost its connection, a subscriber that fell behind). So
//! whenever notices may have been missed, subscribers get [`Notice::Resync`] and must re-read
//! what they follow. On PostgreSQL the notices come from LISTEN/NOTIFY (sent in the writing
//! transaction, so they arrive only once the write is committed); on SQLite they are published
//! in-process after each commit. This module only fans notices out; it must not decide what a
//! subscriber does with them.

use std::sync::Mutex;

use tokio::sync::broadcast;

/// Notices a subscriber may fall behind by before it gets [`ResyncReason::Lagged`].
const NOTICE_BUFFER: usize = 4_096;

/// One wake-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The run's events up to `seq` (at least) are durable: read them with `events_after`.
    RunEvents { run_id: String, seq: u64 },
    /// Someone asked to cancel the run (see `Store::request_cancel`); the node executing it
    /// should stop it.
    CancelRequested { run_id: String },
    /// The tenant's usage records changed: drop anything computed from them.
    UsageChanged { tenant_id: String },
    /// The listener lost its connection to the database; no notice arrives until the next
    /// [`Notice::Resync`]. Anything that must not wait should poll meanwhile.
    Disconnected,
    /// Notices may have been missed: re-read every followed run from its last seq, check for
    /// cancel requests, and drop cached usage.
    Resync(ResyncReason),
}

/// Why a subscriber must re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// The listener connected again after losing its connection.
    Reconnected,
    /// This subscriber did not keep up and notices were dropped for it.
    Lagged,
}

/// A subscription: notices in the order they were received. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Notices {
    rx: broadcast::Receiver<Notice>,
    /// Delivered before anything else: a subscriber joining while the listener is down is told.
    pending: Option<Notice>,
}

impl Notices {
    /// The next notice, waiting for one; `None` once the store is closed.
    pub async fn recv(&mut self) -> Option<Notice> {
        if let Some(notice) = self.pending.take() {
            return Some(notice);
        }
        match self.rx.recv().await {
            Ok(notice) => Some(notice),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                Some(Notice::Resync(ResyncReason::Lagged))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next notice if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Notice> {
        if let Some(notice) = self.pending.take() {
            return Some(notice);
        }
        match self.rx.try_recv() {
            Ok(notice) => Some(notice),
            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                Some(Notice::Resync(ResyncReason::Lagged))
            }
            Err(_) => None,
        }
    }
}

/// The fan-out point of one store: backends publish, subscribers receive.
#[derive(Debug)]
pub(crate) struct NoticeHub {
    state: Mutex<HubState>,
}

#[derive(Debug)]
struct HubState {
    /// `None` once the store is closed: subscriptions end.
    tx: Option<broadcast::Sender<Notice>>,
    /// Whether notices are currently arriving.
    connected: bool,
}

impl NoticeHub {
    /// A hub whose source is connected from the start (SQLite: in-process, never disconnects;
    /// PostgreSQL: the listener is connected before anyone can subscribe).
    pub(crate) fn new() -> NoticeHub {
        let (tx, _) = broadcast::channel(NOTICE_BUFFER);
        NoticeHub {
            state: Mutex::new(HubState {
                tx: Some(tx),
                connected: true,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HubState> {
        // Nothing here can panic while holding the lock; a poisoned lock still holds valid data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends to every subscriber; nobody listening is fine.
    pub(crate) fn publish(&self, notice: Notice) {
        if let Some(tx) = &self.state().tx {
            let _ = tx.send(notice);
        }
    }

    /// A new subscription; one that starts while the listener is down begins with
    /// `Disconnected`, and one on a closed store ends at once.
    pub(crate) fn subscribe(&self) -> Notices {
        let state = self.state();
        let rx = match &state.tx {
            Some(tx) => tx.subscribe(),
            None => broadcast::channel(1).1,
        };
        Notices {
            rx,
            pending: (!state.connected && state.tx.is_some()).then_some(Notice::Disconnected),
        }
    }

    /// Records a listener state change and tells the subscribers: `Disconnected` when it goes
    /// down, `Resync(Reconnected)` when it is back (listening again, so nothing after this
    /// notice is missed).
    pub(crate) fn set_connected(&self, now: bool) {
        let mut state = self.state();
        if state.connected == now {
            return;
        }
        state.connected = now;
        if let Some(tx) = &state.tx {
            let _ = tx.send(if now {
                Notice::Resync(ResyncReason::Reconnected)
            } else {
                Notice::Disconnected
            });
        }
    }

    /// Ends every subscription (the store was closed).
    pub(crate) fn close(&self) {
        self.state().tx = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn late_subscribers_learn_the_listener_is_down() {
        let hub = NoticeHub::new();
        let mut early = hub.subscribe();
        hub.set_connected(false);
        hub.set_connected(false); // no repeat
        let mut late = hub.subscribe();
        hub.set_connected(true);
        assert_eq!(early.recv().await, Some(Notice::Disconnected));
        assert_eq!(
            early.recv().await,
            Some(Notice::Resync(ResyncReason::Reconnected))
        );
        assert_eq!(early.try_recv(), None);
        assert_eq!(late.recv().await, Some(Notice::Disconnected));
        assert_eq!(
            late.recv().await,
            Some(Notice::Resync(ResyncReason::Reconnected))
        );
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_resync() {
        let hub = NoticeHub::new();
        let mut slow = hub.subscribe();
        for seq in 0..(NOTICE_BUFFER as u64 + 10) {
            hub.publish(Notice::RunEvents {
                run_id: "r".into(),
                seq,
            });
        }
        assert_eq!(
            slow.recv().await,
            Some(Notice::Resync(ResyncReason::Lagged))
        );
        assert!(matches!(slow.recv().await, Some(Notice::RunEvents { .. })));
        hub.close();
        while let Some(notice) = slow.recv().await {
            assert!(matches!(notice, Notice::RunEvents { .. }));
        }
        assert_eq!(hub.subscribe().recv().await, None);
    }
}
