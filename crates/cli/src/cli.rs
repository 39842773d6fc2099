//! The command line: every flag, with its `AGENTWIRE_*` environment variable and default.
//! Parsing only; the commands live in their own modules.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "agentwire",
    version,
    about = "Agents that analyse your AI and cloud spend, streamed live over a WebSocket."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Start a server on a temporary database with demo data, and print how to talk to it.
    Demo(DemoArgs),
    /// Print a JWT signed with the configured secret, for development and tests.
    Token(TokenArgs),
    /// Load a usage file (CSV or JSON lines) into a tenant, all or nothing.
    Ingest(IngestArgs),
}

/// Settings shared by every command that runs a server.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Pause before each agent step, in milliseconds, so a person can watch (0 = none).
    #[arg(long, env = "AGENTWIRE_STEP_DELAY_MS", default_value_t = 0)]
    pub step_delay_ms: u64,
    /// A run still going after this many seconds ends with `agent_error` `TIMEOUT`.
    #[arg(long, env = "AGENTWIRE_RUN_TIMEOUT_S", default_value_t = 120)]
    pub run_timeout_s: u64,
    /// Runs one user may have going at once.
    #[arg(long, env = "AGENTWIRE_MAX_RUNS_PER_USER", default_value_t = 8)]
    pub max_runs_per_user: usize,
    /// Seconds a connection without credentials may take to send `authenticate`.
    #[arg(long, env = "AGENTWIRE_AUTH_TIMEOUT_S", default_value_t = 10)]
    pub auth_timeout_s: u64,
    /// Largest WebSocket frame accepted, in bytes.
    #[arg(long, env = "AGENTWIRE_MAX_FRAME_BYTES", default_value_t = 1 << 20)]
    pub max_frame_bytes: usize,
    /// Seconds running runs get to finish on shutdown before they are interrupted.
    #[arg(long, env = "AGENTWIRE_DRAIN_TIMEOUT_S", default_value_t = 10)]
    pub drain_timeout_s: u64,
    /// Largest HTTP request body (usage uploads), in bytes.
    #[arg(long, env = "AGENTWIRE_MAX_BODY_BYTES", default_value_t = 64 << 20)]
    pub max_body_bytes: usize,
    /// When set, tokens must carry this `iss`.
    #[arg(long, env = "AGENTWIRE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// When set, tokens must carry this `aud`.
    #[arg(long, env = "AGENTWIRE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "AGENTWIRE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database URL: `sqlite://path.db` (created if missing).
    #[arg(
        long,
        env = "AGENTWIRE_DATABASE",
        default_value = "sqlite://agentwire.db"
    )]
    pub database: String,
    /// HS256 secret for verifying tokens (at least 32 bytes).
    #[arg(long, env = "AGENTWIRE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Give every tenant that has no usage data the demo data set.
    #[arg(long, env = "AGENTWIRE_DEMO_DATA")]
    pub demo_data: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "AGENTWIRE_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The user (`sub` claim).
    #[arg(long)]
    pub sub: String,
    /// The tenant whose data the user may read (`org_id` claim); defaults to the user.
    #[arg(long)]
    pub org: Option<String>,
    /// Lifetime: `90s`, `30m`, `1h`, `7d`.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Space-separated permissions (`scope` claim); `usage:write` allows POST /api/usage.
    #[arg(long, default_value = "usage:write")]
    pub scope: String,
    /// HS256 secret to sign with.
    #[arg(long, env = "AGENTWIRE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// `iss` claim to include.
    #[arg(long, env = "AGENTWIRE_JWT_ISSUER")]
    pub issuer: Option<String>,
    /// `aud` claim to include.
    #[arg(long, env = "AGENTWIRE_JWT_AUDIENCE")]
    pub audience: Option<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The usage file: CSV with a header row, or JSON lines.
    pub file: PathBuf,
    /// The tenant to load into.
    #[arg(long)]
    pub tenant: String,
    /// `csv` or `jsonl`; detected from the content when omitted.
    #[arg(long)]
    pub format: Option<String>,
    /// Database URL.
    #[arg(
        long,
        env = "AGENTWIRE_DATABASE",
        default_value = "sqlite://agentwire.db"
    )]
    pub database: String,
}
