//! Crash recovery on a real SQLite store (issue 5): a run a killed process left in the middle of a
//! tool call gets that call closed and a terminal `agent_error` `INTERRUPTED` at startup, so its
//! replay keeps the run grammar. The crash itself, with the real binary and SIGKILL, is in
//! crates/cli/tests/crash.rs; this is the deterministic regression test for what it found.

use crate::support::{as_json, principal, store, stored_events};
use agentwire_engine::{Engine, EngineConfig};
use agentwire_protocol::{EventKind, RunEvent, ServerFrame};
use agentwire_store::{RunRecord, RunStatus, Store};
use serde_json::{Value, json};
use std::sync::Arc;

/// Writes a run and its first events as a process would have before being killed.
async fn crashed_run(store: &Arc<dyn Store>, run_id: &str, events: &[EventKind]) {
    store
        .upsert_thread("alice", "acme", "thr_1", "spend?")
        .await
        .unwrap();
    store
        .create_run(&RunRecord {
            run_id: run_id.into(),
            thread_id: "thr_1".into(),
            user_id: "alice".into(),
            tenant_id: "acme".into(),
            agent: "supervisor".into(),
            user_request: "spend?".into(),
            status: RunStatus::Running,
            created_at: agentwire_protocol::time::now(),
            finished_at: None,
            last_seq: 0,
        })
        .await
        .unwrap();
    for (i, kind) in events.iter().enumerate() {
        let seq = i as u64 + 1;
        let event = RunEvent {
            run_id: run_id.into(),
            thread_id: "thr_1".into(),
            seq,
            agent: if i == 0 { "supervisor" } else { "data" }.into(),
            timestamp: agentwire_protocol::time::now(),
            kind: kind.clone(),
        };
        store
            .append_event(
                run_id,
                seq,
                kind.type_name(),
                &ServerFrame::Event(event).to_json(),
            )
            .await
            .unwrap();
    }
}

fn executing(id: &str) -> EventKind {
    EventKind::ToolExecuting {
        tool: "usage_summary".into(),
        tool_call_id: id.into(),
        args: json!({}),
    }
}

#[tokio::test]
async fn a_tool_call_left_open_by_a_crash_is_closed_before_interrupted() {
    let (store, _dir) = store().await;
    crashed_run(
        &store,
        "run_open_tool",
        &[
            EventKind::AgentStarted {
                user_request: "spend?".into(),
                plan: vec!["data".into()],
            },
            executing("call_1"),
            EventKind::ToolCompleted {
                tool: "usage_summary".into(),
                tool_call_id: "call_1".into(),
                status: agentwire_protocol::ToolStatus::Ok,
                result: "done".into(),
                data: agentwire_protocol::ToolData::null(),
                duration_ms: 3,
                cached: false,
            },
            executing("call_2"),
        ],
    )
    .await;
    let engine = Engine::start(store.clone(), EngineConfig::default())
        .await
        .unwrap();

    let alice = principal("alice", "acme");
    let events = stored_events(&engine, &alice, "run_open_tool", 0)
        .await
        .unwrap();
    let violations = agentwire_check::grammar::check_run(&as_json(&events));
    assert!(violations.is_empty(), "{violations:#?}");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    match &events[4].kind {
        EventKind::ToolCompleted {
            tool_call_id,
            status,
            result,
            ..
        } => {
            assert_eq!(tool_call_id, "call_2");
            assert_eq!(*status, agentwire_protocol::ToolStatus::Error);
            assert!(result.contains("server stopped"), "{result}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events[4].agent, "data",
        "closed by the agent that opened it"
    );
    assert!(matches!(
        &events[5].kind,
        EventKind::AgentError { error_code, retryable: true, .. }
            if *error_code == agentwire_protocol::ErrorCode::Interrupted
    ));
    let run = store.get_run("run_open_tool").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);

    // Recovery is idempotent: a second start finds nothing in flight.
    let engine = Engine::start(store.clone(), EngineConfig::default())
        .await
        .unwrap();
    assert_eq!(
        stored_events(&engine, &alice, "run_open_tool", 0)
            .await
            .unwrap()
            .len(),
        6
    );
}

#[tokio::test]
async fn a_run_killed_between_steps_gets_only_the_terminal_event() {
    let (store, _dir) = store().await;
    crashed_run(
        &store,
        "run_between",
        &[
            EventKind::AgentStarted {
                user_request: "spend?".into(),
                plan: vec!["data".into()],
            },
            EventKind::AgentThinking {
                message: "looking at the spend".into(),
            },
        ],
    )
    .await;
    let engine = Engine::start(store.clone(), EngineConfig::default())
        .await
        .unwrap();
    let alice = principal("alice", "acme");
    let events = stored_events(&engine, &alice, "run_between", 0)
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].kind.type_name(), "agent_error");
}

