//! What to change to spend less, each lever quantified in dollars per month from the tenant's
//! own records and the price table.
//!
//! Levers, applied in this order so that no token is saved twice (each works on what the levers
//! before it left): model routing (short, classification-like traffic on a premium model moved to
//! the cheaper model of the same family), then the levers of `crate::levers` (exact-repeat
//! caching, prompt caching, max_tokens, batch). This module must not invent volumes or prices:
//! every figure is computed from the records in the filter window, and a lever that would not save
//! money is not recommended.

use std::collections::BTreeMap;

use crate::cancel::{Checkpoint, Ticks, Uninterrupted};
use crate::fastmap::FastMap;
use crate::format::{count, usd};
use crate::prices::{ModelPrice, PriceCache, PriceTable, PriceTier};
pub use crate::recommendation::Recommendation;
use crate::record::UsageRecord;
use crate::summary::{Filter, window_days};
use chrono::{DateTime, Utc};

/// Traffic counts as short, classification-like output at or below this many tokens per request.
pub const ROUTING_MAX_AVG_OUTPUT_TOKENS: f64 = 64.0;
/// ...with a prompt no longer than this, so a small model is likely to cope.
pub const ROUTING_MAX_AVG_INPUT_TOKENS: f64 = 2_000.0;

/// All recommendations for the filtered records, largest monthly saving first.
pub fn recommend(
    records: &[UsageRecord],
    prices: &PriceTable,
    filter: &Filter,
) -> Vec<Recommendation> {
    let Ok(recommendations) = recommend_cancellable(records, prices, filter, &Uninterrupted);
    recommendations
}

/// [`recommend`], stopping early (with `C::Stop`) when the checkpoint says so.
///
/// # Errors
/// The checkpoint's stop, looked at every few thousand records and between levers.
pub fn recommend_cancellable<C: Checkpoint>(
    records: &[UsageRecord],
    prices: &PriceTable,
    filter: &Filter,
    checkpoint: &C,
) -> Result<Vec<Recommendation>, C::Stop> {
    let mut ticks = Ticks::new(checkpoint);
    let mut out = model_routing(records, prices, filter, &mut ticks)?;
    // The routed traffic is priced at its new model for every later lever.
    let mut routed: FastMap<(&str, Option<&str>), &ModelPrice> = FastMap::default();
    for rec in &out {
        if let (Some(from), Some(to)) = (rec.from_model.as_deref(), rec.to_model.as_deref())
            && let Some(target) = prices.lookup(to)
        {
            routed.insert((from, rec.feature.as_deref()), target);
        }
    }
    let mut cache = PriceCache::new(prices);
    let (mut first, mut last): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = (None, None);
    let mut states: Vec<crate::levers::State<'_, '_>> = Vec::new();
    for r in records {
        ticks.tick()?;
        if !filter.matches(r) {
            continue;
        }
        let t = r.timestamp;
        first = Some(first.map_or(t, |f| f.min(t)));
        last = Some(last.map_or(t, |l| l.max(t)));
        let (mut cost, _) = cache.cost(r);
        let mut price = cache.price(&r.model);
        if let Some(target) = routed.get(&(r.model.as_str(), r.feature.as_deref())) {
            price = Some(*target);
            cost = target.cost_for(r);
        }
        states.push(crate::levers::State {
            record: r,
            price,
            cost,
            remaining: 1.0,
        });
    }
    let days = window_days(filter, first, last);
    if days > 0.0 {
        out.extend(crate::levers::apply(
            &mut states,
            30.0 / days,
            days,
            checkpoint,
        )?);
    }
    out.sort_by(|a, b| {
        b.monthly_savings_usd
            .total_cmp(&a.monthly_savings_usd)
            .then_with(|| a.title.cmp(&b.title))
    });
    Ok(out)
}

#[derive(Default)]
struct Group<'r> {
    records: u64,
    requests: u64,
    input: u64,
    output: u64,
    current: f64,
    alternative: f64,
    /// The single team seen so far; `mixed` once a second one appears.
    team: Option<Option<&'r str>>,
    mixed: bool,
}

