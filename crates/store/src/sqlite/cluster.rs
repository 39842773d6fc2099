//! The cluster primitives on SQLite: admission, ending runs, cancel requests, nodes and leases.
//!
//! One process owns a SQLite file and all writes go through its single writer connection, so
//! every check-then-write here is atomic simply by running in one `BEGIN IMMEDIATE`
//! transaction; lease times come from this process's clock. The SQL mirrors the PostgreSQL
//! backend's so both answer alike. This module must not decide policy (limits, lease lengths):
//! callers pass them in.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::{Row, SqlitePool};

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

/// The run's row (`run_columns!` then its node), only if it may be admitted: its thread
/// has no run in flight and its user fewer than a limit (`?12`).
const ADMIT_RUN: &str = concat!(
    "INSERT INTO runs (",
    run_columns!(),
    ", node_id) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 \
     WHERE NOT EXISTS (SELECT 1 FROM runs WHERE tenant_id = ?4 AND user_id = ?3 \
         AND thread_id = ?2 AND status IN ('accepted', 'running')) \
     AND (SELECT COUNT(*) FROM runs WHERE tenant_id = ?4 AND user_id = ?3 \
         AND status IN ('accepted', 'running')) < ?12"
);

/// A run's event (run id, seq, type, payload, time) that must be stored: an unknown run has no
/// key, and the key may not be null. For a run that was just admitted or may be ended.
const INSERT_EVENT: &str = "INSERT INTO run_events (run_key, seq, event_type, payload, created_at) \
     VALUES ((SELECT run_key FROM runs WHERE run_id = ?1), ?2, ?3, ?4, ?5)";

/// `admit_run` on the writer connection, inside the caller's transaction (see `writes`), with
/// its first event checked (`check_first_event`). Nothing is written when the run may not be
/// admitted (then a read explains why); once its row is, its first event and its thread
/// follow, so a failure after the first statement leaves writes behind: it is queued as
/// needing a savepoint (`Writes::run_ahead`), which it gets only if it fails.
pub(super) fn admit_on(
    conn: &Connection,
    run: &RunRecord,
    node_id: &str,
    max_in_flight: u32,
    first: Option<&PendingEvent>,
) -> StoreResult<Admission> {
    let last_seq = u64_to_db("last_seq", run.last_seq)?;
    let inserted = conn
        .prepare_cached(ADMIT_RUN)?
        .execute(params![
            run.run_id,
            run.thread_id,
            run.user_id,
            run.tenant_id,
            run.agent,
            run.user_request,
            run.status.as_str(),
            time_to_db(run.created_at),
            run.finished_at.map(time_to_db),
            last_seq,
            node_id,
            i64::from(max_in_flight),
        ])
        .map_err(|e| super::run_insert_error(e, run))?;
    if inserted == 0 {
        return refusal(conn, run, max_in_flight);
    }
    if let Some(first) = first {
        insert_events(conn, std::slice::from_ref(first))?;
    }
    let now = now_ms();
    conn.prepare_cached(upsert_thread_from!("VALUES (?1, ?2, ?3, ?4, ?5, ?5)"))?
        .execute(params![
            run.user_id,
            run.thread_id,
            run.tenant_id,
            thread_title(&run.user_request),
            now,
        ])?;
    let usage_version: i64 = conn
        .prepare_cached(super::usage::USAGE_VERSION_SQL)?
        .query_row(params![run.tenant_id], |row| row.get(0))?;
    Ok(Admission::Admitted {
        usage_version: db_to_u64("usage_version", usage_version)?,
    })
}

/// Why `admit_on` did not insert the run: its thread's run in flight, or its user's limit.
fn refusal(conn: &Connection, run: &RunRecord, max_in_flight: u32) -> StoreResult<Admission> {
    let (active, in_thread) = conn
        .prepare_cached(
            "SELECT COUNT(*), MIN(CASE WHEN thread_id = ?3 THEN run_id END) FROM runs \
             WHERE tenant_id = ?1 AND user_id = ?2 AND status IN ('accepted', 'running')",
        )?
        .query_row(params![run.tenant_id, run.user_id, run.thread_id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?))
        })?;
    let active = db_to_u64("runs in flight", active)?;
    Admission::refusal(active, in_thread, max_in_flight).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "run {} was not admitted, yet nothing in flight refuses it",
            run.run_id
        ))
    })
}

/// Inserts a run's events for its admission or `end_run`, which have checked in the same
/// transaction that the run may take them and that its log ends right before them: every one
/// must be stored (the caller's savepoint or transaction undoes the rest when one is not).
fn insert_events(conn: &Connection, pending: &[PendingEvent]) -> StoreResult<()> {
    let mut insert = conn.prepare_cached(INSERT_EVENT)?;
    for event in pending {
        insert
            .execute(params![
                event.run_id,
                event.seq_db,
                event.event_type,
                &*event.payload,
                event.created_at,
            ])
            .map_err(|e| insert_error(e, event))?;
    }
    Ok(())
}

/// A failed insert of an event that must be stored: stored already means the log and the run
/// disagree.
fn insert_error(e: rusqlite::Error, event: &PendingEvent) -> StoreError {
    if super::is_unique_violation(&e) {
        return StoreError::Corrupt(format!(
            "event {} of run {} was stored already although its run takes it",
            event.seq, event.run_id
        ));
    }
    e.into()
}

/// `end_run` on the writer connection, inside the caller's transaction (see `writes`), with
/// its events checked (`check_end_run`). The caller announces the events once committed.
///
/// The run is ended only if it is in flight with its log at `after_seq`, and its events follow
/// only if it was. A run that could not be ended is explained by a read, with nothing
/// written.
pub(super) fn end_on(
    conn: &Connection,
    run_id: &str,
    after_seq: u64,
    pending: &[PendingEvent],
    status: RunStatus,
    finished_at: DateTime<Utc>,
) -> StoreResult<EndRun> {
    let ended = conn
        .prepare_cached(
            "UPDATE runs SET status = ?1, finished_at = ?2 \
             WHERE run_id = ?3 AND status IN ('accepted', 'running') AND last_seq = ?4",
        )?
        .execute(params![
            status.as_str(),
            time_to_db(finished_at),
            run_id,
            u64_to_db("after_seq", after_seq)?,
        ])?;
    if ended == 0 {
        return why_not_ended(conn, run_id, after_seq);
    }
    insert_events(conn, pending)?;
    Ok(EndRun::Ended)
}

/// Why `end_on` could not end the run: there is none, it has ended, or its log moved on.
fn why_not_ended(conn: &Connection, run_id: &str, after_seq: u64) -> StoreResult<EndRun> {
    let row = conn
        .prepare_cached("SELECT status, last_seq FROM runs WHERE run_id = ?1")?
        .query_row([run_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .optional()?;
    let Some((current, last_seq)) = row else {
        return Err(StoreError::RunNotFound(run_id.to_owned()));
    };
    let current: RunStatus = current.parse()?;
    if current.is_terminal() {
        return Ok(EndRun::AlreadyFinished { status: current });
    }
    let last_seq = db_to_u64("runs.last_seq", last_seq)?;
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
