//! Runs end to end, as a user sees them: a real server on 127.0.0.1:0 over SQLite in a temp dir,
//! usage uploaded through `POST /api/usage`, real JWTs, real WebSockets. Each answer's figures are
//! checked against a computation over the uploaded records written here, independently of the
//! engine's analytics.
use crate::usd;
use agentwire_analytics::{DemoConfig, DemoDataset, PriceTable, UsageRecord, generate_demo};
use agentwire_check::client::{ClientError, Session};
use agentwire_check::grammar;
use agentwire_testkit::{TestServer, token, usage_writer_token};
use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashSet};
use std::sync::OnceLock;
use std::time::Duration;

pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) fn demo() -> &'static DemoDataset {
    static DEMO: OnceLock<DemoDataset> = OnceLock::new();
    DEMO.get_or_init(|| generate_demo(&DemoConfig::default()))
}

/// Uploads records as JSON lines through the HTTP API, as a user would.
pub(crate) async fn upload(server: &TestServer, token: &str, records: &[UsageRecord]) {
    let mut body = String::new();
    for record in records {
        body.push_str(&serde_json::to_string(record).unwrap());
        body.push('\n');
    }
    let auth = format!("Bearer {token}");
    let response = server
        .post(
            "/api/usage?format=jsonl",
            &[
                ("authorization", &auth),
                ("content-type", "application/x-ndjson"),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
}

/// Starts a run and returns its id, failing the test on any refusal.
async fn start(session: &mut Session, id: &str, agent: &str, question: &str) -> String {
    session
        .start_agent(id, agent, question, Map::new())
        .await
        .unwrap();
    session.wait_run_accepted(id, WAIT).await.unwrap().run_id
}

/// The 30-day window the agents analyse by default: it ends at the first whole hour after the
/// newest record (docs/protocol.md), and is half-open.
pub(crate) fn default_window(records: &[UsageRecord]) -> (DateTime<Utc>, DateTime<Utc>) {
    let newest = records.iter().map(|r| r.timestamp).max().unwrap();
    let end = newest.duration_trunc(ChronoDuration::hours(1)).unwrap() + ChronoDuration::hours(1);
    (end - ChronoDuration::days(30), end)
}

pub(crate) fn in_window(r: &UsageRecord, (start, end): (DateTime<Utc>, DateTime<Utc>)) -> bool {
    r.timestamp >= start && r.timestamp < end
}

/// The list cost of one record at a model's per-token prices (no cache or batch in the demo set).
fn cost_at(r: &UsageRecord, input_per_token: f64, output_per_token: f64) -> f64 {
    r.input_tokens as f64 * input_per_token + r.output_tokens as f64 * output_per_token
}

pub(crate) fn total_cost(records: &[UsageRecord]) -> f64 {
    let prices = PriceTable::embedded();
    let window = default_window(records);
    records
        .iter()
        .filter(|r| in_window(r, window))
        .map(|r| {
            let p = prices.lookup(&r.model).unwrap();
            cost_at(r, p.input_cost_per_token, p.output_cost_per_token)
        })
        .sum()
}

/// Every frame on the wire has `type` and an RFC 3339 UTC `timestamp` (PROTOCOL.md section 3).
fn assert_frames_well_formed(frames: &[Value]) {
    for frame in frames {
        let violations = grammar::check_frame(frame);
        assert!(violations.is_empty(), "{frame}: {violations:?}");
    }
}

pub(crate) fn assert_valid_completed_run(events: &[Value]) {
    let violations = grammar::check_run(events);
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(grammar::critical_events_present(events));
    assert_frames_well_formed(events);
    assert_eq!(events.last().unwrap()["type"], "agent_completed");
}

pub(crate) fn completed(events: &[Value]) -> &Value {
    events.last().unwrap()
}

#[tokio::test]
async fn data_agent_answers_with_the_uploaded_figures() {
    let server = TestServer::start().await;
    let token = usage_writer_token("dana", "acme");
    upload(&server, &token, &demo().records).await;
    let mut session = server.connect_bearer(&token).await;

    // A lookup: the figure is the answer's first line, and the thinking states it.
    let run_id = start(&mut session, "r1", "data", "What did we spend on AI?").await;
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    assert_valid_completed_run(&run.events);
    let done = completed(&run.events);
    let expected = total_cost(&demo().records);
    let reported = done["report"]["lookup"]["result"]["value"]
        .as_f64()
        .unwrap();
    assert!(
        (reported - expected).abs() < 1e-6 * expected,
        "{reported} vs {expected}"
    );
    let response = done["response"].as_str().unwrap();
    let first_line = response.lines().next().unwrap();
    assert!(
        first_line.contains(&usd(expected)),
        "{}\n{response}",
        usd(expected)
    );
    let thinking: Vec<&str> = run
        .events
        .iter()
        .filter(|e| e["type"] == "agent_thinking")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        thinking.iter().any(|m| m.contains(&usd(expected))),
        "{thinking:#?}"
    );

    // A broad question gets the data agent's review: the planted spike is found, on its day, and
    // said in the answer and in the thinking.
    let run_id = start(&mut session, "r2", "data", "Why did our AI spend spike?").await;
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    assert_valid_completed_run(&run.events);
    let done = completed(&run.events);
    let reported = done["report"]["summary"]["total_cost_usd"]
        .as_f64()
        .unwrap();
    assert!(
        (reported - expected).abs() < 1e-6 * expected,
        "{reported} vs {expected}"
    );
    let response = done["response"].as_str().unwrap();
    assert!(response.contains(&usd(expected)), "{response}");
    let spike = demo().facts.spike_day.to_string();
    assert_eq!(done["report"]["anomalies"][0]["start"], spike.as_str());
    assert!(response.contains(&spike), "{response}");
    let thinking: Vec<&str> = run
        .events
        .iter()
        .filter(|e| e["type"] == "agent_thinking")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(thinking.iter().any(|m| m.contains(&spike)), "{thinking:#?}");
}

#[tokio::test]
async fn optimization_agent_quantifies_the_routing_saving() {
    let server = TestServer::start().await;
    let token = usage_writer_token("olga", "acme");
    upload(&server, &token, &demo().records).await;
    let mut session = server.connect_bearer(&token).await;
    let run_id = start(
        &mut session,
        "o1",
        "optimization_agent",
        "How can we cut costs?",
    )
    .await;
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    assert_valid_completed_run(&run.events);

    // Direct computation: the routed feature's traffic in the window, at both models' list prices,
    // scaled from 30 days to a month (the window is 30 days: factor 1).
    let facts = &demo().facts;
    let prices = PriceTable::embedded();
    let (from, to) = (
        prices.lookup(&facts.routing_model).unwrap(),
        prices.lookup(&facts.routing_target_model).unwrap(),
    );
    let window = default_window(&demo().records);
    let routed: Vec<&UsageRecord> = demo()
        .records
        .iter()
        .filter(|r| in_window(r, window))
        .filter(|r| r.model == facts.routing_model)
        .filter(|r| r.feature.as_deref() == Some(facts.routing_feature.as_str()))
        .collect();
    let now: f64 = routed
        .iter()
        .map(|r| cost_at(r, from.input_cost_per_token, from.output_cost_per_token))
        .sum();
    let after: f64 = routed
        .iter()
        .map(|r| cost_at(r, to.input_cost_per_token, to.output_cost_per_token))
        .sum();
    let expected = now - after;
    assert!(
        expected > 100.0,
        "the demo plants a real saving: {expected}"
    );

    let done = completed(&run.events);
    let rec = &done["report"]["recommendations"][0];
    assert_eq!(rec["lever"], "model_routing");
    assert_eq!(rec["from_model"], facts.routing_model.as_str());
    assert_eq!(rec["to_model"], facts.routing_target_model.as_str());
    let saving = rec["monthly_savings_usd"].as_f64().unwrap();
    assert!(
        (saving - expected).abs() < 0.005 * expected,
        "{saving} vs {expected}"
    );
    assert!(!rec["steps"].as_array().unwrap().is_empty());
    let response = done["response"].as_str().unwrap();
    assert!(response.contains(&usd(saving)), "{response}");
    let tools: BTreeSet<&str> = run
        .events
        .iter()
        .filter(|e| e["type"] == "tool_completed")
        .map(|e| e["tool"].as_str().unwrap())
        .collect();
    assert!(tools.contains("recommend_optimizations") && tools.contains("price_lookup"));
}

#[tokio::test]
async fn supervisor_hands_off_to_several_agents_and_assembles_the_answer() {
    let server = TestServer::start().await;
    let token = usage_writer_token("sam", "acme");
    upload(&server, &token, &demo().records).await;
    let mut session = server.connect_bearer(&token).await;
    let run_id = start(
        &mut session,
        "s1",
        "supervisor",
        "How can we reduce our AI costs?",
    )
    .await;
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    assert_valid_completed_run(&run.events);

    let handoffs: BTreeSet<&str> = run
        .events
        .iter()
        .filter(|e| e["type"] == "agent_handoff")
        .map(|e| {
            assert_eq!(e["from_agent"], "supervisor");
            e["to_agent"].as_str().unwrap()
        })
        .collect();
    assert!(handoffs.len() >= 2, "{handoffs:?}");
    assert!(handoffs.contains("data") && handoffs.contains("optimization"));
    let agents = run.agents();
    assert!(agents.len() >= 3, "{agents:?}");
    for agent in &handoffs {
        assert!(agents.contains(*agent), "{agent} produced no event");
    }

    let done = completed(&run.events);
    assert_eq!(done["agent"], "supervisor");
    let expected = total_cost(&demo().records);
    let reported = done["report"]["summary"]["total_cost_usd"]
        .as_f64()
        .unwrap();
    assert!((reported - expected).abs() < 1e-6 * expected);
    let response = done["response"].as_str().unwrap();
    assert!(response.contains(&usd(expected)), "{response}");
    assert!(response.contains(&demo().facts.spike_day.to_string()));
    assert!(response.contains(&demo().facts.routing_target_model));
    assert!(
        done["report"]["implementation_plan"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
}

#[tokio::test]
async fn netra_style_start_agent_and_agent_execute_both_run() {
    let server = TestServer::builder().demo_data().start().await;
    let mut session = server.connect_as("nina").await;
    session
        .send_text(r#"{"id":"req_1","type":"start_agent","payload":{"user_request":"Analyze our AI costs","agent_type":"unified_data_agent","session_id":"s1","query":"what did we spend"},"timestamp":"2025-09-05T17:42:36.123456"}"#)
        .await
        .unwrap();
    let accepted = session.wait_run_accepted("req_1", WAIT).await.unwrap();
    assert_eq!(accepted.frame["agent_type"], "data");
    let run = session.collect_run(&accepted.run_id, WAIT).await.unwrap();
    assert_valid_completed_run(&run.events);
    assert_eq!(run.events[0]["agent"], "data");

    session
        .send_json(
            &json!({"id": "req_2", "type": "agent_execute", "agent_type": "optimization_agent",
            "query": "Find savings", "data": {"timeframe": "14d"}}),
        )
        .await
        .unwrap();
    let accepted = session.wait_run_accepted("req_2", WAIT).await.unwrap();
    let run = session.collect_run(&accepted.run_id, WAIT).await.unwrap();
    assert_valid_completed_run(&run.events);
    assert_eq!(
        completed(&run.events)["report"]["scope"]["timeframe"],
        "14d"
    );
}

#[tokio::test]
async fn unknown_agent_creates_no_run_and_malformed_json_leaves_the_socket_serving() {
    let server = TestServer::builder().demo_data().start().await;
    let mut session = server.connect_as("uma").await;
    session
        .start_agent("bad", "nonexistent_agent", "hello", Map::new())
        .await
        .unwrap();
    let frame = session.next_frame(WAIT).await.unwrap().value;
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["error_code"], "AGENT_NOT_FOUND");
    assert_eq!(frame["request_id"], "bad");
    assert!(
        server
            .store
            .list_threads("uma", &agentwire_server::auth::personal_tenant("uma"), 10)
            .await
            .unwrap()
            .is_empty(),
        "a run was created"
    );

    session
        .send_text("{\"type\": \"start_agent\", ")
        .await
        .unwrap();
    let frame = session.next_frame(WAIT).await.unwrap().value;
    assert_eq!(frame["error_code"], "INVALID_MESSAGE", "{frame}");

    let run_id = start(&mut session, "good", "data", "What did we spend?").await;
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    assert_valid_completed_run(&run.events);
}

#[tokio::test]
async fn tenant_without_data_gets_no_data_with_how_to_load_it() {
    let server = TestServer::start().await;
    let mut session = server.connect_as("ned").await;
    let run_id = start(&mut session, "n1", "supervisor", "Where did our spend go?").await;
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    assert!(grammar::check_run(&run.events).is_empty());
    let last = run.events.last().unwrap();
    assert_eq!(last["type"], "agent_error");
    assert_eq!(last["error_code"], "NO_DATA");
    assert!(last["message"].as_str().unwrap().contains("/api/usage"));
    assert!(!run.types().contains(&"agent_completed"));
}

#[tokio::test]
async fn cancel_mid_run_ends_with_agent_cancelled_and_nothing_after() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(60))
        .start()
        .await;
    let mut session = server.connect_as("cal").await;
    let run_id = start(&mut session, "c1", "supervisor", "How can we reduce costs?").await;
    // Wait until a tool has run, so the cancel lands mid-run.
    session
        .wait_for(WAIT, |f| {
            f["type"] == "tool_completed" && f["run_id"] == run_id.as_str()
        })
        .await
        .unwrap();
    session
        .send_json(&json!({"type": "cancel", "id": "x", "run_id": run_id}))
        .await
        .unwrap();
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    assert_eq!(run.terminal_type(), Some("agent_cancelled"));
    // Nothing for this run arrives after the terminal event: no tool keeps running.
    match session.next_frame(Duration::from_millis(500)).await {
        Err(ClientError::Timeout { .. }) => {}
        other => panic!("a frame came after agent_cancelled: {other:?}"),
    }
    let stored = server
        .get(
            &format!("/api/runs/{run_id}/events"),
            &[("authorization", &format!("Bearer {}", token("cal", None)))],
        )
        .await;
    let stored: Vec<Value> = serde_json::from_str(&stored.text()).unwrap();
    assert!(grammar::check_run(&stored).is_empty(), "{stored:#?}");
    assert_eq!(stored.last().unwrap()["type"], "agent_cancelled");
    assert!(
        stored.len() < 40,
        "the run went on to the end: {} events",
        stored.len()
    );
}

#[tokio::test]
async fn resume_after_a_disconnect_delivers_every_event_exactly_once() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(30))
        .start()
        .await;
    let token = token("rae", None);
    let mut first = server.connect_bearer(&token).await;
    let run_id = start(&mut first, "r1", "supervisor", "Why did spend spike?").await;
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < 6 {
        let frame = first.next_frame(WAIT).await.unwrap().value;
        if frame["run_id"] == run_id.as_str() {
            seen.push(frame);
        }
    }
    drop(first); // the socket goes away mid-run; the run does not
    let last_seq = seen.last().unwrap()["seq"].as_u64().unwrap();

    let mut second = server.connect_bearer(&token).await;
    second
        .send_json(
            &json!({"type": "resume", "id": "again", "run_id": run_id, "after_seq": last_seq}),
        )
        .await
        .unwrap();
    let rest = second.collect_run(&run_id, WAIT).await.unwrap();
    let union: Vec<Value> = seen.into_iter().chain(rest.events).collect();
    assert_valid_completed_run(&union);
    let seqs: Vec<u64> = union.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

    // Another user cannot resume it, and cannot learn that it exists.
    let mut other = server.connect_as("eve").await;
    other
        .send_json(&json!({"type": "resume", "id": "steal", "run_id": run_id, "after_seq": 0}))
        .await
        .unwrap();
    let frame = other.next_frame(WAIT).await.unwrap().value;
    assert_eq!(frame["error_code"], "RUN_NOT_FOUND", "{frame}");
    assert_eq!(frame["request_id"], "steal");
}

