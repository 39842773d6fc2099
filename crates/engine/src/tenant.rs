//! A tenant's usage records as the tools see them: loaded from the store (or the demo data set),
//! and cached in memory between runs.
//!
//! Loading a tenant's records from the store on every run would dominate a run's cost, so the
//! engine keeps one immutable snapshot per tenant and replaces it when the tenant ingests data.
//! Tools only ever see a snapshot: a run never observes half of an ingest. Each snapshot has a
//! generation, unique in the process, that tool results are memoized under (`memo.rs`). When
//! many runs need a tenant that is not loaded, one of them loads it and the others wait for it
//! (single flight); the load, decoding included, runs on a blocking thread, never on an async
//! worker. This module must not write to the store: ingesting is the engine's, which then calls
//! [`Tenants::invalidate`].

use crate::error::EngineError;
use agentwire_analytics::{DemoConfig, PriceTable, UsageRecord, generate_demo};
use agentwire_store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// One tenant's records at one moment.
#[derive(Debug)]
pub(crate) struct TenantData {
    pub tenant_id: String,
    /// Shared: every tenant shown the demo data set points at the same records.
    pub records: Arc<Vec<UsageRecord>>,
    pub prices: Arc<PriceTable>,
    /// True when the tenant has no data of its own and is shown the generated demo data set
    /// (`--demo-data`); answers say so in their data coverage.
    pub demo: bool,
    /// Unique per snapshot in this process: a new load of changed data gets a new one.
    pub generation: u64,
}

/// The generation every snapshot of the demo data set shares: it never changes, so results over
/// it are the same for every tenant shown it.
const DEMO_GENERATION: u64 = 0;

impl TenantData {
    /// Whose data and which version of it: what memoized results are keyed by. Every tenant shown
    /// the demo data set shares one identity, so they share results too.
    pub fn identity(&self) -> (&str, u64) {
        if self.demo {
            ("(demo data set)", DEMO_GENERATION)
        } else {
            (&self.tenant_id, self.generation)
        }
    }
}

/// At most this many tenants' own records are kept in memory; past it, other tenants' snapshots
/// are dropped (they reload from the store on their next run).
const MAX_CACHED_RECORDS: usize = 20_000_000;
/// At most this many tenants are cached, whatever their size.
const MAX_CACHED_TENANTS: usize = 4_096;

/// Snapshots by tenant. A std Mutex: it is held only to clone an `Arc` or swap one in.
#[derive(Debug, Default)]
struct TenantCache {
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    snapshots: HashMap<String, Arc<TenantData>>,
    /// Bumped by every ingest, so a load that raced with an ingest does not cache stale data.
    generations: HashMap<String, u64>,
}

impl CacheInner {
    /// Records held for tenants' own data (the shared demo set is counted once, not per tenant).
    fn own_records(&self) -> usize {
        self.snapshots
            .values()
            .filter(|d| !d.demo)
            .map(|d| d.records.len())
            .sum()
    }

    fn evict_beyond_bounds(&mut self, keep: &str) {
        while self.snapshots.len() > MAX_CACHED_TENANTS || self.own_records() > MAX_CACHED_RECORDS {
            let Some(victim) = self.snapshots.keys().find(|k| k.as_str() != keep).cloned() else {
                return;
            };
            self.snapshots.remove(&victim);
        }
    }
}

impl TenantCache {
    /// The cached snapshot, or the generation to pass to [`TenantCache::put`] after loading one.
    pub fn get(&self, tenant_id: &str) -> Result<Arc<TenantData>, u64> {
        let Ok(inner) = self.inner.lock() else {
            return Err(u64::MAX);
        };
        match inner.snapshots.get(tenant_id) {
            Some(data) => Ok(data.clone()),
            None => Err(inner.generations.get(tenant_id).copied().unwrap_or(0)),
        }
    }

    /// Caches a snapshot loaded at `generation`, unless an ingest happened since.
    pub fn put(&self, data: Arc<TenantData>, generation: u64) {
        if let Ok(mut inner) = self.inner.lock()
            && inner.generations.get(&data.tenant_id).copied().unwrap_or(0) == generation
        {
            let keep = data.tenant_id.clone();
            inner.snapshots.insert(keep.clone(), data);
            inner.evict_beyond_bounds(&keep);
        }
    }

    pub fn invalidate(&self, tenant_id: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.snapshots.remove(tenant_id);
            *inner.generations.entry(tenant_id.to_owned()).or_insert(0) += 1;
        }
    }
}

/// Where runs get their tenant's snapshot from: the cache, else the store, else (for a tenant
/// without data of its own, when the engine shows it) the demo data set.
pub(crate) struct Tenants {
    cache: TenantCache,
    prices: Arc<PriceTable>,
    /// Tenants without data of their own are shown the generated demo data set.
    demo_data: bool,
    /// The demo data set, generated on first use and shared by every tenant that shows it.
    demo: OnceCell<Arc<Vec<UsageRecord>>>,
    /// One lock per tenant being loaded, so concurrent runs load it once.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    next_generation: AtomicU64,
}

