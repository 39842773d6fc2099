//! The suite's configuration: where the target is, how to authenticate, the timeouts and sizes,
//! the selection, and the thresholds; and why a configuration is refused.
//!
//! What it must not do: reach the network. Checking that the configuration is usable happens
//! before anything is sent; a refusal here is exit code 2.

use crate::quality::Scenario;
use crate::threshold::Thresholds;
use crate::token::TokenError;
use std::collections::BTreeMap;
use std::time::Duration;

/// How the suite authenticates.
#[derive(Clone)]
pub enum AuthMode {
    /// Use this token for the main user. Cases that need other users are skipped, saying so.
    Token(String),
    /// Mint HS256 tokens with this secret: distinct users, and fresh tenants for ground truth.
    Secret {
        secret: String,
        issuer: Option<String>,
        audience: Option<String>,
        /// `org_id` for the suite's users (the tenant whose data they read); none: their own.
        org: Option<String>,
    },
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Secret {
                issuer,
                audience,
                org,
                ..
            } => f
                .debug_struct("Secret")
                .field("secret", &"<redacted>")
                .field("issuer", issuer)
                .field("audience", audience)
                .field("org", org)
                .finish(),
        }
    }
}

/// Everything `check` needs to run.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// `http://host:port`, `ws://host:port/ws` or `host:port`.
    pub target: String,
    /// Further nodes of the same deployment (each another `--target`): the cases across nodes
    /// start a run on `target` and resume, cancel or read it on these. Empty: those cases skip.
    pub other_targets: Vec<String>,
    pub auth: AuthMode,
    /// Connect (TCP, upgrade, `connection_established`) and every HTTP request.
    pub connect_timeout: Duration,
    /// From `start_agent` to the run's first event.
    pub first_event_timeout: Duration,
    /// From `start_agent` to the run's terminal event.
    pub completion_timeout: Duration,
    /// How long a socket is watched after a run's terminal event for anything more of that run.
    pub linger: Duration,
    /// Distinct users (and sockets of one user) in the isolation cases.
    pub users: usize,
    /// Runs in the performance case.
    pub performance_runs: usize,
    /// Minimum quality score per scenario (default 0.7).
    pub min_quality: BTreeMap<String, f64>,
    /// Fail SHOULD cases too.
    pub strict: bool,
    /// Run only cases matching one of these patterns (empty: all).
    pub only: Vec<String>,
    /// Skip cases matching one of these patterns.
    pub skip: Vec<String>,
    pub thresholds: Thresholds,
    /// PEM CA certificates a TLS target is also verified against (`--ca-cert`).
    pub ca_cert: Option<Vec<u8>>,
}

/// The seed suite's numbers.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_FIRST_EVENT_TIMEOUT: Duration = Duration::from_secs(15);
pub const DEFAULT_COMPLETION_TIMEOUT: Duration = Duration::from_secs(120);
pub const DEFAULT_USERS: usize = 5;
pub const DEFAULT_PERFORMANCE_RUNS: usize = 5;
pub const DEFAULT_MIN_QUALITY: f64 = 0.7;

impl SuiteConfig {
    /// The seed suite's defaults for `target` and `auth`, with the default thresholds.
    pub fn new(target: impl Into<String>, auth: AuthMode) -> Self {
        Self {
            target: target.into(),
            other_targets: Vec::new(),
            auth,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            first_event_timeout: DEFAULT_FIRST_EVENT_TIMEOUT,
            completion_timeout: DEFAULT_COMPLETION_TIMEOUT,
            linger: Duration::from_millis(250),
            users: DEFAULT_USERS,
            performance_runs: DEFAULT_PERFORMANCE_RUNS,
            min_quality: BTreeMap::new(),
            strict: false,
            only: Vec::new(),
            skip: Vec::new(),
            thresholds: Thresholds::from_pairs(crate::threshold::CHECK_DEFAULTS)
                .unwrap_or_default(),
            ca_cert: None,
        }
    }

    pub(crate) fn min_quality(&self, scenario: Scenario) -> f64 {
        self.min_quality
            .get(scenario.name())
            .copied()
            .unwrap_or(DEFAULT_MIN_QUALITY)
    }

    /// Refuses sizes the suite will not run with.
    pub(crate) fn check_sizes(&self) -> Result<(), ConfigError> {
        if self.users == 0 || self.users > 1000 {
            return Err(ConfigError::Invalid(
                "--users must be between 1 and 1000".to_owned(),
            ));
        }
        if self.performance_runs == 0 || self.performance_runs > 1000 {
            return Err(ConfigError::Invalid(
                "--performance-runs must be between 1 and 1000".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Why the suite (or the load generator) could not start: a configuration problem (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid target: {0}")]
    Target(String),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{0}")]
    Invalid(String),
}
