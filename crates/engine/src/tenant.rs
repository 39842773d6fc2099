//! A tenant's usage records as the tools see them: loaded from the store (or the demo data set),
//! and cached in memory between runs.
//!
//! Loading a tenant's records from the store on every run would dominate a run's cost, so the
//! engine keeps one immutable snapshot per tenant and replaces it when the tenant ingests data.
//! Tools only ever see a snapshot: a run never observes half of an ingest. Beside the records, a
//! snapshot holds the tenant's [`Vocabulary`] (its own names, for reading questions), built once
//! when the snapshot is loaded (about 0.1 s per 100,000 records), never per run. Each snapshot has
//! a generation, unique in the process, that tool results are memoized under (`memo.rs`). When
//! many runs need a tenant that is not loaded, one of them loads it and the others wait for it
//! (single flight); the load, decoding included, runs on a blocking thread, never on an async
//! worker. An ingest on any node reaches every node as a `UsageChanged` notice (`cluster.rs`
//! calls [`Tenants::invalidate`]), and when notices may have been missed every snapshot goes
//! ([`Tenants::invalidate_all`]); a reloaded snapshot has a new generation, so results memoized
//! over the old one are never reused for it. Notices arrive after the upload's commit, so they
//! alone would let a run started on another node in between read the old records: each snapshot
//! also records the tenant's usage version it was read at, and a run whose admission read a newer
//! one reloads ([`Tenants::load`]'s `at_least`). This module must not write to the store:
//! ingesting is the engine's.

use crate::error::EngineError;
use crate::scope::Scope;
use agentwire_analytics::{DemoConfig, PriceTable, UsageRecord, generate_demo};
use agentwire_question::Vocabulary;
use agentwire_store::Store;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    /// The names in `records` (and the price table's models), for reading questions.
    pub vocab: Arc<Vocabulary>,
    /// Unique per snapshot in this process: a new load of changed data gets a new one.
    pub generation: u64,
    /// The tenant's usage version in the store (`Store::usage_version`) read before the
    /// records: they hold at least every upload committed up to it.
    pub usage_version: u64,
    /// What each scope asked about holds, computed once per scope (`TenantData::scope_totals`).
    pub totals: Mutex<HashMap<String, ScopeTotals>>,
}

/// What one scope of a snapshot holds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ScopeTotals {
    pub records: u64,
    pub requests: u64,
    pub cost_usd: f64,
}

/// Most scopes whose totals one snapshot keeps; past it the snapshot starts over.
const MOST_SCOPE_TOTALS: usize = 1024;

/// The generation every snapshot of the demo data set shares: it never changes, so results over
/// it are the same for every tenant shown it.
const DEMO_GENERATION: u64 = 0;

impl TenantData {
    /// The records, requests and cost in `scope`, computed once per scope of this snapshot:
    /// every run's triage states them, and scanning every record for them was the largest CPU
    /// cost of a run whose tools were all memoized.
    pub fn scope_totals(&self, scope: &Scope) -> ScopeTotals {
        // Debug shows every field of the scope: equal texts are equal scopes.
        let key = format!("{scope:?}");
        let known = self
            .totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .copied();
        if let Some(totals) = known {
            return totals;
        }
        let filter = scope.filter(&self.records);
        let mut totals = ScopeTotals::default();
        for record in self.records.iter().filter(|r| filter.matches(r)) {
            totals.records += 1;
            totals.requests += record.request_count;
            totals.cost_usd += self.prices.cost_usd(record);
        }
        let mut cache = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MOST_SCOPE_TOTALS {
            cache.clear();
        }
        cache.insert(key, totals);
        totals
    }

    /// Whose data and which version of it: what memoized results are keyed by. Every tenant shown
    /// the demo data set shares one identity, so they share results too.
    pub fn identity(&self) -> (&str, u64) {
        if self.demo {
            ("(demo data set)", DEMO_GENERATION)
        } else {
            (&self.tenant_id, self.generation)
        }
    }

