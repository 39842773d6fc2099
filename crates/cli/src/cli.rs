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
    /// Analyse a usage, metric series or FOCUS billing file offline: the agents' report, no server.
    Analyze(AnalyzeArgs),
    /// Validate a deployment against the wire contract: exit 0 pass, 1 a case failed, 2 target
    /// unreachable or bad configuration, 99 a threshold breached.
    Check(CheckArgs),
    /// Load-test a deployment: many sessions, latencies from each run's scheduled start, every
    /// event judged; same thresholds and exit codes as `check`.
    Load(LoadArgs),
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
    /// Most rows one usage upload may carry.
    #[arg(long, env = "AGENTWIRE_MAX_INGEST_ROWS", default_value_t = 1_000_000)]
    pub max_ingest_rows: usize,
    /// Usage uploads served at once; more get 503 with Retry-After.
    #[arg(long, env = "AGENTWIRE_MAX_CONCURRENT_UPLOADS", default_value_t = 2)]
    pub max_concurrent_uploads: usize,
    /// Longest question (`user_request`) a run may start with, in bytes.
    #[arg(long, env = "AGENTWIRE_MAX_USER_REQUEST_BYTES", default_value_t = 64 << 10)]
    pub max_user_request_bytes: usize,
    /// WebSocket connections open at once; past it the upgrade gets HTTP 503.
    #[arg(long, env = "AGENTWIRE_MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,
    /// Connections one user may hold at once; past it HTTP 429 / `RATE_LIMITED`.
    #[arg(long, env = "AGENTWIRE_MAX_CONNECTIONS_PER_USER", default_value_t = 32)]
    pub max_connections_per_user: usize,
    /// Sockets without credentials one address may hold while they wait to `authenticate`;
    /// past it HTTP 429 `RATE_LIMITED`.
    #[arg(
        long,
        env = "AGENTWIRE_MAX_UNAUTHENTICATED_PER_IP",
        default_value_t = 64
    )]
    pub max_unauthenticated_per_ip: usize,
    /// Runs one socket may follow at once (`start_agent` and `resume`); past it `RATE_LIMITED`.
    #[arg(long, env = "AGENTWIRE_MAX_FOLLOWED_RUNS", default_value_t = 64)]
    pub max_followed_runs: usize,
    /// TCP connections open at once, HTTP and WebSocket together; past it 503 `UNAVAILABLE`.
    #[arg(long, env = "AGENTWIRE_MAX_TCP_CONNECTIONS", default_value_t = 17_408)]
    pub max_tcp_connections: usize,
    /// Seconds a client gets to send a request's headers (and finish a TLS handshake) before
    /// its connection is closed.
    #[arg(long, env = "AGENTWIRE_HTTP_HEADER_TIMEOUT_S", default_value_t = 10)]
    pub http_header_timeout_s: u64,
    /// Seconds a keep-alive HTTP connection may sit idle before it is closed.
    #[arg(long, env = "AGENTWIRE_HTTP_IDLE_TIMEOUT_S", default_value_t = 5)]
    pub http_idle_timeout_s: u64,
    /// Seconds a client gets to send a usage upload's body; past it 408 `TIMEOUT`.
    #[arg(long, env = "AGENTWIRE_HTTP_BODY_TIMEOUT_S", default_value_t = 120)]
    pub http_body_timeout_s: u64,
    /// Messages per second one connection may send (token bucket; 0 = no limit).
    #[arg(
        long,
        env = "AGENTWIRE_CONNECTION_MESSAGES_PER_S",
        default_value_t = 20
    )]
    pub connection_messages_per_s: u32,
    /// Messages one connection may send at once before the per-second rate applies.
    #[arg(long, env = "AGENTWIRE_CONNECTION_MESSAGE_BURST", default_value_t = 40)]
    pub connection_message_burst: u32,
    /// Messages per second one user may send over all their connections (0 = no limit).
    #[arg(long, env = "AGENTWIRE_USER_MESSAGES_PER_S", default_value_t = 50)]
    pub user_messages_per_s: u32,
    /// Messages one user may send at once before the per-second rate applies.
    #[arg(long, env = "AGENTWIRE_USER_MESSAGE_BURST", default_value_t = 100)]
    pub user_message_burst: u32,
    /// Seconds a client may leave its outbound queue full before it is disconnected.
    #[arg(long, env = "AGENTWIRE_SLOW_CLIENT_TIMEOUT_S", default_value_t = 5)]
    pub slow_client_timeout_s: u64,
    /// Frames that may wait for one socket's writer (its outbound queue).
    #[arg(long, env = "AGENTWIRE_OUTBOUND_QUEUE_FRAMES", default_value_t = 256)]
    pub outbound_queue_frames: usize,
    /// Browser origins allowed to call the API cross-origin and open sockets from their pages
    /// (comma-separated, e.g. `https://app.example.com`). Default: none.
    #[arg(long, env = "AGENTWIRE_CORS_ALLOW_ORIGIN", value_delimiter = ',')]
    pub cors_allow_origin: Vec<String>,
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
    /// Database URL: `sqlite://path.db` (created if missing) or
    /// `postgres://user:password@host:port/database` (shared by several nodes).
    #[arg(
        long,
        env = "AGENTWIRE_DATABASE",
        default_value = "sqlite://agentwire.db",
        hide_env_values = true
    )]
    pub database: String,
    /// Database connections per node: PostgreSQL's pool (default 10; the notice listener
    /// holds one more), or SQLite's readers (default 4; there is always one writer).
    #[arg(long, env = "AGENTWIRE_DB_POOL_SIZE", value_parser = clap::value_parser!(u32).range(1..))]
    pub database_pool_size: Option<u32>,
    /// Seconds this node's lease lasts without a renewal (renewed every third of it). When a
    /// node stops renewing, another ends its runs with INTERRUPTED within this plus a third.
    #[arg(long, env = "AGENTWIRE_NODE_LEASE_S", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub node_lease_s: u64,
    /// Days a finished run's history is kept: runs that finished longer ago are deleted with
    /// their events (checked hourly, a small batch at a time), and a thread goes with its last
    /// run. 0 keeps every run forever.
    #[arg(long, env = "AGENTWIRE_RETAIN_RUNS_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=36_500))]
    pub retain_runs_days: u64,
    /// The name this node's id starts with in the database (random digits follow; logs and
    /// the runs' records show it). Default: the host name.
    #[arg(long, env = "AGENTWIRE_NODE_NAME")]
    pub node_name: Option<String>,
    /// HS256 secret for verifying tokens (at least 32 bytes).
    #[arg(long, env = "AGENTWIRE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The one algorithm tokens may be signed with: HS256 (with --jwt-secret), or RS256, ES256,
    /// ... (with --jwt-public-key).
    #[arg(long, env = "AGENTWIRE_JWT_ALGORITHM", default_value = "HS256")]
    pub jwt_algorithm: String,
    /// PEM file with the public key that verifies RS*/PS*/ES*/EdDSA tokens.
    #[arg(long, env = "AGENTWIRE_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// Give every tenant that has no usage data the demo data set.
    #[arg(long, env = "AGENTWIRE_DEMO_DATA")]
    pub demo_data: bool,
    /// A LiteLLM model_prices JSON file laid over the embedded price table.
    #[arg(long, env = "AGENTWIRE_PRICES")]
    pub prices: Option<PathBuf>,
    /// Serve TLS (https://, wss://) with this PEM certificate chain (the server's certificate
    /// first); needs --tls-key. Without it the server speaks plain TCP.
    #[arg(long, env = "AGENTWIRE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "AGENTWIRE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
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
    /// The tenant whose data the user may read (`org_id` claim); without it the user reads
    /// their personal tenant, `user:<sub>`.
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
    /// csv, jsonl, litellm, helicone, langfuse, azure, mooncake; detected when omitted.
    #[arg(long)]
    pub format: Option<String>,
    /// The model that served a trace without a model column (azure, mooncake).
    #[arg(long)]
    pub model: Option<String>,
    /// A LiteLLM model_prices JSON file, to price the imported records in the summary line.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Database URL: `sqlite://path.db` or `postgres://user:password@host:port/database`.
    #[arg(
        long,
        env = "AGENTWIRE_DATABASE",
        default_value = "sqlite://agentwire.db",
        hide_env_values = true
    )]
    pub database: String,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The file: generic usage (CSV / JSON lines), LiteLLM, Helicone, Langfuse, Azure trace,
    /// Mooncake trace, a `timestamp,value` series, or FOCUS billing.
    pub file: PathBuf,
    /// csv, jsonl, litellm, helicone, langfuse, azure, mooncake, series, focus; detected when omitted.
    #[arg(long)]
    pub format: Option<String>,
    /// The model that served a trace without a model column (azure, mooncake).
    #[arg(long)]
    pub model: Option<String>,
    /// Print the report as JSON (the same structure as the agents' `report`).
    #[arg(long)]
    pub json: bool,
    /// A LiteLLM model_prices JSON file laid over the embedded price table.
    #[arg(long, env = "AGENTWIRE_PRICES")]
    pub prices: Option<PathBuf>,
    /// A rate limit to check capacity against: `MODEL=TPM[:RPM]`, `*` for all traffic. Repeatable.
    #[arg(long = "rate-limit")]
    pub rate_limits: Vec<String>,
}