impl Tenants {
    pub fn new(prices: Arc<PriceTable>, demo_data: bool) -> Self {
        Self {
            cache: TenantCache::default(),
            prices,
            demo_data,
            demo: OnceCell::new(),
            loading: Mutex::new(HashMap::new()),
            next_generation: AtomicU64::new(DEMO_GENERATION + 1),
        }
    }

    /// A snapshot without records, for a run whose data is not loaded yet.
    pub fn empty(&self, tenant_id: &str) -> Arc<TenantData> {
        Arc::new(TenantData {
            tenant_id: tenant_id.to_owned(),
            records: Arc::new(Vec::new()),
            prices: self.prices.clone(),
            demo: false,
            generation: self.next_generation.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The tenant's snapshot: cached, else loaded (once, however many runs ask at the same
    /// time); the demo set when it has none and the engine shows demo data.
    ///
    /// # Errors
    /// `Store` when the records cannot be read.
    pub async fn load(
        &self,
        store: &Arc<dyn Store>,
        tenant_id: &str,
    ) -> Result<Arc<TenantData>, EngineError> {
        if let Ok(data) = self.cache.get(tenant_id) {
            return Ok(data);
        }
        let lock = self.load_lock(tenant_id);
        let loaded = {
            let _one_loader = lock.lock().await;
            // Whoever held the lock before may have loaded it meanwhile.
            match self.cache.get(tenant_id) {
                Ok(data) => Ok(data),
                Err(generation) => self.load_now(store, tenant_id, generation).await,
            }
        };
        self.forget_load_lock(tenant_id, &lock);
        loaded
    }

    fn load_lock(&self, tenant_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.loading.lock() {
            Ok(mut loading) => loading.entry(tenant_id.to_owned()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Drops the tenant's load lock once nobody else holds or waits for it.
    fn forget_load_lock(&self, tenant_id: &str, lock: &Arc<tokio::sync::Mutex<()>>) {
        if let Ok(mut loading) = self.loading.lock()
            // The map's reference and ours: nobody else has it.
            && Arc::strong_count(lock) == 2
        {
            loading.remove(tenant_id);
        }
    }

    async fn load_now(
        &self,
        store: &Arc<dyn Store>,
        tenant_id: &str,
        generation: u64,
    ) -> Result<Arc<TenantData>, EngineError> {
        // Reading and decoding a large tenant takes seconds of CPU: on a blocking thread, never
        // on an async worker.
        let records = {
            let store = store.clone();
            let tenant = tenant_id.to_owned();
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || runtime.block_on(store.load_usage(&tenant)))
                .await
                .map_err(|err| EngineError::Internal(format!("loading usage records: {err}")))??
        };
        let mut records = Arc::new(records);
        let mut demo = false;
        if records.is_empty() && self.demo_data {
            let set = self
                .demo
                .get_or_init(|| async {
                    let generated = tokio::task::spawn_blocking(|| {
                        generate_demo(&DemoConfig::default()).records
                    })
                    .await;
                    Arc::new(generated.unwrap_or_default())
                })
                .await;
            records = set.clone();
            demo = true;
        }
        let data = Arc::new(TenantData {
            tenant_id: tenant_id.to_owned(),
            records,
            prices: self.prices.clone(),
            demo,
            generation: self.next_generation.fetch_add(1, Ordering::Relaxed),
        });
        self.cache.put(data.clone(), generation);
        Ok(data)
    }

    /// Drops the tenant's snapshot after an ingest: the next run loads the new records.
    pub fn invalidate(&self, tenant_id: &str) {
        self.cache.invalidate(tenant_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(tenant: &str, records: usize, demo: bool) -> Arc<TenantData> {
        let record = UsageRecord::new(chrono::Utc::now(), "openai", "gpt-4o", 1, 1);
        Arc::new(TenantData {
            tenant_id: tenant.into(),
            records: Arc::new(vec![record; records]),
            prices: Arc::new(PriceTable::embedded()),
            demo,
            generation: 1,
        })
    }

    #[test]
    fn an_ingest_during_a_load_keeps_the_stale_snapshot_out() {
        let cache = TenantCache::default();
        let generation = cache.get("t").unwrap_err();
        cache.invalidate("t");
        cache.put(snapshot("t", 1, false), generation);
        assert!(cache.get("t").is_err());
        let generation = cache.get("t").unwrap_err();
        cache.put(snapshot("t", 1, false), generation);
        assert!(cache.get("t").is_ok());
    }

    #[test]
    fn the_cache_stays_within_its_tenant_bound() {
        let cache = TenantCache::default();
        for i in 0..MAX_CACHED_TENANTS + 10 {
            cache.put(snapshot(&format!("t{i}"), 1, true), 0);
        }
        let inner = cache.inner.lock().unwrap();
        assert_eq!(inner.snapshots.len(), MAX_CACHED_TENANTS);
        assert!(
            inner
                .snapshots
                .contains_key(&format!("t{}", MAX_CACHED_TENANTS + 9))
        );
    }
}