/// Five users with their own tokens, plus one user on five sockets, all at once: every run
/// completes and no socket ever carries another user's run id or question.
#[tokio::test]
async fn concurrent_users_are_isolated() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(5))
        .start()
        .await;
    let mut sockets = Vec::new();
    for i in 0..5 {
        let user = format!("user-{i}");
        sockets.push((user.clone(), server.connect_as(&user).await));
    }
    let shared = token("multi", None);
    for _ in 0..5 {
        sockets.push(("multi".to_owned(), server.connect_bearer(&shared).await));
    }
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, (user, mut session))| {
            tokio::spawn(async move {
                let canary = format!("canary-{i}-{}", uuid::Uuid::new_v4().simple());
                let question = format!("Where does our AI spend go? ref {canary}");
                let run_id = start(&mut session, &format!("q{i}"), "supervisor", &question).await;
                let run = session.collect_run(&run_id, WAIT).await.unwrap();
                assert_valid_completed_run(&run.events);
                // Everything else that reached this socket within a moment.
                let mut extra = Vec::new();
                while let Ok(frame) = session.next_frame(Duration::from_millis(200)).await {
                    extra.push(frame.value);
                }
                (user, canary, run_id, run.events, extra)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let canaries: Vec<&str> = results.iter().map(|r| r.1.as_str()).collect();
    let run_ids: HashSet<&str> = results.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(run_ids.len(), 10);
    for (user, canary, run_id, events, extra) in &results {
        for frame in events.iter().chain(extra) {
            let text = frame.to_string();
            if let Some(other) = frame["run_id"].as_str() {
                assert_eq!(other, run_id, "{user}'s socket saw run {other}");
            }
            for foreign in canaries.iter().filter(|c| *c != canary) {
                assert!(!text.contains(foreign), "{user}'s socket saw {foreign}");
            }
        }
        assert!(events[0].to_string().contains(canary.as_str()));
    }
}

#[tokio::test]
async fn several_runs_on_one_socket_and_a_busy_thread_is_a_conflict() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(20))
        .start()
        .await;
    let mut session = server.connect_as("tess").await;
    let mut payload = Map::new();
    payload.insert("thread_id".into(), json!("t-1"));
    session
        .start_agent("a", "data", "spend?", payload.clone())
        .await
        .unwrap();
    let first = session.wait_run_accepted("a", WAIT).await.unwrap();
    assert_eq!(first.thread_id, "t-1");
    session
        .start_agent("b", "data", "spend again?", payload)
        .await
        .unwrap();
    match session.wait_run_accepted("b", WAIT).await {
        Err(ClientError::ServerError {
            error_code, frame, ..
        }) => {
            assert_eq!(error_code, "RUN_CONFLICT");
            assert_eq!(frame["run_id"], first.run_id.as_str());
        }
        other => panic!("{other:?}"),
    }
    let second = start(&mut session, "c", "triage", "what is this about?").await;
    let a = session.collect_run(&first.run_id, WAIT).await.unwrap();
    let c = session.collect_run(&second, WAIT).await.unwrap();
    assert_valid_completed_run(&a.events);
    assert_valid_completed_run(&c.events);
}

