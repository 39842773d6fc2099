//! List prices per token for the models the analyses price, and the rules that turn a usage
//! record into dollars.
//!
//! The table is embedded in the source (numbers copied from pydantic/genai-prices and LiteLLM's
//! model_prices, each entry naming its source and check date) so pricing is deterministic and
//! needs no files at runtime. This module must not read files, guess prices for unknown models,
//! or model long-context price tiers (prompts over 200k tokens are priced at the base rate).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::fastmap::FastMap;
use crate::record::UsageRecord;

/// How expensive a model is within its family; routing only ever moves work down a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceTier {
    Premium,
    Standard,
    Economy,
}

impl PriceTier {
    fn rank(self) -> u8 {
        match self {
            PriceTier::Premium => 2,
            PriceTier::Standard => 1,
            PriceTier::Economy => 0,
        }
    }

    /// True when `self` is a cheaper tier than `other`.
    pub fn is_below(self, other: PriceTier) -> bool {
        self.rank() < other.rank()
    }
}

/// One model's list prices, in dollars per token (LiteLLM field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPrice {
    pub model: String,
    pub provider: String,
    pub family: String,
    pub tier: PriceTier,
    pub input_cost_per_token: f64,
    pub output_cost_per_token: f64,
    pub cache_read_input_token_cost: Option<f64>,
    pub cache_creation_input_token_cost: Option<f64>,
    /// Fraction taken off for the provider's batch API, e.g. 0.5.
    pub batch_discount: Option<f64>,
    pub source: String,
    pub as_of: String,
}

impl ModelPrice {
    /// The list cost of a record's tokens at this model's prices, whatever model the record names;
    /// this is how a routing saving is computed for the same traffic on another model.
    pub fn cost_for(&self, r: &UsageRecord) -> f64 {
        let input = r.input_tokens;
        // Clamp so an inconsistent record can never produce a negative remainder.
        let cache_read = r.cache_read_input_tokens.unwrap_or(0).min(input);
        let cache_write = r
            .cache_write_input_tokens
            .unwrap_or(0)
            .min(input - cache_read);
        let plain = input - cache_read - cache_write;
        let read_rate = self
            .cache_read_input_token_cost
            .unwrap_or(self.input_cost_per_token);
        let write_rate = self
            .cache_creation_input_token_cost
            .unwrap_or(self.input_cost_per_token);
        let mut cost = plain as f64 * self.input_cost_per_token
            + cache_read as f64 * read_rate
            + cache_write as f64 * write_rate
            + r.output_tokens as f64 * self.output_cost_per_token;
        if let (Some(discount), Some(tier)) = (self.batch_discount, r.service_tier.as_deref())
            && tier.trim().eq_ignore_ascii_case("batch")
        {
            cost *= 1.0 - discount.clamp(0.0, 1.0);
        }
        if cost.is_finite() { cost.max(0.0) } else { 0.0 }
    }

    /// A single number to order models by price: dollars for one input plus one output token.
    pub fn blended_cost_per_token(&self) -> f64 {
        self.input_cost_per_token + self.output_cost_per_token
    }
}

/// The set of priced models and the name matching rules.
#[derive(Debug, Clone)]
pub struct PriceTable {
    models: Vec<ModelPrice>,
    exact: HashMap<String, usize>,
    /// Lower-cased canonical names and aliases.
    folded: HashMap<String, usize>,
}

struct Embedded {
    model: &'static str,
    provider: &'static str,
    family: &'static str,
    tier: PriceTier,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    batch_discount: Option<f64>,
    source: &'static str,
    as_of: &'static str,
    aliases: &'static [&'static str],
    /// The entry id in the source file, so a test can check every number against it.
    #[cfg_attr(not(test), allow(dead_code))]
    source_id: &'static str,
    /// The LiteLLM key whose `*_batches` prices give `batch_discount`.
    #[cfg_attr(not(test), allow(dead_code))]
    batch_key: Option<&'static str>,
}

const GENAI_OPENAI_BATCH: &str =
    "pydantic/genai-prices openai.yml (batch discount: litellm model_prices)";
const GENAI_ANTHROPIC: &str = "pydantic/genai-prices anthropic.yml";
const GENAI_ANTHROPIC_BATCH: &str =
    "pydantic/genai-prices anthropic.yml (batch discount: litellm model_prices)";
