//! The cluster primitives on SQLite: admission, ending runs, cancel requests, nodes and leases.
//!
//! One process owns a SQLite file and all writes go through its single writer connection, so
//! every check-then-write here is atomic simply by running in one `BEGIN IMMEDIATE`
//! transaction; lease times come from this process's clock. The SQL mirrors the PostgreSQL
//! backend's so both answer alike. This module must not decide policy (limits, lease lengths):
//! callers pass them in.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row, SqliteConnection, SqlitePool};
use std::sync::Arc;

use super::events::{EVENTS_PER_STATEMENT, bind_rows, insert_all, insert_error, insert_sql};
use crate::convert::{check_text, db_to_time, db_to_u64, lease_to_db, time_to_db, u64_to_db};
use crate::group_commit::PendingEvent;
use crate::notice::NoticeHub;
use crate::rows::{node_columns, node_from_row, run_columns, run_from_row};
use crate::{
    Admission, EndRun, NodeRecord, Notice, RunRecord, RunStatus, StoreError, StoreResult,
    thread_title,
};

/// Now, in the stored unit.
fn now_ms() -> i64 {
    time_to_db(Utc::now())
}

/// `admit_run`'s checks of its arguments, before anything is queued for the writer.
pub(super) fn check_admission(run: &RunRecord, node_id: &str) -> StoreResult<()> {
    if run.status.is_terminal() {
        return Err(StoreError::InvalidArgument(format!(
            "a run is admitted accepted or running, not {}",
            run.status
        )));
    }
    check_text("node_id", node_id)?;
    super::check_run_text(run)
}

/// The run's row (see `bind_run`), only if it may be admitted: its thread has no run in
/// flight and its user fewer than a limit. Then: tenant, user, thread, tenant, user, limit.
macro_rules! admit_run {
    () => {
        concat!(
            "INSERT INTO runs (",
            run_columns!(),
            ", node_id) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
             WHERE NOT EXISTS (SELECT 1 FROM runs WHERE tenant_id = ? AND user_id = ? \
                 AND thread_id = ? AND status IN ('accepted', 'running')) \
             AND (SELECT COUNT(*) FROM runs WHERE tenant_id = ? AND user_id = ? \
                 AND status IN ('accepted', 'running')) < ?"
        )
    };
}

/// The run's first event (seq, type, payload, time; then the run id), only if the run was just
/// inserted.
macro_rules! first_event {
    () => {
        "INSERT INTO run_events (run_key, seq, event_type, payload, created_at) \
         SELECT run_key, ?, ?, ?, ? FROM runs WHERE run_id = ? AND changes() = 1"
    };
}

/// The run's thread (user, thread, tenant, title, now, now), created or touched, only if the
/// statement before it wrote its row.
macro_rules! touch_thread {
    () => {
        upsert_thread_from!("SELECT ?, ?, ?, ?, ?, ? WHERE changes() = 1")
    };
}

/// `admit_run` on the writer connection, inside the caller's transaction (see `writes`), with
/// its first event checked (`check_first_event`).
///
/// One command: its statements run on SQLite's thread one after the other, each writing only
/// if the one before it wrote its row (`changes()` is the previous statement's count), so an
/// admission costs one round trip to that thread, not three. Nothing is written when the run
/// may not be admitted, and a refused run is explained by a second command. The parameters
/// are unnamed: sqlx hands them to the statements in order (a numbered one a statement skips
/// would shift the rest).
pub(super) async fn admit_on(
    tx: &mut SqliteConnection,
    run: &RunRecord,
    node_id: &str,
    max_in_flight: u32,
    first: Option<&PendingEvent>,
) -> StoreResult<Admission> {
    const ADMIT: &str = concat!(admit_run!(), "; ", touch_thread!());
    const ADMIT_WITH_FIRST_EVENT: &str =
        concat!(admit_run!(), "; ", first_event!(), "; ", touch_thread!());
    let sql = if first.is_some() {
        ADMIT_WITH_FIRST_EVENT
    } else {
        ADMIT
    };
    let query = super::bind_run(sqlx::query(sql), run, Some(node_id))?
        .bind(run.tenant_id.as_str())
        .bind(run.user_id.as_str())
        .bind(run.thread_id.as_str())
        .bind(run.tenant_id.as_str())
        .bind(run.user_id.as_str())
        .bind(i64::from(max_in_flight));
    let query = match first {
        Some(first) => query
            .bind(first.seq_db)
            .bind(first.event_type.as_str())
            .bind(Arc::clone(&first.payload))
            .bind(first.created_at)
            .bind(run.run_id.as_str()),
        None => query,
    };
    let now = now_ms();
    let query = query
        .bind(run.user_id.as_str())
        .bind(run.thread_id.as_str())
        .bind(run.tenant_id.as_str())
        .bind(thread_title(&run.user_request))
        .bind(now)
        .bind(now);
    match query.execute(&mut *tx).await {
        Ok(done) if done.rows_affected() > 0 => Ok(Admission::Admitted),
        Ok(_) => refusal(tx, run, max_in_flight).await,
        Err(e) => Err(super::run_insert_error(e, run)),
    }
}

