//! Tokens and identities on a live server (issue 15): expiring sockets, personal tenants, keys by
//! (tenant, user), untrimmed `sub`s, and store failures that reach clients only as correlation
//! ids. A real server on 127.0.0.1:0 over SQLite, real JWTs, the suite's WebSocket client.

use agentwire_check::client::{ClientError, Credentials, Session};
use agentwire_server::JwtConfig;
use agentwire_testkit::jwt::now;
use agentwire_testkit::{SECRET, TestServer, sign, token, usage_writer_token};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Upper bound for anything the server should do; never a pass/fail timing.
const WAIT: Duration = Duration::from_secs(30);

/// HS256 over the test secret with a one-second leeway, so expiry tests are short.
fn short_leeway() -> JwtConfig {
    JwtConfig {
        leeway_s: 1,
        ..JwtConfig::hs256(SECRET)
    }
}

fn expiring_token(sub: &str, in_s: i64) -> String {
    sign(&json!({"sub": sub, "exp": now() + in_s}))
}

async fn next(session: &mut Session) -> Value {
    session.next_frame(WAIT).await.unwrap().value
}

#[tokio::test]
async fn a_socket_whose_token_expires_gets_auth_expired_then_4401() {
    let server = TestServer::builder().jwt(short_leeway()).start().await;
    let mut session = server.connect_bearer(&expiring_token("erin", 2)).await;
    let frame = next(&mut session).await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["error_code"], "AUTH_EXPIRED", "{frame}");
    assert!(
        frame["message"].as_str().unwrap().contains("fresh token"),
        "{frame}"
    );
    match session.next_frame(WAIT).await {
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, Some(4401)),
        other => panic!("expected close 4401, got {other:?}"),
    }
}

#[tokio::test]
async fn a_fresh_token_keeps_the_socket_and_another_users_does_not() {
    let server = TestServer::builder().jwt(short_leeway()).start().await;
    let mut session = server.connect_bearer(&expiring_token("erin", 2)).await;
    // Another user's token is refused and does not extend the connection.
    session
        .send_json(&json!({"type": "authenticate", "id": "a1", "token": token("frank", None)}))
        .await
        .unwrap();
    let refused = next(&mut session).await;
    assert_eq!(refused["error_code"], "AUTH_FAILED", "{refused}");
    // A fresh token of the same user does.
    session
        .send_json(
            &json!({"type": "authenticate", "id": "a2", "token": expiring_token("erin", 600)}),
        )
        .await
        .unwrap();
    let established = next(&mut session).await;
    assert_eq!(
        established["type"], "connection_established",
        "{established}"
    );
    assert_eq!(established["user_id"], "erin");
    // Past the first token's expiry and leeway the socket still answers.
    tokio::time::sleep(Duration::from_secs(4)).await;
    session
        .send_json(&json!({"type": "ping", "id": "p1"}))
        .await
        .unwrap();
    let pong = next(&mut session).await;
    assert_eq!(pong["type"], "pong", "{pong}");

    // On another socket, a refused refresh leaves the first token's expiry in force.
    let mut other = server.connect_bearer(&expiring_token("gina", 2)).await;
    other
        .send_json(&json!({"type": "authenticate", "token": token("frank", None)}))
        .await
        .unwrap();
    let refused = next(&mut other).await;
    assert_eq!(refused["error_code"], "AUTH_FAILED", "{refused}");
    let expired = next(&mut other).await;
    assert_eq!(expired["error_code"], "AUTH_EXPIRED", "{expired}");
}

