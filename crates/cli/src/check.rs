//! `agentwire check`: turns the flags into a suite configuration, shows progress, prints the
//! summary, writes the requested reports and returns the suite's exit code (0 pass, 1 a case
//! failed, 2 target unreachable or bad configuration, 99 a threshold breached).
//!
//! Thin by design: every judgement is in `agentwire_check::suite`. What this module must not do is
//! change a verdict or an exit code; a report file that cannot be written is a configuration error
//! (2), reported as such.

use crate::cli::{CheckArgs, TargetArgs};
use agentwire_check::report;
use agentwire_check::suite::{self, AuthMode, Case, Progress, SuiteConfig};
use agentwire_check::threshold::Thresholds;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Parses `250ms`, `0s`, `15s`, `2m`, `1h`: the forms timeouts, ramps and paces are written in.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let bad = || anyhow::anyhow!("`{text}` is not a duration; write e.g. 250ms, 15s, 2m or 1h");
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    let amount: u64 = digits.parse().map_err(|_| bad())?;
    let unit = &text[digits.len()..];
    let millis = match unit {
        "ms" => amount,
        "s" => amount.checked_mul(1_000).ok_or_else(bad)?,
        "m" => amount.checked_mul(60_000).ok_or_else(bad)?,
        "h" => amount.checked_mul(3_600_000).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(Duration::from_millis(millis))
}

/// The authentication mode from `--token` / `--secret`.
///
/// # Errors
/// When neither is given.
pub fn auth_mode(args: &TargetArgs) -> anyhow::Result<AuthMode> {
    match (&args.token, &args.secret) {
        (Some(token), secret) => {
            if secret.is_some() {
                eprintln!("note: --token is used; --secret (or AGENTWIRE_JWT_SECRET) is ignored");
            }
            Ok(AuthMode::Token(token.trim().to_owned()))
        }
        (None, Some(secret)) => Ok(AuthMode::Secret {
            secret: secret.clone(),
            issuer: args.issuer.clone(),
            audience: args.audience.clone(),
            org: args.org.clone(),
        }),
        (None, None) => bail!(
            "no credentials: pass --token JWT (a token for the suite's user) or --secret S (the deployment's HS256 secret, to mint users)"
        ),
    }
}

/// Defaults, overridden per metric by the file, overridden by flags.
///
/// # Errors
/// A threshold that cannot be read or judged.
pub fn thresholds(args: &TargetArgs, defaults: &[(&str, &str)]) -> anyhow::Result<Thresholds> {
    let mut out = Thresholds::from_pairs(defaults.iter().copied())?;
    if let Some(path) = &args.thresholds {
        out.override_with(Thresholds::from_toml_file(path)?);
    }
    for flag in &args.threshold {
        out.override_with(Thresholds::from_flag(flag)?);
    }
    Ok(out)
}

/// The PEM of `--ca-cert`, when given.
///
/// # Errors
/// When the file cannot be read.
pub fn ca_cert(args: &TargetArgs) -> anyhow::Result<Option<Vec<u8>>> {
    args.ca_cert
        .as_ref()
        .map(|path| {
            std::fs::read(path).with_context(|| format!("cannot read --ca-cert {}", path.display()))
        })
        .transpose()
}

/// Writes a report file, naming the file when it fails.
///
/// # Errors
/// When the file cannot be written.
pub fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

fn config(args: &CheckArgs) -> anyhow::Result<SuiteConfig> {
    let Some((target, others)) = args.target.target.split_first() else {
        bail!("--target is required (e.g. --target http://127.0.0.1:8080)");
    };
    let mut config = SuiteConfig::new(target.clone(), auth_mode(&args.target)?);
    config.other_targets = others.to_vec();
    config.connect_timeout = parse_duration(&args.target.connect_timeout)?;
    config.first_event_timeout = parse_duration(&args.target.first_event_timeout)?;
    config.completion_timeout = parse_duration(&args.target.completion_timeout)?;
    config.linger = parse_duration(&args.linger)?;
    config.users = args.users;
    config.performance_runs = args.performance_runs;
    config.strict = args.strict;
    config.only = args.only.clone();
    config.skip = args.skip.clone();
    config.thresholds = thresholds(&args.target, &agentwire_check::threshold::CHECK_DEFAULTS)?;
    config.ca_cert = ca_cert(&args.target)?;
    for item in &args.min_quality {
        let Some((scenario, score)) = item.split_once('=') else {
            bail!("--min-quality takes scenario=score, e.g. capacity_planning=0.6");
        };
        let known = agentwire_check::quality::Scenario::ALL
            .iter()
            .any(|s| s.name() == scenario.trim());
        if !known {
            bail!(
                "--min-quality: unknown scenario {scenario:?}; known: cost_optimization, anomaly_detection, capacity_planning"
            );
        }
        let score: f64 = score
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| (0.0..=1.0).contains(s))
            .with_context(|| {
                format!("--min-quality {item}: the score must be a number from 0 to 1")
            })?;
        config.min_quality.insert(scenario.trim().to_owned(), score);
    }
    for (what, timeout) in [
        ("--connect-timeout", config.connect_timeout),
        ("--first-event-timeout", config.first_event_timeout),
        ("--completion-timeout", config.completion_timeout),
    ] {
        if timeout.is_zero() {
            bail!("{what} must be more than zero");
        }
    }
    Ok(config)
}

/// Prints to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
pub fn print_out(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

fn list() {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:<6} {:<15} {:<7} case",
        "id", "level", "group", "needs"
    );
    let mut cases: Vec<_> = Case::all().into_iter().map(Case::info).collect();
    cases.sort_by_key(|c| suite::section_order(c.id));
    for info in cases {
        let _ = writeln!(
            out,
            "{:<6} {:<6} {:<15} {:<7} {}\n{:36}rule: {}",
            info.id,
            info.level.as_str(),
            info.group.title(),
            if info.needs_secret { "secret" } else { "-" },
            info.title,
            "",
            info.rule
        );
    }
    print_out(&out);
}

pub async fn run(args: CheckArgs) -> ExitCode {
    if args.list {
        list();
        return ExitCode::SUCCESS;
    }
    let config = match config(&args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let progress = |event: Progress<'_>| match event {
        Progress::Started { total } => bar.set_length(total as u64),
        Progress::CaseStarted { info, .. } => {
            bar.set_message(format!(
                "{} {}  ({} failed so far)",
                info.id,
                info.title,
                failures.load(std::sync::atomic::Ordering::Relaxed)
            ));
        }
        Progress::CaseFinished { result, .. } => {
            if result.is_failure(true) {
                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            bar.inc(1);
        }
    };
    let report = match suite::run(config, &progress).await {
        Ok(report) => report,
        Err(err) => {
            bar.finish_and_clear();
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    bar.finish_and_clear();
    print_out(&report::summary(&report, std::io::stdout().is_terminal()));
    let mut files: Vec<(&Path, String)> = Vec::new();
    if let Some(path) = &args.target.json {
        match report::json(&report) {
            Ok(text) => files.push((path, text)),
            Err(err) => {
                eprintln!("error: cannot render the JSON report: {err}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(path) = &args.junit {
        files.push((path, report::junit(&report)));
    }
    if let Some(path) = &args.markdown {
        files.push((path, report::markdown(&report)));
    }
    for (path, text) in files {
        if let Err(err) = write_file(path, &text) {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    }
    ExitCode::from(report.exit_code)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn durations_take_milliseconds_and_zero() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("2 minutes").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
    }
}
