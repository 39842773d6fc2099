//! The AG-UI endpoints end to end: real servers (`agentwire_testkit`, demo data for tenants
//! without their own), real JWTs, real HTTP, streams read with the validation suite's SSE reader.
//! Every stream is judged by AG-UI's ordering rules (`agentwire_check::agui::verify`); resumes are
//! compared byte for byte with the first delivery; the run behind a stream is checked through the
//! rest of the API (its events over HTTP, the history, the WebSocket).
//!
//! `node` runs the real AG-UI client (`@ag-ui/client`, Node.js) against the server: see
//! `tests/agui-node/`.

mod node;

use agentwire_check::agui::{SseEvent, SseStream, run_input, verify};
use agentwire_check::http::HttpTarget;
use agentwire_server::RateLimit;
use agentwire_testkit::{TestServer, forged_token, sign, token};
use serde_json::{Value, json};
use std::time::Duration;

/// How long any one wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);

const QUESTION: &str = "Where can we cut our AI spend without hurting quality?";

fn bearer(sub: &str) -> String {
    format!("Bearer {}", token(sub, None))
}

/// A `RunAgentInput` asking [`QUESTION`] on `thread`.
fn ask(thread: &str) -> Vec<u8> {
    run_input(thread, "client-run-1", QUESTION)
        .to_string()
        .into_bytes()
}

