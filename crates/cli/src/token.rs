//! `agentwire token`: prints an HS256 JWT for development and tests.

use crate::cli::TokenArgs;
use anyhow::{Context, bail};
use serde::Serialize;

/// Secrets shorter than this are refused: an HS256 key should be at least as long as its hash.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Serialize)]
pub struct Claims<'a> {
    pub sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<&'a str>,
    pub scope: &'a str,
    pub iat: u64,
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<&'a str>,
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let secret = require_secret(args.jwt_secret.as_deref())?;
    let ttl = crate::duration::parse(&args.ttl).map_err(anyhow::Error::msg)?;
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let claims = Claims {
        sub: &args.sub,
        org_id: args.org.as_deref(),
        scope: &args.scope,
        iat: now,
        exp: now + ttl.as_secs(),
        iss: args.issuer.as_deref(),
        aud: args.audience.as_deref(),
    };
    println!("{}", sign(&claims, secret.as_bytes())?);
    Ok(())
}

/// Signs claims with HS256.
///
/// # Errors
/// When the claims cannot be encoded.
pub fn sign(claims: &Claims<'_>, secret: &[u8]) -> anyhow::Result<String> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .context("signing the token failed")
}

/// The configured secret, checked for length.
///
/// # Errors
/// When it is missing or shorter than [`MIN_SECRET_BYTES`].
pub fn require_secret(secret: Option<&str>) -> anyhow::Result<String> {
    let Some(secret) = secret else {
        bail!(
            "no JWT secret: pass --jwt-secret or set AGENTWIRE_JWT_SECRET (at least {MIN_SECRET_BYTES} bytes, e.g. `openssl rand -hex 32`)"
        );
    };
    if secret.len() < MIN_SECRET_BYTES {
        bail!(
            "the JWT secret is {} bytes; use at least {MIN_SECRET_BYTES} (e.g. `openssl rand -hex 32`)",
            secret.len()
        );
    }
    Ok(secret.to_owned())
}
