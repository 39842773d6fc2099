//! From agentwire run events to AG-UI events: a pure function of the run's events so far.
//!
//! [`Mapper::map`] takes one run event and returns the AG-UI events it stands for, in order. Its
//! state (what is open) is derived only from the events it was given, so mapping a run's events
//! from `seq` 1 always yields the same AG-UI events; resume relies on this to send exactly the
//! bytes it sent the first time. The table is in `docs/agui.md`; in short:
//!
//! - the first event opens the run (`RUN_STARTED`) and the entry agent's step;
//! - each sub-agent is a step (`STEP_STARTED` / `STEP_FINISHED`, `stepName` = agent);
//! - each thinking step is one complete reasoning span;
//! - each tool call is `TOOL_CALL_START` / `ARGS` / `END` when it starts (AG-UI's END means "the
//!   arguments are complete"), and `TOOL_CALL_RESULT` when it completes, so no tool call is ever
//!   left open by a cancel or a failure;
//! - the answer is one text message;
//! - handoffs, progress, the plan and each tool's structured data are `CUSTOM` events;
//! - the terminal event first closes whatever is still open (the answer, then steps innermost
//!   first), then ends the run: `RUN_FINISHED` with the report as `result`, `RUN_FINISHED` with
//!   outcome `cancelled`, or `RUN_ERROR` with our error code. Nothing follows it.
//!
//! AG-UI ids are namespaced by the run id, because an AG-UI client keeps one message list per
//! thread across runs and would merge two runs' `call_1`s.
//!
//! This file must not do I/O or know about HTTP.

use super::event::{AguiEvent, Outcome, PROTOCOL_VERSION, Stamped};
use agentwire_protocol::{EventKind, RunEvent, ToolStatus};
use serde_json::json;

/// Prefix of every `CUSTOM` event name this server sends.
pub const CUSTOM_PREFIX: &str = "agentwire.";

/// The mapping state of one run: what has been opened and not yet closed.
#[derive(Debug, Default)]
pub struct Mapper {
    started: bool,
    finished: bool,
    /// Open steps, innermost last. `false`: a step of that name was already open, so no
    /// `STEP_STARTED` was sent for this one and no `STEP_FINISHED` will be.
    steps: Vec<(String, bool)>,
    /// The answer's text message is open (streamed `response_delta`s).
    answer_open: bool,
    /// Some of the answer was streamed; `agent_completed` then only closes the message.
    answer_streamed: bool,
}

