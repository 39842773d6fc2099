//! The agentwire wire contract, version 1, as Rust types.
//!
//! This crate is the single place where the JSON shapes of `../shared/PROTOCOL.md` live. The server,
//! the validation suite and the load generator all speak through these types. It does no I/O and
//! must never depend on tokio, axum or the store.
//!
//! Layout:
//! - [`client`]: what a client sends (`start_agent` and its aliases, `cancel`, `resume`, ...), with a
//!   forgiving parser that turns every bad frame into a [`client::ParseError`] carrying an
//!   [`ErrorCode`] and the request `id` when it could be read.
//! - [`server`]: what the server sends: control frames and [`server::RunEvent`]s.
//! - [`agents`]: the agent names and their aliases.
//! - [`error`]: the stable error codes of PROTOCOL.md section 6.
//! - [`time`]: the timestamp format (RFC 3339, UTC, milliseconds).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod agents;
pub mod client;
pub mod error;
pub mod server;
pub mod time;
pub mod tool_data;

pub use agents::AgentKind;
pub use client::{ClientMessage, ParseError, RunParams, StartRun};
pub use error::ErrorCode;
pub use server::{
    ConnectionEstablished, ErrorFrame, EventKind, Limits, RunEvent, ServerFrame, ToolStatus,
};
pub use tool_data::ToolData;

/// The subprotocol name a client offers to speak this version of the contract.
pub const SUBPROTOCOL: &str = "agentwire.v1";

/// Prefix of the subprotocol item that carries a JWT (`jwt.<base64url(JWT)>`).
pub const JWT_SUBPROTOCOL_PREFIX: &str = "jwt.";

/// Close code sent when a connection did not authenticate within the auth timeout.
pub const CLOSE_AUTH_TIMEOUT: u16 = 4401;

/// Close code for a frame over the size limit (RFC 6455 "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;
