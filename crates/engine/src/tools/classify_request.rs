//! `classify_request`: what the person asks about (intent) and what they name (entities).
//!
//! Deterministic keyword rules, not a model: the rules are few, documented here, and tested. The
//! entities are matched against the names that really occur in the tenant's data, so "team search"
//! is only a team when the tenant has one.

use super::Scope;
use crate::context::{Step, ToolOutput};
use crate::tenant::TenantData;
use agentwire_protocol::AgentKind;
use serde::Serialize;
use std::collections::BTreeSet;

/// What a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    CostOptimization,
    Anomaly,
    Capacity,
    Performance,
    Spend,
    General,
}

impl Intent {
    /// Words that signal each intent, in priority order when several match equally.
    const RULES: [(Intent, &'static [&'static str]); 5] = [
        (
            Intent::CostOptimization,
            &[
                "optimi",
                "reduce",
                "saving",
                "save ",
                "cheaper",
                "cut ",
                "lower",
                "recommend",
                "waste",
                "too much",
                "spend less",
                "pay less",
                "efficien",
            ],
        ),
        (
            Intent::Anomaly,
            &[
                "anomal",
                "spike",
                "unusual",
                "jump",
                "sudden",
                "surge",
                "outlier",
                "why did",
                "unexpected",
                "runaway",
            ],
        ),
        (
            Intent::Capacity,
            &[
                "capacity",
                "rate limit",
                "throughput",
                "forecast",
                "headroom",
                "tokens per minute",
                "tpm",
                "rpm",
                "scale",
                "growth",
            ],
        ),
        (
            Intent::Performance,
            &[
                "latency",
                "slow",
                "ttft",
                "p95",
                "p99",
                "performance",
                "time to first",
            ],
        ),
        (
            Intent::Spend,
            &[
                "spend",
                "cost",
                "bill",
                "usage",
                "breakdown",
                "how much",
                "where",
                "budget",
            ],
        ),
    ];

    pub fn label(self) -> &'static str {
        match self {
            Intent::CostOptimization => "cost optimization",
            Intent::Anomaly => "anomaly detection",
            Intent::Capacity => "capacity planning",
            Intent::Performance => "performance",
            Intent::Spend => "spend analysis",
            Intent::General => "a general question about AI usage",
        }
    }

    /// The agents the supervisor involves for this intent, in order.
    pub fn agents(self) -> Vec<AgentKind> {
        use AgentKind::*;
        match self {
            Intent::CostOptimization | Intent::General => {
                vec![Triage, Data, Optimization, Actions, Reporting]
            }
            Intent::Spend => vec![Triage, Data, Optimization, Reporting],
            Intent::Anomaly => vec![Triage, Data, Actions, Reporting],
            Intent::Capacity | Intent::Performance => vec![Triage, Data, Reporting],
        }
    }
}

/// Names from the tenant's data that the request mentions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Entities {
    pub models: Vec<String>,
    pub teams: Vec<String>,
    pub features: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub intent: Intent,
    /// Every intent that matched, strongest first.
    pub intents: Vec<Intent>,
    pub matched_keywords: Vec<String>,
    pub entities: Entities,
    pub timeframe: String,
    pub agents: Vec<String>,
    /// What the scope holds, so the classification is grounded in the tenant's data.
    pub scope_records: u64,
    pub scope_requests: u64,
    pub scope_cost_usd: f64,
}

/// Classifies by keyword only; usable before any data is loaded (the supervisor's plan).
pub fn classify_text(text: &str) -> (Intent, Vec<Intent>, Vec<String>) {
    let lower = format!("{} ", text.to_lowercase());
    let mut scored: Vec<(usize, usize, Intent, Vec<String>)> = Intent::RULES
        .iter()
        .enumerate()
        .filter_map(|(priority, (intent, words))| {
            let hits: Vec<String> = words
                .iter()
                .filter(|w| lower.contains(*w))
                .map(|w| w.trim().to_owned())
                .collect();
            (!hits.is_empty()).then_some((hits.len(), priority, *intent, hits))
        })
        .collect();
    // Most hits first; ties go to the more specific intent (earlier in RULES).
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let intents: Vec<Intent> = scored.iter().map(|s| s.2).collect();
    let keywords = scored.into_iter().flat_map(|s| s.3).collect();
    (
        intents.first().copied().unwrap_or(Intent::General),
        intents,
        keywords,
    )
}

/// Reads a timeframe out of plain words ("last week", "past 14 days"), if the request has one.
pub fn timeframe_from_text(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        if let Ok(n) = pair[0].parse::<u32>() {
            let unit = match pair[1] {
                "hour" | "hours" => 'h',
                "day" | "days" => 'd',
                "week" | "weeks" => 'w',
                "month" | "months" => 'm',
                _ => continue,
            };
            if n > 0 && n <= 365 {
                return Some(format!("{n}{unit}"));
            }
        }
    }
    let phrases = [
        ("yesterday", "1d"),
        ("today", "24h"),
        ("last week", "7d"),
        ("this week", "7d"),
        ("past week", "7d"),
        ("last month", "30d"),
        ("this month", "30d"),
        ("past month", "30d"),
        ("quarter", "90d"),
    ];
    phrases
        .iter()
        .find(|(phrase, _)| lower.contains(phrase))
        .map(|(_, tf)| (*tf).to_owned())
}

pub fn compute(
    data: &TenantData,
    user_request: &str,
    scope: &Scope,
) -> Step<ToolOutput<Classification>> {
    let (intent, intents, matched_keywords) = classify_text(user_request);
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
    let agents: Vec<String> = intent
        .agents()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    let summary = format!(
        "intent: {}; entities: {} model(s), {} team(s), {} feature(s); {} records ({}) in {}",
        intent.label(),
        entities.models.len(),
        entities.teams.len(),
        entities.features.len(),
        scope_records,
        agentwire_analytics::format::usd(scope_cost_usd),
        scope.describe()
    );
    Ok(ToolOutput {
        value: Classification {
            intent,
            intents,
            matched_keywords,
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

    #[test]
    fn intents_by_keywords() {
        assert_eq!(
            classify_text("How can we reduce our OpenAI costs?").0,
            Intent::CostOptimization
        );
        assert_eq!(
            classify_text("Why did spend spike last Tuesday?").0,
            Intent::Anomaly
        );
        assert_eq!(
            classify_text("When will we hit our rate limit?").0,
            Intent::Capacity
        );
        assert_eq!(
            classify_text("Which model has the worst latency?").0,
            Intent::Performance
        );
        assert_eq!(classify_text("Where did our AI spend go?").0, Intent::Spend);
        assert_eq!(classify_text("hello").0, Intent::General);
    }

    #[test]
    fn timeframes_from_words() {
        assert_eq!(
            timeframe_from_text("spend in the last 14 days").as_deref(),
            Some("14d")
        );
        assert_eq!(
            timeframe_from_text("what happened last week").as_deref(),
            Some("7d")
        );
        assert_eq!(timeframe_from_text("over 3 months").as_deref(), Some("3m"));
        assert_eq!(timeframe_from_text("all of it"), None);
    }

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
        let out = compute(&data, "How can team search spend less on gpt-4o?", &scope).unwrap();
        assert_eq!(out.value.intent, Intent::CostOptimization);
        assert_eq!(out.value.entities.models, vec!["gpt-4o".to_owned()]);
        assert_eq!(out.value.entities.teams, vec!["search".to_owned()]);
    }
}
