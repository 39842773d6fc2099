//! `classify_request`: how the run's request was read — the typed query (metric, filters, period,
//! shape), the names it resolved against the tenant's own values and those the data does not
//! have (with the closest it does), the defaults taken, the plan — grounded in what the scope
//! holds.
//!
//! The reading was made by the run's driver (`question.rs`, against the tenant's vocabulary);
//! this tool must not read the request's meaning again. It adds what needs the records: what the
//! scope holds.

use super::ToolOutput;
use crate::findings::{Classification, Entities};
use crate::question::Question;
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::format;
use agentwire_analytics::query::Dimension;
use agentwire_question::unknown_sentence;

/// The classification of the request read as `question`, for a run whose plan needs `agents`
/// and does `plan`.
pub fn compute(
    data: &TenantData,
    question: &Question,
    agents: Vec<String>,
    plan: String,
    scope: &Scope,
) -> RunResult<ToolOutput<Classification>> {
    let totals = data.scope_totals(scope);
    let (scope_records, scope_requests, scope_cost_usd) =
        (totals.records, totals.requests, totals.cost_usd);
    let query = &question.query;
    let values = |d: Dimension| -> Vec<String> {
        query
            .spec
            .conditions
            .iter()
            .filter(|c| c.dimension == d)
            .flat_map(|c| c.values.clone())
            .collect()
    };
    let entities = Entities {
        models: values(Dimension::Model),
        teams: values(Dimension::Team),
        features: values(Dimension::Feature),
    };
    let intent = question.intent();
    let reading = query.describe();
    let unknown: Vec<String> = query.unknown.iter().map(unknown_sentence).collect();
    let mut summary = format!(
        "{}: {reading}; plan: {plan}; {} records ({}) in {}",
        query.intent.name().replace('_', " "),
        scope_records,
        format::usd(scope_cost_usd),
        scope.describe()
    );
    for u in &unknown {
        summary.push_str(&format!("; {u}"));
    }
    let matched_keywords = query.resolved.iter().map(|r| r.text.clone()).collect();
    Ok(ToolOutput {
        value: Classification {
            intent,
            intents: vec![intent],
            matched_keywords,
            entities,
            timeframe: scope.timeframe.clone(),
            agents,
            scope_records,
            scope_requests,
            scope_cost_usd,
            query: query.clone(),
            reading,
            plan,
            unknown,
        },
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::question::{Intent, Request};
    use agentwire_protocol::AgentKind;
    use chrono::NaiveDate;

    #[test]
    fn names_are_resolved_against_the_tenants_data() {
        let data = crate::tools::test_support::demo_tenant();
        let text = "How can team search spend less on gpt-4o?";
        let request = Request {
            agent: AgentKind::Supervisor,
            text: text.into(),
            task: None,
        };
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let question = Question::read(&request, &data.vocab, today, Some(data.generation));
        let scope = Scope::of_request(&Default::default(), &question);
        let out = compute(&data, &question, Vec::new(), String::new(), &scope).unwrap();
        assert_eq!(out.value.intent, Intent::CostOptimization);
        assert_eq!(out.value.entities.models, vec!["gpt-4o".to_owned()]);
        assert_eq!(out.value.entities.teams, vec!["search".to_owned()]);
        assert!(out.value.scope_records > 0);
    }
}
