//! The cases of the catalogue, one file per group, one function per case.
//!
//! Each case talks to the deployment through `Probe`s, judges what it saw against one rule of
//! the contract, and returns its `Outcome`: on failure, what was observed and the frames that
//! show it. Cases use only the contract's fields; our server's extras (`report`, `tenant_id`)
//! appear at most as notes. `common` holds what several groups use: the questions the suite asks
//! when the answer itself is not judged, frame accessors, and the ping/pong exchange.
//!
//! What a case must not do: pass on absence of evidence (a reply that never came is a failure,
//! not a pass), or leave a run unfollowed (every started run is followed to its end, so the
//! grammar cases judge it).

pub(crate) mod agui;
pub(crate) mod auth;
pub(crate) mod cluster;
pub(crate) mod common;
pub(crate) mod connectivity;
pub(crate) mod execution;
pub(crate) mod grammar_rules;
pub(crate) mod ground_truth;
pub(crate) mod isolation;
pub(crate) mod quality;
pub(crate) mod recovery;
pub(crate) mod runs;
