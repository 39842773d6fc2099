//! List prices per token for the models the analyses price, and the rules that turn a usage
//! record into dollars.
//!
//! The table is embedded in the source (39 models of OpenAI, Anthropic, Google and open-weight
//! models hosted by Together AI; numbers copied from pydantic/genai-prices and LiteLLM's
//! model_prices, each entry naming its source and check date) so pricing is deterministic and
//! needs no files at runtime; `PriceTable::load_litellm_json` lays a LiteLLM price file over it.
//! Field names are LiteLLM's.
//!
//! Cost rules (`ModelPrice::cost_for`), as the providers bill:
//! - input tokens read from the prompt cache cost `cache_read_input_token_cost`; tokens written to
//!   it cost `cache_creation_input_token_cost` (Anthropic's premium; providers without a write
//!   price bill them as ordinary input);
//! - reasoning tokens are output tokens (they are already counted in `output_tokens`);
//! - `service_tier = batch` is billed at the batch prices (`*_batches`), the input-side discount
//!   applying to cached tokens too, as the sources list them;
//! - a request whose prompt exceeds 200k tokens is billed at the model's `*_above_200k_tokens`
//!   prices for all its tokens, where the model has them; for a bucket of requests the average
//!   prompt decides;
//! - a record with a billed `cost_usd` keeps it (`record_cost`); the difference to list price is
//!   reported by the summary.
//!
//! This module must not read files (a caller hands it a reader) or guess prices for unknown models.

use std::collections::HashMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::fastmap::FastMap;
use crate::record::UsageRecord;

/// Prompts longer than this many tokens are billed at a model's long-context prices.
pub const LONG_CONTEXT_THRESHOLD_TOKENS: f64 = 200_000.0;

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
    pub input_cost_per_token_batches: Option<f64>,
    pub output_cost_per_token_batches: Option<f64>,
    pub input_cost_per_token_above_200k_tokens: Option<f64>,
    pub output_cost_per_token_above_200k_tokens: Option<f64>,
    pub cache_read_input_token_cost_above_200k_tokens: Option<f64>,
    pub cache_creation_input_token_cost_above_200k_tokens: Option<f64>,
    pub source: String,
    pub as_of: String,
}

/// Per-token rates that apply to one record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl ModelPrice {
    /// A price with only input and output rates (the rest absent), for tests and loaders.
    pub fn simple(
        model: &str,
        provider: &str,
        input_cost_per_token: f64,
        output_cost_per_token: f64,
    ) -> ModelPrice {
        ModelPrice {
            model: model.to_string(),
            provider: provider.to_string(),
            family: model.to_string(),
            tier: PriceTier::Standard,
            input_cost_per_token,
            output_cost_per_token,
            cache_read_input_token_cost: None,
            cache_creation_input_token_cost: None,
            input_cost_per_token_batches: None,
            output_cost_per_token_batches: None,
            input_cost_per_token_above_200k_tokens: None,
            output_cost_per_token_above_200k_tokens: None,
            cache_read_input_token_cost_above_200k_tokens: None,
            cache_creation_input_token_cost_above_200k_tokens: None,
            source: String::new(),
            as_of: String::new(),
        }
    }

    /// The rates for a request of `prompt_tokens` on the given tier (`batch` or not).
    pub fn rates(&self, prompt_tokens: f64, batch: bool) -> Rates {
        let long = prompt_tokens > LONG_CONTEXT_THRESHOLD_TOKENS
            && self.input_cost_per_token_above_200k_tokens.is_some();
        let pick = |base: f64, above: Option<f64>| if long { above.unwrap_or(base) } else { base };
        let input = pick(
            self.input_cost_per_token,
            self.input_cost_per_token_above_200k_tokens,
        );
        let output = pick(
            self.output_cost_per_token,
            self.output_cost_per_token_above_200k_tokens,
        );
        let cache_read = pick(
            self.cache_read_input_token_cost
                .unwrap_or(self.input_cost_per_token),
            self.cache_read_input_token_cost_above_200k_tokens,
        );
        let cache_write = pick(
            self.cache_creation_input_token_cost
                .unwrap_or(self.input_cost_per_token),
            self.cache_creation_input_token_cost_above_200k_tokens,
        );
        let mut rates = Rates {
            input,
            output,
            // Without a cache price the provider bills cached tokens as input.
            cache_read: if self.cache_read_input_token_cost.is_some() {
                cache_read
            } else {
                input
            },
            cache_write: if self.cache_creation_input_token_cost.is_some() {
                cache_write
            } else {
                input
            },
        };
        if batch
            && let (Some(bi), Some(bo)) = (
                self.input_cost_per_token_batches,
                self.output_cost_per_token_batches,
            )
        {
            let fi = ratio(bi, self.input_cost_per_token);
            let fo = ratio(bo, self.output_cost_per_token);
            rates.input *= fi;
            rates.cache_read *= fi;
            rates.cache_write *= fi;
            rates.output *= fo;
        }
        rates
    }

    /// True when the model has a batch price.
    pub fn has_batch(&self) -> bool {
        self.input_cost_per_token_batches.is_some() && self.output_cost_per_token_batches.is_some()
    }

    /// The list cost of a record's tokens at this model's prices, whatever model the record names;
    /// this is how a routing saving is computed for the same traffic on another model.
    pub fn cost_for(&self, r: &UsageRecord) -> f64 {
        self.cost_on_tier(r, is_batch(r))
    }

    /// The record's list cost as if it were (or were not) sent to the batch tier.
    pub fn cost_on_tier(&self, r: &UsageRecord, batch: bool) -> f64 {
        let input = r.input_tokens;
        // Clamp so an inconsistent record can never produce a negative remainder.
        let cache_read = r.cache_read_input_tokens.unwrap_or(0).min(input);
        let cache_write = r
            .cache_write_input_tokens
            .unwrap_or(0)
            .min(input - cache_read);
        let plain = input - cache_read - cache_write;
        let prompt = input as f64 / r.request_count.max(1) as f64;
        let rates = self.rates(prompt, batch);
        let cost = plain as f64 * rates.input
            + cache_read as f64 * rates.cache_read
            + cache_write as f64 * rates.cache_write
            + r.output_tokens as f64 * rates.output;
        if cost.is_finite() { cost.max(0.0) } else { 0.0 }
    }

    /// A single number to order models by price: dollars for one input plus one output token.
    pub fn blended_cost_per_token(&self) -> f64 {
        self.input_cost_per_token + self.output_cost_per_token
    }
}

