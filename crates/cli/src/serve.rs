//! `agentwire serve`: the server on a real database.

use crate::cli::{ServeArgs, ServerArgs};
use agentwire_engine::{Engine, EngineConfig};
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
    let store = agentwire_store::connect(&args.database)
        .await
        .with_context(|| format!("cannot open the database {}", args.database))?;
    let mut config = engine_config(&args.server, args.demo_data);
    if let Some(path) = args.prices.clone() {
        let table = tokio::task::spawn_blocking(move || crate::analyze::load_prices(Some(&path)))
            .await
            .context("the price loading task failed")??;
        tracing::info!(models = table.models().count(), "price table loaded");
        config.prices = Some(std::sync::Arc::new(table));
    }
    let engine = Engine::new(store, config);
    let interrupted = engine
        .recover_interrupted()
        .await
        .context("recovering runs left by a previous process")?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "runs of a previous process were marked INTERRUPTED"
        );
    }
    let config = server_config_with(&args.server, args.listen, jwt, false);
    warn_if_too_few_file_descriptors(config.max_connections).await;
    // Installed before the address is announced: a SIGTERM from then on is a graceful stop.
    let shutdown = agentwire_server::shutdown_signal();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %args.database, "agentwire is serving; WebSocket at ws://{addr}/ws");
    let state = AppState::new(engine, config).context("the JWT settings cannot be used")?;
    agentwire_server::serve(listener, state, shutdown).await?;
    tracing::info!("agentwire stopped");
    Ok(())
}

pub fn engine_config(args: &ServerArgs, demo_data: bool) -> EngineConfig {
    EngineConfig {
        max_concurrent_runs_per_user: args.max_runs_per_user.max(1),
        run_timeout: Duration::from_secs(args.run_timeout_s.max(1)),
        step_delay: Duration::from_millis(args.step_delay_ms),
        demo_data,
        prices: None,
        ..EngineConfig::default()
    }
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
        max_user_request_bytes: args.max_user_request_bytes.max(1),
        max_connections: args.max_connections.max(1),
        max_connections_per_user: args.max_connections_per_user.max(1),
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
