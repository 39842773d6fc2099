//! `agentwire check` end to end: the whole suite against our real server (started in-process on
//! a temporary database), against a fake deployment that honours the contract, and against fakes
//! that each get one thing wrong, an unreachable port and a server that never answers. Each
//! flawed target must fail with the right case and a reason a person can act on.
//!
//! No test here depends on timing: thresholds on latencies are replaced by count-based ones, and
//! the only waits are the suite's own bounded timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use agentwire_check::report;
use agentwire_check::suite::{self, AuthMode, CaseResult, SuiteConfig, SuiteReport, Verdict};
use agentwire_check::threshold::Thresholds;
use common::{Fake, Flaw, OurServer, SECRET, secret_auth};
use std::time::Duration;

/// The suite's defaults, except: thresholds that count rather than time, a short linger, and
/// short timeouts where a target is expected to stay silent.
fn config(target: String, auth: AuthMode) -> SuiteConfig {
    let mut config = SuiteConfig::new(target, auth);
    config.thresholds =
        Thresholds::from_pairs([("isolation_leaks", "count==0"), ("quality", "avg>0.7")]).unwrap();
    config.linger = Duration::from_millis(150);
    config
}

async fn run(config: SuiteConfig) -> SuiteReport {
    suite::run(config, &|_| {}).await.unwrap()
}

/// The suite with its defaults, as --secret, against a fake with `flaw`.
async fn against(flaw: Flaw) -> SuiteReport {
    let fake = Fake::start(flaw).await;
    run(config(fake.url(), secret_auth())).await
}

fn case<'a>(report: &'a SuiteReport, id: &str) -> &'a CaseResult {
    report
        .cases
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

