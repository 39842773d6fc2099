//! The socket loop: `GET /ws`, authentication on the socket, and forwarding run events.
//!
//! One connection is three kinds of task:
//! - the **reader** (`Connection::run`): reads client frames, decides what each one means in
//!   the synchronous `process_message`, calls the engine, and owns the connection's timers
//!   (auth timeout, protocol pings, shutdown);
//! - one **writer** (`write_loop`): drains a bounded queue of outbound frames into the socket, so
//!   no other task ever waits on a slow client's TCP window;
//! - one **forwarder** per run the connection follows (`forward_run`): pulls the run's events
//!   from the engine and queues them. `run_accepted` is queued before the forwarder is spawned, so
//!   it always precedes the run's first event on the wire.
//!
//! When the queue stays full for `slow_client_timeout` the client is not reading: it is
//! disconnected and its runs continue (the client can `resume` them later). When the socket closes
//! for any reason the forwarders are aborted; runs are never cancelled by a disconnect.
//!
//! Frame size: the WebSocket library is configured to accept messages a little over
//! `max_frame_bytes` (`library_limit`), so that a frame just over our limit is read and answered
//! with `error` `PAYLOAD_TOO_LARGE` followed by close 1009. A frame over the library limit is
//! refused by the library while reading its header; we recognise that error and answer the same
//! way (error frame, then close 1009), without ever buffering the oversized payload.
//!
//! Limits (see [`crate::limits`]): the upgrade takes a place among `max_connections` (HTTP 503
//! past it) and, with credentials, among the user's `max_connections_per_user` (HTTP 429); a first
//! `authenticate` frame takes the user's place then. Every data frame within the size limit takes
//! a token from the connection's bucket and the user's; without one it is dropped and answered
//! with `RATE_LIMITED` and `retry_after_ms`, before it is parsed. A text frame that is not UTF-8
//! gets `INVALID_MESSAGE` and close 1007, as RFC 6455 requires. A page of a foreign origin cannot
//! open a socket (HTTP 403).
//!
//! This module must not log tokens or frame contents, and must not block: token verification is
//! a few microseconds of CPU; everything else is awaited.

use crate::AppState;
use crate::auth::{self, Identity};
use crate::error::AppError;
use crate::limits::{self, ConnectionPermit, LimitError, RateLimited, TokenBucket, UserPermit};
use agentwire_engine::{EngineError, EventStream};
use agentwire_protocol::server::{ControlFrame, Pong, RunAccepted};
use agentwire_protocol::{
    AgentKind, CLOSE_AUTH_TIMEOUT, CLOSE_TOO_BIG, ClientMessage, ConnectionEstablished, ErrorCode,
    ErrorFrame, Limits, RunEvent, SUBPROTOCOL, ServerFrame, StartRun,
};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// Close code for "going away": server shutdown.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Close code for "invalid frame payload data" (RFC 6455): a text frame that is not UTF-8.
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;

/// On shutdown, how long a socket waits for its forwarders to deliver the terminal events the
/// engine just persisted before it closes.
const FORWARDER_FLUSH_GRACE: Duration = Duration::from_secs(2);

/// How long a closing connection waits for its writer to flush the last frames.
const WRITER_FLUSH_GRACE: Duration = Duration::from_secs(2);

/// After the server sent a close frame, how long it keeps the TCP connection open so the client
/// can read the last frames and answer the close. Dropping the socket at once could reset it while
/// the client still has our final `error` frame unread.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Slack above `max_frame_bytes` for the library's own limit: a frame up to this much too big is
/// read whole and answered precisely; anything bigger is refused by the library on its header.
fn library_limit(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_add((max_frame_bytes / 4).max(64 * 1024))
}

/// `GET /ws`: authenticates the upgrade request when it carries credentials, then upgrades.
///
/// Credentials present and invalid: HTTP 401 with `{"error_code":"AUTH_FAILED","message":...}`
/// and no upgrade. No credentials: the socket is opened unauthenticated. The subprotocol
/// `agentwire.v1` is selected when offered; a `jwt.*` item is never echoed.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            let status = rejection.status();
            let mut response = AppError::BadRequest(format!(
                "this endpoint speaks WebSocket ({SUBPROTOCOL}); connect with a WebSocket client ({})",
                rejection.body_text()
            ))
            .into_response();
            *response.status_mut() = status;
            return response;
        }
    };
    // Browsers do not apply CORS to WebSockets: a page of another origin is refused here, before
    // it can learn anything about the credentials it sent.
    if !crate::security::upgrade_origin_allowed(&headers, &state.config.cors_allowed_origins) {
        return AppError::Forbidden(
            "WebSocket connections from pages of this origin are not allowed; the server operator can allow it with --cors-allow-origin".into(),
        )
        .into_response();
    }
    let identity = match auth::upgrade_token(&headers) {
        Ok(Some(token)) => match state.verifier.verify(&token) {
            Ok(identity) => Some(identity),
            Err(err) => return AppError::Auth(err).into_response(),
        },
        Ok(None) => None,
        Err(err) => return AppError::Auth(err).into_response(),
    };
    if state.is_draining() {
        return AppError::Unavailable(
            "the server is shutting down; reconnect to another instance or retry shortly".into(),
        )
        .into_response();
    }
    let connection_permit = match state.limiter.open() {
        Ok(permit) => permit,
        Err(err) => return limit_refusal(&err, ErrorCode::Unavailable),
    };
    let user_permit = match &identity {
        Some(identity) => match state
            .limiter
            .join(&identity.principal.user_id, Instant::now())
        {
            Ok(permit) => Some(permit),
            Err(err) => return limit_refusal(&err, ErrorCode::RateLimited),
        },
        None => None,
    };
    let query_token_ignored = auth::query_has_token(query.as_deref());
    let limit = library_limit(state.config.max_frame_bytes);
    ws.protocols([SUBPROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        // Small read buffer: idle connections are most connections, and a large frame grows the
        // buffer only while it is read.
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket: WebSocket| async move {
            let _counted = state.lifecycle.sockets.enter();
            Connection::new(
                state,
                identity,
                query_token_ignored,
                connection_permit,
                user_permit,
            )
            .run(socket)
            .await;
        })
}

