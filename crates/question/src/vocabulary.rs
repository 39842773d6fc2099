//! The tenant's own names: which models (with their providers), teams, features, projects, users
//! and statuses occur in its records, over which days, and which models the price table knows
//! (the targets a what-if may move traffic to).
//!
//! Built once per data set (the engine can keep it with the tenant's data); the parser only reads
//! it. Values are ordered by spend, largest first (ties by name), so "the biggest team" is the
//! first one and examples use names that matter to the tenant.

use std::collections::HashMap;

use agentwire_analytics::query::{Dimension, Period};
use agentwire_analytics::{PriceTable, UsageRecord};
use chrono::NaiveDate;

use crate::models::{ModelName, ModelSig};
use crate::text::singular;

/// One value of a dimension, split into words for matching.
#[derive(Debug, Clone)]
pub(crate) struct NameEntry {
    pub dimension: Dimension,
    pub value: String,
    /// Lower-case singular words (`doc-summaries` → `doc`, `summary`).
    pub words: Vec<String>,
    /// The words run together (`docsummary`), for "docsummaries" or "knowledgebase".
    pub compact: String,
    /// Whether its dimension is small enough to match up to a typo ([`FUZZY_LIMIT`]).
    pub fuzzy: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    values: HashMap<Dimension, Vec<String>>,
    models: Vec<ModelName>,
    priced: Vec<ModelName>,
    span: Option<Period>,
    pub(crate) names: Vec<NameEntry>,
    pub(crate) model_sigs: Vec<ModelSig>,
    pub(crate) priced_sigs: Vec<ModelSig>,
}

/// Dimensions with more values than this are matched exactly only (a tenant may have thousands
/// of users; fuzzy matching them all would cost more than the parse budget).
pub(crate) const FUZZY_LIMIT: usize = 200;

impl Vocabulary {
    /// The names in the records (ordered by their spend at the table's prices) and the price
    /// table's models.
    pub fn from_records(records: &[UsageRecord], prices: &PriceTable) -> Vocabulary {
        let mut spend: HashMap<(Dimension, String), f64> = HashMap::new();
        let mut providers: HashMap<String, String> = HashMap::new();
        let mut span: Option<Period> = None;
        for r in records {
            let cost = prices.cost_usd(r);
            for d in Dimension::ALL {
                if let Some(v) = d.value(r)
                    && !v.trim().is_empty()
                {
                    *spend.entry((d, v.to_string())).or_default() += cost;
                }
            }
            providers
                .entry(r.model.clone())
                .or_insert_with(|| r.provider.clone());
            let day = r.timestamp.date_naive();
            span = Some(match span {
                None => Period::new(day, day),
                Some(p) => Period::new(p.first.min(day), p.last.max(day)),
            });
        }
        let mut values: HashMap<Dimension, Vec<(String, f64)>> = HashMap::new();
        for ((d, v), cost) in spend {
            values.entry(d).or_default().push((v, cost));
        }
        let mut ordered: HashMap<Dimension, Vec<String>> = HashMap::new();
        for (d, mut list) in values {
            list.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ordered.insert(d, list.into_iter().map(|(v, _)| v).collect());
        }
        let models = ordered
            .get(&Dimension::Model)
            .map(|ms| {
                ms.iter()
                    .map(|m| ModelName {
                        name: m.clone(),
                        provider: providers.get(m).cloned().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let priced = prices
            .models()
            .map(|p| ModelName {
                name: p.model.clone(),
                provider: p.provider.clone(),
            })
            .collect();
        Vocabulary::build(ordered, models, priced, span)
    }

    /// A vocabulary from explicit lists (for tests and callers that already know the names).
    pub fn from_lists(
        lists: &[(Dimension, &[&str])],
        models: &[(&str, &str)],
        priced: &[(&str, &str)],
        span: Option<(NaiveDate, NaiveDate)>,
    ) -> Vocabulary {
        let mut values: HashMap<Dimension, Vec<String>> = HashMap::new();
        for (d, vs) in lists {
            values
                .entry(*d)
                .or_default()
                .extend(vs.iter().map(|v| v.to_string()));
        }
        let to_names = |ms: &[(&str, &str)]| -> Vec<ModelName> {
            ms.iter()
                .map(|(m, p)| ModelName {
                    name: m.to_string(),
                    provider: p.to_string(),
                })
                .collect()
        };
        let models = to_names(models);
        values.insert(
            Dimension::Model,
            models.iter().map(|m| m.name.clone()).collect(),
        );
        let mut providers: Vec<String> = Vec::new();
        for m in &models {
            if !providers.contains(&m.provider) {
                providers.push(m.provider.clone());
            }
        }
        values.entry(Dimension::Provider).or_insert(providers);
        Vocabulary::build(
            values,
            models,
            to_names(priced),
            span.map(|(a, b)| Period::new(a, b)),
        )
    }

    fn build(
        values: HashMap<Dimension, Vec<String>>,
        models: Vec<ModelName>,
        priced: Vec<ModelName>,
        span: Option<Period>,
    ) -> Vocabulary {
        let mut names = Vec::new();
        for d in Dimension::ALL {
            // Models are matched by their own reader (families, versions).
            if d == Dimension::Model {
                continue;
            }
            let of_d = values.get(&d).map(Vec::as_slice).unwrap_or_default();
            let fuzzy = of_d.len() <= FUZZY_LIMIT;
            for v in of_d {
                let words: Vec<String> = v
                    .to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(singular)
                    .collect();
                if words.is_empty() {
                    continue;
                }
                let compact = words.concat();
                names.push(NameEntry {
                    dimension: d,
                    value: v.clone(),
                    words,
                    compact,
                    fuzzy,
                });
            }
        }
        let model_sigs = models.iter().map(ModelSig::new).collect();
        let priced_sigs = priced.iter().map(ModelSig::new).collect();
        Vocabulary {
            values,
            models,
            priced,
            span,
            names,
            model_sigs,
            priced_sigs,
        }
    }

    /// The values of a dimension, largest spend first.
    pub fn values(&self, d: Dimension) -> &[String] {
        self.values.get(&d).map(Vec::as_slice).unwrap_or_default()
    }

    /// The models in the data with their providers, largest spend first.
    pub fn models(&self) -> &[ModelName] {
        &self.models
    }

    /// The models the price table knows (what-if targets).
    pub fn priced_models(&self) -> &[ModelName] {
        &self.priced
    }

    /// The first and last day of the data.
    pub fn span(&self) -> Option<Period> {
        self.span
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}
