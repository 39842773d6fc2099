//! Public LLM serving traces: token counts per request without a model, priced with the model the
//! caller names.
//!
//! - Azure LLM inference trace (Splitwise): CSV `TIMESTAMP,ContextTokens,GeneratedTokens`, one
//!   request per row, timestamps in UTC.
//! - Mooncake trace: JSON lines of `timestamp` (milliseconds since the trace began), `input_length`,
//!   `output_length` and `hash_ids`, one id per 512-token prompt block, where equal ids mean an
//!   equal prefix up to and including that block. The trace has no calendar date, so its clock is
//!   laid on the Unix epoch (a request at `timestamp: 5000` is 1970-01-01T00:00:05Z); the ids are
//!   kept in the record's tags as `hash_ids=1,2,3` for the prompt-caching analysis.
//!
//! This module must not estimate anything the trace does not record.

use std::io::{BufRead, Read};

use chrono::DateTime;
use serde_json::Value;

use super::generic::{json_lines, json_object, parse_timestamp, shown};
use super::{ImportError, Outcome, RowResult, Sink, csv_stream, header_names, norm};
use crate::record::UsageRecord;

/// Tokens per Mooncake prompt block (one hash id each).
pub const MOONCAKE_BLOCK_TOKENS: u64 = 512;

pub(super) fn azure<R: Read>(
    reader: R,
    sink: &mut Sink<'_>,
    model: &str,
    provider: &str,
) -> Result<(), ImportError> {
    csv_stream(reader, sink, |rec, line| {
        let keys: Vec<String> = header_names(rec, line)?.iter().map(|n| norm(n)).collect();
        let find = |k: &str| keys.iter().position(|x| x == k);
        let (Some(t), Some(input), Some(output)) = (
            find("timestamp"),
            find("contexttokens"),
            find("generatedtokens"),
        ) else {
            let missing = [
                ("TIMESTAMP", "timestamp"),
                ("ContextTokens", "contexttokens"),
                ("GeneratedTokens", "generatedtokens"),
            ]
            .iter()
            .filter(|(_, k)| find(k).is_none())
            .map(|(label, _)| (*label).to_string())
            .collect();
            return Err(ImportError::MissingColumns(missing));
        };
        let width = keys.len();
        Ok(move |rec: &csv::ByteRecord| -> RowResult {
            if rec.len() != width {
                return Err(format!(
                    "expected {width} fields as in the header, found {}",
                    rec.len()
                ));
            }
            let cell = |i: usize, name: &str| -> Result<&str, String> {
                let text = std::str::from_utf8(rec.get(i).unwrap_or_default())
                    .map_err(|_| format!("{name}: the cell is not valid UTF-8"))?
                    .trim();
                if text.is_empty() {
                    Err(format!("{name}: missing"))
                } else {
                    Ok(text)
                }
            };
            let ts = cell(t, "TIMESTAMP")?;
            let timestamp = parse_timestamp(ts)
                .ok_or_else(|| format!("TIMESTAMP: {} is not a recognised timestamp", shown(ts)))?;
            let count = |i: usize, name: &str| -> Result<u64, String> {
                let text = cell(i, name)?;
                text.parse::<u64>()
                    .map_err(|_| format!("{name}: {} is not a whole number", shown(text)))
            };
            let r = UsageRecord::new(
                timestamp,
                provider,
                model,
                count(input, "ContextTokens")?,
                count(output, "GeneratedTokens")?,
            );
            r.validate()?;
            Ok(Outcome::Record(r))
        })
    })
}

