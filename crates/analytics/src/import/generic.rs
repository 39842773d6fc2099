//! The generic usage format of ../shared/DESIGN.md: CSV with a header row naming the record's
//! fields, or JSON lines of the same fields.
//!
//! A bad row is reported with its line number; good rows go on to the sink. Only file-level
//! problems (unreadable input, a header without the required columns) fail the import. This module
//! must not touch files or the network (it reads only the `Read` it is given), and must never
//! interpret cell text: `=SUM(A1)` is just a string.

use std::io::BufRead;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use super::{ImportError, Outcome, RowResult, Sink};
#[cfg(test)]
use super::{ImportReport, UsageFormat, import_usage};
use crate::record::UsageRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Timestamp,
    Provider,
    Model,
    InputTokens,
    OutputTokens,
    RequestCount,
    CacheReadInputTokens,
    CacheWriteInputTokens,
    ReasoningTokens,
    LatencyMs,
    TtftMs,
    Status,
    ServiceTier,
    MaxTokens,
    CostUsd,
    UserId,
    Team,
    Project,
    Feature,
    SessionId,
    PromptHash,
    PrefixHash,
    Tags,
}

const FIELDS: [(&str, Field); 23] = [
    ("timestamp", Field::Timestamp),
    ("provider", Field::Provider),
    ("model", Field::Model),
    ("input_tokens", Field::InputTokens),
    ("output_tokens", Field::OutputTokens),
    ("request_count", Field::RequestCount),
    ("cache_read_input_tokens", Field::CacheReadInputTokens),
    ("cache_write_input_tokens", Field::CacheWriteInputTokens),
    ("reasoning_tokens", Field::ReasoningTokens),
    ("latency_ms", Field::LatencyMs),
    ("ttft_ms", Field::TtftMs),
    ("status", Field::Status),
    ("service_tier", Field::ServiceTier),
    ("max_tokens", Field::MaxTokens),
    ("cost_usd", Field::CostUsd),
    ("user_id", Field::UserId),
    ("team", Field::Team),
    ("project", Field::Project),
    ("feature", Field::Feature),
    ("session_id", Field::SessionId),
    ("prompt_hash", Field::PromptHash),
    ("prefix_hash", Field::PrefixHash),
    ("tags", Field::Tags),
];

/// Columns a CSV header must have; `provider` is inferred from the model when absent.
const REQUIRED: [Field; 4] = [
    Field::Timestamp,
    Field::Model,
    Field::InputTokens,
    Field::OutputTokens,
];

impl Field {
    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        FIELDS[self.index()].0
    }

    fn from_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }
}

/// A cell before conversion; CSV gives text, JSON gives typed values.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Text(&'a str),
    Json(&'a Value),
}

/// The non-empty cells of one row, by field.
struct Row<'a> {
    cells: [Option<Raw<'a>>; FIELDS.len()],
}

/// Keeps error messages readable when a cell holds a whole paragraph.
pub(super) fn shown(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

/// JSON values are shown as JSON: strings quoted, numbers bare.
pub(super) fn shown_json(v: &Value) -> String {
    match v {
        Value::String(s) => shown(s),
        other => {
            let text = other.to_string();
            if text.chars().count() <= 60 {
                text
            } else {
                format!("{}…", text.chars().take(60).collect::<String>())
            }
        }
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn parse_whole_text(s: &str) -> Option<u64> {
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    // Spreadsheets and pandas write counts as "1200.0"; accept them when they are whole.
    let f: f64 = s.parse().ok()?;
    whole_from_f64(f)
}

pub(super) fn whole_from_f64(f: f64) -> Option<u64> {
    // 2^64 is exactly representable; anything at or above it does not fit.
    if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0 {
        Some(f as u64)
    } else {
        None
    }
}

/// Unix time in seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude
/// (1e11 seconds is the year 5138, so nothing real is ambiguous).
pub(super) fn from_unix(value: f64) -> Option<DateTime<Utc>> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let secs = if value < 1e11 {
        value
    } else if value < 1e14 {
        value / 1e3
    } else if value < 1e17 {
        value / 1e6
    } else {
        value / 1e9
    };
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos)
}

pub(super) fn from_unix_int(value: u64) -> Option<DateTime<Utc>> {
    // Integers keep full precision, which a round trip through f64 would lose for nanoseconds.
    let (secs, nanos) = if value < 100_000_000_000 {
        (value, 0)
    } else if value < 100_000_000_000_000 {
        (value / 1_000, (value % 1_000) * 1_000_000)
    } else if value < 100_000_000_000_000_000 {
        (value / 1_000_000, (value % 1_000_000) * 1_000)
    } else {
        (value / 1_000_000_000, value % 1_000_000_000)
    };
    DateTime::from_timestamp(i64::try_from(secs).ok()?, u32::try_from(nanos).ok()?)
}

/// RFC 3339, naive `YYYY-MM-DD[ T]HH:MM[:SS[.fff]]` taken as UTC, a bare date, or unix time.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if s.as_bytes().get(10) == Some(&b' ')
        && let (Some(date), Some(time)) = (s.get(..10), s.get(11..))
        && let Ok(dt) = DateTime::parse_from_rfc3339(&format!("{date}T{time}"))
    {
        return Some(dt.with_timezone(&Utc));
    }
    let naive = s
        .strip_suffix(" UTC")
        .or_else(|| s.strip_suffix("UTC"))
        .unwrap_or(s)
        .trim_end();
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(dt.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(naive, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc());
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().ok().and_then(from_unix_int);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return s.parse::<f64>().ok().and_then(from_unix);
    }
    None
}