impl Mapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the run's terminal event has been mapped.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The AG-UI events that stand for `event`, in order. Empty after the terminal event.
    pub fn map(&mut self, event: &RunEvent) -> Vec<Stamped> {
        let mut out = Out {
            events: Vec::new(),
            timestamp: event.timestamp.timestamp_millis(),
        };
        if self.finished {
            return out.events;
        }
        if !self.started {
            self.start(event, &mut out);
        }
        let run_id = event.run_id.as_str();
        match &event.kind {
            EventKind::AgentStarted { user_request, plan } => {
                out.push(custom(
                    "agent_started",
                    json!({"agent": event.agent, "userRequest": user_request, "plan": plan}),
                ));
            }
            EventKind::AgentThinking { message } => {
                let message_id = format!("{run_id}:thinking:{}", event.seq);
                out.push(AguiEvent::ReasoningStart {
                    message_id: message_id.clone(),
                });
                out.push(AguiEvent::ReasoningMessageStart {
                    message_id: message_id.clone(),
                    role: "reasoning",
                });
                out.push(AguiEvent::ReasoningMessageContent {
                    message_id: message_id.clone(),
                    delta: message.clone(),
                });
                out.push(AguiEvent::ReasoningMessageEnd {
                    message_id: message_id.clone(),
                });
                out.push(AguiEvent::ReasoningEnd { message_id });
            }
            EventKind::ToolExecuting {
                tool,
                tool_call_id,
                args,
            } => {
                let tool_call_id = ag_ui_tool_call_id(run_id, tool_call_id);
                out.push(AguiEvent::ToolCallStart {
                    tool_call_id: tool_call_id.clone(),
                    tool_call_name: tool.clone(),
                });
                out.push(AguiEvent::ToolCallArgs {
                    tool_call_id: tool_call_id.clone(),
                    delta: args.to_string(),
                });
                out.push(AguiEvent::ToolCallEnd { tool_call_id });
            }
            EventKind::ToolCompleted {
                tool,
                tool_call_id,
                status,
                result,
                data,
                duration_ms,
                cached,
            } => {
                let tool_call_id = ag_ui_tool_call_id(run_id, tool_call_id);
                out.push(AguiEvent::ToolCallResult {
                    message_id: format!("{tool_call_id}:result"),
                    tool_call_id: tool_call_id.clone(),
                    content: result.clone(),
                    role: "tool",
                });
                let status = match status {
                    ToolStatus::Ok => "ok",
                    ToolStatus::Error => "error",
                };
                let mut value = json!({"toolCallId": tool_call_id, "tool": tool, "agent": event.agent,
                           "status": status, "durationMs": duration_ms, "data": data});
                // Like the native frame: said only of a reused (memoized) result.
                if *cached && let Some(object) = value.as_object_mut() {
                    object.insert("cached".into(), json!(true));
                }
                out.push(custom("tool_completed", value));
            }
            EventKind::AgentHandoff {
                from_agent,
                to_agent,
                reason,
            } => out.push(custom(
                "agent_handoff",
                json!({"fromAgent": from_agent, "toAgent": to_agent, "reason": reason}),
            )),
            EventKind::SubagentStarted { .. } => self.open_step(&event.agent, &mut out),
            EventKind::SubagentCompleted {
                parent_agent,
                summary,
            } => {
                self.close_step(&event.agent, &mut out);
                out.push(custom(
                    "subagent_completed",
                    json!({"agent": event.agent, "parentAgent": parent_agent, "summary": summary}),
                ));
            }
            EventKind::Progress { percent, message } => out.push(custom(
                "progress",
                json!({"agent": event.agent, "percent": percent, "message": message}),
            )),
            EventKind::ResponseDelta { delta } => {
                self.open_answer(run_id, &mut out);
                if !delta.is_empty() {
                    self.answer_streamed = true;
                    out.push(AguiEvent::TextMessageContent {
                        message_id: answer_id(run_id),
                        delta: delta.clone(),
                    });
                }
            }
            EventKind::AgentCompleted {
                response, report, ..
            } => {
                if !self.answer_streamed && !response.is_empty() {
                    self.open_answer(run_id, &mut out);
                    out.push(AguiEvent::TextMessageContent {
                        message_id: answer_id(run_id),
                        delta: response.clone(),
                    });
                }
                self.close_all(run_id, &mut out);
                out.push(AguiEvent::RunFinished {
                    thread_id: event.thread_id.clone(),
                    run_id: run_id.to_owned(),
                    result: (!report.is_null()).then(|| report.clone()),
                    outcome: Outcome::Success,
                });
            }
            EventKind::AgentError {
                error_code,
                message,
                ..
            } => {
                self.close_all(run_id, &mut out);
                out.push(AguiEvent::RunError {
                    message: message.clone(),
                    code: error_code.as_str().to_owned(),
                });
            }
            EventKind::AgentCancelled { .. } => {
                self.close_all(run_id, &mut out);
                out.push(AguiEvent::RunFinished {
                    thread_id: event.thread_id.clone(),
                    run_id: run_id.to_owned(),
                    result: None,
                    outcome: Outcome::Cancelled,
                });
            }
        }
        if event.kind.is_terminal() {
            self.finished = true;
        }
        out.events
    }

    /// `RUN_STARTED` and the entry agent's step, before whatever the first event is.
    fn start(&mut self, event: &RunEvent, out: &mut Out) {
        self.started = true;
        out.push(AguiEvent::RunStarted {
            thread_id: event.thread_id.clone(),
            run_id: event.run_id.clone(),
            protocol_version: PROTOCOL_VERSION,
        });
        self.open_step(&event.agent, out);
    }

    fn open_step(&mut self, agent: &str, out: &mut Out) {
        // AG-UI refuses a second open step of the same name; an agent nested in itself keeps the
        // outer step.
        let fresh = !self.steps.iter().any(|(name, _)| name == agent);
        if fresh {
            out.push(AguiEvent::StepStarted {
                step_name: agent.to_owned(),
            });
        }
        self.steps.push((agent.to_owned(), fresh));
    }

    fn close_step(&mut self, agent: &str, out: &mut Out) {
        let Some(index) = self.steps.iter().rposition(|(name, _)| name == agent) else {
            return;
        };
        // Steps opened inside this one and never finished end with it.
        while self.steps.len() > index {
            if let Some((name, sent)) = self.steps.pop()
                && sent
            {
                out.push(AguiEvent::StepFinished { step_name: name });
            }
        }
    }

    fn open_answer(&mut self, run_id: &str, out: &mut Out) {
        if !self.answer_open {
            self.answer_open = true;
            out.push(AguiEvent::TextMessageStart {
                message_id: answer_id(run_id),
                role: "assistant",
            });
        }
    }

    /// Closes the answer, then every open step, innermost first.
    fn close_all(&mut self, run_id: &str, out: &mut Out) {
        if self.answer_open {
            self.answer_open = false;
            out.push(AguiEvent::TextMessageEnd {
                message_id: answer_id(run_id),
            });
        }
        while let Some((name, sent)) = self.steps.pop() {
            if sent {
                out.push(AguiEvent::StepFinished { step_name: name });
            }
        }
    }
}

