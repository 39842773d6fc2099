//! Level shifts: a series that settles at a new level, found once, at the change.
//!
//! The level of a decomposed series is a rolling median, which follows a step within the step
//! itself: a lasting change leaves no residual departure behind, so it must be looked for in the
//! level. At each slot, the change is the level of the window after it minus the level of the
//! window before it (each one level window long). Across the series these changes are mostly
//! drift; they are scored in units of their own robust spread (median and MAD over the whole
//! series, which one real shift barely moves). Differences of medians of many points would be
//! close to normal, but drift makes them heavier-tailed, so a Laplace tail of the same spread gives
//! each local extreme its chance. Windows a
//! level window apart barely overlap, so the series holds about `slots / level window` independent
//! changes per side; a shift is reported when that many, times its tail probability, is within
//! the budget (`Settings::false_shifts_per_1000` per 1,000 points, a budget of its own beside
//! the departures'). A change smaller than the usual spread of a single point is drift, not a new
//! level; a rise and a fall within three level windows (and at least a week) of each other are an
//! excursion, not a shift, and are left to the departures.
//!
//! This module must not know about dates or units: it returns slot indices and level changes.

use crate::episodes::Settings;
use crate::seasonality::{Decomposition, spread};
use crate::stats::median;

/// A rise and a fall closer than this many level windows, or a week, are one excursion, not two
/// shifts.
const EXCURSION_WINDOWS: usize = 3;

/// A lasting change of level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shift {
    /// The first slot at the new level.
    pub at: usize,
    /// New level minus old, in the series' unit.
    pub delta: f64,
    /// The change in spreads of the series' level changes.
    pub score: f64,
    /// Expected number of changes at least this large that chance would give in the series.
    pub chance: f64,
}

/// P(X > s) for a Laplace variable of unit standard deviation.
fn laplace_tail(s: f64) -> f64 {
    0.5 * (-std::f64::consts::SQRT_2 * s.max(0.0)).exp()
}

/// The level shifts of `d`; rises only when `up_only`.
pub(crate) fn find_shifts(
    d: &Decomposition,
    week_slots: usize,
    up_only: bool,
    settings: &Settings,
) -> Vec<Shift> {
    let n = d.level.len();
    let w = d.level_window.max(2);
    let half = w / 2;
    if n < 3 * w {
        return Vec::new();
    }
    // Points present before each slot, to see how well each window is covered.
    let mut present = vec![0usize; n + 1];
    for (i, r) in d.residual.iter().enumerate() {
        present[i + 1] = present[i] + usize::from(r.is_some());
    }
    // A window holding less than half the points the series' density gives it (it spans a gap in
    // the data) has no level to compare.
    let enough = (present[n] * w / n / 2).max(1);
    let covered = |a: usize, b: usize| present[b.min(n)] - present[a] >= enough;
    // change[t]: level of [t, t + w) minus level of [t - w, t), from the centred rolling level.
    let change: Vec<Option<f64>> = (0..n)
        .map(|t| {
            let start = t.checked_sub(w)?;
            if t + w > n || !covered(start, t) || !covered(t, t + w) {
                return None;
            }
            let after = d.level.get(t + half).copied().flatten()?;
            let before = d.level[t.checked_sub(w - half)?]?;
            Some(after - before)
        })
        .collect();
    let values: Vec<f64> = change.iter().flatten().copied().collect();
    let Some(center) = median(&values) else {
        return Vec::new();
    };
    let unit = spread(&values, center);
    let residual_unit = median(&d.spread).unwrap_or(0.0);
    if unit <= 0.0 || residual_unit <= 0.0 {
        return Vec::new();
    }
    let scored = d.residual.iter().flatten().count();
    let budget = settings.false_shifts_per_1000 * scored as f64 / 1000.0;
    let signs: &[f64] = if up_only { &[1.0] } else { &[1.0, -1.0] };
    // Windows a level window apart barely overlap: that many independent changes per side.
    let independent = (values.len() / w).max(1) as f64 * signs.len() as f64;
    let mut found: Vec<Shift> = Vec::new();
    for &sign in signs {
        let score = |t: usize| change[t].map(|c| sign * (c - center) / unit);
        // Local extremes at least a window apart, largest first.
        let mut order: Vec<(usize, f64)> = (0..n)
            .filter_map(|t| score(t).map(|s| (t, s)))
            .filter(|(_, s)| *s > 0.0)
            .collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut taken: Vec<usize> = Vec::new();
        for (t, s) in order {
            if taken.iter().any(|&u| u.abs_diff(t) < w) {
                continue;
            }
            taken.push(t);
            // Drift makes changes of level heavier-tailed than the normal law their medians of
            // many points would give: a Laplace tail of the same spread keeps on the safe side.
            let chance = independent * laplace_tail(s);
            if chance > budget {
                break;
            }
            let delta = change[t].unwrap_or(0.0);
            // A change smaller than one usual spread of a point is drift, not a new level.
            if delta.abs() < residual_unit {
                continue;
            }
            found.push(Shift {
                at: t,
                delta,
                score: s,
                chance,
            });
        }
    }
    // A rise and a fall within a few windows of each other are an excursion, not a new level.
    let excursion = |a: &Shift| {
        found.iter().any(|b| {
            b.at != a.at
                && b.at.abs_diff(a.at) <= (EXCURSION_WINDOWS * w).max(week_slots)
                && (b.delta > 0.0) != (a.delta > 0.0)
        })
    };
    let mut shifts: Vec<Shift> = found.iter().filter(|s| !excursion(s)).cloned().collect();
    shifts.sort_by_key(|s| s.at);
    shifts
}