/// The provider a model name implies, for rows that do not say.
pub fn infer_provider(model: &str) -> Option<&'static str> {
    let m = model.trim().to_ascii_lowercase();
    if let Some((prefix, _)) = m.split_once('/') {
        match prefix {
            "openai" => return Some("openai"),
            "anthropic" => return Some("anthropic"),
            "google" | "gemini" => return Some("google"),
            "together_ai" | "together" => return Some("together_ai"),
            _ => {}
        }
    }
    let base = m.rsplit('/').next().unwrap_or(&m);
    if ["gpt-", "chatgpt", "o1", "o3", "o4", "text-embedding-"]
        .iter()
        .any(|p| base.starts_with(p))
    {
        return Some("openai");
    }
    if m.contains("claude") {
        return Some("anthropic");
    }
    if m.contains("gemini") {
        return Some("google");
    }
    // Open-weight models: attributed to the host the analyses price them at.
    if ["llama", "mistral", "mixtral", "qwen", "deepseek"]
        .iter()
        .any(|p| m.contains(p))
    {
        return Some("together_ai");
    }
    None
}

impl<'a> Row<'a> {
    fn new() -> Self {
        Row {
            cells: [None; FIELDS.len()],
        }
    }

    fn get(&self, f: Field) -> Option<Raw<'a>> {
        self.cells[f.index()]
    }

    fn text(&self, f: Field) -> Result<Option<String>, String> {
        match self.get(f) {
            None => Ok(None),
            Some(Raw::Text(s)) => Ok(Some(s.to_string())),
            Some(Raw::Json(v)) => match v {
                Value::String(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
                Value::Number(n) => Ok(Some(n.to_string())),
                Value::Bool(b) => Ok(Some(b.to_string())),
                Value::Object(map) if f == Field::Tags => {
                    // Tags as an object are flattened into the free-text `k=v;k2=v2` form.
                    let parts: Vec<String> = map
                        .iter()
                        .map(|(k, v)| match v {
                            Value::String(s) => format!("{k}={s}"),
                            other => format!("{k}={other}"),
                        })
                        .collect();
                    Ok(Some(parts.join(";")).filter(|s| !s.is_empty()))
                }
                other => Err(format!(
                    "{}: expected text, found {}",
                    f.name(),
                    kind(other)
                )),
            },
        }
    }

    fn whole(&self, f: Field) -> Result<Option<u64>, String> {
        let bad = |shown: String| format!("{}: {shown} is not a whole number", f.name());
        match self.get(f) {
            None => Ok(None),
            Some(Raw::Text(s)) => parse_whole_text(s).map(Some).ok_or_else(|| bad(shown(s))),
            Some(Raw::Json(v)) => {
                let n = match v {
                    Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(whole_from_f64)),
                    Value::String(s) => parse_whole_text(s.trim()),
                    _ => None,
                };
                n.map(Some).ok_or_else(|| bad(shown_json(v)))
            }
        }
    }

    fn number(&self, f: Field) -> Result<Option<f64>, String> {
        let bad = |shown: String| format!("{}: {shown} is not a number >= 0", f.name());
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        match self.get(f) {
            None => Ok(None),
            Some(Raw::Text(s)) => match s.parse::<f64>() {
                Ok(x) if ok(x) => Ok(Some(x)),
                _ => Err(bad(shown(s))),
            },
            Some(Raw::Json(v)) => {
                let x = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                match x {
                    Some(x) if ok(x) => Ok(Some(x)),
                    _ => Err(bad(shown_json(v))),
                }
            }
        }
    }

    fn timestamp(&self) -> Result<DateTime<Utc>, String> {
        let f = Field::Timestamp;
        let bad = |shown: String| {
            format!(
                "timestamp: {shown} is not a recognised timestamp \
                 (use RFC 3339, YYYY-MM-DD HH:MM:SS in UTC, or unix seconds/milliseconds)"
            )
        };
        match self.get(f) {
            None => Err("timestamp: missing".to_string()),
            Some(Raw::Text(s)) => parse_timestamp(s).ok_or_else(|| bad(shown(s))),
            Some(Raw::Json(v)) => {
                let t = match v {
                    Value::String(s) => parse_timestamp(s),
                    Value::Number(n) => match n.as_u64() {
                        Some(i) => from_unix_int(i),
                        None => n.as_f64().and_then(from_unix),
                    },
                    _ => None,
                };
                t.ok_or_else(|| bad(shown_json(v)))
            }
        }
    }

    fn record(&self) -> Result<UsageRecord, String> {
        let timestamp = self.timestamp()?;
        let model = self
            .text(Field::Model)?
            .ok_or_else(|| "model: missing".to_string())?;
        let required = |f: Field| -> Result<u64, String> {
            self.whole(f)?
                .ok_or_else(|| format!("{}: missing", f.name()))
        };
        let input_tokens = required(Field::InputTokens)?;
        let output_tokens = required(Field::OutputTokens)?;
        let provider = match self.text(Field::Provider)? {
            Some(p) => p,
            None => infer_provider(&model)
                .ok_or_else(|| {
                    format!(
                        "provider: missing, and model {} does not imply one (add a provider column)",
                        shown(&model)
                    )
                })?
                .to_string(),
        };
        let record = UsageRecord {
            timestamp,
            provider,
            model,
            input_tokens,
            output_tokens,
            request_count: self.whole(Field::RequestCount)?.unwrap_or(1),
            cache_read_input_tokens: self.whole(Field::CacheReadInputTokens)?,
            cache_write_input_tokens: self.whole(Field::CacheWriteInputTokens)?,
            reasoning_tokens: self.whole(Field::ReasoningTokens)?,
            latency_ms: self.number(Field::LatencyMs)?,
            ttft_ms: self.number(Field::TtftMs)?,
            status: self.text(Field::Status)?,
            service_tier: self.text(Field::ServiceTier)?,
            max_tokens: self.whole(Field::MaxTokens)?,
            cost_usd: self.number(Field::CostUsd)?,
            user_id: self.text(Field::UserId)?,
            team: self.text(Field::Team)?,
            project: self.text(Field::Project)?,
            feature: self.text(Field::Feature)?,
            session_id: self.text(Field::SessionId)?,
            prompt_hash: self.text(Field::PromptHash)?,
            prefix_hash: self.text(Field::PrefixHash)?,
            tags: self.text(Field::Tags)?,
        };
        record.validate()?;
        Ok(record)
    }
}

