//! A fresh database for each test, and the one place that decides where test databases live.
//!
//! Today every test database is a SQLite file in its own temporary directory, removed when the
//! test is done. [`database_url`] is the seam for running the same tests against another backend
//! (PostgreSQL, chosen by the test environment): every [`TestDatabase`], hence every
//! [`crate::TestServer`], [`TempStore`] and child `agentwire serve` a test starts on one, takes its
//! URL from there. This module must not hold schema knowledge or test data; the store migrates
//! itself on connect.

use agentwire_store::Store;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// The database URL for a new test database whose files may live in `dir`.
///
/// SQLite only, for now. A PostgreSQL run would decide here (e.g. from an environment variable
/// naming a server) and hand out a fresh database or schema per call.
pub fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("agentwire.db").display())
}

/// A database no other test uses, deleted when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    dir: tempfile::TempDir,
}

impl Default for TestDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDatabase {
    /// A fresh database (not yet created: the store creates and migrates it on first connect).
    ///
    /// # Panics
    /// When no temporary directory can be made.
    pub fn new() -> TestDatabase {
        let dir = tempfile::TempDir::new().expect("a temporary directory for the test database");
        TestDatabase {
            url: database_url(dir.path()),
            dir,
        }
    }

    /// The URL to give `agentwire_store::connect` or `agentwire serve --database`.
    pub fn url(&self) -> &str {
        &self.url
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
}
