//! Memoized tool results: one computation per (tenant snapshot, tool, normalized arguments), shared
//! by every run that asks for it while the tenant's data is unchanged.
//!
//! Many runs over one tenant ask the same questions of the same snapshot; the tools are pure
//! functions of the snapshot and their arguments, so their results can be reused. The cache is:
//! - keyed by the snapshot's generation (a number that changes whenever the tenant's data does),
//!   so an ingest makes every older result unreachable, and [`Memo::forget_tenant`] frees them;
//! - single flight: concurrent identical calls compute once, the others wait for that result
//!   (if the computation is abandoned the next waiter computes);
//! - bounded by bytes (the size of each result's serialized `data`), evicting the least recently
//!   used results first.
//!
//! Only tools whose result is a function of the snapshot and their arguments alone may be
//! memoized ([`memoizable`]). This module must not run tools or emit events: `RunContext::tool`
//! does, and asks here first.

use agentwire_protocol::ToolData;
use serde_json::Value;
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Tools whose result depends only on the tenant's snapshot (its records and price table) and the
/// arguments in the key. The questions' tools (`run_query`, `price_scenario`, `project_growth`)
/// take their whole input as arguments: the query or scenario with its dates already resolved
/// against the run's `as_of`, so the key holds them. Tools that read the run's findings
/// (`build_plan`, `compose_report`) or its words (`classify_request`) are not here.
const MEMOIZABLE: &[&str] = &[
    "usage_summary",
    "query_usage",
    "detect_anomalies",
    "forecast_capacity",
    "price_lookup",
    "recommend_optimizations",
    "run_query",
    "price_scenario",
    "project_growth",
];

/// Whether results of `tool` may be shared between runs.
pub(crate) fn memoizable(tool: &str) -> bool {
    MEMOIZABLE.contains(&tool)
}

/// Default bound on the bytes of cached results.
pub(crate) const DEFAULT_MAX_BYTES: usize = 64 << 20;

/// What identifies a result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MemoKey {
    pub tenant_id: String,
    /// The snapshot's generation.
    pub generation: u64,
    pub tool: String,
    /// The arguments (and scope) as canonical JSON: object keys sorted, no whitespace.
    pub args: String,
}

impl MemoKey {
    pub fn new(tenant_id: &str, generation: u64, tool: &str, args: &Value) -> MemoKey {
        let mut text = String::new();
        canonical(args, &mut text);
        MemoKey {
            tenant_id: tenant_id.to_owned(),
            generation,
            tool: tool.to_owned(),
            args: text,
        }
    }
}

/// Writes `value` as JSON with object keys sorted, so equal arguments give equal keys whatever
/// order they were built in.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A tool's result as runs share it: the typed value the agent continues with, its summary, and
/// the structured `data` the tool event shows.
#[derive(Debug)]
pub(crate) struct Cached {
    pub value: Box<dyn Any + Send + Sync>,
    pub summary: String,
    pub data: ToolData,
    /// What the result counts against the bound.
    pub bytes: usize,
}

enum Slot {
    Ready {
        cached: Arc<Cached>,
        last_used: u64,
    },
    /// Being computed; the sender publishes the result (or `None` if abandoned).
    Pending(watch::Receiver<Option<Arc<Cached>>>),
}

#[derive(Default)]
struct Inner {
    slots: HashMap<MemoKey, Slot>,
    bytes: usize,
    clock: u64,
}

