//! Messages a client sends (PROTOCOL.md section 4) and the parser that reads them.
//!
//! The parser is deliberately forgiving about shape, so that clients written for the Netra staging
//! tests work unchanged: `start_agent` with a `payload`, `agent_execute` with top-level
//! `agent_type`/`data`/`query`, and the chat aliases `user_message`, `chat_message` and `message`
//! (text in `content`, `message` or `text`, at the top level or inside `payload`). It is strict about
//! types: a field of the wrong type is an `INVALID_MESSAGE` that names the field. Unknown parameters
//! are kept, never rejected.
//!
//! Every failure is a [`ParseError`] with the code to send back and, when the frame had a readable
//! `id`, the `request_id` to put on the error frame.

use crate::agents::AgentKind;
use crate::error::ErrorCode;
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// A parsed client message.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// `start_agent`, `agent_execute`, or one of the chat aliases.
    StartRun(StartRun),
    Cancel {
        id: Option<String>,
        run_id: String,
    },
    Resume {
        id: Option<String>,
        run_id: String,
        after_seq: u64,
    },
    Authenticate {
        id: Option<String>,
        token: String,
    },
    Ping {
        id: Option<String>,
    },
}

impl ClientMessage {
    /// The client's request id, echoed as `request_id` on replies.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::StartRun(start) => start.id.as_deref(),
            Self::Cancel { id, .. }
            | Self::Resume { id, .. }
            | Self::Authenticate { id, .. }
            | Self::Ping { id } => id.as_deref(),
        }
    }

    /// Parses one text frame.
    ///
    /// # Errors
    /// `INVALID_MESSAGE` for text that is not a JSON object, has no string `type`, or has a field of
    /// the wrong type; `UNKNOWN_MESSAGE_TYPE` for a `type` outside section 4; `AGENT_NOT_FOUND` for
    /// an `agent_type` that names no agent.
    pub fn parse(text: &str) -> Result<ClientMessage, ParseError> {
        let value: Value = serde_json::from_str(text).map_err(|err| {
            ParseError::new(
                ErrorCode::InvalidMessage,
                format!("frame is not valid JSON: {err}"),
            )
        })?;
        Self::from_value(value)
    }

    /// Reads a message from an already parsed JSON value. See [`ClientMessage::parse`].
    pub fn from_value(value: Value) -> Result<ClientMessage, ParseError> {
        let Value::Object(obj) = value else {
            return Err(ParseError::new(
                ErrorCode::InvalidMessage,
                "a message must be a JSON object with a string `type`",
            ));
        };
        // Read the id first so every later error can carry it.
        let id = request_id(&obj)?;
        let with_id = |err: ParseError| err.with_request_id(id.clone());
        let kind = match obj.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            Some(_) => {
                return Err(with_id(ParseError::new(
                    ErrorCode::InvalidMessage,
                    "field `type` must be a string",
                )));
            }
            None => {
                return Err(with_id(ParseError::new(
                    ErrorCode::InvalidMessage,
                    "message has no `type`; expected one of start_agent, cancel, resume, authenticate, ping",
                )));
            }
        };
        let parsed = (|| match kind {
            "start_agent" => start_agent(&obj, id.clone()).map(ClientMessage::StartRun),
            "agent_execute" => agent_execute(&obj, id.clone()).map(ClientMessage::StartRun),
            "user_message" | "chat_message" | "message" => {
                chat_message(&obj, id.clone()).map(ClientMessage::StartRun)
            }
            "cancel" => Ok(ClientMessage::Cancel {
                id: id.clone(),
                run_id: required_string(&obj, "run_id", "cancel")?,
            }),
            "resume" => Ok(ClientMessage::Resume {
                id: id.clone(),
                run_id: required_string(&obj, "run_id", "resume")?,
                after_seq: after_seq(&obj)?,
            }),
            "authenticate" => Ok(ClientMessage::Authenticate {
                id: id.clone(),
                token: required_string(&obj, "token", "authenticate")?,
            }),
            "ping" => Ok(ClientMessage::Ping { id: id.clone() }),
            other => Err(ParseError::new(
                ErrorCode::UnknownMessageType,
                format!(
                    "unknown message type `{}`; expected one of start_agent, agent_execute, user_message, cancel, resume, authenticate, ping",
                    truncate(other, 64)
                ),
            )),
        })();
        parsed.map_err(with_id)
    }
}

