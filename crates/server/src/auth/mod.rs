//! Who is calling: JWT verification and the places a token may come from.
//!
//! A token is accepted from, in this order (PROTOCOL.md section 2; finding it is `credentials`):
//! 1. `Authorization: Bearer <JWT>` on the request (HTTP and the WebSocket upgrade);
//! 2. a WebSocket subprotocol item `jwt.<base64url(JWT)>` (browsers cannot set headers; padded
//!    base64 is accepted too);
//! 3. the first `authenticate` frame on the socket (handled in [`crate::ws`]).
//!
//! A token in the URL query string is never read: URLs end up in proxy and access logs.
//!
//! Verification pins the algorithm from [`JwtConfig`]: a token whose header names any other
//! algorithm, `none` included, is refused before its signature is looked at. An HMAC secret shorter
//! than [`MIN_SECRET_BYTES`] is refused when the verifier is built. `sub` and `exp` are
//! required; `iss` and `aud` are checked only when configured. Claims used: `sub` (the user),
//! `org_id` (the tenant), `scope` (space-separated permissions, e.g. `usage:write`).
//!
//! Identities are taken as signed, never tidied: a `sub` or `org_id` with leading or trailing
//! whitespace is refused rather than trimmed, so `" alice"` can never become `alice`. A token
//! without `org_id` reads its user's personal tenant, [`personal_tenant`] (`user:<sub>`); the
//! `user:` prefix is reserved, so an `org_id` that starts with it is refused and no organization
//! can share a personal tenant's data.
//!
//! This module must never log or echo a token, not even in part: [`AuthError`] messages say what is
//! wrong and how to get a good token, without repeating the one presented.

use crate::config::{JwtConfig, JwtKey};
use agentwire_engine::Principal;
use agentwire_protocol::ErrorCode;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

mod credentials;

pub use credentials::{
    bearer_token, offered_subprotocols, query_has_token, subprotocol_token, upgrade_token,
};

/// The permission `POST /api/usage` needs.
pub const SCOPE_USAGE_WRITE: &str = "usage:write";

/// How a person gets a fresh development token; appended to messages about bad tokens.
const TOKEN_HINT: &str = "get a new one with `agentwire token --sub USER`";

/// Shortest HMAC secret accepted: an HS256 key should be at least as long as its hash (RFC 7518
/// section 3.2), so it cannot be guessed offline from one captured token.
pub const MIN_SECRET_BYTES: usize = 32;

/// Longest `sub` / `org_id` accepted; they become database keys and log fields.
const MAX_ID_CHARS: usize = 256;

/// What a personal tenant's id starts with; reserved: no `org_id` may start with it.
pub const PERSONAL_TENANT_PREFIX: &str = "user:";

/// The tenant of a user whose token names no organization: `user:<sub>`. It cannot collide with
/// an organization's id, since `org_id`s starting with [`PERSONAL_TENANT_PREFIX`] are refused.
pub fn personal_tenant(user_id: &str) -> String {
    format!("{PERSONAL_TENANT_PREFIX}{user_id}")
}

/// base64url with or without `=` padding (JWT parts and `jwt.` subprotocol items).
const BASE64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Identity {
    pub principal: Principal,
    /// Permissions from the `scope` claim.
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Identity {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Why a caller was not authenticated. Every message says what to do; none repeats the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no credentials: send `Authorization: Bearer <JWT>`, a `jwt.<base64url JWT>` subprotocol, or an `authenticate` frame; {TOKEN_HINT}"
    )]
    Missing,
    #[error("the Authorization header must be `Bearer <JWT>`")]
    BadScheme,
    #[error(
        "the `jwt.` subprotocol item must carry the JWT encoded as base64url; it could not be decoded"
    )]
    BadSubprotocolItem,
    #[error("token is not a signed JWT ({0}); {TOKEN_HINT}")]
    Malformed(&'static str),
    #[error("token is unsigned (alg `none`); this server only accepts {expected:?}-signed tokens")]
    Unsigned { expected: Algorithm },
    #[error("token is signed with {found}; this server only accepts {expected:?}")]
    DisallowedAlgorithm { found: String, expected: Algorithm },
    #[error(
        "token signature does not verify with this server's key; was it minted for another server? {TOKEN_HINT}"
    )]
    BadSignature,
    #[error("token expired at {at}; {TOKEN_HINT}")]
    Expired { at: String },
    #[error("token is not valid yet (`nbf` is in the future); check the clocks")]
    NotYetValid,
    #[error("token has no `{0}` claim; {TOKEN_HINT}")]
    MissingClaim(String),
    #[error("token claim `{claim}` {problem}; {TOKEN_HINT}")]
    InvalidClaim {
        claim: &'static str,
        problem: &'static str,
    },
    #[error("token issuer (`iss`) is not {expected:?}; {TOKEN_HINT}")]
    WrongIssuer { expected: String },
    #[error("token audience (`aud`) does not include {expected:?}; {TOKEN_HINT}")]
    WrongAudience { expected: String },
    #[error("token was refused; {TOKEN_HINT}")]
    Rejected,
}

