//! Timestamps on the wire.
//!
//! Server frames always carry RFC 3339 UTC with millisecond precision (`2026-11-26T18:04:05.123Z`).
//! Clients are allowed to be sloppier: a naive timestamp such as `2025-09-05T17:42:36.123456`
//! (what Python's `datetime.isoformat()` prints) is read as UTC.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// The current time, truncated to whole milliseconds so that it round-trips through the wire form.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// Formats a timestamp the way every server frame carries it.
pub fn format(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp with any offset, or a naive one taken as UTC.
///
/// # Errors
/// Returns `None` when the text is neither.
pub fn parse_lenient(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(ts) = DateTime::parse_from_rfc3339(text) {
        return Some(ts.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(text, fmt).ok())
        .map(|naive| naive.and_utc())
}

/// Serde adapter for the server's timestamp format; reading accepts the lenient forms too.
pub mod wire {
    use super::*;

    pub fn serialize<S: Serializer>(ts: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(ts))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse_lenient(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 timestamp: {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_milliseconds() {
        let ts = parse_lenient("2026-11-26T18:04:05.123456Z").unwrap();
        assert_eq!(format(&ts), "2026-11-26T18:04:05.123Z");
    }

    #[test]
    fn accepts_naive_and_offset_forms() {
        let naive = parse_lenient("2025-09-05T17:42:36.123456").unwrap();
        assert_eq!(format(&naive), "2025-09-05T17:42:36.123Z");
        let offset = parse_lenient("2025-09-05T19:42:36+02:00").unwrap();
        assert_eq!(format(&offset), "2025-09-05T17:42:36.000Z");
        assert!(parse_lenient("yesterday").is_none());
    }

    #[test]
    fn now_round_trips() {
        let ts = now();
        assert_eq!(parse_lenient(&format(&ts)), Some(ts));
    }
}
