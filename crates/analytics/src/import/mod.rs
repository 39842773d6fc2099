//! Usage importers: every supported file layout parsed into `UsageRecord`s, row by row.
//!
//! Layouts (`UsageFormat`): the generic record of ../shared/DESIGN.md as CSV or JSON lines;
//! LiteLLM spend logs, Helicone request exports and Langfuse observation exports (CSV or JSON
//! lines); the Azure LLM inference trace and the Mooncake trace (priced with a model the caller
//! names); a plain metric series (`timestamp,value`); and FOCUS 1.x cloud billing. The last two
//! are not LLM usage: they are read by [`import_series`] and [`import_focus`] into their own types
//! for the anomaly and forecast analyses, and the usage entry points refuse them with a message
//! saying so.
//!
//! Detection: a named dialect (`litellm`, `azure`, ...) is used as asked. Otherwise the first
//! non-blank line decides: a JSON object or a CSV header, and within it the columns or keys the
//! dialect is known by. `csv` and `jsonl` name the container only: a CSV header that names the
//! generic columns is the generic format, one that names another dialect's columns is that dialect.
//!
//! Streaming: [`import_each`] hands each record to a callback as it is parsed and keeps at most
//! [`MAX_KEPT_ERRORS`] row errors, so its memory does not grow with the file. [`import_usage`]
//! collects everything for callers that store a file whole or not at all.
//!
//! Every data row is either imported, reported as an error (line number and reason), or reported
//! as skipped (a row that is valid but carries no model usage, such as a Langfuse span). This module
//! must not read files or the network itself, and must not price anything.

mod dialects;
mod flat;
mod focus;
mod generic;
mod series;
mod traces;

use std::fmt;
use std::io::{BufRead, BufReader, Cursor, ErrorKind, Read};

use serde::Serialize;

use crate::record::UsageRecord;

pub use focus::{FocusImport, FocusRow, import_focus};
pub use generic::{infer_provider, parse_timestamp};
pub use series::{MetricSeries, SeriesImport, import_series};
pub use traces::{MOONCAKE_BLOCK_TOKENS, hash_ids};

/// Row errors [`import_each`] keeps; the rest are only counted.
pub const MAX_KEPT_ERRORS: usize = 1_000;

/// The file layouts the importers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageFormat {
    /// Generic usage records as CSV with a header row.
    Csv,
    /// Generic usage records as JSON lines.
    JsonLines,
    /// LiteLLM spend logs (`LiteLLM_SpendLogs`), CSV or JSON lines.
    LiteLlm,
    /// Helicone request exports, CSV or JSON lines.
    Helicone,
    /// Langfuse observation exports, CSV or JSON lines.
    Langfuse,
    /// Azure LLM inference trace: `TIMESTAMP,ContextTokens,GeneratedTokens`; needs a model.
    Azure,
    /// Mooncake trace: JSON lines of `timestamp` (ms), `input_length`, `output_length`,
    /// `hash_ids`; needs a model.
    Mooncake,
    /// A metric series: CSV `timestamp,value`.
    Series,
    /// FOCUS 1.x cloud billing CSV.
    Focus,
}

impl UsageFormat {
    pub const ALL: [UsageFormat; 9] = [
        UsageFormat::Csv,
        UsageFormat::JsonLines,
        UsageFormat::LiteLlm,
        UsageFormat::Helicone,
        UsageFormat::Langfuse,
        UsageFormat::Azure,
        UsageFormat::Mooncake,
        UsageFormat::Series,
        UsageFormat::Focus,
    ];

