//! Renderings of a [`SuiteReport`]: the terminal summary, JSON, JUnit XML and Markdown.
//!
//! JUnit has one `testcase` per case and one per threshold; a failed case carries the expected
//! rule and the observation in its `failure`, and the transcript of frames in `system-out`, so a
//! CI page shows what the deployment actually sent. The Markdown is a connectivity and execution
//! report for a person.
//!
//! What it must not do: change a verdict, or drop a failure to keep output short (transcripts are
//! shortened, failures are never left out).

use crate::suite::{CaseResult, Group, SuiteReport, Verdict};
use crate::threshold::ThresholdVerdict;
use serde_json::Value;
use std::fmt::Write as _;

/// The meaning of an exit code, for the last line of the summary.
pub fn exit_meaning(code: u8) -> &'static str {
    match code {
        0 => "every MUST case passed and no threshold was breached",
        1 => "a case failed",
        2 => "the target could not be reached or the configuration is wrong",
        99 => "a threshold was breached",
        _ => "unknown",
    }
}

fn transcript_lines(transcript: &[Value], limit: usize) -> String {
    let mut out = String::new();
    for frame in transcript.iter().take(limit) {
        let _ = writeln!(out, "{frame}");
    }
    if transcript.len() > limit {
        let _ = writeln!(out, "... {} more frame(s)", transcript.len() - limit);
    }
    out
}

fn fmt_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