    /// Which price table the snapshot prices with, for memoized results' keys: the table's
    /// address, which stays the same for the engine's life (every snapshot of an engine shares
    /// its one table, and memoized results are the engine's own).
    pub fn prices_id(&self) -> usize {
        Arc::as_ptr(&self.prices).addr()
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
    /// Bumped when every snapshot is dropped at once, for the same reason.
    epoch: u64,
}

/// When a load started, as far as the cache can tell: a snapshot loaded then is cached only if
/// nothing invalidated the tenant since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Generation {
    epoch: u64,
    tenant: u64,
}

impl CacheInner {
    fn generation(&self, tenant_id: &str) -> Generation {
        Generation {
            epoch: self.epoch,
            tenant: self.generations.get(tenant_id).copied().unwrap_or(0),
        }
    }

    /// Records held for tenants' own data (the shared demo set is counted once, not per tenant).
    fn own_records(&self) -> usize {
        self.snapshots
            .values()
            .filter(|d| !d.demo)
            .map(|d| d.records.len())
            .sum()
    }

    /// Drops the tenant's snapshot, and makes a load started before this not cache its result.
    fn drop_snapshot(&mut self, tenant_id: &str) {
        self.snapshots.remove(tenant_id);
        *self.generations.entry(tenant_id.to_owned()).or_insert(0) += 1;
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
    /// The cached snapshot if it holds the tenant's records at usage version `at_least` or
    /// newer, else the generation to pass to [`TenantCache::put`] after loading one. An older
    /// snapshot is dropped as by [`TenantCache::invalidate`]: an upload it misses has committed.
    pub fn get(&self, tenant_id: &str, at_least: u64) -> Result<Arc<TenantData>, Generation> {
        let Ok(mut inner) = self.inner.lock() else {
            return Err(Generation {
                epoch: u64::MAX,
                tenant: u64::MAX,
            });
        };
        match inner.snapshots.get(tenant_id) {
            Some(data) if data.usage_version >= at_least => Ok(data.clone()),
            Some(_) => {
                inner.drop_snapshot(tenant_id);
                Err(inner.generation(tenant_id))
            }
            None => Err(inner.generation(tenant_id)),
        }
    }

    /// Caches a snapshot loaded at `generation`, unless an ingest happened since.
    pub fn put(&self, data: Arc<TenantData>, generation: Generation) {
        if let Ok(mut inner) = self.inner.lock()
            && inner.generation(&data.tenant_id) == generation
        {
            let keep = data.tenant_id.clone();
            inner.snapshots.insert(keep.clone(), data);
            inner.evict_beyond_bounds(&keep);
        }
    }

    pub fn invalidate(&self, tenant_id: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.drop_snapshot(tenant_id);
        }
    }

    pub fn invalidate_all(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.snapshots.clear();
            inner.epoch += 1;
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
    /// The demo data set and its vocabulary, made on first use and shared by every tenant that
    /// shows it.
    demo: OnceCell<(Arc<Vec<UsageRecord>>, Arc<Vocabulary>)>,
    /// The vocabulary of no records: the price table's models only.
    no_records: Arc<Vocabulary>,
    /// One lock per tenant being loaded, so concurrent runs load it once.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    next_generation: AtomicU64,
}

impl Tenants {
    pub fn new(prices: Arc<PriceTable>, demo_data: bool) -> Self {
        Self {
            cache: TenantCache::default(),
            no_records: Arc::new(Vocabulary::from_records(&[], &prices)),
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
            vocab: self.no_records.clone(),
            generation: self.next_generation.fetch_add(1, Ordering::Relaxed),
            usage_version: 0,
            totals: Mutex::default(),
        })
    }

    /// The vocabulary to read a question with before the run loads its data: the tenant's own
    /// when its snapshot is in memory (with the snapshot's generation), else the price table's
    /// models alone (`None`). No I/O, no waiting.
    pub fn vocabulary(&self, tenant_id: &str) -> (Arc<Vocabulary>, Option<u64>) {
        match self.cache.get(tenant_id, 0) {
            Ok(data) => (data.vocab.clone(), Some(data.generation)),
            Err(_) => (self.no_records.clone(), None),
        }
    }

