//! `agentwire serve`: the server on a real database.

use crate::cli::{ServeArgs, ServerArgs};
use agentwire_engine::{Engine, EngineConfig, RetentionConfig};
use agentwire_server::{AppState, JwtConfig, RateLimit, ServerConfig};
use anyhow::{Context, bail};
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// File descriptors the process needs besides its sockets (database, listener, logs).
const RESERVED_FDS: u64 = 64;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let jwt = jwt_config(&args).await?;
    let shown = agentwire_store::redact_url(&args.database);
    let options = agentwire_store::StoreOptions {
        pool_size: args.database_pool_size,
        ..agentwire_store::StoreOptions::default()
    };
    let store = agentwire_store::connect_with(&args.database, &options)
        .await
        .with_context(|| format!("cannot open the database {shown}"))?;
    let mut config = engine_config(&args.server, args.demo_data);
    config.node_name = node_name(args.node_name.as_deref())?;
    config.node_lease = Duration::from_secs(args.node_lease_s);
    config.retention = retention(args.retain_runs_days);
    if let Some(path) = args.prices.clone() {
        let table = tokio::task::spawn_blocking(move || crate::analyze::load_prices(Some(&path)))
            .await
            .context("the price loading task failed")??;
        tracing::info!(models = table.models().count(), "price table loaded");
        config.prices = Some(std::sync::Arc::new(table));
    }
    let engine = Engine::start(store, config)
        .await
        .with_context(|| format!("cannot join the database {shown} as a node"))?;
    let mut config = server_config_with(&args.server, args.listen, jwt, false);
    config.tls = tls_settings(&args).await?;
    warn_if_too_few_file_descriptors(config.max_tcp_connections).await;
    if config.max_connections > config.max_tcp_connections {
        tracing::warn!(
            max_connections = config.max_connections,
            max_tcp_connections = config.max_tcp_connections,
            "--max-connections is above --max-tcp-connections; sockets are capped by the latter"
        );
    }
    // Installed before the address is announced: a SIGTERM from then on is a graceful stop.
    let shutdown = agentwire_server::shutdown_signal();
    let listener = agentwire_server::listen(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let ws = if config.tls.is_some() { "wss" } else { "ws" };
    tracing::info!(%addr, database = %shown, "agentwire is serving; WebSocket at {ws}://{addr}/ws");
    let state = AppState::new(engine, config).context("the JWT settings cannot be used")?;
    agentwire_server::serve(listener, state, shutdown).await?;
    tracing::info!("agentwire stopped");
    Ok(())
}

/// The retention of `--retain-runs-days`: `None` (keep forever) for 0.
fn retention(days: u64) -> Option<RetentionConfig> {
    (days > 0).then(|| RetentionConfig::new(Duration::from_secs(days.saturating_mul(24 * 60 * 60))))
}

pub fn engine_config(args: &ServerArgs, demo_data: bool) -> EngineConfig {
    EngineConfig {
        max_concurrent_runs_per_user: args.max_runs_per_user.max(1),
        run_timeout: Duration::from_secs(args.run_timeout_s.max(1)),
        step_delay: Duration::from_millis(args.step_delay_ms),
        demo_data,
        ..EngineConfig::default()
    }
}

/// Longest `--node-name`: ids add 13 characters, and they show in every log line about a node.
const MAX_NODE_NAME: usize = 64;

/// `--node-name`, or the host name (letters, digits, `.`, `_` and `-` kept), or `node`.
///
/// # Errors
/// A given name that is empty, too long, or holds characters other than those.
fn node_name(given: Option<&str>) -> anyhow::Result<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if let Some(name) = given {
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_NODE_NAME || !name.chars().all(allowed) {
            bail!(
                "--node-name must be 1 to {MAX_NODE_NAME} letters, digits, '.', '_' or '-'; got {:?}",
                name.chars().take(80).collect::<String>()
            );
        }
        return Ok(name.to_owned());
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| allowed(*c))
        .take(MAX_NODE_NAME)
        .collect();
    Ok(if host.is_empty() { "node".into() } else { host })
}

/// The server settings with an HS256 secret.
pub fn server_config(
    args: &ServerArgs,
    listen: SocketAddr,
    secret: &str,
    demo_mode: bool,
) -> ServerConfig {
    let mut jwt = JwtConfig::hs256(secret.as_bytes().to_vec());
    jwt.issuer = args.jwt_issuer.clone();
    jwt.audience = args.jwt_audience.clone();
    server_config_with(args, listen, jwt, demo_mode)
}

