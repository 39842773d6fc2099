//! `build_plan`: turns recommendations and anomalies into an ordered implementation plan with an
//! owner, effort, risk and expected saving per step. Quick, safe, valuable steps come first.
//! It must not compute savings: a step's saving is its recommendation's.

use super::ToolOutput;
use crate::findings::PlanStep;
use crate::stop::RunResult;
use agentwire_analytics::format;
use agentwire_analytics::{Anomaly, Recommendation};

fn weight(level: &str) -> u32 {
    match level {
        "low" => 1,
        "medium" => 2,
        _ => 3,
    }
}

pub fn compute(
    recommendations: &[Recommendation],
    anomalies: &[Anomaly],
) -> RunResult<ToolOutput<Vec<PlanStep>>> {
    let mut plan: Vec<PlanStep> = Vec::new();
    for anomaly in anomalies.iter().take(2) {
        let driver = super::detect_anomalies::drivers(&anomaly.contributors);
        let owner = anomaly
            .contributors
            .iter()
            .find(|c| c.dimension == "team")
            .map(|c| format!("team {}", c.key))
            .unwrap_or_else(|| "platform".to_owned());
        plan.push(PlanStep {
            order: 0,
            title: if anomaly.start == anomaly.end {
                format!("Contain the cost spike of {}", anomaly.start)
            } else {
                format!("Contain the cost spike of {} to {}", anomaly.start, anomaly.end)
            },
            owner,
            effort: "low".into(),
            risk: "low".into(),
            monthly_savings_usd: 0.0,
            steps: vec![
                format!("Find the job behind the {} excess on {} (drivers: {driver}).", format::usd(anomaly.impact_usd), anomaly.start),
                "Add a daily budget alert at 150% of the seasonal baseline for the team and model involved.".into(),
                "Cap the job's request rate or batch size so a retry loop cannot repeat it.".into(),
            ],
            rationale: format!(
                "{} was spent against {} expected; a recurrence costs the same again.",
                format::usd(anomaly.actual),
                format::usd(anomaly.expected)
            ),
        });
    }
    let mut levers: Vec<&Recommendation> = recommendations
        .iter()
        .filter(|r| r.monthly_savings_usd > 0.0)
        .collect();
    // Most saving per unit of effort and risk first.
    levers.sort_by(|a, b| {
        let score = |r: &Recommendation| {
            r.monthly_savings_usd / f64::from(weight(&r.effort) * weight(&r.risk))
        };
        score(b).total_cmp(&score(a))
    });
    for rec in levers {
        plan.push(PlanStep {
            order: 0,
            title: rec.title.clone(),
            owner: rec
                .team
                .as_ref()
                .map(|t| format!("team {t}"))
                .unwrap_or_else(|| "platform".to_owned()),
            effort: rec.effort.clone(),
            risk: rec.risk.clone(),
            monthly_savings_usd: rec.monthly_savings_usd,
            steps: rec.steps.clone(),
            rationale: rec.evidence.clone(),
        });
    }
    for (index, step) in plan.iter_mut().enumerate() {
        step.order = index + 1;
    }
    let total: f64 = plan.iter().map(|s| s.monthly_savings_usd).sum();
    let summary = format!(
        "{} step(s); {} per month in savings once done",
        plan.len(),
        format::usd(total)
    );
    Ok(ToolOutput {
        value: plan,
        summary,
    })
}
