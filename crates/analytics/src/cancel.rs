//! Cooperative cancellation of the long analyses: a [`Cancel`] flag their loops look at every few
//! thousand records, and the typed [`Cancelled`] they return once it is set.
//!
//! A server stops a run's analysis when the run is cancelled or timed out; the CPU must be free
//! again soon after, not when the analysis would have finished (seconds for a large tenant). The
//! flag is a plain atomic, so this crate stays free of any async runtime, and a look costs one
//! relaxed load every [`CHECK_EVERY`] iterations. Callers that cannot be cancelled (tests,
//! benches) use the functions without a checkpoint, which pass [`Uninterrupted`]: its error type
//! has no value, so they get their result without an error to handle. Some passes look only
//! between their stages: the optimization levers between one lever and the next.
//! This module must not know who cancels, or why.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How many iterations a loop runs between two looks at its checkpoint: cheap enough to be
/// invisible, frequent enough that a cancelled analysis of a million records stops within
/// milliseconds.
pub const CHECK_EVERY: u32 = 4096;

/// Something a long analysis asks, now and then, whether to go on.
pub trait Checkpoint {
    /// What the analysis returns when it stops early.
    type Stop;
    /// `Err` once the analysis should stop.
    fn check(&self) -> Result<(), Self::Stop>;
}

/// The analysis was cancelled before it finished; its partial result is discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the analysis was cancelled")]
pub struct Cancelled;

/// A flag shared by whoever may cancel an analysis and the analysis itself. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks every analysis holding this flag to stop at its next look.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

impl Checkpoint for Cancel {
    type Stop = Cancelled;

    fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The checkpoint of an analysis nobody cancels.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uninterrupted;

impl Checkpoint for Uninterrupted {
    type Stop = Infallible;

    fn check(&self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Counts a loop's iterations and looks at the checkpoint every [`CHECK_EVERY`] of them.
pub struct Ticks<'c, C: Checkpoint> {
    checkpoint: &'c C,
    count: u32,
}

impl<'c, C: Checkpoint> Ticks<'c, C> {
    pub fn new(checkpoint: &'c C) -> Self {
        Ticks {
            checkpoint,
            count: 0,
        }
    }

    /// One iteration; `Err` when the checkpoint says stop (looked at every `CHECK_EVERY`).
    #[inline]
    pub fn tick(&mut self) -> Result<(), C::Stop> {
        self.count = self.count.wrapping_add(1);
        if self.count.is_multiple_of(CHECK_EVERY) {
            self.checkpoint.check()
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_stops_within_one_check_interval_of_the_cancel() {
        let cancel = Cancel::new();
        let mut ticks = Ticks::new(&cancel);
        let mut ran = 0u32;
        let stopped = (0..1_000_000).try_for_each(|i| {
            if i == 10_000 {
                cancel.clone().cancel();
            }
            ticks.tick()?;
            ran += 1;
            Ok::<(), Cancelled>(())
        });
        assert_eq!(stopped, Err(Cancelled));
        assert!((10_000..10_000 + CHECK_EVERY).contains(&ran), "{ran}");
    }

    /// Every cancellable analysis stops on a cancelled flag, and with a flag nobody sets gives
    /// exactly what the plain function gives.
    #[test]
    fn the_analyses_stop_when_cancelled_and_agree_when_not() {
        use crate::capacity::{capacity, capacity_cancellable};
        use crate::query::{Metric, Period, QuerySpec, Shape, evaluate, evaluate_cancellable};
        use crate::*;
        let demo = generate_demo(&DemoConfig::default());
        let records = &demo.records;
        assert!(records.len() > 2 * CHECK_EVERY as usize);
        let prices = PriceTable::embedded();
        let filter = Filter::default();
        let spec = QuerySpec {
            metric: Metric::Spend,
            conditions: Vec::new(),
            period: Period::new(demo.facts.start, demo.facts.end),
            shape: Shape::Figure,
            share_of: Vec::new(),
        };
        let (going, stopped) = (Cancel::new(), Cancel::new());
        stopped.cancel();
        let s = |c: &Cancel| summarize_cancellable(records, &prices, &filter, c);
        assert_eq!(s(&stopped).err(), Some(Cancelled));
        assert_eq!(
            serde_json::to_value(s(&going).unwrap()).unwrap(),
            serde_json::to_value(summarize(records, &prices, &filter)).unwrap()
        );
        let a = |c: &Cancel| detect_anomalies_cancellable(records, &prices, &filter, c);
        assert_eq!(a(&stopped).err(), Some(Cancelled));
        assert_eq!(
            a(&going).unwrap(),
            detect_anomalies(records, &prices, &filter)
        );
        let r = |c: &Cancel| recommend_cancellable(records, &prices, &filter, c);
        assert_eq!(r(&stopped).err(), Some(Cancelled));
        assert_eq!(
            serde_json::to_value(r(&going).unwrap()).unwrap(),
            serde_json::to_value(recommend(records, &prices, &filter)).unwrap()
        );
        let k = |c: &Cancel| capacity_cancellable(records, &filter, &[], c);
        assert_eq!(k(&stopped).err(), Some(Cancelled));
        assert_eq!(
            serde_json::to_value(k(&going).unwrap()).unwrap(),
            serde_json::to_value(capacity(records, &filter, &[])).unwrap()
        );
        let scenario = crate::whatif::Scenario {
            change: crate::whatif::Change::CachePrefix,
            period: spec.period,
            scope: Vec::new(),
        };
        let w = |c: &Cancel| crate::whatif::price_cancellable(records, &prices, &scenario, c);
        assert_eq!(w(&stopped).err(), Some(Cancelled));
        assert_eq!(
            serde_json::to_value(w(&going).unwrap().unwrap()).unwrap(),
            serde_json::to_value(crate::whatif::price(records, &prices, &scenario).unwrap())
                .unwrap()
        );
        let q = |c: &Cancel| evaluate_cancellable(records, &prices, &spec, c);
        assert_eq!(q(&stopped).err(), Some(Cancelled));
        assert_eq!(
            serde_json::to_value(q(&going).unwrap()).unwrap(),
            serde_json::to_value(evaluate(records, &prices, &spec)).unwrap()
        );
    }

    #[test]
    fn uninterrupted_never_stops() {
        let mut ticks = Ticks::new(&Uninterrupted);
        assert!((0..100_000).all(|_| ticks.tick().is_ok()));
    }
}
