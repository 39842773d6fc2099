//! Streams a usage file through `import_each` and prints what it saw, keeping no records: the way
//! to check that import memory does not grow with the file.
//!
//! Run with `cargo run --release -p agentwire-analytics --example import_stream -- FILE` (under
//! `/usr/bin/time -v` to see the peak memory).

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: import_stream FILE");
        return std::process::ExitCode::from(2);
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut tokens = 0u64;
    let options = agentwire_analytics::ImportOptions::default();
    match agentwire_analytics::import_each(file, &options, |r| tokens += r.input_tokens) {
        Ok(stats) => {
            println!(
                "{}: {} rows, {} records, {} errors, {tokens} input tokens",
                stats.format, stats.rows_read, stats.records, stats.error_count
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
