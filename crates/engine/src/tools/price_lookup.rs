//! `price_lookup`: the list prices of the models in scope and their cheaper same-provider
//! alternatives, from the embedded price table (each price with its source and date).
//! It must not price anything itself: prices come from the tenant's price table only.

use super::ToolOutput;
use crate::findings::PricedModel;
use crate::scope::Scope;
use crate::stop::RunResult;
use crate::tenant::TenantData;
use std::collections::BTreeSet;

pub fn compute(data: &TenantData, scope: &Scope) -> RunResult<ToolOutput<Vec<PricedModel>>> {
    let filter = scope.filter(&data.records);
    let models: BTreeSet<&str> = data
        .records
        .iter()
        .filter(|r| {
            filter.start.is_none_or(|s| r.timestamp >= s)
                && filter.end.is_none_or(|e| r.timestamp <= e)
        })
        .map(|r| r.model.as_str())
        .collect();
    let priced: Vec<PricedModel> = models
        .into_iter()
        .map(|model| PricedModel {
            model: model.to_owned(),
            price: data.prices.lookup(model).cloned(),
            cheaper_alternative: data.prices.cheaper_alternative(model).cloned(),
        })
        .collect();
    let known = priced.iter().filter(|p| p.price.is_some()).count();
    let with_alt = priced
        .iter()
        .filter(|p| p.cheaper_alternative.is_some())
        .count();
    let summary = format!(
        "{} model(s) in use, {known} in the price table, {with_alt} with a cheaper same-provider alternative",
        priced.len()
    );
    Ok(ToolOutput {
        value: priced,
        summary,
    })
}
