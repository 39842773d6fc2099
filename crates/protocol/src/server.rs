//! Frames the server sends (PROTOCOL.md sections 2, 3, 5 and 6).
//!
//! Every frame serializes to one flat JSON object with top-level `type` and `timestamp`. Run events
//! add `run_id`, `thread_id`, `seq` and `agent`; the fields particular to each event type sit beside
//! them, never nested, so that Netra-style clients that read `event["type"]` work unchanged.

use crate::error::ErrorCode;
use crate::tool_data::ToolData;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether a tool call succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    Ok,
    Error,
}

/// One event of a run. `seq` starts at 1 and is contiguous within the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvent {
    pub run_id: String,
    pub thread_id: String,
    pub seq: u64,
    /// The agent that produced the event.
    pub agent: String,
    #[serde(with = "crate::time::wire")]
    pub timestamp: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The event-specific part of a [`RunEvent`]; its variant name is the frame's `type`.
///
/// Grammar of one run (PROTOCOL.md section 5):
/// ```text
/// agent_started (agent_thinking | tool_executing tool_completed | agent_handoff
///               | subagent_started | subagent_completed | progress | response_delta)*
/// (agent_completed | agent_error | agent_cancelled)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    AgentStarted {
        user_request: String,
        /// The agents the entry agent intends to involve, in order.
        plan: Vec<String>,
    },
    AgentThinking {
        message: String,
    },
    ToolExecuting {
        tool: String,
        tool_call_id: String,
        args: Value,
    },
    ToolCompleted {
        tool: String,
        tool_call_id: String,
        status: ToolStatus,
        /// A one-line human summary of the result.
        result: String,
        /// The structured result (shared JSON text: see [`ToolData`]).
        data: ToolData,
        duration_ms: u64,
        /// True when the run reused a result computed earlier over the same data and
        /// arguments (a memoized tool result). Omitted when false, so older clients see the
        /// frame they know.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cached: bool,
    },
    AgentHandoff {
        from_agent: String,
        to_agent: String,
        reason: String,
    },
    SubagentStarted {
        parent_agent: String,
    },
    SubagentCompleted {
        parent_agent: String,
        summary: String,
    },
    Progress {
        percent: f64,
        message: String,
    },
    ResponseDelta {
        delta: String,
    },
    AgentCompleted {
        /// The final answer as Markdown.
        response: String,
        /// The same answer as structured JSON (findings, recommendations, plan, data coverage).
        report: Value,
        duration_ms: u64,
    },
    AgentError {
        error_code: ErrorCode,
        message: String,
        retryable: bool,
    },
    AgentCancelled {
        reason: String,
    },
}

impl EventKind {
    /// The `type` of the frame this event serializes to.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::AgentStarted { .. } => "agent_started",
            Self::AgentThinking { .. } => "agent_thinking",
            Self::ToolExecuting { .. } => "tool_executing",
            Self::ToolCompleted { .. } => "tool_completed",
            Self::AgentHandoff { .. } => "agent_handoff",
            Self::SubagentStarted { .. } => "subagent_started",
            Self::SubagentCompleted { .. } => "subagent_completed",
            Self::Progress { .. } => "progress",
            Self::ResponseDelta { .. } => "response_delta",
            Self::AgentCompleted { .. } => "agent_completed",
            Self::AgentError { .. } => "agent_error",
            Self::AgentCancelled { .. } => "agent_cancelled",
        }
    }

    /// Whether this event ends its run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::AgentCompleted { .. } | Self::AgentError { .. } | Self::AgentCancelled { .. }
        )
    }
}

/// The `type` values that are run events.
pub const RUN_EVENT_TYPES: [&str; 12] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_handoff",
    "subagent_started",
    "subagent_completed",
    "progress",
    "response_delta",
    "agent_completed",
    "agent_error",
    "agent_cancelled",
];

/// The limits a connection is held to, announced in `connection_established`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub max_frame_bytes: usize,
    pub max_concurrent_runs: usize,
}

/// Sent once a connection is authenticated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionEstablished {
    pub connection_id: String,
    pub user_id: String,
    /// The tenant whose data this user's agents read (`org_id` claim, else the user).
    pub tenant_id: String,
    pub protocol: String,
    pub server_version: String,
    pub agents: Vec<String>,
    pub limits: Limits,
    #[serde(with = "crate::time::wire")]
    pub timestamp: DateTime<Utc>,
}

