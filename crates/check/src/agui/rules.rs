//! AG-UI's ordering rules for one run's event stream, as the reference client's verifier
//! (`verifyEvents` in `@ag-ui/client` 1.0.0) applies them, checked on the JSON events a client
//! receives. `agentwire check` judges a deployment's AG-UI streams with it, and the server's tests
//! judge every stream the mapping produces; the server's Node test judges real streams with the
//! real client.
//!
//! The rules: the first event is `RUN_STARTED` (or `RUN_ERROR`); nothing follows `RUN_FINISHED` or
//! `RUN_ERROR`; a text message, tool call, reasoning message, reasoning span or step is not opened
//! twice while open, and its CONTENT / ARGS / END (or `STEP_FINISHED`) name one that is open;
//! `RUN_FINISHED` comes only when none is open; and, because the stream of one AG-UI request is
//! one run, a second `RUN_STARTED` is an error (the client would take it as a new run) and the
//! stream must end with the terminal event.
//!
//! This file must not be used to decide what a server sends; it only judges.

use serde_json::Value;
use std::collections::HashSet;

/// Why a stream breaks AG-UI's rules: the index of the offending event and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {index} ({event_type}): {message}")]
pub struct Violation {
    pub index: usize,
    pub event_type: String,
    pub message: String,
}

#[derive(Default)]
struct Open {
    ids: HashSet<String>,
}

impl Open {
    fn open(&mut self, id: &str, what: &str) -> Result<(), String> {
        if !self.ids.insert(id.to_owned()) {
            return Err(format!("{what} `{id}` is already open"));
        }
        Ok(())
    }

    fn is_open(&self, id: &str, what: &str) -> Result<(), String> {
        if self.ids.contains(id) {
            Ok(())
        } else {
            Err(format!("no open {what} `{id}`"))
        }
    }

    fn close(&mut self, id: &str, what: &str) -> Result<(), String> {
        self.is_open(id, what)?;
        self.ids.remove(id);
        Ok(())
    }

    fn still_open(&self, what: &str) -> Result<(), String> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        Err(format!("{what} still open: {}", ids.join(", ")))
    }
}

