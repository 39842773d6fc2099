//! A plain metric series, CSV `timestamp,value`: any number a user tracks over time (requests,
//! cost, latency), read for the anomaly and forecast analyses only.
//!
//! The first column is the time (any form `parse_timestamp` accepts), the second a finite number
//! (negative values are allowed: a metric may be a balance or a delta). Rows keep their file order;
//! the analyses sort them. This module must not aggregate or fill gaps.

use std::io::Read;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::generic::{parse_timestamp, shown};
use super::{ImportError, RowError, csv_stream, header_names};

/// A named series of (time, value) points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricSeries {
    /// The value column's header, e.g. `value` or `requests`.
    pub name: String,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesImport {
    pub series: MetricSeries,
    pub errors: Vec<RowError>,
    pub rows_read: u64,
}

/// Reads a `timestamp,value` CSV.
///
/// # Errors
/// File-level problems: unreadable input, a header without two columns.
pub fn import_series<R: Read>(reader: R) -> Result<SeriesImport, ImportError> {
    let mut points = Vec::new();
    let mut errors = Vec::new();
    let mut name = String::new();
    let mut rows_read = 0u64;
    let mut ignore = |_| {};
    let mut sink = super::Sink::new(&mut ignore, 0);
    let (points_out, errors_out, rows_out, name_out) =
        (&mut points, &mut errors, &mut rows_read, &mut name);
    csv_stream(reader, &mut sink, move |rec, line| {
        let names = header_names(rec, line)?;
        if names.len() != 2 {
            return Err(ImportError::MissingColumns(vec![
                "exactly two columns: timestamp,value".to_string(),
            ]));
        }
        *name_out = names[1].clone();
        Ok(move |rec: &csv::ByteRecord| {
            let line = rec.position().map_or(0, |p| p.line());
            *rows_out += 1;
            let parsed = (|| -> Result<(DateTime<Utc>, f64), String> {
                if rec.len() != 2 {
                    return Err(format!("expected 2 fields, found {}", rec.len()));
                }
                let cell = |i: usize| {
                    std::str::from_utf8(rec.get(i).unwrap_or_default())
                        .map(str::trim)
                        .map_err(|_| "the row is not valid UTF-8".to_string())
                };
                let (t, v) = (cell(0)?, cell(1)?);
                let t = parse_timestamp(t).ok_or_else(|| {
                    format!("timestamp: {} is not a recognised timestamp", shown(t))
                })?;
                let v = v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("value: {} is not a finite number", shown(v)))?;
                Ok((t, v))
            })();
            match parsed {
                Ok(point) => points_out.push(point),
                Err(message) => errors_out.push(RowError { line, message }),
            }
            // The series keeps its own points; the sink only drives the reader.
            Ok(super::Outcome::Skip(String::new()))
        })
    })?;
    Ok(SeriesImport {
        series: MetricSeries { name, points },
        errors,
        rows_read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn series_exact_values_and_errors() {
        let text = "timestamp,value\n2014-07-01 00:00:00,10844\n2014-07-01 00:30:00,-2.5\nnope,1\n2014-07-01 01:30:00,NaN\n";
        let s = import_series(text.as_bytes()).unwrap();
        assert_eq!(s.rows_read, 4);
        assert_eq!(s.series.name, "value");
        assert_eq!(
            s.series.points,
            vec![
                (Utc.with_ymd_and_hms(2014, 7, 1, 0, 0, 0).unwrap(), 10844.0),
                (Utc.with_ymd_and_hms(2014, 7, 1, 0, 30, 0).unwrap(), -2.5),
            ]
        );
        let lines: Vec<u64> = s.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5]);
        assert!(s.errors[1].message.starts_with("value: \"NaN\""));
        assert!(import_series("a,b,c\n".as_bytes()).is_err());
        assert_eq!(import_series("".as_bytes()), Err(ImportError::Empty));
    }
}