/// The reply to an accepted `start_agent`, sent before the run's first event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunAccepted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub run_id: String,
    pub thread_id: String,
    pub agent_type: String,
    #[serde(with = "crate::time::wire")]
    pub timestamp: DateTime<Utc>,
}

/// The reply to a JSON `ping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(with = "crate::time::wire")]
    pub timestamp: DateTime<Utc>,
}

/// An `error` frame (PROTOCOL.md section 6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub error_code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub retryable: bool,
    /// With `RATE_LIMITED`: how long to wait before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The run the error is about, when there is one (`RUN_CONFLICT` names the running run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(with = "crate::time::wire")]
    pub timestamp: DateTime<Utc>,
}

impl ErrorFrame {
    /// An error frame stamped now, with `retryable` taken from the code.
    pub fn new(code: ErrorCode, message: impl Into<String>, request_id: Option<String>) -> Self {
        Self {
            error_code: code,
            message: message.into(),
            request_id,
            retryable: code.retryable(),
            retry_after_ms: None,
            run_id: None,
            timestamp: crate::time::now(),
        }
    }
}

/// A frame that is not a run event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlFrame {
    ConnectionEstablished(ConnectionEstablished),
    RunAccepted(RunAccepted),
    Pong(Pong),
    Error(ErrorFrame),
}

/// Anything the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ServerFrame {
    Event(RunEvent),
    Control(ControlFrame),
}

impl ServerFrame {
    /// The frame as the JSON text sent on the socket.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string and no value is a
        // non-finite float that serde_json refuses (percent values are produced finite).
        serde_json::to_string(self).unwrap_or_else(|err| {
            format!(r#"{{"type":"error","error_code":"INTERNAL","message":"frame serialization failed: {err}","retryable":true,"timestamp":"{}"}}"#,
                crate::time::format(&crate::time::now()))
        })
    }

    /// The frame's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Event(event) => event.kind.type_name(),
            Self::Control(ControlFrame::ConnectionEstablished(_)) => "connection_established",
            Self::Control(ControlFrame::RunAccepted(_)) => "run_accepted",
            Self::Control(ControlFrame::Pong(_)) => "pong",
            Self::Control(ControlFrame::Error(_)) => "error",
        }
    }
}

impl<'de> Deserialize<'de> for ServerFrame {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| D::Error::custom("frame has no string `type`"))?;
        if RUN_EVENT_TYPES.contains(&kind) {
            serde_json::from_value(value)
                .map(Self::Event)
                .map_err(D::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(Self::Control)
                .map_err(D::Error::custom)
        }
    }
}

impl From<RunEvent> for ServerFrame {
    fn from(event: RunEvent) -> Self {
        Self::Event(event)
    }
}