    /// Guesses the container from the first bytes: JSON lines start with `{`, anything else is
    /// taken as CSV. The dialect inside is decided by the importer from the header or first object.
    pub fn detect(head: &[u8]) -> UsageFormat {
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        match head.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => UsageFormat::JsonLines,
            _ => UsageFormat::Csv,
        }
    }

    /// `csv`, `jsonl` (`json`, `ndjson`), `litellm`, `helicone`, `langfuse`, `azure`,
    /// `mooncake`, `series`, `focus` (case-insensitive, a leading dot allowed).
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s.strip_prefix('.').unwrap_or(s).to_ascii_lowercase();
        match s.as_str() {
            "csv" => Some(UsageFormat::Csv),
            "jsonl" | "json" | "ndjson" => Some(UsageFormat::JsonLines),
            "litellm" => Some(UsageFormat::LiteLlm),
            "helicone" => Some(UsageFormat::Helicone),
            "langfuse" => Some(UsageFormat::Langfuse),
            "azure" => Some(UsageFormat::Azure),
            "mooncake" => Some(UsageFormat::Mooncake),
            "series" => Some(UsageFormat::Series),
            "focus" => Some(UsageFormat::Focus),
            _ => None,
        }
    }

    /// The name `from_name` accepts.
    pub fn name(self) -> &'static str {
        match self {
            UsageFormat::Csv => "csv",
            UsageFormat::JsonLines => "jsonl",
            UsageFormat::LiteLlm => "litellm",
            UsageFormat::Helicone => "helicone",
            UsageFormat::Langfuse => "langfuse",
            UsageFormat::Azure => "azure",
            UsageFormat::Mooncake => "mooncake",
            UsageFormat::Series => "series",
            UsageFormat::Focus => "focus",
        }
    }

    /// Every accepted name, for error messages.
    pub fn names() -> String {
        UsageFormat::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// False for the layouts that are not LLM usage (a metric series, cloud billing).
    pub fn holds_usage(self) -> bool {
        !matches!(self, UsageFormat::Series | UsageFormat::Focus)
    }

    /// True for the traces that carry token counts but no model, so the caller must name one.
    pub fn needs_model(self) -> bool {
        matches!(self, UsageFormat::Azure | UsageFormat::Mooncake)
    }
}

impl fmt::Display for UsageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A row that was not imported and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line in the input where the row starts (a CSV header is line 1).
    pub line: u64,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What an import produced: the good records, the rejected rows, and how many rows were seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport {
    /// The layout the file was read as.
    pub format: UsageFormat,
    pub records: Vec<UsageRecord>,
    pub errors: Vec<RowError>,
    /// Valid rows that carry no model usage (e.g. Langfuse spans), with the reason.
    pub skipped: Vec<RowError>,
    /// Data rows read (the CSV header and blank lines are not rows);
    /// always `records.len() + errors.len() + skipped.len()`.
    pub rows_read: u64,
}

/// What a streaming import saw; the records went to the callback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportStats {
    pub format: UsageFormat,
    pub rows_read: u64,
    pub records: u64,
    pub error_count: u64,
    /// The first [`MAX_KEPT_ERRORS`] row errors.
    pub errors: Vec<RowError>,
    pub skipped_count: u64,
    pub skipped: Vec<RowError>,
}

/// A problem with the input as a whole; no records are returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("could not read the input: {0}")]
    Io(String),
    #[error("line {line} is not valid UTF-8")]
    NotUtf8 { line: u64 },
    #[error("missing required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    #[error("column {0:?} appears more than once in the header")]
    DuplicateColumn(String),
    #[error("the input is empty")]
    Empty,
    #[error(
        "a {0} file holds no LLM usage records to store; analyse it with `agentwire analyze FILE --format {0}`"
    )]
    NotUsage(UsageFormat),
    #[error(
        "the {0} trace has token counts but no model; name the model to price it with (`--model gpt-4o`, or `?model=` on POST /api/usage)"
    )]
    ModelRequired(UsageFormat),
    #[error(
        "model {model:?} does not imply a provider; name a model of the price table, e.g. gpt-4o or claude-sonnet-4"
    )]
    UnknownProvider { model: String },
}

/// How to read a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The layout; `None` detects it.
    pub format: Option<UsageFormat>,
    /// The model that served a trace without a model column (Azure, Mooncake).
    pub model: Option<String>,
}

/// One data row's fate.
#[derive(Debug)]
// Rows are handed on one at a time, so boxing the common case would cost more than it saves.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outcome {
    Record(UsageRecord),
    /// Valid, but not model usage; the reason says what it is.
    Skip(String),
}

pub(crate) type RowResult = Result<Outcome, String>;

