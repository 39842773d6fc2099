//! The corpus data set: a seeded, deterministic usage history for a fictional company, which the
//! question corpus is asked against (see tests/corpus/FORMAT.md for what it holds).
//!
//! It is test data, so it is written for clarity: one stream per (team, feature, model), logged one
//! record per request or, for the high-volume streams, in hourly buckets of many requests, with a
//! few planted events so comparisons and rankings have something to find. It must not read the
//! clock or any entropy source: the seed alone decides the records.

use agentwire_analytics::UsageRecord;
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

/// The first and last day of the data (UTC, inclusive).
pub const FIRST_DAY: (i32, u32, u32) = (2026, 6, 1);
pub const LAST_DAY: (i32, u32, u32) = (2026, 11, 18);
/// "Today" for the corpus, unless an entry says otherwise: two days after the data ends, so time
/// words are read relative to the data's last day.
pub const TODAY: (i32, u32, u32) = (2026, 11, 20);
pub const SEED: u64 = 20_261_118;

pub fn day((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// splitmix64: tiny and fully determined by its seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A multiplicative wobble with median 1 (log-normal).
    fn wobble(&mut self, sigma: f64) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (sigma * normal).exp()
    }
}

/// One (team, feature, model) traffic stream.
struct Stream {
    team: &'static str,
    feature: &'static str,
    model: &'static str,
    provider: &'static str,
    project: &'static str,
    users: &'static [&'static str],
    /// Requests on a weekday at the start of the data.
    per_day: f64,
    input: f64,
    output: f64,
    /// Share of input tokens read from the prompt cache (0 = no caching).
    cached_share: f64,
    /// Active from this day on (inclusive) and before this day (exclusive), as (month, day) in 2026.
    from: (u32, u32),
    until: (u32, u32),
    /// Logged as hourly buckets of many requests (a gateway's rollup) instead of one per request.
    bucketed: bool,
}

#[rustfmt::skip]
const STREAMS: &[Stream] = &[
    // search moved query-rewrite from gpt-4o to gpt-4o-mini on 2026-09-15.
    Stream { team: "search", feature: "query-rewrite", model: "gpt-4o", provider: "openai", project: "atlas",
        users: &["alice", "bob"], per_day: 20_000.0, input: 600.0, output: 80.0, cached_share: 0.0, from: (6, 1), until: (9, 15), bucketed: true },
    Stream { team: "search", feature: "query-rewrite", model: "gpt-4o-mini", provider: "openai", project: "atlas",
        users: &["alice", "bob"], per_day: 20_000.0, input: 600.0, output: 80.0, cached_share: 0.0, from: (9, 15), until: (12, 31), bucketed: true },
    Stream { team: "search", feature: "search-ranking", model: "gemini-2.5-flash", provider: "google", project: "atlas",
        users: &["alice", "carol"], per_day: 15_000.0, input: 1_500.0, output: 60.0, cached_share: 0.0, from: (6, 1), until: (12, 31), bucketed: true },
    Stream { team: "search", feature: "search-ranking", model: "claude-3-5-haiku", provider: "anthropic", project: "atlas",
        users: &["carol"], per_day: 2_000.0, input: 1_500.0, output: 60.0, cached_share: 0.2, from: (9, 1), until: (12, 31), bucketed: true },
    Stream { team: "support", feature: "chatbot", model: "claude-3-5-haiku", provider: "anthropic", project: "helpdesk",
        users: &["dave", "erin"], per_day: 6_000.0, input: 1_200.0, output: 200.0, cached_share: 0.3, from: (6, 1), until: (12, 31), bucketed: true },
    Stream { team: "support", feature: "ticket-triage", model: "gpt-4.1-mini", provider: "openai", project: "helpdesk",
        users: &["dave"], per_day: 5_000.0, input: 900.0, output: 120.0, cached_share: 0.0, from: (6, 1), until: (12, 31), bucketed: true },
    Stream { team: "support", feature: "support-replies", model: "claude-sonnet-4", provider: "anthropic", project: "helpdesk",
        users: &["erin", "frank"], per_day: 80.0, input: 2_600.0, output: 500.0, cached_share: 0.5, from: (6, 1), until: (12, 31), bucketed: false },
    Stream { team: "growth", feature: "email-drafts", model: "claude-sonnet-4", provider: "anthropic", project: "outreach",
        users: &["grace"], per_day: 50.0, input: 1_500.0, output: 450.0, cached_share: 0.0, from: (6, 1), until: (12, 31), bucketed: false },
    Stream { team: "growth", feature: "lead-scoring", model: "o3-mini", provider: "openai", project: "outreach",
        users: &["grace", "heidi"], per_day: 60.0, input: 2_000.0, output: 700.0, cached_share: 0.0, from: (6, 1), until: (12, 31), bucketed: false },
    Stream { team: "platform", feature: "doc-summaries", model: "gemini-2.5-pro", provider: "google", project: "knowledge-base",
        users: &["ivan"], per_day: 60.0, input: 9_000.0, output: 600.0, cached_share: 0.0, from: (6, 1), until: (12, 31), bucketed: false },
    Stream { team: "platform", feature: "code-review", model: "gpt-4o", provider: "openai", project: "devtools",
        users: &["judy", "bob"], per_day: 40.0, input: 5_200.0, output: 700.0, cached_share: 0.0, from: (6, 1), until: (12, 31), bucketed: false },
    Stream { team: "platform", feature: "log-analysis", model: "meta-llama/Llama-3.3-70B-Instruct-Turbo", provider: "together_ai", project: "devtools",
        users: &["svc-logs"], per_day: 8_000.0, input: 3_000.0, output: 250.0, cached_share: 0.0, from: (6, 1), until: (12, 31), bucketed: true },
    Stream { team: "research", feature: "translation", model: "gemini-2.5-flash", provider: "google", project: "globalize",
        users: &["karl"], per_day: 30.0, input: 800.0, output: 900.0, cached_share: 0.0, from: (8, 1), until: (12, 31), bucketed: false },
    Stream { team: "research", feature: "translation", model: "gpt-4o", provider: "openai", project: "globalize",
        users: &["karl", "heidi"], per_day: 20.0, input: 800.0, output: 900.0, cached_share: 0.0, from: (8, 1), until: (12, 31), bucketed: false },
];

