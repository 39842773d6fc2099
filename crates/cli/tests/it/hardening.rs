//! The hardening flags of `agentwire serve` as an operator uses them (issue 5), with the real
//! binary: RS256 with `--jwt-public-key` (and no algorithm confusion), the secret-length rule,
//! refusals of settings that cannot work, the connection cap, the CORS allow-list, and logs that
//! never carry a token or the secret, even at `trace` level.

use crate::{WAIT, agentwire};
use agentwire_check::client::{ClientError, ConnectOptions, Credentials, Session};
use agentwire_testkit::jwt::{keys_dir, now};
use agentwire_testkit::{ServeProcess, claims, sign_hs256, sign_rs256};
use serde_json::json;

const SECRET: &str = "hardening-test-secret-0123456789abcdef012345";

fn rsa_token(sub: &str) -> String {
    sign_rs256(&claims(sub))
}

async fn connect(server: &ServeProcess, credentials: Credentials) -> Result<Session, ClientError> {
    Session::connect(&ConnectOptions::new(server.ws_url(), credentials)).await
}

fn memory_db() -> [&'static str; 2] {
    ["--database", "sqlite::memory:"]
}

#[tokio::test]
async fn rs256_with_a_public_key_file_accepts_rs256_and_nothing_else() {
    let public_key = keys_dir().join("rsa_public.pem");
    let mut args = memory_db().to_vec();
    args.extend([
        "--jwt-algorithm",
        "RS256",
        "--jwt-public-key",
        public_key.to_str().unwrap(),
    ]);
    // A secret in the environment is ignored (with a warning), never used to verify.
    let server = agentwire().serve(&args, &[("AGENTWIRE_JWT_SECRET", SECRET)]);
    let session = connect(&server, Credentials::Bearer(rsa_token("rhea")))
        .await
        .unwrap();
    assert_eq!(session.connection_info().unwrap()["user_id"], "rhea");

    // An HS256 token signed with that secret, or with the public key itself, is refused.
    let public_pem = std::fs::read(&public_key).unwrap();
    for key in [SECRET.as_bytes(), public_pem.as_slice()] {
        let forged = sign_hs256(&claims("mallory"), key);
        match connect(&server, Credentials::Bearer(forged)).await {
            Err(ClientError::Http { status, .. }) => assert_eq!(status, 401),
            other => panic!("an HS256 token got {:?}", other.err()),
        }
    }
    assert!(
        server.log_text().contains("secret is ignored"),
        "{}",
        server.log_text()
    );
}

#[test]
fn serve_refuses_settings_that_cannot_work() {
    let public_key = keys_dir().join("rsa_public.pem");
    let public_key = public_key.to_str().unwrap();
    let not_a_key = keys_dir().join("README.md");
    // (extra arguments, environment, what the error must say)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 6] = [
        (&[], &[], "AGENTWIRE_JWT_SECRET"),
        (&[], &[("AGENTWIRE_JWT_SECRET", "too-short")], "at least 32"),
        (&["--jwt-algorithm", "RS256"], &[], "--jwt-public-key"),
        (
            &["--jwt-public-key", public_key],
            &[("AGENTWIRE_JWT_SECRET", SECRET)],
            "--jwt-public-key is for asymmetric",
        ),
        (&["--jwt-algorithm", "none"], &[], "unknown --jwt-algorithm"),
        (
            &[
                "--jwt-algorithm",
                "ES256",
                "--jwt-public-key",
                not_a_key.to_str().unwrap(),
            ],
            &[],
            "not a valid PEM",
        ),
    ];
    for (extra, env, expected) in cases {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend(memory_db());
        args.extend(extra);
        let out = agentwire().run(&args, env);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    }
}

