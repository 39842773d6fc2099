//! A small HTTP/1.1 client for the contract's HTTP surface (PROTOCOL.md section 7): `/health`,
//! `/health/live`, `/health/ready`, `POST /api/usage`, `GET /api/runs/{id}/events`, and the
//! request under an AG-UI event stream (read by [`crate::agui::sse`]).
//!
//! One request per connection (`Connection: close`) over hyper's client connection: nothing is
//! pooled, so a request measures what a fresh client sees. Every call is bounded in time and in the
//! size of the answer it keeps. An `https://` (or `wss://`) target is spoken to over TLS only,
//! verified against its [`TlsClient`]'s roots.
//!
//! What it must not do: follow redirects, retry, or turn a failure into an answer. A target that
//! cannot be reached is [`HttpError::Connect`]; one that never answers is [`HttpError::Timeout`].

use crate::tls::TlsClient;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Answers larger than this are cut off with [`HttpError::TooLarge`]: the suite reads health
/// documents and event lists, not downloads.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Why an HTTP request produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot connect to {authority}: {reason}")]
    Connect { authority: String, reason: String },
    /// The TLS handshake failed; the reason names the certificate problem.
    #[error("TLS with {authority} failed: {reason}")]
    Tls { authority: String, reason: String },
    #[error("no answer from {url} within {waited:?}")]
    Timeout { url: String, waited: Duration },
    #[error("the answer from {url} is over {MAX_ANSWER_BYTES} bytes")]
    TooLarge { url: String },
    #[error("HTTP exchange with {url} failed: {reason}")]
    Exchange { url: String, reason: String },
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `(name lower-cased, value)` in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The HTTP side of a target: scheme, authority and path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// `host:port`.
    pub authority: String,
    /// Path prefix without a trailing slash (empty for the root).
    pub prefix: String,
    /// Set for `https://` and `wss://` targets: the roots the server is verified against.
    pub tls: Option<TlsClient>,
}

impl HttpTarget {
    /// Reads a target given as `http(s)://host:port[/prefix]`, `ws(s)://host:port[/prefix]/ws` or
    /// a bare `host:port`. The `/ws` path of a WebSocket URL is dropped to find the HTTP root. TLS
    /// targets trust the platform's roots; see [`HttpTarget::with_tls`] for others.
    ///
    /// # Errors
    /// [`HttpError::InvalidUrl`] for other schemes or no host.
    pub fn parse(target: &str) -> Result<Self, HttpError> {
        let target = target.trim();
        let invalid = |reason: &str| HttpError::InvalidUrl {
            url: target.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = match target.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), target),
        };
        let tls = match scheme.as_str() {
            "http" | "ws" => None,
            "https" | "wss" => Some(TlsClient::system().map_err(|err| invalid(&err.to_string()))?),
            _ => return Err(invalid("scheme must be http, https, ws or wss")),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        let path = path.trim_end_matches('/');
        let prefix = path.strip_suffix("/ws").unwrap_or(path).to_owned();
        Ok(Self {
            authority: authority.to_owned(),
            prefix,
            tls,
        })
    }

    /// The same target verified against `tls` (e.g. with `--ca-cert`); no change for a plain one.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsClient) -> Self {
        if self.tls.is_some() {
            self.tls = Some(tls);
        }
        self
    }

    /// `http(s)://authority/prefix/path` for display.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{}{}", self.authority, self.prefix, path)
    }

    /// The host part of the authority, for TLS's server name (`[::1]:9` gives `::1`).
    fn host(&self) -> &str {
        let authority = self.authority.as_str();
        if let Some(rest) = authority.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => authority,
        }
    }

    /// `host:port`, with the scheme's default port when none is given.
    pub fn dial_address(&self) -> String {
        let has_port = if self.authority.starts_with('[') {
            self.authority.contains("]:")
        } else {
            self.authority
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        };
        if has_port {
            self.authority.clone()
        } else if self.tls.is_some() {
            format!("{}:443", self.authority)
        } else {
            format!("{}:80", self.authority)
        }
    }

    /// `GET path`.
    ///
    /// # Errors
    /// As [`HttpTarget::request`].
    pub async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Answer, HttpError> {
        self.request("GET", path, headers, Vec::new(), timeout)
            .await
    }

    /// One request on a fresh connection; the whole exchange (connect, send, read the body) is
    /// bounded by `timeout`.
    ///
    /// # Errors
    /// [`HttpError::Connect`] when the TCP connection fails, [`HttpError::Timeout`] when the answer
    /// does not arrive in time, [`HttpError::TooLarge`] for a body over [`MAX_ANSWER_BYTES`],
    /// [`HttpError::Exchange`] for a broken HTTP exchange.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, HttpError> {
        let url = self.url(path);
        match tokio::time::timeout(timeout, self.exchange(method, path, headers, body, &url)).await
        {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout {
                url,
                waited: timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        url: &str,
    ) -> Result<Answer, HttpError> {
        let (head, body, driver) = self.send(method, path, headers, body, url).await?;
        let body = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|err| {
                if err.is::<http_body_util::LengthLimitError>() {
                    HttpError::TooLarge {
                        url: url.to_owned(),
                    }
                } else {
                    exchange_error(url, err.to_string())
                }
            })?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok(Answer {
            status: head.status,
            headers: head.headers,
            body,
        })
    }

    /// Sends one request on a fresh connection (over TLS for a TLS target) and returns the
    /// answer's head with its body still to be read (a stream, for `text/event-stream`), and the
    /// task driving the connection, which the caller aborts when done with the body. Not bounded
    /// in time: the caller bounds it.
    ///
    /// # Errors
    /// [`HttpError::Connect`] when the TCP connection fails, [`HttpError::Tls`] when the TLS
    /// handshake does, [`HttpError::Exchange`] for a broken HTTP exchange.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        url: &str,
    ) -> Result<(Head, Incoming, JoinHandle<()>), HttpError> {
        let stream = TcpStream::connect(self.dial_address())
            .await
            .map_err(|err| HttpError::Connect {
                authority: self.authority.clone(),
                reason: err.to_string(),
            })?;
        // Small requests must leave at once, not wait on Nagle.
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => {
                self.send_on(TokioIo::new(stream), method, path, headers, body, url)
                    .await
            }
            Some(tls) => {
                let tls_error = |reason: String| HttpError::Tls {
                    authority: self.authority.clone(),
                    reason,
                };
                let name = rustls_pki_types::ServerName::try_from(self.host().to_owned()).map_err(
                    |_| tls_error(format!("{:?} is not a valid TLS server name", self.host())),
                )?;
                let stream = tokio_rustls::TlsConnector::from(tls.config())
                    .connect(name, stream)
                    .await
                    .map_err(|err| tls_error(tls.describe(&err)))?;
                self.send_on(TokioIo::new(stream), method, path, headers, body, url)
                    .await
            }
        }
    }

    async fn send_on<I>(
        &self,
        io: I,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        url: &str,
    ) -> Result<(Head, Incoming, JoinHandle<()>), HttpError>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|err| exchange_error(url, err.to_string()))?;
        // The connection future drives the socket; it ends when the exchange does.
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });

        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.prefix, path))
            .header(HOST, self.authority.as_str())
            .header(CONNECTION, "close");
        for (name, value) in headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| exchange_error(url, format!("header {name} has an invalid value")))?;
            builder = builder.header(*name, value);
        }
        if !body.is_empty()
            && !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(CONTENT_TYPE.as_str()))
        {
            builder = builder.header(CONTENT_TYPE, "application/octet-stream");
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| exchange_error(url, err.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| exchange_error(url, err.to_string()))?;
        let head = Head {
            status: response.status().as_u16(),
            headers: response
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        };
        Ok((head, response.into_body(), driver))
    }
}

