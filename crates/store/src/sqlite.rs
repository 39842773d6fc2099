//! The SQLite backend: [`SqliteStore`].
//!
//! One writer connection and a small pool of reader connections over a WAL-mode file. SQLite
//! allows one writer at a time; funnelling every write through a single pooled connection makes
//! writers queue in the pool (fair, async) instead of spinning on SQLite's busy handler, while
//! WAL lets readers proceed during a write. All SQL takes values through bound parameters; the
//! only SQL text built at run time is the multi-row usage INSERT, made of column names and `?`
//! placeholders alone. This module must not hold policy (who may see what is decided by the
//! caller's choice of scoped method) and must not log record contents.

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, SqlStr, Sqlite, SqlitePool};

use crate::convert::{
    db_to_opt_time, db_to_opt_u64, db_to_time, db_to_u64, opt_u64_to_db, time_to_db, u64_to_db,
};
use crate::group_commit::EventWriter;
use crate::{
    RunRecord, RunStatus, Store, StoreError, StoreResult, StoredEvent, ThreadRecord, UsageRecord,
    migrate,
};

/// How hard a commit is pushed to disk. With `FULL` in WAL mode every commit fsyncs the WAL, so
/// an event that was appended (and then sent to a client) survives power loss, not just a crash
/// of the process; `NORMAL` would be faster but could drop the last commits on power loss,
/// breaking the "persisted before sent" promise of the event log. Kept as a named constant
/// because its cost is to be measured: one fsync per commit, which group commit (see
/// `group_commit`) shares among all events appended concurrently.
pub const EVENT_LOG_SYNCHRONOUS: SqliteSynchronous = SqliteSynchronous::Full;

/// How long a statement waits for another process's lock before failing with "database is
/// locked". Within this process writes already queue on the single writer connection.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reader connections for a file database. Reads are short and SQLite work is CPU-bound, so a
/// handful is enough to overlap them with the writer on a small machine.
const READ_POOL_SIZE: u32 = 4;

/// Bound parameters per statement SQLite accepts (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
const SQLITE_MAX_BIND_PARAMS: usize = 32_766;

/// Columns written per usage row (tenant_id and the 23 record fields).
const USAGE_INSERT_COLUMNS: usize = 24;

/// Rows per multi-row usage INSERT. Big enough that 100k records need only ~100 statements,
/// below the bind-parameter limit with room to spare.
const USAGE_ROWS_PER_INSERT: usize = 1_000;

const _: () = assert!(USAGE_ROWS_PER_INSERT * USAGE_INSERT_COLUMNS <= SQLITE_MAX_BIND_PARAMS);

const USAGE_INSERT_PREFIX: &str = "INSERT INTO usage_records (tenant_id, ts, provider, model, \
     input_tokens, output_tokens, request_count, cache_read_input_tokens, \
     cache_write_input_tokens, reasoning_tokens, max_tokens, latency_ms, ttft_ms, cost_usd, \
     status, service_tier, user_id, team, project, feature, session_id, prompt_hash, \
     prefix_hash, tags) VALUES ";

const ENSURE_TENANT_SQL: &str =
    "INSERT INTO tenants (tenant_id, created_at) VALUES (?, ?) ON CONFLICT (tenant_id) DO NOTHING";

/// The run columns in the order [`run_from_row`] reads them (a macro so `concat!` can build
/// `&'static str` queries from it).
macro_rules! run_columns {
    () => {
        "run_id, thread_id, user_id, tenant_id, agent, user_request, status, created_at, \
         finished_at, last_seq"
    };
}

/// The thread columns in the order [`thread_from_row`] reads them.
macro_rules! thread_columns {
    () => {
        "user_id, thread_id, tenant_id, title, created_at, updated_at"
    };
}

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Every write goes here: one connection (see the module docs).
    writer: SqlitePool,
    /// Reads. For `:memory:` this is the writer pool itself.
    reader: SqlitePool,
    /// The event log's group-commit queue, in front of `writer`.
    events: EventWriter,
}

/// Where a URL points.
enum Location {
    /// A private in-memory database.
    Memory(SqliteConnectOptions),
    /// A database file.
    File(SqliteConnectOptions),
}

