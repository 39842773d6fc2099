//! The supervisor: reads the request, hands off to the agents it needs, one after the other, and
//! returns the reporting agent's answer.

use super::{Completed, answer, plan_for};
use crate::context::{RunContext, Step};
use agentwire_protocol::{AgentKind, EventKind};

const NAME: &str = "supervisor";

pub(super) async fn run(ctx: &mut RunContext) -> Step<Completed> {
    let plan: Vec<AgentKind> = plan_for(AgentKind::Supervisor, &ctx.input.user_request)
        .iter()
        .filter_map(|name| AgentKind::from_name(name))
        .filter(|kind| *kind != AgentKind::Supervisor)
        .collect();
    let scope = super::scope(ctx);
    let names: Vec<&str> = plan.iter().map(|a| a.as_str()).collect();
    ctx.thinking(
        NAME,
        format!(
            "The tenant has {} usage record(s) to work from. I will ask {} in turn, over {}.",
            agentwire_analytics::format::count(ctx.data.records.len() as u64),
            names.join(" → "),
            scope.describe()
        ),
    )
    .await?;
    let total = plan.len();
    for (index, agent) in plan.into_iter().enumerate() {
        let to = agent.as_str();
        ctx.handoff(NAME, to, reason(ctx, agent)).await?;
        let summary = match agent {
            AgentKind::Triage => super::triage::work(ctx).await?,
            AgentKind::Data => super::data::work(ctx).await?,
            AgentKind::Optimization => super::optimization::work(ctx).await?,
            AgentKind::Actions => super::actions::work(ctx).await?,
            AgentKind::Reporting => super::reporting::work(ctx).await?,
            AgentKind::Supervisor => continue,
        };
        ctx.subagent_done(to, NAME, summary).await?;
        let percent = ((index + 1) as f64 / total as f64 * 100.0).round();
        ctx.emit(
            NAME,
            EventKind::Progress {
                percent,
                message: format!("{to} finished ({}/{total})", index + 1),
            },
        )
        .await?;
    }
    match ctx.findings.composed.take() {
        Some(composed) => Ok(Completed {
            response: composed.response,
            report: composed.report,
        }),
        None => Ok(answer(ctx)),
    }
}

fn reason(ctx: &RunContext, agent: AgentKind) -> String {
    let f = &ctx.findings;
    match agent {
        AgentKind::Triage => {
            "classify the request and find the models, teams and timeframe it names".to_owned()
        }
        AgentKind::Data => format!(
            "compute spend, trend and anomalies for {}",
            super::scope(ctx).describe()
        ),
        AgentKind::Optimization => match &f.summary {
            Some(s) => format!(
                "find savings in {} of spend",
                agentwire_analytics::format::usd(s.total_cost_usd)
            ),
            None => "find quantified savings".to_owned(),
        },
        AgentKind::Actions => format!(
            "turn {} recommendation(s) and {} anomal(ies) into an ordered plan",
            f.recommendations.as_ref().map_or(0, Vec::len),
            f.anomalies.as_ref().map_or(0, Vec::len)
        ),
        AgentKind::Reporting => "compose the final answer from the findings".to_owned(),
        AgentKind::Supervisor => String::new(),
    }
}
