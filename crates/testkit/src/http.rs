//! A small HTTP/1.1 client for tests, async ([`http`]) and blocking ([`http_blocking`],
//! [`try_http_blocking`]), and the one HTTP chunked-transfer decoder ([`dechunk`]).
//!
//! Hand-written on purpose: tests need to see exactly what the server sent (status, every header,
//! the raw body) and to send what a well-behaved client library would refuse to. Each request is
//! one connection with `Connection: close`; the answer is read until its framing says it is whole
//! (`Content-Length`, the last chunk) or the peer closes, so it also works with peers that keep
//! connections open regardless (chromedriver). Not a general client: no TLS, no redirects, no
//! keep-alive, no `100 Continue`.

use serde_json::Value;
use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The longest a helper here waits for an answer before the test fails.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, values trimmed, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked when it came chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When the body is not JSON; the message carries the body.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", self.text()))
    }
}

/// Why an answer could not be had: the connection failed, or what came back is not HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError(pub String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

fn error(what: impl fmt::Display) -> HttpError {
    HttpError(what.to_string())
}

/// One request: `method path` with these headers and body, `Connection: close`, and a
/// `Content-Length` (always sent, so a body-less POST says so).
fn request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One HTTP/1.1 request; reads the whole answer.
///
/// # Panics
/// When the server cannot be reached, takes longer than [`ANSWER_TIMEOUT`], or answers with
/// something that is not HTTP.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let exchange = exchange(addr, method, path, headers, body);
    match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => panic!("{method} {path}: {err}"),
        Err(_) => panic!("{method} {path}: no whole answer within {ANSWER_TIMEOUT:?}"),
    }
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, HttpError> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|err| error(format!("connect to {addr}: {err}")))?;
    stream
        .write_all(&request_bytes(addr, method, path, headers, body))
        .await
        .map_err(|err| error(format!("send to {addr}: {err}")))?;
    let (mut answer, mut buffer) = (Answer::default(), [0u8; 16 * 1024]);
    loop {
        let n = stream
            .read(&mut buffer)
            .await
            .map_err(|err| read_error(addr, err))?;
        if let Some(response) = answer.take(&buffer[..n])? {
            return Ok(response);
        }
    }
}

/// [`http`] without an async runtime, for tests of child processes.
///
/// # Panics
/// As [`http`].
pub fn http_blocking(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    try_http_blocking(addr, method, path, headers, body, ANSWER_TIMEOUT)
        .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
}

/// [`http_blocking`] that returns what went wrong instead of panicking; `timeout` bounds the
/// connect and each read.
pub fn try_http_blocking(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|err| error(format!("connect to {addr}: {err}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|err| error(format!("set a read timeout: {err}")))?;
    stream
        .write_all(&request_bytes(addr, method, path, headers, body))
        .map_err(|err| error(format!("send to {addr}: {err}")))?;
    let (mut answer, mut buffer) = (Answer::default(), [0u8; 16 * 1024]);
    loop {
        let n = stream
            .read(&mut buffer)
            .map_err(|err| read_error(addr, err))?;
        if let Some(response) = answer.take(&buffer[..n])? {
            return Ok(response);
        }
    }
}

fn read_error(addr: SocketAddr, err: std::io::Error) -> HttpError {
    error(format!("read from {addr}: {err}"))
}

/// An answer's bytes as they arrive.
#[derive(Default)]
struct Answer {
    raw: Vec<u8>,
}

impl Answer {
    /// Takes what one read returned (nothing: the peer closed); the answer once it is whole.
    fn take(&mut self, bytes: &[u8]) -> Result<Option<HttpResponse>, HttpError> {
        if bytes.is_empty() {
            return parse_response(&self.raw).map(Some);
        }
        self.raw.extend_from_slice(bytes);
        match message_len(&self.raw)? {
            Some(len) => parse_response(&self.raw[..len]).map(Some),
            None => Ok(None),
        }
    }
}

/// Where the head ends (the index of the blank line's first byte), if it has arrived.
fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The status and lower-cased headers of a head.
fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>), HttpError> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split(' ').nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| error(format!("not an HTTP status line: {status_line:?}")))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers))
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(headers: &[(String, String)]) -> Option<usize> {
    headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
}

