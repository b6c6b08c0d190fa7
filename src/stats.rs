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

    /// The state of the same values plus `c`: mean, min and max move, M2 stays (the
    /// moments of host-centred residuals moved back, see `scale/offsets.rs`).
    pub fn shifted(self, c: f64) -> Moments {
        if self.count == 0 {
            return self;
        }
        Moments { mean: self.mean + c, min: self.min + c, max: self.max + c, ..self }
    }

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

use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::kernels::{moments::moments_prescaled, select::quantiles};
use crate::scale::offsets::host_input;
use crate::scale::Element;
use crate::segments::Grouping;
use crate::verify::{self, Tolerance, Verify};

/// Summary of one feature (column): what `gpunorm stats` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    pub count: u64,
    pub nan_count: u64,
    pub mean: f64,
    /// Population variance (ddof 0).
    pub var: f64,
    /// Sample variance (ddof 1); `None` when count < 2.
    pub var_sample: Option<f64>,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// One value per requested quantile, in the order asked.
    pub quantiles: Vec<f64>,
}

/// Reject ±inf (NaN is allowed: it means missing), naming row and column.
pub fn check_no_infinity(x: ArrayView2<f32>) -> Result<()> {
    column_ranges(x).map(|_| ())
}

/// Reject ±inf, naming row and column, and return each column's (min, max) over its
/// non-NaN values ((NaN, NaN) when it has none). One pass over the host data serves
/// the check, the moments kernel's prescale ([`prescale_of`]) and the scalers' wide
/// range test.
pub fn column_ranges(x: ArrayView2<f32>) -> Result<Vec<(f64, f64)>> {
    let mut r = vec![(f64::NAN, f64::NAN); x.ncols()];
    for ((row, col), &v) in x.indexed_iter() {
        if v.is_infinite() {
            return Err(Error::NonFinite { what: "infinite value", row, col, value: v as f64 });
        }
        if !v.is_nan() {
            // f64::min/max return the other operand for NaN: the first value replaces
            // the NaN start.
            let (lo, hi) = &mut r[col];
            *lo = lo.min(v as f64);
            *hi = hi.max(v as f64);
        }
    }
    Ok(r)
}

/// Each column's prescale factor for the moments kernel (see
/// [`crate::kernels::moments::prescale_for`]), from its range.
pub fn prescale_of(ranges: &[(f64, f64)]) -> Vec<f32> {
    ranges
        .iter()
        .map(|&(lo, hi)| {
            let max_abs = lo.abs().max(hi.abs());
            crate::kernels::moments::prescale_for(if max_abs.is_nan() { 0.0 } else { max_abs })
        })
        .collect()
}

/// Reject ±inf, naming row and column, and return each column's prescale factor.
pub fn column_prescale(x: ArrayView2<f32>) -> Result<Vec<f32>> {
    Ok(prescale_of(&column_ranges(x)?))
}

/// Check that every quantile lies in [0, 1].
pub fn check_quantiles(qs: &[f64]) -> Result<()> {
    crate::kernels::select::check_qs(qs)
}

/// Tolerance of a quantile: exact order statistics, interpolated in float32.
pub fn quantile_tolerance() -> Tolerance {
    Tolerance::new(0.0, 4.0 * verify::F32_EPS)
}

/// Per-column statistics of a `(n_samples, n_features)` matrix on the GPU: count, NaN
/// count, mean, variances, min, max and exact quantiles (numpy's linear method).
/// NaN is missing; ±inf is an error naming row and column. float64 columns are centred
/// on the host before they become float32, and the statistics moved back in float64
/// (see `scale/offsets.rs`): 1e6 + N(0, 1) keeps its mean and median to ~1e-7.
pub fn describe<T: Element>(gpu: &Gpu, x: ArrayView2<T>, qs: &[f64]) -> Result<Vec<FeatureStats>> {
    check_quantiles(qs)?;
    let (x, offsets) = host_input(x, true);
    let offsets = offsets.unwrap_or_else(|| vec![0.0; x.ncols()]);
    let x = x.view();
    let prescale = column_prescale(x)?;
    let (rows, cols) = x.dim();
    let grouping = Grouping::Columns { rows, cols };
    let tensor = GpuTensor::from_array(gpu, x.into_dyn())?;
    let m = moments_prescaled(gpu, &tensor, &grouping, &prescale)?;
    let q = if qs.is_empty() { vec![Vec::new(); cols] } else { quantiles(gpu, &tensor, &grouping, qs)? };
    if gpu.verify() == Verify::Always {
        let data = tensor.to_vec(gpu)?;
        verify_describe(&data, &grouping, qs, &m, &q)?;
    }
    Ok(m.iter()
        .zip(q)
        .zip(offsets)
        .map(|((m, quantiles), c)| {
            let m = m.shifted(c);
            FeatureStats {
                count: m.count,
                nan_count: m.nan_count,
                mean: m.mean,
                var: m.var(),
                var_sample: m.var_sample(),
                std: m.std(),
                min: m.min,
                max: m.max,
                quantiles: quantiles.into_iter().map(|v| v + c).collect(),
            }
        })
        .collect())
}

/// Compare moments and quantiles with the float64 twins.
fn verify_describe(data: &[f32], g: &Grouping, qs: &[f64], m: &[Moments], q: &[Vec<f64>]) -> Result<()> {
    verify_moments("stats", data, g, m)?;
    if !qs.is_empty() {
        let want_q = crate::reference::quantiles(data, g, qs);
        let flat = |v: &[Vec<f64>]| v.iter().flatten().copied().collect::<Vec<_>>();
        let shape = [g.num_segments(), qs.len()];
        verify::compare("stats quantiles", &shape, &flat(q), &flat(&want_q), quantile_tolerance())
            .map_err(Error::VerifyMismatch)?;
    }
    Ok(())
}

/// Compare GPU moments with the float64 twin: counts, min and max exactly, mean and
/// variance within [`verify::mean_tolerance`] and [`verify::var_tolerance`].
pub fn verify_moments(what: &str, data: &[f32], g: &Grouping, m: &[Moments]) -> Result<()> {
    let want = crate::reference::moments(data, g);
    let n = g.segment_len();
    let segs = g.num_segments();
    let field = |name: &str, get: &dyn Fn(&Moments) -> f64, tol: &dyn Fn(&Moments) -> Tolerance| {
        let gpu: Vec<f64> = m.iter().map(get).collect();
        let reference: Vec<f64> = want.iter().map(get).collect();
        verify::compare_with(&format!("{what} {name}"), &[segs], &gpu, &reference, |i| tol(&want[i]))
            .map_err(Error::VerifyMismatch)
    };
    let exact = |_: &Moments| Tolerance::new(0.0, 0.0);
    field("count", &|s| s.count as f64, &exact)?;
    field("nan_count", &|s| s.nan_count as f64, &exact)?;
    field("min", &|s| s.min, &exact)?;
    field("max", &|s| s.max, &exact)?;
    field("mean", &|s| s.mean, &|r| verify::mean_tolerance(n, n, r.mean.abs(), r.std()))?;
    field("var", &|s| s.var(), &|r| verify::var_tolerance(n, n, r.mean.abs(), r.std()))?;
    Ok(())
}
