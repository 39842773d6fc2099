//! The agentwire engine: runs requests with the supervisor and its agents, and emits every step as a
//! run event.
//!
//! Layout:
//! - [`Engine`] (`engine.rs`): the run registry: start, cancel, follow (replay then live), limits,
//!   time limits, graceful shutdown, and the per-tenant data cache.
//! - `run.rs`: one run's shared state: its in-memory event log, who is following it, how it stops.
//! - `context.rs`: what an agent holds while it works: it emits events (persisted first, then
//!   published), calls tools with cancellation, and hands off to other agents.
//! - `agents/`: one file per agent; `tools/`: one file per tool. Tools are pure functions over the
//!   tenant's usage records (the `analytics` crate); agents decide which tools to call and say what
//!   they found.
//!
//! The engine knows nothing of sockets or HTTP: a caller receives an [`EventStream`] and forwards it
//! wherever it likes. It must never block the async runtime: analytics runs under `spawn_blocking`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod agents;
mod context;
mod engine;
mod error;
mod run;
mod tenant;
mod tools;

pub use agents::{agent_description, agent_tools};
pub use engine::{Engine, EngineConfig, EngineMetrics, Principal, RunHistory, StartedRun};
pub use error::EngineError;
pub use run::EventStream;
pub use tools::analysis::{SeriesFindings, analyze_focus, analyze_series, analyze_usage};
pub use tools::compose_report::ComposedReport;