/// The length of the whole answer at the start of `raw`, once all of it has arrived; `None`
/// while more is needed (or, with no framing at all, until the peer closes).
fn message_len(raw: &[u8]) -> Result<Option<usize>, HttpError> {
    let Some(end) = head_end(raw) else {
        return Ok(None);
    };
    let body_start = end + 4;
    let (status, headers) = parse_head(&raw[..end])?;
    if status < 200 || status == 204 || status == 304 {
        return Ok(Some(body_start));
    }
    if is_chunked(&headers) {
        return Ok(walk_chunks(&raw[body_start..])?.map(|(_, used)| body_start + used));
    }
    Ok(content_length(&headers)
        .map(|len| body_start + len)
        .filter(|&whole| raw.len() >= whole))
}

/// Splits a whole HTTP/1.1 answer into status, headers and body (de-chunked when chunked; cut
/// to `Content-Length` when that is shorter than what came).
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, HttpError> {
    let end = head_end(raw).ok_or_else(|| {
        error(format!(
            "no end of headers in {} bytes: {:?}",
            raw.len(),
            String::from_utf8_lossy(&raw[..raw.len().min(200)])
        ))
    })?;
    let (status, headers) = parse_head(&raw[..end])?;
    let mut body = &raw[end + 4..];
    if let Some(len) = content_length(&headers) {
        body = &body[..len.min(body.len())];
    }
    let body = if is_chunked(&headers) {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Decodes a chunked body (RFC 9112 section 7.1): the chunks' data, joined. Chunk extensions and
/// trailers are skipped.
pub fn dechunk(data: &[u8]) -> Result<Vec<u8>, HttpError> {
    walk_chunks(data)?.map(|(body, _)| body).ok_or_else(|| {
        error(format!(
            "chunked body ends early after {} bytes",
            data.len()
        ))
    })
}

/// Walks a chunked body: `Some((data, bytes used))` once the last chunk and the trailer section
/// are in, `None` while more is needed.
fn walk_chunks(mut data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let total = data.len();
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_line = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| error(format!("bad chunk size line {size_line:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            // Trailer lines, then the blank line that ends the message.
            loop {
                let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                data = &data[line_end + 2..];
                if line_end == 0 {
                    return Ok(Some((out, total - data.len())));
                }
            }
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&data[..size]);
        if &data[size..size + 2] != b"\r\n" {
            return Err(error("a chunk is not followed by CRLF"));
        }
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunk_joins_chunks_and_skips_extensions_and_trailers() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(dechunk(body).unwrap(), b"hello, world");
        assert_eq!(walk_chunks(body).unwrap().unwrap().1, body.len());
        assert_eq!(dechunk(b"0\r\n\r\n").unwrap(), b"");
        assert!(dechunk(b"5\r\nhel").is_err(), "truncated");
        assert!(dechunk(b"zz\r\nhello\r\n0\r\n\r\n").is_err(), "bad size");
        assert!(
            dechunk(b"2\r\nhello\r\n0\r\n\r\n").is_err(),
            "size disagrees"
        );
    }

    #[test]
    fn answers_are_whole_by_length_by_last_chunk_or_without_a_body() {
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(message_len(&sized[..sized.len() - 1]).unwrap(), None);
        assert_eq!(message_len(sized).unwrap(), Some(sized.len()));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nnext";
        let whole = chunked.len() - 4;
        assert_eq!(message_len(&chunked[..whole - 1]).unwrap(), None);
        assert_eq!(message_len(chunked).unwrap(), Some(whole));
        let response = parse_response(&chunked[..whole]).unwrap();
        assert_eq!((response.status, response.text().as_str()), (200, "hi"));
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        let empty = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(message_len(empty).unwrap(), Some(empty.len()));
        let unframed = b"HTTP/1.1 200 OK\r\n\r\nuntil close";
        assert_eq!(message_len(unframed).unwrap(), None);
        assert_eq!(parse_response(unframed).unwrap().text(), "until close");
        assert!(parse_response(b"SSH-2.0\r\n\r\n").is_err());
    }
}
