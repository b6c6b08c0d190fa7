//! Host side of `shaders/backward.wgsl`: the norm layers' fused backward pass (one
//! reduction over `(dy, x)`, then one elementwise pass) and two small forward helpers.
//!
//! The reduction reuses the segment descriptions ([`Grouping`]) and the chunk planner
//! of the moments kernel ([`crate::kernels::plan`]): a reduction segment can be the
//! statistics segment itself (batch, instance, layer rows), a finer one (the
//! (sample, channel) instances inside a group of group norm, so that dγ and dβ per
//! channel come from the same pass) or a transposed one (the columns of layer norm,
//! for its per-position dγ and dβ).

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor, Shader, TexelSource, SECOND_TEXEL_BINDING, TEXEL_BINDING};
use crate::kernels::moments::{check_input, MOMENTS_BYTES};
use crate::kernels::{
    lane_group, partial_slots, plan, plan_limits, unit_plan_limits, vec4_view, IndexMapGpu, SegmentsGpu,
};
use crate::segments::{Grouping, IndexMap, Segments, Vec4Parts};

/// Bytes of one reduction state: `(Σw·dy, Σw·dy·x̂)` as `vec2<f32>`.
pub const SUMS_BYTES: u64 = 8;

/// Which statistics segment (saved mean/invstd) an element of a reduction segment uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatIndex {
    /// Reduction segment `r` uses statistics segment `r / div` (1: the same segment;
    /// `C/G` for the instances of group norm).
    PerSegment { div: u32 },
    /// Each element's statistics segment from its flat index (layer norm's columns).
    Map(IndexMap),
}

/// The per-element weight of the reduction: γ at the element's parameter index.
#[derive(Clone, Copy, Debug)]
pub struct Weight<'a> {
    pub gamma: &'a wgpu::Buffer,
    pub param_map: IndexMap,
}

/// The WGSL `MapStep`: how an index cursor advances by a fixed step (see
/// `shaders/backward.wgsl`), so that kernels walk an [`IndexMap`] without dividing.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MapStepGpu {
    pub b1: u32,
    pub am1: u32,
    pub bu: u32,
    pub bw: u32,
    pub um: u32,
    /// 1 when cursors are valid for the map (else the kernel divides per element).
    pub ok: u32,
    pub _pad: [u32; 2],
}

/// The cursor step of `m` for a stride of `step` flat indices.
pub fn map_step(m: &IndexMap, step: u32) -> MapStepGpu {
    let valid = m.d1 >= 1
        && m.m1 >= 1
        && m.m2 >= 1
        && m.d2 >= 1
        && m.m2.is_multiple_of(m.d2)
        && m.d1 <= 1 << 31
        && m.m2 <= 1 << 31
        && (m.m1 == u32::MAX || m.m1 <= 1 << 31);
    if !valid {
        return MapStepGpu { b1: 0, am1: 0, bu: 0, bw: 0, um: 1, ok: 0, _pad: [0; 2] };
    }
    let b2 = step % m.m2;
    MapStepGpu {
        b1: step % m.d1,
        am1: (step / m.d1) % m.m1,
        bu: b2 / m.d2,
        bw: b2 % m.d2,
        um: m.m2 / m.d2,
        ok: 1,
        _pad: [0; 2],
    }
}

/// The vec4 view of `seg` when its vec4s hold four elements of one segment.
fn vec4_elements(gpu: &Gpu, seg: &Segments) -> Option<Segments> {
    match vec4_view(gpu, seg) {
        Some((v, Vec4Parts::Elements)) => Some(v),
        _ => None,
    }
}

/// Whether γ of each element of `red` is its position in its segment: layer norm's rows
/// (`e % len`, segments of `len` elements).
fn gamma_by_position(red: &Grouping, param_map: &IndexMap) -> bool {
    matches!(*red, Grouping::Rows { len, .. } if *param_map == IndexMap::modulo(len))
}

