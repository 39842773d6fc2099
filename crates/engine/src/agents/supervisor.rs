//! The supervisor: says what it will do, hands off to the agents of the run's plan one after the
//! other, and returns the reporting agent's answer. It follows the plan the driver made: it must
//! not read the request again, nor call tools.

use super::{dispatch, reporting};
use crate::context::RunContext;
use crate::plan::{Answer, Subagent};
use crate::report::ComposedReport;
use crate::stop::RunResult;
use agentwire_analytics::format;
use agentwire_protocol::EventKind;

const NAME: &str = "supervisor";

pub(super) async fn run(ctx: &mut RunContext, plan: &[Subagent]) -> RunResult<ComposedReport> {
    let names: Vec<&str> = plan.iter().map(|a| a.as_str()).collect();
    let what = match ctx.plan.answer() {
        Answer::Review => format!("over {}", ctx.scope.describe()),
        Answer::Reply => "to read the question".to_owned(),
        Answer::Lookup | Answer::WhatIf => format!(
            "for a {}: {}",
            ctx.plan.question.query.intent.name().replace('_', "-"),
            ctx.plan.describe()
        ),
    };
    ctx.thinking(
        NAME,
        format!(
            "The tenant has {} usage record(s) to work from. I will ask {} in turn, {what}.",
            format::count(ctx.data.records.len() as u64),
            names.join(" → "),
        ),
    )
    .await?;
    let total = plan.len();
    for (index, &agent) in plan.iter().enumerate() {
        let to = agent.as_str();
        ctx.handoff(NAME, to, reason(ctx, agent)).await?;
        let summary = dispatch::work(ctx, agent).await?;
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
    Ok(reporting::answer(ctx))
}

fn reason(ctx: &RunContext, agent: Subagent) -> String {
    let f = &ctx.findings;
    let query = &ctx.plan.question.query;
    match (agent, ctx.plan.answer()) {
        (Subagent::Triage, _) => {
            "read the question: its metric, names, period and shape, against your data".to_owned()
        }
        (Subagent::Data, Answer::Lookup) => format!("look up {}", query.describe()),
        (Subagent::Optimization, Answer::WhatIf) => format!(
            "price the scenario ({})",
            query.change.as_ref().map_or_else(String::new, |c| c.name())
        ),
        (Subagent::Data, _) => format!(
            "compute spend, trend and anomalies for {}",
            ctx.scope.describe()
        ),
        (Subagent::Optimization, _) => match &f.summary {
            Some(s) => format!("find savings in {} of spend", format::usd(s.total_cost_usd)),
            None => "find quantified savings".to_owned(),
        },
        (Subagent::Actions, _) => format!(
            "turn {} recommendation(s) and {} anomal(ies) into an ordered plan",
            f.recommendations.as_ref().map_or(0, Vec::len),
            f.anomalies.as_ref().map_or(0, Vec::len)
        ),
        (Subagent::Reporting, _) => "compose the final answer from the findings".to_owned(),
    }
}
