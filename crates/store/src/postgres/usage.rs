//! Usage records on PostgreSQL: uploads written in chunks, column arrays in, plain rows out.
//!
//! An upload is never one long transaction (it would hold back vacuum and, with a stalled
//! client, locks, for its whole length): as on SQLite (see `sqlite/usage.rs` for the design),
//! its records carry its `upload_id`, each chunk is its own short transaction, readers skip
//! records whose upload still has a row in `usage_uploads`, and the commit deletes that row.
//! Stage, commit and abort all touch the upload's row first, so its row lock orders them.
//!
//! An insert sends each column as one array parameter and lets `unnest` turn them back into
//! rows, so a chunk of thousands of records is one statement with 25 parameters, whatever its
//! size; `WITH ORDINALITY ... ORDER BY` keeps the identity column in input order (ties in
//! `ts` load back in insertion order, as on SQLite). This module must not log record contents.

use std::time::Duration;

use chrono::Utc;
use futures_util::TryStreamExt;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::{ENSURE_TENANT_SQL, bounded, now_ms};
use crate::convert::{
    check_text, check_usage_record, db_to_opt_u64, db_to_time, db_to_u64, float_to_db,
    opt_u64_to_db, time_to_db, u64_to_db,
};
use crate::{StoreError, StoreResult, USAGE_UPLOAD_CHUNK_ROWS, UsageRecord, UsageUpload};

/// Records per INSERT: bounds the size of one statement's arrays (a few MB).
const USAGE_ROWS_PER_INSERT: usize = 10_000;

const INSERT_USAGE_SQL: &str = "INSERT INTO usage_records (tenant_id, upload_id, ts, provider, model, \
     input_tokens, output_tokens, request_count, cache_read_input_tokens, \
     cache_write_input_tokens, reasoning_tokens, max_tokens, latency_ms, ttft_ms, cost_usd, \
     status, service_tier, user_id, team, project, feature, session_id, prompt_hash, \
     prefix_hash, tags) \
     SELECT $1, $25, u.ts, u.provider, u.model, u.input_tokens, u.output_tokens, u.request_count, \
     u.cache_read_input_tokens, u.cache_write_input_tokens, u.reasoning_tokens, u.max_tokens, \
     u.latency_ms, u.ttft_ms, u.cost_usd, u.status, u.service_tier, u.user_id, u.team, \
     u.project, u.feature, u.session_id, u.prompt_hash, u.prefix_hash, u.tags \
     FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], \
     $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], \
     $12::float8[], $13::float8[], $14::float8[], $15::text[], $16::text[], $17::text[], \
     $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], \
     $24::text[]) WITH ORDINALITY AS u(ts, provider, model, input_tokens, output_tokens, \
     request_count, cache_read_input_tokens, cache_write_input_tokens, reasoning_tokens, \
     max_tokens, latency_ms, ttft_ms, cost_usd, status, service_tier, user_id, team, project, \
     feature, session_id, prompt_hash, prefix_hash, tags, ord) ORDER BY u.ord";

const SELECT_USAGE_SQL: &str = "SELECT ts, provider, model, input_tokens, output_tokens, \
     request_count, cache_read_input_tokens, cache_write_input_tokens, reasoning_tokens, \
     max_tokens, latency_ms, ttft_ms, cost_usd, status, service_tier, user_id, team, project, \
     feature, session_id, prompt_hash, prefix_hash, tags \
     FROM usage_records WHERE tenant_id = $1 \
     AND upload_id NOT IN (SELECT upload_id FROM usage_uploads) ORDER BY ts, id";

/// How many of a tenant's records are visible (see `SELECT_USAGE_SQL`).
pub(super) const COUNT_USAGE_SQL: &str = "SELECT COUNT(*) FROM usage_records WHERE tenant_id = $1 \
     AND upload_id NOT IN (SELECT upload_id FROM usage_uploads)";

/// The tenant's usage version (see `Store::usage_version`); no row means 0.
pub(super) const USAGE_VERSION_SQL: &str =
    "SELECT COALESCE(MAX(usage_version), 0) FROM tenants WHERE tenant_id = $1";