/// How `check` and `load` authenticate and where they connect.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The deployment: `http(s)://host:port`, `ws(s)://host:port/ws` or `host:port` (required, except
    /// for `check --list`). Repeat it (or separate with commas) for several nodes of one
    /// deployment: `check` adds cases across nodes, `load` spreads its sessions over them.
    #[arg(long, env = "AGENTWIRE_TARGET", value_delimiter = ',')]
    pub target: Vec<String>,
    /// A PEM file of CA certificates a TLS target's certificate may also be signed by, beside
    /// the system's roots.
    #[arg(long, env = "AGENTWIRE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// A JWT for the suite's user. Cases that need other users are skipped, saying so.
    #[arg(long, env = "AGENTWIRE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// HS256 secret to mint tokens with: distinct users, and fresh tenants for ground truth.
    #[arg(long, env = "AGENTWIRE_JWT_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// `org_id` for minted users: the tenant whose data they read (default: their own, or one
    /// shared tenant for `load`).
    #[arg(long)]
    pub org: Option<String>,
    /// `iss` claim for minted tokens.
    #[arg(long, env = "AGENTWIRE_JWT_ISSUER")]
    pub issuer: Option<String>,
    /// `aud` claim for minted tokens.
    #[arg(long, env = "AGENTWIRE_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// Limit on connecting (TCP, upgrade, connection_established) and on HTTP requests.
    #[arg(long, default_value = "10s")]
    pub connect_timeout: String,
    /// Limit from start_agent to the run's first event.
    #[arg(long, default_value = "15s")]
    pub first_event_timeout: String,
    /// Limit from start_agent to the run's terminal event.
    #[arg(long, default_value = "120s")]
    pub completion_timeout: String,
    /// A TOML file with a `[thresholds]` table (`ttfe = ["p(95)<15000"]`).
    #[arg(long)]
    pub thresholds: Option<PathBuf>,
    /// A threshold `metric=expression` (k6 grammar, e.g. `ttfe=p(95)<15000`); repeatable; wins
    /// over the file for its metric.
    #[arg(long = "threshold")]
    pub threshold: Vec<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the catalogue of cases and exit.
    #[arg(long)]
    pub list: bool,
    /// Run only cases matching a pattern: a section (`5`), an id (`5.4`), a glob (`5.*`) or words
    /// of a title (`tool pairs`); repeatable.
    #[arg(long)]
    pub only: Vec<String>,
    /// Skip cases matching a pattern (as --only); repeatable.
    #[arg(long)]
    pub skip: Vec<String>,
    /// Fail SHOULD cases too.
    #[arg(long)]
    pub strict: bool,
    /// Users (and sockets of one user) in the isolation cases.
    #[arg(long, default_value_t = 5)]
    pub users: usize,
    /// Runs in the performance case.
    #[arg(long, default_value_t = 5)]
    pub performance_runs: usize,
    /// Minimum quality score of a scenario, `scenario=score` (default 0.7 each); repeatable.
    #[arg(long)]
    pub min_quality: Vec<String>,
    /// How long to watch a socket after a run's terminal event for anything more of that run.
    #[arg(long, default_value = "250ms")]
    pub linger: String,
    /// Write a JUnit XML report to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a Markdown connectivity and execution report to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Closed model: this many users, each on its own socket, asking runs one after another.
    #[arg(long, default_value_t = 10)]
    pub users: usize,
    /// Closed model: users arrive spread evenly over this time.
    #[arg(long, default_value = "0s")]
    pub ramp: String,
    /// Closed model: runs each user asks (default 1; 0 = as many as fit in --duration).
    #[arg(long, default_value_t = 1)]
    pub runs_per_user: usize,
    /// Closed model: time between the scheduled starts of one user's runs (0s: back to back).
    #[arg(long, default_value = "0s")]
    pub pace: String,
    /// Closed model: each session stays open after its runs until every user has run, so all
    /// --users sessions are open at once (without it a session closes after its runs).
    #[arg(long, conflicts_with = "rate")]
    pub hold: bool,
    /// Open model: start this many runs per second, each on a fresh socket (instead of --users).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open model: at most this many runs at once; more start late.
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: usize,
    /// No run is scheduled after this; the load stops by itself.
    #[arg(long, default_value = "60s")]
    pub duration: String,
    /// At most this many runs in all.
    #[arg(long)]
    pub max_runs: Option<usize>,
    /// The agent every run addresses.
    #[arg(long, default_value = "supervisor")]
    pub agent: String,
    /// The question every run asks (a canary is appended).
    #[arg(long, default_value = "How can we reduce our AI costs?")]
    pub question: String,
    /// A file of questions, one per line (blank lines and lines starting with # are skipped):
    /// each run asks the next one in turn, or one drawn at random with --seed.
    #[arg(long, conflicts_with = "question")]
    pub questions: Option<PathBuf>,
    /// Draw the questions of --questions at random, reproducibly, with this seed.
    #[arg(long, requires = "questions")]
    pub seed: Option<u64>,
    /// Spread the users over this many tenants (with --secret: their org_id claims are
    /// `<org>-t0` ... `<org>-t{N-1}`).
    #[arg(long, default_value_t = 1)]
    pub tenants: usize,
    /// Allow a target that is not on this machine (loopback only by default).
    #[arg(long)]
    pub allow_remote: bool,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
}