/// Where parsed rows go: records to the caller's callback, errors kept up to a bound.
pub(crate) struct Sink<'a> {
    on_record: &'a mut dyn FnMut(UsageRecord),
    keep: usize,
    pub rows_read: u64,
    pub records: u64,
    pub errors: Vec<RowError>,
    pub error_count: u64,
    pub skipped: Vec<RowError>,
    pub skipped_count: u64,
}

impl<'a> Sink<'a> {
    fn new(on_record: &'a mut dyn FnMut(UsageRecord), keep: usize) -> Self {
        Sink {
            on_record,
            keep,
            rows_read: 0,
            records: 0,
            errors: Vec::new(),
            error_count: 0,
            skipped: Vec::new(),
            skipped_count: 0,
        }
    }

    pub fn row(&mut self, line: u64, result: RowResult) {
        self.rows_read += 1;
        match result {
            Ok(Outcome::Record(r)) => {
                self.records += 1;
                (self.on_record)(r);
            }
            Ok(Outcome::Skip(message)) => {
                self.skipped_count += 1;
                if self.skipped.len() < self.keep {
                    self.skipped.push(RowError { line, message });
                }
            }
            Err(message) => {
                self.error_count += 1;
                if self.errors.len() < self.keep {
                    self.errors.push(RowError { line, message });
                }
            }
        }
    }
}

/// Imports usage records; `format` None means detect. Collects every record and row error.
///
/// # Errors
/// File-level problems only ([`ImportError`]); bad rows are in the report.
pub fn import_usage<R: Read>(
    reader: R,
    format: Option<UsageFormat>,
) -> Result<ImportReport, ImportError> {
    import_usage_with(
        reader,
        &ImportOptions {
            format,
            model: None,
        },
    )
}

/// [`import_usage`] with all options (a model for traces without one).
///
/// # Errors
/// File-level problems only; bad rows are in the report.
pub fn import_usage_with<R: Read>(
    reader: R,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let mut records = Vec::new();
    let mut push = |r: UsageRecord| records.push(r);
    let mut sink = Sink::new(&mut push, usize::MAX);
    let format = run(reader, options, &mut sink)?;
    let (errors, skipped, rows_read) = (sink.errors, sink.skipped, sink.rows_read);
    Ok(ImportReport {
        format,
        records,
        errors,
        skipped,
        rows_read,
    })
}

/// Streams usage records to `on_record` as they are parsed; memory stays flat whatever the file's
/// size. A caller that must store all or nothing checks `error_count` before committing.
///
/// # Errors
/// File-level problems only; bad rows are counted in the stats.
pub fn import_each<R: Read>(
    reader: R,
    options: &ImportOptions,
    mut on_record: impl FnMut(UsageRecord),
) -> Result<ImportStats, ImportError> {
    let mut sink = Sink::new(&mut on_record, MAX_KEPT_ERRORS);
    let format = run(reader, options, &mut sink)?;
    Ok(ImportStats {
        format,
        rows_read: sink.rows_read,
        records: sink.records,
        error_count: sink.error_count,
        errors: sink.errors,
        skipped_count: sink.skipped_count,
        skipped: sink.skipped,
    })
}

/// Whatever a file holds: usage records, a metric series, or FOCUS billing rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Imported {
    Usage(ImportReport),
    Series(SeriesImport),
    Focus(FocusImport),
}

/// Imports any supported layout, detecting it unless `options.format` names one.
///
/// # Errors
/// File-level problems only.
pub fn import_any<R: Read>(reader: R, options: &ImportOptions) -> Result<Imported, ImportError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let first = first_lines(&mut reader)?;
    let format = resolve(options.format, &first);
    let chained = Cursor::new(first).chain(reader);
    match format {
        UsageFormat::Series => import_series(chained).map(Imported::Series),
        UsageFormat::Focus => import_focus(chained).map(Imported::Focus),
        other => import_usage_with(
            chained,
            &ImportOptions {
                format: Some(other),
                model: options.model.clone(),
            },
        )
        .map(Imported::Usage),
    }
}

