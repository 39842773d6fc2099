//! Issue 14: anomalies a person can trust, measured on labelled real series (Numenta Anomaly
//! Benchmark, MIT licence) in `../shared/data/nab`: the development set (28 series, labels in
//! `dev/windows.json`) and nyc_taxi. The series go through the same path as
//! `agentwire analyze FILE --format series --json` (import, grid of the median step with points
//! averaged, both directions, not a cost), and are scored exactly as the issue defines it:
//!
//! - window recall = labelled windows overlapped by at least one reported anomaly / windows;
//! - precision = reported anomalies overlapping a labelled window / reported anomalies;
//!
//! both summed over the series of a set. `scripts/nab_eval.sh` measures the same through the CLI.
//! The tests skip, saying why, when the data is absent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use agentwire_analytics::episodes::Settings;
use agentwire_analytics::import_series;
use agentwire_analytics::timeseries::{
    Combine, Direction, Grid, SeriesAnomalies, detect_series, detect_series_with,
};
use chrono::{DateTime, NaiveDateTime, Utc};

fn nab() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab");
    if p.join("dev/windows.json").exists() && p.join("nyc_taxi.csv").exists() {
        Some(p)
    } else {
        println!(
            "skipped: the NAB data is absent at {} (needs dev/windows.json and nyc_taxi.csv)",
            p.display()
        );
        None
    }
}

type Window = (DateTime<Utc>, DateTime<Utc>);

fn parse_label(v: &serde_json::Value) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d %H:%M:%S%.f")
        .unwrap()
        .and_utc()
}

