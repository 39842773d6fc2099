//! Tokens as the tests need them: real JWTs signed with the test server's key, and the bad ones
//! the authentication tests throw at it (another secret, expired, `alg: none`).
//!
//! [`SECRET`] is the HS256 secret of every [`crate::TestServer`] unless its builder sets other JWT
//! settings; [`RSA_PRIVATE_PEM`] / [`RSA_PUBLIC_PEM`] are a key pair made for the tests (in
//! `crates/testkit/keys/`, with the files the CLI tests pass to `--jwt-public-key`). Nothing here
//! verifies tokens: that is the server's job, and the tests check it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The HS256 secret of every test server (at least 32 bytes, as the server demands).
pub const SECRET: &str = "integration-test-secret-0123456789abcdef";

/// A secret that is not the server's, for forged tokens.
const OTHER_SECRET: &[u8] = b"not-the-server-secret-not-the-server";

/// How long the tokens minted here stay valid.
const TTL_S: i64 = 600;

/// The private half of the tests' RSA key pair (PEM).
pub const RSA_PRIVATE_PEM: &str = include_str!("../keys/rsa_private.pem");
/// The public half of the tests' RSA key pair (PEM).
pub const RSA_PUBLIC_PEM: &str = include_str!("../keys/rsa_public.pem");

/// The folder holding the test keys as files (`rsa_private.pem`, `rsa_public.pem`, and a
/// `README.md` that is not a key), for tests that pass a key file to the binary.
pub fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("keys")
}

/// Seconds since the epoch, as JWT time claims count.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `{"sub": sub, "exp": <ten minutes from now>}`: the least a token the server accepts carries.
pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + TTL_S})
}

/// A valid HS256 token for `sub`, with `scope` when given, valid for ten minutes.
pub fn token(sub: &str, scope: Option<&str>) -> String {
    let mut claims = claims(sub);
    if let Some(scope) = scope {
        claims["scope"] = json!(scope);
    }
    sign(&claims)
}

/// A valid HS256 token for `sub` in tenant `org` (`org_id`), allowed to upload usage
/// (`scope: usage:write`).
pub fn usage_writer_token(sub: &str, org: &str) -> String {
    let mut claims = claims(sub);
    claims["org_id"] = json!(org);
    claims["scope"] = json!("usage:write");
    sign(&claims)
}

/// Signs arbitrary claims with [`SECRET`] (HS256).
pub fn sign(claims: &Value) -> String {
    sign_hs256(claims, SECRET.as_bytes())
}

/// Signs arbitrary claims with another HS256 secret (a forgery, or another server's secret).
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    sign_with(claims, Algorithm::HS256, &EncodingKey::from_secret(secret))
}

/// Signs arbitrary claims with the tests' RSA private key (RS256).
///
/// # Panics
/// Never with the key shipped in `keys/`; the message says so if that file is damaged.
pub fn sign_rs256(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes())
        .expect("keys/rsa_private.pem is an RSA private key");
    sign_with(claims, Algorithm::RS256, &key)
}

/// Signs arbitrary claims with any algorithm and key.
///
/// # Panics
/// When the key does not suit the algorithm.
pub fn sign_with(claims: &Value, algorithm: Algorithm, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, key)
        .unwrap_or_else(|err| panic!("cannot sign a {algorithm:?} test token: {err}"))
}

/// A well-formed token for `sub` signed with a secret that is not the server's.
pub fn forged_token(sub: &str) -> String {
    sign_hs256(&claims(sub), OTHER_SECRET)
}

/// A token correctly signed with [`SECRET`] that expired an hour ago.
pub fn expired_token(sub: &str) -> String {
    sign(&json!({"sub": sub, "exp": now() - 3600}))
}

/// An unsigned token, built by hand: header `{"alg":"none"}` and an empty signature.
pub fn alg_none_token(sub: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims(sub).to_string());
    format!("{header}.{claims}.")
}

/// A token's claims, read without verifying anything (to look at what a tool minted).
///
/// # Panics
/// When `token` is not three base64url parts with JSON in the middle.
pub fn decode_claims(token: &str) -> Value {
    let payload = token
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {token:?}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|err| panic!("JWT payload is not base64url ({err}): {token:?}"));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|err| panic!("JWT payload is not JSON ({err}): {token:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn verifies(token: &str, algorithm: Algorithm, key: &DecodingKey) -> bool {
        jsonwebtoken::decode::<Value>(token, key, &Validation::new(algorithm)).is_ok()
    }

    #[test]
    fn good_tokens_verify_with_the_server_key_and_bad_ones_do_not() {
        let secret = DecodingKey::from_secret(SECRET.as_bytes());
        let good = token("alice", Some("usage:write"));
        assert!(verifies(&good, Algorithm::HS256, &secret));
        let claims = decode_claims(&good);
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["scope"], "usage:write");
        let writer = decode_claims(&usage_writer_token("bob", "acme"));
        assert_eq!(
            (writer["org_id"].as_str(), writer["scope"].as_str()),
            (Some("acme"), Some("usage:write"))
        );

        assert!(!verifies(&forged_token("alice"), Algorithm::HS256, &secret));
        assert!(!verifies(
            &expired_token("alice"),
            Algorithm::HS256,
            &secret
        ));
        assert!(decode_claims(&expired_token("alice"))["exp"].as_i64() < Some(now()));
        let none = alg_none_token("alice");
        assert!(none.ends_with('.'), "{none}");
        assert!(!verifies(&none, Algorithm::HS256, &secret));
        assert_eq!(decode_claims(&none)["sub"], "alice");

        let public = DecodingKey::from_rsa_pem(RSA_PUBLIC_PEM.as_bytes()).unwrap();
        assert!(verifies(&sign_rs256(&claims), Algorithm::RS256, &public));
        assert!(keys_dir().join("rsa_public.pem").is_file());
    }
}
