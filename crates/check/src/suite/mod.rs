//! `agentwire check`: the validation suite, run against any deployment of the wire contract.
//!
//! The suite is a catalogue of cases ([`Case::all`]), each numbered by the PROTOCOL.md section it
//! judges (`5.4 tool pairs are matched`), each a MUST or a SHOULD. [`run`] connects to the target,
//! runs the selected cases in order, judges every run it collected against the grammar, evaluates
//! the thresholds over what it measured, and returns a [`SuiteReport`] with an exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every MUST case passed (and, with `--strict`, every SHOULD) and no threshold was breached |
//! | 1 | a case failed or could not be carried out (`fail` or `error`) |
//! | 2 | the target could not be reached, or the configuration is wrong |
//! | 99 | every case passed but a threshold was breached |
//!
//! When several apply the lowest-numbered non-zero reason wins in the order 2, 1, 99.
//!
//! Where things are: `catalogue` is the table of cases; `cases/` holds their functions, one file
//! per group; `runner` decides, case by case, whether it runs and turns outcomes into this
//! module's report types; `probe` and `context` are what cases talk and file evidence through;
//! `select` reads `--only`/`--skip`; `config` is the configuration.
//!
//! What it must not do: pass without evidence. There is no mock and no fallback; an unreachable
//! target or refused credentials fail with their reason; a case is `skipped` only when the user
//! deselected it or it needs something the configuration does not give (a `--secret` to mint
//! other users, an endpoint the deployment does not offer), and it then says which.

mod cases;
mod catalogue;
pub(crate) mod config;
mod context;
mod outcome;
mod probe;
mod runner;
mod select;

pub use catalogue::{Case, CaseInfo, Group, Level, Needs};
pub use config::{
    AuthMode, ConfigError, DEFAULT_COMPLETION_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_FIRST_EVENT_TIMEOUT, DEFAULT_MIN_QUALITY, DEFAULT_PERFORMANCE_RUNS, DEFAULT_USERS,
    SuiteConfig,
};
pub use context::{JudgedRun, RunSummary};
pub use outcome::Verdict;
pub use runner::{exit_code, run};
pub use select::{matches_pattern, section_order};

use crate::threshold::{ThresholdResult, ThresholdVerdict};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }
}

/// One case's outcome, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub id: &'static str,
    pub title: &'static str,
    pub level: Level,
    pub group: Group,
    pub verdict: Verdict,
    /// The rule the case holds the deployment to.
    pub expected: &'static str,
    /// What was observed, when the case did not pass (and notes when it did).
    pub reason: Option<String>,
    /// Frames that show what happened (on failure), in order.
    pub transcript: Vec<Value>,
    pub duration_ms: f64,
}

impl CaseResult {
    /// Whether this result makes the suite fail (exit code 1).
    pub fn is_failure(&self, strict: bool) -> bool {
        matches!(self.verdict, Verdict::Fail | Verdict::Error)
            && (self.level == Level::Must || strict)
    }
}

/// What happened in one `check`.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub target: String,
    pub started_at: String,
    pub duration_ms: f64,
    /// Why the target was taken as unreachable (exit code 2), when it was.
    pub unreachable: Option<String>,
    /// The first `connection_established` frame, for the connectivity report.
    pub connection: Option<Value>,
    pub strict: bool,
    /// Cases in catalogue order (by section number).
    pub cases: Vec<CaseResult>,
    pub thresholds: Vec<ThresholdResult>,
    /// Every metric with a value: trends with count/mean/percentiles, counters, rates.
    pub metrics: BTreeMap<String, Value>,
    /// The seed suite's per-run figures.
    pub runs: Vec<RunSummary>,
    /// Every frame that carried another user's canary or run id, with the case that saw it.
    pub leaks: Vec<LeakRecord>,
    pub exit_code: u8,
}

/// One isolation leak as reported.
#[derive(Debug, Clone, Serialize)]
pub struct LeakRecord {
    pub case: String,
    pub leak: crate::isolation::Leak,
    pub description: String,
    pub frame: Value,
}

impl SuiteReport {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.cases.iter().filter(|c| c.verdict == verdict).count()
    }

    /// The cases that failed or could not be carried out, in report order.
    pub fn failures(&self) -> Vec<&CaseResult> {
        self.cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
            .collect()
    }

    pub fn breached(&self) -> usize {
        self.thresholds
            .iter()
            .filter(|t| t.verdict == ThresholdVerdict::Breached)
            .count()
    }
}

/// Progress as the suite goes, for a live display.
#[derive(Debug)]
pub enum Progress<'a> {
    Started {
        total: usize,
    },
    CaseStarted {
        index: usize,
        total: usize,
        info: CaseInfo,
    },
    CaseFinished {
        index: usize,
        total: usize,
        result: &'a CaseResult,
    },
}
