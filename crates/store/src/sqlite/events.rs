//! The event log's writes on SQLite: the group-commit sink, and `end_run`'s inserts.
//!
//! A batch is one job for the writer's group commit (`writes`), committed with the runs' other
//! writes: one multi-row INSERT, or past [`EVENTS_PER_STATEMENT`] several under a savepoint. Only events
//! of runs in flight are inserted and a `(run_id, seq)` already stored is skipped, so a refused
//! event never takes the batch's other events with it; which were left out is learnt only when
//! the statement stored fewer than it was given (`insert_rows`), and those are explained with
//! one read per run. Committed events are announced in-process
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
/// have ended meanwhile). An event stored already fails the whole statement, and SQLite then
/// undoes the statement alone (its default conflict resolution, ABORT), leaving the
/// transaction as it was. The log is keyed by the run's integer key (migration 6 says why),
/// found here from the run id.
fn append_sql(rows: usize) -> String {
    format!("{}{}", append_head(rows), APPEND_WHERE)
}

/// [`append_sql`] that skips an event stored already instead of failing, and returns the ones
/// it stored: one message from sqlx's SQLite thread per row, so only for a batch that meets a
/// stored event, which the engine never sends.
fn append_skipping_sql(rows: usize) -> String {
    format!(
        "{}{APPEND_WHERE} ON CONFLICT DO NOTHING \
         RETURNING (SELECT run_id FROM runs WHERE runs.run_key = run_events.run_key), seq",
        append_head(rows)
    )
}

fn append_head(rows: usize) -> String {
    format!(
        "INSERT INTO run_events (run_key, seq, event_type, payload, created_at) \
         SELECT r.run_key, e.column2, e.column3, e.column4, e.column5 FROM (VALUES {}) AS e \
         JOIN runs AS r ON r.run_id = e.column1",
        values(rows)
    )
}

