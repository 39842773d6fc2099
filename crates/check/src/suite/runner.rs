//! Runs the suite: prepares the context, decides case by case whether a case runs (selected,
//! target reachable, credentials it needs given and not refused), carries it out within a
//! deadline, and assembles the report with its thresholds and exit code.
//!
//! What it must not do: judge a case itself, or let one case hang the suite. Verdicts come from
//! the cases; the runner only adds the reasons a case did not run.

use super::catalogue::{Case, Needs};
use super::config::{AuthMode, ConfigError, SuiteConfig};
use super::context::{self, Ctx, Shared, User, case_tags};
use super::outcome::{Outcome, abbreviate};
use super::select::{section_order, selected};
use super::{CaseResult, LeakRecord, Progress, SuiteReport, Verdict};
use crate::metrics::MetricSet;
use crate::target::Target;
use crate::token::{Identity, Minter};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A case runs at most this long beyond its own timeouts; a hung case cannot hang the suite.
fn case_deadline(config: &SuiteConfig) -> Duration {
    config.completion_timeout * 3 + config.connect_timeout * 4 + Duration::from_secs(30)
}

/// Checks the configuration and turns it into the context the cases share.
fn prepare(config: &SuiteConfig) -> Result<Ctx, ConfigError> {
    let target = Target::parse_with_ca(&config.target, config.ca_cert.as_deref())?;
    let other_nodes = config
        .other_targets
        .iter()
        .map(|node| Target::parse_with_ca(node, config.ca_cert.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    config.check_sizes()?;
    let run_tag = crate::token::random_hex(8);
    let (main, minter) = match &config.auth {
        AuthMode::Token(token) => {
            let claims = crate::token::claims_of(token)?;
            let user = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            (
                User {
                    identity: Identity::new(user, None),
                    token: token.clone(),
                },
                None,
            )
        }
        AuthMode::Secret {
            secret,
            issuer,
            audience,
            org,
        } => {
            let minter = Minter::new(secret, issuer.clone(), audience.clone())?;
            let identity = Identity::new(format!("check-{run_tag}"), org.clone());
            (
                User {
                    token: minter.token(&identity),
                    identity,
                },
                Some(minter),
            )
        }
    };
    Ok(Ctx {
        config: config.clone(),
        target,
        other_nodes,
        shared: Arc::new(Shared::default()),
        main,
        minter,
        run_tag,
        case: "",
        auth_failure: None,
        connection: None,
        truth: None,
        agui: None,
    })
}

/// Why a case does not run, when it does not.
fn not_run(case: &Case, ctx: &Ctx, unreachable: Option<&str>) -> Option<Outcome> {
    if !selected(&ctx.config, &case.info()) {
        return Some(Outcome::skip("not selected by --only/--skip"));
    }
    if let Some(reason) = unreachable {
        return Some(Outcome::error(format!(
            "not run: the target could not be reached: {reason}"
        )));
    }
    match case.needs {
        Needs::Secret(why) if ctx.minter.is_none() => {
            Some(Outcome::skip(format!("needs --secret: {why}")))
        }
        Needs::OtherNode(why) if ctx.other_nodes.is_empty() => Some(Outcome::skip(format!(
            "needs a second --target (another node of the same deployment): {why}"
        ))),
        Needs::MainUser | Needs::OtherNode(_) => ctx.auth_failure.as_ref().map(|reason| {
            Outcome::error(format!(
                "not run: the suite's own credentials were refused ({reason})"
            ))
        }),
        _ => None,
    }
}

/// Carries a case out within its deadline; transcripts are shortened for display.
async fn carry_out(case: &'static Case, ctx: &mut Ctx) -> Outcome {
    ctx.case = case.id;
    let deadline = case_deadline(&ctx.config);
    let mut outcome = match tokio::time::timeout(deadline, (case.run)(ctx)).await {
        Ok(result) => result.unwrap_or_else(|ended| ended),
        Err(_) => Outcome::error(format!("the case did not finish within {deadline:?}")),
    };
    outcome.transcript = outcome.transcript.iter().map(abbreviate).collect();
    outcome
}

/// Runs the suite. `progress` is called as cases start and finish.
///
/// # Errors
/// [`ConfigError`] when the configuration is unusable (exit code 2); everything the deployment
/// does wrong is in the report instead.
pub async fn run(
    config: SuiteConfig,
    progress: &(dyn Fn(Progress<'_>) + Send + Sync),
) -> Result<SuiteReport, ConfigError> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut ctx = prepare(&config)?;
    let unreachable = context::reachability(&ctx).await.err();

    let cases = Case::all();
    let total = cases.len();
    progress(Progress::Started { total });
    let mut results: Vec<CaseResult> = Vec::with_capacity(total);
    for (index, case) in cases.into_iter().enumerate() {
        let info = case.info();
        progress(Progress::CaseStarted { index, total, info });
        let begun = Instant::now();
        let outcome = match not_run(case, &ctx, unreachable.as_deref()) {
            Some(outcome) => outcome,
            None => carry_out(case, &mut ctx).await,
        };
        let duration_ms = begun.elapsed().as_secs_f64() * 1e3;
        if outcome.verdict != Verdict::Skipped {
            ctx.shared
                .with_metrics(|m| m.record("duration", duration_ms, &case_tags(case.id)));
        }
        let result = CaseResult {
            id: case.id,
            title: case.title,
            level: case.level,
            group: case.group,
            verdict: outcome.verdict,
            expected: case.rule,
            reason: outcome.reason,
            transcript: outcome.transcript,
            duration_ms,
        };
        progress(Progress::CaseFinished {
            index,
            total,
            result: &result,
        });
        results.push(result);
    }

    let metrics: MetricSet = ctx
        .shared
        .metrics
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    let thresholds = config.thresholds.evaluate(&metrics);
    let leaks = ctx
        .shared
        .leaks()
        .into_iter()
        .map(|(case, leak, frame)| LeakRecord {
            case: case.to_owned(),
            description: leak.to_string(),
            leak,
            frame: abbreviate(&frame),
        })
        .collect();
    results.sort_by_key(|r| section_order(r.id));
    let mut report = SuiteReport {
        target: config.target.clone(),
        started_at,
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
        unreachable,
        connection: ctx.connection.clone(),
        strict: config.strict,
        cases: results,
        thresholds,
        metrics: metrics.summary().into_iter().collect(),
        runs: ctx.shared.run_summaries(),
        leaks,
        exit_code: 0,
    };
    report.exit_code = exit_code(&report);
    Ok(report)
}

/// The exit code of a finished suite (see the module docs).
pub fn exit_code(report: &SuiteReport) -> u8 {
    if report.unreachable.is_some() {
        2
    } else if report.cases.iter().any(|c| c.is_failure(report.strict)) {
        1
    } else if report.breached() > 0 {
        99
    } else {
        0
    }
}
