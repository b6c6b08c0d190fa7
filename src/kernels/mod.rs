//! Host side of each shader: parameter structs, bind groups, dispatch sizes, chunking.
//!
//! Each `record_*` function records work into a caller's `CommandEncoder` and returns
//! GPU buffers, so that a caller can chain gpunorm into its own GPU pipeline with no
//! readback; the user-facing modules (`stats`, `scale`, `norm`) build on these.

pub mod affine;
pub mod backward;
pub mod copy;
pub mod derive;
pub mod fused;
pub mod moments;
pub mod network;
pub mod plan;
pub mod select;

use crate::gpu::Gpu;
use crate::segments::{Segments, Vec4Parts};

/// The WGSL `Segments` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SegmentsGpu {
    pub count: u32,
    pub len: u32,
    pub seg_div: u32,
    pub seg_stride_hi: u32,
    pub seg_stride_lo: u32,
    pub inner_div: u32,
    pub elem_stride_hi: u32,
    pub elem_stride_lo: u32,
}

impl From<Segments> for SegmentsGpu {
    fn from(s: Segments) -> Self {
        SegmentsGpu {
            count: s.count,
            len: s.len,
            seg_div: s.seg_div,
            seg_stride_hi: s.seg_stride_hi,
            seg_stride_lo: s.seg_stride_lo,
            inner_div: s.inner_div,
            elem_stride_hi: s.elem_stride_hi,
            elem_stride_lo: s.elem_stride_lo,
        }
    }
}

/// The WGSL `IndexMap` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct IndexMapGpu {
    pub d1: u32,
    pub m1: u32,
    pub s1: u32,
    pub m2: u32,
    pub d2: u32,
    pub s2: u32,
    pub _pad: [u32; 2],
}

impl From<crate::segments::IndexMap> for IndexMapGpu {
    fn from(m: crate::segments::IndexMap) -> Self {
        IndexMapGpu { d1: m.d1, m1: m.m1, s1: m.s1, m2: m.m2, d2: m.d2, s2: m.s2, _pad: [0; 2] }
    }
}

/// The largest storage binding (and buffer) of this device, in bytes.
pub(crate) fn binding_size(gpu: &Gpu) -> u64 {
    gpu.limits().max_storage_buffer_binding_size.min(gpu.limits().max_buffer_size)
}

/// A layout's vec4 view (see [`Segments::vec4_view`]), when the device's windows can also
/// be cut in vec4 units.
pub(crate) fn vec4_view(gpu: &Gpu, seg: &Segments) -> Option<(Segments, Vec4Parts)> {
    let lim = plan_limits(gpu, 4);
    (lim.max_span >= 4 * lim.align && lim.align.is_multiple_of(4)).then(|| seg.vec4_view()).flatten()
}

/// [`plan_limits`] in units of `unit` floats (1, or 4 for a vec4 view); a statistics-like
/// pass (`reduce`) spreads over [`Gpu::reduce_workgroups`].
pub(crate) fn unit_plan_limits(gpu: &Gpu, state_bytes: u64, unit: u64, reduce: bool) -> plan::PlanLimits {
    let lim = plan_limits(gpu, state_bytes);
    plan::PlanLimits {
        max_span: lim.max_span / unit,
        align: lim.align / unit,
        target_workgroups: if reduce { gpu.reduce_workgroups() } else { lim.target_workgroups },
        ..lim
    }
}

/// The lanes of a workgroup that stride together on a software adapter (`lane_walk` in
/// common.wgsl): its SIMD width over the segments per workgroup.
pub(crate) fn lane_group(gpu: &Gpu, tile_width: u32) -> u32 {
    let tile_width = tile_width.max(1);
    (copy::lane_group(gpu) / tile_width).clamp(1, 256 / tile_width)
}

/// The `lane_walk` bits of a kernel's flags (common.wgsl): on a software adapter, bit 2
/// (lanes walk contiguous blocks) and the lanes per block, `group`, in bits 16 and up;
/// nothing on a GPU, whose lanes interleave.
pub(crate) fn lane_walk_flags(gpu: &Gpu, group: u32) -> u32 {
    if gpu.is_software() {
        2 | (group << 16)
    } else {
        0
    }
}

/// Partial states per segment of a reduction planned as `plan` over `segments` segments
/// of `state_bytes` each, and whether every lane writes its own (`per_lane`: a software
/// adapter, whose barriers cost more than the partials, when they fit one binding) or
/// each workgroup one after a tree.
pub(crate) fn partial_slots(
    gpu: &Gpu,
    plan: &plan::ReducePlan,
    segments: u64,
    state_bytes: u64,
    per_lane_allowed: bool,
) -> (u64, bool) {
    let lanes = (256 / plan.tile_width.max(1)) as u64;
    let parts = plan.parts_total as u64;
    let per_lane = per_lane_allowed && gpu.is_software() && segments * parts * lanes * state_bytes <= binding_size(gpu);
    (parts * if per_lane { lanes } else { 1 }, per_lane)
}

/// Limits of a reduction plan on this device.
pub(crate) fn plan_limits(gpu: &Gpu, state_bytes: u64) -> plan::PlanLimits {
    let binding = binding_size(gpu);
    plan::PlanLimits {
        max_span: gpu.max_chunk_elements(),
        align: gpu.offset_alignment_elements(),
        target_workgroups: gpu.target_workgroups(),
        max_partials: binding / state_bytes,
        min_per_thread: 4,
        max_tile: 256,
    }
}
