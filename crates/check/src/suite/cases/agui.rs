//! AG-UI (PROTOCOL.md section 7): a run over `POST /api/agui` judged as an AG-UI client sees it,
//! resume by `Last-Event-ID`, and the refusals.
//!
//! A deployment without `/api/agui` (`POST /api/agui` without a token answers 404 or 405) has these
//! cases skipped, saying so. The run is asked once per suite run and kept in the context, so the
//! resume and refusal cases judge the same run as the stream case.
//!
//! What a case must not do: accept a stream that did not end (a body cut short is a failure), or
//! compare resumed events by meaning when the rule is their bytes.

use super::common::SUPERVISOR_QUESTION;
use crate::agui::{SseEvent, parse_event_id, run_input, verify};
use crate::http::{Answer, HttpError};
use crate::suite::context::{AguiRun, Ctx};
use crate::suite::outcome::{OrOutcome, Outcome};
use crate::token::random_hex;
use serde_json::{Value, json};
use std::time::Instant;

impl AguiRun {
    fn json(&self) -> Vec<Value> {
        self.events
            .iter()
            .map(|e| e.json().unwrap_or(Value::Null))
            .collect()
    }

    fn transcript(&self) -> Vec<Value> {
        self.events.iter().map(shown).collect()
    }
}

/// An event as a failure shows it: its id and data.
fn shown(event: &SseEvent) -> Value {
    json!({"id": event.id, "data": event.json().unwrap_or_else(|| Value::String(event.data.clone()))})
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Skips the case unless the target serves `POST /api/agui`.
async fn offered(ctx: &Ctx) -> OrOutcome<()> {
    let answer = ctx
        .target
        .http
        .request(
            "POST",
            "/api/agui",
            &[("Content-Type", "application/json")],
            b"{}".to_vec(),
            ctx.config.connect_timeout,
        )
        .await
        .map_err(|err| Outcome::fail(format!("POST /api/agui: {err}"), Vec::new()))?;
    if answer.status == 404 || answer.status == 405 {
        return Err(Outcome::skip(format!(
            "the target has no /api/agui (POST /api/agui answered {})",
            answer.status
        )));
    }
    Ok(())
}

/// The suite's AG-UI run: asked once (a supervisor question as the main user), read to its end.
async fn the_run(ctx: &mut Ctx) -> OrOutcome<AguiRun> {
    if let Some(run) = &ctx.agui {
        return Ok(run.clone());
    }
    let thread_id = format!("check-agui-{}", random_hex(12));
    let body = run_input(
        &thread_id,
        &format!("check-{}", random_hex(8)),
        SUPERVISOR_QUESTION,
    );
    let auth = bearer(&ctx.main.token);
    let failed = |what: &str, err: HttpError| Outcome::fail(format!("{what}: {err}"), Vec::new());
    let started = Instant::now();
    let mut stream = ctx
        .target
        .http
        .open_stream(
            "POST",
            "/api/agui",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("Accept", "text/event-stream"),
            ],
            body.to_string().into_bytes(),
            ctx.config.connect_timeout,
        )
        .await
        .map_err(|err| failed("POST /api/agui", err))?;
    if stream.status != 200 {
        let status = stream.status;
        let answer = stream
            .into_answer(ctx.config.connect_timeout)
            .await
            .map_err(|err| failed("reading the refusal", err))?;
        return Err(Outcome::fail(
            format!("POST /api/agui with a RunAgentInput answered {status}, not 200"),
            vec![answer_json(&answer)],
        ));
    }
    let content_type = stream.header("content-type").unwrap_or("").to_owned();
    if !content_type.starts_with("text/event-stream") {
        return Err(Outcome::fail(
            format!("POST /api/agui answered Content-Type {content_type:?}, not text/event-stream"),
            Vec::new(),
        ));
    }
    let first = stream
        .next_event(ctx.config.first_event_timeout)
        .await
        .map_err(|err| failed("waiting for the first AG-UI event", err))?
        .ok_or_else(|| Outcome::fail("the stream ended without an event", Vec::new()))?;
    let ttfe_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut events = vec![first];
    let rest = stream.rest(ctx.config.completion_timeout).await;
    let ttc_ms = started.elapsed().as_secs_f64() * 1000.0;
    match rest {
        Ok(rest) => events.extend(rest),
        Err(err) => {
            let shown = events.iter().map(shown).collect();
            return Err(Outcome::fail(
                format!("reading the AG-UI stream to its end: {err}"),
                shown,
            ));
        }
    }
    let run_id = events[0]
        .json()
        .and_then(|e| e.get("runId").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let run = AguiRun {
        thread_id,
        run_id,
        events,
        ttfe_ms,
        ttc_ms,
    };
    ctx.agui = Some(run.clone());
    Ok(run)
}

fn answer_json(answer: &Answer) -> Value {
    json!({"status": answer.status,
           "body": answer.json().unwrap_or_else(|| Value::String(answer.text()))})
}

/// 7.5: the stream of a run, judged as an AG-UI client judges it.
pub(crate) async fn stream(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    offered(ctx).await?;
    let run = the_run(ctx).await?;
    let fail = |reason: String| Err(Outcome::fail(reason, run.transcript()));
    let mut previous: Option<(u64, u64)> = None;
    for (i, event) in run.events.iter().enumerate() {
        let Some(id) = event.id.as_deref() else {
            return fail(format!("event {i} has no `id:`"));
        };
        let Some(parsed) = parse_event_id(id) else {
            return fail(format!(
                "event {i} has id {id:?}, not a seq (`7`) or `seq.n` (`7.2`)"
            ));
        };
        if previous.is_some_and(|p| parsed <= p) {
            return fail(format!(
                "event {i}'s id {id} does not come after the one before"
            ));
        }
        previous = Some(parsed);
        match event.json() {
            Some(Value::Object(obj)) if obj.get("type").is_some_and(Value::is_string) => {}
            _ => {
                return fail(format!(
                    "event {i}'s data is not a JSON object with a string `type`"
                ));
            }
        }
    }
    let events = run.json();
    if let Err(violation) = verify(&events) {
        return fail(format!("the stream breaks AG-UI's rules: {violation}"));
    }
    let started = &events[0];
    if started["threadId"] != run.thread_id.as_str() || run.run_id.is_empty() {
        return fail(format!(
            "RUN_STARTED carries threadId {} and runId {}: the client's thread and a run id are expected",
            started["threadId"], started["runId"]
        ));
    }
    let last = &events[events.len() - 1];
    if last["type"] == "RUN_ERROR" {
        return fail(format!(
            "the run ended with RUN_ERROR {}: {}",
            last["code"], last["message"]
        ));
    }
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    if count("TOOL_CALL_START") == 0 || count("TOOL_CALL_RESULT") < count("TOOL_CALL_START") {
        return fail(format!(
            "a completed run shows its tool calls: {} TOOL_CALL_START, {} TOOL_CALL_RESULT",
            count("TOOL_CALL_START"),
            count("TOOL_CALL_RESULT")
        ));
    }
    if text.trim().is_empty() {
        return fail("the answer is not in the stream: no TEXT_MESSAGE_CONTENT text".into());
    }
    if last.get("result").is_none_or(Value::is_null) {
        return fail("RUN_FINISHED carries no result (the run's report)".into());
    }
    Ok(Outcome::pass(format!(
        "{} events, {} tool calls, {} characters of answer; first event after {:.0} ms, RUN_FINISHED after {:.0} ms",
        events.len(),
        count("TOOL_CALL_START"),
        text.chars().count(),
        run.ttfe_ms,
        run.ttc_ms
    )))
}

/// 7.6: resume by `Last-Event-ID`, compared byte for byte with the first delivery.
pub(crate) async fn resume(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    offered(ctx).await?;
    let run = the_run(ctx).await?;
    if run.events.len() < 3 || run.run_id.is_empty() {
        return Err(Outcome::fail(
            format!(
                "the run's stream is too short to resume from its middle ({} events)",
                run.events.len()
            ),
            run.transcript(),
        ));
    }
    let middle = run.events.len() / 2;
    let mut cuts = vec![None, Some(middle), Some(run.events.len() - 1)];
    // An id of the second or later event of one run event, where there is one.
    if let Some(part) = run
        .events
        .iter()
        .position(|e| e.id.as_deref().is_some_and(|id| id.contains('.')))
    {
        cuts.push(Some(part));
    }
    let path = format!("/api/agui/runs/{}/events", run.run_id);
    let auth = bearer(&ctx.main.token);
    for cut in cuts {
        let last_seen = cut.and_then(|i| run.events[i].id.clone());
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(id) = &last_seen {
            headers.push(("Last-Event-ID", id.as_str()));
        }
        let label = match &last_seen {
            Some(id) => format!("GET {path} with Last-Event-ID: {id}"),
            None => format!("GET {path} without Last-Event-ID"),
        };
        let failed = |err: HttpError| Outcome::fail(format!("{label}: {err}"), Vec::new());
        let mut stream = ctx
            .target
            .http
            .open_stream(
                "GET",
                &path,
                &headers,
                Vec::new(),
                ctx.config.connect_timeout,
            )
            .await
            .map_err(failed)?;
        if stream.status != 200 {
            let status = stream.status;
            let answer = stream
                .into_answer(ctx.config.connect_timeout)
                .await
                .map_err(failed)?;
            return Err(Outcome::fail(
                format!("{label} answered {status}, not 200"),
                vec![answer_json(&answer)],
            ));
        }
        let resumed = stream
            .rest(ctx.config.completion_timeout)
            .await
            .map_err(failed)?;
        let expected = &run.events[cut.map_or(0, |i| i + 1)..];
        if let Some(differs) = first_difference(expected, &resumed) {
            let mut transcript = vec![json!({"request": label})];
            transcript.extend(resumed.iter().take(8).map(shown));
            return Err(Outcome::fail(format!("{label}: {differs}"), transcript));
        }
    }
    Ok(Outcome::pass(format!(
        "resumed from the start, the middle and the end of a {}-event stream, byte for byte",
        run.events.len()
    )))
}

/// Where a resumed stream departs from the first delivery, if it does.
fn first_difference(expected: &[SseEvent], got: &[SseEvent]) -> Option<String> {
    for (i, (want, have)) in expected.iter().zip(got).enumerate() {
        if want.raw != have.raw {
            return Some(format!(
                "resumed event {i} (id {:?}) differs from the first delivery (id {:?}): {:?} instead of {:?}",
                have.id,
                want.id,
                String::from_utf8_lossy(&have.raw[..have.raw.len().min(160)]),
                String::from_utf8_lossy(&want.raw[..want.raw.len().min(160)]),
            ));
        }
    }
    (expected.len() != got.len()).then(|| {
        format!(
            "{} events came; the first delivery had {} after that point",
            got.len(),
            expected.len()
        )
    })
}

/// One refusal the contract names: what is sent, and the status and code it must get.
struct Refusal<'a> {
    what: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, &'a str)>,
    body: Vec<u8>,
    status: u16,
    codes: &'static [&'static str],
}

