//! The event path: each run event is serialized once, and the bytes a socket receives are the
//! bytes the event log keeps, for a live follower and for a `resume` that replays the log.
use agentwire_testkit::{TestServer, token};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WAIT: Duration = Duration::from_secs(60);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &TestServer, sub: &str) -> Socket {
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token(sub, None)).parse().unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
}

/// The raw text of every frame of `run_id` (once known) up to its terminal event; the run id is
/// taken from `run_accepted` when `run_id` is `None`.
async fn run_frames(socket: &mut Socket, mut run_id: Option<String>) -> (String, Vec<String>) {
    let mut frames = Vec::new();
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("the run stalled")
            .expect("the socket closed")
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        if value["type"] == "run_accepted" && run_id.is_none() {
            run_id = value["run_id"].as_str().map(str::to_owned);
            continue;
        }
        if run_id.is_some() && value["run_id"].as_str() == run_id.as_deref() {
            let kind = value["type"].as_str().unwrap_or_default().to_owned();
            frames.push(text.as_str().to_owned());
            if matches!(
                kind.as_str(),
                "agent_completed" | "agent_error" | "agent_cancelled"
            ) {
                return (run_id.unwrap_or_default(), frames);
            }
        }
    }
}

/// Runs `question` on a fresh socket and returns the run's live frames beside the payloads its
/// log stores; a `resume` from the start replays exactly the live frames.
async fn live_and_stored(server: &TestServer, question: &str) -> (Vec<String>, Vec<String>) {
    let mut socket = connect(server, "frames-user").await;
    let start = json!({"type": "start_agent", "id": "1",
        "payload": {"user_request": question}});
    socket
        .send(Message::Text(start.to_string().into()))
        .await
        .unwrap();
    let (run_id, live) = run_frames(&mut socket, None).await;
    assert!(live.len() >= 5, "{live:?}");

    let store = agentwire_store::connect(server.database_url())
        .await
        .unwrap();
    let stored: Vec<String> = store
        .events_after(&run_id, 0, u32::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    let row = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(row.user_request, question);
    assert_eq!(live.len(), stored.len());

    // A resume replays the log (any question put back): the bytes that were sent, again.
    let mut again = connect(server, "frames-user").await;
    let resume = json!({"type": "resume", "id": "2", "run_id": run_id, "after_seq": 0});
    again
        .send(Message::Text(resume.to_string().into()))
        .await
        .unwrap();
    let (_, replayed) = run_frames(&mut again, Some(run_id)).await;
    assert_eq!(replayed, live);
    (live, stored)
}

#[tokio::test]
async fn the_bytes_a_socket_receives_are_the_stored_event_payloads() {
    let server = TestServer::builder().demo_data().start().await;
    let (live, stored) = live_and_stored(&server, "How can we reduce our AI costs?").await;
    assert_eq!(live, stored, "the live frames differ from the event log");
}

/// A long question is stored once, in the run's row: the log keeps `agent_started` and
/// `agent_completed` without it, every other frame exactly as it was sent, and every read of the
/// log puts it back.
#[tokio::test]
async fn a_long_question_is_stored_once_and_replayed_whole() {
    let server = TestServer::builder().demo_data().start().await;
    let question = format!(
        "How can we reduce our AI costs? {}",
        "We run chat, search and summaries for customers in three regions. ".repeat(20)
    );
    assert!(
        question.len() > 1024,
        "longer than the log keeps with its events"
    );
    let (live, stored) = live_and_stored(&server, &question).await;
    for (live, stored) in live.iter().zip(&stored) {
        let kind = serde_json::from_str::<Value>(live).unwrap()["type"].clone();
        if kind == "agent_started" || kind == "agent_completed" {
            assert!(live.contains(&question), "{live}");
            assert!(
                !stored.contains("three regions"),
                "{kind} stores the question again: {stored}"
            );
        } else {
            assert_eq!(live, stored, "the live frames differ from the event log");
        }
    }
}

#[tokio::test]
async fn a_second_run_over_the_same_data_reuses_the_tool_results_and_says_so() {
    let server = TestServer::builder().demo_data().start().await;
    let mut socket = connect(&server, "memo-user").await;
    let mut tool_events = Vec::new();
    for id in ["1", "2"] {
        let start = json!({"type": "start_agent", "id": id,
            "payload": {"user_request": "What did we spend on AI last month?", "agent_type": "data"}});
        socket
            .send(Message::Text(start.to_string().into()))
            .await
            .unwrap();
        let (_, frames) = run_frames(&mut socket, None).await;
        let completed: Vec<Value> = frames
            .iter()
            .map(|f| serde_json::from_str::<Value>(f).unwrap())
            // A lookup (issue 11): the one fact, from run_query over the question's period.
            .filter(|v| v["type"] == "tool_completed" && v["tool"] == "run_query")
            .collect();
        assert!(!completed.is_empty(), "{frames:?}");
        tool_events.push(completed[0].clone());
    }
    let (first, second) = (&tool_events[0], &tool_events[1]);
    assert!(first.get("cached").is_none(), "{first}");
    assert_eq!(second["cached"], true, "{second}");
    // The reused result is the same result, figures included.
    assert_eq!(first["data"], second["data"]);
    assert_eq!(first["result"], second["result"]);
}
