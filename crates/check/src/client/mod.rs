//! A real WebSocket client for the agentwire protocol: the suite's, the load generator's and the
//! server's integration tests' one way onto a socket.
//!
//! [`Session::connect`] opens `GET /ws` on a live deployment, presents credentials in any of the three
//! ways of PROTOCOL.md section 2, and waits for `connection_established`. After that a [`Session`]
//! sends client messages and reads server frames as raw JSON ([`serde_json::Value`]): the client must
//! be able to hold frames that break the contract so that [`crate::grammar`] can judge them.
//!
//! Frames are never dropped: helpers that look for one frame ([`Session::collect_run`],
//! [`Session::wait_run_accepted`]) keep every other frame in a backlog that [`Session::next_frame`]
//! drains first, and a helper that fails puts what it had read back into that backlog.
//!
//! What it must not do: fake anything. There is no mock transport and no fallback: a server that
//! cannot be reached, refuses the upgrade, or closes the socket is a [`ClientError`] carrying the
//! reason. It must not depend on the server crate (it judges any deployment), and nothing the network
//! sends may make it panic.
//!
//! Layout: this file connects, sends and closes; `reading` reads frames through the backlog;
//! `parse` turns their text into JSON (whole, or only the envelope) and finds their canaries;
//! `runs` holds what is about runs (`start_agent`, `run_accepted`, a run's events to its end).

use crate::tls::TlsClient;
use agentwire_protocol::{JWT_SUBPROTOCOL_PREFIX, SUBPROTOCOL};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::time::Instant as TokioInstant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

mod parse;
mod reading;
mod runs;

pub use parse::FrameDetail;
pub use runs::{Accepted, RunTranscript, start_agent_message};

use reading::Queued;

/// What each client socket asks of tungstenite. Its default read buffer (128 KiB) is zeroed
/// before every read from the socket: `load` opens thousands of sessions on the cores it
/// measures, and that zeroing and the pages under it were a third of its CPU. The buffer
/// still grows to hold a whole frame of any size.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(16 * 1024)
}

/// How long [`Session::close`] waits for the server's side of the closing handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How a connection presents its JWT (PROTOCOL.md section 2).
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <JWT>` on the upgrade request.
    Bearer(String),
    /// A `jwt.<base64url(JWT)>` subprotocol item, offered beside `agentwire.v1`.
    Subprotocol(String),
    /// No credentials at the upgrade, then `{"type":"authenticate","token":...}` as the first frame.
    FirstFrame(String),
    /// No credentials at all (to test `AUTH_REQUIRED` and the auth timeout).
    None,
}

impl std::fmt::Debug for Credentials {
    // Tokens are secrets: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Subprotocol(_) => f.write_str("Subprotocol(<redacted>)"),
            Self::FirstFrame(_) => f.write_str("FirstFrame(<redacted>)"),
            Self::None => f.write_str("None"),
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `ws://host:port/ws` (used as given), or `http://host:port` (the scheme is mapped to `ws` and
    /// `/ws` appended unless the path already ends in `/ws`). A bare `host:port` is taken as
    /// `http://host:port`. `wss://` and `https://` connect with TLS, never without.
    pub url: String,
    pub credentials: Credentials,
    /// Offer the `agentwire.v1` subprotocol. Always offered with [`Credentials::Subprotocol`].
    pub offer_subprotocol: bool,
    /// The limit on the whole of [`Session::connect`]: TCP, upgrade, and the wait for
    /// `connection_established`.
    pub connect_timeout: Duration,
    /// The roots a `wss://` URL is verified against; `None`: the platform's.
    pub tls: Option<TlsClient>,
}

