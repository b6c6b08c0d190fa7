//! The one forward and one backward of every norm layer. Each layer turns its options,
//! mode and input shape into a [`Plan`]; everything after that is shared.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::check;
use super::{download, GpuGrads, Grads, LayerState, SavedStats};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::kernels::affine::{record_affine, AffineArgs, AffineMode};
use crate::kernels::backward::{
    record_coeffs, record_column_sums, record_dx, record_instance_running, record_param_grads, record_poison,
    record_sums, DxArgs, StatIndex, Weight,
};
use crate::kernels::derive::{record_derive, DeriveRule};
use crate::kernels::fused::{fused_layout, record_norm_fused};
use crate::kernels::moments::{record_moments, MomentsGpu, MOMENTS_BYTES};
use crate::segments::{Grouping, IndexMap};
use crate::stats::Moments;
use crate::verify::Verify;

/// Where the statistics of a forward pass come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum StatsMode {
    /// The batch's statistics over `Plan::grouping`; with `update`, the running stats
    /// (one per segment, batch norm) are updated with that factor.
    Batch { update: Option<f64> },
    /// Per (sample, channel) statistics; with `update`, the per-channel running stats
    /// get the mean over samples of the update (instance norm).
    Instance { update: Option<f64> },
    /// The running statistics, per channel of this `Channels` grouping (eval).
    Running { grouping: Grouping },
}

/// Everything a forward pass needs to know besides the data and the layer's buffers.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub what: &'static str,
    pub shape: Vec<usize>,
    /// The statistics grouping with batch statistics.
    pub grouping: Grouping,
    pub eps: f64,
    pub stats: StatsMode,
}

impl Plan {
    /// The grouping the elementwise passes use (running stats are per channel).
    pub fn apply_grouping(&self) -> Grouping {
        match self.stats {
            StatsMode::Running { grouping } => grouping,
            _ => self.grouping,
        }
    }
}

/// Upload f64 moments (e.g. merged from shards) as the kernels' float32 states.
pub(crate) fn upload_moments(gpu: &Gpu, m: &[Moments]) -> Result<wgpu::Buffer> {
    let raw: Vec<MomentsGpu> = m.iter().map(MomentsGpu::from).collect();
    let buf = gpu.storage_buffer("given moments", raw.len() as u64 * MOMENTS_BYTES)?;
    if !raw.is_empty() {
        gpu.queue().write_buffer(&buf, 0, bytemuck::cast_slice(&raw));
    }
    Ok(buf)
}

/// Record a forward pass. `given` replaces the batch statistics (merged from shards).
pub(crate) fn record_forward(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    plan: &Plan,
    state: &LayerState,
    x: &GpuTensor,
    given: Option<&wgpu::Buffer>,
) -> Result<(GpuTensor, SavedStats)> {
    state.check_device(gpu)?;
    if x.shape() != plan.shape.as_slice() {
        return Err(Error::Shape(format!("{}: tensor of shape {:?}, expected {:?}", plan.what, x.shape(), plan.shape)));
    }
    plan.grouping.validate()?;
    let running = state.running.as_ref().map(|(m, v)| (m, v));
    if let Some(fused) = record_fused_forward(gpu, encoder, plan, state, x, given)? {
        return Ok(fused);
    }
    let (derived, running_saved) = match plan.stats {
        StatsMode::Running { grouping } => {
            let (rm, rv) =
                running.ok_or_else(|| Error::InvalidParameter(format!("{}: no running statistics", plan.what)))?;
            let dummy = gpu.storage_buffer("no moments", MOMENTS_BYTES)?;
            let d = record_derive(
                gpu,
                encoder,
                &dummy,
                grouping.num_segments(),
                DeriveRule::NormEval { eps: plan.eps },
                None,
                Some((rm, rv)),
            )?;
            (d, Some((rm.clone(), rv.clone())))
        }
        StatsMode::Batch { .. } | StatsMode::Instance { .. } => {
            let segments = plan.grouping.num_segments();
            let moments = match given {
                Some(m) => m.clone(),
                None => record_moments(gpu, encoder, x, &plan.grouping)?,
            };
            record_poison(gpu, encoder, &moments, segments)?;
            let batch_update = match plan.stats {
                StatsMode::Batch { update: Some(f) } => Some(f),
                _ => None,
            };
            if batch_update.is_some() && running.is_none() {
                return Err(Error::InvalidParameter(format!("{}: no running statistics to update", plan.what)));
            }
            let d = record_derive(
                gpu,
                encoder,
                &moments,
                segments,
                DeriveRule::Norm { eps: plan.eps, momentum: batch_update },
                None,
                if batch_update.is_some() { running } else { None },
            )?;
            if let (StatsMode::Instance { update: Some(f) }, Grouping::Instances { n, c, .. }) =
                (plan.stats, plan.grouping)
            {
                let (rm, rv) =
                    running.ok_or_else(|| Error::InvalidParameter(format!("{}: no running statistics", plan.what)))?;
                record_instance_running(gpu, encoder, &moments, n, c, f, rm, rv)?;
            }
            (d, None)
        }
    };
    let grouping = plan.apply_grouping();
    let output = GpuTensor::empty(gpu, &plan.shape)?;
    record_affine(
        gpu,
        encoder,
        x,
        &output,
        &grouping,
        &AffineArgs {
            mode: AffineMode::Forward,
            center: Some(&derived.center),
            center_lo: Some(&derived.center_lo),
            inv_scale: Some(&derived.inv_scale),
            gamma_beta: state.affine.as_ref().map(|(g, b)| (g, b)),
            clip: None,
        },
    )?;
    let saved = SavedStats {
        grouping,
        mean: derived.center,
        mean_lo: derived.center_lo,
        invstd: derived.inv_scale,
        batch_stats: !matches!(plan.stats, StatsMode::Running { .. }),
        eps: plan.eps,
        shape: plan.shape.clone(),
        running: running_saved,
    };
    Ok((output, saved))
}

