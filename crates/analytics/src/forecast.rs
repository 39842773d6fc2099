//! Holt-Winters forecasting (additive level, trend and season), with a backtest on the series' own
//! tail against the seasonal-naive forecast.
//!
//! Fitting: the smoothing constants are chosen from a fixed grid by the smallest one-step-ahead
//! squared error over the training data; the first season initialises the level and the seasonal
//! offsets, the first two seasons the trend. Backtest: the model is fitted on all but the last
//! season, forecasts that season, and its mean absolute error is reported beside that of
//! seasonal-naive (the last observed season repeated), so a reader sees whether the model earns its
//! keep. This module must not read the clock; its output depends on the values alone.

use serde::Serialize;

const ALPHAS: [f64; 8] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8];
const BETAS: [f64; 5] = [0.0, 0.001, 0.01, 0.05, 0.1];
const GAMMAS: [f64; 7] = [0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8];

/// A fitted additive Holt-Winters model, at the end of its data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoltWinters {
    pub alpha: f64,
    pub beta: f64,
    pub gamma: f64,
    pub period: usize,
    pub level: f64,
    /// Change of the level per step.
    pub trend: f64,
    /// Seasonal offsets; `season[i % period]` belongs to the step `i` after the data's start.
    #[serde(skip)]
    season: Vec<f64>,
    /// Steps the model has seen (so forecasts pick the right seasonal offset).
    #[serde(skip)]
    seen: usize,
    /// Root mean squared one-step error over the training data.
    pub fit_rmse: f64,
}

impl HoltWinters {
    /// Fits the grid model that best forecasts a whole season ahead: each candidate is run on all
    /// but the last season and scored by its error over that season (the horizon forecasts are
    /// used for), then the winner is run over all the data. With fewer than three seasons the
    /// one-step error decides instead. `None` with fewer than two seasons or a period under 2.
    pub fn fit(values: &[f64], period: usize) -> Option<HoltWinters> {
        if period < 2 || values.len() < 2 * period || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let validate = values.len() >= 3 * period;
        let (head, tail) = values.split_at(values.len() - if validate { period } else { 0 });
        let mut best: Option<(f64, f64, f64, f64)> = None;
        for &alpha in &ALPHAS {
            for &beta in &BETAS {
                for &gamma in &GAMMAS {
                    let model = run(head, period, alpha, beta, gamma);
                    let score = if validate {
                        let ahead = model.forecast(period);
                        ahead
                            .iter()
                            .zip(tail)
                            .map(|(a, b)| (a - b).abs())
                            .sum::<f64>()
                    } else {
                        model.fit_rmse
                    };
                    if score.is_finite() && best.is_none_or(|b| score < b.0) {
                        best = Some((score, alpha, beta, gamma));
                    }
                }
            }
        }
        let (_, alpha, beta, gamma) = best?;
        Some(run(values, period, alpha, beta, gamma))
    }

    /// The next `horizon` values after the data.
    pub fn forecast(&self, horizon: usize) -> Vec<f64> {
        (1..=horizon)
            .map(|h| {
                let s = self.season[(self.seen + h - 1) % self.period];
                self.level + h as f64 * self.trend + s
            })
            .collect()
    }

    /// The largest value of the seasonal cycle at the current level (where a limit bites first).
    pub fn seasonal_peak(&self) -> f64 {
        self.level + self.season.iter().copied().fold(f64::MIN, f64::max)
    }
}

fn run(values: &[f64], period: usize, alpha: f64, beta: f64, gamma: f64) -> HoltWinters {
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let first = mean(&values[..period]);
    let second = mean(&values[period..2 * period]);
    let mut level = first;
    let mut trend = (second - first) / period as f64;
    let mut season: Vec<f64> = values[..period].iter().map(|v| v - first).collect();
    let mut sse = 0.0;
    let mut count = 0usize;
    for (i, &x) in values.iter().enumerate().skip(period) {
        let s = season[i % period];
        let predicted = level + trend + s;
        sse += (x - predicted).powi(2);
        count += 1;
        let previous_level = level;
        level = alpha * (x - s) + (1.0 - alpha) * (level + trend);
        trend = beta * (level - previous_level) + (1.0 - beta) * trend;
        season[i % period] = gamma * (x - level) + (1.0 - gamma) * s;
    }
    HoltWinters {
        alpha,
        beta,
        gamma,
        period,
        level,
        trend,
        season,
        seen: values.len(),
        fit_rmse: (sse / count.max(1) as f64).sqrt(),
    }
}

/// The last season repeated.
pub fn seasonal_naive(values: &[f64], period: usize, horizon: usize) -> Vec<f64> {
    if period == 0 || values.len() < period {
        return vec![values.last().copied().unwrap_or(0.0); horizon];
    }
    let last = &values[values.len() - period..];
    (0..horizon).map(|h| last[h % period]).collect()
}

