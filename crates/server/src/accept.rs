//! The accept loop: every TCP connection from `accept` to close, HTTP and WebSocket alike.
//!
//! `axum::serve` gives no control over slow or idle clients, so connections are served here with
//! hyper's HTTP/1.1 connection builder:
//! - a client must send a request's complete headers within `http_header_timeout` (default 10 s;
//!   with TLS the handshake must finish within it too), or the connection is closed;
//! - a keep-alive connection with nothing read or written for `http_idle_timeout` (default 5 s)
//!   is closed (hyper's header timer also runs while it waits for the next request); a new
//!   connection that has not sent a byte yet waits for its first request as long as the header
//!   timeout allows, not just the idle timeout;
//! - at most `max_tcp_connections` connections are open at once, counting upgraded WebSockets;
//!   past it a new connection gets 503 `UNAVAILABLE` with `Retry-After` and is closed (a few
//!   more refusals at once and further connections are closed without an answer);
//! - every request carries the peer address ([`axum::extract::ConnectInfo`]) for the per-address
//!   limits.
//!
//! On shutdown the loop stops accepting, tells every HTTP connection to finish its request in
//! flight and close, and returns once none is left. Upgraded sockets are not the loop's: they
//! belong to [`crate::ws`] and close through the server's lifecycle. This module must not route
//! requests or know about sockets beyond counting them.

use crate::error::AppError;
use crate::limits::Limiter;
use crate::tls::TlsSettings;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Connections over the cap that may be answered 503 at once; beyond them a connection is closed
/// without an answer, so refusing cannot itself exhaust the process.
const MAX_REFUSING: usize = 64;

/// How long an over-the-cap connection gets to send the request its 503 answers.
const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// After an accept error that is not about one connection (e.g. out of file descriptors), how long
/// the loop waits before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// What the loop needs besides the listener.
pub(crate) struct AcceptSettings {
    pub max_tcp_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls: Option<TlsSettings>,
    /// Counts the upgraded WebSockets, which have left the loop but still hold a connection.
    pub limiter: Arc<Limiter>,
}

/// Serves connections until `stop` is cancelled, then lets the HTTP connections finish and
/// returns. Accept errors are logged and survived (as `axum::serve` does).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    settings: AcceptSettings,
    stop: CancellationToken,
) {
    let shared = Arc::new(Shared {
        router,
        header_timeout: settings.header_timeout,
        idle_timeout: settings.idle_timeout,
        tls: settings.tls,
        http_open: watch::Sender::new(0),
        refusing: AtomicUsize::new(0),
        stop: stop.clone(),
    });
    loop {
        let (tcp, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    survive_accept_error(&err).await;
                    continue;
                }
            },
        };
        // Run events are small frames that must leave at once; Nagle would hold them back.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let open = *shared.http_open.borrow() + settings.limiter.open_connections();
        if open >= settings.max_tcp_connections {
            refuse(&shared, tcp, peer, settings.max_tcp_connections);
            continue;
        }
        let guard = HttpGuard::enter(&shared);
        let shared = shared.clone();
        tokio::spawn(async move {
            serve_connection(&shared, tcp, peer, shared.header_timeout).await;
            drop(guard);
        });
    }
    // Stop accepting at once; HTTP connections finish their request in flight (they watch
    // `stop`), then the loop returns.
    drop(listener);
    let mut open = shared.http_open.subscribe();
    let _ = open.wait_for(|n| *n == 0).await;
}

/// Connections the kernel may hold for the accept loop (the kernel caps it at
/// `net.core.somaxconn`, 4,096 on current Linux). Tokio's `bind` asks for 1,024: a burst of a
/// thousand connects a second while the runtime is busy overflowed it, and clients waited for
/// their SYN to be resent (connects of 3-7 s, then timeouts).
const LISTEN_BACKLOG: u32 = 4_096;

/// Listens on `addr` with room for a burst of connections ([`LISTEN_BACKLOG`]).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server can bind while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

