//! `agentwire serve`: the server on a real database.

use crate::cli::{ServeArgs, ServerArgs};
use agentwire_engine::{Engine, EngineConfig};
use agentwire_server::{AppState, JwtConfig, ServerConfig};
use anyhow::Context;
use std::net::SocketAddr;
use std::time::Duration;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let secret = crate::token::require_secret(args.jwt_secret.as_deref())?;
    let store = agentwire_store::connect(&args.database)
        .await
        .with_context(|| format!("cannot open the database {}", args.database))?;
    let engine = Engine::new(store, engine_config(&args.server, args.demo_data));
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
    let config = server_config(&args.server, args.listen, &secret, false);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, database = %args.database, "agentwire is serving; WebSocket at ws://{addr}/ws");
    agentwire_server::serve(
        listener,
        AppState::new(engine, config)?,
        agentwire_server::shutdown_signal(),
    )
    .await?;
    tracing::info!("agentwire stopped");
    Ok(())
}

pub fn engine_config(args: &ServerArgs, demo_data: bool) -> EngineConfig {
    EngineConfig {
        max_concurrent_runs_per_user: args.max_runs_per_user.max(1),
        run_timeout: Duration::from_secs(args.run_timeout_s.max(1)),
        step_delay: Duration::from_millis(args.step_delay_ms),
        demo_data,
    }
}

pub fn server_config(
    args: &ServerArgs,
    listen: SocketAddr,
    secret: &str,
    demo_mode: bool,
) -> ServerConfig {
    let mut jwt = JwtConfig::hs256(secret.as_bytes().to_vec());
    jwt.issuer = args.jwt_issuer.clone();
    jwt.audience = args.jwt_audience.clone();
    ServerConfig {
        listen,
        jwt,
        auth_timeout: Duration::from_secs(args.auth_timeout_s.max(1)),
        max_frame_bytes: args.max_frame_bytes,
        drain_timeout: Duration::from_secs(args.drain_timeout_s),
        max_body_bytes: args.max_body_bytes,
        demo_mode,
        ..ServerConfig::default()
    }
}
