//! Host side of `shaders/affine.wgsl`: the elementwise step of every scaler and norm.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, Shader};
use crate::kernels::IndexMapGpu;
use crate::segments::Grouping;

/// What the elementwise pass computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffineMode {
    /// `(x − center[s]) · inv_scale[s] · γ[p] + β[p]`
    Forward,
    /// `((x − β[p]) / γ[p]) / inv_scale[s] + center[s]`
    Inverse,
    /// `log1p(x)`
    Log1p,
    /// `expm1(x)`
    Expm1,
}

/// The per-segment and per-parameter vectors of an affine pass (GPU buffers of f32).
pub struct AffineArgs<'a> {
    pub mode: AffineMode,
    /// Per segment (unused by Log1p/Expm1).
    pub center: Option<&'a wgpu::Buffer>,
    pub inv_scale: Option<&'a wgpu::Buffer>,
    /// Per parameter index; both or neither.
    pub gamma_beta: Option<(&'a wgpu::Buffer, &'a wgpu::Buffer)>,
    /// Clip the result into `[lo, hi]`.
    pub clip: Option<(f32, f32)>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct AffineParams {
    seg_map: IndexMapGpu,
    param_map: IndexMapGpu,
    window_lo: u32,
    count: u32,
    per_wg: u32,
    mode: u32,
    flags: u32,
    clip_lo: f32,
    clip_hi: f32,
    _pad: u32,
}

/// Record the elementwise pass from `input` into `output` (same shape, distinct buffers).
pub fn record_affine(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    output: &GpuTensor,
    grouping: &Grouping,
    args: &AffineArgs,
) -> Result<()> {
    crate::kernels::moments::check_input(input, grouping)?;
    if output.numel() != input.numel() {
        return Err(Error::Shape(format!(
            "output of shape {:?} does not match input of shape {:?}",
            output.shape(),
            input.shape()
        )));
    }
    if std::ptr::eq(input.buffer(), output.buffer()) || input.buffer() == output.buffer() {
        return Err(Error::InvalidParameter("the affine pass cannot write into its input buffer".into()));
    }
    let needs_center = matches!(args.mode, AffineMode::Forward | AffineMode::Inverse);
    if needs_center && (args.center.is_none() || args.inv_scale.is_none()) {
        return Err(Error::InvalidParameter("forward and inverse modes need center and inv_scale".into()));
    }
    let dummy = gpu.storage_buffer("affine unused", 4)?;
    let center = args.center.unwrap_or(&dummy);
    let inv_scale = args.inv_scale.unwrap_or(&dummy);
    let (gamma, beta) = args.gamma_beta.unwrap_or((&dummy, &dummy));
    let mut flags = 0;
    if args.clip.is_some() {
        flags |= 1;
    }
    if args.gamma_beta.is_some() {
        flags |= 2;
    }
    let (clip_lo, clip_hi) = args.clip.unwrap_or((0.0, 0.0));
    let mode = match args.mode {
        AffineMode::Forward => 0,
        AffineMode::Inverse => 1,
        AffineMode::Log1p => 2,
        AffineMode::Expm1 => 3,
    };

    let numel = input.numel() as u64;
    let align = gpu.offset_alignment_elements();
    let max_span = (gpu.max_chunk_elements() / align * align).max(align);
    let pipeline = gpu.pipeline(Shader::Affine, "affine_main");
    let mut lo = 0u64;
    while lo < numel {
        let count = max_span.min(numel - lo);
        // Enough workgroups to fill the device, each with a contiguous run.
        let wgs = (gpu.target_workgroups() as u64 * 4).clamp(1, count.div_ceil(256));
        let per_wg = count.div_ceil(wgs).next_multiple_of(256);
        let params = gpu.uniform(&AffineParams {
            seg_map: grouping.segment_map().into(),
            param_map: grouping.param_map().into(),
            window_lo: lo as u32,
            count: count as u32,
            per_wg: per_wg as u32,
            mode,
            flags,
            clip_lo,
            clip_hi,
            _pad: 0,
        });
        gpu.dispatch(
            encoder,
            &pipeline,
            &[
                params.as_entire_binding(),
                Gpu::binding(input.buffer(), lo, count),
                Gpu::binding(output.buffer(), lo, count),
                center.as_entire_binding(),
                inv_scale.as_entire_binding(),
                gamma.as_entire_binding(),
                beta.as_entire_binding(),
            ],
            count.div_ceil(per_wg) as u32,
        )?;
        lo += count;
    }
    Ok(())
}