/// 7.7: the refusals: no or bad token, a body that is not a `RunAgentInput`, an unknown agent,
/// an unknown run and another user's run (the same answer).
pub(crate) async fn refusals(ctx: &mut Ctx) -> OrOutcome<Outcome> {
    offered(ctx).await?;
    let run = the_run(ctx).await?;
    let auth = bearer(&ctx.main.token);
    let forged = crate::token::claims_of(&ctx.main.token)
        .map(|claims| bearer(&crate::token::forged(&claims)))
        .map_err(|err| Outcome::error(format!("reading the suite's own token: {err}")))?;
    let question = run_input("check-agui-refusals", "check-refusal", SUPERVISOR_QUESTION)
        .to_string()
        .into_bytes();
    let json_type = ("Content-Type", "application/json");
    let unknown_run = format!("run_{}", random_hex(32));
    let refusals = [
        Refusal {
            what: "a run without a token",
            method: "POST",
            path: "/api/agui".into(),
            headers: vec![json_type],
            body: question.clone(),
            status: 401,
            codes: &["AUTH_REQUIRED", "AUTH_FAILED"],
        },
        Refusal {
            what: "a run with a forged token",
            method: "POST",
            path: "/api/agui".into(),
            headers: vec![json_type, ("Authorization", &forged)],
            body: question.clone(),
            status: 401,
            codes: &["AUTH_FAILED"],
        },
        Refusal {
            what: "a body that is not a RunAgentInput",
            method: "POST",
            path: "/api/agui".into(),
            headers: vec![json_type, ("Authorization", &auth)],
            body: br#"{"threadId": 5, "messages": "none"}"#.to_vec(),
            status: 400,
            codes: &["INVALID_MESSAGE"],
        },
        Refusal {
            what: "a run of an agent that does not exist",
            method: "POST",
            path: format!("/api/agui/check_no_such_agent_{}", random_hex(6)),
            headers: vec![json_type, ("Authorization", &auth)],
            body: question,
            status: 404,
            codes: &["AGENT_NOT_FOUND"],
        },
        Refusal {
            what: "resuming a run that does not exist",
            method: "GET",
            path: format!("/api/agui/runs/{unknown_run}/events"),
            headers: vec![("Authorization", &auth)],
            body: Vec::new(),
            status: 404,
            codes: &["RUN_NOT_FOUND"],
        },
        Refusal {
            what: "cancelling a run that does not exist",
            method: "POST",
            path: format!("/api/agui/runs/{unknown_run}/cancel"),
            headers: vec![("Authorization", &auth)],
            body: Vec::new(),
            status: 404,
            codes: &["RUN_NOT_FOUND"],
        },
    ];
    let mut transcript = Vec::new();
    let mut problems = Vec::new();
    let mut unknown_answers = Vec::new();
    for refusal in &refusals {
        let answer = request(
            ctx,
            refusal.method,
            &refusal.path,
            &refusal.headers,
            &refusal.body,
        )
        .await
        .map_err(|err| Outcome::fail(format!("{}: {err}", refusal.what), transcript.clone()))?;
        transcript.push(json!({"request": refusal.what, "answer": answer_json(&answer)}));
        let code = answer.json().and_then(|b| {
            b.get("error_code")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if answer.status != refusal.status
            || !code.as_deref().is_some_and(|c| refusal.codes.contains(&c))
        {
            problems.push(format!(
                "{}: HTTP {} {}, not {} {}",
                refusal.what,
                answer.status,
                code.as_deref().unwrap_or("without a JSON error_code"),
                refusal.status,
                refusal.codes.join(" or ")
            ));
        }
        if refusal.codes == ["RUN_NOT_FOUND"] {
            unknown_answers.push(answer);
        }
    }
    let note = match ctx.other_user("agui", ctx.org()) {
        None => Some("another user's run was not tried: that needs --secret".to_owned()),
        Some(other) => {
            let theirs = bearer(&other.token);
            for (suffix, method, unknown) in [
                ("events", "GET", &unknown_answers[0]),
                ("cancel", "POST", &unknown_answers[1]),
            ] {
                let path = format!("/api/agui/runs/{}/{suffix}", run.run_id);
                let what = if suffix == "events" {
                    "resuming another user's run"
                } else {
                    "cancelling another user's run"
                };
                let answer = request(ctx, method, &path, &[("Authorization", &theirs)], &[])
                    .await
                    .map_err(|err| Outcome::fail(format!("{what}: {err}"), transcript.clone()))?;
                transcript.push(json!({"request": what, "answer": answer_json(&answer)}));
                if answer.status != unknown.status || answer.json() != unknown.json() {
                    problems.push(format!(
                        "{what}: HTTP {} {}, unlike a run that does not exist (HTTP {} {}): the difference tells that the run exists",
                        answer.status,
                        answer.text(),
                        unknown.status,
                        unknown.text()
                    ));
                }
            }
            None
        }
    };
    if !problems.is_empty() {
        return Err(Outcome::fail(problems.join("; "), transcript));
    }
    Ok(Outcome::pass(note))
}

async fn request(
    ctx: &Ctx,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Answer, HttpError> {
    ctx.target
        .http
        .request(
            method,
            path,
            headers,
            body.to_vec(),
            ctx.config.completion_timeout,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, data: &str) -> SseEvent {
        SseEvent {
            id: Some(id.into()),
            data: data.into(),
            raw: format!("id: {id}\ndata: {data}\n\n").into_bytes(),
        }
    }

    #[test]
    fn resumed_events_are_compared_by_their_bytes() {
        let first = [event("1", "{\"a\":1}"), event("1.1", "{\"b\":2}")];
        assert_eq!(first_difference(&first, &first), None);
        let respaced = [event("1", "{\"a\": 1}"), event("1.1", "{\"b\":2}")];
        assert!(
            first_difference(&first, &respaced)
                .unwrap()
                .contains("event 0")
        );
        assert!(
            first_difference(&first, &first[..1])
                .unwrap()
                .contains("1 events came")
        );
    }
}
