//! The soak's second client (scripts/soak.sh): the traffic `agentwire load` does not make.
//! Beside `load`'s steady stream of runs, it keeps cancelling runs and dropping sockets mid-run,
//! at a steady pace, and checks every outcome like a user would:
//!
//! - **cancel**: start a run, cancel it after its first events; it ends once, with
//!   `agent_cancelled` (or `agent_completed` when the run won the race), and the grammar holds;
//! - **reconnect**: start a run, drop the socket after a few events, connect again and `resume`
//!   from the last `seq` seen; what was seen plus the replay is the whole run, with no gap and no
//!   duplicate, ending in `agent_completed`.
//!
//! It stops by itself (duration and iteration cap), talks to loopback targets only, and prints
//! one JSON line of counts; it exits 1 when any check failed.
//!
//! It is a client of the contract like `check` and `load`, so it lives beside them and uses only
//! this crate: the client, the grammar and the token minter.
//!
//! Run (the secret from `AGENTWIRE_JWT_SECRET`, or `--secret`): `cargo run --release -p
//! agentwire-check --example soak_chaos -- --target 127.0.0.1:8080 --duration-s 60 --per-second 1`

use agentwire_check::client::{ConnectOptions, Credentials, Session};
use agentwire_check::grammar;
use agentwire_check::token::{Identity, Minter};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(120);
/// Users the iterations rotate through (all in one tenant, which sees the demo data).
const USERS: usize = 20;

#[derive(Debug, Default)]
struct Counts {
    iterations: u64,
    cancelled: u64,
    completed_before_cancel: u64,
    resumed_whole: u64,
    failures: u64,
    first_failures: Vec<String>,
}

impl Counts {
    fn fail(&mut self, what: String) {
        self.failures += 1;
        if self.first_failures.len() < 10 {
            self.first_failures.push(what);
        }
    }
}

struct Settings {
    target: SocketAddr,
    minter: Minter,
    duration: Duration,
    per_second: f64,
    max_iterations: u64,
}

fn settings() -> Result<Settings, String> {
    let mut flags: HashMap<String, String> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(name) = args.next() {
        let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
        flags.insert(name.trim_start_matches("--").to_owned(), value);
    }
    let get = |name: &str| flags.get(name).cloned();
    let target: SocketAddr = get("target")
        .ok_or("--target 127.0.0.1:PORT is required")?
        .trim_start_matches("http://")
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .parse()
        .map_err(|e| format!("--target must be IP:PORT: {e}"))?;
    if !target.ip().is_loopback() {
        return Err(format!(
            "{target} is not a loopback address; soak traffic stays on this machine"
        ));
    }
    let secret = get("secret")
        .or_else(|| std::env::var("AGENTWIRE_JWT_SECRET").ok())
        .ok_or("--secret (or AGENTWIRE_JWT_SECRET) is required")?;
    let number = |name: &str, default: f64| -> Result<f64, String> {
        get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("--{name} must be a number"))
        })
    };
    Ok(Settings {
        target,
        minter: Minter::new(&secret, None, None).map_err(|e| e.to_string())?,
        duration: Duration::from_secs_f64(number("duration-s", 60.0)?.max(1.0)),
        per_second: number("per-second", 1.0)?.clamp(0.01, 50.0),
        max_iterations: number("max-iterations", 100_000.0)? as u64,
    })
}

/// A day-long token for one of the rotating users, all in the tenant `soak`.
fn token(settings: &Settings, user: usize) -> String {
    let who = Identity::new(format!("soak-chaos-{user}"), Some("soak".to_owned()));
    settings.minter.token_expiring(&who, 24 * 3600)
}

async fn connect(settings: &Settings, token: &str) -> Result<Session, String> {
    Session::connect(&ConnectOptions::new(
        format!("ws://{}/ws", settings.target),
        Credentials::Bearer(token.to_owned()),
    ))
    .await
    .map_err(|e| format!("connect: {e}"))
}

async fn start(session: &mut Session, id: &str) -> Result<String, String> {
    session
        .start_agent(
            id,
            "supervisor",
            "How can we reduce our AI costs?",
            Map::new(),
        )
        .await
        .map_err(|e| format!("start: {e}"))?;
    Ok(session
        .wait_run_accepted(id, WAIT)
        .await
        .map_err(|e| format!("run_accepted: {e}"))?
        .run_id)
}

