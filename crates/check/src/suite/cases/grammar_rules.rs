//! The event grammar (sections 3 and 5): request ids echoed in replies, and one case per rule of
//! [`crate::grammar::rules`], judged over every run and every frame the cases before collected.
//!
//! What it must not do: pass a rule on no evidence. When nothing at all was collected (every case
//! that runs agents failed or was skipped) a rule case is an error, not a pass.

use super::common::{data_run, expect_pong_to, id};
use crate::grammar::{self, rules};
use crate::metrics::{Tags, tags};
use crate::suite::context::{Ctx, JudgedRun};
use crate::suite::outcome::{OrOutcome, Outcome, ensure};
use crate::suite::probe::OrFail as _;
use crate::suite::probe::{Request, request_id_of};
use serde_json::json;

pub(crate) async fn request_ids(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    // A numeric id: echoed as the number or as its decimal text.
    expect_pong_to(&mut probe, json!(7), "a ping with id 7").await?;

    let started = probe
        .start(&data_run())
        .await
        .or_fail(&mut probe, "starting a run")?;
    ensure!(
        probe,
        !started.run_id.is_empty(),
        "run_accepted for request {} has no run_id",
        started.request_id
    );
    probe
        .follow(started)
        .await
        .or_fail(&mut probe, "following the run")?;

    let unknown = Request::start_agent("nonexistent_agent", "hello");
    let bad_id = id("unknown-agent");
    probe
        .send(&unknown.message(&bad_id, &probe.canary()))
        .await
        .or_fail(&mut probe, "sending start_agent for an unknown agent")?;
    let error = probe
        .next_of_type("error")
        .await
        .or_fail(&mut probe, "waiting for the error reply")?;
    ensure!(
        probe,
        request_id_of(&error).as_deref() == Some(bad_id.as_str()),
        "the error answering request {bad_id} carries request_id {:?}",
        error.get("request_id")
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

/// Judges the rule the current case is numbered by over everything collected so far.
pub(crate) async fn judge(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let Some(rule) = rules::ALL
        .iter()
        .copied()
        .find(|rule| rules::split(rule).0 == ctx.case)
    else {
        return Err(Outcome::error(format!(
            "no grammar rule is numbered {}",
            ctx.case
        )));
    };
    let runs = ctx.shared.runs();
    let all_frame_problems = ctx.shared.frame_violations();
    if runs.is_empty() && all_frame_problems.is_empty() && ctx.connection.is_none() {
        return Err(Outcome::error(
            "nothing to judge: no run was collected (every case that runs agents failed, errored or was skipped)",
        ));
    }
    let frame_problems: Vec<_> = all_frame_problems
        .into_iter()
        .filter(|(_, v, _)| v.rule == rule)
        .collect();
    let mut found: Vec<(String, &JudgedRun)> = Vec::new();
    for run in &runs {
        for violation in grammar::check_run(&run.events) {
            if violation.rule == rule {
                found.push((
                    format!("case {} run {}: {violation}", run.case, run.run_id),
                    run,
                ));
            }
        }
    }
    let total = found.len() + frame_problems.len();
    ctx.shared.with_metrics(|m| {
        m.observe("grammar_violations", &Tags::new());
        m.add("grammar_violations", total as f64, &tags(&[("rule", rule)]));
    });
    if total == 0 {
        return Ok(Outcome::pass(format!("{} run(s) judged", runs.len())));
    }
    let mut lines: Vec<String> = found.iter().take(5).map(|(line, _)| line.clone()).collect();
    lines.extend(
        frame_problems
            .iter()
            .take(5usize.saturating_sub(lines.len()))
            .map(|(case, v, _)| format!("case {case}: {v}")),
    );
    let transcript = match found.first() {
        Some((_, run)) => run.events.clone(),
        None => frame_problems
            .iter()
            .take(5)
            .map(|(_, _, f)| f.clone())
            .collect(),
    };
    Err(Outcome::fail(
        format!(
            "{total} violation(s) in {} run(s) judged; {}",
            runs.len(),
            lines.join("; ")
        ),
        transcript,
    ))
}
