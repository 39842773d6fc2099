//! A seeded generator of realistic usage for a fictional company, with known findings planted in
//! it, so the demo, the tests and the validation suite can check answers against the truth.
//!
//! Hourly buckets per (team, feature, model) with weekly seasonality, a daily cycle and ~20%
//! growth; planted: one runaway job (a one-day cost spike), premium-model traffic that a cheaper
//! model could serve (routing), and a feature with long shared system prompts (caching).
//! `DemoFacts` records exactly what was planted. This module must not read the clock or any
//! entropy source: the seed alone decides the output.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use serde::Serialize;

use crate::prices::PriceTable;
use crate::record::UsageRecord;

/// `n` plain usage records spread evenly over the 90 days from 2026-08-01: four models (one of
/// them Anthropic), four teams, five features, token counts that vary without pattern. No
/// findings are planted: this is bulk for measuring and for tests that need an analysis to take
/// a while (cancellation, shutdown), not the demo company.
pub fn bulk_usage(n: u32) -> Vec<UsageRecord> {
    const MODELS: [&str; 4] = [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "claude-3-5-sonnet-20241022",
    ];
    const TEAMS: [&str; 4] = ["search", "growth", "support", "infra"];
    const FEATURES: [&str; 5] = ["chat", "intent-classifier", "summarize", "rag", "agent"];
    let start = Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).single();
    let Some(start) = start else {
        return Vec::new();
    };
    let n = i64::from(n);
    (0..n)
        .map(|i| {
            let k = i as usize;
            let mut r = UsageRecord::new(
                start + Duration::seconds(i * 90 * 86_400 / n),
                if k % 4 == 3 { "anthropic" } else { "openai" },
                MODELS[k % 4],
                100 + (i as u64 * 7919) % 4_000,
                10 + (i as u64 * 104_729) % 700,
            );
            r.team = Some(TEAMS[(k / 3) % 4].to_owned());
            r.feature = Some(FEATURES[(k / 7) % 5].to_owned());
            r
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    pub seed: u64,
    pub days: u32,
    /// The last day generated (inclusive).
    pub end: NaiveDate,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 42,
            days: 90,
            end: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap_or_default(),
        }
    }
}

/// What the generator planted, for checking an analysis against the truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoFacts {
    pub company: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub teams: Vec<String>,
    pub models: Vec<String>,
    pub spike_day: NaiveDate,
    pub spike_team: String,
    pub spike_model: String,
    pub spike_feature: String,
    /// The runaway job's own cost: the spike feature's cost that day minus what its normal
    /// traffic cost, both priced from the generated records.
    pub spike_extra_cost_usd: f64,
    pub routing_model: String,
    pub routing_target_model: String,
    pub routing_feature: String,
    pub shared_prefix_feature: String,
    /// The shared prompt prefixes (prefix_hash) of that feature and their length in tokens.
    pub shared_prefixes: Vec<(String, u64)>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemoDataset {
    pub records: Vec<UsageRecord>,
    pub facts: DemoFacts,
}

/// splitmix64: tiny, fast, and fully determined by its seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1], so ln is finite
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A multiplicative wobble with median 1.
    fn wobble(&mut self, sigma: f64) -> f64 {
        (sigma * self.normal()).exp()
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = (self.next_u64() % items.len() as u64) as usize;
        items[i]
    }
}

/// One (team, feature, model) traffic stream.
struct Stream {
    team: &'static str,
    feature: &'static str,
    model: &'static str,
    /// Requests per hour at the daily peak on a weekday, at the start of the period.
    peak_per_hour: f64,
    input_per_request: f64,
    output_per_request: f64,
    reasoning_share: Option<f64>,
    max_tokens: u64,
    prefixes: &'static [&'static str],
}

