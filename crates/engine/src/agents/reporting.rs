//! The reporting agent: the final answer, composed only from what the run computed.

use super::{report_input, scope};
use crate::context::{RunContext, Step};
use crate::tools::{compose_report, detect_anomalies, recommend_optimizations, usage_summary};
use agentwire_analytics::format;

const NAME: &str = "reporting";

pub(super) async fn work(ctx: &mut RunContext) -> Step<String> {
    if ctx.findings.summary.is_none() {
        // Addressed directly: gather the figures a report needs before writing it.
        let scope = scope(ctx);
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
    ctx.findings.composed = Some(composed);
    Ok(summary)
}
