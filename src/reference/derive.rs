//! Twin of `shaders/derive.wgsl`, in float64: statistics → (center, inverse scale).

use crate::kernels::derive::{DeriveRule, ROBUST_TINY};
use crate::stats::Moments;

/// scikit-learn's `_handle_zeros_in_scale`: a scale below `tiny` (10·eps of the input's
/// dtype) is taken as 1; so is one whose inverse overflows float32, the GPU's precision.
pub fn safe_inverse(scale: f64, tiny: f64) -> f64 {
    if scale < tiny || 1.0 / scale > f32::MAX as f64 {
        1.0
    } else {
        1.0 / scale
    }
}

/// scikit-learn's `_is_constant_feature`: `var <= n·eps·var + (n·mean·eps)²`.
pub fn is_constant_feature(var: f64, mean: f64, n: f64) -> bool {
    let eps = f64::EPSILON;
    var <= n * eps * var + (n * mean * eps).powi(2)
}

/// Per-segment (center, inverse scale). `quantiles[s]` is `[lo, median, hi]` (robust);
/// `running` is (mean, var) per segment (eval). Running-stat updates are not part of
/// this twin (see the norm layers).
pub fn derive(
    rule: DeriveRule,
    m: &[Moments],
    quantiles: Option<&[Vec<f64>]>,
    running: Option<(&[f64], &[f64])>,
) -> (Vec<f64>, Vec<f64>) {
    m.iter()
        .enumerate()
        .map(|(s, m)| {
            let nan_if = |cond: bool, v: f64| if cond { f64::NAN } else { v };
            match rule {
                DeriveRule::Standard { with_mean, with_std } => {
                    let var = m.var();
                    let inv = if is_constant_feature(var, m.mean, m.count as f64) {
                        1.0
                    } else {
                        safe_inverse(var.sqrt(), 0.0)
                    };
                    (if with_mean { m.mean } else { 0.0 }, if with_std { nan_if(var.is_nan(), inv) } else { 1.0 })
                }
                DeriveRule::MinMax { tiny } => (m.min, nan_if(m.max.is_nan(), safe_inverse(m.max - m.min, tiny))),
                DeriveRule::MaxAbs { tiny } => (0.0, nan_if(m.max.is_nan(), safe_inverse(m.max_abs(), tiny))),
                DeriveRule::Robust { with_centering, with_scaling, unit } => {
                    let q = &quantiles.expect("robust needs quantiles")[s];
                    let iqr = q[2] - q[0];
                    (
                        if with_centering { q[1] } else { 0.0 },
                        if with_scaling { nan_if(iqr.is_nan(), safe_inverse(iqr, ROBUST_TINY) * unit) } else { 1.0 },
                    )
                }
                DeriveRule::Norm { eps, .. } => (m.mean, 1.0 / (m.var() + eps).sqrt()),
                DeriveRule::NormEval { eps } => {
                    let (rm, rv) = running.expect("eval needs running stats");
                    (rm[s], 1.0 / (rv[s] + eps).sqrt())
                }
            }
        })
        .unzip()
}