const GENAI_GOOGLE_BATCH: &str =
    "pydantic/genai-prices google.yml (batch discount: litellm model_prices)";
const LITELLM: &str = "litellm model_prices";
/// LiteLLM's table carries no date of its own; this is the day the shared snapshot was taken.
const LITELLM_SNAPSHOT: &str = "2026-11-26";

#[rustfmt::skip]
const EMBEDDED: &[Embedded] = &[
    // OpenAI: cache writes are not billed separately, so no creation price.
    Embedded { model: "gpt-4o", provider: "openai", family: "gpt-4o", tier: PriceTier::Premium,
        input: 2.5e-6, output: 10e-6, cache_read: Some(1.25e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_OPENAI_BATCH, as_of: "2025-07-04", aliases: &[], source_id: "gpt-4o", batch_key: Some("gpt-4o") },
    Embedded { model: "gpt-4o-mini", provider: "openai", family: "gpt-4o", tier: PriceTier::Economy,
        input: 0.15e-6, output: 0.6e-6, cache_read: Some(0.075e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_OPENAI_BATCH, as_of: "2025-07-04", aliases: &[], source_id: "gpt-4o-mini", batch_key: Some("gpt-4o-mini") },
    Embedded { model: "gpt-4.1", provider: "openai", family: "gpt-4.1", tier: PriceTier::Premium,
        input: 2e-6, output: 8e-6, cache_read: Some(0.5e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_OPENAI_BATCH, as_of: "2025-07-04", aliases: &[], source_id: "gpt-4.1", batch_key: Some("gpt-4.1") },
    Embedded { model: "gpt-4.1-mini", provider: "openai", family: "gpt-4.1", tier: PriceTier::Standard,
        input: 0.4e-6, output: 1.6e-6, cache_read: Some(0.1e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_OPENAI_BATCH, as_of: "2025-07-04", aliases: &[], source_id: "gpt-4.1-mini", batch_key: Some("gpt-4.1-mini") },
    Embedded { model: "gpt-4.1-nano", provider: "openai", family: "gpt-4.1", tier: PriceTier::Economy,
        input: 0.1e-6, output: 0.4e-6, cache_read: Some(0.025e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_OPENAI_BATCH, as_of: "2025-07-04", aliases: &[], source_id: "gpt-4.1-nano", batch_key: Some("gpt-4.1-nano") },
    // o3's price was cut on 2025-06-10; the current price is the one that applies.
    Embedded { model: "o3", provider: "openai", family: "o-series", tier: PriceTier::Premium,
        input: 2e-6, output: 8e-6, cache_read: Some(0.5e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_OPENAI_BATCH, as_of: "2025-07-12", aliases: &[], source_id: "o3", batch_key: Some("o3") },
    Embedded { model: "o3-mini", provider: "openai", family: "o-series", tier: PriceTier::Standard,
        input: 1.1e-6, output: 4.4e-6, cache_read: Some(0.55e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_OPENAI_BATCH, as_of: "2025-07-04", aliases: &["o3-mini-high"], source_id: "o3-mini", batch_key: Some("o3-mini") },
    Embedded { model: "o4-mini", provider: "openai", family: "o-series", tier: PriceTier::Standard,
        input: 1.1e-6, output: 4.4e-6, cache_read: Some(0.275e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_OPENAI_BATCH, as_of: "2025-07-04", aliases: &["o4-mini-high"], source_id: "o4-mini", batch_key: Some("o4-mini") },
    // Anthropic: cache_write is the 5-minute cache write price. The source gives no batch price for
    // the Claude 4.0 and 3.5 entries, so none is assumed.
    Embedded { model: "claude-opus-4", provider: "anthropic", family: "claude", tier: PriceTier::Premium,
        input: 15e-6, output: 75e-6, cache_read: Some(1.5e-6), cache_write: Some(18.75e-6), batch_discount: None,
        source: GENAI_ANTHROPIC, as_of: "2026-07-29", aliases: &["claude-opus-4-0", "claude-4-opus"], source_id: "claude-opus-4-0", batch_key: None },
    Embedded { model: "claude-opus-4-1", provider: "anthropic", family: "claude", tier: PriceTier::Premium,
        input: 15e-6, output: 75e-6, cache_read: Some(1.5e-6), cache_write: Some(18.75e-6), batch_discount: None,
        source: GENAI_ANTHROPIC, as_of: "2026-07-29", aliases: &["claude-opus-4.1"], source_id: "claude-opus-4-1", batch_key: None },
    Embedded { model: "claude-opus-4-5", provider: "anthropic", family: "claude", tier: PriceTier::Premium,
        input: 5e-6, output: 25e-6, cache_read: Some(0.5e-6), cache_write: Some(6.25e-6), batch_discount: Some(0.5),
        source: GENAI_ANTHROPIC_BATCH, as_of: "2026-07-29", aliases: &["claude-opus-4.5"], source_id: "claude-opus-4-5", batch_key: Some("claude-opus-4-5") },
    Embedded { model: "claude-sonnet-4", provider: "anthropic", family: "claude", tier: PriceTier::Standard,
        input: 3e-6, output: 15e-6, cache_read: Some(0.3e-6), cache_write: Some(3.75e-6), batch_discount: None,
        source: GENAI_ANTHROPIC, as_of: "2026-07-29", aliases: &["claude-sonnet-4-0", "claude-4-sonnet"], source_id: "claude-sonnet-4-0", batch_key: None },
    Embedded { model: "claude-3-5-haiku", provider: "anthropic", family: "claude", tier: PriceTier::Economy,
        input: 0.8e-6, output: 4e-6, cache_read: Some(0.08e-6), cache_write: Some(1e-6), batch_discount: None,
        source: GENAI_ANTHROPIC, as_of: "2026-07-29", aliases: &["claude-3.5-haiku"], source_id: "claude-3-5-haiku-latest", batch_key: None },
    Embedded { model: "claude-haiku-4-5", provider: "anthropic", family: "claude", tier: PriceTier::Economy,
        input: 1e-6, output: 5e-6, cache_read: Some(0.1e-6), cache_write: Some(1.25e-6), batch_discount: Some(0.5),
        source: GENAI_ANTHROPIC_BATCH, as_of: "2026-07-29", aliases: &["claude-haiku-4.5", "claude-4-5-haiku"], source_id: "claude-haiku-4-5", batch_key: Some("claude-haiku-4-5") },
    // Google: prompts over 200k tokens cost more (2.50/15.00 for Pro); only the base tier is modelled.
    // Context cache storage is billed per hour, not per token, so no creation price.
    Embedded { model: "gemini-2.5-pro", provider: "google", family: "gemini-2.5", tier: PriceTier::Premium,
        input: 1.25e-6, output: 10e-6, cache_read: Some(0.125e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_GOOGLE_BATCH, as_of: "2025-10-31", aliases: &["gemini-2.5-pro-preview"], source_id: "gemini-2.5-pro", batch_key: Some("gemini-2.5-pro") },
    Embedded { model: "gemini-2.5-flash", provider: "google", family: "gemini-2.5", tier: PriceTier::Standard,
        input: 0.3e-6, output: 2.5e-6, cache_read: Some(0.03e-6), cache_write: None, batch_discount: Some(0.5),
        source: GENAI_GOOGLE_BATCH, as_of: "2025-10-31", aliases: &["gemini-2.5-flash-preview-09-2025"], source_id: "gemini-2.5-flash", batch_key: Some("gemini-2.5-flash") },
    // Open-weight models as Together AI hosts them.
    Embedded { model: "meta-llama/Llama-3.3-70B-Instruct-Turbo", provider: "together_ai", family: "llama", tier: PriceTier::Standard,
        input: 1.04e-6, output: 1.04e-6, cache_read: None, cache_write: None, batch_discount: None,
        source: LITELLM, as_of: LITELLM_SNAPSHOT, aliases: &["llama-3.3-70b", "llama-3.3-70b-instruct"],
        source_id: "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", batch_key: None },
    Embedded { model: "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", provider: "together_ai", family: "llama", tier: PriceTier::Economy,
        input: 0.18e-6, output: 0.18e-6, cache_read: None, cache_write: None, batch_discount: None,
        source: LITELLM, as_of: LITELLM_SNAPSHOT, aliases: &["llama-3.1-8b", "llama-3.1-8b-instruct"],
        source_id: "together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", batch_key: None },
];

/// Strips a trailing release date or `-latest` tag: `-2024-08-06`, `-20250514`, `@20250514`.
fn strip_date_suffix(name: &str) -> Option<&str> {
    let b = name.as_bytes();
    let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if let Some(stem) = name.strip_suffix("-latest") {
        return Some(stem);
    }
    if b.len() > 11 {
        let tail = &b[b.len() - 11..];
        if tail[0] == b'-'
            && all_digits(&tail[1..5])
            && tail[5] == b'-'
            && all_digits(&tail[6..8])
            && tail[8] == b'-'
            && all_digits(&tail[9..11])
        {
            return name.get(..name.len() - 11);
        }
    }
    if b.len() > 9 {
        let tail = &b[b.len() - 9..];
        if (tail[0] == b'-' || tail[0] == b'@') && all_digits(&tail[1..]) {
            return name.get(..name.len() - 9);
        }
    }
    None
}

impl PriceTable {
    /// The built-in table (18 models of OpenAI, Anthropic, Google and Together AI).
    pub fn embedded() -> PriceTable {
        let mut table = PriceTable::from_models(Vec::new());
        for e in EMBEDDED {
            let idx = table.push(ModelPrice {
                model: e.model.to_string(),
                provider: e.provider.to_string(),
                family: e.family.to_string(),
                tier: e.tier,
                input_cost_per_token: e.input,
                output_cost_per_token: e.output,
                cache_read_input_token_cost: e.cache_read,
                cache_creation_input_token_cost: e.cache_write,
                batch_discount: e.batch_discount,
                source: e.source.to_string(),
                as_of: e.as_of.to_string(),
            });
            for alias in e.aliases {
                table
                    .folded
                    .entry(alias.to_ascii_lowercase())
                    .or_insert(idx);
            }
        }
        table
    }

    /// A table of exactly these models (later entries with the same name replace earlier ones).
    pub fn from_models(models: Vec<ModelPrice>) -> PriceTable {
        let mut table = PriceTable {
            models: Vec::new(),
            exact: HashMap::new(),
            folded: HashMap::new(),
        };
        for m in models {
            table.push(m);
        }
        table
    }

    /// Adds or replaces a model, returning its index.
    fn push(&mut self, price: ModelPrice) -> usize {
        if let Some(&idx) = self.exact.get(&price.model) {
            self.models[idx] = price;
            return idx;
        }
        let idx = self.models.len();
        self.exact.insert(price.model.clone(), idx);
        let folded = price.model.to_ascii_lowercase();
        // "meta-llama/Llama-3.3-70B-Instruct-Turbo" is often logged without its org prefix.
        if let Some((_, last)) = folded.rsplit_once('/') {
            self.folded.entry(last.to_string()).or_insert(idx);
        }
        self.folded.insert(folded, idx);
        self.models.push(price);
        idx
    }

    /// Adds a model, or replaces the one with the same name.
    pub fn insert(&mut self, price: ModelPrice) {
        self.push(price);
    }

    /// Finds a model: exact name, then case-insensitive, then without a provider prefix
    /// (`openai/gpt-4o`) and without a date suffix (`gpt-4o-2024-08-06`).
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        if let Some(&i) = self.exact.get(model) {
            return self.models.get(i);
        }
        let folded = model.trim().to_ascii_lowercase();
        let mut candidate: &str = &folded;
        loop {
            if let Some(&i) = self.folded.get(candidate) {
                return self.models.get(i);
            }
            if let Some(stem) = strip_date_suffix(candidate)
                && let Some(&i) = self.folded.get(stem)
            {
                return self.models.get(i);
            }
            match candidate.split_once('/') {
                Some((_, rest)) if !rest.is_empty() => candidate = rest,
                _ => return None,
            }
        }
    }

    pub fn models(&self) -> impl Iterator<Item = &ModelPrice> {
        self.models.iter()
    }

    /// The record's cost at list prices; None when the model is not in the table.
    pub fn list_cost_usd(&self, r: &UsageRecord) -> Option<f64> {
        self.lookup(&r.model).map(|p| p.cost_for(r))
    }

    /// What the record cost: the billed `cost_usd` when present, else list price, else 0.
    pub fn cost_usd(&self, r: &UsageRecord) -> f64 {
        record_cost(r, self.lookup(&r.model)).0
    }

    /// The cheapest model of the same provider and family in a lower tier, e.g. gpt-4o → gpt-4o-mini.
    pub fn cheaper_alternative(&self, model: &str) -> Option<&ModelPrice> {
        let current = self.lookup(model)?;
        self.models
            .iter()
            .filter(|m| {
                m.provider == current.provider
                    && m.family == current.family
                    && m.tier.is_below(current.tier)
            })
            .min_by(|a, b| {
                a.blended_cost_per_token()
                    .total_cmp(&b.blended_cost_per_token())
                    .then_with(|| {
                        let ca = a
                            .cache_read_input_token_cost
                            .unwrap_or(a.input_cost_per_token);
                        let cb = b
                            .cache_read_input_token_cost
                            .unwrap_or(b.input_cost_per_token);
                        ca.total_cmp(&cb)
                    })
                    .then_with(|| a.model.cmp(&b.model))
            })
    }
}

/// The cost of one record given its (already looked up) price, and whether it was priced at all.
/// Billed cost wins because it reflects discounts and contracts the list price cannot know.
pub(crate) fn record_cost(r: &UsageRecord, price: Option<&ModelPrice>) -> (f64, bool) {
    if let Some(billed) = r.cost_usd
        && billed.is_finite()
    {
        return (billed.max(0.0), true);
    }
    match price {
        Some(p) => (p.cost_for(r), true),
        None => (0.0, false),
    }
}

/// Looks each distinct model name up once; the analyses price millions of records that name only
/// a handful of models, and `lookup` allocates on its slower paths.
pub(crate) struct PriceCache<'p, 'r> {
    table: &'p PriceTable,
    cache: FastMap<&'r str, Option<&'p ModelPrice>>,
}

impl<'p, 'r> PriceCache<'p, 'r> {
    pub(crate) fn new(table: &'p PriceTable) -> Self {
        PriceCache {
            table,
            cache: FastMap::default(),
        }
    }

    pub(crate) fn price(&mut self, model: &'r str) -> Option<&'p ModelPrice> {
        let table = self.table;
        *self
            .cache
            .entry(model)
            .or_insert_with(|| table.lookup(model))
    }

    /// `(cost, priced)` for the record, as `PriceTable::cost_usd` would compute it.
    pub(crate) fn cost(&mut self, r: &'r UsageRecord) -> (f64, bool) {
        // A billed record needs no price, so it skips the lookup.
        let price = match r.cost_usd {
            Some(billed) if billed.is_finite() => None,
            _ => self.price(&r.model),
        };
        record_cost(r, price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use std::path::PathBuf;

    fn rec(model: &str, input: u64, output: u64) -> UsageRecord {
        UsageRecord::new(
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            "x",
            model,
            input,
            output,
        )
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-30)
    }

    #[test]
    fn embedded_has_required_models() {
        let t = PriceTable::embedded();
        assert!(t.models().count() >= 12);
        for m in [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-4.1-mini",
            "gpt-4.1-nano",
            "o3-mini",
            "claude-opus-4",
            "claude-sonnet-4",
            "claude-3-5-haiku",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        ] {
            let p = t.lookup(m).unwrap_or_else(|| panic!("{m} missing"));
            assert_eq!(p.model, m);
            assert!(!p.source.is_empty() && p.as_of.len() == 10);
        }
        for p in t.models() {
            if p.provider == "anthropic" {
                assert!(p.cache_read_input_token_cost.is_some());
                assert!(p.cache_creation_input_token_cost.is_some());
            }
        }
    }

    #[test]
    fn lookup_normalises_names() {
        let t = PriceTable::embedded();
        let name = |m: &str| t.lookup(m).map(|p| p.model.as_str());
        assert_eq!(name("GPT-4o"), Some("gpt-4o"));
        assert_eq!(name("openai/gpt-4o"), Some("gpt-4o"));
        assert_eq!(name("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(name("openai/gpt-4o-mini-2024-07-18"), Some("gpt-4o-mini"));
        assert_eq!(name("claude-sonnet-4-20250514"), Some("claude-sonnet-4"));
        assert_eq!(
            name("anthropic/claude-3-5-haiku-20241022"),
            Some("claude-3-5-haiku")
        );
        assert_eq!(name("claude-3-5-haiku-latest"), Some("claude-3-5-haiku"));
        assert_eq!(name("claude-opus-4-0"), Some("claude-opus-4"));
        assert_eq!(name("claude-sonnet-4@20250514"), Some("claude-sonnet-4"));
        assert_eq!(name("gemini/gemini-2.5-flash"), Some("gemini-2.5-flash"));
        assert_eq!(
            name("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            Some("meta-llama/Llama-3.3-70B-Instruct-Turbo")
        );
        assert_eq!(
            name("llama-3.3-70b"),
            Some("meta-llama/Llama-3.3-70B-Instruct-Turbo")
        );
        // A date strip must not turn one model into a different one.
        assert_eq!(name("gpt-4o-mini-audio"), None);
        assert_eq!(name("claude-opus-4-8"), None);
        assert_eq!(name("no-such-model"), None);
        assert_eq!(name(""), None);
    }

    #[test]
    fn list_cost_splits_cached_input_and_applies_batch() {
        let t = PriceTable::embedded();
        let mut r = rec("claude-sonnet-4", 10_000, 1_000);
        r.cache_read_input_tokens = Some(6_000);
        r.cache_write_input_tokens = Some(2_000);
        let expected = 2_000.0 * 3e-6 + 6_000.0 * 0.3e-6 + 2_000.0 * 3.75e-6 + 1_000.0 * 15e-6;
        assert!(close(t.list_cost_usd(&r).unwrap(), expected));

        let mut r = rec("gpt-4o", 1_000_000, 1_000_000);
        assert!(close(t.list_cost_usd(&r).unwrap(), 12.5));
        r.service_tier = Some("Batch".into());
        assert!(close(t.list_cost_usd(&r).unwrap(), 6.25));

        // OpenAI has no cache-write price: those tokens are ordinary input.
        let mut r = rec("gpt-4o", 1_000, 0);
        r.cache_write_input_tokens = Some(1_000);
        assert!(close(t.list_cost_usd(&r).unwrap(), 1_000.0 * 2.5e-6));

        // Inconsistent cache counts are clamped rather than going negative.
        let mut r = rec("gpt-4o", 100, 0);
        r.cache_read_input_tokens = Some(500);
        assert!(close(t.list_cost_usd(&r).unwrap(), 100.0 * 1.25e-6));
    }

    #[test]
    fn billed_cost_wins_and_unknown_is_zero() {
        let t = PriceTable::embedded();
        let mut r = rec("gpt-4o", 1_000, 1_000);
        r.cost_usd = Some(0.5);
        assert_eq!(t.cost_usd(&r), 0.5);
        r.cost_usd = Some(-3.0);
        assert_eq!(t.cost_usd(&r), 0.0);
        let r = rec("mystery", 1_000, 1_000);
        assert_eq!(t.list_cost_usd(&r), None);
        assert_eq!(t.cost_usd(&r), 0.0);
    }

    #[test]
    fn cheaper_alternatives_stay_in_family() {
        let t = PriceTable::embedded();
        let alt = |m: &str| t.cheaper_alternative(m).map(|p| p.model.as_str());
        assert_eq!(alt("gpt-4o"), Some("gpt-4o-mini"));
        assert_eq!(alt("gpt-4o-2024-11-20"), Some("gpt-4o-mini"));
        assert_eq!(alt("gpt-4.1"), Some("gpt-4.1-nano"));
        assert_eq!(alt("claude-opus-4"), Some("claude-3-5-haiku"));
        assert_eq!(alt("gemini-2.5-pro"), Some("gemini-2.5-flash"));
        assert_eq!(alt("o3"), Some("o4-mini"));
        assert_eq!(
            alt("meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            Some("meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo")
        );
        assert_eq!(alt("gpt-4o-mini"), None);
        assert_eq!(alt("unknown"), None);
    }

    fn shared_data() -> Option<PathBuf> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        if dir.is_dir() {
            Some(dir)
        } else {
            println!("skipped: {} is absent", dir.display());
            None
        }
    }

    /// The last `key: value` in one model's block of a genai-prices YAML file, in $/Mtok.
    /// The last one is the current price where a file lists price periods; `base:` is the
    /// under-200k tier.
    fn yml_block<'t>(text: &'t str, id: &str) -> Option<&'t str> {
        let header = format!("\n  - id: {id}\n");
        let rest = &text[text.find(&header)? + header.len()..];
        Some(&rest[..rest.find("\n  - id: ").unwrap_or(rest.len())])
    }

    fn yml_mtok(text: &str, id: &str, key: &str) -> Option<f64> {
        let block = yml_block(text, id)?;
        let lines: Vec<&str> = block.lines().collect();
        let mut found = None;
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim();
            if let Some(value) = trimmed.strip_prefix(&format!("{key}:")) {
                let value = value.trim();
                found = if value.is_empty() {
                    lines
                        .get(i + 1)
                        .and_then(|l| l.trim().strip_prefix("base:"))
                        .and_then(|v| v.trim().parse().ok())
                } else {
                    value.parse().ok()
                };
            }
        }
        found
    }

    #[test]
    fn embedded_prices_match_source_files() {
        let Some(dir) = shared_data() else { return };
        let litellm: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("prices/litellm_model_prices.json")).unwrap(),
        )
        .unwrap();
        let t = PriceTable::embedded();
        for e in EMBEDDED {
            let p = t.lookup(e.model).unwrap();
            let opt_close = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => close(a, b),
                (None, None) => true,
                _ => false,
            };
            if e.source == LITELLM {
                let entry = &litellm[e.source_id];
                let get = |k: &str| entry.get(k).and_then(serde_json::Value::as_f64);
                assert!(close(
                    p.input_cost_per_token,
                    get("input_cost_per_token").unwrap()
                ));
                assert!(close(
                    p.output_cost_per_token,
                    get("output_cost_per_token").unwrap()
                ));
                assert!(opt_close(
                    p.cache_read_input_token_cost,
                    get("cache_read_input_token_cost")
                ));
                assert_eq!(entry["litellm_provider"].as_str(), Some(e.provider));
            } else {
                let file = match e.provider {
                    "openai" => "openai.yml",
                    "anthropic" => "anthropic.yml",
                    _ => "google.yml",
                };
                let text = std::fs::read_to_string(dir.join("prices").join(file)).unwrap();
                let mtok = |k: &str| yml_mtok(&text, e.source_id, k).map(|v| v / 1e6);
                assert!(
                    close(p.input_cost_per_token, mtok("input_mtok").unwrap()),
                    "{}",
                    e.model
                );
                assert!(
                    close(p.output_cost_per_token, mtok("output_mtok").unwrap()),
                    "{}",
                    e.model
                );
                assert!(
                    opt_close(p.cache_read_input_token_cost, mtok("cache_read_mtok")),
                    "{}",
                    e.model
                );
                assert!(
                    opt_close(p.cache_creation_input_token_cost, mtok("cache_write_mtok")),
                    "{}",
                    e.model
                );
                let checked = format!("prices_checked: {}", e.as_of);
                assert!(
                    yml_block(&text, e.source_id).unwrap().contains(&checked),
                    "{} as_of",
                    e.model
                );
            }
            if let Some(key) = e.batch_key {
                let entry = &litellm[key];
                let full = entry["input_cost_per_token"].as_f64().unwrap();
                let batch = entry["input_cost_per_token_batches"].as_f64().unwrap();
                assert!(
                    close(p.batch_discount.unwrap(), 1.0 - batch / full),
                    "{}",
                    e.model
                );
                assert!(
                    close(full, p.input_cost_per_token),
                    "{} litellm agrees",
                    e.model
                );
            } else {
                assert_eq!(p.batch_discount, None);
            }
        }
        // Spot checks written out, so a reader sees the numbers.
        let text = std::fs::read_to_string(dir.join("prices/openai.yml")).unwrap();
        assert_eq!(yml_mtok(&text, "gpt-4o", "input_mtok"), Some(2.5));
        assert_eq!(yml_mtok(&text, "gpt-4o-mini", "output_mtok"), Some(0.6));
        let text = std::fs::read_to_string(dir.join("prices/anthropic.yml")).unwrap();
        assert_eq!(
            yml_mtok(&text, "claude-sonnet-4-0", "cache_write_mtok"),
            Some(3.75)
        );
    }
}
