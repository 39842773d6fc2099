//! The cluster primitives on PostgreSQL: admission, ending runs, cancel requests, nodes and
//! leases, each atomic across nodes.
//!
//! - Admission serializes each (tenant, user) on a transaction-scoped advisory lock, then
//!   counts and inserts under it: two nodes admitting the same user take turns, and READ
//!   COMMITTED gives each turn's count a fresh snapshot that sees the previous turn's run.
//! - Ending a run locks its row (`FOR UPDATE`) before checking status and `last_seq`, and the
//!   appends lock the same row, so "end" and "append" never interleave.
//! - Both are functions in the schema (`agentwire_admit_run`, `agentwire_end_run`: versions 7
//!   and 8), so each is one statement from the node: one round trip instead of seven and five,
//!   each of which waited for the node's async workers beside every other run's appends.
//! - Lease and claim changes are single UPDATEs whose WHERE re-checks the row as it is once
//!   locked; of two racing claimants the second finds the claim taken. Lease times are the
//!   database's clock.
//!
//! This module must not decide policy (limits, lease lengths): callers pass them in.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

use super::events::notify_run_events;
use super::{check_run_text, now_ms, run_insert_error};
use crate::convert::{check_text, db_to_time, db_to_u64, lease_to_db, time_to_db, u64_to_db};
use crate::group_commit::{check_end_run, check_first_event};
use crate::rows::{bind_run, node_columns, node_from_row, run_columns, run_from_row};
use crate::{
    Admission, EndRun, NewEvent, NodeRecord, RunRecord, RunStatus, StoreError, StoreResult,
    thread_title,
};

/// The class half of the two-key advisory locks taken for admission (the one-key space, used
/// by migrations, never overlaps the two-key space).
const ADMISSION_LOCK_CLASS: i32 = 0x6177; // "aw"

pub(super) async fn admit_run(
    pool: &PgPool,
    run: &RunRecord,
    node_id: &str,
    max_in_flight: u32,
    first: Option<NewEvent>,
) -> StoreResult<Admission> {
    if run.status.is_terminal() {
        return Err(StoreError::InvalidArgument(format!(
            "a run is admitted accepted or running, not {}",
            run.status
        )));
    }
    check_text("node_id", node_id)?;
    check_run_text(run)?;
    let first = check_first_event(&run.run_id, first)?;
    // Length-prefixed, so ("ab", "c") and ("a", "bc") are different keys. A hash collision
    // only makes two users take turns.
    let key = format!("{}:{}{}", run.tenant_id.len(), run.tenant_id, run.user_id);
    // One statement, committed on return: the lock, the count, the run, its thread and its
    // first event (schema version 7, `agentwire_admit_run`).
    let locked = sqlx::query(
        "SELECT admitted, in_flight, in_thread, usage FROM agentwire_admit_run(\
         $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
         $17, $18, $19, $20)",
    )
    .bind(ADMISSION_LOCK_CLASS)
    .bind(&key);
    let row = bind_run(locked, run)?
        .bind(node_id)
        .bind(i64::from(max_in_flight))
        .bind(thread_title(&run.user_request))
        .bind(time_to_db(Utc::now()))
        .bind(first.as_ref().map(|e| e.seq_db))
        .bind(first.as_ref().map(|e| e.event_type.as_str()))
        .bind(first.as_ref().map(|e| &*e.payload))
        .bind(first.as_ref().map(|e| e.created_at))
        .fetch_one(pool)
        .await
        .map_err(|e| run_insert_error(e, run))?;
    let usage_version = db_to_u64("usage_version", row.try_get("usage")?)?;
    if row.try_get("admitted")? {
        return Ok(Admission::Admitted { usage_version });
    }
    let active = db_to_u64("runs in flight", row.try_get("in_flight")?)?;
    Admission::refusal(active, row.try_get("in_thread")?, max_in_flight).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "run {} was not admitted, yet its user has {active} of {max_in_flight} runs in \
             flight and none on its thread",
            run.run_id
        ))
    })
}

pub(super) async fn end_run(
    pool: &PgPool,
    timeout: Duration,
    run_id: &str,
    after_seq: u64,
    events: Vec<NewEvent>,
    status: RunStatus,
    finished_at: DateTime<Utc>,
) -> StoreResult<EndRun> {
    let pending = check_end_run(run_id, after_seq, events, status)?;
    let seqs: Vec<i64> = pending.iter().map(|e| e.seq_db).collect();
    let types: Vec<&str> = pending.iter().map(|e| e.event_type.as_str()).collect();
    let payloads: Vec<&str> = pending.iter().map(|e| &*e.payload).collect();
    let created: Vec<i64> = pending.iter().map(|e| e.created_at).collect();
    // One statement, committed on return: the run's row locked and checked, its events, its
    // status (schema version 8, `agentwire_end_run`).
    let row = sqlx::query(
        "SELECT outcome, status, last_seq FROM agentwire_end_run($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(run_id)
    .bind(u64_to_db("after_seq", after_seq)?)
    .bind(status.as_str())
    .bind(time_to_db(finished_at))
    .bind(&seqs)
    .bind(&types)
    .bind(&payloads)
    .bind(&created)
    .fetch_one(pool)
    .await?;
    match row.try_get::<&str, _>("outcome")? {
        "ended" => {}
        "missing" => return Err(StoreError::RunNotFound(run_id.to_owned())),
        "finished" => {
            let status: RunStatus = row.try_get::<String, _>("status")?.parse()?;
            return Ok(EndRun::AlreadyFinished { status });
        }
        "moved" => {
            let last_seq = db_to_u64("runs.last_seq", row.try_get("last_seq")?)?;
            return Ok(EndRun::Moved { last_seq });
        }
        other => {
            return Err(StoreError::Corrupt(format!(
                "ending run {run_id} answered {other:?}"
            )));
        }
    }
    if let Some(last) = pending.last() {
        notify_run_events(pool, timeout, &[(run_id.to_owned(), last.seq)]).await;
    }
    Ok(EndRun::Ended)
}

pub(super) async fn request_cancel(pool: &PgPool, run_id: &str) -> StoreResult<bool> {
    // The notification goes out at commit, with the request already visible to a node that
    // re-reads cancel requests after reconnecting.
    let row = sqlx::query(concat!(
        "WITH requested AS ( \
             UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, ",
        now_ms!(),
        ") WHERE run_id = $1 AND status IN ('accepted', 'running') RETURNING run_id) \
         SELECT count(*) FROM requested \
         CROSS JOIN LATERAL pg_notify('agentwire_cancel', requested.run_id) AS sent"
    ))
    .bind(run_id)
    .fetch_one(pool)
    .await?;
    Ok(row.try_get::<i64, _>(0)? > 0)
}

pub(super) async fn cancel_requested_runs(
    pool: &PgPool,
    node_id: &str,
) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT run_id FROM runs WHERE node_id = $1 AND status IN ('accepted', 'running') \
         AND cancel_requested_at IS NOT NULL ORDER BY created_at, run_no",
    )
    .bind(node_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| row.try_get(0).map_err(StoreError::from))
        .collect()
}