fn model_routing<C: Checkpoint>(
    records: &[UsageRecord],
    prices: &PriceTable,
    filter: &Filter,
    ticks: &mut Ticks<'_, C>,
) -> Result<Vec<Recommendation>, C::Stop> {
    let mut cache = PriceCache::new(prices);
    // The routing target of each premium model name, looked up once per name.
    let mut targets: FastMap<&str, Option<(&ModelPrice, &ModelPrice)>> = FastMap::default();
    let mut groups: FastMap<(&str, Option<&str>), Group> = FastMap::default();
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;

    for r in records {
        ticks.tick()?;
        if !filter.matches(r) {
            continue;
        }
        let t = r.timestamp;
        first = Some(first.map_or(t, |f| f.min(t)));
        last = Some(last.map_or(t, |l| l.max(t)));
        let target = *targets.entry(&r.model).or_insert_with(|| {
            let current = prices.lookup(&r.model)?;
            if current.tier != PriceTier::Premium {
                return None;
            }
            Some((current, prices.cheaper_alternative(&r.model)?))
        });
        let Some((_, alternative)) = target else {
            continue;
        };
        let g = groups.entry((&r.model, r.feature.as_deref())).or_default();
        g.records += 1;
        g.requests = g.requests.saturating_add(r.request_count);
        g.input = g.input.saturating_add(r.input_tokens);
        g.output = g.output.saturating_add(r.output_tokens);
        g.current += cache.cost(r).0;
        g.alternative += alternative.cost_for(r);
        match g.team {
            None => g.team = Some(r.team.as_deref()),
            Some(team) if team != r.team.as_deref() => g.mixed = true,
            Some(_) => {}
        }
    }

    let days = window_days(filter, first, last);
    if days <= 0.0 {
        return Ok(Vec::new());
    }
    let per_month = 30.0 / days;
    let mut out = Vec::new();
    for ((model, feature), g) in groups {
        if g.requests == 0 {
            continue;
        }
        let avg_in = g.input as f64 / g.requests as f64;
        let avg_out = g.output as f64 / g.requests as f64;
        if avg_out > ROUTING_MAX_AVG_OUTPUT_TOKENS || avg_in > ROUTING_MAX_AVG_INPUT_TOKENS {
            continue;
        }
        let Some(Some((current_price, to))) = targets.get(model).copied() else {
            continue;
        };
        let savings = (g.current - g.alternative) * per_month;
        // Also rejects NaN, which a comparison with `<=` would let through.
        if savings.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let team = if g.mixed { None } else { g.team.flatten() };
        out.push(routing_recommendation(RoutingFacts {
            model,
            feature,
            team,
            current_price,
            to,
            group: &g,
            days,
            savings,
            current_monthly: g.current * per_month,
            avg_in,
            avg_out,
        }));
    }
    Ok(out)
}

struct RoutingFacts<'a> {
    model: &'a str,
    feature: Option<&'a str>,
    team: Option<&'a str>,
    current_price: &'a ModelPrice,
    to: &'a ModelPrice,
    group: &'a Group<'a>,
    days: f64,
    savings: f64,
    current_monthly: f64,
    avg_in: f64,
    avg_out: f64,
}

