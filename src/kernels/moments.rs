//! Host side of `shaders/moments.wgsl`: per-segment count, NaN count, mean, M2, min, max.

use crate::error::{Error, Result};
use crate::gpu::{read_values, Gpu, GpuTensor, Shader, TexelSlot, SCALAR_TEXEL_BINDING, TEXEL_BINDING};
use crate::kernels::{lane_group, lane_walk_flags, partial_slots, plan, unit_plan_limits, vec4_view, SegmentsGpu};
use crate::segments::{Grouping, Segments, Vec4Parts};
use crate::stats::Moments;

/// The WGSL `Moments` struct: one segment's state in float32.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct MomentsGpu {
    pub count: u32,
    pub nan_count: u32,
    /// The mean is `shift + mean` (see shaders/common.wgsl).
    pub shift: f32,
    pub mean: f32,
    pub m2: f32,
    pub min: f32,
    pub max: f32,
    pub _pad: u32,
}

pub const MOMENTS_BYTES: u64 = std::mem::size_of::<MomentsGpu>() as u64;

impl From<MomentsGpu> for Moments {
    fn from(m: MomentsGpu) -> Self {
        Moments {
            count: m.count as u64,
            nan_count: m.nan_count as u64,
            mean: m.shift as f64 + m.mean as f64,
            m2: m.m2 as f64,
            min: m.min as f64,
            max: m.max as f64,
        }
    }
}

