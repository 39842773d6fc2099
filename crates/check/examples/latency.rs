//! Measures, at the client, the time from sending `start_agent` to receiving `agent_started` and
//! to receiving `agent_completed`, for runs one after another on one connection.
//!
//! Run with:
//! `cargo run --release -p agentwire-check --example latency -- ws://127.0.0.1:8080/ws "$TOKEN" 200 supervisor`
//!
//! A forerunner of `agentwire load`; it prints the median, p99 and max of both.

use agentwire_check::client::{ConnectOptions, Credentials, Session};
use serde_json::Map;
use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(token)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: latency WS_URL TOKEN [RUNS] [AGENT]");
        std::process::exit(2);
    };
    let runs: usize = args.get(3).map(|n| n.parse()).transpose()?.unwrap_or(200);
    let agent = args.get(4).map(String::as_str).unwrap_or("supervisor");
    let mut session = Session::connect(&ConnectOptions::new(
        url.clone(),
        Credentials::Bearer(token.clone()),
    ))
    .await?;
    let mut to_started = Vec::with_capacity(runs);
    let mut to_completed = Vec::with_capacity(runs);
    for i in 0..runs {
        let id = format!("lat-{i}");
        let sent = Instant::now();
        session
            .start_agent(&id, agent, "How can we reduce our AI costs?", Map::new())
            .await?;
        let accepted = session
            .wait_run_accepted(&id, Duration::from_secs(30))
            .await?;
        let run = session
            .collect_run(&accepted.run_id, Duration::from_secs(120))
            .await?;
        if run.terminal_type() != Some("agent_completed") || !run.violations().is_empty() {
            return Err(format!("run {i} did not complete cleanly: {:?}", run.violations()).into());
        }
        let first = run.first_event_at.ok_or("no first event")?;
        let last = run.completed_at.ok_or("no terminal event")?;
        to_started.push(first.duration_since(sent));
        to_completed.push(last.duration_since(sent));
    }
    report("start_agent -> agent_started", &mut to_started);
    report("start_agent -> agent_completed", &mut to_completed);
    Ok(())
}

fn report(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "{label}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
}