/// The events mapped from one agentwire event, all stamped with its time.
struct Out {
    events: Vec<Stamped>,
    timestamp: i64,
}

impl Out {
    fn push(&mut self, event: AguiEvent) {
        self.events.push(Stamped {
            event,
            timestamp: self.timestamp,
        });
    }
}

fn custom(name: &str, value: serde_json::Value) -> AguiEvent {
    AguiEvent::Custom {
        name: format!("{CUSTOM_PREFIX}{name}"),
        value,
    }
}

/// The AG-UI id of one of our tool calls: unique across the thread, not only within the run.
pub fn ag_ui_tool_call_id(run_id: &str, tool_call_id: &str) -> String {
    format!("{run_id}:{tool_call_id}")
}

/// The id of the run's answer message.
pub fn answer_id(run_id: &str) -> String {
    format!("{run_id}:answer")
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_check::agui::{Violation, verify as verify_json};
    use agentwire_protocol::ErrorCode;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;
    use serde_json::Value;

    fn event(seq: u64, agent: &str, kind: EventKind) -> RunEvent {
        RunEvent {
            run_id: "run_1".into(),
            thread_id: "thr_1".into(),
            seq,
            agent: agent.into(),
            timestamp: DateTime::<Utc>::from_timestamp_millis(1_700_000_000_000 + seq as i64)
                .unwrap(),
            kind,
        }
    }

    /// Numbers `kinds` from seq 1, each with its agent.
    fn run(kinds: Vec<(&str, EventKind)>) -> Vec<RunEvent> {
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, (agent, kind))| event(i as u64 + 1, agent, kind))
            .collect()
    }

    /// AG-UI's ordering rules, judged on the JSON a client would read.
    fn verify(mapped: &[Stamped]) -> Result<(), Violation> {
        let json: Vec<Value> = mapped
            .iter()
            .map(|e| serde_json::from_str(&e.to_json()).unwrap())
            .collect();
        verify_json(&json)
    }

    fn map_all(events: &[RunEvent]) -> Vec<Stamped> {
        let mut mapper = Mapper::new();
        events.iter().flat_map(|e| mapper.map(e)).collect()
    }

    fn types(events: &[Stamped]) -> Vec<&'static str> {
        events.iter().map(|e| e.event.type_name()).collect()
    }

    fn started(agent: &str) -> (&str, EventKind) {
        (
            agent,
            EventKind::AgentStarted {
                user_request: "what did we spend?".into(),
                plan: vec!["data".into()],
            },
        )
    }

    fn thinking(agent: &str) -> (&str, EventKind) {
        (
            agent,
            EventKind::AgentThinking {
                message: "looking at last month".into(),
            },
        )
    }

    fn tool_pair<'a>(agent: &'a str, id: &str) -> [(&'a str, EventKind); 2] {
        [
            (
                agent,
                EventKind::ToolExecuting {
                    tool: "query_usage".into(),
                    tool_call_id: id.into(),
                    args: json!({"timeframe": "30d"}),
                },
            ),
            (
                agent,
                EventKind::ToolCompleted {
                    tool: "query_usage".into(),
                    tool_call_id: id.into(),
                    status: ToolStatus::Ok,
                    result: "1,200 records".into(),
                    data: json!({"records": 1200}).into(),
                    duration_ms: 3,
                    cached: false,
                },
            ),
        ]
    }

    fn completed(agent: &str) -> (&str, EventKind) {
        (
            agent,
            EventKind::AgentCompleted {
                response: "You spent **$12**.".into(),
                report: json!({"summary": {"total_cost_usd": 12.0}}),
                duration_ms: 40,
            },
        )
    }

    fn supervisor_run() -> Vec<RunEvent> {
        let mut kinds = vec![started("supervisor"), thinking("supervisor")];
        kinds.push((
            "supervisor",
            EventKind::AgentHandoff {
                from_agent: "supervisor".into(),
                to_agent: "data".into(),
                reason: "needs figures".into(),
            },
        ));
        kinds.push((
            "data",
            EventKind::SubagentStarted {
                parent_agent: "supervisor".into(),
            },
        ));
        kinds.push(thinking("data"));
        kinds.extend(tool_pair("data", "call_1"));
        kinds.push((
            "data",
            EventKind::SubagentCompleted {
                parent_agent: "supervisor".into(),
                summary: "$12 in 30 days".into(),
            },
        ));
        kinds.push((
            "supervisor",
            EventKind::Progress {
                percent: 50.0,
                message: "data done".into(),
            },
        ));
        kinds.push(completed("supervisor"));
        run(kinds)
    }

    #[test]
    fn a_completed_supervisor_run_maps_to_the_documented_sequence() {
        let mapped = map_all(&supervisor_run());
        assert_eq!(
            types(&mapped),
            [
                "RUN_STARTED",
                "STEP_STARTED",
                "CUSTOM",
                "REASONING_START",
                "REASONING_MESSAGE_START",
                "REASONING_MESSAGE_CONTENT",
                "REASONING_MESSAGE_END",
                "REASONING_END",
                "CUSTOM",
                "STEP_STARTED",
                "REASONING_START",
                "REASONING_MESSAGE_START",
                "REASONING_MESSAGE_CONTENT",
                "REASONING_MESSAGE_END",
                "REASONING_END",
                "TOOL_CALL_START",
                "TOOL_CALL_ARGS",
                "TOOL_CALL_END",
                "TOOL_CALL_RESULT",
                "CUSTOM",
                "STEP_FINISHED",
                "CUSTOM",
                "CUSTOM",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "STEP_FINISHED",
                "RUN_FINISHED",
            ]
        );
        verify(&mapped).unwrap();
        let json: Vec<Value> = mapped
            .iter()
            .map(|e| serde_json::from_str(&e.to_json()).unwrap())
            .collect();
        assert_eq!(json[0]["threadId"], "thr_1");
        assert_eq!(json[0]["runId"], "run_1");
        assert_eq!(json[1]["stepName"], "supervisor");
        assert_eq!(json[9]["stepName"], "data");
        assert_eq!(json[15]["toolCallId"], "run_1:call_1");
        assert_eq!(json[15]["toolCallName"], "query_usage");
        assert_eq!(json[16]["delta"], r#"{"timeframe":"30d"}"#);
        assert_eq!(json[18]["content"], "1,200 records");
        assert_eq!(json[19]["name"], "agentwire.tool_completed");
        assert_eq!(json[19]["value"]["data"]["records"], 1200);
        assert_eq!(json[24]["delta"], "You spent **$12**.");
        assert_eq!(json[27]["result"]["summary"]["total_cost_usd"], 12.0);
        assert_eq!(json[27]["outcome"]["type"], "success");
        // Every event carries the time of the agentwire event it came from.
        assert_eq!(json[27]["timestamp"], 1_700_000_000_000_i64 + 10);
    }

    #[test]
    fn cancelled_mid_tool_closes_everything_then_finishes_cancelled() {
        let mut kinds = vec![started("supervisor")];
        kinds.push((
            "data",
            EventKind::SubagentStarted {
                parent_agent: "supervisor".into(),
            },
        ));
        kinds.push(tool_pair("data", "call_1")[0].clone());
        // The engine closes an interrupted tool before the terminal event.
        kinds.push((
            "data",
            EventKind::ToolCompleted {
                tool: "query_usage".into(),
                tool_call_id: "call_1".into(),
                status: ToolStatus::Error,
                result: "cancelled before the tool finished".into(),
                data: agentwire_protocol::ToolData::null(),
                duration_ms: 1,
                cached: false,
            },
        ));
        kinds.push((
            "supervisor",
            EventKind::AgentCancelled {
                reason: "cancelled by the user".into(),
            },
        ));
        let mapped = map_all(&run(kinds));
        verify(&mapped).unwrap();
        let tail: Vec<_> = types(&mapped).into_iter().rev().take(3).collect();
        assert_eq!(tail, ["RUN_FINISHED", "STEP_FINISHED", "STEP_FINISHED"]);
        let last: Value = serde_json::from_str(&mapped.last().unwrap().to_json()).unwrap();
        assert_eq!(last["outcome"]["type"], "cancelled");
        assert!(last.get("result").is_none());
    }

    #[test]
    fn a_failed_run_ends_with_run_error_carrying_our_code() {
        let kinds = vec![
            started("data"),
            (
                "data",
                EventKind::ResponseDelta {
                    delta: "Partial".into(),
                },
            ),
            (
                "data",
                EventKind::AgentError {
                    error_code: ErrorCode::Timeout,
                    message: "the run exceeded its 120 s time limit".into(),
                    retryable: true,
                },
            ),
        ];
        let mapped = map_all(&run(kinds));
        verify(&mapped).unwrap();
        assert_eq!(
            types(&mapped)[3..],
            [
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "STEP_FINISHED",
                "RUN_ERROR"
            ]
        );
        let last: Value = serde_json::from_str(&mapped.last().unwrap().to_json()).unwrap();
        assert_eq!(last["code"], "TIMEOUT");
        assert_eq!(last["message"], "the run exceeded its 120 s time limit");
    }

    #[test]
    fn a_streamed_answer_is_not_repeated_at_completion() {
        let kinds = vec![
            started("data"),
            (
                "data",
                EventKind::ResponseDelta {
                    delta: "You spent ".into(),
                },
            ),
            ("data", EventKind::ResponseDelta { delta: "".into() }),
            (
                "data",
                EventKind::ResponseDelta {
                    delta: "**$12**.".into(),
                },
            ),
            completed("data"),
        ];
        let mapped = map_all(&run(kinds));
        verify(&mapped).unwrap();
        let text: String = mapped
            .iter()
            .filter_map(|e| match &e.event {
                AguiEvent::TextMessageContent { delta, .. } => Some(delta.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "You spent **$12**.");
    }

    #[test]
    fn nothing_follows_the_terminal_event() {
        let mut events = supervisor_run();
        events.push(event(99, "supervisor", thinking("supervisor").1));
        let mut mapper = Mapper::new();
        let mapped: Vec<_> = events.iter().flat_map(|e| mapper.map(e)).collect();
        assert!(mapper.is_finished());
        assert!(mapped.last().unwrap().event.is_terminal());
    }

    #[test]
    fn an_agent_nested_in_itself_keeps_one_step() {
        let kinds = vec![
            started("data"),
            (
                "data",
                EventKind::SubagentStarted {
                    parent_agent: "data".into(),
                },
            ),
            (
                "data",
                EventKind::SubagentCompleted {
                    parent_agent: "data".into(),
                    summary: "s".into(),
                },
            ),
            completed("data"),
        ];
        let mapped = map_all(&run(kinds));
        verify(&mapped).unwrap();
        let steps = types(&mapped)
            .into_iter()
            .filter(|t| t.starts_with("STEP_"))
            .count();
        assert_eq!(steps, 2);
    }

    /// One agentwire event kind the grammar allows between `agent_started` and the end.
    fn middle_kind() -> impl Strategy<Value = u8> {
        0u8..8
    }

    /// Builds a run the grammar allows from choices: tool pairs stay matched (the engine closes an
    /// open one before the terminal event), sub-agents may be left open, answers may stream.
    fn grammatical_run(choices: Vec<u8>, ending: u8) -> Vec<RunEvent> {
        let agents = ["data", "optimization", "reporting"];
        let mut kinds: Vec<(&str, EventKind)> = vec![started("supervisor")];
        let mut next_call = 1;
        for (i, choice) in choices.iter().enumerate() {
            let agent = agents[i % agents.len()];
            match choice {
                0 => kinds.push(thinking(agent)),
                1 => {
                    kinds.extend(tool_pair(agent, &format!("call_{next_call}")));
                    next_call += 1;
                }
                2 => kinds.push((
                    agent,
                    EventKind::SubagentStarted {
                        parent_agent: "supervisor".into(),
                    },
                )),
                3 => kinds.push((
                    agent,
                    EventKind::SubagentCompleted {
                        parent_agent: "supervisor".into(),
                        summary: "done".into(),
                    },
                )),
                4 => kinds.push((
                    "supervisor",
                    EventKind::AgentHandoff {
                        from_agent: "supervisor".into(),
                        to_agent: agent.into(),
                        reason: "r".into(),
                    },
                )),
                5 => kinds.push((
                    "supervisor",
                    EventKind::Progress {
                        percent: 10.0 * f64::from(*choice),
                        message: "m".into(),
                    },
                )),
                6 => kinds.push((
                    "supervisor",
                    EventKind::ResponseDelta {
                        delta: format!("part {i} "),
                    },
                )),
                _ => kinds.push((
                    agent,
                    EventKind::SubagentStarted {
                        parent_agent: agent.into(),
                    },
                )),
            }
        }
        kinds.push(match ending % 3 {
            0 => completed("supervisor"),
            1 => (
                "supervisor",
                EventKind::AgentError {
                    error_code: ErrorCode::Interrupted,
                    message: "the server shut down".into(),
                    retryable: true,
                },
            ),
            _ => (
                "supervisor",
                EventKind::AgentCancelled {
                    reason: "cancelled".into(),
                },
            ),
        });
        run(kinds)
    }

    proptest! {
        /// Every run the grammar allows maps to a stream AG-UI's ordering rules accept, and the
        /// mapping of a prefix is a prefix of the mapping: what resume sends is what was sent.
        #[test]
        fn every_grammatical_run_maps_to_a_valid_ag_ui_stream(
            choices in proptest::collection::vec(middle_kind(), 0..40),
            ending in 0u8..3,
            cut in 0usize..50,
        ) {
            let events = grammatical_run(choices, ending);
            let mapped = map_all(&events);
            prop_assert!(verify(&mapped).is_ok(), "{:?}", verify(&mapped));
            prop_assert!(mapped.last().is_some_and(|e| e.event.is_terminal()));
            let cut = cut.min(events.len());
            let prefix = map_all(&events[..cut]);
            prop_assert_eq!(&mapped[..prefix.len()], &prefix[..]);
        }
    }
}