/// A request to start a run, whichever message form it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRun {
    pub id: Option<String>,
    pub agent: AgentKind,
    /// The question. Empty for a structured task (see `RunParams::task`).
    pub user_request: String,
    pub thread_id: Option<String>,
    pub params: RunParams,
}

impl StartRun {
    /// Whether this is a structured task rather than a question.
    pub fn is_task(&self) -> bool {
        self.params.task.is_some()
    }

    /// The structured task's fields, when it is one.
    pub fn task(&self) -> Option<&Map<String, Value>> {
        self.params.task.as_ref()
    }
}

/// The fields of a structured task: every non-null entry except the keys that address the run.
fn task_fields(obj: &Map<String, Value>) -> Option<Map<String, Value>> {
    let fields: Map<String, Value> = obj
        .iter()
        .filter(|(k, v)| !v.is_null() && !START_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!fields.is_empty()).then_some(fields)
}

/// The parameters a run request may carry. Known ones are type-checked; the rest are kept as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunParams {
    pub timeframe: Option<Timeframe>,
    pub team: Option<String>,
    pub model: Option<String>,
    pub monthly_spend: Option<f64>,
    pub optimization_target: Option<String>,
    /// Parameters this version does not interpret, passed to the agents untouched.
    pub extra: Map<String, Value>,
    /// A structured task (clients that send tasks, not questions): the `data`/`payload` fields as
    /// sent, when the request holds fields but no question. The agent type and these fields are
    /// the request (they are also read into the fields above).
    pub task: Option<Map<String, Value>>,
}

impl RunParams {
    /// Reads parameters out of an object, skipping the keys that are not parameters.
    ///
    /// # Errors
    /// `INVALID_MESSAGE` naming the first known parameter with the wrong type or form.
    pub fn from_object(obj: &Map<String, Value>, skip: &[&str]) -> Result<RunParams, ParseError> {
        let mut params = RunParams::default();
        for (key, value) in obj {
            if skip.contains(&key.as_str()) || value.is_null() {
                continue;
            }
            match key.as_str() {
                "timeframe" => {
                    let text = value
                        .as_str()
                        .ok_or_else(|| wrong_type(key, "a string like \"30d\""))?;
                    params.timeframe = Some(Timeframe::parse(text).ok_or_else(|| {
                        ParseError::new(
                            ErrorCode::InvalidMessage,
                            format!(
                                "field `timeframe` must look like 24h, 30d, 4w or 3m; got \"{}\"",
                                truncate(text, 32)
                            ),
                        )
                    })?);
                }
                "team" => params.team = Some(string_param(key, value)?),
                "model" => params.model = Some(string_param(key, value)?),
                "optimization_target" => {
                    params.optimization_target = Some(string_param(key, value)?)
                }
                "rate_limits" => {
                    check_rate_limits(value)?;
                    params.extra.insert(key.clone(), value.clone());
                }
                "monthly_spend" => {
                    let spend = value
                        .as_f64()
                        .ok_or_else(|| wrong_type(key, "a number of dollars"))?;
                    if !spend.is_finite() || spend < 0.0 {
                        return Err(wrong_type(key, "a non-negative number of dollars"));
                    }
                    params.monthly_spend = Some(spend);
                }
                _ => {
                    params.extra.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(params)
    }
}

/// A look-back window such as `30d`: `^\d+[hdwm]$` (a month counts as 30 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeframe {
    pub amount: u32,
    pub unit: TimeUnit,
}

/// The unit of a [`Timeframe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Hour,
    Day,
    Week,
    Month,
}

impl Timeframe {
    /// Parses `^\d+[hdwm]$`; zero and absurd lengths (over ten years) are refused.
    pub fn parse(text: &str) -> Option<Timeframe> {
        let unit = match text.chars().last()? {
            'h' => TimeUnit::Hour,
            'd' => TimeUnit::Day,
            'w' => TimeUnit::Week,
            'm' => TimeUnit::Month,
            _ => return None,
        };
        let digits = &text[..text.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let amount: u32 = digits.parse().ok()?;
        let timeframe = Timeframe { amount, unit };
        (amount > 0 && timeframe.duration() <= Duration::from_secs(3650 * 86_400))
            .then_some(timeframe)
    }

    /// The window's length.
    pub fn duration(&self) -> Duration {
        let unit_secs: u64 = match self.unit {
            TimeUnit::Hour => 3_600,
            TimeUnit::Day => 86_400,
            TimeUnit::Week => 7 * 86_400,
            TimeUnit::Month => 30 * 86_400,
        };
        Duration::from_secs(unit_secs.saturating_mul(u64::from(self.amount)))
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            TimeUnit::Hour => 'h',
            TimeUnit::Day => 'd',
            TimeUnit::Week => 'w',
            TimeUnit::Month => 'm',
        };
        write!(f, "{}{}", self.amount, unit)
    }
}

/// Why a client frame was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ParseError {
    pub code: ErrorCode,
    pub message: String,
    /// The frame's `id`, when it could be read.
    pub request_id: Option<String>,
}

