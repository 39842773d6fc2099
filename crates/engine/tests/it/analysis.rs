//! Issue 3: the analytics the agents stand on, seen from the engine. The agents' report carries
//! capacity and every lever; the offline analysis (`agentwire analyze`) composes the same report.

use crate::support::{completed, demo, engine_with_demo, principal, request, run_to_end};
use agentwire_analytics::PriceTable;
use agentwire_engine::{EngineConfig, analyze_usage};
use agentwire_protocol::{AgentKind, EventKind, RunParams};
use std::sync::Arc;

async fn completed_report(agent: AgentKind, params: RunParams) -> (serde_json::Value, Vec<String>) {
    let (engine, _dir) = engine_with_demo(EngineConfig::default()).await;
    let mut ask = request(agent, "How can we reduce our AI costs?");
    ask.params = params;
    let events = run_to_end(&engine, &principal("ana", "acme"), ask).await;
    let thinking = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::AgentThinking { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    (completed(&events).1.clone(), thinking)
}

#[tokio::test]
async fn the_supervisor_report_has_capacity_and_every_demo_lever() {
    let mut params = RunParams::default();
    params
        .extra
        .insert("rate_limits".into(), serde_json::json!(["*=40000:400"]));
    let (report, thinking) = completed_report(AgentKind::Supervisor, params).await;
    let facts = &demo().facts;
    let capacity = &report["capacity"];
    for rate in ["tokens_per_minute", "requests_per_minute"] {
        for p in ["p50", "p95", "p99", "max"] {
            assert!(capacity[rate][p].as_f64().unwrap() > 0.0, "{rate}.{p}");
        }
    }
    assert_eq!(capacity["limits"][0]["limit"]["model"], "*");
    assert!(capacity["forecast"]["backtest"]["holt_winters_mae"].is_number());
    assert!(
        thinking.iter().any(|m| m.contains("tokens/min")),
        "{thinking:#?}"
    );
    let recs = report["recommendations"].as_array().unwrap();
    assert_eq!(recs[0]["lever"], "model_routing");
    assert_eq!(recs[0]["to_model"], facts.routing_target_model.as_str());
    assert!(
        recs.iter().any(|r| r["lever"] == "prompt_caching"
            && r["feature"] == facts.shared_prefix_feature.as_str()),
        "{recs:#?}"
    );
    for r in recs {
        assert!(r["monthly_savings_usd"].as_f64().unwrap() > 0.0);
        assert!(!r["evidence"].as_str().unwrap().is_empty());
        assert!(!r["steps"].as_array().unwrap().is_empty());
    }
    assert_eq!(
        report["anomalies"][0]["start"],
        facts.spike_day.to_string().as_str()
    );
}

#[test]
fn the_offline_report_has_the_fields_the_issue_names() {
    let demo = demo();
    let composed = analyze_usage(
        demo.records.clone(),
        Arc::new(PriceTable::embedded()),
        &[],
        "demo.csv",
    )
    .unwrap();
    let r = &composed.report;
    let s = &r["summary"];
    assert_eq!(s["records"].as_u64().unwrap(), demo.records.len() as u64);
    for key in ["start", "end", "total_cost_usd", "monthly_cost_usd"] {
        assert!(!s[key].is_null(), "summary.{key}");
    }
    let prices = PriceTable::embedded();
    let total: f64 = demo.records.iter().map(|x| prices.cost_usd(x)).sum();
    assert!((s["total_cost_usd"].as_f64().unwrap() - total).abs() < 1e-6 * total);
    let a = &r["anomalies"][0];
    assert_eq!(a["start"], demo.facts.spike_day.to_string().as_str());
    for key in ["end", "expected", "actual", "impact_usd"] {
        assert!(!a[key].is_null(), "anomalies[0].{key}");
    }
    for rate in ["tokens_per_minute", "requests_per_minute"] {
        for p in ["p50", "p95", "p99", "max"] {
            assert!(r["capacity"][rate][p].is_number(), "{rate}.{p}");
        }
    }
    let rec = &r["recommendations"][0];
    for key in ["lever", "monthly_savings_usd", "evidence", "steps"] {
        assert!(!rec[key].is_null(), "recommendations[0].{key}");
    }
    assert_eq!(r["data_coverage"]["source"], "file");
    assert!(composed.response.contains("### Capacity"));
}
