//! `agentwire demo`: a server on a temporary database with the demo data set loaded, a fresh
//! secret and a ready token, and the commands to talk to it. Everything is removed on exit.

use crate::cli::DemoArgs;
use crate::serve::{engine_config, server_config};
use crate::token::{Claims, sign};
use agentwire_analytics::{DemoConfig, generate_demo};
use agentwire_engine::{Engine, Principal};
use agentwire_server::AppState;
use anyhow::Context;

/// The tenant the demo data is loaded into, and the demo user.
pub const DEMO_TENANT: &str = "acme";
pub const DEMO_USER: &str = "demo-user";

pub async fn run(mut args: DemoArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let database = format!(
        "sqlite://{}",
        dir.path().join("agentwire-demo.db").display()
    );
    let store = agentwire_store::connect(&database)
        .await
        .context("cannot create the demo database")?;

    let dataset = tokio::task::spawn_blocking(|| generate_demo(&DemoConfig::default())).await?;
    store.ensure_tenant(DEMO_TENANT).await?;
    let loaded = store.insert_usage(DEMO_TENANT, &dataset.records).await?;

    // A fresh secret per demo: tokens from one demo never work against another server.
    let secret = format!("{}{}", uuid_hex(), uuid_hex());
    if args.server.step_delay_ms == 0 {
        // Slow enough to watch the agents work, fast enough not to wait on them.
        args.server.step_delay_ms = 120;
    }
    let engine = Engine::start(store, engine_config(&args.server, false))
        .await
        .context("cannot start the engine on the demo database")?;
    // Installed before the address is announced: a SIGTERM from then on is a graceful stop.
    let shutdown = agentwire_server::shutdown_signal();
    let listener = agentwire_server::listen(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let token = sign(
        &Claims {
            sub: DEMO_USER,
            org_id: Some(DEMO_TENANT),
            scope: "usage:write",
            iat: now,
            exp: now + 24 * 3600,
            iss: args.server.jwt_issuer.as_deref(),
            aud: args.server.jwt_audience.as_deref(),
        },
        secret.as_bytes(),
    )?;
    let facts = &dataset.facts;
    println!(
        "agentwire demo is running.

  Web page:   http://{addr}/  (open it in a browser: it signs in as `{DEMO_USER}` by itself)
  WebSocket:  ws://{addr}/ws
  Health:     curl http://{addr}/health
  Database:   {database} (removed on exit)
  Data:       {loaded} usage records of {company} ({start} to {end}) in tenant `{DEMO_TENANT}`,
              with a planted cost spike on {spike} (team {team}) and a routing opportunity
              ({from} -> {to} for {feature}).

Token (user `{DEMO_USER}`, tenant `{DEMO_TENANT}`, valid 24h):

  export TOKEN={token}

Talk to it (websocat: `cargo install websocat`, or any WebSocket client):

  websocat -H \"Authorization: Bearer $TOKEN\" ws://{addr}/ws
  {{\"type\":\"start_agent\",\"id\":\"1\",\"payload\":{{\"user_request\":\"How can we reduce our AI costs?\"}}}}

Other questions: \"Why did our spend spike?\", \"Where did our AI spend go last week?\"
Press ctrl-c to stop.",
        company = facts.company,
        start = facts.start,
        end = facts.end,
        spike = facts.spike_day,
        team = facts.spike_team,
        from = facts.routing_model,
        to = facts.routing_target_model,
        feature = facts.routing_feature,
    );
    let mut config = server_config(&args.server, addr, &secret, true);
    // The web page signs itself in as the demo user (POST /api/demo/token, demo mode only).
    config.demo_principal = Some(Principal {
        user_id: DEMO_USER.to_owned(),
        tenant_id: DEMO_TENANT.to_owned(),
    });
    agentwire_server::serve(listener, AppState::new(engine, config)?, shutdown).await?;
    drop(dir);
    Ok(())
}

fn uuid_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
