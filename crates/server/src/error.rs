//! The one HTTP error type, [`AppError`], and the middleware that logs it.
//!
//! Every HTTP error leaves the server as JSON `{"error_code":"...","message":"..."}` (plus
//! `retry_after_ms`, `run_id`, `errors` or `correlation_id` where they apply) with the status that
//! fits. Codes are those of PROTOCOL.md section 6; the HTTP-only `NOT_FOUND` and
//! `METHOD_NOT_ALLOWED` cover routing.
//!
//! `into_response` has no side effects: it attaches an [`ErrorReport`] to the response and
//! [`log_errors`] writes the log line. Internal details (database errors, bugs) are logged under a
//! correlation id and never sent to the client. Which engine errors count as internal is decided
//! by the engine (`EngineError::is_internal`), for HTTP answers and the socket's error frames alike.

use crate::auth::AuthError;
use agentwire_analytics::RowError;
use agentwire_engine::EngineError;
use agentwire_protocol::ErrorCode;
use axum::Json;
use axum::extract::Request;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::time::Instant;

/// At most this many row errors are listed in a 422; the message gives the total.
pub const MAX_LISTED_ROW_ERRORS: usize = 100;

/// Everything an HTTP handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 401: no token, or a token that does not verify.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 403 `FORBIDDEN`: authenticated, but the token lacks a permission.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `NOT_FOUND`: no such route.
    #[error("{0}")]
    NotFound(String),
    /// 404 `AGENT_NOT_FOUND`: a path names no agent.
    #[error("{0}")]
    AgentNotFound(String),
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 400 `INVALID_MESSAGE`: the request itself is wrong (query, headers, empty body).
    #[error("{0}")]
    BadRequest(String),
    /// 413 `PAYLOAD_TOO_LARGE`.
    #[error("the request body is over the {limit} byte limit; split the upload into smaller files")]
    PayloadTooLarge { limit: usize },
    /// 413 `PAYLOAD_TOO_LARGE`: a usage upload with more rows than one upload may carry.
    #[error(
        "the upload has {lines} lines; one upload may carry at most {limit} rows: split it into smaller files"
    )]
    TooManyRows { lines: usize, limit: usize },
    /// 422 `INVALID_MESSAGE`: an upload had rows that could not be read; nothing was stored.
    #[error("{total} rows have errors; nothing was imported")]
    InvalidRows {
        total: usize,
        errors: Vec<RowError>,
        rows_read: u64,
    },
    /// 408 `TIMEOUT`: a request body did not arrive within the server's body timeout.
    #[error(
        "the request body did not arrive within {limit_s} s (the server's --http-body-timeout-s); send it again over a faster connection, or split the file into smaller uploads"
    )]
    BodyTimeout { limit_s: u64 },
    /// 422 `INVALID_MESSAGE`: an upload could not be read at all (unknown format, bad header row).
    #[error("{0}")]
    Unprocessable(String),
    /// The engine refused or failed; the status follows its code.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// 503 `UNAVAILABLE`.
    #[error("{0}")]
    Unavailable(String),
    /// A server limit (connections, rates): 429 `RATE_LIMITED` or 503 `UNAVAILABLE`, with
    /// `retry_after_ms` in the body and `Retry-After` in the headers.
    #[error("{message}")]
    Limited {
        code: ErrorCode,
        message: String,
        retry_after_ms: u64,
    },
    /// 500 `INTERNAL`: a bug or an infrastructure failure. `detail` is logged, not sent.
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

/// A path segment that does not fit its route (e.g. not valid percent-encoding): 400.
impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

/// Attached to error responses so that [`log_errors`] can log what the client was not told.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub code: &'static str,
    pub status: StatusCode,
    /// Set for internal errors: the id in the response body and the log line.
    pub correlation_id: Option<String>,
    pub detail: String,
}

