//! This node's duties toward the others sharing its database: holding its lease, ending the runs
//! of nodes whose lease lapsed, mending its own runs whose end it could not record, and acting on
//! the store's notices (wake-ups for followed runs, cancel requests, usage changes).
//!
//! Two tasks. The lease task renews the lease every third of its length; a node whose lease
//! lapses without a renewal stops its runs without writing (its followers here are told the
//! database is unreachable), and a node told its lease is lost (a survivor claimed its runs)
//! stops them and hands their followers to the log, then registers again under a new id. While
//! it holds its lease it also ends, on the same tick, the runs of every node whose lease lapsed
//! (after claiming that node's sweep, so exactly one survivor does it) and its own runs that are
//! in flight in the database but no longer executing here, and, every few minutes, undoes usage
//! uploads abandoned by a dead process (`recovery::sweep_usage_uploads`). The notice task turns notices into
//! wake-ups, cancels and cache invalidations; after a `Resync` it re-reads what notices carry.
//! Both backends run the same duties; on SQLite there is only ever this node. This module must
//! not execute runs or answer clients.

use crate::follow::Wakeups;
use crate::recovery::{Gone, end_interrupted, sweep_usage_uploads};
use crate::registry::Registry;
use crate::run::StopReason;
use crate::tenant::Tenants;
use agentwire_store::{Notice, Notices, Store, StoreError, USAGE_UPLOAD_ABANDONED_AFTER};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// The shortest renewal interval, whatever the lease (a lease shorter than this is for tests).
const MIN_RENEW_INTERVAL: Duration = Duration::from_millis(100);

/// This node: its id and what it knows about its lease.
#[derive(Debug)]
pub(crate) struct Node {
    /// The prefix of every id this node registers under (`--node-name`).
    name: String,
    lease: Duration,
    state: Mutex<LeaseState>,
}

#[derive(Debug)]
struct LeaseState {
    /// The id this node is registered under; `None` between losing its lease and registering
    /// again.
    id: Option<String>,
    /// Until when the lease is surely held: the last successful renewal's send time plus the
    /// lease (the database's expiry is later still).
    held_until: Instant,
    /// Since when renewals have succeeded without a lapse.
    renewing_since: Option<Instant>,
    /// Whether the runs were stopped for the lapse of the lease held until `held_until`.
    fenced: bool,
}

/// Why this node cannot take runs right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotReady {
    /// Its lease lapsed without a renewal (the database is unreachable or too slow).
    LeaseLapsed,
    /// Another node took its runs over; it is registering again.
    Unregistered,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotReady::LeaseLapsed => "this node's lease lapsed (the database cannot be reached)",
            NotReady::Unregistered => "this node lost its lease and is joining again",
        })
    }
}

