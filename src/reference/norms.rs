//! Twin of the norm layers (`src/norm/`, `shaders/backward.wgsl`), in float64.
//!
//! Written independently of the GPU path: the members of each statistics segment are
//! enumerated with explicit loops over `(sample, channel, position)` (not through
//! [`crate::segments::Segments`] or its index maps), statistics are two-pass, and the
//! backward pass is the textbook formula of DESIGN.md §5. NaN propagates as in PyTorch
//! (no NaN skipping anywhere). Inputs are float64 so that the finite-difference tests
//! can perturb them; callers widen the float32 data the GPU sees.
//!
//! The layouts are named with [`Grouping`] (plain data): `Channels` is batch norm,
//! `Instances` instance norm, `Groups` group norm, `Rows` layer norm (`len` = the
//! product of the normalized dims), `Columns { rows, cols }` is batch norm of a
//! `(rows, cols)` matrix.

use crate::segments::Grouping;

/// Flat C-order offset of (sample `b`, channel `ch`, position `p`).
fn offset(c: usize, spatial: usize, channels_last: bool, b: usize, ch: usize, p: usize) -> usize {
    if channels_last {
        (b * spatial + p) * c + ch
    } else {
        (b * c + ch) * spatial + p
    }
}

/// For every element (flat index), its statistics segment and its γ/β index, and the
/// number of statistics segments and parameters.
pub struct Layout {
    pub segment_of: Vec<usize>,
    pub param_of: Vec<usize>,
    pub segments: usize,
    pub params: usize,
}

/// Enumerate the layout of a grouping with explicit loops.
pub fn layout(g: &Grouping) -> Layout {
    let numel = g.numel();
    let mut segment_of = vec![0; numel];
    let mut param_of = vec![0; numel];
    let (segments, params) = match *g {
        Grouping::Rows { rows, len } => {
            for r in 0..rows {
                for k in 0..len {
                    segment_of[r * len + k] = r;
                    param_of[r * len + k] = k;
                }
            }
            (rows, len)
        }
        Grouping::Columns { rows, cols } => {
            for r in 0..rows {
                for j in 0..cols {
                    segment_of[r * cols + j] = j;
                    param_of[r * cols + j] = j;
                }
            }
            (cols, cols)
        }
        Grouping::Channels { n, c, spatial, channels_last }
        | Grouping::Instances { n, c, spatial, channels_last }
        | Grouping::Groups { n, c, spatial, channels_last, .. } => {
            let segments = match *g {
                Grouping::Channels { .. } => c,
                Grouping::Instances { .. } => n * c,
                Grouping::Groups { groups, .. } => n * groups,
                _ => unreachable!(),
            };
            for b in 0..n {
                for ch in 0..c {
                    let s = match *g {
                        Grouping::Channels { .. } => ch,
                        Grouping::Instances { .. } => b * c + ch,
                        Grouping::Groups { groups, .. } => b * groups + ch / (c / groups),
                        _ => unreachable!(),
                    };
                    for p in 0..spatial {
                        let e = offset(c, spatial, channels_last, b, ch, p);
                        segment_of[e] = s;
                        param_of[e] = ch;
                    }
                }
            }
            (segments, c)
        }
    };
    Layout { segment_of, param_of, segments, params }
}

/// Per statistics segment: element count, mean, biased and unbiased variance.
#[derive(Clone, Debug, PartialEq)]
pub struct NormStats {
    pub count: Vec<usize>,
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    pub var_unbiased: Vec<f64>,
}

/// Two-pass statistics per segment; NaN or inf in a segment propagate to its statistics.
pub fn norm_stats(x: &[f64], g: &Grouping) -> NormStats {
    let l = layout(g);
    let mut count = vec![0usize; l.segments];
    let mut sum = vec![0.0; l.segments];
    for (e, &v) in x.iter().enumerate() {
        count[l.segment_of[e]] += 1;
        sum[l.segment_of[e]] += v;
    }
    let mean: Vec<f64> = sum.iter().zip(&count).map(|(s, &n)| s / n as f64).collect();
    let mut m2 = vec![0.0; l.segments];
    for (e, &v) in x.iter().enumerate() {
        let s = l.segment_of[e];
        m2[s] += (v - mean[s]) * (v - mean[s]);
    }
    let var = m2.iter().zip(&count).map(|(m, &n)| m / n as f64).collect();
    let var_unbiased = m2.iter().zip(&count).map(|(m, &n)| m / (n.max(2) - 1) as f64).collect();
    NormStats { count, mean, var, var_unbiased }
}