/// Every case that did not pass, with its reason, for assertion messages.
fn not_passed(report: &SuiteReport) -> String {
    report
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .map(|c| {
            format!(
                "{} {} [{}]: {}",
                c.id,
                c.title,
                c.verdict.as_str(),
                c.reason.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that exactly these cases failed: the flaw, and nothing else. (The cases across nodes
/// skip against one target, saying so; `check_passes_against_our_server` runs them.)
fn assert_only_failures(report: &SuiteReport, ids: &[&str]) {
    let skipped_for_one_target = |c: &&CaseResult| {
        c.verdict == Verdict::Skipped
            && c.reason
                .as_deref()
                .is_some_and(|r| r.contains("second --target"))
    };
    let mut failing: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .filter(|c| !skipped_for_one_target(c))
        .map(|c| c.id)
        .collect();
    failing.sort_unstable();
    let mut expected = ids.to_vec();
    expected.sort_unstable();
    assert_eq!(failing, expected, "{}", not_passed(report));
}

fn assert_fails(report: &SuiteReport, id: &str, reason_contains: &[&str]) {
    let c = case(report, id);
    assert_eq!(
        c.verdict,
        Verdict::Fail,
        "case {id} should fail; all results:\n{}",
        not_passed(report)
    );
    let reason = c.reason.as_deref().unwrap_or("");
    for needle in reason_contains {
        assert!(
            reason.contains(needle),
            "case {id}: reason should mention {needle:?}: {reason}"
        );
    }
    assert_eq!(report.exit_code, 1, "{}", not_passed(report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_against_our_server() {
    let server = OurServer::start().await;
    let mut config = config(server.url(), secret_auth());
    // The same server named a second way stands in for a second node: the cases across nodes
    // run (the real thing, three processes on PostgreSQL, is in crates/cli/tests/it/cluster.rs).
    config.other_targets = vec![format!("ws://{}/ws", server.addr)];
    let report = run(config).await;
    assert_eq!(report.exit_code, 0, "{}", not_passed(&report));
    assert_eq!(report.count(Verdict::Pass), report.cases.len());
    assert!(report.leaks.is_empty());
    // The seed suite's per-run metrics are there for every run followed.
    assert!(report.runs.len() >= 30, "{} runs", report.runs.len());
    for run in &report.runs {
        assert!(
            ["agent_completed", "agent_cancelled"].contains(&run.outcome.as_str()),
            "case {} run {}: {}",
            run.case,
            run.run_id,
            run.outcome
        );
        assert!(run.events > 0);
    }
    for metric in [
        "connect",
        "ttfe",
        "ttc",
        "events",
        "quality",
        "isolation_leaks",
    ] {
        assert!(report.metrics.contains_key(metric), "no {metric}");
    }

    // The renderings carry every case and every threshold.
    let junit = report::junit(&report);
    assert_eq!(
        junit.matches("<testcase ").count(),
        report.cases.len() + report.thresholds.len()
    );
    assert!(!junit.contains("<failure"));
    let markdown = report::markdown(&report);
    assert!(markdown.contains("## Connectivity") && markdown.contains("## Execution"));
    let json: serde_json::Value = serde_json::from_str(&report::json(&report).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_only_cases_needing_other_users_are_skipped_saying_why() {
    let server = OurServer::start().await;
    let token = common::token("token-user", SECRET.as_bytes());
    let mut config = config(server.url(), AuthMode::Token(token));
    config.only = vec![
        "2".into(),
        "6".into(),
        "7".into(),
        "5.17".into(),
        "4.8".into(),
        "5.25".into(),
    ];
    let report = run(config).await;
    // One target: the cases across nodes skip, saying what they need.
    for id in ["4.8", "5.25", "7.4"] {
        let c = case(&report, id);
        assert_eq!(c.verdict, Verdict::Skipped, "{id}: {:?}", c.reason);
        assert!(
            c.reason.as_deref().unwrap().contains("second --target"),
            "{id}: {:?}",
            c.reason
        );
    }
    for id in ["2.5", "6.3", "6.4", "7.3", "5.17"] {
        let c = case(&report, id);
        assert_eq!(c.verdict, Verdict::Skipped, "{id}: {:?}", c.reason);
        assert!(
            c.reason.as_deref().unwrap().contains("--secret"),
            "{id}: {:?}",
            c.reason
        );
    }
    for id in [
        "2.1", "2.2", "2.3", "2.4", "2.6", "6.1", "6.2", "7.1", "7.2",
    ] {
        assert_eq!(
            case(&report, id).verdict,
            Verdict::Pass,
            "{}",
            not_passed(&report)
        );
    }
    assert_eq!(
        case(&report, "4.1").reason.as_deref(),
        Some("not selected by --only/--skip")
    );
    assert_eq!(report.exit_code, 0, "{}", not_passed(&report));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_failure_with_its_reason_never_a_skip() {
    let server = OurServer::start().await;
    let forged = common::token("mallory", b"not-the-secret-not-the-secret-not-the-secret");
    let mut config = config(server.url(), AuthMode::Token(forged));
    config.only = vec!["1".into(), "4.1".into()];
    let report = run(config).await;
    let connect = case(&report, "1.1");
    assert_eq!(connect.verdict, Verdict::Fail);
    assert!(
        connect.reason.as_deref().unwrap().contains("401"),
        "{:?}",
        connect.reason
    );
    let later = case(&report, "4.1");
    assert_eq!(later.verdict, Verdict::Error);
    assert!(
        later
            .reason
            .as_deref()
            .unwrap()
            .contains("credentials were refused")
    );
    assert_eq!(report.exit_code, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_against_a_fake_that_honours_the_contract() {
    // The control for every flawed fake below: without its flaw the fake passes everything, so
    // each failure below is caused by the flaw alone.
    let report = against(Flaw::None).await;
    assert_eq!(report.exit_code, 0, "{}", not_passed(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_omits_agent_thinking_fails_5_5() {
    let report = against(Flaw::OmitThinking).await;
    assert_fails(&report, "5.5", &["without any agent_thinking"]);
    assert_only_failures(&report, &["5.5"]);
    // The failure shows the run it judged.
    let c = case(&report, "5.5");
    assert!(c.transcript.iter().any(|f| f["type"] == "agent_completed"));
    assert!(c.expected.contains("agent_thinking"));
    let junit = report::junit(&report);
    assert!(junit.contains("without any agent_thinking") && junit.contains("<system-out>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_sends_events_after_the_terminal_event_fails_5_2() {
    let report = against(Flaw::EventsAfterTerminal).await;
    assert_fails(
        &report,
        "5.2",
        &["progress after the terminal agent_completed"],
    );
    assert_only_failures(&report, &["5.2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_delivers_one_users_events_to_another_fails_6_4() {
    let report = against(Flaw::CrossDeliver).await;
    assert_fails(
        &report,
        "6.4",
        &["crossed users", "received a", "of user check-"],
    );
    // The intruder of 6.3 receives the run it was refused, too. (Resume, 5.10, also breaks: the
    // reconnected socket gets the live events twice, once resumed and once cross-delivered.)
    assert_fails(&report, "6.3", &["still received"]);
    assert!(!report.leaks.is_empty());
    assert!(
        report
            .thresholds
            .iter()
            .any(|t| t.metric == "isolation_leaks"
                && t.verdict == agentwire_check::threshold::ThresholdVerdict::Breached)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyword_rich_answers_that_are_wrong_fail_the_ground_truth() {
    let report = against(Flaw::WrongAnswers).await;
    // Long, figure-rich answers backed by tool events score well on quality...
    assert_eq!(
        case(&report, "5.14").verdict,
        Verdict::Pass,
        "{}",
        not_passed(&report)
    );
    // ...and the ground truth catches them.
    assert_fails(&report, "5.17", &["the planted spike is on"]);
    assert_fails(
        &report,
        "5.18",
        &["none is within 10% of the truth", "ticket-router"],
    );
    // The lookups: a long keyword-rich answer with the figure late, or with wrong figures, fails.
    for id in ["5.19", "5.20", "5.21"] {
        assert_fails(
            &report,
            id,
            &["states it later, not in its first sentences"],
        );
    }
    for id in ["5.22", "5.23"] {
        assert_fails(&report, id, &["opening does not state", "within 1%"]);
    }
    // The structured task ran, but said the wrong monthly spend for the data.
    assert_fails(
        &report,
        "5.24",
        &["does not state the monthly spend the data shows"],
    );
    assert_only_failures(
        &report,
        &[
            "5.17", "5.18", "5.19", "5.20", "5.21", "5.22", "5.23", "5.24",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_fails_every_case_with_exit_code_2() {
    let addr = common::unused_port();
    let report = run(config(format!("http://{addr}"), secret_auth())).await;
    assert_eq!(report.exit_code, 2);
    assert!(
        report
            .unreachable
            .as_deref()
            .unwrap()
            .contains("cannot connect")
    );
    assert_eq!(report.count(Verdict::Pass), 0);
    assert_eq!(report.count(Verdict::Skipped), 0);
    let c = case(&report, "1.1");
    assert_eq!(c.verdict, Verdict::Error);
    assert!(
        c.reason
            .as_deref()
            .unwrap()
            .contains("could not be reached")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_fails_with_exit_code_2() {
    let (addr, task) = common::silent_server().await;
    let mut config = config(format!("http://{addr}"), secret_auth());
    config.connect_timeout = Duration::from_millis(500);
    let report = run(config).await;
    assert_eq!(report.exit_code, 2);
    let reason = report.unreachable.clone().unwrap();
    assert!(reason.contains("answered neither"), "{reason}");
    assert_eq!(case(&report, "7.1").verdict, Verdict::Error);
    assert_eq!(report.count(Verdict::Pass), 0);
    task.abort();
}

/// The AG-UI cases alone, as --secret, against a fake with `flaw`.
async fn agui_cases_against(flaw: Flaw) -> SuiteReport {
    let fake = Fake::start(flaw).await;
    let mut config = config(fake.url(), secret_auth());
    config.only = vec!["7.5".into(), "7.6".into(), "7.7".into()];
    run(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_without_ag_ui_has_the_ag_ui_cases_skipped_saying_why() {
    let report = agui_cases_against(Flaw::NoAgui).await;
    for id in ["7.5", "7.6", "7.7"] {
        let c = case(&report, id);
        assert_eq!(c.verdict, Verdict::Skipped, "{id}: {:?}", c.reason);
        assert!(
            c.reason
                .as_deref()
                .unwrap()
                .contains("no /api/agui (POST /api/agui answered 404)"),
            "{id}: {:?}",
            c.reason
        );
    }
    assert_eq!(report.exit_code, 0, "{}", not_passed(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ag_ui_flaw_fails_its_case_and_only_it() {
    let control = agui_cases_against(Flaw::None).await;
    for id in ["7.5", "7.6", "7.7"] {
        assert_eq!(
            case(&control, id).verdict,
            Verdict::Pass,
            "{}",
            not_passed(&control)
        );
    }
    for (flaw, failing, reason) in [
        (
            Flaw::AguiStepLeftOpen,
            "7.5",
            "breaks AG-UI's rules: event 9 (RUN_FINISHED): steps still active: data",
        ),
        (
            Flaw::AguiResumeRewritten,
            "7.6",
            "differs from the first delivery",
        ),
        (
            Flaw::AguiRunOracle,
            "7.7",
            "unlike a run that does not exist",
        ),
    ] {
        let report = agui_cases_against(flaw).await;
        assert_fails(&report, failing, &[reason]);
        for id in ["7.5", "7.6", "7.7"]
            .into_iter()
            .filter(|id| *id != failing)
        {
            assert_eq!(
                case(&report, id).verdict,
                Verdict::Pass,
                "{flaw:?}: {}",
                not_passed(&report)
            );
        }
    }
}
