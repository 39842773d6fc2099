//! `load`'s report for a terminal: the live progress line and the final summary with its latency
//! table, failures, examples and thresholds.
//!
//! What it must not do: leave a failure out to keep the output short.

use super::{LoadReport, Snapshot};
use std::time::Duration;

/// A one-line rendering of the counters for a progress display.
pub fn progress_line(s: &Snapshot, elapsed: Duration) -> String {
    format!(
        "{:>6.1}s  scheduled {}  started {}  completed {}  failed {}  late {}  sockets {} (peak {})  in flight {} (peak {})  violations {}  leaks {}",
        elapsed.as_secs_f64(),
        s.scheduled,
        s.started,
        s.completed,
        s.failed,
        s.late,
        s.connected,
        s.peak_connected,
        s.in_flight,
        s.peak_in_flight,
        s.violations,
        s.leaks
    )
}

/// A human summary of a load report.
pub fn summary(report: &LoadReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &report.counts;
    let _ = writeln!(out, "agentwire load {} ({})", report.target, report.model);
    if let Some(reason) = &report.unreachable {
        let _ = writeln!(out, "target unreachable: {reason}");
    }
    let _ = writeln!(
        out,
        "runs: {} scheduled, {} started, {} completed, {} failed, {} late starts; sockets peak {}, runs in flight peak {}; {:.1} s",
        c.scheduled,
        c.started,
        c.completed,
        c.failed,
        c.late,
        c.peak_connected,
        c.peak_in_flight,
        report.elapsed_s
    );
    let _ = writeln!(
        out,
        "grammar violations: {}; isolation leaks: {}",
        c.violations, c.leaks
    );
    if !report.failures.is_empty() {
        let _ = writeln!(out, "failures:");
        for (kind, n) in &report.failures {
            let _ = writeln!(out, "  {n:>7}  {kind}");
        }
    }
    for (label, list) in [
        ("violations", &report.violation_examples),
        ("leaks", &report.leak_examples),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "{label} (first {}):", list.len());
            for line in list {
                let _ = writeln!(out, "  {line}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{:<15} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    for (name, t) in &report.latency_ms {
        let _ = writeln!(
            out,
            "{:<15} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            name,
            t.count,
            f(t.p50),
            f(t.p90),
            f(t.p99),
            f(t.p999),
            f(t.max),
            f(t.mean)
        );
    }
    if !report.server_metrics.is_empty() {
        let _ = writeln!(out, "\nserver metrics (from /metrics):");
        for (name, value) in &report.server_metrics {
            let shown = if name.ends_with("rate") {
                format!("{:.1}%", value * 100.0)
            } else {
                format!("{value:.0}")
            };
            let _ = writeln!(out, "  {name:<24} {shown}");
        }
    }
    if !report.thresholds.is_empty() {
        let _ = writeln!(out, "\nthresholds:");
        for t in &report.thresholds {
            let _ = writeln!(out, "{}", t.summary_line(t.verdict.as_str()));
        }
    }
    let meaning = match report.exit_code {
        0 => "every run completed cleanly and no threshold was breached",
        1 => "runs failed, broke the grammar or leaked across users",
        2 => "the target could not be reached or the configuration is wrong",
        99 => "a threshold was breached",
        _ => "unknown",
    };
    let _ = writeln!(out, "\nexit code {}: {meaning}", report.exit_code);
    out
}