impl ConnectOptions {
    /// Options for `url` with `credentials`, offering `agentwire.v1`, with a 10 s connect timeout.
    pub fn new(url: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            url: url.into(),
            credentials,
            offer_subprotocol: true,
            connect_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// Why a client operation failed. Every variant carries the reason; none is ever papered over.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The target URL cannot be turned into a WebSocket request.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// A token cannot be put in an HTTP header.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// The server could not be reached (DNS, TCP, TLS).
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server refused the upgrade with an HTTP answer (e.g. 401 with a JSON body).
    #[error("upgrade refused with HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// The upgrade answer broke RFC 6455 or the subprotocol rules (e.g. no subprotocol selected).
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    /// Nothing arrived in time.
    #[error("timed out after {waited:?} waiting for {waiting_for}")]
    Timeout {
        waited: Duration,
        waiting_for: String,
    },
    /// The connection is closed; `code` is the close frame's code when the server sent one.
    #[error("connection closed (code {}): {reason}", code.map_or_else(|| "none".to_owned(), |c| c.to_string()))]
    Closed { code: Option<u16>, reason: String },
    /// The server sent something the transport rules forbid (non-JSON text, a binary frame).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server answered with an `error` frame where another reply was expected.
    #[error("server error {error_code}: {message}")]
    ServerError {
        error_code: String,
        message: String,
        frame: Value,
    },
    /// Reading or writing the socket failed for another reason.
    #[error("transport error: {0}")]
    Transport(String),
}

impl ClientError {
    /// The body of an [`ClientError::Http`] refusal parsed as JSON, when it is JSON.
    pub fn http_body_json(&self) -> Option<Value> {
        match self {
            Self::Http { body, .. } => serde_json::from_str(body).ok(),
            _ => None,
        }
    }
}

/// One server frame, parsed, with the moment it was read off the socket.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The frame, whole or its envelope: see [`Session::set_frame_detail`].
    pub value: Value,
    pub received_at: Instant,
    /// Every isolation canary in the frame's strings, found while parsing it, in the parts an
    /// envelope leaves out too ([`crate::isolation::Registry::leaks_in`]).
    pub canaries: Vec<String>,
}

impl Frame {
    /// The frame's `type`, when it has a string one.
    pub fn type_name(&self) -> Option<&str> {
        self.value.get("type").and_then(Value::as_str)
    }
}

/// Why the connection ended, remembered so that every later call reports the same close.
#[derive(Debug, Clone)]
struct CloseInfo {
    code: Option<u16>,
    reason: String,
}

impl CloseInfo {
    fn error(&self) -> ClientError {
        ClientError::Closed {
            code: self.code,
            reason: self.reason.clone(),
        }
    }
}

/// One open WebSocket connection to a deployment.
pub struct Session {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    url: String,
    backlog: VecDeque<Queued>,
    next_arrival: u64,
    connection_info: Option<Value>,
    subprotocol: Option<String>,
    closed: Option<CloseInfo>,
    detail: FrameDetail,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.url)
            .field("subprotocol", &self.subprotocol)
            .field("backlog", &self.backlog.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Turns the target into the WebSocket URL to open (see [`ConnectOptions::url`]).
///
/// # Errors
/// [`ClientError::InvalidUrl`] for an empty target or an unknown scheme.
pub fn websocket_url(target: &str) -> Result<String, ClientError> {
    let target = target.trim();
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: target.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = match target.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_owned(), target),
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid("no host"));
    }
    let ws_scheme = match scheme.as_str() {
        "ws" | "wss" => return Ok(format!("{scheme}://{rest}")),
        "http" => "ws",
        "https" => "wss",
        _ => return Err(invalid("scheme must be ws, wss, http or https")),
    };
    // Split off a query or fragment so that `/ws` goes on the path.
    let cut = rest.find(['?', '#']).unwrap_or(rest.len());
    let (authority_and_path, suffix) = rest.split_at(cut);
    let base = authority_and_path.trim_end_matches('/');
    let path = if base.ends_with("/ws") {
        base.to_owned()
    } else {
        format!("{base}/ws")
    };
    Ok(format!("{ws_scheme}://{path}{suffix}"))
}

/// The `jwt.<base64url(JWT), unpadded>` subprotocol item for a token.
pub fn jwt_subprotocol(token: &str) -> String {
    format!(
        "{JWT_SUBPROTOCOL_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(token.as_bytes())
    )
}

