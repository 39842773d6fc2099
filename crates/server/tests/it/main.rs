//! The server's integration tests, in one binary (one link instead of one per file): each module
//! starts real servers with `agentwire_testkit::TestServer` (127.0.0.1:0, a temporary database,
//! real JWTs, real WebSockets) and checks what a user would.
//!
//! - `runs`: runs end to end, their figures checked against the uploaded records.
//! - `http_and_auth`: HTTP endpoints, authentication in all its forms, socket rules, security
//!   headers and CORS.
//! - `web`: the page's HTTP side (assets, demo token, thread history).
//! - `identities`: expiring tokens, personal tenants, (tenant, user) keys, store failures seen
//!   only as correlation ids.
//! - `connections`: HTTP header and idle timeouts, connection caps, followed runs, TLS.
//! - `browser`: the page in headless Chromium (with `webdriver`, its WebDriver client).
//! - `agui`: the AG-UI endpoints, and the real `@ag-ui/client` in Node against the server.
//! - `cluster`: several nodes on one PostgreSQL database (skipped without one, saying why).
//!
//! Every test runs on the backend `AGENTWIRE_TEST_BACKEND` names (SQLite by default; `.ci/run`
//! runs this binary a second time on PostgreSQL).
//!
//! The hostile-input catalogue is a binary of its own (`tests/hostile.rs`): it installs a
//! process-wide tracing subscriber and searches everything the process logged, which must not
//! mix with (or slow down, at `trace`) the tests here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agui;
mod browser;
mod cluster;
mod connections;
mod frames;
mod http_and_auth;
mod identities;
mod runs;
mod tasks;
mod web;
mod webdriver;

/// `$12,345.67`, as the answers and the page (Intl en-US) write dollars, computed here
/// independently of the engine's formatter.
fn usd(value: f64) -> String {
    let cents = (value * 100.0).round() as u64;
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("${grouped}.{:02}", cents % 100)
}
