//! The agentwire validation suite: the client side of the wire contract.
//!
//! This crate judges any deployment that speaks PROTOCOL.md, ours or another, so it depends on the
//! `protocol` crate only and never on the server, engine or store. It talks to a live deployment over
//! a real socket; it never substitutes a mock when the target is down: an unreachable target is a
//! failure with its reason.
//!
//! The plan: this crate will hold `agentwire check` (the validation suite: connect, authenticate,
//! run the agents, judge every frame, measure, report) and `agentwire load` (the load generator);
//! the `cli` crate only parses arguments and calls in here. Today it holds the two foundations
//! both build on, which the server's integration tests already use:
//! - [`grammar`]: the contract's rules for one run (sections 3 and 5), applied to raw JSON frames.
//! - [`client`]: a WebSocket client with the three ways of authenticating, frame reading that never
//!   drops a frame, and run collection on sockets that carry several runs.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod client;
pub mod grammar;

pub use client::{
    Accepted, ClientError, ConnectOptions, Credentials, Frame, RunTranscript, Session,
    jwt_subprotocol, websocket_url,
};
pub use grammar::{Violation, check_frame, check_run, critical_events_present, rules};