fn is_closing_error(err: &tungstenite::Error) -> bool {
    use tungstenite::error::ProtocolError;
    matches!(
        err,
        tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Io(_)
            | tungstenite::Error::Protocol(
                ProtocolError::ResetWithoutClosingHandshake | ProtocolError::SendAfterClosing
            )
    )
}

impl Session {
    /// Opens the connection, presents the credentials and, unless they are [`Credentials::None`],
    /// waits for `connection_established`, all within `opts.connect_timeout`.
    ///
    /// # Errors
    /// [`ClientError::Http`] when the upgrade is refused (status and body as sent),
    /// [`ClientError::Connect`] when the server cannot be reached, [`ClientError::Handshake`] when the
    /// upgrade answer is malformed, [`ClientError::ServerError`] when the server answers the
    /// credentials with an `error` frame, [`ClientError::Closed`] when it closes instead, and
    /// [`ClientError::Timeout`] when the limit passes first.
    pub async fn connect(opts: &ConnectOptions) -> Result<Session, ClientError> {
        let started = TokioInstant::now();
        let deadline = started + opts.connect_timeout;
        let url = websocket_url(&opts.url)?;
        // A `wss://` URL is only ever dialled with TLS, verified against these roots.
        let tls = if url.starts_with("wss://") {
            Some(match &opts.tls {
                Some(tls) => tls.clone(),
                None => TlsClient::system().map_err(|err| ClientError::Connect {
                    url: url.clone(),
                    reason: err.to_string(),
                })?,
            })
        } else {
            None
        };
        let mut request =
            url.as_str()
                .into_client_request()
                .map_err(|err| ClientError::InvalidUrl {
                    url: url.clone(),
                    reason: err.to_string(),
                })?;

        let header_value = |text: String| {
            HeaderValue::from_str(&text).map_err(|_| {
                ClientError::InvalidCredentials(
                    "the token contains characters that cannot go in an HTTP header".to_owned(),
                )
            })
        };
        let mut protocols: Vec<String> = Vec::new();
        if opts.offer_subprotocol || matches!(opts.credentials, Credentials::Subprotocol(_)) {
            protocols.push(SUBPROTOCOL.to_owned());
        }
        match &opts.credentials {
            Credentials::Bearer(token) => {
                request.headers_mut().insert(
                    header::AUTHORIZATION,
                    header_value(format!("Bearer {token}"))?,
                );
            }
            Credentials::Subprotocol(token) => protocols.push(jwt_subprotocol(token)),
            Credentials::FirstFrame(_) | Credentials::None => {}
        }
        if !protocols.is_empty() {
            request.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                header_value(protocols.join(", "))?,
            );
        }

