//! Prints how questions are understood over the corpus data set: one per line from the
//! arguments, or from stdin.
//!
//! `cargo run -p agentwire-question --example ask -- "spend by team last month"`

#[path = "../tests/common/dataset.rs"]
mod dataset;

use std::io::BufRead;

use agentwire_analytics::PriceTable;
use agentwire_question::{Vocabulary, understand};

fn main() {
    let records = dataset::generate();
    let vocab = Vocabulary::from_records(&records, &PriceTable::embedded());
    let today = dataset::day(dataset::TODAY);
    let mut questions: Vec<String> = std::env::args().skip(1).collect();
    if questions.is_empty() {
        questions = std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .collect();
    }
    for q in questions {
        let query = understand(&q, &vocab, today);
        println!("{q}\n  -> {} [{}]", query.describe(), query.intent.name());
        for r in &query.resolved {
            if let Some(n) = &r.note {
                println!("     note: {n}");
            }
        }
        for u in &query.unknown {
            println!(
                "     unknown: {} (closest: {})",
                u.text,
                u.closest.join(", ")
            );
        }
    }
}
