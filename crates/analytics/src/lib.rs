//! Spend analytics over LLM usage records: importers, prices, summaries, anomalies and
//! optimization levers, as pure functions the agents call as tools.
//!
//! Everything here is synchronous and deterministic: the same records give the same answer.
//! This crate must not do I/O (beyond reading a `Read` it is handed), read the clock, use
//! unseeded randomness, or know about agents, sockets or SQL.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod anomaly;
pub mod billing;
pub mod cancel;
pub mod capacity;
pub mod demo;
pub mod episodes;
mod fastmap;
pub mod forecast;
pub mod format;
pub mod import;
pub mod levers;
pub mod optimize;
pub mod prices;
pub mod query;
mod recommendation;
pub mod record;
pub mod seasonality;
mod shifts;
mod stats;
pub mod summary;
pub mod timeseries;
pub mod whatif;

pub use anomaly::{Anomaly, Contributor, detect_anomalies, detect_anomalies_cancellable};
pub use cancel::{Cancel, Cancelled, Checkpoint, Ticks, Uninterrupted};
pub use demo::{DemoConfig, DemoDataset, DemoFacts, bulk_usage, generate_demo};
pub use import::{
    FocusImport, FocusRow, ImportError, ImportOptions, ImportReport, ImportStats, Imported,
    MetricSeries, RowError, SeriesImport, UsageFormat, import_any, import_each, import_focus,
    import_series, import_usage, import_usage_with,
};
pub use optimize::{Recommendation, recommend, recommend_cancellable};
pub use prices::{ModelPrice, PriceTable, PriceTier};
pub use record::UsageRecord;
pub use summary::{
    Breakdown, DailyPoint, Filter, Summary, Trend, summarize, summarize_cancellable,
};
