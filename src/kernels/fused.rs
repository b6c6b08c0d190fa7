//! Host side of `shaders/fused.wgsl`: a norm layer's batch-statistics forward in one
//! pass over memory (statistics, derive and affine per segment, one thread each), where
//! it pays: on a software adapter reading buffers directly, for contiguous segments that
//! fit a core's cache. Elsewhere [`fused_layout`] says no and the layer takes the
//! moments, derive and affine passes, whose results these match.

use crate::error::Result;
use crate::gpu::{Gpu, GpuTensor, Shader};
use crate::kernels::derive::Derived;
use crate::kernels::moments::MOMENTS_BYTES;
use crate::segments::Grouping;

/// Longest segment (elements) the fused pass takes: a SIMD batch of eight threads
/// re-reads eight segments, 512 KiB at most, from a core's cache (group norm's
/// 12,500-element groups: 11.4 ms fused, 15.5 ms in passes, on lavapipe).
const MAX_FUSED_LEN: usize = 16384;
/// Threads of one workgroup (`FUSED_WG` in fused.wgsl).
const FUSED_WG: u32 = 64;
/// Rows one thread of `norm_fused_rows` takes (`ROWS_PER_THREAD` in fused.wgsl).
const ROWS_PER_THREAD: u64 = 4;

/// The WGSL `FusedParams` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct FusedParams {
    count: u32,
    len4: u32,
    run4: u32,
    pm: u32,
    ps: u32,
    _pad0: u32,
    eps: f32,
    _pad1: u32,
}

/// How the fused pass walks a grouping: segments of `len` contiguous elements, γ/β
/// index `(s % pm)·ps + k / run` (`run` 1: by position).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FusedLayout {
    pub segments: usize,
    pub len: usize,
    pub run: usize,
    pub pm: usize,
    pub ps: usize,
}

/// The fused layout of `grouping` where the fused pass applies on `gpu`, else `None`:
/// a software adapter whose kernels read buffers (where they read staged texels, the
/// two-pass path keeps them), contiguous segments (row-major rows, NCHW planes and
/// groups) of a multiple of 4 elements up to `MAX_FUSED_LEN`, runs of γ/β that are
/// multiples of 4 too, enough segments for a workgroup per core, and one binding.
pub fn fused_layout(gpu: &Gpu, grouping: &Grouping) -> Option<FusedLayout> {
    if !gpu.is_software() || gpu.reads_through_texels() {
        return None;
    }
    let (segments, len, run, pm, ps) = match *grouping {
        Grouping::Rows { rows, len } => (rows, len, 1, 1, 0),
        Grouping::Instances { n, c, spatial, channels_last: false } => (n * c, spatial, spatial, c, 1),
        Grouping::Groups { n, c, spatial, groups, channels_last: false } if groups > 0 => {
            (n * groups, (c / groups) * spatial, spatial, groups, c / groups)
        }
        _ => return None,
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let fits = len.is_multiple_of(4)
        && (run == 1 || run.is_multiple_of(4))
        && (4..=MAX_FUSED_LEN).contains(&len)
        && segments.div_ceil(if run == 1 { ROWS_PER_THREAD as usize } else { 1 }) >= cores * FUSED_WG as usize
        && (segments * len) as u64 <= gpu.max_chunk_elements();
    fits.then_some(FusedLayout { segments, len, run, pm, ps })
}

/// The longest run of additions into one float32 accumulator of the fused pass over
/// `grouping` (each vec4 lane sums len / 4 values, then four lanes), where it applies:
/// the error model of `Verify` (see `norm/check.rs`) reads it beside the moments pass's.
pub fn fused_chain(gpu: &Gpu, grouping: &Grouping) -> Option<usize> {
    fused_layout(gpu, grouping).map(|l| l.len / 4 + 2)
}

/// What the fused pass leaves: the output, the per-segment center, its low part and
/// inverse scale (as the derive pass's), and the poisoned moments states (as the
/// moments and poison passes': count, NaN count, shift, mean, M2; instance norm's
/// running update reads them). A norm needs no min or max: they are kept only for
/// segments with NaN or ±inf, and are 0 elsewhere.
pub struct FusedForward {
    pub output: GpuTensor,
    pub derived: Derived,
    pub moments: wgpu::Buffer,
}

/// Record the fused forward of `x` over `layout` (from [`fused_layout`]) with
/// `eps` and optional γ/β.
pub fn record_norm_fused(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    x: &GpuTensor,
    layout: &FusedLayout,
    eps: f64,
    gamma_beta: Option<(&wgpu::Buffer, &wgpu::Buffer)>,
) -> Result<FusedForward> {
    let count = layout.segments as u64;
    let output = GpuTensor::empty(gpu, x.shape())?;
    let center = gpu.storage_buffer("center", count * 4)?;
    let center_lo = gpu.storage_buffer("center_lo", count * 4)?;
    let inv_scale = gpu.storage_buffer("inv_scale", count * 4)?;
    let moments = gpu.storage_buffer("moments", count * MOMENTS_BYTES)?;
    // Without γ/β: γ = 1 and β = 0 over one run (the affine pass's defaults).
    let (ones, zeros) = (gpu.storage_buffer("no gamma", 16)?, gpu.storage_buffer("no beta", 16)?);
    gpu.queue().write_buffer(&ones, 0, bytemuck::cast_slice(&[1.0f32; 4]));
    let by_position = gamma_beta.is_some() && layout.run == 1;
    let (run, pm, ps) = if gamma_beta.is_some() { (layout.run, layout.pm, layout.ps) } else { (layout.len, 1, 0) };
    let (gamma, beta) = gamma_beta.unwrap_or((&ones, &zeros));
    let params = gpu.uniform(&FusedParams {
        count: count as u32,
        len4: (layout.len / 4) as u32,
        run4: (run / 4) as u32,
        pm: pm.max(1) as u32,
        ps: ps as u32,
        _pad0: 0,
        eps: eps as f32,
        _pad1: 0,
    });
    let bytes = std::num::NonZeroU64::new(count * layout.len as u64 * 4);
    let view = |buffer| wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset: 0, size: bytes });
    let (entry, gamma_at, beta_at) = if by_position { ("norm_fused_rows", 9, 10) } else { ("norm_fused_runs", 3, 4) };
    let pipeline = gpu.pipeline(Shader::Fused, entry);
    gpu.dispatch_numbered(
        encoder,
        &pipeline,
        &[
            (0, params.as_entire_binding()),
            (1, view(x.buffer())),
            (2, view(output.buffer())),
            (gamma_at, gamma.as_entire_binding()),
            (beta_at, beta.as_entire_binding()),
            (5, center.as_entire_binding()),
            (6, center_lo.as_entire_binding()),
            (7, inv_scale.as_entire_binding()),
            (8, moments.as_entire_binding()),
        ],
        (count.div_ceil(if by_position { ROWS_PER_THREAD } else { 1 }) as u32).div_ceil(FUSED_WG),
    )?;
    Ok(FusedForward { output, derived: Derived { center, inv_scale, center_lo }, moments })
}
