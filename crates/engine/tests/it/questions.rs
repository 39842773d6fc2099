//! Issue 11's questions and issue 10's tasks through the real engine on the demo data: each gets
//! the answer it asked for — a lookup opens with its fact, a what-if with the scenario's monthly
//! cost and saving, a greeting with a short reply naming the tenant's own teams and models — and
//! a task the figures its fields ask for. `SHOW_ANSWERS=1` prints each answer.

use crate::support::{as_json, completed, demo, engine_with_demo, principal, request, run_to_end};
use agentwire_analytics::PriceTable;
use agentwire_analytics::format;
use agentwire_analytics::query::Period;
use agentwire_engine::{Engine, EngineConfig};
use agentwire_protocol::{AgentKind, EventKind, RunEvent, StartRun};
use chrono::NaiveDate;
use serde_json::{Value, json};

async fn ask(engine: &Engine, agent: AgentKind, question: &str) -> Vec<RunEvent> {
    run(engine, request(agent, question)).await
}

async fn run(engine: &Engine, start: StartRun) -> Vec<RunEvent> {
    let events = run_to_end(engine, &principal("ana", "acme"), start).await;
    let violations = agentwire_check::grammar::check_run(&as_json(&events));
    assert!(violations.is_empty(), "{violations:?}");
    if std::env::var_os("SHOW_ANSWERS").is_some() {
        let (response, _) = completed(&events);
        println!("=== {:?}\n{response}\n", started(&events).0);
    }
    events
}

fn started(events: &[RunEvent]) -> (String, Vec<String>) {
    match &events[0].kind {
        EventKind::AgentStarted { user_request, plan } => (user_request.clone(), plan.clone()),
        other => panic!("first event {other:?}"),
    }
}

fn tools(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ToolExecuting { tool, .. } => Some(tool.clone()),
            _ => None,
        })
        .collect()
}

/// The answer's opening: everything before its first blank line.
fn opening(response: &str) -> &str {
    response.split("\n\n").next().unwrap_or(response)
}

fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, day).unwrap()
}

/// Spend of the demo records that pass `keep` within `period`, by a plain loop.
fn spend(period: Period, keep: impl Fn(&agentwire_analytics::UsageRecord) -> bool) -> f64 {
    let prices = PriceTable::embedded();
    demo()
        .records
        .iter()
        .filter(|r| period.contains(r.timestamp.date_naive()) && keep(r))
        .map(|r| prices.cost_usd(r))
        .sum()
}

