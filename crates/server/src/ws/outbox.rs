//! The outbound side of a connection: a bounded queue of frames, the writer task that drains it
//! into the socket, and [`Outbox::close`], the one way the server closes a socket.
//!
//! The reader and every forwarder queue through an [`Outbox`]; only the writer touches the sink,
//! so no task but the writer ever waits on a slow client's TCP window. A queue that stays full for
//! `slow_client_timeout` means the client stopped reading: the connection is told to end. Run
//! events arrive already serialized ([`EventFrame`], shared with the store and every other socket
//! following the run) and are written as they are, never serialized again. This file must not
//! decide what to send or read the socket; it only moves frames in order.

use crate::metrics::Metrics;
use agentwire_engine::EventFrame;
use agentwire_protocol::ServerFrame;
use agentwire_protocol::server::ControlFrame;
use agentwire_protocol::{CLOSE_AUTH_TIMEOUT, CLOSE_TOO_BIG, ErrorCode, ErrorFrame};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Close code for "going away": server shutdown.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Close code for "invalid frame payload data" (RFC 6455): a text frame that is not UTF-8.
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;

/// A close the server starts: the code and the reason in the close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Close {
    pub code: u16,
    pub reason: &'static str,
}

impl Close {
    pub const GOING_AWAY: Close = Close::new(CLOSE_GOING_AWAY, "server shutting down");
    pub const AUTH_TIMEOUT: Close = Close::new(CLOSE_AUTH_TIMEOUT, "authentication timeout");
    /// The contract closes an expired connection with the auth timeout's code, 4401.
    pub const AUTH_EXPIRED: Close = Close::new(CLOSE_AUTH_TIMEOUT, "authentication expired");
    pub const TOO_BIG: Close = Close::new(CLOSE_TOO_BIG, "frame too big");
    pub const INVALID_PAYLOAD: Close = Close::new(CLOSE_INVALID_PAYLOAD, "text frame is not UTF-8");

    const fn new(code: u16, reason: &'static str) -> Close {
        Close { code, reason }
    }
}

/// One item for the writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    Frame {
        /// The frame's JSON text; for a run event, the bytes the run serialized it to.
        text: Utf8Bytes,
        kind: FrameKind,
    },
    /// A protocol-level ping (liveness check).
    Ping,
    /// Send a close frame and stop writing.
    Close(Close),
}

/// What a queued frame is, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FrameKind {
    Control,
    Error(ErrorCode),
    /// A run event; `first_of_run` is when the `start_agent` that started the run was received,
    /// set on the run's first event only.
    Event {
        first_of_run: Option<Instant>,
    },
}

impl Outbound {
    fn frame(frame: &ServerFrame) -> Self {
        let kind = match frame {
            ServerFrame::Event(_) => FrameKind::Event { first_of_run: None },
            ServerFrame::Control(ControlFrame::Error(err)) => FrameKind::Error(err.error_code),
            ServerFrame::Control(_) => FrameKind::Control,
        };
        Outbound::Frame {
            text: frame.to_json().into(),
            kind,
        }
    }

    /// A run event as the run serialized it: the same bytes, shared, not copied.
    pub(crate) fn event(frame: &EventFrame, first_of_run: Option<Instant>) -> Self {
        let text = Utf8Bytes::try_from(frame.bytes())
            // Unreachable (frames are built from Strings); copying keeps the frame anyway.
            .unwrap_or_else(|_| Utf8Bytes::from(frame.as_str()));
        Outbound::Frame {
            text,
            kind: FrameKind::Event { first_of_run },
        }
    }
}

/// The sending side of a connection's queue, shared by the reader and the forwarders.
#[derive(Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Outbound>,
    /// Cancelled when the connection must end now (slow client, dead socket).
    disconnect: CancellationToken,
    slow_client_timeout: Duration,
}

/// The connection is ending; the item was not queued.
#[derive(Debug)]
pub(crate) struct Gone;

