//! The event log's writes on PostgreSQL: a whole group-commit batch in one statement.
//!
//! The batch travels as column arrays; one INSERT ... SELECT joins it to the runs still in
//! flight, locks those run rows (`FOR NO KEY UPDATE`, so a concurrent `end_run` either commits
//! first and the events are refused, or waits for this commit), skips `(run_id, seq)` pairs
//! already stored (`ON CONFLICT DO NOTHING`: in PostgreSQL a failing statement would abort the
//! whole transaction, taking the batch's good events with it) and returns what it inserted. One
//! statement is one transaction: one WAL flush for the batch, shared with the concurrent
//! commits of other batches and other nodes. The schema's statement trigger raises
//! `runs.last_seq` in the same transaction. Events that were not inserted are then classified
//! with one read.
//!
//! The wake-ups go out after the commit, in a statement of their own ([`notify_run_events`]):
//! PostgreSQL serializes the commits of all transactions that NOTIFY (a database-wide lock held
//! until after the commit's WAL flush), so a NOTIFY inside the append would allow one flush at
//! a time across every node (measured with pgbench, 8 clients: ~280 commits/s instead of
//! ~4,500). The notifying statement writes nothing and does not wait for a flush, so it holds
//! that lock only for a moment. This module must not report success for an event that was not
//! committed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgPool, Row};

use super::bounded;
use crate::group_commit::{EventSink, PendingEvent};
use crate::{RunStatus, StoreError, StoreResult};

const INSERT_EVENTS_SQL: &str = "INSERT INTO run_events (run_id, seq, event_type, payload, \
     created_at) \
     SELECT e.run_id, e.seq, e.event_type, e.payload, e.created_at \
     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) \
          AS e(run_id, seq, event_type, payload, created_at) \
     JOIN runs r ON r.run_id = e.run_id AND r.status IN ('accepted', 'running') \
     FOR NO KEY UPDATE OF r \
     ON CONFLICT (run_id, seq) DO NOTHING \
     RETURNING run_id, seq";

/// Why each event that was not inserted was refused.
const CLASSIFY_SQL: &str = "SELECT e.i, r.status, \
     EXISTS (SELECT 1 FROM run_events x WHERE x.run_id = e.run_id AND x.seq = e.seq) \
     FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS e(run_id, seq, i) \
     LEFT JOIN runs r ON r.run_id = e.run_id";

pub(super) struct PgEventSink {
    pub(super) pool: PgPool,
    pub(super) timeout: Duration,
}

/// Wakes every listening node: "`<seq> <run_id>`" on `agentwire_run_events` per run. Runs in
/// its own transaction with `synchronous_commit` off for that transaction only: it stores
/// nothing that must survive a crash, so it need not wait for a WAL flush.
const NOTIFY_RUN_EVENTS_SQL: &str = "SELECT pg_notify('agentwire_run_events', n.seq || ' ' || \
     n.run_id) FROM unnest($1::text[], $2::bigint[]) AS n(run_id, seq) \
     WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL";

/// Sends the wake-ups for committed events, trying a few times: a follower on another node
/// waits for them (a lost one is only recovered by the follower's next wake-up or resync).
pub(super) async fn notify_run_events(pool: &PgPool, timeout: Duration, runs: &[(String, u64)]) {
    let run_ids: Vec<&str> = runs.iter().map(|(run_id, _)| run_id.as_str()).collect();
    // Stored seqs fit in i64 (appends refuse larger ones).
    let seqs: Vec<i64> = runs
        .iter()
        .map(|(_, seq)| i64::try_from(*seq).unwrap_or(i64::MAX))
        .collect();
    let mut pause = Duration::from_millis(50);
    for attempt in 1..=3 {
        let sent = bounded(timeout, async {
            sqlx::query(NOTIFY_RUN_EVENTS_SQL)
                .bind(&run_ids)
                .bind(&seqs)
                .execute(pool)
                .await?;
            Ok(())
        })
        .await;
        match sent {
            Ok(()) => return,
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, attempt, "sending event wake-ups failed; retrying");
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
            Err(e) => {
                tracing::error!(error = %e, runs = runs.len(), "event wake-ups were not sent; followers on other nodes see these events with their next wake-up");
            }
        }
    }
}

