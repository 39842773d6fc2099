//! The grammar's rules, one test per rule, each on a valid run broken in one way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;

const TS: &str = "2026-11-26T18:04:05.123Z";

fn ev(seq: u64, kind: &str, fields: Value) -> Value {
    let mut obj = json!({
        "type": kind, "timestamp": TS, "run_id": "run_1", "thread_id": "thr_1",
        "seq": seq, "agent": "supervisor",
    });
    for (key, value) in fields.as_object().unwrap() {
        obj[key] = value.clone();
    }
    obj
}

fn started(seq: u64) -> Value {
    ev(
        seq,
        "agent_started",
        json!({"user_request": "where does the money go?", "plan": ["data", "reporting"]}),
    )
}
fn thinking(seq: u64) -> Value {
    ev(
        seq,
        "agent_thinking",
        json!({"message": "spend on gpt-4o rose 41%"}),
    )
}
fn executing(seq: u64, id: &str) -> Value {
    ev(
        seq,
        "tool_executing",
        json!({"tool": "usage_summary", "tool_call_id": id, "args": {"timeframe": "30d"}}),
    )
}
fn completed_tool(seq: u64, id: &str) -> Value {
    ev(
        seq,
        "tool_completed",
        json!({"tool": "usage_summary", "tool_call_id": id, "status": "ok",
               "result": "12 models", "data": {"models": 12}, "duration_ms": 4}),
    )
}
fn completed(seq: u64) -> Value {
    ev(
        seq,
        "agent_completed",
        json!({"response": "## Findings\n...", "report": {"findings": []}, "duration_ms": 40}),
    )
}

fn valid_run() -> Vec<Value> {
    vec![
        started(1),
        thinking(2),
        executing(3, "call_1"),
        completed_tool(4, "call_1"),
        ev(
            5,
            "agent_handoff",
            json!({"from_agent": "supervisor", "to_agent": "data", "reason": "needs numbers"}),
        ),
        ev(6, "subagent_started", json!({"parent_agent": "supervisor"})),
        ev(7, "progress", json!({"percent": 50, "message": "half way"})),
        ev(
            8,
            "subagent_completed",
            json!({"parent_agent": "supervisor", "summary": "done"}),
        ),
        ev(9, "response_delta", json!({"delta": "## Fin"})),
        completed(10),
    ]
}

fn rules_of(violations: &[Violation]) -> Vec<&'static str> {
    violations.iter().map(|v| v.rule).collect()
}

/// Asserts that every violation is of `rule` and that there is at least one.
fn only(violations: &[Violation], rule: &str) {
    assert!(!violations.is_empty(), "expected a violation of {rule}");
    for v in violations {
        assert_eq!(v.rule, rule, "unexpected violation: {v}");
    }
}

#[test]
fn a_valid_run_has_no_violations() {
    let run = valid_run();
    assert_eq!(check_run(&run), vec![]);
    assert!(critical_events_present(&run));
}

#[test]
fn error_and_cancelled_runs_need_no_critical_events() {
    let run = vec![
        started(1),
        ev(
            2,
            "agent_error",
            json!({"error_code": "NO_DATA", "message": "load usage first", "retryable": false}),
        ),
    ];
    assert_eq!(check_run(&run), vec![]);
    let run = vec![
        started(1),
        ev(2, "agent_cancelled", json!({"reason": "user"})),
    ];
    assert_eq!(check_run(&run), vec![]);
}

#[test]
fn rule_3_1_type_and_timestamp() {
    let mut run = valid_run();
    run[1].as_object_mut().unwrap().remove("timestamp");
    run[2]["timestamp"] = json!("yesterday");
    run[3]["timestamp"] = json!("2026-11-26T19:04:05.123+01:00");
    run[4]["timestamp"] = json!(1_764_180_245);
    let violations = check_run(&run);
    only(&violations, rules::TYPE_AND_TIMESTAMP);
    assert_eq!(violations.len(), 4);
    assert!(violations[2].detail.contains("not in UTC"));

    let no_type = json!({"timestamp": TS});
    let violations = check_frame(&no_type);
    only(&violations, rules::TYPE_AND_TIMESTAMP);
    assert!(check_frame(&json!([1, 2])).len() == 1);
    assert_eq!(
        check_frame(&json!({"type": "pong", "timestamp": TS})),
        vec![]
    );
    // +00:00 is UTC too.
    assert_eq!(
        check_frame(&json!({"type": "pong", "timestamp": "2026-11-26T18:04:05.123+00:00"})),
        vec![]
    );
}

#[test]
fn rule_3_2_millisecond_precision() {
    let mut run = valid_run();
    run[1]["timestamp"] = json!("2026-11-26T18:04:05.123456Z");
    run[2]["timestamp"] = json!("2026-11-26T18:04:05Z");
    let violations = check_run(&run);
    only(&violations, rules::TIMESTAMP_MILLIS);
    assert_eq!(violations.len(), 2);
    assert_eq!(violations[0].seq, Some(2));
}

