//! Figures for a deployment of several nodes (docs/deploy.md): how long a client that moves to
//! another node waits, and how late a follower on another node sees each event. Not a test: it
//! measures and prints, and judges only what it must to measure (seq order, one terminal event).
//!
//! For each of `--runs` runs it opens a socket to node A and two to node B, starts a supervisor
//! run on A, and follows it on B from the start (`resume` with `after_seq` 0):
//! - **follow delay**: for every event, the time between its arrival on A's socket and on B's
//!   (the executing node's notification after its commit, the other node's read of the log);
//! - **resume latency**: once A has sent event N (N >= 8), the second socket on B sends
//!   `resume` with `after_seq` N-3 and the time until the first missing event (N-2) arrives.
//!
//! With `--kill-pid PID` (node A's process) it then measures **SIGKILL to INTERRUPTED**: a run
//! on A, SIGKILL after its third event, and the time until a client on B that resumed the run
//! sees its terminal `agent_error` `INTERRUPTED` (written by whichever node sweeps A).
//!
//! Run: `cargo run --release -p agentwire-check --example cross_node -- --a 127.0.0.1:8081
//! --b 127.0.0.1:8082 --runs 30` (the secret from `AGENTWIRE_JWT_SECRET` or `--secret`; the
//! nodes need `--step-delay-ms` of some tens of ms so runs last long enough to move mid-run).

use agentwire_check::client::{ConnectOptions, Credentials, Session};
use agentwire_check::grammar;
use agentwire_check::token::{Identity, Minter};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);

struct Settings {
    a: String,
    b: String,
    minter: Minter,
    runs: usize,
    kill_pid: Option<u32>,
}

fn settings() -> Result<Settings, String> {
    let mut flags: HashMap<String, String> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(name) = args.next() {
        let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
        flags.insert(name.trim_start_matches("--").to_owned(), value);
    }
    let ws = |name: &str| -> Result<String, String> {
        let addr = flags
            .get(name)
            .ok_or_else(|| format!("--{name} HOST:PORT is required"))?;
        let addr = addr
            .trim_start_matches("http://")
            .trim_start_matches("ws://");
        Ok(format!("ws://{}/ws", addr.trim_end_matches("/ws")))
    };
    let secret = flags
        .get("secret")
        .cloned()
        .or_else(|| std::env::var("AGENTWIRE_JWT_SECRET").ok())
        .ok_or("--secret (or AGENTWIRE_JWT_SECRET) is required")?;
    Ok(Settings {
        a: ws("a")?,
        b: ws("b")?,
        minter: Minter::new(&secret, None, None).map_err(|e| e.to_string())?,
        runs: flags
            .get("runs")
            .map_or(Ok(20), |v| v.parse().map_err(|_| "--runs must be a number"))?,
        kill_pid: flags
            .get("kill-pid")
            .map(|v| v.parse().map_err(|_| "--kill-pid must be a process id"))
            .transpose()?,
    })
}

async fn connect(url: &str, token: &str) -> Result<Session, String> {
    Session::connect(&ConnectOptions::new(
        url,
        Credentials::Bearer(token.to_owned()),
    ))
    .await
    .map_err(|e| format!("connect {url}: {e}"))
}

async fn start(session: &mut Session) -> Result<String, String> {
    session
        .start_agent(
            "x",
            "supervisor",
            "How can we reduce our AI costs?",
            Map::new(),
        )
        .await
        .map_err(|e| format!("start: {e}"))?;
    Ok(session
        .wait_run_accepted("x", WAIT)
        .await
        .map_err(|e| format!("run_accepted: {e}"))?
        .run_id)
}

fn resume(run_id: &str, after_seq: u64) -> Value {
    json!({"type": "resume", "id": format!("r{after_seq}"), "run_id": run_id, "after_seq": after_seq})
}

/// The next event of `run_id` on the socket, with when it was read.
async fn next_event(session: &mut Session, run_id: &str) -> Result<(Value, Instant), String> {
    loop {
        let frame = session
            .next_frame(WAIT)
            .await
            .map_err(|e| format!("reading: {e}"))?;
        if frame.value["run_id"] == run_id && frame.value["seq"].is_u64() {
            return Ok((frame.value, frame.received_at));
        }
        if frame.value["type"] == "error" {
            return Err(format!("error frame: {}", frame.value));
        }
    }
}

fn seq(event: &Value) -> u64 {
    event["seq"].as_u64().unwrap_or(0)
}

fn terminal(event: &Value) -> bool {
    grammar::is_terminal_type(event["type"].as_str().unwrap_or_default())
}

/// Reads `run_id`'s events on `session` to the terminal one, each with when it arrived; checks
/// they come in `seq` order from `first_seq`, each once. Runs in a task of its own, so arrival
/// times are when the frames came, not when someone got round to reading them.
async fn read_run(
    mut session: Session,
    run_id: String,
    first_seq: u64,
) -> Result<Vec<(u64, Instant)>, String> {
    let mut read = Vec::new();
    let mut expected = first_seq;
    loop {
        let (event, at) = next_event(&mut session, &run_id).await?;
        if seq(&event) != expected {
            return Err(format!(
                "seq {} arrived where {expected} was due",
                seq(&event)
            ));
        }
        read.push((expected, at));
        expected += 1;
        if terminal(&event) {
            return Ok(read);
        }
    }
}

