//! What each frame must carry: a `type` and a millisecond UTC `timestamp` on every frame (3.1,
//! 3.2), the common fields of run events (3.3), and the fields of each event type (5.6).
//!
//! What it must not do: look at more than one frame at a time; how frames relate is `sequence`.

use super::{Violation, excerpt, rules, seq_of, type_of};
use chrono::DateTime;
use serde_json::{Map, Value};

/// The section 3 checks that apply to any server frame, run event or not: a string `type`, and a
/// `timestamp` that is RFC 3339, UTC, with millisecond precision.
pub fn check_frame(frame: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let seq = seq_of(frame);
    let Some(obj) = frame.as_object() else {
        out.push(Violation::new(
            rules::TYPE_AND_TIMESTAMP,
            None,
            format!("frame is not a JSON object: {}", excerpt(frame)),
        ));
        return out;
    };
    match obj.get("type") {
        Some(Value::String(kind)) if !kind.is_empty() => {}
        Some(other) => out.push(Violation::new(
            rules::TYPE_AND_TIMESTAMP,
            seq,
            format!("`type` must be a non-empty string, got {}", excerpt(other)),
        )),
        None => out.push(Violation::new(
            rules::TYPE_AND_TIMESTAMP,
            seq,
            "frame has no `type`",
        )),
    }
    match obj.get("timestamp") {
        Some(Value::String(text)) => out.extend(check_timestamp(text, seq)),
        Some(other) => out.push(Violation::new(
            rules::TYPE_AND_TIMESTAMP,
            seq,
            format!(
                "`timestamp` must be an RFC 3339 string, got {}",
                excerpt(other)
            ),
        )),
        None => out.push(Violation::new(
            rules::TYPE_AND_TIMESTAMP,
            seq,
            format!("{} frame has no `timestamp`", type_of(frame)),
        )),
    }
    out
}

fn check_timestamp(text: &str, seq: Option<u64>) -> Option<Violation> {
    let parsed = match DateTime::parse_from_rfc3339(text) {
        Ok(parsed) => parsed,
        Err(err) => {
            return Some(Violation::new(
                rules::TYPE_AND_TIMESTAMP,
                seq,
                format!("`timestamp` \"{text}\" is not RFC 3339: {err}"),
            ));
        }
    };
    if parsed.offset().local_minus_utc() != 0 {
        return Some(Violation::new(
            rules::TYPE_AND_TIMESTAMP,
            seq,
            format!("`timestamp` \"{text}\" is not in UTC"),
        ));
    }
    // RFC 3339 is `date T time[.frac] offset`; the fraction sits between the seconds and the offset.
    let fraction_digits = text
        .split_once('.')
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).count())
        .unwrap_or(0);
    if fraction_digits != 3 {
        return Some(Violation::new(
            rules::TIMESTAMP_MILLIS,
            seq,
            format!(
                "`timestamp` \"{text}\" has {fraction_digits} fractional digits; the contract is milliseconds (3)"
            ),
        ));
    }
    None
}

pub(super) fn check_common_fields(event: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let seq = seq_of(event);
    let kind = type_of(event);
    for field in ["run_id", "thread_id", "agent"] {
        match event.get(field) {
            Some(Value::String(text)) if !text.is_empty() => {}
            Some(other) => out.push(Violation::new(
                rules::RUN_EVENT_FIELDS,
                seq,
                format!(
                    "{kind}: `{field}` must be a non-empty string, got {}",
                    excerpt(other)
                ),
            )),
            None => out.push(Violation::new(
                rules::RUN_EVENT_FIELDS,
                seq,
                format!("{kind}: missing `{field}`"),
            )),
        }
    }
    match event.get("seq") {
        Some(value) if value.as_u64().is_some() => {}
        Some(other) => out.push(Violation::new(
            rules::RUN_EVENT_FIELDS,
            None,
            format!(
                "{kind}: `seq` must be a non-negative integer, got {}",
                excerpt(other)
            ),
        )),
        None => out.push(Violation::new(
            rules::RUN_EVENT_FIELDS,
            None,
            format!("{kind}: missing `seq`"),
        )),
    }
    out
}