#[tokio::test]
async fn issue_11s_questions_get_fitting_answers() {
    let (engine, _dir) = engine_with_demo(EngineConfig::default()).await;

    // 1. A comparison of two months for one team on one family, which the demo's search team
    // does not use: said plainly, with where its spend is instead.
    let events = ask(
        &engine,
        AgentKind::Supervisor,
        "What did the search team spend on Claude in October compared with September?",
    )
    .await;
    assert_eq!(started(&events).1, ["supervisor", "triage", "data"]);
    assert_eq!(tools(&events), ["classify_request", "run_query"]);
    let (response, report) = completed(&events);
    let open = opening(response);
    assert!(
        open.starts_with("There is no usage for the search team on Claude models"),
        "{open}"
    );
    assert!(open.contains("October 2026 or September 2026"), "{open}");
    let search_october = spend(Period::new(d(10, 1), d(10, 31)), |r| {
        r.team.as_deref() == Some("search")
    });
    assert!(
        open.contains(&format::usd(search_october).replace("$", ""))
            || open.contains("Without the model filter"),
        "{open}"
    );
    assert!(!response.contains("| $0.00"), "no $0 table: {response}");
    assert_eq!(report["intent"], "lookup");

    // 2. A ranking by a per-request metric.
    let events = ask(
        &engine,
        AgentKind::Supervisor,
        "Which feature uses the most output tokens per request?",
    )
    .await;
    let (response, _) = completed(&events);
    assert!(
        opening(response).starts_with("The feature with the most output tokens per request"),
        "{response}"
    );
    assert!(!response.contains("### Recommendations"));

    // 3. "Worth it, or should we switch?": a what-if, monthly cost and saving first.
    let events = ask(
        &engine,
        AgentKind::Supervisor,
        "Is gemini-2.5-pro worth it for doc-summaries, or should we switch?",
    )
    .await;
    assert_eq!(started(&events).1, ["supervisor", "triage", "optimization"]);
    assert_eq!(tools(&events), ["classify_request", "price_scenario"]);
    let (response, report) = completed(&events);
    let open = opening(response);
    assert!(
        open.contains("a month") && open.contains("saving"),
        "{open}"
    );
    assert!(response.contains("Assumptions:"), "{response}");
    assert!(
        report["what_if"]["priced"]["monthly_saving_usd"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // 4. Everything from one provider to another.
    let events = ask(
        &engine,
        AgentKind::Supervisor,
        "How much would we save if we moved everything from Anthropic to OpenAI?",
    )
    .await;
    let (response, report) = completed(&events);
    let w = &report["what_if"]["priced"];
    let current = w["current_monthly_usd"].as_f64().unwrap();
    assert!(
        opening(response).contains(&format::usd(current)),
        "{response}"
    );
    assert!(
        opening(response).starts_with("Moving your traffic on Anthropic models to OpenAI"),
        "{response}"
    );

    // 5. A latency breakdown: no spend tables.
    let events = ask(
        &engine,
        AgentKind::Supervisor,
        "What's our p95 latency by model?",
    )
    .await;
    let (response, _) = completed(&events);
    assert!(
        opening(response).starts_with("P95 latency by model"),
        "{response}"
    );
    assert!(response.contains("| Model | P95 latency |"), "{response}");
    assert!(!response.contains("Total spend"), "{response}");

    // 6. hello: a short reply with three of the tenant's own example questions.
    let events = ask(&engine, AgentKind::Supervisor, "hello").await;
    assert_eq!(started(&events).1, ["supervisor", "triage"]);
    assert_eq!(tools(&events), ["classify_request"]);
    let (response, report) = completed(&events);
    assert!(response.len() < 1_500, "{response}");
    assert!(response.starts_with("Hello!"), "{response}");
    let examples = report["reply"]["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 3);
    let team = &demo().facts.teams[0];
    assert!(
        demo()
            .facts
            .teams
            .iter()
            .any(|t| response.contains(t.as_str())),
        "names a team such as {team}: {response}"
    );
}

#[tokio::test]
async fn absent_names_and_periods_are_said_plainly() {
    let (engine, _dir) = engine_with_demo(EngineConfig::default()).await;
    let events = ask(
        &engine,
        AgentKind::Supervisor,
        "How much did the marketing team spend last month?",
    )
    .await;
    let (response, _) = completed(&events);
    assert!(
        response.starts_with("Your data has no team named marketing; the closest are"),
        "{response}"
    );
    let events = ask(&engine, AgentKind::Data, "What did we spend in March 2025?").await;
    let (response, _) = completed(&events);
    assert!(response.starts_with("Your data covers"), "{response}");
    assert!(!response.contains('|'), "no table: {response}");
}

#[tokio::test]
async fn any_agent_addressed_directly_answers_a_lookup() {
    let (engine, _dir) = engine_with_demo(EngineConfig::default()).await;
    let total = spend(Period::new(d(10, 1), d(10, 31)), |_| true);
    for agent in AgentKind::ALL {
        let events = ask(&engine, agent, "How much did we spend in October?").await;
        let (response, _) = completed(&events);
        assert!(
            opening(response).contains(&format::usd(total)),
            "{agent}: {response}"
        );
        assert!(tools(&events).contains(&"run_query".to_owned()), "{agent}");
    }
}

fn task(agent: &str, data: Value) -> StartRun {
    let frame = json!({"type": "agent_execute", "agent_type": agent, "data": data});
    match agentwire_protocol::ClientMessage::from_value(frame).unwrap() {
        agentwire_protocol::ClientMessage::StartRun(start) => start,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn issue_10s_tasks_get_the_figures_their_fields_ask_for() {
    let (engine, _dir) = engine_with_demo(EngineConfig::default()).await;

    let events = run(
        &engine,
        task(
            "optimization_agent",
            json!({"optimization_target":"cost_reduction","current_metrics":{"monthly_spend":25000,"utilization_rate":0.73},"constraints":{"max_performance_impact":0.05}}),
        ),
    )
    .await;
    let (question, _) = started(&events);
    assert!(
        question.starts_with("Optimization task: cost optimization"),
        "{question}"
    );
    let (response, report) = completed(&events);
    assert!(
        response.contains("You state a monthly spend of **$25,000.00**"),
        "{response}"
    );
    assert!(
        response.contains(
            "Not used: constraints.max_performance_impact, current_metrics.utilization_rate"
        ),
        "{response}"
    );
    assert_eq!(
        report["task"]["monthly_spend_compared"]["stated_usd"],
        25000.0
    );

    let events = run(
        &engine,
        task(
            "supervisor_agent",
            json!({"task":"comprehensive_system_analysis","requirements":{"data_analysis":true,"optimization_recommendations":true,"implementation_plan":true},"priority":"high"}),
        ),
    )
    .await;
    assert_eq!(
        started(&events).1,
        [
            "supervisor",
            "triage",
            "data",
            "optimization",
            "actions",
            "reporting"
        ]
    );
    let (response, _) = completed(&events);
    assert!(response.contains("Not used: priority"), "{response}");

    let events = run(
        &engine,
        task(
            "unified_data_agent",
            json!({"analysis_type":"anomaly_detection","metrics":["response_time","error_rate"],"time_range":"last_7_days"}),
        ),
    )
    .await;
    let (response, report) = completed(&events);
    assert!(
        response.contains("Window: 2026-11-19 to 2026-11-25"),
        "{response}"
    );
    assert_eq!(report["scope"]["period"]["first"], "2026-11-19");
    let series: Vec<&str> = tools(&events)
        .iter()
        .filter(|t| *t == "run_query")
        .map(|_| "run_query")
        .collect();
    assert_eq!(series.len(), 2, "p95 latency and error rate by day");

    let events = run(
        &engine,
        task(
            "unified_data_agent",
            json!({"planning_horizon":"6_months","growth_projection":1.3}),
        ),
    )
    .await;
    let (response, report) = completed(&events);
    assert!(
        response.contains("**6 months at 1.3x growth**"),
        "{response}"
    );
    let months = report["task"]["growth_projection"]["months"]
        .as_array()
        .unwrap();
    assert_eq!(months.len(), 6);
    let first = report["task"]["growth_projection"]["monthly_cost_usd"]
        .as_f64()
        .unwrap();
    let last = months[5]["cost_usd"].as_f64().unwrap();
    assert!((last / first - 1.3).abs() < 1e-9);
}

#[tokio::test]
async fn every_shape_opens_with_its_fact() {
    let (engine, _dir) = engine_with_demo(EngineConfig::default()).await;
    let october = Period::new(d(10, 1), d(10, 31));
    let cases: [(&str, String); 4] = [
        (
            "Which cost more in October, gpt-4o or claude-sonnet-4?",
            format::usd(spend(october, |r| r.model == "gpt-4o")),
        ),
        (
            "Spend by team in October",
            format::usd(spend(october, |_| true)),
        ),
        (
            "How has our weekly spend trended since September?",
            "Spend by week from 2026-09-01 to 2026-11-25 went from".to_owned(),
        ),
        (
            "What was the cost per request of gpt-4o in October?",
            "The cost per request on gpt-4o in October 2026 was **$0.00".to_owned(),
        ),
    ];
    for (question, expected) in cases {
        let events = ask(&engine, AgentKind::Supervisor, question).await;
        let (response, _) = completed(&events);
        assert!(
            opening(response).contains(&expected),
            "{question}: {expected}\n{response}"
        );
    }
}
