//! `Verify::Always` for the norm layers: compare with the float64 twin
//! ([`crate::reference::norms`]) under tolerances derived from the error analysis of
//! the float32 kernels.
//!
//! Forward, per statistics segment of `N` elements with float64 mean `μ`, biased
//! variance `σ²` and reduction chain `L` (the longest sequential run of one
//! accumulator, from the chunk plan): the GPU's mean is off by at most
//! `δμ` = [`crate::verify::mean_tolerance`]`(N, L, |μ|, σ)` and its variance by
//! `δv` = [`crate::verify::var_tolerance`]`(N, L, |μ|, σ)`, so `1/sqrt(σ² + eps)` is off
//! by the relative `ρ = δv / (2(σ² + eps)) + 4u` (`inverseSqrt` is good to 2 ulp).
//! `x̂ = (x − μ)·σ⁻¹` is then off by `δx̂ = σ⁻¹·δμ + |x̂|·(ρ + 3u)` and
//! `y = x̂·γ + β` by `|γ|·δx̂ + 2u·|β| + 4u·|y|` ([`forward_tolerance`]).
//! With running statistics (eval) `δμ = 0`. Running stats after an update
//! `(1 − f)·r + f·b` may be off by `f·δb + 3u·(|(1 − f)·r| + |f·b|)`.
//!
//! Backward (train), with `g = γ·dy`, `A = Σg/N`, `B = Σg·x̂/N` per segment and the
//! reduction's relative error `r` = [`crate::verify::Tolerance::reduction`]`(N, L').rel`:
//! `δA = r·Σ|g|/N`, `δB = r·Σ|g·x̂|/N + Σ|g|·δx̂/N`, and
//! `δdx = σ⁻¹·(2u|g| + δA + |x̂|·δB + |B|·δx̂) + (ρ + 3u)·|dx| + 3u·σ⁻¹·(|g| + |A| + |x̂·B|)`.
//! `dγ = Σ dy·x̂` is off by `r·Σ|dy·x̂| + Σ|dy|·δx̂`, `dβ = Σ dy` by `r·Σ|dy|`
//! ([`backward_tolerances`]). Eval: `dx = σ⁻¹·γ·dy` is off by `(ρ + 5u)·|dx|`.

use super::core::{backward_shape, Plan, StatsMode};
use super::{Grads, SavedStats};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::backward::{column_sums_chain, reduction_chain, SUMS_BYTES};
use crate::kernels::fused::fused_chain;
use crate::kernels::moments::MOMENTS_BYTES;
use crate::reference::norms as reference;
use crate::segments::Grouping;
use crate::stats::Moments;
use crate::verify::{self, Tolerance, F32_EPS as U};

/// The reduction chain of a forward's statistics over `g`: the moments pass's, or the
/// fused pass's where that may have run instead (the longer of the two).
fn forward_chain(gpu: &Gpu, g: &Grouping) -> Result<usize> {
    let chain = reduction_chain(gpu, &g.segments(), MOMENTS_BYTES)?;
    Ok(chain.max(fused_chain(gpu, g).unwrap_or(0)))
}

/// Per-segment error model of the statistics a forward used.
struct StatErrors {
    mean: Vec<f64>,
    inv: Vec<f64>,
    /// Absolute error of the mean.
    dmu: Vec<f64>,
    /// Absolute error of the biased variance.
    dvar: Vec<f64>,
    /// Relative error of `1/sqrt(var + eps)`.
    rho: Vec<f64>,
}

impl StatErrors {
    /// Batch statistics of `st` reduced with chain `chain`.
    fn batch(st: &reference::NormStats, eps: f64, chain: usize) -> Self {
        let mut e = StatErrors { mean: st.mean.clone(), inv: vec![], dmu: vec![], dvar: vec![], rho: vec![] };
        for s in 0..st.mean.len() {
            let (n, mu, var) = (st.count[s], st.mean[s], st.var[s]);
            let sd = var.sqrt();
            e.inv.push(1.0 / (var + eps).sqrt());
            e.dmu.push(verify::mean_tolerance(n, chain, mu.abs(), sd).bound(mu));
            let dv = verify::var_tolerance(n, chain, mu.abs(), sd).bound(var);
            e.dvar.push(dv);
            e.rho.push(dv / (2.0 * (var + eps)) + 4.0 * U);
        }
        e
    }