/// The HTTP answer to an upgrade refused by a connection cap: 503 `UNAVAILABLE` for the server's
/// total, 429 `RATE_LIMITED` for the user's, both with `Retry-After`.
fn limit_refusal(err: &LimitError, code: ErrorCode) -> Response {
    AppError::Limited {
        code,
        message: err.to_string(),
        retry_after_ms: u64::try_from(err.retry_after().as_millis()).unwrap_or(u64::MAX),
    }
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Per-message decisions (synchronous, no I/O).

/// What the reader should do with one client frame.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send this frame back (pong, or an error).
    Reply(ServerFrame),
    Authenticate {
        request_id: Option<String>,
        token: String,
    },
    Start {
        start: StartRun,
        received_at: Instant,
    },
    Cancel {
        request_id: Option<String>,
        run_id: String,
    },
    Resume {
        request_id: Option<String>,
        run_id: String,
        after_seq: u64,
    },
    /// Nothing to do (protocol ping/pong frames).
    Nothing,
}

/// Why the reader stops after a frame.
#[derive(Debug, PartialEq)]
pub(crate) enum Closing {
    /// The client sent a close frame.
    ClientClosed,
    /// The frame was over the limit: send this error, then close 1009.
    TooBig(ErrorFrame),
}

/// What [`process_message`] needs to know about the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageContext {
    pub authenticated: bool,
    pub max_frame_bytes: usize,
    /// The upgrade URL had a token in its query string (ignored); said in `AUTH_REQUIRED`.
    pub query_token_ignored: bool,
}

/// Message types that need an authenticated connection.
const AUTHENTICATED_TYPES: [&str; 7] = [
    "start_agent",
    "agent_execute",
    "user_message",
    "chat_message",
    "message",
    "cancel",
    "resume",
];

/// Decides what one client frame means. Pure: the caller does the I/O.
pub(crate) fn process_message(msg: Message, ctx: MessageContext) -> ControlFlow<Closing, Step> {
    let text = match msg {
        Message::Text(text) => text,
        Message::Binary(bytes) => {
            if bytes.len() > ctx.max_frame_bytes {
                return ControlFlow::Break(Closing::TooBig(too_big(bytes.len(), ctx)));
            }
            return ControlFlow::Continue(Step::Reply(error(
                ErrorCode::InvalidMessage,
                "binary frames are not accepted; send each message as a JSON text frame",
                None,
            )));
        }
        // Pings are answered by the library; pongs only prove liveness (recorded by the caller).
        Message::Ping(_) | Message::Pong(_) => return ControlFlow::Continue(Step::Nothing),
        Message::Close(_) => return ControlFlow::Break(Closing::ClientClosed),
    };
    if text.len() > ctx.max_frame_bytes {
        return ControlFlow::Break(Closing::TooBig(too_big(text.len(), ctx)));
    }
    let parsed = match ClientMessage::parse(text.as_str()) {
        Ok(parsed) => parsed,
        Err(err) => {
            if !ctx.authenticated && wants_authentication(text.as_str()) {
                return ControlFlow::Continue(Step::Reply(auth_required(err.request_id, ctx)));
            }
            return ControlFlow::Continue(Step::Reply(error(
                err.code,
                err.message,
                err.request_id,
            )));
        }
    };
    let step = match parsed {
        ClientMessage::Ping { id } => Step::Reply(ServerFrame::Control(ControlFrame::Pong(Pong {
            request_id: id,
            timestamp: agentwire_protocol::time::now(),
        }))),
        ClientMessage::Authenticate { id, token } => Step::Authenticate {
            request_id: id,
            token,
        },
        other if !ctx.authenticated => {
            Step::Reply(auth_required(other.request_id().map(str::to_owned), ctx))
        }
        ClientMessage::StartRun(start) => Step::Start {
            start,
            received_at: Instant::now(),
        },
        ClientMessage::Cancel { id, run_id } => Step::Cancel {
            request_id: id,
            run_id,
        },
        ClientMessage::Resume {
            id,
            run_id,
            after_seq,
        } => Step::Resume {
            request_id: id,
            run_id,
            after_seq,
        },
    };
    ControlFlow::Continue(step)
}

/// Whether a frame that failed to parse was meant as a message that needs authentication; an
/// unauthenticated client gets `AUTH_REQUIRED` for those rather than details about their shape.
fn wants_authentication(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| {
            value
                .get("type")
                .and_then(|kind| kind.as_str())
                .map(|kind| AUTHENTICATED_TYPES.contains(&kind))
        })
        .unwrap_or(false)
}

fn error(code: ErrorCode, message: impl Into<String>, request_id: Option<String>) -> ServerFrame {
    ServerFrame::from(ErrorFrame::new(code, message, request_id))
}

