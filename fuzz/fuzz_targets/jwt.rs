//! Fuzzes how a token is found and checked (`agentwire_server::auth`): the `Authorization` and
//! `Sec-WebSocket-Protocol` extraction, the query-string detector, and `JwtVerifier::verify`
//! against an HS256 verifier (with `iss` and `aud` required) and an RS256 one.
//!
//! Random bytes almost never carry a valid signature, so one mode signs fuzzed header and claims
//! JSON with the HS256 secret: the claim checks behind the signature get fuzzed too.
//!
//! Beyond "never panics": an accepted token names a user and a tenant within the documented
//! bounds, and no refusal repeats the token it refuses.
#![no_main]

use agentwire_server::JwtConfig;
use agentwire_server::auth::{self, JwtVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, header};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

const SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-secret-0123";
const RSA_PUBLIC: &str = include_str!("../../crates/testkit/keys/rsa_public.pem");

static VERIFIERS: LazyLock<Vec<JwtVerifier>> = LazyLock::new(|| {
    let mut hs = JwtConfig::hs256(SECRET);
    hs.issuer = Some("fuzz-issuer".into());
    hs.audience = Some("fuzz-audience".into());
    let open = JwtConfig::hs256(SECRET);
    let rsa = JwtConfig::public_key(Algorithm::RS256, RSA_PUBLIC);
    [hs, open, rsa]
        .iter()
        .map(|config| JwtVerifier::new(config).expect("the fuzz verifiers are valid"))
        .collect()
});

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(token) = std::str::from_utf8(rest) {
                verify_everywhere(token);
            }
        }
        1 => from_headers(rest),
        2 => signed(rest),
        _ => {
            if let Ok(query) = std::str::from_utf8(rest) {
                let _ = auth::query_has_token(Some(query));
            }
        }
    }
});

fn verify_everywhere(token: &str) {
    for verifier in VERIFIERS.iter() {
        match verifier.verify(token) {
            Ok(identity) => {
                for id in [&identity.principal.user_id, &identity.principal.tenant_id] {
                    assert!(!id.is_empty(), "an empty id was accepted");
                    assert!(
                        id.chars().count() <= 256,
                        "an id of {} chars",
                        id.chars().count()
                    );
                    assert!(
                        !id.chars().any(char::is_control),
                        "an id with control characters"
                    );
                }
            }
            Err(err) => {
                let message = err.to_string();
                assert!(!message.is_empty());
                let token = token.trim();
                if token.len() >= 24 {
                    assert!(!message.contains(token), "a refusal repeated the token");
                }
            }
        }
    }
}

fn from_headers(bytes: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(bytes) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, value.clone());
    if let Ok(Some(token)) = auth::bearer_token(&headers) {
        verify_everywhere(token);
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    let _ = auth::offered_subprotocols(&headers).count();
    if let Ok(Some(token)) = auth::upgrade_token(&headers) {
        verify_everywhere(&token);
    }
}

/// `header JSON 0x00 claims JSON`, signed with the HS256 secret.
fn signed(bytes: &[u8]) {
    let (header, claims) = match bytes.iter().position(|b| *b == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], bytes),
    };
    let message = format!("{}.{}", b64(header), b64(claims));
    let Ok(signature) = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    ) else {
        return;
    };
    verify_everywhere(&format!("{message}.{signature}"));
}