/// One chunk's columns, in `INSERT_USAGE_SQL` parameter order.
#[derive(Default)]
struct Columns {
    ts: Vec<i64>,
    provider: Vec<String>,
    model: Vec<String>,
    input_tokens: Vec<i64>,
    output_tokens: Vec<i64>,
    request_count: Vec<i64>,
    cache_read_input_tokens: Vec<Option<i64>>,
    cache_write_input_tokens: Vec<Option<i64>>,
    reasoning_tokens: Vec<Option<i64>>,
    max_tokens: Vec<Option<i64>>,
    latency_ms: Vec<Option<f64>>,
    ttft_ms: Vec<Option<f64>>,
    cost_usd: Vec<Option<f64>>,
    texts: [Vec<Option<String>>; 10],
}

impl Columns {
    /// Splits records into columns. Fails (before anything is sent) when a counter does not
    /// fit the database integer.
    fn of(records: &[UsageRecord]) -> StoreResult<Columns> {
        let mut c = Columns::default();
        for r in records {
            c.ts.push(time_to_db(r.timestamp));
            c.provider.push(r.provider.clone());
            c.model.push(r.model.clone());
            c.input_tokens
                .push(u64_to_db("input_tokens", r.input_tokens)?);
            c.output_tokens
                .push(u64_to_db("output_tokens", r.output_tokens)?);
            c.request_count
                .push(u64_to_db("request_count", r.request_count)?);
            c.cache_read_input_tokens.push(opt_u64_to_db(
                "cache_read_input_tokens",
                r.cache_read_input_tokens,
            )?);
            c.cache_write_input_tokens.push(opt_u64_to_db(
                "cache_write_input_tokens",
                r.cache_write_input_tokens,
            )?);
            c.reasoning_tokens
                .push(opt_u64_to_db("reasoning_tokens", r.reasoning_tokens)?);
            c.max_tokens
                .push(opt_u64_to_db("max_tokens", r.max_tokens)?);
            c.latency_ms.push(float_to_db(r.latency_ms));
            c.ttft_ms.push(float_to_db(r.ttft_ms));
            c.cost_usd.push(float_to_db(r.cost_usd));
            let texts = [
                &r.status,
                &r.service_tier,
                &r.user_id,
                &r.team,
                &r.project,
                &r.feature,
                &r.session_id,
                &r.prompt_hash,
                &r.prefix_hash,
                &r.tags,
            ];
            for (column, value) in c.texts.iter_mut().zip(texts) {
                column.push(value.clone());
            }
        }
        Ok(c)
    }
}

