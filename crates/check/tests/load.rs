//! `agentwire load` end to end: 200 concurrent sessions against our real server (in-process, on a
//! temporary database), an open-model run, and fakes that leak across users or send events after
//! the terminal event, which load must count.
//!
//! Every workload is bounded by run count and duration. No assertion is about speed: the
//! thresholds used here count leaks and grammar violations, never latencies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use agentwire_check::load::{self, Counters, LoadConfig, LoadReport, Model};
use agentwire_check::suite::AuthMode;
use agentwire_check::threshold::{ThresholdVerdict, Thresholds};
use common::{Fake, Flaw, OurServer, SECRET, secret_auth};
use std::sync::Arc;
use std::time::Duration;

fn counted_thresholds() -> Thresholds {
    Thresholds::from_pairs([
        ("isolation_leaks", "count==0"),
        ("grammar_violations", "count==0"),
        ("run_success", "rate==1"),
    ])
    .unwrap()
}

/// `users` closed-model sessions against the fake, judged by [`counted_thresholds`].
fn counted_load(fake: &Fake, users: usize) -> LoadConfig {
    let mut config = LoadConfig::closed(fake.url(), secret_auth(), users);
    config.thresholds = counted_thresholds();
    config
}

/// Runs the workload; the report and its summary (for assertion messages).
async fn run(config: LoadConfig) -> (LoadReport, String) {
    let report = load::run(config, Arc::new(Counters::default()))
        .await
        .unwrap();
    let summary = load::summary(&report);
    (report, summary)
}

/// `users` closed-model users arriving over `ramp`, one run each, held open or not, in a tenant
/// with [`upload_small_data_set`]'s data, judged by [`counted_thresholds`].
async fn one_run_each_on_a_small_tenant(
    server: &OurServer,
    users: usize,
    ramp: Duration,
    hold: bool,
) -> LoadConfig {
    upload_small_data_set(&server.url(), "load-test").await;
    let auth = AuthMode::Secret {
        secret: SECRET.to_owned(),
        issuer: None,
        audience: None,
        org: Some("load-test".to_owned()),
    };
    let mut config = LoadConfig::closed(server.url(), auth, users);
    config.model = Model::Closed {
        users,
        ramp,
        runs_per_user: Some(1),
        pace: Duration::ZERO,
        hold,
    };
    config.thresholds = counted_thresholds();
    config
}

