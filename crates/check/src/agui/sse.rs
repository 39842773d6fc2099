//! Reading a Server-Sent Events answer event by event, keeping each event's bytes as they came
//! (resume is judged byte for byte).
//!
//! The request goes through [`HttpTarget::send`] (hyper, which undoes the chunked framing); this
//! file splits the body into events as the SSE standard does: lines end with `\n`, `\r\n` or
//! `\r`, an empty line ends an event, `:` starts a comment, `data:` lines join with `\n`, one
//! space after the colon is dropped. An event with no `data` (a keep-alive comment) is not
//! returned. A body that ends inside an event is an error, not a shorter stream.
//!
//! What it must not do: retry, reconnect or resume on its own; a judge needs to see exactly what
//! one request returned.

use crate::http::{Answer, Head, HttpError, HttpTarget, MAX_ANSWER_BYTES, exchange_error};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::Value;
use std::time::Duration;
use tokio::task::JoinHandle;

/// One event as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `id:` field, when the event has one.
    pub id: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The event's bytes, from its first line to the empty line that ends it (comment lines
    /// before it included).
    pub raw: Vec<u8>,
}

impl SseEvent {
    /// The data as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }
}

/// An answer whose body is read as events.
#[derive(Debug)]
pub struct SseStream {
    pub status: u16,
    /// `(name lower-cased, value)` in the order sent.
    pub headers: Vec<(String, String)>,
    url: String,
    body: Incoming,
    driver: JoinHandle<()>,
    /// Received bytes not yet returned as an event.
    pending: Vec<u8>,
    received: usize,
    ended: bool,
}

impl Drop for SseStream {
    fn drop(&mut self) {
        // Closes the connection: the server sees the client go away.
        self.driver.abort();
    }
}

impl HttpTarget {
    /// Sends a request whose answer is read as a stream of events (its head within `timeout`).
    ///
    /// # Errors
    /// As [`HttpTarget::request`].
    pub async fn open_stream(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<SseStream, HttpError> {
        let url = self.url(path);
        let sent = tokio::time::timeout(timeout, self.send(method, path, headers, body, &url));
        let (Head { status, headers }, body, driver) = match sent.await {
            Ok(result) => result?,
            Err(_) => {
                return Err(HttpError::Timeout {
                    url,
                    waited: timeout,
                });
            }
        };
        Ok(SseStream {
            status,
            headers,
            url,
            body,
            driver,
            pending: Vec::new(),
            received: 0,
            ended: false,
        })
    }
}

impl SseStream {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next event with data, or `None` at the end of the body.
    ///
    /// # Errors
    /// [`HttpError::Timeout`] when no event arrives within `timeout`, [`HttpError::TooLarge`]
    /// past [`MAX_ANSWER_BYTES`], [`HttpError::Exchange`] when the body breaks or ends inside an
    /// event.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Option<SseEvent>, HttpError> {
        match tokio::time::timeout(timeout, self.read_event()).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout {
                url: self.url.clone(),
                waited: timeout,
            }),
        }
    }

    /// Every remaining event, to the end of the body, all within `timeout`.
    ///
    /// # Errors
    /// As [`SseStream::next_event`].
    pub async fn rest(&mut self, timeout: Duration) -> Result<Vec<SseEvent>, HttpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Ok(Some(event)) => events.push(event),
                Ok(None) => return Ok(events),
                Err(HttpError::Timeout { url, .. }) => {
                    return Err(HttpError::Timeout {
                        url,
                        waited: timeout,
                    });
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The whole body as an [`Answer`], for a refusal (a JSON error rather than events).
    ///
    /// # Errors
    /// As [`SseStream::next_event`].
    pub async fn into_answer(mut self, timeout: Duration) -> Result<Answer, HttpError> {
        let read = async {
            while self.read_frame().await?.is_some() {}
            Ok::<_, HttpError>(())
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(HttpError::Timeout {
                    url: self.url.clone(),
                    waited: timeout,
                });
            }
        }
        Ok(Answer {
            status: self.status,
            headers: std::mem::take(&mut self.headers),
            body: std::mem::take(&mut self.pending),
        })
    }

    async fn read_event(&mut self) -> Result<Option<SseEvent>, HttpError> {
        loop {
            if let Some(event) = take_event(&mut self.pending, self.ended) {
                match event {
                    Some(event) => return Ok(Some(event)),
                    // A block without data (a keep-alive comment): not an event.
                    None => continue,
                }
            }
            if self.ended {
                if self.pending.iter().all(|b| *b == b'\n' || *b == b'\r') {
                    return Ok(None);
                }
                return Err(exchange_error(
                    &self.url,
                    format!(
                        "the stream ended inside an event: {:?}",
                        String::from_utf8_lossy(&self.pending[..self.pending.len().min(200)])
                    ),
                ));
            }
            self.read_frame().await?;
        }
    }

    /// Reads one body frame into `pending`; `None` once the body has ended.
    async fn read_frame(&mut self) -> Result<Option<()>, HttpError> {
        if self.ended {
            return Ok(None);
        }
        let Some(frame) = self.body.frame().await else {
            self.ended = true;
            return Ok(None);
        };
        let frame = frame.map_err(|err| exchange_error(&self.url, err.to_string()))?;
        if let Ok(data) = frame.into_data() {
            self.take(&data)?;
        }
        Ok(Some(()))
    }

    fn take(&mut self, data: &Bytes) -> Result<(), HttpError> {
        self.received += data.len();
        if self.received > MAX_ANSWER_BYTES {
            return Err(HttpError::TooLarge {
                url: self.url.clone(),
            });
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }
}

