//! The cases of the catalogue, one function each.
//!
//! Each case talks to the deployment through [`Probe`]s, judges what it saw against one rule of
//! the contract, and returns an [`Outcome`]: on failure, what was observed and the frames that show
//! it. Cases use only the contract's fields; our server's extras (`report`, `tenant_id`) appear at
//! most as notes.
//!
//! What a case must not do: pass on absence of evidence (a reply that never came is a failure,
//! not a pass), or leave a run unfollowed (every started run is followed to its end, so the
//! grammar cases judge it).

use super::probe::{
    Ctx, Outcome, Probe, Started, TruthSetup, User, abbreviate, params, request_id_of,
};
use super::{CaseId, JudgedRun};
use crate::client::{ClientError, Credentials, RunTranscript};
use crate::grammar;
use crate::quality::{self, Scenario};
use crate::truth;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};

type Step<T> = Result<T, Outcome>;

/// Runs one case. Transcripts are shortened for display.
pub(crate) async fn run(case: CaseId, ctx: &mut Ctx) -> Outcome {
    use CaseId::*;
    let result = match case {
        Health => health(ctx).await,
        LiveReady => live_ready(ctx).await,
        Connect => connect(ctx).await,
        Ping => ping(ctx).await,
        Subprotocol => subprotocol(ctx).await,
        BinaryRefused => binary_refused(ctx).await,
        AuthSubprotocol => auth_with(ctx, "2.1", true).await,
        AuthFirstFrame => auth_with(ctx, "2.2", false).await,
        AuthRequired => auth_required(ctx).await,
        AuthForged => bad_token(ctx, BadToken::Forged).await,
        AuthExpired => bad_token(ctx, BadToken::Expired).await,
        AuthAlgNone => bad_token(ctx, BadToken::AlgNone).await,
        RequestIds => request_ids(ctx).await,
        RunAccepted => run_accepted(ctx).await,
        Aliases => aliases(ctx).await,
        UnknownAgent => unknown_agent(ctx).await,
        SeveralRuns => several_runs(ctx).await,
        RunConflict => run_conflict(ctx).await,
        Cancel => cancel(ctx).await,
        OneUserManySockets => one_user_many_sockets(ctx).await,
        Handoffs => handoffs(ctx).await,
        Resume => resume(ctx).await,
        DataAgent => agent_completes(ctx, "5.11", "data", DATA_QUESTION).await,
        OptimizationAgent => {
            agent_completes(ctx, "5.12", "optimization", OPTIMIZATION_QUESTION).await
        }
        Performance => performance(ctx).await,
        QualityCost => quality_case(ctx, "5.14", Scenario::CostOptimization).await,
        QualityAnomaly => quality_case(ctx, "5.15", Scenario::AnomalyDetection).await,
        QualityCapacity => quality_case(ctx, "5.16", Scenario::CapacityPlanning).await,
        TruthSpike => truth_case(ctx, "5.17").await,
        TruthSaving => truth_case(ctx, "5.18").await,
        Malformed => malformed(ctx).await,
        UnknownType => unknown_type(ctx).await,
        ResumeOther => resume_other(ctx).await,
        UsersIsolated => users_isolated(ctx).await,
        RunEventsOwnerOnly => run_events_owner_only(ctx).await,
        Grammar(rule) => grammar_rule(ctx, rule),
    };
    let mut outcome = result.unwrap_or_else(|failure| failure);
    outcome.transcript = outcome.transcript.iter().map(abbreviate).collect();
    outcome
}

const DATA_QUESTION: &str = "Where did our AI spend go in the last 30 days, by model and team?";
const OPTIMIZATION_QUESTION: &str =
    "Which changes would cut our AI costs the most, and by how much per month?";
const SUPERVISOR_QUESTION: &str = "How can we reduce our AI costs?";

/// Turns a client error into a failed case with the probe's transcript.
fn failed(probe: &mut Probe, what: &str, err: &ClientError) -> Outcome {
    Outcome::fail(format!("{what}: {err}"), probe.transcript_with_backlog())
}

/// `?` for client calls inside a case: a failure with what was being done and the transcript.
macro_rules! step {
    ($probe:expr, $what:expr, $call:expr) => {
        match $call {
            Ok(value) => value,
            Err(err) => return Err(failed(&mut $probe, &$what, &err)),
        }
    };
}

/// A failed case unless `cond` holds.
macro_rules! ensure {
    ($probe:expr, $cond:expr, $($reason:tt)+) => {
        if !$cond {
            return Err(Outcome::fail(format!($($reason)+), $probe.transcript_with_backlog()));
        }
    };
}

/// Sends a JSON `ping` and fails the case unless its answer is a `pong` (`what` names the ping in
/// the failure, e.g. "a ping after first-frame authentication").
async fn expect_pong(mut probe: &mut Probe, what: &str) -> Step<()> {
    let ping_id = id("ping");
    step!(
        probe,
        "sending ping",
        probe.send(&json!({"type": "ping", "id": ping_id})).await
    );
    let reply = step!(probe, "waiting for pong", probe.reply(&ping_id).await);
    ensure!(
        probe,
        kind(&reply) == "pong",
        "{what} was answered with {}, not pong",
        kind(&reply)
    );
    Ok(())
}

fn kind(frame: &Value) -> &str {
    frame
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("<no type>")
}

fn field<'a>(frame: &'a Value, name: &str) -> &'a str {
    frame.get(name).and_then(Value::as_str).unwrap_or("")
}

fn id(prefix: &str) -> String {
    format!("{prefix}-{}", crate::token::random_hex(8))
}

/// Describes how a run ended, for reasons: `agent_error NO_DATA: ...`.
fn ending(run: &RunTranscript) -> String {
    match run.events.last() {
        Some(last) if kind(last) == "agent_error" => format!(
            "agent_error {}: {}",
            field(last, "error_code"),
            field(last, "message")
        ),
        Some(last) if kind(last) == "agent_cancelled" => {
            format!("agent_cancelled: {}", field(last, "reason"))
        }
        Some(last) => kind(last).to_owned(),
        None => "no events".to_owned(),
    }
}

// ---------------------------------------------------------------- connectivity (sections 1, 7)

async fn health(ctx: &mut Ctx) -> Step<Outcome> {
    let limit = ctx.config.connect_timeout;
    let mut transcript = Vec::new();
    let mut note = String::new();
    for path in ["/health", "/api/health"] {
        let answer = ctx
            .http
            .get(path, &[], limit)
            .await
            .map_err(|e| Outcome::fail(format!("GET {path}: {e}"), transcript.clone()))?;
        let body = answer.json();
        transcript.push(json!({
            "request": format!("GET {path}"), "status": answer.status,
            "body": body.clone().unwrap_or_else(|| Value::String(answer.text())),
        }));
        if answer.status != 200 {
            return Err(Outcome::fail(
                format!("GET {path} answered HTTP {}", answer.status),
                transcript,
            ));
        }
        let Some(body) = body.filter(Value::is_object) else {
            return Err(Outcome::fail(
                format!("GET {path} answered 200 but the body is not a JSON object"),
                transcript,
            ));
        };
        if body.get("status").and_then(Value::as_str) != Some("healthy") {
            return Err(Outcome::fail(
                format!(
                    "GET {path}: status is {}, not \"healthy\"",
                    body.get("status").unwrap_or(&Value::Null)
                ),
                transcript,
            ));
        }
        if !body.get("checks").is_some_and(Value::is_object) {
            return Err(Outcome::fail(
                format!("GET {path}: no `checks` object"),
                transcript,
            ));
        }
        if note.is_empty() {
            note = format!(
                "healthy, version {}, checks {}",
                body.get("version").unwrap_or(&Value::Null),
                body["checks"]
            );
        }
    }
    Ok(Outcome::pass(note))
}

