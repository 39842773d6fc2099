//! `agentwire analyze FILE`: the agents' analysis of one file, offline: the same tools and the same
//! report composer as a run, printed as Markdown or (`--json`) as the run's `report` JSON.
//!
//! Run with `cargo run --release -- analyze usage.csv --json`. Exit code 0 on success, 2 with a
//! message when the file cannot be read or has bad rows (listed with their line numbers).

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use agentwire_analytics::capacity::RateLimit;
use agentwire_analytics::{ImportOptions, Imported, PriceTable, RowError, UsageFormat, import_any};
use anyhow::{Context, anyhow, bail};

use crate::cli::AnalyzeArgs;

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let format = parse_format(args.format.as_deref())?;
    let prices = Arc::new(load_prices(args.prices.as_deref())?);
    let limits = args
        .rate_limits
        .iter()
        .map(|text| RateLimit::parse(text).map_err(|message| anyhow!(message)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let name = args.file.display().to_string();
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot read {name}"))?;
    let options = ImportOptions {
        format,
        model: args.model.clone(),
    };
    let imported = import_any(BufReader::with_capacity(1 << 20, file), &options)
        .with_context(|| format!("cannot read {name}"))?;
    let report = match imported {
        Imported::Usage(report) => {
            refuse_bad_rows(&name, &report.errors, report.rows_read)?;
            if report.records.is_empty() {
                bail!("{name} holds no usage records to analyse");
            }
            agentwire_engine::analyze_usage(report.records, prices, &limits, &name)
        }
        Imported::Series(series) => {
            refuse_bad_rows(&name, &series.errors, series.rows_read)?;
            agentwire_engine::analyze_series(&series.series, &name)
        }
        Imported::Focus(focus) => {
            refuse_bad_rows(&name, &focus.errors, focus.rows_read)?;
            agentwire_engine::analyze_focus(&focus.rows, &name)
        }
    }
    .map_err(|message| anyhow!("cannot analyse {name}: {message}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.report)?);
    } else {
        print!("{}", report.response);
    }
    Ok(())
}

/// `--format` as a `UsageFormat`.
pub fn parse_format(name: Option<&str>) -> anyhow::Result<Option<UsageFormat>> {
    name.map(|n| {
        UsageFormat::from_name(n)
            .with_context(|| format!("unknown format `{n}`; use one of {}", UsageFormat::names()))
    })
    .transpose()
}

/// The embedded price table, with a LiteLLM price file laid over it when one is given.
pub fn load_prices(path: Option<&Path>) -> anyhow::Result<PriceTable> {
    let mut table = PriceTable::embedded();
    if let Some(path) = path {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot read the price file {}", path.display()))?;
        let as_of = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .date_naive()
                    .to_string()
            })
            .unwrap_or_else(|_| "unknown".to_owned());
        table
            .load_litellm_json(BufReader::new(file), &path.display().to_string(), &as_of)
            .with_context(|| format!("cannot load the price file {}", path.display()))?;
    }
    Ok(table)
}

fn refuse_bad_rows(name: &str, errors: &[RowError], rows_read: u64) -> anyhow::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    for error in errors.iter().take(20) {
        eprintln!("{name}:{}: {}", error.line, error.message);
    }
    if errors.len() > 20 {
        eprintln!("... and {} more", errors.len() - 20);
    }
    bail!(
        "{} of {rows_read} rows of {name} have errors; nothing was analysed. Fix them and run the command again.",
        errors.len()
    )
}
