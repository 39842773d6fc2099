//! A tiny migration runner for the embedded schemas, one list per backend.
//!
//! Migrations are SQL files in `crates/store/migrations/{sqlite,postgres}/`, compiled in with
//! `include_str!` and applied in version order, each recorded in
//! `schema_migrations(version, applied_at)` in the same transaction as its changes. So a crash
//! mid-migration leaves the previous version intact, and processes starting at once serialize
//! instead of both applying: SQLite takes the write lock (`BEGIN IMMEDIATE`), PostgreSQL a
//! transaction-scoped advisory lock. A database migrated by a newer build is refused. This
//! module must not edit a migration after release: add a new file.

use sqlx::{PgPool, Row, SqlitePool};

use crate::convert::time_to_db;
use crate::{Backend, StoreError, StoreResult};

/// One embedded migration.
struct Migration {
    version: i64,
    sql: &'static str,
}

/// Every SQLite migration, oldest first; versions strictly increasing.
const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/sqlite/0002_cluster.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/sqlite/0003_retention.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/sqlite/0004_threads_by_tenant.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/sqlite/0005_usage_uploads.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/sqlite/0006_run_key.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/sqlite/0007_usage_version.sql"),
    },
];

/// Every PostgreSQL migration, oldest first; versions strictly increasing.
const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/postgres/0002_retention.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/postgres/0003_threads_by_tenant.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/postgres/0004_usage_uploads.sql"),
    },
    Migration {
        version: 5,
        sql: include_str!("../migrations/postgres/0005_usage_version.sql"),
    },
    Migration {
        version: 6,
        sql: include_str!("../migrations/postgres/0006_append_by_key.sql"),
    },
    Migration {
        version: 7,
        sql: include_str!("../migrations/postgres/0007_admit_in_one_call.sql"),
    },
    Migration {
        version: 8,
        sql: include_str!("../migrations/postgres/0008_end_in_one_call.sql"),
    },
];

/// Key of the advisory lock that serializes PostgreSQL migrations ("agentwir" in ASCII).
const POSTGRES_MIGRATION_LOCK: i64 = 0x6167_656e_7477_6972;

const SQLITE_CREATE_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    applied_at INTEGER NOT NULL
)";

const POSTGRES_CREATE_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT NOT NULL PRIMARY KEY,
    applied_at BIGINT NOT NULL
)";

impl Backend {
    /// The schema version this build writes on this backend.
    pub fn latest_schema_version(self) -> i64 {
        let migrations = match self {
            Backend::Sqlite => SQLITE_MIGRATIONS,
            Backend::Postgres => POSTGRES_MIGRATIONS,
        };
        migrations.last().map_or(0, |m| m.version)
    }
}

fn refuse_newer(current: i64, backend: Backend) -> StoreResult<()> {
    let latest = backend.latest_schema_version();
    if current > latest {
        // A database migrated by a newer build may hold tables or constraints this build does
        // not understand; writing to it could corrupt it, so refuse to start.
        return Err(StoreError::Migration(format!(
            "database schema version {current} is newer than this build's {latest}; upgrade agentwire"
        )));
    }
    Ok(())
}

/// Brings a SQLite database up to date. Idempotent.
pub(crate) async fn run_sqlite(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::raw_sql(SQLITE_CREATE_TABLE_SQL).execute(pool).await?;
    refuse_newer(sqlite_version(pool).await?, Backend::Sqlite)?;
    for migration in SQLITE_MIGRATIONS {
        // IMMEDIATE takes the write lock up front: the "already applied?" check and the apply
        // then cannot race with another process doing the same.
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let applied = sqlx::query("SELECT 1 FROM schema_migrations WHERE version = ?")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if applied {
            // Nothing written; dropping the transaction rolls it back.
            continue;
        }
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::Migration(format!("applying version {}: {e}", migration.version))
            })?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(migration.version)
            .bind(time_to_db(chrono::Utc::now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            "applied sqlite store migration"
        );
    }
    Ok(())
}

/// Highest applied SQLite migration (0 on an empty database).
pub(crate) async fn sqlite_version(pool: &SqlitePool) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get(0)?)
}

/// Brings a PostgreSQL database up to date, all pending migrations in one transaction under
/// the migration lock (DDL is transactional there). Idempotent; nodes starting together wait
/// for the first one and then find nothing to do.
pub(crate) async fn run_postgres(pool: &PgPool) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(POSTGRES_MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(POSTGRES_CREATE_TABLE_SQL)
        .execute(&mut *tx)
        .await?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    refuse_newer(current, Backend::Postgres)?;
    let mut applied = Vec::new();
    for migration in POSTGRES_MIGRATIONS.iter().filter(|m| m.version > current) {
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::Migration(format!("applying version {}: {e}", migration.version))
            })?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(time_to_db(chrono::Utc::now()))
            .execute(&mut *tx)
            .await?;
        applied.push(migration.version);
    }
    tx.commit().await?;
    for version in applied {
        tracing::info!(version, "applied postgres store migration");
    }
    Ok(())
}

