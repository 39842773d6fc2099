//! Runs under load, through the engine alone: a run waiting for an analysis slot still gets its
//! `agent_started` at once and says where it stands in line; an engine whose line is full refuses
//! new runs up front; and every follower of every run gets the run's terminal event. No test here
//! judges a timing: only which events come, and in what order.

use crate::support::{as_json, drain, engine, engine_with_demo, principal, request, until};
use agentwire_engine::{EngineConfig, EngineError};
use agentwire_protocol::{AgentKind, ErrorCode, EventKind, RunEvent};
use std::time::Duration;

fn is_wait(event: &RunEvent) -> bool {
    matches!(&event.kind, EventKind::Progress { message, .. } if message.starts_with("Waiting for an analysis slot"))
}

/// The runs ahead that a wait event names.
fn ahead(event: &RunEvent) -> usize {
    let EventKind::Progress { message, percent } = &event.kind else {
        panic!("{event:?}")
    };
    assert_eq!(*percent, 0.0);
    if message.contains("this run is next") {
        0
    } else {
        message
            .split_whitespace()
            .find_map(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("{message}"))
    }
}

#[tokio::test]
async fn a_run_behind_a_busy_analysis_still_starts_at_once_and_says_where_it_waits() {
    // One analysis slot, held by a slow run: the next runs must wait for it.
    let config = EngineConfig {
        analysis_slots: 1,
        cpu_threads: 1,
        step_delay: Duration::from_millis(300),
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_demo(config).await;
    let mut busy = engine
        .start_run(
            &principal("busy", "acme"),
            request(AgentKind::Supervisor, "How can we reduce our AI costs?"),
        )
        .await
        .unwrap();
    // The busy run is in its analysis once it has handed off to its first agent.
    let busy_head = until(&mut busy.events, |e| {
        matches!(e.kind, EventKind::AgentHandoff { .. })
    })
    .await;
    assert!(matches!(busy_head[0].kind, EventKind::AgentStarted { .. }));

    let mut waiting = Vec::new();
    for user in ["second", "third"] {
        let mut run = engine
            .start_run(
                &principal(user, "acme"),
                request(AgentKind::Data, "What did we spend?"),
            )
            .await
            .unwrap();
        // First agent_started, then the wait, before any analysis of its own.
        let head = until(&mut run.events, is_wait).await;
        assert_eq!(head.len(), 2, "{head:#?}");
        assert!(matches!(head[0].kind, EventKind::AgentStarted { .. }));
        waiting.push((user, ahead(&head[1]), run, head));
    }
    assert_eq!(waiting[0].1, 0, "the second run is next in line");
    assert_eq!(waiting[1].1, 1, "the third run has one ahead of it");

    // The busy run goes away: the line moves, in order, and both queued runs complete.
    engine
        .cancel(&principal("busy", "acme"), &busy.run_id)
        .await
        .unwrap();
    let busy_rest = drain(busy.events).await;
    assert!(matches!(
        busy_rest.last().unwrap().kind,
        EventKind::AgentCancelled { .. }
    ));
    for (user, _, run, head) in waiting {
        let rest = drain(run.events).await;
        let all: Vec<RunEvent> = head.into_iter().chain(rest).collect();
        assert!(
            matches!(all.last().unwrap().kind, EventKind::AgentCompleted { .. }),
            "{user}: {:#?}",
            all.last()
        );
        let violations = agentwire_check::grammar::check_run(&as_json(&all));
        assert!(violations.is_empty(), "{user}: {violations:?}");
    }
}

#[tokio::test]
async fn an_admitted_run_has_its_agent_started_stored_and_ready_to_send() {
    let (engine, _dir) = engine_with_demo(EngineConfig::default()).await;
    let question = "Why did our spend change last week?";
    let mut started = engine
        .start_run(
            &principal("alice", "acme"),
            request(AgentKind::Supervisor, question),
        )
        .await
        .unwrap();
    // The moment the run is accepted, its log holds `agent_started` (as sent, the question in
    // it: a question this short is not left out for the run's row to keep) ...
    let logged = engine
        .store()
        .events_after(&started.run_id, 0, 10)
        .await
        .unwrap();
    assert_eq!(logged.first().map(|e| e.seq), Some(1), "{logged:?}");
    assert!(logged[0].payload.contains(r#""type":"agent_started""#));
    assert!(logged[0].payload.contains(question));
    // ... and it is the first event the stream gives, the question in it, the plan announced.
    let first = until(&mut started.events, |_| true).await;
    let EventKind::AgentStarted { user_request, plan } = &first[0].kind else {
        panic!("{:?}", first[0])
    };
    assert_eq!((first[0].seq, user_request.as_str()), (1, question));
    assert_eq!(plan.first().map(String::as_str), Some("supervisor"));
    // The run goes on from it: seq 2 next, and it completes.
    let rest = drain(started.events).await;
    assert_eq!(rest.first().map(|e| e.seq), Some(2));
    assert!(matches!(
        rest.last().map(|e| &e.kind),
        Some(EventKind::AgentCompleted { .. })
    ));
}

#[tokio::test]
async fn a_full_line_refuses_new_runs_up_front_with_unavailable() {
    let config = EngineConfig {
        analysis_slots: 1,
        max_waiting_runs: 1,
        step_delay: Duration::from_millis(300),
        ..EngineConfig::default()
    };
    let (engine, _dir) = engine_with_demo(config).await;
    let mut busy = engine
        .start_run(
            &principal("busy", "acme"),
            request(AgentKind::Supervisor, "reduce costs"),
        )
        .await
        .unwrap();
    until(&mut busy.events, |e| {
        matches!(e.kind, EventKind::AgentHandoff { .. })
    })
    .await;
    let mut queued = engine
        .start_run(
            &principal("queued", "acme"),
            request(AgentKind::Data, "spend"),
        )
        .await
        .unwrap();
    until(&mut queued.events, is_wait).await;
    match engine
        .start_run(
            &principal("late", "acme"),
            request(AgentKind::Data, "spend"),
        )
        .await
    {
        Err(err @ EngineError::Overloaded { .. }) => {
            assert_eq!(err.code(), ErrorCode::Unavailable);
            assert!(err.retry_after_ms().is_some_and(|ms| ms > 0));
            assert!(!err.is_internal());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Refused runs leave no trace: the queued run still gets its turn.
    engine
        .cancel(&principal("busy", "acme"), &busy.run_id)
        .await
        .unwrap();
    let rest = drain(queued.events).await;
    assert!(matches!(
        rest.last().unwrap().kind,
        EventKind::AgentCompleted { .. }
    ));
}

/// Thousands of short runs (a tenant without data: `agent_started`, then `agent_error`), each
/// followed live twice, from its start and by `follow` while it may be ending: every follower
/// must get the terminal event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_follower_of_thousands_of_short_runs_gets_the_terminal_event() {
    let (engine, _dir) = engine(EngineConfig::default()).await;
    let mut followers = tokio::task::JoinSet::new();
    for i in 0..1_500 {
        let who = principal(&format!("user-{i}"), "empty-tenant");
        let started = engine
            .start_run(&who, request(AgentKind::Data, "what did we spend?"))
            .await
            .unwrap();
        followers.spawn(drain(started.events));
        if let Ok(events) = engine.follow(&who, &started.run_id, 0).await {
            followers.spawn(drain(events));
        }
    }
    let mut followed = 0;
    while let Some(events) = followers.join_next().await {
        let events = events.unwrap();
        let last = events.last().expect("a follower saw nothing");
        assert!(
            last.kind.is_terminal(),
            "a follower ended without the terminal event: {events:?}"
        );
        assert!(matches!(
            last.kind,
            EventKind::AgentError {
                error_code: ErrorCode::NoData,
                ..
            }
        ));
        followed += 1;
    }
    assert_eq!(followed, 3_000);
}