    /// Given float64 statistics, rounded to float32 on upload.
    fn given(mean: &[f64], var: &[f64], eps: f64) -> Self {
        StatErrors {
            mean: mean.to_vec(),
            inv: var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect(),
            dmu: mean.iter().map(|m| U * m.abs()).collect(),
            dvar: var.iter().map(|v| 3.0 * U * v.abs()).collect(),
            rho: var.iter().map(|v| 3.0 * U * v.abs() / (2.0 * (v + eps)) + 4.0 * U).collect(),
        }
    }

    /// Absolute error of `x̂` for a value `x` of segment `s`.
    fn dxhat(&self, s: usize, x: f64) -> f64 {
        let xh = (x - self.mean[s]) * self.inv[s];
        self.inv[s] * self.dmu[s] + xh.abs() * (self.rho[s] + 3.0 * U)
    }
}

/// Per-element tolerance of a forward output `y = x̂·γ + β` whose `x̂` is off by `dxhat`.
pub fn forward_tolerance(dxhat: f64, gamma: f64, beta: f64) -> Tolerance {
    Tolerance::new(gamma.abs() * dxhat + 2.0 * U * beta.abs() + f64::MIN_POSITIVE, 4.0 * U)
}

/// Tolerances of one segment's backward: `(δA, δB)` of the sums `A = Σg/N`, `B = Σg·x̂/N`
/// given `Σ|g|/N`, `Σ|g·x̂|/N`, `Σ|g|·δx̂/N` and the reduction's relative error `r`.
pub fn backward_tolerances(abs_g: f64, abs_gx: f64, abs_g_dxhat: f64, r: f64) -> (f64, f64) {
    (r * abs_g, r * abs_gx + abs_g_dxhat)
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn compare(
    what: String,
    shape: &[usize],
    gpu: &[f32],
    reference: &[f64],
    tol: impl Fn(usize) -> Tolerance,
) -> Result<()> {
    verify::compare_with(&what, shape, &f64s(gpu), reference, tol).map_err(Error::VerifyMismatch)
}

/// Running mean and variance read back.
type RunningHost = (Vec<f32>, Vec<f32>);

/// A value and its absolute error.
type WithError = (f64, f64);

/// Check a forward output (and the running-stat update) against the twin.
pub(crate) fn check_forward(
    gpu: &Gpu,
    plan: &Plan,
    x: &[f32],
    y: &[f32],
    affine: Option<(&[f64], &[f64])>,
    running: Option<(RunningHost, RunningHost)>,
    given: Option<&[Moments]>,
) -> Result<()> {
    let xd = f64s(x);
    let g = plan.apply_grouping();
    let l = reference::layout(&g);
    let (gamma, beta) = (affine.map(|a| a.0), affine.map(|a| a.1));
    let (errors, want) = match plan.stats {
        StatsMode::Running { .. } => {
            let ((rm, rv), _) = running.clone().ok_or_else(|| Error::Gpu("verify: running stats missing".into()))?;
            let (rm, rv) = (f64s(&rm), f64s(&rv));
            let mut e = StatErrors::given(&rm, &rv, plan.eps);
            e.dmu.iter_mut().for_each(|d| *d = 0.0);
            e.rho.iter_mut().for_each(|r| *r = 4.0 * U);
            let want = reference::normalize(&xd, &g, &rm, &rv, plan.eps, gamma, beta);
            (e, want)
        }
        _ => {
            let (mean, var, unbiased, e) = match given {
                Some(m) => {
                    let mean: Vec<f64> = m.iter().map(|m| if m.nan_count > 0 { f64::NAN } else { m.mean }).collect();
                    let var: Vec<f64> = m.iter().map(|m| if m.nan_count > 0 { f64::NAN } else { m.var() }).collect();
                    let unb: Vec<f64> = m.iter().map(|m| m.m2 / (m.count.max(2) - 1) as f64).collect();
                    let e = StatErrors::given(&mean, &var, plan.eps);
                    (mean, var, unb, e)
                }
                None => {
                    let st = reference::norm_stats(&xd, &g);
                    let chain = forward_chain(gpu, &g)?;
                    let e = StatErrors::batch(&st, plan.eps, chain);
                    (st.mean, st.var, st.var_unbiased, e)
                }
            };
            let want = reference::normalize(&xd, &g, &mean, &var, plan.eps, gamma, beta);
            if let (
                Some(((rm0, rv0), (rm1, rv1))),
                StatsMode::Batch { update: Some(f) } | StatsMode::Instance { update: Some(f) },
            ) = (running, plan.stats)
            {
                check_running(plan, &g, f, (&rm0, &rv0), (&rm1, &rv1), (&mean, &unbiased), &e)?;
            }
            (e, want)
        }
    };
    compare(format!("{} output", plan.what), &plan.shape, y, &want, |i| {
        let (s, p) = (l.segment_of[i], l.param_of[i]);
        forward_tolerance(errors.dxhat(s, xd[i]), gamma.map_or(1.0, |g| g[p]), beta.map_or(0.0, |b| b[p]))
    })
}

fn check_running(
    plan: &Plan,
    g: &Grouping,
    f: f64,
    before: (&[f32], &[f32]),
    after: (&[f32], &[f32]),
    (mean, unbiased): (&[f64], &[f64]),
    e: &StatErrors,
) -> Result<()> {
    let (b0, b1) = (f64s(before.0), f64s(before.1));
    let c = b0.len();
    // Per channel: the batch value that enters the update and its absolute error
    // (instance norm: the mean over samples, each term with its own error).
    let unb_err = |s: usize| e.dvar[s] * unbiased_factor(g);
    let (batch_mean, batch_var): (Vec<WithError>, Vec<WithError>) = match *g {
        Grouping::Instances { n, .. } => (0..c)
            .map(|ch| {
                let avg = |v: &dyn Fn(usize) -> f64| (0..n).map(|b| v(b * c + ch)).sum::<f64>() / n as f64;
                let slack = (n as f64 + 2.0) * U;
                (
                    (avg(&|s| mean[s]), avg(&|s| e.dmu[s] + slack * mean[s].abs())),
                    (avg(&|s| unbiased[s]), avg(&|s| unb_err(s) + slack * unbiased[s].abs())),
                )
            })
            .unzip(),
        _ => (0..c).map(|s| ((mean[s], e.dmu[s]), (unbiased[s], unb_err(s)))).unzip(),
    };
    let mut rm = b0.clone();
    let mut rv = b1.clone();
    reference::update_running(&mut rm, &batch_mean.iter().map(|v| v.0).collect::<Vec<_>>(), f);
    reference::update_running(&mut rv, &batch_var.iter().map(|v| v.0).collect::<Vec<_>>(), f);
    let tol = |prev: f64, (val, err): (f64, f64)| {
        Tolerance::new(f * err + 3.0 * U * ((1.0 - f) * prev.abs() + (f * val).abs()) + f64::MIN_POSITIVE, 0.0)
    };
    compare(format!("{} running_mean", plan.what), &[c], after.0, &rm, |i| tol(b0[i], batch_mean[i]))?;
    compare(format!("{} running_var", plan.what), &[c], after.1, &rv, |i| tol(b1[i], batch_var[i]))
}

/// `N/(N − 1)`, which turns the biased variance's error into the unbiased one's.
fn unbiased_factor(g: &Grouping) -> f64 {
    let n = g.segment_len() as f64;
    if n > 1.0 {
        n / (n - 1.0)
    } else {
        1.0
    }
}

/// Check gradients against the twin.
pub(crate) fn check_backward(
    gpu: &Gpu,
    saved: &SavedStats,
    x: &[f32],
    dy: &[f32],
    grads: &Grads,
    gamma: Option<&[f64]>,
    running: Option<(Vec<f64>, Vec<f64>)>,
) -> Result<()> {
    let (xd, dyd) = (f64s(x), f64s(dy));
    let g = saved.grouping;
    let l = reference::layout(&g);
    let what = match g {
        Grouping::Channels { .. } | Grouping::Columns { .. } => "batch norm",
        Grouping::Rows { .. } => "layer norm",
        Grouping::Groups { .. } => "group norm",
        Grouping::Instances { .. } => "instance norm",
    };
    let gam = |e: usize| gamma.map_or(1.0, |gm| gm[l.param_of[e]]);
    let bs = backward_shape(&g)?;
    // Chains of the backward reductions: the sums, then the sub-segments or samples merged.
    let chain = reduction_chain(gpu, &bs.red.segments(), SUMS_BYTES)?;
    let (want, errors, r) = match &running {
        Some((rm, rv)) => {
            let want = reference::backward_eval(&xd, &dyd, &g, saved.eps, rm, rv, gamma);
            let mut e = StatErrors::given(rm, rv, saved.eps);
            e.dmu.iter_mut().for_each(|d| *d = 0.0);
            e.rho.iter_mut().for_each(|r| *r = 4.0 * U);
            (want, e, Tolerance::reduction(g.segment_len(), chain).rel)
        }
        None => {
            let want = reference::backward_train(&xd, &dyd, &g, saved.eps, gamma);
            let st = reference::norm_stats(&xd, &g);
            let fchain = forward_chain(gpu, &g)?;
            (want, StatErrors::batch(&st, saved.eps, fchain), Tolerance::reduction(g.segment_len(), chain + bs.sub).rel)
        }
    };
    let segs = l.segments;
    // Per-segment sums of the reference (A, B) and of absolute values.
    let (mut a, mut b) = (vec![0.0; segs], vec![0.0; segs]);
    let (mut abs_g, mut abs_gx, mut abs_gd) = (vec![0.0; segs], vec![0.0; segs], vec![0.0; segs]);
    let xhat = |e: usize| (xd[e] - errors.mean[l.segment_of[e]]) * errors.inv[l.segment_of[e]];
    for e in 0..xd.len() {
        let s = l.segment_of[e];
        let gv = gam(e) * dyd[e];
        a[s] += gv;
        b[s] += gv * xhat(e);
        abs_g[s] += gv.abs();
        abs_gx[s] += (gv * xhat(e)).abs();
        abs_gd[s] += gv.abs() * errors.dxhat(s, xd[e]);
    }
    let n = g.segment_len() as f64;
    compare(
        format!("{what} grad_input"),
        &saved.shape,
        grads.grad_input.as_slice().unwrap_or(&[]),
        &want.grad_input,
        |e| {
            let s = l.segment_of[e];
            let (inv, dxh, dx) = (errors.inv[s], errors.dxhat(s, xd[e]), want.grad_input[e].abs());
            let gv = (gam(e) * dyd[e]).abs();
            if running.is_some() {
                return Tolerance::new(f64::MIN_POSITIVE, errors.rho[s] + 5.0 * U);
            }
            let (da, db) = backward_tolerances(abs_g[s] / n, abs_gx[s] / n, abs_gd[s] / n, r);
            let (av, bv, xh) = (a[s] / n, b[s] / n, xhat(e));
            let abs = inv * (2.0 * U * gv + da + xh.abs() * db + bv.abs() * dxh)
                + (errors.rho[s] + 3.0 * U) * dx
                + 3.0 * U * inv * (gv + av.abs() + (xh * bv).abs());
            Tolerance::new(abs + f64::MIN_POSITIVE, 0.0)
        },
    )?;
    let (Some(dg), Some(db)) = (&grads.grad_gamma, &grads.grad_beta) else {
        return Ok(());
    };
    // Per parameter: Σ|dy·x̂|, Σ|dy|·δx̂, Σ|dy| and the element count.
    let p = l.params;
    let (mut adx, mut addx, mut ady, mut cnt) = (vec![0.0; p], vec![0.0; p], vec![0.0; p], vec![0usize; p]);
    for e in 0..xd.len() {
        let (s, q) = (l.segment_of[e], l.param_of[e]);
        adx[q] += (dyd[e] * xhat(e)).abs();
        addx[q] += dyd[e].abs() * errors.dxhat(s, xd[e]);
        ady[q] += dyd[e].abs();
        cnt[q] += 1;
    }
    let pchain = match bs.columns {
        // The column sums' plan, or the grid kernel's blocks (the longer).
        Some(cols) => reduction_chain(gpu, &cols.segments(), SUMS_BYTES)?.max(column_sums_chain(cols.segment_len())),
        None => chain + bs.loops,
    };
    let rp = |q: usize| Tolerance::reduction(cnt[q], pchain).rel;
    compare(format!("{what} grad_gamma"), &[p], dg.as_slice().unwrap_or(&[]), &want.grad_gamma, |q| {
        Tolerance::new(rp(q) * adx[q] + addx[q] + f64::MIN_POSITIVE, 0.0)
    })?;
    compare(format!("{what} grad_beta"), &[p], db.as_slice().unwrap_or(&[]), &want.grad_beta, |q| {
        Tolerance::new(rp(q) * ady[q] + f64::MIN_POSITIVE, 0.0)
    })
}
