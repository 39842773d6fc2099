//! The tools agents call. One file per tool; each is a pure function of the tenant's records
//! (through the `analytics` crate) and its arguments, that returns a value for the agents and a
//! one-line summary for people. Tools must not emit events, read the run's context or call
//! agents: `RunContext::tool` runs them off the async runtime and emits the tool pair around
//! them. The types of their values live in `findings.rs`.

pub mod build_plan;
pub mod classify_request;
pub mod compose_report;
pub mod detect_anomalies;
pub mod forecast_capacity;
pub mod price_lookup;
pub mod price_scenario;
pub mod project_growth;
pub mod query_usage;
pub mod recommend_optimizations;
pub mod run_query;
pub mod usage_summary;

use crate::scope::Scope;
use crate::stop::Stop;
use agentwire_protocol::ErrorCode;

/// A tool's answer: the value the agent continues with, and a one-line summary for people.
#[derive(Debug)]
pub(crate) struct ToolOutput<T> {
    pub value: T,
    pub summary: String,
}

/// The error every data tool gives when the scope holds no records.
pub fn no_data(tenant_id: &str, scope: &Scope) -> Stop {
    Stop::failed(
        ErrorCode::NoData,
        format!(
            "tenant {tenant_id} has no usage records for {}. Load some with `agentwire ingest usage.csv --tenant {tenant_id}` \
             or POST a CSV / JSON-lines file to /api/usage, or widen the timeframe.",
            scope.describe()
        ),
    )
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::tenant::TenantData;
    use agentwire_analytics::{DemoConfig, PriceTable, generate_demo};
    use std::sync::{Arc, OnceLock};

    /// The demo data set as a tenant snapshot, generated once per test binary.
    pub fn demo_tenant() -> Arc<TenantData> {
        static DATA: OnceLock<Arc<TenantData>> = OnceLock::new();
        DATA.get_or_init(|| {
            let records = generate_demo(&DemoConfig::default()).records;
            let prices = PriceTable::embedded();
            let vocab = agentwire_question::Vocabulary::from_records(&records, &prices);
            Arc::new(TenantData {
                tenant_id: "demo".into(),
                records: Arc::new(records),
                prices: Arc::new(prices),
                demo: true,
                vocab: Arc::new(vocab),
                generation: 1,
                usage_version: 0,
                totals: Default::default(),
            })
        })
        .clone()
    }
}
