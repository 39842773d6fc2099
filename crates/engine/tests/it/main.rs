//! The engine's integration tests, in one binary (one link instead of one per file on a 2-core CI
//! machine). Each module is one subject; `support` holds the setup they share: a real SQLite store
//! in a temporary directory, an engine over it, principals, requests, and reading a run to its end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission;
mod analysis;
mod answer;
mod cancel;
mod corpus;
mod golden;
mod questions;
mod recovery;
mod runs;
mod support;