impl SqliteStore {
    /// Opens (creating it if missing) and migrates the database at `url`: `sqlite://path.db`,
    /// `sqlite:path.db`, `sqlite:///absolute/path.db`, a bare path, or `sqlite::memory:` (also
    /// `:memory:`).
    ///
    /// An in-memory database lives in exactly one connection: the pool is a single connection
    /// that never idles out or expires, because the data goes away when the last connection to
    /// it closes, and connections sharing one in-memory database (shared cache) lock whole
    /// tables against each other. So all operations on it are serialized; it is for tests and
    /// demos, not for load. Every `connect` to `sqlite::memory:` gets its own, empty database.
    ///
    /// Must be called within a Tokio runtime: the event log's group-commit task is spawned on
    /// it and lives as long as the store.
    pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
        match parse_url(url)? {
            Location::Memory(options) => {
                let options = options
                    .foreign_keys(true)
                    .busy_timeout(BUSY_TIMEOUT)
                    .synchronous(EVENT_LOG_SYNCHRONOUS);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    // No network in between: a liveness ping per acquire would only add latency.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                migrate::run(&pool).await?;
                tracing::info!("opened in-memory store");
                Ok(SqliteStore {
                    events: EventWriter::spawn(pool.clone()),
                    writer: pool.clone(),
                    reader: pool,
                })
            }
            Location::File(options) => {
                let base = options
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .busy_timeout(BUSY_TIMEOUT)
                    .synchronous(EVENT_LOG_SYNCHRONOUS);
                let filename = base.get_filename().display().to_string();
                // The writer opens first: it creates the file and switches it to WAL (a
                // property of the file, so the readers inherit it).
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .test_before_acquire(false)
                    .connect_with(base.clone().journal_mode(SqliteJournalMode::Wal))
                    .await?;
                migrate::run(&writer).await?;
                // query_only makes an accidental write through the reader pool fail instead of
                // racing the writer for the lock.
                let reader = SqlitePoolOptions::new()
                    .max_connections(READ_POOL_SIZE)
                    .test_before_acquire(false)
                    .connect_lazy_with(base.pragma("query_only", "ON"));
                tracing::info!(file = %filename, "opened sqlite store");
                Ok(SqliteStore {
                    events: EventWriter::spawn(writer.clone()),
                    writer,
                    reader,
                })
            }
        }
    }

    /// Highest applied schema migration (see [`crate::LATEST_SCHEMA_VERSION`]).
    pub async fn schema_version(&self) -> StoreResult<i64> {
        migrate::schema_version(&self.reader).await
    }

    /// Closes all connections, waiting for in-flight operations. On a file database the last
    /// connection to close checkpoints the WAL into the main file.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Splits a URL into memory or file options. Non-SQLite schemes are refused here; choosing
/// between backends is [`crate::connect`]'s job.
fn parse_url(url: &str) -> StoreResult<Location> {
    let url = url.trim();
    if url.is_empty() {
        return Err(StoreError::InvalidUrl("empty database url".into()));
    }
    if url == ":memory:" {
        return memory_options("sqlite::memory:");
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        if let Some((scheme, _)) = url.split_once("://") {
            // Only the scheme is echoed: the rest of a foreign URL may hold a password.
            return Err(StoreError::InvalidUrl(format!(
                "{scheme}:// is not supported (expected sqlite://path.db, sqlite::memory: or a path)"
            )));
        }
        // A bare path: taken literally, so `?` or `#` in a file name need no escaping.
        return Ok(Location::File(SqliteConnectOptions::new().filename(url)));
    };
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = database == ":memory:"
        || params
            .split('&')
            .any(|pair| pair.eq_ignore_ascii_case("mode=memory"));
    if in_memory {
        return memory_options(url);
    }
    if database.is_empty() {
        return Err(StoreError::InvalidUrl(format!("{url}: no file name")));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::InvalidUrl(format!("{url}: {e}")))?;
    Ok(Location::File(options))
}

fn memory_options(url: &str) -> StoreResult<Location> {
    SqliteConnectOptions::from_str(url)
        .map(Location::Memory)
        .map_err(|e| StoreError::InvalidUrl(format!("{url}: {e}")))
}