/// The email-drafts runaway job: ten times the usual requests on this day.
pub const SPIKE_DAY: (i32, u32, u32) = (2026, 10, 14);
/// The shared system prompts of doc-summaries (prefix_hash) and their length in tokens.
pub const DOC_PREFIXES: [(&str, u64); 2] = [
    ("sp-docsum-general-a1", 6_000),
    ("sp-docsum-legal-b2", 4_500),
];

fn model_latency_ms(model: &str) -> (f64, f64) {
    // (base latency, time to first token) in ms
    match model {
        "gpt-4o" => (1_800.0, 450.0),
        "gpt-4o-mini" => (900.0, 300.0),
        "gpt-4.1-mini" => (1_000.0, 320.0),
        "o3-mini" => (6_000.0, 2_500.0),
        "claude-sonnet-4" => (2_500.0, 700.0),
        "claude-3-5-haiku" => (1_100.0, 380.0),
        "gemini-2.5-pro" => (4_000.0, 1_200.0),
        "gemini-2.5-flash" => (800.0, 250.0),
        _ => (1_500.0, 500.0),
    }
}

fn weekday_factor(d: NaiveDate) -> f64 {
    match d.weekday() {
        Weekday::Sat | Weekday::Sun => 0.45,
        _ => 1.0,
    }
}

/// The status of one request: mostly success; o3-mini and gemini-2.5-pro time out more often, and
/// claude-sonnet-4 was rate limited a lot in October.
fn status(rng: &mut Rng, model: &str, date: NaiveDate) -> &'static str {
    let u = rng.f64();
    let timeout = if matches!(model, "o3-mini" | "gemini-2.5-pro") {
        0.04
    } else {
        0.005
    };
    let limited = if model == "claude-sonnet-4" && date.month() == 10 {
        0.06
    } else {
        0.005
    };
    let error = 0.015;
    if u < error {
        "error"
    } else if u < error + timeout {
        "timeout"
    } else if u < error + timeout + limited {
        "rate_limited"
    } else {
        "success"
    }
}

/// The corpus data set. The same call always returns the same records, in time order.
pub fn generate() -> Vec<UsageRecord> {
    let mut rng = Rng(SEED);
    let first = day(FIRST_DAY);
    let last = day(LAST_DAY);
    let span = (last - first).num_days().max(1) as f64;
    let spike = day(SPIKE_DAY);
    let mut out = Vec::new();
    let mut date = first;
    while date <= last {
        let t = (date - first).num_days() as f64 / span;
        // About 30% growth over the data, and quieter weekends.
        let level = (1.0 + 0.3 * t) * weekday_factor(date);
        for s in STREAMS {
            let from = NaiveDate::from_ymd_opt(2026, s.from.0, s.from.1).unwrap_or(first);
            let until = NaiveDate::from_ymd_opt(2026, s.until.0, s.until.1).unwrap_or(last);
            if date < from || date >= until {
                continue;
            }
            if s.bucketed {
                hourly_buckets(&mut rng, s, date, level, &mut out);
                continue;
            }
            let mut mean = s.per_day * level;
            if s.feature == "email-drafts" && date == spike {
                mean *= 10.0;
            }
            let n = (mean * rng.wobble(0.15)).round() as u64;
            let bursts = if s.feature == "doc-summaries" { 3 } else { 0 };
            let burst_starts: Vec<u32> = (0..bursts)
                .map(|_| (8 + rng.below(10) as u32) * 3_600)
                .collect();
            for i in 0..n {
                let second = if bursts > 0 {
                    // doc-summaries run in bursts a minute or two apart (so a prompt cache stays warm).
                    let b = burst_starts[(i % bursts as u64) as usize];
                    b + (i / bursts as u64) as u32 * (60 + rng.below(60) as u32)
                } else {
                    rng.below(86_400) as u32
                };
                out.push(request(&mut rng, s, date, second.min(86_399)));
            }
        }
        date += Duration::days(1);
    }
    out.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.model.cmp(&b.model))
    });
    out
}

