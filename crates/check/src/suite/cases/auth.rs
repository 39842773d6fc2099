//! Authentication (section 2): the three ways of presenting a token, what an unauthenticated
//! socket may do, and the refusal of forged, expired and unsigned tokens at the upgrade.
//!
//! What it must not do: treat a refusal it did not see as a pass. A bad token must be refused
//! with HTTP 401 and `AUTH_FAILED` at the upgrade; anything else is a failure naming what came.

use super::common::{SUPERVISOR_QUESTION, expect_error, expect_pong, field, id, kind};
use crate::client::{ClientError, Credentials};
use crate::suite::context::Ctx;
use crate::suite::outcome::{OrOutcome, Outcome, could_not, ensure};
use crate::suite::probe::OrFail as _;
use crate::suite::probe::Probe;
use serde_json::{Value, json};

/// Where a valid token is presented.
#[derive(Clone, Copy)]
pub(crate) enum Presented {
    /// A `jwt.<token>` subprotocol item.
    Subprotocol,
    /// An `authenticate` frame first on a socket opened without credentials.
    FirstFrame,
}

/// The suite's valid token, presented another way, authenticates a socket that then serves.
pub(crate) async fn good_token(ctx: &mut Ctx, presented: Presented) -> OrOutcome<Outcome> {
    let user = ctx.main.clone();
    let (credentials, form) = match presented {
        Presented::Subprotocol => (
            Credentials::Subprotocol(user.token.clone()),
            "a jwt.<token> subprotocol item",
        ),
        Presented::FirstFrame => (
            Credentials::FirstFrame(user.token.clone()),
            "a first-frame authenticate",
        ),
    };
    let mut probe = Probe::connect(ctx, &user, credentials)
        .await
        .map_err(could_not(&format!(
            "the suite's valid token in {form} was not accepted"
        )))?;
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

pub(crate) async fn auth_required(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let user = ctx.main.clone();
    let mut probe = Probe::connect(ctx, &user, Credentials::None)
        .await
        .map_err(could_not(
            "an upgrade without credentials must succeed, but",
        ))?;
    expect_pong(&mut probe, "a ping before authenticating").await?;

    // No agent_type: the refusal must come from the missing authentication alone.
    let canary = probe.canary();
    let start = json!({"type": "start_agent", "id": id("unauth"),
                       "payload": {"user_request": format!("{SUPERVISOR_QUESTION} [ref {canary}]")}});
    expect_error(
        &mut probe,
        &start,
        "AUTH_REQUIRED",
        "start_agent before authenticating",
    )
    .await?;

    probe
        .send(&json!({"type": "authenticate", "token": user.token}))
        .await
        .or_fail(&mut probe, "sending authenticate")?;
    let timeout = ctx.config.connect_timeout;
    let established = probe
        .until(timeout, |f| {
            matches!(kind(f), "connection_established" | "error")
        })
        .await
        .or_fail(
            &mut probe,
            "waiting for connection_established after authenticate",
        )?;
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

/// A token the deployment must refuse.
#[derive(Clone, Copy)]
pub(crate) enum BadToken {
    Forged,
    Expired,
    AlgNone,
}

pub(crate) async fn bad_token(ctx: &mut Ctx, which: BadToken) -> OrOutcome<Outcome> {
    let what = match which {
        BadToken::Forged => "a token signed with a wrong secret",
        BadToken::Expired => "a token that expired two hours ago",
        BadToken::AlgNone => "an unsigned alg:none token",
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
    match Probe::connect_with(ctx, &user, ctx.options(Credentials::Bearer(token))).await {
        Ok(mut probe) => {
            let transcript = probe.transcript_with_backlog();
            probe.close().await;
            Err(Outcome::fail(
                format!("{what} was accepted: the server sent connection_established"),
                transcript,
            ))
        }
        Err(ClientError::Http { status: 401, body }) => judge_refusal(what, &body),
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

/// A 401 refusal must say `AUTH_FAILED` with a message.
fn judge_refusal(what: &str, body: &str) -> OrOutcome<Outcome> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let text = |name: &str| {
        parsed
            .as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
    };
    let transcript = vec![
        json!({"status": 401, "body": parsed.clone().unwrap_or_else(|| Value::String(body.to_owned()))}),
    ];
    let code = text("error_code").unwrap_or("");
    if code != "AUTH_FAILED" {
        return Err(Outcome::fail(
            format!(
                "{what} was refused with 401 but the body's error_code is {code:?}, not AUTH_FAILED"
            ),
            transcript,
        ));
    }
    if text("message").is_none_or(str::is_empty) {
        return Err(Outcome::fail(
            format!("{what} was refused with 401 AUTH_FAILED but without a message"),
            transcript,
        ));
    }
    Ok(Outcome::pass(None))
}
