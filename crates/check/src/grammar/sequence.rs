//! How a run's events follow one another: one `agent_started`, first (5.1); one terminal event,
//! last (5.2); contiguous `seq` (5.3); matched tool pairs (5.4); the critical events of a completed
//! run (5.5); one `run_id` and `thread_id` (5.7).
//!
//! What it must not do: judge a field's shape (that is `fields`, and a missing field is reported
//! there once, not again here).

use super::{CRITICAL_TYPES, Violation, is_terminal_type, rules, seq_of, type_of};
use serde_json::Value;
use std::collections::BTreeMap;

/// Whether the five events a user needs to see are all present: `agent_started`, `agent_thinking`,
/// `tool_executing`, `tool_completed` and `agent_completed`.
pub fn critical_events_present(events: &[Value]) -> bool {
    CRITICAL_TYPES
        .iter()
        .all(|wanted| events.iter().any(|event| type_of(event) == *wanted))
}

pub(super) fn check_one_run(events: &[&Value]) -> Vec<Violation> {
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

pub(super) fn check_started(events: &[&Value]) -> Vec<Violation> {
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

pub(super) fn check_terminal(events: &[&Value]) -> Vec<Violation> {
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

pub(super) fn check_seq(events: &[&Value]) -> Vec<Violation> {
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
pub(super) fn check_tool_pairs(events: &[&Value], out: &mut Vec<Violation>) -> usize {
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

pub(super) fn check_critical(events: &[&Value], matched_pairs: usize) -> Vec<Violation> {
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
