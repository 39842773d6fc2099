//! Group commit for the event log: many concurrent `append_event` calls, one transaction.
//!
//! Every append must be durable before it returns (the event is sent only after), and with
//! `synchronous=FULL` each commit costs an fsync. Committing each event alone caps the whole
//! server at one fsync per event. Instead appends are queued to one task that drains whatever is
//! waiting (up to [`MAX_EVENT_BATCH`]) and writes it in a single transaction: one fsync for the
//! lot. Each caller still gets its own result, only after the commit that holds its event. A
//! lone event (the common case at low load) is written as one autocommit statement, exactly as
//! without batching. This module must not reorder one caller's events (a run appends one event
//! at a time and awaits it) or report success for an event that was not committed.

use sqlx::{Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::convert::{time_to_db, u64_to_db};
use crate::{StoreError, StoreResult};

/// Most events per transaction: large enough to amortize the fsync, small enough that the
/// writer connection is not held for long by one batch.
pub(crate) const MAX_EVENT_BATCH: usize = 256;

/// Appends waiting for the writer task. Bounded so a stalled disk pushes back on the runs
/// instead of growing memory without limit.
const QUEUE_CAPACITY: usize = 4 * MAX_EVENT_BATCH;

const INSERT_EVENT_SQL: &str = "INSERT INTO run_events (run_id, seq, event_type, payload, \
     created_at) VALUES (?, ?, ?, ?, ?)";

/// One queued append.
struct AppendRequest {
    run_id: String,
    seq: u64,
    /// `seq` as stored, range-checked by the caller.
    seq_db: i64,
    event_type: String,
    payload: String,
    created_at: i64,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The queue in front of the event writer task. Cloning shares the queue; the task stops when
/// the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct EventWriter {
    queue: mpsc::Sender<AppendRequest>,
}

impl EventWriter {
    /// Starts the writer task on the current Tokio runtime.
    pub(crate) fn spawn(pool: SqlitePool) -> EventWriter {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run_writer(pool, rx));
        EventWriter { queue }
    }

    /// Queues one event and waits until it is committed (or refused).
    pub(crate) async fn append(
        &self,
        run_id: &str,
        seq: u64,
        event_type: &str,
        payload: &str,
    ) -> StoreResult<()> {
        let seq_db = u64_to_db("seq", seq)?;
        let (done, result) = oneshot::channel();
        let request = AppendRequest {
            run_id: run_id.to_owned(),
            seq,
            seq_db,
            event_type: event_type.to_owned(),
            payload: payload.to_owned(),
            created_at: time_to_db(chrono::Utc::now()),
            done,
        };
        // Either side failing means the writer task is gone: its runtime shut down, or the
        // store is being dropped. Same meaning to the caller as a closed pool.
        self.queue
            .send(request)
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        result
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

async fn run_writer(pool: SqlitePool, mut rx: mpsc::Receiver<AppendRequest>) {
    let mut batch = Vec::with_capacity(MAX_EVENT_BATCH);
    while rx.recv_many(&mut batch, MAX_EVENT_BATCH).await > 0 {
        if batch.len() == 1 {
            for request in batch.drain(..) {
                let result = insert_event(&pool, &request).await;
                let _ = request.done.send(result); // the caller may have given up; fine
            }
            continue;
        }
        match write_batch(&pool, &batch).await {
            Ok(results) => {
                for (request, result) in batch.drain(..).zip(results) {
                    let _ = request.done.send(result);
                }
            }
            Err(e) => {
                // Something beyond a per-event refusal (I/O, busy, ...): the transaction was
                // rolled back, nothing of the batch is stored. Retry each event alone so every
                // caller gets its own, precise result.
                tracing::warn!(error = %e, events = batch.len(), "event batch failed; writing one by one");
                for request in batch.drain(..) {
                    let result = insert_event(&pool, &request).await;
                    let _ = request.done.send(result);
                }
            }
        }
    }
}

/// Writes the batch in one transaction. Per-event refusals (duplicate, unknown run) abort only
/// their own statement, so they are answered individually and the rest commit. Any other error
/// rolls the whole transaction back and is returned.
async fn write_batch(
    pool: &SqlitePool,
    batch: &[AppendRequest],
) -> Result<Vec<StoreResult<()>>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        match insert_event(&mut *tx, request).await {
            Ok(()) => results.push(Ok(())),
            Err(refused @ (StoreError::DuplicateEvent { .. } | StoreError::RunNotFound(_))) => {
                results.push(Err(refused));
            }
            // Dropping `tx` on the way out rolls back whatever this batch wrote.
            Err(StoreError::Database(e)) => return Err(e),
            Err(other) => return Err(sqlx::Error::Protocol(other.to_string())),
        }
    }
    tx.commit().await?;
    Ok(results)
}

/// One INSERT (the schema's trigger raises `runs.last_seq` within the same statement).
async fn insert_event<'e, E>(executor: E, request: &AppendRequest) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let result = sqlx::query(INSERT_EVENT_SQL)
        .bind(request.run_id.as_str())
        .bind(request.seq_db)
        .bind(request.event_type.as_str())
        .bind(request.payload.as_str())
        .bind(request.created_at)
        .execute(executor)
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::DuplicateEvent {
                run_id: request.run_id.clone(),
                seq: request.seq,
            })
        }
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            Err(StoreError::RunNotFound(request.run_id.clone()))
        }
        Err(e) => Err(e.into()),
    }
}
