//! The PostgreSQL backend: [`PostgresStore`], for several nodes sharing one database.
//!
//! A pool of connections (size from [`StoreOptions::pool_size`]) for all calls, and one more
//! connection, opened on the first [`Store::subscribe`], that LISTENs for the notices other
//! nodes send. Every call is bounded by [`StoreOptions::operation_timeout`], so a database
//! that vanishes mid-call (a network partition sends no reset) fails the call as
//! [`StoreError::Unavailable`] instead of hanging it; the pool reconnects on its own when the
//! database is back. Cross-node invariants (admission limits, one sweeper per dead node, no
//! event after a run's terminal one) are enforced by the database with row or advisory locks,
//! never by this process's memory. Lease times are the database's clock. All SQL takes values
//! through bound parameters. This module must not hold policy and must not log record contents
//! or the database password.
//!
//! Submodules: `usage` (usage records), `events` (the event log's group-commit sink),
//! `retention` (deleting old finished runs),
//! `cluster` (admission, ending runs, cancel requests, nodes), `listen` (the notice listener).

mod cluster;
mod events;
mod listen;
mod retention;
mod usage;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, Executor, PgPool, Row};
use tokio::sync::{Mutex, watch};

use crate::convert::{check_text, db_to_u64, time_to_db};
use crate::group_commit::EventWriter;
use crate::notice::NoticeHub;
use crate::rows::{
    bind_run, run_columns, run_from_row, run_page_from_rows, thread_columns, thread_from_row,
    unchanged_status,
};
use crate::{
    Admission, AppendFailed, Backend, EndRun, NewEvent, NodeRecord, Notices, RunCursor, RunPage,
    RunRecord, RunStatus, Store, StoreError, StoreOptions, StoreResult, StoredEvent, ThreadRecord,
    UsageRecord, UsageUpload, migrate, redact_url,
};

/// Pool connections per node unless [`StoreOptions::pool_size`] says otherwise. Event appends
/// share one connection per batch and most calls are one short statement, so a handful per
/// node covers a busy node; N nodes need N × (pool + 1) connections on the server.
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// Event batches committed at once on a pool of `pool_size`: enough that a batch need not wait
/// for the previous one's WAL flush (PostgreSQL flushes concurrent commits together), few
/// enough to leave most of the pool to reads.
fn commits_in_flight(pool_size: u32) -> usize {
    usize::try_from((pool_size / 2).clamp(1, 4)).unwrap_or(1)
}

/// The database's clock in the stored unit (unix milliseconds): lease times that several
/// nodes compare must not depend on any one node's clock.
macro_rules! now_ms {
    () => {
        "(extract(epoch FROM now()) * 1000)::bigint"
    };
}
pub(crate) use now_ms;

/// Events must be durable before an append returns. A server configured with
/// `synchronous_commit = off` would acknowledge commits it may lose on a crash, so every
/// connection turns it back on (leaving stronger settings such as `remote_apply` alone).
const DURABLE_COMMITS_SQL: &str = "SELECT set_config('synchronous_commit', 'on', false) \
     WHERE current_setting('synchronous_commit') = 'off'";

const ENSURE_TENANT_SQL: &str = "INSERT INTO tenants (tenant_id, created_at) VALUES ($1, $2) \
     ON CONFLICT (tenant_id) DO NOTHING";

