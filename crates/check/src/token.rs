//! JSON Web Tokens for the suite: the good ones it signs with `--secret`, and the bad ones it
//! presents on purpose (forged, expired, `alg: none`) to prove that a deployment refuses them.
//!
//! Only HS256 is minted: it is the contract's default (PROTOCOL.md section 2), and a deployment
//! pinned to RS256/ES256 is judged with the `--token` it issued. Bad tokens can be built from a
//! given token too (its claims are reused, its signature is not), so the auth cases run in either
//! mode where that is honest.
//!
//! What it must not do: verify tokens (that is the server's job), print secrets or tokens, or
//! depend on a JWT library whose validation rules could leak into what is "good" here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// Secrets shorter than this are refused: an HS256 key should be at least as long as its hash, and
/// our server refuses shorter ones too.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a token could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the JWT secret is {0} bytes; it must be at least {MIN_SECRET_BYTES}")]
    SecretTooShort(usize),
    #[error("the token is not a JWT (three base64url parts separated by dots): {0}")]
    Malformed(String),
}

/// Signs HS256 tokens with a shared secret. The secret never appears in `Debug` output.
#[derive(Clone)]
pub struct Minter {
    secret: Vec<u8>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// Who a minted token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The `sub` claim: the user.
    pub user: String,
    /// The `org_id` claim: the tenant whose data the user's agents read (None: the user's own).
    pub org: Option<String>,
}

impl Identity {
    pub fn new(user: impl Into<String>, org: Option<String>) -> Self {
        Self {
            user: user.into(),
            org,
        }
    }
}

impl Minter {
    /// A minter for `secret`, adding `iss`/`aud` claims when given.
    ///
    /// # Errors
    /// [`TokenError::SecretTooShort`] below [`MIN_SECRET_BYTES`].
    pub fn new(
        secret: &str,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Self, TokenError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TokenError::SecretTooShort(secret.len()));
        }
        Ok(Self {
            secret: secret.as_bytes().to_vec(),
            issuer,
            audience,
        })
    }

    /// A valid token for `who`, with scope `usage:write`, valid for an hour.
    pub fn token(&self, who: &Identity) -> String {
        self.token_expiring(who, 3600)
    }

    /// A token whose `exp` is `lifetime_s` seconds from now (negative: already expired).
    pub fn token_expiring(&self, who: &Identity, lifetime_s: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "sub": who.user,
            "iat": now.min(now + lifetime_s),
            "exp": now + lifetime_s,
            "scope": "usage:write",
        });
        if let Some(org) = &who.org {
            claims["org_id"] = json!(org);
        }
        if let Some(issuer) = &self.issuer {
            claims["iss"] = json!(issuer);
        }
        if let Some(audience) = &self.audience {
            claims["aud"] = json!(audience);
        }
        sign_hs256(&claims, &self.secret)
    }

    /// A token for `who` that expired two hours ago: far past any clock leeway.
    pub fn expired_token(&self, who: &Identity) -> String {
        self.token_expiring(who, -7200)
    }
}

/// Signs `claims` with HS256.
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let signature = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

/// The claims of a JWT, decoded without verifying anything.
///
/// # Errors
/// [`TokenError::Malformed`] when the token is not three parts or the payload is not a JSON object.
pub fn claims_of(token: &str) -> Result<Map<String, Value>, TokenError> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err(TokenError::Malformed(format!(
            "{} part(s) instead of 3",
            parts.len()
        )));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|err| TokenError::Malformed(format!("the payload is not base64url: {err}")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        Ok(_) => Err(TokenError::Malformed(
            "the payload is not a JSON object".to_owned(),
        )),
        Err(err) => Err(TokenError::Malformed(format!(
            "the payload is not JSON: {err}"
        ))),
    }
}

/// A token with the same claims as `claims` (its `exp` moved an hour ahead) signed with a secret
/// the deployment cannot know.
pub fn forged(claims: &Map<String, Value>) -> String {
    let mut claims = claims.clone();
    claims.insert(
        "exp".to_owned(),
        json!(chrono::Utc::now().timestamp() + 3600),
    );
    let wrong_secret = format!("forged-{}", uuid::Uuid::new_v4().simple());
    sign_hs256(&Value::Object(claims), wrong_secret.as_bytes())
}

/// An unsigned token: header `{"alg":"none"}`, the given claims (`exp` an hour ahead) and an empty
/// signature, the classic bypass a deployment must refuse.
pub fn alg_none(claims: &Map<String, Value>) -> String {
    let mut claims = claims.clone();
    claims.insert(
        "exp".to_owned(),
        json!(chrono::Utc::now().timestamp() + 3600),
    );
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
    format!("{header}.{payload}.")
}

/// A short random hex string (for user names, canaries and request ids).
pub fn random_hex(chars: usize) -> String {
    let mut out = String::with_capacity(chars);
    while out.len() < chars {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(chars);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn minted_tokens_carry_the_claims_and_a_verifiable_signature() {
        let minter = Minter::new(SECRET, Some("iss-1".into()), None).unwrap();
        let token = minter.token(&Identity::new("alice", Some("acme".into())));
        let claims = claims_of(&token).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["org_id"], "acme");
        assert_eq!(claims["iss"], "iss-1");
        assert_eq!(claims["scope"], "usage:write");
        assert!(claims["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());
        // Re-signing the same header and payload gives the same signature: HMAC-SHA256 over the
        // signing input, as RFC 7515 says.
        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()),
            signature
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            Minter::new("short", None, None).unwrap_err(),
            TokenError::SecretTooShort(5)
        );
    }

    #[test]
    fn bad_tokens_keep_the_claims_but_not_the_signature() {
        let minter = Minter::new(SECRET, None, None).unwrap();
        let who = Identity::new("bob", None);
        let good = minter.token(&who);
        let claims = claims_of(&good).unwrap();

        let expired = minter.expired_token(&who);
        assert!(
            claims_of(&expired).unwrap()["exp"].as_i64().unwrap()
                < chrono::Utc::now().timestamp() - 3600
        );

        let forged = forged(&claims);
        assert_eq!(claims_of(&forged).unwrap()["sub"], "bob");
        assert_ne!(
            forged.rsplit_once('.').unwrap().1,
            good.rsplit_once('.').unwrap().1
        );

        let none = alg_none(&claims);
        assert!(none.ends_with('.'));
        let header = URL_SAFE_NO_PAD
            .decode(none.split('.').next().unwrap())
            .unwrap();
        assert_eq!(header, br#"{"alg":"none","typ":"JWT"}"#);
    }

    #[test]
    fn malformed_tokens_are_errors() {
        assert!(matches!(
            claims_of("not-a-jwt"),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            claims_of("a.!!!.c"),
            Err(TokenError::Malformed(_))
        ));
        let array = format!("x.{}.y", URL_SAFE_NO_PAD.encode("[1]"));
        assert!(matches!(claims_of(&array), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn debug_hides_the_secret() {
        let minter = Minter::new(SECRET, None, None).unwrap();
        assert!(!format!("{minter:?}").contains(SECRET));
    }
}
