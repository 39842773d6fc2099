//! The reporting agent: the final answer, composed only from what the run computed. Every run's
//! answer comes from here ([`answer`]): the reporting agent's own when it ran, else one composed
//! from the findings of the agents that did. It must not compute a figure: it composes what the
//! tools found.

use crate::context::RunContext;
use crate::plan::Answer;
use crate::report::{AnswerInput, ComposedReport, ReportInput, compose, short};
use crate::stop::RunResult;
use crate::tools::{compose_report, detect_anomalies, recommend_optimizations, usage_summary};
use agentwire_analytics::format;

const NAME: &str = "reporting";

pub(super) async fn work(ctx: &mut RunContext) -> RunResult<String> {
    if ctx.findings.summary.is_none() {
        // Addressed directly: gather the figures a report needs before writing it.
        let scope = ctx.scope.clone();
        let tool_scope = scope.clone();
        let s = ctx
            .tool(NAME, "usage_summary", scope.args(), move |d, cancel| {
                usage_summary::compute(d, &tool_scope, cancel)
            })
            .await?;
        ctx.findings.summary = Some(s);
        let tool_scope = scope.clone();
        let a = ctx
            .tool(NAME, "detect_anomalies", scope.args(), move |d, cancel| {
                detect_anomalies::compute(d, &tool_scope, cancel)
            })
            .await?;
        ctx.findings.anomalies = Some(a);
        let tool_scope = scope.clone();
        let r = ctx
            .tool(
                NAME,
                "recommend_optimizations",
                scope.args(),
                move |d, cancel| recommend_optimizations::compute(d, &tool_scope, cancel),
            )
            .await?;
        ctx.findings.recommendations = Some(r);
    }
    let input = report_input(ctx);
    let args = serde_json::json!({
        "sections": ["summary", "anomalies", "recommendations", "plan", "data_coverage"],
        "findings_from": input.findings.tools_used,
    });
    let composed = ctx
        .tool(NAME, "compose_report", args, move |_, _| {
            compose_report::compute(&input)
        })
        .await?;
    let f = &ctx.findings;
    let savings: f64 = f
        .recommendations
        .iter()
        .flatten()
        .map(|r| r.monthly_savings_usd)
        .sum();
    let message = format!(
        "The answer cites total spend of {}, {} anomal{} and {} per month in savings across {} recommendation(s).",
        format::usd(f.summary.as_ref().map(|s| s.total_cost_usd).unwrap_or(0.0)),
        f.anomalies.as_ref().map_or(0, Vec::len),
        if f.anomalies.as_ref().map_or(0, Vec::len) == 1 {
            "y"
        } else {
            "ies"
        },
        format::usd(savings),
        f.recommendations.as_ref().map_or(0, Vec::len)
    );
    ctx.thinking(NAME, message).await?;
    let summary = format!("report of {} characters", composed.response.len());
    ctx.answer = Some(composed);
    Ok(summary)
}

/// The run's answer: for a lookup, a what-if or a reply, the short answer composed from what its
/// agent found; for a review, the one the reporting agent composed, or one composed now from the
/// findings (an entry agent other than reporting). A structured task's own section goes first in
/// a review, after the fact in a short answer.
pub(super) fn answer(ctx: &mut RunContext) -> ComposedReport {
    let kind = ctx.plan.answer();
    let composed = {
        let input = AnswerInput {
            query: &ctx.plan.question.query,
            task: ctx.plan.question.task.as_ref(),
            tenant_id: &ctx.data.tenant_id,
            demo_data: ctx.data.demo,
            records: ctx.data.records.len(),
            vocab: &ctx.data.vocab,
            findings: &ctx.findings,
        };
        match (kind, &ctx.findings.lookup, &ctx.findings.what_if) {
            (Answer::Lookup, Some(found), _) => Some(short::lookup(&input, found)),
            (Answer::WhatIf, _, Some(priced)) => Some(short::what_if(&input, priced)),
            (Answer::WhatIf, Some(found), None) => Some(short::lookup(&input, found)),
            (Answer::Reply, _, _) => Some(short::reply(&input)),
            _ => None,
        }
    };
    let mut composed = match composed {
        Some(c) => c,
        None => match ctx.answer.take() {
            Some(c) => c,
            None => compose(&report_input(ctx)),
        },
    };
    if let Some(task) = &ctx.plan.question.task {
        let (md, _, value) = short::task_section(task, &ctx.findings, &ctx.scope.describe());
        composed.response = if kind == Answer::Review {
            format!("{md}{}", composed.response)
        } else {
            match composed.response.split_once("\n\n") {
                Some((lead, rest)) => format!("{lead}\n\n{md}{rest}"),
                None => format!("{}\n\n{md}", composed.response),
            }
        };
        if let Some(report) = composed.report.as_object_mut() {
            report.insert("task".into(), value);
        }
    }
    composed
}

fn report_input(ctx: &RunContext) -> ReportInput {
    ReportInput {
        user_request: ctx.input.user_request.clone(),
        tenant_id: ctx.data.tenant_id.clone(),
        demo_data: ctx.data.demo,
        file: None,
        scope: Some(ctx.scope.clone()),
        findings: ctx.findings.clone(),
    }
}
