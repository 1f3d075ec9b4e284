//! Medians, spreads and percentiles.

/// A figure measured several times.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measured {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Measured {
    pub fn of(mut samples: Vec<f64>) -> Self {
        assert!(!samples.is_empty(), "a figure needs at least one run");
        samples.sort_by(|a, b| a.total_cmp(b));
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        Self {
            median,
            min: samples[0],
            max: samples[n - 1],
            runs: n,
        }
    }
}

/// The `p`-th percentile (0–100) of latencies, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        let m = Measured::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((m.median, m.min, m.max), (2.0, 1.0, 3.0));
        assert_eq!(Measured::of(vec![1.0, 2.0, 3.0, 4.0]).median, 2.5);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
    }
}
