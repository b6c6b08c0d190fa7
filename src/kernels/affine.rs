//! Host side of `shaders/affine.wgsl`: the elementwise step of every scaler and norm.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, Shader, TexelSlot, SCALAR_TEXEL_BINDING, TEXEL_BINDING};
use crate::kernels::IndexMapGpu;
use crate::segments::{Grouping, IndexMap};

/// What the elementwise pass computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffineMode {
    /// `((x − center[s]) − center_lo[s]) · inv_scale[s] · γ[p] + β[p]`
    Forward,
    /// `(((x − β[p]) / γ[p]) / inv_scale[s] + center_lo[s]) + center[s]`
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
    /// Per segment: the center's low part (the float32 rounding error of the float64
    /// center), subtracted after `center`; `None` is zero.
    pub center_lo: Option<&'a wgpu::Buffer>,
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
    run_len: u32,
    run_split: u32,
    piece_len: u32,
    pieces: u32,
    group: u32,
    param_stride: u32,
    block_rows: u32,
    block_seg: u32,
    col_div: u32,
    col_mod: u32,
    _pad: [u32; 2],
}

/// How an index map behaves along a thread's vec4s (the `MAP_*` kinds of affine.wgsl),
/// for threads that advance by `step` elements per iteration (4 × the lane group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MapKind {
    /// Each lane keeps its index when the thread advances by [`VEC4_STEP`] elements.
    Fixed,
    /// The 4 elements of an aligned vec4 share one index.
    Uniform,
    /// `e % m` with `m >= 4`: consecutive indices, wrapped.
    Mod,
    /// `((e / d) % m)·s` plus a constant, `d >= 4`: the quotient steps at most once per vec4.
    Div,
    /// Anything else: every element's index is stepped from the previous one's.
    General,
}

impl MapKind {
    fn name(self) -> &'static str {
        match self {
            MapKind::Fixed => "fixed",
            MapKind::Uniform => "uniform",
            MapKind::Mod => "mod",
            MapKind::Div => "div",
            MapKind::General => "general",
        }
    }
}

/// Elements a thread of the vec4 lanes kernels advances per iteration on a GPU (4 · WG).
#[cfg(test)]
const VEC4_STEP: u64 = 4 * 256;

/// The cheapest way the lanes kernel may compute a map's indices, for vec4s starting
/// at multiples of 4 and threads stepping by `step` elements.
fn map_kind(m: &IndexMap, step: u64) -> MapKind {
    let (d1, m1, d2, m2) = (m.d1 as u64, m.m1 as u64, m.d2 as u64, m.m2 as u64);
    let const1 = m.s1 == 0 || m1 == 1;
    let const2 = m.s2 == 0 || m2 == 1;
    // Unchanged after `step` more elements, for every start.
    let fixed1 = const1 || (step.is_multiple_of(d1) && (step / d1).is_multiple_of(m1));
    let fixed2 = const2 || step.is_multiple_of(m2);
    if fixed1 && fixed2 {
        return MapKind::Fixed;
    }
    // The same for the 4 elements of an aligned vec4.
    let uniform1 = const1 || d1 % 4 == 0;
    let uniform2 = const2 || (m2 % 4 == 0 && d2 % 4 == 0);
    if uniform1 && uniform2 {
        return MapKind::Uniform;
    }
    if const1 && m.s2 == 1 && d2 == 1 && m2 >= 4 {
        return MapKind::Mod;
    }
    if const2 && d1 >= 4 {
        return MapKind::Div;
    }
    MapKind::General
}

/// Whether the vec4 kernels can step this map (`map_add` needs d2 | m2).
fn steppable(m: &IndexMap) -> bool {
    m.d1 > 0 && m.d2 > 0 && m.m1 > 0 && m.m2 > 0 && m.m2.is_multiple_of(m.d2)
}

/// The length of the aligned runs on which a map is constant (`None`: constant everywhere).
fn run_len(m: &IndexMap) -> Option<u64> {
    let mut r: Option<u64> = None;
    let mut add = |x: u64| r = Some(r.map_or(x, |r| gcd(r, x)));
    if m.s1 != 0 && m.m1 != 1 {
        add(m.d1 as u64);
    }
    if m.s2 != 0 && m.m2 != 1 {
        // (e % m2) / d2 is constant on aligned blocks of d2 when d2 divides m2.
        add(m.d2 as u64);
    }
    r
}