        let connector = match &tls {
            Some(tls) => tokio_tungstenite::Connector::Rustls(tls.config()),
            None => tokio_tungstenite::Connector::Plain,
        };
        let upgrade = tokio::time::timeout_at(
            deadline,
            tokio_tungstenite::connect_async_tls_with_config(
                request,
                Some(socket_config()),
                false,
                Some(connector),
            ),
        );
        let (ws, response) = match upgrade.await {
            Err(_) => {
                return Err(ClientError::Timeout {
                    waited: opts.connect_timeout,
                    waiting_for: format!("the WebSocket upgrade at {url}"),
                });
            }
            Ok(Err(err)) => return Err(upgrade_error(&url, err, tls.as_ref())),
            Ok(Ok(pair)) => pair,
        };
        let subprotocol = response
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());

        let mut session = Session {
            ws,
            url,
            backlog: VecDeque::new(),
            next_arrival: 0,
            connection_info: None,
            subprotocol,
            closed: None,
            detail: FrameDetail::Whole,
        };

        let token = match &opts.credentials {
            Credentials::None => return Ok(session),
            Credentials::FirstFrame(token) => Some(token),
            Credentials::Bearer(_) | Credentials::Subprotocol(_) => None,
        };
        if let Some(token) = token {
            session
                .send_json(&json!({"type": "authenticate", "token": token}))
                .await?;
        }
        let (_, frame) = session
            .take_first(
                deadline,
                opts.connect_timeout,
                "connection_established",
                |value| {
                    let kind = value.get("type").and_then(Value::as_str);
                    // An `error` answers the credentials only when it is not a reply to a request.
                    kind == Some("connection_established")
                        || (kind == Some("error") && value.get("request_id").is_none())
                },
            )
            .await?;
        if frame.type_name() == Some("error") {
            return Err(server_error(frame.value));
        }
        session.connection_info = Some(frame.value);
        Ok(session)
    }

    /// The `connection_established` frame: the one [`Session::connect`] waited for, or else the first
    /// one read later (after a manual `authenticate`).
    pub fn connection_info(&self) -> Option<&Value> {
        self.connection_info.as_ref()
    }

    /// How much of each frame read from now on is kept (whole until this is called; the
    /// `connection_established` that [`Session::connect`] waits for is always whole).
    pub fn set_frame_detail(&mut self, detail: FrameDetail) {
        self.detail = detail;
    }

    /// The subprotocol the server selected, if any.
    pub fn selected_subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// The WebSocket URL this session opened.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends a JSON value as one text frame.
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the connection is closed, [`ClientError::Transport`] otherwise.
    pub async fn send_json(&mut self, value: &Value) -> Result<(), ClientError> {
        self.send(Message::text(value.to_string())).await
    }

    /// Sends raw text as one text frame, valid JSON or not.
    ///
    /// # Errors
    /// As [`Session::send_json`].
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.send(Message::text(text)).await
    }

    /// Sends one binary frame (which the protocol refuses; for testing that refusal).
    ///
    /// # Errors
    /// As [`Session::send_json`].
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.send(Message::binary(bytes)).await
    }

    async fn send(&mut self, message: Message) -> Result<(), ClientError> {
        if let Some(closed) = &self.closed {
            return Err(closed.error());
        }
        match self.ws.send(message).await {
            Ok(()) => Ok(()),
            Err(err) if is_closing_error(&err) => {
                let info = CloseInfo {
                    code: None,
                    reason: format!("sending failed: {err}"),
                };
                let error = info.error();
                self.closed = Some(info);
                Err(error)
            }
            Err(err) => Err(ClientError::Transport(format!("sending failed: {err}"))),
        }
    }

    /// Closes the connection with code 1000 and waits briefly for the server's close reply. Closing
    /// a connection the server already closed succeeds.
    ///
    /// # Errors
    /// [`ClientError::Transport`] when the close frame cannot be sent for a reason other than the
    /// connection being gone already.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if self.closed.is_some() {
            return Ok(());
        }
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "client done".into(),
        };
        match self.ws.close(Some(frame)).await {
            Ok(()) => {}
            Err(err) if is_closing_error(&err) => return Ok(()),
            Err(err) => return Err(ClientError::Transport(format!("closing failed: {err}"))),
        }
        // Drain until the server answers the close (or the grace period ends); what arrives now is
        // of no further use.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
        Ok(())
    }
}

fn server_error(frame: Value) -> ClientError {
    let text = |name: &str| {
        frame
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    ClientError::ServerError {
        error_code: text("error_code"),
        message: text("message"),
        frame,
    }
}

fn upgrade_error(url: &str, err: tungstenite::Error, tls: Option<&TlsClient>) -> ClientError {
    match err {
        tungstenite::Error::Http(response) => ClientError::Http {
            status: response.status().as_u16(),
            body: response
                .body()
                .as_deref()
                .map(|body| String::from_utf8_lossy(body).into_owned())
                .unwrap_or_default(),
        },
        tungstenite::Error::Io(err) => ClientError::Connect {
            url: url.to_owned(),
            // A refused certificate arrives as an I/O error; say what is wrong with it.
            reason: tls.map_or_else(|| err.to_string(), |tls| tls.describe(&err)),
        },
        tungstenite::Error::Url(err) => ClientError::InvalidUrl {
            url: url.to_owned(),
            reason: err.to_string(),
        },
        tungstenite::Error::Tls(err) => ClientError::Connect {
            url: url.to_owned(),
            reason: err.to_string(),
        },
        other => ClientError::Handshake(other.to_string()),
    }
}
