//! What the event log keeps of a run's events, and how they are read back: the run's question
//! is stored once, in its run row (`runs.user_request`), and not again in
//! `agent_started.user_request` and `agent_completed.report.question`. Every reader of the log
//! puts it back from the row ([`restore`]), so clients get exactly the frames that were sent.
//!
//! This module must not change anything else in an event: a frame put back must be the frame
//! that was sent, byte for byte, once encoded again.

use agentwire_protocol::{EventKind, RunEvent, ServerFrame};

/// The frame the log stores for `event` when it is not the frame sent: the run's `question`
/// left out. `None` when the event is stored as sent.
pub(crate) fn stored_form(event: &RunEvent, question: &str) -> Option<String> {
    let kind = match &event.kind {
        // Never blank (a blank question is refused), so an empty one in the log means "the
        // run's question".
        EventKind::AgentStarted { user_request, plan } if user_request == question => {
            EventKind::AgentStarted {
                user_request: String::new(),
                plan: plan.clone(),
            }
        }
        // The report always carries `question` (null when not computed), so a report without
        // the key means "the run's question".
        EventKind::AgentCompleted {
            response,
            report,
            duration_ms,
        } if report.get("question").and_then(|q| q.as_str()) == Some(question) => {
            let mut report = report.clone();
            if let Some(fields) = report.as_object_mut() {
                fields.remove("question");
            }
            EventKind::AgentCompleted {
                response: response.clone(),
                report,
                duration_ms: *duration_ms,
            }
        }
        _ => return None,
    };
    let stored = RunEvent {
        kind,
        ..event.clone()
    };
    Some(ServerFrame::Event(stored).to_json())
}

/// Whether an event read from the log lacks the run's question (see [`restore`]).
pub(crate) fn needs_question(event: &RunEvent) -> bool {
    match &event.kind {
        EventKind::AgentStarted { user_request, .. } => user_request.is_empty(),
        EventKind::AgentCompleted { report, .. } => report
            .as_object()
            .is_some_and(|r| !r.contains_key("question")),
        _ => false,
    }
}

/// Puts the run's question back into an event read from the log.
pub(crate) fn restore(event: &mut RunEvent, question: &str) {
    match &mut event.kind {
        EventKind::AgentStarted { user_request, .. } if user_request.is_empty() => {
            *user_request = question.to_owned();
        }
        EventKind::AgentCompleted { report, .. } => {
            if let Some(fields) = report.as_object_mut()
                && !fields.contains_key("question")
            {
                fields.insert("question".into(), question.into());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::EventFrame;
    use serde_json::json;

    fn event(kind: EventKind) -> RunEvent {
        RunEvent {
            run_id: "r".into(),
            thread_id: "t".into(),
            seq: 1,
            agent: "supervisor".into(),
            timestamp: agentwire_protocol::time::now(),
            kind,
        }
    }

    #[test]
    fn the_question_is_left_out_and_put_back_to_the_bytes_sent() {
        let question = "Why did our spend spike in \u{1F4B8}?";
        let started = event(EventKind::AgentStarted {
            user_request: question.into(),
            plan: vec!["triage".into()],
        });
        let completed = event(EventKind::AgentCompleted {
            response: "## Answer".into(),
            report: json!({"question": question, "intent": "lookup", "total": 1.1e-7}),
            duration_ms: 9,
        });
        for sent in [started, completed] {
            let stored = stored_form(&sent, question).unwrap();
            assert!(!stored.contains("spend spike"), "{stored}");
            let ServerFrame::Event(mut read) = serde_json::from_str(&stored).unwrap() else {
                panic!("{stored}")
            };
            assert!(needs_question(&read));
            restore(&mut read, question);
            assert!(!needs_question(&read));
            assert_eq!(read, sent);
            assert_eq!(
                EventFrame::encode(&read).as_str(),
                EventFrame::encode(&sent).as_str()
            );
        }
    }

    #[test]
    fn anything_else_is_stored_as_sent() {
        let other_question = event(EventKind::AgentStarted {
            user_request: "another".into(),
            plan: vec![],
        });
        assert_eq!(stored_form(&other_question, "q"), None);
        let null_question = event(EventKind::AgentCompleted {
            response: String::new(),
            report: json!({"question": null}),
            duration_ms: 0,
        });
        assert_eq!(stored_form(&null_question, "q"), None);
        assert!(!needs_question(&null_question));
        let thinking = event(EventKind::AgentThinking {
            message: "q".into(),
        });
        assert_eq!(stored_form(&thinking, "q"), None);
        assert!(!needs_question(&thinking));
    }
}