/// One run: follow delays (ms) of the live events, and the resume latency (ms).
async fn one_run(settings: &Settings, i: usize) -> Result<(Vec<f64>, f64), String> {
    let who = Identity::new(format!("cross-node-{i}"), Some("cross-node".to_owned()));
    let token = settings.minter.token(&who);
    let mut on_a = connect(&settings.a, &token).await?;
    let mut follower = connect(&settings.b, &token).await?;
    let mut mover = connect(&settings.b, &token).await?;
    let run_id = start(&mut on_a).await?;
    follower
        .send_json(&resume(&run_id, 0))
        .await
        .map_err(|e| e.to_string())?;
    let following = tokio::spawn(read_run(follower, run_id.clone(), 1));
    let (move_at, moved_after) = tokio::sync::oneshot::channel::<u64>();
    let moving = {
        let run_id = run_id.clone();
        tokio::spawn(async move {
            let after = moved_after
                .await
                .map_err(|_| "the run ended before its 8th event")?;
            mover
                .send_json(&resume(&run_id, after))
                .await
                .map_err(|e| e.to_string())?;
            let sent = Instant::now();
            let (first, at) = next_event(&mut mover, &run_id).await?;
            if seq(&first) != after + 1 {
                return Err(format!(
                    "resume after {after} began with seq {}",
                    seq(&first)
                ));
            }
            Ok::<f64, String>(at.duration_since(sent).as_secs_f64() * 1e3)
        })
    };

    // A's events as sent, with their arrival times.
    let mut move_at = Some(move_at);
    let sent = {
        let mut sent: Vec<Instant> = Vec::new();
        loop {
            let (event, at) = next_event(&mut on_a, &run_id).await?;
            if seq(&event) != sent.len() as u64 + 1 {
                return Err(format!("A sent seq {} after {}", seq(&event), sent.len()));
            }
            sent.push(at);
            if sent.len() >= 8
                && !terminal(&event)
                && let Some(move_at) = move_at.take()
            {
                let _ = move_at.send(sent.len() as u64 - 3);
            }
            if terminal(&event) {
                break sent;
            }
        }
    };
    drop(move_at);
    let resume_ms = moving.await.map_err(|e| e.to_string())??;
    let followed = following.await.map_err(|e| e.to_string())??;
    if followed.len() != sent.len() {
        return Err(format!(
            "B's follower saw {} events, A sent {}",
            followed.len(),
            sent.len()
        ));
    }
    // The follower joined before the first event, so every event reached it live; one that
    // reached B before A's own socket counts as no delay.
    let delays = followed
        .iter()
        .map(|(seq, at)| {
            let on_a = sent[(*seq - 1) as usize];
            at.saturating_duration_since(on_a).as_secs_f64() * 1e3
        })
        .collect();
    Ok((delays, resume_ms))
}

/// SIGKILL node A mid-run; milliseconds until B's client sees the run's INTERRUPTED.
async fn kill_to_interrupted(settings: &Settings, pid: u32) -> Result<f64, String> {
    let who = Identity::new("cross-node-kill", Some("cross-node".to_owned()));
    let token = settings.minter.token(&who);
    let mut on_a = connect(&settings.a, &token).await?;
    let mut on_b = connect(&settings.b, &token).await?;
    let run_id = start(&mut on_a).await?;
    for _ in 0..3 {
        next_event(&mut on_a, &run_id).await?;
    }
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .map_err(|e| format!("kill: {e}"))?;
    let killed_at = Instant::now();
    if !killed.success() {
        return Err(format!("kill -KILL {pid}: {killed}"));
    }
    on_b.send_json(&resume(&run_id, 0))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let (event, at) = next_event(&mut on_b, &run_id).await?;
        if terminal(&event) {
            if event["error_code"] != "INTERRUPTED" {
                return Err(format!("the run ended with {event}"));
            }
            return Ok(at.duration_since(killed_at).as_secs_f64() * 1e3);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn describe(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    println!(
        "{name}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        values.len(),
        percentile(&values, 50.0),
        percentile(&values, 99.0),
        values.last().copied().unwrap_or(f64::NAN)
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match settings() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let mut delays = Vec::new();
    let mut resumes = Vec::new();
    for i in 0..settings.runs {
        match one_run(&settings, i).await {
            Ok((run_delays, resume_ms)) => {
                delays.extend(run_delays);
                resumes.push(resume_ms);
            }
            Err(err) => {
                eprintln!("run {i}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    describe(
        "cross-node follow delay (event on A -> same event on B)",
        delays,
    );
    describe(
        "cross-node resume latency (resume sent -> first missing event)",
        resumes,
    );
    if let Some(pid) = settings.kill_pid {
        match kill_to_interrupted(&settings, pid).await {
            Ok(ms) => println!("SIGKILL of A -> INTERRUPTED seen on B: {ms:.0} ms"),
            Err(err) => {
                eprintln!("kill: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
