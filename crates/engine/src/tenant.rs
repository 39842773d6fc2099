//! A tenant's usage records as the tools see them, cached in memory between runs.
//!
//! Loading a tenant's records from the store on every run would dominate a run's cost, so the
//! engine keeps one immutable snapshot per tenant and replaces it when the tenant ingests data.
//! Tools only ever see a snapshot: a run never observes half of an ingest.

use agentwire_analytics::{PriceTable, UsageRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
}

/// At most this many tenants' own records are kept in memory; past it, other tenants' snapshots
/// are dropped (they reload from the store on their next run).
const MAX_CACHED_RECORDS: usize = 20_000_000;
/// At most this many tenants are cached, whatever their size.
const MAX_CACHED_TENANTS: usize = 4_096;

/// Snapshots by tenant. A std Mutex: it is held only to clone an `Arc` or swap one in.
#[derive(Debug, Default)]
pub(crate) struct TenantCache {
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
