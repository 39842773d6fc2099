//! Reading frames without losing one: the backlog every reader takes from first, frames put back
//! in arrival order when a wait fails, and the socket read that answers pings and remembers closes.
//!
//! What it must not do: drop a frame. A frame read off the socket is returned or queued; a text
//! frame that is not a JSON object is an error naming it, never skipped in silence.

use super::parse::{FrameDetail, Parsed, parse};
use super::{ClientError, CloseInfo, Frame, Session, is_closing_error};
use futures_util::StreamExt as _;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::Message;

/// How long [`Session::read_until`] waits on the socket at a time (a quiet socket is normal).
const READ_UNTIL_STEP: Duration = Duration::from_secs(60);

/// A frame in the backlog, numbered in arrival order so that a failed helper can put frames back
/// exactly where they were.
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) arrival: u64,
    pub(super) frame: Frame,
}

impl Session {
    /// The next frame: from the backlog first, else from the socket. Protocol pings are answered
    /// while reading and never surface.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when nothing arrives in time, [`ClientError::Closed`] once the
    /// connection is closed (with the server's close code), [`ClientError::Protocol`] for a text frame
    /// that is not a JSON object or for a binary frame (the frame is consumed).
    pub async fn next_frame(&mut self, timeout: Duration) -> Result<Frame, ClientError> {
        if let Some(queued) = self.backlog.pop_front() {
            return Ok(queued.frame);
        }
        let deadline = TokioInstant::now() + timeout;
        self.read_socket(deadline, timeout, "the next frame")
            .await
            .map(|queued| queued.frame)
    }

