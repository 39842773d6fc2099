//! The AG-UI endpoints end to end: a real server on 127.0.0.1:0 over SQLite in a temp dir (demo
//! data for tenants without their own), real JWTs, real HTTP. Every stream is judged by AG-UI's
//! ordering rules; resumes are compared byte for byte with the first delivery; the run behind a
//! stream is checked through the rest of the API (history, the WebSocket).
//!
//! `node_client_drives_a_real_run` runs the real AG-UI client (`@ag-ui/client`, Node.js) against
//! the server: see `tests/agui-node/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agui {
    pub mod node;
    pub mod support;
}

use agentwire_server::agui::verify::verify;
use agui::support::{SseEvent, TestServer, WAIT, data, forged_token, kinds, raw, run_input, token};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const QUESTION: &str = "Where can we cut our AI spend without hurting quality?";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Starts a run and reads its whole stream.
async fn run_to_end(server: &TestServer, path: &str, token: &str, thread: &str) -> Vec<SseEvent> {
    let auth = bearer(token);
    let mut stream = server
        .stream(
            "POST",
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            &run_input(thread, QUESTION),
        )
        .await;
    assert_eq!(
        stream.status,
        200,
        "{}",
        String::from_utf8_lossy(&stream.body)
    );
    stream.rest().await
}

fn run_id_of(events: &[SseEvent]) -> String {
    events[0].data["runId"].as_str().unwrap().to_owned()
}

