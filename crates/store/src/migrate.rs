//! A tiny migration runner for the embedded schema.
//!
//! Migrations are SQL files in `crates/store/migrations/`, compiled in with `include_str!` and
//! applied in version order, each in its own `BEGIN IMMEDIATE` transaction together with its row
//! in `schema_migrations(version, applied_at)`. So a crash mid-migration leaves the previous
//! version intact, and two processes opening the same file at once serialize on the write lock
//! instead of both applying. This module must not edit a migration after release: add a new file.

use sqlx::{Row, SqlitePool};

use crate::convert::time_to_db;
use crate::{StoreError, StoreResult};

/// One embedded migration.
struct Migration {
    version: i64,
    sql: &'static str,
}

/// Every migration, oldest first; versions strictly increasing.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: include_str!("../migrations/0001_initial.sql"),
}];

/// The schema version this build writes.
pub const LATEST_SCHEMA_VERSION: i64 = 1;

/// Brings the database up to [`LATEST_SCHEMA_VERSION`]. Idempotent.
pub(crate) async fn run(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER NOT NULL PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )
    .execute(pool)
    .await?;

    // A file migrated by a newer build may hold tables or constraints this build does not
    // understand; writing to it could corrupt it, so refuse to start.
    let current = schema_version(pool).await?;
    if current > LATEST_SCHEMA_VERSION {
        return Err(StoreError::Migration(format!(
            "database schema version {current} is newer than this build's {LATEST_SCHEMA_VERSION}; \
             upgrade agentwire"
        )));
    }

    for migration in MIGRATIONS {
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
        tracing::info!(version = migration.version, "applied store migration");
    }
    Ok(())
}

/// Highest applied migration version (0 on an empty database).
pub(crate) async fn schema_version(pool: &SqlitePool) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get(0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_and_end_at_latest() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert_eq!(
            MIGRATIONS.last().map(|m| m.version),
            Some(LATEST_SCHEMA_VERSION)
        );
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
        run(&pool).await.unwrap();
        run(&pool).await.unwrap();
        let row = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            row.get::<i64, _>(0),
            i64::try_from(MIGRATIONS.len()).unwrap()
        );
        assert_eq!(schema_version(&pool).await.unwrap(), LATEST_SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let pool = memory_pool().await;
        run(&pool).await.unwrap();
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)")
            .bind(LATEST_SCHEMA_VERSION + 1)
            .execute(&pool)
            .await
            .unwrap();
        assert!(matches!(run(&pool).await, Err(StoreError::Migration(_))));
    }
}
