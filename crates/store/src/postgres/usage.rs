//! Usage records on PostgreSQL: column arrays in, plain rows out.
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

use super::{ENSURE_TENANT_SQL, bounded};
use crate::convert::{
    check_text, check_usage_text, db_to_opt_u64, db_to_time, db_to_u64, float_to_db, opt_u64_to_db,
    time_to_db, u64_to_db,
};
use crate::{StoreResult, UsageRecord};

/// Records per INSERT: bounds the size of one statement's arrays (a few MB).
const USAGE_ROWS_PER_INSERT: usize = 10_000;

const INSERT_USAGE_SQL: &str = "INSERT INTO usage_records (tenant_id, ts, provider, model, \
     input_tokens, output_tokens, request_count, cache_read_input_tokens, \
     cache_write_input_tokens, reasoning_tokens, max_tokens, latency_ms, ttft_ms, cost_usd, \
     status, service_tier, user_id, team, project, feature, session_id, prompt_hash, \
     prefix_hash, tags) \
     SELECT $1, u.ts, u.provider, u.model, u.input_tokens, u.output_tokens, u.request_count, \
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
     FROM usage_records WHERE tenant_id = $1 ORDER BY ts, id";

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

/// Inserts all records in one transaction and wakes every node's cache invalidation at commit
/// (see `Store::insert_usage`).
pub(super) async fn insert(
    pool: &PgPool,
    timeout: Duration,
    tenant_id: &str,
    records: &[UsageRecord],
) -> StoreResult<u64> {
    check_text("tenant_id", tenant_id)?;
    for record in records {
        check_usage_text(record)?;
    }
    // All chunks converted first: a bad counter anywhere fails the batch before any write.
    let chunks = records
        .chunks(USAGE_ROWS_PER_INSERT)
        .map(Columns::of)
        .collect::<StoreResult<Vec<_>>>()?;
    // On any error below the transaction is dropped uncommitted, which rolls it back.
    // Each round trip is bounded on its own: the whole upload may take as long as it needs,
    // but a database that stops answering fails it.
    let mut tx = bounded(timeout, async { Ok(pool.begin().await?) }).await?;
    bounded(timeout, async {
        sqlx::query(ENSURE_TENANT_SQL)
            .bind(tenant_id)
            .bind(time_to_db(Utc::now()))
            .execute(&mut *tx)
            .await?;
        Ok(())
    })
    .await?;
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
            .bind(tenant_id)
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
            .bind(tags);
        bounded(timeout, async {
            insert.execute(&mut *tx).await?;
            Ok(())
        })
        .await?;
    }
    // `Notice::UsageChanged` for every listening node (this one too), delivered only when the
    // transaction commits.
    bounded(timeout, async {
        sqlx::query("SELECT pg_notify('agentwire_usage', $1)")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        Ok(tx.commit().await?)
    })
    .await?;
    // usize → u64 is lossless on every platform Rust supports.
    Ok(records.len() as u64)
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
