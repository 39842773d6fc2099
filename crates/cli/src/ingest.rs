//! `agentwire ingest FILE --tenant T`: loads a usage file straight into the database, all or
//! nothing, and reports every bad row with its line number.

use crate::analyze::{load_prices, parse_format};
use crate::cli::IngestArgs;
use agentwire_analytics::{ImportOptions, import_usage_with};
use anyhow::{Context, bail};

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let options = ImportOptions {
        format: parse_format(args.format.as_deref())?,
        model: args.model.clone(),
    };
    let path = args.file.clone();
    let prices_path = args.prices.clone();
    let (report, prices) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let prices = load_prices(prices_path.as_deref())?;
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let report = import_usage_with(std::io::BufReader::new(file), &options)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok((report, prices))
    })
    .await
    .context("the import task failed")??;
    if !report.errors.is_empty() {
        for error in report.errors.iter().take(20) {
            eprintln!("{}:{}: {}", args.file.display(), error.line, error.message);
        }
        if report.errors.len() > 20 {
            eprintln!("... and {} more", report.errors.len() - 20);
        }
        bail!(
            "{} of {} rows have errors; nothing was imported. Fix them and run the command again.",
            report.errors.len(),
            report.rows_read
        );
    }
    let shown = agentwire_store::redact_url(&args.database);
    let store = agentwire_store::connect(&args.database)
        .await
        .with_context(|| format!("cannot open the database {shown}"))?;
    store.ensure_tenant(&args.tenant).await?;
    let imported = store.insert_usage(&args.tenant, &report.records).await?;
    let cost: f64 = report.records.iter().map(|r| prices.cost_usd(r)).sum();
    println!(
        "imported {imported} usage records ({} format, ${cost:.2} at their billed or list cost) into tenant {} ({})",
        report.format, args.tenant, shown
    );
    Ok(())
}
