//! One row of a third-party export as flat `key → value` pairs, whatever its container.
//!
//! Keys are normalised (`norm`: lower case, no `_`, `-` or spaces) and nested objects are
//! flattened with dots (`usageDetails.input` → `usagedetails.input`); a CSV cell or JSON string
//! that holds a JSON object (LiteLLM's `metadata`) is flattened the same way. The getters convert
//! and validate one value and name its key in the error. This module must not know any dialect.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::generic::{
    from_unix, from_unix_int, parse_timestamp, parse_whole_text, shown, whole_from_f64,
};
use super::norm;

/// Nesting deeper than this is not flattened (no export needs it, and it bounds the work).
const MAX_DEPTH: usize = 4;

/// Cell text that means "no value" in exports.
fn is_null_text(s: &str) -> bool {
    s.is_empty() || s.eq_ignore_ascii_case("null") || s.eq_ignore_ascii_case("none")
}

#[derive(Debug, Default)]
pub(crate) struct Flat {
    entries: Vec<(String, Value)>,
}

impl Flat {
    pub fn from_object(object: &Map<String, Value>) -> Flat {
        let mut flat = Flat::default();
        for (k, v) in object {
            flat.push(norm(k), v.clone(), 0);
        }
        flat
    }

    /// A CSV row under normalised header `keys`.
    pub fn from_csv(keys: &[String], rec: &csv::ByteRecord) -> Result<Flat, String> {
        let mut flat = Flat::default();
        for (key, cell) in keys.iter().zip(rec.iter()) {
            let text = std::str::from_utf8(cell)
                .map_err(|_| format!("{key}: the cell is not valid UTF-8"))?
                .trim();
            if !is_null_text(text) {
                flat.push(key.clone(), Value::String(text.to_string()), 0);
            }
        }
        Ok(flat)
    }

    fn push(&mut self, key: String, value: Value, depth: usize) {
        match value {
            Value::Null => {}
            Value::String(s) if is_null_text(s.trim()) => {}
            Value::String(s)
                if (s.trim_start().starts_with('{') || s.trim_start().starts_with('['))
                    && depth < MAX_DEPTH =>
            {
                match serde_json::from_str::<Value>(&s) {
                    Ok(Value::Object(map)) => {
                        for (k, v) in map {
                            self.push(format!("{key}.{}", norm(&k)), v, depth + 1);
                        }
                    }
                    Ok(array @ Value::Array(_)) => self.entries.push((key, array)),
                    _ => self.entries.push((key, Value::String(s))),
                }
            }
            Value::Object(map) if depth < MAX_DEPTH => {
                for (k, v) in map {
                    self.push(format!("{key}.{}", norm(&k)), v, depth + 1);
                }
            }
            other => self.entries.push((key, other)),
        }
    }

    /// The first of `keys` present, with the key that matched.
    pub fn get<'s>(&'s self, keys: &[&'s str]) -> Option<(&'s str, &'s Value)> {
        keys.iter().find_map(|k| {
            self.entries
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| (*k, v))
        })
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn text(&self, keys: &[&str]) -> Option<String> {
        let (_, v) = self.get(keys)?;
        match v {
            Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        Value::String(s) => Some(s.trim().to_string()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .filter(|s| !s.is_empty())
                    .collect();
                Some(parts.join(";")).filter(|s| !s.is_empty())
            }
            _ => None,
        }
    }

    pub fn whole(&self, keys: &[&str]) -> Result<Option<u64>, String> {
        let Some((key, v)) = self.get(keys) else {
            return Ok(None);
        };
        let n = match v {
            Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(whole_from_f64)),
            Value::String(s) => parse_whole_text(s.trim()),
            _ => None,
        };
        n.map(Some)
            .ok_or_else(|| format!("{key}: {} is not a whole number", shown_value(v)))
    }

    /// A finite number; `signed` allows negatives (billing credits), otherwise it must be >= 0.
    pub fn number(&self, keys: &[&str], signed: bool) -> Result<Option<f64>, String> {
        let Some((key, v)) = self.get(keys) else {
            return Ok(None);
        };
        let x = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match x {
            Some(x) if x.is_finite() && (signed || x >= 0.0) => Ok(Some(x)),
            _ => Err(format!(
                "{key}: {} is not a {}number",
                shown_value(v),
                if signed { "" } else { "non-negative " }
            )),
        }
    }

    pub fn time(&self, keys: &[&str]) -> Result<Option<DateTime<Utc>>, String> {
        let Some((key, v)) = self.get(keys) else {
            return Ok(None);
        };
        let t = match v {
            Value::String(s) => parse_timestamp(s),
            Value::Number(n) => match n.as_u64() {
                Some(i) => from_unix_int(i),
                None => n.as_f64().and_then(from_unix),
            },
            _ => None,
        };
        t.map(Some).ok_or_else(|| {
            format!(
                "{key}: {} is not a recognised timestamp (use RFC 3339 or YYYY-MM-DD HH:MM:SS in UTC)",
                shown_value(v)
            )
        })
    }

    pub fn boolean(&self, keys: &[&str]) -> Option<bool> {
        let (_, v) = self.get(keys)?;
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => n.as_f64().map(|x| x != 0.0),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "hit" => Some(true),
                "false" | "0" | "no" | "miss" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

fn shown_value(v: &Value) -> String {
    match v {
        Value::String(s) => shown(s),
        other => {
            let text = other.to_string();
            if text.chars().count() <= 60 {
                text
            } else {
                format!("{}…", text.chars().take(60).collect::<String>())
            }
        }
    }
}

/// Milliseconds from `start` to `end`, when both are known and in order.
pub(crate) fn millis_between(start: DateTime<Utc>, end: Option<DateTime<Utc>>) -> Option<f64> {
    let end = end?;
    let d = end.signed_duration_since(start);
    let ms = d.num_microseconds()? as f64 / 1000.0;
    (ms >= 0.0).then_some(ms)
}
