//! Runs on a session: sending `start_agent`, waiting for its `run_accepted`, and reading one run's
//! events to its terminal event on a socket that may carry several runs.
//!
//! What it must not do: take another run's frames. Everything not of the run asked for stays in
//! the backlog, in order.

use super::reading::Queued;
use super::{ClientError, Session, server_error};
use crate::grammar::{self, Violation};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::time::Instant as TokioInstant;

/// A run's `run_accepted` reply (PROTOCOL.md section 4).
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub run_id: String,
    pub thread_id: String,
    /// The whole `run_accepted` frame.
    pub frame: Value,
}

/// Every event of one run, in the order received, up to and including its terminal event.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTranscript {
    pub run_id: String,
    pub events: Vec<Value>,
    /// When each event was read off the socket, index for index with `events`.
    pub received_at: Vec<Instant>,
    /// The canaries found in each event ([`super::Frame::canaries`]), index for index with
    /// `events`.
    pub canaries: Vec<Vec<String>>,
    /// When the run's first event was read.
    pub first_event_at: Option<Instant>,
    /// When the terminal event was read.
    pub completed_at: Option<Instant>,
}

impl RunTranscript {
    /// The type of the last event when it is terminal (`agent_completed`, `agent_error`,
    /// `agent_cancelled`).
    pub fn terminal_type(&self) -> Option<&str> {
        self.events
            .last()
            .and_then(|event| event.get("type"))
            .and_then(Value::as_str)
            .filter(|kind| grammar::is_terminal_type(kind))
    }

    /// Whether the run ended with `agent_completed`.
    pub fn completed(&self) -> bool {
        self.terminal_type() == Some("agent_completed")
    }

    /// The final answer: `agent_completed.response`.
    pub fn response(&self) -> Option<&str> {
        self.events
            .iter()
            .find(|event| event.get("type").and_then(Value::as_str) == Some("agent_completed"))
            .and_then(|event| event.get("response"))
            .and_then(Value::as_str)
    }

    /// The `type` of each event, in order (`"<no type>"` for a frame without one).
    pub fn types(&self) -> Vec<&str> {
        self.events
            .iter()
            .map(|event| {
                event
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("<no type>")
            })
            .collect()
    }