/// The forward in one pass (see [`crate::kernels::fused`]) where it applies: batch or
/// instance statistics of this input (not merged from shards), no batch-norm running
/// update, a layout the fused pass takes on this adapter. `None`: take the passes.
fn record_fused_forward(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    plan: &Plan,
    state: &LayerState,
    x: &GpuTensor,
    given: Option<&wgpu::Buffer>,
) -> Result<Option<(GpuTensor, SavedStats)>> {
    let instance_update = match plan.stats {
        StatsMode::Batch { update: None } => None,
        StatsMode::Instance { update } => update,
        _ => return Ok(None),
    };
    let Some(layout) = given.is_none().then(|| fused_layout(gpu, &plan.grouping)).flatten() else {
        return Ok(None);
    };
    let running = state.running.as_ref().map(|(m, v)| (m, v));
    if instance_update.is_some() && running.is_none() {
        return Ok(None);
    }
    let affine = state.affine.as_ref().map(|(g, b)| (g, b));
    let fused = record_norm_fused(gpu, encoder, x, &layout, plan.eps, affine)?;
    if let (Some(f), Some((rm, rv)), Grouping::Instances { n, c, .. }) = (instance_update, running, plan.grouping) {
        record_instance_running(gpu, encoder, &fused.moments, n, c, f, rm, rv)?;
    }
    let saved = SavedStats {
        grouping: plan.grouping,
        mean: fused.derived.center,
        mean_lo: fused.derived.center_lo,
        invstd: fused.derived.inv_scale,
        batch_stats: true,
        eps: plan.eps,
        shape: plan.shape.clone(),
        running: None,
    };
    Ok(Some((fused.output, saved)))
}

/// How the backward reduction of a statistics grouping is set up.
pub(crate) struct BackwardShape {
    /// Reduction grouping and how its segments find their statistics.
    pub red: Grouping,
    pub stat: StatIndex,
    /// Whether the reduction weights by γ (layer norm: γ varies inside a segment).
    pub weighted: bool,
    /// Reduction segments per statistics segment.
    pub sub: usize,
    /// γ index of reduction segment r is r % channels (unweighted reductions).
    pub channels: usize,
    /// dγ/dβ: sums per parameter and their stride (group/instance: over samples).
    pub loops: usize,
    /// Layer norm: the column reduction for dγ/dβ.
    pub columns: Option<Grouping>,
}

