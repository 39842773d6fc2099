//! Small robust statistics shared by the analyses: median, median absolute deviation, a rolling
//! median over a series with holes, and an exponential model of a sample's upper tail.
//!
//! Plain functions over slices; they must not allocate more than a copy or two of their input and
//! must treat NaN deterministically (it sorts last) rather than panic.

/// 1.4826 * MAD estimates a standard deviation for normally distributed data.
pub(crate) const MAD_TO_SIGMA: f64 = 1.4826;

/// The median, or None for an empty slice. Sorts a copy.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(median_of_sorted(&v))
}

fn median_of_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median absolute deviation from `center`.
pub(crate) fn mad(values: &[f64], center: f64) -> Option<f64> {
    let deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    median(&deviations)
}

/// The median of the present values in a centred window of `window` slots around each slot
/// (shorter at the ends, where it holds what there is); None where the window holds no value.
/// A sorted buffer slides along, so the cost is `n * window` moves, not `n * window * log`.
pub(crate) fn rolling_median(values: &[Option<f64>], window: usize) -> Vec<Option<f64>> {
    let n = values.len();
    let window = window.max(1);
    let before = window / 2;
    let after = window - before; // exclusive
    let mut sorted: Vec<f64> = Vec::with_capacity(window + 1);
    let insert = |sorted: &mut Vec<f64>, v: f64| {
        let at = sorted.partition_point(|x| x.total_cmp(&v).is_lt());
        sorted.insert(at, v);
    };
    let remove = |sorted: &mut Vec<f64>, v: f64| {
        let at = sorted.partition_point(|x| x.total_cmp(&v).is_lt());
        if at < sorted.len() {
            sorted.remove(at);
        }
    };
    // Window of slot i: [i - before, i + after).
    for v in values.iter().take(after.min(n)).flatten() {
        insert(&mut sorted, *v);
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push((!sorted.is_empty()).then(|| median_of_sorted(&sorted)));
        if let Some(Some(v)) = values.get(i + after) {
            insert(&mut sorted, *v);
        }
        if i >= before
            && let Some(v) = values[i - before]
        {
            remove(&mut sorted, v);
        }
    }
    out
}

/// An exponential model of a sample's upper tail: above `threshold`, values exceed `x` with
/// probability `rate * exp(-(x - threshold) / scale)`.
///
/// Extreme value theory says the excesses over a high threshold follow a generalized Pareto law;
/// its exponential member (shape 0) is the one of light-tailed noise (normal, Laplace, gamma, sums
/// of a random number of such), which is what ordinary departures of a series are. The scale is
/// fitted from the median excess, so the largest half of the tail (where anomalies sit) takes no
/// part in the fit: a few anomalies cannot raise the bar they must pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ExpTail {
    /// Where the tail starts.
    pub threshold: f64,
    /// Fraction of the sample above `threshold`.
    pub rate: f64,
    pub scale: f64,
}

impl ExpTail {
    /// Fits the largest `max(rate * n, min_tail)` of the `n` positive values of `sample` (at most
    /// half of them). None with fewer than 8 of them, or when their median does not exceed the
    /// tail's start (the top of the sample is flat: nothing stands out from anything else).
    pub fn fit(sample: &[f64], rate: f64, min_tail: usize) -> Option<ExpTail> {
        let mut v: Vec<f64> = sample
            .iter()
            .copied()
            .filter(|x| x.is_finite() && *x > 0.0)
            .collect();
        v.sort_by(|a, b| b.total_cmp(a)); // descending
        let n = v.len();
        let m = ((rate * n as f64).round() as usize)
            .max(min_tail)
            .min(n / 2);
        if m < 8 {
            return None;
        }
        let threshold = v[m];
        let median_excess = median(&v[..m])? - threshold;
        (median_excess > 0.0).then(|| ExpTail {
            threshold,
            rate: m as f64 / n as f64,
            scale: median_excess / std::f64::consts::LN_2,
        })
    }

    /// The probability of a value at least `x`.
    pub fn survival(&self, x: f64) -> f64 {
        if x <= self.threshold {
            return self.rate.max(f64::MIN_POSITIVE);
        }
        self.rate * (-(x - self.threshold) / self.scale).exp()
    }

    /// The value exceeded with probability `p` (at least the tail's start).
    pub fn quantile(&self, p: f64) -> f64 {
        if p >= self.rate {
            return self.threshold;
        }
        self.threshold + self.scale * (self.rate / p.max(f64::MIN_POSITIVE)).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[5.0, 1.0, 100.0]), Some(5.0));
        assert_eq!(mad(&[1.0, 2.0, 3.0, 4.0, 100.0], 3.0), Some(1.0));
    }

    #[test]
    fn rolling_median_matches_the_naive_one_and_skips_holes() {
        let values: Vec<Option<f64>> = (0..40)
            .map(|i| (i % 7 != 3).then(|| f64::from((i * 37) % 11)))
            .collect();
        for window in [1, 2, 5, 8, 60] {
            let fast = rolling_median(&values, window);
            for (i, got) in fast.iter().enumerate() {
                let lo = i.saturating_sub(window / 2);
                let hi = (i + window - window / 2).min(values.len());
                let inside: Vec<f64> = values[lo..hi].iter().flatten().copied().collect();
                assert_eq!(*got, median(&inside), "window {window} slot {i}");
            }
        }
        assert_eq!(rolling_median(&[None, None], 3), vec![None, None]);
    }

    /// Exponential data: the far quantile is near the true one, and a few huge values on top
    /// change nothing (they are above the median of the tail).
    #[test]
    fn exponential_tail() {
        let n = 20_000;
        let sample: Vec<f64> = (0..n)
            .map(|i| -((f64::from(i) + 0.5) / f64::from(n)).ln())
            .collect();
        let tail = ExpTail::fit(&sample, 0.05, 20).unwrap();
        let q = tail.quantile(1e-4);
        assert!((q - (1e4f64).ln()).abs() < 0.1, "{q} {tail:?}");
        assert!((tail.survival(q) - 1e-4).abs() < 1e-8);
        assert_eq!(tail.quantile(0.5), tail.threshold);
        let mut spiked = sample.clone();
        spiked.extend([1e6, 2e6, 3e6]);
        let robust = ExpTail::fit(&spiked, 0.05, 20).unwrap();
        assert!((robust.quantile(1e-4) - q).abs() < 0.05, "{robust:?}");
        // Too few values, or a flat top: no tail.
        assert!(ExpTail::fit(&[1.0, 2.0, 3.0], 0.5, 2).is_none());
        assert!(ExpTail::fit(&[1.0; 50], 0.5, 8).is_none());
    }
}