async fn live_ready(ctx: &mut Ctx) -> Step<Outcome> {
    let limit = ctx.config.connect_timeout;
    let mut transcript = Vec::new();
    for path in ["/health/live", "/health/ready"] {
        let answer = ctx
            .http
            .get(path, &[], limit)
            .await
            .map_err(|e| Outcome::fail(format!("GET {path}: {e}"), transcript.clone()))?;
        transcript.push(json!({
            "request": format!("GET {path}"), "status": answer.status,
            "body": answer.json().unwrap_or_else(|| Value::String(answer.text())),
        }));
        if answer.status != 200 {
            return Err(Outcome::fail(
                format!("GET {path} answered HTTP {}", answer.status),
                transcript,
            ));
        }
    }
    Ok(Outcome::pass(None))
}

async fn connect(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("1.1").await?;
    let info = probe
        .session
        .connection_info()
        .cloned()
        .unwrap_or(Value::Null);
    let mut problems = Vec::new();
    if field(&info, "connection_id").is_empty() {
        problems.push("no `connection_id`".to_owned());
    }
    let user_id = field(&info, "user_id");
    let expected_user = &ctx.main.identity.user;
    if user_id.is_empty() {
        problems.push("no `user_id`".to_owned());
    } else if !expected_user.is_empty() && user_id != expected_user {
        problems.push(format!(
            "`user_id` is {user_id:?} but the token's sub is {expected_user:?}"
        ));
    }
    if field(&info, "protocol") != agentwire_protocol::SUBPROTOCOL {
        problems.push(format!(
            "`protocol` is {}, not \"agentwire.v1\"",
            info.get("protocol").unwrap_or(&Value::Null)
        ));
    }
    let agents: Vec<&str> = info
        .get("agents")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let missing: Vec<&str> = agentwire_protocol::AgentKind::ALL
        .iter()
        .map(|k| k.as_str())
        .filter(|name| !agents.contains(name))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("`agents` lacks {}", missing.join(", ")));
    }
    let limits = info.get("limits");
    for name in ["max_frame_bytes", "max_concurrent_runs"] {
        if limits
            .and_then(|l| l.get(name))
            .and_then(Value::as_u64)
            .is_none()
        {
            problems.push(format!("`limits.{name}` is not a whole number"));
        }
    }
    ensure!(
        probe,
        problems.is_empty(),
        "connection_established is incomplete: {}",
        problems.join("; ")
    );
    let note = format!(
        "connected in {:.1} ms as {user_id}, server {}",
        probe.connect_ms,
        info.get("server_version").unwrap_or(&Value::Null)
    );
    probe.close().await;
    Ok(Outcome::pass(note))
}

async fn ping(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("1.2").await?;
    expect_pong(&mut probe, "a ping").await?;
    probe.close().await;
    Ok(Outcome::pass(None))
}

async fn subprotocol(ctx: &mut Ctx) -> Step<Outcome> {
    let mut offered = ctx.main_probe("1.3").await?;
    let selected = offered.session.selected_subprotocol().map(str::to_owned);
    ensure!(
        offered,
        selected.as_deref() == Some(agentwire_protocol::SUBPROTOCOL),
        "agentwire.v1 was offered beside a Bearer token but the server selected {selected:?}"
    );
    offered.close().await;

    let user = ctx.main.clone();
    let mut with_jwt = match Probe::connect(
        ctx,
        "1.3",
        &user,
        Credentials::Subprotocol(user.token.clone()),
    )
    .await
    {
        Ok(probe) => probe,
        Err(err) => {
            return Err(Outcome::fail(
                format!("connecting with agentwire.v1 and a jwt.* item failed: {err}"),
                Vec::new(),
            ));
        }
    };
    let selected = with_jwt.session.selected_subprotocol().map(str::to_owned);
    ensure!(
        with_jwt,
        selected.as_deref() == Some(agentwire_protocol::SUBPROTOCOL),
        "agentwire.v1 and a jwt.* item were offered; the server selected {selected:?} (it must select agentwire.v1 and never echo the jwt.* item)"
    );
    with_jwt.close().await;

    let mut options = ctx.options(Credentials::Bearer(user.token.clone()));
    options.offer_subprotocol = false;
    let mut plain = match Probe::connect_with(ctx, "1.3", &user.identity.user, options).await {
        Ok(probe) => probe,
        Err(err) => {
            return Err(Outcome::fail(
                format!("connecting without offering a subprotocol failed: {err}"),
                Vec::new(),
            ));
        }
    };
    let selected = plain.session.selected_subprotocol().map(str::to_owned);
    ensure!(
        plain,
        selected.is_none(),
        "no subprotocol was offered but the server selected {selected:?}"
    );
    plain.close().await;
    Ok(Outcome::pass(None))
}