pub(crate) fn backward_shape(g: &Grouping) -> Result<BackwardShape> {
    let simple = |red: Grouping, channels: usize, loops: usize| BackwardShape {
        red,
        stat: StatIndex::PerSegment { div: 1 },
        weighted: false,
        sub: 1,
        channels,
        loops,
        columns: None,
    };
    Ok(match *g {
        Grouping::Channels { c, .. } => simple(*g, c, 1),
        Grouping::Columns { cols, .. } => simple(*g, cols, 1),
        Grouping::Instances { n, c, .. } => simple(*g, c, n),
        Grouping::Groups { n, c, spatial, groups, channels_last } => BackwardShape {
            red: Grouping::Instances { n, c, spatial, channels_last },
            stat: StatIndex::PerSegment { div: (c / groups) as u32 },
            weighted: false,
            sub: c / groups,
            channels: c,
            loops: n,
            columns: None,
        },
        Grouping::Rows { rows, len } => BackwardShape {
            red: *g,
            stat: StatIndex::PerSegment { div: 1 },
            weighted: true,
            sub: 1,
            channels: len,
            loops: 1,
            columns: Some(Grouping::Columns { rows, cols: len }),
        },
    })
}

/// Gradient sums of a whole batch split across shards (SyncBatchNorm): per channel
/// `(Σdy, Σdy·x̂)` as `vec2<f32>`, and the values per channel over all shards.
pub(crate) struct MergedSums {
    pub(crate) sums: wgpu::Buffer,
    pub(crate) count: usize,
}

/// Record the backward pass: `dx`, and dγ/dβ when the layer has an affine transform.
/// `merged` replaces this batch's own gradient sums with a whole batch's (batch norm
/// with batch statistics only).
pub(crate) fn record_backward(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    state: &LayerState,
    x: &GpuTensor,
    dy: &GpuTensor,
    saved: &SavedStats,
    merged: Option<&MergedSums>,
) -> Result<GpuGrads> {
    state.check_device(gpu)?;
    saved.check_shapes("backward", x.shape(), dy.shape())?;
    let g = saved.grouping;
    let gamma = state.affine.as_ref().map(|(g, _)| g);
    let bs = backward_shape(&g)?;
    let grad_input = GpuTensor::empty(gpu, &saved.shape)?;
    let param_shape = [state.n_params];
    let mut grads = GpuGrads { grad_input: grad_input.clone(), grad_gamma: None, grad_beta: None };
    let set_params = |grads: &mut GpuGrads, (dg, db): (wgpu::Buffer, wgpu::Buffer)| -> Result<()> {
        grads.grad_gamma = Some(GpuTensor::from_buffer(dg.into(), &param_shape)?);
        grads.grad_beta = Some(GpuTensor::from_buffer(db.into(), &param_shape)?);
        Ok(())
    };
    let center = saved.center();
    if merged.is_some() && !saved.batch_stats {
        return Err(Error::InvalidParameter(
            "merged gradient sums need a forward with batch statistics (training)".into(),
        ));
    }
    if !saved.batch_stats {
        // Eval: dx = invstd·γ·dy; dγ, dβ from one unweighted reduction per channel.
        if gamma.is_some() {
            let sums = record_sums(gpu, encoder, x, dy, &g, StatIndex::PerSegment { div: 1 }, center, None)?;
            let c = g.num_segments();
            set_params(&mut grads, record_param_grads(gpu, encoder, &sums, c, 1, c)?)?;
        }
        let args = DxArgs {
            walk: &g,
            stat_div: 1,
            channels: g.num_segments() as u32,
            gamma_per_element: false,
            saved: center,
            gamma,
            coeffs: None,
        };
        record_dx(gpu, encoder, x, dy, &grad_input, &args)?;
        return Ok(grads);
    }
    let weight = match (bs.weighted, gamma) {
        (true, Some(gm)) => Some(Weight { gamma: gm, param_map: bs.red.param_map() }),
        _ => None,
    };
    let (sums, count) = match merged {
        Some(m) if matches!(g, Grouping::Channels { .. }) => (m.sums.clone(), m.count),
        Some(_) => return Err(Error::InvalidParameter("merged gradient sums serve batch norm's backward only".into())),
        None => (record_sums(gpu, encoder, x, dy, &bs.red, bs.stat, center, weight)?, g.segment_len()),
    };
    let coeff_gamma = if bs.weighted { None } else { gamma };
    let coeffs = record_coeffs(gpu, encoder, &sums, g.num_segments(), bs.sub, bs.channels, coeff_gamma, count)?;
    if gamma.is_some() {
        match bs.columns {
            Some(cols) => {
                let Grouping::Rows { rows, len } = g else { unreachable!() };
                let col_sums = match record_column_sums(gpu, encoder, (x, dy), (rows, len), center)? {
                    Some(sums) => sums,
                    None => record_sums(gpu, encoder, x, dy, &cols, StatIndex::Map(IndexMap::div(len)), center, None)?,
                };
                set_params(&mut grads, record_param_grads(gpu, encoder, &col_sums, len, 1, len)?)?;
            }
            None => {
                set_params(&mut grads, record_param_grads(gpu, encoder, &sums, bs.channels, bs.loops, bs.channels)?)?;
            }
        }
    }
    let args = DxArgs {
        walk: &bs.red,
        stat_div: bs.sub as u32,
        channels: bs.channels as u32,
        gamma_per_element: bs.weighted,
        saved: center,
        gamma,
        coeffs: Some(&coeffs),
    };
    record_dx(gpu, encoder, x, dy, &grad_input, &args)?;
    Ok(grads)
}