fn auth_required(request_id: Option<String>, ctx: MessageContext) -> ServerFrame {
    let mut message = String::from(
        "authenticate first: send {\"type\":\"authenticate\",\"token\":\"<JWT>\"}, or connect with `Authorization: Bearer <JWT>` or the `jwt.<base64url JWT>` subprotocol",
    );
    if ctx.query_token_ignored {
        message.push_str("; a token in the URL query string is ignored (URLs end up in logs)");
    }
    error(ErrorCode::AuthRequired, message, request_id)
}

fn too_big(len: usize, ctx: MessageContext) -> ErrorFrame {
    ErrorFrame::new(
        ErrorCode::PayloadTooLarge,
        format!(
            "frame of {len} bytes is over the {} byte limit; the connection will be closed",
            ctx.max_frame_bytes
        ),
        None,
    )
}

/// Longest `thread_id` a client may choose; ids are database keys and log fields.
pub const MAX_THREAD_ID_CHARS: usize = 128;

/// Checks the fields of a run request that the server limits: the question's size and the
/// thread id's shape. The message says what to change.
pub(crate) fn check_start_fields(
    start: &StartRun,
    max_user_request_bytes: usize,
) -> Result<(), String> {
    let question = start.user_request.len();
    if question > max_user_request_bytes {
        return Err(format!(
            "`user_request` is {question} bytes; this server takes questions of up to {max_user_request_bytes} bytes. Ask a shorter question; upload data with POST /api/usage instead of pasting it"
        ));
    }
    if let Some(thread_id) = &start.thread_id
        && (thread_id.trim().is_empty()
            || thread_id.chars().count() > MAX_THREAD_ID_CHARS
            || thread_id.chars().any(char::is_control))
    {
        return Err(format!(
            "`thread_id` must be 1 to {MAX_THREAD_ID_CHARS} printable characters; leave it out to start a new thread"
        ));
    }
    Ok(())
}

/// The `error` frame for a message dropped by a rate limit, with the message's `id` when it has
/// one so the client knows which request to send again.
fn rate_limited_frame(limited: &RateLimited, msg: &Message) -> ServerFrame {
    let request_id = match msg {
        Message::Text(text) => frame_request_id(text.as_str()),
        _ => None,
    };
    let mut frame = ErrorFrame::new(ErrorCode::RateLimited, limited.message(), request_id);
    frame.retry_after_ms = Some(limited.retry_after_ms());
    ServerFrame::from(frame)
}

/// The `id` of a frame, read without interpreting the rest (for replies to dropped frames).
fn frame_request_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Option<serde_json::Value>,
    }
    match serde_json::from_str::<IdOnly>(text).ok()?.id? {
        serde_json::Value::String(id) => Some(id.chars().take(128).collect()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The error frame for an engine refusal. Internal failures are logged under a correlation id
/// that the client sees; their details are not sent.
fn engine_error_frame(
    err: &EngineError,
    request_id: Option<String>,
    run_id: Option<&str>,
    connection_id: &str,
) -> ServerFrame {
    let code = err.code();
    let message = if matches!(err, EngineError::Store(_) | EngineError::Internal(_))
        || code == ErrorCode::Internal
    {
        let correlation_id = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(%connection_id, %correlation_id, error = %err, "engine failed");
        format!(
            "internal error; the server log has the details under correlation id {correlation_id}"
        )
    } else {
        err.to_string()
    };
    let mut frame = ErrorFrame::new(code, message, request_id);
    frame.retry_after_ms = err.retry_after_ms();
    frame.run_id = err.conflicting_run().or(run_id).map(str::to_owned);
    ServerFrame::from(frame)
}

// ---------------------------------------------------------------------------------------------
// The outbound queue and the writer.

/// One item for the writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    Frame {
        text: String,
        kind: FrameKind,
    },
    /// A protocol-level ping (liveness check).
    Ping,
    /// Send a close frame and stop writing.
    Close {
        code: u16,
        reason: &'static str,
    },
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
            text: frame.to_json(),
            kind,
        }
    }

    fn event(event: RunEvent, first_of_run: Option<Instant>) -> Self {
        Outbound::Frame {
            text: ServerFrame::Event(event).to_json(),
            kind: FrameKind::Event { first_of_run },
        }
    }
}

/// The sending side of a connection's queue, shared by the reader and the forwarders.
#[derive(Clone)]
struct Outbox {
    tx: mpsc::Sender<Outbound>,
    /// Cancelled when the connection must end now (slow client, dead socket).
    disconnect: CancellationToken,
    slow_client_timeout: Duration,
}

/// The connection is ending; the item was not queued.
#[derive(Debug)]
struct Gone;

impl Outbox {
    async fn send(&self, item: Outbound) -> Result<(), Gone> {
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

    async fn frame(&self, frame: &ServerFrame) -> Result<(), Gone> {
        self.send(Outbound::frame(frame)).await
    }
}

/// Drains the queue into the socket, batching whatever is ready into one flush.
///
/// Ends after writing a close frame, when every sender is gone, or when `disconnect` fires (a
/// write to a client that stopped reading would otherwise wait forever).
async fn write_loop<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<Outbound>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
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
                        Message::Text(text.into())
                    }
                    Outbound::Ping => Message::Ping(Bytes::new()),
                    Outbound::Close { code, reason } => {
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

// ---------------------------------------------------------------------------------------------
// The connection.

/// How a connection ended, for the close log line.
#[derive(Debug, Clone, Copy)]
enum End {
    ClientClosed,
    SocketError,
    /// `library_refused`: the library stopped reading at the frame header, so the stream must not
    /// be read again.
    TooBig {
        library_refused: bool,
    },
    AuthTimeout,
    PingTimeout,
    SlowClient,
    Shutdown,
    InvalidUtf8,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client closed",
            Self::SocketError => "socket error",
            Self::TooBig { .. } => "frame too big",
            Self::AuthTimeout => "authentication timeout",
            Self::PingTimeout => "no answer to pings",
            Self::SlowClient => "client not reading",
            Self::Shutdown => "server shutdown",
            Self::InvalidUtf8 => "text frame not UTF-8",
        }
    }
}

