//! Host side of `shaders/affine.wgsl`: the elementwise step of every scaler and norm.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, Shader};
use crate::kernels::IndexMapGpu;
use crate::segments::{Grouping, IndexMap};

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
    first: u32,
    seg_class: u32,
    param_class: u32,
    _pad: [u32; 2],
}

/// How an index map behaves along a thread's vec4s (the `MAP_*` classes of affine.wgsl).
const MAP_GENERAL: u32 = 0;
const MAP_UNIFORM: u32 = 1;
const MAP_CONSEC: u32 = 2;
const MAP_FIXED: u32 = 3;

/// Elements a thread of the vec4 kernel advances per iteration (4 · WG).
const VEC4_STEP: u64 = 4 * 256;

/// The class of a map for vec4s starting at multiples of 4 and threads stepping by
/// [`VEC4_STEP`] elements: the cheapest way the kernel may compute its indices.
fn map_class(m: &IndexMap) -> u32 {
    let (d1, m1, d2, m2) = (m.d1 as u64, m.m1 as u64, m.d2 as u64, m.m2 as u64);
    let step = VEC4_STEP;
    // Unchanged after `step` more elements, for every start.
    let fixed1 = m.s1 == 0 || m1 == 1 || (step % d1 == 0 && (step / d1) % m1 == 0);
    let fixed2 = m.s2 == 0 || step % m2 == 0;
    if fixed1 && fixed2 {
        return MAP_FIXED;
    }
    // The same for the 4 elements of an aligned vec4.
    let uniform1 = m.s1 == 0 || m1 == 1 || d1 % 4 == 0;
    let uniform2 = m.s2 == 0 || m2 == 1 || (m2 % 4 == 0 && d2 % 4 == 0);
    if uniform1 && uniform2 {
        return MAP_UNIFORM;
    }
    // index + j for the 4 elements: a constant first term, e % m2 with 4 | m2.
    if uniform1 && m.s2 == 1 && d2 == 1 && m2 % 4 == 0 {
        return MAP_CONSEC;
    }
    MAP_GENERAL
}

/// Whether the vec4 kernel can step this map (`map_add` needs d2 | m2).
fn steppable(m: &IndexMap) -> bool {
    m.d1 > 0 && m.d2 > 0 && m.m1 > 0 && m.m2 > 0 && m.m2 % m.d2 == 0
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
    let align = gpu.offset_alignment_elements().max(4);
    let max_span = (gpu.max_chunk_elements() / align * align).max(align);
    let scalar = gpu.pipeline(Shader::Affine, "affine_main");
    let vec4 = gpu.pipeline(Shader::Affine, "affine_vec4");
    let (seg_map, param_map) = (grouping.segment_map(), grouping.param_map());
    let use_vec4 = steppable(&seg_map) && (args.gamma_beta.is_none() || steppable(&param_map));
    let base = AffineParams {
        seg_map: seg_map.into(),
        param_map: param_map.into(),
        window_lo: 0,
        count: 0,
        per_wg: 0,
        mode,
        flags,
        clip_lo,
        clip_hi,
        first: 0,
        seg_class: map_class(&seg_map),
        param_class: map_class(&param_map),
        _pad: [0; 2],
    };
    let mut lo = 0u64;
    while lo < numel {
        let count = max_span.min(numel - lo);
        // Windows start at multiples of 4 elements: their vec4 views are 16-byte aligned.
        let n4 = if use_vec4 && lo % 4 == 0 { count / 4 } else { 0 };
        if n4 > 0 {
            let (wgs, per_wg) = crate::kernels::copy::split(gpu, n4);
            let params = gpu.uniform(&AffineParams {
                window_lo: lo as u32,
                count: n4 as u32,
                per_wg: per_wg as u32,
                ..base
            });
            let bytes = std::num::NonZeroU64::new(n4 * 16);
            let view = |buffer| wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset: lo * 4, size: bytes });
            gpu.dispatch(
                encoder,
                &vec4,
                &[
                    params.as_entire_binding(),
                    view(input.buffer()),
                    view(output.buffer()),
                    center.as_entire_binding(),
                    inv_scale.as_entire_binding(),
                    gamma.as_entire_binding(),
                    beta.as_entire_binding(),
                ],
                wgs,
            )?;
        }
        let first = n4 * 4;
        if first < count {
            let (wgs, per_wg) = crate::kernels::copy::split(gpu, count - first);
            let params = gpu.uniform(&AffineParams {
                window_lo: lo as u32,
                count: count as u32,
                per_wg: per_wg as u32,
                first: first as u32,
                ..base
            });
            gpu.dispatch(
                encoder,
                &scalar,
                &[
                    params.as_entire_binding(),
                    Gpu::binding(input.buffer(), lo, count),
                    Gpu::binding(output.buffer(), lo, count),
                    center.as_entire_binding(),
                    inv_scale.as_entire_binding(),
                    gamma.as_entire_binding(),
                    beta.as_entire_binding(),
                ],
                wgs,
            )?;
        }
        lo += count;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The class promises what the kernel relies on, checked element by element.
    #[test]
    fn map_classes_hold() {
        let groupings = [
            Grouping::Columns { rows: 300, cols: 16 },
            Grouping::Columns { rows: 300, cols: 5 },
            Grouping::Columns { rows: 300, cols: 12 },
            Grouping::Rows { rows: 7, len: 1000 },
            Grouping::Rows { rows: 7, len: 6 },
            Grouping::Channels { n: 3, c: 5, spatial: 2500, channels_last: false },
            Grouping::Channels { n: 3, c: 5, spatial: 7, channels_last: false },
            Grouping::Channels { n: 30, c: 8, spatial: 7, channels_last: true },
            Grouping::Groups { n: 3, c: 8, spatial: 12, groups: 4, channels_last: false },
            Grouping::Groups { n: 3, c: 8, spatial: 12, groups: 2, channels_last: true },
            Grouping::Instances { n: 3, c: 8, spatial: 12, channels_last: true },
            Grouping::Instances { n: 3, c: 6, spatial: 10, channels_last: false },
        ];
        for g in groupings {
            for m in [g.segment_map(), g.param_map()] {
                assert!(steppable(&m), "{g:?}");
                let class = map_class(&m);
                let n = g.numel();
                for e in (0..n.saturating_sub(3)).step_by(4) {
                    let v = m.apply(e);
                    for j in 1..4 {
                        match class {
                            MAP_UNIFORM => assert_eq!(m.apply(e + j), v, "{g:?} uniform at {e}+{j}"),
                            MAP_CONSEC => assert_eq!(m.apply(e + j), v + j, "{g:?} consecutive at {e}+{j}"),
                            _ => {}
                        }
                    }
                    if class == MAP_FIXED && e + VEC4_STEP as usize + 3 < n {
                        for j in 0..4 {
                            assert_eq!(m.apply(e + j), m.apply(e + j + VEC4_STEP as usize), "{g:?} fixed at {e}+{j}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn common_layouts_get_cheap_classes() {
        let cols = Grouping::Columns { rows: 10, cols: 16 };
        assert_eq!(map_class(&cols.segment_map()), MAP_FIXED);
        let nchw = Grouping::Channels { n: 2, c: 40, spatial: 2500, channels_last: false };
        assert_eq!(map_class(&nchw.segment_map()), MAP_UNIFORM);
        let rows = Grouping::Rows { rows: 10, len: 1000 };
        assert_eq!(map_class(&rows.segment_map()), MAP_UNIFORM);
        assert_eq!(map_class(&rows.param_map()), MAP_CONSEC);
    }
}
