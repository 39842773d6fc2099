//! Episodes of anomaly in a decomposed series, each reported only above a threshold calibrated on
//! the series' own departures, so that chance alone produces a bounded number of them.
//!
//! Departures: runs of points whose residual passes `base_z` usual spreads on one side (above or
//! below) and is among the `base_fraction` most extreme of the series on that side; runs of one
//! side less than `merge_hours` apart are one departure (one event that paused is still one).
//! Each departure is measured twice: its peak (the largest robust z of its points: how extreme)
//! and its excess (the sum of its residuals, in the series' unit: how much).
//!
//! Calibration: most departures of a series are its ordinary noise. For each side and each
//! measure, an exponential tail is fitted to the series' own departures (`crate::stats::ExpTail`:
//! the light tail of ordinary noise, fitted from its median so the largest departures, where the
//! anomalies are, take no part). A departure's `chance` is the number of departures at least as
//! extreme that this tail expects among all the departures of the series, times the number of
//! measures (a Bonferroni correction); it is an episode when its chance, on either measure, is
//! within the budget of `false_episodes_per_1000` per 1,000 scored points.
//!
//! The bound: summed over every departure of the series, the expected number of chance episodes
//! is at most `departures * measures * p`, where `p` is the per-departure probability each
//! threshold allows, `budget / (departures * measures)`: at most the budget, i.e.
//! `false_episodes_per_1000` per 1,000 points, as far as the ordinary departures have the light
//! tail assumed and the tail is estimated well (it is fitted from a few dozen departures, and its
//! error lets chance through somewhat more often: `crate::timeseries::STATED_FALSE_EPISODES_PER_1000`
//! is the bound simulation holds it to). A series with heavier-tailed noise gets more episodes than
//! the bound, and they are its heaviest departures. With too few departures to fit a tail (a short or a very regular
//! series), a departure must pass `FALLBACK_Z` spreads, which light-tailed noise practically never
//! does; when departures are many but all alike (a regular pattern of spikes), none stands out.
//!
//! This module must not know about dates, money or units: it returns slot indices.

use serde::Serialize;

use crate::seasonality::Decomposition;
use crate::stats::ExpTail;

/// The detector's settings. The defaults are the only settings the product uses, for every
/// series; the struct exists so tests can show how the figures move around them.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The false-alarm bound of departures: expected chance episodes per 1,000 points.
    pub false_episodes_per_1000: f64,
    /// The same for level shifts (`crate::shifts`); the whole bound is the sum of the two.
    pub false_shifts_per_1000: f64,
    /// A point departs when its residual passes this many usual spreads...
    pub base_z: f64,
    /// ...and is among this top fraction of the series' points on its side, so a series whose
    /// residuals are heavy-tailed (small counts, bursty traffic) is not one long departure.
    pub base_fraction: f64,
    /// Fraction of the departures (of one side) that forms the fitted tail...
    pub tail_fraction: f64,
    /// ...and at least this many of them.
    pub min_tail: usize,
    /// Departures of one side closer than this (in hours) are one; adjacent slots always are.
    pub merge_hours: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            false_episodes_per_1000: 0.25,
            false_shifts_per_1000: 0.05,
            base_z: 2.0,
            base_fraction: 0.1,
            tail_fraction: 0.2,
            min_tail: 16,
            merge_hours: 3.0,
        }
    }
}

/// With no tail to fit, a departure is an episode when one of its points passes this many spreads.
pub const FALLBACK_Z: f64 = 10.0;
/// The measures each departure is tested on: peak z and excess.
const MEASURES: usize = 2;

/// How one side of one measure was calibrated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// "above" or "below".
    pub direction: String,
    /// "peak_z" (spreads) or "excess" (the series' unit).
    pub measure: String,
    /// How many departures of this side there were.
    pub departures: usize,
    /// The value a departure must reach on this measure to be an episode; None when no tail
    /// could be fitted (fewer than `min_tail` departures, or all alike), and then a departure
    /// counts only when one of its points passes `FALLBACK_Z` and the departures are few.
    pub threshold: Option<f64>,
}

/// An episode, in slots.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Episode {
    pub start: usize,
    /// Inclusive.
    pub end: usize,
    pub up: bool,
    /// The largest |z| of a point in the episode.
    pub peak_z: f64,
    /// The sum of the residuals of its departing points, signed (+ above).
    pub excess: f64,
    /// Expected number of departures at least this extreme that chance alone would give in the
    /// whole series; at most the budget for a reported episode.
    pub chance: f64,
    /// Slots past the base.
    pub flagged: Vec<usize>,
}