/// The reader side of one socket, with everything it owns.
struct Connection {
    state: AppState,
    id: String,
    identity: Option<Identity>,
    query_token_ignored: bool,
    /// This connection's place among `max_connections`, given back when the connection ends.
    _connection_permit: ConnectionPermit,
    /// The user's place among their `max_connections_per_user`, with their shared message
    /// bucket; taken when the connection authenticates.
    user_permit: Option<UserPermit>,
    /// This connection's own message bucket.
    bucket: TokenBucket,
    forwarders: JoinSet<String>,
    /// The forwarder of each run this connection follows, so a second `resume` of the same run
    /// replaces the first instead of sending every event twice.
    following: HashMap<String, (tokio::task::Id, AbortHandle)>,
}

impl Connection {
    fn new(
        state: AppState,
        identity: Option<Identity>,
        query_token_ignored: bool,
        connection_permit: ConnectionPermit,
        user_permit: Option<UserPermit>,
    ) -> Self {
        let bucket = connection_permit.bucket(Instant::now());
        Self {
            state,
            id: format!("conn_{}", uuid::Uuid::new_v4().simple()),
            identity,
            query_token_ignored,
            _connection_permit: connection_permit,
            user_permit,
            bucket,
            forwarders: JoinSet::new(),
            following: HashMap::new(),
        }
    }

    /// Takes one message from the connection's bucket and its user's. Only data frames within the
    /// size limit count: protocol pings and pongs are the library's, and an oversized frame closes
    /// the connection whatever the rate.
    fn check_rate(
        &mut self,
        msg: &Message,
        max_frame_bytes: usize,
        now: Instant,
    ) -> Result<(), RateLimited> {
        let len = match msg {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return Ok(()),
        };
        if len > max_frame_bytes {
            return Ok(());
        }
        limits::check_message(
            &mut self.bucket,
            self.state.config.connection_rate,
            self.user_permit.as_ref(),
            now,
        )
    }

    fn user_id(&self) -> &str {
        self.identity
            .as_ref()
            .map_or("-", |identity| identity.principal.user_id.as_str())
    }

