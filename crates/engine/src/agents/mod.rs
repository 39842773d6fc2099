//! The six agents. One file per agent; this module holds what they share: the findings of a run,
//! the registry text (descriptions and tools), the plan, and the entry point that runs whichever
//! agent a request addresses.
//!
//! Each agent's `work` does its tool calls and says, in `agent_thinking`, what it found, with the
//! numbers. An agent addressed directly (not via the supervisor) first gathers what it needs and
//! then answers on its own, so every entry agent produces a complete, grounded answer.

mod actions;
mod data;
mod optimization;
mod reporting;
mod supervisor;
mod triage;

use crate::context::{RunContext, Step};
use crate::tools::Scope;
use crate::tools::build_plan::PlanStep;
use crate::tools::classify_request::{Classification, classify_text, timeframe_from_text};
use crate::tools::compose_report::{ComposedReport, ReportInput, compose};
use crate::tools::price_lookup::PricedModel;
use crate::tools::query_usage::DailyUsage;
use agentwire_analytics::{Anomaly, Recommendation, Summary};
use agentwire_protocol::AgentKind;
use agentwire_protocol::client::Timeframe;

/// What the agents of one run have found so far; each agent reads what earlier ones left.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub scope: Option<Scope>,
    pub classification: Option<Classification>,
    pub summary: Option<Summary>,
    pub daily: Option<DailyUsage>,
    pub anomalies: Option<Vec<Anomaly>>,
    pub capacity: Option<agentwire_analytics::capacity::Capacity>,
    /// Offline analysis of a metric series or FOCUS billing file (`agentwire analyze`).
    pub series: Option<crate::tools::analysis::SeriesFindings>,
    pub prices: Option<Vec<PricedModel>>,
    pub recommendations: Option<Vec<Recommendation>>,
    pub plan: Option<Vec<PlanStep>>,
    pub composed: Option<ComposedReport>,
    pub tools_used: Vec<String>,
}

/// What `/api/agents` says an agent does.
pub fn agent_description(kind: AgentKind) -> &'static str {
    match kind {
        AgentKind::Supervisor => {
            "Reads the request, decides which agents are needed, hands off to them and assembles the answer."
        }
        AgentKind::Triage => {
            "Classifies the intent (cost, anomaly, capacity, performance, spend) and extracts the models, teams and timeframe named."
        }
        AgentKind::Data => {
            "What happened: spend and tokens by model, team, feature and day, the trend against the previous period, anomalous days, and capacity (tokens and requests per minute, rate limits, forecast)."
        }
        AgentKind::Optimization => {
            "What to change: model routing, exact-repeat and prompt caching, max_tokens and batch, applied in sequence, each with monthly savings in dollars, its evidence and assumptions."
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
            "usage_summary",
            "query_usage",
            "detect_anomalies",
            "forecast_capacity",
        ],
        AgentKind::Optimization => &["price_lookup", "recommend_optimizations"],
        AgentKind::Actions => &["build_plan"],
        AgentKind::Reporting => &["compose_report"],
    }
}

/// The agents a request to `entry` intends to involve, announced in `agent_started.plan`.
pub(crate) fn plan_for(entry: AgentKind, user_request: &str) -> Vec<String> {
    match entry {
        AgentKind::Supervisor => {
            let (intent, _, _) = classify_text(user_request);
            std::iter::once(AgentKind::Supervisor)
                .chain(intent.agents())
                .map(|a| a.as_str().to_owned())
                .collect()
        }
        other => vec![other.as_str().to_owned()],
    }
}

/// The scope a request asks about: its `timeframe` (param, then words, then 30 days) and filters.
pub(crate) fn scope_for(ctx: &RunContext) -> Scope {
    let params = &ctx.input.params;
    let timeframe = params
        .timeframe
        .or_else(|| timeframe_from_text(&ctx.input.user_request).and_then(|t| Timeframe::parse(&t)))
        .or_else(|| Timeframe::parse(Scope::DEFAULT_TIMEFRAME));
    let (label, window) = match timeframe {
        Some(tf) => (tf.to_string(), tf.duration()),
        None => (
            Scope::DEFAULT_TIMEFRAME.to_owned(),
            std::time::Duration::from_secs(30 * 86_400),
        ),
    };
    Scope {
        timeframe: label,
        window,
        team: params.team.clone(),
        model: params.model.clone(),
        feature: params
            .extra
            .get("feature")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    }
}

/// The final answer of a run.
#[derive(Debug)]
pub(crate) struct Completed {
    pub response: String,
    pub report: serde_json::Value,
}

/// Runs the agent a request addressed, to its answer.
pub(crate) async fn run_entry(ctx: &mut RunContext, entry: AgentKind) -> Step<Completed> {
    ctx.findings.scope = Some(scope_for(ctx));
    if ctx.data.records.is_empty() {
        let scope = ctx.findings.scope.clone().unwrap_or_else(|| scope_for(ctx));
        return Err(crate::tools::no_data(&ctx.data.tenant_id, &scope));
    }
    match entry {
        AgentKind::Supervisor => return supervisor::run(ctx).await,
        AgentKind::Triage => {
            triage::work(ctx).await?;
        }
        AgentKind::Data => {
            data::work(ctx).await?;
        }
        AgentKind::Optimization => {
            optimization::work(ctx).await?;
        }
        AgentKind::Actions => {
            actions::work(ctx).await?;
        }
        AgentKind::Reporting => {
            reporting::work(ctx).await?;
            if let Some(composed) = ctx.findings.composed.take() {
                return Ok(Completed {
                    response: composed.response,
                    report: composed.report,
                });
            }
        }
    }
    Ok(answer(ctx))
}

/// Composes the answer from the findings so far (for entry agents other than reporting).
pub(crate) fn answer(ctx: &RunContext) -> Completed {
    let composed = compose(&report_input(ctx));
    Completed {
        response: composed.response,
        report: composed.report,
    }
}

pub(crate) fn report_input(ctx: &RunContext) -> ReportInput {
    ReportInput {
        user_request: ctx.input.user_request.clone(),
        tenant_id: ctx.data.tenant_id.clone(),
        demo_data: ctx.data.demo,
        file: None,
        findings: ctx.findings.clone(),
    }
}

/// The run's scope (set by `run_entry` before any agent works).
pub(crate) fn scope(ctx: &RunContext) -> Scope {
    ctx.findings.scope.clone().unwrap_or_else(|| scope_for(ctx))
}