pub(super) fn mooncake<R: BufRead>(
    reader: R,
    sink: &mut Sink<'_>,
    model: &str,
    provider: &str,
) -> Result<(), ImportError> {
    json_lines(reader, sink, |bytes| {
        let object = json_object(bytes)?;
        let get = |key: &str| object.iter().find(|(k, _)| norm(k) == key).map(|(_, v)| v);
        let whole = |key: &str, label: &str| -> Result<u64, String> {
            match get(key) {
                None | Some(Value::Null) => Err(format!("{label}: missing")),
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| format!("{label}: {v} is not a whole number")),
            }
        };
        let millis = whole("timestamp", "timestamp")?;
        let timestamp = i64::try_from(millis)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| format!("timestamp: {millis} ms is out of range"))?;
        let mut r = UsageRecord::new(
            timestamp,
            provider,
            model,
            whole("inputlength", "input_length")?,
            whole("outputlength", "output_length")?,
        );
        match get("hashids") {
            None | Some(Value::Null) => {}
            Some(Value::Array(ids)) => {
                let mut text = String::from("hash_ids=");
                for (i, id) in ids.iter().enumerate() {
                    let id = id.as_u64().ok_or_else(|| {
                        format!("hash_ids: item {i} ({id}) is not a whole number")
                    })?;
                    if i > 0 {
                        text.push(',');
                    }
                    text.push_str(&id.to_string());
                }
                if !ids.is_empty() {
                    r.tags = Some(text);
                }
            }
            Some(other) => return Err(format!("hash_ids: expected an array, found {other}")),
        }
        r.validate()?;
        Ok(Outcome::Record(r))
    })
}

/// The hash ids a record carries in its tags (Mooncake traces), if any.
pub fn hash_ids(tags: Option<&str>) -> Option<impl Iterator<Item = u64> + '_> {
    let tags = tags?;
    let list = tags
        .split(';')
        .find_map(|t| t.trim().strip_prefix("hash_ids="))?;
    Some(list.split(',').filter_map(|s| s.trim().parse::<u64>().ok()))
}

#[cfg(test)]
mod tests {
    use super::super::{ImportError, ImportOptions, UsageFormat, import_usage_with};
    use super::*;
    use chrono::{TimeZone, Utc};

    fn with_model(
        text: &str,
        model: Option<&str>,
    ) -> Result<super::super::ImportReport, ImportError> {
        import_usage_with(
            text.as_bytes(),
            &ImportOptions {
                format: None,
                model: model.map(str::to_string),
            },
        )
    }

    #[test]
    fn azure_trace_exact_values() {
        let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                    2023-11-16 18:17:03.9799600,4808,10\n\
                    2023-11-16 18:17:04.0319600,x,8\n";
        let report = with_model(text, Some("gpt-4o")).unwrap();
        assert_eq!(report.format, UsageFormat::Azure);
        let r = &report.records[0];
        assert_eq!((r.input_tokens, r.output_tokens), (4808, 10));
        assert_eq!(
            (r.provider.as_str(), r.model.as_str()),
            ("openai", "gpt-4o")
        );
        assert_eq!(
            r.timestamp,
            Utc.with_ymd_and_hms(2023, 11, 16, 18, 17, 3).unwrap()
                + chrono::Duration::nanoseconds(979_960_000)
        );
        assert_eq!(report.errors[0].line, 3);
        assert_eq!(
            report.errors[0].message,
            "ContextTokens: \"x\" is not a whole number"
        );
        assert_eq!(
            with_model(text, None),
            Err(ImportError::ModelRequired(UsageFormat::Azure))
        );
        assert_eq!(
            with_model(text, Some("my-own-model")),
            Err(ImportError::UnknownProvider {
                model: "my-own-model".into()
            })
        );
    }

    #[test]
    fn mooncake_trace_exact_values() {
        let text = "{\"timestamp\": 1500, \"input_length\": 1100, \"output_length\": 6, \"hash_ids\": [0, 1, 2]}\n\
                    {\"timestamp\": 1600, \"input_length\": 10, \"output_length\": 6, \"hash_ids\": [0, \"a\"]}\n";
        let report = with_model(text, Some("claude-sonnet-4")).unwrap();
        assert_eq!(report.format, UsageFormat::Mooncake);
        let r = &report.records[0];
        assert_eq!(r.timestamp, DateTime::from_timestamp_millis(1500).unwrap());
        assert_eq!((r.input_tokens, r.output_tokens), (1100, 6));
        assert_eq!(r.provider, "anthropic");
        assert_eq!(r.tags.as_deref(), Some("hash_ids=0,1,2"));
        assert_eq!(
            hash_ids(r.tags.as_deref()).unwrap().collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(report.errors[0].line, 2);
        assert!(report.errors[0].message.starts_with("hash_ids: item 1"));
    }
}
