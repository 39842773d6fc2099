//! The optimization agent: what to change, each lever with its monthly saving in dollars; for a
//! what-if, the scenario's monthly cost and saving (`price_scenario`). Every saving it states
//! comes from a tool; it must not estimate one itself.

use super::answers;
use crate::context::RunContext;
use crate::plan::Answer;
use crate::stop::RunResult;
use crate::tools::{price_lookup, recommend_optimizations};
use agentwire_analytics::format;

const NAME: &str = "optimization";

pub(super) async fn work(ctx: &mut RunContext) -> RunResult<String> {
    match ctx.plan.answer() {
        Answer::WhatIf => answers::what_if(ctx, NAME).await,
        Answer::Lookup => answers::lookup(ctx, NAME).await,
        Answer::Reply | Answer::Review => review(ctx).await,
    }
}

async fn review(ctx: &mut RunContext) -> RunResult<String> {
    let scope = ctx.scope.clone();
    let prices = {
        let scope = scope.clone();
        ctx.tool(NAME, "price_lookup", scope.args(), move |data, _| {
            price_lookup::compute(data, &scope)
        })
        .await?
    };
    // The most expensive model in use that has a cheaper sibling is where routing can pay.
    let top_model = ctx.findings.summary.as_ref().and_then(|s| {
        s.by_model.iter().find(|b| {
            prices
                .iter()
                .any(|p| p.model == b.key && p.cheaper_alternative.is_some())
        })
    });
    let candidate = top_model
        .and_then(|b| prices.iter().find(|p| p.model == b.key))
        .or_else(|| prices.iter().find(|p| p.cheaper_alternative.is_some()));
    let message = match candidate
        .and_then(|p| Some((p, p.price.as_ref()?, p.cheaper_alternative.as_ref()?)))
    {
        Some((p, price, alt)) => {
            let per_m = |v: f64| format::usd(v * 1e6);
            let cut = if price.output_cost_per_token > 0.0 {
                (1.0 - alt.output_cost_per_token / price.output_cost_per_token) * 100.0
            } else {
                0.0
            };
            format!(
                "{} lists at {} input / {} output per 1M tokens; {} from the same provider at {} / {} is {:.0}% cheaper on output. Checking which traffic fits it.",
                p.model,
                per_m(price.input_cost_per_token),
                per_m(price.output_cost_per_token),
                alt.model,
                per_m(alt.input_cost_per_token),
                per_m(alt.output_cost_per_token),
                cut
            )
        }
        None => format!(
            "{} model(s) in use; none has a cheaper model of the same provider in the price table.",
            prices.len()
        ),
    };
    ctx.thinking(NAME, message).await?;
    ctx.findings.prices = Some(prices);

    let recs = {
        let scope = scope.clone();
        ctx.tool(
            NAME,
            "recommend_optimizations",
            scope.args(),
            move |data, cancel| recommend_optimizations::compute(data, &scope, cancel),
        )
        .await?
    };
    let total: f64 = recs.iter().map(|r| r.monthly_savings_usd).sum();
    let message = match recs.first() {
        None => format!(
            "No lever with a quantifiable saving shows in {}.",
            scope.describe()
        ),
        Some(top) => {
            let mut text = format!(
                "{} saves {} per month: {}",
                top.title,
                format::usd(top.monthly_savings_usd),
                top.evidence
            );
            if recs.len() > 1 {
                text.push_str(&format!(
                    " With {} more lever(s) the total is {} per month.",
                    recs.len() - 1,
                    format::usd(total)
                ));
            }
            text
        }
    };
    ctx.thinking(NAME, message).await?;
    let summary = format!(
        "{} recommendation(s) worth {} per month",
        recs.len(),
        format::usd(total)
    );
    ctx.findings.recommendations = Some(recs);
    Ok(summary)
}
