//! Error recovery (sections 5.10 and 6): a bad message never closes the socket, and a client
//! that loses its socket mid-run resumes without a gap or a duplicate.
//!
//! What it must not do: judge a resumed run on one socket's half. The events read before the
//! disconnect and those replayed after it are judged together, as the one run they are.

use super::common::{
    data_run, expect_error, expect_pong, expect_refusal, field, id, kind, supervisor_run,
};
use crate::client::Credentials;
use crate::grammar;
use crate::suite::context::{Ctx, JudgedRun};
use crate::suite::outcome::{OrOutcome, Outcome, ensure};
use crate::suite::probe::OrFail as _;
use crate::suite::probe::Probe;
use crate::target::Target;
use serde_json::{Value, json};

pub(crate) async fn malformed(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    probe
        .session
        .send_text("{not json")
        .await
        .or_fail(&mut probe, "sending a frame that is not JSON")?;
    expect_refusal(&mut probe, "INVALID_MESSAGE", "malformed JSON").await?;
    let what = "the good request after malformed JSON on the same socket";
    let collected = probe.run_to_end(&data_run(), what).await?;
    probe.require_completed(&collected, what)?;
    probe.close().await;
    Ok(Outcome::pass(None))
}

pub(crate) async fn unknown_type(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let message = json!({"type": "launch_rockets", "id": id("unknown-type")});
    expect_error(
        &mut probe,
        &message,
        "UNKNOWN_MESSAGE_TYPE",
        "an unknown message type",
    )
    .await?;
    expect_pong(&mut probe, "a ping after an unknown message type").await?;
    probe.close().await;
    Ok(Outcome::pass(None))
}

pub(crate) async fn resume(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    resume_on(ctx, None).await
}

/// Starts a supervisor run, reads its first events, drops the socket and resumes on a new one:
/// on the same target, or on `elsewhere` (another node of the deployment).
pub(crate) async fn resume_on(ctx: &mut Ctx, elsewhere: Option<Target>) -> OrOutcome<Outcome> {
    let mut first = ctx.main_probe().await?;
    let started = first
        .start(&supervisor_run())
        .await
        .or_fail(&mut first, "starting a supervisor run")?;
    let timeout = ctx.config.first_event_timeout;
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < 3 {
        let event = first
            .until(timeout, |f| {
                field(f, "run_id") == started.run_id && grammar::is_run_event_type(kind(f))
            })
            .await
            .or_fail(&mut first, "reading the run's first events")?;
        let terminal = grammar::is_terminal_type(kind(&event));
        seen.push(event);
        if terminal {
            break;
        }
    }
    let last_seq = seen
        .last()
        .and_then(|e| e.get("seq"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    // Disconnect without a closing handshake, as a network failure would.
    drop(first);

    let user = ctx.main.clone();
    let credentials = Credentials::Bearer(user.token.clone());
    let (options, place) = match &elsewhere {
        Some(node) => (
            ctx.options_on(node, credentials),
            format!(" on {}", node.http.authority),
        ),
        None => (ctx.options(credentials), String::new()),
    };
    let mut second = Probe::connect_with(ctx, &user.identity.user, options)
        .await
        .map_err(|err| Outcome::fail(format!("reconnecting{place}: {err}"), seen.clone()))?;
    second
        .send(&json!({"type": "resume", "id": id("resume"), "run_id": started.run_id, "after_seq": last_seq}))
        .await
        .or_fail(&mut second, "sending resume")?;
    let rest = second
        .session
        .collect_run(&started.run_id, ctx.config.completion_timeout)
        .await
        .or_fail(&mut second, "following the resumed run")?;
    let mut union = seen.clone();
    union.extend(rest.events.iter().cloned());
    second.transcript.extend(rest.events.iter().cloned());
    ctx.shared.file_run(JudgedRun::assembled(
        ctx.case,
        "supervisor",
        &started.run_id,
        union.clone(),
    ));
    let seqs: Vec<u64> = union
        .iter()
        .filter_map(|e| e.get("seq").and_then(Value::as_u64))
        .collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    if seqs != expected {
        return Err(Outcome::fail(
            format!(
                "read seq 1..={last_seq} on the first socket, resumed after_seq {last_seq}{place}; the seqs seen are {seqs:?}, not 1..={} without gap or duplicate",
                seqs.len()
            ),
            union,
        ));
    }
    ensure!(
        second,
        rest.terminal_type().is_some(),
        "the resumed run did not reach a terminal event"
    );
    second.close().await;
    Ok(Outcome::pass(format!(
        "{} events before the disconnect, {} after resume{place}",
        seen.len(),
        rest.events.len()
    )))
}