/// The server settings with the given token rules.
pub fn server_config_with(
    args: &ServerArgs,
    listen: SocketAddr,
    jwt: JwtConfig,
    demo_mode: bool,
) -> ServerConfig {
    ServerConfig {
        listen,
        jwt,
        auth_timeout: Duration::from_secs(args.auth_timeout_s.max(1)),
        max_frame_bytes: args.max_frame_bytes,
        drain_timeout: Duration::from_secs(args.drain_timeout_s),
        max_body_bytes: args.max_body_bytes,
        max_ingest_rows: args.max_ingest_rows.max(1),
        max_concurrent_uploads: args.max_concurrent_uploads,
        max_user_request_bytes: args.max_user_request_bytes.max(1),
        max_connections: args.max_connections.max(1),
        max_connections_per_user: args.max_connections_per_user.max(1),
        max_unauthenticated_per_ip: args.max_unauthenticated_per_ip.max(1),
        max_followed_runs: args.max_followed_runs.max(1),
        max_tcp_connections: args.max_tcp_connections.max(1),
        http_header_timeout: Duration::from_secs(args.http_header_timeout_s.max(1)),
        http_body_timeout: Duration::from_secs(args.http_body_timeout_s.max(1)),
        http_idle_timeout: Duration::from_secs(args.http_idle_timeout_s.max(1)),
        connection_rate: RateLimit {
            per_second: args.connection_messages_per_s,
            burst: args.connection_message_burst.max(1),
        },
        user_rate: RateLimit {
            per_second: args.user_messages_per_s,
            burst: args.user_message_burst.max(1),
        },
        slow_client_timeout: Duration::from_secs(args.slow_client_timeout_s.max(1)),
        outbound_queue: args.outbound_queue_frames.max(1),
        cors_allowed_origins: args
            .cors_allow_origin
            .iter()
            .map(|origin| origin.trim().to_owned())
            .filter(|origin| !origin.is_empty())
            .collect(),
        demo_mode,
        ..ServerConfig::default()
    }
}

/// TLS from `--tls-cert` and `--tls-key`; `None` (plain TCP) when neither is given.
///
/// # Errors
/// A file that cannot be read, or a certificate and key that cannot be served (the message says
/// which file and why).
async fn tls_settings(args: &ServeArgs) -> anyhow::Result<Option<agentwire_server::TlsSettings>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let cert_pem = tokio::fs::read(cert)
        .await
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?;
    let key_pem = tokio::fs::read(key)
        .await
        .with_context(|| format!("cannot read the TLS key {}", key.display()))?;
    let settings =
        agentwire_server::TlsSettings::from_pem(&cert_pem, &key_pem).with_context(|| {
            format!(
                "cannot serve TLS with {} and {}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(Some(settings))
}

/// The token rules from `--jwt-algorithm` with `--jwt-secret` (HMAC) or `--jwt-public-key`.
///
/// # Errors
/// An unknown algorithm, a missing or short secret, a missing or unreadable key file, or key
/// material given for the wrong kind of algorithm.
pub async fn jwt_config(args: &ServeArgs) -> anyhow::Result<JwtConfig> {
    let name = args.jwt_algorithm.trim();
    let algorithm = Algorithm::from_str(name)
        .or_else(|_| Algorithm::from_str(&name.to_ascii_uppercase()))
        .map_err(|_| {
            anyhow::anyhow!(
                "unknown --jwt-algorithm {name:?}; use HS256 (with --jwt-secret), or RS256, ES256, PS256, EdDSA (with --jwt-public-key)"
            )
        })?;
    let mut jwt = match algorithm.family() {
        AlgorithmFamily::Hmac => {
            if args.jwt_public_key.is_some() {
                bail!(
                    "--jwt-public-key is for asymmetric algorithms; {algorithm:?} verifies with --jwt-secret (or use --jwt-algorithm RS256/ES256)"
                );
            }
            let secret = crate::token::require_secret(args.jwt_secret.as_deref())?;
            let mut jwt = JwtConfig::hs256(secret.into_bytes());
            jwt.algorithm = algorithm;
            jwt
        }
        AlgorithmFamily::Rsa | AlgorithmFamily::Ec | AlgorithmFamily::Ed => {
            let Some(path) = &args.jwt_public_key else {
                bail!(
                    "--jwt-algorithm {algorithm:?} needs --jwt-public-key FILE (the PEM public key of the token issuer)"
                );
            };
            if args.jwt_secret.is_some() {
                tracing::warn!(
                    ?algorithm,
                    "a JWT secret is set but tokens are verified with the public key; the secret is ignored"
                );
            }
            let pem = tokio::fs::read_to_string(path)
                .await
                .with_context(|| format!("cannot read the JWT public key {}", path.display()))?;
            JwtConfig::public_key(algorithm, pem)
        }
    };
    jwt.issuer = args.server.jwt_issuer.clone();
    jwt.audience = args.server.jwt_audience.clone();
    Ok(jwt)
}

/// Warns when the process may open fewer files than the connection cap needs: past that limit
/// new connections fail at `accept` instead of getting a clear 503.
async fn warn_if_too_few_file_descriptors(max_connections: usize) {
    let Ok(limits) = tokio::fs::read_to_string("/proc/self/limits").await else {
        return;
    };
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|value| value.parse::<u64>().ok());
    let needed = (max_connections as u64).saturating_add(RESERVED_FDS);
    if let Some(soft) = soft
        && soft < needed
    {
        tracing::warn!(
            open_files_limit = soft,
            max_connections,
            "the open-files limit is below --max-connections; raise it (ulimit -n {needed}) or lower --max-connections"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn node_names_are_checked_and_default_to_the_host() {
        assert_eq!(node_name(Some(" web-1.eu ")).unwrap(), "web-1.eu");
        for bad in ["", "a b", "x\0y", &"n".repeat(MAX_NODE_NAME + 1)] {
            let err = node_name(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("--node-name"), "{err}");
        }
        let host = node_name(None).unwrap();
        assert!(!host.is_empty() && host.len() <= MAX_NODE_NAME, "{host}");
    }

    #[test]
    fn zero_retention_days_keep_runs_forever() {
        assert_eq!(retention(0), None);
        let kept = retention(30).unwrap();
        assert_eq!(kept.age, Duration::from_secs(30 * 86_400));
        assert_eq!(kept.interval, agentwire_engine::DEFAULT_RETENTION_INTERVAL);
    }
}
