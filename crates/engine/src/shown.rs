//! What a `tool_completed` event shows of a tool's result as `data`: the result as JSON, its
//! fractional numbers cut to the precision a person or a chart can use.
//!
//! Analyses compute in full `f64` precision (`6528.475232999998`, `0.2662299681584169`); written
//! out, those digits made up a third of a run's bytes, stored and sent with every run. `data`
//! keeps six significant digits and never fewer than two decimals (cents stay exact, shares and
//! per-token prices keep their figures). Whole numbers are untouched. The agents reason over
//! the full-precision values; only what is shown is cut.
//!
//! This module must not change the shape of the data (fields, order, types), only the digits.

use crate::report::ComposedReport;
use agentwire_protocol::ToolData;
use serde::Serialize;
use serde_json::{Number, Value, json};
use std::any::Any;

/// What a tool event shows as `data`: the tool's value, except for the composed answer, which
/// `agent_completed` carries in full right after; its tool event shows what was composed.
pub(crate) fn event_data<T: Serialize + 'static>(value: &T) -> ToolData {
    if let Some(answer) = (value as &dyn Any).downcast_ref::<ComposedReport>() {
        let sections: Vec<&str> = answer
            .response
            .lines()
            .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
            .collect();
        let keys: Vec<&String> = answer
            .report
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        return ToolData::from(json!({
            "sections": sections,
            "response_chars": answer.response.chars().count(),
            "report_keys": keys,
            "delivered_in": "agent_completed",
        }));
    }
    let mut shown = serde_json::to_value(value).unwrap_or(Value::Null);
    compact_numbers(&mut shown);
    ToolData::from(shown)
}

/// Cuts every fractional number in `value` to six significant digits, keeping at least two
/// decimals.
fn compact_numbers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(cut) = number
                .as_f64()
                .filter(|_| number.is_f64())
                .and_then(compact)
            {
                *number = cut;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(compact_numbers),
        Value::Object(fields) => fields.values_mut().for_each(compact_numbers),
        Value::Null | Value::Bool(_) | Value::String(_) => {}
    }
}

/// `x` to six significant digits, or to two decimals when that is finer (|x| ≥ 10,000). `None`
/// when there is nothing to cut.
fn compact(x: f64) -> Option<Number> {
    if !x.is_finite() || x.fract() == 0.0 {
        return None;
    }
    // Formatting and reading back gives the double nearest the short decimal, which serde_json
    // then writes as that short decimal.
    let text = if x.abs() >= 10_000.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.5e}")
    };
    text.parse::<f64>().ok().and_then(Number::from_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(value: Value) -> String {
        event_data(&value).get().to_owned()
    }

    #[test]
    fn fractions_keep_six_significant_digits_and_cents() {
        assert_eq!(
            shown(json!({
                "cost_usd": 6528.475232999998,
                "share": 0.2662299681584169,
                "change_pct": 204.50202336100438,
                "peak": 1615846.8666666667,
                "mae": 23362.456946174552,
                "price": 1.2499999999999999e-6,
                "small": 0.000123456789,
                "negative": -42.123456789,
            })),
            concat!(
                r#"{"change_pct":204.502,"cost_usd":6528.48,"mae":23362.46,"negative":-42.1235,"#,
                r#""peak":1615846.87,"price":1.25e-6,"share":0.26623,"small":0.000123457}"#
            )
        );
    }

    #[test]
    fn whole_numbers_strings_and_shape_are_untouched() {
        let value = json!({
            "requests": 3440448u64,
            "tokens": 1.0e12,
            "delta": -7,
            "exact": 0.5,
            "label": "0.2662299681584169",
            "rows": [[1.5, null, true], {"x": 2.0}],
        });
        assert_eq!(shown(value.clone()), value.to_string());
    }

    #[test]
    fn cut_numbers_stay_within_half_a_unit_of_their_last_digit() {
        // Values across magnitudes, from a fixed generator: the cut is never off by more than
        // the rounding of the digit kept, and cutting again changes nothing.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mantissa = (state >> 11) as f64 / (1u64 << 53) as f64;
            let exponent = i32::try_from(state % 24).unwrap() - 12;
            let x = (mantissa + 0.1) * 10f64.powi(exponent);
            let Some(cut) = compact(x).and_then(|n| n.as_f64()) else {
                continue;
            };
            let allowed = if x.abs() >= 10_000.0 {
                0.005
            } else {
                x.abs() * 5e-6
            };
            assert!((cut - x).abs() <= allowed * 1.000_001, "{x} -> {cut}");
            assert_eq!(compact(cut).and_then(|n| n.as_f64()).unwrap_or(cut), cut);
        }
    }
}
