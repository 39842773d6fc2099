//! The grammar of one run, judged on raw JSON frames (PROTOCOL.md sections 3 and 5).
//!
//! This module is the suite's reference reading of the contract: it takes the frames a deployment
//! actually sent, as [`serde_json::Value`]s, and lists every way they break the contract. It works on
//! raw JSON on purpose: deserializing into our own types first would make it blind to the very
//! deviations it exists to find (a missing field, a string where a number belongs), and it must judge
//! deployments other than ours.
//!
//! What it must not do: perform I/O, depend on anything but the frames it is given, stop at the first
//! problem (it reports them all), or ever pass a run it could not read. Rule ids ([`rules`]) are
//! stable strings numbered by PROTOCOL.md section; reports and tests key on them.

use agentwire_protocol::server::RUN_EVENT_TYPES;
use chrono::DateTime;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The stable rule ids, numbered by PROTOCOL.md section. Never renamed once published.
pub mod rules {
    /// Every frame has a string `type` and an RFC 3339 UTC `timestamp`.
    pub const TYPE_AND_TIMESTAMP: &str = "3.1 type and timestamp on every frame";
    /// Timestamps carry exactly millisecond precision (`2026-11-26T18:04:05.123Z`).
    pub const TIMESTAMP_MILLIS: &str = "3.2 timestamp has millisecond precision";
    /// Run events carry `run_id`, `thread_id`, `seq` and `agent`.
    pub const RUN_EVENT_FIELDS: &str = "3.3 run events carry run_id, thread_id, seq and agent";
    /// Exactly one `agent_started`, and it is the first event.
    pub const ONE_STARTED_FIRST: &str = "5.1 exactly one agent_started, first";
    /// Exactly one terminal event, and nothing after it.
    pub const ONE_TERMINAL_LAST: &str = "5.2 exactly one terminal event, last";
    /// `seq` starts at 1 and goes up by one per event.
    pub const SEQ_CONTIGUOUS: &str = "5.3 seq starts at 1 and is contiguous";
    /// Every `tool_executing` has its `tool_completed` before the terminal event, and vice versa.
    pub const TOOL_PAIRS: &str = "5.4 tool pairs are matched";
    /// A completed run shows agent_started, agent_thinking, a tool pair and agent_completed.
    pub const CRITICAL_EVENTS: &str = "5.5 completed run has the five critical events";
    /// The fields of each event type (the table of section 5).
    pub const EVENT_FIELDS: &str = "5.6 event fields";
    /// All events of a run share one `run_id` and one `thread_id`.
    pub const ONE_RUN: &str = "5.7 one run_id and one thread_id";
    /// Only run event types appear among a run's events.
    pub const RUN_EVENT_TYPES: &str = "5.8 only run event types in a run";

    /// A rule's section number and title: `("5.4", "tool pairs are matched")`.
    pub const fn split(rule: &'static str) -> (&'static str, &'static str) {
        let bytes = rule.as_bytes();
        let mut space = 0;
        while space < bytes.len() && bytes[space] != b' ' {
            space += 1;
        }
        let (number, rest) = bytes.split_at(space);
        let title = match rest.split_first() {
            Some((_, title)) => title,
            None => rest,
        };
        // Both halves end at an ASCII space or at the end, so they are whole UTF-8.
        match (std::str::from_utf8(number), std::str::from_utf8(title)) {
            (Ok(number), Ok(title)) => (number, title),
            _ => (rule, rule),
        }
    }

    /// Every rule, in section order.
    pub const ALL: [&str; 11] = [
        TYPE_AND_TIMESTAMP,
        TIMESTAMP_MILLIS,
        RUN_EVENT_FIELDS,
        ONE_STARTED_FIRST,
        ONE_TERMINAL_LAST,
        SEQ_CONTIGUOUS,
        TOOL_PAIRS,
        CRITICAL_EVENTS,
        EVENT_FIELDS,
        ONE_RUN,
        RUN_EVENT_TYPES,
    ];
}

/// The types that end a run.
pub const TERMINAL_TYPES: [&str; 3] = ["agent_completed", "agent_error", "agent_cancelled"];

/// The five events a user must see in a completed run.
pub const CRITICAL_TYPES: [&str; 5] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];

