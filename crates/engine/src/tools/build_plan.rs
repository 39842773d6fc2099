//! `build_plan`: turns recommendations and anomalies into an ordered implementation plan with an
//! owner, effort, risk and expected saving per step. Quick, safe, valuable steps come first.
//! A step that carries out a recommendation refers to it by number; its steps stay in the
//! recommendation, written once. It must not compute savings: a step's saving is its
//! recommendation's.

use super::ToolOutput;
use crate::findings::PlanStep;
use crate::stop::RunResult;
use agentwire_analytics::format;
use agentwire_analytics::{Anomaly, Recommendation};

/// How many anomalies get a containment step: the costliest; the rest are in the answer's
/// anomaly section.
const CONTAINED_ANOMALIES: usize = 2;

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
    let mut costliest: Vec<&Anomaly> = anomalies.iter().collect();
    costliest.sort_by(|a, b| b.impact_usd.total_cmp(&a.impact_usd));
    for anomaly in costliest.into_iter().take(CONTAINED_ANOMALIES) {
        plan.push(containment(anomaly));
    }
    let mut levers: Vec<(usize, &Recommendation)> = recommendations
        .iter()
        .enumerate()
        .filter(|(_, r)| r.monthly_savings_usd > 0.0)
        .map(|(index, r)| (index + 1, r))
        .collect();
    // Most saving per unit of effort and risk first.
    levers.sort_by(|(_, a), (_, b)| {
        let score = |r: &Recommendation| {
            r.monthly_savings_usd / f64::from(weight(&r.effort) * weight(&r.risk))
        };
        score(b).total_cmp(&score(a))
    });
    for (number, rec) in levers {
        plan.push(PlanStep {
            order: 0,
            title: rec.title.clone(),
            owner: owner(rec.team.as_deref()),
            effort: rec.effort.clone(),
            risk: rec.risk.clone(),
            monthly_savings_usd: rec.monthly_savings_usd,
            recommendation: Some(number),
            steps: Vec::new(),
            rationale: None,
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

fn owner(team: Option<&str>) -> String {
    team.map(|t| format!("team {t}"))
        .unwrap_or_else(|| "platform".to_owned())
}

/// The plan's own step for an anomaly: find what caused it and keep it from recurring.
fn containment(anomaly: &Anomaly) -> PlanStep {
    let team = anomaly
        .contributors
        .iter()
        .find(|c| c.dimension == "team")
        .map(|c| c.key.as_str());
    let window = if anomaly.start == anomaly.end {
        anomaly.start.to_string()
    } else {
        format!("{} to {}", anomaly.start, anomaly.end)
    };
    let find = format!(
        "Find the job behind the {} excess.",
        format::usd(anomaly.impact_usd)
    );
    PlanStep {
        order: 0,
        title: format!("Contain the cost spike of {window}"),
        owner: owner(team),
        effort: "low".into(),
        risk: "low".into(),
        monthly_savings_usd: 0.0,
        recommendation: None,
        steps: vec![
            find,
            "Alert at 150% of the seasonal baseline for the team and model involved.".into(),
            "Cap its request rate so a retry loop cannot repeat it.".into(),
        ],
        rationale: Some(format!(
            "{} was spent against {} expected; a recurrence costs the same again.",
            format::usd(anomaly.actual),
            format::usd(anomaly.expected)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_analytics::Contributor;
    use chrono::NaiveDate;
    use std::collections::BTreeMap;

    fn rec(title: &str, saving: f64, effort: &str, risk: &str) -> Recommendation {
        Recommendation {
            lever: "batch".into(),
            title: title.into(),
            monthly_savings_usd: saving,
            current_monthly_cost_usd: saving * 2.0,
            from_model: None,
            to_model: None,
            feature: None,
            team: Some("search".into()),
            affected_requests: 10,
            affected_records: 1,
            evidence: "evidence".into(),
            assumptions: vec!["assumption".into()],
            steps: vec!["a step of the recommendation".into()],
            effort: effort.into(),
            risk: risk.into(),
            figures: BTreeMap::new(),
        }
    }

    fn anomaly(day: u32, impact: f64) -> Anomaly {
        let date = NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        Anomaly {
            start: date,
            end: date,
            expected: 100.0,
            actual: 100.0 + impact,
            impact_usd: impact,
            score: 10.0,
            ewma_score: 5.0,
            confirmed_by_ewma: true,
            kind: "departure".into(),
            severity: agentwire_analytics::timeseries::Severity::High,
            chance: 0.001,
            contributors: vec![Contributor {
                dimension: "team".into(),
                key: "growth".into(),
                excess_usd: impact,
                share_of_excess: 1.0,
            }],
        }
    }

    #[test]
    fn recommendation_steps_refer_to_the_recommendation_instead_of_repeating_it() {
        let recs = [
            rec("Batch A", 100.0, "medium", "low"),
            rec("Route B", 150.0, "low", "low"),
        ];
        let plan = compute(&recs, &[]).unwrap().value;
        assert_eq!(plan.len(), 2);
        // Route B saves more per unit of effort and risk, so it comes first.
        assert_eq!(plan[0].recommendation, Some(2));
        assert_eq!(plan[0].title, "Route B");
        assert_eq!(plan[1].recommendation, Some(1));
        for step in &plan {
            assert!(
                step.steps.is_empty() && step.rationale.is_none(),
                "{step:?}"
            );
        }
        assert_eq!(plan.iter().map(|s| s.order).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn the_costliest_anomalies_are_contained_first() {
        let anomalies = [anomaly(3, 50.0), anomaly(9, 400.0), anomaly(12, 120.0)];
        let plan = compute(&[rec("Route B", 150.0, "low", "low")], &anomalies)
            .unwrap()
            .value;
        let titles: Vec<&str> = plan.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            vec![
                "Contain the cost spike of 2026-11-09",
                "Contain the cost spike of 2026-11-12",
                "Route B"
            ]
        );
        assert_eq!(plan[0].owner, "team growth");
        assert!(plan[0].steps[0].contains("$400.00"), "{:?}", plan[0].steps);
        assert_eq!(plan[0].recommendation, None);
    }
}
