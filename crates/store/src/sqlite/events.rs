//! The event log's writes on SQLite: the group-commit sink, and `end_run`'s inserts.
//!
//! A batch is one job for the writer's group commit (`writes`), committed with the runs' other
//! writes: one multi-row INSERT, or past [`EVENTS_PER_STATEMENT`] several under a savepoint. Only events
//! of runs in flight are inserted and a `(run_id, seq)` already stored is skipped, so a refused
//! event never takes the batch's other events with it; the statement returns what it inserted
//! and the rest are explained with one read per run. Committed events are announced in-process
//! ([`Notice::RunEvents`]) once their callers have their answers. This module must not report
//! success for an event that was not committed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection};

use super::writes::Writes;

use crate::group_commit::{EventSink, PendingEvent};
use crate::notice::NoticeHub;
use crate::{Notice, RunStatus, StoreError, StoreResult};

/// Events per INSERT statement: 5 parameters each, well under SQLite's 32,766.
pub(super) const EVENTS_PER_STATEMENT: usize = 512;

pub(super) struct SqliteEventSink {
    pub(super) writes: Writes,
    pub(super) notices: Arc<NoticeHub>,
}

#[async_trait::async_trait]
impl EventSink for SqliteEventSink {
    async fn write(&self, batch: Arc<[PendingEvent]>) -> Vec<StoreResult<()>> {
        let events = batch.len();
        // One job among the runs' other writes: the whole lot shares one commit.
        let written = self
            .writes
            // A batch of more than one statement has its own savepoint (`write_batch`).
            .run_atomic(move |conn| {
                let batch = Arc::clone(&batch);
                Box::pin(async move { Ok(write_on(conn, &batch).await) })
            })
            .await;
        written.unwrap_or_else(|failed| (0..events).map(|_| Err(repeat(&failed))).collect())
    }

    async fn announce(&self, runs: Vec<(String, u64)>) {
        for (run_id, seq) in runs {
            self.notices.publish(Notice::RunEvents { run_id, seq });
        }
    }
}

/// Writes the batch inside the writer's transaction and answers each event.
async fn write_on(conn: &mut SqliteConnection, batch: &[PendingEvent]) -> Vec<StoreResult<()>> {
    match write_batch(conn, batch).await {
        Ok(results) => results,
        Err(e) if batch.len() > 1 => {
            // Something beyond a per-event refusal (I/O, busy, ...): nothing of the batch is
            // stored. Retry each event alone so every caller gets its own, precise result; an
            // event that follows a refused one of its run stays unwritten.
            tracing::warn!(error = %e, events = batch.len(), "event batch failed; writing one by one");
            let mut results: Vec<StoreResult<()>> = Vec::with_capacity(batch.len());
            for event in batch {
                let result = match results.last() {
                    Some(Err(refused)) if event.follows => Err(repeat(refused)),
                    _ => insert_alone(conn, event).await,
                };
                results.push(result);
            }
            results
        }
        Err(e) => vec![Err(e)],
    }
}

/// The refusal of an event repeated for the one that follows it.
fn repeat(refused: &StoreError) -> StoreError {
    match refused {
        StoreError::RunNotFound(run_id) => StoreError::RunNotFound(run_id.clone()),
        StoreError::RunFinished { run_id, status } => StoreError::RunFinished {
            run_id: run_id.clone(),
            status: *status,
        },
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        other => StoreError::Database(sqlx::Error::Protocol(format!(
            "not written: the run's previous event was refused ({other})"
        ))),
    }
}

/// `(?,?,?,?,?)` once for each of `rows` events: their run, seq, type, payload and time.
fn values(rows: usize) -> String {
    let mut values = String::with_capacity(rows * 12);
    for i in 0..rows {
        values.push_str(if i == 0 {
            "(?,?,?,?,?)"
        } else {
            ",(?,?,?,?,?)"
        });
    }
    values
}

/// The multi-row INSERT that appends `rows` events: only those of runs in flight (the run may
/// have ended meanwhile) and not stored yet, returning the ones it stored. The log is keyed by
/// the run's integer key (migration 6 says why), found here from the run id.
fn append_sql(rows: usize) -> String {
    format!(
        "INSERT INTO run_events (run_key, seq, event_type, payload, created_at) \
         SELECT r.run_key, e.column2, e.column3, e.column4, e.column5 FROM (VALUES {}) AS e \
         JOIN runs AS r ON r.run_id = e.column1 WHERE r.status IN ('accepted', 'running') \
         ON CONFLICT DO NOTHING \
         RETURNING (SELECT run_id FROM runs WHERE runs.run_key = run_events.run_key), seq",
        values(rows)
    )
}

/// The multi-row INSERT of `rows` events that must all be stored: it stores all or fails (an
/// unknown run has no key, and the key may not be null). It ends with its rows' source, so a
/// caller may add a `WHERE`.
pub(super) fn insert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO run_events (run_key, seq, event_type, payload, created_at) \
         SELECT (SELECT r.run_key FROM runs AS r WHERE r.run_id = e.column1), \
         e.column2, e.column3, e.column4, e.column5 FROM (VALUES {}) AS e",
        values(rows)
    )
}

