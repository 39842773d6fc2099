//! One socket from upgrade to close: the reader loop, its timers (auth timeout, token expiry,
//! protocol pings, shutdown), the forwarders of the runs it follows (at most
//! `max_followed_runs`), and carrying out each [`Decision`].
//!
//! A connection lives as long as its newest token: when the token's `exp` plus the configured
//! leeway passes, the client gets `AUTH_EXPIRED` and close 4401, unless it sent `authenticate`
//! with a fresh token for the same user and tenant before (which moves the deadline).
//!
//! The reader asks [`super::decide`] what a frame means, calls the engine, and queues the answers
//! through the [`Outbox`]; however it ends, the close the server sends goes through
//! [`Outbox::close`] in one place, [`Connection::run`]. This file must not build error messages
//! (see [`super::error_frames`]), write to the socket directly, or cancel a run because its socket
//! went away.

use super::decide::{self, Closing, Decision, MessageContext};
use super::error_frames;
use super::outbox::{Close, Gone, Outbound, Outbox};
use crate::AppState;
use crate::auth::Identity;
use crate::limits::{
    self, AnonymousPermit, ConnectionPermit, RateLimited, TokenBucket, UserPermit,
};
use agentwire_engine::{EngineError, EventStream};
use agentwire_protocol::server::{ControlFrame, RunAccepted};
use agentwire_protocol::{
    AgentKind, ConnectionEstablished, ErrorCode, ErrorFrame, Limits, SUBPROTOCOL, ServerFrame,
    StartRun,
};
use axum::extract::ws::Message;
use futures_util::{Sink, Stream, StreamExt};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::{AbortHandle, JoinSet};

/// On shutdown, how long a socket waits for its forwarders to deliver the terminal events the
/// engine just persisted before it closes.
const FORWARDER_FLUSH_GRACE: Duration = Duration::from_secs(2);

/// How long a closing connection waits for its writer to flush the last frames.
const WRITER_FLUSH_GRACE: Duration = Duration::from_secs(2);

/// After the server sent a close frame, how long it keeps the TCP connection open so the client
/// can read the last frames and answer the close. Dropping the socket at once could reset it while
/// the client still has our final `error` frame unread.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

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
    AuthExpired,
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
            Self::AuthExpired => "token expired",
            Self::PingTimeout => "no answer to pings",
            Self::SlowClient => "client not reading",
            Self::Shutdown => "server shutdown",
            Self::InvalidUtf8 => "text frame not UTF-8",
        }
    }

    /// The close the server sends for this ending; `None` when the client or the network ended
    /// the connection and there is nobody to tell.
    fn close(self) -> Option<Close> {
        match self {
            Self::TooBig { .. } => Some(Close::TOO_BIG),
            Self::AuthTimeout => Some(Close::AUTH_TIMEOUT),
            Self::AuthExpired => Some(Close::AUTH_EXPIRED),
            Self::Shutdown => Some(Close::GOING_AWAY),
            Self::InvalidUtf8 => Some(Close::INVALID_PAYLOAD),
            Self::ClientClosed | Self::SocketError | Self::PingTimeout | Self::SlowClient => None,
        }
    }
}

/// How the reader stopped: the ending, and the error frame that tells the client why, sent just
/// before the close.
#[derive(Debug)]
struct Ending {
    end: End,
    last_word: Option<ErrorFrame>,
}

impl From<End> for Ending {
    fn from(end: End) -> Self {
        Self {
            end,
            last_word: None,
        }
    }
}

impl From<Closing> for Ending {
    fn from(closing: Closing) -> Self {
        let (end, last_word) = match closing {
            Closing::ClientClosed => (End::ClientClosed, None),
            Closing::SocketError => (End::SocketError, None),
            Closing::TooBig {
                frame,
                library_refused,
            } => (End::TooBig { library_refused }, Some(frame)),
            Closing::InvalidUtf8(frame) => (End::InvalidUtf8, Some(frame)),
        };
        Self { end, last_word }
    }
}