/// Whether the statistics segment of each element of `red` is its row: layer norm's
/// columns (`e / cols` over a `(rows, cols)` matrix, the segment of element `k` is row `k`).
fn stats_by_row(red: &Grouping, stat_map: &IndexMap) -> bool {
    matches!(*red, Grouping::Columns { cols, .. } if *stat_map == IndexMap::div(cols))
}

/// Element `k` of a segment → its offset from the segment's base, as an [`IndexMap`].
fn element_map(seg: &Segments) -> IndexMap {
    IndexMap {
        d1: seg.inner_div,
        m1: u32::MAX,
        s1: seg.elem_stride_hi,
        m2: seg.inner_div,
        d2: 1,
        s2: seg.elem_stride_lo,
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct SumsParams {
    seg: SegmentsGpu,
    elem_map: IndexMapGpu,
    elem_step: MapStepGpu,
    stat_map: IndexMapGpu,
    param_map: IndexMapGpu,
    window_lo: u32,
    seg_first: u32,
    seg_end: u32,
    tile_width: u32,
    k_first: u32,
    k_end: u32,
    parts: u32,
    part_offset: u32,
    parts_total: u32,
    tiles: u32,
    flags: u32,
    stat_div: u32,
    comp_end: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct SumsMergeParams {
    count: u32,
    parts_total: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct CoeffParams {
    count: u32,
    sub: u32,
    channels: u32,
    flags: u32,
    inv_n: f32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct ParamGradParams {
    count: u32,
    loops: u32,
    stride: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct DxParams {
    seg: SegmentsGpu,
    elem_map: IndexMapGpu,
    elem_step: MapStepGpu,
    window_lo: u32,
    seg_first: u32,
    seg_end: u32,
    tile_width: u32,
    k_first: u32,
    k_end: u32,
    parts: u32,
    tiles: u32,
    flags: u32,
    stat_div: u32,
    channels: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct CountParams {
    count: u32,
    n: u32,
    c: u32,
    _pad0: u32,
    momentum: f32,
    _pad: [u32; 3],
}

/// The longest run of values one float32 accumulator sums in sequence in a segmented
/// reduction over `seg` with `state_bytes`-byte states on this device (the per-thread
/// loop, then the merge of the parts); the tree in between adds `log2(256)`. This is
/// the `chain` of [`crate::verify::Tolerance::reduction`].
pub fn reduction_chain(gpu: &Gpu, seg: &Segments, state_bytes: u64) -> Result<usize> {
    let plan = plan::plan_reduction(seg, &plan_limits(gpu, state_bytes))?;
    let lanes = (256 / plan.tile_width.max(1)) as usize;
    let per_thread = plan
        .dispatches
        .iter()
        .map(|d| ((d.k_end - d.k_first) as usize).div_ceil(d.parts.max(1) as usize).div_ceil(lanes))
        .max()
        .unwrap_or(0);
    Ok(per_thread + plan.parts_total as usize)
}

/// The forward's saved statistics, one f32 per statistics segment each:
/// `x̂ = ((x − mean) − mean_lo)·invstd`. `mean_lo` is what rounding the mean to float32
/// lost (the derive kernel's `center_lo`), so that `x − mean` stays exact near the mean
/// however far it lies from zero; `None` takes it as 0.
#[derive(Clone, Copy)]
pub struct SavedCenter<'a> {
    pub mean: &'a wgpu::Buffer,
    pub mean_lo: Option<&'a wgpu::Buffer>,
    pub invstd: &'a wgpu::Buffer,
}

impl SavedCenter<'_> {
    /// `mean_lo`, or a zero buffer as long as `mean`.
    fn mean_lo(&self, gpu: &Gpu) -> Result<wgpu::Buffer> {
        match self.mean_lo {
            Some(b) => Ok(b.clone()),
            None => gpu.storage_buffer("backward mean_lo (zero)", self.mean.size().max(4)),
        }
    }
}

/// x and dy of a vec4 pass (`sums_vec4`, `dx_vec4`): their staged texels on a software
/// adapter (the stand-ins elsewhere), the pass's pipeline and the two texture bindings.
struct XDyTexels(TexelSource, TexelSource);

impl XDyTexels {
    /// Stage the window of `len` vec4 from vec4 `lo` of both.
    fn stage(
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        (x, dy): (&GpuTensor, &GpuTensor),
        lo: u64,
        len: u64,
    ) -> Result<Self> {
        let (a, b) = gpu.stage_texel_pair(encoder, (x.buffer(), dy.buffer()), lo * 16, len)?;
        Ok(XDyTexels(a, b))
    }

    fn pipeline(&self, gpu: &Gpu, entry: &'static str) -> std::sync::Arc<wgpu::ComputePipeline> {
        self.pipeline_with(gpu, entry, &[])
    }

    /// With more pipeline constants (sums_vec4's variants).
    fn pipeline_with(
        &self,
        gpu: &Gpu,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> std::sync::Arc<wgpu::ComputePipeline> {
        let mut all = vec![self.0.constant()];
        all.extend_from_slice(constants);
        gpu.pipeline_with(Shader::Backward, entry, &all)
    }

    fn bindings(&self) -> [(u32, wgpu::BindingResource<'_>); 2] {
        [(TEXEL_BINDING, self.0.binding()), (SECOND_TEXEL_BINDING, self.1.binding())]
    }
}

/// Record the fused reduction over `(dy, x)`: per segment of `red`, `Σw·dy` and
/// `Σw·dy·x̂` with `x̂` from `saved` (see [`SavedCenter`]) at `t` from `stat`, `w`
/// from `weight` (or 1). Returns a buffer of `red.num_segments()` `vec2<f32>`.
#[allow(clippy::too_many_arguments)]
pub fn record_sums(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    x: &GpuTensor,
    dy: &GpuTensor,
    red: &Grouping,
    stat: StatIndex,
    saved: SavedCenter,
    weight: Option<Weight>,
) -> Result<wgpu::Buffer> {
    check_input(gpu, x, red)?;
    check_input(gpu, dy, red)?;
    let seg = red.segments();
    let s_count = seg.count as u64;
    let out = gpu.storage_buffer("norm backward sums", s_count * SUMS_BYTES)?;
    // Through a vec4 view, as the moments kernel reads, with one statistics segment per
    // reduction segment: runs of a multiple of 4, unweighted or (layer norm's rows)
    // weighted by γ at the position in the row, or four neighbouring segments a vec4
    // (channels-last, flag 64); or (layer norm's dγ, dβ) columns four at a time whose
    // statistics are per row (flag 32).
    let view = match (stat, weight) {
        (StatIndex::PerSegment { .. }, None) => match vec4_view(gpu, &seg) {
            Some((v, Vec4Parts::Elements)) => Some((v, 0)),
            Some((v, Vec4Parts::Segments)) => Some((v, 64)),
            None => None,
        },
        (StatIndex::PerSegment { .. }, Some(w)) if gamma_by_position(red, &w.param_map) => {
            vec4_elements(gpu, &seg).map(|v| (v, 0))
        }
        (StatIndex::Map(m), None) if stats_by_row(red, &m) => match vec4_view(gpu, &seg) {
            Some((v, Vec4Parts::Segments)) => Some((v, 32)),
            _ => None,
        },
        _ => None,
    };
    let vec4 = view.is_some();
    let view_flag = view.map_or(0, |(_, f)| f);
    let (seg, unit) = match view {
        Some((v, _)) => (v, 4),
        None => (seg, 1),
    };
    let plan = plan::plan_reduction(&seg, &unit_plan_limits(gpu, SUMS_BYTES, unit, vec4))?;
    if plan.dispatches.is_empty() {
        // Empty segments: zero sums.
        encoder.clear_buffer(&out, 0, None);
        return Ok(out);
    }
    // Per-lane partials in sums_vec4 only.
    let (parts_total, per_lane) = partial_slots(gpu, &plan, s_count, SUMS_BYTES, vec4);
    let soft = if vec4 && gpu.is_software() {
        4 | if per_lane { 8 } else { 0 } | (lane_group(gpu, plan.tile_width) << 16)
    } else {
        0
    };
    let partials = gpu.storage_buffer("norm backward partials", s_count * parts_total * SUMS_BYTES)?;
    let (stat_flag, stat_div, stat_map) = match stat {
        StatIndex::PerSegment { div } => (1, div.max(1), IndexMap { d1: 1, m1: 1, s1: 0, m2: 1, d2: 1, s2: 0 }),
        StatIndex::Map(m) => (0, 1, m),
    };
    // 16 bytes: also the vec4 γ binding of sums_vec4.
    let dummy = gpu.storage_buffer("backward unused", 16)?;
    let mean_lo = saved.mean_lo(gpu)?;
    let (gamma, param_map, weight_flag) = match weight {
        Some(w) => (w.gamma, w.param_map, 2),
        None => (&dummy, stat_map, 0),
    };
    let elem_map = element_map(&seg);
    let elem_step = map_step(&elem_map, 256 / plan.tile_width.max(1));
    for d in &plan.dispatches {
        let params = gpu.uniform(&SumsParams {
            seg: seg.into(),
            elem_map: elem_map.into(),
            elem_step,
            stat_map: stat_map.into(),
            param_map: param_map.into(),
            window_lo: d.window_lo as u32,
            seg_first: d.seg_first,
            seg_end: d.seg_end,
            tile_width: plan.tile_width,
            k_first: d.k_first,
            k_end: d.k_end,
            parts: d.parts,
            part_offset: d.part_offset,
            parts_total: parts_total as u32,
            tiles: d.tiles,
            flags: stat_flag | weight_flag | soft | view_flag,
            stat_div,
            comp_end: s_count as u32,
            _pad: 0,
        });
        let mut bindings = vec![
            (0, params.as_entire_binding()),
            (1, Gpu::binding(x.buffer(), d.window_lo * unit, d.window_len * unit)),
            (2, Gpu::binding(dy.buffer(), d.window_lo * unit, d.window_len * unit)),
            (3, saved.mean.as_entire_binding()),
            (4, saved.invstd.as_entire_binding()),
            (6, partials.as_entire_binding()),
            (7, mean_lo.as_entire_binding()),
        ];
        let texels = vec4.then(|| XDyTexels::stage(gpu, encoder, (x, dy), d.window_lo, d.window_len)).transpose()?;
        let pass1 = match &texels {
            Some(t) => {
                bindings.extend(t.bindings());
                // γ by position (weighted rows; else the unread dummy).
                bindings.push((9, gamma.as_entire_binding()));
                let variant =
                    [("SUMS_WEIGHTED", f64::from(weight_flag != 0)), ("SUMS_BY_ROW", f64::from(view_flag == 32))];
                t.pipeline_with(gpu, "sums_vec4", &variant)
            }
            None => {
                // γ at each element's parameter index.
                bindings.push((5, gamma.as_entire_binding()));
                gpu.pipeline(Shader::Backward, "sums_main")
            }
        };
        gpu.dispatch_numbered(encoder, &pass1, &bindings, d.tiles * d.parts)?;
    }
    record_merge(gpu, encoder, &partials, &out, s_count, parts_total)?;
    Ok(out)
}

/// Add each of `count` segments' `parts_total` partial sums into `out`.
fn record_merge(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    partials: &wgpu::Buffer,
    out: &wgpu::Buffer,
    count: u64,
    parts_total: u64,
) -> Result<()> {
    let params = gpu.uniform(&SumsMergeParams { count: count as u32, parts_total: parts_total as u32, _pad: [0; 2] });
    let pass2 = gpu.pipeline(Shader::Backward, "sums_merge_main");
    gpu.dispatch(
        encoder,
        &pass2,
        &[params.as_entire_binding(), partials.as_entire_binding(), out.as_entire_binding()],
        (count as u32).div_ceil(256),
    )
}

/// Rows of one block of [`record_column_sums`].
pub const GRID_ROWS: u64 = 256;

/// The longest run of additions into one accumulator of [`record_column_sums`] over
/// `rows` rows: a block's rows, then the blocks' partials.
pub fn column_sums_chain(rows: usize) -> usize {
    GRID_ROWS as usize + rows.div_ceil(GRID_ROWS as usize)
}

/// The WGSL `GridSumsParams` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct GridSumsParams {
    rows: u32,
    cols4: u32,
    parts: u32,
    rows_per: u32,
    tiles: u32,
    _pad: [u32; 3],
}

/// Layer norm's dγ/dβ sums over a `(rows, cols)` input: per column `Σdy` and `Σdy·x̂`
/// with each row's statistics from `saved`, as [`record_sums`] gives them for
/// `Columns { rows, cols }` with statistics `e / cols`, through the grid kernel
/// `colsums_grid` (blocks of [`GRID_ROWS`] rows, a partial per column and block). `None`
/// where it does not apply: `cols` not a multiple of 4, or the input beyond one binding.
pub fn record_column_sums(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    (x, dy): (&GpuTensor, &GpuTensor),
    (rows, cols): (usize, usize),
    saved: SavedCenter,
) -> Result<Option<wgpu::Buffer>> {
    let numel = (rows * cols) as u64;
    if !cols.is_multiple_of(4) || numel == 0 || numel > gpu.max_chunk_elements() || x.numel() as u64 != numel {
        return Ok(None);
    }
    let cols4 = (cols / 4) as u64;
    let parts = (rows as u64).div_ceil(GRID_ROWS);
    let tiles = cols4.div_ceil(4 * 256);
    let out = gpu.storage_buffer("layer norm column sums", cols as u64 * SUMS_BYTES)?;
    // One block: its partials are the sums.
    let partials = match parts {
        1 => out.clone(),
        _ => gpu.storage_buffer("layer norm column partials", cols as u64 * parts * SUMS_BYTES)?,
    };
    let params = gpu.uniform(&GridSumsParams {
        rows: rows as u32,
        cols4: cols4 as u32,
        parts: parts as u32,
        rows_per: GRID_ROWS as u32,
        tiles: tiles as u32,
        _pad: [0; 3],
    });
    let mean_lo = saved.mean_lo(gpu)?;
    let texels = XDyTexels::stage(gpu, encoder, (x, dy), 0, numel / 4)?;
    let mut bindings = vec![
        (0, params.as_entire_binding()),
        (1, Gpu::binding(x.buffer(), 0, numel)),
        (2, Gpu::binding(dy.buffer(), 0, numel)),
        (3, saved.mean.as_entire_binding()),
        (4, saved.invstd.as_entire_binding()),
        (6, partials.as_entire_binding()),
        (7, mean_lo.as_entire_binding()),
    ];
    bindings.extend(texels.bindings());
    gpu.dispatch_numbered(encoder, &texels.pipeline(gpu, "colsums_grid"), &bindings, (tiles * parts) as u32)?;
    if parts > 1 {
        record_merge(gpu, encoder, &partials, &out, cols as u64, parts)?;
    }
    Ok(Some(out))
}

/// Record the per-statistics-segment coefficients `(Σg/N, Σg·x̂/N)` (`vec2<f32>` each):
/// statistics segment `t` sums reduction segments `t·sub .. t·sub + sub`, each multiplied
/// by `γ[r % channels]` when `gamma` is given (sums that were not weighted).
#[allow(clippy::too_many_arguments)]
pub fn record_coeffs(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    sums: &wgpu::Buffer,
    count: usize,
    sub: usize,
    channels: usize,
    gamma: Option<&wgpu::Buffer>,
    n_per_segment: usize,
) -> Result<wgpu::Buffer> {
    let out = gpu.storage_buffer("norm backward coefficients", count as u64 * SUMS_BYTES)?;
    let dummy = gpu.storage_buffer("backward unused", 4)?;
    let params = gpu.uniform(&CoeffParams {
        count: count as u32,
        sub: sub as u32,
        channels: channels.max(1) as u32,
        flags: gamma.is_some() as u32,
        inv_n: (1.0 / n_per_segment.max(1) as f64) as f32,
        _pad: [0; 3],
    });
    let pipeline = gpu.pipeline(Shader::Backward, "coeffs_main");
    gpu.dispatch(
        encoder,
        &pipeline,
        &[
            params.as_entire_binding(),
            sums.as_entire_binding(),
            gamma.unwrap_or(&dummy).as_entire_binding(),
            out.as_entire_binding(),
        ],
        (count as u32).div_ceil(256),
    )?;
    Ok(out)
}

/// Record dγ and dβ per parameter: `dγ[p] = Σ_i sums[i·stride + p].y`,
/// `dβ[p] = Σ_i sums[i·stride + p].x`, `i < loops`. Returns `(dγ, dβ)`, `count` f32 each.
pub fn record_param_grads(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    sums: &wgpu::Buffer,
    count: usize,
    loops: usize,
    stride: usize,
) -> Result<(wgpu::Buffer, wgpu::Buffer)> {
    let dgamma = gpu.storage_buffer("grad_gamma", count as u64 * 4)?;
    let dbeta = gpu.storage_buffer("grad_beta", count as u64 * 4)?;
    let params =
        gpu.uniform(&ParamGradParams { count: count as u32, loops: loops as u32, stride: stride as u32, _pad: 0 });
    let pipeline = gpu.pipeline(Shader::Backward, "param_grads_main");
    gpu.dispatch(
        encoder,
        &pipeline,
        &[params.as_entire_binding(), sums.as_entire_binding(), dgamma.as_entire_binding(), dbeta.as_entire_binding()],
        (count as u32).div_ceil(256),
    )?;
    Ok((dgamma, dbeta))
}

/// The arguments of the elementwise backward pass.
pub struct DxArgs<'a> {
    /// The segments the pass walks: the reduction's (`Instances` for group norm, so
    /// that γ is constant along each), with statistics segment `s / stat_div` and
    /// γ index `s % channels`, or, with `gamma_per_element`, `k` (layer norm rows).
    pub walk: &'a Grouping,
    pub stat_div: u32,
    pub channels: u32,
    pub gamma_per_element: bool,
    pub saved: SavedCenter<'a>,
    pub gamma: Option<&'a wgpu::Buffer>,
    /// Train: the coefficients of [`record_coeffs`]; `None`: eval (`dx = invstd·γ·dy`).
    pub coeffs: Option<&'a wgpu::Buffer>,
}

/// Record `dx` from `x` and `dy` (same shape; `dx` a distinct buffer), segment by
/// segment with the reduction's chunk plan (each thread holds one segment's constants).
pub fn record_dx(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    x: &GpuTensor,
    dy: &GpuTensor,
    dx: &GpuTensor,
    args: &DxArgs,
) -> Result<()> {
    check_input(gpu, x, args.walk)?;
    check_input(gpu, dy, args.walk)?;
    check_input(gpu, dx, args.walk)?;
    if dx.buffer() == x.buffer() || dx.buffer() == dy.buffer() {
        return Err(Error::InvalidParameter("grad_input cannot be written into x or grad_output".into()));
    }
    // 16 bytes: also dx_vec4's vec4 γ binding.
    let dummy = gpu.storage_buffer("backward unused", 16)?;
    let mean_lo = args.saved.mean_lo(gpu)?;
    let flags = args.coeffs.is_some() as u32
        | (args.gamma.is_some() as u32) << 1
        | ((args.gamma.is_some() && args.gamma_per_element) as u32) << 2;
    let seg = args.walk.segments();
    // Through vec4 views: runs of a multiple of 4 (γ per segment, or by position in a
    // row), or four neighbouring segments a vec4 (channels-last, γ per segment: flag 32).
    let by_position = args.gamma.is_some() && args.gamma_per_element;
    let view = match vec4_view(gpu, &seg) {
        Some((v, Vec4Parts::Elements)) if !by_position || matches!(*args.walk, Grouping::Rows { .. }) => Some((v, 0)),
        Some((v, Vec4Parts::Segments)) if !by_position => Some((v, 32)),
        _ => None,
    };
    let vec4 = view.is_some();
    let view_flag = view.map_or(0, |(_, f)| f);
    let (seg, unit) = match view {
        Some((v, _)) => (v, 4),
        None => (seg, 1),
    };
    let plan = plan::plan_reduction(&seg, &unit_plan_limits(gpu, SUMS_BYTES, unit, false))?;
    let flags =
        flags | view_flag | if vec4 && gpu.is_software() { 8 | (lane_group(gpu, plan.tile_width) << 16) } else { 0 };
    let elem_map = element_map(&seg);
    let elem_step = map_step(&elem_map, 256 / plan.tile_width.max(1));
    for d in &plan.dispatches {
        let texels = vec4.then(|| XDyTexels::stage(gpu, encoder, (x, dy), d.window_lo, d.window_len)).transpose()?;
        let pipeline = match &texels {
            Some(t) => t.pipeline(gpu, "dx_vec4"),
            None => gpu.pipeline(Shader::Backward, "dx_main"),
        };
        let params = gpu.uniform(&DxParams {
            seg: seg.into(),
            elem_map: elem_map.into(),
            elem_step,
            window_lo: d.window_lo as u32,
            seg_first: d.seg_first,
            seg_end: d.seg_end,
            tile_width: plan.tile_width,
            k_first: d.k_first,
            k_end: d.k_end,
            parts: d.parts,
            tiles: d.tiles,
            flags,
            stat_div: args.stat_div.max(1),
            channels: args.channels.max(1),
            _pad: 0,
        });
        let mut bindings = vec![
            (0, params.as_entire_binding()),
            (1, Gpu::binding(x.buffer(), d.window_lo * unit, d.window_len * unit)),
            (2, Gpu::binding(dy.buffer(), d.window_lo * unit, d.window_len * unit)),
            (3, Gpu::binding(dx.buffer(), d.window_lo * unit, d.window_len * unit)),
            (4, args.saved.mean.as_entire_binding()),
            (5, args.saved.invstd.as_entire_binding()),
            (6, args.gamma.unwrap_or(&dummy).as_entire_binding()),
            (7, args.coeffs.unwrap_or(&dummy).as_entire_binding()),
            (8, mean_lo.as_entire_binding()),
        ];
        if let Some(t) = &texels {
            bindings.extend(t.bindings());
            // γ by position in the row (dx_vec4; unread without it).
            bindings.push((9, args.gamma.filter(|_| by_position).unwrap_or(&dummy).as_entire_binding()));
        }
        gpu.dispatch_numbered(encoder, &pipeline, &bindings, d.tiles * d.parts)?;
    }
    Ok(())
}

/// Record the NaN step of a norm layer's statistics: a segment holding a NaN gets NaN
/// mean and M2 (PyTorch propagates NaN; the moments kernel counts NaN as missing).
pub fn record_poison(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    moments: &wgpu::Buffer,
    count: usize,
) -> Result<()> {
    if moments.size() < count as u64 * MOMENTS_BYTES {
        return Err(Error::Shape(format!("moments buffer too small for {count} segments")));
    }
    let params = gpu.uniform(&CountParams { count: count as u32, n: 0, c: 0, _pad0: 0, momentum: 0.0, _pad: [0; 3] });
    let pipeline = gpu.pipeline(Shader::Backward, "poison_main");
    gpu.dispatch(
        encoder,
        &pipeline,
        &[params.as_entire_binding(), moments.as_entire_binding()],
        (count as u32).div_ceil(256),
    )
}

/// Record instance norm's running-stat update from per-(sample, channel) moments:
/// `running = (1 − f)·running + f·mean over samples` of the means and unbiased variances.
#[allow(clippy::too_many_arguments)]
pub fn record_instance_running(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    moments: &wgpu::Buffer,
    n: usize,
    c: usize,
    factor: f64,
    running_mean: &wgpu::Buffer,
    running_var: &wgpu::Buffer,
) -> Result<()> {
    let params = gpu.uniform(&CountParams {
        count: c as u32,
        n: n as u32,
        c: c as u32,
        _pad0: 0,
        momentum: factor as f32,
        _pad: [0; 3],
    });
    let pipeline = gpu.pipeline(Shader::Backward, "instance_running_main");
    gpu.dispatch(
        encoder,
        &pipeline,
        &[
            params.as_entire_binding(),
            moments.as_entire_binding(),
            running_mean.as_entire_binding(),
            running_var.as_entire_binding(),
        ],
        (c as u32).div_ceil(256),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walking any grouping's maps with cursors gives what dividing gives.
    #[test]
    fn cursors_agree_with_division() {
        let groupings = [
            Grouping::Columns { rows: 7, cols: 5 },
            Grouping::Rows { rows: 9, len: 13 },
            Grouping::Channels { n: 5, c: 3, spatial: 7, channels_last: false },
            Grouping::Channels { n: 5, c: 3, spatial: 7, channels_last: true },
            Grouping::Groups { n: 3, c: 6, spatial: 5, groups: 2, channels_last: false },
            Grouping::Groups { n: 3, c: 6, spatial: 5, groups: 3, channels_last: true },
            Grouping::Instances { n: 3, c: 4, spatial: 6, channels_last: false },
            Grouping::Instances { n: 3, c: 4, spatial: 6, channels_last: true },
        ];
        for g in groupings {
            let seg = g.segments();
            for (name, m) in [("segment", g.segment_map()), ("param", g.param_map()), ("element", element_map(&seg))] {
                for step in [1u32, 3, 64, 256] {
                    let st = map_step(&m, step);
                    assert_eq!(st.ok, 1, "{g:?} {name}");
                    for start in 0..step.min(9) {
                        // The kernel's cursor, in Rust.
                        let (mut r1, mut qm) = (start % m.d1, (start / m.d1) % m.m1);
                        let (mut u2, mut w2) = ((start % m.m2) / m.d2, (start % m.m2) % m.d2);
                        let mut e = start;
                        while (e as usize) < g.numel() {
                            assert_eq!(
                                (qm * m.s1 + u2 * m.s2) as usize,
                                m.apply(e as usize),
                                "{g:?} {name} step {step} e {e}"
                            );
                            r1 += st.b1;
                            let mut carry = 0;
                            if r1 >= m.d1 {
                                r1 -= m.d1;
                                carry = 1;
                            }
                            qm += st.am1 + carry;
                            if qm >= m.m1 {
                                qm -= m.m1;
                            }
                            w2 += st.bw;
                            u2 += st.bu;
                            if w2 >= m.d2 {
                                w2 -= m.d2;
                                u2 += 1;
                            }
                            if u2 >= st.um {
                                u2 -= st.um;
                            }
                            e += step;
                        }
                    }
                }
            }
        }
    }
}
