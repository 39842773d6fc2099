//! Usage records on SQLite: uploads written in chunks, the multi-row INSERT and the packed
//! SELECT.
//!
//! An upload must not hold the only writer for its whole length (a 1M-row transaction kept
//! every event append of every tenant waiting), yet readers must see it whole or not at all.
//! So an upload is a row in `usage_uploads` and its records carry its `upload_id`: each chunk
//! is its own short transaction, readers skip records whose upload still has a row there, and
//! the commit deletes that one row, making every record visible at once. An abort first marks
//! the upload `aborting` (so no chunk can land after it), deletes the records a batch per
//! transaction, and only then deletes the upload's row: the records never become visible.
//!
//! The INSERT and SELECT are shaped by measurements (statement size, driver copying cost), not
//! by the schema alone. All SQL takes values through bound parameters; the only text built at
//! run time is the multi-row INSERT, made of column names and `?` placeholders alone. This
//! module must not log record contents.

use std::sync::OnceLock;

use chrono::Utc;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, SqlStr, Sqlite, SqlitePool};

use super::ENSURE_TENANT_SQL;
use crate::convert::{
    check_text, check_usage_record, db_to_opt_u64, db_to_time, db_to_u64, float_to_db,
    opt_u64_to_db, time_to_db, u64_to_db,
};
use crate::{StoreError, StoreResult, USAGE_UPLOAD_CHUNK_ROWS, UsageRecord, UsageUpload};

/// Bound parameters per statement SQLite accepts (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
const SQLITE_MAX_BIND_PARAMS: usize = 32_766;

/// Columns written per usage row (tenant_id, upload_id and the 23 record fields).
const USAGE_INSERT_COLUMNS: usize = 25;

/// Rows per multi-row usage INSERT. Big enough that 100k records need only ~100 statements,
/// below the bind-parameter limit with room to spare.
const USAGE_ROWS_PER_INSERT: usize = 1_000;

const _: () = assert!(USAGE_ROWS_PER_INSERT * USAGE_INSERT_COLUMNS <= SQLITE_MAX_BIND_PARAMS);