/// Checks one run's events, in the order received.
///
/// # Errors
/// The first event that breaks a rule.
pub fn verify(events: &[Value]) -> Result<(), Violation> {
    let mut messages = Open::default();
    let mut tools = Open::default();
    let mut reasoning_spans = Open::default();
    let mut reasoning_messages = Open::default();
    let mut steps: Vec<String> = Vec::new();
    let mut ended = false;
    for (index, event) in events.iter().enumerate() {
        let event_type = event.get("type").and_then(Value::as_str).unwrap_or("");
        let violation = |message: String| Violation {
            index,
            event_type: event_type.to_owned(),
            message,
        };
        if ended {
            return Err(violation("the run already ended".into()));
        }
        if index == 0 && event_type != "RUN_STARTED" && event_type != "RUN_ERROR" {
            return Err(violation("the first event must be RUN_STARTED".into()));
        }
        let field = |name: &str| -> Result<&str, Violation> {
            event
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| violation(format!("`{name}` must be a string")))
        };
        let checked = match event_type {
            "RUN_STARTED" if index > 0 => Err("a second RUN_STARTED in one run".to_owned()),
            "RUN_STARTED" => field("threadId")
                .and(field("runId"))
                .map(|_| ())
                .map_err(|v| v.message),
            "TEXT_MESSAGE_START" => messages.open(field("messageId")?, "text message"),
            "TEXT_MESSAGE_CONTENT" => messages.is_open(field("messageId")?, "text message"),
            "TEXT_MESSAGE_END" => messages.close(field("messageId")?, "text message"),
            "TOOL_CALL_START" => tools.open(field("toolCallId")?, "tool call"),
            "TOOL_CALL_ARGS" => tools.is_open(field("toolCallId")?, "tool call"),
            "TOOL_CALL_END" => tools.close(field("toolCallId")?, "tool call"),
            "REASONING_START" => reasoning_spans.open(field("messageId")?, "reasoning span"),
            "REASONING_END" => reasoning_spans.close(field("messageId")?, "reasoning span"),
            "REASONING_MESSAGE_START" => {
                reasoning_messages.open(field("messageId")?, "reasoning message")
            }
            "REASONING_MESSAGE_CONTENT" => {
                reasoning_messages.is_open(field("messageId")?, "reasoning message")
            }
            "REASONING_MESSAGE_END" => {
                reasoning_messages.close(field("messageId")?, "reasoning message")
            }
            "STEP_STARTED" => {
                let name = field("stepName")?;
                if steps.iter().any(|s| s == name) {
                    Err(format!("step `{name}` is already active"))
                } else {
                    steps.push(name.to_owned());
                    Ok(())
                }
            }
            "STEP_FINISHED" => {
                let name = field("stepName")?;
                match steps.iter().position(|s| s == name) {
                    Some(at) => {
                        steps.remove(at);
                        Ok(())
                    }
                    None => Err(format!("step `{name}` was not started")),
                }
            }
            "RUN_FINISHED" => {
                ended = true;
                let steps_open = if steps.is_empty() {
                    Ok(())
                } else {
                    Err(format!("steps still active: {}", steps.join(", ")))
                };
                steps_open
                    .and(messages.still_open("text messages"))
                    .and(tools.still_open("tool calls"))
                    .and(reasoning_messages.still_open("reasoning messages"))
                    .and(reasoning_spans.still_open("reasoning spans"))
            }
            "RUN_ERROR" => {
                ended = true;
                field("message").map(|_| ()).map_err(|v| v.message)
            }
            "TOOL_CALL_RESULT" => field("toolCallId")
                .and(field("messageId"))
                .map(|_| ())
                .map_err(|v| v.message),
            "CUSTOM" => field("name").map(|_| ()).map_err(|v| v.message),
            "" => Err("the event has no string `type`".to_owned()),
            _ => Ok(()),
        };
        checked.map_err(violation)?;
    }
    if !ended {
        return Err(Violation {
            index: events.len(),
            event_type: String::new(),
            message: "the stream ended without RUN_FINISHED or RUN_ERROR".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(events: Value) -> Result<(), Violation> {
        verify(events.as_array().unwrap())
    }

    #[test]
    fn a_well_formed_run_passes() {
        check(json!([
            {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
            {"type": "STEP_STARTED", "stepName": "a"},
            {"type": "TOOL_CALL_START", "toolCallId": "c", "toolCallName": "x"},
            {"type": "TOOL_CALL_ARGS", "toolCallId": "c", "delta": "{}"},
            {"type": "TOOL_CALL_END", "toolCallId": "c"},
            {"type": "TOOL_CALL_RESULT", "toolCallId": "c", "messageId": "m", "content": ""},
            {"type": "STEP_FINISHED", "stepName": "a"},
            {"type": "RUN_FINISHED", "threadId": "t", "runId": "r"},
        ]))
        .unwrap();
    }

    #[test]
    fn each_rule_is_enforced() {
        let start = json!({"type": "RUN_STARTED", "threadId": "t", "runId": "r"});
        let finish = json!({"type": "RUN_FINISHED", "threadId": "t", "runId": "r"});
        let cases = [
            (
                json!([{"type": "STEP_STARTED", "stepName": "a"}]),
                "first event",
            ),
            (
                json!([start, finish, {"type": "CUSTOM", "name": "x"}]),
                "already ended",
            ),
            (
                json!([start, {"type": "STEP_STARTED", "stepName": "a"}, finish]),
                "steps still",
            ),
            (
                json!([start, {"type": "TOOL_CALL_ARGS", "toolCallId": "c", "delta": ""}]),
                "no open tool",
            ),
            (
                json!([start, {"type": "TEXT_MESSAGE_START", "messageId": "m"}, finish]),
                "text messages still",
            ),
            (
                json!([start, {"type": "REASONING_START", "messageId": "m"}, finish]),
                "reasoning spans still",
            ),
            (
                json!([start, {"type": "STEP_FINISHED", "stepName": "a"}]),
                "was not started",
            ),
            (json!([start, start]), "second RUN_STARTED"),
            (json!([start]), "without RUN_FINISHED"),
            (
                json!([start,
                    {"type": "TEXT_MESSAGE_START", "messageId": "m"},
                    {"type": "TEXT_MESSAGE_START", "messageId": "m"}]),
                "already open",
            ),
        ];
        for (events, expected) in cases {
            let err = check(events.clone()).unwrap_err();
            assert!(err.to_string().contains(expected), "{events}: {err}");
        }
    }

    #[test]
    fn run_error_may_come_with_things_open() {
        check(json!([
            {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
            {"type": "STEP_STARTED", "stepName": "a"},
            {"type": "RUN_ERROR", "message": "m", "code": "TIMEOUT"},
        ]))
        .unwrap();
    }
}
