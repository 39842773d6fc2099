//! The levers after model routing, applied in sequence so no token is saved twice.
//!
//! Every selected record carries a running state: the model it is priced at (the routing target
//! once routed) and what it still costs. Each lever computes its saving from that state and then
//! lowers it, in this order:
//! 1. exact-repeat caching: requests whose `prompt_hash` was seen before are answered from an
//!    application cache (the first of each prompt still pays);
//! 2. prompt caching: a repeated prompt prefix is read from the provider's cache at its cached-read
//!    price, and written at its cache-write price. The prefix is known from `prefix_hash` with a
//!    `prefix_tokens=N` tag (5-minute cache lifetime; a bucket of requests writes once per five
//!    minutes of its hour), or from Mooncake `hash_ids` blocks (an unlimited cache: a block is
//!    reusable once any earlier request had the same prefix up to it). Prefixes under 1,024 tokens
//!    are not cacheable;
//! 3. `max_tokens`: requests whose output reached their `max_tokens` were cut off; when at least 5%
//!    of a feature's requests are, their cost is counted as waste (a cut-off answer is retried or
//!    discarded);
//! 4. batch: features that do not need an immediate answer (tagged `interactive=false`, or named
//!    like offline work: backfill, batch, nightly, enrichment, eval, report, digest, summar,
//!    index, etl) move to the model's batch price.
//!
//! Each recommendation says what it rests on (records, requests, tokens) and what it assumes.
//! This module must not count a token in two levers or invent a volume.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::cancel::Checkpoint;
use crate::fastmap::FastMap;
use crate::format::{count, usd};
use crate::import::{MOONCAKE_BLOCK_TOKENS, hash_ids};
use crate::prices::{ModelPrice, is_batch};
use crate::recommendation::Recommendation;
use crate::record::UsageRecord;

/// Provider prompt caches keep an entry this long after its last use (Anthropic's default; OpenAI
/// and Google keep theirs at least as long).
pub const CACHE_TTL_MINUTES: i64 = 5;
/// Providers cache only prefixes of at least this many tokens.
pub const MIN_CACHEABLE_TOKENS: u64 = 1_024;
/// A feature is flagged for max_tokens when this share of its requests hit the cap.
pub const CAPPED_SHARE: f64 = 0.05;
const BATCH_WORDS: [&str; 11] = [
    "backfill", "batch", "nightly", "enrich", "eval", "report", "digest", "summar", "index", "etl",
    "offline",
];

/// One selected record during the sequence.
pub(crate) struct State<'r, 'p> {
    pub record: &'r UsageRecord,
    pub price: Option<&'p ModelPrice>,
    /// What it costs now, after the levers applied so far.
    pub cost: f64,
    /// The share of its requests still sent to the provider (exact repeats removed).
    pub remaining: f64,
}

/// The value of a `key=value` tag.
pub fn tag_value<'t>(tags: Option<&'t str>, key: &str) -> Option<&'t str> {
    tags?
        .split(';')
        .find_map(|t| t.trim().strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
}

#[derive(Default)]
struct Acc {
    records: u64,
    requests: u64,
    tokens: f64,
    extra: f64,
    before: f64,
    saving: f64,
}

/// Each lever is one pass over the states: the checkpoint is looked at between them.
pub(crate) fn apply<C: Checkpoint>(
    states: &mut [State<'_, '_>],
    per_month: f64,
    days: f64,
    checkpoint: &C,
) -> Result<Vec<Recommendation>, C::Stop> {
    let mut out = Vec::new();
    checkpoint.check()?;
    out.extend(exact_repeats(states, per_month, days));
    checkpoint.check()?;
    out.extend(prompt_caching(states, per_month, days));
    checkpoint.check()?;
    out.extend(max_tokens(states, per_month, days));
    checkpoint.check()?;
    out.extend(batch(states, per_month, days));
    Ok(out)
}

fn label(feature: Option<&str>) -> &str {
    feature.unwrap_or("traffic without a feature tag")
}

