//! The SQLite backend: [`SqliteStore`].
//!
//! Two writer connections and a small pool of reader connections over a WAL-mode file. SQLite
//! allows one writer at a time. The runs' writes (admissions, status changes, ends, events), nearly
//! all of them, are committed in groups by one thread that owns its connection and calls SQLite
//! directly (`writes`); the long or rare writes (usage uploads, retention, nodes, cancel requests)
//! go through one pooled sqlx connection, each after taking a turn of the writer thread (queued
//! with its jobs, so the two never wait on SQLite's lock). WAL lets readers proceed during a write;
//! the writer thread copies the WAL into the database file between its commits. One process owns
//! the file, so it is always a single node: the cluster primitives hold trivially and notices are
//! published in-process. All SQL takes values through bound parameters. This module must not hold
//! policy (who may see what is decided by the caller's choice of scoped method) and must not log
//! record contents.
//!
//! Submodules: `usage` (usage records), `events` (the event log's group-commit sink), `writes` (the
//! group commit of the runs' writes, on its own thread), `own_thread` (the thread that groups
//! appended events for it), `retention` (deleting old finished runs), `cluster` (admission, ending
//! runs, cancel requests, nodes).

/// Inserts a thread row from `source` (user, thread, tenant, title, created, updated), or, for
/// a thread that exists already, takes a later `updated_at` from it (MAX keeps it from moving
/// backwards if the wall clock steps back).
macro_rules! upsert_thread_from {
    ($source:literal) => {
        concat!(
            "INSERT INTO threads (user_id, thread_id, tenant_id, title, created_at, updated_at) ",
            $source,
            " ON CONFLICT (tenant_id, user_id, thread_id) \
             DO UPDATE SET updated_at = MAX(threads.updated_at, excluded.updated_at)"
        )
    };
}

mod cluster;
mod events;
mod own_thread;
mod retention;
mod usage;
mod writes;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use crate::convert::{check_text, db_to_u64, time_to_db};
use crate::group_commit::{EventWriter, check_first_event};
use crate::notice::NoticeHub;
use crate::rows::{
    bind_run, run_columns, run_from_row, run_page_from_rows, thread_columns, thread_from_row,
    unchanged_status,
};
use crate::{
    Admission, AppendFailed, Backend, EndRun, NewEvent, NodeRecord, Notice, Notices, RunCursor,
    RunPage, RunRecord, RunStatus, Store, StoreError, StoreOptions, StoreResult, StoredEvent,
    ThreadRecord, UsageRecord, UsageUpload, migrate,
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

/// The size a file database's WAL is cut back to when it starts over (`journal_size_limit`).
/// SQLite otherwise keeps the file at the largest size it ever reached, so one large transaction
/// (the schema version 6 upgrade copies the whole event log) would hold that much disk for good.
/// Well above what steady commits need (the writer checkpoints at 1,000 pages, ~4 MiB), so the
/// file is not cut and grown again under load.
pub const WAL_SIZE_LIMIT: u64 = 64 << 20;

/// Reader connections for a file database unless [`StoreOptions::pool_size`] says otherwise.
/// Reads are short and SQLite work is CPU-bound, so a handful is enough to overlap them with
/// the writer on a small machine.
pub const DEFAULT_READ_POOL_SIZE: u32 = 4;

const ENSURE_TENANT_SQL: &str =
    "INSERT INTO tenants (tenant_id, created_at) VALUES (?, ?) ON CONFLICT (tenant_id) DO NOTHING";

/// The SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The writes that are long or rare (usage uploads, retention, nodes): one connection, used
    /// only with a turn of the writer thread ([`SqliteStore::slow_writer`]).
    writer: SqlitePool,
    /// Reads.
    reader: SqlitePool,
    /// The event log's group-commit queue, in front of `writes`.
    events: EventWriter,
    /// The runs' short write transactions, committed together (see `writes`).
    writes: writes::Writes,
    /// In-process notices (there is no other node to hear from).
    notices: Arc<NoticeHub>,
    /// The temporary directory of an in-memory database, removed with the last clone.
    _scratch: Option<Arc<tempfile::TempDir>>,
}