#[tokio::test]
async fn a_personal_tenant_never_reads_an_organizations_data() {
    let server = TestServer::start().await;
    // Organization `acme` has data.
    let csv = "timestamp,model,input_tokens,output_tokens\n2026-11-01T10:00:00Z,gpt-4o,1000,100\n";
    let upload = server
        .post(
            "/api/usage?format=csv",
            &[(
                "authorization",
                &format!("Bearer {}", usage_writer_token("loader", "acme")),
            )],
            csv.as_bytes(),
        )
        .await;
    assert_eq!(upload.status, 200, "{}", upload.text());
    // A user whose `sub` is `acme`, with no organization, has a personal tenant of their own.
    let mut session = server.connect_as("acme").await;
    assert_eq!(session.connection_info().unwrap()["tenant_id"], "user:acme");
    session
        .start_agent("s1", "data", "What did we spend?", Map::new())
        .await
        .unwrap();
    let accepted = session.wait_run_accepted("s1", WAIT).await.unwrap();
    let run = session.collect_run(&accepted.run_id, WAIT).await.unwrap();
    let last = run.events.last().unwrap();
    assert_eq!(last["error_code"], "NO_DATA", "{last}");

    // And no token can name an organization into a personal tenant.
    let squatter = sign(&json!({"sub": "mallory", "org_id": "user:acme", "exp": now() + 600}));
    match server.connect(Credentials::Bearer(squatter)).await {
        Err(ClientError::Http { status, body }) => {
            assert_eq!(status, 401);
            assert!(body.contains("user:"), "{body}");
        }
        other => panic!("expected 401, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn a_sub_with_surrounding_whitespace_is_refused_not_trimmed() {
    let server = TestServer::start().await;
    let padded = sign(&json!({"sub": " alice", "exp": now() + 600}));
    match server.connect(Credentials::Bearer(padded)).await {
        Err(ClientError::Http { status, body }) => {
            assert_eq!(status, 401);
            assert!(body.contains("whitespace"), "{body}");
        }
        other => panic!("expected 401, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn the_same_sub_in_two_tenants_never_conflicts_or_sees_the_other_run() {
    let server = TestServer::builder()
        .demo_data()
        .step_delay(Duration::from_millis(100))
        .start()
        .await;
    let in_org = |org: &str| sign(&json!({"sub": "alice", "org_id": org, "exp": now() + 600}));
    let mut acme = server.connect_bearer(&in_org("acme")).await;
    let mut globex = server.connect_bearer(&in_org("globex")).await;
    let mut payload = Map::new();
    payload.insert("thread_id".into(), json!("shared-thread"));
    acme.start_agent("a", "data", "What did we spend?", payload.clone())
        .await
        .unwrap();
    let acme_run = acme.wait_run_accepted("a", WAIT).await.unwrap().run_id;
    // Same `sub`, same thread id, another organization: its own run, no conflict, and acme's
    // run id appears nowhere.
    globex
        .start_agent("g", "data", "What did we spend?", payload)
        .await
        .unwrap();
    let accepted = globex.wait_run_accepted("g", WAIT).await;
    let globex_run = match accepted {
        Ok(accepted) => accepted.run_id,
        Err(err) => panic!("globex's alice was refused: {err}"),
    };
    assert_ne!(globex_run, acme_run);
    let run = globex.collect_run(&globex_run, WAIT).await.unwrap();
    assert!(
        !run.events.iter().any(|e| e.to_string().contains(&acme_run)),
        "acme's run id leaked"
    );
}

/// Opens the test database beside the server and installs `sqlite`, or on PostgreSQL
/// `postgres` (a trigger that fails writes): a real store failure, with words a client must
/// never see.
async fn break_the_store(server: &TestServer, sqlite: &str, postgres: &str) {
    use sqlx::Connection as _;
    // Test-only SQL written in this file, not input.
    match server.database().backend() {
        agentwire_testkit::database::TestBackend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(server.database_url())
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sqlite.to_owned()))
                .execute(&mut db)
                .await
                .unwrap();
            db.close().await.unwrap();
        }
        agentwire_testkit::database::TestBackend::Postgres => {
            let mut db = sqlx::PgConnection::connect(server.database_url())
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(postgres.to_owned()))
                .execute(&mut db)
                .await
                .unwrap();
            db.close().await.unwrap();
        }
    }
}

/// PostgreSQL's form of a trigger that fails every insert into `table` (when `when` holds).
fn failing_trigger(name: &str, table: &str, when: &str) -> String {
    format!(
        "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION '{SECRET_WORDS}'; END $$; \
         CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW {when} \
         EXECUTE FUNCTION {name}();"
    )
}

