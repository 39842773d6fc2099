//! What the event log keeps of a run's events, and how they are read back: a long question (over
//! [`LEFT_OUT_ABOVE`] bytes; up to 64 KiB are accepted) is stored once, in its run row
//! (`runs.user_request`), and not again in `agent_started.user_request` and
//! `agent_completed.report.question`. Every reader of the log puts it back from the row
//! ([`restore`]), so clients get exactly the frames that were sent. A short question stays in
//! the stored events: its two copies cost the log fewer bytes than encoding those two frames a
//! second time, without it, costs CPU (the answer's frame is the run's largest, ~24 KB for a
//! supervisor run), and the log then stores each frame's own text, shared with the sockets.
//!
//! This module must not change anything else in an event: a frame put back must be the frame
//! that was sent, byte for byte, once encoded again.

use agentwire_protocol::{EventKind, RunEvent};
use std::sync::Arc;

/// Questions up to this many bytes are stored with the events as sent.
const LEFT_OUT_ABOVE: usize = 1024;

/// The frame the log stores for `event` when it is not the frame sent: the run's `question`
/// left out, when it is longer than [`LEFT_OUT_ABOVE`]. `None` when the event is stored as sent.
///
/// The question is taken out of the event while the stored frame is written and put back
/// after, so the event (and its report, the largest value of a run) is never copied for it.
pub(crate) fn stored_form(event: &mut RunEvent, question: &str) -> Option<Arc<str>> {
    if question.len() <= LEFT_OUT_ABOVE {
        return None;
    }
    let taken = match &mut event.kind {
        // Never blank (a blank question is refused), so an empty one in the log means "the
        // run's question".
        EventKind::AgentStarted { user_request, .. } if user_request == question => {
            Taken::Request(std::mem::take(user_request))
        }
        // The report always carries `question` (null when not computed), so a report without
        // the key means "the run's question".
        EventKind::AgentCompleted { report, .. }
            if report.get("question").and_then(|q| q.as_str()) == Some(question) =>
        {
            Taken::Report(report.as_object_mut()?.remove("question")?)
        }
        _ => return None,
    };
    let stored = crate::frame::text(event);
    match (&mut event.kind, taken) {
        (EventKind::AgentStarted { user_request, .. }, Taken::Request(asked)) => {
            *user_request = asked;
        }
        (EventKind::AgentCompleted { report, .. }, Taken::Report(asked)) => {
            if let Some(fields) = report.as_object_mut() {
                fields.insert("question".into(), asked);
            }
        }
        _ => {}
    }
    Some(stored)
}

/// What [`stored_form`] took out of an event, to put back.
enum Taken {
    Request(String),
    Report(serde_json::Value),
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
    fn a_long_question_is_left_out_and_put_back_to_the_bytes_sent() {
        let question = format!(
            "Why did our spend spike in \u{1F4B8}? {}",
            "Context. ".repeat(LEFT_OUT_ABOVE / 8)
        );
        let question = question.as_str();
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
            let mut held = sent.clone();
            let stored = stored_form(&mut held, question).unwrap();
            assert_eq!(held, sent, "the event is given back whole");
            assert!(!stored.contains("spend spike"), "{stored}");
            let agentwire_protocol::ServerFrame::Event(mut read) =
                serde_json::from_str(&stored).unwrap()
            else {
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
    fn a_short_question_is_stored_as_sent() {
        let question = "q".repeat(LEFT_OUT_ABOVE);
        let mut started = event(EventKind::AgentStarted {
            user_request: question.clone(),
            plan: vec![],
        });
        assert_eq!(stored_form(&mut started, &question), None);
        assert!(!needs_question(&started));
    }

    #[test]
    fn anything_else_is_stored_as_sent() {
        let question = "q".repeat(LEFT_OUT_ABOVE + 1);
        let mut other_question = event(EventKind::AgentStarted {
            user_request: "another".into(),
            plan: vec![],
        });
        assert_eq!(stored_form(&mut other_question, &question), None);
        let mut null_question = event(EventKind::AgentCompleted {
            response: String::new(),
            report: json!({"question": null}),
            duration_ms: 0,
        });
        assert_eq!(stored_form(&mut null_question, &question), None);
        assert!(!needs_question(&null_question));
        let mut thinking = event(EventKind::AgentThinking {
            message: "q".into(),
        });
        assert_eq!(stored_form(&mut thinking, &question), None);
        assert!(!needs_question(&thinking));
    }
}