/// The terminal summary: a table of cases, the failures with expected rule and observation, the
/// thresholds, and the verdict.
pub fn summary(report: &SuiteReport, color: bool) -> String {
    let paint = |verdict: Verdict, text: &str| -> String {
        if !color {
            return text.to_owned();
        }
        let code = match verdict {
            Verdict::Pass => "32",
            Verdict::Fail | Verdict::Error => "31",
            Verdict::Skipped => "33",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    };
    let mut out = String::new();
    let _ = writeln!(out, "agentwire check {}", report.target);
    if let Some(reason) = &report.unreachable {
        let _ = writeln!(out, "target unreachable: {reason}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<6} {:<6} {:<8} {:>9}  case",
        "id", "level", "verdict", "ms"
    );
    for case in &report.cases {
        let verdict = format!("{:<8}", case.verdict.as_str());
        let _ = writeln!(
            out,
            "{:<6} {:<6} {} {:>9.1}  {}",
            case.id,
            case.level.as_str(),
            paint(case.verdict, &verdict),
            case.duration_ms,
            case.title
        );
    }
    let failures = report.failures();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        // Cases that were not run for one shared reason (an unreachable target, refused
        // credentials) are listed once, by id, rather than repeated case by case.
        let mut shared_reasons: Vec<(&str, Vec<&str>)> = Vec::new();
        for case in &failures {
            if case.verdict == Verdict::Error
                && case.transcript.is_empty()
                && let Some(reason) = case.reason.as_deref()
                && reason.starts_with("not run:")
            {
                match shared_reasons.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, ids)) => ids.push(case.id),
                    None => shared_reasons.push((reason, vec![case.id])),
                }
            }
        }
        for (reason, ids) in &shared_reasons {
            let _ = writeln!(
                out,
                "\n{} case(s) [{}]\n  {reason}",
                ids.len(),
                ids.join(" ")
            );
        }
        for case in failures {
            if shared_reasons.iter().any(|(_, ids)| ids.contains(&case.id)) {
                continue;
            }
            let _ = writeln!(
                out,
                "\n{} {} [{} {}]",
                case.id,
                case.title,
                case.level.as_str(),
                case.verdict.as_str()
            );
            let _ = writeln!(out, "  expected: {}", case.expected);
            let _ = writeln!(
                out,
                "  observed: {}",
                case.reason.as_deref().unwrap_or("(no reason given)")
            );
            if !case.transcript.is_empty() {
                let _ = writeln!(out, "  transcript:");
                for line in transcript_lines(&case.transcript, 12).lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
    }
    if !report.leaks.is_empty() {
        let _ = writeln!(out, "\nisolation leaks ({}):", report.leaks.len());
        for leak in report.leaks.iter().take(10) {
            let _ = writeln!(out, "  case {}: {}", leak.case, leak.description);
            let _ = writeln!(out, "    {}", leak.frame);
        }
    }
    if !report.thresholds.is_empty() {
        let _ = writeln!(out, "\nthresholds:");
        for t in &report.thresholds {
            let colour = match t.verdict {
                ThresholdVerdict::Pass => Verdict::Pass,
                ThresholdVerdict::Breached => Verdict::Fail,
                ThresholdVerdict::NoData => Verdict::Skipped,
            };
            let _ = writeln!(
                out,
                "{}",
                t.summary_line(&paint(colour, t.verdict.as_str()))
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} errors, {} skipped; {} threshold(s) breached; {:.1} s",
        report.count(Verdict::Pass),
        report.count(Verdict::Fail),
        report.count(Verdict::Error),
        report.count(Verdict::Skipped),
        report.breached(),
        report.duration_ms / 1e3
    );
    let _ = writeln!(
        out,
        "exit code {}: {}",
        report.exit_code,
        exit_meaning(report.exit_code)
    );
    out
}

/// The report as pretty JSON.
///
/// # Errors
/// When serialization fails (it does not for these types; the error is passed on, not hidden).
pub fn json(report: &SuiteReport) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// Escapes text for XML attributes and content, dropping characters XML 1.0 forbids.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: a `cases` suite with one testcase per case, and a `thresholds` suite with one per
/// threshold expression.
pub fn junit(report: &SuiteReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = report.count(Verdict::Fail) + report.breached();
    let errors = report.count(Verdict::Error);
    let skipped = report.count(Verdict::Skipped)
        + report
            .thresholds
            .iter()
            .filter(|t| t.verdict == ThresholdVerdict::NoData)
            .count();
    let tests = report.cases.len() + report.thresholds.len();
    let _ = writeln!(
        out,
        "<testsuites name=\"agentwire check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        report.duration_ms / 1e3
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"cases\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\" skipped=\"{}\" timestamp=\"{}\">",
        report.cases.len(),
        report.count(Verdict::Fail),
        report.count(Verdict::Skipped),
        xml(&report.started_at)
    );
    let _ = writeln!(
        out,
        "    <properties><property name=\"target\" value=\"{}\"/><property name=\"exit_code\" value=\"{}\"/></properties>",
        xml(&report.target),
        report.exit_code
    );
    for case in &report.cases {
        let _ = write!(
            out,
            "    <testcase classname=\"agentwire.check.{}\" name=\"{}\" time=\"{:.3}\"",
            case.group.key(),
            xml(&format!(
                "{} {} [{}]",
                case.id,
                case.title,
                case.level.as_str()
            )),
            case.duration_ms / 1e3
        );
        let body = format!(
            "expected: {}\nobserved: {}",
            case.expected,
            case.reason.as_deref().unwrap_or("")
        );
        match case.verdict {
            Verdict::Pass => {
                let _ = writeln!(out, "/>");
            }
            Verdict::Skipped => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml(case.reason.as_deref().unwrap_or(""))
                );
            }
            Verdict::Fail | Verdict::Error => {
                let element = if case.verdict == Verdict::Fail {
                    "failure"
                } else {
                    "error"
                };
                let _ = writeln!(
                    out,
                    ">\n      <{element} message=\"{}\" type=\"{}\">{}</{element}>",
                    xml(case.reason.as_deref().unwrap_or("")),
                    case.level.as_str(),
                    xml(&body)
                );
                if !case.transcript.is_empty() {
                    let _ = writeln!(
                        out,
                        "      <system-out>{}</system-out>",
                        xml(&transcript_lines(&case.transcript, 200))
                    );
                }
                let _ = writeln!(out, "    </testcase>");
            }
        }
    }
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(
        out,
        "  <testsuite name=\"thresholds\" tests=\"{}\" failures=\"{}\">",
        report.thresholds.len(),
        report.breached()
    );
    for t in &report.thresholds {
        let name = xml(&format!("{} {}", t.metric, t.expression));
        let observed = t
            .observed
            .map_or_else(|| "no data".to_owned(), |v| format!("{v}"));
        match t.verdict {
            ThresholdVerdict::Pass => {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"agentwire.check.thresholds\" name=\"{name}\"><system-out>observed {observed}</system-out></testcase>"
                );
            }
            ThresholdVerdict::Breached => {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"agentwire.check.thresholds\" name=\"{name}\">\n      <failure message=\"observed {observed}\" type=\"threshold\">{name}: observed {observed}</failure>\n    </testcase>"
                );
            }
            ThresholdVerdict::NoData => {
                let _ = writeln!(
                    out,
                    "    <testcase classname=\"agentwire.check.thresholds\" name=\"{name}\">\n      <skipped message=\"no data: nothing was measured for this metric\"/>\n    </testcase>"
                );
            }
        }
    }
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}