pub(super) async fn register_node(
    pool: &PgPool,
    node_id: &str,
    lease: Duration,
) -> StoreResult<NodeRecord> {
    check_text("node_id", node_id)?;
    let result = sqlx::query(concat!(
        "INSERT INTO nodes (node_id, started_at, lease_expires_at) VALUES ($1, ",
        now_ms!(),
        ", ",
        now_ms!(),
        " + $2) RETURNING ",
        node_columns!()
    ))
    .bind(node_id)
    .bind(lease_to_db(lease))
    .fetch_one(pool)
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
    pool: &PgPool,
    node_id: &str,
    lease: Duration,
) -> StoreResult<DateTime<Utc>> {
    let row = sqlx::query(concat!(
        "UPDATE nodes SET lease_expires_at = GREATEST(lease_expires_at, ",
        now_ms!(),
        " + $2) WHERE node_id = $1 AND swept_by IS NULL RETURNING lease_expires_at"
    ))
    .bind(node_id)
    .bind(lease_to_db(lease))
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => db_to_time("nodes.lease_expires_at", row.try_get(0)?),
        None => Err(StoreError::LeaseLost(node_id.to_owned())),
    }
}

pub(super) async fn deregister_node(pool: &PgPool, node_id: &str) -> StoreResult<bool> {
    let deleted = sqlx::query(
        "DELETE FROM nodes WHERE node_id = $1 AND NOT EXISTS (SELECT 1 FROM runs \
         WHERE node_id = $1 AND status IN ('accepted', 'running'))",
    )
    .bind(node_id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(deleted > 0)
}

pub(super) async fn expired_nodes(pool: &PgPool) -> StoreResult<Vec<NodeRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        node_columns!(),
        " FROM nodes d WHERE d.lease_expires_at <= ",
        now_ms!(),
        " AND (d.swept_by IS NULL OR NOT EXISTS (SELECT 1 FROM nodes s \
           WHERE s.node_id = d.swept_by AND s.lease_expires_at > ",
        now_ms!(),
        ")) ORDER BY d.lease_expires_at, d.node_id"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(node_from_row).collect()
}

pub(super) async fn claim_node_sweep(
    pool: &PgPool,
    node_id: &str,
    sweeper: &str,
) -> StoreResult<bool> {
    // Under READ COMMITTED a claimant that waited for another's row lock re-evaluates this
    // WHERE on the row as the other left it: swept_by is then set to a live node, and the
    // second claim matches nothing.
    let claimed = sqlx::query(concat!(
        "UPDATE nodes d SET swept_by = $2, sweep_claimed_at = ",
        now_ms!(),
        " WHERE d.node_id = $1 AND d.node_id <> $2 AND d.lease_expires_at <= ",
        now_ms!(),
        " AND (d.swept_by IS NULL OR d.swept_by = $2 OR NOT EXISTS (SELECT 1 FROM nodes s \
             WHERE s.node_id = d.swept_by AND s.lease_expires_at > ",
        now_ms!(),
        ")) AND EXISTS (SELECT 1 FROM nodes me WHERE me.node_id = $2 AND me.swept_by IS NULL \
             AND me.lease_expires_at > ",
        now_ms!(),
        ")"
    ))
    .bind(node_id)
    .bind(sweeper)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(claimed > 0)
}

pub(super) async fn node_runs_in_flight(
    pool: &PgPool,
    node_id: &str,
) -> StoreResult<Vec<RunRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs WHERE node_id = $1 AND status IN ('accepted', 'running') \
          ORDER BY created_at, run_no"
    ))
    .bind(node_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(run_from_row).collect()
}

pub(super) async fn finish_node_sweep(
    pool: &PgPool,
    node_id: &str,
    sweeper: &str,
) -> StoreResult<bool> {
    let deleted = sqlx::query(
        "DELETE FROM nodes WHERE node_id = $1 AND swept_by = $2 AND NOT EXISTS \
         (SELECT 1 FROM runs WHERE node_id = $1 AND status IN ('accepted', 'running'))",
    )
    .bind(node_id)
    .bind(sweeper)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(deleted > 0)
}