/// The PostgreSQL implementation of [`Store`]. Cloning shares the pool and the listener.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    /// The event log's group-commit queue, in front of `pool`.
    events: EventWriter,
    notices: Arc<NoticeHub>,
    /// How the listener connects (its own connection, outside the pool).
    connect: PgConnectOptions,
    options: StoreOptions,
    /// The notice listener, started by the first `subscribe`.
    listener: Mutex<bool>,
    /// Dropped with the store (or flipped by `close`): ends the listener task.
    shutdown: watch::Sender<bool>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, any
    /// libpq-style parameters sqlx understands) and migrates it. Fails with
    /// [`StoreError::Unavailable`] when the server cannot be reached within the operation
    /// timeout, and with [`StoreError::InvalidUrl`] for a URL that cannot be parsed; neither
    /// repeats the password.
    ///
    /// Must be called within a Tokio runtime: the event log's group-commit task (and later the
    /// listener) are spawned on it and live as long as the store.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> StoreResult<PostgresStore> {
        let shown = redact_url(url.trim());
        let connect = PgConnectOptions::from_str(url.trim())
            .map_err(|e| {
                StoreError::InvalidUrl(format!("{shown}: {}", scrub(&e.to_string(), url)))
            })?
            .application_name("agentwire");
        let size = options.pool_size.unwrap_or(DEFAULT_POOL_SIZE).max(1);
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(DURABLE_COMMITS_SQL).await?;
                    Ok(())
                })
            })
            .connect_lazy_with(connect.clone());
        // One plain connection first: it proves the server is there and the credentials work,
        // and fails at once with the real reason (the pool would retry a refused connection
        // until its timeout and report only that).
        let probe = async {
            let conn = PgConnection::connect_with(&connect).await?;
            conn.close().await
        };
        match tokio::time::timeout(options.operation_timeout, probe).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(match StoreError::from(e) {
                    StoreError::Unavailable(message) => StoreError::Unavailable(format!(
                        "cannot connect to PostgreSQL at {shown}: {}",
                        scrub(&message, url)
                    )),
                    other => other,
                });
            }
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "no answer from PostgreSQL at {shown} within {:?}",
                    options.operation_timeout
                )));
            }
        }
        bounded(options.operation_timeout, migrate::run_postgres(&pool))
            .await
            .map_err(|e| scrub_error(e, url))?;
        tracing::info!(database = %shown, pool_size = size, "opened postgres store");
        let notices = Arc::new(NoticeHub::new());
        let sink = events::PgEventSink {
            pool: pool.clone(),
            timeout: options.operation_timeout,
        };
        let (shutdown, _) = watch::channel(false);
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                events: EventWriter::spawn(sink, commits_in_flight(size)),
                pool,
                notices,
                connect,
                options: options.clone(),
                listener: Mutex::new(false),
                shutdown,
            }),
        })
    }

    /// [`PostgresStore::connect_with`] with default options.
    pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
        PostgresStore::connect_with(url, &StoreOptions::default()).await
    }

    fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Runs one call under the operation timeout.
    async fn bounded<T>(&self, call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        bounded(self.inner.options.operation_timeout, call).await
    }
}

/// `call`, failing as unavailable when it takes longer than `timeout`. The abandoned call's
/// connection is not reused blindly: the pool pings a connection before handing it out again.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer from PostgreSQL within {timeout:?}"
        ))),
    }
}

/// Removes the URL's password from a driver message, in case the driver echoed it.
fn scrub(message: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .and_then(|authority| authority.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password)
        .filter(|password| !password.is_empty());
    match password {
        Some(password) => message.replace(password, "***"),
        None => message.to_owned(),
    }
}

fn scrub_error(error: StoreError, url: &str) -> StoreError {
    match error {
        StoreError::Unavailable(message) => StoreError::Unavailable(scrub(&message, url)),
        StoreError::Migration(message) => StoreError::Migration(scrub(&message, url)),
        other => other,
    }
}

/// Refuses a run whose text the database cannot store.
fn check_run_text(run: &RunRecord) -> StoreResult<()> {
    check_text("run_id", &run.run_id)?;
    check_text("thread_id", &run.thread_id)?;
    check_text("user_id", &run.user_id)?;
    check_text("tenant_id", &run.tenant_id)?;
    check_text("agent", &run.agent)?;
    check_text("user_request", &run.user_request)
}

/// Creates the thread or touches its `updated_at` (`Store::upsert_thread`), through the schema's
/// `agentwire_touch_thread`, which an admission calls too (schema version 7).
async fn upsert_thread(
    conn: &mut PgConnection,
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
        "SELECT ",
        thread_columns!(),
        " FROM agentwire_touch_thread($1, $2, $3, $4, $5)"
    ))
    .bind(user_id)
    .bind(thread_id)
    .bind(tenant_id)
    .bind(title)
    .bind(now)
    .fetch_one(conn)
    .await?;
    thread_from_row(&row)
}