/// The generic columns a CSV header must name to be read as the generic format.
pub(super) fn is_generic_header(names: &[String]) -> bool {
    REQUIRED.iter().all(|f| names.iter().any(|n| n == f.name()))
}

/// Maps a generic CSV header; `Err` for duplicate or missing columns.
pub(super) fn generic_columns(
    rec: &csv::ByteRecord,
    header_line: u64,
) -> Result<Vec<Option<Field>>, ImportError> {
    let mut columns: Vec<Option<Field>> = Vec::with_capacity(rec.len());
    for (i, cell) in rec.iter().enumerate() {
        let name =
            std::str::from_utf8(cell).map_err(|_| ImportError::NotUtf8 { line: header_line })?;
        let name = if i == 0 {
            name.trim_start_matches('\u{feff}')
        } else {
            name
        };
        let name = name.trim().to_ascii_lowercase();
        let field = Field::from_name(&name);
        if let Some(f) = field
            && columns.contains(&Some(f))
        {
            return Err(ImportError::DuplicateColumn(name));
        }
        columns.push(field);
    }
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|f| !columns.contains(&Some(**f)))
        .map(|f| f.name().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::MissingColumns(missing));
    }
    Ok(columns)
}

pub(super) fn csv_row(rec: &csv::ByteRecord, columns: &[Option<Field>]) -> RowResult {
    if rec.len() != columns.len() {
        return Err(format!(
            "expected {} fields as in the header, found {}",
            columns.len(),
            rec.len()
        ));
    }
    let mut row = Row::new();
    for (cell, column) in rec.iter().zip(columns) {
        let Some(field) = column else { continue };
        let text = std::str::from_utf8(cell)
            .map_err(|_| format!("{}: the cell is not valid UTF-8", field.name()))?
            .trim();
        if !text.is_empty() {
            row.cells[field.index()] = Some(Raw::Text(text));
        }
    }
    row.record().map(Outcome::Record)
}