impl Node {
    /// Registers a node named `name` with a fresh id and a lease of `lease`.
    ///
    /// # Errors
    /// The store's, when the node cannot be registered.
    pub async fn register(
        store: &dyn Store,
        name: &str,
        lease: Duration,
    ) -> Result<Node, StoreError> {
        let id = new_node_id(name);
        let sent = Instant::now();
        store.register_node(&id, lease).await?;
        tracing::info!(node_id = %id, lease_ms = lease.as_millis() as u64, "node registered");
        Ok(Node {
            name: name.to_owned(),
            lease,
            state: Mutex::new(LeaseState {
                id: Some(id),
                held_until: sent + lease,
                renewing_since: Some(sent),
                fenced: false,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        // Held only to read or set fields: a poisoned lock holds valid data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id to admit runs under, while the lease is held.
    ///
    /// # Errors
    /// Why the node cannot take runs now.
    pub fn admitting_id(&self) -> Result<String, NotReady> {
        let state = self.state();
        let id = state.id.clone().ok_or(NotReady::Unregistered)?;
        if Instant::now() >= state.held_until {
            return Err(NotReady::LeaseLapsed);
        }
        Ok(id)
    }

    /// The id registered now, if any (for shutdown and the duties).
    pub fn id(&self) -> Option<String> {
        self.state().id.clone()
    }

    fn renew_interval(&self) -> Duration {
        (self.lease / 3).max(MIN_RENEW_INTERVAL)
    }
}

/// What the duties act on: the engine's parts.
#[derive(Clone)]
pub(crate) struct Duties {
    pub store: Arc<dyn Store>,
    pub node: Arc<Node>,
    pub registry: Arc<Registry>,
    pub tenants: Arc<Tenants>,
    pub wakeups: Arc<Wakeups>,
}

impl Duties {
    /// Starts the lease task and the notice task; both end when `stop` is cancelled (or, for
    /// the notice task, when the store closes).
    pub fn spawn(self, notices: Notices, stop: CancellationToken) {
        tokio::spawn(self.clone().notice_loop(notices, stop.clone()));
        tokio::spawn(self.lease_loop(stop));
    }

    async fn notice_loop(self, mut notices: Notices, stop: CancellationToken) {
        loop {
            let notice = tokio::select! {
                () = stop.cancelled() => return,
                notice = notices.recv() => notice,
            };
            match notice {
                None => return,
                Some(Notice::RunEvents { run_id, seq }) => self.wakeups.wake(&run_id, seq),
                Some(Notice::CancelRequested { run_id }) => {
                    if let Some(run) = self.registry.get(&run_id) {
                        tracing::info!(%run_id, "cancel requested through another node");
                        run.stop(StopReason::User);
                    }
                }
                Some(Notice::UsageChanged { tenant_id }) => self.tenants.invalidate(&tenant_id),
                Some(Notice::Disconnected) => {
                    tracing::warn!(
                        "the database's notices stopped; followers poll until they are back"
                    );
                    self.wakeups.set_degraded(true);
                }
                Some(Notice::Resync(reason)) => {
                    tracing::info!(?reason, "notices may have been missed; re-reading");
                    self.wakeups.set_degraded(false);
                    self.wakeups.wake_all();
                    self.tenants.invalidate_all();
                    // Off this loop: the database may be slow to answer just now.
                    tokio::spawn(self.clone().recheck_cancels());
                }
            }
        }
    }

    /// Stops the runs executing here whose cancel request was missed.
    async fn recheck_cancels(self) {
        let Some(id) = self.node.id() else { return };
        match self.store.cancel_requested_runs(&id).await {
            Ok(runs) => {
                for run_id in runs {
                    if let Some(run) = self.registry.get(&run_id) {
                        run.stop(StopReason::User);
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "re-reading cancel requests failed; the next resync tries again");
            }
        }
    }

    async fn lease_loop(self, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.node.renew_interval());
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; the node was just registered
        // Startup undid what was abandoned then; later ones are looked for a few times per
        // abandonment period, whether or not retention runs.
        let mut uploads_swept = Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let held = tokio::select! {
                () = stop.cancelled() => return,
                held = self.hold_lease() => held,
            };
            if held {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = self.end_lost_runs() => {}
                }
                if uploads_swept.elapsed() >= USAGE_UPLOAD_ABANDONED_AFTER / 3 {
                    uploads_swept = Instant::now();
                    // Uploads of nodes that died mid-upload: on a shared database nobody else
                    // undoes them.
                    if let Err(err) = sweep_usage_uploads(self.store.as_ref(), false).await {
                        tracing::warn!(error = %err, "sweeping abandoned usage uploads failed");
                    }
                }
            }
        }
    }

    /// Renews the lease (or registers again after losing it); true when it is held. Runs are
    /// stopped as soon as the lease lapses, even while the renewal is still waiting for an
    /// answer.
    async fn hold_lease(&self) -> bool {
        let Some(id) = self.node.id() else {
            return self.register_again().await;
        };
        let sent = Instant::now();
        let deadline = self.node.state().held_until;
        let renewal = self.store.renew_node_lease(&id, self.node.lease);
        tokio::pin!(renewal);
        let renewed = loop {
            let fenced = self.node.state().fenced;
            tokio::select! {
                renewed = &mut renewal => break renewed,
                () = tokio::time::sleep_until(deadline), if !fenced => self.lapsed(),
            }
        };
        match renewed {
            Ok(_) => {
                let mut state = self.node.state();
                let was_renewing = state.renewing_since.is_some();
                state.held_until = sent + self.node.lease;
                state.renewing_since.get_or_insert(sent);
                state.fenced = false;
                drop(state);
                if !was_renewing {
                    tracing::info!(node_id = %id, "the lease is renewed again");
                }
                true
            }
            Err(StoreError::LeaseLost(_)) => {
                let stopped = self.registry.stop_all(StopReason::TakenOver);
                tracing::error!(node_id = %id, runs = stopped, "this node lost its lease: another node ends its runs; registering again");
                {
                    let mut state = self.node.state();
                    state.id = None;
                    state.renewing_since = None;
                }
                self.register_again().await
            }
            Err(err) => {
                let was_renewing = self.node.state().renewing_since.take().is_some();
                if was_renewing {
                    tracing::warn!(node_id = %id, error = %err, "renewing the lease failed; retrying");
                }
                if Instant::now() >= deadline && !self.node.state().fenced {
                    self.lapsed();
                }
                false
            }
        }
    }

    /// The lease lapsed without a renewal: the runs here stop without writing.
    fn lapsed(&self) {
        {
            let mut state = self.node.state();
            state.fenced = true;
            state.renewing_since = None;
        }
        let stopped = self.registry.stop_all(StopReason::Unreachable);
        tracing::error!(
            runs = stopped,
            "this node's lease lapsed without a renewal; its runs stop"
        );
    }

    /// Registers under a new id after the lease was lost; true once registered.
    async fn register_again(&self) -> bool {
        let id = new_node_id(&self.node.name);
        let sent = Instant::now();
        match self.store.register_node(&id, self.node.lease).await {
            Ok(_) => {
                tracing::info!(node_id = %id, "node registered again");
                let mut state = self.node.state();
                state.id = Some(id);
                state.held_until = sent + self.node.lease;
                state.renewing_since = Some(sent);
                state.fenced = false;
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "registering the node again failed; retrying");
                false
            }
        }
    }

    /// Ends the runs nobody executes any more: this node's own that it could not end (the
    /// database was away when they stopped), and those of nodes whose lease lapsed.
    async fn end_lost_runs(&self) {
        let Some(id) = self.node.id() else { return };
        if let Err(err) = self.end_orphans(&id).await {
            tracing::warn!(error = %err, "checking this node's runs failed; the next tick tries again");
        }
        // A node that has just come back gives the others one lease to renew theirs before
        // it judges them: they may have been cut off from the database just as it was.
        let settled = self
            .node
            .state()
            .renewing_since
            .is_some_and(|since| since.elapsed() >= self.node.lease);
        if settled && let Err(err) = self.sweep(&id).await {
            tracing::warn!(error = %err, "sweeping expired nodes failed; the next tick tries again");
        }
    }

    /// This node's runs in flight in the database that no longer execute here. Looked for only
    /// after a run stopped without its end recorded (the registry notes it), so a healthy node
    /// does not list its runs every tick.
    async fn end_orphans(&self, id: &str) -> Result<(), crate::EngineError> {
        if !self.registry.take_unrecorded() {
            return Ok(());
        }
        let runs = match self.store.node_runs_in_flight(id).await {
            Ok(runs) => runs,
            Err(err) => {
                self.registry.note_unrecorded();
                return Err(err.into());
            }
        };
        for run in runs {
            if self.registry.contains(&run.run_id) {
                continue;
            }
            match end_interrupted(self.store.as_ref(), &run, Gone::DatabaseLost).await {
                Ok(true) => {
                    tracing::warn!(run_id = %run.run_id, "ended a run whose end could not be recorded when it stopped");
                }
                Ok(false) => {}
                Err(err) => {
                    self.registry.note_unrecorded();
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Claims and ends the runs of every node whose lease lapsed.
    async fn sweep(&self, id: &str) -> Result<(), crate::EngineError> {
        for dead in self.store.expired_nodes().await? {
            if dead.node_id == id || !self.store.claim_node_sweep(&dead.node_id, id).await? {
                continue;
            }
            let runs = self.store.node_runs_in_flight(&dead.node_id).await?;
            let mut ended = 0;
            for run in &runs {
                if end_interrupted(self.store.as_ref(), run, Gone::Stopped).await? {
                    ended += 1;
                }
            }
            let finished = self.store.finish_node_sweep(&dead.node_id, id).await?;
            tracing::warn!(
                node_id = %dead.node_id,
                lease_expired_at = %dead.lease_expires_at,
                runs_ended = ended,
                finished,
                "swept a node whose lease lapsed"
            );
        }
        Ok(())
    }
}

/// `NAME-` and 12 random hex digits: ids are never reused, so a restarted node is a new node.
fn new_node_id(name: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{name}-{}", &random[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_keep_the_name_and_never_repeat() {
        let a = new_node_id("web-1");
        let b = new_node_id("web-1");
        assert!(
            a.starts_with("web-1-") && a.len() == "web-1-".len() + 12,
            "{a}"
        );
        assert_ne!(a, b);
    }
}