impl From<ErrorFrame> for ServerFrame {
    fn from(error: ErrorFrame) -> Self {
        Self::Control(ControlFrame::Error(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time;
    use serde_json::json;

    fn event(kind: EventKind) -> RunEvent {
        RunEvent {
            run_id: "run_1".into(),
            thread_id: "thr_1".into(),
            seq: 3,
            agent: "data".into(),
            timestamp: time::parse_lenient("2026-11-26T18:04:05.123Z").unwrap(),
            kind,
        }
    }

    #[test]
    fn run_events_are_flat_with_type_and_timestamp() {
        let frame = ServerFrame::from(event(EventKind::ToolCompleted {
            tool: "usage_summary".into(),
            tool_call_id: "call_1".into(),
            status: ToolStatus::Ok,
            result: "12 models".into(),
            data: json!({"models": 12}).into(),
            duration_ms: 4,
            cached: false,
        }));
        let value: Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(
            value,
            json!({
                "type": "tool_completed", "timestamp": "2026-11-26T18:04:05.123Z",
                "run_id": "run_1", "thread_id": "thr_1", "seq": 3, "agent": "data",
                "tool": "usage_summary", "tool_call_id": "call_1", "status": "ok",
                "result": "12 models", "data": {"models": 12}, "duration_ms": 4
            })
        );
    }

    #[test]
    fn cached_appears_only_when_true_and_old_frames_still_read() {
        let cached = ServerFrame::from(event(EventKind::ToolCompleted {
            tool: "usage_summary".into(),
            tool_call_id: "call_1".into(),
            status: ToolStatus::Ok,
            result: "r".into(),
            data: ToolData::null(),
            duration_ms: 0,
            cached: true,
        }));
        let value: Value = serde_json::from_str(&cached.to_json()).unwrap();
        assert_eq!(value["cached"], true);
        let old = r#"{"type":"tool_completed","timestamp":"2026-11-26T18:04:05.123Z","run_id":"r","thread_id":"t","seq":4,"agent":"data","tool":"x","tool_call_id":"call_1","status":"ok","result":"r","data":null,"duration_ms":1}"#;
        let ServerFrame::Event(event) = serde_json::from_str::<ServerFrame>(old).unwrap() else {
            panic!("a run event")
        };
        assert!(matches!(
            event.kind,
            EventKind::ToolCompleted { cached: false, .. }
        ));
    }

    #[test]
    fn every_event_kind_round_trips() {
        let kinds = vec![
            EventKind::AgentStarted {
                user_request: "q".into(),
                plan: vec!["data".into()],
            },
            EventKind::AgentThinking {
                message: "m".into(),
            },
            EventKind::ToolExecuting {
                tool: "t".into(),
                tool_call_id: "c".into(),
                args: json!({}),
            },
            EventKind::ToolCompleted {
                tool: "t".into(),
                tool_call_id: "c".into(),
                status: ToolStatus::Error,
                result: "r".into(),
                data: ToolData::null(),
                duration_ms: 1,
                cached: true,
            },
            EventKind::AgentHandoff {
                from_agent: "a".into(),
                to_agent: "b".into(),
                reason: "r".into(),
            },
            EventKind::SubagentStarted {
                parent_agent: "supervisor".into(),
            },
            EventKind::SubagentCompleted {
                parent_agent: "supervisor".into(),
                summary: "s".into(),
            },
            EventKind::Progress {
                percent: 50.0,
                message: "half".into(),
            },
            EventKind::ResponseDelta { delta: "d".into() },
            EventKind::AgentCompleted {
                response: "r".into(),
                report: json!({"a": 1}),
                duration_ms: 9,
            },
            EventKind::AgentError {
                error_code: ErrorCode::NoData,
                message: "m".into(),
                retryable: false,
            },
            EventKind::AgentCancelled {
                reason: "user".into(),
            },
        ];
        assert_eq!(kinds.len(), RUN_EVENT_TYPES.len());
        for kind in kinds {
            let frame = ServerFrame::from(event(kind));
            let text = frame.to_json();
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["type"], frame.type_name());
            assert!(RUN_EVENT_TYPES.contains(&frame.type_name()));
            let back: ServerFrame = serde_json::from_str(&text).unwrap();
            assert_eq!(back, frame);
        }
    }

    #[test]
    fn control_frames_round_trip() {
        let ts = time::now();
        let frames = vec![
            ServerFrame::Control(ControlFrame::ConnectionEstablished(ConnectionEstablished {
                connection_id: "c".into(),
                user_id: "u".into(),
                tenant_id: "t".into(),
                protocol: crate::SUBPROTOCOL.into(),
                server_version: "0.1.0".into(),
                agents: vec!["supervisor".into()],
                limits: Limits {
                    max_frame_bytes: 1 << 20,
                    max_concurrent_runs: 8,
                },
                timestamp: ts,
            })),
            ServerFrame::Control(ControlFrame::RunAccepted(RunAccepted {
                request_id: Some("req_1".into()),
                run_id: "r".into(),
                thread_id: "t".into(),
                agent_type: "data".into(),
                timestamp: ts,
            })),
            ServerFrame::Control(ControlFrame::Pong(Pong {
                request_id: None,
                timestamp: ts,
            })),
            ServerFrame::from(ErrorFrame::new(
                ErrorCode::AgentNotFound,
                "no such agent",
                None,
            )),
        ];
        for frame in frames {
            let text = frame.to_json();
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["type"], frame.type_name());
            assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
            let back: ServerFrame = serde_json::from_str(&text).unwrap();
            assert_eq!(back, frame);
        }
    }

    #[test]
    fn error_frame_has_contract_fields() {
        let frame = ServerFrame::from(ErrorFrame::new(
            ErrorCode::RateLimited,
            "slow down",
            Some("7".into()),
        ));
        let value: Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(value["type"], "error");
        assert_eq!(value["error_code"], "RATE_LIMITED");
        assert_eq!(value["request_id"], "7");
        assert_eq!(value["retryable"], true);
    }
}