/// `(x − mean[s]) / sqrt(var[s] + eps) · γ[p] + β[p]` (γ = 1, β = 0 when absent).
pub fn normalize(
    x: &[f64],
    g: &Grouping,
    mean: &[f64],
    var: &[f64],
    eps: f64,
    gamma: Option<&[f64]>,
    beta: Option<&[f64]>,
) -> Vec<f64> {
    let l = layout(g);
    x.iter()
        .enumerate()
        .map(|(e, &v)| {
            let (s, p) = (l.segment_of[e], l.param_of[e]);
            let xh = (v - mean[s]) / (var[s] + eps).sqrt();
            xh * gamma.map_or(1.0, |g| g[p]) + beta.map_or(0.0, |b| b[p])
        })
        .collect()
}

/// PyTorch's running-stat update: `running = (1 − f)·running + f·batch`.
pub fn update_running(running: &mut [f64], batch: &[f64], factor: f64) {
    for (r, b) in running.iter_mut().zip(batch) {
        *r = (1.0 - factor) * *r + factor * b;
    }
}

/// Instance norm's running-stat update (PyTorch: each instance updates a copy of the
/// channel's running stats, then the copies are averaged over the `n` samples).
pub fn update_running_instance(
    running_mean: &mut [f64],
    running_var: &mut [f64],
    stats: &NormStats,
    n: usize,
    c: usize,
    factor: f64,
) {
    for ch in 0..c {
        let (mut m, mut v) = (0.0, 0.0);
        for b in 0..n {
            m += (1.0 - factor) * running_mean[ch] + factor * stats.mean[b * c + ch];
            v += (1.0 - factor) * running_var[ch] + factor * stats.var_unbiased[b * c + ch];
        }
        running_mean[ch] = m / n as f64;
        running_var[ch] = v / n as f64;
    }
}

/// Gradients of a norm layer.
#[derive(Clone, Debug, PartialEq)]
pub struct NormGrads {
    pub grad_input: Vec<f64>,
    pub grad_gamma: Vec<f64>,
    pub grad_beta: Vec<f64>,
}

/// Backward with batch statistics (DESIGN.md §5), `g = γ[p]·dy`, `N` elements per segment:
/// `dx = σ⁻¹·(g − Σg/N − x̂·Σ(g·x̂)/N)`, `dγ[p] = Σ dy·x̂`, `dβ[p] = Σ dy`.
pub fn backward_train(x: &[f64], dy: &[f64], g: &Grouping, eps: f64, gamma: Option<&[f64]>) -> NormGrads {
    let l = layout(g);
    let st = norm_stats(x, g);
    let inv: Vec<f64> = st.var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let xhat: Vec<f64> =
        x.iter().enumerate().map(|(e, &v)| (v - st.mean[l.segment_of[e]]) * inv[l.segment_of[e]]).collect();
    let gw = |e: usize| gamma.map_or(1.0, |g| g[l.param_of[e]]) * dy[e];
    let (mut sum_g, mut sum_gx) = (vec![0.0; l.segments], vec![0.0; l.segments]);
    let (mut dgamma, mut dbeta) = (vec![0.0; l.params], vec![0.0; l.params]);
    for e in 0..x.len() {
        let (s, p) = (l.segment_of[e], l.param_of[e]);
        sum_g[s] += gw(e);
        sum_gx[s] += gw(e) * xhat[e];
        dgamma[p] += dy[e] * xhat[e];
        dbeta[p] += dy[e];
    }
    let grad_input = (0..x.len())
        .map(|e| {
            let s = l.segment_of[e];
            let n = st.count[s] as f64;
            inv[s] * (gw(e) - sum_g[s] / n - xhat[e] * sum_gx[s] / n)
        })
        .collect();
    NormGrads { grad_input, grad_gamma: dgamma, grad_beta: dbeta }
}