impl From<&Moments> for MomentsGpu {
    /// A float64 state as the kernels' float32 state; the mean's residual below
    /// float32 precision is kept in `mean` with `shift` holding the rounded mean.
    fn from(m: &Moments) -> Self {
        let shift = if m.mean.is_finite() { m.mean as f32 } else { 0.0 };
        MomentsGpu {
            count: m.count as u32,
            nan_count: m.nan_count as u32,
            shift,
            mean: (m.mean - shift as f64) as f32,
            m2: m.m2 as f32,
            min: m.min as f32,
            max: m.max as f32,
            _pad: 0,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct ReduceParams {
    seg: SegmentsGpu,
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
    comp_end: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct MergeParams {
    count: u32,
    parts_total: u32,
    seg_stride: u32,
    part_stride: u32,
}

/// Check that `input` holds the tensor that `grouping` describes.
pub(crate) fn check_input(gpu: &Gpu, input: &GpuTensor, grouping: &Grouping) -> Result<()> {
    gpu.check_owner(input.gpu_id(), "the input tensor")?;
    grouping.validate()?;
    if input.numel() != grouping.numel() {
        return Err(Error::Shape(format!(
            "tensor of shape {:?} ({} elements) does not match {grouping:?} ({} elements)",
            input.shape(),
            input.numel(),
            grouping.numel()
        )));
    }
    Ok(())
}

/// Record the two passes into `encoder`; returns the buffer of `num_segments` [`MomentsGpu`].
pub fn record_moments(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    grouping: &Grouping,
) -> Result<wgpu::Buffer> {
    let out = gpu.storage_buffer("moments", grouping.num_segments() as u64 * MOMENTS_BYTES)?;
    record_moments_into(gpu, encoder, input, grouping, &out, None)?;
    Ok(out)
}

/// [`record_moments`] into a caller's buffer of at least `num_segments` [`MomentsGpu`].
/// With `prescale` (one f32 power of two per segment, see [`prescale_for`]) each value is
/// multiplied by its segment's factor before the mean and M2 accumulate (min and max
/// stay raw); [`download_moments_prescaled`] undoes it in float64.
pub fn record_moments_into(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    grouping: &Grouping,
    out: &wgpu::Buffer,
    prescale: Option<&wgpu::Buffer>,
) -> Result<()> {
    check_input(gpu, input, grouping)?;
    let seg = grouping.segments();
    let s_count = seg.count as u64;
    if out.size() < s_count * MOMENTS_BYTES {
        return Err(Error::Shape(format!(
            "moments buffer of {} bytes is too small for {s_count} segments",
            out.size()
        )));
    }
    if let Grouping::Columns { rows, cols } = *grouping {
        if cols % 4 != 0 && rows >= QUAD_MIN_ROWS && input.buffer().usage().contains(wgpu::BufferUsages::COPY_SRC) {
            return record_moments_quads(gpu, encoder, input, (rows, cols), out, prescale);
        }
    }
    // Read through a vec4 view where the layout has one (a software adapter loads a vec4
    // for much less than four floats; a GPU makes 128-bit loads), else float by float.
    let (kseg, unit, entry, by_segment) = match vec4_view(gpu, &seg) {
        Some((v, parts)) => (v, 4, "partials_vec4", parts == Vec4Parts::Segments),
        None => (seg, 1, "partials_main", false),
    };
    // Between 128 and 4,096 columns on a software adapter, or more columns of at most
    // GRID_SHORT_ROWS rows: the grid (wider, longer ones take `partials_wide` below).
    if by_segment
        && gpu.is_software()
        && kseg.inner_div == 1
        && kseg.count >= GRID_MIN_VEC4
        && (kseg.count <= GRID_MAX_VEC4 || kseg.len <= GRID_SHORT_ROWS)
        && record_moments_grid(gpu, encoder, input, &kseg, s_count, out, prescale)?
    {
        return Ok(());
    }
    let mut limits = unit_plan_limits(gpu, MOMENTS_BYTES, unit, true);
    if by_segment && gpu.is_software() {
        // Four segments per load: fewer, longer workgroups write fewer partials (on
        // lavapipe, two per core measured faster than eight for columns).
        limits.target_workgroups = (limits.target_workgroups / 4).max(2);
    }
    let plan = plan::plan_reduction(&kseg, &limits)?;
    let (parts_total, per_lane) = partial_slots(gpu, &plan, s_count, MOMENTS_BYTES, true);
    let partials = gpu.storage_buffer("moments partials", s_count * parts_total * MOMENTS_BYTES)?;
    let group = if unit == 4 { lane_group(gpu, plan.tile_width) } else { 1 };
    // Wide columns on a software adapter: a thread per vec4 column, the workgroup
    // stepping through its rows together (see `partials_wide` in moments.wgsl).
    let entry = if by_segment && per_lane && gpu.is_software() && plan.tile_width >= 64 && kseg.inner_div == 1 {
        "partials_wide"
    } else {
        entry
    };
    let unused = gpu.storage_buffer("unused prescale", 4)?;
    for d in &plan.dispatches {
        // The loads go through the staged texels on a software adapter (four floats a
        // texel for the vec4 view, else one).
        let texels = match unit {
            4 => gpu.stage_texels(encoder, input.buffer(), d.window_lo * 16, d.window_len, TexelSlot::Kernel)?,
            _ => gpu.stage_scalar_texels(encoder, input.buffer(), d.window_lo * 4, d.window_len)?,
        };
        let pass1 = gpu.pipeline_with(Shader::Moments, entry, &[texels.constant()]);
        let params = gpu.uniform(&ReduceParams {
            seg: kseg.into(),
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
            // Bits: 1 prescale, 2 contiguous blocks per lane and 8 per-lane partials (software
            // adapters), 4 the vec4 components are segments (see moments.wgsl).
            flags: prescale.is_some() as u32
                | lane_walk_flags(gpu, group)
                | if by_segment { 4 } else { 0 }
                | if per_lane { 8 } else { 0 },
            comp_end: seg.count,
        });
        let mut bindings = vec![
            (0, params.as_entire_binding()),
            (1, Gpu::binding(input.buffer(), d.window_lo * unit, d.window_len * unit)),
            (2, partials.as_entire_binding()),
            (3, prescale.unwrap_or(&unused).as_entire_binding()),
        ];
        bindings.push((if unit == 4 { TEXEL_BINDING } else { SCALAR_TEXEL_BINDING }, texels.binding()));
        gpu.dispatch_numbered(encoder, &pass1, &bindings, d.tiles * d.parts)?;
    }
    record_merge(gpu, encoder, &partials, out, s_count, parts_total, (parts_total, 1))
}

/// Merge each of `count` segments' `parts` partial states into `out`: segment s's part
/// i at `s · seg_stride + i · part_stride` of `partials` (`merge_main`).
fn record_merge(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    partials: &wgpu::Buffer,
    out: &wgpu::Buffer,
    count: u64,
    parts: u64,
    (seg_stride, part_stride): (u64, u64),
) -> Result<()> {
    let params = gpu.uniform(&MergeParams {
        count: count as u32,
        parts_total: parts as u32,
        seg_stride: seg_stride as u32,
        part_stride: part_stride as u32,
    });
    gpu.dispatch(
        encoder,
        &gpu.pipeline(Shader::Moments, "merge_main"),
        &[params.as_entire_binding(), partials.as_entire_binding(), out.as_entire_binding()],
        (count as u32).div_ceil(256),
    )
}

/// Vec4 columns of the grid path of the moments (128 to 4,096 matrix columns). In
/// alternating runs on lavapipe (1e7 elements, a noisy machine) it took 13-23 ms from
/// 128 to 2,000 columns, where the planned passes took 19-34 ms (128 columns, rows 512
/// bytes apart, through `partials_vec4`; wider through `partials_wide`); at 5,000
/// columns (two tiles) it was slower, 20-23 against 15-20 ms.
const GRID_MIN_VEC4: u32 = 32;
const GRID_MAX_VEC4: u32 = 1024;

/// Columns of at most this many rows take the grid however many there are (lavapipe,
/// dispatch profiler, alternating runs: 100 × 100000 14.1 → 8.3 ms, 16 × 600000 27.8
/// → 18–20 ms, 1000 × 10000 ~12 → ~10 ms, 4 × 2500000 ~100 → 38 ms; 2000 × 5000 within
/// the noise, so it stays with `partials_wide`). Up to 64 rows the grid has one part,
/// whose states are final: no merge pass.
const GRID_SHORT_ROWS: u32 = 1024;

/// Wide row-major matrices on a software adapter (`partials_grid`): tiles of 4·WG vec4
/// columns, parts of the rows, four neighbouring vec4 columns per thread; then the
/// merge. `kseg` is the vec4 view (four columns a vec4). `false` (nothing recorded)
/// where the input spans more than one binding: the planned passes take it.
fn record_moments_grid(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    kseg: &Segments,
    s_count: u64,
    out: &wgpu::Buffer,
    prescale: Option<&wgpu::Buffer>,
) -> Result<bool> {
    let numel = input.numel() as u64;
    if numel > gpu.max_chunk_elements() {
        return Ok(false);
    }
    let (cols4, rows) = (kseg.count as u64, kseg.len as u64);
    let tiles = cols4.div_ceil(4 * 256);
    let parts = (gpu.reduce_workgroups() as u64).div_ceil(tiles).min(rows.div_ceil(64)).max(1);
    // One part (short columns): its states are the final ones, written to `out` (no
    // merge pass, which for 600,000 columns took 9 ms only to copy them).
    let single = parts == 1;
    let own;
    let partials = if single {
        out
    } else {
        own = gpu.storage_buffer("moments partials", s_count * parts * MOMENTS_BYTES)?;
        &own
    };
    let texels = gpu.stage_texels(encoder, input.buffer(), 0, numel / 4, TexelSlot::Kernel)?;
    let pass1 = gpu.pipeline_with(Shader::Moments, "partials_grid", &[texels.constant()]);
    let unused = gpu.storage_buffer("unused prescale", 4)?;
    let params = gpu.uniform(&ReduceParams {
        seg: (*kseg).into(),
        window_lo: 0,
        seg_first: 0,
        seg_end: cols4 as u32,
        tile_width: 4 * 256,
        k_first: 0,
        k_end: rows as u32,
        parts: parts as u32,
        part_offset: 0,
        parts_total: parts as u32,
        tiles: tiles as u32,
        flags: prescale.is_some() as u32 | 4 | if single { 32 } else { 0 },
        comp_end: s_count as u32,
    });
    let bindings = [
        (0, params.as_entire_binding()),
        (1, Gpu::binding(input.buffer(), 0, numel)),
        (2, partials.as_entire_binding()),
        (3, prescale.unwrap_or(&unused).as_entire_binding()),
        (TEXEL_BINDING, texels.binding()),
    ];
    gpu.dispatch_numbered(encoder, &pass1, &bindings, (tiles * parts) as u32)?;
    if !single {
        record_merge(gpu, encoder, partials, out, s_count, parts, (parts, 1))?;
    }
    Ok(true)
}

/// Fewest rows for [`record_moments_quads`].
const QUAD_MIN_ROWS: usize = 16;

/// Columns of a `(rows, cols)` matrix with `cols` no multiple of 4 (no vec4 view): its
/// first `rows / 4 · 4` rows read as a `(rows / 4, 4·cols)` matrix, which has one (four
/// rows a row: matrix column `c` is its columns `c`, `cols + c`, `2·cols + c` and
/// `3·cols + c`), the last `rows % 4` rows copied out and reduced apart, and the up to
/// five states of each column merged (`merge_main`, strided). On lavapipe the moments of 1e7
/// elements in 10 and 13 columns took 29 and 17 ms float by float, 13.6 and 12 ms so.
fn record_moments_quads(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    (rows, cols): (usize, usize),
    out: &wgpu::Buffer,
    prescale: Option<&wgpu::Buffer>,
) -> Result<()> {
    let (quads, tail_rows) = (rows / 4, rows % 4);
    let c = cols as u64;
    let main = input.prefix(&[quads, 4 * cols])?;
    // The states of the quads' 4·cols columns, then (part 4) those of the last rows:
    // column c's parts lie cols apart.
    let parts = if tail_rows > 0 { 5 } else { 4 };
    let states = gpu.storage_buffer("moments of row quads", parts * c * MOMENTS_BYTES)?;
    // The prescale factors once per row of the quad.
    let prescale4 = match prescale {
        Some(p) => {
            let p4 = gpu.storage_buffer("quad prescale", 4 * c * 4)?;
            for j in 0..4 {
                encoder.copy_buffer_to_buffer(p, 0, &p4, j * c * 4, c * 4);
            }
            Some(p4)
        }
        None => None,
    };
    let quad_grouping = Grouping::Columns { rows: quads, cols: 4 * cols };
    record_moments_into(gpu, encoder, &main, &quad_grouping, &states, prescale4.as_ref())?;
    if tail_rows > 0 {
        let tail = GpuTensor::empty(gpu, &[tail_rows, cols])?;
        let offset = (quads * 4 * cols * 4) as u64;
        encoder.copy_buffer_to_buffer(input.buffer(), offset, tail.buffer(), 0, (tail_rows * cols * 4) as u64);
        let tail_out = gpu.storage_buffer("moments of the last rows", c * MOMENTS_BYTES)?;
        record_moments_into(gpu, encoder, &tail, &Grouping::Columns { rows: tail_rows, cols }, &tail_out, prescale)?;
        encoder.copy_buffer_to_buffer(&tail_out, 0, &states, 4 * c * MOMENTS_BYTES, c * MOMENTS_BYTES);
    }
    record_merge(gpu, encoder, &states, out, c, parts, (1, c))
}

/// Read a buffer of [`MomentsGpu`] back as float64 states.
pub fn download_moments(gpu: &Gpu, buffer: &wgpu::Buffer, count: usize) -> Result<Vec<Moments>> {
    let raw: Vec<MomentsGpu> = read_values(gpu, buffer, 0, count as u64 * MOMENTS_BYTES)?;
    Ok(raw.into_iter().map(Moments::from).collect())
}

/// Per-segment moments of a GPU tensor, read back.
pub fn moments(gpu: &Gpu, input: &GpuTensor, grouping: &Grouping) -> Result<Vec<Moments>> {
    let mut encoder = gpu.encoder();
    let buf = record_moments(gpu, &mut encoder, input, grouping)?;
    gpu.submit_and_wait(encoder)?;
    download_moments(gpu, &buf, grouping.num_segments())
}

/// The power of two that keeps a segment's float32 accumulation clear of overflow and
/// underflow: values up to `max_abs` are brought to about 2^16 when `max_abs` exceeds
/// 2^40 (float32 squares and differences overflow near 1.8e19 and 1.7e38) or lies
/// below 2^-20 (squared deviations of values near 1e-20 fall under float32's smallest
/// normal, 1.2e-38, and then to zero: a spread of 1e-25 read as a constant column),
/// else 1. Powers of two scale exactly; the factor is at most 2^100.
pub fn prescale_for(max_abs: f64) -> f32 {
    let huge = max_abs > (1u64 << 40) as f64;
    let tiny = max_abs > 0.0 && max_abs < 2f64.powi(-20);
    if max_abs.is_finite() && (huge || tiny) {
        2f32.powi((16 - max_abs.log2().ceil() as i32).min(100))
    } else {
        1.0
    }
}

/// Per-segment moments with a prescale factor per segment (see [`prescale_for`]).
pub fn moments_prescaled(gpu: &Gpu, input: &GpuTensor, grouping: &Grouping, prescale: &[f32]) -> Result<Vec<Moments>> {
    if prescale.iter().all(|&p| p == 1.0) {
        return moments(gpu, input, grouping);
    }
    if prescale.len() != grouping.num_segments() {
        return Err(Error::Shape(format!(
            "{} prescale factors for {} segments",
            prescale.len(),
            grouping.num_segments()
        )));
    }
    let factors = GpuTensor::from_slice(gpu, prescale, &[prescale.len()])?;
    let out = gpu.storage_buffer("moments", grouping.num_segments() as u64 * MOMENTS_BYTES)?;
    let mut encoder = gpu.encoder();
    record_moments_into(gpu, &mut encoder, input, grouping, &out, Some(factors.buffer()))?;
    gpu.submit_and_wait(encoder)?;
    download_moments_prescaled(gpu, &out, prescale)
}

/// Read back states computed with prescale factors, undoing them in float64.
pub fn download_moments_prescaled(gpu: &Gpu, buffer: &wgpu::Buffer, prescale: &[f32]) -> Result<Vec<Moments>> {
    let raw = download_moments(gpu, buffer, prescale.len())?;
    Ok(raw
        .into_iter()
        .zip(prescale)
        .map(|(m, &p)| {
            let p = p as f64;
            Moments { mean: m.mean / p, m2: m.m2 / (p * p), ..m }
        })
        .collect())
}
