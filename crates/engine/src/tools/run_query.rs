//! `run_query`: answers a lookup — the typed query's metric over its filters and period, in its
//! shape (one figure, a breakdown, a ranking, a comparison, a trend) — with the rows that support
//! it and, when the selection holds nothing, what the same question holds without each filter (so
//! the answer can say where the usage is instead of showing $0).
//!
//! The maths is `analytics::query::evaluate`; this tool chooses the supporting evaluations and
//! must not compute a figure itself.

use super::ToolOutput;
use crate::findings::{Lookup, Relaxed, Support};
use crate::stop::RunResult;
use crate::tenant::TenantData;
use agentwire_analytics::query::{
    Comparison, Condition, Dimension, GroupBy, Order, QueryResult, QuerySpec, Shape,
    evaluate_cancellable,
};
use agentwire_analytics::{Cancel, Cancelled};

/// The dimension whose rows best support a single figure: the one a filter names several values
/// of ("Claude" → its models), else the first of model, feature, team that no filter fixes.
pub fn support_dimension(spec: &QuerySpec) -> Option<Dimension> {
    if let Some(c) = spec.conditions.iter().find(|c| c.values.len() > 1) {
        return Some(c.dimension);
    }
    [Dimension::Model, Dimension::Feature, Dimension::Team]
        .into_iter()
        .find(|d| !spec.conditions.iter().any(|c| c.dimension == *d))
}

pub fn compute(
    data: &TenantData,
    spec: &QuerySpec,
    cancel: &Cancel,
) -> RunResult<ToolOutput<Lookup>> {
    let (records, prices) = (&data.records, &data.prices);
    let result = evaluate_cancellable(records, prices, spec, cancel)?;
    let support = support_for(data, spec, cancel)?;
    let empty = result.records == 0
        && result.previous.as_ref().is_none_or(|p| p.requests == 0)
        && result.rows.iter().all(|r| r.requests == 0);
    let without = if empty {
        relaxed(data, spec, cancel)?
    } else {
        Vec::new()
    };
    let summary = summary(spec, &result);
    Ok(ToolOutput {
        value: Lookup {
            spec: spec.clone(),
            result,
            support,
            without,
        },
        summary,
    })
}

/// The rows beside the answer: for a figure or a comparison of periods, a breakdown by the
/// supporting dimension (with the other period's values); for a ranking, every group in order.
fn support_for(
    data: &TenantData,
    spec: &QuerySpec,
    cancel: &Cancel,
) -> Result<Option<Support>, Cancelled> {
    let (records, prices) = (&data.records, &data.prices);
    let with_shape = |shape: Shape| QuerySpec {
        shape,
        ..spec.clone()
    };
    let evaluate = |spec: &QuerySpec| evaluate_cancellable(records, prices, spec, cancel);
    Ok(match &spec.shape {
        Shape::Figure => {
            let Some(dimension) = support_dimension(spec) else {
                return Ok(None);
            };
            let by = GroupBy::Dimension(dimension);
            let out = evaluate(&with_shape(Shape::Breakdown { by }))?;
            Some(Support { by, rows: out.rows })
        }
        Shape::Compare {
            against: Comparison::Period(other),
            by: None,
        } => {
            let Some(dimension) = support_dimension(spec) else {
                return Ok(None);
            };
            let by = GroupBy::Dimension(dimension);
            let out = evaluate(&with_shape(Shape::Compare {
                against: Comparison::Period(*other),
                by: Some(by),
            }))?;
            Some(Support { by, rows: out.rows })
        }
        Shape::Ranking { by, order, .. } => {
            let out = evaluate(&with_shape(Shape::Ranking {
                by: *by,
                order: *order,
                limit: u32::MAX,
            }))?;
            Some(Support {
                by: *by,
                rows: out.rows,
            })
        }
        _ => None,
    })
}

/// For an empty selection: the same question without each filter, broken down by the dropped
/// filter's dimension (the search team's spend on every model, when it has none on Claude).
fn relaxed(
    data: &TenantData,
    spec: &QuerySpec,
    cancel: &Cancel,
) -> Result<Vec<Relaxed>, Cancelled> {
    spec.conditions
        .iter()
        .enumerate()
        .map(|(i, dropped)| {
            let mut conditions: Vec<Condition> = spec.conditions.clone();
            conditions.remove(i);
            let relaxed = QuerySpec {
                metric: spec.metric,
                conditions: conditions.clone(),
                period: spec.period,
                shape: Shape::Ranking {
                    by: GroupBy::Dimension(dropped.dimension),
                    order: Order::Most,
                    limit: 3,
                },
                share_of: Vec::new(),
            };
            Ok(Relaxed {
                dropped: dropped.clone(),
                kept: conditions,
                result: evaluate_cancellable(&data.records, &data.prices, &relaxed, cancel)?,
            })
        })
        .collect()
}

fn summary(spec: &QuerySpec, out: &QueryResult) -> String {
    let mut text = format!(
        "{} over {}: {} record(s), {} row(s)",
        spec.metric.label(),
        spec.period,
        out.records,
        out.rows.len()
    );
    if let Some(v) = out.value {
        text.push_str(&format!(
            "; value {}",
            crate::report::figure(spec.metric, v)
        ));
    }
    if let Some(p) = &out.previous
        && let Some(v) = p.value
    {
        text.push_str(&format!(
            "; {} in {}",
            crate::report::figure(spec.metric, v),
            p.period
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_analytics::query::{Metric, Period};
    use chrono::NaiveDate;

    fn october() -> Period {
        Period::new(
            NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
        )
    }

    #[test]
    fn an_empty_selection_says_where_the_usage_is() {
        let data = crate::tools::test_support::demo_tenant();
        let spec = QuerySpec {
            metric: Metric::Spend,
            conditions: vec![
                Condition::new(Dimension::Model, vec!["claude-sonnet-4".into()]),
                Condition::new(Dimension::Team, vec!["no-such-team".into()]),
            ],
            period: october(),
            shape: Shape::Figure,
            share_of: Vec::new(),
        };
        let out = compute(&data, &spec, &Cancel::new()).unwrap().value;
        assert_eq!(out.result.records, 0);
        assert_eq!(out.without.len(), 2);
        // Without the team filter, claude-sonnet-4 has usage; its teams are listed.
        assert!(!out.without[1].result.rows.is_empty());
    }

    #[test]
    fn a_figure_over_a_family_is_split_by_its_members() {
        let data = crate::tools::test_support::demo_tenant();
        let models: Vec<String> = data
            .vocab
            .models()
            .iter()
            .take(2)
            .map(|m| m.name.clone())
            .collect();
        let spec = QuerySpec {
            metric: Metric::Spend,
            conditions: vec![Condition::new(Dimension::Model, models)],
            period: october(),
            shape: Shape::Figure,
            share_of: Vec::new(),
        };
        let out = compute(&data, &spec, &Cancel::new()).unwrap().value;
        let support = out.support.unwrap();
        assert_eq!(support.by, GroupBy::Dimension(Dimension::Model));
        let sum: f64 = support.rows.iter().filter_map(|r| r.value).sum();
        assert!((sum - out.result.value.unwrap()).abs() < 1e-6);
    }
}