impl AuthError {
    /// `AUTH_REQUIRED` when nothing was presented, `AUTH_FAILED` otherwise.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::AuthRequired,
            _ => ErrorCode::AuthFailed,
        }
    }
}

/// Why the JWT settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("the JWT secret is empty; set a secret of at least 32 random bytes")]
    EmptySecret,
    #[error(
        "the JWT secret is {len} bytes; use at least {MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -hex 32`)"
    )]
    ShortSecret { len: usize },
    #[error("{algorithm:?} needs a {needs}; got a {got}")]
    WrongKeyKind {
        algorithm: Algorithm,
        needs: &'static str,
        got: &'static str,
    },
    #[error("the {algorithm:?} public key is not a valid PEM key: {source}")]
    BadPem {
        algorithm: Algorithm,
        source: jsonwebtoken::errors::Error,
    },
}

/// Verifies tokens against the configured key and rules. Cheap to share behind an `Arc`.
pub struct JwtVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The claims we read. Everything is optional here because jsonwebtoken deserializes the claims
/// before it checks the required ones; typing `sub` as `String` would turn "no `sub`" into a vague
/// JSON error instead of [`AuthError::MissingClaim`].
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    org_id: Option<Value>,
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
}

impl JwtVerifier {
    /// Builds a verifier from settings.
    ///
    /// # Errors
    /// An empty secret, a PEM key that does not parse, or key material of the wrong kind for the
    /// algorithm.
    pub fn new(config: &JwtConfig) -> Result<JwtVerifier, AuthConfigError> {
        use jsonwebtoken::AlgorithmFamily as Family;
        let algorithm = config.algorithm;
        let family = algorithm.family();
        let key = match (&config.key, family) {
            (JwtKey::Secret(secret), Family::Hmac) => {
                if secret.is_empty() {
                    return Err(AuthConfigError::EmptySecret);
                }
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(AuthConfigError::ShortSecret { len: secret.len() });
                }
                DecodingKey::from_secret(secret)
            }
            (JwtKey::PublicKeyPem(pem), Family::Rsa) => {
                DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|source| AuthConfigError::BadPem { algorithm, source })?
            }
            (JwtKey::PublicKeyPem(pem), Family::Ec) => DecodingKey::from_ec_pem(pem.as_bytes())
                .map_err(|source| AuthConfigError::BadPem { algorithm, source })?,
            (JwtKey::PublicKeyPem(pem), Family::Ed) => DecodingKey::from_ed_pem(pem.as_bytes())
                .map_err(|source| AuthConfigError::BadPem { algorithm, source })?,
            (JwtKey::Secret(_), _) => {
                return Err(AuthConfigError::WrongKeyKind {
                    algorithm,
                    needs: "PEM public key",
                    got: "shared secret",
                });
            }
            (JwtKey::PublicKeyPem(_), _) => {
                return Err(AuthConfigError::WrongKeyKind {
                    algorithm,
                    needs: "shared secret",
                    got: "PEM public key",
                });
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway_s;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        match &config.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".to_owned());
            }
            // Not configured: a token's `aud` is not our business.
            None => validation.validate_aud = false,
        }
        Ok(JwtVerifier {
            algorithm,
            key,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    /// The pinned algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Verifies a token and reads the caller from it.
    ///
    /// # Errors
    /// An [`AuthError`] naming what is wrong: shape, algorithm, signature, expiry, or claims.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Malformed("the token is empty"));
        }
        // Look at the header ourselves first, so that `alg: none` and other algorithms get a
        // precise answer instead of a generic decoding error.
        let alg = header_alg(token)?;
        if alg.eq_ignore_ascii_case("none") {
            return Err(AuthError::Unsigned {
                expected: self.algorithm,
            });
        }
        if alg != format!("{:?}", self.algorithm) {
            return Err(AuthError::DisallowedAlgorithm {
                found: truncate(&alg, 16).to_owned(),
                expected: self.algorithm,
            });
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|err| self.map_error(token, err))?;
        let claims = data.claims;
        let user_id = match claims.sub {
            Some(Value::String(sub)) => sub,
            None | Some(Value::Null) => return Err(AuthError::MissingClaim("sub".to_owned())),
            Some(_) => {
                return Err(AuthError::InvalidClaim {
                    claim: "sub",
                    problem: "must be a string",
                });
            }
        };
        check_id("sub", &user_id)?;
        let tenant_id = match claims.org_id {
            None | Some(Value::Null) => personal_tenant(&user_id),
            Some(Value::String(org)) if org.trim().is_empty() => personal_tenant(&user_id),
            Some(Value::String(org)) => {
                check_id("org_id", &org)?;
                if org.starts_with(PERSONAL_TENANT_PREFIX) {
                    return Err(AuthError::InvalidClaim {
                        claim: "org_id",
                        problem: "must not start with `user:`, which names personal tenants",
                    });
                }
                org
            }
            Some(_) => {
                return Err(AuthError::InvalidClaim {
                    claim: "org_id",
                    problem: "must be a string",
                });
            }
        };
        let scopes = match claims.scope {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(scope)) => scope.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(_) => {
                return Err(AuthError::InvalidClaim {
                    claim: "scope",
                    problem: "must be a space-separated string",
                });
            }
        };
        Ok(Identity {
            principal: Principal { user_id, tenant_id },
            scopes,
            expires_at: claims
                .exp
                .as_ref()
                .and_then(Value::as_i64)
                .and_then(|exp| DateTime::from_timestamp(exp, 0)),
        })
    }

    fn map_error(&self, token: &str, err: jsonwebtoken::errors::Error) -> AuthError {
        match err.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::ExpiredSignature => {
                // The signature was checked before the expiry, so reading `exp` unverified is fine;
                // it only goes into the message.
                let at = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token)
                    .ok()
                    .and_then(|claims| claims.get("exp").and_then(Value::as_i64))
                    .and_then(|exp| DateTime::from_timestamp(exp, 0))
                    .map_or_else(
                        || "an earlier time".to_owned(),
                        |at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    );
                AuthError::Expired { at }
            }
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer {
                expected: self.issuer.clone().unwrap_or_default(),
            },
            ErrorKind::InvalidAudience => AuthError::WrongAudience {
                expected: self.audience.clone().unwrap_or_default(),
            },
            ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
            ErrorKind::InvalidClaimFormat(claim) => AuthError::InvalidClaim {
                claim: match claim.as_str() {
                    "exp" => "exp",
                    "nbf" => "nbf",
                    _ => "a time claim",
                },
                problem: "must be a number of seconds since 1970",
            },
            ErrorKind::InvalidAlgorithm => AuthError::DisallowedAlgorithm {
                found: "another algorithm".to_owned(),
                expected: self.algorithm,
            },
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                AuthError::Malformed("its parts are not base64url JSON")
            }
            ErrorKind::Json(_) => AuthError::Malformed("the claims are not a JSON object"),
            _ => AuthError::Rejected,
        }
    }
}