    /// The agents that produced events (`agent` of each event).
    pub fn agents(&self) -> BTreeSet<String> {
        self.events
            .iter()
            .filter_map(|event| event.get("agent").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    /// The run judged by [`grammar::check_run`].
    pub fn violations(&self) -> Vec<Violation> {
        grammar::check_run(&self.events)
    }
}

/// `{"id", "type":"start_agent", "payload":{user_request, agent_type, ...extra}}`: the message
/// [`Session::start_agent`] sends. The explicit `user_request` and `agent_type` win over
/// same-named keys in `extra_payload`.
pub fn start_agent_message(
    request_id: &str,
    agent_type: &str,
    user_request: &str,
    extra_payload: Map<String, Value>,
) -> Value {
    let mut payload = extra_payload;
    payload.insert("user_request".to_owned(), Value::from(user_request));
    payload.insert("agent_type".to_owned(), Value::from(agent_type));
    json!({
        "id": request_id,
        "type": "start_agent",
        "payload": payload,
    })
}
impl Session {
    /// Sends `{"id", "type":"start_agent", "payload":{user_request, agent_type, ...extra}}`. The
    /// explicit `user_request` and `agent_type` win over same-named keys in `extra_payload`.
    ///
    /// # Errors
    /// As [`Session::send_json`].
    pub async fn start_agent(
        &mut self,
        request_id: &str,
        agent_type: &str,
        user_request: &str,
        extra_payload: Map<String, Value>,
    ) -> Result<(), ClientError> {
        self.send_json(&start_agent_message(
            request_id,
            agent_type,
            user_request,
            extra_payload,
        ))
        .await
    }

    /// Waits for the `run_accepted` that answers the request `request_id`, leaving every other frame
    /// in the backlog.
    ///
    /// # Errors
    /// [`ClientError::ServerError`] when the request was answered with an `error` frame (e.g.
    /// `AGENT_NOT_FOUND`), [`ClientError::Protocol`] when the `run_accepted` lacks `run_id` or
    /// `thread_id`, and the errors of [`Session::next_frame`].
    pub async fn wait_run_accepted(
        &mut self,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Accepted, ClientError> {
        let deadline = TokioInstant::now() + timeout;
        let (_, frame) = self
            .take_first(
                deadline,
                timeout,
                &format!("run_accepted for request {request_id}"),
                |value| {
                    value.get("request_id").and_then(Value::as_str) == Some(request_id)
                        && matches!(
                            value.get("type").and_then(Value::as_str),
                            Some("run_accepted" | "error")
                        )
                },
            )
            .await?;
        if frame.type_name() == Some("error") {
            return Err(server_error(frame.value));
        }
        let field = |name: &str| {
            frame
                .value
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ClientError::Protocol(format!("run_accepted has no string `{name}`"))
                })
        };
        Ok(Accepted {
            run_id: field("run_id")?,
            thread_id: field("thread_id")?,
            frame: frame.value,
        })
    }

    /// Reads the run `run_id` up to its terminal event. Frames that are not this run's events stay in
    /// the backlog in order, so nothing is lost when a socket carries several runs; events of the run
    /// already in the backlog are taken from there first. On failure the events read so far go back
    /// to the backlog in their arrival order.
    ///
    /// # Errors
    /// As [`Session::next_frame`], with the timeout covering the whole run.
    pub async fn collect_run(
        &mut self,
        run_id: &str,
        timeout: Duration,
    ) -> Result<RunTranscript, ClientError> {
        let deadline = TokioInstant::now() + timeout;
        let what = format!("the terminal event of run {run_id}");
        let mut taken: Vec<Queued> = Vec::new();
        loop {
            let next = self
                .take_first(deadline, timeout, &what, |value| {
                    value.get("run_id").and_then(Value::as_str) == Some(run_id)
                        && value
                            .get("type")
                            .and_then(Value::as_str)
                            .is_some_and(grammar::is_run_event_type)
                })
                .await;
            match next {
                Ok((arrival, frame)) => {
                    let terminal = frame.type_name().is_some_and(grammar::is_terminal_type);
                    taken.push(Queued { arrival, frame });
                    if terminal {
                        break;
                    }
                }
                Err(err) => {
                    self.restore(taken);
                    return Err(err);
                }
            }
        }
        let first_event_at = taken.first().map(|q| q.frame.received_at);
        let completed_at = taken.last().map(|q| q.frame.received_at);
        let received_at = taken.iter().map(|q| q.frame.received_at).collect();
        let (events, canaries) = taken
            .into_iter()
            .map(|q| (q.frame.value, q.frame.canaries))
            .unzip();
        Ok(RunTranscript {
            run_id: run_id.to_owned(),
            events,
            received_at,
            canaries,
            first_event_at,
            completed_at,
        })
    }

    /// Waits until the first event of run `run_id` has arrived and returns when it was read. The
    /// event stays where it is, so [`Session::collect_run`] still returns the whole run.
    ///
    /// # Errors
    /// As [`Session::next_frame`], with the timeout covering the whole wait.
    pub async fn wait_first_event(
        &mut self,
        run_id: &str,
        timeout: Duration,
    ) -> Result<Instant, ClientError> {
        let is_event = |value: &Value| {
            value.get("run_id").and_then(Value::as_str) == Some(run_id)
                && value
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(grammar::is_run_event_type)
        };
        if let Some(queued) = self.backlog.iter().find(|q| is_event(&q.frame.value)) {
            return Ok(queued.frame.received_at);
        }
        let deadline = TokioInstant::now() + timeout;
        let what = format!("the first event of run {run_id}");
        loop {
            let queued = self.read_socket(deadline, timeout, &what).await?;
            let found = is_event(&queued.frame.value).then_some(queued.frame.received_at);
            self.backlog.push_back(queued);
            if let Some(at) = found {
                return Ok(at);
            }
        }
    }
}
