//! A fresh database for each test, on SQLite or PostgreSQL, and the one place that decides where
//! test databases live.
//!
//! The backend of [`TestDatabase::new`] (hence of every [`crate::TestServer`], [`TempStore`] and
//! child `agentwire serve` a test starts on one) comes from [`BACKEND_VAR`]: SQLite unless it
//! says `postgres`, so `.ci/run` can run the server's tests a second time on PostgreSQL.
//! [`TestDatabase::postgres`] asks for PostgreSQL explicitly (the multi-node tests). PostgreSQL is
//! found through [`POSTGRES_URL_VAR`], an admin URL of a private instance (`.ci/run` starts one);
//! each test database is a database of its own there, dropped when the test is done. Without the
//! variable a test that needs PostgreSQL skips, saying why; under `CI` it fails instead, so CI
//! cannot pass without having run it. This module must not hold schema knowledge or test data;
//! the store migrates itself on connect.

use agentwire_store::Store;
use sqlx::Connection as _;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// The variable naming the PostgreSQL admin URL (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
pub const POSTGRES_URL_VAR: &str = "AGENTWIRE_TEST_POSTGRES_URL";

/// The variable choosing the backend of [`TestDatabase::new`]: `sqlite` (the default) or
/// `postgres`.
pub const BACKEND_VAR: &str = "AGENTWIRE_TEST_BACKEND";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

impl TestBackend {
    /// The backend [`BACKEND_VAR`] asks for.
    ///
    /// # Panics
    /// On a value other than `sqlite` or `postgres`.
    pub fn from_env() -> TestBackend {
        match std::env::var(BACKEND_VAR).as_deref().map(str::trim) {
            Err(_) | Ok("" | "sqlite") => TestBackend::Sqlite,
            Ok("postgres" | "postgresql") => TestBackend::Postgres,
            Ok(other) => panic!("{BACKEND_VAR}={other:?}: use sqlite or postgres"),
        }
    }
}

/// The PostgreSQL admin URL, or `None` after saying why a test that needs it is skipped.
///
/// # Panics
/// Under `CI` when the variable is missing: CI must run the PostgreSQL tests.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {POSTGRES_URL_VAR} is not: the PostgreSQL tests must run in CI \
                 (.ci/run starts a private PostgreSQL and sets it)"
            );
            eprintln!(
                "skipping: {POSTGRES_URL_VAR} is not set (an admin URL of a PostgreSQL instance, \
                 e.g. postgres://postgres@127.0.0.1:5432/postgres; .ci/run starts one)"
            );
            None
        }
    }
}

/// The URL of a new SQLite test database whose file lives in `dir`.
pub fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("agentwire.db").display())
}

/// A database no other test uses, deleted when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    dir: tempfile::TempDir,
    /// PostgreSQL: the admin URL and the database's name, to drop it.
    postgres: Option<(String, String)>,
}