impl ParseError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            request_id: None,
        }
    }

    fn with_request_id(mut self, id: Option<String>) -> Self {
        if self.request_id.is_none() {
            self.request_id = id;
        }
        self
    }
}

const START_KEYS: [&str; 6] = [
    "user_request",
    "query",
    "message",
    "content",
    "agent_type",
    "thread_id",
];

fn start_agent(obj: &Map<String, Value>, id: Option<String>) -> Result<StartRun, ParseError> {
    let empty = Map::new();
    let payload = match obj.get("payload") {
        Some(Value::Object(payload)) => payload,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(wrong_type("payload", "an object")),
    };
    let question = first_text(
        &[(payload, "payload."), (obj, "")],
        &["user_request", "query", "message", "content"],
    )?;
    let task = match question {
        Some(_) => None,
        None => Some(
            task_fields(payload)
                .ok_or_else(|| missing_request("start_agent", "payload.user_request"))?,
        ),
    };
    let user_request = question.unwrap_or_default();
    let agent = agent_kind(first_string(
        &[(payload, "payload."), (obj, "")],
        "agent_type",
    )?)?;
    let thread_id = first_string(&[(payload, "payload."), (obj, "")], "thread_id")?;
    let mut params = RunParams::from_object(payload, &START_KEYS)?;
    params.task = task;
    Ok(StartRun {
        id,
        agent,
        user_request,
        thread_id,
        params,
    })
}

fn agent_execute(obj: &Map<String, Value>, id: Option<String>) -> Result<StartRun, ParseError> {
    let empty = Map::new();
    let (data, data_text) = match obj.get("data") {
        Some(Value::Object(data)) => (data, None),
        Some(Value::String(text)) => (&empty, Some(text.clone())),
        None | Some(Value::Null) => (&empty, None),
        Some(_) => {
            return Err(wrong_type(
                "data",
                "an object of parameters or the request text",
            ));
        }
    };
    let question = match first_text(
        &[(obj, ""), (data, "data.")],
        &["query", "user_request", "message", "content"],
    )? {
        Some(text) => Some(text),
        None => data_text.filter(|text| !text.trim().is_empty()),
    };
    let task = match question {
        Some(_) => None,
        None => Some(task_fields(data).ok_or_else(|| missing_request("agent_execute", "query"))?),
    };
    let user_request = question.unwrap_or_default();
    let agent = agent_kind(first_string(&[(obj, ""), (data, "data.")], "agent_type")?)?;
    let thread_id = first_string(&[(obj, ""), (data, "data.")], "thread_id")?;
    let mut params = RunParams::from_object(data, &START_KEYS)?;
    params.task = task;
    Ok(StartRun {
        id,
        agent,
        user_request,
        thread_id,
        params,
    })
}

