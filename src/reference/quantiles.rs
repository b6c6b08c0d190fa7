//! Twin of `shaders/select.wgsl`: sort each segment, interpolate linearly (numpy's default).

use crate::segments::Grouping;

/// numpy's linear-method rank of quantile `q` among `n >= 1` sorted values:
/// `(lo, hi, frac)` with `q·(n−1) = lo + frac` (in float64) and `hi = min(lo + 1, n − 1)`.
pub fn rank(q: f64, n: usize) -> (usize, usize, f64) {
    let rank = q * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    (lo, hi, rank - lo as f64)
}

/// numpy's `_lerp`: `a + (b − a)·t`, switched to `b − (b − a)·(1 − t)` for `t >= 0.5`.
pub fn lerp(a: f64, b: f64, frac: f64) -> f64 {
    let d = b - a;
    if frac >= 0.5 {
        b - d * (1.0 - frac)
    } else {
        a + d * frac
    }
}

/// Quantile `q` of sorted finite values, numpy's linear method: rank `q·(n−1)`.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let (lo, hi, frac) = rank(q, sorted.len());
    lerp(sorted[lo], sorted[hi], frac)
}

/// Per segment, the quantiles `qs` of its non-NaN values; NaN for an all-NaN segment.
pub fn quantiles(data: &[f32], grouping: &Grouping, qs: &[f64]) -> Vec<Vec<f64>> {
    let seg = grouping.segments();
    (0..grouping.num_segments())
        .map(|s| {
            let mut v: Vec<f64> =
                (0..grouping.segment_len()).map(|k| data[seg.offset(s, k)] as f64).filter(|x| !x.is_nan()).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            qs.iter().map(|&q| quantile_sorted(&v, q)).collect()
        })
        .collect()
}
