//! Connectivity (sections 1 and 7): health endpoints, the WebSocket upgrade and its
//! `connection_established`, ping, subprotocol selection, binary frames.
//!
//! What it must not do: start runs; these cases judge the transport alone.

use super::common::{expect_pong, expect_refusal, field};
use crate::client::Credentials;
use crate::suite::context::Ctx;
use crate::suite::outcome::{OrOutcome, Outcome, could_not, ensure};
use crate::suite::probe::OrFail as _;
use crate::suite::probe::Probe;
use serde_json::{Value, json};

/// GETs `path` and fails unless it answers 200; the exchange goes into `transcript`.
async fn get_ok(ctx: &Ctx, path: &str, transcript: &mut Vec<Value>) -> OrOutcome<Option<Value>> {
    let answer = ctx
        .target
        .http
        .get(path, &[], ctx.config.connect_timeout)
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
            transcript.clone(),
        ));
    }
    Ok(body)
}

pub(crate) async fn health(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut transcript = Vec::new();
    let mut note = String::new();
    for path in ["/health", "/api/health"] {
        let body = get_ok(ctx, path, &mut transcript).await?;
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

pub(crate) async fn live_ready(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut transcript = Vec::new();
    for path in ["/health/live", "/health/ready"] {
        get_ok(ctx, path, &mut transcript).await?;
    }
    Ok(Outcome::pass(None))
}

pub(crate) async fn connect(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
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

pub(crate) async fn ping(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    expect_pong(&mut probe, "a ping").await?;
    probe.close().await;
    Ok(Outcome::pass(None))
}

pub(crate) async fn subprotocol(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut offered = ctx.main_probe().await?;
    let selected = offered.session.selected_subprotocol().map(str::to_owned);
    ensure!(
        offered,
        selected.as_deref() == Some(agentwire_protocol::SUBPROTOCOL),
        "agentwire.v1 was offered beside a Bearer token but the server selected {selected:?}"
    );
    offered.close().await;

    let user = ctx.main.clone();
    let mut with_jwt = Probe::connect(ctx, &user, Credentials::Subprotocol(user.token.clone()))
        .await
        .map_err(could_not(
            "connecting with agentwire.v1 and a jwt.* item failed",
        ))?;
    let selected = with_jwt.session.selected_subprotocol().map(str::to_owned);
    ensure!(
        with_jwt,
        selected.as_deref() == Some(agentwire_protocol::SUBPROTOCOL),
        "agentwire.v1 and a jwt.* item were offered; the server selected {selected:?} (it must select agentwire.v1 and never echo the jwt.* item)"
    );
    with_jwt.close().await;

    let mut options = ctx.options(Credentials::Bearer(user.token.clone()));
    options.offer_subprotocol = false;
    let mut plain = Probe::connect_with(ctx, &user.identity.user, options)
        .await
        .map_err(could_not(
            "connecting without offering a subprotocol failed",
        ))?;
    let selected = plain.session.selected_subprotocol().map(str::to_owned);
    ensure!(
        plain,
        selected.is_none(),
        "no subprotocol was offered but the server selected {selected:?}"
    );
    plain.close().await;
    Ok(Outcome::pass(None))
}

pub(crate) async fn binary_refused(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let mut probe = ctx.main_probe().await?;
    probe
        .session
        .send_binary(b"\x00\x01binary".to_vec())
        .await
        .or_fail(&mut probe, "sending a binary frame")?;
    expect_refusal(&mut probe, "INVALID_MESSAGE", "a binary frame").await?;
    expect_pong(&mut probe, "a ping after a binary frame").await?;
    probe.close().await;
    Ok(Outcome::pass(None))
}