    /// Serves the socket until it closes. Runs the connection follows keep running afterwards.
    async fn run<S>(mut self, socket: S)
    where
        S: Stream<Item = Result<Message, axum::Error>>
            + Sink<Message, Error = axum::Error>
            + Send
            + 'static,
    {
        let opened = Instant::now();
        let metrics = self.state.metrics.clone();
        metrics.connection_opened();
        tracing::info!(connection_id = %self.id, user_id = %self.user_id(), "connection opened");

        let (sink, mut stream) = socket.split();
        let (tx, rx) = mpsc::channel(self.state.config.outbound_queue.max(1));
        let disconnect = CancellationToken::new();
        let outbox = Outbox {
            tx,
            disconnect: disconnect.clone(),
            slow_client_timeout: self.state.config.slow_client_timeout,
        };
        let writer = tokio::spawn(write_loop(sink, rx, metrics.clone(), disconnect.clone()));

        let end = self.read_loop(&mut stream, &outbox).await;

        // Forwarders stop with the socket; their runs go on.
        self.forwarders.abort_all();
        self.following.clear();
        drop(outbox);
        let mut writer = writer;
        if tokio::time::timeout(WRITER_FLUSH_GRACE, &mut writer)
            .await
            .is_err()
        {
            disconnect.cancel();
            writer.abort();
        }
        match end {
            // We sent a close frame on a healthy stream: wait for the client's answer.
            End::AuthTimeout
            | End::Shutdown
            | End::InvalidUtf8
            | End::TooBig {
                library_refused: false,
            } => {
                let answered = async { while let Some(Ok(_)) = stream.next().await {} };
                let _ = tokio::time::timeout(CLOSE_LINGER, answered).await;
            }
            // The stream is stuck inside the oversized frame; only keep the socket open.
            End::TooBig {
                library_refused: true,
            } => tokio::time::sleep(CLOSE_LINGER).await,
            End::ClientClosed | End::SocketError | End::PingTimeout | End::SlowClient => {}
        }
        metrics.connection_closed();
        tracing::info!(
            connection_id = %self.id,
            user_id = %self.user_id(),
            reason = end.as_str(),
            duration_ms = u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX),
            "connection closed"
        );
    }

    async fn read_loop<S>(&mut self, stream: &mut S, outbox: &Outbox) -> End
    where
        S: Stream<Item = Result<Message, axum::Error>> + Unpin,
    {
        let config = self.state.config.clone();
        let lifecycle = self.state.lifecycle.clone();
        if self.identity.is_some() && self.send_established(outbox).await.is_err() {
            return End::SlowClient;
        }
        let auth_deadline = tokio::time::sleep(config.auth_timeout);
        tokio::pin!(auth_deadline);
        let ping_interval = config.ping_interval.max(Duration::from_millis(10));
        let mut pings =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_seen = Instant::now();
        let mut draining = false;

        loop {
            tokio::select! {
                () = outbox.disconnect.cancelled() => return End::SlowClient,
                () = lifecycle.close.cancelled() => {
                    self.finish_forwarders(FORWARDER_FLUSH_GRACE).await;
                    let _ = outbox.send(Outbound::Close {
                        code: CLOSE_GOING_AWAY,
                        reason: "server shutting down",
                    }).await;
                    return End::Shutdown;
                }
                () = lifecycle.drain.cancelled(), if !draining => {
                    // Finish what is in flight, then go away; new runs are refused by the engine.
                    draining = true;
                    if self.forwarders.is_empty() {
                        let _ = outbox.send(Outbound::Close {
                            code: CLOSE_GOING_AWAY,
                            reason: "server shutting down",
                        }).await;
                        return End::Shutdown;
                    }
                }
                () = &mut auth_deadline, if self.identity.is_none() => {
                    let frame = error(
                        ErrorCode::AuthRequired,
                        format!(
                            "no valid `authenticate` frame within {} ms; closing. Send {{\"type\":\"authenticate\",\"token\":\"<JWT>\"}} first, or connect with `Authorization: Bearer <JWT>`",
                            config.auth_timeout.as_millis()
                        ),
                        None,
                    );
                    if outbox.frame(&frame).await.is_ok() {
                        let _ = outbox.send(Outbound::Close {
                            code: CLOSE_AUTH_TIMEOUT,
                            reason: "authentication timeout",
                        }).await;
                    }
                    return End::AuthTimeout;
                }
                _ = pings.tick() => {
                    if last_seen.elapsed() >= ping_interval * 2 {
                        return End::PingTimeout;
                    }
                    if outbox.send(Outbound::Ping).await.is_err() {
                        return End::SlowClient;
                    }
                }
                Some(joined) = self.forwarders.join_next_with_id(), if !self.forwarders.is_empty() => {
                    if let Ok((task_id, run_id)) = joined
                        && self.following.get(&run_id).is_some_and(|(id, _)| *id == task_id)
                    {
                        self.following.remove(&run_id);
                    }
                    if draining && self.forwarders.is_empty() {
                        let _ = outbox.send(Outbound::Close {
                            code: CLOSE_GOING_AWAY,
                            reason: "server shutting down",
                        }).await;
                        return End::Shutdown;
                    }
                }
                received = stream.next() => {
                    let msg = match received {
                        None => return End::ClientClosed,
                        Some(Ok(msg)) => msg,
                        Some(Err(err)) => {
                            if is_too_big(&err) {
                                let frame = ErrorFrame::new(
                                    ErrorCode::PayloadTooLarge,
                                    format!(
                                        "frame is over the {} byte limit; the connection will be closed",
                                        config.max_frame_bytes
                                    ),
                                    None,
                                );
                                self.close_too_big(outbox, frame).await;
                                return End::TooBig { library_refused: true };
                            }
                            if is_invalid_utf8(&err) {
                                // RFC 6455 requires failing the connection; the client is told why
                                // first. The frame was read whole, so the stream is still in step.
                                let frame = error(
                                    ErrorCode::InvalidMessage,
                                    "a text frame was not valid UTF-8; text frames must carry UTF-8 JSON. The connection will be closed",
                                    None,
                                );
                                if outbox.frame(&frame).await.is_ok() {
                                    let _ = outbox
                                        .send(Outbound::Close {
                                            code: CLOSE_INVALID_PAYLOAD,
                                            reason: "text frame is not UTF-8",
                                        })
                                        .await;
                                }
                                return End::InvalidUtf8;
                            }
                            return End::SocketError;
                        }
                    };
                    last_seen = Instant::now();
                    if let Err(limited) = self.check_rate(&msg, config.max_frame_bytes, last_seen) {
                        let frame = rate_limited_frame(&limited, &msg);
                        if outbox.frame(&frame).await.is_err() {
                            return End::SlowClient;
                        }
                        continue;
                    }
                    let ctx = MessageContext {
                        authenticated: self.identity.is_some(),
                        max_frame_bytes: config.max_frame_bytes,
                        query_token_ignored: self.query_token_ignored,
                    };
                    match process_message(msg, ctx) {
                        ControlFlow::Continue(step) => {
                            if self.apply(step, outbox).await.is_err() {
                                return End::SlowClient;
                            }
                        }
                        ControlFlow::Break(Closing::ClientClosed) => return End::ClientClosed,
                        ControlFlow::Break(Closing::TooBig(frame)) => {
                            self.close_too_big(outbox, frame).await;
                            return End::TooBig { library_refused: false };
                        }
                    }
                }
            }
        }
    }

    async fn close_too_big(&self, outbox: &Outbox, frame: ErrorFrame) {
        if outbox.frame(&ServerFrame::from(frame)).await.is_ok() {
            let _ = outbox
                .send(Outbound::Close {
                    code: CLOSE_TOO_BIG,
                    reason: "frame too big",
                })
                .await;
        }
    }

    /// Waits, up to `grace`, for the forwarders to deliver what their runs still have.
    async fn finish_forwarders(&mut self, grace: Duration) {
        let all_done = async { while self.forwarders.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(grace, all_done).await;
    }

    /// Carries out one step. `Err` means the connection is gone.
    async fn apply(&mut self, step: Step, outbox: &Outbox) -> Result<(), Gone> {
        match step {
            Step::Nothing => Ok(()),
            Step::Reply(frame) => outbox.frame(&frame).await,
            Step::Authenticate { request_id, token } => {
                self.authenticate(request_id, &token, outbox).await
            }
            Step::Start { start, received_at } => self.start(start, received_at, outbox).await,
            Step::Cancel { request_id, run_id } => {
                let Some(identity) = &self.identity else {
                    return outbox.frame(&self.not_authenticated(request_id)).await;
                };
                match self.state.engine.cancel(&identity.principal, &run_id).await {
                    // The run's terminal `agent_cancelled` is the answer, on every connection
                    // that follows the run.
                    Ok(()) => Ok(()),
                    Err(err) => {
                        let frame = engine_error_frame(&err, request_id, Some(&run_id), &self.id);
                        outbox.frame(&frame).await
                    }
                }
            }
            Step::Resume {
                request_id,
                run_id,
                after_seq,
            } => {
                let Some(identity) = &self.identity else {
                    return outbox.frame(&self.not_authenticated(request_id)).await;
                };
                match self
                    .state
                    .engine
                    .follow(&identity.principal, &run_id, after_seq)
                    .await
                {
                    Ok(events) => {
                        self.spawn_forwarder(run_id, events, None, outbox);
                        Ok(())
                    }
                    Err(err) => {
                        let frame = engine_error_frame(&err, request_id, Some(&run_id), &self.id);
                        outbox.frame(&frame).await
                    }
                }
            }
        }
    }

    fn not_authenticated(&self, request_id: Option<String>) -> ServerFrame {
        auth_required(
            request_id,
            MessageContext {
                authenticated: false,
                max_frame_bytes: self.state.config.max_frame_bytes,
                query_token_ignored: self.query_token_ignored,
            },
        )
    }

    async fn authenticate(
        &mut self,
        request_id: Option<String>,
        token: &str,
        outbox: &Outbox,
    ) -> Result<(), Gone> {
        let verified = self.state.verifier.verify(token);
        match (verified, &self.identity) {
            (Err(err), _) => {
                tracing::info!(connection_id = %self.id, reason = %err, "authenticate refused");
                let code = match err.code() {
                    ErrorCode::AuthRequired => ErrorCode::AuthFailed,
                    code => code,
                };
                outbox
                    .frame(&error(code, err.to_string(), request_id))
                    .await
            }
            (Ok(identity), None) => {
                if self.user_permit.is_none() {
                    match self
                        .state
                        .limiter
                        .join(&identity.principal.user_id, Instant::now())
                    {
                        Ok(permit) => self.user_permit = Some(permit),
                        Err(err) => {
                            // The socket stays unauthenticated; the auth timeout still applies.
                            let mut frame = ErrorFrame::new(
                                ErrorCode::RateLimited,
                                err.to_string(),
                                request_id,
                            );
                            frame.retry_after_ms =
                                u64::try_from(err.retry_after().as_millis()).ok();
                            return outbox.frame(&ServerFrame::from(frame)).await;
                        }
                    }
                }
                self.identity = Some(identity);
                tracing::info!(connection_id = %self.id, user_id = %self.user_id(), "connection authenticated");
                self.send_established(outbox).await
            }
            (Ok(identity), Some(current))
                if identity.principal.user_id == current.principal.user_id
                    && identity.principal.tenant_id == current.principal.tenant_id =>
            {
                // Same caller (e.g. a refreshed token): keep the connection, refresh the scopes.
                self.identity = Some(identity);
                self.send_established(outbox).await
            }
            (Ok(_), Some(current)) => {
                let message = format!(
                    "this connection is already authenticated as {}; open a new connection to act as another user",
                    current.principal.user_id
                );
                outbox
                    .frame(&error(ErrorCode::AuthFailed, message, request_id))
                    .await
            }
        }
    }

    /// Sends `connection_established`. It carries no `request_id` (the protocol type has none):
    /// the reply to an `authenticate` is recognisable by its type.
    async fn send_established(&self, outbox: &Outbox) -> Result<(), Gone> {
        let Some(identity) = &self.identity else {
            return Ok(());
        };
        let frame =
            ServerFrame::Control(ControlFrame::ConnectionEstablished(ConnectionEstablished {
                connection_id: self.id.clone(),
                user_id: identity.principal.user_id.clone(),
                tenant_id: identity.principal.tenant_id.clone(),
                protocol: SUBPROTOCOL.to_owned(),
                server_version: crate::VERSION.to_owned(),
                agents: AgentKind::ALL
                    .iter()
                    .map(|kind| kind.as_str().to_owned())
                    .collect(),
                limits: Limits {
                    max_frame_bytes: self.state.config.max_frame_bytes,
                    max_concurrent_runs: self.state.engine.config().max_concurrent_runs_per_user,
                },
                timestamp: agentwire_protocol::time::now(),
            }));
        outbox.frame(&frame).await
    }

    async fn start(
        &mut self,
        start: StartRun,
        received_at: Instant,
        outbox: &Outbox,
    ) -> Result<(), Gone> {
        let request_id = start.id.clone();
        let Some(identity) = &self.identity else {
            return outbox.frame(&self.not_authenticated(request_id)).await;
        };
        if let Err(message) = check_start_fields(&start, self.state.config.max_user_request_bytes) {
            return outbox
                .frame(&error(ErrorCode::InvalidMessage, message, request_id))
                .await;
        }
        match self
            .state
            .engine
            .start_run(&identity.principal, start)
            .await
        {
            Ok(started) => {
                let accepted = ServerFrame::Control(ControlFrame::RunAccepted(RunAccepted {
                    request_id,
                    run_id: started.run_id.clone(),
                    thread_id: started.thread_id.clone(),
                    agent_type: started.agent.as_str().to_owned(),
                    timestamp: agentwire_protocol::time::now(),
                }));
                // Queued before the forwarder exists, so it precedes the first event.
                outbox.frame(&accepted).await?;
                self.spawn_forwarder(started.run_id, started.events, Some(received_at), outbox);
                Ok(())
            }
            Err(err) => {
                let frame = engine_error_frame(&err, request_id, None, &self.id);
                outbox.frame(&frame).await
            }
        }
    }

    fn spawn_forwarder(
        &mut self,
        run_id: String,
        events: EventStream,
        received_at: Option<Instant>,
        outbox: &Outbox,
    ) {
        if let Some((_, previous)) = self.following.remove(&run_id) {
            previous.abort();
        }
        let handle = self.forwarders.spawn(forward_run(
            run_id.clone(),
            events,
            received_at,
            outbox.clone(),
        ));
        self.following.insert(run_id, (handle.id(), handle));
    }
}

