//! Event-log retention on SQLite: deleting a batch of old finished runs, their events and the
//! threads they leave empty.
//!
//! One `BEGIN IMMEDIATE` transaction per batch on the single writer connection, so a batch is
//! atomic and event appends queue behind it only for as long as the batch takes: callers keep
//! batches small. The run events go by the `ON DELETE CASCADE` of `run_events`. This module
//! must not decide the retention age or the batch size: callers pass them in.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};

use crate::StoreResult;
use crate::convert::time_to_db;

/// The oldest finished runs before `?1`, at most `?2`, through `runs_finished_by_age` (the
/// expression and the status list must match the index's, see migration 0003).
pub(super) const DELETE_RUNS_SQL: &str = "DELETE FROM runs WHERE run_id IN (\
     SELECT run_id FROM runs \
     WHERE status IN ('completed', 'failed', 'cancelled') \
       AND COALESCE(finished_at, created_at) < ?1 \
     ORDER BY COALESCE(finished_at, created_at) LIMIT ?2) \
     RETURNING tenant_id, user_id, thread_id";

/// A thread that has no run left and was last touched before the cutoff.
const DELETE_EMPTIED_THREAD_SQL: &str = "DELETE FROM threads \
     WHERE tenant_id = ?1 AND user_id = ?2 AND thread_id = ?3 AND updated_at < ?4 \
       AND NOT EXISTS (SELECT 1 FROM runs \
                       WHERE user_id = ?2 AND thread_id = ?3 AND tenant_id = ?1)";

pub(super) async fn delete_finished_runs_before(
    writer: &SqlitePool,
    cutoff: DateTime<Utc>,
    limit: u32,
) -> StoreResult<u64> {
    if limit == 0 {
        return Ok(0);
    }
    let cutoff = time_to_db(cutoff);
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let rows = sqlx::query(DELETE_RUNS_SQL)
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
    let mut threads = BTreeSet::new();
    for row in &rows {
        threads.insert((
            row.try_get::<String, _>(0)?,
            row.try_get::<String, _>(1)?,
            row.try_get::<String, _>(2)?,
        ));
    }
    for (tenant_id, user_id, thread_id) in &threads {
        sqlx::query(DELETE_EMPTIED_THREAD_SQL)
            .bind(tenant_id)
            .bind(user_id)
            .bind(thread_id)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
}