fn to_array(shape: &[usize], v: Vec<f32>) -> Result<ArrayD<f32>> {
    ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| Error::Shape(e.to_string()))
}

fn host_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// The ndarray forward: upload, record, submit, read back, verify when asked.
pub(crate) fn forward_host(
    gpu: &Gpu,
    plan: &Plan,
    state: &LayerState,
    x: ArrayViewD<f32>,
    given: Option<&[Moments]>,
) -> Result<(ArrayD<f32>, SavedStats)> {
    state.check_device(gpu)?;
    let verify = gpu.verify() == Verify::Always;
    let running_before = if verify { state.running_host(gpu)? } else { None };
    let t = GpuTensor::from_array(gpu, x.view())?;
    let given_buf = given.map(|m| upload_moments(gpu, m)).transpose()?;
    let mut encoder = gpu.encoder();
    let (out, saved) = record_forward(gpu, &mut encoder, plan, state, &t, given_buf.as_ref())?;
    gpu.submit_and_wait(encoder)?;
    let y = out.to_vec(gpu)?;
    if verify {
        let xs: Vec<f32> = x.iter().copied().collect();
        let affine = state.affine_host(gpu)?.map(|(g, b)| (host_f64(&g), host_f64(&b)));
        let running_after = state.running_host(gpu)?;
        check::check_forward(
            gpu,
            plan,
            &xs,
            &y,
            affine.as_ref().map(|(g, b)| (g.as_slice(), b.as_slice())),
            running_before.zip(running_after),
            given,
        )?;
    }
    Ok((to_array(&plan.shape, y)?, saved))
}

/// The ndarray backward: upload, record, submit, read back, verify when asked.
pub(crate) fn backward_host(
    gpu: &Gpu,
    state: &LayerState,
    x: ArrayViewD<f32>,
    dy: ArrayViewD<f32>,
    saved: &SavedStats,
    merged: Option<&MergedSums>,
) -> Result<Grads> {
    state.check_device(gpu)?;
    let xt = GpuTensor::from_array(gpu, x.view())?;
    let dyt = GpuTensor::from_array(gpu, dy.view())?;
    let mut encoder = gpu.encoder();
    let grads = record_backward(gpu, &mut encoder, state, &xt, &dyt, saved, merged)?;
    gpu.submit_and_wait(encoder)?;
    let host = grads.to_host(gpu)?;
    // (With merged sums the reference would need every shard's data: not verified here.)
    if gpu.verify() == Verify::Always && merged.is_none() {
        let xs: Vec<f32> = x.iter().copied().collect();
        let dys: Vec<f32> = dy.iter().copied().collect();
        let gamma = state.affine_host(gpu)?.map(|(g, _)| host_f64(&g));
        let running = match &saved.running {
            Some((m, v)) => {
                let c = saved.grouping.num_segments();
                Some((host_f64(&download(gpu, m, c)?), host_f64(&download(gpu, v, c)?)))
            }
            None => None,
        };
        check::check_backward(gpu, saved, &xs, &dys, &host, gamma.as_deref(), running)?;
    }
    Ok(host)
}
