//! Server settings: where to listen, how tokens are checked, and the limits every connection is
//! held to.
//!
//! This module only describes settings; it reads no files and no environment (the CLI does that
//! and builds a [`ServerConfig`]). Defaults are the values PROTOCOL.md promises.

use agentwire_engine::Principal;
use jsonwebtoken::Algorithm;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The HS256 secret used when none is configured. Only good for local development: anyone who
/// reads this source can mint tokens for it, so the server logs a warning when it is in use.
pub const DEV_JWT_SECRET: &str = "agentwire-dev-secret-do-not-use-in-production";

/// Everything the server needs besides the engine.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address `agentwire serve` binds; [`crate::serve`] takes an already bound listener, so this
    /// is informational for the library.
    pub listen: SocketAddr,
    pub jwt: JwtConfig,
    /// How long an unauthenticated socket may stay open waiting for an `authenticate` frame.
    pub auth_timeout: Duration,
    /// How often the server sends a protocol ping; a peer silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// Largest text frame a client may send, in bytes. Larger: `PAYLOAD_TOO_LARGE`, close 1009.
    pub max_frame_bytes: usize,
    /// Frames that may wait for one socket's writer. Full means the client is not reading.
    pub outbound_queue: usize,
    /// How long a full outbound queue is tolerated before the slow client is disconnected. Short
    /// bursts (a `resume` replaying a long run) fill the queue briefly without any fault.
    pub slow_client_timeout: Duration,
    /// On shutdown, how long running runs get to finish before they are stopped.
    pub drain_timeout: Duration,
    /// Largest HTTP request body accepted, on any route (usage uploads are the large ones).
    /// Larger: 413 `PAYLOAD_TOO_LARGE`, without reading the rest.
    pub max_body_bytes: usize,
    /// Most rows one usage upload may carry; more: 413 `PAYLOAD_TOO_LARGE` before parsing, so one
    /// upload cannot hold the memory of millions of parsed records.
    pub max_ingest_rows: usize,
    /// Usage uploads this server takes at once (reading, parsing and storing them). Past it:
    /// HTTP 503 `UNAVAILABLE` with `Retry-After`, before the body is read, so a burst of uploads
    /// holds neither memory nor the database for long. At least 1.
    pub max_concurrent_uploads: usize,
    /// Messages one connection may send (token bucket). Past it: `RATE_LIMITED` with
    /// `retry_after_ms`; the message is dropped and the connection stays open.
    pub connection_rate: RateLimit,
    /// Messages one user may send across all their connections together.
    pub user_rate: RateLimit,
    /// WebSocket connections open at once on this server. Past it the upgrade gets HTTP 503
    /// `UNAVAILABLE` with `Retry-After`, at once rather than a hang.
    pub max_connections: usize,
    /// Authenticated connections one user (within one tenant) may hold at once. Past it: HTTP
    /// 429 `RATE_LIMITED` at the upgrade, or `RATE_LIMITED` for an `authenticate` frame.
    pub max_connections_per_user: usize,
    /// Sockets opened without credentials that one peer address may hold while they wait to
    /// `authenticate`. Past it: HTTP 429 `RATE_LIMITED` at the upgrade. Behind a proxy every
    /// client has the proxy's address; browsers authenticate at the upgrade and are not counted.
    pub max_unauthenticated_per_ip: usize,
    /// Runs one socket may follow at once (`start_agent` and `resume` forwarders). Past it a
    /// `resume` or `start_agent` gets `RATE_LIMITED`; the socket stays open.
    pub max_followed_runs: usize,
    /// TCP connections open at once, HTTP and WebSocket together. Past it a new connection is
    /// answered 503 `UNAVAILABLE` and closed.
    pub max_tcp_connections: usize,
    /// How long a client may take to send a request's headers (and, with TLS, to finish the
    /// handshake) before its connection is closed. Also bounds how long an idle keep-alive
    /// connection waits for its next request.
    pub http_header_timeout: Duration,
    /// How long a keep-alive HTTP connection may sit idle (nothing read or written) before it is
    /// closed; the header timeout applies too, whichever is shorter.
    pub http_idle_timeout: Duration,
    /// How long a client may take to send a usage upload's body once its headers are in. A body
    /// trickled in never looks idle, and an upload holds one of the few upload slots while it
    /// is read; past this it is answered 408 `TIMEOUT` and the slot is freed.
    pub http_body_timeout: Duration,
    /// Terminate TLS in the process (`serve --tls-cert --tls-key`); `None`: plain TCP.
    pub tls: Option<crate::tls::TlsSettings>,
    /// Longest question (`user_request`) a run may be started with, in bytes. Longer:
    /// `INVALID_MESSAGE` naming the limit; the connection stays open.
    pub max_user_request_bytes: usize,
    /// Browser origins (`scheme://host[:port]`) allowed to call the HTTP API cross-origin (CORS)
    /// and to open a WebSocket from a page of another origin. Empty (the default): none; pages
    /// served by this server itself are always same-origin.
    pub cors_allowed_origins: Vec<String>,
    /// Demo mode: the index page and logs say so; the engine is configured separately.
    pub demo_mode: bool,
    /// In demo mode, who `POST /api/demo/token` mints tokens for, so that the web page can sign
    /// itself in. Ignored outside demo mode, where that endpoint does not exist.
    pub demo_principal: Option<Principal>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwt: JwtConfig::default(),
            auth_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            max_frame_bytes: 1 << 20,
            outbound_queue: 256,
            slow_client_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            max_body_bytes: 64 << 20,
            max_ingest_rows: 1_000_000,
            max_concurrent_uploads: 2,
            // A person types far slower; a script that sends more is buggy or hostile. Bursts
            // cover a client that sends a handful of requests at once (several runs, a resume per
            // followed run after a reconnect).
            connection_rate: RateLimit {
                per_second: 20,
                burst: 40,
            },
            user_rate: RateLimit {
                per_second: 50,
                burst: 100,
            },
            // The design target is 10,000 concurrent sessions per node; the process needs a file
            // descriptor per socket (`serve` warns when its limit is lower).
            max_connections: 16_384,
            max_connections_per_user: 32,
            max_unauthenticated_per_ip: 64,
            max_followed_runs: 64,
            // The sockets' cap and room for plain HTTP requests besides them.
            max_tcp_connections: 16_384 + 1_024,
            http_header_timeout: Duration::from_secs(10),
            http_idle_timeout: Duration::from_secs(5),
            http_body_timeout: Duration::from_secs(120),
            tls: None,
            max_user_request_bytes: 64 << 10,
            cors_allowed_origins: Vec::new(),
            demo_mode: false,
            demo_principal: None,
        }
    }
}

