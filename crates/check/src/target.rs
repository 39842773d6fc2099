//! Where a deployment is: the WebSocket URL and the HTTP root that one `--target` names, read once
//! for `check` and `load`.
//!
//! `--target` takes `http://host:port[/prefix]`, `ws://host:port[/prefix]/ws` or a bare
//! `host:port`; both sides are derived from it here, so that every case and every load session
//! dials the same place. A suite over several nodes holds one [`Target`] per node.
//!
//! What it must not do: dial anything, or accept a target this build cannot reach. TLS is not in
//! this build, so `wss://` and `https://` are refused here, once, with the reason; adding TLS
//! means lifting that refusal here and in [`crate::client`] and [`crate::http`].

use crate::client::websocket_url;
use crate::http::HttpTarget;
use crate::suite::ConfigError;

/// One deployment (or one node of it), as the suite and the load generator dial it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ws://host:port/ws`.
    pub ws_url: String,
    /// The HTTP root, for section 7.
    pub http: HttpTarget,
}

impl Target {
    /// Reads a `--target`.
    ///
    /// # Errors
    /// [`ConfigError::Target`] for an empty target, an unknown scheme, or a TLS scheme.
    pub fn parse(target: &str) -> Result<Self, ConfigError> {
        let ws_url = websocket_url(target).map_err(|e| ConfigError::Target(e.to_string()))?;
        if ws_url.starts_with("wss://") {
            return Err(ConfigError::Target(
                "wss:// and https:// need TLS, which this build does not include; use ws:// or http://"
                    .to_owned(),
            ));
        }
        let http = HttpTarget::parse(target).map_err(|e| ConfigError::Target(e.to_string()))?;
        Ok(Self { ws_url, http })
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
            let err = Target::parse(tls).unwrap_err();
            assert!(err.to_string().contains("need TLS"), "{err}");
        }
        assert!(Target::parse("ftp://h").is_err());
    }
}
