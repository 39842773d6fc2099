//! What-if scenarios: "move feature F (or provider P) to model M", "switch everything from A to
//! B", "use a cheaper model for F", "cache the shared prefix of F" — the monthly cost of the
//! scenario next to today's, priced from the tenant's own records and the price table, with the
//! assumptions the figure rests on.
//!
//! A scenario re-prices the same requests (same tokens, same cache reads) at other prices; it
//! must not invent traffic or guess a price: a target the price table does not know is an error,
//! and records whose model has no price are left out and named.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cancel::{Checkpoint, Ticks, Uninterrupted};
use crate::optimize::recommend_cancellable;
use crate::prices::{ModelPrice, PriceTable, PriceTier};
use crate::query::{Condition, Period};
use crate::record::UsageRecord;
use crate::summary::Filter;

/// What the scenario changes for the traffic in its scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "target")]
pub enum Change {
    /// Send every request in scope to this model.
    ToModel(String),
    /// Send each model's requests to this provider's model of the same tier, nearest in price.
    ToProvider(String),
    /// Send each model's requests to the cheapest model of its family in a lower tier.
    CheaperModel,
    /// Read the shared prompt prefix from the provider's cache.
    CachePrefix,
}

impl Change {
    /// The corpus and wire name: `to_model:gpt-4o-mini`, `to_provider:openai`, `cheaper_model`,
    /// `cache_prefix`.
    pub fn name(&self) -> String {
        match self {
            Change::ToModel(m) => format!("to_model:{m}"),
            Change::ToProvider(p) => format!("to_provider:{p}"),
            Change::CheaperModel => "cheaper_model".to_string(),
            Change::CachePrefix => "cache_prefix".to_string(),
        }
    }