fn md(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A connectivity and execution report for a person, in Markdown.
pub fn markdown(report: &SuiteReport) -> String {
    let mut out = String::new();
    let verdict = if report.exit_code == 0 {
        "PASSED"
    } else {
        "FAILED"
    };
    let _ = writeln!(out, "# agentwire check: {}\n", md(&report.target));
    let _ = writeln!(
        out,
        "**{verdict}** (exit code {}: {}). Started {}, took {:.1} s. {} passed, {} failed, {} errors, {} skipped; {} threshold(s) breached.\n",
        report.exit_code,
        exit_meaning(report.exit_code),
        report.started_at,
        report.duration_ms / 1e3,
        report.count(Verdict::Pass),
        report.count(Verdict::Fail),
        report.count(Verdict::Error),
        report.count(Verdict::Skipped),
        report.breached()
    );

    let _ = writeln!(out, "## Connectivity\n");
    match (&report.unreachable, &report.connection) {
        (Some(reason), _) => {
            let _ = writeln!(out, "The target could not be reached: {}\n", md(reason));
        }
        (None, Some(info)) => {
            let text = |name: &str| {
                info.get(name)
                    .map_or_else(|| "-".to_owned(), |v| v.to_string())
            };
            let _ = writeln!(out, "| field | value |\n|---|---|");
            for name in ["protocol", "server_version", "user_id", "agents", "limits"] {
                let _ = writeln!(out, "| {name} | {} |", md(&text(name)));
            }
            let _ = writeln!(out);
        }
        (None, None) => {
            let _ = writeln!(out, "No WebSocket connection was established.\n");
        }
    }
    if let Some(connect) = report.metrics.get("connect") {
        let _ = writeln!(
            out,
            "Connect latency: p50 {} ms, p95 {} ms, max {} ms over {} connections.\n",
            fmt_ms(connect.get("p50").and_then(Value::as_f64)),
            fmt_ms(connect.get("p95").and_then(Value::as_f64)),
            fmt_ms(connect.get("max").and_then(Value::as_f64)),
            connect.get("count").unwrap_or(&Value::Null)
        );
    }

    let _ = writeln!(out, "## Cases\n");
    for group in Group::ALL {
        let cases: Vec<&CaseResult> = report.cases.iter().filter(|c| c.group == group).collect();
        if cases.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {}\n", group.title());
        let _ = writeln!(
            out,
            "| id | case | level | verdict | ms | notes |\n|---|---|---|---|---:|---|"
        );
        for case in cases {
            let mark = match case.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "**FAIL**",
                Verdict::Error => "**ERROR**",
                Verdict::Skipped => "skipped",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {mark} | {:.1} | {} |",
                case.id,
                md(case.title),
                case.level.as_str(),
                case.duration_ms,
                md(case.reason.as_deref().unwrap_or(""))
            );
        }
        let _ = writeln!(out);
    }

    let failures = report.failures();
    if !failures.is_empty() {
        let _ = writeln!(out, "## Failures\n");
        for case in failures {
            let _ = writeln!(out, "### {} {}\n", case.id, md(case.title));
            let _ = writeln!(out, "- expected: {}", md(case.expected));
            let _ = writeln!(
                out,
                "- observed: {}\n",
                md(case.reason.as_deref().unwrap_or(""))
            );
            if !case.transcript.is_empty() {
                let _ = writeln!(
                    out,
                    "```json\n{}```\n",
                    transcript_lines(&case.transcript, 40)
                );
            }
        }
    }

    if !report.leaks.is_empty() {
        let _ = writeln!(out, "## Isolation leaks\n");
        for leak in &report.leaks {
            let _ = writeln!(out, "- case {}: {}", leak.case, md(&leak.description));
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Execution\n");
    if report.runs.is_empty() {
        let _ = writeln!(out, "No run was followed.\n");
    } else {
        let _ = writeln!(
            out,
            "| case | agent | outcome | connect ms | first event ms | completion ms | events | quality |\n|---|---|---|---:|---:|---:|---:|---:|"
        );
        for run in &report.runs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                run.case,
                md(&run.agent),
                md(&run.outcome),
                fmt_ms(run.connect_ms),
                fmt_ms(run.ttfe_ms),
                fmt_ms(run.ttc_ms),
                run.events,
                run.quality
                    .map_or_else(|| "-".to_owned(), |q| format!("{q:.2}"))
            );
        }
        let _ = writeln!(out);
    }
    if !report.thresholds.is_empty() {
        let _ = writeln!(
            out,
            "## Thresholds\n\n| metric | threshold | observed | verdict |\n|---|---|---:|---|"
        );
        for t in &report.thresholds {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} |",
                md(&t.metric),
                t.expression,
                t.observed
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.3}")),
                match t.verdict {
                    ThresholdVerdict::Pass => "pass",
                    ThresholdVerdict::Breached => "**breached**",
                    ThresholdVerdict::NoData => "no data",
                }
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "## Metrics\n\n```json\n{}\n```",
        serde_json::to_string_pretty(&report.metrics).unwrap_or_default()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_and_drops_forbidden_characters() {
        assert_eq!(xml("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
