//! The triage agent: shows how the run's request was read — the typed query, how each name was
//! resolved against the tenant's own values, the names the data does not have, the defaults
//! taken and the plan — and grounds it in what the scope holds. The reading and the plan were made
//! by the run's driver; triage must not make them again.

use crate::context::RunContext;
use crate::report::resolved_note;
use crate::stop::RunResult;
use crate::tools::classify_request;
use agentwire_analytics::format;
use agentwire_analytics::query::Dimension;
use agentwire_question::Intent;

const NAME: &str = "triage";

pub(super) async fn work(ctx: &mut RunContext) -> RunResult<String> {
    read(ctx, NAME).await
}

/// Shows how the request was read, as `agent` (triage, or an agent addressed directly that
/// answers a question needing no other tool).
pub(super) async fn read(ctx: &mut RunContext, agent: &str) -> RunResult<String> {
    let scope = ctx.scope.clone();
    let question = ctx.plan.question.clone();
    let agents: Vec<String> = ctx
        .plan
        .review
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    let plan = ctx.plan.describe();
    let mut args = serde_json::json!({
        "user_request": ctx.input.user_request,
        "timeframe": scope.timeframe,
    });
    if let (Some(task), Some(object)) = (&ctx.input.params.task, args.as_object_mut()) {
        object.insert("task".into(), serde_json::Value::Object(task.clone()));
    }
    let tool_question = question.clone();
    let c = ctx
        .tool(agent, "classify_request", args, move |data, _| {
            classify_request::compute(data, &tool_question, agents, plan, &scope)
        })
        .await?;
    let query = &question.query;
    let mut message = match query.intent {
        Intent::Greeting | Intent::OutOfScope | Intent::Unanswerable => format!(
            "I read this as {}: nothing to look up in the usage data, so I answer with what the agents can answer and examples from your own teams, models and features.",
            match query.intent {
                Intent::Greeting => "a greeting",
                Intent::OutOfScope => "a question outside your AI usage data",
                _ => "a question usage records cannot answer",
            }
        ),
        Intent::Review(_) => {
            let label = c.intent.label();
            let article = if label.starts_with("a ") || label.starts_with("an ") {
                ""
            } else if label.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an "
            } else {
                "a "
            };
            format!(
                "I read this as {article}{label} question: {}. It covers {}, which holds {} of spend in {} requests. Agents needed: {}.",
                c.reading,
                ctx.scope.describe(),
                format::usd(c.scope_cost_usd),
                format::count(c.scope_requests),
                c.agents.join(", ")
            )
        }
        Intent::Lookup => format!("I read this as a lookup: {}. Plan: {}.", c.reading, c.plan),
        Intent::WhatIf => format!("I read this as a {}. Plan: {}.", c.reading, c.plan),
    };
    if matches!(query.intent, Intent::Review(_)) {
        // The review narrows by one team, model or feature; say what it does not narrow by.
        let wide: Vec<String> = query
            .spec
            .conditions
            .iter()
            .filter(|c| {
                c.values.len() > 1
                    || !matches!(
                        c.dimension,
                        Dimension::Team | Dimension::Model | Dimension::Feature
                    )
            })
            .map(|c| format!("{} {}", c.dimension.as_str(), c.values.join(", ")))
            .collect();
        if !wide.is_empty() {
            message.push_str(&format!(
                " The review covers all of your traffic, not only {}: it narrows by one team, model or feature.",
                wide.join(" and ")
            ));
        }
    }
    for note in query.resolved.iter().filter_map(resolved_note) {
        message.push_str(&format!(" {note}"));
    }
    for u in &c.unknown {
        message.push_str(&format!(" {u}"));
    }
    for a in &query.assumed {
        message.push_str(&format!(" {a}"));
    }
    if let Some(task) = &question.task {
        message.push_str(&format!(" Task fields used: {}.", task.used.join(", ")));
        if !task.unused.is_empty() {
            message.push_str(&format!(" Kept but not used: {}.", task.unused.join(", ")));
        }
    }
    ctx.thinking(agent, message.replace("..", ".")).await?;
    let summary = format!("{}: {}", query.intent.name().replace('_', " "), c.reading);
    ctx.findings.classification = Some(c);
    Ok(summary)
}
