//! The steps of the short answers, for whichever agent gives them: a lookup (`run_query`) and a
//! what-if (`price_scenario`). In a supervisor run the data agent gives the lookup and the
//! optimization agent the what-if, after triage has shown how the question was read; an agent
//! addressed directly says how it read the question first. Each step states its fact in an
//! `agent_thinking`, with the figure. The answer itself is composed by `reporting::answer`.

use crate::context::RunContext;
use crate::report::figure;
use crate::stop::RunResult;
use crate::tools::{price_scenario, run_query, usage_summary};
use agentwire_analytics::format;

/// Says how the question was read, when triage has not (an agent addressed directly).
async fn reading(ctx: &mut RunContext, agent: &str) -> RunResult {
    if ctx.findings.classification.is_some() {
        return Ok(());
    }
    let q = &ctx.plan.question.query;
    let mut message = format!(
        "I read this as a {}: {}. Plan: {}.",
        q.intent.name().replace('_', "-"),
        q.describe(),
        ctx.plan.describe()
    );
    for u in q.unknown.iter().map(agentwire_question::unknown_sentence) {
        message.push_str(&format!(" {u}"));
    }
    for a in &q.assumed {
        message.push_str(&format!(" {a}"));
    }
    ctx.thinking(agent, message).await
}

/// Looks the question up and states the fact.
pub(super) async fn lookup(ctx: &mut RunContext, agent: &'static str) -> RunResult<String> {
    reading(ctx, agent).await?;
    let spec = ctx.plan.question.query.spec.clone();
    let args = serde_json::to_value(&spec).unwrap_or_default();
    let tool_spec = spec.clone();
    let found = ctx
        .tool(agent, "run_query", args, move |data, cancel| {
            run_query::compute(data, &tool_spec, cancel)
        })
        .await?;
    let r = &found.result;
    let mut message = match r.value {
        _ if r.records == 0 && found.without.is_empty() && r.previous.is_none() => format!(
            "No records match {} over {}.",
            ctx.plan.question.query.describe(),
            spec.period
        ),
        Some(v) => format!(
            "{} over {}: {} from {} record(s), {} request(s).",
            spec.metric.label(),
            spec.period,
            figure(spec.metric, v),
            format::count(r.records),
            format::count(r.requests)
        ),
        None => format!(
            "{} over {}: no figure ({} record(s) hold none).",
            spec.metric.label(),
            spec.period,
            format::count(r.records)
        ),
    };
    if let Some(p) = &r.previous
        && let Some(v) = p.value
    {
        message.push_str(&format!(
            " {} in {}{}.",
            figure(spec.metric, v),
            p.period,
            p.change_pct
                .map(|c| format!(" ({})", format::pct_change(c)))
                .unwrap_or_default()
        ));
    }
    if let Some(top) = r.rows.first()
        && let Some(v) = top.value
    {
        message.push_str(&format!(
            " First row: {} at {}.",
            top.key,
            figure(spec.metric, v)
        ));
    }
    ctx.thinking(agent, message).await?;
    let summary = format!("{} looked up over {}", spec.metric.label(), spec.period);
    ctx.findings.lookup = Some(found);
    Ok(summary)
}

/// Prices the question's scenario and states its monthly cost and saving.
pub(super) async fn what_if(ctx: &mut RunContext, agent: &'static str) -> RunResult<String> {
    reading(ctx, agent).await?;
    let Some(scenario) = ctx.plan.question.query.scenario() else {
        // A what-if always carries its change; without one there is nothing to price.
        return lookup(ctx, agent).await;
    };
    let args = serde_json::to_value(&scenario).unwrap_or_default();
    let tool_scenario = scenario.clone();
    let priced = ctx
        .tool(agent, "price_scenario", args, move |data, cancel| {
            price_scenario::compute(data, &tool_scenario, cancel)
        })
        .await?;
    let message = match (&priced.priced, &priced.error) {
        (Some(w), _) => format!(
            "{} over {} ({} requests): {} a month today, {} a month in the scenario, {} {} a month.",
            scenario.change.name(),
            scenario.period,
            format::count(w.requests),
            format::usd(w.current_monthly_usd),
            format::usd(w.scenario_monthly_usd),
            if w.monthly_saving_usd >= 0.0 {
                "saving"
            } else {
                "costing"
            },
            format::usd(w.monthly_saving_usd.abs())
        ),
        (None, error) => format!(
            "The scenario cannot be priced: {}.",
            error.as_deref().unwrap_or("unknown reason")
        ),
    };
    ctx.thinking(agent, message).await?;
    let summary = format!("scenario {} priced", scenario.change.name());
    ctx.findings.what_if = Some(priced);
    Ok(summary)
}

/// A structured task that states its monthly spend is answered with what the data shows: the
/// scope's spend and run-rate, when no agent of the run has summarised it yet.
pub(super) async fn stated_spend(ctx: &mut RunContext, agent: &str) -> RunResult {
    let stated = ctx
        .plan
        .question
        .task
        .as_ref()
        .and_then(|t| t.stated_monthly_spend);
    if stated.is_none() || ctx.findings.summary.is_some() {
        return Ok(());
    }
    let scope = ctx.scope.clone();
    let tool_scope = scope.clone();
    let s = ctx
        .tool(agent, "usage_summary", scope.args(), move |data, cancel| {
            usage_summary::compute(data, &tool_scope, cancel)
        })
        .await?;
    ctx.thinking(
        agent,
        format!(
            "The task states {} a month; {} shows {} ({} over {}).",
            format::usd(stated.unwrap_or_default()),
            scope.describe(),
            format::usd(s.monthly_cost_usd),
            format::usd(s.total_cost_usd),
            scope.describe()
        ),
    )
    .await?;
    ctx.findings.summary = Some(s);
    Ok(())
}