/// The reader side of one socket, with everything it owns.
pub(super) struct Connection {
    state: AppState,
    id: String,
    identity: Option<Identity>,
    query_token_ignored: bool,
    /// This connection's place among `max_connections`, given back when the connection ends.
    _connection_permit: ConnectionPermit,
    /// The user's place among their `max_connections_per_user`, with their shared message
    /// bucket; taken when the connection authenticates.
    user_permit: Option<UserPermit>,
    /// The peer address's place among its unauthenticated sockets; given back on authenticating.
    anonymous_permit: Option<AnonymousPermit>,
    /// This connection's own message bucket.
    bucket: TokenBucket,
    forwarders: JoinSet<String>,
    /// The forwarder of each run this connection follows, so a second `resume` of the same run
    /// replaces the first instead of sending every event twice.
    following: HashMap<String, (tokio::task::Id, AbortHandle)>,
    /// One clone per forwarder still forwarding: its place among `max_followed_runs`. A
    /// forwarder gives it back before it queues the terminal event, so a client that sees a run
    /// end may follow another at once.
    places: Arc<()>,
}

impl Connection {
    pub(super) fn new(
        state: AppState,
        identity: Option<Identity>,
        query_token_ignored: bool,
        connection_permit: ConnectionPermit,
        user_permit: Option<UserPermit>,
        anonymous_permit: Option<AnonymousPermit>,
    ) -> Self {
        let bucket = connection_permit.bucket(Instant::now());
        Self {
            state,
            id: format!("conn_{}", uuid::Uuid::new_v4().simple()),
            identity,
            query_token_ignored,
            _connection_permit: connection_permit,
            user_permit,
            anonymous_permit,
            bucket,
            forwarders: JoinSet::new(),
            following: HashMap::new(),
            places: Arc::new(()),
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

    fn token_expiry(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.identity.as_ref()?.expires_at
    }

    /// When the connection's token stops being good: its `exp` plus the leeway. `None` before
    /// authentication.
    fn token_deadline(&self) -> Option<tokio::time::Instant> {
        let expires_at = self.identity.as_ref()?.expires_at?;
        let leeway = i64::try_from(self.state.config.jwt.leeway_s).unwrap_or(i64::MAX);
        let left_ms = expires_at
            .timestamp_millis()
            .saturating_add(leeway.saturating_mul(1000))
            .saturating_sub(chrono::Utc::now().timestamp_millis());
        let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
        Some(tokio::time::Instant::now() + left)
    }

    fn user_id(&self) -> &str {
        self.identity
            .as_ref()
            .map_or("-", |identity| identity.principal.user_id.as_str())
    }

    /// Serves the socket until it closes. Runs the connection follows keep running afterwards.
    pub(super) async fn run<S>(mut self, socket: S)
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
        let (outbox, writer) = Outbox::open(
            sink,
            self.state.config.outbound_queue,
            self.state.config.slow_client_timeout,
            metrics.clone(),
        );

        let Ending { end, last_word } = self.read_loop(&mut stream, &outbox).await;
        // The one place the server closes a socket.
        if let Some(close) = end.close() {
            outbox.close(last_word, close).await;
        }

        // Forwarders stop with the socket; their runs go on.
        self.forwarders.abort_all();
        self.following.clear();
        drop(outbox);
        writer.finish(WRITER_FLUSH_GRACE).await;
        match end {
            // The stream is stuck inside the oversized frame; only keep the socket open.
            End::TooBig {
                library_refused: true,
            } => tokio::time::sleep(CLOSE_LINGER).await,
            // We sent a close frame on a healthy stream: wait for the client's answer.
            end if end.close().is_some() => {
                let answered = async { while let Some(Ok(_)) = stream.next().await {} };
                let _ = tokio::time::timeout(CLOSE_LINGER, answered).await;
            }
            _ => {}
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

    async fn read_loop<S>(&mut self, stream: &mut S, outbox: &Outbox) -> Ending
    where
        S: Stream<Item = Result<Message, axum::Error>> + Unpin,
    {
        let config = self.state.config.clone();
        let lifecycle = self.state.lifecycle.clone();
        if self.identity.is_some() && self.send_established(outbox).await.is_err() {
            return End::SlowClient.into();
        }
        let auth_deadline = tokio::time::sleep(config.auth_timeout);
        tokio::pin!(auth_deadline);
        let ping_interval = config.ping_interval.max(Duration::from_millis(10));
        let mut pings =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_seen = Instant::now();
        let mut draining = false;
        // The token the expiry timer is armed for; re-armed when `authenticate` brings another.
        let mut armed_for = self.token_expiry();
        let expiry = tokio::time::sleep_until(
            self.token_deadline()
                .unwrap_or_else(tokio::time::Instant::now),
        );
        tokio::pin!(expiry);

        loop {
            tokio::select! {
                () = outbox.disconnected() => return End::SlowClient.into(),
                () = lifecycle.close.cancelled() => {
                    self.finish_forwarders(FORWARDER_FLUSH_GRACE).await;
                    return End::Shutdown.into();
                }
                () = lifecycle.drain.cancelled(), if !draining => {
                    // Finish what is in flight, then go away; new runs are refused by the engine.
                    draining = true;
                    if self.forwarders.is_empty() {
                        return End::Shutdown.into();
                    }
                }
                () = &mut auth_deadline, if self.identity.is_none() => {
                    return Ending {
                        end: End::AuthTimeout,
                        last_word: Some(error_frames::auth_timeout(config.auth_timeout)),
                    };
                }
                () = &mut expiry, if armed_for.is_some() => {
                    return Ending {
                        end: End::AuthExpired,
                        last_word: Some(error_frames::auth_expired(config.jwt.leeway_s)),
                    };
                }
                _ = pings.tick() => {
                    if last_seen.elapsed() >= ping_interval * 2 {
                        return End::PingTimeout.into();
                    }
                    if outbox.send(Outbound::Ping).await.is_err() {
                        return End::SlowClient.into();
                    }
                }
                Some(joined) = self.forwarders.join_next_with_id(), if !self.forwarders.is_empty() => {
                    if let Ok((task_id, run_id)) = joined
                        && self.following.get(&run_id).is_some_and(|(id, _)| *id == task_id)
                    {
                        self.following.remove(&run_id);
                    }
                    if draining && self.forwarders.is_empty() {
                        return End::Shutdown.into();
                    }
                }
                received = stream.next() => {
                    let msg = match received {
                        None => return End::ClientClosed.into(),
                        Some(Ok(msg)) => msg,
                        Some(Err(err)) => {
                            return decide::process_read_error(&err, config.max_frame_bytes).into();
                        }
                    };
                    last_seen = Instant::now();
                    if let Err(limited) = self.check_rate(&msg, config.max_frame_bytes, last_seen) {
                        let frame = error_frames::rate_limited(&limited, &msg);
                        if outbox.frame(&frame).await.is_err() {
                            return End::SlowClient.into();
                        }
                        continue;
                    }
                    let ctx = MessageContext {
                        authenticated: self.identity.is_some(),
                        max_frame_bytes: config.max_frame_bytes,
                        query_token_ignored: self.query_token_ignored,
                    };
                    match decide::process_message(msg, ctx) {
                        ControlFlow::Continue(decision) => {
                            if self.apply(decision, outbox).await.is_err() {
                                return End::SlowClient.into();
                            }
                            if self.token_expiry() != armed_for {
                                armed_for = self.token_expiry();
                                if let Some(due) = self.token_deadline() {
                                    expiry.as_mut().reset(due);
                                }
                            }
                        }
                        ControlFlow::Break(closing) => return closing.into(),
                    }
                }
            }
        }
    }

    /// Waits, up to `grace`, for the forwarders to deliver what their runs still have.
    async fn finish_forwarders(&mut self, grace: Duration) {
        let all_done = async { while self.forwarders.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(grace, all_done).await;
    }

    /// Carries out one decision. `Err` means the connection is gone.
    async fn apply(&mut self, decision: Decision, outbox: &Outbox) -> Result<(), Gone> {
        match decision {
            Decision::Nothing => Ok(()),
            Decision::Reply(frame) => outbox.frame(&frame).await,
            Decision::Authenticate { request_id, token } => {
                self.authenticate(request_id, &token, outbox).await
            }
            Decision::Start { start, received_at } => self.start(start, received_at, outbox).await,
            Decision::Cancel { request_id, run_id } => {
                let Some(identity) = &self.identity else {
                    return outbox.frame(&self.not_authenticated(request_id)).await;
                };
                match self.state.engine.cancel(&identity.principal, &run_id).await {
                    // The run's terminal `agent_cancelled` is the answer, on every connection
                    // that follows the run.
                    Ok(()) => Ok(()),
                    Err(err) => self.refused(&err, request_id, Some(&run_id), outbox).await,
                }
            }
            Decision::Resume {
                request_id,
                run_id,
                after_seq,
            } => {
                let Some(identity) = &self.identity else {
                    return outbox.frame(&self.not_authenticated(request_id)).await;
                };
                // A second `resume` of a followed run replaces its forwarder: no new place.
                if !self.following.contains_key(&run_id)
                    && let Some(frame) = self.too_many_followed(request_id.clone())
                {
                    return outbox.frame(&frame).await;
                }
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
                    Err(err) => self.refused(&err, request_id, Some(&run_id), outbox).await,
                }
            }
        }
    }

    /// `RATE_LIMITED` when the socket already follows `max_followed_runs` runs.
    fn too_many_followed(&self, request_id: Option<String>) -> Option<ServerFrame> {
        let limit = self.state.config.max_followed_runs;
        // One count is the connection's own; the others are forwarders'.
        (Arc::strong_count(&self.places) > limit)
            .then(|| error_frames::too_many_followed(limit, request_id))
    }

    fn not_authenticated(&self, request_id: Option<String>) -> ServerFrame {
        error_frames::auth_required(request_id, self.query_token_ignored)
    }

    /// Tells the client the engine refused its request.
    async fn refused(
        &self,
        err: &EngineError,
        request_id: Option<String>,
        run_id: Option<&str>,
        outbox: &Outbox,
    ) -> Result<(), Gone> {
        let frame = error_frames::engine_refusal(err, request_id, run_id, &self.id);
        outbox.frame(&frame).await
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
                outbox
                    .frame(&error_frames::auth_refused(&err, request_id))
                    .await
            }
            (Ok(identity), None) => {
                if self.user_permit.is_none() {
                    match self.state.limiter.join(&identity.principal, Instant::now()) {
                        Ok(permit) => self.user_permit = Some(permit),
                        Err(err) => {
                            // The socket stays unauthenticated; the auth timeout still applies.
                            return outbox
                                .frame(&error_frames::connection_cap(&err, request_id))
                                .await;
                        }
                    }
                }
                self.identity = Some(identity);
                self.anonymous_permit = None;
                tracing::info!(connection_id = %self.id, user_id = %self.user_id(), "connection authenticated");
                self.send_established(outbox).await
            }
            (Ok(identity), Some(current))
                if identity.principal.user_id == current.principal.user_id
                    && identity.principal.tenant_id == current.principal.tenant_id =>
            {
                // Same caller (e.g. a refreshed token): keep the connection, refresh the scopes
                // and the expiry (the reader re-arms its timer after this).
                self.identity = Some(identity);
                self.send_established(outbox).await
            }
            (Ok(_), Some(current)) => {
                let frame =
                    error_frames::already_authenticated(&current.principal.user_id, request_id);
                outbox.frame(&frame).await
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
        if let Err(message) =
            decide::check_start_fields(&start, self.state.config.max_user_request_bytes)
        {
            let frame = error_frames::error(ErrorCode::InvalidMessage, message, request_id);
            return outbox.frame(&frame).await;
        }
        if let Some(frame) = self.too_many_followed(request_id.clone()) {
            return outbox.frame(&frame).await;
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
            Err(err) => self.refused(&err, request_id, None, outbox).await,
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
            self.places.clone(),
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
    place: Arc<()>,
) -> String {
    let mut first_of_run = received_at;
    let mut place = Some(place);
    while let Some(frame) = events.next_frame().await {
        if frame.is_terminal() {
            drop(place.take());
        }
        if outbox
            .send(Outbound::event(&frame, first_of_run.take()))
            .await
            .is_err()
        {
            break;
        }
    }
    run_id
}