    /// The tenant's snapshot at usage version `at_least` or newer (the version the run's
    /// admission read): cached, else loaded (once, however many runs ask at the same time); the
    /// demo set when it has none and the engine shows demo data.
    ///
    /// The load is a task of its own: a run that stops waiting for it (cancelled, timed out,
    /// shut down) leaves it to finish into the cache, so the next run finds the snapshot instead
    /// of reading the tenant again, and a start/cancel loop never piles up reads of one tenant.
    ///
    /// # Errors
    /// `Store` when the records cannot be read.
    pub async fn load(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        tenant_id: &str,
        at_least: u64,
    ) -> Result<Arc<TenantData>, EngineError> {
        if let Ok(data) = self.cache.get(tenant_id, at_least) {
            return Ok(data);
        }
        let (tenants, store, tenant) = (self.clone(), store.clone(), tenant_id.to_owned());
        tokio::spawn(async move { tenants.load_once(&store, &tenant, at_least).await })
            .await
            .map_err(|err| EngineError::Internal(format!("loading the tenant's data: {err}")))?
    }

    async fn load_once(
        &self,
        store: &Arc<dyn Store>,
        tenant_id: &str,
        at_least: u64,
    ) -> Result<Arc<TenantData>, EngineError> {
        let lock = self.load_lock(tenant_id);
        let loaded = {
            let _one_loader = lock.lock().await;
            // Whoever held the lock before may have loaded it meanwhile.
            match self.cache.get(tenant_id, at_least) {
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
        generation: Generation,
    ) -> Result<Arc<TenantData>, EngineError> {
        // Reading and decoding a large tenant takes seconds of CPU: on a blocking thread, never
        // on an async worker.
        let (usage_version, records) = {
            let store = store.clone();
            let tenant = tenant_id.to_owned();
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                runtime.block_on(async {
                    // The version first: the records read after are at least that new.
                    let version = store.usage_version(&tenant).await?;
                    Ok::<_, agentwire_store::StoreError>((
                        version,
                        store.load_usage(&tenant).await?,
                    ))
                })
            })
            .await
            .map_err(|err| EngineError::Internal(format!("loading usage records: {err}")))??
        };
        let (records, vocab, demo) = if records.is_empty() && self.demo_data {
            let prices = self.prices.clone();
            let (records, vocab) = self
                .demo
                .get_or_init(|| async {
                    let generated = tokio::task::spawn_blocking(move || {
                        let records = generate_demo(&DemoConfig::default()).records;
                        let vocab = Vocabulary::from_records(&records, &prices);
                        (Arc::new(records), Arc::new(vocab))
                    })
                    .await;
                    generated.unwrap_or_else(|_| (Arc::new(Vec::new()), self.no_records.clone()))
                })
                .await;
            (records.clone(), vocab.clone(), true)
        } else if records.is_empty() {
            (Arc::new(records), self.no_records.clone(), false)
        } else {
            let records = Arc::new(records);
            let (for_vocab, prices) = (records.clone(), self.prices.clone());
            let vocab = tokio::task::spawn_blocking(move || {
                Arc::new(Vocabulary::from_records(&for_vocab, &prices))
            })
            .await
            .map_err(|err| {
                EngineError::Internal(format!("building the vocabulary failed: {err}"))
            })?;
            (records, vocab, false)
        };
        let data = Arc::new(TenantData {
            tenant_id: tenant_id.to_owned(),
            records,
            prices: self.prices.clone(),
            demo,
            vocab,
            generation: self.next_generation.fetch_add(1, Ordering::Relaxed),
            usage_version,
            totals: Mutex::default(),
        });
        self.cache.put(data.clone(), generation);
        Ok(data)
    }

    /// Drops the tenant's snapshot after an ingest: the next run loads the new records.
    pub fn invalidate(&self, tenant_id: &str) {
        self.cache.invalidate(tenant_id);
    }

