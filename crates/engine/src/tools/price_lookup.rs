//! `price_lookup`: the list prices of the models in scope and their cheaper same-provider
//! alternatives, from the embedded price table (each price with its source and date).

use super::Scope;
use crate::context::{Step, ToolOutput};
use crate::tenant::TenantData;
use agentwire_analytics::ModelPrice;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Serialize)]
pub struct PricedModel {
    pub model: String,
    /// `None` when the model is not in the price table: its cost can only come from billed `cost_usd`.
    pub price: Option<ModelPrice>,
    pub cheaper_alternative: Option<ModelPrice>,
}

pub fn compute(data: &TenantData, scope: &Scope) -> Step<ToolOutput<Vec<PricedModel>>> {
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
