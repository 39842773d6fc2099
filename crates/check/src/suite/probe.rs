//! [`Probe`]: a [`Session`] that records everything it reads, and the runs it starts.
//!
//! Every frame a case reads goes through a probe, which keeps it in the case's transcript (shown
//! when the case fails), scans it for other users' canaries and run ids, and checks the section 3
//! rules on frames that are not run events. A run is started from a [`Request`] (the message, in
//! any of the forms that start a run, with a canary in its question) and followed to its end:
//! the probe measures time to first event and to completion, watches the socket a little longer
//! for anything more of the run, and files the run for the grammar cases. [`Probe::run_to_end`]
//! is the whole of it in one call, as cases use it.
//!
//! What it must not do: hide a frame. A frame read is always in some transcript and always
//! scanned; a run that was followed is always judged, and one that could not be followed is
//! reported.

use super::config::SuiteConfig;
use super::context::{Ctx, JudgedRun, RunSummary, Shared, User, case_tags};
use super::outcome::{OrOutcome, Outcome, ensure};
use crate::client::{
    ClientError, ConnectOptions, Credentials, RunTranscript, Session, start_agent_message,
};
use crate::grammar;
use crate::isolation::{Leak, LeakKind};
use crate::metrics::Tags;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A message that starts a run, before it is given its request id and canary.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The agent the run is of, as reports name it (`data`, also when the message says
    /// `unified_data_agent`).
    pub agent: String,
    form: Form,
    /// Extra fields: `start_agent`'s payload, `agent_execute`'s top level.
    params: Map<String, Value>,
}

#[derive(Debug, Clone)]
enum Form {
    StartAgent {
        agent_type: String,
        question: String,
    },
    AgentExecute {
        agent_type: String,
        query: String,
    },
    UserMessage {
        content: String,
    },
    /// `agent_execute` with a structured task in `data` and no question.
    Task {
        agent_type: String,
        data: Value,
    },
}

impl Request {
    /// `start_agent` with `agent_type` and `user_request`.
    pub fn start_agent(agent_type: &str, question: &str) -> Self {
        Self {
            agent: agent_type.to_owned(),
            form: Form::StartAgent {
                agent_type: agent_type.to_owned(),
                question: question.to_owned(),
            },
            params: Map::new(),
        }
    }

    /// `agent_execute` with `agent_type` and `query` (the older form of `start_agent`).
    pub fn agent_execute(agent_type: &str, query: &str) -> Self {
        Self {
            agent: agent_type.to_owned(),
            form: Form::AgentExecute {
                agent_type: agent_type.to_owned(),
                query: query.to_owned(),
            },
            params: Map::new(),
        }
    }

    /// `agent_execute` with a structured task: the fields in `data`, no question (issue 10).
    pub fn task(agent_type: &str, data: Value) -> Self {
        Self {
            agent: agent_type.to_owned(),
            form: Form::Task {
                agent_type: agent_type.to_owned(),
                data,
            },
            params: Map::new(),
        }
    }

    /// `user_message` with `content`: a supervisor run.
    pub fn user_message(content: &str) -> Self {
        Self {
            agent: "supervisor".to_owned(),
            form: Form::UserMessage {
                content: content.to_owned(),
            },
            params: Map::new(),
        }
    }

    /// Names the run's agent in reports when the message uses an alias.
    pub fn of_agent(mut self, agent: &str) -> Self {
        agent.clone_into(&mut self.agent);
        self
    }

    /// Adds a field (`thread_id`, a structured task...).
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.params.insert(name.to_owned(), value);
        self
    }

    /// The message, with `[ref canary]` after the question so that every frame that echoes it
    /// can be traced to its user.
    pub fn message(&self, id: &str, canary: &str) -> Value {
        let marked = |text: &str| format!("{text} [ref {canary}]");
        match &self.form {
            Form::StartAgent {
                agent_type,
                question,
            } => start_agent_message(id, agent_type, &marked(question), self.params.clone()),
            Form::AgentExecute { agent_type, query } => {
                let mut message = self.params.clone();
                message.insert("type".to_owned(), json!("agent_execute"));
                message.insert("id".to_owned(), json!(id));
                message.insert("agent_type".to_owned(), json!(agent_type));
                message.insert("query".to_owned(), json!(marked(query)));
                Value::Object(message)
            }
            Form::UserMessage { content } => {
                json!({"type": "user_message", "id": id, "content": marked(content)})
            }
            // A task has no question to mark: the canary goes in a field of its own, which the
            // task keeps as a parameter.
            Form::Task { agent_type, data } => {
                let mut data = data.clone();
                if let Some(fields) = data.as_object_mut() {
                    fields.insert("ref".to_owned(), json!(canary));
                }
                json!({"type": "agent_execute", "id": id, "agent_type": agent_type, "data": data})
            }
        }
    }
}