const SECRET_WORDS: &str = "disk on fire at sector 7";

fn assert_correlated(message: &str) {
    assert!(!message.contains(SECRET_WORDS), "{message}");
    assert!(!message.contains("database"), "{message}");
    assert!(message.contains("correlation id"), "{message}");
}

#[tokio::test]
async fn store_failures_reach_clients_only_as_correlation_ids() {
    let server = TestServer::builder().demo_data().start().await;
    // Every `agent_thinking` write fails: the run stops, and its terminal event (which can be
    // written) says so without the database's words.
    break_the_store(
        &server,
        &format!(
            "CREATE TRIGGER fail_thinking BEFORE INSERT ON run_events \
             WHEN NEW.event_type = 'agent_thinking' \
             BEGIN SELECT RAISE(ABORT, '{SECRET_WORDS}'); END;"
        ),
        &failing_trigger(
            "fail_thinking",
            "run_events",
            "WHEN (NEW.event_type = 'agent_thinking')",
        ),
    )
    .await;
    let mut session = server.connect_as("hank").await;
    session
        .start_agent(
            "s1",
            "supervisor",
            "How can we reduce our AI costs?",
            Map::new(),
        )
        .await
        .unwrap();
    let run_id = session.wait_run_accepted("s1", WAIT).await.unwrap().run_id;
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    let last = run.events.last().unwrap();
    assert_eq!(last["type"], "agent_error", "{last}");
    assert_eq!(last["error_code"], "INTERNAL", "{last}");
    assert_correlated(last["message"].as_str().unwrap());
    // The persisted copy says the same.
    let stored = server
        .get(
            &format!("/api/runs/{run_id}/events"),
            &[("authorization", &format!("Bearer {}", token("hank", None)))],
        )
        .await;
    assert!(!stored.text().contains(SECRET_WORDS), "{}", stored.text());

    // Runs cannot be recorded: the socket's `error` carries an id, not the words.
    break_the_store(
        &server,
        &format!(
            "CREATE TRIGGER fail_runs BEFORE INSERT ON runs \
             BEGIN SELECT RAISE(ABORT, '{SECRET_WORDS}'); END;"
        ),
        &failing_trigger("fail_runs", "runs", ""),
    )
    .await;
    session
        .start_agent("s2", "data", "What did we spend?", Map::new())
        .await
        .unwrap();
    let frame = next(&mut session).await;
    assert_eq!(frame["error_code"], "INTERNAL", "{frame}");
    assert_eq!(frame["request_id"], "s2", "{frame}");
    assert_correlated(frame["message"].as_str().unwrap());

    // HTTP: a failing read is 500 with a correlation id.
    let rename = "ALTER TABLE threads RENAME TO threads_gone;";
    break_the_store(&server, rename, rename).await;
    let threads = server
        .get(
            "/api/threads",
            &[("authorization", &format!("Bearer {}", token("hank", None)))],
        )
        .await;
    assert_eq!(threads.status, 500, "{}", threads.text());
    let body = threads.json();
    assert_eq!(body["error_code"], "INTERNAL");
    assert_correlated(body["message"].as_str().unwrap());
    assert!(!threads.text().contains("threads"), "{}", threads.text());
}

#[tokio::test]
async fn a_tenant_whose_data_cannot_be_loaded_gets_a_correlation_id() {
    let server = TestServer::start().await;
    let rename = "ALTER TABLE usage_records RENAME TO usage_gone;";
    break_the_store(&server, rename, rename).await;
    let mut session = server.connect_as("ivan").await;
    session
        .start_agent("s1", "data", "What did we spend?", Map::new())
        .await
        .unwrap();
    let run_id = session.wait_run_accepted("s1", WAIT).await.unwrap().run_id;
    let run = session.collect_run(&run_id, WAIT).await.unwrap();
    let last = run.events.last().unwrap();
    assert_eq!(last["error_code"], "INTERNAL", "{last}");
    let message = last["message"].as_str().unwrap();
    assert_correlated(message);
    assert!(!message.contains("usage_records"), "{message}");
}
