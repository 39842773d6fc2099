//! Runs through the engine alone, on a real SQLite store: every agent answers, the grammar holds,
//! cancel, time limit, NO_DATA, replay and limits behave as docs/protocol.md says.

use crate::support::{
    as_json, completed, drain, engine, engine_with_demo, failed, principal, request, run_to_end,
    stored_events,
};
use agentwire_engine::{EngineConfig, EngineError};
use agentwire_protocol::{AgentKind, ErrorCode, EventKind, RunEvent};
use std::time::Duration;

#[tokio::test]
async fn every_agent_answers_the_demo_data_with_a_valid_run() {
    let (engine, _dir) = engine_with_demo(EngineConfig::default()).await;
    let who = principal("alice", "acme");
    for agent in AgentKind::ALL {
        let ask = request(agent, "How can we reduce our AI costs?");
        let events = run_to_end(&engine, &who, ask).await;
        let violations = agentwire_check::grammar::check_run(&as_json(&events));
        assert!(violations.is_empty(), "{agent}: {violations:?}");
        let (response, report) = completed(&events);
        assert!(response.contains('$'), "{agent}: {response}");
        assert!(report.is_object());
        if std::env::var_os("SHOW_RUNS").is_some() {
            for e in &events {
                println!(
                    "{}",
                    serde_json::to_string(&agentwire_protocol::ServerFrame::Event(e.clone()))
                        .unwrap()
                );
            }
        }
    }
}

#[tokio::test]
async fn a_tenant_without_data_gets_no_data() {
    let (engine, _dir) = engine(EngineConfig::default()).await;
    let ask = request(AgentKind::Data, "what did we spend?");
    let events = run_to_end(&engine, &principal("bob", "empty"), ask).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let (error_code, message, retryable) = failed(&events);
    assert_eq!(error_code, ErrorCode::NoData);
    assert!(message.contains("agentwire ingest"), "{message}");
    assert!(!retryable);
}

#[tokio::test]
async fn demo_data_mode_answers_tenants_without_data() {
    let (engine, _dir) = engine(EngineConfig {
        demo_data: true,
        ..EngineConfig::default()
    })
    .await;
    let ask = request(AgentKind::Data, "what did we spend?");
    let events = run_to_end(&engine, &principal("carol", "new-co"), ask).await;
    let (_, report) = completed(&events);
    assert_eq!(report["data_coverage"]["source"], "demo");
}

