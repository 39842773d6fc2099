//! Reading an AG-UI `RunAgentInput` (the body of `POST /api/agui`) into what an agentwire run
//! needs: the thread, the question and the run parameters.
//!
//! What is used and what is not (see `docs/agui.md`):
//! - `threadId` becomes the agentwire thread id (threads are per user, so it cannot collide with
//!   another user's); it must be 1 to 128 printable characters.
//! - `runId` must be a string, as AG-UI requires, and is otherwise unused: agentwire names its runs
//!   itself, and `RUN_STARTED.runId` tells the client the id to resume or cancel with.
//! - The question is the text of the last `user` message (text parts joined by a newline). Earlier
//!   messages are not read: the thread's history lives on the server.
//! - `forwardedProps`, when an object, carries run parameters exactly as a WebSocket `payload`
//!   does (`timeframe`, `team`, `model`, ...), type-checked the same way.
//! - `state`, `tools` and `context` are checked for shape and not used: agentwire's agents call
//!   their own tools, never the front end's. A non-empty `resume` is refused: agentwire runs never
//!   interrupt, so there is nothing to resume.
//!
//! Every refusal is a message a person can act on, naming the field. This file must not know
//! about HTTP or the engine.

use agentwire_protocol::RunParams;
use serde_json::{Map, Value};

/// The roles an AG-UI message may have.
const ROLES: [&str; 7] = [
    "developer",
    "system",
    "assistant",
    "user",
    "tool",
    "activity",
    "reasoning",
];

/// What a `RunAgentInput` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct AguiInput {
    pub thread_id: String,
    /// The client's `runId`, kept for the log line only.
    pub client_run_id: String,
    pub question: String,
    pub params: RunParams,
}

/// Reads a `RunAgentInput` from a parsed JSON body.
///
/// # Errors
/// A message naming what is wrong, for a 400 `INVALID_MESSAGE`.
pub fn parse_input(body: Value, max_question_bytes: usize) -> Result<AguiInput, String> {
    let Value::Object(obj) = body else {
        return Err(
            "the body must be a RunAgentInput: a JSON object with threadId, runId and messages"
                .into(),
        );
    };
    let thread_id = required_string(&obj, "threadId")?;
    if !crate::ws::thread_id_is_valid(&thread_id) {
        return Err(format!(
            "`threadId` must be 1 to {} printable characters",
            crate::ws::MAX_THREAD_ID_CHARS
        ));
    }
    let client_run_id = required_string(&obj, "runId")?;
    let messages = match obj.get("messages") {
        Some(Value::Array(messages)) => messages,
        Some(_) => return Err("`messages` must be an array of messages".into()),
        None => {
            return Err(
                "`messages` is required: the conversation, whose last `user` message is the question"
                    .into(),
            );
        }
    };
    for (i, message) in messages.iter().enumerate() {
        check_message(message).map_err(|err| format!("`messages[{i}]`: {err}"))?;
    }
    let question = question(messages)?;
    if question.len() > max_question_bytes {
        return Err(format!(
            "the last user message is {} bytes; this server takes questions of up to {max_question_bytes} bytes. Ask a shorter question; upload data with POST /api/usage instead of pasting it",
            question.len()
        ));
    }
    check_list(&obj, "tools", &["name", "description"])?;
    check_list(&obj, "context", &["description", "value"])?;
    for optional in ["protocolVersion", "parentRunId"] {
        if let Some(value) = obj.get(optional)
            && !value.is_string()
            && !value.is_null()
        {
            return Err(format!("`{optional}` must be a string"));
        }
    }
    match obj.get("resume") {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) if entries.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(
                "`resume` answers interrupts, and agentwire runs never interrupt; send it empty or leave it out"
                    .into(),
            );
        }
        Some(_) => return Err("`resume` must be an array".into()),
    }
    let params = match obj.get("forwardedProps") {
        Some(Value::Object(props)) => RunParams::from_object(props, &[])
            .map_err(|err| format!("in `forwardedProps`: {}", err.message))?,
        _ => RunParams::default(),
    };
    Ok(AguiInput {
        thread_id,
        client_run_id,
        question,
        params,
    })
}

