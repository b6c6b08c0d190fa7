//! Twin of `shaders/moments.wgsl`: two passes per segment (mean, then squared deviations).

use crate::segments::Grouping;
use crate::stats::Moments;

/// Per-segment moments of `data` (C order) grouped by `grouping`; NaN ignored and
/// counted; ±inf are values (the mean then becomes ±inf or NaN, as in numpy).
pub fn moments(data: &[f32], grouping: &Grouping) -> Vec<Moments> {
    let seg = grouping.segments();
    (0..grouping.num_segments())
        .map(|s| {
            let values = || (0..grouping.segment_len()).map(move |k| data[seg.offset(s, k)] as f64);
            let (mut n, mut nans, mut sum) = (0u64, 0u64, 0.0);
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for v in values() {
                if v.is_nan() {
                    nans += 1;
                } else {
                    n += 1;
                    sum += v;
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            if n == 0 {
                return Moments { nan_count: nans, ..Moments::EMPTY };
            }
            let mean = sum / n as f64;
            let m2 = values().filter(|v| !v.is_nan()).map(|v| (v - mean) * (v - mean)).sum();
            Moments { count: n, nan_count: nans, mean, m2, min: lo, max: hi }
        })
        .collect()
}