#[tokio::test]
async fn metrics_count_runs_by_outcome_and_time_to_first_event() {
    let server = TestServer::builder().demo_data().start().await;
    let mut session = server.connect_as("mia").await;
    let run_id = start(&mut session, "m", "triage", "cost?").await;
    session.collect_run(&run_id, WAIT).await.unwrap();
    let metrics = server.get("/metrics", &[]).await.text();
    assert!(
        metrics.contains("agentwire_runs_total{outcome=\"completed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agentwire_time_to_first_event_seconds_count 1"),
        "{metrics}"
    );
}

/// A run past its time limit ends with `agent_error` `TIMEOUT` (retryable), seen over a socket.
#[tokio::test]
async fn run_time_limit_ends_with_timeout() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(400))
        .run_timeout(Duration::from_millis(600))
        .start()
        .await;
    let mut session = server.connect_as("tim").await;
    session
        .start_agent("t", "supervisor", "Why did spend rise?", Map::new())
        .await
        .unwrap();
    let run_id = session.wait_run_accepted("t", WAIT).await.unwrap().run_id;
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    assert!(run.violations().is_empty(), "{:?}", run.violations());
    let last = run.events.last().unwrap();
    assert_eq!(last["type"], "agent_error", "{last}");
    assert_eq!(last["error_code"], "TIMEOUT");
    assert_eq!(last["retryable"], true);
}

