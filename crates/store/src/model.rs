//! The records the store reads and writes: runs, threads and stored events.
//!
//! Plain data plus the run status vocabulary. No SQL and no I/O here; the usage record itself is
//! `agentwire_analytics::UsageRecord`, re-exported from the crate root.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::StoreError;

/// Life cycle of a run: `Accepted` → `Running` → one of the three terminal states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Accepted,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Accepted,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The stored (and logged) name: `"accepted"`, `"running"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Accepted => "accepted",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// The inverse of [`RunStatus::as_str`]; `None` for anything else (exact, lower case).
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }

    /// True for completed, failed and cancelled: the run will emit nothing more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown run status {s:?}")))
    }
}

/// One run: a request executed by its entry agent.
///
/// Timestamps are stored with millisecond precision; anything finer is dropped on write.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub thread_id: String,
    pub user_id: String,
    pub tenant_id: String,
    pub agent: String,
    pub user_request: String,
    pub status: RunStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Highest `seq` appended to the event log for this run (0 before the first event).
    pub last_seq: u64,
}

/// One conversation thread. The key is `(tenant_id, user_id, thread_id)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadRecord {
    pub thread_id: String,
    pub user_id: String,
    pub tenant_id: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One event of a run's log, as it was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub run_id: String,
    pub seq: u64,
    /// The JSON frame text as the engine stored it: the frame sent to the client, less the
    /// run's question in `agent_started` and `agent_completed`, which the engine keeps in the
    /// run's row only and puts back when it reads the log.
    pub payload: String,
}

/// One event to append as part of [`crate::Store::end_run`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub seq: u64,
    /// The event's `type`, e.g. `agent_error`.
    pub event_type: String,
    /// The JSON frame text exactly as it will be sent, shared: the engine's frame and the store's
    /// pending write hold the same text, not a copy each.
    pub payload: Arc<str>,
}

/// Where a page of a thread's runs ended: give it back to [`crate::Store::list_thread_runs`]
/// for the next page. Opaque: it holds the last run's place in the thread's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCursor {
    pub(crate) created_at: i64,
    /// The backend's insertion order (SQLite `rowid`, PostgreSQL `run_no`), which breaks ties
    /// between runs created in the same millisecond.
    pub(crate) order: i64,
}

/// One page of a thread's runs, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    pub runs: Vec<RunRecord>,
    /// `Some` when the page is full: more runs may follow it.
    pub next: Option<RunCursor>,
}

/// A thread's title: the first 80 characters of the question that created it.
pub fn thread_title(user_request: &str) -> String {
    user_request.chars().take(80).collect()
}

/// A usage upload in progress ([`crate::Store::begin_usage_upload`]): its staged rows are
/// stored but invisible to readers until [`crate::Store::commit_usage_upload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageUpload {
    /// Unique for the life of the database: never handed out twice.
    pub upload_id: i64,
    pub tenant_id: String,
}

/// The answer of [`crate::Store::admit_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The run was stored; it counts against the user's limit until it finishes.
    /// `usage_version` is the tenant's [`crate::Store::usage_version`] as the admission read
    /// it: records at least that new hold every upload committed before the run was admitted,
    /// on any node.
    Admitted { usage_version: u64 },
    /// The thread already has a run in flight (`RUN_CONFLICT`); nothing was stored.
    Conflict { run_id: String },
    /// The user already has `active` runs in flight, at or above the limit; nothing was stored.
    TooMany { active: u64, limit: u32 },
}

impl Admission {
    /// Why a run may not be admitted, from what its user has in flight: `conflict`, the run of
    /// its thread in flight if there is one, and `active`, how many runs in all. `None` when it
    /// may be. The one rule both backends apply, each reading the figures its own way.
    pub(crate) fn refusal(active: u64, conflict: Option<String>, limit: u32) -> Option<Admission> {
        match conflict {
            Some(run_id) => Some(Admission::Conflict { run_id }),
            None if active >= u64::from(limit) => Some(Admission::TooMany { active, limit }),
            None => None,
        }
    }
}

/// The answer of [`crate::Store::end_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndRun {
    /// The events and the terminal status were written together.
    Ended,
    /// The run had already finished (its executor or another sweeper got there first); nothing
    /// was written.
    AlreadyFinished { status: RunStatus },
    /// Events were appended after `after_seq` since the caller read the log; nothing was
    /// written. Read the log again and retry from `last_seq`.
    Moved { last_seq: u64 },
}

/// A node (one `agentwire serve` process) sharing the database, with its lease.
///
/// Lease times come from the database's clock on PostgreSQL, so nodes with skewed clocks still
/// agree on who has expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub node_id: String,
    pub started_at: DateTime<Utc>,
    /// The node is dead once the database clock passes this without a renewal.
    pub lease_expires_at: DateTime<Utc>,
    /// The node that claimed the sweep of this (expired) node, if any.
    pub swept_by: Option<String>,
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded: one process owns the file. Startup recovery may end every run in flight.
    Sqlite,
    /// Shared by several nodes: a node may end only its own runs, or those of a node whose
    /// lease lapsed and whose sweep it claimed.
    Postgres,
}
