//! Quantiles of short segments by sorting networks (`network.wgsl`), on a software
//! adapter: one thread per segment sorts its keys in registers and interpolates, in
//! one dispatch per input window. Exact, as the radix passes of `select`, which it
//! replaces there for segments of at most [`NETWORK_MAX_LEN`] values (up to 128 one
//! network; 129 to 256 two, one per half, and a merge-path search for each rank).
//!
//! Why only on a software adapter: there a thread's named values live in SIMD registers
//! (a lane per segment) while every memory access goes lane by lane, so a network's
//! min/max pairs beat histograms of short segments by far (lavapipe, medians of 100 ×
//! 100000: ~650 ms by transpose and radix passes, ~25 ms by a network). A GPU keeps
//! the radix passes and its workgroup histograms, where 128 keys a thread would spill.

use crate::error::Result;
use crate::gpu::{network_sizes, Gpu, GpuTensor, Shader};
use crate::kernels::{plan, SegmentsGpu};
use crate::segments::Segments;

/// The longest segment a network sorts (the largest network).
pub const NETWORK_MAX_LEN: usize = 256;
const _: () = assert!(network_sizes()[network_sizes().len() - 1] == NETWORK_MAX_LEN);

/// The WGSL `NetParams` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct NetParams {
    seg: SegmentsGpu,
    window_lo: u32,
    seg_first: u32,
    seg_end: u32,
    nq: u32,
    write_counts: u32,
    _pad: [u32; 3],
}

/// The network that sorts `seg`'s segments where the quantiles take one (a software
/// adapter, segments of at most [`NETWORK_MAX_LEN`] values, each inside one window of
/// `plan`): its size. Only where the input is large enough to pay for the network's
/// compile, or the network is compiled already (see [`NETWORK_MIN_ELEMENTS`];
/// [`Gpu::set_networks`] overrides it).
pub fn network_size(gpu: &Gpu, seg: &Segments, plan: &plan::ReducePlan) -> Option<usize> {
    let size = network_sizes().iter().copied().find(|&n| n >= seg.len as usize)?;
    if !gpu.is_software() || seg.len == 0 || !plan.whole_segments(seg.len) {
        return None;
    }
    let pays = || {
        seg.count as u64 * seg.len as u64 >= (size as u64) * NETWORK_MIN_ELEMENTS
            || gpu.has_pipeline(Shader::Network { size: size as u16 }, entry_point(size))
    };
    gpu.networks().unwrap_or_else(pays).then_some(size)
}

/// Elements per network value from which a network pays for its compile in a one-shot
/// process (lavapipe, creating the module and pipeline: ~15 ms for 16 values, ~25 ms
/// for 32, ~50 ms for 64, ~100–140 ms for 128, ~330 ms for 256 (two halves and a
/// merge); ~3 ms to sort a million values by 128s). At 128 values: 2M elements, at 256:
/// 4M. `gpunorm stats` of 100 × 10000 (network 128): 0.25 s by the radix passes, 0.33 s
/// by the network; 100 × 30000: 0.56 s, 0.45 s.
pub const NETWORK_MIN_ELEMENTS: u64 = 1 << 14;

fn entry_point(size: usize) -> &'static str {
    match size {
        16 => "network_16",
        32 => "network_32",
        64 => "network_64",
        128 => "network_128",
        _ => "network_256",
    }
}

/// The buffers a network dispatch reads and writes: the unique q (`QInfo`), the map from
/// requested q to unique q, the quantiles (segments × q f32), their order statistics
/// (`[key_lo, key_hi, count, 0]`) and, if given, per segment a moments state with its
/// counts.
pub struct NetworkBuffers<'a> {
    pub qinfo: &'a wgpu::Buffer,
    pub qmap: &'a wgpu::Buffer,
    pub values: &'a wgpu::Buffer,
    pub order_stats: &'a wgpu::Buffer,
    pub counts: Option<&'a wgpu::Buffer>,
}

/// Record the network of size `size` (see [`network_size`]) over every segment of
/// `input`, `nq` requested q.
pub fn record_network(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    (seg, plan): (&Segments, &plan::ReducePlan),
    size: usize,
    nq: u32,
    out: &NetworkBuffers,
) -> Result<()> {
    let entry = entry_point(size);
    debug_assert_eq!(entry, format!("network_{size}"));
    let pipeline = gpu.pipeline(Shader::Network { size: size as u16 }, entry);
    for d in &plan.dispatches {
        if d.seg_end <= d.seg_first {
            continue;
        }
        let params = gpu.uniform(&NetParams {
            seg: (*seg).into(),
            window_lo: d.window_lo as u32,
            seg_first: d.seg_first,
            seg_end: d.seg_end,
            nq,
            write_counts: u32::from(out.counts.is_some()),
            _pad: [0; 3],
        });
        gpu.dispatch(
            encoder,
            &pipeline,
            &[
                params.as_entire_binding(),
                Gpu::binding(input.buffer(), d.window_lo, d.window_len),
                out.qinfo.as_entire_binding(),
                out.qmap.as_entire_binding(),
                out.values.as_entire_binding(),
                out.order_stats.as_entire_binding(),
                out.counts.unwrap_or(out.values).as_entire_binding(),
            ],
            (d.seg_end - d.seg_first).div_ceil(256),
        )?;
    }
    Ok(())
}
