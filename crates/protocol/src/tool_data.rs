//! [`ToolData`]: a tool result's structured `data`, held as JSON text that many events share.
//!
//! A memoized tool result goes into the `tool_completed` of every run that reuses it. Held as a
//! `serde_json::Value`, each of those events deep-copied the result and wrote it out as text
//! again; held as shared text, an event takes a reference and its frame copies the text once.
//! On the wire nothing changes: `data` is the same JSON value.
//!
//! This module must not interpret the data; it only carries it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// A tool's structured result as JSON text; cloning shares the text.
#[derive(Clone)]
pub struct ToolData(Arc<RawValue>);

impl ToolData {
    /// `null`: a failed tool's data.
    pub fn null() -> ToolData {
        ToolData::from(&Value::Null)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The data as a JSON value (a copy), for code that reads fields.
    pub fn to_value(&self) -> Value {
        // Our own serializer's output, so it always parses.
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl From<&Value> for ToolData {
    fn from(value: &Value) -> ToolData {
        // Writing a `Value` out cannot fail: its keys are strings and its numbers finite.
        ToolData(Arc::from(
            serde_json::value::to_raw_value(value).unwrap_or_default(),
        ))
    }
}

impl From<Value> for ToolData {
    fn from(value: Value) -> ToolData {
        ToolData::from(&value)
    }
}

impl PartialEq for ToolData {
    /// Equal when the texts are: both come from serde_json's compact writer, so equal values
    /// have equal texts.
    fn eq(&self, other: &ToolData) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for ToolData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for ToolData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ToolData {
    /// Read through a `Value`: inside a tagged, flattened event serde buffers the fields, and
    /// raw JSON text cannot be taken from that buffer.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ToolData, D::Error> {
        Value::deserialize(deserializer).map(ToolData::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_is_written_as_the_json_it_holds_and_read_back_equal() {
        let data = ToolData::from(json!({"models": [{"name": "gpt-4o", "cost_usd": 12.5}]}));
        let text = serde_json::to_string(&json!({"data": &data})).unwrap();
        assert_eq!(
            text,
            r#"{"data":{"models":[{"cost_usd":12.5,"name":"gpt-4o"}]}}"#
        );
        let back: ToolData = serde_json::from_str(data.get()).unwrap();
        assert_eq!(back, data);
        assert_eq!(back.to_value()["models"][0]["name"], "gpt-4o");
    }

    #[test]
    fn clones_share_the_text() {
        let data = ToolData::from(json!([1, 2, 3]));
        let copy = data.clone();
        assert!(std::ptr::eq(data.get(), copy.get()));
        assert_eq!(ToolData::null().get(), "null");
    }
}