/// One way a run's frames break the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken: one of [`rules`].
    pub rule: &'static str,
    /// What exactly is wrong, naming the fields and values involved.
    pub detail: String,
    /// The `seq` of the offending event, when it has a readable one.
    pub seq: Option<u64>,
}

impl Violation {
    fn new(rule: &'static str, seq: Option<u64>, detail: impl Into<String>) -> Self {
        Self {
            rule,
            detail: detail.into(),
            seq,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "[{}] seq {}: {}", self.rule, seq, self.detail),
            None => write!(f, "[{}] {}", self.rule, self.detail),
        }
    }
}

/// Whether a frame's `type` ends a run.
pub fn is_terminal_type(kind: &str) -> bool {
    TERMINAL_TYPES.contains(&kind)
}

/// Whether a frame's `type` is a run event (section 5).
pub fn is_run_event_type(kind: &str) -> bool {
    RUN_EVENT_TYPES.contains(&kind)
}

/// The section 3 checks that apply to any server frame, run event or not: a string `type`, and a
/// `timestamp` that is RFC 3339, UTC, with millisecond precision.
pub fn check_frame(frame: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let seq = frame.get("seq").and_then(Value::as_u64);
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

/// Whether the five events a user needs to see are all present: `agent_started`, `agent_thinking`,
/// `tool_executing`, `tool_completed` and `agent_completed`.
pub fn critical_events_present(events: &[Value]) -> bool {
    CRITICAL_TYPES
        .iter()
        .all(|wanted| events.iter().any(|event| type_of(event) == *wanted))
}

/// Judges the frames of ONE run, in the order they were received, against PROTOCOL.md sections 3
/// and 5. Returns every violation found; an empty list means the run is valid.
pub fn check_run(events: &[Value]) -> Vec<Violation> {
    let mut out = Vec::new();
    // Run events only (frames of other types are reported under 5.8 and otherwise ignored), each
    // with its position among the run events.
    let mut run_events: Vec<&Value> = Vec::with_capacity(events.len());
    for frame in events {
        out.extend(check_frame(frame));
        let kind = type_of(frame);
        if is_run_event_type(kind) {
            run_events.push(frame);
        } else {
            out.push(Violation::new(
                rules::RUN_EVENT_TYPES,
                seq_of(frame),
                format!("a frame of type {kind} is among the run's events"),
            ));
        }
    }
    for event in &run_events {
        out.extend(check_common_fields(event));
        out.extend(check_event_fields(event));
    }
    out.extend(check_one_run(&run_events));
    out.extend(check_started(&run_events));
    out.extend(check_terminal(&run_events));
    out.extend(check_seq(&run_events));
    let pairs = check_tool_pairs(&run_events, &mut out);
    out.extend(check_critical(&run_events, pairs));
    out
}

/// The frame's `type` as text for messages and matching; `<no type>` when missing.
fn type_of(frame: &Value) -> &str {
    match frame.get("type") {
        Some(Value::String(kind)) => kind,
        _ => "<no type>",
    }
}

fn seq_of(frame: &Value) -> Option<u64> {
    frame.get("seq").and_then(Value::as_u64)
}

/// A short rendering of a value for violation details.
fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn check_common_fields(event: &Value) -> Vec<Violation> {
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

fn check_event_fields(event: &Value) -> Vec<Violation> {
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

fn check_one_run(events: &[&Value]) -> Vec<Violation> {
    let mut out = Vec::new();
    for field in ["run_id", "thread_id"] {
        let mut first: Option<&str> = None;
        for event in events {
            let Some(value) = event.get(field).and_then(Value::as_str) else {
                continue; // reported under 3.3
            };
            match first {
                None => first = Some(value),
                Some(expected) if expected != value => out.push(Violation::new(
                    rules::ONE_RUN,
                    seq_of(event),
                    format!(
                        "{}: `{field}` is \"{value}\" but the run's first event has \"{expected}\"",
                        type_of(event)
                    ),
                )),
                Some(_) => {}
            }
        }
    }
    out
}

fn check_started(events: &[&Value]) -> Vec<Violation> {
    let mut out = Vec::new();
    let started: Vec<&&Value> = events
        .iter()
        .filter(|e| type_of(e) == "agent_started")
        .collect();
    if started.is_empty() {
        out.push(Violation::new(
            rules::ONE_STARTED_FIRST,
            None,
            "the run has no agent_started",
        ));
    }
    for extra in started.iter().skip(1) {
        out.push(Violation::new(
            rules::ONE_STARTED_FIRST,
            seq_of(extra),
            "a second agent_started in the same run",
        ));
    }
    if let Some(first) = events.first()
        && type_of(first) != "agent_started"
        && !started.is_empty()
    {
        out.push(Violation::new(
            rules::ONE_STARTED_FIRST,
            seq_of(first),
            format!(
                "the run's first event is {}, not agent_started",
                type_of(first)
            ),
        ));
    }
    out
}

fn check_terminal(events: &[&Value]) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(first_terminal) = events.iter().position(|e| is_terminal_type(type_of(e))) else {
        out.push(Violation::new(
            rules::ONE_TERMINAL_LAST,
            None,
            "the run has no terminal event (agent_completed, agent_error or agent_cancelled)",
        ));
        return out;
    };
    let terminal = events[first_terminal];
    for event in &events[first_terminal + 1..] {
        let detail = if is_terminal_type(type_of(event)) {
            format!(
                "a second terminal event {} after {} (seq {})",
                type_of(event),
                type_of(terminal),
                display_seq(terminal)
            )
        } else {
            format!(
                "{} after the terminal {} (seq {})",
                type_of(event),
                type_of(terminal),
                display_seq(terminal)
            )
        };
        out.push(Violation::new(
            rules::ONE_TERMINAL_LAST,
            seq_of(event),
            detail,
        ));
    }
    out
}

fn display_seq(event: &Value) -> String {
    seq_of(event).map_or_else(|| "?".to_owned(), |seq| seq.to_string())
}

fn check_seq(events: &[&Value]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut previous: Option<u64> = None;
    for event in events {
        let Some(seq) = seq_of(event) else {
            continue; // reported under 3.3
        };
        match previous {
            None if seq != 1 => out.push(Violation::new(
                rules::SEQ_CONTIGUOUS,
                Some(seq),
                format!("the run's first event has seq {seq}, not 1"),
            )),
            Some(prev) if seq == prev => out.push(Violation::new(
                rules::SEQ_CONTIGUOUS,
                Some(seq),
                format!("seq {seq} repeated ({})", type_of(event)),
            )),
            Some(prev) if seq < prev => out.push(Violation::new(
                rules::SEQ_CONTIGUOUS,
                Some(seq),
                format!("seq goes back from {prev} to {seq}"),
            )),
            Some(prev) if seq != prev + 1 => out.push(Violation::new(
                rules::SEQ_CONTIGUOUS,
                Some(seq),
                format!(
                    "seq jumps from {prev} to {seq}: {} event(s) missing",
                    seq - prev - 1
                ),
            )),
            _ => {}
        }
        previous = Some(previous.map_or(seq, |prev| prev.max(seq)));
    }
    out
}

/// Checks tool pairs up to the first terminal event; returns the number of matched pairs.
fn check_tool_pairs(events: &[&Value], out: &mut Vec<Violation>) -> usize {
    // tool_call_id -> (tool, seq of its tool_executing)
    let mut open: BTreeMap<&str, (Option<&str>, Option<u64>)> = BTreeMap::new();
    let mut matched = 0;
    let mut terminal_seen = false;
    for event in events {
        let kind = type_of(event);
        let seq = seq_of(event);
        if is_terminal_type(kind) {
            terminal_seen = true;
            break;
        }
        let call_id = event.get("tool_call_id").and_then(Value::as_str);
        let tool = event.get("tool").and_then(Value::as_str);
        match (kind, call_id) {
            ("tool_executing", Some(id)) => {
                if let Some((_, first_seq)) = open.insert(id, (tool, seq)) {
                    out.push(Violation::new(
                        rules::TOOL_PAIRS,
                        seq,
                        format!(
                            "tool_call_id \"{id}\" executed again while its call from seq {} is still open",
                            first_seq.map_or_else(|| "?".to_owned(), |s| s.to_string())
                        ),
                    ));
                }
            }
            ("tool_completed", Some(id)) => match open.remove(id) {
                Some((started_tool, _)) => {
                    matched += 1;
                    if let (Some(started_tool), Some(tool)) = (started_tool, tool)
                        && started_tool != tool
                    {
                        out.push(Violation::new(
                                rules::TOOL_PAIRS,
                                seq,
                                format!(
                                    "tool_completed for \"{id}\" names tool {tool} but its tool_executing named {started_tool}"
                                ),
                            ));
                    }
                }
                None => out.push(Violation::new(
                    rules::TOOL_PAIRS,
                    seq,
                    format!("tool_completed for \"{id}\" without a tool_executing before it"),
                )),
            },
            // A tool event without a readable tool_call_id is reported under 5.6.
            _ => {}
        }
    }
    let before = if terminal_seen {
        "before the terminal event"
    } else {
        "(the run never ended)"
    };
    for (id, (tool, seq)) in open {
        out.push(Violation::new(
            rules::TOOL_PAIRS,
            seq,
            format!(
                "tool_executing \"{id}\" ({}) has no tool_completed {before}",
                tool.unwrap_or("?")
            ),
        ));
    }
    matched
}

fn check_critical(events: &[&Value], matched_pairs: usize) -> Vec<Violation> {
    let completed = events.iter().any(|e| type_of(e) == "agent_completed");
    if !completed {
        return Vec::new();
    }
    let mut out = Vec::new();
    for wanted in ["agent_started", "agent_thinking"] {
        if !events.iter().any(|e| type_of(e) == wanted) {
            out.push(Violation::new(
                rules::CRITICAL_EVENTS,
                None,
                format!("the run completed without any {wanted}"),
            ));
        }
    }
    if matched_pairs == 0 {
        out.push(Violation::new(
            rules::CRITICAL_EVENTS,
            None,
            "the run completed without a matched tool_executing/tool_completed pair",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    const TS: &str = "2026-11-26T18:04:05.123Z";

    fn ev(seq: u64, kind: &str, fields: Value) -> Value {
        let mut obj = json!({
            "type": kind, "timestamp": TS, "run_id": "run_1", "thread_id": "thr_1",
            "seq": seq, "agent": "supervisor",
        });
        for (key, value) in fields.as_object().unwrap() {
            obj[key] = value.clone();
        }
        obj
    }

    fn started(seq: u64) -> Value {
        ev(
            seq,
            "agent_started",
            json!({"user_request": "where does the money go?", "plan": ["data", "reporting"]}),
        )
    }
    fn thinking(seq: u64) -> Value {
        ev(
            seq,
            "agent_thinking",
            json!({"message": "spend on gpt-4o rose 41%"}),
        )
    }
    fn executing(seq: u64, id: &str) -> Value {
        ev(
            seq,
            "tool_executing",
            json!({"tool": "usage_summary", "tool_call_id": id, "args": {"timeframe": "30d"}}),
        )
    }
    fn completed_tool(seq: u64, id: &str) -> Value {
        ev(
            seq,
            "tool_completed",
            json!({"tool": "usage_summary", "tool_call_id": id, "status": "ok",
                   "result": "12 models", "data": {"models": 12}, "duration_ms": 4}),
        )
    }
    fn completed(seq: u64) -> Value {
        ev(
            seq,
            "agent_completed",
            json!({"response": "## Findings\n...", "report": {"findings": []}, "duration_ms": 40}),
        )
    }

    fn valid_run() -> Vec<Value> {
        vec![
            started(1),
            thinking(2),
            executing(3, "call_1"),
            completed_tool(4, "call_1"),
            ev(
                5,
                "agent_handoff",
                json!({"from_agent": "supervisor", "to_agent": "data", "reason": "needs numbers"}),
            ),
            ev(6, "subagent_started", json!({"parent_agent": "supervisor"})),
            ev(7, "progress", json!({"percent": 50, "message": "half way"})),
            ev(
                8,
                "subagent_completed",
                json!({"parent_agent": "supervisor", "summary": "done"}),
            ),
            ev(9, "response_delta", json!({"delta": "## Fin"})),
            completed(10),
        ]
    }

    fn rules_of(violations: &[Violation]) -> Vec<&'static str> {
        violations.iter().map(|v| v.rule).collect()
    }

    /// Asserts that every violation is of `rule` and that there is at least one.
    fn only(violations: &[Violation], rule: &str) {
        assert!(!violations.is_empty(), "expected a violation of {rule}");
        for v in violations {
            assert_eq!(v.rule, rule, "unexpected violation: {v}");
        }
    }

    #[test]
    fn a_valid_run_has_no_violations() {
        let run = valid_run();
        assert_eq!(check_run(&run), vec![]);
        assert!(critical_events_present(&run));
    }

    #[test]
    fn error_and_cancelled_runs_need_no_critical_events() {
        let run = vec![
            started(1),
            ev(
                2,
                "agent_error",
                json!({"error_code": "NO_DATA", "message": "load usage first", "retryable": false}),
            ),
        ];
        assert_eq!(check_run(&run), vec![]);
        let run = vec![
            started(1),
            ev(2, "agent_cancelled", json!({"reason": "user"})),
        ];
        assert_eq!(check_run(&run), vec![]);
    }

    #[test]
    fn rule_3_1_type_and_timestamp() {
        let mut run = valid_run();
        run[1].as_object_mut().unwrap().remove("timestamp");
        run[2]["timestamp"] = json!("yesterday");
        run[3]["timestamp"] = json!("2026-11-26T19:04:05.123+01:00");
        run[4]["timestamp"] = json!(1_764_180_245);
        let violations = check_run(&run);
        only(&violations, rules::TYPE_AND_TIMESTAMP);
        assert_eq!(violations.len(), 4);
        assert!(violations[2].detail.contains("not in UTC"));

        let no_type = json!({"timestamp": TS});
        let violations = check_frame(&no_type);
        only(&violations, rules::TYPE_AND_TIMESTAMP);
        assert!(check_frame(&json!([1, 2])).len() == 1);
        assert_eq!(
            check_frame(&json!({"type": "pong", "timestamp": TS})),
            vec![]
        );
        // +00:00 is UTC too.
        assert_eq!(
            check_frame(&json!({"type": "pong", "timestamp": "2026-11-26T18:04:05.123+00:00"})),
            vec![]
        );
    }

    #[test]
    fn rule_3_2_millisecond_precision() {
        let mut run = valid_run();
        run[1]["timestamp"] = json!("2026-11-26T18:04:05.123456Z");
        run[2]["timestamp"] = json!("2026-11-26T18:04:05Z");
        let violations = check_run(&run);
        only(&violations, rules::TIMESTAMP_MILLIS);
        assert_eq!(violations.len(), 2);
        assert_eq!(violations[0].seq, Some(2));
    }

    #[test]
    fn rule_3_3_run_event_fields() {
        let mut run = valid_run();
        run[1].as_object_mut().unwrap().remove("agent");
        run[2]["thread_id"] = json!(7);
        let violations = check_run(&run);
        only(&violations, rules::RUN_EVENT_FIELDS);
        assert_eq!(violations.len(), 2);
        assert!(violations[0].detail.contains("`agent`"));

        // A missing seq is reported once, under 3.3, and does not cascade into 5.3.
        let mut run = valid_run();
        run[9].as_object_mut().unwrap().remove("seq");
        let violations = check_run(&run);
        only(&violations, rules::RUN_EVENT_FIELDS);
        assert_eq!(violations.len(), 1);
    }

    #[test]
    fn rule_5_1_one_agent_started_first() {
        let mut run = valid_run();
        run.remove(0);
        renumber(&mut run);
        let violations = check_run(&run);
        assert!(rules_of(&violations).contains(&rules::ONE_STARTED_FIRST));
        assert!(
            violations
                .iter()
                .any(|v| v.detail == "the run has no agent_started")
        );

        let mut run = valid_run();
        run.insert(2, started(0));
        renumber(&mut run);
        let violations = check_run(&run);
        only(&violations, rules::ONE_STARTED_FIRST);
        assert_eq!(violations[0].seq, Some(3));

        let mut run = valid_run();
        run.swap(0, 1);
        renumber(&mut run);
        let violations = check_run(&run);
        only(&violations, rules::ONE_STARTED_FIRST);
        assert!(
            violations[0]
                .detail
                .contains("first event is agent_thinking")
        );
    }

    #[test]
    fn rule_5_2_one_terminal_last() {
        let mut run = valid_run();
        run.pop();
        let violations = check_run(&run);
        only(&violations, rules::ONE_TERMINAL_LAST);
        assert_eq!(violations.len(), 1);

        let mut run = valid_run();
        run.push(thinking(11));
        let violations = check_run(&run);
        only(&violations, rules::ONE_TERMINAL_LAST);
        assert_eq!(violations[0].seq, Some(11));
        assert!(violations[0].detail.contains("after the terminal"));

        let mut run = valid_run();
        run.push(ev(11, "agent_cancelled", json!({"reason": "late"})));
        let violations = check_run(&run);
        only(&violations, rules::ONE_TERMINAL_LAST);
        assert!(violations[0].detail.contains("second terminal"));
    }

    #[test]
    fn rule_5_3_seq_contiguous() {
        let mut run = valid_run();
        for event in &mut run {
            let seq = event["seq"].as_u64().unwrap();
            event["seq"] = json!(seq - 1);
        }
        let violations = check_run(&run);
        only(&violations, rules::SEQ_CONTIGUOUS);
        assert_eq!(violations.len(), 1, "one report for a start at 0");

        let mut run = valid_run();
        run.remove(4); // seq 5 missing
        let violations = check_run(&run);
        only(&violations, rules::SEQ_CONTIGUOUS);
        assert_eq!(violations.len(), 1, "a gap is reported once");
        assert!(violations[0].detail.contains("from 4 to 6"));

        let mut run = valid_run();
        run[5]["seq"] = json!(5); // duplicate of the previous
        let violations = check_run(&run);
        only(&violations, rules::SEQ_CONTIGUOUS);
        assert!(violations[0].detail.contains("repeated"));
    }

    #[test]
    fn rule_5_4_tool_pairs() {
        // tool_executing without its tool_completed.
        let mut run = valid_run();
        run.insert(4, executing(0, "call_2"));
        renumber(&mut run);
        let violations = check_run(&run);
        only(&violations, rules::TOOL_PAIRS);
        assert!(violations[0].detail.contains("call_2"));
        assert_eq!(violations[0].seq, Some(5));

        // tool_completed without a tool_executing.
        let mut run = valid_run();
        run.insert(4, completed_tool(0, "call_9"));
        renumber(&mut run);
        let violations = check_run(&run);
        only(&violations, rules::TOOL_PAIRS);
        assert!(violations[0].detail.contains("without a tool_executing"));

        // tool_completed only after the terminal event.
        let mut run = valid_run();
        let late = run.remove(3);
        run.push(late);
        renumber(&mut run);
        let rules = rules_of(&check_run(&run));
        assert!(rules.contains(&rules::TOOL_PAIRS));
        assert!(rules.contains(&rules::ONE_TERMINAL_LAST));

        // completion naming another tool.
        let mut run = valid_run();
        run[3]["tool"] = json!("query_usage");
        let violations = check_run(&run);
        only(&violations, rules::TOOL_PAIRS);

        // Interleaved pairs are fine.
        let run = vec![
            started(1),
            thinking(2),
            executing(3, "a"),
            executing(4, "b"),
            completed_tool(5, "b"),
            completed_tool(6, "a"),
            completed(7),
        ];
        assert_eq!(check_run(&run), vec![]);
    }

    #[test]
    fn rule_5_5_completed_run_has_the_critical_events() {
        let run = vec![started(1), completed(2)];
        let violations = check_run(&run);
        only(&violations, rules::CRITICAL_EVENTS);
        assert_eq!(
            violations.len(),
            2,
            "no thinking, no tool pair: {violations:?}"
        );
        assert!(!critical_events_present(&run));

        let run = vec![
            started(1),
            executing(2, "a"),
            completed_tool(3, "a"),
            completed(4),
        ];
        let violations = check_run(&run);
        only(&violations, rules::CRITICAL_EVENTS);
        assert!(violations[0].detail.contains("agent_thinking"));
    }

    #[test]
    fn rule_5_6_event_fields() {
        let mut run = valid_run();
        run[1]["message"] = json!("  ");
        run[3]["status"] = json!("done");
        run[4].as_object_mut().unwrap().remove("to_agent");
        run[6]["percent"] = json!(140);
        run[9]["report"] = json!("a string");
        let violations = check_run(&run);
        only(&violations, rules::EVENT_FIELDS);
        assert_eq!(violations.len(), 5, "{violations:?}");
        let seqs: Vec<_> = violations.iter().map(|v| v.seq).collect();
        assert_eq!(seqs, vec![Some(2), Some(4), Some(5), Some(7), Some(10)]);

        let mut run = valid_run();
        run[9]["response"] = json!("");
        let violations = check_run(&run);
        only(&violations, rules::EVENT_FIELDS);

        let run = vec![
            started(1),
            ev(
                2,
                "agent_error",
                json!({"error_code": 500, "message": "x", "retryable": false}),
            ),
        ];
        let violations = check_run(&run);
        only(&violations, rules::EVENT_FIELDS);
        assert!(violations[0].detail.contains("error_code"));
    }

    #[test]
    fn rule_5_7_one_run_id_and_thread_id() {
        let mut run = valid_run();
        run[4]["run_id"] = json!("run_2");
        run[5]["thread_id"] = json!("thr_2");
        let violations = check_run(&run);
        only(&violations, rules::ONE_RUN);
        assert_eq!(violations.len(), 2);
        assert_eq!(violations[0].seq, Some(5));
    }

    #[test]
    fn rule_5_8_only_run_event_types() {
        let mut run = valid_run();
        run.insert(
            1,
            json!({"type": "run_accepted", "run_id": "run_1", "timestamp": TS}),
        );
        let violations = check_run(&run);
        only(&violations, rules::RUN_EVENT_TYPES);
        assert_eq!(violations.len(), 1);
    }

    #[test]
    fn an_empty_run_is_not_valid() {
        let rules = rules_of(&check_run(&[]));
        assert!(rules.contains(&rules::ONE_STARTED_FIRST));
        assert!(rules.contains(&rules::ONE_TERMINAL_LAST));
    }

    #[test]
    fn violations_display_rule_seq_and_detail() {
        let v = Violation::new(rules::SEQ_CONTIGUOUS, Some(4), "seq 4 repeated");
        assert_eq!(
            v.to_string(),
            "[5.3 seq starts at 1 and is contiguous] seq 4: seq 4 repeated"
        );
        let v = Violation::new(rules::ONE_STARTED_FIRST, None, "none");
        assert_eq!(v.to_string(), "[5.1 exactly one agent_started, first] none");
    }

    #[test]
    fn rule_ids_are_unique_and_numbered() {
        let mut ids: Vec<_> = rules::ALL.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rules::ALL.len());
        for id in rules::ALL {
            assert!(id.starts_with("3.") || id.starts_with("5."), "{id}");
        }
    }

    #[test]
    fn our_own_serialized_events_pass() {
        use agentwire_protocol::{EventKind, RunEvent, ServerFrame};
        let mk = |seq, kind| {
            let frame = ServerFrame::from(RunEvent {
                run_id: "r".into(),
                thread_id: "t".into(),
                seq,
                agent: "data".into(),
                timestamp: agentwire_protocol::time::now(),
                kind,
            });
            serde_json::from_str::<Value>(&frame.to_json()).unwrap()
        };
        let run = vec![
            mk(
                1,
                EventKind::AgentStarted {
                    user_request: "q".into(),
                    plan: vec!["data".into()],
                },
            ),
            mk(
                2,
                EventKind::AgentThinking {
                    message: "m".into(),
                },
            ),
            mk(
                3,
                EventKind::ToolExecuting {
                    tool: "t".into(),
                    tool_call_id: "c".into(),
                    args: json!({}),
                },
            ),
            mk(
                4,
                EventKind::ToolCompleted {
                    tool: "t".into(),
                    tool_call_id: "c".into(),
                    status: agentwire_protocol::ToolStatus::Ok,
                    result: "r".into(),
                    data: Value::Null,
                    duration_ms: 1,
                },
            ),
            mk(
                5,
                EventKind::AgentCompleted {
                    response: "r".into(),
                    report: json!({}),
                    duration_ms: 2,
                },
            ),
        ];
        assert_eq!(check_run(&run), vec![]);
    }

    fn renumber(run: &mut [Value]) {
        for (i, event) in run.iter_mut().enumerate() {
            event["seq"] = json!(i as u64 + 1);
        }
    }
}
