//! Setup shared by the engine's integration tests. Everything is real: a SQLite store in a
//! temporary directory, the engine over it, the demo data set ingested as a tenant's own records.

use agentwire_analytics::{DemoConfig, DemoDataset, generate_demo};
use agentwire_engine::{Engine, EngineConfig, EngineError, EventStream, Principal};
use agentwire_protocol::{
    AgentKind, ErrorCode, EventKind, RunEvent, RunParams, ServerFrame, StartRun,
};
use agentwire_store::Store;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long one event may take before a test calls the run stalled; never a pass/fail timing.
/// Generous: a debug build loads a tenant of a million records in about 14 s.
const STALLED: Duration = Duration::from_secs(120);

/// A store in a temporary directory; the directory lives as long as the returned guard.
pub async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("engine.db").display());
    (agentwire_store::connect(&url).await.unwrap(), dir)
}

/// Every persisted event of a run after `after_seq`, read page by page as a client's history
/// read does.
pub async fn stored_events(
    engine: &Engine,
    who: &Principal,
    run_id: &str,
    after_seq: u64,
) -> Result<Vec<RunEvent>, EngineError> {
    let mut pages = engine.run_events(who, run_id, after_seq).await?;
    let mut events = Vec::new();
    while let Some(page) = pages.next_page().await? {
        events.extend(page);
    }
    Ok(events)
}

/// An engine over a fresh store.
pub async fn engine(config: EngineConfig) -> (Engine, tempfile::TempDir) {
    let (store, dir) = store().await;
    (Engine::start(store, config).await.unwrap(), dir)
}

/// An engine over a fresh store in which tenant `acme` has ingested the demo data set.
pub async fn engine_with_demo(config: EngineConfig) -> (Engine, tempfile::TempDir) {
    let (engine, dir) = engine(config).await;
    engine.ingest("acme", demo().records.clone()).await.unwrap();
    (engine, dir)
}

/// The demo data set, generated once per test binary.
pub fn demo() -> &'static DemoDataset {
    static DEMO: OnceLock<DemoDataset> = OnceLock::new();
    DEMO.get_or_init(|| generate_demo(&DemoConfig::default()))
}

pub fn principal(user: &str, tenant: &str) -> Principal {
    Principal {
        user_id: user.into(),
        tenant_id: tenant.into(),
    }
}

pub fn request(agent: AgentKind, text: &str) -> StartRun {
    StartRun {
        id: None,
        agent,
        user_request: text.into(),
        thread_id: None,
        params: RunParams::default(),
    }
}

/// Every remaining event of the stream, up to and including the terminal one.
pub async fn drain(mut events: EventStream) -> Vec<RunEvent> {
    let mut out = Vec::new();
    while let Some(event) = tokio::time::timeout(STALLED, events.next())
        .await
        .expect("run stalled")
    {
        out.push(event);
    }
    out
}

/// Reads events until one matches; every event read, the matching one last.
pub async fn until(
    events: &mut EventStream,
    mut want: impl FnMut(&RunEvent) -> bool,
) -> Vec<RunEvent> {
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(STALLED, events.next())
        .await
        .expect("run stalled")
    {
        let done = want(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("the run ended before the awaited event: {seen:#?}");
}

/// The events as they go on the wire, for the run grammar checker.
pub fn as_json(events: &[RunEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| serde_json::to_value(ServerFrame::Event(e.clone())).unwrap())
        .collect()
}

/// Starts a run and reads it to its terminal event.
pub async fn run_to_end(engine: &Engine, who: &Principal, request: StartRun) -> Vec<RunEvent> {
    let started = engine.start_run(who, request).await.unwrap();
    drain(started.events).await
}

/// The answer of a run that completed: its Markdown `response` and its `report`.
pub fn completed(events: &[RunEvent]) -> (&str, &Value) {
    match events.last().map(|e| &e.kind) {
        Some(EventKind::AgentCompleted {
            response, report, ..
        }) => (response, report),
        _ => panic!("the run did not complete: {events:#?}"),
    }
}

/// The error a run ended with: its code, message and whether it is retryable.
pub fn failed(events: &[RunEvent]) -> (ErrorCode, &str, bool) {
    match events.last().map(|e| &e.kind) {
        Some(EventKind::AgentError {
            error_code,
            message,
            retryable,
        }) => (*error_code, message, *retryable),
        _ => panic!("the run did not end with agent_error: {events:#?}"),
    }
}