    /// Drops every snapshot (ingests may have been missed): each tenant's next run reloads.
    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
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
            vocab: Arc::new(Vocabulary::default()),
            generation: 1,
            usage_version: 0,
            totals: Mutex::default(),
        })
    }

    /// Runs that ask at the same moment for a tenant not in memory load it once: every one of
    /// them gets the same snapshot (each load makes a snapshot of its own generation).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_asking_for_a_tenant_at_once_load_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/tenants.db", dir.path().display());
        let store = agentwire_store::connect(&url).await.unwrap();
        let tenants = Arc::new(Tenants::new(Arc::new(PriceTable::embedded()), false));
        let loads: Vec<_> = (0..32)
            .map(|_| {
                let (tenants, store) = (tenants.clone(), store.clone());
                tokio::spawn(async move { tenants.load(&store, "t", 0).await.unwrap() })
            })
            .collect();
        let mut generations = std::collections::BTreeSet::new();
        for load in loads {
            generations.insert(load.await.unwrap().generation);
        }
        assert_eq!(generations.len(), 1, "loaded {} times", generations.len());
    }

    #[test]
    fn scope_totals_are_what_the_scope_holds_and_are_kept_per_scope() {
        let data = crate::tools::test_support::demo_tenant();
        let mut scope = Scope::all();
        let all = data.scope_totals(&scope);
        assert_eq!(all.records, data.records.len() as u64);
        let cost: f64 = data.records.iter().map(|r| data.prices.cost_usd(r)).sum();
        assert!((all.cost_usd - cost).abs() < 1e-6 * cost.max(1.0));
        scope.team = Some("search".into());
        let search = data.scope_totals(&scope);
        let expected = data
            .records
            .iter()
            .filter(|r| r.team.as_deref() == Some("search"))
            .count() as u64;
        assert!(expected > 0);
        assert_eq!(search.records, expected);
        // Asked again, the same answer from the kept totals.
        assert_eq!(data.scope_totals(&scope), search);
        assert!(data.totals.lock().unwrap().len() >= 2);
    }

    #[test]
    fn an_ingest_during_a_load_keeps_the_stale_snapshot_out() {
        let cache = TenantCache::default();
        let generation = cache.get("t", 0).unwrap_err();
        cache.invalidate("t");
        cache.put(snapshot("t", 1, false), generation);
        assert!(cache.get("t", 0).is_err());
        let generation = cache.get("t", 0).unwrap_err();
        cache.put(snapshot("t", 1, false), generation);
        assert!(cache.get("t", 0).is_ok());
    }

    #[test]
    fn dropping_everything_keeps_loads_that_started_before_out() {
        let cache = TenantCache::default();
        let early = cache.get("t", 0).unwrap_err();
        cache.put(snapshot("u", 1, false), cache.get("u", 0).unwrap_err());
        cache.invalidate_all();
        assert!(cache.get("u", 0).is_err(), "every snapshot goes");
        cache.put(snapshot("t", 1, false), early);
        assert!(
            cache.get("t", 0).is_err(),
            "a load from before is not cached"
        );
        cache.put(snapshot("t", 1, false), cache.get("t", 0).unwrap_err());
        assert!(cache.get("t", 0).is_ok());
    }

    #[test]
    fn a_snapshot_older_than_the_runs_admission_is_dropped_and_reloaded() {
        let cache = TenantCache::default();
        let at_version = |usage_version| {
            let mut data = Arc::into_inner(snapshot("t", 1, false)).unwrap();
            data.usage_version = usage_version;
            Arc::new(data)
        };
        let before = cache.get("t", 0).unwrap_err();
        cache.put(at_version(3), before);
        assert_eq!(
            cache.get("t", 2).unwrap().usage_version,
            3,
            "newer is current"
        );
        assert_eq!(cache.get("t", 3).unwrap().usage_version, 3);
        // An upload committed elsewhere; this node's notice has not arrived.
        let generation = cache.get("t", 4).unwrap_err();
        assert!(
            cache.get("t", 0).is_err(),
            "the old snapshot is gone for every run"
        );
        // A load that began before the drop does not bring the old records back.
        cache.put(at_version(3), before);
        assert!(cache.get("t", 0).is_err());
        cache.put(at_version(4), generation);
        assert_eq!(cache.get("t", 4).unwrap().usage_version, 4);
    }

    #[test]
    fn the_cache_stays_within_its_tenant_bound() {
        let cache = TenantCache::default();
        for i in 0..MAX_CACHED_TENANTS + 10 {
            let generation = cache.get(&format!("t{i}"), 0).unwrap_err();
            cache.put(snapshot(&format!("t{i}"), 1, true), generation);
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