/// Reads `alg` from a compact JWS without trusting anything else in it.
fn header_alg(token: &str) -> Result<String, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_claims), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "expected three dot-separated parts: header.claims.signature",
        ));
    };
    let bytes = BASE64URL_LENIENT
        .decode(header)
        .map_err(|_| AuthError::Malformed("the header is not base64url"))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("the header is not JSON"))?;
    match value.get("alg") {
        Some(Value::String(alg)) => Ok(alg.clone()),
        _ => Err(AuthError::Malformed("the header has no `alg`")),
    }
}

fn check_id(claim: &'static str, id: &str) -> Result<(), AuthError> {
    if id.trim().is_empty() {
        return Err(AuthError::InvalidClaim {
            claim,
            problem: "is empty",
        });
    }
    // Trimming would turn " alice" into another user's name; refusing says what is wrong.
    if id.trim() != id {
        return Err(AuthError::InvalidClaim {
            claim,
            problem: "must not start or end with whitespace",
        });
    }
    if id.chars().count() > MAX_ID_CHARS || id.chars().any(char::is_control) {
        return Err(AuthError::InvalidClaim {
            claim,
            problem: "must be at most 256 printable characters",
        });
    }
    Ok(())
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((idx, _)) => &text[..idx],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    #![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &str = "test-secret-test-secret-test-secret";

    // A P-256 key pair made for these tests only.
    const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSwfMXUPZci29A4Gf
cYos5Ig/A2WmNvMTysquOG6WcMChRANCAAQ9oyY5qjJTxrQjXwYlKWOF3lqmjCBK
Vu6fdhuRbR3wsgjy3P2hm5+IHA8T+955fqPCch5dHsx0fZw8irKDdpxL
-----END PRIVATE KEY-----
";
    const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPaMmOaoyU8a0I18GJSljhd5apowg
Slbun3YbkW0d8LII8tz9oZufiBwPE/veeX6jwnIeXR7MdH2cPIqyg3acSw==
-----END PUBLIC KEY-----
";

    fn now() -> i64 {
        Utc::now().timestamp()
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(&JwtConfig::hs256(SECRET)).unwrap()
    }

    fn mint(claims: Value) -> String {
        mint_with(Algorithm::HS256, SECRET.as_bytes(), claims)
    }

    fn mint_with(alg: Algorithm, secret: &[u8], claims: Value) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn good_token_gives_user_tenant_and_scopes() {
        let token = mint(json!({
            "sub": "alice", "org_id": "acme", "scope": "usage:write runs:read", "exp": now() + 600
        }));
        let id = verifier().verify(&token).unwrap();
        assert_eq!(id.principal.user_id, "alice");
        assert_eq!(id.principal.tenant_id, "acme");
        assert!(id.has_scope(SCOPE_USAGE_WRITE));
        assert!(!id.has_scope("admin"));
        assert!(id.expires_at.is_some());
    }

    #[test]
    fn without_org_id_the_tenant_is_the_users_personal_one() {
        let token = mint(json!({"sub": "bob", "exp": now() + 600}));
        let id = verifier().verify(&token).unwrap();
        assert_eq!(id.principal.tenant_id, "user:bob");
        assert!(id.scopes.is_empty());
        let blank = mint(json!({"sub": "bob", "org_id": " ", "exp": now() + 600}));
        assert_eq!(
            verifier().verify(&blank).unwrap().principal.tenant_id,
            "user:bob"
        );
    }

    #[test]
    fn a_personal_tenant_never_collides_with_an_organization() {
        // A user named like an organization does not read the organization's data.
        let personal = mint(json!({"sub": "acme", "exp": now() + 600}));
        let org = mint(json!({"sub": "alice", "org_id": "acme", "exp": now() + 600}));
        assert_ne!(
            verifier().verify(&personal).unwrap().principal.tenant_id,
            verifier().verify(&org).unwrap().principal.tenant_id
        );
        // And no organization can name itself into a personal tenant.
        let squatter = mint(json!({"sub": "mallory", "org_id": "user:bob", "exp": now() + 600}));
        let err = verifier().verify(&squatter).unwrap_err();
        assert!(
            matches!(
                err,
                AuthError::InvalidClaim {
                    claim: "org_id",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("user:"), "{err}");
    }

    #[test]
    fn identities_are_not_trimmed_into_other_names() {
        for (claims, claim) in [
            (json!({"sub": " alice", "exp": now() + 600}), "sub"),
            (json!({"sub": "alice\t", "exp": now() + 600}), "sub"),
            (
                json!({"sub": "alice", "org_id": "acme ", "exp": now() + 600}),
                "org_id",
            ),
        ] {
            let err = verifier().verify(&mint(claims.clone())).unwrap_err();
            assert_eq!(
                err,
                AuthError::InvalidClaim {
                    claim,
                    problem: "must not start or end with whitespace"
                },
                "{claims}"
            );
        }
    }

    #[test]
    fn expired_token_says_when_and_how_to_get_another() {
        let token = mint(json!({"sub": "alice", "exp": now() - 3600}));
        let err = verifier().verify(&token).unwrap_err();
        assert!(matches!(err, AuthError::Expired { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("expired at 20"), "{message}");
        assert!(message.contains("agentwire token --sub USER"), "{message}");
        assert!(!message.contains(&token));
    }

    #[test]
    fn leeway_tolerates_small_skew() {
        let token = mint(json!({"sub": "alice", "exp": now() - 5}));
        assert!(verifier().verify(&token).is_ok());
    }

    #[test]
    fn bad_signature_is_refused() {
        let token = mint_with(
            Algorithm::HS256,
            b"another-secret-another-secret-xx",
            json!({"sub": "alice", "exp": now() + 600}),
        );
        let err = verifier().verify(&token).unwrap_err();
        assert_eq!(err, AuthError::BadSignature);
        assert_eq!(err.code(), ErrorCode::AuthFailed);
    }

    #[test]
    fn tampered_claims_are_refused() {
        let token = mint(json!({"sub": "alice", "exp": now() + 600}));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = b64(json!({"sub": "mallory", "exp": now() + 600})
            .to_string()
            .as_bytes());
        let err = verifier().verify(&parts.join(".")).unwrap_err();
        assert_eq!(err, AuthError::BadSignature);
    }

    #[test]
    fn alg_none_is_refused() {
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = b64(json!({"sub": "alice", "exp": now() + 600})
            .to_string()
            .as_bytes());
        for token in [
            format!("{header}.{claims}."),
            format!("{header}.{claims}.c2ln"),
        ] {
            let err = verifier().verify(&token).unwrap_err();
            assert!(matches!(err, AuthError::Unsigned { .. }), "{err:?}");
            assert!(err.to_string().contains("HS256"));
        }
        let none_upper = b64(br#"{"alg":"NONE"}"#);
        let err = verifier()
            .verify(&format!("{none_upper}.{claims}."))
            .unwrap_err();
        assert!(matches!(err, AuthError::Unsigned { .. }), "{err:?}");
    }

    #[test]
    fn other_algorithm_is_refused_even_with_the_right_secret() {
        let token = mint_with(
            Algorithm::HS512,
            SECRET.as_bytes(),
            json!({"sub": "alice", "exp": now() + 600}),
        );
        let err = verifier().verify(&token).unwrap_err();
        assert_eq!(
            err,
            AuthError::DisallowedAlgorithm {
                found: "HS512".into(),
                expected: Algorithm::HS256
            }
        );
    }

    #[test]
    fn missing_sub_or_exp_is_refused() {
        let err = verifier()
            .verify(&mint(json!({"exp": now() + 600})))
            .unwrap_err();
        assert_eq!(err, AuthError::MissingClaim("sub".into()));
        let err = verifier()
            .verify(&mint(json!({"sub": "alice"})))
            .unwrap_err();
        assert_eq!(err, AuthError::MissingClaim("exp".into()));
        let err = verifier()
            .verify(&mint(json!({"sub": "  ", "exp": now() + 600})))
            .unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidClaim { claim: "sub", .. }),
            "{err:?}"
        );
        let err = verifier()
            .verify(&mint(json!({"sub": 42, "exp": now() + 600})))
            .unwrap_err();
        assert!(
            matches!(
                err,
                AuthError::MissingClaim(_) | AuthError::InvalidClaim { .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn issuer_and_audience_checked_only_when_configured() {
        let claims =
            json!({"sub": "alice", "exp": now() + 600, "iss": "other", "aud": "elsewhere"});
        // Not configured: ignored.
        assert!(verifier().verify(&mint(claims.clone())).is_ok());

        let mut config = JwtConfig::hs256(SECRET);
        config.issuer = Some("agentwire".into());
        let strict_iss = JwtVerifier::new(&config).unwrap();
        assert_eq!(
            strict_iss.verify(&mint(claims.clone())).unwrap_err(),
            AuthError::WrongIssuer {
                expected: "agentwire".into()
            }
        );
        assert_eq!(
            strict_iss
                .verify(&mint(json!({"sub": "alice", "exp": now() + 600})))
                .unwrap_err(),
            AuthError::MissingClaim("iss".into())
        );
        assert!(
            strict_iss
                .verify(&mint(
                    json!({"sub": "alice", "exp": now() + 600, "iss": "agentwire"})
                ))
                .is_ok()
        );

        let mut config = JwtConfig::hs256(SECRET);
        config.audience = Some("agentwire-api".into());
        let strict_aud = JwtVerifier::new(&config).unwrap();
        assert_eq!(
            strict_aud.verify(&mint(claims)).unwrap_err(),
            AuthError::WrongAudience {
                expected: "agentwire-api".into()
            }
        );
        assert!(
            strict_aud
                .verify(&mint(
                    json!({"sub": "alice", "exp": now() + 600, "aud": ["x", "agentwire-api"]})
                ))
                .is_ok()
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for token in ["abc", "a.b", "a.b.c.d", "!!!.e30.x", "e30.e30.x"] {
            let err = verifier().verify(token).unwrap_err();
            assert!(matches!(err, AuthError::Malformed(_)), "{token}: {err:?}");
        }
        assert_eq!(
            verifier().verify("  ").unwrap_err(),
            AuthError::Malformed("the token is empty")
        );
    }

    #[test]
    fn es256_with_public_key_and_no_algorithm_confusion() {
        let config = JwtConfig::public_key(Algorithm::ES256, EC_PUBLIC);
        let verifier = JwtVerifier::new(&config).unwrap();
        let claims = json!({"sub": "carol", "exp": now() + 600});
        let token = encode(
            &Header::new(Algorithm::ES256),
            &claims,
            &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(verifier.verify(&token).unwrap().principal.user_id, "carol");
        // The classic attack: HS256 "signed" with the public key as the HMAC secret.
        let forged = mint_with(Algorithm::HS256, EC_PUBLIC.as_bytes(), claims);
        assert!(matches!(
            verifier.verify(&forged).unwrap_err(),
            AuthError::DisallowedAlgorithm { .. }
        ));
    }

    #[test]
    fn config_errors_work_with_anyhow_style_callers() {
        fn error_type<E: std::error::Error + Send + Sync + 'static>() {}
        error_type::<AuthConfigError>();
        error_type::<AuthError>();
    }

    #[test]
    fn config_errors() {
        assert!(matches!(
            JwtVerifier::new(&JwtConfig::hs256("")),
            Err(AuthConfigError::EmptySecret)
        ));
        // The 32-byte rule holds for every embedding of the library, not only the CLI.
        assert!(matches!(
            JwtVerifier::new(&JwtConfig::hs256("x".repeat(MIN_SECRET_BYTES - 1))),
            Err(AuthConfigError::ShortSecret { len: 31 })
        ));
        assert!(JwtVerifier::new(&JwtConfig::hs256("x".repeat(MIN_SECRET_BYTES))).is_ok());
        assert!(matches!(
            JwtVerifier::new(&JwtConfig::public_key(Algorithm::RS256, "not a pem")),
            Err(AuthConfigError::BadPem { .. })
        ));
        let mut config = JwtConfig::hs256(SECRET);
        config.algorithm = Algorithm::ES256;
        assert!(matches!(
            JwtVerifier::new(&config),
            Err(AuthConfigError::WrongKeyKind { .. })
        ));
    }
}
