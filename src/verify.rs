//! Checking GPU results against the float64 CPU reference.
//!
//! A [`Tolerance`] says how far a float32 GPU result may be from the float64
//! reference: `|gpu − ref| <= abs + rel·|ref|`. Each operation derives its
//! tolerance from its error analysis (see the README's "Tolerances" table), and
//! [`compare`] reports the worst element when a result falls outside it.
//!
//! NaN must match NaN, ±inf must match the same infinity.

use serde::{Deserialize, Serialize};

/// Unit roundoff of float32 (2^-24).
pub const F32_EPS: f64 = 5.960_464_477_539_063e-8;

/// Allowed error of one result element: `abs + rel · |reference|`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

impl Tolerance {
    pub const fn new(abs: f64, rel: f64) -> Self {
        Tolerance { abs, rel }
    }

    /// The bound for one element.
    pub fn bound(&self, reference: f64) -> f64 {
        self.abs + self.rel * reference.abs()
    }

    /// Whether `gpu` is within tolerance of `reference` (NaN matches NaN, inf matches the same inf).
    pub fn accepts(&self, gpu: f64, reference: f64) -> bool {
        // A float32 result overflows where the float64 reference exceeds float32's range.
        if gpu.is_infinite() && reference.is_finite() && reference.abs() > f32::MAX as f64 {
            return gpu.signum() == reference.signum();
        }
        if reference.is_nan() || gpu.is_nan() {
            return reference.is_nan() && gpu.is_nan();
        }
        if reference.is_infinite() || gpu.is_infinite() {
            return gpu == reference;
        }
        (gpu - reference).abs() <= self.bound(reference)
    }

    /// Tolerance of a float32 sum-like reduction over `n` values by a workgroup tree:
    /// relative error grows like `log2(n)·u` for pairwise merges plus `chain·u` for
    /// the sequential run each thread does before the tree.
    pub fn reduction(n: usize, chain: usize) -> Self {
        let depth = (n.max(2) as f64).log2().ceil() + chain as f64 + 4.0;
        Tolerance::new(0.0, depth * F32_EPS)
    }
}

/// Mean of a float32 segment: `|mean − μ| <= c·(log2 n + chain)·u·(|μ| + σ)`.
/// The σ term comes from the shifted accumulation; we give it through `abs`.
pub fn mean_tolerance(n: usize, chain: usize, mean_abs: f64, std: f64) -> Tolerance {
    let t = Tolerance::reduction(n, chain);
    Tolerance::new(t.rel * (mean_abs + std) * 4.0, t.rel * 4.0)
}

/// Variance (M2/n) of a float32 segment: the data themselves are rounded to float32 on
/// upload (relative error u on each x, i.e. absolute u·|x| ≤ u·(|μ|+kσ)), which perturbs the
/// variance by about `2·u·|μ|·σ`; the accumulation adds `(log2 n + chain)·u·σ²`.
pub fn var_tolerance(n: usize, chain: usize, mean_abs: f64, std: f64) -> Tolerance {
    let t = Tolerance::reduction(n, chain);
    let abs = 8.0 * F32_EPS * (mean_abs + std) * std + 8.0 * t.rel * std * std;
    Tolerance::new(abs + f64::MIN_POSITIVE, t.rel * 8.0)
}

/// Forward affine step `(x − c)·inv·g + b` in float32 with parameters rounded to float32:
/// four roundings of the result (subtract, two multiplies, add) plus the rounding of each
/// parameter, which the data's magnitude carries: `|x − c|` has an absolute error of
/// `u·(|x| + |c|)` before it is scaled by `|inv·g|`.
pub fn affine_tolerance(x: f64, c: f64, inv: f64, g: f64, b: f64) -> Tolerance {
    let scaled = (x.abs() + c.abs()) * (inv * g).abs();
    Tolerance::new(6.0 * F32_EPS * (scaled + b.abs()) + f64::MIN_POSITIVE, 6.0 * F32_EPS)
}

/// Inverse affine step `((y − b)/g)/inv + c`: the same four roundings, mirrored.
pub fn inverse_affine_tolerance(y: f64, c: f64, inv: f64, g: f64, b: f64) -> Tolerance {
    let scaled = (y.abs() + b.abs()) / (inv * g).abs();
    Tolerance::new(6.0 * F32_EPS * (scaled + c.abs()) + f64::MIN_POSITIVE, 6.0 * F32_EPS)
}

/// `log1p` on the GPU: the atanh series near 0 (a few roundings), `log(1 + x)` beyond,
/// whose WGSL accuracy is 3 ulp outside [0.5, 2] and 2^-21 absolute inside it.
pub fn log1p_tolerance() -> Tolerance {
    Tolerance::new(0.0, 16.0 * F32_EPS)
}