    pub fn parse(s: &str) -> Option<Change> {
        match s {
            "cheaper_model" => Some(Change::CheaperModel),
            "cache_prefix" => Some(Change::CachePrefix),
            _ => {
                if let Some(m) = s.strip_prefix("to_model:") {
                    Some(Change::ToModel(m.to_string()))
                } else {
                    s.strip_prefix("to_provider:")
                        .map(|p| Change::ToProvider(p.to_string()))
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// The traffic the change applies to (all must hold); empty is everything.
    pub scope: Vec<Condition>,
    pub change: Change,
    /// The window whose traffic is re-priced and scaled to a month.
    pub period: Period,
}

/// One model's traffic and where the scenario sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Move {
    pub from_model: String,
    /// None when the traffic stays where it is.
    pub to_model: Option<String>,
    pub requests: u64,
    pub current_monthly_usd: f64,
    pub scenario_monthly_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatIf {
    pub scenario: Scenario,
    /// Days of the window that hold data; monthly figures are scaled by 30 / days.
    pub days: f64,
    pub records: u64,
    pub requests: u64,
    pub current_monthly_usd: f64,
    pub scenario_monthly_usd: f64,
    /// Current minus scenario: positive saves money, negative costs more.
    pub monthly_saving_usd: f64,
    pub moves: Vec<Move>,
    pub assumptions: Vec<String>,
    /// Models in scope without a price (their traffic is left out of both figures).
    pub unpriced_models: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WhatIfError {
    #[error("the price table has no model `{0}`, so moving traffic to it cannot be priced")]
    UnknownModel(String),
    #[error("the price table has no model from provider `{0}`")]
    UnknownProvider(String),
}

/// The model of `provider` that `from`'s traffic moves to: the same tier, nearest in blended
/// price (ties to the cheaper, then by name); any tier when the provider has none of the same.
pub fn provider_equivalent<'p>(
    prices: &'p PriceTable,
    from: &ModelPrice,
    provider: &str,
) -> Option<&'p ModelPrice> {
    let candidates: Vec<&ModelPrice> = prices
        .models()
        .filter(|m| m.provider.eq_ignore_ascii_case(provider))
        .collect();
    let same_tier: Vec<&ModelPrice> = candidates
        .iter()
        .copied()
        .filter(|m| m.tier == from.tier)
        .collect();
    let pool = if same_tier.is_empty() {
        candidates
    } else {
        same_tier
    };
    let target = from.blended_cost_per_token().max(f64::MIN_POSITIVE);
    let distance = |m: &ModelPrice| {
        (m.blended_cost_per_token().max(f64::MIN_POSITIVE) / target)
            .ln()
            .abs()
    };
    pool.into_iter().min_by(|a, b| {
        distance(a)
            .total_cmp(&distance(b))
            .then_with(|| {
                a.blended_cost_per_token()
                    .total_cmp(&b.blended_cost_per_token())
            })
            .then_with(|| a.model.cmp(&b.model))
    })
}

fn tier_name(t: PriceTier) -> &'static str {
    match t {
        PriceTier::Premium => "premium",
        PriceTier::Standard => "standard",
        PriceTier::Economy => "economy",
    }
}

/// Prices a scenario over the records in its period and scope.
///
/// # Errors
/// The target model or provider is not in the price table.
pub fn price(
    records: &[UsageRecord],
    prices: &PriceTable,
    scenario: &Scenario,
) -> Result<WhatIf, WhatIfError> {
    let Ok(priced) = price_cancellable(records, prices, scenario, &Uninterrupted);
    priced
}

/// [`price`], stopping early (the outer `C::Stop`) when the checkpoint says so; the inner result
/// is `price`'s own.
///
/// # Errors
/// The checkpoint's stop, looked at every few thousand records.
pub fn price_cancellable<C: Checkpoint>(
    records: &[UsageRecord],
    prices: &PriceTable,
    scenario: &Scenario,
    checkpoint: &C,
) -> Result<Result<WhatIf, WhatIfError>, C::Stop> {
    let mut ticks = Ticks::new(checkpoint);
    let target = match &scenario.change {
        Change::ToModel(m) => match prices.lookup(m) {
            Some(target) => Some(target),
            None => return Ok(Err(WhatIfError::UnknownModel(m.clone()))),
        },
        Change::ToProvider(p) => {
            if !prices.models().any(|m| m.provider.eq_ignore_ascii_case(p)) {
                return Ok(Err(WhatIfError::UnknownProvider(p.clone())));
            }
            None
        }
        _ => None,
    };
    let mut span: Option<Period> = None;
    for r in records {
        ticks.tick()?;
        let d = r.timestamp.date_naive();
        span = Some(match span {
            None => Period::new(d, d),
            Some(p) => Period::new(p.first.min(d), p.last.max(d)),
        });
    }
    let window = span.and_then(|s| s.intersect(&scenario.period));
    let days = window.map_or(0.0, |w| w.days() as f64);
    let per_month = if days > 0.0 { 30.0 / days } else { 0.0 };
    let mut selected: Vec<&UsageRecord> = Vec::new();
    for r in records {
        ticks.tick()?;
        if scenario.period.contains(r.timestamp.date_naive())
            && scenario.scope.iter().all(|c| c.matches(r))
        {
            selected.push(r);
        }
    }

    // Per source model: (requests, current cost, scenario cost, destination).
    let mut by_model: BTreeMap<String, (u64, f64, f64, Option<String>)> = BTreeMap::new();
    let mut unpriced: Vec<String> = Vec::new();
    let mut billed = 0u64;
    for r in &selected {
        ticks.tick()?;
        let Some(source) = prices.lookup(&r.model) else {
            if r.cost_usd.is_none() {
                if !unpriced.contains(&r.model) {
                    unpriced.push(r.model.clone());
                }
                continue;
            }
            // A billed record with an unknown model can still be moved to a known one.
            let e = by_model.entry(r.model.clone()).or_default();
            e.0 += r.request_count;
            e.1 += prices.cost_usd(r);
            e.2 += prices.cost_usd(r);
            continue;
        };
        if r.cost_usd.is_some() {
            billed += 1;
        }
        let current = prices.cost_usd(r);
        let destination: Option<&ModelPrice> = match &scenario.change {
            Change::ToModel(_) => target,
            Change::ToProvider(p) => {
                if source.provider.eq_ignore_ascii_case(p) {
                    None
                } else {
                    provider_equivalent(prices, source, p)
                }
            }
            Change::CheaperModel => prices.cheaper_alternative(&source.model),
            Change::CachePrefix => None,
        }
        .filter(|d| d.model != source.model);
        let e = by_model.entry(source.model.clone()).or_default();
        e.0 += r.request_count;
        e.1 += current;
        e.2 += destination.map_or(current, |d| d.cost_for(r));
        if let Some(d) = destination {
            e.3 = Some(d.model.clone());
        }
    }
    unpriced.sort();
    let moves: Vec<Move> = by_model
        .into_iter()
        .map(|(from, (requests, current, scenario_cost, to))| Move {
            from_model: from,
            to_model: to,
            requests,
            current_monthly_usd: current * per_month,
            scenario_monthly_usd: scenario_cost * per_month,
        })
        .collect();
    let current: f64 = moves.iter().map(|m| m.current_monthly_usd).sum();
    let mut scenario_cost: f64 = moves.iter().map(|m| m.scenario_monthly_usd).sum();
    let mut assumptions = vec![format!(
        "The {days:.0} days of {} are representative of a month (scaled by 30/{days:.0}).",
        window.map_or_else(|| scenario.period.to_string(), |w| w.to_string())
    )];
    match &scenario.change {
        Change::ToModel(_) | Change::ToProvider(_) | Change::CheaperModel => {
            assumptions.push(
                "The same requests, with the same input and output tokens and the same share read from the prompt cache, priced at the new model's list prices.".to_string(),
            );
            assumptions.push(
                "Quality, latency and output length on the new model are not measured here: try it on a sample before moving.".to_string(),
            );
            if let Change::ToProvider(p) = &scenario.change {
                for m in moves.iter().filter(|m| m.to_model.is_some()) {
                    if let (Some(from), Some(to)) = (
                        prices.lookup(&m.from_model),
                        m.to_model.as_deref().and_then(|t| prices.lookup(t)),
                    ) {
                        assumptions.push(format!(
                            "{} ({}) maps to {} ({}), the {p} model of the same tier nearest in price.",
                            from.model,
                            tier_name(from.tier),
                            to.model,
                            tier_name(to.tier)
                        ));
                    }
                }
            }
            if matches!(scenario.change, Change::CheaperModel) {
                assumptions.push("Each model moves to the cheapest model of its family in a lower tier (e.g. gpt-4o to gpt-4o-mini).".to_string());
            }
        }
        Change::CachePrefix => {
            let (saving, notes) = prefix_caching(&selected, prices, window, checkpoint)?;
            scenario_cost = current - saving;
            assumptions.extend(notes);
        }
    }
    if billed > 0 {
        assumptions.push(format!(
            "{billed} records carry a billed cost; today's figure uses it, the scenario uses list prices."
        ));
    }
    if !unpriced.is_empty() {
        assumptions.push(format!(
            "Traffic on {} is left out: the price table has no price for it.",
            unpriced.join(", ")
        ));
    }
    Ok(Ok(WhatIf {
        scenario: scenario.clone(),
        days,
        records: selected.len() as u64,
        requests: selected.iter().map(|r| r.request_count).sum(),
        current_monthly_usd: current,
        scenario_monthly_usd: scenario_cost,
        monthly_saving_usd: current - scenario_cost,
        moves,
        assumptions,
        unpriced_models: unpriced,
    }))
}

/// The monthly saving of prompt caching over the selected records, as the optimization levers
/// compute it, and the assumptions it rests on.
fn prefix_caching<C: Checkpoint>(
    selected: &[&UsageRecord],
    prices: &PriceTable,
    window: Option<Period>,
    checkpoint: &C,
) -> Result<(f64, Vec<String>), C::Stop> {
    let Some(window) = window else {
        return Ok((0.0, vec!["No traffic in the window.".to_string()]));
    };
    let (start, end) = window.bounds();
    let filter = Filter {
        start: Some(start),
        end: Some(end),
        ..Filter::default()
    };
    let owned: Vec<UsageRecord> = selected.iter().map(|r| (*r).clone()).collect();
    let recs = recommend_cancellable(&owned, prices, &filter, checkpoint)?;
    let caching: Vec<_> = recs
        .iter()
        .filter(|r| r.lever == "prompt_caching")
        .collect();
    if caching.is_empty() {
        return Ok((
            0.0,
            vec!["No repeated prompt prefix of at least 1,024 tokens was found in this traffic (it needs prefix_hash with a prefix_tokens tag, or hash_ids), so caching saves nothing here.".to_string()],
        ));
    }
    let saving = caching.iter().map(|r| r.monthly_savings_usd).sum();
    let mut notes: Vec<String> = Vec::new();
    for r in &caching {
        notes.push(r.evidence.clone());
        for a in &r.assumptions {
            // The window is stated once, by the caller.
            if !notes.contains(a) && !a.contains("representative of a month") {
                notes.push(a.clone());
            }
        }
    }
    for r in recs.iter().filter(|r| r.lever == "model_routing") {
        notes.push(format!(
            "Priced after the routing the optimizer recommends first: {}.",
            r.title
        ));
    }
    Ok((saving, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Dimension;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn rec(day: u32, model: &str, provider: &str, feature: &str) -> UsageRecord {
        let mut r = UsageRecord::new(
            Utc.with_ymd_and_hms(2026, 10, day, 12, 0, 0).unwrap(),
            provider,
            model,
            1_000_000,
            100_000,
        );
        r.feature = Some(feature.to_string());
        r
    }

    fn october() -> Period {
        Period::new(
            NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 30).unwrap(),
        )
    }

    fn data() -> Vec<UsageRecord> {
        (1..=30)
            .flat_map(|d| {
                [
                    rec(d, "claude-sonnet-4", "anthropic", "replies"),
                    rec(d, "gpt-4o", "openai", "search"),
                ]
            })
            .collect()
    }

    #[test]
    fn moving_a_feature_to_a_model_reprices_its_requests() {
        let prices = PriceTable::embedded();
        let scenario = Scenario {
            scope: vec![Condition::new(Dimension::Feature, vec!["replies".into()])],
            change: Change::ToModel("gpt-4o-mini".into()),
            period: october(),
        };
        let out = price(&data(), &prices, &scenario).unwrap();
        // 30 requests a month of 1M in + 100k out: sonnet 3.0 + 1.5 = $4.50 each; mini 0.15 + 0.06.
        assert!((out.current_monthly_usd - 135.0).abs() < 1e-6, "{out:?}");
        assert!((out.scenario_monthly_usd - 6.3).abs() < 1e-6);
        assert!((out.monthly_saving_usd - 128.7).abs() < 1e-6);
        assert_eq!(out.moves.len(), 1);
        assert_eq!(out.moves[0].to_model.as_deref(), Some("gpt-4o-mini"));
        assert!(!out.assumptions.is_empty());
    }

    #[test]
    fn switching_providers_maps_each_model_by_tier() {
        let prices = PriceTable::embedded();
        let scenario = Scenario {
            scope: vec![Condition::new(
                Dimension::Provider,
                vec!["anthropic".into()],
            )],
            change: Change::ToProvider("openai".into()),
            period: october(),
        };
        let out = price(&data(), &prices, &scenario).unwrap();
        let to = out.moves[0].to_model.clone().unwrap();
        let target = prices.lookup(&to).unwrap();
        assert_eq!(target.provider, "openai");
        assert_eq!(
            target.tier,
            PriceTier::Standard,
            "sonnet is a standard-tier model"
        );
        assert!(out.assumptions.iter().any(|a| a.contains("maps to")));
    }

    #[test]
    fn unknown_targets_are_errors_and_names_round_trip() {
        let prices = PriceTable::embedded();
        let scenario = Scenario {
            scope: vec![],
            change: Change::ToModel("gpt-99".into()),
            period: october(),
        };
        assert_eq!(
            price(&data(), &prices, &scenario),
            Err(WhatIfError::UnknownModel("gpt-99".into()))
        );
        for c in [
            Change::ToModel("gpt-4o".into()),
            Change::ToProvider("openai".into()),
            Change::CheaperModel,
            Change::CachePrefix,
        ] {
            assert_eq!(Change::parse(&c.name()), Some(c));
        }
    }

    #[test]
    fn caching_without_a_shared_prefix_saves_nothing_and_says_why() {
        let prices = PriceTable::embedded();
        let scenario = Scenario {
            scope: vec![],
            change: Change::CachePrefix,
            period: october(),
        };
        let out = price(&data(), &prices, &scenario).unwrap();
        assert_eq!(out.monthly_saving_usd, 0.0);
        assert!(
            out.assumptions
                .iter()
                .any(|a| a.contains("No repeated prompt prefix"))
        );
    }
}
