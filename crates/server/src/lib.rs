//! The agentwire server: HTTP and WebSocket in front of the engine.
//!
//! Layout:
//! - [`config`]: settings ([`ServerConfig`], [`JwtConfig`]) with the protocol's defaults.
//! - `accept`: the accept loop: every TCP connection, its TLS handshake, header and idle
//!   timeouts, the cap on connections, graceful shutdown of HTTP connections.
//! - [`tls`]: the certificate and key `serve --tls-cert --tls-key` terminates TLS with.
//! - [`agui`]: the AG-UI endpoints: `RunAgentInput` in, Server-Sent Events of AG-UI events out,
//!   resume by `Last-Event-ID`, cancel.
//! - [`auth`]: JWT verification (`mod.rs`) and where tokens come from (`credentials.rs`: header,
//!   subprotocol; the first frame is read in [`ws`]).
//! - [`ws`]: `GET /ws`, one file per job: the upgrade, the decision about each client frame, the
//!   error frames, the outbound queue and its writer (with the one way to close a socket), and the
//!   connection loop with one forwarder per followed run.
//! - [`http`]: health, metrics, the API index, the agent registry, usage ingest, the routing
//!   fallbacks.
//! - [`history`]: what clients read back: `/api/threads`, `/api/threads/{id}`,
//!   `/api/runs/{id}/events`.
//! - [`limits`]: message rates (token buckets per connection and per user) and connection caps.
//! - [`security`]: security headers, the CORS allow-list, the WebSocket origin rule.
//! - [`error`]: [`AppError`], the one HTTP error type, the one rule for which engine errors are
//!   internal, and the logging middleware.
//! - [`metrics`]: counters rendered in the Prometheus text format.
//! - [`web`]: the chat page at `/` with its embedded assets, and the demo token.
//!
//! This crate knows sockets and HTTP, not agents: every run goes through
//! [`agentwire_engine::Engine`], and no SQL lives here.
//!
//! Use: build an [`Engine`], then [`AppState::new`], bind a listener and call [`serve`] with a
//! shutdown future (usually [`shutdown_signal`]). Tests do the same on `127.0.0.1:0`.
//!
//! Shutdown (see [`serve`]): stop accepting, mark draining (`/health/ready` answers 503), let open
//! sockets finish their runs while new runs are refused, give the engine `drain_timeout` to finish
//! or stop the runs, then close the remaining sockets with 1001.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod accept;
pub mod agui;
pub mod auth;
pub mod config;
pub mod error;
pub mod history;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod security;
pub mod tls;
pub mod web;
pub mod ws;

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers for the unit tests of more than one module. Test-only; nothing here ships.

    use axum::http::{HeaderMap, HeaderName, HeaderValue};

    /// A header map from name/value pairs; a repeated name keeps every value, in order.
    pub(crate) fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }
}

pub use accept::listen;
pub use auth::{AuthConfigError, AuthError, Identity, JwtVerifier};
pub use config::{DEV_JWT_SECRET, JwtConfig, JwtKey, RateLimit, ServerConfig};
pub use error::AppError;
pub use metrics::Metrics;
pub use tls::{TlsError, TlsSettings};

use agentwire_engine::Engine;
use axum::Router;
use axum::routing::{get, post};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The server's version, as sent in `connection_established` and `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// After the engine has stopped, how long [`serve`] waits for sockets to send their last frames
/// and close.
const SOCKET_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Everything a handler or connection needs. Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub verifier: Arc<JwtVerifier>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    /// For `uptime_s`.
    pub started_at: Instant,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Connection caps and per-user message buckets (see [`limits`]).
    pub limiter: Arc<limits::Limiter>,
    /// Usage uploads in progress, at most `max_concurrent_uploads` (see [`limits::UploadSlots`]).
    pub uploads: limits::UploadSlots,
}

/// Shutdown coordination between [`serve`] and the sockets.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// Cancelled when shutdown starts: readiness fails, no new sockets, open sockets finish their
    /// runs and go away.
    pub(crate) drain: CancellationToken,
    /// Cancelled once the engine has stopped every run: remaining sockets close with 1001.
    pub(crate) close: CancellationToken,
    /// Open sockets, so that shutdown can wait for them.
    pub(crate) sockets: Arc<SocketCount>,
}

/// Counts open sockets; each socket task holds a [`SocketGuard`].
#[derive(Debug)]
pub(crate) struct SocketCount(watch::Sender<usize>);

impl Default for SocketCount {
    fn default() -> Self {
        Self(watch::Sender::new(0))
    }
}

impl SocketCount {
    pub(crate) fn enter(self: &Arc<Self>) -> SocketGuard {
        self.0.send_modify(|n| *n += 1);
        SocketGuard(self.clone())
    }

    pub(crate) fn len(&self) -> usize {
        *self.0.borrow()
    }