/// A request sent and not yet accepted.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub request_id: String,
    pub agent: String,
    pub canary: String,
    pub sent_at: Instant,
}

/// An accepted run.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub request_id: String,
    pub run_id: String,
    pub agent: String,
    pub canary: String,
    pub sent_at: Instant,
}

/// A run followed to its end.
#[derive(Debug, Clone)]
pub(crate) struct Collected {
    pub started: Started,
    pub run: RunTranscript,
    /// From `start_agent` to the first event, in milliseconds.
    pub ttfe_ms: Option<f64>,
    /// From `start_agent` to the terminal event, in milliseconds.
    pub ttc_ms: Option<f64>,
}

impl Collected {
    pub fn run_id(&self) -> &str {
        &self.started.run_id
    }

    pub fn completed(&self) -> bool {
        self.run.completed()
    }

    /// How the run ended, for reasons: `agent_error NO_DATA: ...`.
    pub fn ending(&self) -> String {
        ending(&self.run)
    }
}

/// How a run ended, for reasons: `agent_error NO_DATA: ...`.
pub(crate) fn ending(run: &RunTranscript) -> String {
    let text = |frame: &Value, name: &str| {
        frame
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let Some(last) = run.events.last() else {
        return "no events".to_owned();
    };
    match last
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("<no type>")
    {
        "agent_error" => format!(
            "agent_error {}: {}",
            text(last, "error_code"),
            text(last, "message")
        ),
        "agent_cancelled" => format!("agent_cancelled: {}", text(last, "reason")),
        other => other.to_owned(),
    }
}

/// A session that records what it reads.
pub(crate) struct Probe {
    pub session: Session,
    pub user: String,
    pub case: &'static str,
    pub transcript: Vec<Value>,
    pub connect_ms: f64,
    /// Run ids this socket itself named in a request (`cancel`, `resume`): an error reply that
    /// echoes one back tells the sender nothing new, so it is not a leak.
    named_runs: Vec<String>,
    shared: Arc<Shared>,
    config: SuiteConfig,
}

impl Probe {
    /// Connects as `user` for the case being carried out, measuring the connect latency.
    pub async fn connect(
        ctx: &Ctx,
        user: &User,
        credentials: Credentials,
    ) -> Result<Probe, ClientError> {
        Self::connect_with(ctx, &user.identity.user, ctx.options(credentials)).await
    }

    pub async fn connect_with(
        ctx: &Ctx,
        user: &str,
        options: ConnectOptions,
    ) -> Result<Probe, ClientError> {
        let begun = Instant::now();
        let session = Session::connect(&options).await?;
        let connect_ms = begun.elapsed().as_secs_f64() * 1e3;
        ctx.shared
            .with_metrics(|m| m.record("connect", connect_ms, &case_tags(ctx.case)));
        let mut probe = Probe {
            session,
            user: user.to_owned(),
            case: ctx.case,
            transcript: Vec::new(),
            connect_ms,
            named_runs: Vec::new(),
            shared: ctx.shared.clone(),
            config: ctx.config.clone(),
        };
        if let Some(info) = probe.session.connection_info().cloned() {
            probe.observe(&info);
        }
        Ok(probe)
    }

    /// Files a frame: transcript, leak scan, section 3 checks for frames outside runs.
    fn observe(&mut self, frame: &Value) {
        self.transcript.push(frame.clone());
        let echoed = |leak: &Leak| {
            leak.kind == LeakKind::RunId
                && frame.get("type").and_then(Value::as_str) == Some("error")
                && self.named_runs.contains(&leak.value)
        };
        let leaks: Vec<Leak> = self
            .shared
            .registry
            .scan(frame, &self.user)
            .into_iter()
            .filter(|leak| !echoed(leak))
            .collect();
        self.shared.with_metrics(|m| {
            m.observe("isolation_leaks", &Tags::new());
            m.add("isolation_leaks", leaks.len() as f64, &Tags::new());
        });
        self.shared.file_leaks(self.case, leaks, frame);
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or("");
        if kind == "error" {
            self.shared
                .with_metrics(|m| m.add("errors", 1.0, &case_tags(self.case)));
        }
        if !grammar::is_run_event_type(kind) {
            self.shared
                .file_frame_violations(self.case, grammar::check_frame(frame), frame);
        }
    }

    /// The transcript plus whatever waits unread in the session's backlog.
    pub fn transcript_with_backlog(&mut self) -> Vec<Value> {
        for frame in self.session.take_backlog() {
            self.observe(&frame.value);
        }
        self.transcript.clone()
    }

    pub async fn send(&mut self, value: &Value) -> Result<(), ClientError> {
        if let Some(run_id) = value.get("run_id").and_then(Value::as_str) {
            self.named_runs.push(run_id.to_owned());
        }
        self.session.send_json(value).await
    }

    /// The first frame that matches; frames that do not stay in the session's backlog for later
    /// reads (and are filed when read).
    pub async fn until(
        &mut self,
        timeout: Duration,
        pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value, ClientError> {
        let frame = self.session.take_matching(timeout, pred).await?.value;
        self.observe(&frame);
        Ok(frame)
    }

    /// The reply to request `id` (a frame with `request_id == id`).
    pub async fn reply(&mut self, id: &str) -> Result<Value, ClientError> {
        let timeout = self.config.first_event_timeout;
        self.until(timeout, |f| request_id_of(f).as_deref() == Some(id))
            .await
    }

    /// The first frame of type `kind`, within the first-event timeout.
    pub async fn next_of_type(&mut self, kind: &str) -> Result<Value, ClientError> {
        let timeout = self.config.first_event_timeout;
        self.until(timeout, |f| {
            f.get("type").and_then(Value::as_str) == Some(kind)
        })
        .await
    }

    /// Registers a fresh canary for this probe's user.
    pub fn canary(&self) -> String {
        self.shared.registry.canary(&self.user)
    }

    /// Sends `request` with a fresh request id and canary, without waiting for anything.
    pub async fn send_request(&mut self, request: &Request) -> Result<Sent, ClientError> {
        let request_id = format!("req-{}", crate::token::random_hex(10));
        let canary = self.canary();
        let sent_at = Instant::now();
        self.session
            .send_json(&request.message(&request_id, &canary))
            .await?;
        Ok(Sent {
            request_id,
            agent: request.agent.clone(),
            canary,
            sent_at,
        })
    }

    /// Waits for the `run_accepted` of a sent request (a refusal is filed and returned as
    /// [`ClientError::ServerError`]).
    pub async fn accepted(&mut self, sent: Sent) -> Result<Started, ClientError> {
        let accepted = match self
            .session
            .wait_run_accepted(&sent.request_id, self.config.first_event_timeout)
            .await
        {
            Ok(accepted) => accepted,
            Err(err) => {
                if let ClientError::ServerError { frame, .. } = &err {
                    self.observe(frame);
                }
                return Err(err);
            }
        };
        self.observe(&accepted.frame);
        Ok(self.adopt(sent, accepted.run_id))
    }

    /// Takes `run_id` as the run a sent request started: registered as this user's, counted.
    pub fn adopt(&mut self, sent: Sent, run_id: String) -> Started {
        self.shared.registry.register_run(&run_id, &self.user);
        self.shared
            .with_metrics(|m| m.add("runs", 1.0, &case_tags(self.case)));
        Started {
            request_id: sent.request_id,
            run_id,
            agent: sent.agent,
            canary: sent.canary,
            sent_at: sent.sent_at,
        }
    }

    /// Sends `request` and waits for its `run_accepted`.
    pub async fn start(&mut self, request: &Request) -> Result<Started, ClientError> {
        let sent = self.send_request(request).await?;
        self.accepted(sent).await
    }

    /// Follows a started run to its terminal event within the first-event and completion
    /// timeouts (measured from the request), then watches the socket for `linger` for anything
    /// more of that run. Files the run for the grammar cases and the metrics; a run that cannot
    /// be followed is filed as a failure.
    pub async fn follow(&mut self, started: Started) -> Result<Collected, ClientError> {
        let first_left = self
            .config
            .first_event_timeout
            .saturating_sub(started.sent_at.elapsed());
        let result = match self
            .session
            .wait_first_event(&started.run_id, first_left)
            .await
        {
            Ok(_) => {
                let left = self
                    .config
                    .completion_timeout
                    .saturating_sub(started.sent_at.elapsed());
                self.session.collect_run(&started.run_id, left).await
            }
            Err(err) => Err(err),
        };
        let run = match result {
            Ok(run) => run,
            Err(err) => {
                self.file_unfollowed(&started, &err);
                return Err(err);
            }
        };
        for event in &run.events {
            self.observe(event);
        }
        // Anything more of this run after its terminal event breaks rule 5.2: it is filed with the
        // run for the grammar cases, while the case itself sees the run as it ended.
        let mut judged_events = run.events.clone();
        judged_events.extend(self.late_events(&started.run_id).await);
        let since_sent = |at: Instant| at.duration_since(started.sent_at).as_secs_f64() * 1e3;
        let collected = Collected {
            ttfe_ms: run.first_event_at.map(since_sent),
            ttc_ms: run.completed_at.map(since_sent),
            started,
            run,
        };
        self.measure(&collected, grammar::check_run(&judged_events).is_empty());
        self.shared.file_run(JudgedRun {
            case: self.case,
            agent: collected.started.agent.clone(),
            run_id: collected.started.run_id.clone(),
            events: judged_events,
            connect_ms: Some(self.connect_ms),
            ttfe_ms: collected.ttfe_ms,
            ttc_ms: collected.ttc_ms,
            quality: None,
        });
        Ok(collected)
    }

    /// What arrives of run `run_id` within `linger` after its terminal event.
    async fn late_events(&mut self, run_id: &str) -> Vec<Value> {
        let deadline = Instant::now() + self.config.linger;
        let mut late: Vec<Value> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self
                .session
                .take_matching(left, |f| {
                    f.get("run_id").and_then(Value::as_str) == Some(run_id)
                })
                .await
            {
                Ok(frame) => {
                    self.observe(&frame.value);
                    late.push(frame.value);
                }
                Err(_) => break,
            }
        }
        late
    }

    fn measure(&self, collected: &Collected, grammatical: bool) {
        let tags = case_tags(self.case);
        let run = &collected.run;
        let agent_errors = run
            .events
            .iter()
            .filter(|e| e.get("type").and_then(Value::as_str) == Some("agent_error"))
            .count();
        self.shared.with_metrics(|m| {
            if let Some(ttfe) = collected.ttfe_ms {
                m.record("ttfe", ttfe, &tags);
            }
            if let Some(ttc) = collected.ttc_ms {
                m.record("ttc", ttc, &tags);
            }
            m.record("events", run.events.len() as f64, &tags);
            for pair in run.received_at.windows(2) {
                m.record(
                    "event_gap",
                    pair[1].duration_since(pair[0]).as_secs_f64() * 1e3,
                    &tags,
                );
            }
            m.observe("drops", &Tags::new());
            m.observe("errors", &Tags::new());
            m.add("errors", agent_errors as f64, &tags);
            m.hit("run_success", run.completed() && grammatical, &tags);
        });
    }

    /// Counts and reports a run the client could not follow to its end.
    fn file_unfollowed(&mut self, started: &Started, err: &ClientError) {
        let tags = case_tags(self.case);
        let dropped = matches!(err, ClientError::Closed { .. });
        let partial = self
            .transcript_with_backlog()
            .iter()
            .filter(|f| f.get("run_id").and_then(Value::as_str) == Some(&started.run_id))
            .count();
        self.shared.with_metrics(|m| {
            m.add("errors", 1.0, &tags);
            m.observe("drops", &Tags::new());
            if dropped {
                m.add("drops", 1.0, &tags);
            }
            m.hit("run_success", false, &tags);
        });
        self.shared.file_failure(RunSummary {
            case: self.case.to_owned(),
            agent: started.agent.clone(),
            run_id: started.run_id.clone(),
            outcome: format!("client error: {err}"),
            connect_ms: Some(self.connect_ms),
            ttfe_ms: None,
            ttc_ms: None,
            events: partial,
            counts_by_type: BTreeMap::new(),
            quality: None,
            errors: 1,
            drops: u32::from(dropped),
        });
    }

    /// Starts and follows one run.
    pub async fn ask(&mut self, request: &Request) -> Result<Collected, ClientError> {
        let started = self.start(request).await?;
        self.follow(started).await
    }

    /// Runs `request` to its end on this probe, as a case does: a run that cannot be started or
    /// followed fails the case, saying `what` was being done.
    pub async fn run_to_end(&mut self, request: &Request, what: &str) -> OrOutcome<Collected> {
        self.ask(request).await.or_fail(self, what)
    }

    /// Fails the case unless the run ended with `agent_completed`; `what` names the run.
    pub fn require_completed(&mut self, collected: &Collected, what: &str) -> OrOutcome<()> {
        ensure!(
            self,
            collected.completed(),
            "{what} ended with {} (run {})",
            collected.ending(),
            collected.run_id()
        );
        Ok(())
    }

    /// Reads whatever arrives within `window` (and the backlog); files every frame.
    pub async fn drain(&mut self, window: Duration) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        for frame in self.session.take_backlog() {
            self.observe(&frame.value);
            out.push(frame.value);
        }
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.session.next_frame(left).await {
                Ok(frame) => {
                    self.observe(&frame.value);
                    out.push(frame.value);
                }
                Err(_) => break,
            }
        }
        out
    }

    /// Records the quality of a run this probe followed, under `scenario`.
    pub fn file_quality(&self, run_id: &str, score: f64, scenario: &str) {
        self.shared.file_quality(run_id, score);
        self.shared.with_metrics(|m| {
            m.record(
                "quality",
                score,
                &crate::metrics::tags(&[("scenario", scenario)]),
            );
        });
    }

    pub async fn close(self) {
        let _ = self.session.close().await;
    }
}