/// A token bucket's settings: `burst` messages at once, refilled at `per_second`.
/// `per_second == 0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// No limit at all.
    pub const UNLIMITED: RateLimit = RateLimit {
        per_second: 0,
        burst: 0,
    };

    pub fn is_unlimited(&self) -> bool {
        self.per_second == 0
    }
}

/// How bearer tokens are verified. The algorithm is pinned: a token signed with any other
/// algorithm (including `none`) is refused.
#[derive(Clone)]
pub struct JwtConfig {
    pub algorithm: Algorithm,
    /// The shared secret (HMAC algorithms) or the PEM public key (RSA, ECDSA, EdDSA).
    pub key: JwtKey,
    /// When set, the `iss` claim must equal it.
    pub issuer: Option<String>,
    /// When set, the `aud` claim must contain it. When unset, `aud` is not checked.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
}

/// Key material for [`JwtConfig`].
#[derive(Clone)]
pub enum JwtKey {
    Secret(Vec<u8>),
    PublicKeyPem(String),
}

impl JwtConfig {
    /// HS256 with a shared secret.
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            algorithm: Algorithm::HS256,
            key: JwtKey::Secret(secret.into()),
            ..Self::default()
        }
    }

    /// An asymmetric algorithm (RS256, ES256, ...) with the signer's public key in PEM form.
    pub fn public_key(algorithm: Algorithm, pem: impl Into<String>) -> Self {
        Self {
            algorithm,
            key: JwtKey::PublicKeyPem(pem.into()),
            ..Self::default()
        }
    }

    /// Whether the well-known development secret is in use.
    pub fn uses_dev_secret(&self) -> bool {
        matches!(&self.key, JwtKey::Secret(secret) if secret == DEV_JWT_SECRET.as_bytes())
    }
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::HS256,
            key: JwtKey::Secret(DEV_JWT_SECRET.as_bytes().to_vec()),
            issuer: None,
            audience: None,
            leeway_s: 30,
        }
    }
}

// Hand-written so that secrets never reach a log line through `{:?}`.
impl fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("algorithm", &self.algorithm)
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_s", &self.leeway_s)
            .finish()
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(secret) => write!(f, "Secret(<{} bytes>)", secret.len()),
            Self::PublicKeyPem(_) => f.write_str("PublicKeyPem(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_secret() {
        let config = JwtConfig::hs256("hunter2-very-secret");
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("19 bytes"), "{text}");
    }

    #[test]
    fn defaults_match_the_protocol() {
        let config = ServerConfig::default();
        assert_eq!(config.auth_timeout, Duration::from_secs(10));
        assert_eq!(config.ping_interval, Duration::from_secs(20));
        assert_eq!(config.max_frame_bytes, 1_048_576);
        assert!(
            config.cors_allowed_origins.is_empty(),
            "CORS is closed by default"
        );
        assert!(!config.connection_rate.is_unlimited());
        assert!(!config.user_rate.is_unlimited());
        assert!(
            config.max_connections >= 10_000,
            "the design's 10,000 sessions"
        );
        assert_eq!(config.jwt.algorithm, Algorithm::HS256);
        assert_eq!(config.jwt.leeway_s, 30);
        // Issue 15: slow clients are bounded by default, and TLS is opt-in.
        assert_eq!(config.http_header_timeout, Duration::from_secs(10));
        assert!(config.http_idle_timeout <= config.http_header_timeout);
        assert!(config.max_tcp_connections > config.max_connections);
        assert!(config.tls.is_none());
        assert!(config.jwt.uses_dev_secret());
    }
}
