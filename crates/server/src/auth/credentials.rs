//! Where a token comes from: the `Authorization` header, the `jwt.` subprotocol item, and (never
//! read, only noticed) the URL query string.
//!
//! These functions find and decode a credential; they do not judge it ([`super::JwtVerifier`]
//! does). They must not log or echo what they find.

use super::{AuthError, BASE64URL_LENIENT};
use axum::http::{HeaderMap, header};
use base64::Engine as _;

/// The bearer token of a request, if it has an `Authorization` header.
///
/// # Errors
/// [`AuthError::BadScheme`] when the header is present but is not `Bearer <token>`: a client that
/// sends credentials should learn that they were not understood rather than be treated as anonymous.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::BadScheme)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::BadScheme)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::BadScheme);
    }
    Ok(Some(token))
}

/// The subprotocol items a client offered, in order (`Sec-WebSocket-Protocol`, comma-separated,
/// possibly over several headers).
pub fn offered_subprotocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// The JWT carried in a `jwt.<base64url>` subprotocol item, if one was offered.
///
/// # Errors
/// [`AuthError::BadSubprotocolItem`] when the item is not base64url of UTF-8 text.
pub fn subprotocol_token(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let Some(encoded) = offered_subprotocols(headers)
        .find_map(|item| item.strip_prefix(agentwire_protocol::JWT_SUBPROTOCOL_PREFIX))
    else {
        return Ok(None);
    };
    let bytes = BASE64URL_LENIENT
        .decode(encoded)
        .map_err(|_| AuthError::BadSubprotocolItem)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| AuthError::BadSubprotocolItem)
}

/// The token presented on an HTTP request or WebSocket upgrade: `Authorization: Bearer` first,
/// then the `jwt.` subprotocol item. `None` when the request carries neither.
///
/// # Errors
/// When a credential is present but unreadable (see [`bearer_token`], [`subprotocol_token`]).
pub fn upgrade_token(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    if let Some(token) = bearer_token(headers)? {
        return Ok(Some(token.to_owned()));
    }
    subprotocol_token(headers)
}

/// Whether a query string carries something that looks like a token. Such tokens are ignored (a
/// URL is logged by every proxy on the way), but the client is told why it is not authenticated.
pub fn query_has_token(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        query.split('&').any(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            matches!(
                name.to_ascii_lowercase().as_str(),
                "token" | "access_token" | "jwt" | "auth" | "authorization"
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    #[test]
    fn bearer_extraction() {
        assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
        assert_eq!(
            bearer_token(&headers(&[(header::AUTHORIZATION, "Bearer abc.def.ghi")])),
            Ok(Some("abc.def.ghi"))
        );
        assert_eq!(
            bearer_token(&headers(&[(header::AUTHORIZATION, "bearer   abc ")])),
            Ok(Some("abc"))
        );
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "abc"] {
            assert_eq!(
                bearer_token(&headers(&[(header::AUTHORIZATION, bad)])),
                Err(AuthError::BadScheme),
                "{bad}"
            );
        }
    }

    #[test]
    fn subprotocol_extraction_padded_and_unpadded() {
        // Any text: extraction decodes the item, verification is another step.
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkYXZlIn0.c2lnbmF0dXJl".to_owned();
        let unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token);
        let padded = base64::engine::general_purpose::URL_SAFE.encode(&token);
        for item in [unpadded, padded] {
            let map = headers(&[(
                header::SEC_WEBSOCKET_PROTOCOL,
                &format!("agentwire.v1, jwt.{item}"),
            )]);
            assert_eq!(subprotocol_token(&map), Ok(Some(token.clone())));
            assert_eq!(upgrade_token(&map), Ok(Some(token.clone())));
        }
        let map = headers(&[(header::SEC_WEBSOCKET_PROTOCOL, "agentwire.v1")]);
        assert_eq!(subprotocol_token(&map), Ok(None));
        let map = headers(&[(header::SEC_WEBSOCKET_PROTOCOL, "jwt.***")]);
        assert_eq!(subprotocol_token(&map), Err(AuthError::BadSubprotocolItem));
    }

    #[test]
    fn bearer_wins_over_subprotocol() {
        let map = headers(&[
            (header::AUTHORIZATION, "Bearer from-header"),
            (header::SEC_WEBSOCKET_PROTOCOL, "jwt.ZnJvbS1wcm90b2NvbA"),
        ]);
        assert_eq!(upgrade_token(&map), Ok(Some("from-header".into())));
    }

    #[test]
    fn query_tokens_are_noticed_not_used() {
        assert!(query_has_token(Some("token=abc")));
        assert!(query_has_token(Some("x=1&access_token=abc")));
        assert!(!query_has_token(Some("x=1")));
        assert!(!query_has_token(None));
    }
}
