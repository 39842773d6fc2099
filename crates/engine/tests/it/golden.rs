//! The answers pinned byte for byte: the Markdown `response`, the `report` JSON and the run's
//! transcript (every event's agent, type and words, without ids, times or tool data) for the demo
//! data, and the offline reports of real files. A refactor of the agents or the report composer
//! must leave these unchanged; a change meant to alter an answer updates the files on purpose:
//! `UPDATE_GOLDEN=1 cargo test -p agentwire-engine --test it golden`, then review the diff.

use crate::support::{completed, demo, engine, engine_with_demo, principal, request, run_to_end};
use agentwire_analytics::{PriceTable, import_focus, import_series};
use agentwire_engine::{
    ComposedReport, EngineConfig, analyze_focus, analyze_series, analyze_usage,
};
use agentwire_protocol::{AgentKind, EventKind, RunEvent};
use std::path::PathBuf;
use std::sync::Arc;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden")
}

/// Compares `actual` with the golden file `name`, or rewrites the file under `UPDATE_GOLDEN`.
fn assert_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err}; create it with UPDATE_GOLDEN=1 and review it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .map_or_else(
                || expected.lines().count().min(actual.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "{name} differs from its golden file at line {line}:\n  golden: {:?}\n  now:    {:?}",
            expected.lines().nth(line - 1).unwrap_or("<end>"),
            actual.lines().nth(line - 1).unwrap_or("<end>")
        );
    }
}

fn assert_report(name: &str, response: &str, report: &serde_json::Value) {
    assert_golden(&format!("{name}.md"), response);
    assert_golden(
        &format!("{name}.json"),
        &format!("{}\n", serde_json::to_string_pretty(report).unwrap()),
    );
}

/// One line per event: what a person watching the run reads, without ids, times or tool data.
fn transcript(events: &[RunEvent]) -> String {
    let mut out = String::new();
    for e in events {
        let words = match &e.kind {
            EventKind::AgentStarted { user_request, plan } => {
                format!("{user_request:?} plan {}", plan.join(","))
            }
            EventKind::AgentThinking { message } => message.clone(),
            EventKind::ToolExecuting {
                tool,
                tool_call_id,
                args,
            } => format!("{tool} {tool_call_id} {args}"),
            EventKind::ToolCompleted {
                tool,
                tool_call_id,
                status,
                result,
                ..
            } => format!("{tool} {tool_call_id} {status:?}: {result}"),
            EventKind::AgentHandoff {
                from_agent,
                to_agent,
                reason,
            } => format!("{from_agent} -> {to_agent}: {reason}"),
            EventKind::SubagentStarted { parent_agent } => format!("from {parent_agent}"),
            EventKind::SubagentCompleted {
                parent_agent,
                summary,
            } => format!("to {parent_agent}: {summary}"),
            EventKind::Progress { percent, message } => format!("{percent}% {message}"),
            EventKind::AgentCompleted { response, .. } => {
                format!("{} characters", response.len())
            }
            other => format!("{other:?}"),
        };
        out.push_str(&format!(
            "{} {} {}: {words}\n",
            e.seq,
            e.agent,
            e.kind.type_name()
        ));
    }
    out
}

async fn pin_run(name: &str, agent: AgentKind, question: &str, rate_limits: Option<&str>) {
    let (engine, _dir) = engine_with_demo(EngineConfig::default()).await;
    let mut ask = request(agent, question);
    if let Some(limits) = rate_limits {
        ask.params
            .extra
            .insert("rate_limits".into(), serde_json::json!(limits));
    }
    let events = run_to_end(&engine, &principal("ana", "acme"), ask).await;
    let (response, report) = completed(&events);
    assert_report(name, response, report);
    assert_golden(&format!("{name}.events.txt"), &transcript(&events));
}

#[tokio::test]
async fn every_entry_agent_answers_a_cost_question_as_before() {
    for agent in AgentKind::ALL {
        pin_run(
            &format!("cost-{agent}"),
            agent,
            "How can we reduce our AI costs?",
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn the_supervisor_answers_other_intents_as_before() {
    pin_run(
        "anomaly-supervisor",
        AgentKind::Supervisor,
        "Why did spend spike last week for team search?",
        None,
    )
    .await;
    pin_run(
        "capacity-supervisor",
        AgentKind::Supervisor,
        "When will we hit our rate limit in the next 14 days?",
        Some("*=40000:400,gpt-4o=20000"),
    )
    .await;
    pin_run("general-triage", AgentKind::Triage, "hello", None).await;
}

#[tokio::test]
async fn demo_data_answers_say_so_as_before() {
    let (engine, _dir) = engine(EngineConfig {
        demo_data: true,
        ..EngineConfig::default()
    })
    .await;
    let ask = request(AgentKind::Reporting, "Give me the monthly report");
    let events = run_to_end(&engine, &principal("carol", "new-co"), ask).await;
    let (response, report) = completed(&events);
    assert_report("demo-reporting", response, report);
}

fn pin_offline(name: &str, composed: &ComposedReport) {
    assert_report(name, &composed.response, &composed.report);
}

#[test]
fn the_offline_usage_report_is_as_before() {
    let composed = analyze_usage(
        demo().records.clone(),
        Arc::new(PriceTable::embedded()),
        &[agentwire_analytics::capacity::RateLimit::parse("*=40000:400").unwrap()],
        "demo.csv",
    )
    .unwrap();
    pin_offline("offline-usage", &composed);
}

/// A file of `../shared/data`, or `None` (saying so) when the folder is absent.
fn shared(path: &str) -> Option<std::fs::File> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(path);
    match std::fs::File::open(&p) {
        Ok(file) => Some(file),
        Err(err) => {
            println!("skipped: {} cannot be read ({err})", p.display());
            None
        }
    }
}

#[test]
fn the_offline_series_and_billing_reports_are_as_before() {
    if let Some(file) = shared("nab/nyc_taxi.csv") {
        let imported = import_series(file).unwrap();
        let composed = analyze_series(&imported.series, "nyc_taxi.csv").unwrap();
        pin_offline("offline-series", &composed);
    }
    if let Some(file) = shared("focus/focus_sample.csv") {
        let imported = import_focus(file).unwrap();
        let composed = analyze_focus(&imported.rows, "focus_sample.csv").unwrap();
        pin_offline("offline-focus", &composed);
    }
}
