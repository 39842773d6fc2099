//! Browser-facing security: headers on every HTTP response, the CORS allow-list, and the origin
//! rule for WebSocket upgrades.
//!
//! - **Headers** ([`security_headers`]): `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
//!   `Referrer-Policy: no-referrer`, a `Content-Security-Policy` that allows only this origin's
//!   own scripts, styles, images and connections (no inline script, no framing), the
//!   cross-origin isolation headers, and `Cache-Control: no-store`. A handler that sets one of
//!   these headers itself (e.g. a cacheable static asset) keeps its own value.
//! - **CORS**: closed by default. Origins listed in `ServerConfig::cors_allowed_origins` get
//!   `Access-Control-Allow-Origin` (their own origin, never `*`) and answered preflights; a
//!   preflight from any other origin gets 403 `FORBIDDEN`. Credentials are bearer tokens, never
//!   cookies, so `Access-Control-Allow-Credentials` is not sent.
//! - **WebSocket origins** ([`upgrade_origin_allowed`]): browsers do not apply CORS to WebSockets,
//!   so the upgrade checks `Origin` itself: absent (not a browser), the server's own origin, or an
//!   allowed one; anything else (including `null`) is refused with 403.
//!
//! This module must not log header values: an `Origin` is harmless, but the same requests carry
//! `Authorization`.

use crate::AppState;
use crate::error::AppError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The page may load scripts, styles, images and fonts from this origin only and talk to this
/// origin only (CSP Level 3 lets `'self'` cover same-host `ws:`/`wss:`). Inline styles are allowed:
/// they cannot run code, and SVG charts use them.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Set on every response unless the handler set the header itself.
const HEADERS: [(HeaderName, &str); 8] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    ),
    (
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    ),
    // API answers are per user and change constantly; a shared cache must never keep them.
    (header::CACHE_CONTROL, "no-store"),
];

/// Methods and request headers a cross-origin caller may use.
const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
/// `last-event-id`: an AG-UI front end resumes a stream with it.
const ALLOWED_HEADERS: &str = "authorization, content-type, last-event-id";
/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Middleware: CORS for allowed origins, then the security headers on whatever the answer is.
pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let allowed_origin = origin
        .as_deref()
        .filter(|origin| origin_is_listed(origin, &state.config.cors_allowed_origins))
        .and_then(|origin| HeaderValue::from_str(origin).ok());
    let is_preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    let mut response = if is_preflight {
        match &allowed_origin {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => AppError::Forbidden(format!(
                "cross-origin requests from {} are not allowed; the server operator can allow an origin with --cors-allow-origin",
                origin.as_deref().map_or("this origin".to_owned(), |o| format!(
                    "{:?}",
                    o.chars().take(100).collect::<String>()
                ))
            ))
            .into_response(),
        }
    } else {
        next.run(request).await
    };

    let headers = response.headers_mut();
    if let Some(origin) = allowed_origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if is_preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            );
        } else {
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("retry-after"),
            );
        }
    }
    if origin.is_some() {
        // The answer depends on the Origin: caches must not serve one origin's answer to another.
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    add_security_headers(headers);
    response
}

/// Adds the security headers a response does not already have.
pub fn add_security_headers(headers: &mut HeaderMap) {
    for (name, value) in &HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
    }
}

/// Whether `origin` is on the allow-list: exact, ASCII case-insensitive, trailing `/` ignored.
pub fn origin_is_listed(origin: &str, allowed: &[String]) -> bool {
    let origin = origin.trim().trim_end_matches('/');
    origin != "null"
        && allowed.iter().any(|listed| {
            listed
                .trim()
                .trim_end_matches('/')
                .eq_ignore_ascii_case(origin)
        })
}

/// Whether a WebSocket upgrade's `Origin` may open a socket: no `Origin` (not a browser), the
/// server's own origin (the `Host` the request was sent to), or an allowed origin.
pub fn upgrade_origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin_is_listed(origin, allowed) {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    same_origin(origin, host)
}

/// Whether `origin` (`scheme://authority`) names `host` (`authority` of the request). Default
/// ports are equal to their absence.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.trim().split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let normalise = |authority: &str| {
        let authority = authority.trim().trim_end_matches('/').to_ascii_lowercase();
        match authority.rsplit_once(':') {
            // An IPv6 literal without a port ends in `]`, not in digits.
            Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                (name.to_owned(), port.to_owned())
            }
            _ => (authority, default_port.to_owned()),
        }
    };
    normalise(authority) == normalise(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    #[test]
    fn listed_origins_match_exactly() {
        let allowed = vec!["https://app.example.com".to_owned()];
        assert!(origin_is_listed("https://app.example.com", &allowed));
        assert!(origin_is_listed("HTTPS://APP.example.com/", &allowed));
        assert!(!origin_is_listed(
            "https://app.example.com.evil.io",
            &allowed
        ));
        assert!(!origin_is_listed("http://app.example.com", &allowed));
        assert!(!origin_is_listed("null", &allowed));
        assert!(!origin_is_listed("https://app.example.com", &[]));
    }

    #[test]
    fn upgrades_without_origin_or_from_the_same_origin_are_allowed() {
        assert!(upgrade_origin_allowed(&HeaderMap::new(), &[]));
        let same = headers(&[
            (header::ORIGIN, "http://127.0.0.1:8080"),
            (header::HOST, "127.0.0.1:8080"),
        ]);
        assert!(upgrade_origin_allowed(&same, &[]));
        let default_port = headers(&[
            (header::ORIGIN, "https://chat.example.com"),
            (header::HOST, "chat.example.com:443"),
        ]);
        assert!(upgrade_origin_allowed(&default_port, &[]));
        let ipv6 = headers(&[
            (header::ORIGIN, "http://[::1]:9000"),
            (header::HOST, "[::1]:9000"),
        ]);
        assert!(upgrade_origin_allowed(&ipv6, &[]));
    }

    #[test]
    fn upgrades_from_other_origins_need_the_allow_list() {
        let other = headers(&[
            (header::ORIGIN, "https://evil.example"),
            (header::HOST, "127.0.0.1:8080"),
        ]);
        assert!(!upgrade_origin_allowed(&other, &[]));
        assert!(upgrade_origin_allowed(
            &other,
            &["https://evil.example".to_owned()]
        ));
        let other_port = headers(&[
            (header::ORIGIN, "http://127.0.0.1:9999"),
            (header::HOST, "127.0.0.1:8080"),
        ]);
        assert!(!upgrade_origin_allowed(&other_port, &[]));
        let null = headers(&[(header::ORIGIN, "null"), (header::HOST, "127.0.0.1:8080")]);
        assert!(!upgrade_origin_allowed(&null, &[]));
        let file = headers(&[
            (header::ORIGIN, "file://"),
            (header::HOST, "127.0.0.1:8080"),
        ]);
        assert!(!upgrade_origin_allowed(&file, &[]));
    }

    #[test]
    fn handler_headers_win() {
        let mut map = headers(&[(header::CACHE_CONTROL, "public, max-age=3600")]);
        add_security_headers(&mut map);
        assert_eq!(map[header::CACHE_CONTROL], "public, max-age=3600");
        assert_eq!(map[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(map[header::X_FRAME_OPTIONS], "DENY");
        assert!(
            map[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
    }
}