/// Starts an upload (see `Store::begin_usage_upload`).
pub(super) async fn begin(
    pool: &PgPool,
    timeout: Duration,
    tenant_id: &str,
) -> StoreResult<UsageUpload> {
    check_text("tenant_id", tenant_id)?;
    bounded(timeout, async {
        let mut tx = pool.begin().await?;
        sqlx::query(ENSURE_TENANT_SQL)
            .bind(tenant_id)
            .bind(time_to_db(Utc::now()))
            .execute(&mut *tx)
            .await?;
        let upload_id: i64 = sqlx::query_scalar(concat!(
            "INSERT INTO usage_uploads (tenant_id, state, started_at, touched_at) \
             VALUES ($1, 'open', ",
            now_ms!(),
            ", ",
            now_ms!(),
            ") RETURNING upload_id"
        ))
        .bind(tenant_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(UsageUpload {
            upload_id,
            tenant_id: tenant_id.to_owned(),
        })
    })
    .await
}

/// Writes one chunk of an open upload in one transaction (see `Store::stage_usage`).
pub(super) async fn stage(
    pool: &PgPool,
    timeout: Duration,
    upload: &UsageUpload,
    records: &[UsageRecord],
) -> StoreResult<()> {
    for record in records {
        check_usage_record(record)?;
    }
    // Converted first: a bad counter fails the chunk before any write.
    let chunks = records
        .chunks(USAGE_ROWS_PER_INSERT)
        .map(Columns::of)
        .collect::<StoreResult<Vec<_>>>()?;
    // usize → i64: a chunk is far below i64::MAX rows.
    let count = records.len() as i64;
    // On any error below the transaction is dropped uncommitted, which rolls the chunk back.
    // Each round trip is bounded on its own.
    let mut tx = bounded(timeout, async { Ok(pool.begin().await?) }).await?;
    let open = bounded(timeout, async {
        Ok(sqlx::query(concat!(
            "UPDATE usage_uploads SET touched_at = ",
            now_ms!(),
            ", rows = rows + $2 WHERE upload_id = $1 AND state = 'open'"
        ))
        .bind(upload.upload_id)
        .bind(count)
        .execute(&mut *tx)
        .await?
        .rows_affected())
    })
    .await?;
    if open == 0 {
        return Err(StoreError::UploadNotOpen(upload.upload_id));
    }
    for c in chunks {
        let [
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
        ] = c.texts;
        let insert = sqlx::query(INSERT_USAGE_SQL)
            .bind(upload.tenant_id.as_str())
            .bind(c.ts)
            .bind(c.provider)
            .bind(c.model)
            .bind(c.input_tokens)
            .bind(c.output_tokens)
            .bind(c.request_count)
            .bind(c.cache_read_input_tokens)
            .bind(c.cache_write_input_tokens)
            .bind(c.reasoning_tokens)
            .bind(c.max_tokens)
            .bind(c.latency_ms)
            .bind(c.ttft_ms)
            .bind(c.cost_usd)
            .bind(status)
            .bind(service_tier)
            .bind(user_id)
            .bind(team)
            .bind(project)
            .bind(feature)
            .bind(session_id)
            .bind(prompt_hash)
            .bind(prefix_hash)
            .bind(tags)
            .bind(upload.upload_id);
        bounded(timeout, async {
            insert.execute(&mut *tx).await?;
            Ok(())
        })
        .await?;
    }
    bounded(timeout, async { Ok(tx.commit().await?) }).await
}

/// Makes the upload's records visible: deletes its one row, adds one to the tenant's usage
/// version, and wakes every node's cache invalidation at commit (see `Store::commit_usage_upload`). Returns how many records it had.
pub(super) async fn commit(
    pool: &PgPool,
    timeout: Duration,
    upload: &UsageUpload,
) -> StoreResult<u64> {
    bounded(timeout, async {
        let mut tx = pool.begin().await?;
        let rows: Option<i64> = sqlx::query_scalar(
            "DELETE FROM usage_uploads WHERE upload_id = $1 AND state = 'open' RETURNING rows",
        )
        .bind(upload.upload_id)
        .fetch_optional(&mut *tx)
        .await?;
        let rows = rows.ok_or(StoreError::UploadNotOpen(upload.upload_id))?;
        // The version admission reads: a run admitted after this commit, on any node, reloads
        // records cached before it even if this commit's notice has not reached its node.
        sqlx::query("UPDATE tenants SET usage_version = usage_version + 1 WHERE tenant_id = $1")
            .bind(upload.tenant_id.as_str())
            .execute(&mut *tx)
            .await?;
        // `Notice::UsageChanged` for every listening node (this one too), delivered only when
        // the transaction commits.
        sqlx::query("SELECT pg_notify('agentwire_usage', $1)")
            .bind(upload.tenant_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        db_to_u64("usage_uploads.rows", rows)
    })
    .await
}

/// Deletes an upload's records and then the upload (see `Store::abort_usage_upload`).
pub(super) async fn abort(
    pool: &PgPool,
    timeout: Duration,
    upload: &UsageUpload,
) -> StoreResult<()> {
    let upload_id = upload.upload_id;
    // From here no chunk can be staged and no commit succeed (they wait for this row's lock
    // and then find it aborting). No row: committed (its records must stay) or aborted already.
    let marked = bounded(timeout, async {
        Ok(
            sqlx::query("UPDATE usage_uploads SET state = 'aborting' WHERE upload_id = $1")
                .bind(upload_id)
                .execute(pool)
                .await?
                .rows_affected(),
        )
    })
    .await?;
    if marked == 0 {
        return Ok(());
    }
    let batch = i64::try_from(USAGE_UPLOAD_CHUNK_ROWS).unwrap_or(i64::MAX);
    loop {
        let deleted = bounded(timeout, async {
            Ok(sqlx::query(
                "DELETE FROM usage_records WHERE id IN \
                 (SELECT id FROM usage_records WHERE tenant_id = $1 AND upload_id = $2 LIMIT $3)",
            )
            .bind(upload.tenant_id.as_str())
            .bind(upload_id)
            .bind(batch)
            .execute(pool)
            .await?
            .rows_affected())
        })
        .await?;
        if deleted < USAGE_UPLOAD_CHUNK_ROWS as u64 {
            break;
        }
    }
    bounded(timeout, async {
        sqlx::query("DELETE FROM usage_uploads WHERE upload_id = $1")
            .bind(upload_id)
            .execute(pool)
            .await?;
        Ok(())
    })
    .await
}

/// Aborts the uploads idle for `idle_for` or longer by the database's clock (see
/// `Store::sweep_usage_uploads`). Safe on several nodes at once: aborting is idempotent.
pub(super) async fn sweep(
    pool: &PgPool,
    timeout: Duration,
    idle_for: Duration,
) -> StoreResult<u64> {
    let idle_ms = i64::try_from(idle_for.as_millis()).unwrap_or(i64::MAX);
    let stale: Vec<(i64, String)> = bounded(timeout, async {
        Ok(sqlx::query_as(concat!(
            "SELECT upload_id, tenant_id FROM usage_uploads WHERE touched_at <= ",
            now_ms!(),
            " - $1"
        ))
        .bind(idle_ms)
        .fetch_all(pool)
        .await?)
    })
    .await?;
    for (upload_id, tenant_id) in &stale {
        let upload = UsageUpload {
            upload_id: *upload_id,
            tenant_id: tenant_id.clone(),
        };
        abort(pool, timeout, &upload).await?;
    }
    // usize → u64 is lossless on every platform Rust supports.
    Ok(stale.len() as u64)
}

/// The tenant's records in time order, then insertion order. Streamed: the call may take as long
/// as the tenant's data needs, but fails when no row arrives within `timeout`.
pub(super) async fn load(
    pool: &PgPool,
    timeout: Duration,
    tenant_id: &str,
) -> StoreResult<Vec<UsageRecord>> {
    let mut rows = sqlx::query(SELECT_USAGE_SQL).bind(tenant_id).fetch(pool);
    let mut records = Vec::new();
    while let Some(row) = bounded(timeout, async { Ok(rows.try_next().await?) }).await? {
        records.push(usage_from_row(&row)?);
    }
    Ok(records)
}

/// Reads a row of `SELECT_USAGE_SQL` (by column index: name lookups cost at 100k rows).
fn usage_from_row(row: &PgRow) -> StoreResult<UsageRecord> {
    Ok(UsageRecord {
        timestamp: db_to_time("usage_records.ts", row.try_get(0)?)?,
        provider: row.try_get(1)?,
        model: row.try_get(2)?,
        input_tokens: db_to_u64("input_tokens", row.try_get(3)?)?,
        output_tokens: db_to_u64("output_tokens", row.try_get(4)?)?,
        request_count: db_to_u64("request_count", row.try_get(5)?)?,
        cache_read_input_tokens: db_to_opt_u64("cache_read_input_tokens", row.try_get(6)?)?,
        cache_write_input_tokens: db_to_opt_u64("cache_write_input_tokens", row.try_get(7)?)?,
        reasoning_tokens: db_to_opt_u64("reasoning_tokens", row.try_get(8)?)?,
        max_tokens: db_to_opt_u64("max_tokens", row.try_get(9)?)?,
        latency_ms: row.try_get(10)?,
        ttft_ms: row.try_get(11)?,
        cost_usd: row.try_get(12)?,
        status: row.try_get(13)?,
        service_tier: row.try_get(14)?,
        user_id: row.try_get(15)?,
        team: row.try_get(16)?,
        project: row.try_get(17)?,
        feature: row.try_get(18)?,
        session_id: row.try_get(19)?,
        prompt_hash: row.try_get(20)?,
        prefix_hash: row.try_get(21)?,
        tags: row.try_get(22)?,
    })
}