const APPEND_WHERE: &str = " WHERE r.status IN ('accepted', 'running')";

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
    let mut skipped: HashSet<(&str, i64)> = HashSet::new();
    // Runs' statuses read while storing (`insert_rows`), so that explaining reads none twice.
    let mut status_of: HashMap<&str, Option<RunStatus>> = HashMap::new();
    if batch.len() <= EVENTS_PER_STATEMENT {
        insert_rows(conn, batch, &mut skipped, &mut status_of).await?;
    } else {
        // A savepoint: an error in a later statement undoes the earlier ones too.
        let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
        for chunk in batch.chunks(EVENTS_PER_STATEMENT) {
            // Dropping `savepoint` on an error rolls back what the earlier chunks wrote.
            insert_rows(&mut savepoint, chunk, &mut skipped, &mut status_of).await?;
        }
        savepoint.commit().await?;
    }
    let mut results: Vec<StoreResult<()>> = Vec::with_capacity(batch.len());
    for event in batch {
        if !skipped.contains(&(event.run_id.as_str(), event.seq_db)) {
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

/// One multi-row append of `rows`, adding what it did not store to `skipped`, and the statuses
/// it read to `status_of`.
///
/// The statement says only how many rows it stored. All of them, as nearly always: done. Fewer:
/// it failed no row for being stored already, so what it left out are exactly the events of
/// runs not in flight, found by reading the statuses of its runs in the same transaction. Failed
/// on an event stored already: it was undone as a whole, and the statement that skips stored
/// events and returns the others runs instead.
async fn insert_rows<'b>(
    conn: &mut SqliteConnection,
    rows: &'b [PendingEvent],
    skipped: &mut HashSet<(&'b str, i64)>,
    status_of: &mut HashMap<&'b str, Option<RunStatus>>,
) -> StoreResult<()> {
    match with_rows(append_sql(rows.len()), rows)
        .execute(&mut *conn)
        .await
    {
        Ok(done) if usize::try_from(done.rows_affected()).is_ok_and(|n| n == rows.len()) => Ok(()),
        Ok(_) => {
            read_statuses(conn, rows, status_of).await?;
            let in_flight =
                |run_id: &str| matches!(status_of.get(run_id), Some(Some(s)) if !s.is_terminal());
            skipped.extend(
                rows.iter()
                    .filter(|row| !in_flight(&row.run_id))
                    .map(|row| (row.run_id.as_str(), row.seq_db)),
            );
            Ok(())
        }
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            let mut stored: HashSet<(String, i64)> = HashSet::with_capacity(rows.len());
            for row in with_rows(append_skipping_sql(rows.len()), rows)
                .fetch_all(&mut *conn)
                .await?
            {
                stored.insert((row.try_get(0)?, row.try_get(1)?));
            }
            skipped.extend(
                rows.iter()
                    .filter(|row| !stored.contains(&(row.run_id.clone(), row.seq_db)))
                    .map(|row| (row.run_id.as_str(), row.seq_db)),
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads the status of every run of `rows` into `status_of` (`None`: no such run), one read
/// for all of them.
async fn read_statuses<'b>(
    conn: &mut SqliteConnection,
    rows: &'b [PendingEvent],
    status_of: &mut HashMap<&'b str, Option<RunStatus>>,
) -> StoreResult<()> {
    let runs: HashSet<&str> = rows.iter().map(|row| row.run_id.as_str()).collect();
    let placeholders = vec!["?"; runs.len()].join(",");
    // Safe to assert: the text holds `?` placeholders only; the ids travel as bound parameters.
    let sql = AssertSqlSafe(format!(
        "SELECT run_id, status FROM runs WHERE run_id IN ({placeholders})"
    ));
    let mut query = sqlx::query(sql);
    for run_id in &runs {
        query = query.bind(*run_id);
    }
    for run_id in &runs {
        status_of.insert(run_id, None);
    }
    for row in query.fetch_all(&mut *conn).await? {
        let run_id: String = row.try_get(0)?;
        if let Some(known) = runs.get(run_id.as_str()) {
            status_of.insert(known, Some(row.try_get::<String, _>(1)?.parse()?));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;
    use crate::{RunRecord, Store};
    use chrono::Utc;

    fn run(run_id: &str, status: RunStatus) -> RunRecord {
        RunRecord {
            run_id: run_id.into(),
            thread_id: run_id.into(),
            user_id: "u".into(),
            tenant_id: "t".into(),
            agent: "supervisor".into(),
            user_request: "q".into(),
            status,
            created_at: Utc::now(),
            finished_at: None,
            last_seq: 0,
        }
    }

    fn event(run_id: &str, seq: u64) -> PendingEvent {
        PendingEvent {
            run_id: run_id.into(),
            seq,
            seq_db: i64::try_from(seq).unwrap(),
            event_type: "progress".into(),
            payload: format!(r#"{{"seq":{seq}}}"#).into(),
            created_at: 0,
            follows: false,
        }
    }

    /// Each event of a batch is answered for itself, whichever way the batch was stored: all
    /// at once, with some runs' events refused, or beside an event stored already.
    #[tokio::test]
    async fn every_event_of_a_batch_gets_its_own_answer() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store
            .create_run(&run("r1", RunStatus::Running))
            .await
            .unwrap();
        store
            .create_run(&run("r2", RunStatus::Running))
            .await
            .unwrap();
        store
            .create_run(&run("done", RunStatus::Completed))
            .await
            .unwrap();
        let mut conn = store.writer.acquire().await.unwrap();
        let outcome = |results: Vec<StoreResult<()>>| -> Vec<String> {
            results
                .into_iter()
                .map(|r| match r {
                    Ok(()) => "ok".to_owned(),
                    Err(StoreError::DuplicateEvent { .. }) => "duplicate".to_owned(),
                    Err(StoreError::RunFinished { .. }) => "finished".to_owned(),
                    Err(StoreError::RunNotFound(_)) => "not found".to_owned(),
                    Err(other) => format!("{other:?}"),
                })
                .collect()
        };

        let batches = [
            // All stored.
            (
                [("r1", 1), ("r2", 1), ("r1", 2), ("r2", 2)],
                ["ok", "ok", "ok", "ok"],
            ),
            // Runs that take no events beside ones that do.
            (
                [("done", 1), ("r1", 3), ("ghost", 1), ("r2", 3)],
                ["finished", "ok", "not found", "ok"],
            ),
            // An event stored already, beside new ones and refused ones.
            (
                [("r2", 4), ("r1", 2), ("done", 2), ("r1", 4)],
                ["ok", "duplicate", "finished", "ok"],
            ),
        ];
        for (events, expected) in batches {
            let batch: Vec<PendingEvent> = events.iter().map(|(r, seq)| event(r, *seq)).collect();
            let results = write_batch(&mut conn, &batch).await.unwrap();
            assert_eq!(outcome(results), expected, "{events:?}");
        }

        drop(conn);
        let seqs = |run_id: &'static str| {
            let store = store.clone();
            async move {
                store
                    .events_after(run_id, 0, u32::MAX)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| e.seq)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(seqs("r1").await, [1, 2, 3, 4]);
        assert_eq!(seqs("r2").await, [1, 2, 3, 4]);
        assert!(seqs("done").await.is_empty());
        // The counter follows the log, whichever way the events were stored.
        let last: Vec<(String, i64)> =
            sqlx::query_as("SELECT run_id, last_seq FROM runs ORDER BY run_id")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        assert_eq!(
            last,
            [("done".into(), 0), ("r1".into(), 4), ("r2".into(), 4)]
        );
    }
}
