//! The server's integration tests, in one binary (one link instead of one per file): each module
//! starts real servers with `agentwire_testkit::TestServer` (127.0.0.1:0, a temporary database,
//! real JWTs, real WebSockets) and checks what a user would.
//!
//! - `runs`: runs end to end, their figures checked against the uploaded records.
//! - `http_and_auth`: HTTP endpoints, authentication in all its forms, socket rules, security
//!   headers and CORS.
//! - `web`: the page's HTTP side (assets, demo token, thread history).
//! - `browser`: the page in headless Chromium (with `webdriver`, its WebDriver client).
//!
//! The hostile-input catalogue is a binary of its own (`tests/hostile.rs`): it installs a
//! process-wide tracing subscriber and searches everything the process logged, which must not
//! mix with (or slow down, at `trace`) the tests here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod frames;
mod http_and_auth;
mod runs;
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
