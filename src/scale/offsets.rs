//! Float64 inputs keep their precision on a float32 GPU: each column is centred on
//! the host, in float64, before it is rounded to float32.
//!
//! Rounding 1e6 + N(0, 1) or Unix timestamps (1.7e9 s) to float32 first loses
//! everything below 0.06 or 128 s of each value: z-scores off by ~0.03, a median off
//! by a minute, where scikit-learn, which works in float64, is exact. The residual
//! `x − c` of a value near its column's offset `c` rounds at its own scale instead,
//! so the GPU statistics of the residuals, shifted back by `c` in float64 (means, min,
//! max, medians and quantiles move with `c`; variances and ranges do not), and the
//! transform of the residuals against `center − c`, are as accurate as float32
//! arithmetic on well-centred data.
//!
//! The offset is the median of a strided sample of the column: inside its bulk, and
//! within one standard deviation of the mean; it is taken only where the column's range
//! is at most half its magnitude (see [`column_offsets`]). float32 inputs are exact
//! already and go to the GPU as they are.

use ndarray::{Array2, ArrayView2, Axis};

use super::Element;

/// Values of a column sampled for its offset.
const SAMPLE: usize = 1025;

/// Per column, the median `c` of up to `SAMPLE` of its finite values, evenly spaced,
/// where the column's range is at most |c| / 2; else (and for a column without finite
/// values) 0. Only a column far from zero next to its spread gains from centring: there
/// every residual is finer than its value (and for float32 values exact, by Sterbenz's
/// lemma, so that min, max and quantiles come back exactly); a column that spans zero,
/// or ±3e38 (whose residuals would overflow), is better off as it is.
pub fn column_offsets<T: Element>(x: ArrayView2<T>) -> Vec<f64> {
    let (rows, cols) = x.dim();
    let step = rows.div_ceil(SAMPLE).max(1);
    // Row by row (the data is row-major): every `step`-th row into the samples, every
    // row into the finite range.
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rows.div_ceil(step)); cols];
    let mut range = vec![(f64::INFINITY, f64::NEG_INFINITY); cols];
    for (i, row) in x.axis_iter(Axis(0)).enumerate() {
        let sampled = i % step == 0;
        for ((&e, (lo, hi)), sample) in row.iter().zip(range.iter_mut()).zip(samples.iter_mut()) {
            let e = e.to_f64();
            if e.is_finite() {
                *lo = lo.min(e);
                *hi = hi.max(e);
                if sampled {
                    sample.push(e);
                }
            }
        }
    }
    samples
        .into_iter()
        .zip(range)
        .map(|(mut v, (lo, hi))| {
            if v.is_empty() {
                return 0.0;
            }
            let mid = v.len() / 2;
            let c = *v.select_nth_unstable_by(mid, f64::total_cmp).1;
            if 2.0 * (hi - lo) <= c.abs() {
                c
            } else {
                0.0
            }
        })
        .collect()
}

/// `x − offset` of each column, rounded to float32 (NaN and ±inf stay as they are, for
/// the input checks to name).
pub fn residuals<T: Element>(x: ArrayView2<T>, offsets: &[f64]) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros(x.dim());
    for (mut out_row, row) in out.axis_iter_mut(Axis(0)).zip(x.axis_iter(Axis(0))) {
        for ((o, &e), &c) in out_row.iter_mut().zip(row.iter()).zip(offsets) {
            *o = (e.to_f64() - c) as f32;
        }
    }
    out
}

/// The float32 matrix the GPU gets for `x`, and the offsets taken off its columns
/// (`None`: the values as they are, for float32 elements or where `centre` is false).
pub fn host_input<T: Element>(x: ArrayView2<T>, centre: bool) -> (Array2<f32>, Option<Vec<f64>>) {
    if T::EXACT_IN_F32 || !centre {
        return (super::to_f32(x), None);
    }
    let offsets = column_offsets(x);
    (residuals(x, &offsets), Some(offsets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn offsets_sit_in_the_bulk() {
        let mut col: Vec<f64> = (0..5000).map(|i| 1e6 + (i % 7) as f64).collect();
        col[0] = 1e6 + 3e5; // far out, first: the median stays in the bulk
        col[10] = f64::NAN;
        let x = Array2::from_shape_vec((5000, 1), col).unwrap();
        let c = column_offsets(x.view())[0];
        assert!((1e6..=1e6 + 6.0).contains(&c), "{c}");
        // A column whose range reaches past half its median is left as it is.
        assert_eq!(column_offsets(array![[1.0], [2.0], [3.0]].view()), vec![0.0]);
        assert_eq!(column_offsets(array![[-100.0], [-101.0], [-100.5]].view()), vec![-100.5]);
        assert_eq!(column_offsets(array![[f64::NAN], [f64::INFINITY]].view()), vec![0.0]);
        // Both ends near float32's limit: no offset (the residuals would overflow).
        assert_eq!(column_offsets(array![[3e38], [-3e38], [3e38]].view()), vec![0.0]);
    }

    #[test]
    fn residuals_keep_what_float32_rounding_loses() {
        let x = array![[1.0f64, 1.7e9], [1.0 + 1e-8, 1.7e9 + 0.5], [1.0 + 2e-8, 1.7e9 + 1.0]];
        let (r, c) = host_input(x.view(), true);
        let c = c.unwrap();
        for ((i, j), &v) in x.indexed_iter() {
            assert!(((r[[i, j]] as f64 + c[j]) - v).abs() <= 1e-15 * v.abs(), "[{i}, {j}]");
        }
        // float32 elements go as they are.
        let (r32, none) = host_input(x.mapv(|v| v as f32).view(), true);
        assert!(none.is_none());
        assert_eq!(r32[[1, 1]], 1.7e9f32);
    }
}