/// Reads up to and including the first non-blank line, so detection sees a whole header or
/// object; the bytes are replayed in front of the rest, keeping line numbers right.
fn first_lines<R: BufRead>(reader: &mut R) -> Result<Vec<u8>, ImportError> {
    let mut buf = Vec::new();
    loop {
        let start = buf.len();
        let n = loop {
            match reader.read_until(b'\n', &mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(ImportError::Io(e.to_string())),
            }
        };
        if n == 0 {
            break;
        }
        let line = &buf[start..];
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if !line.trim_ascii().is_empty() {
            break;
        }
    }
    Ok(buf)
}

/// The layout to read: the asked dialect, or the one the first line shows.
fn resolve(asked: Option<UsageFormat>, first: &[u8]) -> UsageFormat {
    let sniffed = sniff(first);
    match asked {
        Some(UsageFormat::Csv) => match sniffed {
            Some(f) if !is_json_only(f) && f != UsageFormat::JsonLines => f,
            _ => UsageFormat::Csv,
        },
        Some(UsageFormat::JsonLines) => match sniffed {
            Some(f) if f != UsageFormat::Csv && !is_csv_only(f) => f,
            _ => UsageFormat::JsonLines,
        },
        Some(f) => f,
        None => sniffed.unwrap_or_else(|| UsageFormat::detect(first)),
    }
}

fn is_json_only(f: UsageFormat) -> bool {
    matches!(f, UsageFormat::Mooncake)
}

fn is_csv_only(f: UsageFormat) -> bool {
    matches!(
        f,
        UsageFormat::Azure | UsageFormat::Series | UsageFormat::Focus
    )
}

/// Lower case without `_`, `-` or spaces: `startTime`, `start_time` and `Start Time` are one key.
pub(crate) fn norm(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The dialect the first line shows, if any.
fn sniff(first: &[u8]) -> Option<UsageFormat> {
    let text = std::str::from_utf8(first).ok()?;
    let line = text
        .lines()
        .map(|l| l.trim_start_matches('\u{feff}').trim())
        .find(|l| !l.is_empty())?;
    if line.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let object = value.as_object()?;
        let keys: Vec<String> = object.keys().map(|k| norm(k)).collect();
        return sniff_keys(&keys, true);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut rec = csv::StringRecord::new();
    if !reader.read_record(&mut rec).ok()? {
        return None;
    }
    let lower: Vec<String> = rec.iter().map(|c| c.trim().to_ascii_lowercase()).collect();
    if generic::is_generic_header(&lower) {
        return Some(UsageFormat::Csv);
    }
    let keys: Vec<String> = rec.iter().map(norm).collect();
    sniff_keys(&keys, false)
}

fn sniff_keys(keys: &[String], json: bool) -> Option<UsageFormat> {
    let has = |k: &str| keys.iter().any(|x| x == k);
    if json && has("timestamp") && has("model") && has("inputtokens") && has("outputtokens") {
        return Some(UsageFormat::JsonLines);
    }
    if json && has("inputlength") && has("outputlength") {
        return Some(UsageFormat::Mooncake);
    }
    if !json && has("timestamp") && has("contexttokens") && has("generatedtokens") {
        return Some(UsageFormat::Azure);
    }
    if !json && has("billedcost") && has("chargeperiodstart") {
        return Some(UsageFormat::Focus);
    }
    if !json && keys.len() == 2 && has("value") {
        return Some(UsageFormat::Series);
    }
    if has("starttime") && (has("spend") || has("customllmprovider")) {
        return Some(UsageFormat::LiteLlm);
    }
    if has("requestcreatedat") || has("delayms") || has("promptcachereadtokens") {
        return Some(UsageFormat::Helicone);
    }
    if has("starttime")
        && (has("traceid")
            || has("usagedetails")
            || has("calculatedtotalcost")
            || has("completionstarttime")
            || has("providedmodelname"))
    {
        return Some(UsageFormat::Langfuse);
    }
    None
}

/// Reads a CSV whose header `columns` turns into a row parser.
pub(crate) fn csv_stream<R: Read, P: FnMut(&csv::ByteRecord) -> RowResult>(
    reader: R,
    sink: &mut Sink<'_>,
    columns: impl FnOnce(&csv::ByteRecord, u64) -> Result<P, ImportError>,
) -> Result<(), ImportError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let io = |e: csv::Error| ImportError::Io(e.to_string());
    let mut rec = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut rec).map_err(io)? {
        return Err(ImportError::Empty);
    }
    if rec
        .iter()
        .all(|c| c.trim_ascii().is_empty() || c == b"\xEF\xBB\xBF")
    {
        return Err(ImportError::Empty);
    }
    let header_line = rec.position().map_or(1, |p| p.line());
    let mut parse = columns(&rec, header_line)?;
    while csv.read_byte_record(&mut rec).map_err(io)? {
        // Spreadsheets leave rows of empty cells (",,,,") at the end; they are not data.
        if rec.iter().all(|c| c.trim_ascii().is_empty()) {
            continue;
        }
        let line = rec.position().map_or(0, |p| p.line());
        sink.row(line, parse(&rec));
    }
    Ok(())
}