/// Pulls one run's events and queues them, until the terminal event or the connection's end.
/// Returns the run id so the reader can forget the forwarder.
async fn forward_run(
    run_id: String,
    mut events: EventStream,
    received_at: Option<Instant>,
    outbox: Outbox,
) -> String {
    let mut first_of_run = received_at;
    while let Some(event) = events.next().await {
        if outbox
            .send(Outbound::event(event, first_of_run.take()))
            .await
            .is_err()
        {
            break;
        }
    }
    run_id
}

/// Whether a read error is the library refusing a frame over its size limit.
fn is_too_big(err: &axum::Error) -> bool {
    tungstenite_error(err).is_some_and(|err| {
        matches!(
            err,
            tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong { .. })
        )
    })
}

/// Whether a read error is a text frame that is not UTF-8.
fn is_invalid_utf8(err: &axum::Error) -> bool {
    tungstenite_error(err).is_some_and(|err| matches!(err, tungstenite::Error::Utf8(_)))
}

fn tungstenite_error(err: &axum::Error) -> Option<&tungstenite::Error> {
    std::error::Error::source(err)?.downcast_ref::<tungstenite::Error>()
}

#[cfg(test)]
mod tests {
    #![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
    use super::*;
    use serde_json::Value;

    fn ctx(authenticated: bool) -> MessageContext {
        MessageContext {
            authenticated,
            max_frame_bytes: 1024,
            query_token_ignored: false,
        }
    }

