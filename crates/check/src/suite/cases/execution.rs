//! Agent execution (section 5): each agent completes a run with an answer, the supervisor hands
//! off, and runs in sequence all complete (their latencies go to the thresholds).
//!
//! What it must not do: time anything itself. Latencies are measured by the probe and judged by
//! the thresholds; a case here judges only whether runs complete and what they show.

use super::common::{field, kind, supervisor_run};
use crate::suite::context::Ctx;
use crate::suite::outcome::{OrOutcome, Outcome, ensure};
use crate::suite::probe::Request;

/// A run of `agent` completes with a non-empty response.
pub(crate) async fn agent_completes(
    ctx: &mut Ctx,
    agent: &str,
    question: &str,
) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let what = format!("the {agent} run");
    let collected = probe
        .run_to_end(&Request::start_agent(agent, question), &what)
        .await?;
    probe.require_completed(&collected, &what)?;
    let chars = collected.run.response().map_or(0, |r| r.chars().count());
    ensure!(
        probe,
        chars > 0,
        "the {agent} run completed with an empty response"
    );
    probe.close().await;
    Ok(Outcome::pass(format!(
        "{} events, {} agents, a {chars}-character answer",
        collected.run.events.len(),
        collected.run.agents().len()
    )))
}

pub(crate) async fn handoffs(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let collected = probe
        .run_to_end(&supervisor_run(), "running the supervisor")
        .await?;
    let handoffs: Vec<String> = collected
        .run
        .events
        .iter()
        .filter(|e| kind(e) == "agent_handoff")
        .map(|e| format!("{} -> {}", field(e, "from_agent"), field(e, "to_agent")))
        .collect();
    let agents = collected.run.agents();
    ensure!(
        probe,
        !handoffs.is_empty() && agents.len() >= 2,
        "run {} ({}) shows {} agent_handoff event(s) and events from {} agent(s): {:?}",
        collected.run_id(),
        collected.ending(),
        handoffs.len(),
        agents.len(),
        agents
    );
    probe.close().await;
    Ok(Outcome::pass(format!(
        "{} handoffs ({}), {} agents",
        handoffs.len(),
        handoffs.join(", "),
        agents.len()
    )))
}

pub(crate) async fn performance(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    let runs = ctx.config.performance_runs;
    let mut ttfe = Vec::new();
    let mut ttc = Vec::new();
    for index in 1..=runs {
        let what = format!("run {index} of {runs}");
        let collected = probe.run_to_end(&supervisor_run(), &what).await?;
        probe.require_completed(&collected, &what)?;
        if let (Some(first), Some(last)) = (collected.ttfe_ms, collected.ttc_ms) {
            ttfe.push(first);
            ttc.push(last);
        }
    }
    probe.close().await;
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(Outcome::pass(format!(
        "{} runs: time to first event mean {:.1} ms (max {:.1}), to completion mean {:.1} ms (max {:.1})",
        ttc.len(),
        mean(&ttfe),
        max(&ttfe),
        mean(&ttc),
        max(&ttc)
    )))
}
