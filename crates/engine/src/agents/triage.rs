//! The triage agent: what is asked, about which models and teams, over which period.

use super::scope;
use crate::context::{RunContext, Step};
use crate::tools::classify_request;

const NAME: &str = "triage";

pub(super) async fn work(ctx: &mut RunContext) -> Step<String> {
    let scope = scope(ctx);
    let request = ctx.input.user_request.clone();
    let args = serde_json::json!({ "user_request": request, "timeframe": scope.timeframe });
    let tool_scope = scope.clone();
    let c = ctx
        .tool(NAME, "classify_request", args, move |data| {
            classify_request::compute(data, &request, &tool_scope)
        })
        .await?;
    let named = |label: &str, names: &[String]| {
        if names.is_empty() {
            String::new()
        } else {
            format!("; it names {label} {}", names.join(", "))
        }
    };
    let keywords = if c.matched_keywords.is_empty() {
        "no topic keywords, so I treat it as a general review".to_owned()
    } else {
        format!("matched \"{}\"", c.matched_keywords.join("\", \""))
    };
    let message = format!(
        "This is a {} question ({keywords}){}{} over the last {}, which holds {} of spend in {} requests. Agents needed: {}.",
        c.intent.label(),
        named("team", &c.entities.teams),
        named("model", &c.entities.models),
        c.timeframe,
        agentwire_analytics::format::usd(c.scope_cost_usd),
        agentwire_analytics::format::count(c.scope_requests),
        c.agents.join(", ")
    );
    ctx.thinking(NAME, message).await?;
    // A request that names exactly one team of the tenant is about that team.
    if let (Some(scope), [team]) = (ctx.findings.scope.as_mut(), c.entities.teams.as_slice())
        && scope.team.is_none()
    {
        scope.team = Some(team.clone());
    }
    let summary = format!(
        "{} question over the last {}",
        c.intent.label(),
        c.timeframe
    );
    ctx.findings.classification = Some(c);
    Ok(summary)
}
