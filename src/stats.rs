//! Per-segment statistics: the mergeable state ([`Moments`]) and the user-facing
//! summary of a matrix's columns ([`describe`]).
//!
//! `Moments` is what a distributed fit carries between shards: states computed on
//! different devices (or machines) merge exactly (Chan, Golub & LeVeque) into the
//! state of the whole data.

use serde::{Deserialize, Serialize};

/// One segment's statistics: count and NaN count, mean and M2 (sum of squared
/// deviations) of the non-NaN values, min and max (NaN ignored; NaN when count is 0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub count: u64,
    pub nan_count: u64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments::EMPTY
    }
}

impl Moments {
    /// The state of no values at all.
    pub const EMPTY: Moments =
        Moments { count: 0, nan_count: 0, mean: f64::NAN, m2: f64::NAN, min: f64::NAN, max: f64::NAN };

    /// Merge two states (Chan et al.): `M2 = M2a + M2b + d²·na·nb/n`.
    pub fn merge(&self, other: &Moments) -> Moments {
        let nan_count = self.nan_count + other.nan_count;
        if other.count == 0 {
            return Moments { nan_count, ..*self };
        }
        if self.count == 0 {
            return Moments { nan_count, ..*other };
        }
        let n = self.count + other.count;
        let (na, nb) = (self.count as f64, other.count as f64);
        let d = other.mean - self.mean;
        Moments {
            count: n,
            nan_count,
            mean: self.mean + d * nb / n as f64,
            m2: self.m2 + other.m2 + d * d * na * nb / n as f64,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// Population variance (ddof 0); NaN when count is 0.
    pub fn var(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.m2 / self.count as f64
        }
    }

    /// Sample variance (ddof 1); `None` when count < 2.
    pub fn var_sample(&self) -> Option<f64> {
        (self.count >= 2).then(|| self.m2 / (self.count - 1) as f64)
    }

    /// Population standard deviation.
    pub fn std(&self) -> f64 {
        self.var().sqrt()
    }

    /// max |x| over the non-NaN values.
    pub fn max_abs(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }
}

/// Merge per-segment states of two shards, segment by segment.
pub fn merge_all(a: &[Moments], b: &[Moments]) -> Vec<Moments> {
    a.iter().zip(b).map(|(x, y)| x.merge(y)).collect()
}
