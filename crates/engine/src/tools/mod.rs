//! The tools agents call. One file per tool; each is a pure function over the tenant's records
//! (through the `analytics` crate) that returns a value for the agents and a one-line summary for
//! people. Tools never emit events themselves: `RunContext::tool` does, around them.

pub mod analysis;
pub mod build_plan;
pub mod classify_request;
pub mod compose_report;
pub mod detect_anomalies;
pub mod forecast_capacity;
pub mod price_lookup;
pub mod query_usage;
pub mod recommend_optimizations;
pub mod usage_summary;

use crate::context::Stop;
use agentwire_analytics::{Filter, UsageRecord};
use agentwire_protocol::ErrorCode;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

/// What slice of the tenant's data a run looks at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scope {
    /// The look-back window as written (`30d`), ending at the newest record.
    pub timeframe: String,
    #[serde(skip)]
    pub window: Duration,
    pub team: Option<String>,
    pub model: Option<String>,
    pub feature: Option<String>,
}

impl Scope {
    pub const DEFAULT_TIMEFRAME: &'static str = "30d";

    /// The analytics filter for this scope over `records` (the window ends at the newest record,
    /// so answers over the same data are the same whenever they are asked).
    pub fn filter(&self, records: &[UsageRecord]) -> Filter {
        let mut filter = Filter::last(self.window, records);
        filter.team = self.team.clone();
        filter.model = self.model.clone();
        filter.feature = self.feature.clone();
        filter
    }

    /// The same scope with no time window: for baselines that need history.
    pub fn filter_all_time(&self) -> Filter {
        Filter {
            team: self.team.clone(),
            model: self.model.clone(),
            feature: self.feature.clone(),
            ..Filter::default()
        }
    }

    /// The scope as tool arguments.
    pub fn args(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }

    /// A phrase for people: `the last 30d for team search`.
    pub fn describe(&self) -> String {
        let mut text = if self.timeframe == "all" {
            "all the data".to_owned()
        } else {
            format!("the last {}", self.timeframe)
        };
        for (label, value) in [
            ("team", &self.team),
            ("model", &self.model),
            ("feature", &self.feature),
        ] {
            if let Some(value) = value {
                text.push_str(&format!(", {label} {value}"));
            }
        }
        text
    }
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
            Arc::new(TenantData {
                tenant_id: "demo".into(),
                records: Arc::new(generate_demo(&DemoConfig::default()).records),
                prices: Arc::new(PriceTable::embedded()),
                demo: true,
            })
        })
        .clone()
    }
}