/// `INSERT ... VALUES (?, ...), (?, ...)` for `rows` rows. Only placeholders; no values.
fn usage_insert_sql(rows: usize) -> String {
    let one_row = format!("({})", vec!["?"; USAGE_INSERT_COLUMNS].join(", "));
    let mut sql = String::with_capacity(USAGE_INSERT_PREFIX.len() + rows * (one_row.len() + 2));
    sql.push_str(USAGE_INSERT_PREFIX);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&one_row);
    }
    sql
}

/// The full-chunk INSERT, built once: the same text every time lets the connection's statement
/// cache reuse one prepared statement for all full chunks.
fn full_chunk_insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| usage_insert_sql(USAGE_ROWS_PER_INSERT))
}

/// Binds one usage row in `USAGE_INSERT_PREFIX` column order. Fails (before anything is sent)
/// when a counter does not fit the database integer.
fn bind_usage_row<'q>(
    query: sqlx::query::Query<'q, Sqlite, SqliteArguments>,
    tenant_id: &'q str,
    r: &'q UsageRecord,
) -> StoreResult<sqlx::query::Query<'q, Sqlite, SqliteArguments>> {
    Ok(query
        .bind(tenant_id)
        .bind(time_to_db(r.timestamp))
        .bind(r.provider.as_str())
        .bind(r.model.as_str())
        .bind(u64_to_db("input_tokens", r.input_tokens)?)
        .bind(u64_to_db("output_tokens", r.output_tokens)?)
        .bind(u64_to_db("request_count", r.request_count)?)
        .bind(opt_u64_to_db(
            "cache_read_input_tokens",
            r.cache_read_input_tokens,
        )?)
        .bind(opt_u64_to_db(
            "cache_write_input_tokens",
            r.cache_write_input_tokens,
        )?)
        .bind(opt_u64_to_db("reasoning_tokens", r.reasoning_tokens)?)
        .bind(opt_u64_to_db("max_tokens", r.max_tokens)?)
        .bind(r.latency_ms)
        .bind(r.ttft_ms)
        .bind(r.cost_usd)
        .bind(r.status.as_deref())
        .bind(r.service_tier.as_deref())
        .bind(r.user_id.as_deref())
        .bind(r.team.as_deref())
        .bind(r.project.as_deref())
        .bind(r.feature.as_deref())
        .bind(r.session_id.as_deref())
        .bind(r.prompt_hash.as_deref())
        .bind(r.prefix_hash.as_deref())
        .bind(r.tags.as_deref()))
}

