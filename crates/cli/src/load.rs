//! `agentwire load`: turns the flags into a workload, shows a live progress line, prints the
//! latency table and writes the JSON summary. Exit codes as `check`: 0 clean, 1 runs failed, broke
//! the grammar or leaked, 2 target unreachable or bad configuration, 99 a threshold breached.
//!
//! It refuses targets off this machine unless `--allow-remote` is given: a load generator pointed
//! at the wrong host is an outage. It must not hide the client's own limits: when the process may
//! open fewer files than the sessions need, it says so before starting.

use crate::check::{auth_mode, ca_cert, parse_duration, print_out, thresholds, write_file};
use crate::cli::LoadArgs;
use agentwire_check::load::{self, Counters, LoadConfig, Model};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::net::{IpAddr, ToSocketAddrs as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether every address the target's host resolves to is a loopback address.
fn is_loopback(target: &str) -> anyhow::Result<bool> {
    let http = agentwire_check::http::HttpTarget::parse(target).map_err(anyhow::Error::msg)?;
    let authority = &http.authority;
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.clone()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<IpAddr> = with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {authority}"))?
        .map(|a| a.ip())
        .collect();
    Ok(!addrs.is_empty() && addrs.iter().all(IpAddr::is_loopback))
}

/// The soft limit on open files, from /proc (Linux); None elsewhere.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn config(args: &LoadArgs) -> anyhow::Result<LoadConfig> {
    let Some((target, others)) = args.target.target.split_first() else {
        bail!("--target is required (e.g. --target http://127.0.0.1:8080)");
    };
    for target in &args.target.target {
        if !args.allow_remote && !is_loopback(target)? {
            bail!(
                "{target} is not on this machine; load goes to loopback targets only unless --allow-remote is given"
            );
        }
    }
    let target = target.clone();
    let duration = parse_duration(&args.duration)?;
    if duration.is_zero() {
        bail!("--duration must be more than zero");
    }
    let (model, sessions, default_runs) = match args.rate {
        Some(rate) => {
            let runs = (rate * duration.as_secs_f64()).ceil().max(1.0) as usize;
            (
                Model::Open {
                    rate,
                    max_in_flight: args.max_in_flight,
                },
                args.max_in_flight,
                runs,
            )
        }
        None => {
            let runs_per_user = (args.runs_per_user > 0).then_some(args.runs_per_user);
            (
                Model::Closed {
                    users: args.users,
                    ramp: parse_duration(&args.ramp)?,
                    runs_per_user,
                    pace: parse_duration(&args.pace)?,
                    hold: args.hold,
                },
                args.users,
                runs_per_user.map_or(1_000_000, |n| n.saturating_mul(args.users)),
            )
        }
    };
    if let Some(limit) = open_files_limit()
        && (sessions as u64).saturating_add(64) > limit
    {
        eprintln!(
            "warning: {sessions} sessions need about {} open files but this process may open {limit} (ulimit -n); sessions past the limit will fail to connect with 'Too many open files'",
            sessions + 64
        );
    }
    let mut config = LoadConfig::closed(target, auth_mode(&args.target)?, args.users);
    config.other_targets = others.to_vec();
    config.model = model;
    config.duration = duration;
    config.max_runs = args.max_runs.unwrap_or(default_runs);
    config.agent = args.agent.clone();
    config.question = args.question.clone();
    if let Some(path) = &args.questions {
        config.questions = read_questions(path)?;
        config.seed = args.seed;
    }
    if args.tenants == 0 {
        bail!("--tenants must be at least 1");
    }
    if args.tenants > 1 && !matches!(config.auth, agentwire_check::suite::AuthMode::Secret { .. }) {
        bail!("--tenants needs --secret: minted users carry the org_id of their tenant");
    }
    config.tenants = args.tenants;
    config.connect_timeout = parse_duration(&args.target.connect_timeout)?;
    config.first_event_timeout = parse_duration(&args.target.first_event_timeout)?;
    config.completion_timeout = parse_duration(&args.target.completion_timeout)?;
    config.thresholds = thresholds(&args.target, &agentwire_check::threshold::LOAD_DEFAULTS)?;
    config.ca_cert = ca_cert(&args.target)?;
    if let agentwire_check::suite::AuthMode::Token(_) = config.auth
        && sessions > 8
    {
        eprintln!(
            "note: with --token every session is the same user; deployments limit one user's concurrent runs (ours: 8 by default). Use --secret to mint a user per session."
        );
    }
    Ok(config)
}

/// The questions of a `--questions` file: one per line, blank lines and `#` comments skipped.
fn read_questions(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the questions file {}", path.display()))?;
    let questions: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if questions.is_empty() {
        bail!("{} holds no question (one per line)", path.display());
    }
    Ok(questions)
}

pub async fn run(args: LoadArgs) -> ExitCode {
    let config = match config(&args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let counters = Arc::new(Counters::default());
    let bar = if args.no_progress {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let ticker = {
        let bar = bar.clone();
        let counters = counters.clone();
        let begun = Instant::now();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                bar.set_message(load::progress_line(&counters.snapshot(), begun.elapsed()));
                bar.tick();
            }
        })
    };
    let result = load::run(config, counters).await;
    ticker.abort();
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    print_out(&load::summary(&report));
    if let Some(path) = &args.target.json {
        let written = serde_json::to_string_pretty(&report)
            .context("cannot render the JSON summary")
            .and_then(|text| write_file(path, &text));
        if let Err(err) = written {
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
    fn a_questions_file_gives_one_question_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.txt");
        std::fs::write(
            &path,
            "# mix\nHow can we cut costs?\n\n  Why did spend spike?  \n",
        )
        .unwrap();
        assert_eq!(
            read_questions(&path).unwrap(),
            ["How can we cut costs?", "Why did spend spike?"]
        );
        std::fs::write(&path, "\n# nothing\n").unwrap();
        assert!(read_questions(&path).is_err());
        assert!(read_questions(&dir.path().join("missing.txt")).is_err());
    }

    #[test]
    fn only_loopback_targets_pass_without_allow_remote() {
        assert!(is_loopback("http://127.0.0.1:8080").unwrap());
        assert!(is_loopback("ws://[::1]:9/ws").unwrap());
        assert!(!is_loopback("http://10.1.2.3:80").unwrap());
    }
}