/// Opens a request whose answer is read as events.
async fn open(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> SseStream {
    HttpTarget::parse(&server.url())
        .unwrap()
        .open_stream(method, path, headers, body, WAIT)
        .await
        .unwrap()
}

/// Starts a run as `auth` and reads its whole stream.
async fn run_to_end(server: &TestServer, path: &str, auth: &str, thread: &str) -> Vec<SseEvent> {
    let mut stream = open(
        server,
        "POST",
        path,
        &[("authorization", auth)],
        ask(thread),
    )
    .await;
    assert_eq!(stream.status, 200);
    stream.rest(WAIT).await.unwrap()
}

/// Reads until an event matches, returning every event read (the match last).
async fn until(stream: &mut SseStream, matches: impl Fn(&Value) -> bool) -> Vec<SseEvent> {
    let mut events = Vec::new();
    while let Some(event) = stream.next_event(WAIT).await.unwrap() {
        let done = matches(&event.json().unwrap());
        events.push(event);
        if done {
            return events;
        }
    }
    panic!(
        "the stream ended before the awaited event: {:?}",
        kinds(&events)
    );
}

fn data(events: &[SseEvent]) -> Vec<Value> {
    events.iter().map(|e| e.json().unwrap()).collect()
}

fn kinds(events: &[SseEvent]) -> Vec<String> {
    data(events)
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn kind(event: &SseEvent) -> String {
    event.json().unwrap()["type"].as_str().unwrap().to_owned()
}

/// Every event's bytes, concatenated.
fn raw(events: &[SseEvent]) -> Vec<u8> {
    events.iter().flat_map(|e| e.raw.iter().copied()).collect()
}

fn id(event: &SseEvent) -> &str {
    event.id.as_deref().unwrap()
}

fn run_id_of(events: &[SseEvent]) -> String {
    events[0].json().unwrap()["runId"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// The run's agentwire events, as the history API returns them.
async fn agentwire_events(server: &TestServer, auth: &str, run_id: &str) -> Vec<Value> {
    let response = server
        .get(
            &format!("/api/runs/{run_id}/events"),
            &[("authorization", auth)],
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    response.json().as_array().unwrap().clone()
}

#[tokio::test]
async fn a_run_streams_every_step_as_ag_ui_events() {
    let server = TestServer::builder().demo_data().start().await;
    let alice = bearer("alice");
    let mut stream = open(
        &server,
        "POST",
        "/api/agui",
        &[("authorization", &alice)],
        ask("thread-cut-spend"),
    )
    .await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(stream.header("cache-control"), Some("no-cache"));
    let events = stream.rest(WAIT).await.unwrap();
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
        let call = start["toolCallId"].as_str().unwrap();
        assert_eq!(
            call,
            format!("{run_id}:{}", exec["tool_call_id"].as_str().unwrap())
        );
        let args: Vec<_> = json
            .iter()
            .filter(|e| e["type"] == "TOOL_CALL_ARGS" && e["toolCallId"] == call)
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
        let (seq, part) = match id(event).split_once('.') {
            Some((seq, part)) => (seq.parse().unwrap(), part.parse().unwrap()),
            None => (id(event).parse().unwrap(), 0),
        };
        assert!((seq, part) > previous, "{} after {previous:?}", id(event));
        if seq != previous.0 {
            assert_eq!(part, 0, "{}", id(event));
        }
        previous = (seq, part);
        // And its timestamp is that event's.
        let source = &ours[usize::try_from(seq).unwrap() - 1];
        let millis = chrono::DateTime::parse_from_rfc3339(source["timestamp"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        assert_eq!(event.json().unwrap()["timestamp"], millis);
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
    let server = TestServer::builder().demo_data().start().await;
    let alice = bearer("alice");
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
    let server = TestServer::builder().demo_data().start().await;
    let alice = bearer("alice");
    let first = run_to_end(&server, "/api/agui", &alice, "thread-resume").await;
    let run_id = run_id_of(&first);
    let path = format!("/api/agui/runs/{run_id}/events");

    // No Last-Event-ID: the whole run, again.
    let again = server.get(&path, &[("authorization", &alice)]).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, raw(&first));

    // From the middle, from inside one agentwire event's group, and from the end.
    let part = first.iter().position(|e| id(e).contains('.')).unwrap();
    for cut in [
        0,
        1,
        part,
        first.len() / 2,
        first.len() - 2,
        first.len() - 1,
    ] {
        let last_seen = id(&first[cut]);
        let resumed = server
            .get(
                &path,
                &[("authorization", &alice), ("last-event-id", last_seen)],
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
        .get(
            &path,
            &[("authorization", &alice), ("last-event-id", "100000")],
        )
        .await;
    assert_eq!(past.status, 200);
    assert!(past.body.is_empty(), "{}", past.text());
}

#[tokio::test]
async fn a_client_that_goes_away_does_not_stop_the_run_and_resumes_live() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(60))
        .start()
        .await;
    let alice = bearer("alice");
    let mut stream = open(
        &server,
        "POST",
        "/api/agui",
        &[("authorization", &alice)],
        ask("thread-drop"),
    )
    .await;
    let before = until(&mut stream, |e| e["type"] == "TOOL_CALL_START").await;
    let run_id = run_id_of(&before);
    let last_seen = id(before.last().unwrap()).to_owned();
    drop(stream);

    // Resumed while the run is still going: the rest, then live to the end.
    let path = format!("/api/agui/runs/{run_id}/events");
    let mut resumed = open(
        &server,
        "GET",
        &path,
        &[("authorization", &alice), ("last-event-id", &last_seen)],
        Vec::new(),
    )
    .await;
    assert_eq!(resumed.status, 200);
    let after = resumed.rest(WAIT).await.unwrap();
    let mut whole = before.clone();
    whole.extend(after);
    verify(&data(&whole)).unwrap();
    assert_eq!(
        whole.last().unwrap().json().unwrap()["outcome"]["type"],
        "success"
    );

    // What the two streams delivered is exactly the run's stream.
    let replay = server.get(&path, &[("authorization", &alice)]).await;
    assert_eq!(raw(&whole), replay.body);

    // And the run finished as an ordinary run in the thread's history.
    let history = server
        .get("/api/threads/thread-drop", &[("authorization", &alice)])
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
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(80))
        .start()
        .await;
    let alice = bearer("alice");
    let mut stream = open(
        &server,
        "POST",
        "/api/agui",
        &[("authorization", &alice)],
        ask("thread-cancel"),
    )
    .await;
    // Inside a sub-agent's step, with a tool call behind it.
    let before = until(&mut stream, |e| e["type"] == "TOOL_CALL_START").await;
    let run_id = run_id_of(&before);
    assert!(
        kinds(&before)
            .iter()
            .filter(|k| *k == "STEP_STARTED")
            .count()
            >= 2,
        "{:?}",
        kinds(&before)
    );

    // Another user cannot cancel it, and learns nothing.
    let cancel_path = format!("/api/agui/runs/{run_id}/cancel");
    let refused = server
        .post(&cancel_path, &[("authorization", &bearer("bob"))], b"")
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(refused.json()["error_code"], "RUN_NOT_FOUND");

    let cancelled = server
        .post(&cancel_path, &[("authorization", &alice)], b"")
        .await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.text());
    assert_eq!(cancelled.json()["run_id"], run_id.as_str());

    let after = stream.rest(WAIT).await.unwrap();
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
        .post(&cancel_path, &[("authorization", &alice)], b"")
        .await;
    assert_eq!(again.status, 202);
}

#[tokio::test]
async fn an_ag_ui_run_is_an_ordinary_run() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(40))
        .start()
        .await;
    let alice = bearer("alice");
    let mut stream = open(
        &server,
        "POST",
        "/api/agui",
        &[("authorization", &alice)],
        ask("thread-ordinary"),
    )
    .await;
    let first = stream.next_event(WAIT).await.unwrap().unwrap();
    let run_id = first.json().unwrap()["runId"].as_str().unwrap().to_owned();

    // Its thread is busy, for the socket and for AG-UI alike.
    let conflict = server
        .post(
            "/api/agui",
            &[("authorization", &alice)],
            &run_input("thread-ordinary", "r2", "And last week?")
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(conflict.status, 409, "{}", conflict.text());
    assert_eq!(conflict.json()["error_code"], "RUN_CONFLICT");
    assert_eq!(conflict.json()["run_id"], run_id.as_str());

    // Followed over the WebSocket while it runs.
    let mut session = server.connect_as("alice").await;
    session
        .send_json(&json!({"type": "resume", "id": "r1", "run_id": run_id, "after_seq": 0}))
        .await
        .unwrap();
    let over_socket = session.collect_run(&run_id, WAIT).await.unwrap();
    assert_eq!(over_socket.events[0]["type"], "agent_started");
    assert_eq!(over_socket.events[0]["user_request"], QUESTION);
    assert_eq!(over_socket.terminal_type(), Some("agent_completed"));
    let rest = stream.rest(WAIT).await.unwrap();
    assert_eq!(kind(rest.last().unwrap()), "RUN_FINISHED");

    // In the thread list, under the client's thread id, titled by the question.
    let threads = server
        .get("/api/threads", &[("authorization", &alice)])
        .await
        .json();
    assert_eq!(threads["threads"][0]["thread_id"], "thread-ordinary");
    assert_eq!(threads["threads"][0]["title"], QUESTION);

    // A second question on the same thread is a second run of it.
    let second = run_to_end(&server, "/api/agui", &alice, "thread-ordinary").await;
    assert_ne!(run_id_of(&second), run_id);
    let history = server
        .get("/api/threads/thread-ordinary", &[("authorization", &alice)])
        .await
        .json();
    assert_eq!(history["runs"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn every_refusal_is_json_with_a_code() {
    let server = TestServer::builder()
        .demo_data()
        .configure(|config, _| config.max_user_request_bytes = 1000)
        .start()
        .await;
    let alice = bearer("alice");
    let body = ask("thread-errors");

    let missing = server.post("/api/agui", &[], &body).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error_code"], "AUTH_REQUIRED");
    for bad in [forged_token("alice"), "not-a-jwt".to_owned()] {
        let refused = server
            .post(
                "/api/agui",
                &[("authorization", &format!("Bearer {bad}"))],
                &body,
            )
            .await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.json()["error_code"], "AUTH_FAILED");
        assert!(refused.header("www-authenticate").is_some());
    }
    let resume_unauthenticated = server.get("/api/agui/runs/run_x/events", &[]).await;
    assert_eq!(resume_unauthenticated.status, 401);
    let cancel_unauthenticated = server.post("/api/agui/runs/run_x/cancel", &[], b"").await;
    assert_eq!(cancel_unauthenticated.status, 401);

    let long_question = "x".repeat(1001);
    let bodies: [(Vec<u8>, &str); 8] = [
        (Vec::new(), "empty"),
        (b"{\"threadId\":".to_vec(), "not valid JSON"),
        (b"[]".to_vec(), "JSON object"),
        (
            br#"{"runId":"r","messages":[]}"#.to_vec(),
            "`threadId` is required",
        ),
        (
            br#"{"threadId":"t","runId":"r","messages":[{"id":"m","role":"assistant","content":"hi"}]}"#.to_vec(),
            "no `user` message",
        ),
        (
            br#"{"threadId":"t","runId":"r","messages":[{"id":"m","role":"user","content":"q"}],"forwardedProps":{"timeframe":"soon"}}"#.to_vec(),
            "timeframe",
        ),
        (
            run_input("thread-errors", "r", &long_question)
                .to_string()
                .into_bytes(),
            "1001 bytes",
        ),
        (ask(&"t".repeat(129)), "`threadId` must be 1 to 128"),
    ];
    for (body, expected) in bodies {
        let refused = server
            .post("/api/agui", &[("authorization", &alice)], &body)
            .await;
        assert_eq!(refused.status, 400, "{expected}: {}", refused.text());
        let json = refused.json();
        assert_eq!(json["error_code"], "INVALID_MESSAGE");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(expected), "{expected}: {message}");
    }

    let unknown = server
        .post("/api/agui/astrologer", &[("authorization", &alice)], &body)
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
        .get(
            "/api/agui/runs/run_x/events",
            &[("authorization", &alice), ("last-event-id", "seven")],
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
    let bob = bearer("bob");
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
    let other_tenant = format!(
        "Bearer {}",
        sign(&json!({"sub": "alice", "org_id": "elsewhere",
                     "exp": chrono::Utc::now().timestamp() + 600}))
    );
    let theirs = server
        .get(
            &format!("/api/agui/runs/{run_id}/events"),
            &[("authorization", &other_tenant)],
        )
        .await;
    assert_eq!(theirs.status, 404);

    let wrong_method = server.get("/api/agui", &[("authorization", &alice)]).await;
    assert_eq!(wrong_method.status, 405);
}

#[tokio::test]
async fn limits_are_the_sockets() {
    // One run at a time per user.
    let server = TestServer::builder()
        .demo_data()
        .max_runs_per_user(1)
        .step_delay(Duration::from_millis(50))
        .start()
        .await;
    let alice = bearer("alice");
    let mut running = open(
        &server,
        "POST",
        "/api/agui",
        &[("authorization", &alice)],
        ask("thread-a"),
    )
    .await;
    running.next_event(WAIT).await.unwrap().unwrap();
    let second = server
        .post("/api/agui", &[("authorization", &alice)], &ask("thread-b"))
        .await;
    assert_eq!(second.status, 429, "{}", second.text());
    assert_eq!(second.json()["error_code"], "RATE_LIMITED");
    assert!(second.json()["retry_after_ms"].as_u64().unwrap() > 0);
    assert!(second.header("retry-after").is_some());
    // Someone else is not affected.
    let theirs = run_to_end(&server, "/api/agui", &bearer("bob"), "thread-bob").await;
    assert_eq!(kind(theirs.last().unwrap()), "RUN_FINISHED");
    running.rest(WAIT).await.unwrap();

    // The user's request rate, shared with their sockets.
    let server = TestServer::builder()
        .message_rates(
            RateLimit {
                per_second: 100,
                burst: 100,
            },
            RateLimit {
                per_second: 1,
                burst: 2,
            },
        )
        .start()
        .await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(
            server
                .post(
                    "/api/agui/runs/run_x/cancel",
                    &[("authorization", &alice)],
                    b"",
                )
                .await,
        );
    }
    assert_eq!(answers[0].status, 404);
    assert_eq!(answers[1].status, 404);
    assert_eq!(answers[2].status, 429);
    assert!(answers[2].header("retry-after").is_some());

    // An open stream is a connection, within the user's cap.
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(50))
        .configure(|config, _| config.max_connections_per_user = 1)
        .start()
        .await;
    let mut open_stream = open(
        &server,
        "POST",
        "/api/agui",
        &[("authorization", &alice)],
        ask("thread-c"),
    )
    .await;
    let first = open_stream.next_event(WAIT).await.unwrap().unwrap();
    let run_id = first.json().unwrap()["runId"].as_str().unwrap().to_owned();
    let events_path = format!("/api/agui/runs/{run_id}/events");
    let resume = server.get(&events_path, &[("authorization", &alice)]).await;
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
        .post(
            &format!("/api/agui/runs/{run_id}/cancel"),
            &[("authorization", &alice)],
            b"",
        )
        .await;
    assert_eq!(cancel.status, 202);
    let rest = open_stream.rest(WAIT).await.unwrap();
    assert_eq!(
        rest.last().unwrap().json().unwrap()["outcome"]["type"],
        "cancelled"
    );
    // Once the stream has ended its place is free again (the server lets go of it just after
    // the last bytes leave).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resume = server.get(&events_path, &[("authorization", &alice)]).await;
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
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(200))
        .drain_timeout(Duration::from_millis(100))
        .start()
        .await;
    let mut stream = open(
        &server,
        "POST",
        "/api/agui",
        &[("authorization", &bearer("alice"))],
        ask("thread-stop"),
    )
    .await;
    stream.next_event(WAIT).await.unwrap().unwrap();
    let reading = tokio::spawn(async move { stream.rest(WAIT).await.unwrap() });
    server.stop().await.unwrap();
    let rest = reading.await.unwrap();
    let last = rest.last().unwrap().json().unwrap();
    assert_eq!(last["type"], "RUN_ERROR");
    assert_eq!(last["code"], "INTERRUPTED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_drives_a_real_run() {
    node::run_node_test().await;
}