/// The cache. One per engine.
pub(crate) struct Memo {
    inner: Mutex<Inner>,
    max_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What [`Memo::lookup`] found.
pub(crate) enum Lookup {
    Hit(Arc<Cached>),
    /// Nobody has it: the caller computes it and completes the flight.
    Compute(Flight),
}

/// The right, and the duty, to compute one key's result. Dropping it without
/// [`Flight::complete`] wakes the waiters, and the next one computes.
pub(crate) struct Flight {
    memo: Arc<Memo>,
    key: Option<MemoKey>,
    tx: watch::Sender<Option<Arc<Cached>>>,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoMetrics {
    pub hits: u64,
    pub misses: u64,
    pub bytes: u64,
    pub entries: u64,
}

impl Memo {
    pub fn new(max_bytes: usize) -> Arc<Memo> {
        Arc::new(Memo {
            inner: Mutex::new(Inner::default()),
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// The cached result, or the flight to compute it. Waits while another caller computes the
    /// same key.
    pub async fn lookup(self: &Arc<Self>, key: MemoKey) -> Lookup {
        loop {
            let mut pending = {
                let Ok(mut inner) = self.inner.lock() else {
                    return Lookup::Compute(self.flight(None));
                };
                inner.clock += 1;
                let now = inner.clock;
                match inner.slots.get_mut(&key) {
                    Some(Slot::Ready { cached, last_used }) => {
                        *last_used = now;
                        self.hits.fetch_add(1, Ordering::Relaxed);
                        return Lookup::Hit(cached.clone());
                    }
                    Some(Slot::Pending(rx)) => rx.clone(),
                    None => {
                        self.misses.fetch_add(1, Ordering::Relaxed);
                        let (tx, rx) = watch::channel(None);
                        inner.slots.insert(key.clone(), Slot::Pending(rx));
                        return Lookup::Compute(Flight {
                            memo: self.clone(),
                            key: Some(key),
                            tx,
                        });
                    }
                }
            };
            // Another run computes it: wait for its result, or for it to give up.
            let result = pending
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|r| r.clone());
            if let Some(cached) = result {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Lookup::Hit(cached);
            }
        }
    }

    fn flight(self: &Arc<Self>, key: Option<MemoKey>) -> Flight {
        Flight {
            memo: self.clone(),
            key,
            tx: watch::channel(None).0,
        }
    }

    /// Drops every result computed over this tenant's data (after an ingest).
    pub fn forget_tenant(&self, tenant_id: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            let mut freed = 0;
            inner.slots.retain(|key, slot| {
                let keep = key.tenant_id != tenant_id || matches!(slot, Slot::Pending(_));
                if !keep && let Slot::Ready { cached, .. } = slot {
                    freed += cached.bytes;
                }
                keep
            });
            inner.bytes -= freed;
        }
    }

    pub fn metrics(&self) -> MemoMetrics {
        let (bytes, entries) = self
            .inner
            .lock()
            .map(|inner| (inner.bytes as u64, inner.slots.len() as u64))
            .unwrap_or_default();
        MemoMetrics {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes,
            entries,
        }
    }

    fn store(&self, key: &MemoKey, cached: Arc<Cached>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        // A result bigger than the whole bound is handed to its waiters but not kept.
        if cached.bytes > self.max_bytes {
            inner.slots.remove(key);
            return;
        }
        inner.clock += 1;
        let now = inner.clock;
        inner.bytes += cached.bytes;
        inner.slots.insert(
            key.clone(),
            Slot::Ready {
                cached,
                last_used: now,
            },
        );
        while inner.bytes > self.max_bytes {
            let victim = inner
                .slots
                .iter()
                .filter_map(|(k, slot)| match slot {
                    Slot::Ready { last_used, .. } if k != key => Some((*last_used, k)),
                    _ => None,
                })
                .min_by_key(|(used, _)| *used)
                .map(|(_, k)| k.clone());
            let Some(victim) = victim else { break };
            if let Some(Slot::Ready { cached, .. }) = inner.slots.remove(&victim) {
                inner.bytes -= cached.bytes;
            }
        }
    }

    fn abandon(&self, key: &MemoKey) {
        if let Ok(mut inner) = self.inner.lock()
            && matches!(inner.slots.get(key), Some(Slot::Pending(_)))
        {
            inner.slots.remove(key);
        }
    }
}

impl Flight {
    /// Keeps the result and hands it to everyone waiting for it.
    pub fn complete(mut self, cached: Arc<Cached>) {
        if let Some(key) = self.key.take() {
            self.memo.store(&key, cached.clone());
        }
        self.tx.send_replace(Some(cached));
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        // Not completed: forget the pending slot so the waiters (woken as the sender goes) retry,
        // and the first of them computes.
        if let Some(key) = self.key.take() {
            self.memo.abandon(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cached(value: u32, bytes: usize) -> Arc<Cached> {
        Arc::new(Cached {
            value: Box::new(value),
            summary: format!("{value}"),
            data: json!(value).into(),
            bytes,
        })
    }

    fn key(tenant: &str, generation: u64, tool: &str, args: Value) -> MemoKey {
        MemoKey::new(tenant, generation, tool, &args)
    }

    fn value(found: &Lookup) -> Option<u32> {
        match found {
            Lookup::Hit(c) => c.value.downcast_ref::<u32>().copied(),
            Lookup::Compute(_) => None,
        }
    }

    #[tokio::test]
    async fn a_second_identical_call_is_a_hit_whatever_the_key_order() {
        let memo = Memo::new(1 << 20);
        let Lookup::Compute(flight) = memo
            .lookup(key(
                "t",
                1,
                "usage_summary",
                json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}),
            ))
            .await
        else {
            panic!("first call must compute")
        };
        flight.complete(cached(7, 10));
        let again = memo
            .lookup(key(
                "t",
                1,
                "usage_summary",
                json!({"b": [1, {"x": 1, "y": 2}], "a": 1}),
            ))
            .await;
        assert_eq!(value(&again), Some(7));
        let other_args = memo
            .lookup(key("t", 1, "usage_summary", json!({"a": 2})))
            .await;
        assert!(matches!(other_args, Lookup::Compute(_)));
        let other_generation = memo
            .lookup(key("t", 2, "usage_summary", json!({"a": 1})))
            .await;
        assert!(matches!(other_generation, Lookup::Compute(_)));
        let m = memo.metrics();
        assert_eq!((m.hits, m.misses), (1, 3));
    }

    #[tokio::test]
    async fn concurrent_identical_calls_compute_once() {
        let memo = Memo::new(1 << 20);
        let computed = Arc::new(AtomicU64::new(0));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let memo = memo.clone();
            let computed = computed.clone();
            callers.spawn(async move {
                match memo
                    .lookup(key("t", 1, "forecast_capacity", json!({})))
                    .await
                {
                    Lookup::Hit(c) => *c.value.downcast_ref::<u32>().unwrap(),
                    Lookup::Compute(flight) => {
                        computed.fetch_add(1, Ordering::SeqCst);
                        // Let the others find the flight pending.
                        for _ in 0..10 {
                            tokio::task::yield_now().await;
                        }
                        flight.complete(cached(42, 10));
                        42
                    }
                }
            });
        }
        while let Some(got) = callers.join_next().await {
            assert_eq!(got.unwrap(), 42);
        }
        assert_eq!(computed.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_abandoned_flight_lets_the_next_caller_compute() {
        let memo = Memo::new(1 << 20);
        let Lookup::Compute(first) = memo.lookup(key("t", 1, "price_lookup", json!({}))).await
        else {
            panic!()
        };
        let waiter = {
            let memo = memo.clone();
            tokio::spawn(async move {
                match memo.lookup(key("t", 1, "price_lookup", json!({}))).await {
                    Lookup::Compute(flight) => {
                        flight.complete(cached(5, 1));
                        "computed"
                    }
                    Lookup::Hit(_) => "hit",
                }
            })
        };
        tokio::task::yield_now().await;
        drop(first);
        assert_eq!(waiter.await.unwrap(), "computed");
        assert_eq!(
            value(&memo.lookup(key("t", 1, "price_lookup", json!({}))).await),
            Some(5)
        );
    }

    #[tokio::test]
    async fn forgetting_a_tenant_drops_its_results_only() {
        let memo = Memo::new(1 << 20);
        for tenant in ["a", "b"] {
            let Lookup::Compute(f) = memo.lookup(key(tenant, 1, "query_usage", json!({}))).await
            else {
                panic!()
            };
            f.complete(cached(1, 100));
        }
        assert_eq!(memo.metrics().bytes, 200);
        memo.forget_tenant("a");
        assert_eq!(memo.metrics().bytes, 100);
        assert!(matches!(
            memo.lookup(key("a", 1, "query_usage", json!({}))).await,
            Lookup::Compute(_)
        ));
        assert!(matches!(
            memo.lookup(key("b", 1, "query_usage", json!({}))).await,
            Lookup::Hit(_)
        ));
    }

    #[tokio::test]
    async fn the_cache_stays_within_its_bytes_evicting_the_least_recently_used() {
        let memo = Memo::new(300);
        for i in 0..3u32 {
            let Lookup::Compute(f) = memo
                .lookup(key("t", 1, "usage_summary", json!({ "i": i })))
                .await
            else {
                panic!()
            };
            f.complete(cached(i, 100));
        }
        // Touch 0, so 1 is the least recently used when 3 arrives.
        assert_eq!(
            value(
                &memo
                    .lookup(key("t", 1, "usage_summary", json!({"i": 0})))
                    .await
            ),
            Some(0)
        );
        let Lookup::Compute(f) = memo
            .lookup(key("t", 1, "usage_summary", json!({"i": 3})))
            .await
        else {
            panic!()
        };
        f.complete(cached(3, 100));
        assert!(memo.metrics().bytes <= 300);
        assert!(matches!(
            memo.lookup(key("t", 1, "usage_summary", json!({"i": 1})))
                .await,
            Lookup::Compute(_)
        ));
        // Too big to keep at all: handed out, not stored.
        let Lookup::Compute(f) = memo
            .lookup(key("t", 1, "usage_summary", json!({"i": 9})))
            .await
        else {
            panic!()
        };
        f.complete(cached(9, 1_000));
        assert!(memo.metrics().bytes <= 300);
    }

    #[test]
    fn only_pure_data_tools_are_memoizable() {
        assert!(memoizable("forecast_capacity"));
        assert!(!memoizable("compose_report"));
        assert!(!memoizable("classify_request"));
        assert!(!memoizable("build_plan"));
    }
}