impl Default for TestDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDatabase {
    /// A fresh database on the backend [`BACKEND_VAR`] names (not yet migrated: the store
    /// migrates it on first connect).
    ///
    /// # Panics
    /// When no temporary directory can be made; when PostgreSQL is asked for and cannot be used.
    pub fn new() -> TestDatabase {
        match TestBackend::from_env() {
            TestBackend::Sqlite => Self::sqlite(),
            TestBackend::Postgres => {
                let admin = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
                    panic!("{BACKEND_VAR}=postgres needs {POSTGRES_URL_VAR} (an admin URL)")
                });
                Self::on_postgres(admin)
            }
        }
    }

    /// A fresh SQLite database, whatever the environment says.
    ///
    /// # Panics
    /// When no temporary directory can be made.
    pub fn sqlite() -> TestDatabase {
        let dir = temp_dir();
        TestDatabase {
            url: database_url(dir.path()),
            dir,
            postgres: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` (after saying why) when none is configured here.
    ///
    /// # Panics
    /// Under `CI` without [`POSTGRES_URL_VAR`]; when the server cannot be reached.
    pub fn postgres() -> Option<TestDatabase> {
        postgres_admin_url().map(Self::on_postgres)
    }

    fn on_postgres(admin: String) -> TestDatabase {
        let name = format!("aw_test_{}", uuid::Uuid::new_v4().simple());
        let statement = format!("CREATE DATABASE \"{name}\"");
        admin_statement(&admin, statement).unwrap_or_else(|err| {
            panic!("cannot create a test database through {POSTGRES_URL_VAR}: {err}")
        });
        TestDatabase {
            url: with_database(&admin, &name),
            dir: temp_dir(),
            postgres: Some((admin, name)),
        }
    }

    /// Which backend this database is on.
    pub fn backend(&self) -> TestBackend {
        if self.postgres.is_some() {
            TestBackend::Postgres
        } else {
            TestBackend::Sqlite
        }
    }

    /// The URL to give `agentwire_store::connect` or `agentwire serve --database`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL reaching this (PostgreSQL) database through `addr` instead, e.g. a proxy in
    /// front of the server that a test can cut.
    ///
    /// # Panics
    /// On a SQLite database, which has no address.
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        assert!(
            self.postgres.is_some(),
            "only a PostgreSQL database has an address"
        );
        let (scheme, rest) = self.url.split_once("://").expect("a URL with a scheme");
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let userinfo = authority
            .rsplit_once('@')
            .map(|(userinfo, _)| format!("{userinfo}@"))
            .unwrap_or_default();
        format!("{scheme}://{userinfo}{addr}{tail}")
    }

    /// The host and port the (PostgreSQL) server listens on.
    ///
    /// # Panics
    /// On a SQLite database, or a URL without a numeric address.
    pub fn server_addr(&self) -> std::net::SocketAddr {
        let rest = self.url.split_once("://").expect("a URL with a scheme").1;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:5432")
        };
        std::net::ToSocketAddrs::to_socket_addrs(&host)
            .ok()
            .and_then(|mut addrs| addrs.next())
            .unwrap_or_else(|| panic!("the test database's server {host} has no address"))
    }

    /// A directory that lives as long as the database, for other files the test writes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the store on this database (creating and migrating it the first time).
    ///
    /// # Panics
    /// When the store cannot be opened; the message carries the store's error.
    pub async fn connect(&self) -> Arc<dyn Store> {
        agentwire_store::connect(&self.url)
            .await
            .unwrap_or_else(|err| panic!("cannot open the test database {}: {err}", self.url))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take()
            && let Err(err) = admin_statement(
                &admin,
                format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            )
        {
            eprintln!("could not drop the test database {name}: {err}");
        }
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::TempDir::new().expect("a temporary directory for the test database")
}

/// Runs one statement on the admin connection, on a thread and runtime of its own, so it works
/// from synchronous code, from inside a runtime, and in `Drop`.
fn admin_statement(admin: &str, statement: String) -> Result<(), String> {
    let admin = admin.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| err.to_string())?;
        runtime.block_on(async move {
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .map_err(|err| format!("{}: {err}", agentwire_store::redact_url(&admin)))?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .map_err(|err| err.to_string())?;
            conn.close().await.map_err(|err| err.to_string())
        })
    })
    .join()
    .map_err(|_| "the admin thread panicked".to_owned())?
}

/// `url` pointing at database `name` instead (same server, user and parameters).
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match tail.split_once('?').map(|(_, q)| q) {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

/// An open store on its own [`TestDatabase`]; derefs to the store. The database goes when this
/// is dropped, so keep it alive as long as the store is used.
#[derive(Clone)]
pub struct TempStore {
    store: Arc<dyn Store>,
    database: Arc<TestDatabase>,
}

impl TempStore {
    /// A fresh database, opened.
    pub async fn new() -> TempStore {
        let database = TestDatabase::new();
        let store = database.connect().await;
        TempStore {
            store,
            database: Arc::new(database),
        }
    }

    /// The store, to hand to an engine.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The database under it.
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }
}

impl Deref for TempStore {
    type Target = Arc<dyn Store>;

    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_database_is_fresh_and_gone_when_dropped() {
        let a = TempStore::new().await;
        let b = TempStore::new().await;
        assert_ne!(a.database().url(), b.database().url());
        let dir = a.database().dir().to_owned();
        assert!(dir.is_dir());
        let record: agentwire_store::UsageRecord = serde_json::from_value(serde_json::json!({
            "timestamp": "2026-11-01T10:00:00Z", "provider": "openai", "model": "gpt-4o",
            "input_tokens": 10, "output_tokens": 2,
        }))
        .unwrap();
        a.ensure_tenant("acme").await.unwrap();
        a.insert_usage("acme", &[record]).await.unwrap();
        assert_eq!(a.usage_count("acme").await.unwrap(), 1);
        assert_eq!(b.usage_count("acme").await.unwrap(), 0);
        drop(a);
        assert!(!dir.exists(), "the database's directory is removed");
    }

    #[tokio::test]
    async fn a_postgres_database_is_its_own_and_is_dropped() {
        let Some(database) = TestDatabase::postgres() else {
            return;
        };
        assert_eq!(database.backend(), TestBackend::Postgres);
        let store = database.connect().await;
        store.ensure_tenant("acme").await.unwrap();
        assert_eq!(store.backend(), agentwire_store::Backend::Postgres);
        store.close().await;
        let admin = std::env::var(POSTGRES_URL_VAR).unwrap();
        let name = database.url().rsplit('/').next().unwrap().to_owned();
        drop(database);
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, 0, "the test database is dropped");
    }

    #[test]
    fn urls_point_at_another_database_or_address() {
        assert_eq!(
            with_database("postgres://pg@127.0.0.1:5/postgres?sslmode=disable", "x"),
            "postgres://pg@127.0.0.1:5/x?sslmode=disable"
        );
        let database = TestDatabase {
            url: "postgres://pg@127.0.0.1:5/x".into(),
            dir: temp_dir(),
            postgres: Some(("unused".into(), "x".into())),
        };
        assert_eq!(
            database.url_via("127.0.0.1:9".parse().unwrap()),
            "postgres://pg@127.0.0.1:9/x"
        );
        assert_eq!(database.server_addr(), "127.0.0.1:5".parse().unwrap());
        // Not a real database: nothing to drop.
        let mut database = database;
        database.postgres = None;
    }
}
