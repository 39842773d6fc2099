//! Event-log retention: this node's background task that deletes runs older than the
//! retention age, with their events, so the store stays bounded under a steady load.
//!
//! Every [`RetentionConfig::interval`] (and once right at start, so a node restarted more
//! often than the interval still prunes) the task deletes finished runs whose finish time is
//! older than the age, [`RetentionConfig::batch`] runs per store transaction
//! ([`Store::delete_finished_runs_before`]), pausing between batches so that event appends,
//! which share the store's writer, go on in between; a pass ends at the first short batch. A
//! failed batch is logged and the pass ends: the next interval tries again, and the node
//! carries on. Every node runs the task: the store's delete is idempotent and racing nodes
//! skip each other's runs. This module must not decide which runs are finished (the store
//! does) nor touch runs in flight.

use crate::registry::Registry;
use agentwire_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// The default [`RetentionConfig::interval`].
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The default [`RetentionConfig::batch`].
pub const DEFAULT_RETENTION_BATCH: u32 = 500;

/// The default [`RetentionConfig::pause`].
pub const DEFAULT_RETENTION_PAUSE: Duration = Duration::from_millis(50);

/// How old runs are deleted; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Runs finished longer ago than this are deleted (`--retain-runs-days`). Zero deletes
    /// every finished run at each pass.
    pub age: Duration,
    /// Time between passes.
    pub interval: Duration,
    /// Runs deleted per store transaction: small, because on SQLite event appends wait for
    /// the writer while a batch holds it (about 40 events per run).
    pub batch: u32,
    /// Pause between two batches of a pass, so that writers get the database in between.
    pub pause: Duration,
}

impl RetentionConfig {
    /// Deletes runs older than `age`, with the default interval, batch and pause.
    pub fn new(age: Duration) -> Self {
        Self {
            age,
            interval: DEFAULT_RETENTION_INTERVAL,
            batch: DEFAULT_RETENTION_BATCH,
            pause: DEFAULT_RETENTION_PAUSE,
        }
    }
}

/// The retention task's parts.
pub(crate) struct Retention {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub config: RetentionConfig,
}

impl Retention {
    /// Starts the task; it ends when `stop` is cancelled (never in the middle of a batch).
    pub fn spawn(self, stop: CancellationToken) {
        tokio::spawn(self.run(stop));
    }

    async fn run(self, stop: CancellationToken) {
        // The interval is at least a millisecond: tokio refuses a zero period.
        let mut ticks = tokio::time::interval(self.config.interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            self.pass(&stop).await;
        }
    }

    /// One pass: batches until one comes back short, the store fails or `stop` is cancelled.
    /// Returns how many runs it deleted.
    async fn pass(&self, stop: &CancellationToken) -> u64 {
        let Some(cutoff) = chrono::Duration::from_std(self.config.age)
            .ok()
            .and_then(|age| agentwire_protocol::time::now().checked_sub_signed(age))
        else {
            // An age beyond the calendar: nothing is that old.
            return 0;
        };
        let batch = self.config.batch.max(1);
        let mut deleted = 0;
        loop {
            match self.store.delete_finished_runs_before(cutoff, batch).await {
                Ok(n) => {
                    deleted += n;
                    self.registry.deleted(n);
                    if n < u64::from(batch) {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(
                        error = %err,
                        deleted,
                        "deleting old runs failed; retrying at the next interval"
                    );
                    break;
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.config.pause) => {}
            }
        }
        if deleted > 0 {
            tracing::info!(
                runs = deleted,
                cutoff = %agentwire_protocol::time::format(&cutoff),
                "deleted runs past the retention age"
            );
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentwire_store::{RunRecord, RunStatus, SqliteStore};

    async fn finished(store: &dyn Store, id: &str, ago: Duration) {
        let finished_at =
            agentwire_protocol::time::now() - chrono::Duration::from_std(ago).unwrap();
        store
            .create_run(&RunRecord {
                run_id: id.into(),
                thread_id: id.into(),
                user_id: "u".into(),
                tenant_id: "t".into(),
                agent: "supervisor".into(),
                user_request: "q".into(),
                status: RunStatus::Running,
                created_at: finished_at,
                finished_at: None,
                last_seq: 0,
            })
            .await
            .unwrap();
        store
            .append_event(id, 1, "agent_started", "{}")
            .await
            .unwrap();
        store
            .set_run_status(id, RunStatus::Completed, Some(finished_at))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_pass_deletes_every_old_run_in_batches_and_counts_them() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(":memory:").await.unwrap());
        for i in 0..7 {
            finished(
                store.as_ref(),
                &format!("old{i}"),
                Duration::from_secs(3_600),
            )
            .await;
        }
        finished(store.as_ref(), "new", Duration::from_secs(1)).await;
        let registry = Arc::new(Registry::new());
        let retention = Retention {
            store: store.clone(),
            registry: registry.clone(),
            config: RetentionConfig {
                age: Duration::from_secs(60),
                interval: Duration::from_secs(1),
                batch: 3,
                pause: Duration::ZERO,
            },
        };
        let stop = CancellationToken::new();
        assert_eq!(retention.pass(&stop).await, 7);
        assert_eq!(registry.metrics().runs_deleted, 7);
        assert!(store.get_run("old0").await.unwrap().is_none());
        assert!(store.get_run("new").await.unwrap().is_some());
        assert_eq!(retention.pass(&stop).await, 0);
    }

    #[tokio::test]
    async fn a_failing_store_is_logged_and_the_task_carries_on() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(":memory:").await.unwrap());
        store.close().await;
        let registry = Arc::new(Registry::new());
        let retention = Retention {
            store,
            registry: registry.clone(),
            config: RetentionConfig {
                interval: Duration::from_millis(5),
                ..RetentionConfig::new(Duration::ZERO)
            },
        };
        let stop = CancellationToken::new();
        assert_eq!(retention.pass(&stop).await, 0);
        let task = tokio::spawn(retention.run(stop.clone()));
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!task.is_finished(), "the task must outlive store failures");
        stop.cancel();
        task.await.unwrap();
        assert_eq!(registry.metrics().runs_deleted, 0);
    }
}