/// Integer columns of a usage row, in `SELECT_USAGE_SQL` order: ts, input_tokens,
/// output_tokens, request_count, cache_read_input_tokens, cache_write_input_tokens,
/// reasoning_tokens, max_tokens.
type UsageInts = (
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// Text columns of a usage row, in `SELECT_USAGE_SQL` order: provider, model, status,
/// service_tier, user_id, team, project, feature, session_id, prompt_hash, prefix_hash, tags.
type UsageTexts = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Loads a tenant's usage. The integer and text columns come packed in one JSON value per row
/// and only the three REAL columns travel as their own values. Why: the driver copies every
/// column value of every row into its own allocation, which made a plain 23-column SELECT of
/// 100k rows take ~0.7 s; packed, it is ~0.2 s. Lossless: JSON renders SQLite integers and
/// text exactly (serde_json reads them back exactly); floats are *not* packed because SQLite's
/// JSON prints only 15 significant digits.
const SELECT_USAGE_SQL: &str = "SELECT      json_array(         json_array(ts, input_tokens, output_tokens, request_count, cache_read_input_tokens,                     cache_write_input_tokens, reasoning_tokens, max_tokens),          json_array(provider, model, status, service_tier, user_id, team, project, feature,                     session_id, prompt_hash, prefix_hash, tags)),      latency_ms, ttft_ms, cost_usd      FROM usage_records WHERE tenant_id = ? ORDER BY ts, id";

/// Reads a row of `SELECT_USAGE_SQL` (by column index: name lookups cost at 100k rows).
fn usage_from_row(row: &SqliteRow) -> StoreResult<UsageRecord> {
    let packed: &str = row.try_get(0)?;
    let (ints, texts): (UsageInts, UsageTexts) = serde_json::from_str(packed)
        .map_err(|e| StoreError::Corrupt(format!("usage record columns: {e}")))?;
    let (ts, input, output, requests, cache_read, cache_write, reasoning, max_tokens) = ints;
    let (
        provider,
        model,
        status,
        service_tier,
        user_id,
        team,
        project,
        feature,
        session_id,
        prompt_hash,
        prefix_hash,
        tags,
    ) = texts;
    Ok(UsageRecord {
        timestamp: db_to_time("usage_records.ts", ts)?,
        provider,
        model,
        input_tokens: db_to_u64("input_tokens", input)?,
        output_tokens: db_to_u64("output_tokens", output)?,
        request_count: db_to_u64("request_count", requests)?,
        cache_read_input_tokens: db_to_opt_u64("cache_read_input_tokens", cache_read)?,
        cache_write_input_tokens: db_to_opt_u64("cache_write_input_tokens", cache_write)?,
        reasoning_tokens: db_to_opt_u64("reasoning_tokens", reasoning)?,
        max_tokens: db_to_opt_u64("max_tokens", max_tokens)?,
        latency_ms: row.try_get(1)?,
        ttft_ms: row.try_get(2)?,
        cost_usd: row.try_get(3)?,
        status,
        service_tier,
        user_id,
        team,
        project,
        feature,
        session_id,
        prompt_hash,
        prefix_hash,
        tags,
    })
}

fn run_from_row(row: &SqliteRow) -> StoreResult<RunRecord> {
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

fn thread_from_row(row: &SqliteRow) -> StoreResult<ThreadRecord> {
    Ok(ThreadRecord {
        user_id: row.try_get(0)?,
        thread_id: row.try_get(1)?,
        tenant_id: row.try_get(2)?,
        title: row.try_get(3)?,
        created_at: db_to_time("threads.created_at", row.try_get(4)?)?,
        updated_at: db_to_time("threads.updated_at", row.try_get(5)?)?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn ensure_tenant(&self, tenant_id: &str) -> StoreResult<()> {
        sqlx::query(ENSURE_TENANT_SQL)
            .bind(tenant_id)
            .bind(time_to_db(Utc::now()))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn insert_usage(&self, tenant_id: &str, records: &[UsageRecord]) -> StoreResult<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        // One transaction: on any error below the transaction is dropped uncommitted, which
        // rolls it back, so a failing record in the last chunk also undoes the first chunks.
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(ENSURE_TENANT_SQL)
            .bind(tenant_id)
            .bind(time_to_db(Utc::now()))
            .execute(&mut *tx)
            .await?;
        for chunk in records.chunks(USAGE_ROWS_PER_INSERT) {
            let sql: SqlStr = if chunk.len() == USAGE_ROWS_PER_INSERT {
                full_chunk_insert_sql().into_sql_str()
            } else {
                // Safe to assert: the text holds column names and `?` placeholders only; the
                // values travel as bound parameters.
                AssertSqlSafe(usage_insert_sql(chunk.len())).into_sql_str()
            };
            let mut query = sqlx::query(sql);
            for record in chunk {
                query = bind_usage_row(query, tenant_id, record)?;
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        // usize → u64 is lossless on every platform Rust supports.
        let inserted = records.len() as u64;
        tracing::debug!(tenant_id, inserted, "inserted usage records");
        Ok(inserted)
    }

    async fn load_usage(&self, tenant_id: &str) -> StoreResult<Vec<UsageRecord>> {
        let rows = sqlx::query(SELECT_USAGE_SQL)
            .bind(tenant_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(usage_from_row).collect()
    }

    async fn usage_count(&self, tenant_id: &str) -> StoreResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) FROM usage_records WHERE tenant_id = ?")
            .bind(tenant_id)
            .fetch_one(&self.reader)
            .await?;
        db_to_u64("usage count", row.try_get(0)?)
    }

    async fn upsert_thread(
        &self,
        user_id: &str,
        tenant_id: &str,
        thread_id: &str,
        title: &str,
    ) -> StoreResult<ThreadRecord> {
        let now = time_to_db(Utc::now());
        // MAX keeps updated_at from moving backwards if the wall clock steps back.
        let row = sqlx::query(concat!(
            "INSERT INTO threads (user_id, thread_id, tenant_id, title, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (user_id, thread_id) \
             DO UPDATE SET updated_at = MAX(threads.updated_at, excluded.updated_at) \
             RETURNING ",
            thread_columns!()
        ))
        .bind(user_id)
        .bind(thread_id)
        .bind(tenant_id)
        .bind(title)
        .bind(now)
        .bind(now)
        .fetch_one(&self.writer)
        .await?;
        thread_from_row(&row)
    }

    async fn list_threads(&self, user_id: &str, limit: u32) -> StoreResult<Vec<ThreadRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            thread_columns!(),
            " FROM threads WHERE user_id = ? \
              ORDER BY updated_at DESC, thread_id DESC LIMIT ?"
        ))
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(thread_from_row).collect()
    }

    async fn create_run(&self, run: &RunRecord) -> StoreResult<()> {
        let result = sqlx::query(concat!(
            "INSERT INTO runs (",
            run_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(run.run_id.as_str())
        .bind(run.thread_id.as_str())
        .bind(run.user_id.as_str())
        .bind(run.tenant_id.as_str())
        .bind(run.agent.as_str())
        .bind(run.user_request.as_str())
        .bind(run.status.as_str())
        .bind(time_to_db(run.created_at))
        .bind(run.finished_at.map(time_to_db))
        .bind(u64_to_db("last_seq", run.last_seq)?)
        .execute(&self.writer)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::DuplicateRun(run.run_id.clone())),
            Err(e) => Err(e.into()),
        }
    }

    async fn set_run_status(
        &self,
        run_id: &str,
        status: RunStatus,
        finished_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        // Happy path in one statement: only an unfinished run may change.
        let updated = sqlx::query(
            "UPDATE runs SET status = ?, finished_at = ? \
             WHERE run_id = ? AND status IN ('accepted', 'running')",
        )
        .bind(status.as_str())
        .bind(finished_at.map(time_to_db))
        .bind(run_id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if updated > 0 {
            return Ok(());
        }
        // Nothing changed: the run is missing or already finished. Terminal is forever (and
        // runs are never deleted), so this follow-up read cannot be contradicted by a racer.
        let row = sqlx::query("SELECT status FROM runs WHERE run_id = ?")
            .bind(run_id)
            .fetch_optional(&self.writer)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::RunNotFound(run_id.to_owned()));
        };
        let current: RunStatus = row.try_get::<String, _>(0)?.parse()?;
        if current == status {
            return Ok(());
        }
        Err(StoreError::InvalidTransition {
            run_id: run_id.to_owned(),
            from: current,
            to: status,
        })
    }

    async fn get_run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE run_id = ?"
        ))
        .bind(run_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn get_user_run(&self, user_id: &str, run_id: &str) -> StoreResult<Option<RunRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE run_id = ? AND user_id = ?"
        ))
        .bind(run_id)
        .bind(user_id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn list_thread_runs(
        &self,
        user_id: &str,
        thread_id: &str,
    ) -> StoreResult<Vec<RunRecord>> {
        // rowid breaks ties between runs created in the same millisecond: insertion order.
        let rows = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE user_id = ? AND thread_id = ? ORDER BY created_at, rowid"
        ))
        .bind(user_id)
        .bind(thread_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn runs_in_flight(&self) -> StoreResult<Vec<RunRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE status IN ('accepted', 'running') ORDER BY created_at, rowid"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn append_event(
        &self,
        run_id: &str,
        seq: u64,
        event_type: &str,
        payload: &str,
    ) -> StoreResult<()> {
        // Durable when this returns; concurrent appends share a commit (see group_commit).
        self.events.append(run_id, seq, event_type, payload).await
    }

    async fn events_after(&self, run_id: &str, after_seq: u64) -> StoreResult<Vec<StoredEvent>> {
        // No stored seq exceeds i64::MAX (append refuses them), so a larger cursor has nothing
        // after it.
        let Ok(after) = i64::try_from(after_seq) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT seq, payload FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq",
        )
        .bind(run_id)
        .bind(after)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredEvent {
                    run_id: run_id.to_owned(),
                    seq: db_to_u64("run_events.seq", row.try_get(0)?)?,
                    payload: row.try_get(1)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_has_one_placeholder_per_bound_value() {
        let sql = usage_insert_sql(3);
        assert_eq!(sql.matches('?').count(), 3 * USAGE_INSERT_COLUMNS);
        let columns = USAGE_INSERT_PREFIX
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(cols, _)| cols.split(',').count());
        assert_eq!(columns, Some(USAGE_INSERT_COLUMNS));
    }

    #[tokio::test]
    async fn rows_we_could_not_have_written_are_corrupt_not_panics() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let record = UsageRecord::new(Utc::now(), "openai", "gpt-4o", 1, 1);
        store
            .insert_usage("t", std::slice::from_ref(&record))
            .await
            .unwrap();
        sqlx::query("UPDATE usage_records SET input_tokens = -1")
            .execute(&store.writer)
            .await
            .unwrap();
        assert!(matches!(
            store.load_usage("t").await,
            Err(StoreError::Corrupt(_))
        ));
        sqlx::query("UPDATE usage_records SET input_tokens = 'many'")
            .execute(&store.writer)
            .await
            .unwrap();
        assert!(matches!(
            store.load_usage("t").await,
            Err(StoreError::Corrupt(_))
        ));

        let run = RunRecord {
            run_id: "r".into(),
            thread_id: "t".into(),
            user_id: "u".into(),
            tenant_id: "t".into(),
            agent: "supervisor".into(),
            user_request: "q".into(),
            status: RunStatus::Running,
            created_at: Utc::now(),
            finished_at: None,
            last_seq: 0,
        };
        store.create_run(&run).await.unwrap();
        sqlx::query("UPDATE runs SET created_at = ?")
            .bind(i64::MAX)
            .execute(&store.writer)
            .await
            .unwrap();
        assert!(matches!(
            store.get_run("r").await,
            Err(StoreError::Corrupt(_))
        ));
    }

    /// The hot reads must be served in order by an index, never by sorting the rows.
    #[tokio::test]
    async fn hot_reads_need_no_sort() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let queries: [&'static str; 4] = [
            SELECT_USAGE_SQL,
            concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE user_id = ? AND thread_id = ? ORDER BY created_at, rowid"
            ),
            "SELECT seq, payload FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq",
            concat!(
                "SELECT ",
                thread_columns!(),
                " FROM threads WHERE user_id = ? ORDER BY updated_at DESC, thread_id DESC LIMIT ?"
            ),
        ];
        for sql in queries {
            let explain = AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"));
            let plan: Vec<String> = sqlx::query(explain)
                .bind("a")
                .bind(1_i64)
                .fetch_all(&store.reader)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>(3))
                .collect();
            let plan = plan.join(" | ");
            assert!(plan.contains("USING"), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }

    #[test]
    fn urls_are_classified() {
        assert!(matches!(
            parse_url("sqlite::memory:"),
            Ok(Location::Memory(_))
        ));
        assert!(matches!(parse_url(":memory:"), Ok(Location::Memory(_))));
        assert!(matches!(
            parse_url("sqlite://?mode=memory"),
            Ok(Location::Memory(_))
        ));
        for (url, file) in [
            ("sqlite://data/a.db", "data/a.db"),
            ("sqlite:a.db", "a.db"),
            ("sqlite:///tmp/a.db", "/tmp/a.db"),
            ("a.db", "a.db"),
            ("/var/lib/x?y.db", "/var/lib/x?y.db"),
        ] {
            match parse_url(url) {
                Ok(Location::File(o)) => assert_eq!(o.get_filename(), std::path::Path::new(file)),
                _ => panic!("{url} should be a file"),
            }
        }
        for url in [
            "",
            "  ",
            "sqlite://",
            "mysql://x",
            "sqlite://a.db?mode=bogus",
        ] {
            assert!(
                matches!(parse_url(url), Err(StoreError::InvalidUrl(_))),
                "{url:?} should be invalid"
            );
        }
    }
}