fn labels(path: &Path) -> Vec<(String, Vec<Window>)> {
    let v: serde_json::Value = serde_json::from_reader(std::fs::File::open(path).unwrap()).unwrap();
    let mut out: Vec<(String, Vec<Window>)> = v
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, ws)| {
            let ws = ws
                .as_array()
                .unwrap()
                .iter()
                .map(|w| (parse_label(&w[0]), parse_label(&w[1])))
                .collect();
            (k.clone(), ws)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The grid `agentwire analyze --format series` builds.
fn grid(csv: &Path) -> Grid {
    let imported = import_series(std::fs::File::open(csv).unwrap()).unwrap();
    assert!(imported.errors.is_empty(), "{}", csv.display());
    Grid::from_points(&imported.series.points, Combine::Mean).unwrap()
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    windows: usize,
    hit: usize,
    reported: usize,
    inside: usize,
    /// Points outside every labelled window.
    outside_points: usize,
}

impl Tally {
    fn of(found: &SeriesAnomalies, grid: &Grid, windows: &[Window]) -> Tally {
        let overlaps = |s: DateTime<Utc>, e: DateTime<Utc>, w: &Window| s <= w.1 && e >= w.0;
        let a = &found.anomalies;
        Tally {
            windows: windows.len(),
            hit: windows
                .iter()
                .filter(|w| a.iter().any(|x| overlaps(x.start, x.end, w)))
                .count(),
            reported: a.len(),
            inside: a
                .iter()
                .filter(|x| windows.iter().any(|w| overlaps(x.start, x.end, w)))
                .count(),
            outside_points: (0..grid.values.len())
                .filter(|&i| grid.values[i].is_some())
                .filter(|&i| {
                    let t = grid.time(i);
                    !windows.iter().any(|w| w.0 <= t && t <= w.1)
                })
                .count(),
        }
    }

    fn add(self, o: Tally) -> Tally {
        Tally {
            windows: self.windows + o.windows,
            hit: self.hit + o.hit,
            reported: self.reported + o.reported,
            inside: self.inside + o.inside,
            outside_points: self.outside_points + o.outside_points,
        }
    }

    fn recall(&self) -> f64 {
        self.hit as f64 / self.windows.max(1) as f64
    }

    fn precision(&self) -> f64 {
        self.inside as f64 / self.reported.max(1) as f64
    }

    /// Reported anomalies outside every window, per 1,000 points outside every window.
    fn false_per_1000(&self) -> f64 {
        1000.0 * (self.reported - self.inside) as f64 / self.outside_points.max(1) as f64
    }

    fn line(&self, title: &str) -> String {
        format!(
            "{title:30} recall {}/{} = {:.3}  precision {}/{} = {:.3}  false episodes per 1,000 unlabelled points {:.3}",
            self.hit,
            self.windows,
            self.recall(),
            self.inside,
            self.reported,
            self.precision(),
            self.false_per_1000()
        )
    }
}

struct DevRun {
    rows: Vec<(String, Tally, SeriesAnomalies)>,
}

impl DevRun {
    fn total(&self, keep: impl Fn(usize) -> bool) -> Tally {
        self.rows
            .iter()
            .enumerate()
            .filter(|(i, _)| keep(*i))
            .fold(Tally::default(), |t, (_, r)| t.add(r.1))
    }

    /// Half A holds the 1st, 3rd, ... series (sorted by name), half B the others.
    fn half(&self, a: bool) -> Tally {
        self.total(|i| (i % 2 == 0) == a)
    }
}

fn run_dev(nab: &Path, settings: &Settings) -> DevRun {
    let rows = labels(&nab.join("dev/windows.json"))
        .into_iter()
        .map(|(name, windows)| {
            let g = grid(&nab.join("dev").join(&name));
            let found = detect_series_with(&g, Direction::Both, false, settings);
            let tally = Tally::of(&found, &g, &windows);
            (name, tally, found)
        })
        .collect();
    DevRun { rows }
}

fn taxi(nab: &Path) -> (Tally, SeriesAnomalies) {
    let windows = labels(&nab.join("nyc_taxi_windows.json"));
    let g = grid(&nab.join("nyc_taxi.csv"));
    let found = detect_series(&g, Direction::Both, false);
    (Tally::of(&found, &g, &windows[0].1), found)
}

/// The dev-set figures stay at least as good as the issue asks (what the detector reaches, a little
/// above these, is in docs/anomalies.md) and each half stays close; series without a labelled
/// window get at most one anomaly; and where nothing is labelled the episodes stay within the
/// stated false-alarm bound (they include real events nobody labelled: the bound seen from above).
#[test]
fn dev_set_recall_precision_and_quiet_series() {
    let Some(nab) = nab() else { return };
    let run = run_dev(&nab, &Settings::default());
    for (name, t, found) in &run.rows {
        println!(
            "{name:36} {:7} season; windows {} hit {} reported {} inside {}",
            found.season, t.windows, t.hit, t.reported, t.inside
        );
    }
    let all = run.total(|_| true);
    let (a, b) = (run.half(true), run.half(false));
    println!("{}", all.line("dev set (28 series)"));
    println!("{}", a.line("dev half A (1st, 3rd, ...)"));
    println!("{}", b.line("dev half B (2nd, 4th, ...)"));
    assert_eq!(all.windows, 53);
    assert!(all.recall() >= 0.75, "{}", all.line("dev"));
    assert!(all.precision() >= 0.50, "{}", all.line("dev"));
    for (half, t) in [("A", a), ("B", b)] {
        assert!(t.recall() >= 0.65, "{}", t.line(half));
        assert!(t.precision() >= 0.45, "{}", t.line(half));
    }
    let mut quiet_points = 0;
    for (name, t, found) in run.rows.iter().filter(|r| r.1.windows == 0) {
        println!(
            "{name}: {} anomalies in {} points",
            t.reported, t.outside_points
        );
        assert!(t.reported <= 1, "{name}: {:#?}", found.anomalies);
        quiet_points += t.outside_points;
    }
    assert_eq!(quiet_points, 5 * 4032);
    let bound = agentwire_analytics::timeseries::STATED_FALSE_EPISODES_PER_1000;
    println!(
        "unlabelled stretches: {:.3} episodes per 1,000 points (bound {bound})",
        all.false_per_1000()
    );
    assert!(all.false_per_1000() <= bound, "{}", all.line("dev"));
}

/// nyc_taxi, the series the first detector was built with, keeps its five windows.
#[test]
fn nyc_taxi_keeps_its_five_windows() {
    let Some(nab) = nab() else { return };
    let (t, found) = taxi(&nab);
    println!("{}", t.line("nyc_taxi"));
    for a in &found.anomalies {
        println!(
            "  {} .. {} {} {} impact {:.0} severity {:?} chance {:.3}",
            a.start, a.end, a.kind, a.direction, a.impact, a.severity, a.chance
        );
    }
    assert_eq!(found.season, "weekly");
    assert_eq!(t.hit, 5, "{}", t.line("nyc_taxi"));
}

/// The split check on the one setting that trades recall for precision, the departures' false-alarm
/// budget: chosen on half A alone (the largest recall with precision at least 0.5), it holds on
/// half B. (The product's budget, 0.25, was chosen on the whole set; docs/anomalies.md has both.)
#[test]
fn the_budget_chosen_on_one_half_holds_on_the_other() {
    let Some(nab) = nab() else { return };
    let mut chosen: Option<(f64, Tally, Tally)> = None;
    for budget in [0.1, 0.15, 0.25] {
        let settings = Settings {
            false_episodes_per_1000: budget,
            ..Settings::default()
        };
        let run = run_dev(&nab, &settings);
        let (a, b) = (run.half(true), run.half(false));
        println!("budget {budget}: {} | {}", a.line("A"), b.line("B"));
        let better = chosen.is_none_or(|(_, best, _)| a.recall() > best.recall());
        if a.precision() >= 0.5 && better {
            chosen = Some((budget, a, b));
        }
    }
    let (budget, _, b) = chosen.expect("some budget keeps half A's precision at 0.5");
    println!("chosen on A: {budget}; on B: {}", b.line("B"));
    assert!(
        b.recall() >= 0.75 && b.precision() >= 0.5,
        "{}",
        b.line("B")
    );
}
