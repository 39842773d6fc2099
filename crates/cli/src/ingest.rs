//! `agentwire ingest FILE --tenant T`: loads a usage file straight into the database, all or
//! nothing, and reports every bad row with its line number.

use crate::cli::IngestArgs;
use agentwire_analytics::{UsageFormat, import_usage};
use anyhow::{Context, bail};

pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let format = match args.format.as_deref() {
        None => None,
        Some(name) => Some(
            UsageFormat::from_name(name)
                .with_context(|| format!("unknown format `{name}`; use csv or jsonl"))?,
        ),
    };
    let path = args.file.clone();
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        import_usage(std::io::BufReader::new(file), format)
            .with_context(|| format!("cannot read {}", path.display()))
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
    let store = agentwire_store::connect(&args.database)
        .await
        .with_context(|| format!("cannot open the database {}", args.database))?;
    store.ensure_tenant(&args.tenant).await?;
    let imported = store.insert_usage(&args.tenant, &report.records).await?;
    println!(
        "imported {imported} usage records into tenant {} ({})",
        args.tenant, args.database
    );
    Ok(())
}