/// Holt-Winters against seasonal-naive on the series' own last season.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    /// Steps held out (one season).
    pub holdout: usize,
    pub holt_winters_mae: f64,
    pub seasonal_naive_mae: f64,
    pub holt_winters_rmse: f64,
    pub seasonal_naive_rmse: f64,
    pub beats_seasonal_naive: bool,
}

/// Fits on all but the last season and scores both forecasts on it; needs three seasons.
pub fn backtest(values: &[f64], period: usize) -> Option<Backtest> {
    if values.len() < 3 * period {
        return None;
    }
    let split = values.len() - period;
    let (train, test) = values.split_at(split);
    let model = HoltWinters::fit(train, period)?;
    let hw = model.forecast(period);
    let naive = seasonal_naive(train, period, period);
    let mae =
        |f: &[f64]| f.iter().zip(test).map(|(a, b)| (a - b).abs()).sum::<f64>() / period as f64;
    let rmse = |f: &[f64]| {
        (f.iter()
            .zip(test)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / period as f64)
            .sqrt()
    };
    let (hw_mae, naive_mae) = (mae(&hw), mae(&naive));
    Some(Backtest {
        holdout: period,
        holt_winters_mae: hw_mae,
        seasonal_naive_mae: naive_mae,
        holt_winters_rmse: rmse(&hw),
        seasonal_naive_rmse: rmse(&naive),
        beats_seasonal_naive: hw_mae < naive_mae,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seasonal(n: usize, period: usize, trend: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                100.0
                    + trend * i as f64
                    + 30.0 * (std::f64::consts::TAU * (i % period) as f64 / period as f64).sin()
            })
            .collect()
    }

    #[test]
    fn recovers_a_clean_trend_and_season() {
        let values = seasonal(24 * 14, 24, 0.5);
        let model = HoltWinters::fit(&values, 24).unwrap();
        let expected = seasonal(24 * 15, 24, 0.5);
        for (h, f) in model.forecast(24).iter().enumerate() {
            let truth = expected[24 * 14 + h];
            assert!((f - truth).abs() < 1.0, "step {h}: {f} vs {truth}");
        }
        assert!((model.trend - 0.5).abs() < 0.05, "{}", model.trend);
        // With a trend, seasonal-naive lags a whole season behind; Holt-Winters does not.
        let b = backtest(&values, 24).unwrap();
        assert!(b.beats_seasonal_naive, "{b:?}");
        assert!((b.seasonal_naive_mae - 12.0).abs() < 1e-6, "{b:?}");
    }

    #[test]
    fn too_little_data_is_refused() {
        assert!(HoltWinters::fit(&seasonal(30, 24, 0.0), 24).is_none());
        assert!(HoltWinters::fit(&seasonal(30, 1, 0.0), 1).is_none());
        assert!(backtest(&seasonal(60, 24, 0.0), 24).is_none());
        assert_eq!(seasonal_naive(&[1.0, 2.0, 3.0], 2, 3), vec![2.0, 3.0, 2.0]);
    }

    /// NAB nyc_taxi (30-minute taxi demand): fitted on all but the last week, Holt-Winters with a
    /// weekly season must beat repeating the week before.
    #[test]
    fn nyc_taxi_backtest_beats_seasonal_naive() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/nab/nyc_taxi.csv");
        if !path.exists() {
            println!("skipped: {} is absent", path.display());
            return;
        }
        let series = crate::import::import_series(std::fs::File::open(path).unwrap()).unwrap();
        let values: Vec<f64> = series.series.points.iter().map(|p| p.1).collect();
        let b = backtest(&values, 336).unwrap();
        println!(
            "NAB nyc_taxi backtest (last week held out): Holt-Winters MAE {:.1} (RMSE {:.1}), seasonal-naive MAE {:.1} (RMSE {:.1})",
            b.holt_winters_mae, b.holt_winters_rmse, b.seasonal_naive_mae, b.seasonal_naive_rmse
        );
        assert!(b.beats_seasonal_naive, "{b:?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn forecasts_have_the_asked_horizon(
            values in proptest::collection::vec(-1e6f64..1e6, 0..120),
            period in 0usize..30,
            horizon in 0usize..200,
        ) {
            if let Some(model) = HoltWinters::fit(&values, period) {
                let f = model.forecast(horizon);
                prop_assert_eq!(f.len(), horizon);
                prop_assert!(f.iter().all(|v| v.is_finite()));
            }
            prop_assert_eq!(seasonal_naive(&values, period, horizon).len(), horizon);
        }
    }
}
