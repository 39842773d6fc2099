//! Several nodes of one deployment (`--target` given more than once): a run started on the first
//! target is resumed, cancelled and read back through another node, as a client behind a load
//! balancer without sticky sessions would. With one target these cases are skipped by the
//! runner, saying why.
//!
//! What it must not do: judge a node alone. Every case starts the run on the first target and
//! judges what the other node gives back against what the first one sent.

use super::common::{data_run, field, id, kind, supervisor_run};
use crate::client::Credentials;
use crate::grammar;
use crate::http::HttpError;
use crate::suite::context::Ctx;
use crate::suite::outcome::{OrOutcome, Outcome, ensure};
use crate::suite::probe::OrFail as _;
use crate::suite::probe::{Probe, ending};
use crate::target::Target;
use serde_json::{Value, json};

/// The node the cases act on besides the first target.
fn other_node(ctx: &Ctx) -> OrOutcome<Target> {
    ctx.other_nodes
        .first()
        .cloned()
        .ok_or_else(|| Outcome::skip("needs a second --target"))
}

/// A probe for the main user on `node`.
async fn probe_on(ctx: &Ctx, node: &Target) -> OrOutcome<Probe> {
    let user = ctx.main.clone();
    let options = ctx.options_on(node, Credentials::Bearer(user.token.clone()));
    Probe::connect_with(ctx, &user.identity.user, options)
        .await
        .map_err(|err| {
            Outcome::fail(
                format!("could not connect to {}: {err}", node.http.authority),
                Vec::new(),
            )
        })
}

pub(crate) async fn resume_elsewhere(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let node = other_node(ctx)?;
    super::recovery::resume_on(ctx, Some(node)).await
}

pub(crate) async fn cancel_elsewhere(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let node = other_node(ctx)?;
    let mut probe = ctx.main_probe().await?;
    let mut other = probe_on(ctx, &node).await?;
    let mut outcomes = Vec::new();
    for _attempt in 0..3 {
        let started = probe
            .start(&supervisor_run())
            .await
            .or_fail(&mut probe, "starting a supervisor run")?;
        let run_id = started.run_id.clone();
        // `run_accepted` means the first node has admitted and recorded the run: it executes
        // there. The cancel goes at once, as in 4.6: a memoized run lasts a few milliseconds
        // after its first event, and waiting for that event lost the race three times out of
        // three against our own server.
        other
            .send(&json!({"type": "cancel", "id": id("cancel"), "run_id": run_id}))
            .await
            .or_fail(&mut other, "sending cancel to the other node")?;
        let run = probe
            .follow(started)
            .await
            .or_fail(&mut probe, "following the cancelled run")?
            .run;
        let terminal_at = run
            .events
            .iter()
            .position(|e| grammar::is_terminal_type(kind(e)));
        let after = terminal_at.map_or(0, |at| run.events.len() - at - 1);
        ensure!(
            probe,
            after == 0,
            "{after} event(s) of run {run_id} arrived after its terminal event"
        );
        match run.terminal_type() {
            Some("agent_cancelled") => {
                // The other node answers nothing but errors to a cancel; one would show here.
                let refusals: Vec<Value> = other
                    .drain(ctx.config.linger)
                    .await
                    .into_iter()
                    .filter(|f| kind(f) == "error")
                    .collect();
                ensure!(
                    other,
                    refusals.is_empty(),
                    "the other node refused the cancel: {}",
                    refusals
                        .iter()
                        .map(|f| field(f, "error_code").to_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                probe.close().await;
                other.close().await;
                return Ok(Outcome::pass(format!(
                    "cancelled through {} after {} event(s)",
                    node.http.authority,
                    run.events.len()
                )));
            }
            Some("agent_completed") => {
                // The run may have finished before the cancel reached its node; try again.
                outcomes.push(format!("completed with {} events", run.events.len()));
            }
            _ => {
                return Err(Outcome::fail(
                    format!(
                        "after a cancel sent to {} the run ended with {}, not agent_cancelled",
                        node.http.authority,
                        ending(&run)
                    ),
                    probe.transcript_with_backlog(),
                ));
            }
        }
    }
    Err(Outcome::fail(
        format!(
            "three runs ended before a cancel sent to another node stopped them: {}",
            outcomes.join("; ")
        ),
        probe.transcript_with_backlog(),
    ))
}

pub(crate) async fn history_elsewhere(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let node = other_node(ctx)?;
    let mut probe = ctx.main_probe().await?;
    let collected = probe
        .run_to_end(&data_run(), "running a data agent run")
        .await?;
    probe.close().await;
    let run_id = collected.run_id();
    let sent = &collected.run.events;
    let auth = format!("Bearer {}", ctx.main.token);
    let limit = ctx.config.connect_timeout;
    let path = format!("/api/runs/{run_id}/events");
    let answer = node
        .http
        .get(&path, &[("Authorization", &auth)], limit)
        .await
        .map_err(|err: HttpError| {
            Outcome::fail(
                format!("GET {path} on {}: {err}", node.http.authority),
                Vec::new(),
            )
        })?;
    let body = answer
        .json()
        .unwrap_or_else(|| Value::String(answer.text()));
    let transcript = vec![
        json!({"request": format!("GET {path} on {}", node.http.authority),
                                 "status": answer.status, "body": body.clone()}),
    ];
    if answer.status != 200 {
        return Err(Outcome::fail(
            format!(
                "GET {path} on {} answered {}, not 200",
                node.http.authority, answer.status
            ),
            transcript,
        ));
    }
    if body.as_array() != Some(sent) {
        let read = body.as_array().map_or(0, Vec::len);
        return Err(Outcome::fail(
            format!(
                "the {read} event(s) read from {} are not the {} event(s) the first node sent",
                node.http.authority,
                sent.len()
            ),
            transcript,
        ));
    }
    Ok(Outcome::pass(format!(
        "{} events read back from {}",
        sent.len(),
        node.http.authority
    )))
}
