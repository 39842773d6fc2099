//! The HTTP endpoints besides `/ws` (PROTOCOL.md section 7): health, metrics, the API index, the
//! agent registry and usage ingest; the routing fallbacks; the [`Authenticated`] extractor and the
//! query reader the other HTTP modules share. History is in [`crate::history`], the page in
//! [`crate::web`].
//!
//! Handlers parse the request, call the engine, and shape JSON; they hold no business logic and no
//! SQL. Every failure is an [`AppError`]. Authenticated endpoints take an [`Authenticated`]
//! extractor, so the requirement is visible in the handler's signature.

use crate::AppState;
use crate::auth::{self, Identity, SCOPE_USAGE_WRITE};
use crate::error::AppError;
use crate::limits;
use agentwire_analytics::{UsageFormat, UsageRecord};
use agentwire_protocol::{AgentKind, ErrorCode, SUBPROTOCOL};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a health check waits for the database.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The caller of an authenticated endpoint (`Authorization: Bearer <JWT>`; 401 otherwise).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Identity);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = auth::bearer_token(&parts.headers)?.ok_or(auth::AuthError::Missing)?;
        Ok(Authenticated(state.verifier.verify(token)?))
    }
}

/// `GET /health`, `GET /api/health`.
pub async fn health(State(state): State<AppState>) -> Response {
    let database = check_database(&state).await;
    let healthy = database.is_ok();
    let body = json!({
        "status": if healthy { "healthy" } else { "unhealthy" },
        "service": "agentwire",
        "version": crate::VERSION,
        "uptime_s": state.started_at.elapsed().as_secs(),
        "draining": state.is_draining(),
        "checks": { "database": database.err().unwrap_or("ok") },
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /health/live`: the process answers.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

/// `GET /health/ready`: the server is not draining, the database answers and this node holds its
/// lease (so a load balancer sends new sockets elsewhere while it does not).
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": "draining" })),
        )
            .into_response();
    }
    match check_database(&state).await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": reason })),
        )
            .into_response(),
    }
}

/// `Ok` or a short, client-safe reason. The detail is logged.
async fn check_database(state: &AppState) -> Result<(), &'static str> {
    match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, state.engine.health()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(agentwire_engine::EngineError::Unavailable(reason))) => {
            tracing::warn!(%reason, "health check: not ready");
            Err("database unreachable or node lease not held")
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "health check: database failed");
            Err("database unreachable")
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer in time");
            Err("database timeout")
        }
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render(&state.engine.metrics());
    state.metrics.render_uploads(&mut text, &state.uploads);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /api`: what this server offers.
pub async fn api_index() -> Json<Value> {
    let endpoints = [
        (
            "GET",
            "/ws",
            "WebSocket: start runs and watch their events (see protocol)",
        ),
        ("GET", "/health", "service health with checks"),
        ("GET", "/api/health", "same as /health"),
        ("GET", "/health/live", "liveness"),
        (
            "GET",
            "/health/ready",
            "readiness: database reachable and not draining",
        ),
        ("GET", "/metrics", "Prometheus metrics"),
        ("GET", "/api", "this index"),
        ("GET", "/api/agents", "the agents, their aliases and tools"),
        (
            "POST",
            "/api/usage",
            "ingest usage records (CSV or JSON lines); Bearer token with usage:write",
        ),
        (
            "GET",
            "/api/runs/{run_id}/events?after_seq=N",
            "a run's persisted events (owner only); Bearer token",
        ),
        (
            "GET",
            "/api/threads?limit=N",
            "your conversation threads, most recent first; Bearer token",
        ),
        (
            "GET",
            "/api/threads/{thread_id}",
            "a thread's runs with their events (owner only); Bearer token",
        ),
        (
            "POST",
            "/api/agui",
            "an AG-UI run of the supervisor: RunAgentInput in, text/event-stream of AG-UI events out; Bearer token",
        ),
        (
            "POST",
            "/api/agui/{agent_type}",
            "an AG-UI run of any agent or alias; Bearer token",
        ),
        (
            "GET",
            "/api/agui/runs/{run_id}/events",
            "the run's AG-UI events after Last-Event-ID, then live (owner only); Bearer token",
        ),
        (
            "POST",
            "/api/agui/runs/{run_id}/cancel",
            "stops an AG-UI (or any) run of yours; Bearer token",
        ),
        ("GET", "/", "the web chat page"),
    ];
    Json(json!({
        "name": "agentwire",
        "version": crate::VERSION,
        "protocol": SUBPROTOCOL,
        "endpoints": endpoints
            .iter()
            .map(|(method, path, description)| json!({"method": method, "path": path, "description": description}))
            .collect::<Vec<_>>(),
    }))
}

/// `GET /api/agents`: the agent registry, as the engine describes it.
pub async fn agents() -> Json<Value> {
    let agents: Vec<Value> = AgentKind::ALL
        .iter()
        .map(|kind| {
            json!({
                "name": kind.as_str(),
                "aliases": kind.aliases(),
                "description": agentwire_engine::agent_description(*kind),
                "tools": agentwire_engine::agent_tools(*kind),
            })
        })
        .collect();
    Json(json!({ "agents": agents }))
}

/// `POST /api/usage`: ingest usage records for the caller's tenant, all or nothing.
///
/// Format: `?format=` (csv, jsonl, litellm, helicone, langfuse, azure, mooncake), else the
/// Content-Type (`text/csv`, `application/x-ndjson`, `application/jsonl`: the container, whose
/// header or first object then names the dialect), else detected from the first line. Traces
/// without a model (azure, mooncake) need `?model=`. A metric series or FOCUS file is refused with
/// 422 (it holds no usage records; `agentwire analyze` reads it). Any bad row: 422 listing the
/// rows and nothing stored. Past `max_concurrent_uploads` uploads in progress: 503 with
/// `Retry-After`, before the body is read.
pub async fn ingest_usage(
    State(state): State<AppState>,
    Authenticated(identity): Authenticated,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, AppError> {
    if !identity.has_scope(SCOPE_USAGE_WRITE) {
        return Err(AppError::Forbidden(format!(
            "this token lacks the `{SCOPE_USAGE_WRITE}` scope needed to load usage data; mint one with `agentwire token --sub USER --scope {SCOPE_USAGE_WRITE}`"
        )));
    }
    let format = usage_format(query.as_deref(), &headers)?;
    // Traces without a model column (azure, mooncake) are priced as the model named here.
    let model = query_param(query.as_deref(), "model").map(str::to_owned);
    // Taken before the body is read: the cap bounds the memory of bodies being read too.
    let Some(slot) = state.uploads.try_take() else {
        state.metrics.upload_refused();
        return Err(AppError::Limited {
            code: ErrorCode::Unavailable,
            message: format!(
                "this server is storing {} usage uploads, the most it takes at once; send this one again after the Retry-After delay",
                state.uploads.capacity()
            ),
            retry_after_ms: u64::try_from(limits::UPLOAD_RETRY_AFTER.as_millis())
                .unwrap_or(u64::MAX),
        });
    };
    let limit = state.config.max_body_bytes;
    let bytes = read_body(body, &headers, limit, state.config.http_body_timeout).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::BadRequest(
            "the body is empty; send CSV with a header row (timestamp,model,input_tokens,output_tokens,...) or JSON lines".into(),
        ));
    }
    let max_rows = state.config.max_ingest_rows;
    let engine = state.engine.clone();
    let tenant_id = identity.principal.tenant_id.clone();
    // Parsed and stored in a task of its own that keeps the slot to the end: a client that goes
    // away mid-upload neither frees the slot early nor leaves the store's upload half written.
    let stored = tokio::spawn(async move {
        let _slot = slot;
        // Parsing a large upload is CPU work; keep it off the async workers. Lines are counted
        // first: parsed records take several times the memory of their text.
        let report =
            tokio::task::spawn_blocking(move || parse_upload(bytes, max_rows, format, model))
                .await
                .map_err(|err| AppError::internal(format!("usage import task failed: {err}")))??;
        if !report.errors.is_empty() {
            return Err(AppError::InvalidRows {
                total: report.errors.len(),
                errors: report.errors,
                rows_read: report.rows_read,
            });
        }
        let imported = engine.ingest(&tenant_id, report.records).await?;
        Ok((tenant_id, imported, report.rows_read))
    });
    let (tenant_id, imported, rows_read) = stored
        .await
        .map_err(|err| AppError::internal(format!("usage upload task failed: {err}")))??;
    tracing::info!(
        user_id = %identity.principal.user_id, %tenant_id, imported, rows_read,
        "usage imported"
    );
    Ok(Json(json!({
        "tenant_id": tenant_id,
        "imported": imported,
        "rows_read": rows_read,
    })))
}

/// Reads an upload's records (blocking: CPU work). Fails before parsing when it has more lines
/// than `max_rows` (and a header), and on any NUL character in a text field; rows that cannot
/// be read are listed in the report.
fn parse_upload(
    bytes: Vec<u8>,
    max_rows: usize,
    format: Option<UsageFormat>,
    model: Option<String>,
) -> Result<agentwire_analytics::ImportReport, AppError> {
    let lines = bytes.iter().filter(|b| **b == b'\n').count();
    if lines > max_rows.saturating_add(1) {
        return Err(AppError::TooManyRows {
            lines,
            limit: max_rows,
        });
    }
    let report = agentwire_analytics::import_usage_with(
        std::io::Cursor::new(bytes),
        &agentwire_analytics::ImportOptions { format, model },
    )
    .map_err(|err| AppError::Unprocessable(format!("the upload could not be read: {err}")))?;
    if let Some((index, field)) = nul_in_records(&report.records) {
        return Err(AppError::Unprocessable(format!(
            "record {} of the upload: field `{field}` contains a NUL character (U+0000), which cannot be stored; remove it and upload again",
            index + 1
        )));
    }
    Ok(report)
}

/// The first record (its index) and text field holding a NUL character, which no database can
/// store: refused here with the field's name rather than failing in the store as `INTERNAL`.
fn nul_in_records(records: &[UsageRecord]) -> Option<(usize, &'static str)> {
    records.iter().enumerate().find_map(|(index, r)| {
        let optional = [
            ("status", &r.status),
            ("service_tier", &r.service_tier),
            ("user_id", &r.user_id),
            ("team", &r.team),
            ("project", &r.project),
            ("feature", &r.feature),
            ("session_id", &r.session_id),
            ("prompt_hash", &r.prompt_hash),
            ("prefix_hash", &r.prefix_hash),
            ("tags", &r.tags),
        ];
        [("provider", Some(&r.provider)), ("model", Some(&r.model))]
            .into_iter()
            .chain(
                optional
                    .into_iter()
                    .map(|(field, value)| (field, value.as_ref())),
            )
            .find(|(_, value)| value.is_some_and(|text| text.contains('\0')))
            .map(|(field, _)| (index, field))
    })
}

/// The format asked for by the query or the Content-Type; `None` means detect.
fn usage_format(query: Option<&str>, headers: &HeaderMap) -> Result<Option<UsageFormat>, AppError> {
    if let Some(name) = query_param(query, "format") {
        return UsageFormat::from_name(name).map(Some).ok_or_else(|| {
            AppError::BadRequest(format!(
                "unknown format {:?}; use one of {}",
                name.chars().take(32).collect::<String>(),
                UsageFormat::names()
            ))
        });
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    Ok(match content_type.as_deref() {
        Some("text/csv" | "application/csv") => Some(UsageFormat::Csv),
        Some(
            "application/x-ndjson"
            | "application/jsonl"
            | "application/ndjson"
            | "application/x-jsonlines"
            | "application/jsonlines",
        ) => Some(UsageFormat::JsonLines),
        _ => None,
    })
}

/// Reads the body up to `limit` bytes; over it, 413 without reading the rest. A body still
/// arriving after `deadline` gets 408: a client trickling bytes in never looks idle.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    deadline: Duration,
) -> Result<Vec<u8>, AppError> {
    tokio::time::timeout(deadline, read_body_within(body, headers, limit))
        .await
        .map_err(|_| AppError::BodyTimeout {
            limit_s: deadline.as_secs(),
        })?
}

async fn read_body_within(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Vec<u8>, AppError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(AppError::PayloadTooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(
        declared
            .and_then(|len| usize::try_from(len).ok())
            .unwrap_or(0)
            .min(limit),
    );
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            AppError::BadRequest(format!("the request body could not be read: {err}"))
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The raw value of one query parameter. Values we read are plain words and numbers, so no
/// percent-decoding is needed.
pub(crate) fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// Unknown paths.
pub async fn not_found(method: Method, uri: Uri) -> AppError {
    AppError::NotFound(format!(
        "no endpoint at {method} {}; see GET /api for the list",
        uri.path()
    ))
}

/// Known path, wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!(
        "{} does not accept {method}; see GET /api for the list",
        uri.path()
    ))
}

#[cfg(test)]
mod tests {
    #![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn query_params() {
        assert_eq!(query_param(Some("after_seq=5&x=1"), "after_seq"), Some("5"));
        assert_eq!(query_param(Some("x=1&after_seq="), "after_seq"), Some(""));
        assert_eq!(query_param(Some("x=1"), "after_seq"), None);
        assert_eq!(query_param(None, "after_seq"), None);
    }

    #[test]
    fn usage_format_from_query_then_content_type() {
        let mut headers = HeaderMap::new();
        assert_eq!(usage_format(None, &headers).unwrap(), None);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        assert_eq!(
            usage_format(None, &headers).unwrap(),
            Some(UsageFormat::Csv)
        );
        assert_eq!(
            usage_format(Some("format=jsonl"), &headers).unwrap(),
            Some(UsageFormat::JsonLines)
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        );
        assert_eq!(
            usage_format(None, &headers).unwrap(),
            Some(UsageFormat::JsonLines)
        );
        assert!(matches!(
            usage_format(Some("format=xlsx"), &headers),
            Err(AppError::BadRequest(_))
        ));
    }
}
