//! The page's HTTP side (issue 6), over real HTTP against a real server on 127.0.0.1:0: the page
//! and its embedded assets, the demo token (demo mode only), and thread history. The page itself
//! is driven in a real browser by `browser.rs`.
use agentwire_analytics::{DemoConfig, generate_demo};
use agentwire_check::client::Credentials;
use agentwire_check::grammar;
use agentwire_server::web::ASSETS;
use agentwire_testkit::{TestServer, token};
use serde_json::{Map, Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn demo_server() -> TestServer {
    TestServer::builder()
        .demo_mode("demo-user", "acme")
        .start()
        .await
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let server = TestServer::start().await;
    let page = server.get("/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text();
    assert!(html.contains("data-demo=\"false\""));
    assert!(html.contains("<script type=\"module\" src=\"/assets/app.js\">"));

    for asset in ASSETS {
        let response = server.get(&format!("/assets/{}", asset.name), &[]).await;
        assert_eq!(response.status, 200, "{}", asset.name);
        assert_eq!(response.header("content-type"), Some(asset.content_type));
        assert_eq!(response.body, asset.body.as_bytes(), "{}", asset.name);
        assert_eq!(response.header("cache-control"), Some("no-cache"));
        // A browser that holds this version revalidates and downloads nothing.
        let etag = response.header("etag").unwrap().to_owned();
        let again = server
            .get(
                &format!("/assets/{}", asset.name),
                &[("if-none-match", &etag)],
            )
            .await;
        assert_eq!(again.status, 304, "{}", asset.name);
        assert!(again.body.is_empty());
    }

    let missing = server.get("/assets/../Cargo.toml", &[]).await;
    assert_eq!(missing.status, 404);
    let missing = server.get("/assets/nope.js", &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error_code"], "NOT_FOUND");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_demo_token_exists_only_in_demo_mode() {
    let server = TestServer::start().await;
    let refused = server.post("/api/demo/token", &[], b"").await;
    let unknown = server.post("/api/nothing/here", &[], b"").await;
    assert_eq!(refused.status, 404);
    assert_eq!(refused.json()["error_code"], unknown.json()["error_code"]);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("no endpoint at POST /api/demo/token")
    );
    server.stop().await.unwrap();

    let server = demo_server().await;
    let page = server.get("/", &[]).await;
    assert!(page.text().contains("data-demo=\"true\""));
    let minted = server.post("/api/demo/token", &[], b"").await;
    assert_eq!(minted.status, 200, "{}", minted.text());
    assert_eq!(minted.header("cache-control"), Some("no-store"));
    let body = minted.json();
    assert_eq!(body["user_id"], "demo-user");
    assert_eq!(body["tenant_id"], "acme");
    let demo_token = body["token"].as_str().unwrap().to_owned();

    // The token is a real one: the API and the socket accept it, as a browser would offer it.
    let threads = server
        .get("/api/threads", &[("authorization", &bearer(&demo_token))])
        .await;
    assert_eq!(threads.status, 200, "{}", threads.text());
    let session = server
        .connect(Credentials::Subprotocol(demo_token.clone()))
        .await
        .unwrap();
    let info = session.connection_info().unwrap();
    assert_eq!(info["user_id"], "demo-user");
    assert_eq!(info["tenant_id"], "acme");
    assert_eq!(session.selected_subprotocol(), Some("agentwire.v1"));
    // It can chat but not upload data.
    let upload = server
        .post(
            "/api/usage",
            &[
                ("authorization", &bearer(&demo_token)),
                ("content-type", "text/csv"),
            ],
            b"timestamp,model,input_tokens,output_tokens\n2026-01-01T00:00:00Z,gpt-4o,1,1\n",
        )
        .await;
    assert_eq!(upload.status, 403);
    session.close().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn thread_history_is_the_owners_alone() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(20))
        .start()
        .await;
    let alice = token("alice", None);
    let bob = token("bob", None);

    let none = server.get("/api/threads", &[]).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error_code"], "AUTH_REQUIRED");
    let empty = server
        .get("/api/threads", &[("authorization", &bearer(&alice))])
        .await;
    assert_eq!(empty.json(), json!({"threads": []}));
    for bad in ["0", "201", "x"] {
        let response = server
            .get(
                &format!("/api/threads?limit={bad}"),
                &[("authorization", &bearer(&alice))],
            )
            .await;
        assert_eq!(response.status, 400, "limit={bad}");
        assert!(
            response.json()["message"]
                .as_str()
                .unwrap()
                .contains("from 1 to 200")
        );
    }

    // Two runs on one thread, over a real socket.
    let mut session = server
        .connect(Credentials::Bearer(alice.clone()))
        .await
        .unwrap();
    let mut run_ids = Vec::new();
    for (i, question) in [
        "How can we reduce our AI costs?",
        "Why did our spend spike?",
    ]
    .iter()
    .enumerate()
    {
        let mut extra = Map::new();
        extra.insert("thread_id".into(), json!("thr_page_1"));
        let id = format!("q{i}");
        session
            .start_agent(&id, "supervisor", question, extra)
            .await
            .unwrap();
        let accepted = session.wait_run_accepted(&id, WAIT).await.unwrap();
        assert_eq!(accepted.thread_id, "thr_page_1");
        let run = session.collect_run(&accepted.run_id, WAIT).await.unwrap();
        assert_eq!(run.terminal_type(), Some("agent_completed"));
        run_ids.push((accepted.run_id, run.events));
    }

    let list = server
        .get("/api/threads", &[("authorization", &bearer(&alice))])
        .await
        .json();
    let threads = list["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0]["thread_id"], "thr_page_1");
    assert_eq!(threads[0]["title"], "How can we reduce our AI costs?");

    let history = server
        .get(
            "/api/threads/thr_page_1",
            &[("authorization", &bearer(&alice))],
        )
        .await;
    assert_eq!(history.status, 200, "{}", history.text());
    let history = history.json();
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (run, (run_id, live_events)) in runs.iter().zip(&run_ids) {
        assert_eq!(&run["run_id"], run_id);
        assert_eq!(run["status"], "completed");
        let events = run["events"].as_array().unwrap();
        assert_eq!(
            events, live_events,
            "history repeats exactly what the socket sent"
        );
        assert!(grammar::check_run(events).is_empty());
        assert_eq!(run["last_seq"], events.last().unwrap()["seq"]);
    }
    assert_eq!(runs[1]["user_request"], "Why did our spend spike?");

    // Bob sees neither the thread nor that it exists; his own thread of the same name is his.
    let hidden = server
        .get(
            "/api/threads/thr_page_1",
            &[("authorization", &bearer(&bob))],
        )
        .await;
    assert_eq!(hidden.status, 404);
    assert_eq!(hidden.json()["error_code"], "NOT_FOUND");
    let unknown = server
        .get(
            "/api/threads/thr_nope",
            &[("authorization", &bearer(&alice))],
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(hidden.json()["message"], unknown.json()["message"]);
    let bobs = server
        .get("/api/threads", &[("authorization", &bearer(&bob))])
        .await;
    assert_eq!(bobs.json(), json!({"threads": []}));
    session.close().await.unwrap();
    server.stop().await.unwrap();
}

/// What the page does after a reload: read the thread while a run is still going, then `resume`
/// from the last `seq` the history had. Together they hold every event exactly once, wherever the
/// history happened to stop.
#[tokio::test]
async fn history_then_resume_loses_and_repeats_nothing() {
    let server = TestServer::builder()
        .step_delay(Duration::from_millis(50))
        .start()
        .await;
    let demo = generate_demo(&DemoConfig::default());
    server
        .state
        .engine
        .ingest(
            &agentwire_server::auth::personal_tenant("carol"),
            demo.records,
        )
        .await
        .unwrap();
    let carol = token("carol", None);
    let mut starter = server
        .connect(Credentials::Bearer(carol.clone()))
        .await
        .unwrap();
    let mut extra = Map::new();
    extra.insert("thread_id".into(), json!("thr_live"));
    starter
        .start_agent("s", "supervisor", "How can we reduce our AI costs?", extra)
        .await
        .unwrap();
    let accepted = starter.wait_run_accepted("s", WAIT).await.unwrap();
    starter
        .wait_first_event(&accepted.run_id, WAIT)
        .await
        .unwrap();
    // The page reloads: the old socket is gone, the history is read from the server.
    drop(starter);

    let history = server
        .get(
            "/api/threads/thr_live",
            &[("authorization", &bearer(&carol))],
        )
        .await
        .json();
    let run = &history["runs"][0];
    assert_eq!(run["run_id"], json!(accepted.run_id));
    let mut events: Vec<Value> = run["events"].as_array().unwrap().clone();
    let last_seq = run["last_seq"].as_u64().unwrap();
    assert!(last_seq >= 1);

    let mut session = server
        .connect(Credentials::Subprotocol(carol.clone()))
        .await
        .unwrap();
    let finished = events
        .last()
        .and_then(|e| e["type"].as_str())
        .is_some_and(grammar::is_terminal_type);
    if !finished {
        session
            .send_json(&json!({"type": "resume", "id": "r", "run_id": accepted.run_id, "after_seq": last_seq}))
            .await
            .unwrap();
        let rest = session.collect_run(&accepted.run_id, WAIT).await.unwrap();
        events.extend(rest.events);
    }
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "no gap and no repeat");
    assert!(
        grammar::check_run(&events).is_empty(),
        "{:?}",
        grammar::check_run(&events)
    );
    assert_eq!(
        events.last().unwrap()["type"],
        "agent_completed",
        "the run went on while no socket followed it"
    );
    session.close().await.unwrap();
    server.stop().await.unwrap();
}

/// The history answers are read and written a page at a time (here two events and one run per
/// page): a thread of several runs, each longer than a page, comes back complete and in order,
/// streamed (chunked) rather than built whole; so does one run's log and a `resume` of it.
#[tokio::test]
async fn history_longer_than_a_page_is_streamed_complete_and_in_order() {
    let server = TestServer::builder()
        .demo_data()
        .configure(|_, engine| {
            engine.log_page = 2;
            engine.runs_page = 1;
        })
        .start()
        .await;
    let dana = token("dana", None);
    let auth = bearer(&dana);
    let mut session = server
        .connect(Credentials::Bearer(dana.clone()))
        .await
        .unwrap();
    let mut live = Vec::new();
    for (i, question) in [
        "What did we spend last month?",
        "Why did our spend spike?",
        "hi",
    ]
    .iter()
    .enumerate()
    {
        let mut extra = Map::new();
        extra.insert("thread_id".into(), json!("thr_long"));
        let id = format!("q{i}");
        session
            .start_agent(&id, "supervisor", question, extra)
            .await
            .unwrap();
        let accepted = session.wait_run_accepted(&id, WAIT).await.unwrap();
        let run = session.collect_run(&accepted.run_id, WAIT).await.unwrap();
        assert!(run.events.len() > 2, "each run spans several pages");
        live.push((accepted.run_id, question.to_string(), run.events));
    }

    let history = server
        .get("/api/threads/thr_long", &[("authorization", &auth)])
        .await;
    assert_eq!(history.status, 200, "{}", history.text());
    assert_eq!(history.header("content-type"), Some("application/json"));
    assert_eq!(history.header("transfer-encoding"), Some("chunked"));
    let history = history.json();
    assert_eq!(history["thread_id"], "thr_long");
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), live.len());
    for (run, (run_id, question, events)) in runs.iter().zip(&live) {
        assert_eq!(&run["run_id"], run_id);
        assert_eq!(&run["user_request"], question);
        assert_eq!(run["agent"], "supervisor");
        assert_eq!(run["status"], "completed");
        assert_eq!(run["events"].as_array().unwrap(), events);
        assert_eq!(run["last_seq"], events.last().unwrap()["seq"]);
    }

    let (run_id, _, events) = &live[0];
    let logged = server
        .get(
            &format!("/api/runs/{run_id}/events"),
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(logged.status, 200);
    assert_eq!(logged.header("transfer-encoding"), Some("chunked"));
    assert_eq!(logged.json().as_array().unwrap(), events);
    let after = server
        .get(
            &format!("/api/runs/{run_id}/events?after_seq=3"),
            &[("authorization", &auth)],
        )
        .await
        .json();
    assert_eq!(after.as_array().unwrap(), &events[3..]);
    let past = server
        .get(
            &format!("/api/runs/{run_id}/events?after_seq=100000"),
            &[("authorization", &auth)],
        )
        .await
        .json();
    assert_eq!(past, json!([]));

    // A resume of the finished run replays its log page by page, whole.
    session
        .send_json(&json!({"type": "resume", "id": "r", "run_id": run_id, "after_seq": 1}))
        .await
        .unwrap();
    let replay = session.collect_run(run_id, WAIT).await.unwrap();
    assert_eq!(replay.events, events[1..]);
    session.close().await.unwrap();
    server.stop().await.unwrap();
}