const COMPANY: &str = "Acme Analytics";
const SPIKE_TEAM: &str = "growth";
const SPIKE_FEATURE: &str = "email-drafts";
const SPIKE_MODEL: &str = "claude-sonnet-4";
const ROUTING_FEATURE: &str = "intent-classifier";
const ROUTING_MODEL: &str = "gpt-4o";
const PREFIX_FEATURE: &str = "doc-summaries";
/// The shared system prompts of the prefix feature and their length in tokens (recorded in each
/// record's tags as `prefix_tokens=N`, since a prefix hash alone does not say how long it is).
const SHARED_PREFIXES: [(&str, u64); 3] = [
    ("sp-docsum-v3-general-9f1c", 6_200),
    ("sp-docsum-v3-legal-77c2", 7_400),
    ("sp-docsum-v3-eng-0b4e", 5_100),
];
/// The runaway job ran for these UTC hours of the spike day.
const SPIKE_HOURS: std::ops::RangeInclusive<u32> = 1..=12;
const SPIKE_REQUESTS_PER_HOUR: f64 = 9_000.0;
const SPIKE_INPUT_PER_REQUEST: f64 = 7_800.0;
const SPIKE_OUTPUT_PER_REQUEST: f64 = 1_150.0;

#[rustfmt::skip]
const STREAMS: &[Stream] = &[
    Stream { team: "search", feature: "query-rewrite", model: "gpt-4.1-mini", peak_per_hour: 9_000.0,
        input_per_request: 650.0, output_per_request: 90.0, reasoning_share: None, max_tokens: 256, prefixes: &[] },
    Stream { team: "search", feature: ROUTING_FEATURE, model: ROUTING_MODEL, peak_per_hour: 12_000.0,
        input_per_request: 380.0, output_per_request: 28.0, reasoning_share: None, max_tokens: 64, prefixes: &[] },
    Stream { team: "search", feature: "result-ranking", model: "gemini-2.5-flash", peak_per_hour: 6_000.0,
        input_per_request: 1_400.0, output_per_request: 60.0, reasoning_share: None, max_tokens: 128, prefixes: &[] },
    Stream { team: "support", feature: "ticket-triage", model: "claude-3-5-haiku", peak_per_hour: 2_500.0,
        input_per_request: 1_200.0, output_per_request: 150.0, reasoning_share: None, max_tokens: 512, prefixes: &[] },
    Stream { team: "support", feature: "support-replies", model: "claude-sonnet-4", peak_per_hour: 900.0,
        input_per_request: 2_600.0, output_per_request: 480.0, reasoning_share: None, max_tokens: 2_048, prefixes: &[] },
    Stream { team: SPIKE_TEAM, feature: SPIKE_FEATURE, model: SPIKE_MODEL, peak_per_hour: 700.0,
        input_per_request: 1_500.0, output_per_request: 420.0, reasoning_share: None, max_tokens: 4_096, prefixes: &[] },
    Stream { team: "growth", feature: "lead-enrichment", model: "gemini-2.5-flash", peak_per_hour: 1_500.0,
        input_per_request: 2_000.0, output_per_request: 300.0, reasoning_share: Some(0.3), max_tokens: 1_024, prefixes: &[] },
    Stream { team: "platform", feature: PREFIX_FEATURE, model: "gemini-2.5-pro", peak_per_hour: 700.0,
        input_per_request: 9_000.0, output_per_request: 600.0, reasoning_share: Some(0.35), max_tokens: 2_048,
        prefixes: &[SHARED_PREFIXES[0].0, SHARED_PREFIXES[1].0, SHARED_PREFIXES[2].0] },
    Stream { team: "platform", feature: "log-triage", model: "meta-llama/Llama-3.3-70B-Instruct-Turbo", peak_per_hour: 1_200.0,
        input_per_request: 3_000.0, output_per_request: 250.0, reasoning_share: None, max_tokens: 512, prefixes: &[] },
    Stream { team: "platform", feature: "code-review", model: "gpt-4.1", peak_per_hour: 300.0,
        input_per_request: 5_200.0, output_per_request: 700.0, reasoning_share: None, max_tokens: 4_096, prefixes: &[] },
];

