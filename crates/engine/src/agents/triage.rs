//! The triage agent: reports how the run's question was read (intent, the models and teams it
//! names, the period) and grounds it in the tenant's data. The reading and the plan were made
//! before the run started; triage must not make them again. A request that names exactly one team
//! of the tenant narrows the run's scope to that team.

use crate::context::RunContext;
use crate::stop::RunResult;
use crate::tools::classify_request;
use agentwire_analytics::format;

const NAME: &str = "triage";

pub(super) async fn work(ctx: &mut RunContext) -> RunResult<String> {
    let scope = ctx.scope.clone();
    let request = ctx.input.user_request.clone();
    let question = ctx.plan.question.clone();
    let agents: Vec<String> = ctx
        .plan
        .review
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    let args = serde_json::json!({ "user_request": request, "timeframe": scope.timeframe });
    let c = ctx
        .tool(NAME, "classify_request", args, move |data| {
            classify_request::compute(data, &request, &question, agents, &scope)
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
        format::usd(c.scope_cost_usd),
        format::count(c.scope_requests),
        c.agents.join(", ")
    );
    ctx.thinking(NAME, message).await?;
    // A request that names exactly one team of the tenant is about that team.
    if let [team] = c.entities.teams.as_slice()
        && ctx.scope.team.is_none()
    {
        ctx.scope.team = Some(team.clone());
    }
    let summary = format!(
        "{} question over the last {}",
        c.intent.label(),
        c.timeframe
    );
    ctx.findings.classification = Some(c);
    Ok(summary)
}