/// What a field of the section 5 table must hold.
#[derive(Clone, Copy)]
enum Want {
    /// A string, possibly empty.
    Str,
    /// A string with at least one non-whitespace character.
    NonEmptyStr,
    /// Any JSON value, but the key must be present.
    Present,
    Object,
    Bool,
    /// A non-negative integer.
    UInt,
    /// A number in 0..=100.
    Percent,
    /// An array of strings.
    StrList,
    /// `ok` or `error`.
    ToolStatus,
}

impl Want {
    fn describe(self) -> &'static str {
        match self {
            Self::Str => "a string",
            Self::NonEmptyStr => "a non-empty string",
            Self::Present => "present",
            Self::Object => "a JSON object",
            Self::Bool => "a boolean",
            Self::UInt => "a non-negative integer",
            Self::Percent => "a number from 0 to 100",
            Self::StrList => "an array of strings",
            Self::ToolStatus => "\"ok\" or \"error\"",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            Self::Str => value.is_string(),
            Self::NonEmptyStr => value.as_str().is_some_and(|s| !s.trim().is_empty()),
            Self::Present => true,
            Self::Object => value.is_object(),
            Self::Bool => value.is_boolean(),
            Self::UInt => value.as_u64().is_some(),
            Self::Percent => value.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p)),
            Self::StrList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            Self::ToolStatus => matches!(value.as_str(), Some("ok" | "error")),
        }
    }
}

/// The fields beyond the common ones that each event type must carry (PROTOCOL.md section 5).
fn required_fields(kind: &str) -> &'static [(&'static str, Want)] {
    use Want::*;
    match kind {
        "agent_started" => &[("user_request", Str), ("plan", StrList)],
        "agent_thinking" => &[("message", NonEmptyStr)],
        "tool_executing" => &[
            ("tool", NonEmptyStr),
            ("tool_call_id", NonEmptyStr),
            ("args", Present),
        ],
        "tool_completed" => &[
            ("tool", NonEmptyStr),
            ("tool_call_id", NonEmptyStr),
            ("status", ToolStatus),
            ("result", Str),
            ("data", Present),
            ("duration_ms", UInt),
        ],
        "agent_handoff" => &[
            ("from_agent", NonEmptyStr),
            ("to_agent", NonEmptyStr),
            ("reason", Str),
        ],
        "subagent_started" => &[("parent_agent", NonEmptyStr)],
        "subagent_completed" => &[("parent_agent", NonEmptyStr), ("summary", Str)],
        "progress" => &[("percent", Percent), ("message", Str)],
        "response_delta" => &[("delta", Str)],
        "agent_completed" => &[
            ("response", NonEmptyStr),
            ("report", Object),
            ("duration_ms", UInt),
        ],
        "agent_error" => &[
            ("error_code", NonEmptyStr),
            ("message", Str),
            ("retryable", Bool),
        ],
        "agent_cancelled" => &[("reason", Str)],
        _ => &[],
    }
}

pub(super) fn check_event_fields(event: &Value) -> Vec<Violation> {
    let kind = type_of(event);
    let seq = seq_of(event);
    let empty = Map::new();
    let obj = event.as_object().unwrap_or(&empty);
    required_fields(kind)
        .iter()
        .filter_map(|&(field, want)| match obj.get(field) {
            None => Some(Violation::new(
                rules::EVENT_FIELDS,
                seq,
                format!("{kind}: missing `{field}` (must be {})", want.describe()),
            )),
            Some(value) if !want.accepts(value) => Some(Violation::new(
                rules::EVENT_FIELDS,
                seq,
                format!(
                    "{kind}: `{field}` must be {}, got {}",
                    want.describe(),
                    excerpt(value)
                ),
            )),
            Some(_) => None,
        })
        .collect()
}