#[test]
fn rule_3_3_run_event_fields() {
    let mut run = valid_run();
    run[1].as_object_mut().unwrap().remove("agent");
    run[2]["thread_id"] = json!(7);
    let violations = check_run(&run);
    only(&violations, rules::RUN_EVENT_FIELDS);
    assert_eq!(violations.len(), 2);
    assert!(violations[0].detail.contains("`agent`"));

    // A missing seq is reported once, under 3.3, and does not cascade into 5.3.
    let mut run = valid_run();
    run[9].as_object_mut().unwrap().remove("seq");
    let violations = check_run(&run);
    only(&violations, rules::RUN_EVENT_FIELDS);
    assert_eq!(violations.len(), 1);
}

#[test]
fn rule_5_1_one_agent_started_first() {
    let mut run = valid_run();
    run.remove(0);
    renumber(&mut run);
    let violations = check_run(&run);
    assert!(rules_of(&violations).contains(&rules::ONE_STARTED_FIRST));
    assert!(
        violations
            .iter()
            .any(|v| v.detail == "the run has no agent_started")
    );

    let mut run = valid_run();
    run.insert(2, started(0));
    renumber(&mut run);
    let violations = check_run(&run);
    only(&violations, rules::ONE_STARTED_FIRST);
    assert_eq!(violations[0].seq, Some(3));

    let mut run = valid_run();
    run.swap(0, 1);
    renumber(&mut run);
    let violations = check_run(&run);
    only(&violations, rules::ONE_STARTED_FIRST);
    assert!(
        violations[0]
            .detail
            .contains("first event is agent_thinking")
    );
}

#[test]
fn rule_5_2_one_terminal_last() {
    let mut run = valid_run();
    run.pop();
    let violations = check_run(&run);
    only(&violations, rules::ONE_TERMINAL_LAST);
    assert_eq!(violations.len(), 1);

    let mut run = valid_run();
    run.push(thinking(11));
    let violations = check_run(&run);
    only(&violations, rules::ONE_TERMINAL_LAST);
    assert_eq!(violations[0].seq, Some(11));
    assert!(violations[0].detail.contains("after the terminal"));

    let mut run = valid_run();
    run.push(ev(11, "agent_cancelled", json!({"reason": "late"})));
    let violations = check_run(&run);
    only(&violations, rules::ONE_TERMINAL_LAST);
    assert!(violations[0].detail.contains("second terminal"));
}

#[test]
fn rule_5_3_seq_contiguous() {
    let mut run = valid_run();
    for event in &mut run {
        let seq = event["seq"].as_u64().unwrap();
        event["seq"] = json!(seq - 1);
    }
    let violations = check_run(&run);
    only(&violations, rules::SEQ_CONTIGUOUS);
    assert_eq!(violations.len(), 1, "one report for a start at 0");

    let mut run = valid_run();
    run.remove(4); // seq 5 missing
    let violations = check_run(&run);
    only(&violations, rules::SEQ_CONTIGUOUS);
    assert_eq!(violations.len(), 1, "a gap is reported once");
    assert!(violations[0].detail.contains("from 4 to 6"));

    let mut run = valid_run();
    run[5]["seq"] = json!(5); // duplicate of the previous
    let violations = check_run(&run);
    only(&violations, rules::SEQ_CONTIGUOUS);
    assert!(violations[0].detail.contains("repeated"));
}

#[test]
fn rule_5_4_tool_pairs() {
    // tool_executing without its tool_completed.
    let mut run = valid_run();
    run.insert(4, executing(0, "call_2"));
    renumber(&mut run);
    let violations = check_run(&run);
    only(&violations, rules::TOOL_PAIRS);
    assert!(violations[0].detail.contains("call_2"));
    assert_eq!(violations[0].seq, Some(5));

    // tool_completed without a tool_executing.
    let mut run = valid_run();
    run.insert(4, completed_tool(0, "call_9"));
    renumber(&mut run);
    let violations = check_run(&run);
    only(&violations, rules::TOOL_PAIRS);
    assert!(violations[0].detail.contains("without a tool_executing"));

    // tool_completed only after the terminal event.
    let mut run = valid_run();
    let late = run.remove(3);
    run.push(late);
    renumber(&mut run);
    let rules = rules_of(&check_run(&run));
    assert!(rules.contains(&rules::TOOL_PAIRS));
    assert!(rules.contains(&rules::ONE_TERMINAL_LAST));

    // completion naming another tool.
    let mut run = valid_run();
    run[3]["tool"] = json!("query_usage");
    let violations = check_run(&run);
    only(&violations, rules::TOOL_PAIRS);

    // Interleaved pairs are fine.
    let run = vec![
        started(1),
        thinking(2),
        executing(3, "a"),
        executing(4, "b"),
        completed_tool(5, "b"),
        completed_tool(6, "a"),
        completed(7),
    ];
    assert_eq!(check_run(&run), vec![]);
}

