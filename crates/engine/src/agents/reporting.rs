//! The reporting agent: the final answer, composed only from what the run computed. Every run's
//! answer comes from here ([`answer`]): the reporting agent's own when it ran, else one composed
//! from the findings of the agents that did. It must not compute a figure: it composes what the
//! tools found.

use crate::context::RunContext;
use crate::report::{ComposedReport, ReportInput, compose};
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
            .tool(NAME, "usage_summary", scope.args(), move |d| {
                usage_summary::compute(d, &tool_scope)
            })
            .await?;
        ctx.findings.summary = Some(s);
        let tool_scope = scope.clone();
        let a = ctx
            .tool(NAME, "detect_anomalies", scope.args(), move |d| {
                detect_anomalies::compute(d, &tool_scope)
            })
            .await?;
        ctx.findings.anomalies = Some(a);
        let tool_scope = scope.clone();
        let r = ctx
            .tool(NAME, "recommend_optimizations", scope.args(), move |d| {
                recommend_optimizations::compute(d, &tool_scope)
            })
            .await?;
        ctx.findings.recommendations = Some(r);
    }
    let input = report_input(ctx);
    let args = serde_json::json!({
        "sections": ["summary", "anomalies", "recommendations", "plan", "data_coverage"],
        "findings_from": input.findings.tools_used,
    });
    let composed = ctx
        .tool(NAME, "compose_report", args, move |_| {
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

/// The run's answer: the one the reporting agent composed, or one composed now from the findings
/// (an entry agent other than reporting).
pub(super) fn answer(ctx: &mut RunContext) -> ComposedReport {
    match ctx.answer.take() {
        Some(composed) => composed,
        None => compose(&report_input(ctx)),
    }
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