/// Why `admit_on` did not insert the run: its thread's run in flight, or its user's limit.
async fn refusal(
    tx: &mut SqliteConnection,
    run: &RunRecord,
    max_in_flight: u32,
) -> StoreResult<Admission> {
    let row = sqlx::query(
        "SELECT COUNT(*), MIN(CASE WHEN thread_id = ?3 THEN run_id END) FROM runs \
         WHERE tenant_id = ?1 AND user_id = ?2 AND status IN ('accepted', 'running')",
    )
    .bind(run.tenant_id.as_str())
    .bind(run.user_id.as_str())
    .bind(run.thread_id.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let active = db_to_u64("runs in flight", row.try_get(0)?)?;
    Admission::refusal(active, row.try_get(1)?, max_in_flight).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "run {} was not admitted, yet nothing in flight refuses it",
            run.run_id
        ))
    })
}

/// `end_run` on the writer connection, inside the caller's transaction (see `writes`), with
/// its events checked (`check_end_run`). The caller announces the events once committed.
///
/// The run is ended only if it is in flight with its log at `after_seq`, and its events follow
/// in the same command only if it was (`changes()`): one round trip to SQLite's thread, past
/// [`EVENTS_PER_STATEMENT`] events one more for each further statement. A run that could not
/// be ended is explained by a read, with nothing written.
pub(super) async fn end_on(
    tx: &mut SqliteConnection,
    run_id: &str,
    after_seq: u64,
    pending: &[PendingEvent],
    status: RunStatus,
    finished_at: DateTime<Utc>,
) -> StoreResult<EndRun> {
    const END: &str = "UPDATE runs SET status = ?, finished_at = ? \
         WHERE run_id = ? AND status IN ('accepted', 'running') AND last_seq = ?";
    let (first, rest) = pending.split_at(pending.len().min(EVENTS_PER_STATEMENT));
    let sql = if first.is_empty() {
        END.to_owned()
    } else {
        format!("{END}; {} WHERE changes() = 1", insert_sql(first.len()))
    };
    // Safe to assert: the text holds column names and `?` placeholders only.
    let query = sqlx::query(AssertSqlSafe(sql))
        .bind(status.as_str())
        .bind(time_to_db(finished_at))
        .bind(run_id)
        .bind(u64_to_db("after_seq", after_seq)?);
    let ended = bind_rows(query, first)
        .execute(&mut *tx)
        .await
        .map_err(|e| insert_error(e, first))?
        .rows_affected();
    if ended == 0 {
        return why_not_ended(tx, run_id, after_seq).await;
    }
    insert_all(&mut *tx, rest).await?;
    Ok(EndRun::Ended)
}

/// Why `end_on` could not end the run: there is none, it has ended, or its log moved on.
async fn why_not_ended(
    tx: &mut SqliteConnection,
    run_id: &str,
    after_seq: u64,
) -> StoreResult<EndRun> {
    let row = sqlx::query("SELECT status, last_seq FROM runs WHERE run_id = ?")
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        return Err(StoreError::RunNotFound(run_id.to_owned()));
    };
    let current: RunStatus = row.try_get::<String, _>(0)?.parse()?;
    if current.is_terminal() {
        return Ok(EndRun::AlreadyFinished { status: current });
    }
    let last_seq = db_to_u64("runs.last_seq", row.try_get(1)?)?;
    if last_seq == after_seq {
        return Err(StoreError::Corrupt(format!(
            "run {run_id} is in flight at seq {after_seq} yet could not be ended"
        )));
    }
    Ok(EndRun::Moved { last_seq })
}

pub(super) async fn request_cancel(
    writer: &SqlitePool,
    notices: &NoticeHub,
    run_id: &str,
) -> StoreResult<bool> {
    let updated = sqlx::query(
        "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, ?) \
         WHERE run_id = ? AND status IN ('accepted', 'running')",
    )
    .bind(now_ms())
    .bind(run_id)
    .execute(writer)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    notices.publish(Notice::CancelRequested {
        run_id: run_id.to_owned(),
    });
    Ok(true)
}

