//! The agentwire engine: runs requests with the supervisor and its agents, and emits every step as a
//! run event.
//!
//! Layout, from the caller down (a module only uses those below it):
//! - [`Engine`] (`engine.rs`): start, cancel, follow, history, ingest, shutdown; `registry.rs`
//!   holds the runs executing here and counts them (the store admits them, across nodes);
//!   `recovery.rs` ends runs whose executor is gone; `tenant.rs` loads and caches each tenant's
//!   records; `retention.rs` deletes runs past the retention age, with their events.
//! - `cluster.rs`: this node among the others on one database: its lease, the sweeper that ends
//!   a dead node's runs, and the store's notices (wake-ups, cancels, cache invalidations);
//!   `follow.rs`: following a run through the event log (one executing on another node).
//! - `driver.rs`: one run from `agent_started` to its terminal event; it plans the run once
//!   (`plan.rs`, from `question.rs`: how the request's words are read).
//! - `agents/`: one file per agent; they follow the plan and leave what they find in the run's
//!   `findings.rs`. `context.rs` is what an agent holds: the plan, the scope (`scope.rs`), the
//!   findings, and the event emitter (events persisted first, then published through `run.rs`).
//! - `tools/`: one file per tool, each a pure function over the tenant's records (the `analytics`
//!   crate); `report/` composes the answer (Markdown and `report` JSON) from the findings.
//! - `offline.rs`: `agentwire analyze`, the same tools and report over a file's records.
//! - `stop.rs`: why a run stops early, the error every part of a run returns.
//!
//! - `background.rs`: the runtime admitted runs execute on, below the caller's priority (the
//!   caller's runtime reads requests and writes their `agent_started`);
//! - `pool.rs`: the CPU pool the tools run on and the line runs wait in for an analysis slot;
//!   `memo.rs`: tool results shared by runs over the same data; `emitter.rs`: a run's events,
//!   serialized once, persisted in order beside the run, then published.
//!
//! The engine knows nothing of sockets or HTTP: a caller receives an [`EventStream`] of
//! [`EventFrame`]s (the JSON each event was serialized to once) and forwards it wherever it likes.
//! It must never block the async runtime: analytics runs on the CPU pool.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod agents;
mod background;
mod cluster;
mod context;
mod driver;
mod emitter;
mod engine;
mod error;
mod findings;
mod follow;
mod frame;
mod logged;
mod memo;
mod offline;
mod plan;
mod pool;
mod question;
mod recovery;
mod registry;
mod report;
mod retention;
mod run;
mod scope;
mod shown;
mod stop;
mod tenant;
mod tools;

pub use agents::{agent_description, agent_tools};
pub use engine::{
    DEFAULT_NODE_LEASE, DEFAULT_RETAIN_RUNS, DEFAULT_RUNS_PAGE, Engine, EngineConfig, EventPages,
    Principal, StartedRun, ThreadHistory,
};
pub use error::EngineError;
pub use findings::{SeriesFindings, SeriesForecast};
pub use follow::DEFAULT_LOG_PAGE;
pub use frame::EventFrame;
pub use offline::{analyze_focus, analyze_series, analyze_usage};
pub use registry::EngineMetrics;
pub use report::ComposedReport;
pub use retention::{
    DEFAULT_RETENTION_BATCH, DEFAULT_RETENTION_INTERVAL, DEFAULT_RETENTION_PAUSE, RetentionConfig,
};
pub use run::EventStream;