/// The writer task of one connection, kept by the reader to wait for the last frames.
pub(crate) struct Writer {
    task: JoinHandle<()>,
    disconnect: CancellationToken,
}

impl Outbox {
    /// Opens a queue of `capacity` frames and spawns the writer that drains it into `sink`.
    pub(crate) fn open<S>(
        sink: S,
        capacity: usize,
        slow_client_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> (Outbox, Writer)
    where
        S: Sink<Message, Error = axum::Error> + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let disconnect = CancellationToken::new();
        let task = tokio::spawn(write_loop(sink, rx, metrics, disconnect.clone()));
        let outbox = Outbox {
            tx,
            disconnect: disconnect.clone(),
            slow_client_timeout,
        };
        (outbox, Writer { task, disconnect })
    }

    /// Completes when the connection must end now: the client stopped reading or the socket
    /// failed.
    pub(crate) async fn disconnected(&self) {
        self.disconnect.cancelled().await;
    }

    pub(crate) async fn send(&self, item: Outbound) -> Result<(), Gone> {
        match self.tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Gone),
            Err(mpsc::error::TrySendError::Full(item)) => {
                // A full queue during a burst (a replay) is normal; one that stays full means the
                // client stopped reading.
                match self.tx.send_timeout(item, self.slow_client_timeout).await {
                    Ok(()) => Ok(()),
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Gone),
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        tracing::warn!("client is not reading its frames; disconnecting it");
                        self.disconnect.cancel();
                        Err(Gone)
                    }
                }
            }
        }
    }

    pub(crate) async fn frame(&self, frame: &ServerFrame) -> Result<(), Gone> {
        self.send(Outbound::frame(frame)).await
    }

    /// Sends `last_word` when there is one (the error that says why), then the close frame; the
    /// writer stops after it. When the last word cannot be queued the connection is already gone
    /// and no close is queued either.
    pub(crate) async fn close(&self, last_word: Option<ErrorFrame>, close: Close) {
        if let Some(frame) = last_word
            && self.frame(&ServerFrame::from(frame)).await.is_err()
        {
            return;
        }
        // A close that cannot be queued has nobody left to read it.
        let _ = self.send(Outbound::Close(close)).await;
    }
}

impl Writer {
    /// Waits up to `grace` for the writer to flush what is queued (every [`Outbox`] must be
    /// dropped first, or the writer waits for more), then stops it.
    pub(crate) async fn finish(mut self, grace: Duration) {
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.disconnect.cancel();
            self.task.abort();
        }
    }
}

/// Drains the queue into the socket, batching whatever is ready into one flush.
///
/// Ends after writing a close frame, when every sender is gone, or when `disconnect` fires (a
/// write to a client that stopped reading would otherwise wait forever).
async fn write_loop<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<Outbound>,
    metrics: Arc<Metrics>,
    disconnect: CancellationToken,
) where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    let work = async {
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            let mut closing = false;
            while let Some(item) = next.take() {
                let message = match item {
                    Outbound::Frame { text, kind } => {
                        match kind {
                            FrameKind::Event { first_of_run } => {
                                metrics.event_sent();
                                if let Some(received_at) = first_of_run {
                                    metrics.observe_first_event(received_at.elapsed());
                                }
                            }
                            FrameKind::Error(code) => metrics.ws_error(code),
                            FrameKind::Control => {}
                        }
                        Message::Text(text)
                    }
                    Outbound::Ping => Message::Ping(Bytes::new()),
                    Outbound::Close(Close { code, reason }) => {
                        closing = true;
                        Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        }))
                    }
                };
                sink.feed(message).await?;
                if closing {
                    break;
                }
                next = rx.try_recv().ok();
            }
            sink.flush().await?;
            if closing {
                break;
            }
        }
        Ok::<(), axum::Error>(())
    };
    tokio::select! {
        result = work => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "socket write failed");
                disconnect.cancel();
            }
        }
        () = disconnect.cancelled() => {}
    }
}
