//! The event log's appends on SQLite: the group-commit sink.
//!
//! A batch is one job for the writer's group commit (`writes`), committed with the runs' other
//! writes: one cached INSERT per event. Only events of runs in flight are inserted and a
//! `(run_id, seq)` already stored is refused alone, so a refused event never takes the batch's
//! other events with it; a refusal is explained with one read per run.
//! Committed events are announced in-process ([`Notice::RunEvents`]) once their callers have
//! their answers. This module must not report success for an event that was not committed.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, params};

use super::writes::Writes;

use crate::group_commit::{EventSink, PendingEvent};
use crate::notice::NoticeHub;
use crate::{Notice, RunStatus, StoreError, StoreResult};

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
            // A failure of the database itself undoes the whole transaction (`write_batch`).
            .run_atomic(move |conn| write_batch(conn, &batch))
            .await;
        // Failed as a whole (the transaction rolled back, or the commit failed): each event
        // gets the same error, still retryable if it was.
        written
            .unwrap_or_else(|failed| (0..events).map(|_| Err(failed.for_each_caller())).collect())
    }

    async fn announce(&self, runs: Vec<(String, u64)>) {
        for (run_id, seq) in runs {
            self.notices.publish(Notice::RunEvents { run_id, seq });
        }
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

/// Appends one event, only if its run is in flight (the run may have ended meanwhile); an
/// event stored already fails the statement, which SQLite then undoes alone (its default
/// conflict resolution, ABORT), leaving the transaction as it was. The log is keyed by the
/// run's integer key (migration 6 says why), found here from the run id.
const APPEND_EVENT: &str = "INSERT INTO run_events (run_key, seq, event_type, payload, created_at) \
     SELECT run_key, ?2, ?3, ?4, ?5 FROM runs \
     WHERE run_id = ?1 AND status IN ('accepted', 'running')";

/// Writes the batch inside the writer's transaction and answers each event: stored, or refused
/// for itself (its run is not in flight, the event is stored already, or the database failed
/// its statement, which SQLite undid alone), one cached statement each: on this thread a
/// statement costs no hand-off, so there is nothing to gain from building multi-row ones. The
/// runs of refused events are read once each. An event that follows a refused one of its run is
/// not tried (no hole in a run's log), except after a duplicate. An error means the database
/// rolled the whole transaction back (a full disk, say): nothing of the batch is stored.
fn write_batch(
    conn: &Connection,
    batch: &[PendingEvent],
) -> Result<Vec<StoreResult<()>>, StoreError> {
    let mut append = conn.prepare_cached(APPEND_EVENT)?;
    let mut status_of: HashMap<&str, Option<RunStatus>> = HashMap::new();
    let mut results: Vec<StoreResult<()>> = Vec::with_capacity(batch.len());
    for event in batch {
        if let Some(Err(refused)) = results.last()
            && event.follows
            && !matches!(refused, StoreError::DuplicateEvent { .. })
        {
            let refused = repeat(refused);
            results.push(Err(refused));
            continue;
        }
        let appended = append.execute(params![
            event.run_id,
            event.seq_db,
            event.event_type,
            &*event.payload,
            event.created_at,
        ]);
        results.push(match appended {
            Ok(1) => Ok(()),
            Ok(_) => {
                let status = match status_of.get(event.run_id.as_str()) {
                    Some(status) => *status,
                    None => {
                        let status = super::run_status(conn, &event.run_id)?;
                        status_of.insert(&event.run_id, status);
                        status
                    }
                };
                Err(match status {
                    None => StoreError::RunNotFound(event.run_id.clone()),
                    Some(status) if status.is_terminal() => StoreError::RunFinished {
                        run_id: event.run_id.clone(),
                        status,
                    },
                    Some(status) => StoreError::Corrupt(format!(
                        "run {} is {status} yet took no event {}",
                        event.run_id, event.seq
                    )),
                })
            }
            Err(e) if super::is_unique_violation(&e) => Err(StoreError::DuplicateEvent {
                run_id: event.run_id.clone(),
                seq: event.seq,
            }),
            // The transaction is gone, and with it what the batch wrote.
            Err(e) if conn.is_autocommit() => return Err(e.into()),
            Err(e) => Err(e.into()),
        });
    }
    Ok(results)
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

    /// A batch the database refuses as a whole (here: its write lock is held elsewhere and
    /// the writer may not wait) answers each event with that error, still retryable.
    #[tokio::test]
    async fn a_batch_refused_as_a_whole_answers_each_event_retryably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (k); \
                 BEGIN IMMEDIATE; INSERT INTO t VALUES (1)",
            )
            .unwrap();
        let open = move || {
            let conn = Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::ZERO)?;
            Ok(conn)
        };
        let sink = SqliteEventSink {
            writes: Writes::start(open).await.unwrap(),
            notices: Arc::new(NoticeHub::new()),
        };
        let results = sink.write(vec![event("r", 1), event("r", 2)].into()).await;
        assert_eq!(results.len(), 2);
        for result in results {
            let error = result.unwrap_err();
            assert!(error.is_retryable(), "{error:?}");
        }
        drop(holder);
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
            let results = store
                .writes
                .run_atomic(move |conn| write_batch(conn, &batch))
                .await
                .unwrap();
            assert_eq!(outcome(results), expected, "{events:?}");
        }

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
