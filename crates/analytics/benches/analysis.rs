//! Import and full analysis of 1,000,000 generated usage records (issue 3's target: the whole
//! analysis, summary, anomalies, capacity and all levers, under 1 s).
//!
//! Run with `cargo bench -p agentwire-analytics --bench analysis`. The records are generated here,
//! deterministically: single requests over 30 days across ten (team, feature, model) streams, with
//! prompt hashes, cache prefixes and max_tokens set so every lever does real work.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentwire_analytics::capacity::capacity;
use agentwire_analytics::{
    Filter, ImportOptions, PriceTable, UsageRecord, detect_anomalies, import_each, recommend,
    summarize,
};
use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const N: usize = 1_000_000;

const STREAMS: [(&str, &str, &str, u64, u64); 10] = [
    ("search", "query-rewrite", "gpt-4.1-mini", 650, 90),
    ("search", "intent-classifier", "gpt-4o", 380, 28),
    ("search", "result-ranking", "gemini-2.5-flash", 1_400, 60),
    ("support", "ticket-triage", "claude-3-5-haiku", 1_200, 150),
    ("support", "support-replies", "claude-sonnet-4", 2_600, 480),
    ("growth", "email-drafts", "claude-sonnet-4", 1_500, 420),
    ("growth", "lead-enrichment", "gemini-2.5-flash", 2_000, 300),
    ("platform", "doc-summaries", "gemini-2.5-pro", 9_000, 600),
    (
        "platform",
        "log-triage",
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        3_000,
        250,
    ),
    ("platform", "code-review", "gpt-4.1", 5_200, 700),
];

fn records() -> Vec<UsageRecord> {
    let start = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    let step_ms = 30 * 86_400_000 / N as i64;
    (0..N)
        .map(|i| {
            let (team, feature, model, input, output) = STREAMS[i % STREAMS.len()];
            let wobble = (i * 7919 % 101) as u64;
            let mut r = UsageRecord::new(
                start + Duration::milliseconds(i as i64 * step_ms),
                "x",
                model,
                input + wobble * 3,
                output + wobble,
            );
            r.provider = agentwire_analytics::import::infer_provider(model)
                .unwrap_or("together_ai")
                .to_string();
            r.team = Some(team.to_string());
            r.feature = Some(feature.to_string());
            r.max_tokens = Some(output + 100);
            if i % 10 == 3 {
                r.prompt_hash = Some(format!("p{}", i % 5_000));
            }
            if feature == "doc-summaries" {
                r.prefix_hash = Some(format!("sp-{}", i % 3));
                r.tags = Some("prefix_tokens=6000".to_string());
            }
            r
        })
        .collect()
}

fn csv(records: &[UsageRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 90);
    out.extend_from_slice(
        b"timestamp,provider,model,input_tokens,output_tokens,team,feature,max_tokens\n",
    );
    for r in records {
        out.extend_from_slice(
            format!(
                "{},{},{},{},{},{},{},{}\n",
                r.timestamp.to_rfc3339(),
                r.provider,
                r.model,
                r.input_tokens,
                r.output_tokens,
                r.team.as_deref().unwrap_or(""),
                r.feature.as_deref().unwrap_or(""),
                r.max_tokens.unwrap_or(0)
            )
            .as_bytes(),
        );
    }
    out
}

fn full_analysis(records: &[UsageRecord], prices: &PriceTable) -> usize {
    let filter = Filter::default();
    let summary = summarize(records, prices, &filter);
    let anomalies = detect_anomalies(records, prices, &filter);
    let capacity = capacity(records, &filter, &[]);
    let recs = recommend(records, prices, &filter);
    summary.by_model.len() + anomalies.len() + capacity.minutes + recs.len()
}

fn bench(c: &mut Criterion) {
    let records = records();
    let bytes = csv(&records);
    let prices = PriceTable::embedded();
    let mut group = c.benchmark_group("1M records");
    group.sample_size(10);
    group.bench_function("import (streaming CSV)", |b| {
        b.iter(|| {
            let mut n = 0u64;
            let stats = import_each(&bytes[..], &ImportOptions::default(), |_| n += 1).unwrap();
            assert_eq!(stats.error_count, 0);
            black_box(n)
        })
    });
    group.bench_function(
        "full analysis (summary, anomalies, capacity, levers)",
        |b| b.iter(|| black_box(full_analysis(&records, &prices))),
    );
    group.bench_function("summary", |b| {
        b.iter(|| black_box(summarize(&records, &prices, &Filter::default()).records))
    });
    group.bench_function("anomalies", |b| {
        b.iter(|| black_box(detect_anomalies(&records, &prices, &Filter::default()).len()))
    });
    group.bench_function("capacity", |b| {
        b.iter(|| black_box(capacity(&records, &Filter::default(), &[]).minutes))
    });
    group.bench_function("levers", |b| {
        b.iter(|| black_box(recommend(&records, &prices, &Filter::default()).len()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