    fn reply(flow: ControlFlow<Closing, Step>) -> Value {
        match flow {
            ControlFlow::Continue(Step::Reply(frame)) => {
                serde_json::from_str(&frame.to_json()).unwrap()
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn text(s: &str) -> Message {
        Message::Text(s.into())
    }

    #[test]
    fn ping_is_answered_with_its_request_id_even_before_auth() {
        let value = reply(process_message(
            text(r#"{"type":"ping","id":"p1"}"#),
            ctx(false),
        ));
        assert_eq!(value["type"], "pong");
        assert_eq!(value["request_id"], "p1");
        assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn unauthenticated_start_gets_auth_required() {
        let value = reply(process_message(
            text(r#"{"type":"start_agent","id":"s1","payload":{"user_request":"hi"}}"#),
            ctx(false),
        ));
        assert_eq!(value["error_code"], "AUTH_REQUIRED");
        assert_eq!(value["request_id"], "s1");
        for frame in [
            r#"{"type":"cancel","id":"c1","run_id":"r"}"#,
            r#"{"type":"resume","id":"c1","run_id":"r"}"#,
            // Malformed, but clearly a start: still AUTH_REQUIRED.
            r#"{"type":"start_agent","id":"c1","payload":{"user_request":"x","agent_type":"nope"}}"#,
        ] {
            let value = reply(process_message(text(frame), ctx(false)));
            assert_eq!(value["error_code"], "AUTH_REQUIRED", "{frame}");
            assert_eq!(value["request_id"], "c1", "{frame}");
        }
    }

    #[test]
    fn query_token_hint() {
        let mut context = ctx(false);
        context.query_token_ignored = true;
        let value = reply(process_message(
            text(r#"{"type":"start_agent","payload":{"user_request":"hi"}}"#),
            context,
        ));
        assert!(value["message"].as_str().unwrap().contains("query string"));
    }

    #[test]
    fn authenticate_is_passed_on() {
        match process_message(
            text(r#"{"type":"authenticate","token":"t","id":"a"}"#),
            ctx(false),
        ) {
            ControlFlow::Continue(Step::Authenticate { request_id, token }) => {
                assert_eq!(request_id.as_deref(), Some("a"));
                assert_eq!(token, "t");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn authenticated_messages_become_steps() {
        assert!(matches!(
            process_message(
                text(r#"{"type":"start_agent","payload":{"user_request":"hi"}}"#),
                ctx(true)
            ),
            ControlFlow::Continue(Step::Start { .. })
        ));
        assert!(matches!(
            process_message(text(r#"{"type":"cancel","run_id":"r"}"#), ctx(true)),
            ControlFlow::Continue(Step::Cancel { .. })
        ));
        match process_message(
            text(r#"{"type":"resume","run_id":"r","after_seq":4}"#),
            ctx(true),
        ) {
            ControlFlow::Continue(Step::Resume { after_seq, .. }) => assert_eq!(after_seq, 4),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parse_errors_keep_their_code_and_request_id() {
        let value = reply(process_message(text("{not json"), ctx(true)));
        assert_eq!(value["error_code"], "INVALID_MESSAGE");
        let value = reply(process_message(
            text(
                r#"{"type":"start_agent","id":"n","payload":{"user_request":"x","agent_type":"nonexistent_agent"}}"#,
            ),
            ctx(true),
        ));
        assert_eq!(value["error_code"], "AGENT_NOT_FOUND");
        assert_eq!(value["request_id"], "n");
        let value = reply(process_message(text(r#"{"type":"launch"}"#), ctx(false)));
        assert_eq!(value["error_code"], "UNKNOWN_MESSAGE_TYPE");
    }

    #[test]
    fn binary_frames_are_refused_but_do_not_close() {
        let value = reply(process_message(
            Message::Binary(Bytes::from_static(b"\x00\x01")),
            ctx(true),
        ));
        assert_eq!(value["error_code"], "INVALID_MESSAGE");
    }

    #[test]
    fn oversized_frames_close() {
        let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(2000));
        match process_message(text(&big), ctx(true)) {
            ControlFlow::Break(Closing::TooBig(frame)) => {
                assert_eq!(frame.error_code, ErrorCode::PayloadTooLarge);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            process_message(Message::Binary(Bytes::from(vec![0u8; 2000])), ctx(true)),
            ControlFlow::Break(Closing::TooBig(_))
        ));
    }

    #[test]
    fn close_and_protocol_frames() {
        assert!(matches!(
            process_message(Message::Close(None), ctx(true)),
            ControlFlow::Break(Closing::ClientClosed)
        ));
        assert!(matches!(
            process_message(Message::Pong(Bytes::new()), ctx(false)),
            ControlFlow::Continue(Step::Nothing)
        ));
    }

    #[test]
    fn library_limit_leaves_room_to_answer() {
        assert!(library_limit(1 << 20) > 1 << 20);
        assert!(library_limit(10) >= 10 + 64 * 1024);
        assert_eq!(library_limit(usize::MAX), usize::MAX);
    }

    #[test]
    fn library_capacity_errors_are_recognised() {
        let err = axum::Error::new(tungstenite::Error::Capacity(
            tungstenite::error::CapacityError::MessageTooLong {
                size: 10,
                max_size: 5,
            },
        ));
        assert!(is_too_big(&err));
        assert!(!is_invalid_utf8(&err));
        assert!(!is_too_big(&axum::Error::new(
            tungstenite::Error::ConnectionClosed
        )));
        let utf8 = axum::Error::new(tungstenite::Error::Utf8("\u{fffd}".into()));
        assert!(is_invalid_utf8(&utf8));
        assert!(!is_too_big(&utf8));
    }

    fn start(user_request: &str, thread_id: Option<&str>) -> StartRun {
        match ClientMessage::parse(
            &serde_json::json!({
                "type": "start_agent",
                "payload": {"user_request": user_request, "thread_id": thread_id}
            })
            .to_string(),
        )
        .unwrap()
        {
            ClientMessage::StartRun(start) => start,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_fields_are_held_to_their_limits() {
        assert!(check_start_fields(&start("what did we spend?", None), 64).is_ok());
        let long = start(&"x".repeat(65), None);
        let message = check_start_fields(&long, 64).unwrap_err();
        assert!(
            message.contains("65 bytes") && message.contains("64 bytes"),
            "{message}"
        );
        assert!(check_start_fields(&start("q", Some("thread-1")), 64).is_ok());
        for bad in ["   ", "a\u{0}b", &"t".repeat(MAX_THREAD_ID_CHARS + 1)] {
            let message = check_start_fields(&start("q", Some(bad)), 64).unwrap_err();
            assert!(message.contains("thread_id"), "{message}");
        }
    }

    #[test]
    fn request_ids_are_read_from_frames_that_are_not_interpreted() {
        assert_eq!(
            frame_request_id(r#"{"id":"a1","type":"x"}"#).as_deref(),
            Some("a1")
        );
        assert_eq!(frame_request_id(r#"{"id":7}"#).as_deref(), Some("7"));
        assert_eq!(frame_request_id(r#"{"id":[1]}"#), None);
        assert_eq!(frame_request_id("not json"), None);
        // Skipping a value does not recurse: nesting as deep as a 1 MiB frame allows is harmless.
        let deep = format!(
            "{{\"id\":\"d\",\"x\":{}{}}}",
            "[".repeat(500_000),
            "]".repeat(500_000)
        );
        assert_eq!(frame_request_id(&deep).as_deref(), Some("d"));
        let long = format!("{{\"id\":\"{}\"}}", "i".repeat(1000));
        assert_eq!(frame_request_id(&long).unwrap().len(), 128);
    }

    #[test]
    fn rate_limited_frames_carry_the_request_id_and_when_to_retry() {
        let limited = RateLimited {
            scope: crate::limits::RateScope::Connection,
            retry_after: Duration::from_millis(250),
            per_second: 20,
        };
        let frame = rate_limited_frame(&limited, &text(r#"{"type":"ping","id":"p9"}"#));
        let value: Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(value["error_code"], "RATE_LIMITED");
        assert_eq!(value["request_id"], "p9");
        assert_eq!(value["retry_after_ms"], 250);
        assert_eq!(value["retryable"], true);
    }

    #[test]
    fn engine_errors_become_error_frames() {
        let frame = engine_error_frame(
            &EngineError::RunConflict {
                run_id: "run_9".into(),
            },
            Some("q".into()),
            None,
            "conn",
        );
        let value: Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(value["error_code"], "RUN_CONFLICT");
        assert_eq!(value["run_id"], "run_9");
        assert_eq!(value["request_id"], "q");

        let frame = engine_error_frame(
            &EngineError::TooManyRuns {
                limit: 8,
                retry_after_ms: 1500,
            },
            None,
            None,
            "conn",
        );
        let value: Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(value["retry_after_ms"], 1500);

        let frame = engine_error_frame(
            &EngineError::Internal("secret detail".into()),
            None,
            None,
            "conn",
        );
        let value: Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(value["error_code"], "INTERNAL");
        assert!(!value["message"].as_str().unwrap().contains("secret"));
        assert!(
            value["message"]
                .as_str()
                .unwrap()
                .contains("correlation id")
        );
    }
}
