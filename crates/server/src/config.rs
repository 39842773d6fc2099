//! Server settings: where to listen, how tokens are checked, and the limits every connection is
//! held to.
//!
//! This module only describes settings; it reads no files and no environment (the CLI does that
//! and builds a [`ServerConfig`]). Defaults are the values PROTOCOL.md promises.

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
    /// Largest request body accepted (usage uploads).
    pub max_body_bytes: usize,
    /// Demo mode: the index page and logs say so; the engine is configured separately.
    pub demo_mode: bool,
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
            demo_mode: false,
        }
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
        assert_eq!(config.jwt.algorithm, Algorithm::HS256);
        assert_eq!(config.jwt.leeway_s, 30);
        assert!(config.jwt.uses_dev_secret());
    }
}
