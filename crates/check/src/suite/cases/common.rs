//! What several groups of cases use: the questions the suite asks when the answer itself is not
//! judged, frame accessors, and the ping/pong exchange.
//!
//! What it must not do: judge a rule on its own; cases judge, these only ask and read.

use crate::suite::outcome::{OrOutcome, ensure};
use crate::suite::probe::OrFail as _;
use crate::suite::probe::{Probe, Request};
use serde_json::{Value, json};

pub(crate) const DATA_QUESTION: &str =
    "Where did our AI spend go in the last 30 days, by model and team?";
pub(crate) const OPTIMIZATION_QUESTION: &str =
    "Which changes would cut our AI costs the most, and by how much per month?";
pub(crate) const SUPERVISOR_QUESTION: &str = "How can we reduce our AI costs?";

/// A data agent run: the suite's usual run when only the protocol is judged.
pub(super) fn data_run() -> Request {
    Request::start_agent("data", DATA_QUESTION)
}

/// A supervisor run: long enough to cancel or resume, and it hands off.
pub(super) fn supervisor_run() -> Request {
    Request::start_agent("supervisor", SUPERVISOR_QUESTION)
}

/// The frame's `type`, `<no type>` when it has none.
pub(super) fn kind(frame: &Value) -> &str {
    frame
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("<no type>")
}

/// A string field of a frame, empty when missing.
pub(super) fn field<'a>(frame: &'a Value, name: &str) -> &'a str {
    frame.get(name).and_then(Value::as_str).unwrap_or("")
}

/// A fresh id for a client message.
pub(super) fn id(prefix: &str) -> String {
    format!("{prefix}-{}", crate::token::random_hex(8))
}

/// Sends a JSON `ping` and fails the case unless its answer is a `pong` (`what` names the ping in
/// the failure, e.g. "a ping after first-frame authentication").
pub(super) async fn expect_pong(probe: &mut Probe, what: &str) -> OrOutcome<()> {
    expect_pong_to(probe, json!(id("ping")), what).await
}

/// [`expect_pong`] with the ping's `id` given (a number, to judge how ids are echoed).
pub(super) async fn expect_pong_to(probe: &mut Probe, ping_id: Value, what: &str) -> OrOutcome<()> {
    let reply = exchange(probe, &json!({"type": "ping", "id": ping_id}), what).await?;
    ensure!(
        probe,
        kind(&reply) == "pong",
        "{what} was answered with {}, not pong",
        kind(&reply)
    );
    Ok(())
}

/// Sends `message` and fails the case unless the reply to it is `error` with `code`.
pub(super) async fn expect_error(
    probe: &mut Probe,
    message: &Value,
    code: &str,
    what: &str,
) -> OrOutcome<Value> {
    let reply = exchange(probe, message, what).await?;
    ensure!(
        probe,
        kind(&reply) == "error" && field(&reply, "error_code") == code,
        "{what} got {} {}, not error {code}",
        kind(&reply),
        field(&reply, "error_code")
    );
    Ok(reply)
}

/// Sends `message` and returns the reply to it (the frame whose `request_id` is its `id`, a
/// number read as its decimal text); `what` names the message in a failure.
pub(super) async fn exchange(probe: &mut Probe, message: &Value, what: &str) -> OrOutcome<Value> {
    let request_id = match message.get("id") {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    probe
        .send(message)
        .await
        .or_fail(probe, &format!("sending {what}"))?;
    probe
        .reply(&request_id)
        .await
        .or_fail(probe, &format!("waiting for the reply to {what}"))
}

/// Waits for the `error` that refuses what was just sent (a frame without an id to reply to)
/// and fails the case unless its code is `code`.
pub(super) async fn expect_refusal(probe: &mut Probe, code: &str, what: &str) -> OrOutcome<()> {
    let error = probe
        .next_of_type("error")
        .await
        .or_fail(probe, &format!("waiting for the error that refuses {what}"))?;
    ensure!(
        probe,
        field(&error, "error_code") == code,
        "{what} got error {}, not {code}",
        field(&error, "error_code")
    );
    Ok(())
}