/// The lanes kernels that exist: (segment kind, γ/β: "none", "same" or their kind).
const LANES: [(&str, &str); 14] = [
    ("fixed", "none"),
    ("fixed", "same"),
    ("uniform", "none"),
    ("uniform", "same"),
    ("uniform", "uniform"),
    ("uniform", "mod"),
    ("mod", "none"),
    ("mod", "same"),
    ("div", "none"),
    ("div", "same"),
    ("div", "div"),
    ("general", "none"),
    ("general", "same"),
    ("general", "general"),
];

/// The entry point of affine.wgsl's lanes kernels for a mode and the two maps' kinds.
fn lanes_entry(inverse: bool, seg: MapKind, params: &str) -> &'static str {
    let (s, p) = match LANES.iter().find(|&&(s, p)| s == seg.name() && p == params) {
        Some(&(s, p)) => (s, p),
        // Every map can be stepped the general way.
        None if params == "none" || params == "same" => ("general", params),
        None => ("general", "general"),
    };
    let name = format!("affine4_{}_{s}_{p}", if inverse { "inv" } else { "fwd" });
    ENTRIES.iter().copied().find(|e| *e == name).expect("every lanes combination has an entry point")
}

/// Every entry point of the lanes kernels (generated in affine.wgsl from the same list).
const ENTRIES: [&str; 28] = [
    "affine4_fwd_fixed_none",
    "affine4_fwd_fixed_same",
    "affine4_fwd_uniform_none",
    "affine4_fwd_uniform_same",
    "affine4_fwd_uniform_uniform",
    "affine4_fwd_uniform_mod",
    "affine4_fwd_mod_none",
    "affine4_fwd_mod_same",
    "affine4_fwd_div_none",
    "affine4_fwd_div_same",
    "affine4_fwd_div_div",
    "affine4_fwd_general_none",
    "affine4_fwd_general_same",
    "affine4_fwd_general_general",
    "affine4_inv_fixed_none",
    "affine4_inv_fixed_same",
    "affine4_inv_uniform_none",
    "affine4_inv_uniform_same",
    "affine4_inv_uniform_uniform",
    "affine4_inv_uniform_mod",
    "affine4_inv_mod_none",
    "affine4_inv_mod_same",
    "affine4_inv_div_none",
    "affine4_inv_div_same",
    "affine4_inv_div_div",
    "affine4_inv_general_none",
    "affine4_inv_general_same",
    "affine4_inv_general_general",
];

/// Pieces of a run hold at most this many elements, so that long runs (whole rows or
/// samples) still spread over many workgroups.
const MAX_PIECE: u64 = 16 * 1024;