pub(super) async fn cancel_requested_runs(
    reader: &SqlitePool,
    node_id: &str,
) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT run_id FROM runs WHERE node_id = ? AND status IN ('accepted', 'running') \
         AND cancel_requested_at IS NOT NULL ORDER BY created_at, rowid",
    )
    .bind(node_id)
    .fetch_all(reader)
    .await?;
    rows.iter()
        .map(|row| row.try_get(0).map_err(StoreError::from))
        .collect()
}

pub(super) async fn register_node(
    writer: &SqlitePool,
    node_id: &str,
    lease: Duration,
) -> StoreResult<NodeRecord> {
    check_text("node_id", node_id)?;
    let now = now_ms();
    let result = sqlx::query(concat!(
        "INSERT INTO nodes (node_id, started_at, lease_expires_at) VALUES (?, ?, ?) RETURNING ",
        node_columns!()
    ))
    .bind(node_id)
    .bind(now)
    .bind(now.saturating_add(lease_to_db(lease)))
    .fetch_one(writer)
    .await;
    match result {
        Ok(row) => node_from_row(&row),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::NodeIdInUse(node_id.to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn renew_node_lease(
    writer: &SqlitePool,
    node_id: &str,
    lease: Duration,
) -> StoreResult<DateTime<Utc>> {
    let row = sqlx::query(
        "UPDATE nodes SET lease_expires_at = MAX(lease_expires_at, ?) \
         WHERE node_id = ? AND swept_by IS NULL RETURNING lease_expires_at",
    )
    .bind(now_ms().saturating_add(lease_to_db(lease)))
    .bind(node_id)
    .fetch_optional(writer)
    .await?;
    match row {
        Some(row) => db_to_time("nodes.lease_expires_at", row.try_get(0)?),
        None => Err(StoreError::LeaseLost(node_id.to_owned())),
    }
}

pub(super) async fn deregister_node(writer: &SqlitePool, node_id: &str) -> StoreResult<bool> {
    let deleted = sqlx::query(
        "DELETE FROM nodes WHERE node_id = ?1 AND NOT EXISTS (SELECT 1 FROM runs \
         WHERE node_id = ?1 AND status IN ('accepted', 'running'))",
    )
    .bind(node_id)
    .execute(writer)
    .await?
    .rows_affected();
    Ok(deleted > 0)
}

pub(super) async fn expired_nodes(reader: &SqlitePool) -> StoreResult<Vec<NodeRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes d WHERE d.lease_expires_at <= ?1 AND (d.swept_by IS NULL OR NOT EXISTS \
          (SELECT 1 FROM nodes s WHERE s.node_id = d.swept_by AND s.lease_expires_at > ?1)) \
          ORDER BY d.lease_expires_at, d.node_id"
    ))
    .bind(now_ms())
    .fetch_all(reader)
    .await?;
    rows.iter().map(node_from_row).collect()
}

pub(super) async fn claim_node_sweep(
    writer: &SqlitePool,
    node_id: &str,
    sweeper: &str,
) -> StoreResult<bool> {
    let claimed = sqlx::query(
        "UPDATE nodes SET swept_by = ?2, sweep_claimed_at = ?3 \
         WHERE node_id = ?1 AND node_id <> ?2 AND lease_expires_at <= ?3 \
           AND (swept_by IS NULL OR swept_by = ?2 OR NOT EXISTS \
                (SELECT 1 FROM nodes s WHERE s.node_id = nodes.swept_by \
                   AND s.lease_expires_at > ?3)) \
           AND EXISTS (SELECT 1 FROM nodes me WHERE me.node_id = ?2 \
                         AND me.lease_expires_at > ?3 AND me.swept_by IS NULL)",
    )
    .bind(node_id)
    .bind(sweeper)
    .bind(now_ms())
    .execute(writer)
    .await?
    .rows_affected();
    Ok(claimed > 0)
}

pub(super) async fn node_runs_in_flight(
    reader: &SqlitePool,
    node_id: &str,
) -> StoreResult<Vec<RunRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs WHERE node_id = ? AND status IN ('accepted', 'running') \
          ORDER BY created_at, rowid"
    ))
    .bind(node_id)
    .fetch_all(reader)
    .await?;
    rows.iter().map(run_from_row).collect()
}

pub(super) async fn finish_node_sweep(
    writer: &SqlitePool,
    node_id: &str,
    sweeper: &str,
) -> StoreResult<bool> {
    let deleted = sqlx::query(
        "DELETE FROM nodes WHERE node_id = ?1 AND swept_by = ?2 AND NOT EXISTS \
         (SELECT 1 FROM runs WHERE node_id = ?1 AND status IN ('accepted', 'running'))",
    )
    .bind(node_id)
    .bind(sweeper)
    .execute(writer)
    .await?
    .rows_affected();
    Ok(deleted > 0)
}