fn required_string(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    match obj.get(key) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(format!("`{key}` must be a string")),
        None => Err(format!("`{key}` is required (a string)")),
    }
}

/// The shape AG-UI's schema gives a message, as far as this server relies on it.
fn check_message(message: &Value) -> Result<(), String> {
    let Value::Object(message) = message else {
        return Err("a message must be an object with `id`, `role` and `content`".into());
    };
    if !message.get("id").is_some_and(Value::is_string) {
        return Err("`id` must be a string".into());
    }
    let role = match message.get("role") {
        Some(Value::String(role)) if ROLES.contains(&role.as_str()) => role.as_str(),
        _ => return Err(format!("`role` must be one of {}", ROLES.join(", "))),
    };
    let content = message.get("content");
    match role {
        "developer" | "system" if !content.is_some_and(Value::is_string) => {
            Err("`content` must be a string".into())
        }
        "user" | "tool" => match content {
            Some(Value::String(_)) => Ok(()),
            Some(Value::Array(parts)) => parts.iter().enumerate().try_for_each(|(i, part)| {
                if part.get("type").is_some_and(Value::is_string) {
                    Ok(())
                } else {
                    Err(format!(
                        "`content[{i}]` must be a content part with a string `type`"
                    ))
                }
            }),
            _ => Err("`content` must be a string or an array of content parts".into()),
        },
        _ => Ok(()),
    }
}

/// The text of the last `user` message: its string content, or its text parts joined.
fn question(messages: &[Value]) -> Result<String, String> {
    let last_user = messages
        .iter()
        .rev()
        .find(|message| message.get("role").and_then(Value::as_str) == Some("user"))
        .ok_or("`messages` has no `user` message; the question is the last user message")?;
    let text = match last_user.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    };
    if text.trim().is_empty() {
        return Err(
            "the last user message has no text; agentwire answers questions written as text".into(),
        );
    }
    Ok(text)
}

