//! Runs (section 4): `run_accepted`, the aliases that start runs, unknown agents, several runs on
//! one socket, a second run on a busy thread, cancel.
//!
//! What it must not do: take a race for a verdict. Where timing decides what is observable (a
//! run that finishes before its cancel or its rival arrives), the case tries again and says what
//! it saw, rather than passing or failing on one draw.

use super::common::{
    DATA_QUESTION, OPTIMIZATION_QUESTION, SUPERVISOR_QUESTION, data_run, expect_error, field, id,
    kind, supervisor_run,
};
use crate::client::ClientError;
use crate::grammar;
use crate::suite::context::Ctx;
use crate::suite::outcome::{OrOutcome, Outcome, ensure};
use crate::suite::probe::OrFail as _;
use crate::suite::probe::{Request, Started, ending, request_id_of};
use serde_json::{Value, json};

pub(crate) async fn run_accepted(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let sent = probe
        .send_request(&data_run())
        .await
        .or_fail(&mut probe, "sending start_agent")?;
    let timeout = ctx.config.first_event_timeout;
    let request_id = sent.request_id.clone();
    let first = probe
        .until(timeout, |f| {
            request_id_of(f).as_deref() == Some(request_id.as_str())
                || grammar::is_run_event_type(kind(f))
        })
        .await
        .or_fail(&mut probe, "waiting for run_accepted")?;
    ensure!(
        probe,
        kind(&first) == "run_accepted",
        "the first reply was {} (run {}), not run_accepted",
        kind(&first),
        field(&first, "run_id")
    );
    let run_id = field(&first, "run_id").to_owned();
    let thread_id = field(&first, "thread_id").to_owned();
    ensure!(
        probe,
        !run_id.is_empty() && !thread_id.is_empty(),
        "run_accepted lacks a string run_id or thread_id"
    );
    let started = probe.adopt(sent, run_id.clone());
    let collected = probe
        .follow(started)
        .await
        .or_fail(&mut probe, "following the run")?;
    let strays: Vec<u64> = collected
        .run
        .events
        .iter()
        .filter(|e| field(e, "thread_id") != thread_id)
        .filter_map(|e| e.get("seq").and_then(Value::as_u64))
        .collect();
    ensure!(
        probe,
        strays.is_empty(),
        "events {strays:?} of run {run_id} carry a thread_id other than run_accepted's {thread_id}"
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

pub(crate) async fn aliases(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let forms = [
        (
            "agent_execute with unified_data_agent",
            Request::agent_execute("unified_data_agent", DATA_QUESTION).of_agent("data"),
        ),
        (
            "start_agent with optimization_agent",
            Request::start_agent("optimization_agent", OPTIMIZATION_QUESTION)
                .of_agent("optimization"),
        ),
        ("user_message", Request::user_message(SUPERVISOR_QUESTION)),
    ];
    let mut notes = Vec::new();
    for (form, request) in forms {
        let collected = probe.run_to_end(&request, form).await?;
        ensure!(
            probe,
            collected.run.terminal_type().is_some(),
            "{form}: the run has no terminal event"
        );
        notes.push(format!("{form}: {}", collected.ending()));
    }
    probe.close().await;
    Ok(Outcome::pass(notes.join("; ")))
}

pub(crate) async fn unknown_agent(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let start = Request::start_agent("nonexistent_agent", "hello")
        .message(&id("unknown-agent"), &probe.canary());
    expect_error(&mut probe, &start, "AGENT_NOT_FOUND", "an unknown agent").await?;
    let after = probe.drain(ctx.config.linger * 2).await;
    let run_frames: Vec<&Value> = after
        .iter()
        .filter(|f| kind(f) == "run_accepted" || grammar::is_run_event_type(kind(f)))
        .collect();
    ensure!(
        probe,
        run_frames.is_empty(),
        "after AGENT_NOT_FOUND a run still started: {} ({})",
        kind(run_frames[0]),
        field(run_frames[0], "run_id")
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

pub(crate) async fn several_runs(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let requests = [
        data_run(),
        Request::start_agent("optimization", OPTIMIZATION_QUESTION),
        supervisor_run(),
    ];
    // Send all three before reading anything, so they run at once.
    let mut sent = Vec::new();
    for request in &requests {
        sent.push(
            probe
                .send_request(request)
                .await
                .or_fail(&mut probe, "sending start_agent")?,
        );
    }
    let mut started: Vec<Started> = Vec::new();
    for one in sent {
        let what = format!("waiting for run_accepted of {}", one.request_id);
        started.push(probe.accepted(one).await.or_fail(&mut probe, &what)?);
    }
    let mut run_ids: Vec<&str> = started.iter().map(|s| s.run_id.as_str()).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    ensure!(
        probe,
        run_ids.len() == 3,
        "three requests got only {} distinct run_ids",
        run_ids.len()
    );
    let mut endings = Vec::new();
    for one in started {
        let what = format!("following run {} ({})", one.run_id, one.agent);
        let collected = probe.follow(one).await.or_fail(&mut probe, &what)?;
        probe.require_completed(&collected, &format!("the {} run", collected.started.agent))?;
        endings.push(collected.run.events.len());
    }
    probe.close().await;
    Ok(Outcome::pass(format!(
        "three runs at once completed with {endings:?} events"
    )))
}

pub(crate) async fn run_conflict(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let mut last_note = String::new();
    for _attempt in 0..3 {
        let on_thread = supervisor_run().with("thread_id", json!(id("thr-check")));
        let first = probe
            .send_request(&on_thread)
            .await
            .or_fail(&mut probe, "sending the first start_agent")?;
        let second = probe.send_request(&on_thread).await.or_fail(
            &mut probe,
            "sending the second start_agent on the same thread",
        )?;
        let first = probe
            .accepted(first)
            .await
            .or_fail(&mut probe, "waiting for run_accepted of the first request")?;
        let second = probe.accepted(second).await;
        // Did the first run end before the second request was answered? Then it is no conflict.
        let first_run = probe
            .follow(first)
            .await
            .or_fail(&mut probe, "following the first run")?;
        match second {
            Err(ClientError::ServerError { error_code, .. }) => {
                if error_code == "RUN_CONFLICT" {
                    probe.close().await;
                    return Ok(Outcome::pass(None));
                }
                return Err(Outcome::fail(
                    format!(
                        "the second start_agent on a busy thread got {error_code}, not RUN_CONFLICT"
                    ),
                    probe.transcript_with_backlog(),
                ));
            }
            Ok(second) => {
                let second_run = probe
                    .follow(second)
                    .await
                    .or_fail(&mut probe, "following the second run")?;
                if let (Some(ended), Some(began)) =
                    (first_run.run.completed_at, second_run.run.first_event_at)
                    && began >= ended
                {
                    // Queued behind the first run (the configurable `enqueue` policy) or the first
                    // ended before the second was read: not conclusive; try again.
                    last_note = "the second run began only after the first ended (enqueue policy, or the first run was too quick to overlap)".to_owned();
                    continue;
                }
                return Err(Outcome::fail(
                    "a second start_agent on a thread whose run was still going was accepted and ran at the same time",
                    probe.transcript_with_backlog(),
                ));
            }
            Err(err) => {
                return Err(Outcome::fail(
                    format!("waiting for the reply to the second start_agent: {err}"),
                    probe.transcript_with_backlog(),
                ));
            }
        }
    }
    Err(Outcome::fail(
        format!("no RUN_CONFLICT in three attempts: {last_note}"),
        probe.transcript_with_backlog(),
    ))
}

pub(crate) async fn cancel(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let mut outcomes = Vec::new();
    for _attempt in 0..3 {
        let started = probe
            .start(&supervisor_run())
            .await
            .or_fail(&mut probe, "starting a supervisor run")?;
        let run_id = started.run_id.clone();
        probe
            .send(&json!({"type": "cancel", "id": id("cancel"), "run_id": run_id}))
            .await
            .or_fail(&mut probe, "sending cancel")?;
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
                let open_tools = grammar::check_run(&run.events)
                    .into_iter()
                    .filter(|v| v.rule == grammar::rules::TOOL_PAIRS)
                    .count();
                ensure!(
                    probe,
                    open_tools == 0,
                    "the cancelled run left {open_tools} tool call(s) without tool_completed"
                );
                probe.close().await;
                return Ok(Outcome::pass(format!(
                    "cancelled after {} event(s)",
                    run.events.len()
                )));
            }
            Some("agent_completed") => {
                // The run may have finished before the cancel reached it; try again.
                outcomes.push(format!("completed with {} events", run.events.len()));
            }
            _ => {
                return Err(Outcome::fail(
                    format!(
                        "after cancel the run ended with {}, not agent_cancelled",
                        ending(&run)
                    ),
                    probe.transcript_with_backlog(),
                ));
            }
        }
    }
    Err(Outcome::fail(
        format!(
            "cancel was sent right after run_accepted three times and every run still ran to the end ({}): cancel does not stop runs",
            outcomes.join(", ")
        ),
        probe.transcript_with_backlog(),
    ))
}
