//! The usage record: one LLM request, or one time bucket of `request_count` requests, as every
//! importer produces it and every analysis consumes it.
//!
//! This module only defines the shape and its invariants. It must not price, aggregate or parse
//! anything; token counts in a bucketed record are totals over the bucket, never per request.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

fn one() -> u64 {
    1
}

/// One request, or one time bucket of `request_count` requests (token fields are then sums).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub timestamp: DateTime<Utc>,
    pub provider: String,
    pub model: String,
    /// All input tokens, cached ones included.
    pub input_tokens: u64,
    /// All output tokens, reasoning ones included.
    pub output_tokens: u64,
    #[serde(default = "one")]
    pub request_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Billed cost when the source knows it; it wins over list prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_hash: Option<String>,
    /// Free text, conventionally `k=v;k2=v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
}

impl UsageRecord {
    /// A record with the required fields set and every optional field empty.
    pub fn new(
        timestamp: DateTime<Utc>,
        provider: impl Into<String>,
        model: impl Into<String>,
        input_tokens: u64,
        output_tokens: u64,
    ) -> UsageRecord {
        UsageRecord {
            timestamp,
            provider: provider.into(),
            model: model.into(),
            input_tokens,
            output_tokens,
            request_count: 1,
            cache_read_input_tokens: None,
            cache_write_input_tokens: None,
            reasoning_tokens: None,
            latency_ms: None,
            ttft_ms: None,
            status: None,
            service_tier: None,
            max_tokens: None,
            cost_usd: None,
            user_id: None,
            team: None,
            project: None,
            feature: None,
            session_id: None,
            prompt_hash: None,
            prefix_hash: None,
            tags: None,
        }
    }

    /// Checks the invariants the analyses rely on; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if self.model.trim().is_empty() {
            return Err("model: must not be empty".to_string());
        }
        if self.provider.trim().is_empty() {
            return Err("provider: must not be empty".to_string());
        }
        if self.request_count == 0 {
            return Err("request_count: must be at least 1".to_string());
        }
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let cache_write = self.cache_write_input_tokens.unwrap_or(0);
        // Cached tokens are a part of input_tokens, so together they can never exceed it.
        if cache_read.saturating_add(cache_write) > self.input_tokens {
            return Err(format!(
                "cache_read_input_tokens + cache_write_input_tokens ({} + {}) exceed input_tokens ({})",
                cache_read, cache_write, self.input_tokens
            ));
        }
        if let Some(reasoning) = self.reasoning_tokens
            && reasoning > self.output_tokens
        {
            return Err(format!(
                "reasoning_tokens ({reasoning}) exceed output_tokens ({})",
                self.output_tokens
            ));
        }
        for (name, value) in [
            ("latency_ms", self.latency_ms),
            ("ttft_ms", self.ttft_ms),
            ("cost_usd", self.cost_usd),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(format!("{name}: {v} must be a finite number >= 0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn base() -> UsageRecord {
        UsageRecord::new(
            Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap(),
            "openai",
            "gpt-4o",
            1000,
            100,
        )
    }

    #[test]
    fn valid_record_passes() {
        assert_eq!(base().validate(), Ok(()));
    }

    #[test]
    fn invariants_are_enforced() {
        let mut r = base();
        r.model = " ".into();
        assert!(r.validate().unwrap_err().starts_with("model"));

        let mut r = base();
        r.request_count = 0;
        assert!(r.validate().unwrap_err().starts_with("request_count"));

        let mut r = base();
        r.cache_read_input_tokens = Some(800);
        r.cache_write_input_tokens = Some(300);
        assert!(r.validate().is_err());

        let mut r = base();
        r.reasoning_tokens = Some(101);
        assert!(r.validate().is_err());

        let mut r = base();
        r.latency_ms = Some(f64::NAN);
        assert!(r.validate().unwrap_err().starts_with("latency_ms"));

        let mut r = base();
        r.cost_usd = Some(-0.01);
        assert!(r.validate().unwrap_err().starts_with("cost_usd"));
    }

    #[test]
    fn serde_defaults_request_count_and_skips_empty_options() {
        let r: UsageRecord = serde_json::from_str(
            r#"{"timestamp":"2026-11-01T12:00:00Z","provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":2}"#,
        )
        .unwrap();
        assert_eq!(r.request_count, 1);
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("team"));
        let back: UsageRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