/// Recovery reads a run's log a page at a time: a tool call opened on the first page and a log
/// that runs on past several pages still get the call closed and the terminal event after the
/// very last persisted event.
#[tokio::test]
async fn a_crashed_run_with_a_log_longer_than_a_page_is_closed_after_its_last_event() {
    let (store, _dir) = store().await;
    let page = usize::try_from(agentwire_engine::DEFAULT_LOG_PAGE).unwrap();
    let mut events = vec![
        EventKind::AgentStarted {
            user_request: "spend?".into(),
            plan: vec!["data".into()],
        },
        executing("call_1"),
    ];
    events.extend((0..2 * page + 5).map(|i| EventKind::AgentThinking {
        message: format!("step {i}"),
    }));
    crashed_run(&store, "run_long", &events).await;
    let engine = Engine::start(store.clone(), EngineConfig::default())
        .await
        .unwrap();
    let logged = stored_events(&engine, &principal("alice", "acme"), "run_long", 0)
        .await
        .unwrap();
    assert_eq!(logged.len(), events.len() + 2);
    let violations = agentwire_check::grammar::check_run(&as_json(&logged));
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(matches!(
        &logged[events.len()].kind,
        EventKind::ToolCompleted { tool_call_id, .. } if tool_call_id == "call_1"
    ));
    assert_eq!(logged.last().unwrap().kind.type_name(), "agent_error");
}

/// Issue 15: a run whose terminal event is in the log but whose status still says it is going
/// (the status update failed after the event was written) has only its status mended at the
/// next recovery: nothing is appended after its terminal event.
#[tokio::test]
async fn a_logged_end_with_an_unrecorded_status_is_mended_without_new_events() {
    let (store, _dir) = store().await;
    crashed_run(
        &store,
        "run_ended",
        &[
            EventKind::AgentStarted {
                user_request: "spend?".into(),
                plan: vec!["data".into()],
            },
            EventKind::AgentCompleted {
                response: "the answer".into(),
                report: Value::Null,
                duration_ms: 5,
            },
        ],
    )
    .await;
    let engine = Engine::start(store.clone(), EngineConfig::default())
        .await
        .unwrap();
    let run = store.get_run("run_ended").await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let events = stored_events(&engine, &principal("alice", "acme"), "run_ended", 0)
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].kind.type_name(), "agent_completed");
}

#[tokio::test]
async fn a_usage_upload_left_open_by_a_crash_is_undone_at_startup() {
    let (store, _dir) = store().await;
    // A process died between two chunks of an upload: its rows are staged, never visible.
    let upload = store.begin_usage_upload("acme").await.unwrap();
    let record = agentwire_store::UsageRecord::new(
        agentwire_protocol::time::now(),
        "openai",
        "gpt-4o",
        100,
        20,
    );
    store.stage_usage(&upload, &vec![record; 3]).await.unwrap();
    assert_eq!(store.usage_count("acme").await.unwrap(), 0);

    let _engine = Engine::start(store.clone(), EngineConfig::default())
        .await
        .unwrap();
    // Undone, not left to be committed by anyone: the upload is gone and its rows with it.
    assert!(matches!(
        store.commit_usage_upload(&upload).await,
        Err(agentwire_store::StoreError::UploadNotOpen(_))
    ));
    assert_eq!(store.usage_count("acme").await.unwrap(), 0);
}