#[async_trait::async_trait]
impl EventSink for PgEventSink {
    async fn announce(&self, runs: Vec<(String, u64)>) {
        notify_run_events(&self.pool, self.timeout, &runs).await;
    }

    async fn write(&self, batch: Arc<[PendingEvent]>) -> Vec<StoreResult<()>> {
        let batch = &*batch;
        let mut outcome = bounded(self.timeout, write_batch(&self.pool, batch)).await;
        if matches!(&outcome, Err(e) if e.is_retryable() && !matches!(e, StoreError::Unavailable(_)))
        {
            // A deadlock with another node's batch over the same runs (only when two nodes
            // write one run, i.e. a presumed-dead node still running): nothing was written,
            // and trying again usually succeeds.
            outcome = bounded(self.timeout, write_batch(&self.pool, batch)).await;
        }
        match outcome {
            Ok(results) => results,
            Err(e) => {
                tracing::warn!(error = %e, events = batch.len(), "event batch failed");
                batch.iter().map(|_| Err(e.for_each_caller())).collect()
            }
        }
    }
}

/// The batch's one statement, then the refusals explained.
async fn write_batch(pool: &PgPool, batch: &[PendingEvent]) -> StoreResult<Vec<StoreResult<()>>> {
    let run_ids: Vec<&str> = batch.iter().map(|e| e.run_id.as_str()).collect();
    let seqs: Vec<i64> = batch.iter().map(|e| e.seq_db).collect();
    let types: Vec<&str> = batch.iter().map(|e| e.event_type.as_str()).collect();
    let payloads: Vec<&str> = batch.iter().map(|e| &*e.payload).collect();
    let created: Vec<i64> = batch.iter().map(|e| e.created_at).collect();
    let rows = sqlx::query(INSERT_EVENTS_SQL)
        .bind(&run_ids)
        .bind(&seqs)
        .bind(&types)
        .bind(&payloads)
        .bind(&created)
        .fetch_all(pool)
        .await?;
    let mut inserted = HashSet::with_capacity(rows.len());
    for row in &rows {
        inserted.insert((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?));
    }
    if inserted.len() == batch.len() {
        return Ok(batch.iter().map(|_| Ok(())).collect());
    }
    let refused: Vec<usize> = batch
        .iter()
        .enumerate()
        .filter(|(_, e)| !inserted.contains(&(e.run_id.clone(), e.seq_db)))
        .map(|(i, _)| i)
        .collect();
    let refused_runs: Vec<&str> = refused.iter().map(|&i| run_ids[i]).collect();
    let refused_seqs: Vec<i64> = refused.iter().map(|&i| seqs[i]).collect();
    let rows = sqlx::query(CLASSIFY_SQL)
        .bind(&refused_runs)
        .bind(&refused_seqs)
        .fetch_all(pool)
        .await?;
    let mut results: Vec<StoreResult<()>> = batch.iter().map(|_| Ok(())).collect();
    for row in &rows {
        // `WITH ORDINALITY` counts from 1.
        let position: i64 = row.try_get(0)?;
        let Some(&i) = usize::try_from(position - 1)
            .ok()
            .and_then(|p| refused.get(p))
        else {
            return Err(StoreError::Corrupt(format!(
                "event classification returned position {position}"
            )));
        };
        let event = &batch[i];
        let status: Option<String> = row.try_get(1)?;
        let stored: bool = row.try_get(2)?;
        results[i] = Err(match (stored, status) {
            (true, _) => StoreError::DuplicateEvent {
                run_id: event.run_id.clone(),
                seq: event.seq,
            },
            (false, None) => StoreError::RunNotFound(event.run_id.clone()),
            (false, Some(status)) => {
                let status: RunStatus = status.parse()?;
                if status.is_terminal() {
                    StoreError::RunFinished {
                        run_id: event.run_id.clone(),
                        status,
                    }
                } else {
                    StoreError::Database(sqlx::Error::Protocol(format!(
                        "event {}#{} was not stored although its run is {status}",
                        event.run_id, event.seq
                    )))
                }
            }
        });
    }
    Ok(results)
}