#[tokio::test]
async fn cancel_stops_the_run_with_nothing_after_the_terminal_event() {
    let config = EngineConfig {
        step_delay: Duration::from_millis(40),
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_demo(config).await;
    let who = principal("alice", "acme");
    let mut started = engine
        .start_run(&who, request(AgentKind::Supervisor, "reduce costs"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(started.events.next().await.unwrap());
    }
    engine.cancel(&who, &started.run_id).await.unwrap();
    seen.extend(drain(started.events).await);
    assert!(
        matches!(seen.last().unwrap().kind, EventKind::AgentCancelled { .. }),
        "{:?}",
        seen.last()
    );
    assert!(agentwire_check::grammar::check_run(&as_json(&seen)).is_empty());
    // The log holds exactly what was streamed, and nothing is appended later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stored = stored_events(&engine, &who, &started.run_id, 0)
        .await
        .unwrap();
    assert_eq!(stored, seen);
    // Another user cannot see or cancel it.
    let mallory = principal("mallory", "acme");
    assert!(matches!(
        engine.cancel(&mallory, &started.run_id).await,
        Err(EngineError::RunNotFound)
    ));
    assert!(matches!(
        engine.follow(&mallory, &started.run_id, 0).await,
        Err(EngineError::RunNotFound)
    ));
}

#[tokio::test]
async fn the_time_limit_ends_a_run_with_timeout() {
    let config = EngineConfig {
        step_delay: Duration::from_millis(50),
        run_timeout: Duration::from_millis(120),
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_demo(config).await;
    let ask = request(AgentKind::Supervisor, "reduce costs");
    let events = run_to_end(&engine, &principal("alice", "acme"), ask).await;
    let (error_code, _, retryable) = failed(&events);
    assert_eq!(error_code, ErrorCode::Timeout);
    assert!(retryable);
    assert!(agentwire_check::grammar::check_run(&as_json(&events)).is_empty());
}

#[tokio::test]
async fn follow_replays_then_continues_live_without_gaps() {
    let config = EngineConfig {
        step_delay: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_demo(config).await;
    let who = principal("alice", "acme");
    let mut started = engine
        .start_run(
            &who,
            request(AgentKind::Supervisor, "where did the money go"),
        )
        .await
        .unwrap();
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(started.events.next().await.unwrap());
    }
    drop(started.events);
    let rest = drain(engine.follow(&who, &started.run_id, 5).await.unwrap()).await;
    let all: Vec<RunEvent> = first.into_iter().chain(rest).collect();
    assert!(agentwire_check::grammar::check_run(&as_json(&all)).is_empty());
    // After the run ended, follow reads the log.
    let replay = drain(engine.follow(&who, &started.run_id, 0).await.unwrap()).await;
    assert_eq!(replay, all);
    assert!(
        drain(engine.follow(&who, &started.run_id, 10_000).await.unwrap())
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn history_and_replay_read_the_log_in_pages_and_return_it_whole() {
    let config = EngineConfig {
        log_page: 3,
        runs_page: 1,
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_demo(config).await;
    let who = principal("alice", "acme");
    let mut runs = Vec::new();
    for question in ["where did the money go", "spend by model last month"] {
        let mut ask = request(AgentKind::Supervisor, question);
        ask.thread_id = Some("thr_paged".into());
        let started = engine.start_run(&who, ask).await.unwrap();
        let run_id = started.run_id.clone();
        let streamed = drain(started.events).await;
        assert!(streamed.len() > 3, "a run spans several pages");
        runs.push((run_id, streamed));
    }
    for (run_id, streamed) in &runs {
        // A run's events: every page at most `log_page`, all of them in order.
        let mut pages = engine.run_events(&who, run_id, 0).await.unwrap();
        let mut read = Vec::new();
        while let Some(page) = pages.next_page().await.unwrap() {
            assert!(!page.is_empty() && page.len() <= 3, "{}", page.len());
            read.extend(page);
        }
        assert_eq!(&read, streamed);
        assert_eq!(
            &stored_events(&engine, &who, run_id, 2).await.unwrap(),
            &streamed[2..]
        );
        // Resuming a finished run replays its log, page by page, whole.
        let replay = drain(engine.follow(&who, run_id, 0).await.unwrap()).await;
        assert_eq!(&replay, streamed);
    }
    // The thread: a run at a time, oldest first, each with its whole log.
    let mut history = engine.thread_history(&who, "thr_paged");
    let mut read = Vec::new();
    while let Some(page) = history.next_runs().await.unwrap() {
        assert_eq!(page.len(), 1);
        for run in page {
            let mut events = Vec::new();
            let mut pages = history.events(&run);
            while let Some(page) = pages.next_page().await.unwrap() {
                events.extend(page);
            }
            read.push((run.run_id, events));
        }
    }
    assert_eq!(read, runs);
}

#[tokio::test]
async fn limits_on_threads_and_concurrent_runs() {
    let config = EngineConfig {
        step_delay: Duration::from_millis(200),
        max_concurrent_runs_per_user: 2,
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_demo(config).await;
    let who = principal("alice", "acme");
    let mut on_thread = request(AgentKind::Data, "spend");
    on_thread.thread_id = Some("t1".into());
    let first = engine.start_run(&who, on_thread.clone()).await.unwrap();
    match engine.start_run(&who, on_thread.clone()).await {
        Err(EngineError::RunConflict { run_id }) => assert_eq!(run_id, first.run_id),
        other => panic!("{other:?}"),
    }
    // The same thread id of another user is another thread.
    let bob = engine
        .start_run(&principal("bob", "acme"), on_thread)
        .await
        .unwrap();
    let _second = engine
        .start_run(&who, request(AgentKind::Data, "spend"))
        .await
        .unwrap();
    match engine
        .start_run(&who, request(AgentKind::Data, "spend"))
        .await
    {
        Err(err @ EngineError::TooManyRuns { .. }) => {
            assert_eq!(err.code(), ErrorCode::RateLimited);
            assert!(err.retry_after_ms().is_some());
        }
        other => panic!("{other:?}"),
    }
    engine.cancel(&who, &first.run_id).await.unwrap();
    engine
        .cancel(&principal("bob", "acme"), &bob.run_id)
        .await
        .unwrap();
    drain(first.events).await;
    // The slot is free again once the run ended.
    engine
        .start_run(&who, request(AgentKind::Triage, "spend"))
        .await
        .unwrap();
}

#[tokio::test]
async fn shutdown_interrupts_runs_past_the_drain_timeout_and_refuses_new_ones() {
    let config = EngineConfig {
        step_delay: Duration::from_millis(100),
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_demo(config).await;
    let who = principal("alice", "acme");
    let started = engine
        .start_run(&who, request(AgentKind::Supervisor, "reduce costs"))
        .await
        .unwrap();
    engine.shutdown(Duration::from_millis(150)).await;
    let events = drain(started.events).await;
    let (error_code, _, retryable) = failed(&events);
    assert_eq!(error_code, ErrorCode::Interrupted);
    assert!(retryable);
    assert!(matches!(
        engine.start_run(&who, request(AgentKind::Data, "x")).await,
        Err(EngineError::ShuttingDown)
    ));
}

/// The same user under another `org_id` is another principal: a run's events carry figures from
/// its tenant's data, so they are not readable, followable or cancellable from the other tenant.
#[tokio::test]
async fn a_users_runs_stay_in_the_tenant_they_ran_in() {
    let config = EngineConfig {
        step_delay: Duration::from_millis(50),
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_demo(config).await;
    let in_acme = principal("admin", "acme");
    let in_other = principal("admin", "other-co");
    let started = engine
        .start_run(&in_acme, request(AgentKind::Data, "what did we spend?"))
        .await
        .unwrap();
    let run_id = started.run_id.clone();
    assert!(matches!(
        engine.follow(&in_other, &run_id, 0).await,
        Err(EngineError::RunNotFound)
    ));
    assert!(matches!(
        engine.cancel(&in_other, &run_id).await,
        Err(EngineError::RunNotFound)
    ));
    let events = drain(started.events).await;
    completed(&events);
    assert!(matches!(
        stored_events(&engine, &in_other, &run_id, 0).await,
        Err(EngineError::RunNotFound)
    ));
    assert!(matches!(
        engine.follow(&in_other, &run_id, 0).await,
        Err(EngineError::RunNotFound)
    ));
    assert_eq!(
        stored_events(&engine, &in_acme, &run_id, 0).await.unwrap(),
        events
    );
    assert!(engine.threads(&in_other, 10).await.unwrap().is_empty());
    assert_eq!(engine.threads(&in_acme, 10).await.unwrap().len(), 1);
    assert!(
        engine
            .thread_history(&in_other, &started.thread_id)
            .next_runs()
            .await
            .unwrap()
            .is_none()
    );
}