struct Shared {
    router: Router,
    header_timeout: Duration,
    idle_timeout: Duration,
    tls: Option<TlsSettings>,
    /// HTTP connections being served (not yet upgraded or closed).
    http_open: watch::Sender<usize>,
    /// Over-the-cap connections being answered 503.
    refusing: AtomicUsize,
    stop: CancellationToken,
}

/// Keeps one HTTP connection counted until dropped.
struct HttpGuard(Arc<Shared>);

impl HttpGuard {
    fn enter(shared: &Arc<Shared>) -> HttpGuard {
        shared.http_open.send_modify(|n| *n += 1);
        HttpGuard(shared.clone())
    }
}

impl Drop for HttpGuard {
    fn drop(&mut self) {
        self.0.http_open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

async fn survive_accept_error(err: &io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed; pausing before the next accept");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// Answers a connection over the cap with 503 and closes it; past [`MAX_REFUSING`] refusals at
/// once, closes it without an answer.
fn refuse(shared: &Arc<Shared>, tcp: TcpStream, peer: SocketAddr, limit: usize) {
    if shared.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
        shared.refusing.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!(%peer, "connection cap reached; closing a connection unanswered");
        return;
    }
    tracing::warn!(%peer, limit, "connection cap reached; answering 503");
    let shared = shared.clone();
    tokio::spawn(async move {
        let refusal = Refusal { limit };
        serve_connection_with(&shared, tcp, peer, REFUSAL_HEADER_TIMEOUT, refusal).await;
        shared.refusing.fetch_sub(1, Ordering::AcqRel);
    });
}

/// What an over-the-cap connection is told, whatever it asked.
#[derive(Clone, Copy)]
struct Refusal {
    limit: usize,
}

async fn serve_connection(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    header_timeout: Duration,
) {
    serve_connection_with(shared, tcp, peer, header_timeout, ()).await;
}

/// Which service a connection gets: the router (`()`) or a [`Refusal`].
trait Answer: Copy + Send + Sync + 'static {
    fn keep_alive(self) -> bool;
    fn answer(
        self,
        router: &Router,
        request: axum::extract::Request,
    ) -> Pin<
        Box<dyn std::future::Future<Output = Result<axum::response::Response, Infallible>> + Send>,
    >;
}

impl Answer for () {
    fn keep_alive(self) -> bool {
        true
    }

    fn answer(
        self,
        router: &Router,
        request: axum::extract::Request,
    ) -> Pin<
        Box<dyn std::future::Future<Output = Result<axum::response::Response, Infallible>> + Send>,
    > {
        let mut router = router.clone();
        Box::pin(tower_service::Service::call(&mut router, request))
    }
}

impl Answer for Refusal {
    fn keep_alive(self) -> bool {
        false
    }

    fn answer(
        self,
        _router: &Router,
        _request: axum::extract::Request,
    ) -> Pin<
        Box<dyn std::future::Future<Output = Result<axum::response::Response, Infallible>> + Send>,
    > {
        let response = AppError::Limited {
            code: agentwire_protocol::ErrorCode::Unavailable,
            message: format!(
                "the server has {} connections open, its limit; retry in a moment or connect to another instance",
                self.limit
            ),
            retry_after_ms: 1_000,
        }
        .into_response();
        Box::pin(async move { Ok(response) })
    }
}

/// One connection: the TLS handshake (bounded by the header timeout), then HTTP/1.1 with
/// upgrades, closed when idle and finished gracefully on shutdown.
async fn serve_connection_with<A: Answer>(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    header_timeout: Duration,
    answer: A,
) {
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: tcp,
        activity: activity.clone(),
    };
    match &shared.tls {
        None => serve_http(shared, io, peer, header_timeout, &activity, answer).await,
        Some(tls) => match tokio::time::timeout(header_timeout, tls.acceptor().accept(io)).await {
            Ok(Ok(stream)) => {
                serve_http(shared, stream, peer, header_timeout, &activity, answer).await;
            }
            Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake not finished in time; closed"),
        },
    }
}

