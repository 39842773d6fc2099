//! AG-UI, the Agent-User Interaction protocol, beside our WebSocket: any AG-UI front end (e.g.
//! CopilotKit) can run our agents, and resume a stream by `Last-Event-ID`, which AG-UI itself
//! cannot yet.
//!
//! An AG-UI run is an ordinary agentwire run, started through the same engine call as a socket's
//! `start_agent`: it is in the thread's history, can be followed and cancelled over the socket,
//! and counts against the same limits. Only the wire differs: the run's events are mapped to AG-UI
//! events and written as Server-Sent Events. `docs/agui.md` has the mapping table and the id
//! scheme.
//!
//! The files, one job each:
//! - `input`: reading a `RunAgentInput` into a question, a thread and run parameters.
//! - `event`: the AG-UI events we send, as their JSON.
//! - `mapping`: agentwire run events to AG-UI events, a pure function of the run's events.
//! - `sse`: event ids, the bytes of an event, the body stream with its keep-alive.
//! - `routes`: the HTTP handlers and their limits.
//!
//! AG-UI's ordering rules, which every stream must pass, are checked from the client side in
//! `agentwire_check::agui` (the validation suite judges deployments with them; this crate's tests
//! judge the mapping with them).

pub mod event;
pub mod input;
pub mod mapping;
pub mod routes;
pub mod sse;

pub use routes::{cancel, resume, run_agent, run_supervisor};
