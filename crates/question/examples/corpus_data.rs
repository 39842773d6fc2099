//! Prints the corpus data set (tests/common/dataset.rs): its names, span and monthly figures, so
//! someone writing corpus entries can see what the questions are asked about.
//!
//! `cargo run -p agentwire-question --example corpus_data`

#[path = "../tests/common/dataset.rs"]
mod dataset;

use std::collections::BTreeMap;

use agentwire_analytics::PriceTable;
use chrono::Datelike;

fn main() {
    let records = dataset::generate();
    let prices = PriceTable::embedded();
    let mut names: BTreeMap<&str, BTreeMap<String, (u64, f64)>> = BTreeMap::new();
    let mut months: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for r in &records {
        let cost = prices.cost_usd(r);
        let fields = [
            ("model", Some(r.model.clone())),
            ("provider", Some(r.provider.clone())),
            ("team", r.team.clone()),
            ("feature", r.feature.clone()),
            ("project", r.project.clone()),
            ("user", r.user_id.clone()),
            ("status", r.status.clone()),
        ];
        for (dim, value) in fields {
            if let Some(v) = value {
                let e = names.entry(dim).or_default().entry(v).or_default();
                e.0 += r.request_count;
                e.1 += cost;
            }
        }
        let m = format!("{}-{:02}", r.timestamp.year(), r.timestamp.month());
        let e = months.entry(m).or_default();
        e.0 += r.request_count;
        e.1 += cost;
    }
    println!(
        "{} records, {} to {} (today for the corpus: {})",
        records.len(),
        dataset::day(dataset::FIRST_DAY),
        dataset::day(dataset::LAST_DAY),
        dataset::day(dataset::TODAY)
    );
    for (dim, values) in &names {
        println!("\n{dim}:");
        for (v, (requests, cost)) in values {
            println!("  {v:<45} {requests:>8} requests  ${cost:>10.2}");
        }
    }
    println!("\nmonth:");
    for (m, (requests, cost)) in &months {
        println!("  {m}  {requests:>8} requests  ${cost:>10.2}");
    }
}
