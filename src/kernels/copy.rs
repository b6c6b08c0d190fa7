//! Host side of `shaders/copy.wgsl`: a plain compute copy, the roofline that
//! `gpunorm bench` measures every operation against (DESIGN.md §7).
//!
//! A buffer-to-buffer copy is a `memcpy` on a software adapter and a DMA engine on
//! some GPUs; neither is what a compute kernel can reach. This kernel reads and
//! writes with the workgroup shape, work split and access pattern of the
//! elementwise kernel (`affine.wgsl`), so that "fraction of copy" measures what the
//! arithmetic and indexing of an operation cost over moving its bytes.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, Shader, TexelSlot, TEXEL_BINDING};

/// How the copy kernel moves data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyWidth {
    /// One f32 per thread and iteration.
    Scalar,
    /// One `vec4<f32>` per thread and iteration (the tail of `numel % 4` elements as
    /// scalars); falls back to scalars where a window's offset is not 16-byte aligned.
    Vec4,
    /// [`CopyWidth::Vec4`] with the source read as every kernel reads its input: through
    /// a staging texture on a software adapter (see `gpu/texels.rs`), from the buffer
    /// elsewhere.
    Texels,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct CopyParams {
    first: u32,
    count: u32,
    per_wg: u32,
    group: u32,
}

const WG: u64 = 256;

/// Threads that stride through memory together in the elementwise kernels: the whole
/// workgroup on a GPU (coalesced), the SIMD width on a software adapter (which runs one
/// SIMD batch of threads at a time: each batch then streams through its own chunk,
/// about 1.5× faster on lavapipe than a workgroup-wide stride).
pub fn lane_group(gpu: &Gpu) -> u32 {
    if gpu.is_software() {
        let simd = gpu.adapter_info().subgroup_max_size;
        if (4..=64).contains(&simd) && simd.is_power_of_two() {
            simd
        } else {
            8
        }
    } else {
        WG as u32
    }
}

/// Workgroups and items per workgroup for `items` items, as the affine kernel splits them.
pub(crate) fn split(gpu: &Gpu, items: u64) -> (u32, u64) {
    let wgs = (gpu.target_workgroups() as u64 * 4).clamp(1, items.div_ceil(WG).max(1));
    let per_wg = items.div_ceil(wgs).next_multiple_of(WG);
    (items.div_ceil(per_wg) as u32, per_wg)
}

/// Record `dst = src` (same number of elements, distinct buffers) with vec4 moves.
pub fn record_copy(gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, src: &GpuTensor, dst: &GpuTensor) -> Result<()> {
    record_copy_with(gpu, encoder, src, dst, CopyWidth::Vec4)
}

/// [`record_copy`] with a chosen access width.
pub fn record_copy_with(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    src: &GpuTensor,
    dst: &GpuTensor,
    width: CopyWidth,
) -> Result<()> {
    if src.numel() != dst.numel() {
        return Err(Error::Shape(format!(
            "copy: source of shape {:?} and destination of shape {:?} differ in size",
            src.shape(),
            dst.shape()
        )));
    }
    if src.buffer() == dst.buffer() {
        return Err(Error::InvalidParameter("copy: source and destination must be distinct buffers".into()));
    }
    let numel = src.numel() as u64;
    let align = gpu.offset_alignment_elements();
    // Keep windows a multiple of 4 elements so that every vec4 window starts 16-byte aligned.
    let max_span = (gpu.max_chunk_elements() / align.max(4) * align.max(4)).max(align.max(4));
    let group = lane_group(gpu);
    let scalar = gpu.pipeline(Shader::Copy, "copy_main");
    let mut lo = 0u64;
    while lo < numel {
        let count = max_span.min(numel - lo);
        let n4 = if width != CopyWidth::Scalar && (lo * 4).is_multiple_of(16) { count / 4 } else { 0 };
        if n4 > 0 {
            let (wgs, per_wg) = split(gpu, n4);
            let params = gpu.uniform(&CopyParams { first: 0, count: n4 as u32, per_wg: per_wg as u32, group });
            let bytes = std::num::NonZeroU64::new(n4 * 16);
            fn bind(b: &GpuTensor, offset: u64, size: Option<std::num::NonZeroU64>) -> wgpu::BindingResource<'_> {
                wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: b.buffer(), offset, size })
            }
            let mut bindings =
                vec![(0, params.as_entire_binding()), (1, bind(src, lo * 4, bytes)), (2, bind(dst, lo * 4, bytes))];
            // The plain copy reads the buffer on every adapter (the stand-in texture fills
            // the binding).
            let texels = if width == CopyWidth::Texels {
                gpu.stage_texels(encoder, src.buffer(), lo * 4, n4, TexelSlot::Kernel)?
            } else {
                gpu.unstaged_texels()
            };
            let vec4 = gpu.pipeline_with(Shader::Copy, "copy_vec4", &[texels.constant()]);
            bindings.push((TEXEL_BINDING, texels.binding()));
            gpu.dispatch_numbered(encoder, &vec4, &bindings, wgs)?;
        }
        let first = n4 * 4;
        if first < count {
            let (wgs, per_wg) = split(gpu, count - first);
            let params =
                gpu.uniform(&CopyParams { first: first as u32, count: count as u32, per_wg: per_wg as u32, group });
            gpu.dispatch(
                encoder,
                &scalar,
                &[
                    params.as_entire_binding(),
                    Gpu::binding(src.buffer(), lo, count),
                    Gpu::binding(dst.buffer(), lo, count),
                ],
                wgs,
            )?;
        }
        lo += count;
    }
    Ok(())
}

/// The WGSL `TransposeParams` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct TransposeParams {
    rows: u32,
    cols: u32,
    blocks: u32,
    _pad: u32,
}

/// Rows one thread of `transpose_main` copies (`TRANSPOSE_ROWS` in copy.wgsl).
const TRANSPOSE_ROWS: u64 = 256;

/// Record the transpose of a row-major `(rows, cols)` tensor into a new `(cols, rows)`
/// one (within one binding).
pub fn record_transpose(gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, src: &GpuTensor) -> Result<GpuTensor> {
    let &[rows, cols] = src.shape() else {
        return Err(Error::Shape(format!("transpose: a matrix, not shape {:?}", src.shape())));
    };
    let numel = (rows * cols) as u64;
    if numel > gpu.max_chunk_elements() {
        return Err(Error::TooLarge(format!("transpose: {numel} elements exceed one binding")));
    }
    let dst = GpuTensor::empty(gpu, &[cols, rows])?;
    if numel == 0 {
        return Ok(dst);
    }
    let blocks = (rows as u64).div_ceil(TRANSPOSE_ROWS);
    let params = gpu.uniform(&TransposeParams { rows: rows as u32, cols: cols as u32, blocks: blocks as u32, _pad: 0 });
    let pipeline = gpu.pipeline(Shader::Copy, "transpose_main");
    let threads = blocks * cols as u64;
    gpu.dispatch(
        encoder,
        &pipeline,
        &[params.as_entire_binding(), Gpu::binding(src.buffer(), 0, numel), dst.buffer().as_entire_binding()],
        threads.div_ceil(256) as u32,
    )?;
    Ok(dst)
}
