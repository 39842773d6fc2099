//! Text frames into JSON: the whole frame, or only its envelope, and either way every isolation
//! canary in any of its strings.
//!
//! `load` reads tens of thousands of frames a second on the cores it measures, and building a
//! [`Value`] of every nested row of a tool's data or a report (a supervisor run is ~80 KB)
//! was most of its CPU per run, yet it reads only a frame's top-level fields. So a session may
//! keep only the envelope ([`FrameDetail::Envelope`]). The isolation scan must still see every
//! string, so the canaries are found here, while parsing, in the parts kept and in the parts
//! skipped alike.
//!
//! What it must not do: accept a text that is not one JSON value, or miss a string, key or
//! value, at any depth.

use serde::Deserialize as _;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

use crate::isolation::find_canaries;

/// How much of each frame a [`super::Session`] keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FrameDetail {
    /// The whole frame.
    #[default]
    Whole,
    /// The frame's top-level fields with their values; an object or array nested inside one of
    /// those values is kept empty (`{}`, `[]`). Enough for the contract's field checks
    /// ([`crate::grammar`]), which read no deeper; canaries are still found everywhere.
    Envelope,
}

/// A parsed frame: its value (whole or envelope) and the canaries of all its strings.
#[derive(Debug)]
pub(super) struct Parsed {
    pub value: Value,
    pub canaries: Vec<String>,
}

/// Parses one text frame.
pub(super) fn parse(text: &str, detail: FrameDetail) -> Result<Parsed, serde_json::Error> {
    let mut canaries = Vec::new();
    let levels = match detail {
        // More than serde_json reads: it refuses JSON nested deeper than 128.
        FrameDetail::Whole => usize::MAX,
        // The frame's object, and the objects and arrays of its fields.
        FrameDetail::Envelope => 2,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Node {
        levels,
        found: &mut canaries,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(Parsed { value, canaries })
}

/// A value to build: `levels` is how many levels of containers may still be built from here;
/// at zero a container is only read through for its strings.
struct Node<'a> {
    levels: usize,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // As serde_json's own `Value` does: a float JSON cannot hold becomes null.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        find_canaries(v, self.found);
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        find_canaries(&v, self.found);
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Some(levels) = self.levels.checked_sub(1) else {
            while seq.next_element_seed(Skim(self.found))?.is_some() {}
            return Ok(Value::Array(Vec::new()));
        };
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Node {
            levels,
            found: self.found,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(levels) = self.levels.checked_sub(1) else {
            while map.next_key_seed(Skim(self.found))?.is_some() {
                map.next_value_seed(Skim(self.found))?;
            }
            return Ok(Value::Object(Map::new()));
        };
        let mut fields = Map::new();
        while let Some(key) = map.next_key_seed(Key(self.found))? {
            let value = map.next_value_seed(Node {
                levels,
                found: self.found,
            })?;
            // A repeated key keeps its last value, as serde_json's own `Value` does.
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// An object's key, kept.
struct Key<'a>(&'a mut Vec<String>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<String, D::Error> {
        let key = String::deserialize(de)?;
        find_canaries(&key, self.0);
        Ok(key)
    }
}

/// A value read through for its strings (keys included) and not kept.
struct Skim<'a>(&'a mut Vec<String>);

impl<'de> DeserializeSeed<'de> for Skim<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skim<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        find_canaries(v, self.0);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skim(self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skim(self.0))?.is_some() {
            map.next_value_seed(Skim(self.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// `value` cut as [`FrameDetail::Envelope`] keeps it: containers below the fields' own
    /// values emptied.
    fn envelope_of(value: &Value, levels: usize) -> Value {
        let emptied = |v: &Value| match v {
            Value::Array(_) if levels == 0 => Value::Array(Vec::new()),
            Value::Object(_) if levels == 0 => Value::Object(Map::new()),
            other => envelope_of(other, levels.saturating_sub(1)),
        };
        match value {
            Value::Array(items) => Value::Array(items.iter().map(emptied).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), emptied(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Every canary in `value`'s strings, keys included, as the isolation scan of a whole
    /// value finds them.
    fn canaries_of(value: &Value) -> Vec<String> {
        let mut found = Vec::new();
        crate::isolation::collect_canaries(value, &mut found);
        found
    }

    const CANARY: &str = "cnry0123456789abcdef01234567";
    const OTHER: &str = "cnryfedcba9876543210fedcba98";

    #[test]
    fn an_envelope_keeps_the_fields_and_finds_canaries_everywhere() {
        let frame = json!({
            "type": "agent_completed",
            "seq": 50,
            "plan": ["data", "reporting"],
            "report": {
                "total": 1.5,
                "rows": [{"name": format!("team {CANARY}")}],
                "nested": {"deeper": {"x": 1}},
            },
            "args": {},
            format!("k{OTHER}"): null,
        });
        let text = frame.to_string();
        let parsed = parse(&text, FrameDetail::Envelope).unwrap();
        assert_eq!(
            parsed.value,
            json!({
                "type": "agent_completed",
                "seq": 50,
                "plan": ["data", "reporting"],
                "report": {"total": 1.5, "rows": [], "nested": {}},
                "args": {},
                format!("k{OTHER}"): null,
            })
        );
        let mut found = parsed.canaries;
        found.sort();
        assert_eq!(found, [CANARY, OTHER]);
        // The whole frame is the frame itself.
        assert_eq!(parse(&text, FrameDetail::Whole).unwrap().value, frame);
    }

    #[test]
    fn an_escaped_canary_is_found_in_a_part_not_kept() {
        // `\u0063` is `c`: only a parser that decodes the string sees the canary.
        let text = format!(
            r#"{{"type":"x","data":{{"rows":[["\u0063{}"]]}}}}"#,
            &CANARY[1..]
        );
        let parsed = parse(&text, FrameDetail::Envelope).unwrap();
        assert_eq!(parsed.value, json!({"type": "x", "data": {"rows": []}}));
        assert_eq!(parsed.canaries, [CANARY]);
    }

    #[test]
    fn what_is_not_one_json_value_is_refused() {
        for text in ["", "{", r#"{"a":1} {"b":2}"#, r#"{"a":[1,}"#, "nul"] {
            for detail in [FrameDetail::Whole, FrameDetail::Envelope] {
                assert!(parse(text, detail).is_err(), "{text:?} {detail:?}");
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            "[a-z ]{0,6}",
            Just(CANARY.to_owned()),
            Just(format!("x\"{OTHER}\\n")),
        ]
        .boxed();
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            text.clone().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((text.clone(), inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whole is serde_json's own reading; the envelope is that reading cut below the
        /// fields' values; both find exactly the canaries of the whole value.
        #[test]
        fn whole_and_envelope_agree_with_serde_json(value in json_value()) {
            for text in [value.to_string(), serde_json::to_string_pretty(&value).unwrap()] {
                let reference: Value = serde_json::from_str(&text).unwrap();
                let mut expected = canaries_of(&reference);
                expected.sort();
                let whole = parse(&text, FrameDetail::Whole).unwrap();
                prop_assert_eq!(&whole.value, &reference);
                let envelope = parse(&text, FrameDetail::Envelope).unwrap();
                prop_assert_eq!(&envelope.value, &envelope_of(&reference, 1));
                for mut found in [whole.canaries, envelope.canaries] {
                    found.sort();
                    found.dedup();
                    let mut expected = expected.clone();
                    expected.dedup();
                    prop_assert_eq!(found, expected);
                }
            }
        }
    }
}