fn base(lever: &str, title: String, saving: f64, current: f64, acc: &Acc) -> Recommendation {
    Recommendation {
        lever: lever.to_string(),
        title,
        monthly_savings_usd: saving,
        current_monthly_cost_usd: current,
        from_model: None,
        to_model: None,
        feature: None,
        team: None,
        affected_requests: acc.requests,
        affected_records: acc.records,
        evidence: String::new(),
        assumptions: Vec::new(),
        steps: Vec::new(),
        effort: "low".to_string(),
        risk: "low".to_string(),
        figures: BTreeMap::new(),
    }
}

fn window_assumption(days: f64) -> String {
    format!(
        "The {days:.1} days of the window are representative of a month (scaled by 30/{days:.1})."
    )
}

fn exact_repeats(states: &mut [State<'_, '_>], per_month: f64, days: f64) -> Vec<Recommendation> {
    let mut order: Vec<usize> = (0..states.len())
        .filter(|&i| states[i].record.prompt_hash.is_some())
        .collect();
    order.sort_by_key(|&i| states[i].record.timestamp);
    let mut seen: FastMap<&str, ()> = FastMap::default();
    let mut groups: FastMap<Option<&str>, Acc> = FastMap::default();
    for i in order {
        let r = states[i].record;
        let Some(hash) = r.prompt_hash.as_deref() else {
            continue;
        };
        // A cache hit reported by a proxy cost nothing already.
        if tag_value(r.tags.as_deref(), "cache_hit") == Some("true") {
            continue;
        }
        let n = r.request_count.max(1) as f64;
        let repeats = if seen.insert(hash, ()).is_some() {
            n
        } else {
            n - 1.0
        };
        if repeats <= 0.0 {
            continue;
        }
        let share = repeats / n;
        let saving = states[i].cost * share;
        let g = groups.entry(r.feature.as_deref()).or_default();
        g.records += 1;
        g.requests += repeats as u64;
        g.before += states[i].cost;
        g.saving += saving;
        states[i].cost -= saving;
        states[i].remaining *= 1.0 - share;
    }
    let mut out = Vec::new();
    for (feature, g) in groups {
        if g.saving <= 0.0 {
            continue;
        }
        let name = label(feature);
        let mut rec = base(
            "exact_repeat_cache",
            format!("Cache identical prompts of {name}"),
            g.saving * per_month,
            g.before * per_month,
            &g,
        );
        rec.feature = feature.map(str::to_string);
        rec.evidence = format!(
            "{} requests of {name} over {days:.1} days repeated a prompt_hash seen earlier; they cost {} and an application cache keyed by the prompt would have answered them.",
            count(g.requests),
            usd(g.saving)
        );
        rec.assumptions = vec![
            "An identical prompt may be answered with the earlier response (no per-user or time-dependent content).".to_string(),
            "The cache lives long enough to cover the repeats seen (no expiry is modelled).".to_string(),
            window_assumption(days),
        ];
        rec.steps = vec![
            format!(
                "Key a response cache on the normalised prompt of {name} (model, parameters and prompt hash)."
            ),
            "Serve hits from the cache, with a TTL matched to how fast the answers go stale."
                .to_string(),
            "Track the hit rate and the spend it removes for two weeks.".to_string(),
        ];
        rec.figures
            .insert("repeated_requests".into(), g.requests as f64);
        out.push(rec);
    }
    out
}