/// `sql` with `rows`' values bound, in [`values`]' order.
fn with_rows(sql: String, rows: &[PendingEvent]) -> Query<'_, Sqlite, SqliteArguments> {
    // Safe to assert: the text holds column names and `?` placeholders only; the values travel
    // as bound parameters.
    bind_rows(sqlx::query(AssertSqlSafe(sql)), rows)
}

/// `query` with `rows`' values bound after the ones it has, in [`values`]' order.
pub(super) fn bind_rows<'q>(
    mut query: Query<'q, Sqlite, SqliteArguments>,
    rows: &'q [PendingEvent],
) -> Query<'q, Sqlite, SqliteArguments> {
    for event in rows {
        query = query
            .bind(event.run_id.as_str())
            .bind(event.seq_db)
            .bind(event.event_type.as_str())
            // The shared text itself: sqlx copies a `&str` into a new `String` to bind it,
            // which was every event's payload once more (80 KB a run).
            .bind(Arc::clone(&event.payload))
            .bind(event.created_at);
    }
    query
}

/// Writes the batch in one commit and answers each event. An error means nothing of the batch
/// is stored.
async fn write_batch(
    conn: &mut SqliteConnection,
    batch: &[PendingEvent],
) -> Result<Vec<StoreResult<()>>, StoreError> {
    let mut inserted: HashSet<(String, i64)> = HashSet::with_capacity(batch.len());
    if batch.len() <= EVENTS_PER_STATEMENT {
        insert_rows(conn, batch, &mut inserted).await?;
    } else {
        // A savepoint: an error in a later statement undoes the earlier ones too.
        let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
        for chunk in batch.chunks(EVENTS_PER_STATEMENT) {
            // Dropping `savepoint` on an error rolls back what the earlier chunks wrote.
            insert_rows(&mut savepoint, chunk, &mut inserted).await?;
        }
        savepoint.commit().await?;
    }
    let mut results: Vec<StoreResult<()>> = Vec::with_capacity(batch.len());
    let mut status_of: HashMap<&str, Option<RunStatus>> = HashMap::new();
    for event in batch {
        if inserted.contains(&(event.run_id.clone(), event.seq_db)) {
            results.push(Ok(()));
            continue;
        }
        let status = match status_of.get(event.run_id.as_str()) {
            Some(status) => *status,
            None => {
                let status = run_status(conn, &event.run_id).await?;
                status_of.insert(&event.run_id, status);
                status
            }
        };
        results.push(Err(match status {
            None => StoreError::RunNotFound(event.run_id.clone()),
            Some(status) if status.is_terminal() => StoreError::RunFinished {
                run_id: event.run_id.clone(),
                status,
            },
            // In flight and not inserted: the pair is stored already.
            Some(_) => StoreError::DuplicateEvent {
                run_id: event.run_id.clone(),
                seq: event.seq,
            },
        }));
    }
    Ok(results)
}

/// Inserts a run's events for its admission or `end_run`, which have checked in the same
/// transaction that the run may take them and that its log ends right before them: every one
/// must be stored. Multi-row statements, like a batch: one per event was most of the writer's
/// time for a run's last events.
pub(super) async fn insert_all(
    conn: &mut SqliteConnection,
    pending: &[PendingEvent],
) -> StoreResult<()> {
    for chunk in pending.chunks(EVENTS_PER_STATEMENT) {
        match with_rows(insert_sql(chunk.len()), chunk)
            .execute(&mut *conn)
            .await
        {
            Ok(_) => {}
            Err(e) => return Err(insert_error(e, chunk)),
        }
    }
    Ok(())
}

/// A failed insert of events that must all be stored: one stored already means the log and
/// the run disagree.
pub(super) fn insert_error(e: sqlx::Error, rows: &[PendingEvent]) -> StoreError {
    match (e, rows.first(), rows.last()) {
        (sqlx::Error::Database(e), Some(first), Some(last)) if e.is_unique_violation() => {
            StoreError::Corrupt(format!(
                "events {}..={} of run {} were stored already although their run takes them",
                first.seq, last.seq, first.run_id
            ))
        }
        (e, _, _) => e.into(),
    }
}

/// One multi-row append of `rows`, adding what it stored to `inserted`.
async fn insert_rows(
    conn: &mut SqliteConnection,
    rows: &[PendingEvent],
    inserted: &mut HashSet<(String, i64)>,
) -> StoreResult<()> {
    for row in with_rows(append_sql(rows.len()), rows)
        .fetch_all(&mut *conn)
        .await?
    {
        inserted.insert((row.try_get(0)?, row.try_get(1)?));
    }
    Ok(())
}

/// A run's status; `None` when there is no such run.
async fn run_status(conn: &mut SqliteConnection, run_id: &str) -> StoreResult<Option<RunStatus>> {
    let row = sqlx::query("SELECT status FROM runs WHERE run_id = ?")
        .bind(run_id)
        .fetch_optional(conn)
        .await?;
    row.map(|row| row.try_get::<String, _>(0)?.parse())
        .transpose()
}

/// One event alone: a batch of one, answered by its single result.
async fn insert_alone(conn: &mut SqliteConnection, event: &PendingEvent) -> StoreResult<()> {
    write_batch(conn, std::slice::from_ref(event))
        .await?
        .pop()
        .unwrap_or_else(|| {
            Err(StoreError::Database(sqlx::Error::Protocol(
                "a batch of one event had no result".into(),
            )))
        })
}