/// Where a URL points.
enum Location {
    /// A private in-memory database.
    Memory,
    /// A database file.
    File(Box<SqliteConnectOptions>),
}

impl SqliteStore {
    /// Opens (creating it if missing) and migrates the database at `url`: `sqlite://path.db`,
    /// `sqlite:path.db`, `sqlite:///absolute/path.db`, a bare path, or `sqlite::memory:` (also
    /// `:memory:`).
    ///
    /// `sqlite::memory:` is a private database in a temporary directory that goes with the
    /// store, its commits not synced to disk: the writer connection calls SQLite on a thread of
    /// its own (`writes`), and SQLite's in-memory databases live in one connection (connections
    /// sharing one lock whole tables against each other). It is for tests and demos. Every
    /// `connect` to `sqlite::memory:` gets its own, empty database.
    ///
    /// Must be called within a Tokio runtime: the pools live on it. The write path runs on threads
    /// of the store's own (`writes`, `own_thread`) and ends with the store.
    pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
        SqliteStore::connect_with(url, &StoreOptions::default()).await
    }

    /// [`SqliteStore::connect`] with options: `pool_size` sets the reader connections (default
    /// [`DEFAULT_READ_POOL_SIZE`]; there is always one writer).
    pub async fn connect_with(url: &str, options: &StoreOptions) -> StoreResult<SqliteStore> {
        let readers = options.pool_size.unwrap_or(DEFAULT_READ_POOL_SIZE).max(1);
        let (options, synchronous, scratch) = match parse_url(url)? {
            Location::Memory => {
                let scratch = scratch_directory().await?;
                let options =
                    SqliteConnectOptions::new().filename(scratch.path().join("memory.db"));
                // Nothing of it outlives the process: no fsyncs.
                (options, SqliteSynchronous::Off, Some(scratch))
            }
            Location::File(options) => (*options, EVENT_LOG_SYNCHRONOUS, None),
        };
        let base = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(synchronous)
            .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string());
        let filename = base.get_filename().to_owned();
        // The writer opens first: it creates the file and switches it to WAL (a property of
        // the file, so the readers inherit it).
        let writer = open_writer(&base).await?;
        // query_only makes an accidental write through the reader pool fail instead of racing
        // the writer for the lock.
        let reader = SqlitePoolOptions::new()
            .max_connections(readers)
            .test_before_acquire(false)
            .connect_lazy_with(base.pragma("query_only", "ON"));
        let notices = Arc::new(NoticeHub::new());
        let open = {
            let filename = filename.clone();
            move || open_direct_writer(&filename, synchronous)
        };
        let writes = writes::Writes::start(open).await?;
        let sink = events::SqliteEventSink {
            writes: writes.clone(),
            notices: Arc::clone(&notices),
        };
        let (events, grouping) = EventWriter::start(sink, 1);
        own_thread::run(grouping)?;
        match scratch {
            Some(_) => tracing::info!("opened in-memory store (a temporary file)"),
            None => tracing::info!(file = %filename.display(), "opened sqlite store"),
        }
        Ok(SqliteStore {
            events,
            writes,
            writer,
            reader,
            notices,
            _scratch: scratch,
        })
    }
}

impl SqliteStore {
    /// sqlx's writer connection, for a write that is long or rare, with the turn that holds the
    /// runs' writer thread between commits meanwhile (`writes`): keep the turn until the write
    /// is done.
    async fn slow_writer(&self) -> StoreResult<(writes::Turn, &SqlitePool)> {
        Ok((self.writes.turn().await?, &self.writer))
    }
}

/// What the temporary directory of an in-memory database is named after, then the process id.
const SCRATCH_PREFIX: &str = "agentwire-memory-";