/// Reads frames of `run_id` until `n` events were seen (or the run ended).
async fn read_events(session: &mut Session, run_id: &str, n: usize) -> Result<Vec<Value>, String> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let frame = session
            .next_frame(WAIT)
            .await
            .map_err(|e| format!("reading: {e}"))?
            .value;
        if frame["run_id"] != run_id {
            continue;
        }
        let terminal = frame["type"]
            .as_str()
            .is_some_and(grammar::is_terminal_type);
        seen.push(frame);
        if terminal {
            break;
        }
    }
    Ok(seen)
}

/// Sends `message` (a cancel or a resume of `run_id`) and reads the run to its end: the events
/// `seen` before, then the rest.
async fn send_and_finish(
    session: &mut Session,
    message: &Value,
    run_id: &str,
    seen: Vec<Value>,
) -> Result<Vec<Value>, String> {
    let verb = message["type"].as_str().unwrap_or("message");
    session
        .send_json(message)
        .await
        .map_err(|e| format!("{verb}: {e}"))?;
    let rest = session
        .collect_run(run_id, WAIT)
        .await
        .map_err(|e| format!("collect after {verb}: {e}"))?;
    Ok(seen.into_iter().chain(rest.events).collect())
}

async fn cancel_iteration(
    settings: &Settings,
    user: usize,
    counts: &mut Counts,
) -> Result<(), String> {
    let mut session = connect(settings, &token(settings, user)).await?;
    let run_id = start(&mut session, "c").await?;
    let seen = read_events(&mut session, &run_id, 3).await?;
    let cancel = json!({"type": "cancel", "id": "x", "run_id": run_id});
    let events = send_and_finish(&mut session, &cancel, &run_id, seen).await?;
    let violations = grammar::check_run(&events);
    if !violations.is_empty() {
        return Err(format!("cancelled run {run_id}: {violations:?}"));
    }
    match events.last().and_then(|e| e["type"].as_str()) {
        Some("agent_cancelled") => counts.cancelled += 1,
        Some("agent_completed") => counts.completed_before_cancel += 1,
        other => return Err(format!("cancelled run {run_id} ended with {other:?}")),
    }
    let _ = session.close().await;
    Ok(())
}

async fn reconnect_iteration(
    settings: &Settings,
    user: usize,
    counts: &mut Counts,
) -> Result<(), String> {
    let token = token(settings, user);
    let mut first = connect(settings, &token).await?;
    let run_id = start(&mut first, "r").await?;
    let seen = read_events(&mut first, &run_id, 4).await?;
    drop(first); // the socket goes away mid-run; the run does not
    let last_seq = seen.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    let mut second = connect(settings, &token).await?;
    let resume = json!({"type": "resume", "id": "again", "run_id": run_id, "after_seq": last_seq});
    let events = send_and_finish(&mut second, &resume, &run_id, seen).await?;
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    if seqs != (1..=seqs.len() as u64).collect::<Vec<_>>() {
        return Err(format!("resumed run {run_id}: seq {seqs:?}"));
    }
    let violations = grammar::check_run(&events);
    if !violations.is_empty()
        || events.last().map(|e| &e["type"]) != Some(&json!("agent_completed"))
    {
        return Err(format!("resumed run {run_id}: {violations:?}"));
    }
    counts.resumed_whole += 1;
    let _ = second.close().await;
    Ok(())
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
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / settings.per_second);
    let mut next = tokio::time::Instant::now();
    let mut counts = Counts::default();
    while started.elapsed() < settings.duration && counts.iterations < settings.max_iterations {
        tokio::time::sleep_until(next).await;
        next += interval;
        let user = (counts.iterations as usize) % USERS;
        let result = if counts.iterations % 2 == 0 {
            cancel_iteration(&settings, user, &mut counts).await
        } else {
            reconnect_iteration(&settings, user, &mut counts).await
        };
        counts.iterations += 1;
        if let Err(err) = result {
            counts.fail(err);
        }
    }
    println!(
        "{}",
        json!({
            "iterations": counts.iterations,
            "cancelled": counts.cancelled,
            "completed_before_cancel": counts.completed_before_cancel,
            "resumed_whole": counts.resumed_whole,
            "failures": counts.failures,
            "first_failures": counts.first_failures,
            "elapsed_s": started.elapsed().as_secs(),
        })
    );
    if counts.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