/// What `find` returns: the episodes in time order, the calibrations and the chance budget.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Found {
    pub episodes: Vec<Episode>,
    pub calibrations: Vec<Calibration>,
    /// Expected chance episodes over the whole series: the bound times points / 1,000.
    pub budget: f64,
    pub scored: usize,
}

/// Departures of one side: runs past the base, joined across gaps of at most `gap` slots.
fn departures(d: &Decomposition, sign: f64, settings: &Settings, gap: usize) -> Vec<Episode> {
    let mut side: Vec<f64> = (0..d.residual.len())
        .filter_map(|i| d.score(i))
        .map(|z| sign * z)
        .collect();
    side.sort_by(f64::total_cmp);
    let rank = ((1.0 - settings.base_fraction) * side.len().saturating_sub(1) as f64) as usize;
    let base = side
        .get(rank)
        .map_or(settings.base_z, |q| q.max(settings.base_z));
    let mut out: Vec<Episode> = Vec::new();
    for i in 0..d.residual.len() {
        let (Some(z), Some(r)) = (d.score(i), d.residual[i]) else {
            continue;
        };
        let x = sign * z;
        if x <= base {
            continue;
        }
        match out.last_mut() {
            Some(e) if i <= e.end + gap + 1 => {
                e.end = i;
                e.peak_z = e.peak_z.max(x);
                e.excess += r;
                e.flagged.push(i);
            }
            _ => out.push(Episode {
                start: i,
                end: i,
                up: sign > 0.0,
                peak_z: x,
                excess: r,
                chance: f64::INFINITY,
                flagged: vec![i],
            }),
        }
    }
    out
}

/// The two measures of a departure, oriented so that larger is more anomalous.
fn measures(e: &Episode) -> [f64; MEASURES] {
    let sign = if e.up { 1.0 } else { -1.0 };
    [e.peak_z, sign * e.excess]
}

/// One side's calibration: a tail per measure, fitted on its departures (None when they are
/// fewer than `min_tail` or all alike).
struct Side {
    tails: [Option<ExpTail>; MEASURES],
    departures: usize,
}

fn calibrate(found: &[Episode], settings: &Settings) -> Side {
    let fit = |k: usize| {
        let sample: Vec<f64> = found.iter().map(|e| measures(e)[k]).collect();
        (found.len() >= settings.min_tail)
            .then(|| ExpTail::fit(&sample, settings.tail_fraction, settings.min_tail))
            .flatten()
    };
    Side {
        tails: [fit(0), fit(1)],
        departures: found.len(),
    }
}

/// Finds the episodes of `d`. `up_only` tests rises only; `merge_gap` is in slots.
pub(crate) fn find(
    d: &Decomposition,
    up_only: bool,
    merge_gap: usize,
    settings: &Settings,
) -> Found {
    let scored = d.residual.iter().flatten().count();
    let budget = settings.false_episodes_per_1000 * scored as f64 / 1000.0;
    let signs: &[f64] = if up_only { &[1.0] } else { &[1.0, -1.0] };
    let sides: Vec<(f64, Vec<Episode>)> = signs
        .iter()
        .map(|&s| (s, departures(d, s, settings, merge_gap)))
        .collect();
    let calibrated: Vec<Side> = sides
        .iter()
        .map(|(_, found)| calibrate(found, settings))
        .collect();
    let candidates: usize = calibrated.iter().map(|c| c.departures).sum();
    // Chance per candidate on one measure, summed over every candidate and measure.
    let multiplier = (candidates * MEASURES) as f64;
    let per_candidate = budget / multiplier.max(1.0);
    let mut episodes = Vec::new();
    let mut calibrations = Vec::new();
    for ((sign, found), side) in sides.into_iter().zip(&calibrated) {
        let no_tail = side.tails.iter().all(Option::is_none);
        for (k, tail) in side.tails.iter().enumerate() {
            calibrations.push(Calibration {
                direction: if sign > 0.0 { "above" } else { "below" }.to_string(),
                measure: ["peak_z", "excess"][k].to_string(),
                departures: side.departures,
                threshold: tail.map(|t| t.quantile(per_candidate)),
            });
        }
        for mut e in found {
            let m = measures(&e);
            e.chance = if no_tail {
                // Nothing to calibrate on: only a departure far beyond any spread counts, and
                // only when departures are few (many equal ones are the series' pattern).
                if m[0] > FALLBACK_Z && side.departures < settings.min_tail {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                side.tails
                    .iter()
                    .zip(m)
                    .filter_map(|(t, v)| t.map(|t| multiplier * t.survival(v)))
                    .fold(f64::INFINITY, f64::min)
            };
            if e.chance <= budget {
                episodes.push(e);
            }
        }
    }
    episodes.sort_by_key(|e| (e.start, e.end));
    Found {
        episodes,
        calibrations,
        budget,
        scored,
    }
}