const USAGE_INSERT_PREFIX: &str = "INSERT INTO usage_records (tenant_id, upload_id, ts, provider, model, \
     input_tokens, output_tokens, request_count, cache_read_input_tokens, \
     cache_write_input_tokens, reasoning_tokens, max_tokens, latency_ms, ttft_ms, cost_usd, \
     status, service_tier, user_id, team, project, feature, session_id, prompt_hash, \
     prefix_hash, tags) VALUES ";

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
    upload_id: i64,
    r: &'q UsageRecord,
) -> StoreResult<sqlx::query::Query<'q, Sqlite, SqliteArguments>> {
    Ok(query
        .bind(tenant_id)
        .bind(upload_id)
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
        .bind(float_to_db(r.latency_ms))
        .bind(float_to_db(r.ttft_ms))
        .bind(float_to_db(r.cost_usd))
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
pub(super) const SELECT_USAGE_SQL: &str = "SELECT      json_array(         json_array(ts, input_tokens, output_tokens, request_count, cache_read_input_tokens,                     cache_write_input_tokens, reasoning_tokens, max_tokens),          json_array(provider, model, status, service_tier, user_id, team, project, feature,                     session_id, prompt_hash, prefix_hash, tags)),      latency_ms, ttft_ms, cost_usd      FROM usage_records WHERE tenant_id = ? \
     AND upload_id NOT IN (SELECT upload_id FROM usage_uploads) ORDER BY ts, id";

/// How many of a tenant's records are visible (see `SELECT_USAGE_SQL`).
pub(super) const COUNT_USAGE_SQL: &str = "SELECT COUNT(*) FROM usage_records WHERE tenant_id = ? \
     AND upload_id NOT IN (SELECT upload_id FROM usage_uploads)";

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

/// Starts an upload (see `Store::begin_usage_upload`).
pub(super) async fn begin(writer: &SqlitePool, tenant_id: &str) -> StoreResult<UsageUpload> {
    check_text("tenant_id", tenant_id)?;
    let now = time_to_db(Utc::now());
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query(ENSURE_TENANT_SQL)
        .bind(tenant_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let upload_id: i64 = sqlx::query_scalar(
        "INSERT INTO usage_uploads (tenant_id, state, started_at, touched_at) \
         VALUES (?, 'open', ?, ?) RETURNING upload_id",
    )
    .bind(tenant_id)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(UsageUpload {
        upload_id,
        tenant_id: tenant_id.to_owned(),
    })
}

/// Refuses a chunk with a record the database cannot store; `stage` expects it checked.
pub(super) fn check_records(records: &[UsageRecord]) -> StoreResult<()> {
    records.iter().try_for_each(check_usage_record)
}

/// Writes one chunk of an open upload, checked by [`check_records`], in one transaction (see
/// `Store::stage_usage`).
pub(super) async fn stage(
    writer: &SqlitePool,
    upload: &UsageUpload,
    records: &[UsageRecord],
) -> StoreResult<()> {
    let tenant_id = upload.tenant_id.as_str();
    // On any error below the transaction is dropped uncommitted, which rolls the chunk back.
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    // usize → i64: a chunk is far below i64::MAX rows.
    let open = sqlx::query(
        "UPDATE usage_uploads SET touched_at = ?, rows = rows + ? \
         WHERE upload_id = ? AND state = 'open'",
    )
    .bind(time_to_db(Utc::now()))
    .bind(records.len() as i64)
    .bind(upload.upload_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if open == 0 {
        return Err(StoreError::UploadNotOpen(upload.upload_id));
    }
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
            query = bind_usage_row(query, tenant_id, upload.upload_id, record)?;
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The tenant's usage version (see `Store::usage_version`); no row means 0.
pub(super) const USAGE_VERSION_SQL: &str =
    "SELECT COALESCE(MAX(usage_version), 0) FROM tenants WHERE tenant_id = ?";

/// Makes the upload's records visible: deletes its one row and adds one to the tenant's usage
/// version, in one transaction (see `Store::commit_usage_upload`). Returns how many records it
/// had.
pub(super) async fn commit(writer: &SqlitePool, upload: &UsageUpload) -> StoreResult<u64> {
    let mut tx = writer.begin().await?;
    let rows: Option<i64> = sqlx::query_scalar(
        "DELETE FROM usage_uploads WHERE upload_id = ? AND state = 'open' RETURNING rows",
    )
    .bind(upload.upload_id)
    .fetch_optional(&mut *tx)
    .await?;
    let rows = rows.ok_or(StoreError::UploadNotOpen(upload.upload_id))?;
    sqlx::query("UPDATE tenants SET usage_version = usage_version + 1 WHERE tenant_id = ?")
        .bind(upload.tenant_id.as_str())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    db_to_u64("usage_uploads.rows", rows)
}

/// One batch of an aborted upload's records (tenant, upload, batch size).
pub(super) const DELETE_UPLOAD_BATCH_SQL: &str = "DELETE FROM usage_records WHERE id IN \
     (SELECT id FROM usage_records WHERE tenant_id = ? AND upload_id = ? LIMIT ?)";

/// Deletes an upload's records and then the upload (see `Store::abort_usage_upload`).
pub(super) async fn abort(writer: &SqlitePool, upload: &UsageUpload) -> StoreResult<()> {
    let upload_id = upload.upload_id;
    // From here no chunk can be staged and no commit succeed. No row: committed (its records
    // are visible and must stay) or aborted already.
    let marked = sqlx::query("UPDATE usage_uploads SET state = 'aborting' WHERE upload_id = ?")
        .bind(upload_id)
        .execute(writer)
        .await?
        .rows_affected();
    if marked == 0 {
        return Ok(());
    }
    // A batch per transaction, so other writers get the writer in between.
    let batch = i64::try_from(USAGE_UPLOAD_CHUNK_ROWS).unwrap_or(i64::MAX);
    loop {
        let deleted = sqlx::query(DELETE_UPLOAD_BATCH_SQL)
            .bind(upload.tenant_id.as_str())
            .bind(upload_id)
            .bind(batch)
            .execute(writer)
            .await?
            .rows_affected();
        if deleted < USAGE_UPLOAD_CHUNK_ROWS as u64 {
            break;
        }
    }
    sqlx::query("DELETE FROM usage_uploads WHERE upload_id = ?")
        .bind(upload_id)
        .execute(writer)
        .await?;
    Ok(())
}

/// Aborts the uploads idle for `idle_for` or longer (see `Store::sweep_usage_uploads`).
pub(super) async fn sweep(writer: &SqlitePool, idle_for: std::time::Duration) -> StoreResult<u64> {
    let idle_ms = i64::try_from(idle_for.as_millis()).unwrap_or(i64::MAX);
    let cutoff = time_to_db(Utc::now()).saturating_sub(idle_ms);
    let stale: Vec<(i64, String)> =
        sqlx::query_as("SELECT upload_id, tenant_id FROM usage_uploads WHERE touched_at <= ?")
            .bind(cutoff)
            .fetch_all(writer)
            .await?;
    for (upload_id, tenant_id) in &stale {
        let upload = UsageUpload {
            upload_id: *upload_id,
            tenant_id: tenant_id.clone(),
        };
        abort(writer, &upload).await?;
    }
    // usize → u64 is lossless on every platform Rust supports.
    Ok(stale.len() as u64)
}

/// The tenant's records in time order, then insertion order.
pub(super) async fn load(reader: &SqlitePool, tenant_id: &str) -> StoreResult<Vec<UsageRecord>> {
    let rows = sqlx::query(SELECT_USAGE_SQL)
        .bind(tenant_id)
        .fetch_all(reader)
        .await?;
    rows.iter().map(usage_from_row).collect()
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
}