/// Issue 15 (retention): a finished run older than the retention age disappears, events and
/// all (`GET /api/runs/{id}/events` is 404 `RUN_NOT_FOUND`), while a newer one stays.
#[tokio::test]
async fn runs_past_the_retention_age_disappear_and_newer_ones_stay() {
    let server = TestServer::builder()
        .demo_data()
        .retention(Duration::from_secs(2), Duration::from_millis(100))
        .start()
        .await;
    let mut session = server.connect_as("ret").await;
    let bearer = format!("Bearer {}", token("ret", None));
    let events = |run_id: &str| format!("/api/runs/{run_id}/events");

    let old = start(&mut session, "old", "triage", "cost?").await;
    session.collect_run(&old, WAIT).await.unwrap();
    let response = server
        .get(&events(&old), &[("authorization", &bearer)])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let response = server
            .get(&events(&old), &[("authorization", &bearer)])
            .await;
        if response.status == 404 {
            assert_eq!(response.json()["error_code"], "RUN_NOT_FOUND");
            break;
        }
        assert_eq!(response.status, 200, "{}", response.text());
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old run was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let new = start(&mut session, "new", "triage", "cost?").await;
    session.collect_run(&new, WAIT).await.unwrap();
    let response = server
        .get(&events(&new), &[("authorization", &bearer)])
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    let stored: Vec<Value> = serde_json::from_str(&response.text()).unwrap();
    assert_eq!(
        stored.last().unwrap()["type"],
        "agent_completed",
        "{stored:#?}"
    );
    let metrics = server.get("/metrics", &[]).await.text();
    assert!(
        metrics.contains("agentwire_runs_deleted_total 1\n"),
        "{metrics}"
    );
}