impl AppError {
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal {
            detail: detail.into(),
        }
    }

    /// The wire code and the HTTP status.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            Self::Auth(err) => (err.code().as_str(), StatusCode::UNAUTHORIZED),
            Self::Forbidden(_) => (ErrorCode::Forbidden.as_str(), StatusCode::FORBIDDEN),
            Self::NotFound(_) => ("NOT_FOUND", StatusCode::NOT_FOUND),
            Self::AgentNotFound(_) => (ErrorCode::AgentNotFound.as_str(), StatusCode::NOT_FOUND),
            Self::MethodNotAllowed(_) => ("METHOD_NOT_ALLOWED", StatusCode::METHOD_NOT_ALLOWED),
            Self::BadRequest(_) => (ErrorCode::InvalidMessage.as_str(), StatusCode::BAD_REQUEST),
            Self::PayloadTooLarge { .. } | Self::TooManyRows { .. } => (
                ErrorCode::PayloadTooLarge.as_str(),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            Self::InvalidRows { .. } | Self::Unprocessable(_) => (
                ErrorCode::InvalidMessage.as_str(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            Self::Engine(err) => {
                let code = err.code();
                (code.as_str(), status_for(code))
            }
            Self::BodyTimeout { .. } => (ErrorCode::Timeout.as_str(), StatusCode::REQUEST_TIMEOUT),
            Self::Unavailable(_) => (
                ErrorCode::Unavailable.as_str(),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            Self::Limited { code, .. } => (code.as_str(), status_for(*code)),
            Self::Internal { .. } => (
                ErrorCode::Internal.as_str(),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        }
    }
}

/// The HTTP status for a protocol error code.
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::AuthRequired | ErrorCode::AuthFailed | ErrorCode::AuthExpired => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::InvalidMessage | ErrorCode::UnknownMessageType => StatusCode::BAD_REQUEST,
        ErrorCode::AgentNotFound | ErrorCode::RunNotFound | ErrorCode::NoData => {
            StatusCode::NOT_FOUND
        }
        ErrorCode::RunConflict => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Interrupted | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A fresh correlation id for an internal failure: the client sees it, the log line carries it.
pub(crate) fn new_correlation_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What the client is told about an internal failure instead of its details.
pub(crate) fn internal_message(correlation_id: &str) -> String {
    format!("internal error; the server log has the details under correlation id {correlation_id}")
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        let detail = self.to_string();
        let internal = match &self {
            Self::Internal { .. } => true,
            Self::Engine(err) => err.is_internal(),
            _ => false,
        };
        let mut body = json!({ "error_code": code });
        let mut retry_after_ms = None;
        let mut correlation_id = None;
        if internal {
            let id = new_correlation_id();
            body["message"] = Value::String(internal_message(&id));
            body["correlation_id"] = Value::String(id.clone());
            correlation_id = Some(id);
        } else {
            body["message"] = Value::String(detail.clone());
        }
        match &self {
            Self::InvalidRows {
                errors, rows_read, ..
            } => {
                body["errors"] = json!(
                    errors
                        .iter()
                        .take(MAX_LISTED_ROW_ERRORS)
                        .collect::<Vec<_>>()
                );
                body["rows_read"] = json!(rows_read);
            }
            Self::Engine(err) => {
                if let Some(ms) = err.retry_after_ms() {
                    body["retry_after_ms"] = json!(ms);
                    retry_after_ms = Some(ms);
                }
                if let Some(run_id) = err.conflicting_run() {
                    body["run_id"] = json!(run_id);
                }
            }
            Self::Limited {
                retry_after_ms: ms, ..
            } => {
                body["retry_after_ms"] = json!(ms);
                retry_after_ms = Some(*ms);
            }
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if let Some(ms) = retry_after_ms {
            let secs = ms.div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if let Self::Auth(_) = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"agentwire\""),
            );
        }
        response.extensions_mut().insert(ErrorReport {
            code,
            status,
            correlation_id,
            detail,
        });
        response
    }
}

/// Logs every request at debug level and every error response at warn (client errors) or error
/// (server errors). Only the path is logged, never the query string: it could carry a token.
pub async fn log_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    let elapsed_ms = started.elapsed().as_millis();
    match response.extensions().get::<ErrorReport>() {
        Some(report) if report.status.is_server_error() => tracing::error!(
            %method, %path, status = status.as_u16(), code = report.code,
            correlation_id = report.correlation_id.as_deref().unwrap_or("-"),
            detail = %report.detail, elapsed_ms, "request failed"
        ),
        Some(report) => tracing::info!(
            %method, %path, status = status.as_u16(), code = report.code,
            detail = %report.detail, elapsed_ms, "request refused"
        ),
        None => tracing::debug!(%method, %path, status = status.as_u16(), elapsed_ms, "request"),
    }
    response
}

#[cfg(test)]
mod tests {
    #![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
    use super::*;

    async fn body_json(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_render_as_json_with_status() {
        let response = AppError::Forbidden("token lacks usage:write".into()).into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            body_json(response).await,
            json!({"error_code": "FORBIDDEN", "message": "token lacks usage:write"})
        );

        let response = AppError::Auth(AuthError::BadSignature).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(body_json(response).await["error_code"], "AUTH_FAILED");
    }

    #[tokio::test]
    async fn internal_errors_hide_details_behind_a_correlation_id() {
        let response = AppError::internal("disk on fire at /var/db").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let report = response.extensions().get::<ErrorReport>().cloned().unwrap();
        let body = body_json(response).await;
        assert_eq!(body["error_code"], "INTERNAL");
        let message = body["message"].as_str().unwrap();
        assert!(!message.contains("disk"), "{message}");
        let id = report.correlation_id.unwrap();
        assert_eq!(body["correlation_id"], id.as_str());
        assert!(message.contains(&id));
        assert!(report.detail.contains("disk on fire"));
    }

    #[tokio::test]
    async fn row_errors_list_lines() {
        let response = AppError::InvalidRows {
            total: 1,
            errors: vec![RowError {
                line: 7,
                message: "bad timestamp".into(),
            }],
            rows_read: 9,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body_json(response).await,
            json!({
                "error_code": "INVALID_MESSAGE",
                "message": "1 rows have errors; nothing was imported",
                "errors": [{"line": 7, "message": "bad timestamp"}],
                "rows_read": 9
            })
        );
    }

    #[test]
    fn only_store_and_internal_engine_errors_are_internal() {
        assert!(EngineError::Internal("bug".into()).is_internal());
        assert!(
            EngineError::Store(agentwire_store::StoreError::DuplicateRun("run_1".into()))
                .is_internal()
        );
        for err in [
            EngineError::RunNotFound,
            EngineError::ShuttingDown,
            EngineError::RunConflict {
                run_id: "run_1".into(),
            },
            EngineError::TooManyRuns {
                limit: 1,
                retry_after_ms: 10,
            },
        ] {
            assert!(!err.is_internal(), "{err:?}");
        }
    }

    #[tokio::test]
    async fn engine_errors_follow_their_code() {
        let response = AppError::Engine(EngineError::RunNotFound).into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_json(response).await["error_code"], "RUN_NOT_FOUND");
        let response = AppError::Engine(EngineError::ShuttingDown).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