/// Reads JSON lines, one object per line, calling `parse` on each non-blank line.
pub(super) fn json_lines<R: BufRead>(
    mut reader: R,
    sink: &mut Sink<'_>,
    mut parse: impl FnMut(&[u8]) -> RowResult,
) -> Result<(), ImportError> {
    let mut buf = Vec::new();
    let mut line: u64 = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| ImportError::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        line += 1;
        let bytes = if line == 1 {
            buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buf)
        } else {
            &buf
        };
        let bytes = bytes.trim_ascii();
        if bytes.is_empty() {
            continue;
        }
        sink.row(line, parse(bytes));
    }
    if sink.rows_read == 0 {
        return Err(ImportError::Empty);
    }
    Ok(())
}

/// Parses one line as a JSON object; the message names what it was instead.
pub(super) fn json_object(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the line is not valid UTF-8".to_string())?;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!("expected a JSON object, found {}", kind(&other))),
    }
}

pub(super) fn json_row(bytes: &[u8]) -> RowResult {
    let map = json_object(bytes)?;
    let mut row = Row::new();
    for (key, v) in &map {
        let Some(field) = Field::from_name(&key.trim().to_ascii_lowercase()) else {
            continue;
        };
        let empty = match v {
            Value::Null => true,
            Value::String(s) => s.trim().is_empty(),
            _ => false,
        };
        if !empty {
            row.cells[field.index()] = Some(Raw::Json(v));
        }
    }
    row.record().map(Outcome::Record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{SecondsFormat, TimeZone};
    use proptest::prelude::*;
    use std::io::Read;

    fn csv(text: &str) -> Result<ImportReport, ImportError> {
        import_usage(text.as_bytes(), Some(UsageFormat::Csv))
    }

    #[test]
    fn format_detection_and_names() {
        assert_eq!(
            UsageFormat::detect(b"  \n{\"a\":1}"),
            UsageFormat::JsonLines
        );
        assert_eq!(
            UsageFormat::detect(b"\xEF\xBB\xBF{"),
            UsageFormat::JsonLines
        );
        assert_eq!(UsageFormat::detect(b"timestamp,model"), UsageFormat::Csv);
        assert_eq!(UsageFormat::detect(b""), UsageFormat::Csv);
        assert_eq!(UsageFormat::from_name("CSV"), Some(UsageFormat::Csv));
        assert_eq!(
            UsageFormat::from_name(".ndjson"),
            Some(UsageFormat::JsonLines)
        );
        assert_eq!(UsageFormat::from_name("json"), Some(UsageFormat::JsonLines));
        assert_eq!(
            UsageFormat::from_name("jsonl"),
            Some(UsageFormat::JsonLines)
        );
        assert_eq!(UsageFormat::from_name("xlsx"), None);
    }

    #[test]
    fn timestamps_in_all_accepted_forms() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 10, 30, 5).unwrap();
        for s in [
            "2026-11-25T10:30:05Z",
            "2026-11-25T11:30:05+01:00",
            "2026-11-25 10:30:05+00:00",
            "2026-11-25 10:30:05",
            "2026-11-25T10:30:05",
            "2026-11-25 10:30:05 UTC",
            "1795602605",
            "1795602605000",
        ] {
            assert_eq!(parse_timestamp(s), Some(t), "{s}");
        }
        assert_eq!(
            parse_timestamp("2026-11-25 10:30:05.250"),
            Some(t + chrono::Duration::milliseconds(250))
        );
        assert_eq!(
            parse_timestamp("1795602605.5"),
            Some(t + chrono::Duration::milliseconds(500))
        );
        assert_eq!(
            parse_timestamp("2026-11-25"),
            Some(Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap())
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "-5",
            "12:00",
            "2026-11-25Tnope",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn provider_inference() {
        assert_eq!(infer_provider("gpt-4o"), Some("openai"));
        assert_eq!(infer_provider("o3-mini"), Some("openai"));
        assert_eq!(infer_provider("o1"), Some("openai"));
        assert_eq!(infer_provider("openai/gpt-4o"), Some("openai"));
        assert_eq!(
            infer_provider("claude-sonnet-4-20250514"),
            Some("anthropic")
        );
        assert_eq!(infer_provider("Gemini-2.5-Pro"), Some("google"));
        assert_eq!(
            infer_provider("meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            Some("together_ai")
        );
        assert_eq!(infer_provider("deepseek-v3"), Some("together_ai"));
        assert_eq!(infer_provider("Qwen2.5-72B"), Some("together_ai"));
        assert_eq!(infer_provider("my-finetune"), None);
    }

    #[test]
    fn csv_keeps_good_rows_and_reports_bad_ones() {
        let text = "\u{feff} Timestamp ,MODEL,input_tokens,output_tokens,team,unknown_col\n\
                    2026-11-25 10:00:00,gpt-4o,100,10,search,x\n\
                    2026-11-25 10:00:00,gpt-4o,abc,10,search,x\n\
                    ,,, ,,\n\
                    2026-11-25 11:00:00,claude-sonnet-4,200,20,,x\n\
                    2026-11-25 11:00:00,my-model,1,1,,x\n\
                    2026-11-25 11:00:00,gpt-4o,1,1\n\
                    notatime,gpt-4o,1,1,,x\n";
        let report = csv(text).unwrap();
        assert_eq!(report.rows_read, 6);
        assert_eq!(report.records.len(), 2);
        assert_eq!(report.records[0].provider, "openai");
        assert_eq!(report.records[0].team.as_deref(), Some("search"));
        assert_eq!(report.records[1].provider, "anthropic");
        assert_eq!(report.records[1].team, None);
        assert_eq!(report.records[1].request_count, 1);
        let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 6, 7, 8]);
        assert_eq!(
            report.errors[0].to_string(),
            "line 3: input_tokens: \"abc\" is not a whole number"
        );
        assert!(report.errors[1].message.contains("provider"));
        assert!(report.errors[2].message.contains("expected 6 fields"));
        assert!(
            report.errors[3]
                .message
                .starts_with("timestamp: \"notatime\"")
        );
    }

    #[test]
    fn csv_line_numbers_follow_multiline_cells() {
        let text = "timestamp,model,input_tokens,output_tokens,tags\n\
                    2026-11-25T00:00:00Z,gpt-4o,1,1,\"a\nb\"\n\
                    2026-11-25T00:00:00Z,gpt-4o,-1,1,x\n";
        let report = csv(text).unwrap();
        assert_eq!(report.records[0].tags.as_deref(), Some("a\nb"));
        assert_eq!(report.errors[0].line, 4);
    }

    #[test]
    fn csv_file_level_errors() {
        assert_eq!(csv(""), Err(ImportError::Empty));
        assert_eq!(csv("  \n"), Err(ImportError::Empty));
        assert_eq!(
            csv("timestamp,model,output_tokens\n"),
            Err(ImportError::MissingColumns(vec![
                "input_tokens".to_string()
            ]))
        );
        assert_eq!(
            csv("timestamp,model,model,input_tokens,output_tokens\n"),
            Err(ImportError::DuplicateColumn("model".to_string()))
        );
        let bad_header = b"time\xff,model\n".to_vec();
        assert_eq!(
            import_usage(&bad_header[..], Some(UsageFormat::Csv)),
            Err(ImportError::NotUtf8 { line: 1 })
        );
        // A header with no rows is a valid, empty import.
        let report = csv("timestamp,model,input_tokens,output_tokens\n").unwrap();
        assert_eq!(report.rows_read, 0);
    }

    #[test]
    fn csv_invalid_utf8_is_a_row_error() {
        let mut bytes = b"timestamp,model,input_tokens,output_tokens,team\n".to_vec();
        bytes.extend_from_slice(b"2026-11-25T00:00:00Z,gpt-4o,1,1,t\xffm\n");
        bytes.extend_from_slice(b"2026-11-25T00:00:00Z,gpt-4o,1,1,ok\n");
        let report = import_usage(&bytes[..], None).unwrap();
        assert_eq!(report.records.len(), 1);
        assert_eq!(report.errors[0].line, 2);
        assert!(report.errors[0].message.contains("UTF-8"));
    }

    #[test]
    fn formula_like_text_is_kept_verbatim() {
        let text = "timestamp,model,input_tokens,output_tokens,team,feature,user_id,tags\n\
                    2026-11-25T00:00:00Z,gpt-4o,1,1,=SUM(A1:A9),+cmd|' /C calc'!A0,-1,@import\n";
        let r = &csv(text).unwrap().records[0];
        assert_eq!(r.team.as_deref(), Some("=SUM(A1:A9)"));
        assert_eq!(r.feature.as_deref(), Some("+cmd|' /C calc'!A0"));
        assert_eq!(r.user_id.as_deref(), Some("-1"));
        assert_eq!(r.tags.as_deref(), Some("@import"));
    }

    #[test]
    fn csv_accepts_whole_floats_and_unix_times() {
        let text = "timestamp,provider,model,input_tokens,output_tokens,request_count,cost_usd,latency_ms\n\
                    1795602605000,acme,custom-model,1200.0,3,2,0.25,812.5\n";
        let r = &csv(text).unwrap().records[0];
        assert_eq!(r.input_tokens, 1200);
        assert_eq!(r.request_count, 2);
        assert_eq!(r.cost_usd, Some(0.25));
        assert_eq!(r.latency_ms, Some(812.5));
        assert_eq!(r.provider, "acme");
        assert_eq!(
            r.timestamp,
            Utc.with_ymd_and_hms(2026, 11, 25, 10, 30, 5).unwrap()
        );
    }

    #[test]
    fn json_lines_rows_and_errors() {
        let text = "{\"timestamp\":\"2026-11-25T10:00:00Z\",\"model\":\"gpt-4o\",\"input_tokens\":10,\"output_tokens\":2,\"tags\":{\"env\":\"prod\",\"k\":1}}\n\
                    \n\
                    [1,2]\n\
                    {\"timestamp\":1795602605,\"Model\":\"claude-3-5-haiku\",\"input_tokens\":\"7\",\"output_tokens\":1,\"team\":null,\"user_id\":42}\n\
                    {not json\n\
                    {\"timestamp\":\"2026-11-25T10:00:00Z\",\"model\":\"gpt-4o\",\"input_tokens\":1.5,\"output_tokens\":2}\n\
                    {\"timestamp\":\"2026-11-25T10:00:00Z\",\"model\":\"gpt-4o\",\"input_tokens\":5,\"output_tokens\":2,\"request_count\":0}\n";
        let report = import_usage(text.as_bytes(), None).unwrap();
        assert_eq!(report.rows_read, 6);
        assert_eq!(report.records.len(), 2);
        assert_eq!(report.records[0].tags.as_deref(), Some("env=prod;k=1"));
        assert_eq!(report.records[1].provider, "anthropic");
        assert_eq!(report.records[1].input_tokens, 7);
        assert_eq!(report.records[1].user_id.as_deref(), Some("42"));
        let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 5, 6, 7]);
        assert!(report.errors[0].message.contains("found an array"));
        assert!(report.errors[1].message.starts_with("invalid JSON"));
        assert_eq!(
            report.errors[2].message,
            "input_tokens: 1.5 is not a whole number"
        );
        assert!(report.errors[3].message.starts_with("request_count"));
        assert_eq!(
            import_usage(&b"\n\n"[..], Some(UsageFormat::JsonLines)),
            Err(ImportError::Empty)
        );
    }

    struct FailingReader;
    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn io_errors_are_reported() {
        assert!(matches!(
            import_usage(FailingReader, None),
            Err(ImportError::Io(m)) if m.contains("disk on fire")
        ));
    }

    // ---- property tests ----

    fn text_strategy() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[=+@a-zA-Z0-9_;,\"'. \\-]{1,16}")
            .prop_map(|s| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
    }

    fn float_strategy() -> impl Strategy<Value = Option<f64>> {
        // Quarters are exact in binary, so both parsers must return the very same value.
        proptest::option::of((0u32..40_000_000).prop_map(|k| f64::from(k) / 4.0))
    }

    prop_compose! {
        fn arb_record()(
            secs in 0i64..4_000_000_000,
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
            provider in "[a-z][a-z0-9_]{0,10}",
            model in "[a-zA-Z][a-zA-Z0-9.:/\\-]{0,20}",
            input in 0u64..2_000_000_000,
            output in 0u64..100_000_000,
            request_count in 1u64..100_000,
            cache_pct in proptest::option::of(0u64..=50),
            write_pct in proptest::option::of(0u64..=50),
            reasoning_pct in proptest::option::of(0u64..=100),
            latency in float_strategy(),
            ttft in float_strategy(),
            cost in float_strategy(),
            max_tokens in proptest::option::of(any::<u32>()),
            texts in proptest::collection::vec(text_strategy(), 11),
        ) -> UsageRecord {
            let mut r = UsageRecord::new(
                DateTime::from_timestamp(secs, nanos).unwrap(), provider, model, input, output);
            r.request_count = request_count;
            r.cache_read_input_tokens = cache_pct.map(|p| input / 100 * p);
            r.cache_write_input_tokens = write_pct.map(|p| input / 100 * p);
            r.reasoning_tokens = reasoning_pct.map(|p| output / 100 * p);
            r.latency_ms = latency;
            r.ttft_ms = ttft;
            r.cost_usd = cost;
            r.max_tokens = max_tokens.map(u64::from);
            r.status = texts[0].clone();
            r.service_tier = texts[1].clone();
            r.user_id = texts[2].clone();
            r.team = texts[3].clone();
            r.project = texts[4].clone();
            r.feature = texts[5].clone();
            r.session_id = texts[6].clone();
            r.prompt_hash = texts[7].clone();
            r.prefix_hash = texts[8].clone();
            r.tags = texts[9].clone();
            r
        }
    }

    fn to_csv(records: &[UsageRecord]) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(FIELDS.iter().map(|(n, _)| *n)).unwrap();
        let opt = |v: Option<String>| v.unwrap_or_default();
        for r in records {
            w.write_record([
                r.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                r.provider.clone(),
                r.model.clone(),
                r.input_tokens.to_string(),
                r.output_tokens.to_string(),
                r.request_count.to_string(),
                opt(r.cache_read_input_tokens.map(|v| v.to_string())),
                opt(r.cache_write_input_tokens.map(|v| v.to_string())),
                opt(r.reasoning_tokens.map(|v| v.to_string())),
                opt(r.latency_ms.map(|v| v.to_string())),
                opt(r.ttft_ms.map(|v| v.to_string())),
                opt(r.status.clone()),
                opt(r.service_tier.clone()),
                opt(r.max_tokens.map(|v| v.to_string())),
                opt(r.cost_usd.map(|v| v.to_string())),
                opt(r.user_id.clone()),
                opt(r.team.clone()),
                opt(r.project.clone()),
                opt(r.feature.clone()),
                opt(r.session_id.clone()),
                opt(r.prompt_hash.clone()),
                opt(r.prefix_hash.clone()),
                opt(r.tags.clone()),
            ])
            .unwrap();
        }
        w.into_inner().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn csv_round_trips(records in proptest::collection::vec(arb_record(), 0..20)) {
            let report = import_usage(&to_csv(&records)[..], None).unwrap();
            prop_assert!(report.errors.is_empty(), "{:?}", report.errors);
            prop_assert_eq!(report.rows_read, records.len() as u64);
            prop_assert_eq!(report.records, records);
        }

        #[test]
        fn json_lines_round_trip(records in proptest::collection::vec(arb_record(), 1..20)) {
            let mut text = String::new();
            for r in &records {
                text.push_str(&serde_json::to_string(r).unwrap());
                text.push_str("\r\n\n");
            }
            let report = import_usage(text.as_bytes(), None).unwrap();
            prop_assert!(report.errors.is_empty(), "{:?}", report.errors);
            prop_assert_eq!(report.records, records);
        }

        #[test]
        fn a_bad_row_costs_only_itself(
            records in proptest::collection::vec(arb_record(), 1..10),
            at in any::<usize>(),
            junk in "[a-z ]{1,8}",
        ) {
            let at = at % records.len();
            let mut text = String::from("timestamp,provider,model,input_tokens,output_tokens\n");
            let mut expected = Vec::new();
            for (i, r) in records.iter().enumerate() {
                let input = if i == at { format!("x{junk}") } else { r.input_tokens.to_string() };
                text.push_str(&format!(
                    "{},{},{},{},{}\n",
                    r.timestamp.to_rfc3339(), r.provider, r.model, input, r.output_tokens
                ));
                if i != at {
                    expected.push(UsageRecord::new(
                        r.timestamp, r.provider.clone(), r.model.clone(), r.input_tokens, r.output_tokens,
                    ));
                }
            }
            let report = import_usage(text.as_bytes(), None).unwrap();
            prop_assert_eq!(report.errors.len(), 1);
            prop_assert_eq!(report.errors[0].line, at as u64 + 2);
            prop_assert!(report.errors[0].message.starts_with("input_tokens: \"x"));
            prop_assert_eq!(report.records, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            // Every importer, asked for or detected, on the same bytes.
            let formats = std::iter::once(None).chain(UsageFormat::ALL.iter().copied().map(Some));
            for format in formats {
                let options = super::super::ImportOptions { format, model: Some("gpt-4o".into()) };
                if let Ok(report) = super::super::import_usage_with(&bytes[..], &options) {
                    prop_assert_eq!(
                        report.rows_read,
                        (report.records.len() + report.errors.len() + report.skipped.len()) as u64
                    );
                    for r in &report.records {
                        prop_assert_eq!(r.validate(), Ok(()));
                    }
                }
                let _ = super::super::import_any(&bytes[..], &options);
            }
            if let Ok(s) = super::super::import_series(&bytes[..]) {
                prop_assert_eq!(s.rows_read, (s.series.points.len() + s.errors.len()) as u64);
            }
            if let Ok(f) = super::super::import_focus(&bytes[..]) {
                prop_assert_eq!(f.rows_read, (f.rows.len() + f.errors.len()) as u64);
            }
        }

        #[test]
        fn dialect_shaped_noise_never_panics(
            header in prop_oneof![
                Just("startTime,model,prompt_tokens,completion_tokens,spend,metadata"),
                Just("request_created_at,model,prompt_tokens,completion_tokens,cost,request_properties"),
                Just("type,startTime,model,promptTokens,completionTokens,usageDetails"),
                Just("TIMESTAMP,ContextTokens,GeneratedTokens"),
                Just("timestamp,value"),
                Just("ChargePeriodStart,BilledCost,EffectiveCost,Tags"),
            ],
            rows in proptest::collection::vec("[-0-9a-zA-Z:{}\\[\\]\",. ]{0,40}", 0..6),
        ) {
            let text = format!("{header}\n{}", rows.join("\n"));
            let options = super::super::ImportOptions { format: None, model: Some("gpt-4o".into()) };
            if let Ok(super::super::Imported::Usage(report)) = super::super::import_any(text.as_bytes(), &options) {
                prop_assert_eq!(
                    report.rows_read,
                    (report.records.len() + report.errors.len() + report.skipped.len()) as u64
                );
                for r in &report.records {
                    prop_assert_eq!(r.validate(), Ok(()));
                }
            }
        }

        #[test]
        fn mangled_csv_never_panics(
            records in proptest::collection::vec(arb_record(), 1..5),
            cut in any::<usize>(),
            noise in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let mut bytes = to_csv(&records);
            let cut = cut % bytes.len();
            bytes.splice(cut..cut, noise);
            if let Ok(report) = import_usage(&bytes[..], None) {
                prop_assert_eq!(
                    report.rows_read,
                    (report.records.len() + report.errors.len()) as u64
                );
            }
        }
    }
}
