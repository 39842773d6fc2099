//! Reading runs, threads and nodes out of result rows, and binding a run's row into a query,
//! for both backends.
//!
//! Both schemas store the same columns with the same types (text, 64-bit integers, unix
//! milliseconds), so one decoder per record serves SQLite and PostgreSQL. Columns are read and
//! bound by position: the column lists below are the only place that fixes the order. No SQL is
//! run here.

use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};

use crate::convert::{db_to_opt_time, db_to_time, db_to_u64, time_to_db, u64_to_db};
use crate::{
    NodeRecord, RunCursor, RunPage, RunRecord, RunStatus, StoreError, StoreResult, ThreadRecord,
};

/// The run columns in the order [`run_from_row`] reads them (a macro so `concat!` can build
/// `&'static str` queries from it).
macro_rules! run_columns {
    () => {
        "run_id, thread_id, user_id, tenant_id, agent, user_request, status, created_at, \
         finished_at, last_seq"
    };
}

/// Binds a run's row after the parameters bound already: ten, in [`run_columns!`]'s order.
pub(crate) fn bind_run<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments>,
    run: &RunRecord,
) -> StoreResult<Query<'q, DB, <DB as Database>::Arguments>>
where
    DB: Database,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    Ok(query
        .bind(run.run_id.as_str())
        .bind(run.thread_id.as_str())
        .bind(run.user_id.as_str())
        .bind(run.tenant_id.as_str())
        .bind(run.agent.as_str())
        .bind(run.user_request.as_str())
        .bind(run.status.as_str())
        .bind(time_to_db(run.created_at))
        .bind(run.finished_at.map(time_to_db))
        .bind(u64_to_db("last_seq", run.last_seq)?))
}

/// The thread columns in the order [`thread_from_row`] reads them.
macro_rules! thread_columns {
    () => {
        "user_id, thread_id, tenant_id, title, created_at, updated_at"
    };
}

/// The node columns in the order [`node_from_row`] reads them.
macro_rules! node_columns {
    () => {
        "node_id, started_at, lease_expires_at, swept_by"
    };
}

pub(crate) use {node_columns, run_columns, thread_columns};

pub(crate) fn run_from_row<'r, R>(row: &'r R) -> StoreResult<RunRecord>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let status: String = row.try_get(6)?;
    Ok(RunRecord {
        run_id: row.try_get(0)?,
        thread_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        tenant_id: row.try_get(3)?,
        agent: row.try_get(4)?,
        user_request: row.try_get(5)?,
        status: status.parse()?,
        created_at: db_to_time("runs.created_at", row.try_get(7)?)?,
        finished_at: db_to_opt_time("runs.finished_at", row.try_get(8)?)?,
        last_seq: db_to_u64("runs.last_seq", row.try_get(9)?)?,
    })
}

/// Where the backend's insertion order (SQLite `rowid`, PostgreSQL `run_no`) stands in a thread
/// page query: the column right after [`run_columns`].
const RUN_ORDER_COLUMN: usize = 10;
/// `created_at` among [`run_columns`].
const RUN_CREATED_AT_COLUMN: usize = 7;

/// A page of a thread's runs from rows of [`run_columns`] followed by the insertion order,
/// with the cursor to the next page when the page is full (`limit` rows).
pub(crate) fn run_page_from_rows<'r, R>(rows: &'r [R], limit: u32) -> StoreResult<RunPage>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let runs = rows
        .iter()
        .map(run_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let next = match rows.last() {
        Some(last) if runs.len() >= limit as usize => Some(RunCursor {
            created_at: last.try_get(RUN_CREATED_AT_COLUMN)?,
            order: last.try_get(RUN_ORDER_COLUMN)?,
        }),
        _ => None,
    };
    Ok(RunPage { runs, next })
}

pub(crate) fn thread_from_row<'r, R>(row: &'r R) -> StoreResult<ThreadRecord>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(ThreadRecord {
        user_id: row.try_get(0)?,
        thread_id: row.try_get(1)?,
        tenant_id: row.try_get(2)?,
        title: row.try_get(3)?,
        created_at: db_to_time("threads.created_at", row.try_get(4)?)?,
        updated_at: db_to_time("threads.updated_at", row.try_get(5)?)?,
    })
}

pub(crate) fn node_from_row<'r, R>(row: &'r R) -> StoreResult<NodeRecord>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(NodeRecord {
        node_id: row.try_get(0)?,
        started_at: db_to_time("nodes.started_at", row.try_get(1)?)?,
        lease_expires_at: db_to_time("nodes.lease_expires_at", row.try_get(2)?)?,
        swept_by: row.try_get(3)?,
    })
}

/// Why `set_run_status`'s guarded UPDATE changed nothing, from the run's `current` status as
/// read after it (`None`: there is no such run). Terminal is forever and retention deletes only
/// finished runs, so that read cannot be contradicted, except by retention making an old
/// finished run unknown. Setting the same terminal status again is not an error.
pub(crate) fn unchanged_status(
    run_id: &str,
    current: Option<RunStatus>,
    wanted: RunStatus,
) -> StoreResult<()> {
    let Some(current) = current else {
        return Err(StoreError::RunNotFound(run_id.to_owned()));
    };
    if current == wanted {
        return Ok(());
    }
    Err(StoreError::InvalidTransition {
        run_id: run_id.to_owned(),
        from: current,
        to: wanted,
    })
}