/// `part / whole`, or 1 when the whole is not a positive price.
fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 && part.is_finite() {
        (part / whole).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

/// Whether a record was sent to the batch tier.
pub fn is_batch(r: &UsageRecord) -> bool {
    r.service_tier
        .as_deref()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("batch"))
}

/// A price file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("the price file is not valid JSON: {0}")]
    Json(String),
    #[error(
        "the price file must be a JSON object of model name -> prices (LiteLLM's model_prices format)"
    )]
    NotAnObject,
    #[error("the price file has no model with input_cost_per_token and output_cost_per_token")]
    NoModels,
}

/// The set of priced models and the name matching rules.
#[derive(Debug, Clone)]
pub struct PriceTable {
    models: Vec<ModelPrice>,
    exact: HashMap<String, usize>,
    /// Lower-cased canonical names and aliases.
    folded: HashMap<String, usize>,
}

/// Dollars per million tokens, as the source sheets write them.
const M: f64 = 1e-6;

struct Embedded {
    model: &'static str,
    provider: &'static str,
    family: &'static str,
    tier: PriceTier,
    /// input, output, cache read, cache write, in $/Mtok.
    prices: (f64, f64, Option<f64>, Option<f64>),
    /// Batch input and output, $/Mtok.
    batch: Option<(f64, f64)>,
    /// Above 200k prompt tokens: input, output, cache read, cache write, $/Mtok.
    long: Option<(f64, f64, Option<f64>, Option<f64>)>,
    source: &'static str,
    as_of: &'static str,
    aliases: &'static [&'static str],
    /// The entry id in the source file, so a test can check every number against it.
    #[cfg_attr(not(test), allow(dead_code))]
    source_id: &'static str,
    /// The LiteLLM key whose `*_batches` prices give `batch`.
    #[cfg_attr(not(test), allow(dead_code))]
    batch_key: Option<&'static str>,
}

const GENAI_OPENAI: &str = "pydantic/genai-prices openai.yml (batch: litellm model_prices)";
const GENAI_ANTHROPIC: &str = "pydantic/genai-prices anthropic.yml (batch: litellm model_prices)";
const GENAI_GOOGLE: &str = "pydantic/genai-prices google.yml (batch: litellm model_prices)";
const LITELLM: &str = "litellm model_prices";
/// LiteLLM's table carries no date of its own; this is the day the shared snapshot was taken.
const LITELLM_SNAPSHOT: &str = "2026-11-26";

use PriceTier::{Economy, Premium, Standard};

