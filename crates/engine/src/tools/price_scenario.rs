//! `price_scenario`: a what-if's monthly cost — the scenario's traffic re-priced (moved to another
//! model or provider, a cheaper model of each family, or its shared prompt prefix cached), next to
//! today's, with the saving and the assumptions it rests on.
//!
//! The maths is `analytics::whatif::price`. A target the price table does not know is not an
//! error of the run: the answer says so. This tool must not estimate a price itself.

use super::ToolOutput;
use crate::findings::PricedScenario;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::Cancel;
use agentwire_analytics::format;
use agentwire_analytics::whatif::{Scenario, price_cancellable};

pub fn compute(
    data: &TenantData,
    scenario: &Scenario,
    cancel: &Cancel,
) -> RunResult<ToolOutput<PricedScenario>> {
    let (priced, error, summary) =
        match price_cancellable(&data.records, &data.prices, scenario, cancel)? {
            Ok(w) => {
                let summary = format!(
                    "{}: {} a month today, {} in the scenario, saving {} ({} requests in {})",
                    scenario.change.name(),
                    format::usd(w.current_monthly_usd),
                    format::usd(w.scenario_monthly_usd),
                    format::usd(w.monthly_saving_usd),
                    format::count(w.requests),
                    scenario.period
                );
                (Some(w), None, summary)
            }
            Err(err) => {
                let text = err.to_string();
                (None, Some(text.clone()), format!("not priced: {text}"))
            }
        };
    Ok(ToolOutput {
        value: PricedScenario {
            scenario: scenario.clone(),
            priced,
            error,
        },
        summary,
    })
}
