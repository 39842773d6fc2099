//! The web chat page and the endpoints only a browser needs.
//!
//! - `GET /`: the page (`assets/index.html`). In demo mode its `<body>` says so, and the page signs
//!   itself in with a token from `POST /api/demo/token`.
//! - `GET /assets/{file}`: the page's CSS, JavaScript modules and icon, embedded in the binary at
//!   build time, so the page works offline: no CDN, no web fonts, no build step.
//! - `POST /api/demo/token`: a token for the demo user; the route answers only in demo mode and is
//!   indistinguishable from an unknown path otherwise.
//!
//! Assets are served with an `ETag` and `Cache-Control: no-cache`: a browser revalidates and gets
//! a 304 while the binary is the same, and never runs a stale script after an upgrade. The page is
//! served with a Content-Security-Policy that allows only this origin, so the page's own rule, never
//! to insert server text as HTML, is backed by the browser.
//!
//! What a client reads back (threads, runs, events) is served by [`crate::history`], not here.
//!
//! This module must not render anything from the server's data into HTML: the page builds its DOM
//! from JSON with `textContent` (see `assets/markdown.js`). It holds no SQL and no business logic.

use crate::AppState;
use crate::config::JwtKey;
use crate::error::AppError;
use crate::http::not_found;
use agentwire_protocol::time::format as format_time;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

/// One embedded file of the page.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The file name under `/assets/`.
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// The page itself; served at `/`, not under `/assets/`.
const INDEX_HTML: &str = include_str!("../assets/index.html");

/// What the page's `<body>` says outside demo mode; replaced in demo mode.
const DEMO_OFF: &str = "data-demo=\"false\"";
const DEMO_ON: &str = "data-demo=\"true\"";

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// An [`Asset`] for `assets/<name>`: the name is written once, so the URL and the file agree.
macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("../assets/", $name)),
        }
    };
}

/// Every file the page loads besides itself.
pub const ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    asset!("app.js", JS),
    asset!("connection.js", JS),
    asset!("timeline.js", JS),
    asset!("results.js", JS),
    asset!("markdown.js", JS),
    asset!("dom.js", JS),
    asset!("favicon.svg", SVG),
];

/// The bytes a first visit downloads: the page and every asset, before HTTP headers.
pub fn page_bytes() -> usize {
    INDEX_HTML.len() + ASSETS.iter().map(|asset| asset.body.len()).sum::<usize>()
}

/// Only this origin may supply scripts, styles, images and sockets; nothing may frame the page.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// How long a demo token is valid: a working day of demo.
const DEMO_TOKEN_TTL_S: i64 = 8 * 3600;

/// `GET /`: the chat page.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let body = if state.config.demo_mode {
        INDEX_HTML.replacen(DEMO_OFF, DEMO_ON, 1)
    } else {
        INDEX_HTML.to_owned()
    };
    let mut response = cached(&headers, "text/html; charset=utf-8", body);
    // The page's own, stricter policy; `nosniff` and the referrer policy come from
    // `security::security_headers`, like on every response.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// `GET /assets/{file}`: one embedded asset; 404 `NOT_FOUND` for any other name.
pub async fn asset(
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let name = path.map(|Path(name)| name).unwrap_or_default();
    match ASSETS.iter().find(|asset| asset.name == name) {
        Some(asset) => cached(&headers, asset.content_type, asset.body.to_owned()),
        None => not_found(method, uri).await.into_response(),
    }
}

/// A 200 with `body`, or a 304 when the client already holds this exact body.
fn cached(request: &HeaderMap, content_type: &'static str, body: String) -> Response {
    let etag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// FNV-1a, 64 bit: a stable content fingerprint for `ETag` (not a security measure).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `POST /api/demo/token`: a token for the demo user, so the page can sign itself in.
///
/// Exists only in demo mode; otherwise it answers exactly like an unknown path. The token carries
/// no scope (it can chat, not upload) and is signed like any other, so it is checked the same way.
pub async fn demo_token(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
) -> Result<Response, AppError> {
    let config = &state.config;
    let (true, Some(principal)) = (config.demo_mode, config.demo_principal.as_ref()) else {
        return Err(not_found(method, uri).await);
    };
    let JwtKey::Secret(secret) = &config.jwt.key else {
        return Err(AppError::NotFound(
            "demo tokens are only minted by a server with a shared secret; sign in with a token from your issuer".into(),
        ));
    };
    let now = chrono::Utc::now().timestamp();
    let expires = now + DEMO_TOKEN_TTL_S;
    let mut claims = json!({
        "sub": principal.user_id,
        "org_id": principal.tenant_id,
        "iat": now,
        "exp": expires,
    });
    if let Some(issuer) = &config.jwt.issuer {
        claims["iss"] = json!(issuer);
    }
    if let Some(audience) = &config.jwt.audience {
        claims["aud"] = json!(audience);
    }
    let token = jsonwebtoken::encode(
        &Header::new(config.jwt.algorithm),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|err| AppError::internal(format!("minting the demo token failed: {err}")))?;
    let expires_at = chrono::DateTime::from_timestamp(expires, 0)
        .map(|at| format_time(&at))
        .unwrap_or_default();
    let body = json!({
        "token": token,
        "user_id": principal.user_id,
        "tenant_id": principal.tenant_id,
        "expires_at": expires_at,
    });
    Ok((
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
    use super::*;

    #[test]
    fn the_demo_marker_is_in_the_page_once() {
        assert_eq!(INDEX_HTML.matches(DEMO_OFF).count(), 1);
        assert!(!INDEX_HTML.contains(DEMO_ON));
    }

    #[test]
    fn every_asset_the_page_names_is_served() {
        // The page and the modules name their dependencies by path; a missing one is a blank page.
        let sources = std::iter::once(INDEX_HTML).chain(ASSETS.iter().map(|asset| asset.body));
        for source in sources {
            let named = source
                .match_indices("/assets/")
                .map(|(at, found)| at + found.len())
                .chain(
                    source
                        .match_indices("from './")
                        .map(|(at, found)| at + found.len()),
                );
            for start in named {
                let rest = &source[start..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    .collect();
                assert!(
                    ASSETS.iter().any(|asset| asset.name == name),
                    "{name} is referenced but not embedded"
                );
            }
        }
        let names: Vec<&str> = ASSETS.iter().map(|asset| asset.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "duplicate asset names: {names:?}"
        );
    }

    #[test]
    fn modules_import_only_this_origin() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in asset
                .body
                .lines()
                .filter(|l| l.trim_start().starts_with("import "))
            {
                assert!(
                    line.contains("from './") || line.contains("from \"./"),
                    "{}: imports must be relative to /assets/: {line}",
                    asset.name
                );
            }
            // The only absolute URL allowed is the SVG namespace, which is a name, not a fetch.
            let absolute = asset
                .body
                .replace("'http://www.w3.org/2000/svg'", "")
                .replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !absolute.contains("http://") && !absolute.contains("https://"),
                "{} names an absolute URL; the page must work offline",
                asset.name
            );
        }
    }

    #[test]
    fn etags_follow_the_content() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        let mut headers = HeaderMap::new();
        let first = cached(&headers, "text/css", "body{}".into());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        headers.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            cached(&headers, "text/css", "body{}".into()).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            cached(&headers, "text/css", "body{color:red}".into()).status(),
            StatusCode::OK
        );
    }
}
