//! Where a deployment is: the WebSocket URL and the HTTP root that one `--target` names, read once
//! for `check` and `load`.
//!
//! `--target` takes `http(s)://host:port[/prefix]`, `ws(s)://host:port[/prefix]/ws` or a bare
//! `host:port`; both sides are derived from it here, so that every case and every load session
//! dials the same place, with the same TLS roots (the platform's plus `--ca-cert`). A suite over
//! several nodes holds one [`Target`] per node.
//!
//! What it must not do: dial anything, or let one side of a TLS target speak plain TCP.

use crate::client::websocket_url;
use crate::http::HttpTarget;
use crate::suite::config::ConfigError;
use crate::tls::TlsClient;

/// One deployment (or one node of it), as the suite and the load generator dial it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ws://host:port/ws` or `wss://host:port/ws`.
    pub ws_url: String,
    /// The HTTP root, for section 7.
    pub http: HttpTarget,
    /// Set for TLS targets: the roots both sides verify the server against.
    pub tls: Option<TlsClient>,
}

impl Target {
    /// Reads a `--target`; a TLS target trusts the platform's roots.
    ///
    /// # Errors
    /// [`ConfigError::Target`] for an empty target or an unknown scheme.
    pub fn parse(target: &str) -> Result<Self, ConfigError> {
        Self::parse_with_ca(target, None)
    }

    /// Reads a `--target`; a TLS target trusts the platform's roots and the CA certificates in
    /// `ca_pem` (`--ca-cert`).
    ///
    /// # Errors
    /// [`ConfigError::Target`] for an empty target or an unknown scheme; [`ConfigError::Invalid`]
    /// for a CA file that holds no usable certificate.
    pub fn parse_with_ca(target: &str, ca_pem: Option<&[u8]>) -> Result<Self, ConfigError> {
        let ws_url = websocket_url(target).map_err(|e| ConfigError::Target(e.to_string()))?;
        let mut http = HttpTarget::parse(target).map_err(|e| ConfigError::Target(e.to_string()))?;
        let tls = if ws_url.starts_with("wss://") {
            let tls = TlsClient::new(ca_pem)
                .map_err(|err| ConfigError::Invalid(format!("--ca-cert: {err}")))?;
            http = http.with_tls(tls.clone());
            Some(tls)
        } else {
            None
        };
        Ok(Self { ws_url, http, tls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_come_from_one_target() {
        let target = Target::parse("http://127.0.0.1:8080/agents").unwrap();
        assert_eq!(target.ws_url, "ws://127.0.0.1:8080/agents/ws");
        assert_eq!(
            target.http.url("/health"),
            "http://127.0.0.1:8080/agents/health"
        );
        for tls in ["https://h:1", "wss://h:1/ws"] {
            let target = Target::parse(tls).unwrap();
            assert_eq!(target.ws_url, "wss://h:1/ws");
            assert_eq!(target.http.url("/health"), "https://h:1/health");
            // Both sides share the one set of roots.
            assert_eq!(target.tls, target.http.tls);
        }
        assert!(Target::parse("http://h:1").unwrap().tls.is_none());
        assert!(matches!(
            Target::parse_with_ca("https://h:1", Some(b"nothing here")),
            Err(ConfigError::Invalid(message)) if message.contains("--ca-cert")
        ));
        assert!(Target::parse("ftp://h").is_err());
    }
}
