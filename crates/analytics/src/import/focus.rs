//! FOCUS 1.x cloud billing CSV (FinOps Open Cost and Usage Specification) into billing rows.
//!
//! Costs are signed: credits and corrections are negative in FOCUS, and they are kept so that the
//! totals match the invoice. `NULL` (the spec's null string) and empty cells are absent values.
//! `Tags` is a JSON object and is kept as `k=v;k2=v2` text. The rows are cloud billing, not LLM
//! usage, so they have their own type; `crate::billing` turns them into a cost series and finds
//! idle commitments and cost drivers. This module must not aggregate.

use std::io::Read;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::flat::Flat;
use super::{ImportError, Outcome, RowError, csv_stream, header_names, norm};

/// One FOCUS charge row (the columns the analyses use).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FocusRow {
    pub charge_period_start: DateTime<Utc>,
    pub charge_period_end: Option<DateTime<Utc>>,
    /// What the invoice charges for the row; negative for credits.
    pub billed_cost: f64,
    /// Amortised cost (commitment purchases spread over their use); negative for credits.
    pub effective_cost: f64,
    pub list_cost: Option<f64>,
    pub billing_currency: Option<String>,
    pub provider_name: Option<String>,
    pub service_name: Option<String>,
    pub service_category: Option<String>,
    pub sub_account_id: Option<String>,
    pub sub_account_name: Option<String>,
    /// `Usage`, `Purchase`, `Tax`, `Credit` or `Adjustment`.
    pub charge_category: Option<String>,
    pub pricing_category: Option<String>,
    pub commitment_discount_id: Option<String>,
    pub commitment_discount_name: Option<String>,
    /// `Used` or `Unused` (FOCUS 1.0+).
    pub commitment_discount_status: Option<String>,
    pub commitment_discount_type: Option<String>,
    pub region_id: Option<String>,
    pub resource_id: Option<String>,
    pub tags: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FocusImport {
    pub rows: Vec<FocusRow>,
    pub errors: Vec<RowError>,
    pub rows_read: u64,
}

const REQUIRED: [(&str, &str); 3] = [
    ("ChargePeriodStart", "chargeperiodstart"),
    ("BilledCost", "billedcost"),
    ("EffectiveCost", "effectivecost"),
];

/// Reads a FOCUS CSV export.
///
/// # Errors
/// File-level problems: unreadable input, a header without `ChargePeriodStart`, `BilledCost`
/// and `EffectiveCost`.
pub fn import_focus<R: Read>(reader: R) -> Result<FocusImport, ImportError> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut rows_read = 0u64;
    let mut ignore = |_| {};
    let mut sink = super::Sink::new(&mut ignore, 0);
    let (rows_out, errors_out, read_out) = (&mut rows, &mut errors, &mut rows_read);
    csv_stream(reader, &mut sink, move |rec, line| {
        let keys: Vec<String> = header_names(rec, line)?.iter().map(|n| norm(n)).collect();
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|(_, k)| !keys.iter().any(|x| x == k))
            .map(|(label, _)| (*label).to_string())
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::MissingColumns(missing));
        }
        Ok(move |rec: &csv::ByteRecord| {
            let line = rec.position().map_or(0, |p| p.line());
            *read_out += 1;
            let parsed = if rec.len() == keys.len() {
                Flat::from_csv(&keys, rec).and_then(|f| focus_row(&f))
            } else {
                Err(format!(
                    "expected {} fields as in the header, found {}",
                    keys.len(),
                    rec.len()
                ))
            };
            match parsed {
                Ok(row) => rows_out.push(row),
                Err(message) => errors_out.push(RowError { line, message }),
            }
            Ok(Outcome::Skip(String::new()))
        })
    })?;
    Ok(FocusImport {
        rows,
        errors,
        rows_read,
    })
}

