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
    pub records: Vec<UsageRecord>,
    pub prices: Arc<PriceTable>,
    /// True when the tenant has no data of its own and is shown the generated demo data set
    /// (`--demo-data`); answers say so in their data coverage.
    pub demo: bool,
}

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
            inner.snapshots.insert(data.tenant_id.clone(), data);
        }
    }

    pub fn invalidate(&self, tenant_id: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.snapshots.remove(tenant_id);
            *inner.generations.entry(tenant_id.to_owned()).or_insert(0) += 1;
        }
    }
}