fn routing_recommendation(f: RoutingFacts<'_>) -> Recommendation {
    let g = f.group;
    let feature_label = f.feature.unwrap_or("traffic without a feature tag");
    let to = f.to.model.as_str();
    let team_part = f.team.map(|t| format!(" (team {t})")).unwrap_or_default();
    let evidence = format!(
        "{} records / {} requests of {feature_label}{team_part} on {} over {:.1} days averaged \
         {:.0} input and {:.0} output tokens per request; they cost {} and would cost {} at {to} \
         list prices ({} vs {} per million input tokens, {} vs {} per million output tokens).",
        count(g.records),
        count(g.requests),
        f.model,
        f.days,
        f.avg_in,
        f.avg_out,
        usd(g.current),
        usd(g.alternative),
        usd(f.current_price.input_cost_per_token * 1e6),
        usd(f.to.input_cost_per_token * 1e6),
        usd(f.current_price.output_cost_per_token * 1e6),
        usd(f.to.output_cost_per_token * 1e6),
    );
    let assumptions = vec![
        format!(
            "{to} handles {feature_label} with acceptable quality: short outputs (~{:.0} tokens) \
             suggest classification or extraction, which smaller models usually do well; the \
             shadow evaluation must confirm it.",
            f.avg_out
        ),
        format!(
            "The prompts and output lengths stay the same on {to}, so token counts carry over."
        ),
        format!(
            "The {:.1} days of the window are representative of a month (scaled by 30/{:.1}).",
            f.days, f.days
        ),
        format!(
            "List prices: {} from {} (as of {}), {} from {} (as of {}); billed costs in the \
             records are used where present.",
            f.current_price.model,
            f.current_price.source,
            f.current_price.as_of,
            to,
            f.to.source,
            f.to.as_of
        ),
    ];
    let feature_name = f.feature.unwrap_or("the untagged traffic");
    let steps = vec![
        format!(
            "Route feature {feature_name} from {} to {to} behind a feature flag, default off.",
            f.model
        ),
        format!(
            "Shadow-evaluate 500 recent {feature_name} requests on {to} and compare its answers \
             with {}'s; proceed only at >= 95% agreement.",
            f.model
        ),
        "Ramp the flag to 10%, then 50%, then 100% of traffic over a week, watching accuracy, \
         latency and error rate at each step."
            .to_string(),
        format!(
            "Keep {} as a fallback for low-confidence or failed answers; remove the flag after \
             two clean weeks.",
            f.model
        ),
        format!(
            "Check the monthly bill: {feature_name} spend should drop by about {}.",
            usd(f.savings)
        ),
    ];
    Recommendation {
        lever: "model_routing".to_string(),
        title: format!("Route {feature_name} from {} to {to}", f.model),
        monthly_savings_usd: f.savings,
        current_monthly_cost_usd: f.current_monthly,
        from_model: Some(f.model.to_string()),
        to_model: Some(to.to_string()),
        feature: f.feature.map(str::to_string),
        team: f.team.map(str::to_string),
        affected_requests: g.requests,
        affected_records: g.records,
        evidence,
        assumptions,
        steps,
        effort: "low".to_string(),
        risk: "medium".to_string(),
        figures: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{DemoConfig, generate_demo};
    use chrono::{Duration, TimeZone};

    fn rec(
        day: i64,
        model: &str,
        feature: &str,
        team: &str,
        input: u64,
        output: u64,
        n: u64,
    ) -> UsageRecord {
        let t = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap() + Duration::days(day);
        let mut r = UsageRecord::new(t, "openai", model, input, output);
        r.request_count = n;
        r.feature = Some(feature.into());
        r.team = Some(team.into());
        r
    }

    #[test]
    fn routes_short_premium_traffic_only() {
        let prices = PriceTable::embedded();
        let records = vec![
            // 10 days of short gpt-4o classification: routable.
            rec(0, "gpt-4o", "classify", "a", 300_000, 20_000, 1_000),
            rec(9, "gpt-4o", "classify", "b", 300_000, 20_000, 1_000),
            // Long outputs on gpt-4o: not routable.
            rec(0, "gpt-4o", "essays", "a", 300_000, 500_000, 1_000),
            // Long prompts: not routable.
            rec(0, "gpt-4o", "rag", "a", 5_000_000, 20_000, 1_000),
            // Already an economy model.
            rec(0, "gpt-4o-mini", "classify", "a", 300_000, 20_000, 1_000),
            // A standard-tier model is not premium.
            rec(
                0,
                "claude-sonnet-4",
                "classify",
                "a",
                300_000,
                20_000,
                1_000,
            ),
        ];
        let recs = recommend(&records, &prices, &Filter::default());
        assert_eq!(recs.len(), 1, "{recs:#?}");
        let r = &recs[0];
        assert_eq!(r.from_model.as_deref(), Some("gpt-4o"));
        assert_eq!(r.to_model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(r.feature.as_deref(), Some("classify"));
        assert_eq!(r.team, None, "two teams share the feature");
        assert_eq!(r.affected_requests, 2_000);
        assert_eq!(r.affected_records, 2);
        let current = 600_000.0 * 2.5e-6 + 40_000.0 * 10e-6;
        let alternative = 600_000.0 * 0.15e-6 + 40_000.0 * 0.6e-6;
        let expected = (current - alternative) * 30.0 / 10.0;
        assert!((r.monthly_savings_usd - expected).abs() < 1e-9);
        assert!((r.current_monthly_cost_usd - current * 3.0).abs() < 1e-9);
        assert!(r.steps[0].contains("classify from gpt-4o to gpt-4o-mini"));
        assert!(r.evidence.contains("2 records / 2,000 requests"));

        // A filter window scales by its own length, not the data's.
        let filter = Filter {
            start: Some(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()),
            end: Some(Utc.with_ymd_and_hms(2026, 11, 16, 0, 0, 0).unwrap()),
            ..Filter::default()
        };
        let recs = recommend(&records, &prices, &filter);
        assert!((recs[0].monthly_savings_usd - (current - alternative) * 2.0).abs() < 1e-9);
    }

    #[test]
    fn billed_cost_below_the_alternative_is_not_recommended() {
        let prices = PriceTable::embedded();
        let mut r = rec(0, "gpt-4o", "classify", "a", 300_000, 20_000, 1_000);
        r.cost_usd = Some(0.0001);
        assert!(recommend(&[r], &prices, &Filter::default()).is_empty());
        assert!(recommend(&[], &prices, &Filter::default()).is_empty());
    }

    #[test]
    fn demo_routing_opportunity_matches_an_independent_computation() {
        let demo = generate_demo(&DemoConfig::default());
        let facts = &demo.facts;
        let recs = recommend(&demo.records, &PriceTable::embedded(), &Filter::default());
        let r = recs
            .iter()
            .find(|r| {
                r.lever == "model_routing" && r.feature.as_deref() == Some(&facts.routing_feature)
            })
            .expect("routing recommendation");
        assert_eq!(r.from_model.as_deref(), Some(facts.routing_model.as_str()));
        assert_eq!(
            r.to_model.as_deref(),
            Some(facts.routing_target_model.as_str())
        );

        // Independently: sum the tokens and price them with the numbers from the price sheets.
        let (mut input, mut output, mut requests, mut n) = (0u64, 0u64, 0u64, 0u64);
        for rec in &demo.records {
            if rec.model == "gpt-4o" && rec.feature.as_deref() == Some("intent-classifier") {
                assert!(rec.cache_read_input_tokens.is_none() && rec.cost_usd.is_none());
                input += rec.input_tokens;
                output += rec.output_tokens;
                requests += rec.request_count;
                n += 1;
            }
        }
        let current = input as f64 * 2.5 / 1e6 + output as f64 * 10.0 / 1e6;
        let mini = input as f64 * 0.15 / 1e6 + output as f64 * 0.6 / 1e6;
        let days = f64::from(DemoConfig::default().days);
        let expected = (current - mini) * 30.0 / days;
        assert_eq!(r.affected_records, n);
        assert_eq!(r.affected_requests, requests);
        assert!(
            (r.monthly_savings_usd - expected).abs() < 1e-6 * expected,
            "{} vs {expected}",
            r.monthly_savings_usd
        );
        assert_eq!(
            recs[0].title, r.title,
            "the planted opportunity is the largest"
        );
        assert!(recs.iter().all(|r| r.monthly_savings_usd > 0.0));
    }

    fn priced(model: &str, input: f64, output: f64, cached: f64) -> (f64, f64, f64) {
        let _ = model;
        (input / 1e6, output / 1e6, cached / 1e6)
    }

    #[test]
    fn levers_apply_in_sequence_without_double_counting() {
        let prices = PriceTable::embedded();
        // Short gpt-4o traffic (routable) that also repeats a 1,500-token prefix, one request per
        // record, a minute apart: the first request writes the cache, the other nine read it.
        let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let records: Vec<UsageRecord> = (0..10)
            .map(|i| {
                let mut r =
                    UsageRecord::new(t0 + Duration::minutes(i), "openai", "gpt-4o", 1_900, 20);
                r.feature = Some("classify".into());
                r.prefix_hash = Some("p1".into());
                r.tags = Some("prefix_tokens=1500".into());
                r
            })
            .collect();
        let recs = recommend(&records, &prices, &Filter::default());
        let routing = recs.iter().find(|r| r.lever == "model_routing").unwrap();
        let caching = recs.iter().find(|r| r.lever == "prompt_caching").unwrap();
        assert_eq!(routing.to_model.as_deref(), Some("gpt-4o-mini"));
        // The window is one calendar day... of 9 minutes: a trace shorter than a day scales by its span.
        let per_month = 30.0 / (9.0 * 60.0 / 86_400.0);
        let (i4, o4, _) = priced("gpt-4o", 2.5, 10.0, 1.25);
        let (im, om, cm) = priced("gpt-4o-mini", 0.15, 0.6, 0.075);
        let routing_saving = 10.0 * ((1_900.0 * i4 + 20.0 * o4) - (1_900.0 * im + 20.0 * om));
        assert!(
            (routing.monthly_savings_usd - routing_saving * per_month).abs() < 1e-9 * per_month
        );
        // Caching is priced at the routed model's rates, not gpt-4o's: 9 reads of 1,500 tokens.
        let caching_saving = 9.0 * 1_500.0 * (im - cm);
        assert!(
            (caching.monthly_savings_usd - caching_saving * per_month).abs() < 1e-9 * per_month,
            "{} vs {}",
            caching.monthly_savings_usd,
            caching_saving * per_month
        );
        assert_eq!(caching.from_model.as_deref(), Some("gpt-4o-mini"));
        assert!((caching.figures["reusable_share"] - 13_500.0 / 19_000.0).abs() < 1e-12);
    }

    #[test]
    fn exact_repeats_max_tokens_and_batch_exact_values() {
        let prices = PriceTable::embedded();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let mut records = Vec::new();
        // Exact repeats: one prompt three times (the last record a bucket of two): 3 repeats.
        for (i, n) in [(0, 1), (1, 1), (2, 2)] {
            let mut r = UsageRecord::new(
                t0 + Duration::hours(i),
                "anthropic",
                "claude-sonnet-4",
                1_000 * n,
                100 * n,
            );
            r.request_count = n;
            r.feature = Some("faq".into());
            r.prompt_hash = Some("h".into());
            records.push(r);
        }
        // max_tokens: 20 single requests of "drafts", 2 of them stopped at the cap of 500.
        for i in 0..20 {
            let out = if i < 2 { 500 } else { 200 };
            let mut r = UsageRecord::new(
                t0 + Duration::hours(i),
                "anthropic",
                "claude-sonnet-4",
                1_000,
                out,
            );
            r.feature = Some("drafts".into());
            r.max_tokens = Some(500);
            records.push(r);
        }
        // Batch: a nightly report on gpt-4o.
        let mut r = UsageRecord::new(
            t0 + Duration::hours(23),
            "openai",
            "gpt-4o",
            1_000_000,
            100_000,
        );
        r.feature = Some("nightly-report".into());
        records.push(r);
        let recs = recommend(&records, &prices, &Filter::default());
        let per_month = 30.0; // one calendar day (the records span 23 hours)
        let find = |lever: &str| recs.iter().find(|r| r.lever == lever).unwrap();
        let repeat = find("exact_repeat_cache");
        let each = 1_000.0 * 3e-6 + 100.0 * 15e-6;
        assert!((repeat.monthly_savings_usd - 3.0 * each * per_month).abs() < 1e-9);
        assert_eq!(repeat.affected_requests, 3);
        let capped = find("max_tokens");
        let capped_cost = 2.0 * (1_000.0 * 3e-6 + 500.0 * 15e-6);
        assert!((capped.monthly_savings_usd - capped_cost * per_month).abs() < 1e-9);
        assert!((capped.figures["capped_share"] - 0.1).abs() < 1e-12);
        let batch = find("batch");
        let full = 1_000_000.0 * 2.5e-6 + 100_000.0 * 10e-6;
        assert!((batch.monthly_savings_usd - full / 2.0 * per_month).abs() < 1e-9);
        assert!(recs.iter().all(|r| r.monthly_savings_usd > 0.0));
    }

    #[test]
    fn demo_caching_opportunity_matches_an_independent_computation() {
        let demo = generate_demo(&DemoConfig::default());
        let facts = &demo.facts;
        let recs = recommend(&demo.records, &PriceTable::embedded(), &Filter::default());
        let caching = recs
            .iter()
            .find(|r| {
                r.lever == "prompt_caching"
                    && r.feature.as_deref() == Some(facts.shared_prefix_feature.as_str())
            })
            .expect("caching recommendation");
        // Independently: hourly buckets write each prefix once per 5 minutes (12 an hour) and
        // read it for the other requests, at gemini-2.5-pro's input and cached-read prices.
        let mut saving = 0.0;
        for r in &demo.records {
            let Some(prefix) = r.prefix_hash.as_deref() else {
                continue;
            };
            let tokens = facts
                .shared_prefixes
                .iter()
                .find(|(p, _)| p == prefix)
                .unwrap()
                .1 as f64;
            let reads = r.request_count.saturating_sub(r.request_count.min(12)) as f64;
            saving += reads * tokens * (1.25 - 0.125) / 1e6;
        }
        let expected = saving * 30.0 / f64::from(DemoConfig::default().days);
        assert!(
            (caching.monthly_savings_usd - expected).abs() < 1e-6 * expected,
            "{} vs {expected}",
            caching.monthly_savings_usd
        );
        assert_eq!(
            recs[0].lever, "model_routing",
            "routing stays the largest lever"
        );
    }

    /// Mooncake synthetic trace (Apache-2.0): the reusable share of input tokens with an unlimited
    /// prefix cache (about 65%), priced at Claude Sonnet 4.5's cache prices.
    #[test]
    fn mooncake_reusable_prefix_share_is_computed_and_priced() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/mooncake/synthetic_trace.jsonl");
        if !path.exists() {
            println!("skipped: {} is absent", path.display());
            return;
        }
        let report = crate::import::import_usage_with(
            std::fs::File::open(&path).unwrap(),
            &crate::import::ImportOptions {
                format: None,
                model: Some("claude-sonnet-4-5".into()),
            },
        )
        .unwrap();
        assert!(report.errors.is_empty(), "{:?}", &report.errors[..1]);
        assert_eq!(report.records.len(), 3_993);
        // Independent count straight from the trace's blocks.
        let mut seen = std::collections::HashSet::new();
        let (mut reused, mut input) = (0u64, 0u64);
        let mut records: Vec<&UsageRecord> = report.records.iter().collect();
        records.sort_by_key(|r| r.timestamp);
        for r in &records {
            let ids: Vec<u64> = crate::import::hash_ids(r.tags.as_deref())
                .unwrap()
                .collect();
            let leading = ids.iter().take_while(|id| seen.contains(*id)).count() as u64;
            let tokens = (leading * 512).min(r.input_tokens);
            if tokens >= 1_024 {
                reused += tokens;
            }
            input += r.input_tokens;
            seen.extend(ids);
        }
        let share = reused as f64 / input as f64;
        let recs = recommend(&report.records, &PriceTable::embedded(), &Filter::default());
        let caching = recs.iter().find(|r| r.lever == "prompt_caching").unwrap();
        println!(
            "Mooncake: {:.1}% of {} input tokens are a reusable prefix; prompt caching on claude-sonnet-4-5 saves ${:.2}/month ({} reused tokens, {} cache-write tokens)",
            caching.figures["reusable_share"] * 100.0,
            input,
            caching.monthly_savings_usd,
            caching.figures["reusable_input_tokens"],
            caching.figures["cache_write_tokens"],
        );
        assert!((caching.figures["reusable_share"] - share).abs() < 1e-12);
        assert!((0.60..0.70).contains(&share), "{share}");
        assert!(caching.monthly_savings_usd > 0.0);
    }
}