#[tokio::test]
async fn connection_cap_and_cors_flags_are_applied() {
    let mut args = memory_db().to_vec();
    args.extend([
        "--max-connections",
        "2",
        "--cors-allow-origin",
        "https://app.example.com,https://admin.example.com",
    ]);
    let server = agentwire().serve(&args, &[("AGENTWIRE_JWT_SECRET", SECRET)]);
    let token = agentwire().token("olga", "acme", SECRET);
    let _one = connect(&server, Credentials::Bearer(token.clone()))
        .await
        .unwrap();
    let _two = connect(&server, Credentials::Bearer(token.clone()))
        .await
        .unwrap();
    match connect(&server, Credentials::Bearer(token)).await {
        Err(err @ ClientError::Http { status: 503, .. }) => {
            let body = err.http_body_json().unwrap();
            assert_eq!(body["error_code"], "UNAVAILABLE");
            assert!(body["retry_after_ms"].as_u64().is_some(), "{body}");
        }
        other => panic!("a third socket got {:?}", other.err()),
    }
    let preflight = server.http(
        "OPTIONS",
        "/api/usage",
        &[
            ("origin", "https://admin.example.com"),
            ("access-control-request-method", "POST"),
        ],
    );
    assert_eq!(preflight.status, 204, "{}", preflight.text());
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://admin.example.com")
    );
    let health = server.http("GET", "/health", &[]);
    assert_eq!(health.status, 200);
    assert_eq!(health.header("x-frame-options"), Some("DENY"));
}

/// Every way a token can be refused, with the server logging at `trace`: neither the tokens
/// (good or bad) nor the secret may appear in its output.
#[tokio::test]
async fn no_token_or_secret_in_the_logs_even_at_trace() {
    let mut args = memory_db().to_vec();
    args.extend(["--jwt-issuer", "https://issuer.example"]);
    let server = agentwire().serve(
        &args,
        &[("AGENTWIRE_JWT_SECRET", SECRET), ("RUST_LOG", "trace")],
    );
    let good = sign_hs256(
        &json!({"sub": "lena", "iss": "https://issuer.example", "exp": now() + 600}),
        SECRET.as_bytes(),
    );
    let wrong_issuer = agentwire().token("lena", "acme", SECRET);
    let forged = sign_hs256(
        &json!({"sub": "lena", "iss": "https://issuer.example", "exp": now() + 600}),
        b"not-the-secret-not-the-secret-not-the",
    );
    let rsa = rsa_token("lena");
    for bad in [&wrong_issuer, &forged, &rsa] {
        for credentials in [
            Credentials::Bearer(bad.clone()),
            Credentials::Subprotocol(bad.clone()),
            Credentials::FirstFrame(bad.clone()),
        ] {
            assert!(connect(&server, credentials).await.is_err());
        }
        let response = server.http(
            "POST",
            "/api/usage",
            &[("authorization", &format!("Bearer {bad}"))],
        );
        assert_eq!(response.status, 401);
    }
    // A good token in a URL is ignored, and not logged either.
    let response = server.http("GET", &format!("/api/runs/run_x/events?token={good}"), &[]);
    assert_eq!(response.status, 401);
    let mut in_url = Session::connect(&ConnectOptions::new(
        format!("{}?access_token={good}", server.ws_url()),
        Credentials::None,
    ))
    .await
    .unwrap();
    in_url
        .send_json(&json!({"type": "resume", "run_id": "run_x"}))
        .await
        .unwrap();
    let _ = in_url.next_frame(WAIT).await.unwrap();
    let session = connect(&server, Credentials::Bearer(good.clone()))
        .await
        .unwrap();
    session.close().await.unwrap();

    // Let the last lines reach the log, then look.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = server.log_text();
    assert!(
        log.contains("authenticate refused"),
        "auth failures were not logged at all:\n{log}"
    );
    for token in [&good, &wrong_issuer, &forged, &rsa] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!log.contains(token.as_str()), "a token is in the log");
        assert!(
            !log.contains(signature),
            "a token's signature is in the log"
        );
    }
    assert!(!log.contains(SECRET), "the secret is in the log");
}