fn weekday_factor(d: NaiveDate) -> f64 {
    match d.weekday() {
        Weekday::Sat => 0.42,
        Weekday::Sun => 0.38,
        Weekday::Fri => 0.94,
        Weekday::Mon => 0.97,
        _ => 1.0,
    }
}

/// Daily cycle with its peak at 18:00 UTC (US working hours) and a night floor of 15%.
fn diurnal(hour: u32) -> f64 {
    let d = (f64::from(hour) - 18.0).abs();
    let d = d.min(24.0 - d);
    0.15 + 0.85 * (-0.5 * (d / 4.0).powi(2)).exp()
}

fn unique(items: impl Iterator<Item = &'static str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.iter().any(|o| o == i) {
            out.push(i.to_string());
        }
    }
    out
}

fn prefix_tokens(prefix: &str) -> Option<u64> {
    SHARED_PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, t)| *t)
}

/// Generates the demo data set; the same config always gives the same records.
pub fn generate_demo(config: &DemoConfig) -> DemoDataset {
    let prices = PriceTable::embedded();
    let mut rng = SplitMix64(config.seed);
    let days = i64::from(config.days);
    let end = config.end;
    let start = end - Duration::days((days - 1).max(0));
    // Ten days before the end when the period allows it, so a week of normal days follows.
    let spike_offset = if days >= 21 { 10 } else { days / 2 };
    let spike_day = end - Duration::days(spike_offset);

    let provider = |model: &str| {
        prices
            .lookup(model)
            .map_or_else(|| "unknown".to_string(), |p| p.provider.clone())
    };
    let providers: Vec<String> = STREAMS.iter().map(|s| provider(s.model)).collect();

    let mut records = Vec::with_capacity(STREAMS.len() * 24 * config.days as usize);
    let mut spike_extra = 0.0;
    for day in 0..days {
        let date = start + Duration::days(day);
        let growth = if days > 1 {
            1.0 + 0.2 * day as f64 / (days - 1) as f64
        } else {
            1.0
        };
        let base = weekday_factor(date) * growth;
        let day_noise: Vec<f64> = STREAMS.iter().map(|_| rng.wobble(0.04)).collect();
        for hour in 0..24u32 {
            let Some(timestamp) = date
                .and_hms_opt(hour, 0, 0)
                .map(|t| Utc.from_utc_datetime(&t))
            else {
                continue;
            };
            for (i, s) in STREAMS.iter().enumerate() {
                let mean = s.peak_per_hour * base * diurnal(hour) * day_noise[i];
                let requests = (mean * rng.wobble(0.08)).round() as u64;
                let input_noise = rng.wobble(0.05);
                let output_noise = rng.wobble(0.05);
                let latency_noise = rng.wobble(0.1);
                let ttft_noise = rng.wobble(0.15);
                let prefix = (!s.prefixes.is_empty()).then(|| rng.pick(s.prefixes));
                if requests == 0 {
                    continue;
                }
                let n = requests as f64;
                let output = (n * s.output_per_request * output_noise).round() as u64;
                let mut r = UsageRecord::new(
                    timestamp,
                    providers[i].clone(),
                    s.model,
                    (n * s.input_per_request * input_noise).round() as u64,
                    output,
                );
                r.request_count = requests;
                r.reasoning_tokens = s
                    .reasoning_share
                    .map(|share| (output as f64 * share).round() as u64);
                r.latency_ms = Some(
                    ((250.0 + 9.0 * s.output_per_request) * latency_noise * 10.0).round() / 10.0,
                );
                r.ttft_ms = Some((220.0 * ttft_noise * 10.0).round() / 10.0);
                r.status = Some("success".to_string());
                r.max_tokens = Some(s.max_tokens);
                r.team = Some(s.team.to_string());
                r.project = Some(format!("acme-{}", s.team));
                r.feature = Some(s.feature.to_string());
                r.prefix_hash = prefix.map(str::to_string);
                r.tags = Some(match prefix.and_then(prefix_tokens) {
                    Some(tokens) => format!("env=prod;prefix_tokens={tokens}"),
                    None => "env=prod".to_string(),
                });

                if date == spike_day && s.feature == SPIKE_FEATURE && SPIKE_HOURS.contains(&hour) {
                    let before = prices.cost_usd(&r);
                    let extra = (SPIKE_REQUESTS_PER_HOUR * rng.wobble(0.1)).round() as u64;
                    let x = extra as f64;
                    r.request_count += extra;
                    r.input_tokens +=
                        (x * SPIKE_INPUT_PER_REQUEST * rng.wobble(0.03)).round() as u64;
                    r.output_tokens +=
                        (x * SPIKE_OUTPUT_PER_REQUEST * rng.wobble(0.03)).round() as u64;
                    r.tags = Some("env=prod;job=reengagement-backfill".to_string());
                    spike_extra += prices.cost_usd(&r) - before;
                }
                records.push(r);
            }
        }
    }

    let routing_target = prices
        .cheaper_alternative(ROUTING_MODEL)
        .map_or_else(String::new, |p| p.model.clone());
    let facts = DemoFacts {
        company: COMPANY.to_string(),
        start,
        end,
        teams: unique(STREAMS.iter().map(|s| s.team)),
        models: unique(STREAMS.iter().map(|s| s.model)),
        spike_day,
        spike_team: SPIKE_TEAM.to_string(),
        spike_model: SPIKE_MODEL.to_string(),
        spike_feature: SPIKE_FEATURE.to_string(),
        spike_extra_cost_usd: spike_extra,
        routing_model: ROUTING_MODEL.to_string(),
        routing_target_model: routing_target.clone(),
        routing_feature: ROUTING_FEATURE.to_string(),
        shared_prefix_feature: PREFIX_FEATURE.to_string(),
        shared_prefixes: SHARED_PREFIXES
            .iter()
            .map(|(p, t)| ((*p).to_string(), *t))
            .collect(),
        notes: vec![
            format!(
                "Hourly buckets per (team, feature, model) from {start} to {end}: weekdays busier \
                 than weekends (~40%), a daily peak at 18:00 UTC, and ~20% growth over the period."
            ),
            format!(
                "Cost spike: on {spike_day} from 01:00 to 12:00 UTC a runaway re-engagement \
                 backfill in team {SPIKE_TEAM} sent ~{SPIKE_REQUESTS_PER_HOUR:.0} extra \
                 {SPIKE_FEATURE} requests per hour to {SPIKE_MODEL} (~{SPIKE_INPUT_PER_REQUEST:.0} \
                 input / {SPIKE_OUTPUT_PER_REQUEST:.0} output tokens each), adding \
                 ${spike_extra:.2} that day; the records are tagged job=reengagement-backfill."
            ),
            format!(
                "Routing: {ROUTING_FEATURE} (team search) runs on {ROUTING_MODEL} with ~380 input \
                 and ~28 output tokens per request, a classification workload {routing_target} \
                 can serve."
            ),
            format!(
                "Caching: {PREFIX_FEATURE} (team platform, gemini-2.5-pro, ~9,000 input tokens per \
                 request) reuses three long system prompts of 6,200, 7,400 and 5,100 tokens \
                 (prefix_hash set, length in the prefix_tokens tag) but reads nothing from cache."
            ),
            "cost_usd is not set: every record is priced from the embedded list prices."
                .to_string(),
        ],
    };
    DemoDataset { records, facts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn same_seed_same_records_other_seed_other_records() {
        let a = generate_demo(&DemoConfig::default());
        let b = generate_demo(&DemoConfig::default());
        assert_eq!(a, b);
        let c = generate_demo(&DemoConfig {
            seed: 7,
            ..DemoConfig::default()
        });
        assert_ne!(a.records, c.records);
        assert!(a.records.len() > 15_000, "{}", a.records.len());
        assert!(a.records.len() < 40_000, "{}", a.records.len());
    }

    #[test]
    fn records_are_valid_bucketed_and_priced() {
        let demo = generate_demo(&DemoConfig::default());
        let prices = PriceTable::embedded();
        for r in &demo.records {
            assert_eq!(r.validate(), Ok(()));
            assert!(r.request_count >= 1);
            assert!(r.cost_usd.is_none());
            assert!(prices.list_cost_usd(r).is_some(), "{} unpriced", r.model);
            let d = r.timestamp.date_naive();
            assert!(d >= demo.facts.start && d <= demo.facts.end);
        }
        assert!(
            demo.records.iter().filter(|r| r.request_count > 1).count() > demo.records.len() / 2
        );
        let providers: std::collections::BTreeSet<&str> =
            demo.records.iter().map(|r| r.provider.as_str()).collect();
        assert!(providers.len() >= 2);
        assert!(demo.facts.models.len() >= 5);
        assert_eq!(
            demo.facts.start,
            NaiveDate::from_ymd_opt(2026, 8, 28).unwrap()
        );
        // Prefixes are planted on the shared-prefix feature only.
        for r in &demo.records {
            assert_eq!(
                r.prefix_hash.is_some(),
                r.feature.as_deref() == Some(demo.facts.shared_prefix_feature.as_str())
            );
        }
        // The routing traffic is short: 20 to 40 output tokens per request.
        for r in demo
            .records
            .iter()
            .filter(|r| r.feature.as_deref() == Some("intent-classifier"))
        {
            let per = r.output_tokens as f64 / r.request_count as f64;
            assert!((15.0..=45.0).contains(&per), "{per}");
        }
    }

    #[test]
    fn facts_match_the_records() {
        let demo = generate_demo(&DemoConfig::default());
        let prices = PriceTable::embedded();
        let f = &demo.facts;
        assert_eq!(f.spike_day, f.end - Duration::days(10));
        assert_eq!(f.routing_target_model, "gpt-4o-mini");
        let mut by_day: HashMap<NaiveDate, f64> = HashMap::new();
        let mut spike_feature_by_day: HashMap<NaiveDate, f64> = HashMap::new();
        for r in &demo.records {
            let c = prices.cost_usd(r);
            *by_day.entry(r.timestamp.date_naive()).or_default() += c;
            if r.feature.as_deref() == Some(f.spike_feature.as_str()) {
                assert_eq!(r.team.as_deref(), Some(f.spike_team.as_str()));
                assert_eq!(r.model, f.spike_model);
                *spike_feature_by_day
                    .entry(r.timestamp.date_naive())
                    .or_default() += c;
            }
        }
        let (max_day, _) = by_day.iter().max_by(|a, b| a.1.total_cmp(b.1)).unwrap();
        assert_eq!(
            *max_day, f.spike_day,
            "the spike day is the most expensive day"
        );
        // "Several thousand dollars", and consistent with the feature's cost that day.
        assert!(f.spike_extra_cost_usd > 2_000.0 && f.spike_extra_cost_usd < 10_000.0);
        let same_weekday_before: Vec<f64> = (1..=4)
            .map(|k| spike_feature_by_day[&(f.spike_day - Duration::days(7 * k))])
            .collect();
        let normal = crate::stats::median(&same_weekday_before).unwrap();
        let on_day = spike_feature_by_day[&f.spike_day];
        assert!(
            ((on_day - normal) - f.spike_extra_cost_usd).abs() < 0.05 * f.spike_extra_cost_usd,
            "{on_day} - {normal} vs {}",
            f.spike_extra_cost_usd
        );
        assert_eq!(f.teams, vec!["search", "support", "growth", "platform"]);
    }

    #[test]
    fn tiny_and_empty_configs_work() {
        let empty = generate_demo(&DemoConfig {
            days: 0,
            ..DemoConfig::default()
        });
        assert!(empty.records.is_empty());
        let one = generate_demo(&DemoConfig {
            days: 1,
            ..DemoConfig::default()
        });
        assert_eq!(one.facts.start, one.facts.end);
        assert!(!one.records.is_empty());
    }
}