async fn serve_http<I, A>(
    shared: &Arc<Shared>,
    io: I,
    peer: SocketAddr,
    header_timeout: Duration,
    activity: &Activity,
    answer: A,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A: Answer,
{
    let router = shared.router.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        answer.answer(&router, request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(answer.keep_alive());
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let mut shutting_down = false;
    loop {
        // Before its first byte a connection is waiting for its first request, which has the
        // header timeout: an overloaded client may connect seconds before it sends. It looks
        // again at least every idle timeout, so a connection that has become active since is
        // held to the idle timeout from then on.
        let idle = if activity.touched() {
            shared.idle_timeout
        } else {
            header_timeout.max(shared.idle_timeout)
        };
        let idle_check = tokio::time::sleep(activity.until_idle(idle).min(shared.idle_timeout));
        tokio::select! {
            // The connection first: when a busy runtime polls this task late, a request that
            // waited in the socket is read (and counts as activity) before the idle check looks,
            // instead of the connection being closed as idle with the request unread.
            biased;
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "HTTP connection ended with an error");
                }
                return;
            }
            () = shared.stop.cancelled(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
            () = idle_check, if !shutting_down => {
                if activity.idle_for() >= idle {
                    // Closes an idle keep-alive connection now, or after the request in flight.
                    shutting_down = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// When the connection last read or wrote a byte, in milliseconds since it opened (0: never).
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now.max(1), Ordering::Relaxed);
    }

    /// Whether the connection has read or written anything yet.
    fn touched(&self) -> bool {
        self.last_ms.load(Ordering::Relaxed) > 0
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.opened.elapsed().saturating_sub(last)
    }

    /// How long until the connection will have been idle for `limit`, if nothing happens.
    fn until_idle(&self, limit: Duration) -> Duration {
        limit
            .saturating_sub(self.idle_for())
            .max(Duration::from_millis(10))
    }
}

/// A stream that notes every read and write in its [`Activity`].
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Open files this process may hold, from /proc (Linux); `None` when it cannot tell.
    fn open_file_limit() -> Option<u64> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse().ok()
    }

    #[tokio::test]
    async fn a_burst_of_connects_waits_in_the_backlog_while_nobody_accepts() {
        // 1,500 connects while the accept loop is busy (here: never accepts). Tokio's default
        // backlog (1,024) drops the rest's SYNs and they hang for seconds.
        const CONNECTS: usize = 1_500;
        if open_file_limit().is_some_and(|limit| limit < 2 * CONNECTS as u64) {
            eprintln!(
                "skipped: this process may open fewer than {} files",
                2 * CONNECTS
            );
            return;
        }
        let listener = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut connects = tokio::task::JoinSet::new();
        for _ in 0..CONNECTS {
            connects.spawn(tokio::time::timeout(
                Duration::from_secs(5),
                TcpStream::connect(addr),
            ));
        }
        let mut open = Vec::with_capacity(CONNECTS);
        while let Some(done) = connects.join_next().await {
            let stream = done
                .unwrap()
                .expect("a connect waited 5 s: the backlog overflowed")
                .unwrap();
            open.push(stream);
        }
        assert_eq!(open.len(), CONNECTS);
        drop(listener);
    }

    #[test]
    fn activity_counts_idle_time_from_the_last_byte() {
        let activity = Activity::new();
        assert!(activity.idle_for() < Duration::from_secs(5));
        assert!(activity.until_idle(Duration::from_secs(60)) > Duration::from_secs(50));
        assert_eq!(
            activity.until_idle(Duration::ZERO),
            Duration::from_millis(10),
            "never a busy loop"
        );
        activity.touch();
        assert!(activity.idle_for() < Duration::from_secs(5));
    }
}