/// Backward with running statistics (eval): `dx = γ·dy/sqrt(running_var + eps)`,
/// `dγ = Σ dy·(x − running_mean)/sqrt(running_var + eps)`, `dβ = Σ dy`. `g` is the
/// per-channel grouping (`Channels`).
pub fn backward_eval(
    x: &[f64],
    dy: &[f64],
    g: &Grouping,
    eps: f64,
    running_mean: &[f64],
    running_var: &[f64],
    gamma: Option<&[f64]>,
) -> NormGrads {
    let l = layout(g);
    let inv: Vec<f64> = running_var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let (mut dgamma, mut dbeta) = (vec![0.0; l.params], vec![0.0; l.params]);
    let grad_input = (0..x.len())
        .map(|e| {
            let (s, p) = (l.segment_of[e], l.param_of[e]);
            dgamma[p] += dy[e] * (x[e] - running_mean[s]) * inv[s];
            dbeta[p] += dy[e];
            gamma.map_or(1.0, |g| g[p]) * dy[e] * inv[s]
        })
        .collect();
    NormGrads { grad_input, grad_gamma: dgamma, grad_beta: dbeta }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The brief's example: one channel 10..50, γ = 2, β = 3.
    #[test]
    fn brief_example() {
        let x = [10.0, 20.0, 30.0, 40.0, 50.0];
        let g = Grouping::Channels { n: 5, c: 1, spatial: 1, channels_last: false };
        let st = norm_stats(&x, &g);
        assert_eq!(st.mean, vec![30.0]);
        assert_eq!(st.var, vec![200.0]);
        assert_eq!(st.var_unbiased, vec![250.0]);
        let y = normalize(&x, &g, &st.mean, &st.var, 1e-5, Some(&[2.0]), Some(&[3.0]));
        let want = 2.0 * -20.0 / (200.0f64 + 1e-5).sqrt() + 3.0;
        assert!((y[0] - want).abs() < 1e-12);
        let (mut rm, mut rv) = (vec![0.0], vec![1.0]);
        update_running(&mut rm, &st.mean, 0.1);
        update_running(&mut rv, &st.var_unbiased, 0.1);
        assert!((rm[0] - 3.0).abs() < 1e-12 && (rv[0] - 25.9).abs() < 1e-12);
    }

    /// Gradients against central differences of `L = Σ w·y`.
    #[test]
    fn backward_matches_finite_differences() {
        let groupings = [
            Grouping::Channels { n: 3, c: 2, spatial: 2, channels_last: true },
            Grouping::Instances { n: 2, c: 2, spatial: 3, channels_last: false },
            Grouping::Groups { n: 2, c: 4, spatial: 2, groups: 2, channels_last: true },
            Grouping::Rows { rows: 3, len: 4 },
        ];
        for g in groupings {
            let l = layout(&g);
            let x: Vec<f64> = (0..g.numel()).map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.3 + (i % 3) as f64).collect();
            let w: Vec<f64> = (0..g.numel()).map(|i| ((i * 17 % 7) as f64 - 3.0) * 0.25).collect();
            let gamma: Vec<f64> = (0..l.params).map(|p| 0.5 + p as f64 * 0.3).collect();
            let beta: Vec<f64> = (0..l.params).map(|p| p as f64 * 0.1).collect();
            let eps = 1e-3;
            let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| {
                let st = norm_stats(x, &g);
                let y = normalize(x, &g, &st.mean, &st.var, eps, Some(gamma), Some(beta));
                y.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
            };
            let grads = backward_train(&x, &w, &g, eps, Some(&gamma));
            let h = 1e-6;
            for i in 0..x.len() {
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[i] += h;
                xm[i] -= h;
                let fd = (loss(&xp, &gamma, &beta) - loss(&xm, &gamma, &beta)) / (2.0 * h);
                assert!((fd - grads.grad_input[i]).abs() < 1e-6, "{g:?} dx[{i}]: fd {fd} vs {}", grads.grad_input[i]);
            }
            for p in 0..l.params {
                let (mut gp, mut gm) = (gamma.clone(), gamma.clone());
                gp[p] += h;
                gm[p] -= h;
                let fd = (loss(&x, &gp, &beta) - loss(&x, &gm, &beta)) / (2.0 * h);
                assert!((fd - grads.grad_gamma[p]).abs() < 1e-6, "{g:?} dgamma[{p}]");
                let (mut bp, mut bm) = (beta.clone(), beta.clone());
                bp[p] += h;
                bm[p] -= h;
                let fd = (loss(&x, &gamma, &bp) - loss(&x, &gamma, &bm)) / (2.0 * h);
                assert!((fd - grads.grad_beta[p]).abs() < 1e-6, "{g:?} dbeta[{p}]");
            }
        }
    }
}