/// Reusable prefix tokens and cache writes of each record, in request units (already scaled by
/// the requests that are still sent).
fn prefix_usage(states: &[State<'_, '_>]) -> Vec<Option<(f64, f64, &'static str)>> {
    let mut usage = vec![None; states.len()];
    // Mooncake blocks: an unlimited cache over the whole trace, in time order.
    let mut order: Vec<usize> = (0..states.len())
        .filter(|&i| {
            let r = states[i].record;
            r.prefix_hash.is_some() || r.tags.as_deref().is_some_and(|t| t.contains("hash_ids="))
        })
        .collect();
    order.sort_by_key(|&i| states[i].record.timestamp);
    let mut blocks: FastMap<u64, ()> = FastMap::default();
    let mut last_use: FastMap<&str, chrono::DateTime<chrono::Utc>> = FastMap::default();
    for &i in &order {
        let r = states[i].record;
        if let Some(ids) = hash_ids(r.tags.as_deref()) {
            let mut leading = 0u64;
            let mut still_leading = true;
            let mut new_blocks = 0u64;
            for id in ids {
                let known = blocks.insert(id, ()).is_some();
                if known && still_leading {
                    leading += 1;
                } else {
                    still_leading = false;
                    new_blocks += 1;
                }
            }
            let reused = (leading * MOONCAKE_BLOCK_TOKENS).min(r.input_tokens);
            let reused = if reused >= MIN_CACHEABLE_TOKENS {
                reused
            } else {
                0
            };
            let written = (new_blocks * MOONCAKE_BLOCK_TOKENS).min(r.input_tokens - reused);
            usage[i] = Some((reused as f64, written as f64, "hash_ids"));
            continue;
        }
        let (Some(prefix), Some(tokens)) = (
            r.prefix_hash.as_deref(),
            tag_value(r.tags.as_deref(), "prefix_tokens").and_then(|v| v.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let n = r.request_count.max(1);
        let tokens = tokens.min(r.input_tokens / n);
        if tokens < MIN_CACHEABLE_TOKENS {
            continue;
        }
        let (reads, writes) = if n == 1 {
            let warm = last_use
                .get(prefix)
                .is_some_and(|t| r.timestamp - *t <= Duration::minutes(CACHE_TTL_MINUTES));
            if warm { (1, 0) } else { (0, 1) }
        } else {
            // A bucket of an hour's requests writes once per cache lifetime, reads the rest.
            let writes = n.min((60 / CACHE_TTL_MINUTES) as u64);
            (n - writes, writes)
        };
        last_use.insert(prefix, r.timestamp);
        usage[i] = Some((
            (reads * tokens) as f64,
            (writes * tokens) as f64,
            "prefix_hash",
        ));
    }
    usage
}

fn prompt_caching(states: &mut [State<'_, '_>], per_month: f64, days: f64) -> Vec<Recommendation> {
    let usage = prefix_usage(states);
    let mut groups: FastMap<(&str, Option<&str>, &str), Acc> = FastMap::default();
    let mut input_total: FastMap<(&str, Option<&str>, &str), f64> = FastMap::default();
    for (i, u) in usage.iter().enumerate() {
        let Some((reused, written, source)) = *u else {
            continue;
        };
        let s = &states[i];
        let Some(price) = s.price else { continue };
        let r = s.record;
        let rates = price.rates(
            r.input_tokens as f64 / r.request_count.max(1) as f64,
            is_batch(r),
        );
        // Tokens the record already read from cache need no lever.
        let already = r.cache_read_input_tokens.unwrap_or(0) as f64;
        let reused = (reused - already).max(0.0) * s.remaining;
        let written = written * s.remaining;
        let saving = reused * (rates.input - rates.cache_read)
            - written * (rates.cache_write - rates.input).max(0.0);
        let key = (price.model.as_str(), r.feature.as_deref(), source);
        *input_total.entry(key).or_default() += r.input_tokens as f64 * s.remaining;
        let g = groups.entry(key).or_default();
        g.records += 1;
        g.requests += r.request_count;
        g.tokens += reused;
        g.extra += written;
        g.before += s.cost;
        g.saving += saving;
    }
    let mut out = Vec::new();
    let mut applied: FastMap<(&str, Option<&str>, &str), f64> = FastMap::default();
    for (key, g) in &groups {
        if g.saving <= 0.0 || !g.saving.is_finite() {
            continue;
        }
        let (model, feature, source) = *key;
        applied.insert(*key, g.saving / g.before.max(f64::MIN_POSITIVE));
        let name = label(feature);
        let total_input = input_total.get(key).copied().unwrap_or(0.0);
        let share = if total_input > 0.0 {
            g.tokens / total_input
        } else {
            0.0
        };
        let mut rec = base(
            "prompt_caching",
            format!("Cache the shared prompt prefix of {name} on {model}"),
            g.saving * per_month,
            g.before * per_month,
            g,
        );
        rec.feature = feature.map(str::to_string);
        rec.from_model = Some(model.to_string());
        rec.evidence = format!(
            "{} requests of {name} on {model} over {days:.1} days: {} of their {} input tokens ({:.1}%) repeat a prefix already sent ({}); read from cache instead of sent again they save {}, after {} tokens of cache writes.",
            count(g.requests),
            count(g.tokens as u64),
            count(total_input as u64),
            share * 100.0,
            if source == "hash_ids" {
                "Mooncake hash_ids blocks of 512 tokens"
            } else {
                "prefix_hash with prefix_tokens"
            },
            usd(g.saving),
            count(g.extra as u64),
        );
        rec.assumptions = vec![
            if source == "hash_ids" {
                "An unlimited prefix cache: a block is reused whenever any earlier request had the same prefix up to it (the provider's cache lifetime would lower this).".to_string()
            } else {
                format!(
                    "Cache entries live {CACHE_TTL_MINUTES} minutes; an hourly bucket writes the prefix once per {CACHE_TTL_MINUTES} minutes and reads it otherwise."
                )
            },
            format!(
                "Prefixes under {MIN_CACHEABLE_TOKENS} tokens are not cached (the providers' minimum)."
            ),
            format!("Prices: {model}'s cached-read and cache-write prices from the price table."),
            window_assumption(days),
        ];
        rec.steps = vec![
            format!("Put the shared part of {name}'s prompt first and the per-request part last."),
            "Mark the end of the shared prefix as cacheable (Anthropic `cache_control`; OpenAI and Gemini cache long prefixes automatically).".to_string(),
            "Watch cache_read_input_tokens in the usage data rise and input cost fall.".to_string(),
        ];
        rec.figures.insert("reusable_input_tokens".into(), g.tokens);
        rec.figures.insert("input_tokens".into(), total_input);
        rec.figures.insert("reusable_share".into(), share);
        rec.figures.insert("cache_write_tokens".into(), g.extra);
        out.push(rec);
    }
    // Lower the running cost of the records whose group was recommended.
    for (i, u) in usage.iter().enumerate() {
        let Some((_, _, source)) = *u else { continue };
        let s = &mut states[i];
        let Some(price) = s.price else { continue };
        if let Some(cut) = applied.get(&(price.model.as_str(), s.record.feature.as_deref(), source))
        {
            s.cost *= 1.0 - cut.clamp(0.0, 1.0);
        }
    }
    out
}

fn max_tokens(states: &mut [State<'_, '_>], per_month: f64, days: f64) -> Vec<Recommendation> {
    let mut totals: FastMap<Option<&str>, (u64, u64, f64)> = FastMap::default();
    for s in states.iter() {
        let r = s.record;
        if r.request_count != 1 {
            continue;
        }
        let Some(cap) = r.max_tokens else { continue };
        let t = totals.entry(r.feature.as_deref()).or_default();
        t.0 += 1;
        if cap > 0 && r.output_tokens >= cap {
            t.1 += 1;
            t.2 += s.cost;
        }
    }
    let mut out = Vec::new();
    for (feature, (requests, capped, cost)) in &totals {
        let share = *capped as f64 / (*requests).max(1) as f64;
        if *capped == 0 || share < CAPPED_SHARE || *cost <= 0.0 {
            continue;
        }
        let name = label(*feature);
        let acc = Acc {
            records: *capped,
            requests: *capped,
            ..Acc::default()
        };
        let mut rec = base(
            "max_tokens",
            format!("Stop {name} answers being cut off at max_tokens"),
            cost * per_month,
            cost * per_month,
            &acc,
        );
        rec.feature = feature.map(str::to_string);
        rec.risk = "medium".to_string();
        rec.evidence = format!(
            "{} of {} requests of {name} ({:.1}%) over {days:.1} days produced exactly their max_tokens of output: the answers were cut off. Those requests cost {}.",
            count(*capped),
            count(*requests),
            share * 100.0,
            usd(*cost)
        );
        rec.assumptions = vec![
            "A cut-off answer is retried or thrown away, so what it cost is waste.".to_string(),
            "Asking for a shorter, structured answer (or raising the cap where the answer is needed whole) ends the truncation.".to_string(),
            window_assumption(days),
        ];
        rec.steps = vec![
            format!("Sample cut-off {name} responses and see what the answer needed."),
            "Instruct a length (\"answer in at most N words\" or a JSON schema) that fits under the cap; raise the cap only where long answers are the point.".to_string(),
            "Alert when more than 1% of responses end with finish_reason=length.".to_string(),
        ];
        rec.figures.insert("capped_share".into(), share);
        out.push(rec);
        for s in states.iter_mut() {
            let r = s.record;
            if r.request_count == 1
                && r.feature.as_deref() == *feature
                && r.max_tokens.is_some_and(|c| c > 0 && r.output_tokens >= c)
            {
                s.cost = 0.0;
            }
        }
    }
    out
}

/// Whether a feature's name says it is offline work (looked up once per feature name).
fn offline_name(feature: Option<&str>) -> bool {
    let Some(feature) = feature else { return false };
    let f = feature.to_ascii_lowercase();
    BATCH_WORDS.iter().any(|w| f.contains(w))
}

fn non_interactive<'r>(r: &'r UsageRecord, by_name: &mut FastMap<Option<&'r str>, bool>) -> bool {
    if let Some(v) = tag_value(r.tags.as_deref(), "interactive") {
        return v.eq_ignore_ascii_case("false");
    }
    *by_name
        .entry(r.feature.as_deref())
        .or_insert_with(|| offline_name(r.feature.as_deref()))
}

fn batch(states: &mut [State<'_, '_>], per_month: f64, days: f64) -> Vec<Recommendation> {
    let mut groups: FastMap<(&str, Option<&str>), Acc> = FastMap::default();
    let mut cuts: Vec<(usize, f64)> = Vec::new();
    let mut by_name: FastMap<Option<&str>, bool> = FastMap::default();
    for (i, s) in states.iter().enumerate() {
        let r = s.record;
        let Some(price) = s.price else { continue };
        if s.cost <= 0.0 || !price.has_batch() || is_batch(r) || !non_interactive(r, &mut by_name) {
            continue;
        }
        let list = price.cost_on_tier(r, false);
        if list <= 0.0 {
            continue;
        }
        let ratio = price.cost_on_tier(r, true) / list;
        let saving = s.cost * (1.0 - ratio);
        let g = groups
            .entry((price.model.as_str(), r.feature.as_deref()))
            .or_default();
        g.records += 1;
        g.requests += r.request_count;
        g.before += s.cost;
        g.saving += saving;
        cuts.push((i, ratio));
    }
    for (i, ratio) in cuts {
        states[i].cost *= ratio;
    }
    let mut out = Vec::new();
    for ((model, feature), g) in groups {
        if g.saving <= 0.0 {
            continue;
        }
        let name = label(feature);
        let mut rec = base(
            "batch",
            format!("Send {name} through the {model} batch API"),
            g.saving * per_month,
            g.before * per_month,
            &g,
        );
        rec.feature = feature.map(str::to_string);
        rec.from_model = Some(model.to_string());
        rec.evidence = format!(
            "{} requests of {name} on {model} over {days:.1} days cost {}; {name} is offline work that does not need an answer within seconds, and the batch price saves {}.",
            count(g.requests),
            usd(g.before),
            usd(g.saving)
        );
        rec.assumptions = vec![
            format!(
                "{name} can wait up to 24 hours for results (inferred from its name or an interactive=false tag; confirm with its owner)."
            ),
            format!(
                "{model}'s batch prices from the price table apply to all of its tokens, cached ones too."
            ),
            window_assumption(days),
        ];
        rec.steps = vec![
            format!(
                "Queue {name} requests and submit them as batch jobs (JSONL of requests) instead of one call each."
            ),
            "Poll for results and write them back where the synchronous path did.".to_string(),
            "Keep the synchronous path as a fallback for late batches.".to_string(),
        ];
        rec.effort = "medium".to_string();
        out.push(rec);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read() {
        assert_eq!(
            tag_value(Some("env=prod;prefix_tokens=6200"), "prefix_tokens"),
            Some("6200")
        );
        assert_eq!(tag_value(Some("env=prod"), "prefix_tokens"), None);
        assert_eq!(tag_value(None, "x"), None);
        assert_eq!(
            tag_value(Some("prefix=1;prefix_tokens=2"), "prefix"),
            Some("1")
        );
    }
}