/// An answer's status and headers (`(name lower-cased, value)` in the order sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

pub(crate) fn exchange_error(url: &str, reason: String) -> HttpError {
    HttpError::Exchange {
        url: url.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_find_the_http_root() {
        let t = HttpTarget::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.prefix, "");
        assert_eq!(t.url("/health"), "http://127.0.0.1:8080/health");
        let t = HttpTarget::parse("ws://h:1/ws").unwrap();
        assert_eq!((t.authority.as_str(), t.prefix.as_str()), ("h:1", ""));
        let t = HttpTarget::parse("ws://h:1/agents/ws?x=1").unwrap();
        assert_eq!(t.prefix, "/agents");
        let t = HttpTarget::parse("localhost:9/").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.prefix.as_str()),
            ("localhost:9", "")
        );
        let t = HttpTarget::parse("https://h.example/api").unwrap();
        assert!(t.tls.is_some());
        assert_eq!(t.url("/health"), "https://h.example/api/health");
        assert_eq!(
            (t.host(), t.dial_address().as_str()),
            ("h.example", "h.example:443")
        );
        let t = HttpTarget::parse("wss://[::1]:8443/ws").unwrap();
        assert_eq!((t.host(), t.dial_address().as_str()), ("::1", "[::1]:8443"));
        assert!(HttpTarget::parse("ftp://h").is_err());
        assert!(HttpTarget::parse("http:///x").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_port_is_a_connect_error() {
        // Bind and drop a listener to find a port nothing listens on.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let target = HttpTarget::parse(&format!("http://{addr}")).unwrap();
        let err = target
            .get("/health", &[], Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Connect { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        let target = HttpTarget::parse(&format!("http://{addr}")).unwrap();
        let err = target
            .get("/health", &[], Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Timeout { .. }), "{err}");
        hold.abort();
    }

    #[tokio::test]
    async fn answers_are_read_with_status_headers_and_body() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let n = socket.read(&mut request).await.unwrap();
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            socket
                .write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
                      Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
                )
                .await
                .unwrap();
            request
        });
        let target = HttpTarget::parse(&format!("http://{addr}/pre")).unwrap();
        let answer = target
            .request(
                "POST",
                "/api/usage",
                &[("Authorization", "Bearer t")],
                b"x".to_vec(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 503);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_eq!(answer.json().unwrap()["a"], 1);
        let request = server.await.unwrap();
        assert!(
            request.starts_with("POST /pre/api/usage HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: bearer t")
        );
    }
}
