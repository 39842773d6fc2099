//! The actions agent: an ordered implementation plan with owners, effort and risk, whose steps
//! refer to the recommendations they carry out (`build_plan`). It must not invent a saving: each
//! step's saving is a recommendation's, computed by a tool.

use crate::context::RunContext;
use crate::stop::RunResult;
use crate::tools::{build_plan, recommend_optimizations};
use agentwire_analytics::format;

const NAME: &str = "actions";

pub(super) async fn work(ctx: &mut RunContext) -> RunResult<String> {
    if ctx.findings.recommendations.is_none() {
        // Addressed directly: find the levers first, so the plan rests on computed savings.
        let scope = ctx.scope.clone();
        let recs = ctx
            .tool(
                NAME,
                "recommend_optimizations",
                scope.args(),
                move |data, cancel| recommend_optimizations::compute(data, &scope, cancel),
            )
            .await?;
        ctx.findings.recommendations = Some(recs);
    }
    let recs = ctx.findings.recommendations.clone().unwrap_or_default();
    let anomalies = ctx.findings.anomalies.clone().unwrap_or_default();
    let args = serde_json::json!({
        "recommendations": recs.iter().map(|r| &r.title).collect::<Vec<_>>(),
        "anomalies": anomalies.iter().map(|a| a.start.to_string()).collect::<Vec<_>>(),
    });
    let plan = ctx
        .tool(NAME, "build_plan", args, move |_, _| {
            build_plan::compute(&recs, &anomalies)
        })
        .await?;
    let message = match plan.first() {
        None => "Nothing to plan: no recommendation or anomaly needs action.".to_owned(),
        Some(first) => {
            let total: f64 = plan.iter().map(|s| s.monthly_savings_usd).sum();
            let order: Vec<String> = plan
                .iter()
                .filter_map(|s| s.recommendation)
                .map(|n| n.to_string())
                .collect();
            let mut text = format!(
                "{} step(s). First: {} (owner {}, effort {}, risk {}).",
                plan.len(),
                first.title,
                first.owner,
                first.effort,
                first.risk
            );
            if order.len() > 1 {
                text.push_str(&format!(
                    " Recommendations in the order {}: most saving per unit of effort and risk first.",
                    order.join(", ")
                ));
            }
            text.push_str(&format!(
                " Done in full, the plan saves {} per month.",
                format::usd(total)
            ));
            text
        }
    };
    ctx.thinking(NAME, message).await?;
    let summary = format!("{}-step plan", plan.len());
    ctx.findings.implementation_plan = Some(plan);
    Ok(summary)
}