fn chat_message(obj: &Map<String, Value>, id: Option<String>) -> Result<StartRun, ParseError> {
    let empty = Map::new();
    let payload = match obj.get("payload") {
        Some(Value::Object(payload)) => payload,
        None | Some(Value::Null) => &empty,
        Some(_) => return Err(wrong_type("payload", "an object")),
    };
    let sources = [(obj, ""), (payload, "payload.")];
    let user_request = first_text(&sources, &["content", "message", "text"])?
        .ok_or_else(|| missing_request("user_message", "content"))?;
    let thread_id = first_string(&sources, "thread_id")?;
    let params = RunParams::from_object(payload, &["content", "message", "text", "thread_id"])?;
    Ok(StartRun {
        id,
        agent: AgentKind::Supervisor,
        user_request,
        thread_id,
        params,
    })
}

/// The first non-empty text among `keys`, looked up in each source in order.
fn first_text(
    sources: &[(&Map<String, Value>, &str)],
    keys: &[&str],
) -> Result<Option<String>, ParseError> {
    for key in keys {
        if let Some(text) = first_string(sources, key)? {
            if text.trim().is_empty() {
                return Err(ParseError::new(
                    ErrorCode::InvalidMessage,
                    format!(
                        "field `{key}` is empty: ask a question, e.g. \"where did our AI spend go last week?\""
                    ),
                ));
            }
            return Ok(Some(text));
        }
    }
    Ok(None)
}

fn first_string(
    sources: &[(&Map<String, Value>, &str)],
    key: &str,
) -> Result<Option<String>, ParseError> {
    for (source, prefix) in sources {
        match source.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(text)) => return Ok(Some(text.clone())),
            Some(_) => return Err(wrong_type(&format!("{prefix}{key}"), "a string")),
        }
    }
    Ok(None)
}

fn agent_kind(name: Option<String>) -> Result<AgentKind, ParseError> {
    match name {
        None => Ok(AgentKind::Supervisor),
        Some(name) => AgentKind::from_name(&name).ok_or_else(|| {
            let known: Vec<&str> = AgentKind::ALL.iter().map(|a| a.as_str()).collect();
            ParseError::new(
                ErrorCode::AgentNotFound,
                format!(
                    "no agent named `{}`; available agents: {}",
                    truncate(&name, 64),
                    known.join(", ")
                ),
            )
        }),
    }
}

fn request_id(obj: &Map<String, Value>) -> Result<Option<String>, ParseError> {
    match obj.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(Some(truncate(id, 128).to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(wrong_type("id", "a string or a number")),
    }
}

fn required_string(obj: &Map<String, Value>, key: &str, kind: &str) -> Result<String, ParseError> {
    match obj.get(key) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ParseError::new(
            ErrorCode::InvalidMessage,
            format!("`{kind}` needs a non-empty string field `{key}`"),
        )),
        Some(_) => Err(wrong_type(key, "a string")),
    }
}

fn after_seq(obj: &Map<String, Value>) -> Result<u64, ParseError> {
    match obj.get("after_seq") {
        None | Some(Value::Null) => Ok(0),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| wrong_type("after_seq", "a whole number >= 0 (the last seq you saw)")),
    }
}

fn string_param(key: &str, value: &Value) -> Result<String, ParseError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| wrong_type(key, "a string"))
}

/// Rate limits a run may be asked to check: each is checked against every minute of the data.
pub const MAX_RATE_LIMITS: usize = 64;
/// The longest one `MODEL=TPM[:RPM]` entry may be.
const MAX_RATE_LIMIT_CHARS: usize = 200;

/// `rate_limits` is a list of `MODEL=TPM[:RPM]` strings (or one comma-separated string), at most
/// [`MAX_RATE_LIMITS`] of them: the entries' own syntax is the agents' to judge, their number and
/// size are bounded here, before any run starts.
fn check_rate_limits(value: &Value) -> Result<(), ParseError> {
    const EXPECTED: &str = "a list of \"MODEL=TPM[:RPM]\" strings";
    let entries: Vec<&str> = match value {
        Value::String(text) => text.split(',').filter(|t| !t.trim().is_empty()).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| wrong_type("rate_limits", EXPECTED))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(wrong_type("rate_limits", EXPECTED)),
    };
    if entries.len() > MAX_RATE_LIMITS {
        return Err(ParseError::new(
            ErrorCode::InvalidMessage,
            format!(
                "field `rate_limits` holds {} limits; at most {MAX_RATE_LIMITS} are checked in one run",
                entries.len()
            ),
        ));
    }
    if let Some(long) = entries
        .iter()
        .find(|e| e.chars().count() > MAX_RATE_LIMIT_CHARS)
    {
        return Err(ParseError::new(
            ErrorCode::InvalidMessage,
            format!(
                "field `rate_limits` has an entry over {MAX_RATE_LIMIT_CHARS} characters (\"{}...\")",
                truncate(long, 32)
            ),
        ));
    }
    Ok(())
}

