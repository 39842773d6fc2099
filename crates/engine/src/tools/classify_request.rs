//! `classify_request`: what the run's question is about (intent) and which of the tenant's
//! models, teams and features it names, grounded in what the scope holds.
//!
//! The intent comes from the run's plan, read once before the run started (`question.rs`); this
//! tool must not read the request's meaning again. It adds what needs the tenant's data: the
//! entities are matched against the names that really occur in it, so "team search" is only a
//! team when the tenant has one.

use super::ToolOutput;
use crate::findings::{Classification, Entities};
use crate::question::Question;
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::format;
use std::collections::BTreeSet;

/// The classification of `user_request`, read as `question`, for a run whose plan needs `agents`.
pub fn compute(
    data: &TenantData,
    user_request: &str,
    question: &Question,
    agents: Vec<String>,
    scope: &Scope,
) -> RunResult<ToolOutput<Classification>> {
    let lower = user_request.to_lowercase();
    let mut models = BTreeSet::new();
    let mut teams = BTreeSet::new();
    let mut features = BTreeSet::new();
    let filter = scope.filter(&data.records);
    let (mut scope_records, mut scope_requests, mut scope_cost_usd) = (0u64, 0u64, 0.0);
    for record in data.records.iter() {
        if filter.matches(record) {
            scope_records += 1;
            scope_requests += record.request_count;
            scope_cost_usd += data.prices.cost_usd(record);
        }
        models.insert(record.model.as_str());
        if let Some(team) = &record.team {
            teams.insert(team.as_str());
        }
        if let Some(feature) = &record.feature {
            features.insert(feature.as_str());
        }
    }
    let mentioned = |names: BTreeSet<&str>| -> Vec<String> {
        names
            .into_iter()
            .filter(|name| mentions(&lower, name))
            .map(str::to_owned)
            .collect()
    };
    let entities = Entities {
        models: mentioned(models),
        teams: mentioned(teams),
        features: mentioned(features),
    };
    let summary = format!(
        "intent: {}; entities: {} model(s), {} team(s), {} feature(s); {} records ({}) in {}",
        question.intent.label(),
        entities.models.len(),
        entities.teams.len(),
        entities.features.len(),
        scope_records,
        format::usd(scope_cost_usd),
        scope.describe()
    );
    Ok(ToolOutput {
        value: Classification {
            intent: question.intent,
            intents: question.intents.clone(),
            matched_keywords: question.matched_keywords.clone(),
            entities,
            timeframe: scope.timeframe.clone(),
            agents,
            scope_records,
            scope_requests,
            scope_cost_usd,
        },
        summary,
    })
}

/// Whether `name` occurs in `text` as a whole word (so team "ai" is not found in "said").
fn mentions(text: &str, name: &str) -> bool {
    let name = name.to_lowercase();
    if name.len() < 2 {
        return false;
    }
    let is_word = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '-' && c != '.');
    text.match_indices(&name).any(|(at, _)| {
        is_word(text[..at].chars().next_back()) && is_word(text[at + name.len()..].chars().next())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::question::Intent;

    #[test]
    fn entities_are_whole_words() {
        assert!(mentions("why is gpt-4o so expensive", "gpt-4o"));
        assert!(!mentions("why is gpt-4o-mini cheap", "gpt-4o"));
        assert!(mentions("team search spends", "search"));
        assert!(!mentions("research team", "search"));
    }

    #[test]
    fn finds_entities_in_demo_data() {
        let data = crate::tools::test_support::demo_tenant();
        let scope = Scope {
            timeframe: "30d".into(),
            window: std::time::Duration::from_secs(30 * 86_400),
            team: None,
            model: None,
            feature: None,
        };
        let text = "How can team search spend less on gpt-4o?";
        let out = compute(&data, text, &Question::read(text), Vec::new(), &scope).unwrap();
        assert_eq!(out.value.intent, Intent::CostOptimization);
        assert_eq!(out.value.entities.models, vec!["gpt-4o".to_owned()]);
        assert_eq!(out.value.entities.teams, vec!["search".to_owned()]);
    }
}
