//! Event-log retention on PostgreSQL: deleting a batch of old finished runs, their events and
//! the threads they leave empty.
//!
//! One short transaction per batch. The batch's runs are locked `FOR UPDATE SKIP LOCKED`, so
//! several nodes deleting at once each take different runs and never wait on one another, and
//! a run already deleted by another node is simply not found: the delete is idempotent. The
//! run events go by the `ON DELETE CASCADE` of `run_events`. Writers are not blocked: only
//! finished runs are locked, and nothing writes to a finished run. This module must not decide
//! the retention age or the batch size: callers pass them in.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use crate::StoreResult;
use crate::convert::time_to_db;

/// The oldest finished runs before `$1`, at most `$2`, through `runs_finished_by_age` (the
/// expression and the status list must match the index's, see migration 0002).
pub(super) const DELETE_RUNS_SQL: &str = "WITH doomed AS (\
         SELECT run_id FROM runs \
         WHERE status IN ('completed', 'failed', 'cancelled') \
           AND COALESCE(finished_at, created_at) < $1 \
         ORDER BY COALESCE(finished_at, created_at) LIMIT $2 \
         FOR UPDATE SKIP LOCKED) \
     DELETE FROM runs USING doomed WHERE runs.run_id = doomed.run_id \
     RETURNING runs.tenant_id, runs.user_id, runs.thread_id";

/// The threads among `($1[i], $2[i], $3[i])` that have no run left and were last touched
/// before `$4`. A thread being touched now is row-locked by that upsert; this delete waits for
/// it and then sees its new `updated_at`, so it keeps it.
const DELETE_EMPTIED_THREADS_SQL: &str = "DELETE FROM threads USING \
         (SELECT DISTINCT tenant_id, user_id, thread_id \
          FROM unnest($1::text[], $2::text[], $3::text[]) \
               AS emptied (tenant_id, user_id, thread_id)) AS emptied \
     WHERE threads.tenant_id = emptied.tenant_id AND threads.user_id = emptied.user_id \
       AND threads.thread_id = emptied.thread_id \
       AND threads.updated_at < $4 \
       AND NOT EXISTS (SELECT 1 FROM runs \
                       WHERE runs.user_id = threads.user_id \
                         AND runs.thread_id = threads.thread_id \
                         AND runs.tenant_id = threads.tenant_id)";

pub(super) async fn delete_finished_runs_before(
    pool: &PgPool,
    cutoff: DateTime<Utc>,
    limit: u32,
) -> StoreResult<u64> {
    if limit == 0 {
        return Ok(0);
    }
    let cutoff = time_to_db(cutoff);
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(DELETE_RUNS_SQL)
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
    let mut tenants = Vec::with_capacity(rows.len());
    let mut users = Vec::with_capacity(rows.len());
    let mut threads = Vec::with_capacity(rows.len());
    for row in &rows {
        tenants.push(row.try_get::<String, _>(0)?);
        users.push(row.try_get::<String, _>(1)?);
        threads.push(row.try_get::<String, _>(2)?);
    }
    if !rows.is_empty() {
        sqlx::query(DELETE_EMPTIED_THREADS_SQL)
            .bind(&tenants)
            .bind(&users)
            .bind(&threads)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX))
}