/// An optional array of objects whose `fields` are strings (`tools`, `context`).
fn check_list(obj: &Map<String, Value>, key: &str, fields: &[&str]) -> Result<(), String> {
    let entries = match obj.get(key) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err(format!("`{key}` must be an array")),
    };
    for (i, entry) in entries.iter().enumerate() {
        for field in fields {
            if !entry.get(*field).is_some_and(Value::is_string) {
                return Err(format!("`{key}[{i}].{field}` must be a string"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn input(extra: Value) -> Value {
        let mut base = json!({
            "threadId": "thread-1",
            "runId": "client-run-1",
            "state": {},
            "messages": [
                {"id": "m1", "role": "user", "content": "first question"},
                {"id": "m2", "role": "assistant", "content": "an answer"},
                {"id": "m3", "role": "user", "content": "What did we spend last month?"}
            ],
            "tools": [],
            "context": [],
            "forwardedProps": {}
        });
        for (key, value) in extra.as_object().unwrap() {
            base[key] = value.clone();
        }
        base
    }

    fn refused(extra: Value) -> String {
        parse_input(input(extra), 1024).unwrap_err()
    }

    #[test]
    fn the_question_is_the_last_user_message() {
        let parsed = parse_input(input(json!({})), 1024).unwrap();
        assert_eq!(parsed.thread_id, "thread-1");
        assert_eq!(parsed.client_run_id, "client-run-1");
        assert_eq!(parsed.question, "What did we spend last month?");
        assert_eq!(parsed.params, RunParams::default());
    }

    #[test]
    fn text_parts_are_joined_and_other_parts_ignored() {
        let parsed = parse_input(
            input(json!({"messages": [{"id": "m", "role": "user", "content": [
                {"type": "text", "text": "Which team"},
                {"type": "image", "source": {"type": "url", "value": "https://x"}},
                {"type": "text", "text": "spends most?"}
            ]}]})),
            1024,
        )
        .unwrap();
        assert_eq!(parsed.question, "Which team\nspends most?");
    }

    #[test]
    fn forwarded_props_are_run_parameters() {
        let parsed = parse_input(
            input(json!({"forwardedProps": {"timeframe": "30d", "team": "search", "x": 1}})),
            1024,
        )
        .unwrap();
        assert_eq!(parsed.params.timeframe.unwrap().to_string(), "30d");
        assert_eq!(parsed.params.team.as_deref(), Some("search"));
        assert_eq!(parsed.params.extra["x"], 1);
        // Not an object: AG-UI allows any value; there are no parameters in it.
        let parsed = parse_input(input(json!({"forwardedProps": "opaque"})), 1024).unwrap();
        assert_eq!(parsed.params, RunParams::default());
    }

    #[test]
    fn every_refusal_names_the_field() {
        let cases = [
            (json!({"threadId": 7}), "`threadId` must be a string"),
            (json!({"threadId": "  "}), "`threadId` must be 1 to 128"),
            (json!({"runId": null}), "`runId` must be a string"),
            (json!({"messages": {}}), "`messages` must be an array"),
            (json!({"messages": []}), "no `user` message"),
            (
                json!({"messages": [{"role": "user", "content": "q"}]}),
                "`messages[0]`: `id`",
            ),
            (
                json!({"messages": [{"id": "m", "role": "robot", "content": "q"}]}),
                "`role` must be one of",
            ),
            (
                json!({"messages": [{"id": "m", "role": "user", "content": 5}]}),
                "`content` must be a string or an array",
            ),
            (
                json!({"messages": [{"id": "m", "role": "user", "content": [{"text": "q"}]}]}),
                "`content[0]`",
            ),
            (
                json!({"messages": [{"id": "m", "role": "user", "content": " "}]}),
                "no text",
            ),
            (
                json!({"tools": [{"name": "t"}]}),
                "`tools[0].description` must be a string",
            ),
            (json!({"context": "x"}), "`context` must be an array"),
            (
                json!({"resume": [{"interruptId": "i", "status": "resolved"}]}),
                "never interrupt",
            ),
            (
                json!({"forwardedProps": {"timeframe": "a while"}}),
                "in `forwardedProps`: field `timeframe`",
            ),
            (
                json!({"forwardedProps": {"monthly_spend": -1}}),
                "monthly_spend",
            ),
            (
                json!({"protocolVersion": 1}),
                "`protocolVersion` must be a string",
            ),
        ];
        for (extra, expected) in cases {
            let message = refused(extra.clone());
            assert!(message.contains(expected), "{extra}: {message}");
        }
        let mut missing = input(json!({}));
        missing.as_object_mut().unwrap().remove("messages");
        assert!(
            parse_input(missing, 1024)
                .unwrap_err()
                .contains("`messages` is required")
        );
        assert!(
            parse_input(json!([1]), 1024)
                .unwrap_err()
                .contains("JSON object")
        );
    }

    #[test]
    fn the_question_is_held_to_the_size_limit() {
        let long = "x".repeat(2000);
        let message = parse_input(
            input(json!({"messages": [{"id": "m", "role": "user", "content": long}]})),
            1024,
        )
        .unwrap_err();
        assert!(
            message.contains("2000 bytes") && message.contains("1024 bytes"),
            "{message}"
        );
    }

    /// Any JSON value, shallow enough to generate quickly, with keys a RunAgentInput uses.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let key = prop_oneof![
                Just("threadId".to_owned()),
                Just("runId".to_owned()),
                Just("messages".to_owned()),
                Just("role".to_owned()),
                Just("id".to_owned()),
                Just("content".to_owned()),
                Just("forwardedProps".to_owned()),
                Just("tools".to_owned()),
                "[a-z]{1,6}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(key, inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever JSON arrives, the parser answers (a question or a message), never panics,
        /// and a question it accepts is never blank.
        #[test]
        fn any_json_gets_an_answer(value in any_json()) {
            if let Ok(parsed) = parse_input(value, 1024) {
                prop_assert!(!parsed.question.trim().is_empty());
            }
        }

        /// A well-formed input with any question text reads that text back.
        #[test]
        fn any_question_reads_back(question in "\\PC{1,100}", thread in "[a-zA-Z0-9_-]{1,128}") {
            prop_assume!(!question.trim().is_empty());
            let body = json!({"threadId": thread, "runId": "r",
                              "messages": [{"id": "m", "role": "user", "content": question}]});
            let parsed = parse_input(body, 1024).unwrap();
            prop_assert_eq!(parsed.question, question);
            prop_assert_eq!(parsed.thread_id, thread);
        }
    }
}
