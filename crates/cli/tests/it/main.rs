//! The `agentwire` binary's integration tests, in one binary (one link instead of one per file).
//! Each test runs the built binary as a child process, as a user would, through
//! `agentwire_testkit::Agentwire`.
//!
//! - `commands`: `token`, `ingest`, `serve` with SIGTERM, and `demo` answered over a WebSocket.
//! - `analyze`: the offline report from files.
//! - `check_load`: `agentwire check` and `agentwire load` against `agentwire serve`.
//! - `hardening`: the operator's hardening flags of `serve`.
//! - `crash`: `serve` killed with SIGKILL mid-run, restarted and resumed (SQLite).
//! - `cluster`: three `serve` processes on one PostgreSQL database (skipped without one).
//!
//! None of them needs a process of its own: the kills hit child processes, and nothing here
//! changes process-wide state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod analyze;
mod check_load;
mod cluster;
mod commands;
mod crash;
mod hardening;

use agentwire_testkit::{Agentwire, Finished};
use std::time::Duration;

/// Upper bound for a child server to answer; never a pass/fail timing.
const WAIT: Duration = Duration::from_secs(60);

/// The binary under test (Cargo tells only this crate's tests where it is).
fn agentwire() -> Agentwire {
    Agentwire::new(env!("CARGO_BIN_EXE_agentwire"))
}

/// `agentwire ARGS...` to its end, with no `AGENTWIRE_*` variable from the environment.
fn run(args: &[&str]) -> Finished {
    agentwire().run(args, &[])
}