/// `expm1` on the GPU: a Taylor polynomial for |x| < 0.5, `exp(x) − 1` beyond, where
/// WGSL's `exp` is accurate to `3 + 2|x|` ulp and the subtraction amplifies that by at
/// most `e^x / (e^x − 1) < 2.6`.
pub fn expm1_tolerance(x: f64) -> Tolerance {
    Tolerance::new(0.0, (16.0 + 2.6 * (3.0 + 2.0 * x.abs())) * F32_EPS)
}

/// The worst element of a failed comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mismatch {
    /// What was compared (operation and output name).
    pub what: String,
    /// Flat index into the compared output.
    pub index: usize,
    /// Multi-dimensional index, when the output's shape is known.
    pub position: Vec<usize>,
    pub gpu: f64,
    pub reference: f64,
    pub error: f64,
    pub tolerance: f64,
    /// How many elements were outside tolerance.
    pub count: usize,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} of the elements outside tolerance; worst at index {:?} (flat {}): gpu {:e}, reference {:e}, error {:e}, tolerance {:e}",
            self.what, self.count, self.position, self.index, self.gpu, self.reference, self.error, self.tolerance
        )
    }
}

/// `GPUNORM_VERIFY_STRICT=1`: every comparison demands exact equality, a diagnostic
/// that makes `--verify` (exit code 3) name the element farthest from the float64
/// reference of any operation.
pub fn strict() -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STRICT.get_or_init(|| std::env::var("GPUNORM_VERIFY_STRICT").is_ok_and(|v| v == "1"))
}

/// Compare a GPU result with the reference, element by element, under a per-element tolerance
/// (none under [`strict`]). Returns the worst offending element (largest error / tolerance),
/// if any.
pub fn compare_with(
    what: &str,
    shape: &[usize],
    gpu: &[f64],
    reference: &[f64],
    tol: impl Fn(usize) -> Tolerance,
) -> Result<(), Box<Mismatch>> {
    assert_eq!(gpu.len(), reference.len(), "compare: lengths differ");
    let tol = |i: usize| if strict() { Tolerance::new(0.0, 0.0) } else { tol(i) };
    let mut worst: Option<(f64, usize)> = None;
    let mut count = 0;
    for (i, (&g, &r)) in gpu.iter().zip(reference).enumerate() {
        let t = tol(i);
        if !t.accepts(g, r) {
            count += 1;
            let score = if g.is_finite() && r.is_finite() {
                (g - r).abs() / t.bound(r).max(f64::MIN_POSITIVE)
            } else {
                f64::INFINITY
            };
            if worst.is_none_or(|(s, _)| score > s) {
                worst = Some((score, i));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((_, i)) => {
            let (g, r) = (gpu[i], reference[i]);
            Err(Box::new(Mismatch {
                what: what.to_string(),
                index: i,
                position: unravel(i, shape),
                gpu: g,
                reference: r,
                error: (g - r).abs(),
                tolerance: tol(i).bound(r),
                count,
            }))
        }
    }
}

/// [`compare_with`] under one tolerance for every element.
pub fn compare(
    what: &str,
    shape: &[usize],
    gpu: &[f64],
    reference: &[f64],
    tol: Tolerance,
) -> Result<(), Box<Mismatch>> {
    compare_with(what, shape, gpu, reference, |_| tol)
}

/// Flat C-order index → multi-dimensional index.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut pos = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        let n = shape[d].max(1);
        pos[d] = i % n;
        i /= n;
    }
    pos
}

/// Whether operations check themselves against the CPU reference before returning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    /// Trust the GPU (default).
    #[default]
    Never,
    /// Every operation runs its float64 CPU twin and compares; a mismatch is
    /// [`crate::Error::VerifyMismatch`].
    Always,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_inf_must_match_exactly() {
        let t = Tolerance::new(1.0, 1.0);
        assert!(t.accepts(f64::NAN, f64::NAN));
        assert!(!t.accepts(0.0, f64::NAN));
        assert!(!t.accepts(f64::NAN, 0.0));
        assert!(t.accepts(f64::INFINITY, f64::INFINITY));
        assert!(!t.accepts(f64::NEG_INFINITY, f64::INFINITY));
        assert!(!t.accepts(1e300, f64::INFINITY));
    }

    #[test]
    fn compare_names_the_worst_element() {
        let shape = [2, 3];
        let r = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let g = [1.0, 2.1, 3.0, 4.0, 7.0, 6.0];
        let m = compare("test", &shape, &g, &r, Tolerance::new(0.01, 0.0)).unwrap_err();
        assert_eq!(m.index, 4);
        assert_eq!(m.position, vec![1, 1]);
        assert_eq!(m.count, 2);
        assert!((m.error - 2.0).abs() < 1e-12);
        assert!(compare("ok", &shape, &r, &r, Tolerance::new(0.0, 0.0)).is_ok());
    }
}
