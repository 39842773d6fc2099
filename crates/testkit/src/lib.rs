//! Test support for agentwire's integration tests (dev-only, never published): the one way to
//! start a real server, open a temporary database, mint tokens, speak HTTP and WebSocket to a
//! server, and run the built `agentwire` binary.
//!
//! Nothing here is a fake: [`TestServer`] is the real server (`agentwire_server::serve`) on
//! `127.0.0.1:0` over a real database, tokens are real JWTs signed with the server's key, and
//! sockets are real WebSockets spoken by the validation suite's own client
//! ([`agentwire_check::client::Session`]).
//!
//! Modules:
//! - [`data`]: the public data sets in `../shared/data`, or why a test skips without them.
//! - [`database`]: [`TestDatabase`], a fresh database per test on SQLite or PostgreSQL (chosen by
//!   `AGENTWIRE_TEST_BACKEND`, or asked for), and whether PostgreSQL is available here.
//! - [`server`]: [`TestServer`] and its [`TestServerBuilder`] (step delay, limits, demo data,
//!   timeouts, JWT settings).
//! - [`jwt`]: the test secret and RSA keys, valid, forged, expired and unsigned tokens.
//! - [`http`]: a small HTTP/1.1 client (async and blocking) and the one `dechunk`.
//! - [`ws`]: connection options and raw WebSocket upgrades with chosen headers.
//! - [`net`]: ports nothing listens on, and a TCP proxy whose connections can be cut.
//! - [`process`]: the built binary as a child process (`agentwire serve`, one-shot commands).
//! - [`tls`]: a throwaway CA and the server certificates it signs, for TLS tests.
//!
//! Helpers panic with what went wrong: they run inside tests, where a panic is the failure
//! report. Where a test must observe a failure itself (a refused upgrade, an unreachable
//! WebDriver), the helper returns a `Result` instead. This crate must not hold test cases or
//! assertions about behaviour; those belong in the tests that use it.
//!
//! # Writing a new integration test
//!
//! Put it in a module of the crate's one integration-test binary (`crates/server/tests/it/` or
//! `crates/cli/tests/it/`) rather than a new file under `tests/`: every file there is another
//! binary to link. Then:
//!
//! ```no_run
//! use agentwire_testkit::{TestServer, token};
//! use agentwire_check::client::Credentials;
//! use std::time::Duration;
//!
//! # async fn example() {
//! let server = TestServer::builder()
//!     .demo_data()
//!     .step_delay(Duration::from_millis(20))
//!     .start()
//!     .await;
//! // HTTP: the answer's status, headers and body.
//! let health = server.get("/health", &[]).await;
//! assert_eq!(health.json()["status"], "healthy");
//! // WebSocket: the suite's client with a real HS256 token for user `alice`.
//! let mut session = server
//!     .connect(Credentials::Bearer(token("alice", None)))
//!     .await
//!     .expect("alice connects");
//! session.send_json(&serde_json::json!({"type": "ping", "id": "1"})).await.expect("sent");
//! server.stop().await.expect("serve returns after shutdown");
//! # }
//! ```
//!
//! For the binary, `crates/cli/tests/it` passes `env!("CARGO_BIN_EXE_agentwire")` to
//! [`Agentwire::new`] (only the cli crate's own tests can read that variable) and uses
//! [`Agentwire::serve`] / [`Agentwire::run`]. Tests that need `../shared/data` skip, saying why,
//! when it is absent. A test that must own its process (one that installs a global tracing
//! subscriber, say) gets its own file under `tests/`, with a comment saying why.

// A helper's failure is the test's failure report: `expect` says which step failed, and nothing
// here runs outside a test.
#![allow(clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod data;
pub mod database;
pub mod http;
pub mod jwt;
pub mod net;
pub mod process;
pub mod server;
pub mod tls;
pub mod ws;

pub use data::shared_data;
pub use database::{
    BACKEND_VAR, POSTGRES_URL_VAR, TempStore, TestBackend, TestDatabase, database_url,
    postgres_admin_url,
};
pub use http::{HttpError, HttpResponse, dechunk, http, http_blocking};
pub use jwt::{
    SECRET, alg_none_token, claims, decode_claims, expired_token, forged_token, sign, sign_hs256,
    sign_rs256, token, usage_writer_token,
};
pub use net::{CuttableProxy, unused_port};
pub use process::{Agentwire, ChildProcess, Finished, ServeProcess};
pub use server::{TestServer, TestServerBuilder};
pub use tls::{ServerCert, TestCa};