/// Takes the first complete block off `pending`: `Some(Some(event))` for an event with data,
/// `Some(None)` for a block without (comments only), `None` while no block is complete.
/// `at_end`: nothing more will come, so a final `\r` ends its line.
fn take_event(pending: &mut Vec<u8>, at_end: bool) -> Option<Option<SseEvent>> {
    let end = block_end(pending, at_end)?;
    let raw: Vec<u8> = pending.drain(..end).collect();
    let text = String::from_utf8_lossy(&raw);
    let mut id = None;
    let mut data: Option<String> = None;
    for line in text.split(['\n', '\r']).filter(|line| !line.is_empty()) {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "data" => match &mut data {
                Some(joined) => {
                    joined.push('\n');
                    joined.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    Some(data.map(|data| SseEvent { id, data, raw }))
}

/// The length of the first block (up to and including the empty line that ends it), if complete.
fn block_end(bytes: &[u8], at_end: bool) -> Option<usize> {
    let mut line_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let eol = match bytes[i] {
            b'\n' => 1,
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => 2,
            // A lone `\r` at the very end may be the first half of `\r\n`: wait for more.
            b'\r' if i + 1 == bytes.len() && !at_end => return None,
            b'\r' => 1,
            _ => {
                i += 1;
                continue;
            }
        };
        if i == line_start {
            return Some(i + eol);
        }
        i += eol;
        line_start = i;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_at(text: &str, at_end: bool) -> Vec<Option<SseEvent>> {
        let mut pending = text.as_bytes().to_vec();
        let mut out = Vec::new();
        while let Some(event) = take_event(&mut pending, at_end) {
            out.push(event);
        }
        out
    }

    fn events(text: &str) -> Vec<Option<SseEvent>> {
        events_at(text, false)
    }

    #[test]
    fn events_are_split_on_empty_lines_and_keep_their_bytes() {
        let got = events("id: 1\ndata: {\"a\":1}\n\n:\n\nid: 1.1\ndata: x\ndata: y\n\nid: 2");
        assert_eq!(got.len(), 3, "the unfinished last event stays pending");
        let first = got[0].clone().unwrap();
        assert_eq!(first.id.as_deref(), Some("1"));
        assert_eq!(first.json().unwrap()["a"], 1);
        assert_eq!(first.raw, b"id: 1\ndata: {\"a\":1}\n\n");
        assert!(got[1].is_none(), "a comment block is no event");
        let third = got[2].clone().unwrap();
        assert_eq!(third.data, "x\ny");
        assert_eq!(third.id.as_deref(), Some("1.1"));
    }

    #[test]
    fn every_line_ending_the_standard_allows_is_read() {
        for text in [
            "id:7\r\ndata:z\r\n\r\n",
            "id: 7\rdata: z\r\r",
            "data: z\nid: 7\n\n",
        ] {
            // A final lone `\r` ends its line only once nothing more can come.
            let got = events_at(text, true);
            let event = got[0].clone().unwrap();
            assert_eq!(event.id.as_deref(), Some("7"), "{text:?}");
            assert_eq!(event.data, "z", "{text:?}");
            assert_eq!(event.raw, text.as_bytes());
        }
        // `\r` then nothing yet: maybe `\r\n`, so not a block end.
        assert!(events("data: z\r\n\r").is_empty());
        assert_eq!(events_at("data: z\r\n\r", true).len(), 1);
    }
}