/// A page of a thread's runs after a cursor (`created_at`, `run_no`), in the thread's order.
const THREAD_RUNS_SQL: &str = concat!(
    "SELECT ",
    run_columns!(),
    ", run_no FROM runs WHERE user_id = $1 AND thread_id = $2 AND tenant_id = $3 \
     AND (created_at, run_no) > ($4, $5) ORDER BY created_at, run_no LIMIT $6"
);

/// A page of a run's log.
const EVENTS_AFTER_SQL: &str =
    "SELECT seq, payload FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";

/// Inserts a run row that no node executes (`create_run`; an admission inserts its run with its
/// node inside `agentwire_admit_run`, schema version 7).
async fn insert_run(conn: &mut PgConnection, run: &RunRecord) -> StoreResult<()> {
    let result = bind_run(
        sqlx::query(concat!(
            "INSERT INTO runs (",
            run_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )),
        run,
    )?
    .execute(conn)
    .await;
    result.map(drop).map_err(|e| run_insert_error(e, run))
}

/// A failed statement that inserts a run (`insert_run`, `agentwire_admit_run`): a run id stored
/// already is the caller's `DuplicateRun`.
fn run_insert_error(e: sqlx::Error, run: &RunRecord) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::DuplicateRun(run.run_id.clone())
        }
        e => e.into(),
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> StoreResult<()> {
        self.bounded(async {
            sqlx::query("SELECT 1").execute(self.pool()).await?;
            Ok(())
        })
        .await
    }

    async fn schema_version(&self) -> StoreResult<i64> {
        self.bounded(migrate::postgres_version(self.pool())).await
    }

    async fn close(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner.notices.close();
        self.inner.pool.close().await;
    }

    async fn ensure_tenant(&self, tenant_id: &str) -> StoreResult<()> {
        check_text("tenant_id", tenant_id)?;
        self.bounded(async {
            sqlx::query(ENSURE_TENANT_SQL)
                .bind(tenant_id)
                .bind(time_to_db(Utc::now()))
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }

    async fn begin_usage_upload(&self, tenant_id: &str) -> StoreResult<UsageUpload> {
        usage::begin(self.pool(), self.inner.options.operation_timeout, tenant_id).await
    }

    async fn stage_usage(&self, upload: &UsageUpload, records: &[UsageRecord]) -> StoreResult<()> {
        // Bounded per statement inside.
        usage::stage(
            self.pool(),
            self.inner.options.operation_timeout,
            upload,
            records,
        )
        .await
    }

    async fn commit_usage_upload(&self, upload: &UsageUpload) -> StoreResult<u64> {
        let inserted =
            usage::commit(self.pool(), self.inner.options.operation_timeout, upload).await?;
        tracing::debug!(tenant_id = %upload.tenant_id, inserted, "committed usage upload");
        Ok(inserted)
    }

    async fn abort_usage_upload(&self, upload: &UsageUpload) -> StoreResult<()> {
        usage::abort(self.pool(), self.inner.options.operation_timeout, upload).await
    }

    async fn sweep_usage_uploads(&self, idle_for: Duration) -> StoreResult<u64> {
        usage::sweep(self.pool(), self.inner.options.operation_timeout, idle_for).await
    }

    async fn load_usage(&self, tenant_id: &str) -> StoreResult<Vec<UsageRecord>> {
        // Bounded per row inside: a large tenant may take longer than one call may.
        usage::load(self.pool(), self.inner.options.operation_timeout, tenant_id).await
    }

    async fn usage_version(&self, tenant_id: &str) -> StoreResult<u64> {
        self.bounded(async {
            let version: i64 = sqlx::query_scalar(usage::USAGE_VERSION_SQL)
                .bind(tenant_id)
                .fetch_one(self.pool())
                .await?;
            db_to_u64("usage_version", version)
        })
        .await
    }

    async fn usage_count(&self, tenant_id: &str) -> StoreResult<u64> {
        self.bounded(async {
            let row = sqlx::query(usage::COUNT_USAGE_SQL)
                .bind(tenant_id)
                .fetch_one(self.pool())
                .await?;
            db_to_u64("usage count", row.try_get(0)?)
        })
        .await
    }

    async fn upsert_thread(
        &self,
        user_id: &str,
        tenant_id: &str,
        thread_id: &str,
        title: &str,
    ) -> StoreResult<ThreadRecord> {
        self.bounded(async {
            let mut conn = self.pool().acquire().await?;
            upsert_thread(&mut conn, user_id, tenant_id, thread_id, title).await
        })
        .await
    }

    async fn list_threads(
        &self,
        user_id: &str,
        tenant_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<ThreadRecord>> {
        self.bounded(async {
            let rows = sqlx::query(concat!(
                "SELECT ",
                thread_columns!(),
                " FROM threads WHERE tenant_id = $1 AND user_id = $2 \
                  ORDER BY updated_at DESC, thread_id DESC LIMIT $3"
            ))
            .bind(tenant_id)
            .bind(user_id)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(thread_from_row).collect()
        })
        .await
    }

    async fn create_run(&self, run: &RunRecord) -> StoreResult<()> {
        check_run_text(run)?;
        self.bounded(async {
            let mut conn = self.pool().acquire().await?;
            insert_run(&mut conn, run).await
        })
        .await
    }

    async fn admit_run(
        &self,
        run: &RunRecord,
        node_id: &str,
        max_in_flight: u32,
        first: Option<NewEvent>,
    ) -> StoreResult<Admission> {
        self.bounded(cluster::admit_run(
            self.pool(),
            run,
            node_id,
            max_in_flight,
            first,
        ))
        .await
    }

    async fn set_run_status(
        &self,
        run_id: &str,
        status: RunStatus,
        finished_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        self.bounded(async {
            // Happy path in one statement: only an unfinished run may change.
            let updated = sqlx::query(
                "UPDATE runs SET status = $1, finished_at = $2 \
                 WHERE run_id = $3 AND status IN ('accepted', 'running')",
            )
            .bind(status.as_str())
            .bind(finished_at.map(time_to_db))
            .bind(run_id)
            .execute(self.pool())
            .await?
            .rows_affected();
            if updated > 0 {
                return Ok(());
            }
            let current: Option<String> =
                sqlx::query_scalar("SELECT status FROM runs WHERE run_id = $1")
                    .bind(run_id)
                    .fetch_optional(self.pool())
                    .await?;
            let current = current.map(|current| current.parse()).transpose()?;
            unchanged_status(run_id, current, status)
        })
        .await
    }

    async fn get_run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        self.bounded(async {
            let row = sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE run_id = $1"
            ))
            .bind(run_id)
            .fetch_optional(self.pool())
            .await?;
            row.as_ref().map(run_from_row).transpose()
        })
        .await
    }

    async fn get_user_run(&self, user_id: &str, run_id: &str) -> StoreResult<Option<RunRecord>> {
        self.bounded(async {
            let row = sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE run_id = $1 AND user_id = $2"
            ))
            .bind(run_id)
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?;
            row.as_ref().map(run_from_row).transpose()
        })
        .await
    }

    async fn list_thread_runs(
        &self,
        user_id: &str,
        tenant_id: &str,
        thread_id: &str,
        after: Option<&RunCursor>,
        limit: u32,
    ) -> StoreResult<RunPage> {
        // run_no breaks ties between runs created in the same millisecond. The first page
        // starts before any possible cursor.
        let (created_at, order) = after.map_or((i64::MIN, i64::MIN), |c| (c.created_at, c.order));
        self.bounded(async {
            let rows = sqlx::query(THREAD_RUNS_SQL)
                .bind(user_id)
                .bind(thread_id)
                .bind(tenant_id)
                .bind(created_at)
                .bind(order)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?;
            run_page_from_rows(&rows, limit)
        })
        .await
    }

    async fn delete_finished_runs_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<u64> {
        self.bounded(retention::delete_finished_runs_before(
            self.pool(),
            cutoff,
            limit,
        ))
        .await
    }

    async fn runs_in_flight(&self) -> StoreResult<Vec<RunRecord>> {
        self.bounded(async {
            let rows = sqlx::query(concat!(
                "SELECT ",
                run_columns!(),
                " FROM runs WHERE status IN ('accepted', 'running') ORDER BY created_at, run_no"
            ))
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(run_from_row).collect()
        })
        .await
    }

    async fn end_run(
        &self,
        run_id: &str,
        after_seq: u64,
        events: Vec<NewEvent>,
        status: RunStatus,
        finished_at: DateTime<Utc>,
    ) -> StoreResult<EndRun> {
        self.bounded(cluster::end_run(
            self.pool(),
            self.inner.options.operation_timeout,
            run_id,
            after_seq,
            events,
            status,
            finished_at,
        ))
        .await
    }

    async fn request_cancel(&self, run_id: &str) -> StoreResult<bool> {
        self.bounded(cluster::request_cancel(self.pool(), run_id))
            .await
    }

    async fn cancel_requested_runs(&self, node_id: &str) -> StoreResult<Vec<String>> {
        self.bounded(cluster::cancel_requested_runs(self.pool(), node_id))
            .await
    }

    async fn register_node(&self, node_id: &str, lease: Duration) -> StoreResult<NodeRecord> {
        self.bounded(cluster::register_node(self.pool(), node_id, lease))
            .await
    }

    async fn renew_node_lease(&self, node_id: &str, lease: Duration) -> StoreResult<DateTime<Utc>> {
        self.bounded(cluster::renew_node_lease(self.pool(), node_id, lease))
            .await
    }

    async fn deregister_node(&self, node_id: &str) -> StoreResult<bool> {
        self.bounded(cluster::deregister_node(self.pool(), node_id))
            .await
    }

    async fn expired_nodes(&self) -> StoreResult<Vec<NodeRecord>> {
        self.bounded(cluster::expired_nodes(self.pool())).await
    }

    async fn claim_node_sweep(&self, node_id: &str, sweeper: &str) -> StoreResult<bool> {
        self.bounded(cluster::claim_node_sweep(self.pool(), node_id, sweeper))
            .await
    }

    async fn node_runs_in_flight(&self, node_id: &str) -> StoreResult<Vec<RunRecord>> {
        self.bounded(cluster::node_runs_in_flight(self.pool(), node_id))
            .await
    }

    async fn finish_node_sweep(&self, node_id: &str, sweeper: &str) -> StoreResult<bool> {
        self.bounded(cluster::finish_node_sweep(self.pool(), node_id, sweeper))
            .await
    }

    async fn append_events(&self, run_id: &str, events: Vec<NewEvent>) -> Result<(), AppendFailed> {
        // Durable when this returns; concurrent appends share a commit (see group_commit), and
        // the listening nodes are woken right after it.
        self.inner.events.append(run_id, events).await
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
        self.bounded(async {
            let rows = sqlx::query(EVENTS_AFTER_SQL)
                .bind(run_id)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
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
        })
        .await
    }

    async fn subscribe(&self) -> StoreResult<Notices> {
        let inner = &self.inner;
        let mut started = inner.listener.lock().await;
        if !*started {
            let listener = self.bounded(listen::connect(&inner.connect)).await?;
            tokio::spawn(listen::run(
                listener,
                listen::Context {
                    connect: inner.connect.clone(),
                    pool: inner.pool.clone(),
                    notices: Arc::clone(&inner.notices),
                    probe_interval: inner.options.listener_probe_interval,
                    probe_send_timeout: inner
                        .options
                        .listener_probe_interval
                        .max(inner.options.acquire_timeout),
                    shutdown: inner.shutdown.subscribe(),
                },
            ));
            *started = true;
        }
        Ok(inner.notices.subscribe())
    }
}
