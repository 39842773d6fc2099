//! The six agents. One file per agent; this module holds the registry text (what each agent does
//! and which tools it calls, for `/api/agents`) and [`run_entry`], which runs the agent a request
//! addressed, following the run's plan.
//!
//! Each agent's `work` does its tool calls and says, in `agent_thinking`, what it found, with the
//! numbers. An agent addressed directly (not via the supervisor) first gathers what it needs and
//! then answers on its own, so every entry agent produces a complete, grounded answer. The agents
//! never import this module: they read the plan, scope and findings from the run's context, and
//! the answer is composed by the reporting agent (`reporting::answer`).

mod actions;
mod answers;
mod data;
mod dispatch;
mod optimization;
mod reporting;
mod supervisor;
mod triage;

use crate::context::RunContext;
use crate::plan::{Answer, Entry, Subagent};
use crate::report::ComposedReport;
use crate::stop::RunResult;
use crate::tools::no_data;
use agentwire_protocol::AgentKind;

/// What `/api/agents` says an agent does.
pub fn agent_description(kind: AgentKind) -> &'static str {
    match kind {
        AgentKind::Supervisor => {
            "Reads the request, decides which agents are needed, hands off to them and assembles the answer."
        }
        AgentKind::Triage => {
            "Reads the question into a typed query: the metric, the models, providers, teams, features, projects, users and statuses it names (resolved against your own data), the period and the shape of the answer; and decides the plan."
        }
        AgentKind::Data => {
            "What happened: the one figure, breakdown, ranking, comparison or trend a question asks for; or, for a review, spend and tokens by model, team, feature and day, the trend, anomalous days, and capacity (tokens and requests per minute, rate limits, forecast)."
        }
        AgentKind::Optimization => {
            "What to change: a what-if's monthly cost and saving (moving traffic to another model or provider, caching a shared prefix); or model routing, exact-repeat and prompt caching, max_tokens and batch, applied in sequence, each with monthly savings in dollars, its evidence and assumptions."
        }
        AgentKind::Actions => {
            "How to do it: an ordered implementation plan with owners, effort and risk."
        }
        AgentKind::Reporting => {
            "The final answer: findings, recommendations, plan and the data they rest on, in Markdown and JSON."
        }
    }
}

/// The tools an agent calls.
pub fn agent_tools(kind: AgentKind) -> &'static [&'static str] {
    match kind {
        AgentKind::Supervisor => &[],
        AgentKind::Triage => &["classify_request"],
        AgentKind::Data => &[
            "run_query",
            "usage_summary",
            "query_usage",
            "detect_anomalies",
            "forecast_capacity",
            "project_growth",
        ],
        AgentKind::Optimization => &["price_scenario", "price_lookup", "recommend_optimizations"],
        AgentKind::Actions => &["build_plan"],
        AgentKind::Reporting => &["compose_report"],
    }
}

/// Runs the agent a request addressed, as the run's plan says, to its answer.
pub(crate) async fn run_entry(ctx: &mut RunContext) -> RunResult<ComposedReport> {
    if ctx.data.records.is_empty() {
        return Err(no_data(&ctx.data.tenant_id, &ctx.scope));
    }
    match ctx.plan.entry.clone() {
        Entry::Supervisor { agents } => supervisor::run(ctx, &agents).await,
        Entry::Direct(agent) => {
            match (ctx.plan.answer(), agent) {
                (Answer::Review, _) => {
                    dispatch::work(ctx, agent).await?;
                }
                // A reply needs only the reading, which triage gives.
                (Answer::Reply, _) => {
                    triage::read(ctx, agent.as_str()).await?;
                }
                (Answer::Lookup, Subagent::Triage) => {
                    triage::read(ctx, agent.as_str()).await?;
                    answers::lookup(ctx, agent.as_str()).await?;
                }
                (Answer::WhatIf, Subagent::Triage) => {
                    triage::read(ctx, agent.as_str()).await?;
                    answers::what_if(ctx, agent.as_str()).await?;
                }
                (Answer::Lookup, _) => {
                    answers::lookup(ctx, agent.as_str()).await?;
                }
                (Answer::WhatIf, _) => {
                    answers::what_if(ctx, agent.as_str()).await?;
                }
            }
            answers::stated_spend(ctx, agent.as_str()).await?;
            Ok(reporting::answer(ctx))
        }
    }
}