macro_rules! entry {
    ($model:expr, $provider:expr, $family:expr, $tier:expr, $prices:expr, $batch:expr, $long:expr,
     $source:expr, $as_of:expr, $aliases:expr, $source_id:expr, $batch_key:expr) => {
        Embedded {
            model: $model,
            provider: $provider,
            family: $family,
            tier: $tier,
            prices: $prices,
            batch: $batch,
            long: $long,
            source: $source,
            as_of: $as_of,
            aliases: $aliases,
            source_id: $source_id,
            batch_key: $batch_key,
        }
    };
}

#[rustfmt::skip]
const EMBEDDED: &[Embedded] = &[
    // OpenAI: cache writes are not billed separately, so no creation price.
    entry!("gpt-4o", "openai", "gpt-4o", Premium, (2.5, 10.0, Some(1.25), None), Some((1.25, 5.0)), None, GENAI_OPENAI, "2025-07-04", &[], "gpt-4o", Some("gpt-4o")),
    entry!("gpt-4o-mini", "openai", "gpt-4o", Economy, (0.15, 0.6, Some(0.075), None), Some((0.075, 0.3)), None, GENAI_OPENAI, "2025-07-04", &[], "gpt-4o-mini", Some("gpt-4o-mini")),
    entry!("gpt-4.1", "openai", "gpt-4.1", Premium, (2.0, 8.0, Some(0.5), None), Some((1.0, 4.0)), None, GENAI_OPENAI, "2025-07-04", &[], "gpt-4.1", Some("gpt-4.1")),
    entry!("gpt-4.1-mini", "openai", "gpt-4.1", Standard, (0.4, 1.6, Some(0.1), None), Some((0.2, 0.8)), None, GENAI_OPENAI, "2025-07-04", &[], "gpt-4.1-mini", Some("gpt-4.1-mini")),
    entry!("gpt-4.1-nano", "openai", "gpt-4.1", Economy, (0.1, 0.4, Some(0.025), None), Some((0.05, 0.2)), None, GENAI_OPENAI, "2025-07-04", &[], "gpt-4.1-nano", Some("gpt-4.1-nano")),
    entry!("gpt-5", "openai", "gpt-5", Premium, (1.25, 10.0, Some(0.125), None), Some((0.625, 5.0)), None, GENAI_OPENAI, "2025-11-13", &["gpt-5-chat-latest", "gpt-5-chat"], "gpt-5", Some("gpt-5")),
    entry!("gpt-5.1", "openai", "gpt-5", Premium, (1.25, 10.0, Some(0.125), None), Some((0.625, 5.0)), None, GENAI_OPENAI, "2025-11-13", &["gpt-5-1", "gpt-5.1-chat-latest"], "gpt-5.1", Some("gpt-5.1")),
    entry!("gpt-5.2", "openai", "gpt-5", Premium, (1.75, 14.0, Some(0.175), None), Some((0.875, 7.0)), None, GENAI_OPENAI, "2025-12-11", &["gpt-5-2", "gpt-5.2-chat-latest"], "gpt-5.2", Some("gpt-5.2")),
    entry!("gpt-5-mini", "openai", "gpt-5", Standard, (0.25, 2.0, Some(0.025), None), Some((0.125, 1.0)), None, GENAI_OPENAI, "2025-11-13", &[], "gpt-5-mini", Some("gpt-5-mini")),
    entry!("gpt-5-nano", "openai", "gpt-5", Economy, (0.05, 0.4, Some(0.005), None), Some((0.025, 0.2)), None, GENAI_OPENAI, "2025-11-13", &[], "gpt-5-nano", Some("gpt-5-nano")),
    entry!("o1", "openai", "o-series", Premium, (15.0, 60.0, Some(7.5), None), Some((7.5, 30.0)), None, GENAI_OPENAI, "2025-07-04", &[], "o1", Some("o1")),
    // o3's price was cut on 2025-06-10; the current price is the one that applies.
    entry!("o3", "openai", "o-series", Premium, (2.0, 8.0, Some(0.5), None), Some((1.0, 4.0)), None, GENAI_OPENAI, "2025-07-12", &[], "o3", Some("o3")),
    entry!("o3-mini", "openai", "o-series", Standard, (1.1, 4.4, Some(0.55), None), Some((0.55, 2.2)), None, GENAI_OPENAI, "2025-07-04", &["o3-mini-high"], "o3-mini", Some("o3-mini")),
    entry!("o4-mini", "openai", "o-series", Standard, (1.1, 4.4, Some(0.275), None), Some((0.55, 2.2)), None, GENAI_OPENAI, "2025-07-04", &["o4-mini-high"], "o4-mini", Some("o4-mini")),
    // Anthropic: cache_write is the 5-minute cache write price. The source gives no batch price
    // for the Claude 4.0, 4.1 and 3.x entries, so none is assumed. Sonnet 4.5 bills prompts over
    // 200k at its long-context prices; Sonnet 4.6 and Opus 4.6 dropped that surcharge on 2026-03-13.
    entry!("claude-opus-4", "anthropic", "claude", Premium, (15.0, 75.0, Some(1.5), Some(18.75)), None, None, GENAI_ANTHROPIC, "2026-07-29", &["claude-opus-4-0", "claude-4-opus"], "claude-opus-4-0", None),
    entry!("claude-opus-4-1", "anthropic", "claude", Premium, (15.0, 75.0, Some(1.5), Some(18.75)), None, None, GENAI_ANTHROPIC, "2026-07-29", &["claude-opus-4.1"], "claude-opus-4-1", None),
    entry!("claude-opus-4-5", "anthropic", "claude", Premium, (5.0, 25.0, Some(0.5), Some(6.25)), Some((2.5, 12.5)), None, GENAI_ANTHROPIC, "2026-07-29", &["claude-opus-4.5"], "claude-opus-4-5", Some("claude-opus-4-5")),
    entry!("claude-opus-4-6", "anthropic", "claude", Premium, (5.0, 25.0, Some(0.5), Some(6.25)), Some((2.5, 12.5)), None, GENAI_ANTHROPIC, "2026-07-29", &["claude-opus-4.6"], "claude-opus-4-6", Some("claude-opus-4-6")),
    entry!("claude-sonnet-4", "anthropic", "claude", Standard, (3.0, 15.0, Some(0.3), Some(3.75)), None, None, GENAI_ANTHROPIC, "2026-07-29", &["claude-sonnet-4-0", "claude-4-sonnet"], "claude-sonnet-4-0", None),
    entry!("claude-sonnet-4-5", "anthropic", "claude", Standard, (3.0, 15.0, Some(0.3), Some(3.75)), Some((1.5, 7.5)), Some((6.0, 22.5, Some(0.6), Some(7.5))), GENAI_ANTHROPIC, "2026-07-29", &["claude-sonnet-4.5"], "claude-sonnet-4-5", Some("claude-sonnet-4-5")),
    entry!("claude-sonnet-4-6", "anthropic", "claude", Standard, (3.0, 15.0, Some(0.3), Some(3.75)), Some((1.5, 7.5)), None, GENAI_ANTHROPIC, "2026-07-29", &["claude-sonnet-4.6"], "claude-sonnet-4-6", Some("claude-sonnet-4-6")),
    entry!("claude-3-7-sonnet", "anthropic", "claude", Standard, (3.0, 15.0, Some(0.3), Some(3.75)), None, None, GENAI_ANTHROPIC, "2026-07-29", &["claude-3.7-sonnet"], "claude-3-7-sonnet-latest", None),
    entry!("claude-haiku-4-5", "anthropic", "claude", Economy, (1.0, 5.0, Some(0.1), Some(1.25)), Some((0.5, 2.5)), None, GENAI_ANTHROPIC, "2026-07-29", &["claude-haiku-4.5", "claude-4-5-haiku"], "claude-haiku-4-5", Some("claude-haiku-4-5")),
    entry!("claude-3-5-haiku", "anthropic", "claude", Economy, (0.8, 4.0, Some(0.08), Some(1.0)), None, None, GENAI_ANTHROPIC, "2026-07-29", &["claude-3.5-haiku"], "claude-3-5-haiku-latest", None),
    entry!("claude-3-haiku", "anthropic", "claude", Economy, (0.25, 1.25, Some(0.03), Some(0.3)), None, None, GENAI_ANTHROPIC, "2026-07-29", &[], "claude-3-haiku", None),
    // Google: Pro models bill prompts over 200k at their long-context prices. Context cache
    // storage is billed per hour, not per token, so no creation price (implicit caching is free).
    entry!("gemini-2.5-pro", "google", "gemini-2.5", Premium, (1.25, 10.0, Some(0.125), None), Some((0.625, 5.0)), Some((2.5, 15.0, Some(0.25), None)), GENAI_GOOGLE, "2025-10-31", &["gemini-2.5-pro-preview"], "gemini-2.5-pro", Some("gemini-2.5-pro")),
    entry!("gemini-2.5-flash", "google", "gemini-2.5", Standard, (0.3, 2.5, Some(0.03), None), Some((0.15, 1.25)), None, GENAI_GOOGLE, "2025-10-31", &["gemini-2.5-flash-preview-09-2025"], "gemini-2.5-flash", Some("gemini-2.5-flash")),
    entry!("gemini-2.5-flash-lite", "google", "gemini-2.5", Economy, (0.1, 0.4, Some(0.01), None), Some((0.05, 0.2)), None, GENAI_GOOGLE, "2025-10-31", &[], "gemini-2.5-flash-lite", Some("gemini-2.5-flash-lite")),
    entry!("gemini-2.0-flash", "google", "gemini-2.0", Standard, (0.1, 0.4, Some(0.025), None), None, None, GENAI_GOOGLE, "2025-07-04", &[], "gemini-2.0-flash", None),
    entry!("gemini-2.0-flash-lite", "google", "gemini-2.0", Economy, (0.075, 0.3, None, None), None, None, GENAI_GOOGLE, "2025-07-04", &[], "gemini-2.0-flash-lite", None),
    entry!("gemini-3-pro-preview", "google", "gemini-3", Premium, (2.0, 12.0, Some(0.2), None), None, Some((4.0, 18.0, Some(0.4), None)), GENAI_GOOGLE, "2025-11-18", &["gemini-3-pro"], "gemini-3-pro-preview", None),
    entry!("gemini-3.1-pro-preview", "google", "gemini-3", Premium, (2.0, 12.0, Some(0.2), None), Some((1.0, 6.0)), Some((4.0, 18.0, Some(0.4), None)), GENAI_GOOGLE, "2026-02-23", &["gemini-3.1-pro"], "gemini-3.1-pro-preview", Some("gemini-3.1-pro-preview")),
    entry!("gemini-3-flash-preview", "google", "gemini-3", Standard, (0.5, 3.0, Some(0.05), None), Some((0.25, 1.5)), None, GENAI_GOOGLE, "2025-12-19", &["gemini-3-flash"], "gemini-3-flash-preview", Some("gemini-3-flash-preview")),
    // Open-weight models as Together AI hosts them (no cache or batch prices in the source).
    entry!("meta-llama/Llama-3.3-70B-Instruct-Turbo", "together_ai", "llama", Standard, (1.04, 1.04, None, None), None, None, LITELLM, LITELLM_SNAPSHOT, &["llama-3.3-70b", "llama-3.3-70b-instruct"], "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", None),
    entry!("meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "together_ai", "llama", Economy, (0.18, 0.18, None, None), None, None, LITELLM, LITELLM_SNAPSHOT, &["llama-3.1-8b", "llama-3.1-8b-instruct"], "together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", None),
    entry!("deepseek-ai/DeepSeek-V3", "together_ai", "deepseek", Standard, (1.25, 1.25, None, None), None, None, LITELLM, LITELLM_SNAPSHOT, &["deepseek-v3"], "together_ai/deepseek-ai/DeepSeek-V3", None),
    entry!("Qwen/Qwen2.5-72B-Instruct-Turbo", "together_ai", "qwen", Standard, (1.2, 1.2, None, None), None, None, LITELLM, LITELLM_SNAPSHOT, &["qwen2.5-72b-instruct"], "together_ai/Qwen/Qwen2.5-72B-Instruct-Turbo", None),
    entry!("openai/gpt-oss-120b", "together_ai", "gpt-oss", Standard, (0.15, 0.6, None, None), None, None, LITELLM, LITELLM_SNAPSHOT, &[], "together_ai/openai/gpt-oss-120b", None),
    entry!("openai/gpt-oss-20b", "together_ai", "gpt-oss", Economy, (0.05, 0.2, None, None), None, None, LITELLM, LITELLM_SNAPSHOT, &[], "together_ai/openai/gpt-oss-20b", None),
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
    /// The built-in table (39 models of OpenAI, Anthropic, Google and Together AI).
    pub fn embedded() -> PriceTable {
        let mut table = PriceTable::from_models(Vec::new());
        for e in EMBEDDED {
            let (input, output, cache_read, cache_write) = e.prices;
            let idx = table.push(ModelPrice {
                model: e.model.to_string(),
                provider: e.provider.to_string(),
                family: e.family.to_string(),
                tier: e.tier,
                input_cost_per_token: input * M,
                output_cost_per_token: output * M,
                cache_read_input_token_cost: cache_read.map(|v| v * M),
                cache_creation_input_token_cost: cache_write.map(|v| v * M),
                input_cost_per_token_batches: e.batch.map(|b| b.0 * M),
                output_cost_per_token_batches: e.batch.map(|b| b.1 * M),
                input_cost_per_token_above_200k_tokens: e.long.map(|l| l.0 * M),
                output_cost_per_token_above_200k_tokens: e.long.map(|l| l.1 * M),
                cache_read_input_token_cost_above_200k_tokens: e
                    .long
                    .and_then(|l| l.2)
                    .map(|v| v * M),
                cache_creation_input_token_cost_above_200k_tokens: e
                    .long
                    .and_then(|l| l.3)
                    .map(|v| v * M),
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

    /// Lays a LiteLLM `model_prices` JSON file over the table: a model already in the table (same
    /// name) gets the file's prices and keeps its family and tier; other chat models are added
    /// (with no cheaper alternative, since the file does not say which models are siblings).
    /// Entries without `input_cost_per_token` and `output_cost_per_token` are ignored.
    ///
    /// # Errors
    /// The file is not JSON, not an object, or has no priced model.
    pub fn load_litellm_json<R: Read>(
        &mut self,
        reader: R,
        source: &str,
        as_of: &str,
    ) -> Result<usize, PriceError> {
        let value: serde_json::Value =
            serde_json::from_reader(reader).map_err(|e| PriceError::Json(e.to_string()))?;
        let object = value.as_object().ok_or(PriceError::NotAnObject)?;
        let mut loaded = 0;
        for (name, entry) in object {
            if name == "sample_spec" {
                continue;
            }
            let num = |k: &str| {
                entry
                    .get(k)
                    .and_then(serde_json::Value::as_f64)
                    .filter(|v| v.is_finite() && *v >= 0.0)
            };
            let mode = entry.get("mode").and_then(serde_json::Value::as_str);
            if !matches!(mode, None | Some("chat" | "completion" | "responses")) {
                continue;
            }
            let (Some(input), Some(output)) =
                (num("input_cost_per_token"), num("output_cost_per_token"))
            else {
                continue;
            };
            let mut price = match self.exact.get(name.as_str()) {
                Some(&i) => self.models[i].clone(),
                None => {
                    let provider = entry
                        .get("litellm_provider")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("unknown");
                    ModelPrice::simple(name, provider, input, output)
                }
            };
            price.input_cost_per_token = input;
            price.output_cost_per_token = output;
            price.cache_read_input_token_cost = num("cache_read_input_token_cost");
            price.cache_creation_input_token_cost = num("cache_creation_input_token_cost");
            price.input_cost_per_token_batches = num("input_cost_per_token_batches");
            price.output_cost_per_token_batches = num("output_cost_per_token_batches");
            price.input_cost_per_token_above_200k_tokens =
                num("input_cost_per_token_above_200k_tokens");
            price.output_cost_per_token_above_200k_tokens =
                num("output_cost_per_token_above_200k_tokens");
            price.cache_read_input_token_cost_above_200k_tokens =
                num("cache_read_input_token_cost_above_200k_tokens");
            price.cache_creation_input_token_cost_above_200k_tokens =
                num("cache_creation_input_token_cost_above_200k_tokens");
            price.source = source.to_string();
            price.as_of = as_of.to_string();
            self.push(price);
            loaded += 1;
        }
        if loaded == 0 {
            return Err(PriceError::NoModels);
        }
        Ok(loaded)
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
        assert!(t.models().count() >= 30, "{}", t.models().count());
        for provider in ["openai", "anthropic", "google", "together_ai"] {
            assert!(t.models().any(|p| p.provider == provider), "{provider}");
        }
        for m in [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-5",
            "gpt-5-mini",
            "o3-mini",
            "claude-opus-4",
            "claude-sonnet-4",
            "claude-sonnet-4-5",
            "claude-3-5-haiku",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        ] {
            let p = t.lookup(m).unwrap_or_else(|| panic!("{m} missing"));
            assert_eq!(p.model, m);
        }
        for p in t.models() {
            assert!(!p.source.is_empty() && p.as_of.len() == 10, "{}", p.model);
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
        assert!(close(t.list_cost_usd(&r).unwrap(), 1.25 + 5.0));
        // Batch halves cached input too (gpt-5: cached 0.125 -> 0.0625 per million).
        let mut r = rec("gpt-5", 1_000_000, 0);
        r.cache_read_input_tokens = Some(1_000_000);
        r.service_tier = Some("batch".into());
        assert!(close(t.list_cost_usd(&r).unwrap(), 0.0625));
        // A model without a batch price is billed at list price on the batch tier.
        let mut r = rec("claude-sonnet-4", 1_000_000, 0);
        r.service_tier = Some("batch".into());
        assert!(close(t.list_cost_usd(&r).unwrap(), 3.0));

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
    fn reasoning_tokens_are_output_tokens() {
        let t = PriceTable::embedded();
        let mut r = rec("o3", 1_000, 5_000);
        r.reasoning_tokens = Some(4_000);
        // 4,000 of the 5,000 output tokens are reasoning; all 5,000 are billed as output, once.
        assert!(close(
            t.list_cost_usd(&r).unwrap(),
            1_000.0 * 2e-6 + 5_000.0 * 8e-6
        ));
    }

    #[test]
    fn long_context_tiers_apply_above_200k_prompt_tokens() {
        let t = PriceTable::embedded();
        let r = rec("gemini-2.5-pro", 200_000, 1_000);
        assert!(close(
            t.list_cost_usd(&r).unwrap(),
            200_000.0 * 1.25e-6 + 1_000.0 * 10e-6
        ));
        let mut r = rec("gemini-2.5-pro", 300_000, 1_000);
        r.cache_read_input_tokens = Some(100_000);
        assert!(close(
            t.list_cost_usd(&r).unwrap(),
            200_000.0 * 2.5e-6 + 100_000.0 * 0.25e-6 + 1_000.0 * 15e-6
        ));
        // Sonnet 4.5: every class of token moves to its long-context price, cache writes too.
        let mut r = rec("claude-sonnet-4-5", 250_000, 2_000);
        r.cache_write_input_tokens = Some(50_000);
        assert!(close(
            t.list_cost_usd(&r).unwrap(),
            200_000.0 * 6e-6 + 50_000.0 * 7.5e-6 + 2_000.0 * 22.5e-6
        ));
        // A bucket of two requests of 150k each is not long context.
        let mut r = rec("claude-sonnet-4-5", 300_000, 0);
        r.request_count = 2;
        assert!(close(t.list_cost_usd(&r).unwrap(), 300_000.0 * 3e-6));
        // Sonnet 4 has no long-context price: the base rate applies.
        let r = rec("claude-sonnet-4", 300_000, 0);
        assert!(close(t.list_cost_usd(&r).unwrap(), 300_000.0 * 3e-6));
    }

    #[test]
    fn litellm_json_lays_over_the_embedded_table() {
        let mut t = PriceTable::embedded();
        let file = r#"{
            "sample_spec": {"input_cost_per_token": 0},
            "gpt-4o": {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6, "litellm_provider": "openai", "mode": "chat"},
            "acme/house-model": {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7, "litellm_provider": "acme", "mode": "chat"},
            "text-embedding-x": {"input_cost_per_token": 1e-8, "output_cost_per_token": 0, "mode": "embedding"},
            "no-prices": {"mode": "chat"}
        }"#;
        assert_eq!(
            t.load_litellm_json(file.as_bytes(), "prices.json", "2026-01-01"),
            Ok(2)
        );
        let p = t.lookup("gpt-4o").unwrap();
        assert_eq!(p.input_cost_per_token, 2e-6);
        assert_eq!(
            p.cache_read_input_token_cost, None,
            "the file's entry replaces all prices"
        );
        assert_eq!(p.tier, PriceTier::Premium, "family and tier are kept");
        assert_eq!(p.source, "prices.json");
        assert!(close(
            t.list_cost_usd(&rec("acme/house-model", 1_000_000, 1_000_000))
                .unwrap(),
            0.3
        ));
        assert!(t.lookup("text-embedding-x").is_none());
        assert_eq!(
            t.cheaper_alternative("gpt-4o").map(|p| p.model.as_str()),
            Some("gpt-4o-mini")
        );
        assert!(matches!(
            t.load_litellm_json("[1]".as_bytes(), "x", "y"),
            Err(PriceError::NotAnObject)
        ));
        assert!(matches!(
            t.load_litellm_json("{".as_bytes(), "x", "y"),
            Err(PriceError::Json(_))
        ));
        assert_eq!(
            t.load_litellm_json("{}".as_bytes(), "x", "y"),
            Err(PriceError::NoModels)
        );
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
        assert_eq!(alt("claude-opus-4"), Some("claude-3-haiku"));
        assert_eq!(alt("gemini-2.5-pro"), Some("gemini-2.5-flash-lite"));
        assert_eq!(alt("gpt-5"), Some("gpt-5-nano"));
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

    /// The long-context price of `key` in the block's current (last) price set.
    fn yml_tier(text: &str, id: &str, key: &str) -> Option<f64> {
        let block = yml_block(text, id)?;
        let lines: Vec<&str> = block.lines().collect();
        let at = lines
            .iter()
            .rposition(|l| l.trim().starts_with(&format!("{key}:")))?;
        if !lines[at].trim().ends_with(':') {
            return None;
        }
        lines[at + 1..]
            .iter()
            .take(5)
            .find_map(|l| l.trim().strip_prefix("price:"))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn embedded_prices_match_source_files() {
        let Some(dir) = shared_data() else { return };
        let litellm: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("prices/litellm_model_prices.json")).unwrap(),
        )
        .unwrap();
        let t = PriceTable::embedded();
        let opt_close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => close(a, b),
            (None, None) => true,
            _ => false,
        };
        for e in EMBEDDED {
            let p = t.lookup(e.model).unwrap();
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
                let tier = |k: &str| yml_tier(&text, e.source_id, k).map(|v| v / 1e6);
                let m = e.model;
                assert!(
                    close(p.input_cost_per_token, mtok("input_mtok").unwrap()),
                    "{m}"
                );
                assert!(
                    close(p.output_cost_per_token, mtok("output_mtok").unwrap()),
                    "{m}"
                );
                assert!(
                    opt_close(p.cache_read_input_token_cost, mtok("cache_read_mtok")),
                    "{m}"
                );
                assert!(
                    opt_close(p.cache_creation_input_token_cost, mtok("cache_write_mtok")),
                    "{m}"
                );
                assert!(
                    opt_close(p.input_cost_per_token_above_200k_tokens, tier("input_mtok")),
                    "{m}"
                );
                assert!(
                    opt_close(
                        p.output_cost_per_token_above_200k_tokens,
                        tier("output_mtok")
                    ),
                    "{m}"
                );
                assert!(
                    opt_close(
                        p.cache_read_input_token_cost_above_200k_tokens,
                        tier("cache_read_mtok")
                    ),
                    "{m}"
                );
                assert!(
                    opt_close(
                        p.cache_creation_input_token_cost_above_200k_tokens,
                        tier("cache_write_mtok")
                    ),
                    "{m}"
                );
                let checked = format!("prices_checked: {}", e.as_of);
                assert!(
                    yml_block(&text, e.source_id).unwrap().contains(&checked),
                    "{m} as_of"
                );
            }
            match e.batch_key {
                Some(key) => {
                    let entry = &litellm[key];
                    let get = |k: &str| entry[k].as_f64().unwrap();
                    assert!(
                        close(get("input_cost_per_token"), p.input_cost_per_token),
                        "{} litellm agrees",
                        e.model
                    );
                    assert!(
                        close(
                            p.input_cost_per_token_batches.unwrap(),
                            get("input_cost_per_token_batches")
                        ),
                        "{}",
                        e.model
                    );
                    assert!(
                        close(
                            p.output_cost_per_token_batches.unwrap(),
                            get("output_cost_per_token_batches")
                        ),
                        "{}",
                        e.model
                    );
                }
                None => assert!(!p.has_batch(), "{}", e.model),
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
        assert_eq!(
            yml_tier(&text, "claude-sonnet-4-5", "output_mtok"),
            Some(22.5)
        );
        let text = std::fs::read_to_string(dir.join("prices/google.yml")).unwrap();
        assert_eq!(yml_tier(&text, "gemini-2.5-pro", "input_mtok"), Some(2.5));
    }

    #[test]
    fn the_shared_litellm_file_loads() {
        let Some(dir) = shared_data() else { return };
        let mut t = PriceTable::embedded();
        let file = std::fs::File::open(dir.join("prices/litellm_model_prices.json")).unwrap();
        let n = t
            .load_litellm_json(std::io::BufReader::new(file), "litellm", "2026-11-26")
            .unwrap();
        assert!(n > 1_000, "{n}");
        let p = t.lookup("gpt-4o").unwrap();
        assert_eq!(
            (p.input_cost_per_token, p.output_cost_per_token),
            (2.5e-6, 1e-5)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever the token mix, tier or billed amount, a cost is finite and never negative.
        #[test]
        fn costs_are_never_negative(
            model in 0usize..40,
            input in 0u64..3_000_000,
            output in 0u64..1_000_000,
            read in proptest::option::of(0u64..4_000_000),
            write in proptest::option::of(0u64..4_000_000),
            requests in 1u64..1_000,
            batch in proptest::bool::ANY,
            billed in proptest::option::of(-10.0f64..10.0),
        ) {
            let t = PriceTable::embedded();
            let names: Vec<String> = t.models().map(|m| m.model.clone()).collect();
            let mut r = rec(names.get(model).map_or("unknown-model", String::as_str), input, output);
            r.cache_read_input_tokens = read;
            r.cache_write_input_tokens = write;
            r.request_count = requests;
            r.service_tier = batch.then(|| "batch".to_string());
            r.cost_usd = billed;
            let cost = t.cost_usd(&r);
            proptest::prop_assert!(cost.is_finite() && cost >= 0.0, "{cost}");
            if let Some(list) = t.list_cost_usd(&r) {
                proptest::prop_assert!(list.is_finite() && list >= 0.0, "{list}");
            }
        }
    }
}