fn wrong_type(field: &str, expected: &str) -> ParseError {
    ParseError::new(
        ErrorCode::InvalidMessage,
        format!("field `{field}` must be {expected}"),
    )
}

fn missing_request(kind: &str, field: &str) -> ParseError {
    ParseError::new(
        ErrorCode::InvalidMessage,
        format!(
            "`{kind}` needs the question in `{field}` (e.g. \"where did our AI spend go last week?\") or the fields of a task in its data (e.g. {{\"analysis_type\":\"anomaly_detection\",\"time_range\":\"last_7_days\"}})"
        ),
    )
}

/// Cuts client-supplied text that is echoed in an error, so a huge value is not sent back whole.
fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((idx, _)) => &text[..idx],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<ClientMessage, ParseError> {
        ClientMessage::parse(text)
    }

    fn start(text: &str) -> StartRun {
        match parse(text).unwrap() {
            ClientMessage::StartRun(start) => start,
            other => panic!("not a start: {other:?}"),
        }
    }

    #[test]
    fn netra_style_start_agent_with_naive_timestamp_parses() {
        let run = start(
            r#"{"id":"req_1","type":"start_agent","payload":{"user_request":"Analyze our AI costs","agent_type":"unified_data_agent","session_id":"s1","query":"what did we spend"},"timestamp":"2025-09-05T17:42:36.123456"}"#,
        );
        assert_eq!(run.id.as_deref(), Some("req_1"));
        assert_eq!(run.agent, AgentKind::Data);
        assert_eq!(run.user_request, "Analyze our AI costs");
        assert_eq!(
            run.params.extra.get("session_id"),
            Some(&Value::String("s1".into()))
        );
        assert_eq!(run.thread_id, None);
    }

    #[test]
    fn agent_execute_alias_reads_top_level_fields() {
        let run = start(
            r#"{"type":"agent_execute","id":7,"agent_type":"optimization_agent","query":"cut costs","data":{"monthly_spend":12000,"team":"search","timeframe":"30d"}}"#,
        );
        assert_eq!(run.id.as_deref(), Some("7"));
        assert_eq!(run.agent, AgentKind::Optimization);
        assert_eq!(run.user_request, "cut costs");
        assert_eq!(run.params.monthly_spend, Some(12000.0));
        assert_eq!(run.params.team.as_deref(), Some("search"));
        assert_eq!(
            run.params.timeframe,
            Some(Timeframe {
                amount: 30,
                unit: TimeUnit::Day
            })
        );
    }

    #[test]
    fn structured_tasks_without_a_question_run() {
        // The four tasks of issue 10, as the platform we descend from sends them.
        let cases = [
            (
                r#"{"type":"agent_execute","id":"r2","agent_type":"optimization_agent","data":{"optimization_target":"cost_reduction","current_metrics":{"monthly_spend":25000,"utilization_rate":0.73},"constraints":{"max_performance_impact":0.05}}}"#,
                AgentKind::Optimization,
                3,
            ),
            (
                r#"{"type":"agent_execute","agent_type":"supervisor_agent","data":{"task":"comprehensive_system_analysis","requirements":{"data_analysis":true,"optimization_recommendations":true,"implementation_plan":true},"priority":"high"}}"#,
                AgentKind::Supervisor,
                3,
            ),
            (
                r#"{"type":"agent_execute","agent_type":"unified_data_agent","data":{"analysis_type":"anomaly_detection","metrics":["response_time","error_rate"],"time_range":"last_7_days"}}"#,
                AgentKind::Data,
                3,
            ),
            (
                r#"{"type":"start_agent","payload":{"agent_type":"unified_data_agent","planning_horizon":"6_months","growth_projection":1.3}}"#,
                AgentKind::Data,
                2,
            ),
        ];
        for (text, agent, fields) in cases {
            let run = start(text);
            assert_eq!(run.agent, agent, "{text}");
            assert!(run.is_task(), "{text}");
            assert_eq!(run.user_request, "");
            let task = run.task().unwrap();
            assert_eq!(task.len(), fields, "{text}: {task:?}");
            assert!(!task.contains_key("agent_type"));
        }
        let run = start(
            r#"{"type":"agent_execute","agent_type":"optimization_agent","data":{"optimization_target":"cost_reduction"}}"#,
        );
        assert_eq!(
            run.params.optimization_target.as_deref(),
            Some("cost_reduction"),
            "known fields are still typed params"
        );
    }

    #[test]
    fn a_request_with_neither_question_nor_fields_is_refused() {
        for text in [
            r#"{"type":"agent_execute","agent_type":"data"}"#,
            r#"{"type":"agent_execute","agent_type":"data","data":{}}"#,
            r#"{"type":"agent_execute","agent_type":"data","data":{"thread_id":"t1","agent_type":"data"}}"#,
            r#"{"type":"start_agent","payload":{"agent_type":"data","x":null}}"#,
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidMessage, "{text}");
            assert!(err.message.contains("task"), "{}", err.message);
        }
        // A question wins over fields: no task.
        let run = start(
            r#"{"type":"agent_execute","query":"spend?","data":{"analysis_type":"anomaly_detection"}}"#,
        );
        assert!(!run.is_task());
    }

    #[test]
    fn chat_aliases_start_supervisor_runs() {
        for text in [
            r#"{"type":"user_message","payload":{"content":"hi there","thread_id":"t1"}}"#,
            r#"{"type":"chat_message","message":"hi there","thread_id":"t1"}"#,
            r#"{"type":"message","text":"hi there","thread_id":"t1"}"#,
        ] {
            let run = start(text);
            assert_eq!(run.agent, AgentKind::Supervisor);
            assert_eq!(run.user_request, "hi there");
            assert_eq!(run.thread_id.as_deref(), Some("t1"));
        }
    }

    #[test]
    fn errors_carry_codes_and_request_ids() {
        let cases: &[(&str, ErrorCode, Option<&str>)] = &[
            ("{not json", ErrorCode::InvalidMessage, None),
            ("[1,2]", ErrorCode::InvalidMessage, None),
            (r#"{"id":"a"}"#, ErrorCode::InvalidMessage, Some("a")),
            (
                r#"{"id":"a","type":5}"#,
                ErrorCode::InvalidMessage,
                Some("a"),
            ),
            (
                r#"{"id":"b","type":"launch_rockets"}"#,
                ErrorCode::UnknownMessageType,
                Some("b"),
            ),
            (
                r#"{"id":"c","type":"start_agent","payload":{"user_request":"x","agent_type":"nonexistent_agent"}}"#,
                ErrorCode::AgentNotFound,
                Some("c"),
            ),
            (
                r#"{"id":"d","type":"start_agent","payload":{"user_request":"   "}}"#,
                ErrorCode::InvalidMessage,
                Some("d"),
            ),
            (
                r#"{"id":"e","type":"start_agent","payload":{}}"#,
                ErrorCode::InvalidMessage,
                Some("e"),
            ),
            (
                r#"{"id":"f","type":"start_agent","payload":{"user_request":"x","monthly_spend":"lots"}}"#,
                ErrorCode::InvalidMessage,
                Some("f"),
            ),
            (
                r#"{"id":"g","type":"start_agent","payload":{"user_request":"x","timeframe":"30 days"}}"#,
                ErrorCode::InvalidMessage,
                Some("g"),
            ),
            (
                r#"{"id":"h","type":"start_agent","payload":"text"}"#,
                ErrorCode::InvalidMessage,
                Some("h"),
            ),
            (
                r#"{"id":"i","type":"resume","run_id":"r","after_seq":-1}"#,
                ErrorCode::InvalidMessage,
                Some("i"),
            ),
            (
                r#"{"id":"j","type":"cancel"}"#,
                ErrorCode::InvalidMessage,
                Some("j"),
            ),
            (
                r#"{"id":{"x":1},"type":"ping"}"#,
                ErrorCode::InvalidMessage,
                None,
            ),
        ];
        for (text, code, request_id) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.code, *code, "{text}: {err}");
            assert_eq!(err.request_id.as_deref(), *request_id, "{text}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn rate_limits_are_bounded_before_any_run_starts() {
        let frame = |limits: &str| {
            format!(
                r#"{{"type":"start_agent","payload":{{"user_request":"will we hit our limits?","rate_limits":{limits}}}}}"#
            )
        };
        let many: Vec<String> = (0..65).map(|i| format!("\"m{i}=1000\"")).collect();
        let err = parse(&frame(&format!("[{}]", many.join(",")))).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMessage);
        assert!(
            err.message.contains("65") && err.message.contains("64"),
            "{}",
            err.message
        );
        let joined: Vec<String> = (0..65).map(|i| format!("m{i}=1000")).collect();
        let err = parse(&frame(&format!("\"{}\"", joined.join(",")))).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidMessage);
        let err = parse(&frame("[1000]")).unwrap_err();
        assert!(err.message.contains("`rate_limits`"), "{}", err.message);
        let err = parse(&frame(&format!("[\"{}=1\"]", "m".repeat(300)))).unwrap_err();
        assert!(err.message.contains("`rate_limits`"), "{}", err.message);
        // Sixty-four are fine, and kept for the agents as sent.
        let ok: Vec<String> = (0..64).map(|i| format!("\"m{i}=1000\"")).collect();
        assert!(parse(&frame(&format!("[{}]", ok.join(",")))).is_ok());
        assert!(parse(&frame("\"gpt-4o=30000:500,*=90000\"")).is_ok());
    }

    #[test]
    fn wrong_type_errors_name_the_field() {
        let err = parse(r#"{"type":"start_agent","payload":{"user_request":"x","team":42}}"#)
            .unwrap_err();
        assert!(err.message.contains("`team`"), "{}", err.message);
    }

    #[test]
    fn control_messages_parse() {
        assert_eq!(
            parse(r#"{"type":"ping"}"#).unwrap(),
            ClientMessage::Ping { id: None }
        );
        assert_eq!(
            parse(r#"{"type":"resume","run_id":"r1","after_seq":5}"#).unwrap(),
            ClientMessage::Resume {
                id: None,
                run_id: "r1".into(),
                after_seq: 5
            }
        );
        assert_eq!(
            parse(r#"{"type":"resume","run_id":"r1"}"#).unwrap(),
            ClientMessage::Resume {
                id: None,
                run_id: "r1".into(),
                after_seq: 0
            }
        );
        assert_eq!(
            parse(r#"{"type":"cancel","id":"x","run_id":"r1"}"#).unwrap(),
            ClientMessage::Cancel {
                id: Some("x".into()),
                run_id: "r1".into()
            }
        );
        assert_eq!(
            parse(r#"{"type":"authenticate","token":"abc"}"#).unwrap(),
            ClientMessage::Authenticate {
                id: None,
                token: "abc".into()
            }
        );
    }

    #[test]
    fn timeframes() {
        assert_eq!(
            Timeframe::parse("24h").unwrap().duration(),
            Duration::from_secs(86_400)
        );
        assert_eq!(Timeframe::parse("1m").unwrap().to_string(), "1m");
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "1.5d",
            "30",
            "30y",
            "99999999999d",
            "9999w",
        ] {
            assert_eq!(Timeframe::parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_text(text in ".{0,200}") {
            let _ = ClientMessage::parse(&text);
        }

        #[test]
        fn parser_never_panics_on_json_shaped_input(
            kind in prop::sample::select(vec!["start_agent", "agent_execute", "user_message", "cancel", "resume", "ping", "authenticate", "x"]),
            key in "[a-z_]{1,12}",
            value in prop_oneof![Just(Value::Null), any::<i64>().prop_map(Value::from), ".{0,20}".prop_map(Value::from), any::<bool>().prop_map(Value::from)],
        ) {
            let mut payload = Map::new();
            payload.insert(key.clone(), value.clone());
            let mut obj = Map::new();
            obj.insert("type".into(), Value::from(kind));
            obj.insert("payload".into(), Value::Object(payload));
            obj.insert(key, value);
            let _ = ClientMessage::from_value(Value::Object(obj));
        }
    }
}