fn focus_row(f: &Flat) -> Result<FocusRow, String> {
    let tags = f.get(&["tags"]).map(|(_, v)| match v {
        serde_json::Value::String(s) => s.replace([';', '\n'], ","),
        other => other.to_string(),
    });
    // `Tags` holding a JSON object was flattened to `tags.<key>` entries; collect them back.
    let tags = tags.or_else(|| flattened_tags(f));
    Ok(FocusRow {
        charge_period_start: f
            .time(&["chargeperiodstart"])?
            .ok_or("ChargePeriodStart: missing")?,
        charge_period_end: f.time(&["chargeperiodend"])?,
        billed_cost: f
            .number(&["billedcost"], true)?
            .ok_or("BilledCost: missing")?,
        effective_cost: f
            .number(&["effectivecost"], true)?
            .ok_or("EffectiveCost: missing")?,
        list_cost: f.number(&["listcost"], true)?,
        billing_currency: f.text(&["billingcurrency"]),
        provider_name: f.text(&["providername", "provider"]),
        service_name: f.text(&["servicename"]),
        service_category: f.text(&["servicecategory"]),
        sub_account_id: f.text(&["subaccountid"]),
        sub_account_name: f.text(&["subaccountname"]),
        charge_category: f.text(&["chargecategory"]),
        pricing_category: f.text(&["pricingcategory"]),
        commitment_discount_id: f.text(&["commitmentdiscountid"]),
        commitment_discount_name: f.text(&["commitmentdiscountname"]),
        commitment_discount_status: f.text(&["commitmentdiscountstatus"]),
        commitment_discount_type: f.text(&["commitmentdiscounttype"]),
        region_id: f.text(&["regionid"]),
        resource_id: f.text(&["resourceid"]),
        tags,
    })
}

fn flattened_tags(f: &Flat) -> Option<String> {
    let parts: Vec<String> = f
        .entries()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("tags.")?;
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some(format!("{key}={}", value.replace([';', '\n'], ",")))
        })
        .collect();
    Some(parts.join(";")).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn focus_exact_values_nulls_and_credits() {
        let text = "\"BilledCost\",\"ChargeCategory\",\"ChargePeriodEnd\",\"ChargePeriodStart\",\"CommitmentDiscountId\",\"CommitmentDiscountStatus\",\"EffectiveCost\",\"ProviderName\",\"ServiceCategory\",\"ServiceName\",\"SubAccountId\",\"Tags\"\n\
            0.5,\"Usage\",\"2024-09-18 23:00:00\",\"2024-09-18 22:00:00\",NULL,NULL,0.4,\"AWS\",\"Compute\",\"Amazon Elastic Compute Cloud\",\"123\",\"{\"\"team\"\": \"\"search\"\", \"\"env\"\": \"\"prod\"\"}\"\n\
            -2.6137,\"Credit\",NULL,\"2024-09-24 03:00:00\",NULL,NULL,-3,\"AWS\",\"Compute\",\"Amazon Elastic Compute Cloud\",\"123\",NULL\n\
            1.0,\"Usage\",NULL,\"2024-09-24 03:00:00\",\"sp-1\",\"Unused\",abc,\"AWS\",\"Compute\",\"EC2\",\"123\",NULL\n";
        let f = import_focus(text.as_bytes()).unwrap();
        assert_eq!(f.rows_read, 3);
        assert_eq!(f.rows.len(), 2);
        let r = &f.rows[0];
        assert_eq!(
            r.charge_period_start,
            Utc.with_ymd_and_hms(2024, 9, 18, 22, 0, 0).unwrap()
        );
        assert_eq!((r.billed_cost, r.effective_cost), (0.5, 0.4));
        assert_eq!(r.commitment_discount_id, None);
        assert_eq!(r.service_category.as_deref(), Some("Compute"));
        assert_eq!(r.tags.as_deref(), Some("env=prod;team=search"));
        let credit = &f.rows[1];
        assert_eq!((credit.billed_cost, credit.effective_cost), (-2.6137, -3.0));
        assert_eq!(credit.charge_period_end, None);
        assert_eq!(f.errors[0].line, 4);
        assert!(f.errors[0].message.starts_with("effectivecost: \"abc\""));
        assert_eq!(
            import_focus("BilledCost,ServiceName\n".as_bytes()),
            Err(ImportError::MissingColumns(vec![
                "ChargePeriodStart".into(),
                "EffectiveCost".into()
            ]))
        );
    }
}
