//! Structured tasks (issue 10) end to end: a client sends `agent_execute` with an agent type and
//! a `data` object of fields and no question; each of the issue's four tasks runs to
//! `agent_completed` with the figures its fields ask for, computed here from the uploaded records
//! independently of the engine, names the fields it did not use, and is recorded under a readable
//! description of the task.

use crate::runs::{
    WAIT, assert_valid_completed_run, completed, default_window, demo, in_window, total_cost,
    upload,
};
use crate::usd;
use agentwire_analytics::{PriceTable, UsageRecord};
use agentwire_check::client::Session;
use agentwire_testkit::{TestServer, usage_writer_token};
use chrono::{Duration as ChronoDuration, NaiveDate};
use serde_json::{Value, json};

/// Sends a task and reads its run to the end: (the run's events, its recorded question).
async fn run_task(
    session: &mut Session,
    id: &str,
    agent: &str,
    data: Value,
) -> (Vec<Value>, String) {
    session
        .send_json(&json!({"id": id, "type": "agent_execute", "agent_type": agent, "data": data}))
        .await
        .unwrap();
    let accepted = session.wait_run_accepted(id, WAIT).await.unwrap();
    let run = session.collect_run(&accepted.run_id, WAIT).await.unwrap();
    assert_valid_completed_run(&run.events);
    let question = run.events[0]["user_request"].as_str().unwrap().to_owned();
    (run.events, question)
}

fn response(events: &[Value]) -> &str {
    completed(events)["response"].as_str().unwrap()
}

/// The last day of the records.
fn last_day(records: &[UsageRecord]) -> NaiveDate {
    records
        .iter()
        .map(|r| r.timestamp.date_naive())
        .max()
        .unwrap()
}

/// Nearest-rank p95 of latency over requests (a bucket's latency counts `request_count` times).
fn p95_latency(records: &[&UsageRecord]) -> f64 {
    let mut samples: Vec<(f64, u64)> = records
        .iter()
        .filter_map(|r| r.latency_ms.map(|l| (l, r.request_count.max(1))))
        .collect();
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = samples.iter().map(|s| s.1).sum();
    let rank = (0.95 * total as f64).ceil() as u64;
    let mut seen = 0;
    for (v, w) in samples {
        seen += w;
        if seen >= rank {
            return v;
        }
    }
    f64::NAN
}