fn request(rng: &mut Rng, s: &Stream, date: NaiveDate, second: u32) -> UsageRecord {
    let timestamp = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
        + Duration::seconds(i64::from(second));
    let status = status(rng, s.model, date);
    let input = (s.input * rng.wobble(0.3)).round().max(1.0) as u64;
    let output = if status == "success" {
        (s.output * rng.wobble(0.35)).round().max(1.0) as u64
    } else {
        0
    };
    let mut r = UsageRecord::new(timestamp, s.provider, s.model, input, output);
    let (base, ttft) = model_latency_ms(s.model);
    let latency = if status == "timeout" {
        30_000.0
    } else {
        ((base + 8.0 * output as f64) * rng.wobble(0.25)).round()
    };
    r.latency_ms = Some(latency);
    r.ttft_ms = Some((ttft * rng.wobble(0.3)).round().min(latency));
    r.status = Some(status.to_string());
    r.team = Some(s.team.to_string());
    r.feature = Some(s.feature.to_string());
    r.project = Some(s.project.to_string());
    r.user_id = Some(s.users[rng.below(s.users.len() as u64) as usize].to_string());
    if s.cached_share > 0.0 {
        let share = s.cached_share * (0.6 + 0.4 * rng.f64());
        r.cache_read_input_tokens = Some((input as f64 * share).round() as u64);
    }
    if s.feature == "doc-summaries" {
        let (prefix, tokens) = DOC_PREFIXES[rng.below(DOC_PREFIXES.len() as u64) as usize];
        r.prefix_hash = Some(prefix.to_string());
        r.tags = Some(format!("prefix_tokens={tokens}"));
        r.input_tokens = r.input_tokens.max(tokens + 500);
    }
    r
}

/// A high-volume stream, logged as hourly buckets: per hour one record of its successful requests
/// and, when some failed, one record of the failures (their input billed, no output).
fn hourly_buckets(
    rng: &mut Rng,
    s: &Stream,
    date: NaiveDate,
    level: f64,
    out: &mut Vec<UsageRecord>,
) {
    let day_noise = rng.wobble(0.08);
    for hour in 0..24u32 {
        // Busier in working hours (peak 15:00 UTC), never idle.
        let d = (f64::from(hour) - 15.0).abs();
        let shape = 0.3 + 1.4 * (-0.5 * (d / 4.0).powi(2)).exp();
        let n = (s.per_day / 24.0 * level * shape * day_noise * rng.wobble(0.1)).round() as u64;
        if n == 0 {
            continue;
        }
        let timestamp = Utc.from_utc_datetime(&date.and_hms_opt(hour, 0, 0).unwrap_or_default());
        let failed = (n as f64 * 0.02 * rng.wobble(0.5)).round() as u64;
        let ok = n - failed.min(n);
        let (base, ttft) = model_latency_ms(s.model);
        for (count, status) in [(ok, "success"), (failed, "error")] {
            if count == 0 {
                continue;
            }
            let input = (s.input * count as f64 * rng.wobble(0.1)).round() as u64;
            let output = if status == "success" {
                (s.output * count as f64 * rng.wobble(0.1)).round() as u64
            } else {
                0
            };
            let mut r = UsageRecord::new(timestamp, s.provider, s.model, input, output);
            r.request_count = count;
            r.latency_ms = Some(((base + 8.0 * s.output) * rng.wobble(0.2)).round());
            r.ttft_ms = Some((ttft * rng.wobble(0.2)).round());
            r.status = Some(status.to_string());
            r.team = Some(s.team.to_string());
            r.feature = Some(s.feature.to_string());
            r.project = Some(s.project.to_string());
            r.user_id = Some(s.users[rng.below(s.users.len() as u64) as usize].to_string());
            if s.cached_share > 0.0 {
                r.cache_read_input_tokens = Some((input as f64 * s.cached_share).round() as u64);
            }
            out.push(r);
        }
    }
}