/// A new temporary directory for an in-memory database, named after this process, made off the
/// async runtime. The first one a process makes removes those of processes that are gone: a
/// process killed outright (SIGKILL, as tests do to servers) cannot remove its own, and one
/// that runs leaves none behind, so once per process is enough.
async fn scratch_directory() -> StoreResult<Arc<tempfile::TempDir>> {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    tokio::task::spawn_blocking(|| {
        let temp = std::env::temp_dir();
        SWEPT.call_once(|| remove_orphaned_scratch(&temp));
        tempfile::Builder::new()
            .prefix(&format!("{SCRATCH_PREFIX}{}-", std::process::id()))
            .tempdir_in(temp)
    })
    .await
    .map_err(|e| local_io(std::io::Error::other(e)))?
    .map(Arc::new)
    .map_err(local_io)
}

/// A local I/O failure (a thread or a directory that could not be made): the database's own
/// error, not [`StoreError::Unavailable`], which `From<sqlx::Error>` makes of any I/O error
/// because over a network it means an unreachable server.
fn local_io(e: std::io::Error) -> StoreError {
    StoreError::Database(sqlx::Error::Io(e))
}

/// Removes the in-memory databases in `temp` whose process is gone. Only where `/proc` says
/// which processes run (Linux); anything unreadable or not ours is left alone.
fn remove_orphaned_scratch(temp: &std::path::Path) {
    let proc = std::path::Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(SCRATCH_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Opens the writer thread's own connection to the file sqlx's writer created and migrated
/// (see `writes`), with the same settings.
fn open_direct_writer(
    path: &std::path::Path,
    synchronous: SqliteSynchronous,
) -> StoreResult<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(
        None,
        "synchronous",
        match synchronous {
            SqliteSynchronous::Off => "OFF",
            SqliteSynchronous::Normal => "NORMAL",
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Extra => "EXTRA",
        },
    )?;
    conn.pragma_update(
        None,
        "journal_size_limit",
        i64::try_from(WAL_SIZE_LIMIT).unwrap_or(i64::MAX),
    )?;
    // Every statement the writer runs, with room to spare.
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// `Store::set_run_status` on the writer connection.
fn set_status_on(
    conn: &rusqlite::Connection,
    run_id: &str,
    status: RunStatus,
    finished_at: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    // Happy path in one statement: only an unfinished run may change.
    let updated = conn
        .prepare_cached(
            "UPDATE runs SET status = ?1, finished_at = ?2 \
             WHERE run_id = ?3 AND status IN ('accepted', 'running')",
        )?
        .execute(rusqlite::params![
            status.as_str(),
            finished_at.map(time_to_db),
            run_id
        ])?;
    if updated > 0 {
        return Ok(());
    }
    unchanged_status(run_id, run_status(conn, run_id)?, status)
}

/// A run's status, read on the writer connection; `None` when there is no such run.
fn run_status(conn: &rusqlite::Connection, run_id: &str) -> StoreResult<Option<RunStatus>> {
    conn.prepare_cached("SELECT status FROM runs WHERE run_id = ?1")?
        .query_row([run_id], |row| row.get::<_, String>(0))
        .optional()?
        .map(|status| status.parse())
        .transpose()
}

/// A page of a thread's runs after a cursor (`created_at`, `rowid`), in the thread's order.
const THREAD_RUNS_SQL: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", rowid FROM runs WHERE user_id = ?1 AND thread_id = ?2 AND tenant_id = ?3 \
     AND (created_at > ?4 OR (created_at = ?4 AND rowid > ?5)) \
     ORDER BY created_at, rowid LIMIT ?6"
);

/// A user's threads in one tenant, newest first (through `threads_user_updated`).
const LIST_THREADS_SQL: &str = concat!(
    "SELECT ",
    thread_columns!(),
    " FROM threads WHERE tenant_id = ? AND user_id = ? \
      ORDER BY updated_at DESC, thread_id DESC LIMIT ?"
);

/// A page of a run's log.
const EVENTS_AFTER_SQL: &str = "SELECT seq, payload FROM run_events \
     WHERE run_key = (SELECT run_key FROM runs WHERE run_id = ?) AND seq > ? ORDER BY seq LIMIT ?";

/// Refuses a run whose text the database cannot store.
fn check_run_text(run: &RunRecord) -> StoreResult<()> {
    check_text("run_id", &run.run_id)?;
    check_text("thread_id", &run.thread_id)?;
    check_text("user_id", &run.user_id)?;
    check_text("tenant_id", &run.tenant_id)?;
    check_text("agent", &run.agent)?;
    check_text("user_request", &run.user_request)
}

/// Inserts a run row without a node (`create_run`).
async fn insert_run(conn: &mut SqliteConnection, run: &RunRecord) -> StoreResult<()> {
    const INSERT: &str = concat!(
        "INSERT INTO runs (",
        run_columns!(),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    let query = bind_run(sqlx::query(INSERT), run)?;
    match query.execute(conn).await {
        Ok(_) => Ok(()),
        Err(e) => Err(run_insert_error(e, run)),
    }
}

/// A failed run insert (through either connection): a run id stored already is the caller's
/// `DuplicateRun`.
fn run_insert_error(e: impl Into<StoreError>, run: &RunRecord) -> StoreError {
    match e.into() {
        StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            StoreError::DuplicateRun(run.run_id.clone())
        }
        StoreError::Sqlite(e) if is_unique_violation(&e) => {
            StoreError::DuplicateRun(run.run_id.clone())
        }
        e => e,
    }
}

/// Whether the writer connection refused a row for a primary key or unique index it would
/// break.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            )
    )
}