#[tokio::test]
async fn the_four_tasks_of_issue_10_run_with_the_figures_their_fields_ask_for() {
    let server = TestServer::start().await;
    let token = usage_writer_token("tess", "acme");
    upload(&server, &token, &demo().records).await;
    let mut session = server.connect_bearer(&token).await;
    let records = &demo().records;
    let monthly = total_cost(records);

    // Cost optimization with a stated monthly spend: compared with what the data shows.
    let (events, question) = run_task(
        &mut session,
        "t1",
        "optimization_agent",
        json!({"optimization_target":"cost_reduction","current_metrics":{"monthly_spend":25000,"utilization_rate":0.73},"constraints":{"max_performance_impact":0.05}}),
    )
    .await;
    assert!(
        question.starts_with("Optimization task: cost optimization"),
        "{question}"
    );
    let text = response(&events);
    assert!(
        text.contains(&format!(
            "You state a monthly spend of **$25,000.00**; the data shows **{} a month**",
            usd(monthly)
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "Not used: constraints.max_performance_impact, current_metrics.utilization_rate"
        ),
        "{text}"
    );
    assert!(
        completed(&events)["report"]["recommendations"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );

    // A comprehensive analysis: the full review, every agent, `priority` named as not used.
    let (events, question) = run_task(
        &mut session,
        "t2",
        "supervisor_agent",
        json!({"task":"comprehensive_system_analysis","requirements":{"data_analysis":true,"optimization_recommendations":true,"implementation_plan":true},"priority":"high"}),
    )
    .await;
    assert!(
        question.starts_with("Supervisor task: comprehensive system analysis"),
        "{question}"
    );
    assert_eq!(
        events[0]["plan"],
        json!([
            "supervisor",
            "triage",
            "data",
            "optimization",
            "actions",
            "reporting"
        ])
    );
    let report = &completed(&events)["report"];
    assert!(
        report["implementation_plan"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    assert!(response(&events).contains("Not used: priority"));

    // Anomaly detection over the last 7 days, on response time and error rate.
    let (events, question) = run_task(
        &mut session,
        "t3",
        "unified_data_agent",
        json!({"analysis_type":"anomaly_detection","metrics":["response_time","error_rate"],"time_range":"last_7_days"}),
    )
    .await;
    let last = last_day(records);
    let first = last - ChronoDuration::days(6);
    assert!(
        question.contains(&format!("last 7 days ({first} to {last})")),
        "{question}"
    );
    let text = response(&events);
    assert!(
        text.contains(&format!("Window: {first} to {last}")),
        "{text}"
    );
    let week: Vec<&UsageRecord> = records
        .iter()
        .filter(|r| (first..=last).contains(&r.timestamp.date_naive()))
        .collect();
    let p95 = p95_latency(&week);
    let p95_text = format!(
        "P95 latency over the window: **{} ms**",
        agentwire_analytics::format::count(p95.round() as u64)
    );
    assert!(text.contains(&p95_text), "{p95_text}\n{text}");
    assert!(text.contains("Error rate over the window: **"), "{text}");
    let week_cost: f64 = week
        .iter()
        .map(|r| PriceTable::embedded().cost_usd(r))
        .sum();
    assert!(text.contains(&usd(week_cost)), "{}\n{text}", usd(week_cost));

    // A capacity forecast: 6 months ahead at 1.3x growth.
    let (events, question) = run_task(
        &mut session,
        "t4",
        "unified_data_agent",
        json!({"planning_horizon":"6_months","growth_projection":1.3}),
    )
    .await;
    assert!(
        question.contains("forecast 6 months ahead at 1.3x growth"),
        "{question}"
    );
    let text = response(&events);
    assert!(text.contains("**6 months at 1.3x growth**"), "{text}");
    let projection = &completed(&events)["report"]["task"]["growth_projection"];
    let months = projection["months"].as_array().unwrap();
    assert_eq!(months.len(), 6);
    let window = default_window(records);
    let requests: u64 = records
        .iter()
        .filter(|r| in_window(r, window))
        .map(|r| r.request_count)
        .sum();
    let end_cost = months[5]["cost_usd"].as_f64().unwrap();
    assert!(
        (end_cost - monthly * 1.3).abs() < 1e-6 * monthly,
        "{end_cost} vs {}",
        monthly * 1.3
    );
    let end_requests = months[5]["requests"].as_f64().unwrap();
    assert!((end_requests - requests as f64 * 1.3).abs() < 1e-6 * requests as f64);
    assert!(
        text.contains(&usd(monthly * 1.3)),
        "{}\n{text}",
        usd(monthly * 1.3)
    );

    // The runs are recorded under their descriptions: the thread history shows them.
    let thread = events[0]["thread_id"].as_str().unwrap();
    let history = server
        .get(
            &format!("/api/threads/{thread}"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await
        .json();
    assert_eq!(history["runs"][0]["user_request"], question.as_str());
}

#[tokio::test]
async fn a_request_with_neither_question_nor_fields_is_refused() {
    let server = TestServer::start().await;
    let mut session = server.connect_as("ned").await;
    session
        .send_json(&json!({"id": "e1", "type": "agent_execute", "agent_type": "data", "data": {}}))
        .await
        .unwrap();
    let err = session.wait_run_accepted("e1", WAIT).await.unwrap_err();
    assert!(err.to_string().contains("INVALID_MESSAGE"), "{err}");
}
