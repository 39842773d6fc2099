//! Isolation (sections 4.7, 6.3, 6.4, 7.3): one user on several sockets, several users at once,
//! another user's run touched by id, and run events read back over HTTP.
//!
//! Every frame any probe reads is scanned for other users' canaries and run ids (see
//! [`crate::isolation`]); these cases make the traffic that would carry a leak and then read what
//! the scan found for them.
//!
//! What it must not do: stop reading before the runs are over. Leaks show up late; every socket
//! is drained after every run has ended, before the leaks are counted.

use super::common::{data_run, expect_error, field, supervisor_run};
use crate::client::Credentials;
use crate::http::{Answer, HttpError};
use crate::suite::context::{Ctx, JudgedRun, User};
use crate::suite::outcome::{OrOutcome, Outcome, ensure};
use crate::suite::probe::OrFail as _;
use crate::suite::probe::Probe;
use futures_util::future::join_all;
use serde_json::{Value, json};

pub(crate) async fn one_user_many_sockets(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    // Connect first with the usual refusal handling, then the rest at once.
    let first = ctx.main_probe().await?;
    let users = vec![ctx.main.clone(); ctx.config.users];
    let labels: Vec<String> = (1..=users.len()).map(|i| format!("socket {i}")).collect();
    all_at_once(ctx, Some(first), &users, &labels).await?;
    Ok(Outcome::pass(format!(
        "{} sockets of one user, {} runs completed",
        users.len(),
        users.len()
    )))
}

pub(crate) async fn users_isolated(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let org = ctx.org();
    let users: Vec<User> = (0..ctx.config.users)
        .filter_map(|i| ctx.other_user(&format!("u{i}"), org.clone()))
        .collect();
    if users.len() != ctx.config.users {
        return Err(Outcome::skip("needs --secret"));
    }
    let labels: Vec<String> = users.iter().map(|u| u.identity.user.clone()).collect();
    all_at_once(ctx, None, &users, &labels).await?;
    Ok(Outcome::pass(format!(
        "{} users at once, every run completed, no canary or run_id crossed",
        users.len()
    )))
}

/// One probe per user (the first may be given, already connected), one data run on each, all at
/// once; then every socket is drained. The leaks this case saw fail it, and so does any run that
/// did not complete (named by `labels`).
async fn all_at_once(
    ctx: &Ctx,
    first: Option<Probe>,
    users: &[User],
    labels: &[String],
) -> OrOutcome<()> {
    let given = usize::from(first.is_some());
    let connected = join_all(
        users[given..]
            .iter()
            .map(|user| Probe::connect(ctx, user, Credentials::Bearer(user.token.clone()))),
    )
    .await;
    let mut probes: Vec<Probe> = first.into_iter().collect();
    for (label, result) in labels[given..].iter().zip(connected) {
        match result {
            Ok(probe) => probes.push(probe),
            Err(err) => {
                return Err(Outcome::fail(
                    format!("{label} of {} could not connect: {err}", users.len()),
                    Vec::new(),
                ));
            }
        }
    }
    let request = data_run();
    let results = join_all(probes.iter_mut().map(|probe| probe.ask(&request))).await;
    // Only once every run is over, read everything else each socket got.
    join_all(
        probes
            .iter_mut()
            .map(|probe| probe.drain(ctx.config.linger)),
    )
    .await;
    let mut lines = Vec::new();
    for (label, result) in labels.iter().zip(&results) {
        match result {
            Ok(collected) if collected.completed() => {}
            Ok(collected) => lines.push(format!(
                "{label}: run {} ended with {}",
                collected.run_id(),
                collected.ending()
            )),
            Err(err) => lines.push(format!("{label}: {err}")),
        }
    }
    let transcript: Vec<Value> = probes.iter().flat_map(|p| p.transcript.clone()).collect();
    for probe in probes {
        probe.close().await;
    }
    leaks_fail(ctx)?;
    if !lines.is_empty() {
        return Err(Outcome::fail(lines.join("; "), transcript));
    }
    Ok(())
}

/// Fails the case when any of its probes saw another user's data: how many leaks in how many
/// frames, the first described, and up to five of the frames.
fn leaks_fail(ctx: &Ctx) -> OrOutcome<()> {
    let leaks = ctx.shared.leaks_of(ctx.case);
    let Some((first, _)) = leaks.first() else {
        return Ok(());
    };
    let mut frames: Vec<Value> = Vec::new();
    for (_, frame) in &leaks {
        if !frames.contains(frame) {
            frames.push(frame.clone());
        }
    }
    Err(Outcome::fail(
        format!(
            "{} leak(s) in {} frame(s) crossed users; first: {first}",
            leaks.len(),
            frames.len()
        ),
        frames.into_iter().take(5).collect(),
    ))
}

