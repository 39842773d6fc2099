//! The grammar of one run, judged on raw JSON frames (PROTOCOL.md sections 3 and 5).
//!
//! This module is the suite's reference reading of the contract: it takes the frames a deployment
//! actually sent, as [`serde_json::Value`]s, and lists every way they break the contract. It works on
//! raw JSON on purpose: deserializing into our own types first would make it blind to the very
//! deviations it exists to find (a missing field, a string where a number belongs), and it must judge
//! deployments other than ours.
//!
//! Layout: this file holds the rule ids, [`Violation`] and [`check_run`], which applies every
//! rule; `fields` judges what each frame must carry (3.1-3.3, 5.6), `sequence` how a run's events
//! follow one another (5.1-5.5, 5.7).
//!
//! What it must not do: perform I/O, depend on anything but the frames it is given, stop at the first
//! problem (it reports them all), or ever pass a run it could not read. Rule ids ([`rules`]) are
//! stable strings numbered by PROTOCOL.md section; reports and tests key on them.

mod fields;
mod sequence;
#[cfg(test)]
mod tests;

pub use fields::check_frame;
pub use sequence::critical_events_present;

use agentwire_protocol::server::RUN_EVENT_TYPES;
use fields::{check_common_fields, check_event_fields};
use sequence::{
    check_critical, check_one_run, check_seq, check_started, check_terminal, check_tool_pairs,
};
use serde_json::Value;
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