async fn binary_refused(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("1.4").await?;
    step!(
        probe,
        "sending a binary frame",
        probe.session.send_binary(b"\x00\x01binary".to_vec()).await
    );
    let timeout = ctx.config.first_event_timeout;
    let reply = step!(
        probe,
        "waiting for the error that refuses the binary frame",
        probe.until(timeout, |f| kind(f) == "error").await
    );
    ensure!(
        probe,
        field(&reply, "error_code") == "INVALID_MESSAGE",
        "a binary frame got error {}, not INVALID_MESSAGE",
        field(&reply, "error_code")
    );
    let ping_id = id("ping");
    step!(
        probe,
        "sending ping after the binary frame",
        probe.send(&json!({"type": "ping", "id": ping_id})).await
    );
    let pong = step!(
        probe,
        "waiting for pong after the binary frame",
        probe.reply(&ping_id).await
    );
    ensure!(
        probe,
        kind(&pong) == "pong",
        "ping after a binary frame got {}",
        kind(&pong)
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

// ---------------------------------------------------------------------- authentication (2)

async fn auth_with(ctx: &mut Ctx, case: &'static str, subprotocol: bool) -> Step<Outcome> {
    let user = ctx.main.clone();
    let credentials = if subprotocol {
        Credentials::Subprotocol(user.token.clone())
    } else {
        Credentials::FirstFrame(user.token.clone())
    };
    let form = if subprotocol {
        "a jwt.<token> subprotocol item"
    } else {
        "a first-frame authenticate"
    };
    let mut probe = match Probe::connect(ctx, case, &user, credentials).await {
        Ok(probe) => probe,
        Err(err) => {
            return Err(Outcome::fail(
                format!("the suite's valid token in {form} was not accepted: {err}"),
                Vec::new(),
            ));
        }
    };
    let info = probe
        .session
        .connection_info()
        .cloned()
        .unwrap_or(Value::Null);
    ensure!(
        probe,
        kind(&info) == "connection_established",
        "no connection_established after {form}"
    );
    expect_pong(&mut probe, &format!("a ping after {form}")).await?;
    probe.close().await;
    Ok(Outcome::pass(None))
}

async fn auth_required(ctx: &mut Ctx) -> Step<Outcome> {
    let user = ctx.main.clone();
    let mut probe = match Probe::connect(ctx, "2.3", &user, Credentials::None).await {
        Ok(probe) => probe,
        Err(err) => {
            return Err(Outcome::fail(
                format!("an upgrade without credentials must succeed, but: {err}"),
                Vec::new(),
            ));
        }
    };
    let ping_id = id("ping");
    step!(
        probe,
        "sending ping before authenticating",
        probe.send(&json!({"type": "ping", "id": ping_id})).await
    );
    let pong = step!(
        probe,
        "waiting for pong before authenticating",
        probe.reply(&ping_id).await
    );
    ensure!(
        probe,
        kind(&pong) == "pong",
        "ping before authenticating got {}",
        kind(&pong)
    );

    let start_id = id("unauth");
    let canary = probe.canary();
    step!(
        probe,
        "sending start_agent before authenticating",
        probe
            .send(&json!({"type": "start_agent", "id": start_id,
                          "payload": {"user_request": format!("{SUPERVISOR_QUESTION} [ref {canary}]")}}))
            .await
    );
    let reply = step!(
        probe,
        "waiting for the reply to start_agent before authenticating",
        probe.reply(&start_id).await
    );
    ensure!(
        probe,
        kind(&reply) == "error" && field(&reply, "error_code") == "AUTH_REQUIRED",
        "start_agent before authenticating got {} {}, not error AUTH_REQUIRED",
        kind(&reply),
        field(&reply, "error_code")
    );

    step!(
        probe,
        "sending authenticate",
        probe
            .send(&json!({"type": "authenticate", "token": user.token}))
            .await
    );
    let timeout = ctx.config.connect_timeout;
    let established = step!(
        probe,
        "waiting for connection_established after authenticate",
        probe
            .until(timeout, |f| matches!(
                kind(f),
                "connection_established" | "error"
            ))
            .await
    );
    ensure!(
        probe,
        kind(&established) == "connection_established",
        "authenticate with a valid token got {} {}",
        kind(&established),
        field(&established, "error_code")
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

#[derive(Clone, Copy)]
enum BadToken {
    Forged,
    Expired,
    AlgNone,
}

async fn bad_token(ctx: &mut Ctx, which: BadToken) -> Step<Outcome> {
    let (case, what) = match which {
        BadToken::Forged => ("2.4", "a token signed with a wrong secret"),
        BadToken::Expired => ("2.5", "a token that expired two hours ago"),
        BadToken::AlgNone => ("2.6", "an unsigned alg:none token"),
    };
    let claims = crate::token::claims_of(&ctx.main.token)
        .map_err(|e| Outcome::error(format!("cannot read the suite's token: {e}")))?;
    let token = match which {
        BadToken::Forged => crate::token::forged(&claims),
        BadToken::AlgNone => crate::token::alg_none(&claims),
        BadToken::Expired => match &ctx.minter {
            Some(minter) => minter.expired_token(&ctx.main.identity),
            None => return Err(Outcome::skip("needs --secret to sign an expired token")),
        },
    };
    let user = ctx.main.identity.user.clone();
    match Probe::connect_with(ctx, case, &user, ctx.options(Credentials::Bearer(token))).await {
        Ok(mut probe) => {
            let transcript = probe.transcript_with_backlog();
            probe.close().await;
            Err(Outcome::fail(
                format!("{what} was accepted: the server sent connection_established"),
                transcript,
            ))
        }
        Err(ClientError::Http { status: 401, body }) => {
            let parsed: Option<Value> = serde_json::from_str(&body).ok();
            let code = parsed
                .as_ref()
                .and_then(|b| b.get("error_code"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let transcript = vec![
                json!({"status": 401, "body": parsed.clone().unwrap_or(Value::String(body.clone()))}),
            ];
            if code != "AUTH_FAILED" {
                return Err(Outcome::fail(
                    format!(
                        "{what} was refused with 401 but the body's error_code is {code:?}, not AUTH_FAILED"
                    ),
                    transcript,
                ));
            }
            if parsed
                .as_ref()
                .and_then(|b| b.get("message"))
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(Outcome::fail(
                    format!("{what} was refused with 401 AUTH_FAILED but without a message"),
                    transcript,
                ));
            }
            Ok(Outcome::pass(None))
        }
        Err(ClientError::Http { status, body }) => Err(Outcome::fail(
            format!("{what} was refused with HTTP {status}, not 401"),
            vec![json!({"status": status, "body": body})],
        )),
        Err(ClientError::ServerError {
            error_code,
            message,
            frame,
        }) => Err(Outcome::fail(
            format!(
                "{what} was let through the upgrade and refused later with {error_code} ({message}); invalid credentials at the upgrade must get HTTP 401"
            ),
            vec![frame],
        )),
        Err(err) => Err(Outcome::fail(
            format!("presenting {what}: {err}"),
            Vec::new(),
        )),
    }
}

// -------------------------------------------------------------------------------- runs (4)

async fn request_ids(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("3.4").await?;
    // A numeric id: echoed as the number or as its decimal text.
    step!(
        probe,
        "sending ping with a numeric id",
        probe.send(&json!({"type": "ping", "id": 7})).await
    );
    let pong = step!(
        probe,
        "waiting for the pong to id 7",
        probe.reply("7").await
    );
    ensure!(
        probe,
        kind(&pong) == "pong",
        "ping with id 7 got {}",
        kind(&pong)
    );

    let started = step!(
        probe,
        "starting a run",
        probe.start("data", DATA_QUESTION, Map::new()).await
    );
    ensure!(
        probe,
        !started.run_id.is_empty(),
        "run_accepted for request {} has no run_id",
        started.request_id
    );
    step!(probe, "following the run", probe.follow(&started).await);

    let bad_id = id("unknown-agent");
    step!(
        probe,
        "sending start_agent for an unknown agent",
        probe
            .send(&json!({"type": "start_agent", "id": bad_id,
                          "payload": {"user_request": "hello", "agent_type": "nonexistent_agent"}}))
            .await
    );
    let timeout = ctx.config.first_event_timeout;
    let error = step!(
        probe,
        "waiting for the error reply",
        probe.until(timeout, |f| kind(f) == "error").await
    );
    ensure!(
        probe,
        request_id_of(&error).as_deref() == Some(bad_id.as_str()),
        "the error answering request {bad_id} carries request_id {:?}",
        error.get("request_id")
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

async fn run_accepted(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("4.1").await?;
    let request_id = id("start");
    let canary = probe.canary();
    let sent_at = std::time::Instant::now();
    step!(
        probe,
        "sending start_agent",
        probe
            .session
            .start_agent(
                &request_id,
                "data",
                &format!("{DATA_QUESTION} [ref {canary}]"),
                Map::new()
            )
            .await
    );
    let timeout = ctx.config.first_event_timeout;
    let first = step!(
        probe,
        "waiting for run_accepted",
        probe
            .until(timeout, |f| {
                request_id_of(f).as_deref() == Some(request_id.as_str())
                    || grammar::is_run_event_type(kind(f))
            })
            .await
    );
    ensure!(
        probe,
        kind(&first) == "run_accepted",
        "the first reply was {} (run {}), not run_accepted",
        kind(&first),
        field(&first, "run_id")
    );
    let run_id = field(&first, "run_id").to_owned();
    let thread_id = field(&first, "thread_id").to_owned();
    ensure!(
        probe,
        !run_id.is_empty() && !thread_id.is_empty(),
        "run_accepted lacks a string run_id or thread_id"
    );
    ctx.shared.registry.register_run(&run_id, &probe.user);
    let started = Started {
        request_id,
        run_id: run_id.clone(),
        agent: "data".to_owned(),
        canary,
        sent_at,
    };
    let run = step!(probe, "following the run", probe.follow(&started).await);
    let strays: Vec<u64> = run
        .events
        .iter()
        .filter(|e| field(e, "thread_id") != thread_id)
        .filter_map(|e| e.get("seq").and_then(Value::as_u64))
        .collect();
    ensure!(
        probe,
        strays.is_empty(),
        "events {strays:?} of run {run_id} carry a thread_id other than run_accepted's {thread_id}"
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

async fn aliases(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("4.2").await?;
    let mut notes = Vec::new();
    let forms: [(&str, &str); 3] = [
        ("agent_execute with unified_data_agent", "data"),
        ("start_agent with optimization_agent", "optimization"),
        ("user_message", "supervisor"),
    ];
    for (index, (form, agent)) in forms.iter().enumerate() {
        let canary = probe.canary();
        let request_id = id("alias");
        let message = match index {
            0 => {
                json!({"type": "agent_execute", "id": request_id, "agent_type": "unified_data_agent",
                        "query": format!("{DATA_QUESTION} [ref {canary}]")})
            }
            1 => json!({"type": "start_agent", "id": request_id,
                        "payload": {"agent_type": "optimization_agent",
                                    "user_request": format!("{OPTIMIZATION_QUESTION} [ref {canary}]")}}),
            _ => json!({"type": "user_message", "id": request_id,
                        "content": format!("{SUPERVISOR_QUESTION} [ref {canary}]")}),
        };
        let started = step!(
            probe,
            format!("{form}: waiting for run_accepted"),
            probe.start_raw(message, agent, canary).await
        );
        let run = step!(
            probe,
            format!("{form}: following the run"),
            probe.follow(&started).await
        );
        ensure!(
            probe,
            run.terminal_type().is_some(),
            "{form}: the run has no terminal event"
        );
        notes.push(format!("{form}: {}", ending(&run)));
    }
    probe.close().await;
    Ok(Outcome::pass(notes.join("; ")))
}

async fn unknown_agent(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("4.3").await?;
    let request_id = id("unknown-agent");
    let canary = probe.canary();
    step!(
        probe,
        "sending start_agent for nonexistent_agent",
        probe
            .session
            .start_agent(
                &request_id,
                "nonexistent_agent",
                &format!("hello [ref {canary}]"),
                Map::new()
            )
            .await
    );
    let reply = step!(
        probe,
        "waiting for the reply",
        probe.reply(&request_id).await
    );
    ensure!(
        probe,
        kind(&reply) == "error" && field(&reply, "error_code") == "AGENT_NOT_FOUND",
        "an unknown agent got {} {}, not error AGENT_NOT_FOUND",
        kind(&reply),
        field(&reply, "error_code")
    );
    let after = probe.drain(ctx.config.linger * 2).await;
    let run_frames: Vec<&Value> = after
        .iter()
        .filter(|f| kind(f) == "run_accepted" || grammar::is_run_event_type(kind(f)))
        .collect();
    ensure!(
        probe,
        run_frames.is_empty(),
        "after AGENT_NOT_FOUND a run still started: {} ({})",
        kind(run_frames[0]),
        field(run_frames[0], "run_id")
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

async fn several_runs(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("4.4").await?;
    let questions = [
        ("data", DATA_QUESTION),
        ("optimization", OPTIMIZATION_QUESTION),
        ("supervisor", SUPERVISOR_QUESTION),
    ];
    // Send all three before reading anything, so they run at once.
    let mut pending = Vec::new();
    for (agent, question) in questions {
        let request_id = id("multi");
        let canary = probe.canary();
        let sent_at = std::time::Instant::now();
        step!(
            probe,
            "sending start_agent",
            probe
                .session
                .start_agent(
                    &request_id,
                    agent,
                    &format!("{question} [ref {canary}]"),
                    Map::new()
                )
                .await
        );
        pending.push((request_id, agent, canary, sent_at));
    }
    let mut started = Vec::new();
    for (request_id, agent, canary, sent_at) in pending {
        let accepted = step!(
            probe,
            format!("waiting for run_accepted of {request_id}"),
            probe
                .session
                .wait_run_accepted(&request_id, ctx.config.first_event_timeout)
                .await
        );
        ctx.shared
            .registry
            .register_run(&accepted.run_id, &probe.user);
        started.push(Started {
            request_id,
            run_id: accepted.run_id,
            agent: agent.to_owned(),
            canary,
            sent_at,
        });
    }
    let mut run_ids: Vec<&str> = started.iter().map(|s| s.run_id.as_str()).collect();
    run_ids.sort_unstable();
    run_ids.dedup();
    ensure!(
        probe,
        run_ids.len() == 3,
        "three requests got only {} distinct run_ids",
        run_ids.len()
    );
    let mut endings = Vec::new();
    for s in &started {
        let run = step!(
            probe,
            format!("following run {}", s.run_id),
            probe.follow(s).await
        );
        ensure!(
            probe,
            run.terminal_type() == Some("agent_completed"),
            "run {} ({}) ended with {}",
            s.run_id,
            s.agent,
            ending(&run)
        );
        endings.push(run.events.len());
    }
    probe.close().await;
    Ok(Outcome::pass(format!(
        "three runs at once completed with {endings:?} events"
    )))
}

async fn run_conflict(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("4.5").await?;
    let mut last_note = String::new();
    for _attempt in 0..3 {
        let thread = id("thr-check");
        let first_id = id("conflict-a");
        let second_id = id("conflict-b");
        let canary = probe.canary();
        let thread_param = params(&[("thread_id", json!(thread))]);
        let sent_at = std::time::Instant::now();
        step!(
            probe,
            "sending the first start_agent",
            probe
                .session
                .start_agent(
                    &first_id,
                    "supervisor",
                    &format!("{SUPERVISOR_QUESTION} [ref {canary}]"),
                    thread_param.clone()
                )
                .await
        );
        step!(
            probe,
            "sending the second start_agent on the same thread",
            probe
                .session
                .start_agent(
                    &second_id,
                    "supervisor",
                    &format!("{SUPERVISOR_QUESTION} [ref {canary}]"),
                    thread_param
                )
                .await
        );
        let accepted = step!(
            probe,
            "waiting for run_accepted of the first request",
            probe
                .session
                .wait_run_accepted(&first_id, ctx.config.first_event_timeout)
                .await
        );
        ctx.shared
            .registry
            .register_run(&accepted.run_id, &probe.user);
        let first = Started {
            request_id: first_id,
            run_id: accepted.run_id.clone(),
            agent: "supervisor".to_owned(),
            canary: canary.clone(),
            sent_at,
        };
        let second = probe
            .session
            .wait_run_accepted(&second_id, ctx.config.first_event_timeout)
            .await;
        // Did the first run end before the second request was answered? Then it is no conflict.
        let first_run = step!(probe, "following the first run", probe.follow(&first).await);
        match second {
            Err(ClientError::ServerError {
                error_code, frame, ..
            }) => {
                probe.transcript.push(frame);
                if error_code == "RUN_CONFLICT" {
                    probe.close().await;
                    return Ok(Outcome::pass(None));
                }
                return Err(Outcome::fail(
                    format!(
                        "the second start_agent on a busy thread got {error_code}, not RUN_CONFLICT"
                    ),
                    probe.transcript_with_backlog(),
                ));
            }
            Ok(accepted) => {
                ctx.shared
                    .registry
                    .register_run(&accepted.run_id, &probe.user);
                let second_started = Started {
                    request_id: second_id,
                    run_id: accepted.run_id.clone(),
                    agent: "supervisor".to_owned(),
                    canary,
                    sent_at,
                };
                let second_run = step!(
                    probe,
                    "following the second run",
                    probe.follow(&second_started).await
                );
                let first_ended = first_run.completed_at;
                let second_began = second_run.first_event_at;
                if let (Some(ended), Some(began)) = (first_ended, second_began)
                    && began >= ended
                {
                    // Queued behind the first run (the configurable `enqueue` policy) or the first
                    // ended before the second was read: not conclusive; try again.
                    last_note = "the second run began only after the first ended (enqueue policy, or the first run was too quick to overlap)".to_owned();
                    continue;
                }
                return Err(Outcome::fail(
                    "a second start_agent on a thread whose run was still going was accepted and ran at the same time",
                    probe.transcript_with_backlog(),
                ));
            }
            Err(err) => {
                return Err(failed(
                    &mut probe,
                    "waiting for the reply to the second start_agent",
                    &err,
                ));
            }
        }
    }
    Err(Outcome::fail(
        format!("no RUN_CONFLICT in three attempts: {last_note}"),
        probe.transcript_with_backlog(),
    ))
}

async fn cancel(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("4.6").await?;
    let mut outcomes = Vec::new();
    for _attempt in 0..3 {
        let started = step!(
            probe,
            "starting a supervisor run",
            probe
                .start("supervisor", SUPERVISOR_QUESTION, Map::new())
                .await
        );
        let cancel_id = id("cancel");
        step!(
            probe,
            "sending cancel",
            probe
                .send(&json!({"type": "cancel", "id": cancel_id, "run_id": started.run_id}))
                .await
        );
        let run = step!(
            probe,
            "following the cancelled run",
            probe.follow(&started).await
        );
        let terminal_at = run
            .events
            .iter()
            .position(|e| grammar::is_terminal_type(kind(e)));
        let after = terminal_at.map_or(0, |at| run.events.len() - at - 1);
        ensure!(
            probe,
            after == 0,
            "{after} event(s) of run {} arrived after its terminal event",
            started.run_id
        );
        match run.terminal_type() {
            Some("agent_cancelled") => {
                let open_tools = grammar::check_run(&run.events)
                    .into_iter()
                    .filter(|v| v.rule == grammar::rules::TOOL_PAIRS)
                    .count();
                ensure!(
                    probe,
                    open_tools == 0,
                    "the cancelled run left {open_tools} tool call(s) without tool_completed"
                );
                probe.close().await;
                return Ok(Outcome::pass(format!(
                    "cancelled after {} event(s)",
                    run.events.len()
                )));
            }
            Some("agent_completed") => {
                // The run may have finished before the cancel reached it; try again.
                outcomes.push(format!("completed with {} events", run.events.len()));
            }
            _ => {
                return Err(Outcome::fail(
                    format!(
                        "after cancel the run ended with {}, not agent_cancelled",
                        ending(&run)
                    ),
                    probe.transcript_with_backlog(),
                ));
            }
        }
    }
    Err(Outcome::fail(
        format!(
            "cancel was sent right after run_accepted three times and every run still ran to the end ({}): cancel does not stop runs",
            outcomes.join(", ")
        ),
        probe.transcript_with_backlog(),
    ))
}

async fn one_user_many_sockets(ctx: &mut Ctx) -> Step<Outcome> {
    // Connect first with the usual refusal handling, then the rest at once.
    let first = ctx.main_probe("4.7").await?;
    let user = ctx.main.clone();
    let ctx_ref: &Ctx = ctx;
    let others = join_all((1..ctx_ref.config.users).map(|_| {
        Probe::connect(
            ctx_ref,
            "4.7",
            &user,
            Credentials::Bearer(user.token.clone()),
        )
    }))
    .await;
    let mut probes = vec![first];
    for result in others {
        match result {
            Ok(probe) => probes.push(probe),
            Err(err) => {
                return Err(Outcome::fail(
                    format!(
                        "one user's socket {} of {} could not connect: {err}",
                        probes.len() + 1,
                        ctx_ref.config.users
                    ),
                    Vec::new(),
                ));
            }
        }
    }
    let results = join_all(probes.iter_mut().map(|probe| async move {
        let outcome = probe.ask("data", DATA_QUESTION, Map::new()).await;
        (outcome, probe.drain(ctx_ref.config.linger).await)
    }))
    .await;
    let mut problems = Vec::new();
    for (index, (outcome, _)) in results.iter().enumerate() {
        match outcome {
            Ok((_, run)) if run.terminal_type() == Some("agent_completed") => {}
            Ok((started, run)) => problems.push(format!(
                "socket {}: run {} ended with {}",
                index + 1,
                started.run_id,
                ending(run)
            )),
            Err(err) => problems.push(format!("socket {}: {err}", index + 1)),
        }
    }
    let leaks: Vec<_> = ctx_ref
        .shared
        .leaks()
        .into_iter()
        .filter(|(case, _, _)| *case == "4.7")
        .collect();
    let transcript: Vec<Value> = probes.iter().flat_map(|p| p.transcript.clone()).collect();
    for probe in probes {
        probe.close().await;
    }
    if let Some((_, leak, frame)) = leaks.first() {
        return Err(Outcome::fail(
            format!("{} leak(s) crossed users; first: {leak}", leaks.len()),
            vec![frame.clone()],
        ));
    }
    if !problems.is_empty() {
        return Err(Outcome::fail(problems.join("; "), transcript));
    }
    Ok(Outcome::pass(format!(
        "{} sockets of one user, {} runs completed",
        ctx_ref.config.users, ctx_ref.config.users
    )))
}

// -------------------------------------------------------------------------- recovery (6)

async fn malformed(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("6.1").await?;
    step!(
        probe,
        "sending a frame that is not JSON",
        probe.session.send_text("{not json").await
    );
    let timeout = ctx.config.first_event_timeout;
    let error = step!(
        probe,
        "waiting for the error that refuses malformed JSON",
        probe.until(timeout, |f| kind(f) == "error").await
    );
    ensure!(
        probe,
        field(&error, "error_code") == "INVALID_MESSAGE",
        "malformed JSON got error {}, not INVALID_MESSAGE",
        field(&error, "error_code")
    );
    let (started, run) = step!(
        probe,
        "a good request after malformed JSON on the same socket",
        probe.ask("data", DATA_QUESTION, Map::new()).await
    );
    ensure!(
        probe,
        run.terminal_type() == Some("agent_completed"),
        "the good request after malformed JSON (run {}) ended with {}",
        started.run_id,
        ending(&run)
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

async fn unknown_type(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("6.2").await?;
    let request_id = id("unknown-type");
    step!(
        probe,
        "sending a message of an unknown type",
        probe
            .send(&json!({"type": "launch_rockets", "id": request_id}))
            .await
    );
    let reply = step!(
        probe,
        "waiting for the reply",
        probe.reply(&request_id).await
    );
    ensure!(
        probe,
        kind(&reply) == "error" && field(&reply, "error_code") == "UNKNOWN_MESSAGE_TYPE",
        "an unknown message type got {} {}, not error UNKNOWN_MESSAGE_TYPE",
        kind(&reply),
        field(&reply, "error_code")
    );
    let ping_id = id("ping");
    step!(
        probe,
        "sending ping afterwards",
        probe.send(&json!({"type": "ping", "id": ping_id})).await
    );
    let pong = step!(
        probe,
        "waiting for pong afterwards",
        probe.reply(&ping_id).await
    );
    ensure!(
        probe,
        kind(&pong) == "pong",
        "ping afterwards got {}",
        kind(&pong)
    );
    probe.close().await;
    Ok(Outcome::pass(None))
}

/// Files a run assembled from several sockets (resume) for the grammar cases.
fn file_run(ctx: &Ctx, case: &'static str, agent: &str, run_id: &str, events: Vec<Value>) {
    if let Ok(mut runs) = ctx.shared.runs.lock() {
        runs.push(JudgedRun {
            case,
            agent: agent.to_owned(),
            run_id: run_id.to_owned(),
            events,
            connect_ms: None,
            ttfe_ms: None,
            ttc_ms: None,
            quality: None,
        });
    }
}

async fn resume(ctx: &mut Ctx) -> Step<Outcome> {
    let mut first = ctx.main_probe("5.10").await?;
    let started = step!(
        first,
        "starting a supervisor run",
        first
            .start("supervisor", SUPERVISOR_QUESTION, Map::new())
            .await
    );
    let timeout = ctx.config.first_event_timeout;
    let mut seen: Vec<Value> = Vec::new();
    while seen.len() < 3 {
        let event = step!(
            first,
            "reading the run's first events",
            first
                .until(timeout, |f| field(f, "run_id") == started.run_id
                    && grammar::is_run_event_type(kind(f)))
                .await
        );
        let terminal = grammar::is_terminal_type(kind(&event));
        seen.push(event);
        if terminal {
            break;
        }
    }
    let last_seq = seen
        .last()
        .and_then(|e| e.get("seq"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    // Disconnect without a closing handshake, as a network failure would.
    drop(first);

    let user = ctx.main.clone();
    let mut second =
        match Probe::connect(ctx, "5.10", &user, Credentials::Bearer(user.token.clone())).await {
            Ok(probe) => probe,
            Err(err) => return Err(Outcome::fail(format!("reconnecting: {err}"), seen)),
        };
    let resume_id = id("resume");
    step!(
        second,
        "sending resume",
        second
            .send(&json!({"type": "resume", "id": resume_id, "run_id": started.run_id, "after_seq": last_seq}))
            .await
    );
    let rest = step!(
        second,
        "following the resumed run",
        second
            .session
            .collect_run(&started.run_id, ctx.config.completion_timeout)
            .await
    );
    let mut union = seen.clone();
    union.extend(rest.events.iter().cloned());
    for event in &rest.events {
        second.transcript.push(event.clone());
    }
    file_run(ctx, "5.10", "supervisor", &started.run_id, union.clone());
    let seqs: Vec<u64> = union
        .iter()
        .filter_map(|e| e.get("seq").and_then(Value::as_u64))
        .collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    if seqs != expected {
        return Err(Outcome::fail(
            format!(
                "read seq 1..={last_seq} on the first socket, resumed after_seq {last_seq}; the seqs seen are {seqs:?}, not 1..={} without gap or duplicate",
                seqs.len()
            ),
            union,
        ));
    }
    ensure!(
        second,
        rest.terminal_type().is_some(),
        "the resumed run did not reach a terminal event"
    );
    second.close().await;
    Ok(Outcome::pass(format!(
        "{} events before the disconnect, {} after resume",
        seen.len(),
        rest.events.len()
    )))
}

async fn resume_other(ctx: &mut Ctx) -> Step<Outcome> {
    let Some(intruder) = ctx.other_user("intruder", ctx.org()) else {
        return Err(Outcome::skip("needs --secret"));
    };
    let mut owner = ctx.main_probe("6.3").await?;
    let started = step!(
        owner,
        "starting the owner's run",
        owner
            .start("supervisor", SUPERVISOR_QUESTION, Map::new())
            .await
    );
    let mut other = match Probe::connect(
        ctx,
        "6.3",
        &intruder,
        Credentials::Bearer(intruder.token.clone()),
    )
    .await
    {
        Ok(probe) => probe,
        Err(err) => {
            return Err(Outcome::error(format!(
                "connecting as a second user: {err}"
            )));
        }
    };
    for (verb, message) in [
        (
            "resume",
            json!({"type": "resume", "id": "steal-resume", "run_id": started.run_id, "after_seq": 0}),
        ),
        (
            "cancel",
            json!({"type": "cancel", "id": "steal-cancel", "run_id": started.run_id}),
        ),
    ] {
        let request_id = format!("steal-{verb}");
        step!(
            other,
            format!("sending {verb} of another user's run"),
            other.send(&message).await
        );
        let reply = step!(
            other,
            format!("waiting for the reply to {verb}"),
            other.reply(&request_id).await
        );
        ensure!(
            other,
            kind(&reply) == "error" && field(&reply, "error_code") == "RUN_NOT_FOUND",
            "{verb} of another user's run got {} {}, not error RUN_NOT_FOUND",
            kind(&reply),
            field(&reply, "error_code")
        );
    }
    let seen = other.drain(ctx.config.linger * 2).await;
    let stolen: Vec<&Value> = seen
        .iter()
        .filter(|f| field(f, "run_id") == started.run_id)
        .collect();
    ensure!(
        other,
        stolen.is_empty(),
        "after RUN_NOT_FOUND the other user's socket still received {} event(s) of the run",
        stolen.len()
    );
    let run = step!(
        owner,
        "following the owner's run",
        owner.follow(&started).await
    );
    ensure!(
        owner,
        run.terminal_type() == Some("agent_completed"),
        "the owner's run ended with {} after another user tried to cancel it",
        ending(&run)
    );
    other.close().await;
    owner.close().await;
    Ok(Outcome::pass(None))
}

async fn users_isolated(ctx: &mut Ctx) -> Step<Outcome> {
    let org = ctx.org();
    let users: Vec<User> = (0..ctx.config.users)
        .filter_map(|i| ctx.other_user(&format!("u{i}"), org.clone()))
        .collect();
    if users.len() != ctx.config.users {
        return Err(Outcome::skip("needs --secret"));
    }
    let ctx_ref: &Ctx = ctx;
    let connected = join_all(users.iter().map(|user| {
        Probe::connect(
            ctx_ref,
            "6.4",
            user,
            Credentials::Bearer(user.token.clone()),
        )
    }))
    .await;
    let mut probes = Vec::new();
    for (user, result) in users.iter().zip(connected) {
        match result {
            Ok(probe) => probes.push(probe),
            Err(err) => {
                return Err(Outcome::fail(
                    format!("user {} could not connect: {err}", user.identity.user),
                    Vec::new(),
                ));
            }
        }
    }
    let results = join_all(
        probes
            .iter_mut()
            .map(|probe| async move { probe.ask("data", DATA_QUESTION, Map::new()).await }),
    )
    .await;
    // Only once every run is over, read everything else each socket got.
    for probe in &mut probes {
        probe.drain(ctx_ref.config.linger).await;
    }
    let mut problems = Vec::new();
    for (user, result) in users.iter().zip(&results) {
        match result {
            Ok((_, run)) if run.terminal_type() == Some("agent_completed") => {}
            Ok((started, run)) => problems.push(format!(
                "{}: run {} ended with {}",
                user.identity.user,
                started.run_id,
                ending(run)
            )),
            Err(err) => problems.push(format!("{}: {err}", user.identity.user)),
        }
    }
    let leaks: Vec<_> = ctx_ref
        .shared
        .leaks()
        .into_iter()
        .filter(|(case, _, _)| *case == "6.4")
        .collect();
    let transcript: Vec<Value> = probes.iter().flat_map(|p| p.transcript.clone()).collect();
    for probe in probes {
        probe.close().await;
    }
    if let Some((_, leak, _)) = leaks.first() {
        let mut frames: Vec<Value> = Vec::new();
        for (_, _, frame) in &leaks {
            if !frames.contains(frame) {
                frames.push(frame.clone());
            }
        }
        let shown: Vec<Value> = frames.iter().take(5).cloned().collect();
        return Err(Outcome::fail(
            format!(
                "{} leak(s) in {} frame(s) crossed users; first: {leak}",
                leaks.len(),
                frames.len()
            ),
            shown,
        ));
    }
    if !problems.is_empty() {
        return Err(Outcome::fail(problems.join("; "), transcript));
    }
    Ok(Outcome::pass(format!(
        "{} users at once, every run completed, no canary or run_id crossed",
        users.len()
    )))
}

async fn run_events_owner_only(ctx: &mut Ctx) -> Step<Outcome> {
    let Some(other) = ctx.other_user("reader", ctx.org()) else {
        return Err(Outcome::skip("needs --secret"));
    };
    let mut probe = ctx.main_probe("7.3").await?;
    let (started, run) = step!(
        probe,
        "running a data agent run",
        probe.ask("data", DATA_QUESTION, Map::new()).await
    );
    probe.close().await;
    let limit = ctx.config.connect_timeout;
    let path = format!("/api/runs/{}/events", started.run_id);
    let missing_path = format!("/api/runs/run_{}/events", crate::token::random_hex(32));
    let bearer = |token: &str| format!("Bearer {token}");
    let owner_auth = bearer(&ctx.main.token);
    let other_auth = bearer(&other.token);
    let mut transcript = Vec::new();
    let mut fetch = |answer: Result<crate::http::Answer, crate::http::HttpError>, label: &str| {
        match answer {
            Ok(answer) => {
                transcript.push(json!({"request": label, "status": answer.status,
                                       "body": answer.json().unwrap_or_else(|| Value::String(answer.text()))}));
                Ok(answer)
            }
            Err(err) => Err(format!("{label}: {err}")),
        }
    };
    let owner = fetch(
        ctx.http
            .get(&path, &[("Authorization", &owner_auth)], limit)
            .await,
        "GET as the owner",
    );
    let anonymous = fetch(ctx.http.get(&path, &[], limit).await, "GET without a token");
    let foreign = fetch(
        ctx.http
            .get(&path, &[("Authorization", &other_auth)], limit)
            .await,
        "GET as another user",
    );
    let absent = fetch(
        ctx.http
            .get(&missing_path, &[("Authorization", &owner_auth)], limit)
            .await,
        "GET of a run that does not exist",
    );
    let (owner, anonymous, foreign, absent) = match (owner, anonymous, foreign, absent) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (a, b, c, d) => {
            let errors: Vec<String> = [a.err(), b.err(), c.err(), d.err()]
                .into_iter()
                .flatten()
                .collect();
            return Err(Outcome::fail(errors.join("; "), transcript));
        }
    };
    if owner.status == 404
        && absent.status == 404
        && foreign.status == 404
        && anonymous.status == 404
    {
        return Err(Outcome::skip(
            "the deployment does not serve GET /api/runs/{run_id}/events (every request got 404)",
        ));
    }
    let owner_events = owner
        .json()
        .and_then(|b| b.as_array().cloned())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let same_run = owner_events
        .iter()
        .all(|e| field(e, "run_id") == started.run_id);
    if owner.status != 200 || owner_events.len() < run.events.len() || !same_run {
        problems.push(format!(
            "the owner got HTTP {} with {} event(s) of this run; the socket delivered {}",
            owner.status,
            owner_events.len(),
            run.events.len()
        ));
    } else {
        // The persisted events are the run too: the grammar cases judge them.
        file_run(ctx, "7.3", "data", &started.run_id, owner_events);
    }
    if anonymous.status != 401 {
        problems.push(format!(
            "without a token: HTTP {}, not 401",
            anonymous.status
        ));
    }
    if (200..300).contains(&foreign.status) || foreign.text().contains(&started.canary) {
        problems.push(format!(
            "another user got HTTP {} and the run's events",
            foreign.status
        ));
    } else if foreign.status != absent.status {
        problems.push(format!(
            "another user got HTTP {} but a run that does not exist gets HTTP {}: the difference tells that the run exists",
            foreign.status, absent.status
        ));
    }
    if !problems.is_empty() {
        return Err(Outcome::fail(problems.join("; "), transcript));
    }
    Ok(Outcome::pass(None))
}

// ------------------------------------------------------------------------- execution (5)

async fn agent_completes(
    ctx: &mut Ctx,
    case: &'static str,
    agent: &str,
    question: &str,
) -> Step<Outcome> {
    let mut probe = ctx.main_probe(case).await?;
    let (started, run) = step!(
        probe,
        format!("running the {agent} agent"),
        probe.ask(agent, question, Map::new()).await
    );
    ensure!(
        probe,
        run.terminal_type() == Some("agent_completed"),
        "the {agent} run {} ended with {}",
        started.run_id,
        ending(&run)
    );
    let chars = run.response().map_or(0, |r| r.chars().count());
    ensure!(
        probe,
        chars > 0,
        "the {agent} run completed with an empty response"
    );
    probe.close().await;
    Ok(Outcome::pass(format!(
        "{} events, {} agents, a {chars}-character answer",
        run.events.len(),
        run.agents().len()
    )))
}

async fn handoffs(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("5.9").await?;
    let (started, run) = step!(
        probe,
        "running the supervisor",
        probe
            .ask("supervisor", SUPERVISOR_QUESTION, Map::new())
            .await
    );
    let handoffs: Vec<String> = run
        .events
        .iter()
        .filter(|e| kind(e) == "agent_handoff")
        .map(|e| format!("{} -> {}", field(e, "from_agent"), field(e, "to_agent")))
        .collect();
    let agents = run.agents();
    ensure!(
        probe,
        !handoffs.is_empty() && agents.len() >= 2,
        "run {} ({}) shows {} agent_handoff event(s) and events from {} agent(s): {:?}",
        started.run_id,
        ending(&run),
        handoffs.len(),
        agents.len(),
        agents
    );
    probe.close().await;
    Ok(Outcome::pass(format!(
        "{} handoffs ({}), {} agents",
        handoffs.len(),
        handoffs.join(", "),
        agents.len()
    )))
}

async fn performance(ctx: &mut Ctx) -> Step<Outcome> {
    let mut probe = ctx.main_probe("5.13").await?;
    let mut ttfe = Vec::new();
    let mut ttc = Vec::new();
    for index in 0..ctx.config.performance_runs {
        let (started, run) = step!(
            probe,
            format!("run {} of {}", index + 1, ctx.config.performance_runs),
            probe
                .ask("supervisor", SUPERVISOR_QUESTION, Map::new())
                .await
        );
        ensure!(
            probe,
            run.terminal_type() == Some("agent_completed"),
            "run {} of {} ({}) ended with {}",
            index + 1,
            ctx.config.performance_runs,
            started.run_id,
            ending(&run)
        );
        if let (Some(first), Some(last)) = (run.first_event_at, run.completed_at) {
            ttfe.push(first.duration_since(started.sent_at).as_secs_f64() * 1e3);
            ttc.push(last.duration_since(started.sent_at).as_secs_f64() * 1e3);
        }
    }
    probe.close().await;
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(Outcome::pass(format!(
        "{} runs: time to first event mean {:.1} ms (max {:.1}), to completion mean {:.1} ms (max {:.1})",
        ttc.len(),
        mean(&ttfe),
        max(&ttfe),
        mean(&ttc),
        max(&ttc)
    )))
}

// --------------------------------------------------------------------------- quality (5)

async fn quality_case(ctx: &mut Ctx, case: &'static str, scenario: Scenario) -> Step<Outcome> {
    let mut probe = ctx.main_probe(case).await?;
    let (started, run) = step!(
        probe,
        format!("asking the {} question", scenario.name()),
        probe
            .ask("supervisor", scenario.question(), Map::new())
            .await
    );
    let quality = quality::score(scenario, &run.events);
    probe.file_quality(&started.run_id, quality.score, scenario.name());
    let minimum = ctx.config.min_quality(scenario);
    ensure!(
        probe,
        run.terminal_type() == Some("agent_completed"),
        "run {} ended with {}: there is no answer to score (quality 0)",
        started.run_id,
        ending(&run)
    );
    let explained = format!(
        "quality {:.2} (minimum {minimum:.2}): {}",
        quality.score,
        quality.explain()
    );
    if quality.score < minimum {
        return Err(Outcome::fail(explained, run.events));
    }
    probe.close().await;
    Ok(Outcome::pass(explained))
}

async fn truth_setup(ctx: &mut Ctx) -> TruthSetup {
    let tenant = format!("check-gt-{}", ctx.run_tag);
    let Some(user) = ctx.other_user("gt", Some(tenant.clone())) else {
        return TruthSetup::Skip("needs --secret: ground truth uploads its data set into a fresh tenant, which only a minted token can name".to_owned());
    };
    let seed = u64::from_str_radix(&ctx.run_tag, 16).unwrap_or(1);
    let data = truth::generate(chrono::Utc::now(), seed);
    let auth = format!("Bearer {}", user.token);
    let answer = ctx
        .http
        .request(
            "POST",
            "/api/usage",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "text/csv"),
            ],
            data.csv.clone().into_bytes(),
            ctx.config.completion_timeout,
        )
        .await;
    match answer {
        Ok(answer) if (200..300).contains(&answer.status) => TruthSetup::Ready {
            user,
            truth: Box::new(data),
        },
        Ok(answer) if answer.status == 404 || answer.status == 405 => TruthSetup::Skip(format!(
            "the deployment does not accept POST /api/usage (HTTP {}); ground truth needs it to load its data set",
            answer.status
        )),
        Ok(answer) => TruthSetup::Fail(format!(
            "uploading the ground-truth data set ({} rows) into tenant {tenant} was refused: HTTP {}: {}",
            data.rows,
            answer.status,
            answer.text().chars().take(400).collect::<String>()
        )),
        Err(err) => TruthSetup::Fail(format!("uploading the ground-truth data set: {err}")),
    }
}

async fn truth_case(ctx: &mut Ctx, case: &'static str) -> Step<Outcome> {
    if ctx.truth.is_none() {
        let setup = truth_setup(ctx).await;
        ctx.truth = Some(setup);
    }
    let (user, data) = match &ctx.truth {
        Some(TruthSetup::Ready { user, truth }) => (user.clone(), truth.clone()),
        Some(TruthSetup::Skip(reason)) => return Err(Outcome::skip(reason.clone())),
        Some(TruthSetup::Fail(reason)) => return Err(Outcome::error(reason.clone())),
        None => return Err(Outcome::error("ground truth was not set up")),
    };
    let mut probe =
        match Probe::connect(ctx, case, &user, Credentials::Bearer(user.token.clone())).await {
            Ok(probe) => probe,
            Err(err) => {
                return Err(Outcome::error(format!(
                    "connecting as the ground-truth user: {err}"
                )));
            }
        };
    let (question, scenario) = if case == "5.17" {
        (
            "Did our AI spend spike on any day in the last 30 days? Name the day and what drove it.",
            Scenario::AnomalyDetection,
        )
    } else {
        (
            "How can we reduce our AI costs? Give each recommendation with its monthly savings.",
            Scenario::CostOptimization,
        )
    };
    let (started, run) = step!(
        probe,
        "asking about the uploaded data",
        probe.ask("supervisor", question, Map::new()).await
    );
    let quality = quality::score(scenario, &run.events);
    probe.file_quality(&started.run_id, quality.score, "ground_truth");
    ensure!(
        probe,
        run.terminal_type() == Some("agent_completed"),
        "run {} on the uploaded data ended with {}",
        started.run_id,
        ending(&run)
    );
    let answer = run.response().unwrap_or_default();
    let verdict = if case == "5.17" {
        truth::check_spike_day(answer, &data)
    } else {
        truth::check_routing_saving(answer, &data)
    };
    // Our server's structured report, when present, is extra evidence in the note only.
    let report_note = run
        .events
        .iter()
        .find(|e| kind(e) == "agent_completed")
        .and_then(|e| e.get("report"))
        .map(|report| {
            if case == "5.17" {
                report
                    .get("anomalies")
                    .and_then(Value::as_array)
                    .and_then(|a| a.first())
                    .map(|a| {
                        format!(
                            "; report.anomalies[0] starts {}",
                            a.get("start").unwrap_or(&Value::Null)
                        )
                    })
                    .unwrap_or_default()
            } else {
                report
                    .get("total_monthly_savings_usd")
                    .and_then(Value::as_f64)
                    .map(|s| format!("; report.total_monthly_savings_usd {s:.2}"))
                    .unwrap_or_default()
            }
        })
        .unwrap_or_default();
    match verdict {
        Ok(note) => {
            probe.close().await;
            Ok(Outcome::pass(format!("{note}{report_note}")))
        }
        Err(reason) => Err(Outcome::fail(format!("{reason}{report_note}"), run.events)),
    }
}

// --------------------------------------------------------------------- grammar (3 and 5)

fn grammar_rule(ctx: &mut Ctx, rule: &'static str) -> Step<Outcome> {
    let runs = ctx.shared.runs();
    let frame_problems: Vec<_> = ctx
        .shared
        .frame_violations
        .lock()
        .map(|v| {
            v.iter()
                .filter(|(_, v, _)| v.rule == rule)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let frames_count = ctx
        .shared
        .frame_violations
        .lock()
        .map(|v| v.len())
        .unwrap_or(0);
    if runs.is_empty() && frames_count == 0 && ctx.connection.is_none() {
        return Err(Outcome::error(
            "nothing to judge: no run was collected (every case that runs agents failed, errored or was skipped)",
        ));
    }
    let mut found: Vec<(String, &JudgedRun)> = Vec::new();
    for run in &runs {
        for violation in grammar::check_run(&run.events) {
            if violation.rule == rule {
                found.push((
                    format!("case {} run {}: {violation}", run.case, run.run_id),
                    run,
                ));
            }
        }
    }
    let total = found.len() + frame_problems.len();
    ctx.shared.with_metrics(|m| {
        m.observe("grammar_violations", &crate::metrics::Tags::new());
        m.add(
            "grammar_violations",
            total as f64,
            &crate::metrics::tags(&[("rule", rule)]),
        );
    });
    if total == 0 {
        return Ok(Outcome::pass(format!("{} run(s) judged", runs.len())));
    }
    let mut lines: Vec<String> = found.iter().take(5).map(|(line, _)| line.clone()).collect();
    lines.extend(
        frame_problems
            .iter()
            .take(5usize.saturating_sub(lines.len()))
            .map(|(case, v, _)| format!("case {case}: {v}")),
    );
    let transcript = match found.first() {
        Some((_, run)) => run.events.clone(),
        None => frame_problems
            .iter()
            .take(5)
            .map(|(_, _, f)| f.clone())
            .collect(),
    };
    Err(Outcome::fail(
        format!(
            "{total} violation(s) in {} run(s) judged; {}",
            runs.len(),
            lines.join("; ")
        ),
        transcript,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_name_the_error() {
        let run = RunTranscript {
            run_id: "r".into(),
            events: vec![
                json!({"type": "agent_error", "error_code": "NO_DATA", "message": "load data"}),
            ],
            received_at: Vec::new(),
            first_event_at: None,
            completed_at: None,
        };
        assert_eq!(ending(&run), "agent_error NO_DATA: load data");
    }
}
