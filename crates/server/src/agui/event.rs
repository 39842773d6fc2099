//! The AG-UI events this server sends, as the JSON the AG-UI 1.0 schema describes: a `type` in
//! `SCREAMING_SNAKE_CASE`, camelCase fields, a `timestamp` in epoch milliseconds.
//!
//! Only the events the mapping produces are modelled, and only with fields the schema defines: the
//! AG-UI client strips (and warns about) any other property. Field order is fixed by the types and
//! JSON objects inside values serialize with sorted keys, so the same event always serializes to
//! the same bytes; resume depends on that. This file must not decide what to send (see
//! [`super::mapping`]).

use serde::Serialize;
use serde_json::Value;

/// The AG-UI protocol version these events follow, declared in `RUN_STARTED`.
pub const PROTOCOL_VERSION: &str = "1.0";

/// One AG-UI event with its timestamp.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stamped {
    #[serde(flatten)]
    pub event: AguiEvent,
    /// Milliseconds since the Unix epoch: the time of the agentwire event it came from.
    pub timestamp: i64,
}

impl Stamped {
    /// The event as one line of JSON.
    pub fn to_json(&self) -> String {
        // Cannot fail: every key is a string and the only floats (progress percent) are finite.
        serde_json::to_string(self).unwrap_or_else(|err| {
            format!(
                r#"{{"type":"RUN_ERROR","message":"event serialization failed: {err}","code":"INTERNAL"}}"#
            )
        })
    }
}

/// How a run that did not fail ended (`RUN_FINISHED.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Stopped on request; nothing was produced and nothing is waited for.
    Cancelled,
}

/// The AG-UI events the mapping produces.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "SCREAMING_SNAKE_CASE",
    rename_all_fields = "camelCase"
)]
pub enum AguiEvent {
    RunStarted {
        thread_id: String,
        run_id: String,
        protocol_version: &'static str,
    },
    RunFinished {
        thread_id: String,
        run_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
        outcome: Outcome,
    },
    RunError {
        message: String,
        code: String,
    },
    StepStarted {
        step_name: String,
    },
    StepFinished {
        step_name: String,
    },
    ReasoningStart {
        message_id: String,
    },
    ReasoningMessageStart {
        message_id: String,
        role: &'static str,
    },
    ReasoningMessageContent {
        message_id: String,
        delta: String,
    },
    ReasoningMessageEnd {
        message_id: String,
    },
    ReasoningEnd {
        message_id: String,
    },
    ToolCallStart {
        tool_call_id: String,
        tool_call_name: String,
    },
    ToolCallArgs {
        tool_call_id: String,
        delta: String,
    },
    ToolCallEnd {
        tool_call_id: String,
    },
    ToolCallResult {
        message_id: String,
        tool_call_id: String,
        content: String,
        role: &'static str,
    },
    TextMessageStart {
        message_id: String,
        role: &'static str,
    },
    TextMessageContent {
        message_id: String,
        delta: String,
    },
    TextMessageEnd {
        message_id: String,
    },
    Custom {
        name: String,
        value: Value,
    },
}

impl AguiEvent {
    /// The event's `type` on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "RUN_STARTED",
            Self::RunFinished { .. } => "RUN_FINISHED",
            Self::RunError { .. } => "RUN_ERROR",
            Self::StepStarted { .. } => "STEP_STARTED",
            Self::StepFinished { .. } => "STEP_FINISHED",
            Self::ReasoningStart { .. } => "REASONING_START",
            Self::ReasoningMessageStart { .. } => "REASONING_MESSAGE_START",
            Self::ReasoningMessageContent { .. } => "REASONING_MESSAGE_CONTENT",
            Self::ReasoningMessageEnd { .. } => "REASONING_MESSAGE_END",
            Self::ReasoningEnd { .. } => "REASONING_END",
            Self::ToolCallStart { .. } => "TOOL_CALL_START",
            Self::ToolCallArgs { .. } => "TOOL_CALL_ARGS",
            Self::ToolCallEnd { .. } => "TOOL_CALL_END",
            Self::ToolCallResult { .. } => "TOOL_CALL_RESULT",
            Self::TextMessageStart { .. } => "TEXT_MESSAGE_START",
            Self::TextMessageContent { .. } => "TEXT_MESSAGE_CONTENT",
            Self::TextMessageEnd { .. } => "TEXT_MESSAGE_END",
            Self::Custom { .. } => "CUSTOM",
        }
    }

    /// Whether this event ends the run's stream.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::RunFinished { .. } | Self::RunError { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_of(event: AguiEvent) -> Value {
        serde_json::from_str(
            &Stamped {
                event,
                timestamp: 1_700_000_000_123,
            }
            .to_json(),
        )
        .unwrap()
    }

    #[test]
    fn events_serialize_as_the_ag_ui_schema_spells_them() {
        assert_eq!(
            json_of(AguiEvent::RunStarted {
                thread_id: "t".into(),
                run_id: "r".into(),
                protocol_version: PROTOCOL_VERSION,
            }),
            json!({"type": "RUN_STARTED", "threadId": "t", "runId": "r", "protocolVersion": "1.0",
                   "timestamp": 1_700_000_000_123_i64})
        );
        assert_eq!(
            json_of(AguiEvent::RunFinished {
                thread_id: "t".into(),
                run_id: "r".into(),
                result: None,
                outcome: Outcome::Cancelled,
            }),
            json!({"type": "RUN_FINISHED", "threadId": "t", "runId": "r",
                   "outcome": {"type": "cancelled"}, "timestamp": 1_700_000_000_123_i64})
        );
        assert_eq!(
            json_of(AguiEvent::ToolCallResult {
                message_id: "m".into(),
                tool_call_id: "c".into(),
                content: "ok".into(),
                role: "tool",
            }),
            json!({"type": "TOOL_CALL_RESULT", "messageId": "m", "toolCallId": "c", "content": "ok",
                   "role": "tool", "timestamp": 1_700_000_000_123_i64})
        );
        assert_eq!(
            json_of(AguiEvent::ReasoningMessageStart {
                message_id: "m".into(),
                role: "reasoning"
            })["type"],
            "REASONING_MESSAGE_START"
        );
    }

    #[test]
    fn type_names_match_the_serialized_type() {
        let events = [
            AguiEvent::StepStarted {
                step_name: "a".into(),
            },
            AguiEvent::ToolCallArgs {
                tool_call_id: "c".into(),
                delta: "{}".into(),
            },
            AguiEvent::Custom {
                name: "n".into(),
                value: json!(1),
            },
            AguiEvent::RunError {
                message: "m".into(),
                code: "TIMEOUT".into(),
            },
        ];
        for event in events {
            let name = event.type_name();
            assert_eq!(json_of(event)["type"], name);
        }
    }
}