    /// Completes when no socket is open.
    pub(crate) async fn wait_idle(&self) {
        let mut rx = self.0.subscribe();
        // `wait_for` fails only when the sender is dropped, and `self` holds it.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Keeps a socket counted until dropped.
#[derive(Debug)]
pub(crate) struct SocketGuard(Arc<SocketCount>);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.0.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("verifier", &self.verifier)
            .field("started_at", &self.started_at)
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Builds the state from an engine and settings.
    ///
    /// # Errors
    /// When the JWT settings are unusable (empty secret, bad PEM key, key of the wrong kind).
    pub fn new(engine: Engine, config: ServerConfig) -> Result<AppState, AuthConfigError> {
        let verifier = JwtVerifier::new(&config.jwt)?;
        if config.jwt.uses_dev_secret() {
            tracing::warn!(
                "JWT: using the built-in development secret; anyone can mint tokens for this server. Configure a secret or a public key for real use"
            );
        }
        let limiter = limits::Limiter::new(limits::LimitSettings {
            max_connections: config.max_connections,
            max_connections_per_user: config.max_connections_per_user,
            max_unauthenticated_per_ip: config.max_unauthenticated_per_ip,
            connection_rate: config.connection_rate,
            user_rate: config.user_rate,
        });
        let uploads = limits::UploadSlots::new(config.max_concurrent_uploads);
        Ok(AppState {
            uploads,
            engine,
            verifier: Arc::new(verifier),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            started_at: Instant::now(),
            lifecycle: Arc::new(Lifecycle::default()),
            limiter,
        })
    }

    /// Whether shutdown has started.
    pub fn is_draining(&self) -> bool {
        self.lifecycle.drain.is_cancelled()
    }
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/assets/{file}", get(web::asset))
        .route("/api/threads", get(history::threads))
        .route("/api/threads/{thread_id}", get(history::thread))
        .route("/api/runs/{run_id}/events", get(history::run_events))
        .route("/api/demo/token", post(web::demo_token))
        .route("/api/agui", post(agui::run_supervisor))
        .route("/api/agui/{agent_type}", post(agui::run_agent))
        .route("/api/agui/runs/{run_id}/events", get(agui::resume))
        .route("/api/agui/runs/{run_id}/cancel", post(agui::cancel))
        .route("/ws", get(ws::upgrade))
        .route("/health", get(http::health))
        .route("/api/health", get(http::health))
        .route("/health/live", get(http::live))
        .route("/health/ready", get(http::ready))
        .route("/metrics", get(http::metrics))
        .route("/api", get(http::api_index))
        .route("/api/agents", get(http::agents))
        .route("/api/usage", post(http::ingest_usage))
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        // Every body extractor is held to the configured limit, not axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::security_headers,
        ))
        .layer(axum::middleware::from_fn(error::log_errors))
        .with_state(state)
}

/// Serves until `shutdown` completes, then shuts down gracefully.
///
/// Sequence on shutdown: stop accepting connections and mark the server draining (readiness
/// 503); open sockets keep forwarding their runs' events, new runs are refused, and a socket with
/// nothing in flight closes with 1001; [`Engine::shutdown`] gets `drain_timeout` to let runs finish
/// and stops the rest with terminal events; then every remaining socket gets those last events
/// and a 1001 close, and this returns.
///
/// # Errors
/// When the listener fails before shutdown was asked for.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let lifecycle = state.lifecycle.clone();
    let addr = listener.local_addr()?;
    let config = &state.config;
    let settings = accept::AcceptSettings {
        max_tcp_connections: config.max_tcp_connections,
        header_timeout: config.http_header_timeout,
        idle_timeout: config.http_idle_timeout,
        tls: config.tls.clone(),
        limiter: state.limiter.clone(),
    };
    let server = accept::accept_loop(
        listener,
        router(state.clone()),
        settings,
        lifecycle.drain.clone(),
    );
    let mut server = tokio::spawn(async move {
        server.await;
        Ok::<(), std::io::Error>(())
    });
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, version = VERSION, scheme, "agentwire listening");

    tokio::select! {
        () = shutdown => {}
        joined = &mut server => {
            // The server stopped on its own: a listener failure.
            lifecycle.drain.cancel();
            lifecycle.close.cancel();
            return flatten(joined);
        }
    }

    tracing::info!(
        drain_timeout_ms =
            u64::try_from(state.config.drain_timeout.as_millis()).unwrap_or(u64::MAX),
        connections = state.metrics.connections_active(),
        "shutting down: draining"
    );
    lifecycle.drain.cancel();
    state.engine.shutdown(state.config.drain_timeout).await;
    tracing::info!("engine stopped; closing sockets");
    lifecycle.close.cancel();
    if tokio::time::timeout(SOCKET_CLOSE_GRACE, lifecycle.sockets.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = lifecycle.sockets.len(),
            "sockets did not close in time"
        );
    }
    match tokio::time::timeout(SOCKET_CLOSE_GRACE, &mut server).await {
        Ok(joined) => flatten(joined)?,
        Err(_) => {
            tracing::warn!("HTTP connections did not finish in time");
            server.abort();
        }
    }
    tracing::info!("shutdown complete");
    Ok(())
}

fn flatten(joined: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    joined.map_err(std::io::Error::other)?
}

/// A future that completes on Ctrl-C or, on Unix, SIGTERM.
///
/// The handlers are installed when this is called, not when the future is first polled: a caller
/// that announces it is serving only after calling this cannot be killed by a SIGTERM that
/// arrives before the server task gets to run (the default action of SIGTERM ends the process).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let wait = |stream: std::io::Result<tokio::signal::unix::Signal>,
                        name: &'static str| async move {
                match stream {
                    Ok(mut stream) => {
                        stream.recv().await;
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                () = wait(interrupt, "Ctrl-C") => tracing::info!("Ctrl-C received"),
                () = wait(terminate, "SIGTERM") => tracing::info!("SIGTERM received"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received");
    }
}
