//! How long reading a question takes: `understand` over the demo data set's vocabulary (what
//! `agentwire serve --demo-data` reads against), for a few questions as `agentwire load` sends
//! them (each with a unique `[ref ...]` canary, so no reading is reused).
//!
//! `cargo run --release -p agentwire-question --example time_questions [ROUNDS]`
//!
//! A measuring tool, not a test: it asserts nothing, and its figures move with the machine.

use std::hint::black_box;
use std::time::Instant;

use agentwire_analytics::{DemoConfig, PriceTable, generate_demo};
use agentwire_question::{Vocabulary, understand};

const QUESTIONS: &[&str] = &[
    "How can we reduce our AI costs?",
    "Which team spent the most on gpt-4o last week?",
    "What did the search feature cost in October compared to September?",
];

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let demo = DemoConfig::default();
    let records = generate_demo(&demo).records;
    let vocab = Vocabulary::from_records(&records, &PriceTable::embedded());
    for question in QUESTIONS {
        let asked = format!("{question} [ref cnry0123456789abcdef01234567]");
        let started = Instant::now();
        for _ in 0..rounds {
            black_box(understand(black_box(&asked), &vocab, demo.end));
        }
        let each = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds.max(1));
        println!("{each:8.1} µs  {question}");
    }
}
