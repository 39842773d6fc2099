//! `GET /ws` before there is a socket: the origin rule, credentials at the upgrade, the connection
//! caps, subprotocol selection and the library's frame limit.
//!
//! A refusal here is an HTTP answer ([`AppError`]), never a frame. This file must not read or
//! write the socket: once upgraded, the connection belongs to [`super::connection`].

use super::connection::Connection;
use crate::AppState;
use crate::auth;
use crate::error::AppError;
use crate::limits::LimitError;
use agentwire_protocol::{ErrorCode, SUBPROTOCOL};
use axum::Extension;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::time::Instant;

/// Bytes of frames gathered before they are written to the socket. A run's events come a few
/// at a time, so batches are small anyway; this bounds what each socket keeps afterwards.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// Slack above `max_frame_bytes` for the library's own limit: a frame up to this much too big is
/// read whole and answered precisely; anything bigger is refused by the library on its header.
fn library_limit(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_add((max_frame_bytes / 4).max(64 * 1024))
}

/// `GET /ws`: authenticates the upgrade request when it carries credentials, then upgrades.
///
/// Credentials present and invalid: HTTP 401 with `{"error_code":"AUTH_FAILED","message":...}`
/// and no upgrade. No credentials: the socket is opened unauthenticated. The subprotocol
/// `agentwire.v1` is selected when offered; a `jwt.*` item is never echoed.
pub async fn upgrade(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            let status = rejection.status();
            let mut response = AppError::BadRequest(format!(
                "this endpoint speaks WebSocket ({SUBPROTOCOL}); connect with a WebSocket client ({})",
                rejection.body_text()
            ))
            .into_response();
            *response.status_mut() = status;
            return response;
        }
    };
    // Browsers do not apply CORS to WebSockets: a page of another origin is refused here, before
    // it can learn anything about the credentials it sent.
    if !crate::security::upgrade_origin_allowed(&headers, &state.config.cors_allowed_origins) {
        return AppError::Forbidden(
            "WebSocket connections from pages of this origin are not allowed; the server operator can allow it with --cors-allow-origin".into(),
        )
        .into_response();
    }
    let identity = match auth::upgrade_token(&headers) {
        Ok(Some(token)) => match state.verifier.verify(&token) {
            Ok(identity) => Some(identity),
            Err(err) => return AppError::Auth(err).into_response(),
        },
        Ok(None) => None,
        Err(err) => return AppError::Auth(err).into_response(),
    };
    if state.is_draining() {
        return AppError::Unavailable(
            "the server is shutting down; reconnect to another instance or retry shortly".into(),
        )
        .into_response();
    }
    let connection_permit = match state.limiter.open() {
        Ok(permit) => permit,
        Err(err) => return limit_refusal(&err, ErrorCode::Unavailable),
    };
    let user_permit = match &identity {
        Some(identity) => match state.limiter.join(&identity.principal, Instant::now()) {
            Ok(permit) => Some(permit),
            Err(err) => return limit_refusal(&err, ErrorCode::RateLimited),
        },
        None => None,
    };
    // A socket without credentials holds a place among its address's unauthenticated ones until
    // it authenticates. (Embedded without our accept loop there is no peer address to count by.)
    let anonymous_permit = match (&identity, peer) {
        (None, Some(Extension(ConnectInfo(peer)))) => match state.limiter.anonymous(peer.ip()) {
            Ok(permit) => Some(permit),
            Err(err) => return limit_refusal(&err, ErrorCode::RateLimited),
        },
        _ => None,
    };
    let query_token_ignored = auth::query_has_token(query.as_deref());
    let limit = library_limit(state.config.max_frame_bytes);
    ws.protocols([SUBPROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        // Small read buffer: idle connections are most connections, and a large frame grows the
        // buffer only while it is read.
        .read_buffer_size(4 * 1024)
        // The write buffer keeps, for the socket's life, the largest size it ever reached:
        // tungstenite's default lets it reach 128 KiB plus a frame before writing, which a
        // session that had one run then held however long it stayed open.
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket: WebSocket| async move {
            let _counted = state.lifecycle.sockets.enter();
            Connection::new(
                state,
                identity,
                query_token_ignored,
                connection_permit,
                user_permit,
                anonymous_permit,
            )
            .run(socket)
            .await;
        })
}

/// The HTTP answer to an upgrade refused by a connection cap: 503 `UNAVAILABLE` for the server's
/// total, 429 `RATE_LIMITED` for the user's, both with `Retry-After`.
fn limit_refusal(err: &LimitError, code: ErrorCode) -> Response {
    AppError::Limited {
        code,
        message: err.to_string(),
        retry_after_ms: err.retry_after_ms(),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_limit_leaves_room_to_answer() {
        assert!(library_limit(1 << 20) > 1 << 20);
        assert!(library_limit(10) >= 10 + 64 * 1024);
        assert_eq!(library_limit(usize::MAX), usize::MAX);
    }
}