#[test]
fn rule_5_5_completed_run_has_the_critical_events() {
    let run = vec![started(1), completed(2)];
    let violations = check_run(&run);
    only(&violations, rules::CRITICAL_EVENTS);
    assert_eq!(
        violations.len(),
        2,
        "no thinking, no tool pair: {violations:?}"
    );
    assert!(!critical_events_present(&run));

    let run = vec![
        started(1),
        executing(2, "a"),
        completed_tool(3, "a"),
        completed(4),
    ];
    let violations = check_run(&run);
    only(&violations, rules::CRITICAL_EVENTS);
    assert!(violations[0].detail.contains("agent_thinking"));
}

#[test]
fn rule_5_6_event_fields() {
    let mut run = valid_run();
    run[1]["message"] = json!("  ");
    run[3]["status"] = json!("done");
    run[4].as_object_mut().unwrap().remove("to_agent");
    run[6]["percent"] = json!(140);
    run[9]["report"] = json!("a string");
    let violations = check_run(&run);
    only(&violations, rules::EVENT_FIELDS);
    assert_eq!(violations.len(), 5, "{violations:?}");
    let seqs: Vec<_> = violations.iter().map(|v| v.seq).collect();
    assert_eq!(seqs, vec![Some(2), Some(4), Some(5), Some(7), Some(10)]);

    let mut run = valid_run();
    run[9]["response"] = json!("");
    let violations = check_run(&run);
    only(&violations, rules::EVENT_FIELDS);

    let run = vec![
        started(1),
        ev(
            2,
            "agent_error",
            json!({"error_code": 500, "message": "x", "retryable": false}),
        ),
    ];
    let violations = check_run(&run);
    only(&violations, rules::EVENT_FIELDS);
    assert!(violations[0].detail.contains("error_code"));
}

#[test]
fn rule_5_7_one_run_id_and_thread_id() {
    let mut run = valid_run();
    run[4]["run_id"] = json!("run_2");
    run[5]["thread_id"] = json!("thr_2");
    let violations = check_run(&run);
    only(&violations, rules::ONE_RUN);
    assert_eq!(violations.len(), 2);
    assert_eq!(violations[0].seq, Some(5));
}

#[test]
fn rule_5_8_only_run_event_types() {
    let mut run = valid_run();
    run.insert(
        1,
        json!({"type": "run_accepted", "run_id": "run_1", "timestamp": TS}),
    );
    let violations = check_run(&run);
    only(&violations, rules::RUN_EVENT_TYPES);
    assert_eq!(violations.len(), 1);
}

#[test]
fn an_empty_run_is_not_valid() {
    let rules = rules_of(&check_run(&[]));
    assert!(rules.contains(&rules::ONE_STARTED_FIRST));
    assert!(rules.contains(&rules::ONE_TERMINAL_LAST));
}

#[test]
fn violations_display_rule_seq_and_detail() {
    let v = Violation::new(rules::SEQ_CONTIGUOUS, Some(4), "seq 4 repeated");
    assert_eq!(
        v.to_string(),
        "[5.3 seq starts at 1 and is contiguous] seq 4: seq 4 repeated"
    );
    let v = Violation::new(rules::ONE_STARTED_FIRST, None, "none");
    assert_eq!(v.to_string(), "[5.1 exactly one agent_started, first] none");
}

#[test]
fn rule_ids_are_unique_and_numbered() {
    let mut ids: Vec<_> = rules::ALL.to_vec();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rules::ALL.len());
    for id in rules::ALL {
        assert!(id.starts_with("3.") || id.starts_with("5."), "{id}");
    }
}

#[test]
fn our_own_serialized_events_pass() {
    use agentwire_protocol::{EventKind, RunEvent, ServerFrame};
    let mk = |seq, kind| {
        let frame = ServerFrame::from(RunEvent {
            run_id: "r".into(),
            thread_id: "t".into(),
            seq,
            agent: "data".into(),
            timestamp: agentwire_protocol::time::now(),
            kind,
        });
        serde_json::from_str::<Value>(&frame.to_json()).unwrap()
    };
    let run = vec![
        mk(
            1,
            EventKind::AgentStarted {
                user_request: "q".into(),
                plan: vec!["data".into()],
            },
        ),
        mk(
            2,
            EventKind::AgentThinking {
                message: "m".into(),
            },
        ),
        mk(
            3,
            EventKind::ToolExecuting {
                tool: "t".into(),
                tool_call_id: "c".into(),
                args: json!({}),
            },
        ),
        mk(
            4,
            EventKind::ToolCompleted {
                tool: "t".into(),
                tool_call_id: "c".into(),
                status: agentwire_protocol::ToolStatus::Ok,
                result: "r".into(),
                data: agentwire_protocol::ToolData::null(),
                duration_ms: 1,
                cached: false,
            },
        ),
        mk(
            5,
            EventKind::AgentCompleted {
                response: "r".into(),
                report: json!({}),
                duration_ms: 2,
            },
        ),
    ];
    assert_eq!(check_run(&run), vec![]);
}

fn renumber(run: &mut [Value]) {
    for (i, event) in run.iter_mut().enumerate() {
        event["seq"] = json!(i as u64 + 1);
    }
}