/// The header cells as text, BOM stripped; `NotUtf8` names the header line.
pub(crate) fn header_names(rec: &csv::ByteRecord, line: u64) -> Result<Vec<String>, ImportError> {
    rec.iter()
        .enumerate()
        .map(|(i, cell)| {
            let name = std::str::from_utf8(cell).map_err(|_| ImportError::NotUtf8 { line })?;
            let name = if i == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                name
            };
            Ok(name.trim().to_string())
        })
        .collect()
}

fn run<R: Read>(
    reader: R,
    options: &ImportOptions,
    sink: &mut Sink<'_>,
) -> Result<UsageFormat, ImportError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let first = first_lines(&mut reader)?;
    if first.trim_ascii().is_empty()
        || first
            .strip_prefix(b"\xEF\xBB\xBF")
            .is_some_and(|rest| rest.trim_ascii().is_empty())
    {
        return Err(ImportError::Empty);
    }
    let format = resolve(options.format, &first);
    let json_container = UsageFormat::detect(&first) == UsageFormat::JsonLines;
    let reader = Cursor::new(first).chain(reader);
    match format {
        UsageFormat::Series | UsageFormat::Focus => return Err(ImportError::NotUsage(format)),
        UsageFormat::Csv => csv_stream(reader, sink, |rec, line| {
            let columns = generic::generic_columns(rec, line)?;
            Ok(move |r: &csv::ByteRecord| generic::csv_row(r, &columns))
        })?,
        UsageFormat::JsonLines => generic::json_lines(reader, sink, generic::json_row)?,
        UsageFormat::LiteLlm | UsageFormat::Helicone | UsageFormat::Langfuse => {
            let map = dialects::mapper(format);
            if json_container {
                generic::json_lines(reader, sink, |bytes| {
                    let object = generic::json_object(bytes)?;
                    map(&flat::Flat::from_object(&object))
                })?;
            } else {
                csv_stream(reader, sink, |rec, line| {
                    let names = header_names(rec, line)?;
                    let keys: Vec<String> = names.iter().map(|n| norm(n)).collect();
                    dialects::check_columns(format, &keys)?;
                    Ok(move |r: &csv::ByteRecord| {
                        if r.len() != keys.len() {
                            return Err(format!(
                                "expected {} fields as in the header, found {}",
                                keys.len(),
                                r.len()
                            ));
                        }
                        map(&flat::Flat::from_csv(&keys, r)?)
                    })
                })?;
            }
        }
        UsageFormat::Azure | UsageFormat::Mooncake => {
            let model = options
                .model
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .ok_or(ImportError::ModelRequired(format))?;
            let provider = infer_provider(model)
                .or_else(|| {
                    crate::prices::PriceTable::embedded()
                        .lookup(model)
                        .map(|p| provider_static(&p.provider))
                })
                .ok_or_else(|| ImportError::UnknownProvider {
                    model: model.to_string(),
                })?;
            if format == UsageFormat::Azure {
                traces::azure(reader, sink, model, provider)?;
            } else {
                traces::mooncake(reader, sink, model, provider)?;
            }
        }
    }
    Ok(format)
}

/// The embedded table's providers as static names (the importer's records own a `String` anyway).
fn provider_static(provider: &str) -> &'static str {
    match provider {
        "openai" => "openai",
        "anthropic" => "anthropic",
        "google" => "google",
        "together_ai" => "together_ai",
        _ => "unknown",
    }
}
