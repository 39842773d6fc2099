//! Conversions between Rust values and what the databases store, shared by both backends.
//!
//! Database integers are signed 64-bit, so every `u64` goes through here and is refused, never
//! wrapped, when it does not fit; timestamps become unix milliseconds (BIGINT on PostgreSQL
//! too, so both backends keep the same precision and range); text is checked for NUL, which
//! PostgreSQL cannot store. Reading back refuses values no writer of ours could have produced
//! ([`StoreError::Corrupt`]). No SQL here.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{StoreError, StoreResult};

/// `u64` → stored integer; `field` names the value in the error.
pub(crate) fn u64_to_db(field: &'static str, value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// Optional `u64` → stored integer or NULL.
pub(crate) fn opt_u64_to_db(field: &'static str, value: Option<u64>) -> StoreResult<Option<i64>> {
    value.map(|v| u64_to_db(field, v)).transpose()
}

/// Stored integer → `u64`; a negative value means the row was not written by us.
pub(crate) fn db_to_u64(field: &'static str, value: i64) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{field} is negative: {value}")))
}

/// Stored integer or NULL → optional `u64`.
pub(crate) fn db_to_opt_u64(field: &'static str, value: Option<i64>) -> StoreResult<Option<u64>> {
    value.map(|v| db_to_u64(field, v)).transpose()
}

/// Timestamp → unix milliseconds. Every `DateTime<Utc>` chrono can represent fits in an `i64`
/// of milliseconds, so this cannot fail; sub-millisecond precision is dropped.
pub(crate) fn time_to_db(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// Unix milliseconds → timestamp.
pub(crate) fn db_to_time(field: &'static str, millis: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StoreError::Corrupt(format!("{field} is out of range: {millis}")))
}

/// Optional unix milliseconds → optional timestamp.
pub(crate) fn db_to_opt_time(
    field: &'static str,
    millis: Option<i64>,
) -> StoreResult<Option<DateTime<Utc>>> {
    millis.map(|m| db_to_time(field, m)).transpose()
}

/// Refuses text the database cannot store (NUL), naming the field.
pub(crate) fn check_text(field: &'static str, text: &str) -> StoreResult<()> {
    // Every event's payload is scanned (~40 KB a run): memchr's vectorised search, several
    // times faster than the slice's own.
    if memchr::memchr(0, text.as_bytes()).is_some() {
        return Err(StoreError::NulInText { field });
    }
    Ok(())
}

/// Optional text, as [`check_text`].
pub(crate) fn check_opt_text(field: &'static str, text: Option<&str>) -> StoreResult<()> {
    text.map_or(Ok(()), |text| check_text(field, text))
}

/// Refuses a usage record the database cannot hold as it is: NUL in a text field, or a counter
/// above `i64::MAX`. The same errors writing it would give, found before anything is written.
pub(crate) fn check_usage_record(r: &agentwire_analytics::UsageRecord) -> StoreResult<()> {
    check_usage_text(r)?;
    u64_to_db("input_tokens", r.input_tokens)?;
    u64_to_db("output_tokens", r.output_tokens)?;
    u64_to_db("request_count", r.request_count)?;
    for (field, value) in [
        ("cache_read_input_tokens", r.cache_read_input_tokens),
        ("cache_write_input_tokens", r.cache_write_input_tokens),
        ("reasoning_tokens", r.reasoning_tokens),
        ("max_tokens", r.max_tokens),
    ] {
        opt_u64_to_db(field, value)?;
    }
    Ok(())
}

/// Refuses a usage record with NUL in any of its text fields.
pub(crate) fn check_usage_text(r: &agentwire_analytics::UsageRecord) -> StoreResult<()> {
    check_text("provider", &r.provider)?;
    check_text("model", &r.model)?;
    for (field, value) in [
        ("status", &r.status),
        ("service_tier", &r.service_tier),
        ("user_id", &r.user_id),
        ("team", &r.team),
        ("project", &r.project),
        ("feature", &r.feature),
        ("session_id", &r.session_id),
        ("prompt_hash", &r.prompt_hash),
        ("prefix_hash", &r.prefix_hash),
        ("tags", &r.tags),
    ] {
        check_opt_text(field, value.as_deref())?;
    }
    Ok(())
}

/// A NaN float is stored as NULL on both backends (SQLite does so by itself; PostgreSQL would
/// keep the NaN), so reads agree.
pub(crate) fn float_to_db(value: Option<f64>) -> Option<f64> {
    value.filter(|v| !v.is_nan())
}

/// A lease length in milliseconds, saturating (a lease of centuries is as good as forever).
pub(crate) fn lease_to_db(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64_round_trips_up_to_i64_max_and_refuses_beyond() {
        assert_eq!(u64_to_db("x", 0).unwrap(), 0);
        let max = u64::try_from(i64::MAX).unwrap();
        assert_eq!(u64_to_db("x", max).unwrap(), i64::MAX);
        assert!(matches!(
            u64_to_db("x", max + 1),
            Err(StoreError::OutOfRange { field: "x", value }) if value == max + 1
        ));
        assert!(matches!(
            opt_u64_to_db("x", Some(u64::MAX)),
            Err(StoreError::OutOfRange { .. })
        ));
        assert_eq!(opt_u64_to_db("x", None).unwrap(), None);
        assert_eq!(db_to_u64("x", i64::MAX).unwrap(), max);
        assert!(matches!(db_to_u64("x", -1), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn extreme_timestamps_fit_in_milliseconds() {
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            let ms = time_to_db(t);
            let back = db_to_time("t", ms).unwrap();
            assert_eq!(back.timestamp_millis(), ms);
        }
        assert!(matches!(
            db_to_time("t", i64::MAX),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn nul_is_refused_and_named() {
        assert!(check_text("title", "fine \t\n ✓").is_ok());
        assert!(matches!(
            check_text("title", "a\0b"),
            Err(StoreError::NulInText { field: "title" })
        ));
        // Wherever it is in a text long enough for the vectorised search's every path.
        let long = "x".repeat(100_000);
        assert!(check_text("payload", &long).is_ok());
        for at in [0, 1, 31, 32, 63, 64, 50_000, 99_999] {
            let mut bytes = long.clone().into_bytes();
            bytes[at] = 0;
            let text = String::from_utf8(bytes).unwrap();
            assert!(check_text("payload", &text).is_err(), "NUL at {at}");
        }
        assert!(check_opt_text("x", None).is_ok());
        assert_eq!(float_to_db(Some(f64::NAN)), None);
        assert_eq!(float_to_db(Some(1.5)), Some(1.5));
        assert_eq!(lease_to_db(Duration::from_secs(10)), 10_000);
        assert_eq!(lease_to_db(Duration::MAX), i64::MAX);
    }
}