/// The run's agentwire events, as the history API returns them.
async fn agentwire_events(server: &TestServer, token: &str, run_id: &str) -> Vec<Value> {
    let auth = bearer(token);
    let response = server
        .request(
            "GET",
            &format!("/api/runs/{run_id}/events"),
            &[("authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json().as_array().unwrap().clone()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

#[tokio::test]
async fn a_run_streams_every_step_as_ag_ui_events() {
    let server = TestServer::start().await;
    let alice = token("alice");
    let auth = bearer(&alice);
    let mut stream = server
        .stream(
            "POST",
            "/api/agui",
            &[("authorization", &auth)],
            &run_input("thread-cut-spend", QUESTION),
        )
        .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("cache-control"), Some("no-cache"));
    let events = stream.rest().await;
    let json = data(&events);
    verify(&json).unwrap_or_else(|v| panic!("{v}: {:?}", kinds(&events)));

    // The run is ours, on the client's thread.
    assert_eq!(json[0]["type"], "RUN_STARTED");
    assert_eq!(json[0]["threadId"], "thread-cut-spend");
    let run_id = run_id_of(&events);
    assert!(run_id.starts_with("run_"), "{run_id}");
    assert_eq!(json[1]["type"], "STEP_STARTED");
    assert_eq!(json[1]["stepName"], "supervisor");

    // Every AG-UI event maps back to the run's agentwire events.
    let ours = agentwire_events(&server, &alice, &run_id).await;
    let executing = of_type(&ours, "tool_executing");
    let starts = of_type(&json, "TOOL_CALL_START");
    assert!(!executing.is_empty());
    assert_eq!(starts.len(), executing.len());
    for (start, exec) in starts.iter().zip(&executing) {
        assert_eq!(start["toolCallName"], exec["tool"]);
        let id = start["toolCallId"].as_str().unwrap();
        assert_eq!(
            id,
            format!("{run_id}:{}", exec["tool_call_id"].as_str().unwrap())
        );
        let args: Vec<_> = json
            .iter()
            .filter(|e| e["type"] == "TOOL_CALL_ARGS" && e["toolCallId"] == id)
            .collect();
        assert_eq!(args.len(), 1);
        let parsed: Value = serde_json::from_str(args[0]["delta"].as_str().unwrap()).unwrap();
        assert_eq!(parsed, exec["args"]);
    }
    let completed = of_type(&ours, "tool_completed");
    let results = of_type(&json, "TOOL_CALL_RESULT");
    assert_eq!(results.len(), completed.len());
    for (result, done) in results.iter().zip(&completed) {
        assert_eq!(result["content"], done["result"]);
        assert_eq!(result["role"], "tool");
    }
    let thinking = of_type(&ours, "agent_thinking");
    let reasoning = of_type(&json, "REASONING_MESSAGE_CONTENT");
    assert_eq!(reasoning.len(), thinking.len());
    assert_eq!(reasoning[0]["delta"], thinking[0]["message"]);

    // Each sub-agent is a step.
    let subagents: Vec<&str> = of_type(&ours, "subagent_started")
        .iter()
        .map(|e| e["agent"].as_str().unwrap())
        .collect();
    let steps: Vec<&str> = of_type(&json, "STEP_STARTED")
        .iter()
        .map(|e| e["stepName"].as_str().unwrap())
        .collect();
    assert!(!subagents.is_empty());
    assert_eq!(steps[1..], subagents[..]);
    assert_eq!(
        of_type(&json, "CUSTOM")
            .iter()
            .filter(|e| e["name"] == "agentwire.agent_handoff")
            .count(),
        of_type(&ours, "agent_handoff").len()
    );

    // The answer is one text message, and the report is the result.
    let terminal = ours.last().unwrap();
    assert_eq!(terminal["type"], "agent_completed");
    let text: String = of_type(&json, "TEXT_MESSAGE_CONTENT")
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, terminal["response"].as_str().unwrap());
    assert!(text.contains('$'), "{text}");
    let finished = json.last().unwrap();
    assert_eq!(finished["type"], "RUN_FINISHED");
    assert_eq!(finished["outcome"]["type"], "success");
    assert_eq!(finished["result"], terminal["report"]);
    assert!(
        finished["result"]["recommendations"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );

    // Ids: the first AG-UI event of each agentwire event carries its seq; the rest `seq.n`.
    let mut previous = (0u64, 0u32);
    for event in &events {
        let (seq, sub) = match event.id.split_once('.') {
            Some((seq, sub)) => (seq.parse().unwrap(), sub.parse().unwrap()),
            None => (event.id.parse().unwrap(), 0),
        };
        assert!((seq, sub) > previous, "{} after {previous:?}", event.id);
        if seq != previous.0 {
            assert_eq!(sub, 0, "{}", event.id);
        }
        previous = (seq, sub);
        // And its timestamp is that event's.
        let source = &ours[usize::try_from(seq).unwrap() - 1];
        let millis = chrono::DateTime::parse_from_rfc3339(source["timestamp"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        assert_eq!(event.data["timestamp"], millis);
    }
    assert_eq!(previous.0, u64::try_from(ours.len()).unwrap());
    println!(
        "events per run: {} AG-UI events for {} agentwire events",
        events.len(),
        ours.len()
    );
}

#[tokio::test]
async fn any_agent_or_alias_can_be_run() {
    let server = TestServer::start().await;
    let alice = token("alice");
    for (path, step) in [
        ("/api/agui/unified_data_agent", "data"),
        ("/api/agui/optimization", "optimization"),
        ("/api/agui/supervisor_agent", "supervisor"),
    ] {
        let events = run_to_end(&server, path, &alice, &format!("thread-{step}")).await;
        let json = data(&events);
        verify(&json).unwrap();
        assert_eq!(json[1]["stepName"], step, "{path}");
        assert_eq!(json.last().unwrap()["type"], "RUN_FINISHED", "{path}");
    }
}

#[tokio::test]
async fn resume_from_any_point_is_byte_identical() {
    let server = TestServer::start().await;
    let alice = token("alice");
    let auth = bearer(&alice);
    let first = run_to_end(&server, "/api/agui", &alice, "thread-resume").await;
    let run_id = run_id_of(&first);
    let path = format!("/api/agui/runs/{run_id}/events");

    // No Last-Event-ID: the whole run, again.
    let again = server
        .request("GET", &path, &[("authorization", &auth)], b"")
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, raw(&first));

    // From the middle, from inside one agentwire event's group, and from the end.
    let sub_id = first.iter().position(|e| e.id.contains('.')).unwrap();
    for cut in [
        0,
        1,
        sub_id,
        first.len() / 2,
        first.len() - 2,
        first.len() - 1,
    ] {
        let last_seen = &first[cut].id;
        let resumed = server
            .request(
                "GET",
                &path,
                &[("authorization", &auth), ("last-event-id", last_seen)],
                b"",
            )
            .await;
        assert_eq!(resumed.status, 200);
        assert_eq!(
            resumed.body,
            raw(&first[cut + 1..]),
            "resume after {last_seen} differs from the first delivery"
        );
    }
    // An id past the end replays nothing and ends: the run is over.
    let past = server
        .request(
            "GET",
            &path,
            &[("authorization", &auth), ("last-event-id", "100000")],
            b"",
        )
        .await;
    assert_eq!(past.status, 200);
    assert!(past.body.is_empty(), "{}", past.text());
}

#[tokio::test]
async fn a_client_that_goes_away_does_not_stop_the_run_and_resumes_live() {
    let server = TestServer::start_with(|_, engine| {
        engine.step_delay = Duration::from_millis(60);
    })
    .await;
    let alice = token("alice");
    let auth = bearer(&alice);
    let mut stream = server
        .stream(
            "POST",
            "/api/agui",
            &[("authorization", &auth)],
            &run_input("thread-drop", QUESTION),
        )
        .await;
    let before = stream.until(|e| e.kind() == "TOOL_CALL_START").await;
    let run_id = run_id_of(&before);
    let last_seen = before.last().unwrap().id.clone();
    drop(stream);

    // Resumed while the run is still going: the rest, then live to the end.
    let mut resumed = server
        .stream(
            "GET",
            &format!("/api/agui/runs/{run_id}/events"),
            &[("authorization", &auth), ("last-event-id", &last_seen)],
            b"",
        )
        .await;
    assert_eq!(resumed.status, 200);
    let after = resumed.rest().await;
    let mut whole = before.clone();
    whole.extend(after);
    verify(&data(&whole)).unwrap();
    assert_eq!(whole.last().unwrap().data["outcome"]["type"], "success");

    // What the two streams delivered is exactly the run's stream.
    let replay = server
        .request(
            "GET",
            &format!("/api/agui/runs/{run_id}/events"),
            &[("authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(raw(&whole), replay.body);

    // And the run finished as an ordinary run in the thread's history.
    let history = server
        .request(
            "GET",
            "/api/threads/thread-drop",
            &[("authorization", &auth)],
            b"",
        )
        .await
        .json();
    let run = &history["runs"][0];
    assert_eq!(run["run_id"], run_id.as_str());
    assert_eq!(
        run["events"].as_array().unwrap().last().unwrap()["type"],
        "agent_completed"
    );
}

#[tokio::test]
async fn cancel_ends_the_stream_with_everything_closed() {
    let server = TestServer::start_with(|_, engine| {
        engine.step_delay = Duration::from_millis(80);
    })
    .await;
    let alice = token("alice");
    let auth = bearer(&alice);
    let mut stream = server
        .stream(
            "POST",
            "/api/agui",
            &[("authorization", &auth)],
            &run_input("thread-cancel", QUESTION),
        )
        .await;
    // Inside a sub-agent's step, with a tool call behind it.
    let before = stream.until(|e| e.kind() == "TOOL_CALL_START").await;
    let run_id = run_id_of(&before);
    assert!(
        kinds(&before)
            .iter()
            .filter(|k| **k == "STEP_STARTED")
            .count()
            >= 2,
        "{:?}",
        kinds(&before)
    );

    // Another user cannot cancel it, and learns nothing.
    let bob = bearer(&token("bob"));
    let cancel_path = format!("/api/agui/runs/{run_id}/cancel");
    let refused = server
        .request("POST", &cancel_path, &[("authorization", &bob)], b"")
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(refused.json()["error_code"], "RUN_NOT_FOUND");

    let cancelled = server
        .request("POST", &cancel_path, &[("authorization", &auth)], b"")
        .await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.text());
    assert_eq!(cancelled.json()["run_id"], run_id.as_str());

    let after = stream.rest().await;
    let mut whole = before;
    whole.extend(after);
    let json = data(&whole);
    verify(&json).unwrap_or_else(|v| panic!("{v}: {:?}", kinds(&whole)));
    let last = json.last().unwrap();
    assert_eq!(last["type"], "RUN_FINISHED");
    assert_eq!(last["outcome"]["type"], "cancelled");
    assert!(last.get("result").is_none());
    assert_eq!(json[json.len() - 2]["type"], "STEP_FINISHED");
    // Every tool call that started has a result.
    assert_eq!(
        of_type(&json, "TOOL_CALL_START").len(),
        of_type(&json, "TOOL_CALL_RESULT").len()
    );
    let ours = agentwire_events(&server, &alice, &run_id).await;
    assert_eq!(ours.last().unwrap()["type"], "agent_cancelled");

    // Cancelling again, once it is over, changes nothing.
    let again = server
        .request("POST", &cancel_path, &[("authorization", &auth)], b"")
        .await;
    assert_eq!(again.status, 202);
}

/// Resumes a run over the WebSocket and reads its events to the terminal one.
async fn follow_over_websocket(server: &TestServer, token: &str, run_id: &str) -> Vec<Value> {
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", bearer(token).parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(
            json!({"type": "resume", "id": "r1", "run_id": run_id, "after_seq": 0}).to_string(),
        ))
        .await
        .unwrap();
    let mut events = Vec::new();
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("no frame in time")
            .unwrap()
            .unwrap();
        let Message::Text(text) = frame else { continue };
        let value: Value = serde_json::from_str(&text).unwrap();
        if value["run_id"] == run_id && value.get("seq").is_some() {
            let kind = value["type"].as_str().unwrap().to_owned();
            events.push(value);
            if ["agent_completed", "agent_error", "agent_cancelled"].contains(&kind.as_str()) {
                return events;
            }
        }
    }
}

#[tokio::test]
async fn an_ag_ui_run_is_an_ordinary_run() {
    let server = TestServer::start_with(|_, engine| {
        engine.step_delay = Duration::from_millis(40);
    })
    .await;
    let alice = token("alice");
    let auth = bearer(&alice);
    let mut stream = server
        .stream(
            "POST",
            "/api/agui",
            &[("authorization", &auth)],
            &run_input("thread-ordinary", QUESTION),
        )
        .await;
    let first = stream.next_event().await.unwrap();
    let run_id = first.data["runId"].as_str().unwrap().to_owned();

    // Its thread is busy, for the socket and for AG-UI alike.
    let conflict = server
        .request(
            "POST",
            "/api/agui",
            &[("authorization", &auth)],
            &run_input("thread-ordinary", "And last week?"),
        )
        .await;
    assert_eq!(conflict.status, 409, "{}", conflict.text());
    assert_eq!(conflict.json()["error_code"], "RUN_CONFLICT");
    assert_eq!(conflict.json()["run_id"], run_id.as_str());

    // Followed over the WebSocket while it runs.
    let over_socket = follow_over_websocket(&server, &alice, &run_id).await;
    assert_eq!(over_socket[0]["type"], "agent_started");
    assert_eq!(over_socket[0]["user_request"], QUESTION);
    assert_eq!(over_socket.last().unwrap()["type"], "agent_completed");
    let rest = stream.rest().await;
    assert_eq!(rest.last().unwrap().kind(), "RUN_FINISHED");

    // In the thread list, under the client's thread id, titled by the question.
    let threads = server
        .request("GET", "/api/threads", &[("authorization", &auth)], b"")
        .await
        .json();
    assert_eq!(threads["threads"][0]["thread_id"], "thread-ordinary");
    assert_eq!(threads["threads"][0]["title"], QUESTION);

    // A second question on the same thread is a second run of it.
    let second = run_to_end(&server, "/api/agui", &alice, "thread-ordinary").await;
    assert_ne!(run_id_of(&second), run_id);
    let history = server
        .request(
            "GET",
            "/api/threads/thread-ordinary",
            &[("authorization", &auth)],
            b"",
        )
        .await
        .json();
    assert_eq!(history["runs"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn every_refusal_is_json_with_a_code() {
    let server = TestServer::start_with(|config, _| {
        config.max_user_request_bytes = 1000;
    })
    .await;
    let alice = token("alice");
    let auth = bearer(&alice);
    let body = run_input("thread-errors", QUESTION);

    let missing = server.request("POST", "/api/agui", &[], &body).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error_code"], "AUTH_REQUIRED");
    for bad in [forged_token("alice"), "not-a-jwt".to_owned()] {
        let refused = server
            .request(
                "POST",
                "/api/agui",
                &[("authorization", &bearer(&bad))],
                &body,
            )
            .await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.json()["error_code"], "AUTH_FAILED");
        assert!(refused.header("www-authenticate").is_some());
    }
    let resume_unauthenticated = server
        .request("GET", "/api/agui/runs/run_x/events", &[], b"")
        .await;
    assert_eq!(resume_unauthenticated.status, 401);
    let cancel_unauthenticated = server
        .request("POST", "/api/agui/runs/run_x/cancel", &[], b"")
        .await;
    assert_eq!(cancel_unauthenticated.status, 401);

    let long_question = "x".repeat(1001);
    let bodies: [(Vec<u8>, &str); 8] = [
        (Vec::new(), "empty"),
        (b"{\"threadId\":".to_vec(), "not valid JSON"),
        (b"[]".to_vec(), "JSON object"),
        (br#"{"runId":"r","messages":[]}"#.to_vec(), "`threadId` is required"),
        (
            br#"{"threadId":"t","runId":"r","messages":[{"id":"m","role":"assistant","content":"hi"}]}"#.to_vec(),
            "no `user` message",
        ),
        (
            br#"{"threadId":"t","runId":"r","messages":[{"id":"m","role":"user","content":"q"}],"forwardedProps":{"timeframe":"soon"}}"#.to_vec(),
            "timeframe",
        ),
        (run_input("thread-errors", &long_question), "1001 bytes"),
        (run_input(&"t".repeat(129), QUESTION), "`threadId` must be 1 to 128"),
    ];
    for (body, expected) in bodies {
        let refused = server
            .request("POST", "/api/agui", &[("authorization", &auth)], &body)
            .await;
        assert_eq!(refused.status, 400, "{expected}: {}", refused.text());
        let json = refused.json();
        assert_eq!(json["error_code"], "INVALID_MESSAGE");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(expected), "{expected}: {message}");
    }

    let unknown = server
        .request(
            "POST",
            "/api/agui/astrologer",
            &[("authorization", &auth)],
            &body,
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error_code"], "AGENT_NOT_FOUND");
    assert!(
        unknown.json()["message"]
            .as_str()
            .unwrap()
            .contains("supervisor")
    );

    let bad_id = server
        .request(
            "GET",
            "/api/agui/runs/run_x/events",
            &[("authorization", &auth), ("last-event-id", "seven")],
            b"",
        )
        .await;
    assert_eq!(bad_id.status, 400);
    assert!(
        bad_id.json()["message"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID")
    );

    // Another user's run is exactly an unknown run, on resume and on cancel.
    let events = run_to_end(&server, "/api/agui", &alice, "thread-owned").await;
    let run_id = run_id_of(&events);
    let bob = bearer(&token("bob"));
    for (method, suffix) in [("GET", "events"), ("POST", "cancel")] {
        let theirs = server
            .request(
                method,
                &format!("/api/agui/runs/{run_id}/{suffix}"),
                &[("authorization", &bob)],
                b"",
            )
            .await;
        let unknown = server
            .request(
                method,
                &format!("/api/agui/runs/run_00000000000000000000000000000000/{suffix}"),
                &[("authorization", &bob)],
                b"",
            )
            .await;
        assert_eq!(theirs.status, 404, "{method} {suffix}");
        assert_eq!(theirs.json()["error_code"], "RUN_NOT_FOUND");
        assert_eq!(theirs.body, unknown.body, "{method} {suffix}");
    }
    // The same user in another tenant is another principal.
    let other_tenant = bearer(&agui::support::sign(
        &json!({"sub": "alice", "org_id": "elsewhere", "exp": chrono::Utc::now().timestamp() + 600}),
    ));
    let theirs = server
        .request(
            "GET",
            &format!("/api/agui/runs/{run_id}/events"),
            &[("authorization", &other_tenant)],
            b"",
        )
        .await;
    assert_eq!(theirs.status, 404);

    let wrong_method = server
        .request("GET", "/api/agui", &[("authorization", &auth)], b"")
        .await;
    assert_eq!(wrong_method.status, 405);
}

#[tokio::test]
async fn limits_are_the_sockets() {
    // One run at a time per user.
    let server = TestServer::start_with(|_, engine| {
        engine.max_concurrent_runs_per_user = 1;
        engine.step_delay = Duration::from_millis(50);
    })
    .await;
    let alice = token("alice");
    let auth = bearer(&alice);
    let mut running = server
        .stream(
            "POST",
            "/api/agui",
            &[("authorization", &auth)],
            &run_input("thread-a", QUESTION),
        )
        .await;
    running.next_event().await.unwrap();
    let second = server
        .request(
            "POST",
            "/api/agui",
            &[("authorization", &auth)],
            &run_input("thread-b", QUESTION),
        )
        .await;
    assert_eq!(second.status, 429, "{}", second.text());
    assert_eq!(second.json()["error_code"], "RATE_LIMITED");
    assert!(second.json()["retry_after_ms"].as_u64().unwrap() > 0);
    assert!(second.header("retry-after").is_some());
    // Someone else is not affected.
    let bob = token("bob");
    let theirs = run_to_end(&server, "/api/agui", &bob, "thread-bob").await;
    assert_eq!(theirs.last().unwrap().kind(), "RUN_FINISHED");
    running.rest().await;

    // The user's request rate, shared with their sockets.
    let server = TestServer::start_with(|config, _| {
        config.user_rate = agentwire_server::RateLimit {
            per_second: 1,
            burst: 2,
        };
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = server
            .request(
                "POST",
                "/api/agui/runs/run_x/cancel",
                &[("authorization", &auth)],
                b"",
            )
            .await;
        statuses.push((
            response.status,
            response.header("retry-after").map(str::to_owned),
        ));
    }
    assert_eq!(statuses[0].0, 404);
    assert_eq!(statuses[1].0, 404);
    assert_eq!(statuses[2].0, 429);
    assert!(statuses[2].1.is_some());

    // An open stream is a connection, within the user's cap.
    let server = TestServer::start_with(|config, engine| {
        config.max_connections_per_user = 1;
        engine.step_delay = Duration::from_millis(50);
    })
    .await;
    let mut open = server
        .stream(
            "POST",
            "/api/agui",
            &[("authorization", &auth)],
            &run_input("thread-c", QUESTION),
        )
        .await;
    let first = open.next_event().await.unwrap();
    let run_id = first.data["runId"].as_str().unwrap().to_owned();
    let resume = server
        .request(
            "GET",
            &format!("/api/agui/runs/{run_id}/events"),
            &[("authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(resume.status, 429, "{}", resume.text());
    assert!(resume.header("retry-after").is_some());
    assert!(
        resume.json()["message"]
            .as_str()
            .unwrap()
            .contains("AG-UI stream")
    );
    // A cancel holds no connection, so it is not refused by the cap.
    let cancel = server
        .request(
            "POST",
            &format!("/api/agui/runs/{run_id}/cancel"),
            &[("authorization", &auth)],
            b"",
        )
        .await;
    assert_eq!(cancel.status, 202);
    let rest = open.rest().await;
    assert_eq!(rest.last().unwrap().data["outcome"]["type"], "cancelled");
    // Once the stream has ended its place is free again (the server lets go of it just after
    // the last bytes leave).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resume = server
            .request(
                "GET",
                &format!("/api/agui/runs/{run_id}/events"),
                &[("authorization", &auth)],
                b"",
            )
            .await;
        if resume.status == 200 {
            break;
        }
        assert_eq!(resume.status, 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream's place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_run_error() {
    let server = TestServer::start_with(|config, engine| {
        engine.step_delay = Duration::from_millis(200);
        config.drain_timeout = Duration::from_millis(100);
    })
    .await;
    let auth = bearer(&token("alice"));
    let mut stream = server
        .stream(
            "POST",
            "/api/agui",
            &[("authorization", &auth)],
            &run_input("thread-stop", QUESTION),
        )
        .await;
    stream.next_event().await.unwrap();
    let reading = tokio::spawn(async move { stream.rest().await });
    server.stop().await;
    let rest = reading.await.unwrap();
    let last = rest.last().unwrap();
    assert_eq!(last.kind(), "RUN_ERROR");
    assert_eq!(last.data["code"], "INTERRUPTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_drives_a_real_run() {
    agui::node::run_node_test().await;
}