/// Highest applied PostgreSQL migration.
pub(crate) async fn postgres_version(pool: &PgPool) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get(0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase() {
        for migrations in [SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS] {
            assert!(migrations.windows(2).all(|w| w[0].version < w[1].version));
            assert_eq!(migrations.first().map(|m| m.version), Some(1));
        }
        assert_eq!(Backend::Sqlite.latest_schema_version(), 7);
        assert_eq!(Backend::Postgres.latest_schema_version(), 8);
    }

    async fn memory_pool() -> SqlitePool {
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn running_twice_applies_once() {
        let pool = memory_pool().await;
        run_sqlite(&pool).await.unwrap();
        run_sqlite(&pool).await.unwrap();
        let row = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            row.get::<i64, _>(0),
            i64::try_from(SQLITE_MIGRATIONS.len()).unwrap()
        );
        assert_eq!(
            sqlite_version(&pool).await.unwrap(),
            Backend::Sqlite.latest_schema_version()
        );
    }

    /// An in-memory database brought to SQLite schema `version` as a build of that version
    /// left it, for upgrade tests.
    async fn pool_at_version(version: usize) -> SqlitePool {
        let pool = memory_pool().await;
        sqlx::raw_sql(SQLITE_CREATE_TABLE_SQL)
            .execute(&pool)
            .await
            .unwrap();
        for migration in &SQLITE_MIGRATIONS[..version] {
            sqlx::raw_sql(migration.sql).execute(&pool).await.unwrap();
            sqlx::query("INSERT INTO schema_migrations VALUES (?, 0)")
                .bind(migration.version)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool
    }

    #[tokio::test]
    async fn a_version_1_database_is_upgraded_with_its_runs_intact() {
        let pool = pool_at_version(1).await;
        sqlx::raw_sql(
            "INSERT INTO runs (run_id, thread_id, user_id, tenant_id, agent, user_request,
                               status, created_at, last_seq)
             VALUES ('r', 't', 'u', 'acme', 'supervisor', 'q', 'running', 0, 3);",
        )
        .execute(&pool)
        .await
        .unwrap();
        run_sqlite(&pool).await.unwrap();
        let row = sqlx::query("SELECT status, last_seq, node_id FROM runs WHERE run_id = 'r'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(0), "running");
        assert_eq!(row.get::<i64, _>(1), 3);
        assert_eq!(row.get::<Option<String>, _>(2), None);
    }

    /// Version 4 keys threads by tenant: a thread row one `sub` shared across two tenants stays
    /// with its tenant, and the other tenant gets a row of its own, titled by its first question.
    #[tokio::test]
    async fn a_version_3_thread_shared_by_two_tenants_becomes_two_threads() {
        let pool = pool_at_version(3).await;
        let long = "é".repeat(100);
        sqlx::query(
            "INSERT INTO threads VALUES ('u', 't', 'acme', 'acme title', 1, 5);
             INSERT INTO runs (run_id, thread_id, user_id, tenant_id, agent, user_request,
                               status, created_at, last_seq)
             VALUES ('r1', 't', 'u', 'acme', 'supervisor', 'q1', 'completed', 1, 0),
                    ('r3', 't', 'u', 'globex', 'supervisor', 'later', 'completed', 9, 0),
                    ('r2', 't', 'u', 'globex', 'supervisor', ?, 'completed', 7, 0);",
        )
        .bind(&long)
        .execute(&pool)
        .await
        .unwrap();
        run_sqlite(&pool).await.unwrap();
        let rows = sqlx::query(
            "SELECT tenant_id, title, created_at, updated_at FROM threads ORDER BY tenant_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let threads: Vec<(String, String, i64, i64)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        assert_eq!(
            threads,
            [
                ("acme".into(), "acme title".into(), 1, 5),
                ("globex".into(), crate::thread_title(&long), 7, 9),
            ]
        );
    }

    /// Version 6 keys the log by an integer per run: a version 5 database keeps its runs, their
    /// order and their logs, and the rebuilt tables still cascade and count.
    #[tokio::test]
    async fn a_version_5_log_is_rekeyed_with_its_events_intact() {
        let pool = pool_at_version(5).await;
        sqlx::raw_sql(
            "PRAGMA foreign_keys = ON;
             INSERT INTO runs (run_id, thread_id, user_id, tenant_id, agent, user_request,
                               status, created_at)
             VALUES ('run_b', 't', 'u', 'acme', 'supervisor', 'q', 'completed', 1),
                    ('run_a', 't', 'u', 'acme', 'supervisor', 'q', 'running', 2);
             INSERT INTO run_events (run_id, seq, event_type, payload, created_at)
             VALUES ('run_a', 1, 'agent_started', '{\"n\":1}', 2),
                    ('run_b', 1, 'agent_started', '{\"n\":2}', 1),
                    ('run_a', 2, 'agent_thinking', '{\"n\":3}', 3);",
        )
        .execute(&pool)
        .await
        .unwrap();
        run_sqlite(&pool).await.unwrap();

        let runs: Vec<(String, i64)> =
            sqlx::query_as("SELECT run_id, last_seq FROM runs ORDER BY rowid")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(runs, [("run_b".into(), 1), ("run_a".into(), 2)]);
        let log: Vec<(i64, String)> = sqlx::query_as(
            "SELECT e.seq, e.payload FROM run_events AS e JOIN runs AS r USING (run_key) \
             WHERE r.run_id = 'run_a' ORDER BY e.seq",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(log, [(1, r#"{"n":1}"#.into()), (2, r#"{"n":3}"#.into())]);

        sqlx::raw_sql(
            "PRAGMA foreign_keys = ON;
             INSERT INTO run_events (run_key, seq, event_type, payload, created_at)
             SELECT run_key, 3, 'agent_completed', '{}', 4 FROM runs WHERE run_id = 'run_a';
             DELETE FROM runs WHERE run_id = 'run_b';",
        )
        .execute(&pool)
        .await
        .unwrap();
        let left: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT last_seq FROM runs WHERE run_id = 'run_a'), \
             (SELECT COUNT(*) FROM run_events)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            left,
            (3, 3),
            "the trigger follows the new key; run_b's log went with it"
        );
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let pool = memory_pool().await;
        run_sqlite(&pool).await.unwrap();
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)")
            .bind(Backend::Sqlite.latest_schema_version() + 1)
            .execute(&pool)
            .await
            .unwrap();
        assert!(matches!(
            run_sqlite(&pool).await,
            Err(StoreError::Migration(_))
        ));
    }
}
