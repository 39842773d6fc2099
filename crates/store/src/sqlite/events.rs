//! The event log's writes on SQLite: the group-commit sink and the fenced single INSERT.
//!
//! A lone event (the common case at low load) is one autocommit statement; a batch is one
//! `BEGIN IMMEDIATE` transaction in which a refused event (duplicate, unknown or finished run)
//! aborts only its own statement, as SQLite does. Committed events are announced in-process
//! ([`Notice::RunEvents`]) once their callers have their answers. This module must not report success for an event
//! that was not committed.

use std::sync::Arc;

use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::group_commit::{EventSink, PendingEvent};
use crate::notice::NoticeHub;
use crate::{Notice, RunStatus, StoreError, StoreResult};

/// Inserts the event only while its run is in flight: nothing may follow a terminal event.
/// The schema's trigger raises `runs.last_seq` within the same statement.
const INSERT_EVENT_SQL: &str = "INSERT INTO run_events (run_id, seq, event_type, payload, \
     created_at) SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = ?1 \
     AND status IN ('accepted', 'running'))";

pub(super) struct SqliteEventSink {
    pub(super) pool: SqlitePool,
    pub(super) notices: Arc<NoticeHub>,
}

#[async_trait::async_trait]
impl EventSink for SqliteEventSink {
    async fn write(&self, batch: &[PendingEvent]) -> Vec<StoreResult<()>> {
        if batch.len() == 1 {
            vec![insert_alone(&self.pool, &batch[0]).await]
        } else {
            match write_batch(&self.pool, batch).await {
                Ok(results) => results,
                Err(e) => {
                    // Something beyond a per-event refusal (I/O, busy, ...): the transaction
                    // was rolled back, nothing of the batch is stored. Retry each event alone
                    // so every caller gets its own, precise result.
                    tracing::warn!(error = %e, events = batch.len(), "event batch failed; writing one by one");
                    let mut results = Vec::with_capacity(batch.len());
                    for event in batch {
                        results.push(insert_alone(&self.pool, event).await);
                    }
                    results
                }
            }
        }
    }

    async fn announce(&self, runs: Vec<(String, u64)>) {
        for (run_id, seq) in runs {
            self.notices.publish(Notice::RunEvents { run_id, seq });
        }
    }
}

/// One event in its own autocommit statement.
async fn insert_alone(pool: &SqlitePool, event: &PendingEvent) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    insert_event(&mut conn, event).await
}

/// Writes the batch in one transaction. Per-event refusals abort only their own statement, so
/// they are answered individually and the rest commit. Any other error rolls the whole
/// transaction back and is returned.
async fn write_batch(
    pool: &SqlitePool,
    batch: &[PendingEvent],
) -> Result<Vec<StoreResult<()>>, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(batch.len());
    for event in batch {
        match insert_event(&mut tx, event).await {
            Ok(()) => results.push(Ok(())),
            Err(
                refused @ (StoreError::DuplicateEvent { .. }
                | StoreError::RunNotFound(_)
                | StoreError::RunFinished { .. }),
            ) => results.push(Err(refused)),
            // Dropping `tx` on the way out rolls back whatever this batch wrote.
            Err(other) => return Err(other),
        }
    }
    tx.commit().await?;
    Ok(results)
}

/// One fenced INSERT; when it inserts nothing, says why.
pub(super) async fn insert_event(
    conn: &mut SqliteConnection,
    event: &PendingEvent,
) -> StoreResult<()> {
    let result = sqlx::query(INSERT_EVENT_SQL)
        .bind(event.run_id.as_str())
        .bind(event.seq_db)
        .bind(event.event_type.as_str())
        .bind(event.payload.as_str())
        .bind(event.created_at)
        .execute(&mut *conn)
        .await;
    match result {
        Ok(done) if done.rows_affected() == 1 => Ok(()),
        Ok(_) => Err(why_not_in_flight(conn, &event.run_id).await),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::DuplicateEvent {
                run_id: event.run_id.clone(),
                seq: event.seq,
            })
        }
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            Err(StoreError::RunNotFound(event.run_id.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The refusal for an event whose run was not in flight: unknown or finished.
async fn why_not_in_flight(conn: &mut SqliteConnection, run_id: &str) -> StoreError {
    let row = sqlx::query("SELECT status FROM runs WHERE run_id = ?")
        .bind(run_id)
        .fetch_optional(conn)
        .await;
    let status = match row {
        Ok(None) => return StoreError::RunNotFound(run_id.to_owned()),
        Ok(Some(row)) => row.try_get::<String, _>(0).map_err(StoreError::from),
        Err(e) => return e.into(),
    };
    match status.and_then(|s| s.parse::<RunStatus>()) {
        Ok(status) if status.is_terminal() => StoreError::RunFinished {
            run_id: run_id.to_owned(),
            status,
        },
        Ok(status) => StoreError::Corrupt(format!(
            "run {run_id} is {status} but its event was not inserted"
        )),
        Err(e) => e,
    }
}