    /// Reads frames until one matches `pred`; returns it and every frame read before it, in order.
    /// On failure (timeout, close) the frames read so far go back to the backlog, so none is lost.
    ///
    /// # Errors
    /// As [`Session::next_frame`], with the timeout covering the whole wait.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Result<(Value, Vec<Value>), ClientError> {
        let deadline = TokioInstant::now() + timeout;
        let mut seen: Vec<Queued> = Vec::new();
        loop {
            let next = match self.backlog.pop_front() {
                Some(queued) => Ok(queued),
                None => {
                    self.read_socket(deadline, timeout, "a matching frame")
                        .await
                }
            };
            match next {
                Ok(queued) if pred(&queued.frame.value) => {
                    let before = seen.into_iter().map(|q| q.frame.value).collect();
                    return Ok((queued.frame.value, before));
                }
                Ok(queued) => seen.push(queued),
                Err(err) => {
                    self.restore(seen);
                    return Err(err);
                }
            }
        }
    }

    /// Removes and returns the first frame matching `pred` (from the backlog first, then the socket);
    /// every other frame stays in the backlog, in order, for later reads.
    ///
    /// # Errors
    /// As [`Session::next_frame`], with the timeout covering the whole wait.
    pub async fn take_matching(
        &mut self,
        timeout: Duration,
        pred: impl FnMut(&Value) -> bool,
    ) -> Result<Frame, ClientError> {
        let deadline = TokioInstant::now() + timeout;
        self.take_first(deadline, timeout, "a matching frame", pred)
            .await
            .map(|(_, frame)| frame)
    }

    /// Reads frames into the backlog, answering pings, until `until` completes: a session kept
    /// open with nothing to ask must still read, or the server closes it for missing its pings.
    /// Every frame read waits in the backlog for later reads.
    ///
    /// # Errors
    /// As [`Session::next_frame`] once the connection closes or a frame is not JSON; the frames
    /// read before it stay in the backlog.
    pub async fn read_until(&mut self, until: impl Future<Output = ()>) -> Result<(), ClientError> {
        tokio::pin!(until);
        loop {
            // A socket read given up for `until` loses nothing: the frame is read whole or stays
            // in the socket.
            let deadline = TokioInstant::now() + READ_UNTIL_STEP;
            let read = tokio::select! {
                biased;
                () = &mut until => return Ok(()),
                read = self.read_socket(deadline, READ_UNTIL_STEP, "a frame") => read,
            };
            match read {
                Ok(queued) => self.backlog.push_back(queued),
                Err(ClientError::Timeout { .. }) => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Takes every frame waiting in the backlog, in order (for reporting after a failed helper).
    pub fn take_backlog(&mut self) -> Vec<Frame> {
        self.backlog.drain(..).map(|q| q.frame).collect()
    }

    /// How many frames wait in the backlog.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Removes and returns the first frame matching `pred`, from the backlog first, then from the
    /// socket; every other frame stays in (or joins) the backlog in arrival order.
    pub(super) async fn take_first(
        &mut self,
        deadline: TokioInstant,
        timeout: Duration,
        what: &str,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Result<(u64, Frame), ClientError> {
        if let Some(index) = self.backlog.iter().position(|q| pred(&q.frame.value))
            && let Some(queued) = self.backlog.remove(index)
        {
            return Ok((queued.arrival, queued.frame));
        }
        loop {
            let queued = self.read_socket(deadline, timeout, what).await?;
            if pred(&queued.frame.value) {
                return Ok((queued.arrival, queued.frame));
            }
            self.backlog.push_back(queued);
        }
    }

    /// Puts frames taken out of the stream back into the backlog, merged by arrival order.
    pub(super) fn restore(&mut self, frames: Vec<Queued>) {
        if frames.is_empty() {
            return;
        }
        let mut merged: Vec<Queued> = self.backlog.drain(..).chain(frames).collect();
        merged.sort_by_key(|q| q.arrival);
        self.backlog = merged.into();
    }

    /// Reads the next JSON frame from the socket, answering pings on the way.
    pub(super) async fn read_socket(
        &mut self,
        deadline: TokioInstant,
        timeout: Duration,
        what: &str,
    ) -> Result<Queued, ClientError> {
        loop {
            if let Some(closed) = &self.closed {
                return Err(closed.error());
            }
            let message = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => {
                    return Err(ClientError::Timeout {
                        waited: timeout,
                        waiting_for: what.to_owned(),
                    });
                }
                Ok(None) => {
                    self.closed = Some(CloseInfo {
                        code: None,
                        reason: "the connection ended without a close frame".to_owned(),
                    });
                    continue;
                }
                Ok(Some(Err(err))) if is_closing_error(&err) => {
                    self.closed = Some(CloseInfo {
                        code: None,
                        reason: err.to_string(),
                    });
                    continue;
                }
                Ok(Some(Err(err))) => {
                    return Err(ClientError::Transport(format!("reading failed: {err}")));
                }
                Ok(Some(Ok(message))) => message,
            };
            let received_at = Instant::now();
            match message {
                Message::Text(text) => {
                    let Parsed { value, canaries } = parse_frame(text.as_str(), self.detail)?;
                    if self.connection_info.is_none()
                        && value.get("type").and_then(Value::as_str)
                            == Some("connection_established")
                    {
                        self.connection_info = Some(value.clone());
                    }
                    let arrival = self.next_arrival;
                    self.next_arrival += 1;
                    return Ok(Queued {
                        arrival,
                        frame: Frame {
                            value,
                            received_at,
                            canaries,
                        },
                    });
                }
                Message::Binary(bytes) => {
                    return Err(ClientError::Protocol(format!(
                        "the server sent a binary frame of {} bytes; the protocol uses text frames",
                        bytes.len()
                    )));
                }
                Message::Close(frame) => {
                    self.closed = Some(match frame {
                        Some(frame) => CloseInfo {
                            code: Some(u16::from(frame.code)),
                            reason: frame.reason.as_str().to_owned(),
                        },
                        None => CloseInfo {
                            code: None,
                            reason: "close frame without a code".to_owned(),
                        },
                    });
                }
                // tungstenite queues the pong for a ping and sends it on the next read.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }
}

/// Parses a text frame, which must be one JSON object.
fn parse_frame(text: &str, detail: FrameDetail) -> Result<Parsed, ClientError> {
    // Only an error quotes the frame: every run's every frame comes through here.
    let shown = || text.chars().take(120).collect::<String>();
    match parse(text, detail) {
        Ok(parsed) if parsed.value.is_object() => Ok(parsed),
        Ok(_) => Err(ClientError::Protocol(format!(
            "a text frame is JSON but not an object: {}",
            shown()
        ))),
        Err(err) => Err(ClientError::Protocol(format!(
            "a text frame is not JSON ({err}): {}",
            shown()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_that_is_not_a_json_object_is_named_in_the_error() {
        assert!(parse_frame(r#"{"type":"pong"}"#, FrameDetail::Whole).is_ok());
        let long = format!("[{}]", "1,".repeat(200) + "1");
        let Err(ClientError::Protocol(message)) = parse_frame(&long, FrameDetail::Whole) else {
            panic!("an array is not a frame");
        };
        assert!(message.starts_with("a text frame is JSON but not an object: [1,1,"));
        // The frame is quoted, cut at 120 characters.
        assert!(message.ends_with(&long[..120]));
        let Err(ClientError::Protocol(message)) = parse_frame("hello", FrameDetail::Whole) else {
            panic!("text is not a frame");
        };
        assert!(message.starts_with("a text frame is not JSON ("));
        assert!(message.ends_with("): hello"));
    }
}