/// A reply's `request_id` as text (numbers are accepted as their decimal form).
pub(crate) fn request_id_of(frame: &Value) -> Option<String> {
    match frame.get("request_id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

impl Ctx {
    /// A probe for the main user with a Bearer token. A refusal of the credentials is remembered
    /// so that later cases report it rather than repeat it.
    pub async fn main_probe(&mut self) -> Result<Probe, Outcome> {
        let user = self.main.clone();
        match Probe::connect(self, &user, Credentials::Bearer(user.token.clone())).await {
            Ok(probe) => {
                if self.connection.is_none() {
                    self.connection = probe.session.connection_info().cloned();
                }
                Ok(probe)
            }
            Err(err) => {
                if is_auth_refusal(&err) {
                    self.auth_failure = Some(err.to_string());
                }
                Err(Outcome::fail(
                    format!("could not connect as the suite's user: {err}"),
                    Vec::new(),
                ))
            }
        }
    }
}

fn is_auth_refusal(err: &ClientError) -> bool {
    match err {
        ClientError::Http { status, .. } => *status == 401 || *status == 403,
        ClientError::ServerError { error_code, .. } => {
            error_code == "AUTH_FAILED" || error_code == "AUTH_REQUIRED"
        }
        _ => false,
    }
}

/// `?` for client calls inside a case.
pub(crate) trait OrFail<T> {
    /// The value, or a failed case: what was being done, the error, and the probe's transcript
    /// (with whatever still waits unread on its socket).
    fn or_fail(self, probe: &mut Probe, what: &str) -> OrOutcome<T>;
}

impl<T> OrFail<T> for Result<T, ClientError> {
    fn or_fail(self, probe: &mut Probe, what: &str) -> OrOutcome<T> {
        self.map_err(|err| Outcome::fail(format!("{what}: {err}"), probe.transcript_with_backlog()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_name_the_error() {
        let run = RunTranscript {
            run_id: "r".into(),
            events: vec![
                json!({"type": "agent_error", "error_code": "NO_DATA", "message": "load data"}),
            ],
            received_at: Vec::new(),
            canaries: Vec::new(),
            first_event_at: None,
            completed_at: None,
        };
        assert_eq!(ending(&run), "agent_error NO_DATA: load data");
    }

    #[test]
    fn requests_carry_their_canary_in_every_form() {
        let start = Request::start_agent("optimization_agent", "q")
            .of_agent("optimization")
            .with("thread_id", json!("thr_1"));
        assert_eq!(start.agent, "optimization");
        assert_eq!(
            start.message("r1", "cnry1"),
            json!({"id": "r1", "type": "start_agent", "payload": {
                "agent_type": "optimization_agent", "user_request": "q [ref cnry1]",
                "thread_id": "thr_1"}})
        );
        assert_eq!(
            Request::agent_execute("unified_data_agent", "q").message("r2", "c"),
            json!({"type": "agent_execute", "id": "r2", "agent_type": "unified_data_agent",
                   "query": "q [ref c]"})
        );
        let message = Request::user_message("q");
        assert_eq!(message.agent, "supervisor");
        assert_eq!(
            message.message("r3", "c"),
            json!({"type": "user_message", "id": "r3", "content": "q [ref c]"})
        );
    }
}