/// Record the elementwise pass from `input` into `output` (same shape, distinct buffers).
pub fn record_affine(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    output: &GpuTensor,
    grouping: &Grouping,
    args: &AffineArgs,
) -> Result<()> {
    crate::kernels::moments::check_input(gpu, input, grouping)?;
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
    // No low part: zeros, one per segment (wgpu zero-fills new buffers).
    let zeros;
    let center_lo = match args.center_lo {
        Some(b) => b,
        None if needs_center => {
            zeros = gpu.storage_buffer("affine center_lo (zero)", center.size())?;
            &zeros
        }
        None => &dummy,
    };
    let inv_scale = args.inv_scale.unwrap_or(&dummy);
    let (gamma, beta) = args.gamma_beta.unwrap_or((&dummy, &dummy));
    let mut flags = 0;
    if args.clip.is_some() {
        flags |= 1;
    }
    if args.gamma_beta.is_some() {
        flags |= 2;
    }
    // The vec4 kernels always clip: to ±inf (the identity) when not asked to.
    let (clip_lo, clip_hi) = args.clip.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    let mode = match args.mode {
        AffineMode::Forward => 0,
        AffineMode::Inverse => 1,
        AffineMode::Log1p => 2,
        AffineMode::Expm1 => 3,
    };

    let numel = input.numel() as u64;
    let align = gpu.offset_alignment_elements().max(4);
    let max_span = (gpu.max_chunk_elements() / align * align).max(align);
    let (seg_map, param_map) = (grouping.segment_map(), grouping.param_map());
    let has_gb = args.gamma_beta.is_some();
    let use_vec4 = steppable(&seg_map) && (!has_gb || steppable(&param_map));
    let inverse = args.mode == AffineMode::Inverse;
    let group = crate::kernels::copy::lane_group(gpu);
    let step = 4 * group as u64;
    // Runs: both maps constant on aligned runs of a multiple of 4 elements, long enough
    // to fill a workgroup's lanes at least half the time.
    let runs = match (run_len(&seg_map), if has_gb { run_len(&param_map) } else { None }) {
        (Some(a), Some(b)) => Some(gcd(a, b)),
        (a, b) => a.or(b).or(Some(MAX_PIECE)),
    }
    .filter(|&r| r % 4 == 0 && r / 4 >= 256 && numel + r < u32::MAX as u64);
    // Rows: segment e / R, γ/β e % R (layer norm), R a multiple of 4 and wide enough
    // for a quarter of a workgroup's lanes.
    let rows_len = (has_gb && (seg_map.d1 as u64).is_multiple_of(4) && seg_map.d1 >= 256)
        .then_some(seg_map.d1 as u64)
        .filter(|&r| {
            seg_map == IndexMap::div(r as usize)
                && param_map == IndexMap::modulo(r as usize)
                && numel + r < u32::MAX as u64
        });
    // Columns: matrix rows of C >= 8 elements; element q of a row belongs to segment
    // (q / col_div) plus, per sample of block_rows rows, block_seg; γ/β (if any) to q.
    // The scalers and channels-last batch norm (segment q), channels-last instance norm
    // (sample · C + q) and group norm (sample · G + q / (C/G)). A grid row holds whole
    // matrix rows, a multiple of 4 elements and at least 40 (ten threads); not where
    // the fixed-parameter kernel applies (its thread's vec4 keeps its columns). On
    // lavapipe standard scaling of 1e7 elements took 11-17 ms here for 40 to 2,000
    // columns, 27-55 ms with parameters loaded per element (`affine4_fwd_mod_*`);
    // channels-last instance norm's affine pass 40.5 ms (`affine4_fwd_general_general`).
    let row_c = seg_map.m2 as u64;
    let samples = seg_map.s1 != 0 && seg_map.m1 != 1;
    // A grid row of whole matrix rows: lcm(C, 4) elements or a multiple of it, at least
    // 40 (samples need exactly one row).
    let grid_c = match samples {
        true => row_c,
        false => {
            let l = row_c * (4 / gcd(row_c, 4));
            l * 40u64.div_ceil(l)
        }
    };
    let cols_len = (seg_map.s2 == 1
        && row_c >= 8
        && (!samples || (seg_map.m1 == u32::MAX && (seg_map.d1 as u64).is_multiple_of(row_c))))
    .then_some(grid_c)
    .filter(|&r| {
        r.is_multiple_of(4)
            && r >= 40
            && row_c.is_multiple_of(seg_map.d2 as u64)
            && map_kind(&seg_map, step) != MapKind::Fixed
            && (!has_gb || param_map == IndexMap::modulo(row_c as usize))
            && numel + r < u32::MAX as u64
    });
    let (block_rows, block_seg, col_div) = match cols_len {
        Some(c) if samples => ((seg_map.d1 as u64 / c) as u32, seg_map.s1, seg_map.d2),
        Some(_) => (0, 0, seg_map.d2),
        None => (0, 0, 1),
    };
    let grid_len = rows_len.or(cols_len);
    let (vec4_entry, elementwise) = match args.mode {
        AffineMode::Log1p => ("affine4_log1p", true),
        AffineMode::Expm1 => ("affine4_expm1", true),
        _ if rows_len.is_some() => (if inverse { "affine4_rows_inv" } else { "affine4_rows_fwd" }, false),
        _ if cols_len.is_some() => (if inverse { "affine4_cols_inv" } else { "affine4_cols_fwd" }, false),
        _ => match runs {
            Some(_) => {
                let name = match (inverse, has_gb) {
                    (false, false) => "affine4_runs_fwd_none",
                    (false, true) => "affine4_runs_fwd_own",
                    (true, false) => "affine4_runs_inv_none",
                    (true, true) => "affine4_runs_inv_own",
                };
                (name, false)
            }
            None => {
                let params = if !has_gb {
                    "none"
                } else if param_map == seg_map {
                    "same"
                } else {
                    map_kind(&param_map, step).name()
                };
                (lanes_entry(inverse, map_kind(&seg_map, step), params), false)
            }
        },
    };
    let scalar = gpu.pipeline(Shader::Affine, "affine_main");
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
        run_len: 0,
        run_split: 1,
        piece_len: 0,
        pieces: 0,
        group,
        param_stride: 0,
        block_rows,
        block_seg,
        col_div,
        col_mod: row_c as u32,
        _pad: [0; 2],
    };
    let mut lo = 0u64;
    while lo < numel {
        let count = max_span.min(numel - lo);
        // Windows start at multiples of 4 elements: their vec4 views are 16-byte aligned.
        let n4 = if use_vec4 && lo.is_multiple_of(4) { count / 4 } else { 0 };
        if n4 > 0 {
            let mut params = AffineParams { window_lo: lo as u32, count: n4 as u32, ..base };
            let wgs = if let (Some(r), false) = (grid_len, elementwise) {
                let hi = lo + 4 * n4;
                let rows = (hi - 1) / r - lo / r + 1;
                let per_wg = rows.div_ceil(gpu.target_workgroups() as u64 * 4);
                params.run_len = r as u32;
                params.pieces = rows as u32;
                params.per_wg = per_wg as u32;
                rows.div_ceil(per_wg) as u32
            } else {
                match runs.filter(|_| !elementwise) {
                    Some(r) => {
                        let split = r.div_ceil(MAX_PIECE);
                        let piece = r.div_ceil(split).next_multiple_of(4);
                        let hi = lo + 4 * n4;
                        let n_runs = (hi - 1) / r - lo / r + 1;
                        let pieces = n_runs * split;
                        // Enough pieces per workgroup for each of its thread groups.
                        let groups = (256 / group) as u64;
                        let wgs = (gpu.target_workgroups() as u64 * 4).min(pieces.div_ceil(groups)).max(1);
                        let per_wg = pieces.div_ceil(wgs);
                        params.run_len = r as u32;
                        params.run_split = split as u32;
                        params.piece_len = piece as u32;
                        params.pieces = pieces as u32;
                        params.per_wg = per_wg as u32;
                        pieces.div_ceil(per_wg) as u32
                    }
                    None => {
                        let (wgs, per_wg) = crate::kernels::copy::split(gpu, n4);
                        params.per_wg = per_wg as u32;
                        wgs
                    }
                }
            };
            // On a software adapter the vec4 loads read staged texels (see gpu/texels.rs),
            // and the rows kernels their rows' center, center_lo and inv_scale too
            // (stacked in the scalar texels; both or neither, one switch).
            let mut texels = gpu.stage_texels(encoder, input.buffer(), lo * 4, n4, TexelSlot::Kernel)?;
            let mut row_params = None;
            if let (Some(r), false) = (rows_len, elementwise) {
                let (stack, stride) = match texels.staged {
                    true => gpu.stage_scalar_stack(encoder, &[center, center_lo, inv_scale], numel / r)?,
                    false => (gpu.unstaged_texels(), 0),
                };
                if !stack.staged {
                    texels = gpu.unstaged_texels();
                }
                params.param_stride = stride;
                row_params = Some(stack);
            }
            let params = gpu.uniform(&params);
            let bytes = std::num::NonZeroU64::new(n4 * 16);
            let view =
                |buffer| wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset: lo * 4, size: bytes });
            let mut bindings = vec![params.as_entire_binding(), view(input.buffer()), view(output.buffer())];
            if !elementwise {
                bindings.extend([
                    center.as_entire_binding(),
                    inv_scale.as_entire_binding(),
                    gamma.as_entire_binding(),
                    beta.as_entire_binding(),
                    center_lo.as_entire_binding(),
                ]);
            }
            let vec4 = gpu.pipeline_with(Shader::Affine, vec4_entry, &[texels.constant()]);
            let mut numbered: Vec<(u32, wgpu::BindingResource)> =
                bindings.into_iter().enumerate().map(|(i, b)| (i as u32, b)).collect();
            numbered.push((TEXEL_BINDING, texels.binding()));
            // The columns kernels share the rows kernels' code, row-parameter texels
            // included (never read there: the stand-in).
            let stand_in = (cols_len.is_some() && row_params.is_none() && !elementwise).then(|| gpu.unstaged_texels());
            if let Some(stack) = row_params.as_ref().or(stand_in.as_ref()) {
                numbered.push((SCALAR_TEXEL_BINDING, stack.binding()));
            }
            gpu.dispatch_numbered(encoder, &vec4, &numbered, wgs)?;
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
                    center_lo.as_entire_binding(),
                ],
                wgs,
            )?;
        }
        lo += count;
    }
    Ok(())
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groupings() -> Vec<Grouping> {
        vec![
            Grouping::Columns { rows: 300, cols: 16 },
            Grouping::Columns { rows: 300, cols: 5 },
            Grouping::Columns { rows: 300, cols: 12 },
            Grouping::Columns { rows: 300, cols: 2 },
            Grouping::Rows { rows: 7, len: 1000 },
            Grouping::Rows { rows: 7, len: 6 },
            Grouping::Channels { n: 3, c: 5, spatial: 2500, channels_last: false },
            Grouping::Channels { n: 3, c: 5, spatial: 7, channels_last: false },
            Grouping::Channels { n: 30, c: 8, spatial: 7, channels_last: true },
            Grouping::Groups { n: 3, c: 8, spatial: 12, groups: 4, channels_last: false },
            Grouping::Groups { n: 3, c: 8, spatial: 12, groups: 2, channels_last: true },
            Grouping::Instances { n: 3, c: 8, spatial: 12, channels_last: true },
            Grouping::Instances { n: 3, c: 6, spatial: 10, channels_last: false },
        ]
    }

    /// Each kind promises what the kernel relies on, checked element by element.
    #[test]
    fn map_kinds_hold() {
        for g in groupings() {
            for m in [g.segment_map(), g.param_map()] {
                assert!(steppable(&m), "{g:?}");
                for step in [32u64, VEC4_STEP] {
                    let kind = map_kind(&m, step);
                    let n = g.numel();
                    for e in (0..n.saturating_sub(3)).step_by(4) {
                        let v = m.apply(e);
                        for j in 1..4 {
                            let got = m.apply(e + j);
                            match kind {
                                MapKind::Uniform => assert_eq!(got, v, "{g:?} uniform at {e}+{j}"),
                                MapKind::Mod => assert_eq!(got, (v + j) % m.m2 as usize, "{g:?} mod at {e}+{j}"),
                                MapKind::Div => {
                                    let q = (e / m.d1 as usize + usize::from(e % m.d1 as usize + j >= m.d1 as usize))
                                        % m.m1 as usize;
                                    assert_eq!(got, q * m.s1 as usize, "{g:?} div at {e}+{j}")
                                }
                                _ => {}
                            }
                        }
                        if kind == MapKind::Fixed && e + step as usize + 3 < n {
                            for j in 0..4 {
                                assert_eq!(m.apply(e + j), m.apply(e + j + step as usize), "{g:?} fixed at {e}+{j}");
                            }
                        }
                    }
                }
                if let Some(r) = run_len(&m) {
                    for e in 0..g.numel() {
                        assert_eq!(m.apply(e), m.apply(e / r as usize * r as usize), "{g:?} run of {r} at {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn common_layouts_get_cheap_kinds() {
        let cols = Grouping::Columns { rows: 10, cols: 16 };
        assert_eq!(map_kind(&cols.segment_map(), VEC4_STEP), MapKind::Fixed);
        let cols = Grouping::Columns { rows: 10, cols: 10 };
        assert_eq!(map_kind(&cols.segment_map(), VEC4_STEP), MapKind::Mod);
        let nchw = Grouping::Channels { n: 2, c: 40, spatial: 2500, channels_last: false };
        assert_eq!(run_len(&nchw.segment_map()), Some(2500));
        let small = Grouping::Channels { n: 2, c: 40, spatial: 49, channels_last: false };
        assert_eq!(map_kind(&small.segment_map(), VEC4_STEP), MapKind::Div);
        let rows = Grouping::Rows { rows: 10, len: 1000 };
        assert_eq!(map_kind(&rows.segment_map(), VEC4_STEP), MapKind::Uniform);
        assert_eq!(map_kind(&rows.param_map(), VEC4_STEP), MapKind::Mod);
        assert_eq!(lanes_entry(false, MapKind::Uniform, "mod"), "affine4_fwd_uniform_mod");
        assert_eq!(lanes_entry(true, MapKind::Fixed, "general"), "affine4_inv_general_general");
    }

    #[test]
    fn entry_list_matches_lanes_list() {
        let mut names = Vec::new();
        for mode in ["fwd", "inv"] {
            for (s, p) in LANES {
                names.push(format!("affine4_{mode}_{s}_{p}"));
            }
        }
        assert_eq!(names, ENTRIES);
        let src = Shader::Affine.source();
        for e in ENTRIES {
            assert!(src.contains(&format!("fn {e}(")), "{e} missing in affine.wgsl");
        }
    }
}