/// Creates the thread or touches its `updated_at` (`Store::upsert_thread`; `admit_run` calls it
/// inside its transaction).
async fn upsert_thread(
    conn: &mut SqliteConnection,
    user_id: &str,
    tenant_id: &str,
    thread_id: &str,
    title: &str,
) -> StoreResult<ThreadRecord> {
    check_text("user_id", user_id)?;
    check_text("tenant_id", tenant_id)?;
    check_text("thread_id", thread_id)?;
    check_text("title", title)?;
    let now = time_to_db(Utc::now());
    let row = sqlx::query(concat!(
        upsert_thread_from!("VALUES (?, ?, ?, ?, ?, ?)"),
        " RETURNING ",
        thread_columns!()
    ))
    .bind(user_id)
    .bind(thread_id)
    .bind(tenant_id)
    .bind(title)
    .bind(now)
    .bind(now)
    .fetch_one(conn)
    .await?;
    thread_from_row(&row)
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
        return Ok(Location::File(Box::new(
            SqliteConnectOptions::new().filename(url),
        )));
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
    Ok(Location::File(Box::new(options)))
}

/// A private in-memory database, once `url` is known to be a valid one.
fn memory_options(url: &str) -> StoreResult<Location> {
    SqliteConnectOptions::from_str(url)
        .map(|_| Location::Memory)
        .map_err(|e| StoreError::InvalidUrl(format!("{url}: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn schema_version(&self) -> StoreResult<i64> {
        migrate::sqlite_version(&self.reader).await
    }

    /// Waits for in-flight operations. On a file database the last connection to close
    /// checkpoints the WAL into the main file.
    async fn close(&self) {
        self.notices.close();
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn ensure_tenant(&self, tenant_id: &str) -> StoreResult<()> {
        check_text("tenant_id", tenant_id)?;
        let (_turn, writer) = self.slow_writer().await?;
        sqlx::query(ENSURE_TENANT_SQL)
            .bind(tenant_id)
            .bind(time_to_db(Utc::now()))
            .execute(writer)
            .await?;
        Ok(())
    }

    async fn begin_usage_upload(&self, tenant_id: &str) -> StoreResult<UsageUpload> {
        let (_turn, writer) = self.slow_writer().await?;
        usage::begin(writer, tenant_id).await
    }

    async fn stage_usage(&self, upload: &UsageUpload, records: &[UsageRecord]) -> StoreResult<()> {
        // Checked before the writer is taken, so a bad record costs no one else any waiting.
        usage::check_records(records)?;
        let (_turn, writer) = self.slow_writer().await?;
        usage::stage(writer, upload, records).await
    }

    async fn commit_usage_upload(&self, upload: &UsageUpload) -> StoreResult<u64> {
        let inserted = {
            let (_turn, writer) = self.slow_writer().await?;
            usage::commit(writer, upload).await?
        };
        tracing::debug!(tenant_id = %upload.tenant_id, inserted, "committed usage upload");
        self.notices.publish(Notice::UsageChanged {
            tenant_id: upload.tenant_id.clone(),
        });
        Ok(inserted)
    }

    async fn abort_usage_upload(&self, upload: &UsageUpload) -> StoreResult<()> {
        let (_turn, writer) = self.slow_writer().await?;
        usage::abort(writer, upload).await
    }

    async fn sweep_usage_uploads(&self, idle_for: Duration) -> StoreResult<u64> {
        let (_turn, writer) = self.slow_writer().await?;
        usage::sweep(writer, idle_for).await
    }

    async fn load_usage(&self, tenant_id: &str) -> StoreResult<Vec<UsageRecord>> {
        usage::load(&self.reader, tenant_id).await
    }

    async fn usage_version(&self, tenant_id: &str) -> StoreResult<u64> {
        let version: i64 = sqlx::query_scalar(usage::USAGE_VERSION_SQL)
            .bind(tenant_id)
            .fetch_one(&self.reader)
            .await?;
        db_to_u64("usage_version", version)
    }

    async fn usage_count(&self, tenant_id: &str) -> StoreResult<u64> {
        let row = sqlx::query(usage::COUNT_USAGE_SQL)
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
        let (_turn, writer) = self.slow_writer().await?;
        let mut conn = writer.acquire().await?;
        upsert_thread(&mut conn, user_id, tenant_id, thread_id, title).await
    }

    async fn list_threads(
        &self,
        user_id: &str,
        tenant_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<ThreadRecord>> {
        let rows = sqlx::query(LIST_THREADS_SQL)
            .bind(tenant_id)
            .bind(user_id)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(thread_from_row).collect()
    }

    async fn create_run(&self, run: &RunRecord) -> StoreResult<()> {
        check_run_text(run)?;
        let (_turn, writer) = self.slow_writer().await?;
        let mut conn = writer.acquire().await?;
        insert_run(&mut conn, run).await
    }

    async fn admit_run(
        &self,
        run: &RunRecord,
        node_id: &str,
        max_in_flight: u32,
        first: Option<NewEvent>,
    ) -> StoreResult<Admission> {
        cluster::check_admission(run, node_id)?;
        let first = check_first_event(&run.run_id, first)?;
        let admission = (run.clone(), node_id.to_owned(), first);
        self.writes
            // A person waits for the first event: ahead of other runs' writes.
            .run_ahead(move |conn| {
                let (run, node_id, first) = &admission;
                cluster::admit_on(conn, run, node_id, max_in_flight, first.as_ref())
            })
            .await
    }

    async fn set_run_status(
        &self,
        run_id: &str,
        status: RunStatus,
        finished_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let run_id = run_id.to_owned();
        self.writes
            // One UPDATE; what follows it only reads.
            .run_atomic(move |conn| set_status_on(conn, &run_id, status, finished_at))
            .await
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
        tenant_id: &str,
        thread_id: &str,
        after: Option<&RunCursor>,
        limit: u32,
    ) -> StoreResult<RunPage> {
        // rowid breaks ties between runs created in the same millisecond: insertion order. The
        // first page starts before any possible cursor.
        let (created_at, order) = after.map_or((i64::MIN, i64::MIN), |c| (c.created_at, c.order));
        let rows = sqlx::query(THREAD_RUNS_SQL)
            .bind(user_id)
            .bind(thread_id)
            .bind(tenant_id)
            .bind(created_at)
            .bind(order)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        run_page_from_rows(&rows, limit)
    }

    async fn delete_finished_runs_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        let (_turn, writer) = self.slow_writer().await?;
        retention::delete_finished_runs_before(writer, cutoff, limit).await
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

    async fn end_run(
        &self,
        run_id: &str,
        after_seq: u64,
        events: Vec<NewEvent>,
        status: RunStatus,
        finished_at: DateTime<Utc>,
    ) -> StoreResult<EndRun> {
        let pending = crate::group_commit::check_end_run(run_id, after_seq, events, status)?;
        let last = pending.last().map(|event| event.seq);
        let ending = (run_id.to_owned(), pending);
        let ended = self
            .writes
            .run(move |conn| {
                let (id, pending) = &ending;
                cluster::end_on(conn, id, after_seq, pending, status, finished_at)
            })
            .await?;
        if let (EndRun::Ended, Some(seq)) = (&ended, last) {
            self.notices.publish(Notice::RunEvents {
                run_id: run_id.to_owned(),
                seq,
            });
        }
        Ok(ended)
    }

    async fn request_cancel(&self, run_id: &str) -> StoreResult<bool> {
        let (_turn, writer) = self.slow_writer().await?;
        cluster::request_cancel(writer, &self.notices, run_id).await
    }

    async fn cancel_requested_runs(&self, node_id: &str) -> StoreResult<Vec<String>> {
        cluster::cancel_requested_runs(&self.reader, node_id).await
    }

    async fn register_node(&self, node_id: &str, lease: Duration) -> StoreResult<NodeRecord> {
        let (_turn, writer) = self.slow_writer().await?;
        cluster::register_node(writer, node_id, lease).await
    }

    async fn renew_node_lease(&self, node_id: &str, lease: Duration) -> StoreResult<DateTime<Utc>> {
        let (_turn, writer) = self.slow_writer().await?;
        cluster::renew_node_lease(writer, node_id, lease).await
    }

    async fn deregister_node(&self, node_id: &str) -> StoreResult<bool> {
        let (_turn, writer) = self.slow_writer().await?;
        cluster::deregister_node(writer, node_id).await
    }

    async fn expired_nodes(&self) -> StoreResult<Vec<NodeRecord>> {
        cluster::expired_nodes(&self.reader).await
    }

    async fn claim_node_sweep(&self, node_id: &str, sweeper: &str) -> StoreResult<bool> {
        let (_turn, writer) = self.slow_writer().await?;
        cluster::claim_node_sweep(writer, node_id, sweeper).await
    }

    async fn node_runs_in_flight(&self, node_id: &str) -> StoreResult<Vec<RunRecord>> {
        cluster::node_runs_in_flight(&self.reader, node_id).await
    }

    async fn finish_node_sweep(&self, node_id: &str, sweeper: &str) -> StoreResult<bool> {
        let (_turn, writer) = self.slow_writer().await?;
        cluster::finish_node_sweep(writer, node_id, sweeper).await
    }

    async fn append_events(&self, run_id: &str, events: Vec<NewEvent>) -> Result<(), AppendFailed> {
        // Durable when this returns; concurrent appends share a commit (see group_commit).
        self.events.append(run_id, events).await
    }

    async fn events_after(
        &self,
        run_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<StoredEvent>> {
        // No stored seq exceeds i64::MAX (append refuses them), so a larger cursor has nothing
        // after it.
        let Ok(after) = i64::try_from(after_seq) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(EVENTS_AFTER_SQL)
            .bind(run_id)
            .bind(after)
            .bind(i64::from(limit))
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

    async fn subscribe(&self) -> StoreResult<Notices> {
        Ok(self.notices.subscribe())
    }
}

/// Opens a file's writer connection and brings the schema up to date.
///
/// Processes opening one new file at the same moment can get `SQLITE_BUSY` without the busy
/// timeout being applied (switching a file to WAL, or a write lock a reader asked for, is not
/// waited for), so a busy open is tried again, with a growing pause, for up to [`BUSY_TIMEOUT`].
async fn open_writer(base: &SqliteConnectOptions) -> StoreResult<SqlitePool> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(10);
    loop {
        let attempt = async {
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .test_before_acquire(false)
                .connect_with(base.clone().journal_mode(SqliteJournalMode::Wal))
                .await?;
            migrate::run_sqlite(&writer).await?;
            Ok::<_, StoreError>(writer)
        };
        match attempt.await {
            Err(err) if is_busy(&err) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            result => return result,
        }
    }
}

/// `SQLITE_BUSY` or `SQLITE_LOCKED`, in any of their extended forms.
fn is_busy(err: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(db)) = err else {
        return false;
    };
    db.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::AssertSqlSafe;

    /// A store on `events.db` in a directory of its own.
    async fn file_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        (dir, store)
    }

    /// A run of user `u` in tenant `t`, running.
    fn running(run_id: &str, thread_id: &str) -> RunRecord {
        RunRecord {
            run_id: run_id.into(),
            thread_id: thread_id.into(),
            user_id: "u".into(),
            tenant_id: "t".into(),
            agent: "supervisor".into(),
            user_request: "q".into(),
            status: RunStatus::Running,
            created_at: Utc::now(),
            finished_at: None,
            last_seq: 0,
        }
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

        store.create_run(&running("r", "t")).await.unwrap();
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

    /// Every connect to `sqlite::memory:` gets a database of its own, in a temporary directory
    /// that goes with the store.
    #[tokio::test]
    async fn each_in_memory_store_is_its_own_and_leaves_nothing_behind() {
        let a = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let b = SqliteStore::connect(":memory:").await.unwrap();
        a.create_run(&running("r", "t")).await.unwrap();
        a.append_event("r", 1, "agent_started", r#"{"seq":1}"#)
            .await
            .unwrap();
        assert!(a.get_run("r").await.unwrap().is_some());
        assert!(b.get_run("r").await.unwrap().is_none());
        let dir = a._scratch.as_ref().unwrap().path().to_owned();
        assert!(dir.join("memory.db").exists());
        a.close().await;
        drop(a);
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }

    /// The directory of an in-memory database whose process is gone (killed outright) is
    /// removed when the next one is made; a live process's is kept.
    #[test]
    fn orphaned_in_memory_databases_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        gone.wait().unwrap();
        let orphan = temp.path().join(format!("{SCRATCH_PREFIX}{gone_pid}-abc"));
        let live = temp
            .path()
            .join(format!("{SCRATCH_PREFIX}{}-abc", std::process::id()));
        let other = temp.path().join("agentwire-memory-notapid-abc");
        for dir in [&orphan, &live, &other] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("memory.db"), b"x").unwrap();
        }
        remove_orphaned_scratch(temp.path());
        if std::path::Path::new("/proc/self").exists() {
            assert!(!orphan.exists(), "the gone process's database is left");
        }
        assert!(live.exists() && other.exists());
    }

    /// Under continuous commits the WAL is still started over: the writer's own checkpoint,
    /// short now, completes and resets it, so the file stays near SQLite's 1,000 pages.
    #[tokio::test]
    async fn the_wal_stays_bounded_under_continuous_commits() {
        let (dir, store) = file_store().await;
        let mut writers = Vec::new();
        // Eight runs appending at once, about 12 MiB in all: three times the threshold.
        for n in 0..8 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let run_id = format!("r{n}");
                store
                    .create_run(&running(&run_id, &format!("t{n}")))
                    .await
                    .unwrap();
                for seq in 1..=400_u64 {
                    let payload = format!(r#"{{"seq":{seq},"text":"{}"}}"#, "y".repeat(4_000));
                    store
                        .append_event(&run_id, seq, "agent_thinking", &payload)
                        .await
                        .unwrap();
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("events.db-wal"))
            .unwrap()
            .len();
        assert!(wal < 8 << 20, "the WAL grew to {wal} bytes");
    }

    /// A transaction far larger than the WAL usually holds (an upgrade that copies the event
    /// log, say) must not leave a WAL file of its size on disk for good: once the WAL starts
    /// over, the file is cut back to [`WAL_SIZE_LIMIT`].
    #[tokio::test]
    async fn a_large_transaction_leaves_no_large_wal_behind() {
        let (dir, store) = file_store().await;
        let large = "z".repeat(usize::try_from(WAL_SIZE_LIMIT).unwrap() + (16 << 20));
        let mut tx = store.writer.begin().await.unwrap();
        sqlx::query("INSERT INTO tenants (tenant_id, created_at) VALUES (?, 0)")
            .bind(&large)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("DELETE FROM tenants WHERE tenant_id = ?")
            .bind(&large)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let wal = || {
            std::fs::metadata(dir.path().join("events.db-wal"))
                .unwrap()
                .len()
        };
        assert!(
            wal() > WAL_SIZE_LIMIT,
            "the transaction went through the WAL"
        );
        // The next writes start the WAL over.
        store.create_run(&running("r", "t")).await.unwrap();
        store
            .append_event("r", 1, "agent_started", r#"{"seq":1}"#)
            .await
            .unwrap();
        assert!(wal() <= WAL_SIZE_LIMIT, "the WAL stayed at {} bytes", wal());
    }

    /// The hot reads must be served in order by an index, never by sorting the rows.
    #[tokio::test]
    async fn hot_reads_need_no_sort() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let queries: [&'static str; 5] = [
            usage::SELECT_USAGE_SQL,
            THREAD_RUNS_SQL,
            EVENTS_AFTER_SQL,
            LIST_THREADS_SQL,
            // Admission's count must not scan the user's finished runs.
            "SELECT COUNT(*) FROM runs WHERE tenant_id = ? AND user_id = ? \
             AND status IN ('accepted', 'running')",
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

    /// Counting a tenant's usage and deleting an aborted upload's records read
    /// `usage_records_tenant_upload` alone: no scan of the records, no read of their rows.
    #[tokio::test]
    async fn upload_bookkeeping_reads_the_tenant_upload_index() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        for (sql, wanted) in [
            (
                usage::COUNT_USAGE_SQL,
                "COVERING INDEX usage_records_tenant_upload",
            ),
            (
                usage::DELETE_UPLOAD_BATCH_SQL,
                "usage_records_tenant_upload",
            ),
        ] {
            let explain = AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"));
            let plan: Vec<String> = sqlx::query(explain)
                .bind("acme")
                .bind(1_i64)
                .bind(10_i64)
                .fetch_all(&store.writer)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>(3))
                .collect();
            let plan = plan.join(" | ");
            assert!(plan.contains(wanted), "{sql}: {plan}");
            assert!(!plan.contains("SCAN usage_records"), "{sql}: {plan}");
        }
    }

    /// A retention batch reads its runs off the front of `runs_finished_by_age`: no scan of
    /// the runs table, no sort, however many runs there are.
    #[tokio::test]
    async fn retention_batches_read_the_index_in_order() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        let explain = AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", retention::DELETE_RUNS_SQL));
        let plan: Vec<String> = sqlx::query(explain)
            .bind(1_i64)
            .bind(500_i64)
            .fetch_all(&store.writer)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(3))
            .collect();
        let plan = plan.join(" | ");
        assert!(plan.contains("runs_finished_by_age"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn urls_are_classified() {
        assert!(matches!(parse_url("sqlite::memory:"), Ok(Location::Memory)));
        assert!(matches!(parse_url(":memory:"), Ok(Location::Memory)));
        assert!(matches!(
            parse_url("sqlite://?mode=memory"),
            Ok(Location::Memory)
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
