//! Time to first event (TTFE) and time to completion (TTC) for the same question over AG-UI (SSE)
//! and over the WebSocket, against a running server, with events and bytes per run.
//!
//! ```sh
//! export AGENTWIRE_JWT_SECRET=$(openssl rand -hex 32)
//! cargo run --release -p agentwire -- serve --demo-data --database sqlite:///tmp/agui-bench.db &
//! cargo run --release -p agentwire-server --example agui_latency -- \
//!     --target 127.0.0.1:8080 --secret "$AGENTWIRE_JWT_SECRET" --runs 40
//! ```
//!
//! Runs alternate between the transports, one at a time, each on a fresh thread. WebSocket: the
//! socket is open and authenticated before the clock starts (as the web page's is); TTFE is from
//! sending `start_agent` to reading the run's first event. AG-UI: each run is a new request, as
//! an AG-UI client makes it (read with the validation suite's SSE reader); TTFE is from opening
//! the TCP connection to reading the first SSE event. TTC is to the terminal event on both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentwire_check::agui::run_input;
use agentwire_check::http::HttpTarget;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const QUESTION: &str = "Where can we cut our AI spend without hurting quality?";

struct Sample {
    ttfe: Duration,
    ttc: Duration,
    events: usize,
    bytes: usize,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target: SocketAddr = arg(&args, "--target")
        .unwrap_or_else(|| "127.0.0.1:8080".into())
        .parse()
        .expect("--target HOST:PORT");
    let secret = arg(&args, "--secret")
        .or_else(|| std::env::var("AGENTWIRE_JWT_SECRET").ok())
        .expect("--secret or AGENTWIRE_JWT_SECRET");
    let runs: usize = arg(&args, "--runs").map_or(40, |n| n.parse().expect("--runs N"));
    let claims = json!({"sub": "bench", "exp": chrono::Utc::now().timestamp() + 3600});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();

    let mut socket = {
        let mut request = format!("ws://{target}/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        // connection_established
        socket.next().await.unwrap().unwrap();
        socket
    };

    // One of each first, unmeasured: the tenant's data cache and the code paths are warm.
    websocket_run(&mut socket, "warm-ws").await;
    agui_run(target, &token, "warm-agui").await;

    let mut ws = Vec::new();
    let mut agui = Vec::new();
    for i in 0..runs {
        ws.push(websocket_run(&mut socket, &format!("bench-ws-{i}")).await);
        agui.push(agui_run(target, &token, &format!("bench-agui-{i}")).await);
    }
    println!("{runs} runs each, one at a time, question: {QUESTION:?}");
    report("WebSocket", &mut ws);
    report("AG-UI    ", &mut agui);
}

async fn websocket_run(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    thread: &str,
) -> Sample {
    let start = json!({"type": "start_agent", "id": thread,
                       "payload": {"user_request": QUESTION, "thread_id": thread}});
    let sent = Instant::now();
    socket.send(Message::text(start.to_string())).await.unwrap();
    let mut first = None;
    let mut events = 0;
    let mut bytes = 0;
    loop {
        let Message::Text(text) = socket.next().await.unwrap().unwrap() else {
            continue;
        };
        bytes += text.len();
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame.get("seq").is_none() {
            continue;
        }
        events += 1;
        first.get_or_insert_with(|| sent.elapsed());
        let kind = frame["type"].as_str().unwrap();
        if ["agent_completed", "agent_error", "agent_cancelled"].contains(&kind) {
            assert_eq!(kind, "agent_completed", "{frame}");
            return Sample {
                ttfe: first.unwrap(),
                ttc: sent.elapsed(),
                events,
                bytes,
            };
        }
    }
}

async fn agui_run(target: SocketAddr, token: &str, thread: &str) -> Sample {
    let auth = format!("Bearer {token}");
    let body = run_input(thread, thread, QUESTION).to_string().into_bytes();
    let http = HttpTarget::parse(&format!("http://{target}")).unwrap();
    let wait = Duration::from_secs(60);
    let sent = Instant::now();
    let mut stream = http
        .open_stream(
            "POST",
            "/api/agui",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body,
            wait,
        )
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    let mut first = None;
    let mut events = 0;
    let mut bytes = 0;
    while let Some(event) = stream.next_event(wait).await.unwrap() {
        events += 1;
        bytes += event.raw.len();
        first.get_or_insert_with(|| sent.elapsed());
        let kind = event.json().unwrap()["type"].as_str().unwrap().to_owned();
        if kind == "RUN_FINISHED" || kind == "RUN_ERROR" {
            assert_eq!(kind, "RUN_FINISHED", "{}", event.data);
            return Sample {
                ttfe: first.unwrap(),
                ttc: sent.elapsed(),
                events,
                bytes,
            };
        }
    }
    panic!("the AG-UI stream ended without RUN_FINISHED");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(name: &str, samples: &mut [Sample]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut ttfe: Vec<Duration> = samples.iter().map(|s| s.ttfe).collect();
    let mut ttc: Vec<Duration> = samples.iter().map(|s| s.ttc).collect();
    ttfe.sort();
    ttc.sort();
    let events = samples.iter().map(|s| s.events).sum::<usize>() / samples.len();
    let bytes = samples.iter().map(|s| s.bytes).sum::<usize>() / samples.len();
    println!(
        "{name}  TTFE p50 {:.2} ms  p95 {:.2} ms  |  TTC p50 {:.2} ms  p95 {:.2} ms  |  {events} events, {bytes} bytes per run",
        ms(percentile(&ttfe, 50.0)),
        ms(percentile(&ttfe, 95.0)),
        ms(percentile(&ttc, 50.0)),
        ms(percentile(&ttc, 95.0)),
    );
}