/// A small usage file (60 days, a few rows a day) in tenant `org`, so that 200 runs measure the
/// protocol path rather than the analytics over the 90-day demo set.
async fn upload_small_data_set(url: &str, org: &str) {
    let token = agentwire_check::token::Minter::new(SECRET, None, None)
        .unwrap()
        .token(&agentwire_check::token::Identity::new(
            "loader",
            Some(org.to_owned()),
        ));
    let mut csv =
        String::from("timestamp,model,input_tokens,output_tokens,request_count,team,feature\n");
    let end = chrono::Utc::now() - chrono::Duration::hours(2);
    for day in 0..60 {
        let at = end - chrono::Duration::days(day);
        for (model, input, output, team, feature) in [
            ("gpt-4o", 600_000, 20_000, "support", "ticket-router"),
            ("claude-sonnet-4", 400_000, 80_000, "growth", "research"),
        ] {
            csv.push_str(&format!(
                "{},{model},{input},{output},1000,{team},{feature}\n",
                at.format("%Y-%m-%dT%H:%M:%SZ")
            ));
        }
    }
    let target = agentwire_check::http::HttpTarget::parse(url).unwrap();
    let auth = format!("Bearer {token}");
    let answer = target
        .request(
            "POST",
            "/api/usage",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "text/csv"),
            ],
            csv.into_bytes(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sessions_complete_with_no_violation_and_no_leak() {
    let server = OurServer::start().await;
    let config =
        one_run_each_on_a_small_tenant(&server, 200, Duration::from_millis(500), false).await;
    let (report, summary) = run(config).await;
    assert_eq!(report.counts.scheduled, 200, "{summary}");
    assert_eq!(report.counts.completed, 200, "{summary}");
    assert_eq!(report.counts.failed, 0, "{summary}");
    assert_eq!(report.counts.violations, 0, "{summary}");
    assert_eq!(report.counts.leaks, 0, "{summary}");
    assert!(report.failures.is_empty(), "{summary}");
    assert_eq!(report.exit_code, 0, "{summary}");
    // Every latency is measured, for every run.
    for name in ["connect", "ttfe", "ttc", "ttfe_from_send", "ttc_from_send"] {
        assert_eq!(report.latency_ms[name].count, 200, "{name}: {summary}");
    }
    assert!(report.latency_ms["event_gap"].count > 200 * 10);
    // From the schedule is never shorter than from the send.
    assert!(report.latency_ms["ttc"].max >= report.latency_ms["ttc_from_send"].max);
    assert!(
        report
            .thresholds
            .iter()
            .all(|t| t.verdict == ThresholdVerdict::Pass),
        "{summary}"
    );
    // All 200 sessions were open together at some point only if the server kept up; what is
    // certain is that they were counted.
    assert!(report.counts.peak_connected >= 1);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["counts"]["completed"], 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_model_starts_runs_on_schedule_and_stops_by_itself() {
    let server = OurServer::start().await;
    let mut config = LoadConfig::closed(server.url(), secret_auth(), 1);
    config.model = Model::Open {
        rate: 40.0,
        max_in_flight: 100,
    };
    config.duration = Duration::from_secs(1);
    config.max_runs = 30;
    config.agent = "data".to_owned();
    config.question = "Where did our AI spend go?".to_owned();
    config.thresholds = counted_thresholds();
    let (report, summary) = run(config).await;
    // 40 per second for one second would be 40; the run cap stops it at 30.
    assert_eq!(report.counts.scheduled, 30, "{summary}");
    assert_eq!(report.counts.completed, 30, "{summary}");
    assert_eq!(report.exit_code, 0, "{summary}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_counts_cross_user_leaks() {
    let fake = Fake::start(Flaw::CrossDeliver).await;
    let (report, summary) = run(counted_load(&fake, 20)).await;
    assert!(report.counts.leaks > 0, "{summary}");
    assert!(
        report.leak_examples[0].contains("of user load-"),
        "{summary}"
    );
    assert_eq!(report.exit_code, 1, "{summary}");
    assert!(
        report
            .thresholds
            .iter()
            .any(|t| t.metric == "isolation_leaks" && t.verdict == ThresholdVerdict::Breached)
    );
}

/// `load` keeps only each frame's envelope, but a canary anywhere in a frame still counts: here
/// the only trace of another user is their question deep inside a tool's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_finds_another_users_canary_deep_inside_tool_data() {
    let fake = Fake::start(Flaw::ForeignQuestionDeepInData).await;
    let (report, summary) = run(counted_load(&fake, 10)).await;
    assert!(report.counts.leaks > 0, "{summary}");
    assert!(
        report
            .leak_examples
            .iter()
            .all(|leak| leak.contains("tool_completed frame carrying canary cnry")),
        "{summary}"
    );
    assert_eq!(report.counts.violations, 0, "{summary}");
    assert_eq!(report.exit_code, 1, "{summary}");
}

/// The server's `agentwire_connections_active`, read from its `/metrics`.
async fn connections_active(target: &agentwire_check::http::HttpTarget) -> Option<u64> {
    let answer = target
        .request("GET", "/metrics", &[], Vec::new(), Duration::from_secs(5))
        .await
        .ok()?;
    answer.text().lines().find_map(|line| {
        line.strip_prefix("agentwire_connections_active ")?
            .trim()
            .parse()
            .ok()
    })
}

/// With `hold`, every session stays open after its runs until the last user has run, so the
/// users are concurrent sessions in fact: without it each session closes after its run, and 50
/// users arriving over two seconds, whose runs take milliseconds, are never open together. A held
/// session goes on answering the server's pings: this server pings every 250 ms and closes a
/// socket silent for 500 (room for a busy test machine), and the first users are held for about
/// two seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_sessions_are_all_open_at_once_and_answer_pings_while_held() {
    let server = OurServer::start_pinging(Duration::from_millis(250)).await;
    let config = one_run_each_on_a_small_tenant(&server, 50, Duration::from_secs(2), true).await;
    // What the server itself counts open, sampled while the load runs.
    let target = agentwire_check::http::HttpTarget::parse(&server.url()).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = tokio::spawn({
        let done = done.clone();
        async move {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(connections_active(&target).await.unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        }
    });
    let (report, summary) = run(config).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let server_peak = sampler.await.unwrap();
    assert_eq!(report.counts.completed, 50, "{summary}");
    assert_eq!(report.counts.failed, 0, "{summary}");
    assert!(report.failures.is_empty(), "{summary}");
    assert_eq!(report.exit_code, 0, "{summary}");
    assert_eq!(report.counts.peak_connected, 50, "{summary}");
    assert!(report.model.contains("held open"), "{}", report.model);
    // Not closed by the server for missing its pings while held.
    assert_eq!(server_peak, 50, "the server never had all 50 open at once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_counts_events_after_the_terminal_event() {
    let fake = Fake::start(Flaw::EventsAfterTerminal).await;
    let mut config = counted_load(&fake, 10);
    config.model = Model::Closed {
        users: 10,
        ramp: Duration::ZERO,
        runs_per_user: Some(2),
        pace: Duration::ZERO,
        hold: false,
    };
    config.max_runs = 20;
    let (report, summary) = run(config).await;
    assert!(report.counts.violations > 0, "{summary}");
    assert!(
        report
            .violation_examples
            .iter()
            .any(|v| v.contains("after the terminal event")),
        "{summary}"
    );
    assert_eq!(report.exit_code, 1, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_is_exit_code_2_and_nothing_is_counted_as_done() {
    let addr = common::unused_port();
    let (report, _) = run(LoadConfig::closed(
        format!("http://{addr}"),
        secret_auth(),
        5,
    ))
    .await;
    assert_eq!(report.exit_code, 2);
    assert_eq!(report.counts.completed, 0);
}