pub(crate) async fn resume_other(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let Some(intruder) = ctx.other_user("intruder", ctx.org()) else {
        return Err(Outcome::skip("needs --secret"));
    };
    let mut owner = ctx.main_probe().await?;
    let started = owner
        .start(&supervisor_run())
        .await
        .or_fail(&mut owner, "starting the owner's run")?;
    let run_id = started.run_id.clone();
    let mut other = Probe::connect(ctx, &intruder, Credentials::Bearer(intruder.token.clone()))
        .await
        .map_err(|err| Outcome::error(format!("connecting as a second user: {err}")))?;
    for (verb, message) in [
        (
            "resume",
            json!({"type": "resume", "id": "steal-resume", "run_id": run_id, "after_seq": 0}),
        ),
        (
            "cancel",
            json!({"type": "cancel", "id": "steal-cancel", "run_id": run_id}),
        ),
    ] {
        let what = format!("{verb} of another user's run");
        expect_error(&mut other, &message, "RUN_NOT_FOUND", &what).await?;
    }
    let seen = other.drain(ctx.config.linger * 2).await;
    let stolen = seen.iter().filter(|f| field(f, "run_id") == run_id).count();
    ensure!(
        other,
        stolen == 0,
        "after RUN_NOT_FOUND the other user's socket still received {stolen} event(s) of the run"
    );
    let collected = owner
        .follow(started)
        .await
        .or_fail(&mut owner, "following the owner's run")?;
    owner.require_completed(
        &collected,
        "after another user's resume and cancel, the owner's run",
    )?;
    other.close().await;
    owner.close().await;
    Ok(Outcome::pass(None))
}

pub(crate) async fn run_events_owner_only(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    let Some(other) = ctx.other_user("reader", ctx.org()) else {
        return Err(Outcome::skip("needs --secret"));
    };
    let mut probe = ctx.main_probe().await?;
    let collected = probe
        .run_to_end(&data_run(), "running a data agent run")
        .await?;
    probe.close().await;
    let run_id = collected.run_id();
    let path = format!("/api/runs/{run_id}/events");
    let missing_path = format!("/api/runs/run_{}/events", crate::token::random_hex(32));
    let owner_auth = format!("Bearer {}", ctx.main.token);
    let other_auth = format!("Bearer {}", other.token);
    let mut transcript = Vec::new();
    let mut fetch = |answer: Result<Answer, HttpError>, label: &str| match answer {
        Ok(answer) => {
            transcript.push(json!({"request": label, "status": answer.status,
                                   "body": answer.json().unwrap_or_else(|| Value::String(answer.text()))}));
            Ok(answer)
        }
        Err(err) => Err(format!("{label}: {err}")),
    };
    let http = &ctx.target.http;
    let limit = ctx.config.connect_timeout;
    let owner = fetch(
        http.get(&path, &[("Authorization", &owner_auth)], limit)
            .await,
        "GET as the owner",
    );
    let anonymous = fetch(http.get(&path, &[], limit).await, "GET without a token");
    let foreign = fetch(
        http.get(&path, &[("Authorization", &other_auth)], limit)
            .await,
        "GET as another user",
    );
    let absent = fetch(
        http.get(&missing_path, &[("Authorization", &owner_auth)], limit)
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
    if [&owner, &anonymous, &foreign, &absent]
        .iter()
        .all(|answer| answer.status == 404)
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
    let same_run = owner_events.iter().all(|e| field(e, "run_id") == run_id);
    if owner.status != 200 || owner_events.len() < collected.run.events.len() || !same_run {
        problems.push(format!(
            "the owner got HTTP {} with {} event(s) of this run; the socket delivered {}",
            owner.status,
            owner_events.len(),
            collected.run.events.len()
        ));
    } else {
        // The persisted events are the run too: the grammar cases judge them.
        ctx.shared
            .file_run(JudgedRun::assembled(ctx.case, "data", run_id, owner_events));
    }
    if anonymous.status != 401 {
        problems.push(format!(
            "without a token: HTTP {}, not 401",
            anonymous.status
        ));
    }
    if (200..300).contains(&foreign.status) || foreign.text().contains(&collected.started.canary) {
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
