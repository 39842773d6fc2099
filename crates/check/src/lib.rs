//! The agentwire validation suite and load generator: the client side of the wire contract.
//!
//! This crate judges any deployment that speaks PROTOCOL.md, ours or another, so it depends on the
//! `protocol` crate only and never on the server, engine or store. It talks to a live deployment over
//! a real socket; it never substitutes a mock when the target is down: an unreachable target is a
//! failure with its reason.
//!
//! Layout:
//! - [`suite`]: `agentwire check`: the catalogue of cases numbered by PROTOCOL.md section (one
//!   table, `suite/catalogue.rs`), the cases in one file per group (`suite/cases/`), the runner
//!   and its exit codes.
//! - [`load`]: `agentwire load`, closed and open workloads measured from each run's scheduled
//!   start, with every session's events judged and canaries checked.
//! - [`report`]: the terminal table, JSON, JUnit XML and Markdown renderings of a suite run.
//! - [`grammar`]: the contract's rules for one run (sections 3 and 5), applied to raw JSON frames:
//!   what each frame carries, and how a run's events follow one another.
//! - [`agui`]: AG-UI from the client side: a Server-Sent Events reader and AG-UI's ordering rules.
//! - [`client`]: a WebSocket client with the three ways of authenticating, frame reading that never
//!   drops a frame, and run collection on sockets that carry several runs.
//! - [`http`]: the HTTP/1.1 requests of section 7 (health, usage upload, run events).
//! - [`target`]: the WebSocket URL and HTTP root one `--target` names.
//! - [`tls`]: the roots `wss://` and `https://` targets are verified against (the platform's
//!   plus `--ca-cert`), and the words for a refused certificate.
//! - [`token`]: HS256 tokens minted with `--secret`, and the forged, expired and `alg: none` ones.
//! - [`isolation`]: canaries and run-id ownership; every frame received is scanned for leaks.
//! - [`quality`], [`text`], [`truth`], [`lookups`]: answer quality scores, reading figures and
//!   dates out of answers, the ground-truth data set with its known answers, and the lookup
//!   questions about it with their figures.
//! - [`metrics`], [`threshold`]: what is measured (HdrHistograms, counters, rates) and k6-style
//!   thresholds over it.
//!
//! `examples/soak_chaos.rs` is the soak's second client (cancels and reconnects); it uses this
//! crate only.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod agui;
pub mod client;
pub mod grammar;
pub mod http;
pub mod isolation;
pub mod load;
pub mod lookups;
pub mod metrics;
pub mod quality;
pub mod report;
pub mod suite;
pub mod target;
pub mod text;
pub mod threshold;
pub mod tls;
pub mod token;
pub mod truth;

pub use client::{
    Accepted, ClientError, ConnectOptions, Credentials, Frame, RunTranscript, Session,
    jwt_subprotocol, websocket_url,
};
pub use grammar::{Violation, check_frame, check_run, critical_events_present, rules};
