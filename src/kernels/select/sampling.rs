//! The sample-and-bracket path for long segments (`select_bracket.wgsl`): a stratified
//! sample and its quantiles give each q a key bracket; one counting pass over the input
//! counts the keys below and at each bracket's ends and keeps those inside as candidate
//! lists, which the radix passes then read instead of the input.

use std::sync::Arc;

use super::radix::{shape, Ctx};
use super::{per_item, plan_limits, record_select, storage_with, Purpose, SelectParams, WG};
use crate::error::Result;
use crate::gpu::{Gpu, GpuTensor, Shader, TexelSlot, TexelSource, SCALAR_TEXEL_BINDING, TEXEL_BINDING};
use crate::kernels::moments::MOMENTS_BYTES;
use crate::kernels::{lane_group, lane_walk_flags, plan, unit_plan_limits, vec4_view};
use crate::segments::{Grouping, Segments, Vec4Parts};

/// The fast path's limit on unique q per call (brackets per segment, `MAXB` in
/// select_bracket.wgsl).
pub(super) const MAX_BRACKETS: usize = 16;

/// Segments of one counting workgroup (its counts: 2048 / (4 · MAX_BRACKETS) rows).
pub(super) const COUNT_SEGMENTS: u32 = 2048 / (4 * MAX_BRACKETS as u32);

/// Segments of one `count_vec4` workgroup (its rows hold four brackets' counts: `VCOUNT`
/// in select_bracket.wgsl), so that wide layouts (100 columns) count through the vec4 view.
pub(super) const COUNT_VEC4_SEGMENTS: u32 = 2048 / (4 * 4);

/// Shortest segment for the fast path (its sample, at most len / 8, has at least 1024
/// elements).
pub(super) const SAMPLE_MIN_LEN: u64 = 1 << 13;

/// Loop rounds a lane group of a counting pass takes in a row (`CHUNK` in select_bracket.wgsl).
pub(super) const COUNT_CHUNK: u64 = 64;

/// Bytes of one segment's brackets (`BRK` vec4 in select_bracket.wgsl).
pub(super) const BRK_BYTES: u64 = (1 + 3 * MAX_BRACKETS as u64 / 4) * 16;

/// The sample-and-bracket fast path's sizes for one call, when it applies.
pub(super) struct SamplePlan {
    /// Sample elements per segment.
    pub(super) m: u32,
    /// Per unique q: the sample quantiles q − δ and q + δ that bracket it.
    pub(super) bq: Vec<f64>,
    /// 1 where a bracket q is 0 (its lower key is "everything") or 1 (upper).
    pub(super) edges: Vec<u32>,
    /// Candidate capacity per segment.
    pub(super) cap: u32,
    /// How often a bracket end's key must appear in the sample for the call to count
    /// ties (the four-count pass; see `bracket_main`).
    pub(super) ties_min: u32,
}

/// Long segments and a few q: the sample-and-bracket plan, and the vec4 view its
/// counting pass reads through where the layout has one.
pub(super) fn sampling_plan(
    gpu: &Gpu,
    seg: &Segments,
    numel: u64,
    uq: &[f64],
) -> Option<(SamplePlan, Option<CountView>)> {
    let view = count_view(gpu, seg, uq.len());
    let writers = match &view {
        Some(v) => (v.writers, if v.by_segment { 1 } else { 4 }, v.view.len as u64),
        None => (count_main_writers(gpu, seg)?, 4, (seg.len as u64).div_ceil(4)),
    };
    let sp = sample_plan(gpu, seg, numel, uq, writers)?;
    Some((sp, view))
}

/// Threads per segment of `count_main` (each its own candidate slots), the most of any
/// dispatch; `None` where a segment is split between dispatches (their writers would
/// share slots).
pub(super) fn count_main_writers(gpu: &Gpu, seg: &Segments) -> Option<u64> {
    let plan = plan::plan_reduction(seg, &plan_limits(gpu)).ok()?;
    if !plan.whole_segments(seg.len) {
        return None;
    }
    let mut writers = 1;
    for d in &plan.dispatches {
        let (tile, _, parts) = count_main_shape(gpu, seg, d);
        writers = writers.max(parts * (WG / tile) as u64);
    }
    Some(writers)
}

/// The workgroup shape of `count_main`'s dispatch `d` (its candidate writers follow
/// from it).
pub(super) fn count_main_shape(gpu: &Gpu, seg: &Segments, d: &plan::ReduceDispatch) -> (u32, u64, u64) {
    let segs = (d.seg_end - d.seg_first) as u64;
    shape(gpu.reduce_workgroups(), seg, COUNT_SEGMENTS, segs, (d.k_end - d.k_first) as u64)
}

/// Long segments and a few q: sample, bracket, one counting pass, candidates only.
/// `writers`: how many threads of the counting pass share a segment's candidate list,
/// each with slots of its own, how many of a segment's values one of their loop rounds
/// reads, and how many rounds a segment takes.
pub(super) fn sample_plan(
    gpu: &Gpu,
    seg: &Segments,
    numel: u64,
    uq: &[f64],
    (writers, per_round, rounds): (u64, u64, u64),
) -> Option<SamplePlan> {
    let len = seg.len as u64;
    let s_count = seg.count as u64;
    if uq.len() > MAX_BRACKETS || len < SAMPLE_MIN_LEN || numel > gpu.max_chunk_elements() || s_count > 4096 {
        return None;
    }
    // The sample's cost grows with m, the candidates' with their brackets' width
    // Σ 8·sqrt(q(1 − q)/m): balance them (measured with the quartiles, whose width sum
    // is 10.9, at m = (k·len)^(2/3); more or wider brackets want a larger sample).
    let spread: f64 = uq.iter().map(|&q| 8.0 * (q * (1.0 - q)).sqrt()).sum::<f64>().max(1.0) / 10.9;
    // k: a sample value costs a cache line of its own unless neighbouring segments
    // (columns) share it (`sample_main` draws the same row for all). Measured on
    // lavapipe, quartiles, alternating runs: 1e7 × 1 best at k ≈ 1–2 (21.5 ms against
    // 23.4 at k = 6); 625000 × 16 at k = 3 (22.5 ms against 24.1 at 6 and 23.2 at 2;
    // 1e6 × 10 the same at 3 and 6, 1e5 × 100 40.8 against 45.9 ms).
    let k = if seg.segments_interleaved() && seg.count >= 4 { 3.0 } else { 1.5 };
    // A multiple of four: the sample's radix passes then read it through a vec4 view.
    let m = ((k * spread * len as f64).powf(2.0 / 3.0) as u64).clamp(4096, 1 << 18).min(len / 8) & !3;
    let mf = m as f64;
    let mut bq = Vec::with_capacity(2 * uq.len());
    let mut edges = Vec::with_capacity(2 * uq.len());
    let mut width = 0.0;
    for &q in uq {
        // Four standard deviations of a sample quantile, plus a few sample ranks: a
        // miss (rare) only costs the radix passes over the whole segment.
        let delta = 4.0 * (q * (1.0 - q) / mf).sqrt() + 4.0 / mf;
        let lo = if q - delta <= 1.0 / mf { 0.0 } else { q - delta };
        // The sample's order statistic at the floor of hi's rank: a rank more.
        let hi = if q + delta + 1.0 / mf >= 1.0 - 1.0 / mf { 1.0 } else { q + delta + 1.0 / mf };
        width += hi - lo;
        bq.extend([lo, hi]);
        edges.extend([u32::from(lo == 0.0), u32::from(hi == 1.0)]);
    }
    // Each writer's share of the candidates (a quarter more than the brackets' expected
    // share: their sample ends vary), five standard deviations more, and two chunks of
    // its rounds (values that lie together, as in sorted input, come a chunk at a
    // time), times the writers.
    let share = 1.25 * width * len as f64 / writers as f64;
    let slots = (share + 5.0 * share.sqrt()).ceil() as u64 + 2 * COUNT_CHUNK * per_round;
    // No more than a writer's values (its chunks), which short segments reach, and a
    // last slot that stays free (see `write_first` in select_bracket.wgsl).
    let slots = slots.min(rounds.div_ceil(writers * COUNT_CHUNK) * COUNT_CHUNK * per_round) + 1;
    let cap = writers * gpu.candidate_slots().map_or(slots, |n| u64::from(n.max(1)));
    let binding = gpu.limits().max_storage_buffer_binding_size.min(gpu.limits().max_buffer_size);
    if s_count * cap * 4 > binding.min(gpu.max_chunk_elements() * 4) || s_count * m * 4 > binding {
        return None;
    }
    // An end that c sample values share stands for ~c·len/m input values, all of them
    // candidates of the two-count pass, which the radix passes over the candidates then
    // read too. Up to a 32nd of the expected candidates an end (six ends of three
    // brackets: a fifth more), or 4096 values, the two-count pass stays (~10 % faster
    // than the four-count one); beyond, the call counts ties.
    let allowed = (width * len as f64 / 32.0).max(4096.0);
    let ties_min = ((allowed * mf / len as f64) as u32).max(2);
    Some(SamplePlan { m: m as u32, bq, edges, cap: cap as u32, ties_min })
}

/// The counting pass's vec4 view, its plan and whether its components are segments:
/// when the layout has a vec4 view, there are at most 4 brackets per segment, and a
/// workgroup covers at most `COUNT_VEC4_SEGMENTS` segments (the rows of its counts,
/// `sh_bc`).
pub(super) fn count_view(gpu: &Gpu, seg: &Segments, unique_q: usize) -> Option<CountView> {
    if unique_q > 4 {
        return None;
    }
    let (view, parts) = vec4_view(gpu, seg)?;
    let by_segment = parts == Vec4Parts::Segments;
    let mut limits = unit_plan_limits(gpu, 4, 4, true);
    // At most COUNT_VEC4_SEGMENTS segments a workgroup (its rows of counts): wide
    // matrices take narrower tiles rather than the scalar count_main.
    limits.max_tile = COUNT_VEC4_SEGMENTS / if by_segment { 4 } else { 1 };
    if by_segment && gpu.is_software() {
        limits.target_workgroups = (limits.target_workgroups / 4).max(2);
    } else if gpu.is_software() {
        // Half the reduce workgroups (~20 µs each there): 1e7 × 1 quartiles, 16 → 8,
        // the counting pass 10.95 → 10.68 ms at best (4: 11.1), alternating runs.
        limits.target_workgroups = (limits.target_workgroups / 2).max(2);
    }
    let plan = plan::plan_reduction(&view, &limits).ok()?;
    let segments_per_workgroup = plan.tile_width * if by_segment { 4 } else { 1 };
    let writers = plan.parts_total as u64 * (WG / plan.tile_width) as u64;
    (segments_per_workgroup <= COUNT_VEC4_SEGMENTS).then_some(CountView { view, by_segment, plan, writers })
}

/// The counting pass through a vec4 view: the view, whether its components are four
/// segments, its plan (in vec4 units), and its threads per segment (the candidate
/// list's writers).
pub(super) struct CountView {
    pub(super) view: Segments,
    pub(super) by_segment: bool,
    pub(super) plan: plan::ReducePlan,
    pub(super) writers: u64,
}

/// How the sampling path counts: through a vec4 view (else `count_main`), and where it
/// leaves the non-NaN counts (when it must produce them; both passes count them).
pub(super) struct Counting<'a> {
    pub(super) view: Option<&'a CountView>,
    pub(super) counts: Option<&'a wgpu::Buffer>,
}

/// The fast path's front half: sample, sample quantiles, brackets, the counting pass,
/// `init_main` (`record_init`, after the counts exist) and the resolution of every slot.
/// Returns the candidate lists (`cap` dense keys per segment), their lengths, the
/// brackets and the counting grids (`count_args`).
#[allow(clippy::too_many_arguments)]
pub(super) fn record_brackets(
    ctx: &Ctx,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    plan: &plan::ReducePlan,
    qp: &SelectParams,
    sp: &SamplePlan,
    counting: &Counting,
    record_init: &dyn Fn(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<(wgpu::Buffer, wgpu::Buffer, wgpu::Buffer, wgpu::Buffer)> {
    let gpu = ctx.gpu;
    let seg = ctx.seg;
    let s_count = seg.count as u64;
    let m = sp.m as u64;

    // The input's texels, staged once for the sample and the counting pass where the
    // counting pass reads the whole input in one dispatch through its vec4 view.
    let whole_view = counting.view.and_then(|cv| match cv.plan.dispatches.as_slice() {
        [d] if d.window_lo == 0 && 4 * d.window_len == input.numel() as u64 => Some(d.window_len),
        _ => None,
    });
    let texels = match whole_view {
        Some(len) => gpu.stage_texels(encoder, input.buffer(), 0, len, TexelSlot::HeldAcross)?,
        None => gpu.unstaged_texels(),
    };

    // Sample: one element per stratum of len / m elements, and its non-NaN counts.
    let sample = Arc::new(gpu.storage_buffer("quantile sample", s_count * m * 4)?);
    let sample_valid =
        storage_with(gpu, "quantile sample counts", bytemuck::cast_slice(&vec![sp.m; seg.count as usize]))?;
    let params = gpu.uniform(&SelectParams {
        seg_first: 0,
        seg_end: s_count as u32,
        sample_m: sp.m,
        seed: 0x5eed_1234,
        sample_frac: (((seg.len as u64 % m) << 32) / m) as u32,
        ..*qp
    });
    // A software adapter pays ~20 µs a workgroup (1e7 × 1: 64 workgroups 1.65 ms, 4
    // 1.31, 2 no better; 625000 × 16: 1.36 → 1.23 ms, alternating runs); a GPU wants its
    // latency of random reads hidden by many.
    let sample_workgroups =
        if gpu.is_software() { (gpu.reduce_workgroups() / 4).max(2) } else { 4 * gpu.reduce_workgroups() };
    gpu.dispatch_numbered(
        encoder,
        &gpu.pipeline_with(
            Shader::Select,
            "sample_main",
            &[texels.constant(), ("SAMPLE_ONE_SEGMENT", f64::from(u8::from(s_count == 1)))],
        ),
        &[
            (0, params.as_entire_binding()),
            (1, Gpu::binding(input.buffer(), 0, input.numel() as u64)),
            (2, sample.as_entire_binding()),
            (3, sample_valid.as_entire_binding()),
            (TEXEL_BINDING, texels.binding()),
        ],
        per_item(s_count * m)?.min(sample_workgroups),
    )?;
    let sample_t = GpuTensor::from_buffer(sample, &[(s_count * m) as usize])?;
    let sample_g = Grouping::Rows { rows: s_count as usize, len: m as usize };
    let sample_m = gpu.storage_buffer("quantile sample moments", s_count * MOMENTS_BYTES)?;
    record_valid_moments(gpu, encoder, qp, &sample_valid, &sample_m, s_count)?;
    let sample_q = record_select(gpu, encoder, &sample_t, &sample_g, Some(&sample_m), &sp.bq, Purpose::SampleBrackets)?;

    // Brackets, and which counting pass runs (`count_args`).
    let edges = storage_with(gpu, "quantile bracket edges", bytemuck::cast_slice(&sp.edges))?;
    let brk = gpu.storage_buffer("quantile brackets", s_count * BRK_BYTES)?;
    let grids = match counting.view {
        Some(cv) => count_vec4_grids(&cv.plan),
        None => count_main_grids(gpu, &seg, plan),
    };
    let args = count_args(gpu, &grids)?;
    let ties = match gpu.count_ties() {
        None => 0,
        Some(true) => 1,
        Some(false) => 2,
    };
    let params =
        gpu.uniform(&SelectParams { seg_first: 0, seg_end: s_count as u32, ties, ties_min: sp.ties_min, ..*qp });
    gpu.dispatch(
        encoder,
        &gpu.pipeline(Shader::Select, "bracket_main"),
        &[
            params.as_entire_binding(),
            sample_q.order_stats.as_entire_binding(),
            edges.as_entire_binding(),
            brk.as_entire_binding(),
            args.as_entire_binding(),
        ],
        per_item(s_count)?,
    )?;

    // One pass over the input: bracket counts and candidates.
    let bcount = gpu.storage_buffer("quantile bracket counts", s_count * 4 * MAX_BRACKETS as u64 * 4)?;
    let ccount = gpu.storage_buffer("quantile candidate counts", s_count * 4)?;
    let cand = gpu.storage_buffer("quantile candidates", s_count * sp.cap as u64 * 4)?;
    encoder.clear_buffer(&bcount, 0, None);
    encoder.clear_buffer(&ccount, 0, None);
    encoder.clear_buffer(&cand, 0, None); // key 0: a free slot
    let valid = gpu.storage_buffer("quantile valid counts", s_count * 4)?;
    encoder.clear_buffer(&valid, 0, None);
    let out = CountOutputs {
        brk: &brk,
        bcount: &bcount,
        ccount: &ccount,
        cand: &cand,
        valid: &valid,
        args: &args,
        grids: &grids,
    };
    if let Some(cv) = counting.view {
        let staged = texels.staged.then_some(&texels);
        record_count_vec4(ctx, encoder, input, qp, sp, (cv, staged), &out)?;
    } else {
        record_count(ctx, encoder, input, plan, qp, sp, &out)?;
    }
    if let Some(counts) = counting.counts {
        record_valid_moments(gpu, encoder, qp, &valid, counts, s_count)?;
    }
    record_init(encoder)?;

    // Resolve every slot from the counts, or send its segment to the fallback.
    let params = gpu.uniform(&SelectParams { seg_first: 0, seg_end: s_count as u32, cap: sp.cap, ..*qp });
    gpu.dispatch(
        encoder,
        &gpu.pipeline(Shader::Select, "resolve_main"),
        &[
            params.as_entire_binding(),
            brk.as_entire_binding(),
            bcount.as_entire_binding(),
            ccount.as_entire_binding(),
            ctx.slots.as_entire_binding(),
            ctx.hdr.as_entire_binding(),
            ctx.gprefix.as_entire_binding(),
        ],
        per_item(s_count)?,
    )?;
    Ok((cand, ccount, brk, args))
}

/// What the counting passes write (brackets in, counts and candidates out) and where
/// they read their grids (`count_args`; `grids`: each dispatch's workgroups).
pub(super) struct CountOutputs<'a> {
    pub(super) brk: &'a wgpu::Buffer,
    pub(super) bcount: &'a wgpu::Buffer,
    pub(super) ccount: &'a wgpu::Buffer,
    pub(super) cand: &'a wgpu::Buffer,
    pub(super) valid: &'a wgpu::Buffer,
    pub(super) args: &'a wgpu::Buffer,
    pub(super) grids: &'a [u32],
}

/// Workgroups of each `count_vec4` dispatch of `plan` (0: none).
pub(super) fn count_vec4_grids(plan: &plan::ReducePlan) -> Vec<u32> {
    plan.dispatches.iter().map(|d| if d.k_end <= d.k_first { 0 } else { d.tiles * d.parts }).collect()
}

/// Workgroups of each `count_main` dispatch of `plan` (0: none).
pub(super) fn count_main_grids(gpu: &Gpu, seg: &Segments, plan: &plan::ReducePlan) -> Vec<u32> {
    plan.dispatches
        .iter()
        .map(|d| {
            let (_, tiles, parts) = count_main_shape(gpu, seg, d);
            if d.k_end <= d.k_first {
                0
            } else {
                (tiles * parts) as u32
            }
        })
        .collect()
}

/// The counting dispatches' indirect arguments (eight words each, see `b_args` in
/// select_bracket.wgsl): the two-count pass's grid, the tie-counting pass's grid with x = 0,
/// and that x, which bracket_main moves over when the sample shows ties.
pub(super) fn count_args(gpu: &Gpu, grids: &[u32]) -> Result<wgpu::Buffer> {
    let mut words = Vec::with_capacity(8 * grids.len().max(1));
    for &w in grids {
        let (x, y) = if w == 0 { (0, 0) } else { gpu.grid(w)? };
        words.extend([x, y, 1, 0, y, 1, x, 0]);
    }
    if words.is_empty() {
        words.resize(8, 0);
    }
    Ok(gpu.indirect_buffer("quantile counting grids", &words))
}

/// One counting dispatch `i` as its two passes, each reading its grid from `out.args`
/// (one of them runs; see `count_args`): `pipeline(ties)` is the pass with COUNT_TIES.
/// Bindings: the params, the input window and the texels' binding, then `out`'s.
pub(super) fn dispatch_counting(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    pipeline: &dyn Fn(bool) -> Arc<wgpu::ComputePipeline>,
    [params, input, texels]: [(u32, wgpu::BindingResource<'_>); 3],
    out: &CountOutputs,
    i: usize,
) {
    let bindings = [
        params,
        input,
        (2, out.brk.as_entire_binding()),
        (3, out.bcount.as_entire_binding()),
        (4, out.ccount.as_entire_binding()),
        (5, out.cand.as_entire_binding()),
        (6, out.valid.as_entire_binding()),
        texels,
    ];
    for (ties, offset) in [(false, 0), (true, 12)] {
        let at = (out.args, 32 * i as u64 + offset);
        gpu.dispatch_indirect_numbered(encoder, &pipeline(ties), &bindings, at, out.grids[i]);
    }
}

/// Moments states whose counts are `valid` (u32 per segment), for `init_main`.
pub(super) fn record_valid_moments(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    qp: &SelectParams,
    valid: &wgpu::Buffer,
    moments: &wgpu::Buffer,
    s_count: u64,
) -> Result<()> {
    let params = gpu.uniform(&SelectParams { seg_first: 0, seg_end: s_count as u32, ..*qp });
    gpu.dispatch(
        encoder,
        &gpu.pipeline(Shader::Select, "valid_main"),
        &[params.as_entire_binding(), valid.as_entire_binding(), moments.as_entire_binding()],
        per_item(s_count)?,
    )
}

/// The counting pass over the input, float by float (`count_main`).
pub(super) fn record_count(
    ctx: &Ctx,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    plan: &plan::ReducePlan,
    qp: &SelectParams,
    sp: &SamplePlan,
    out: &CountOutputs,
) -> Result<()> {
    let gpu = ctx.gpu;
    let seg = ctx.seg;
    // Specialized for 1 to 4, 8, 12 or 16 brackets (a few pipelines, not one per count).
    let brackets = match qp.ub {
        0..=4 => qp.ub.max(1) as usize,
        5..=8 => 8,
        9..=12 => 12,
        _ => MAX_BRACKETS,
    };
    for (i, d) in plan.dispatches.iter().enumerate() {
        if d.k_end <= d.k_first {
            continue;
        }
        // On a software adapter the loads read staged texels (one float each).
        let texels = gpu.stage_scalar_texels(encoder, input.buffer(), d.window_lo * 4, d.window_len)?;
        let count = |ties: bool| {
            let constants =
                [("COUNT_BRACKETS", brackets as f64), ("COUNT_TIES", f64::from(u8::from(ties))), texels.constant()];
            gpu.pipeline_with(Shader::Select, "count_main", &constants)
        };
        let (tile, tiles, parts) = count_main_shape(gpu, &seg, d);
        let params = gpu.uniform(&SelectParams {
            window_lo: d.window_lo as u32,
            seg_first: d.seg_first,
            seg_end: d.seg_end,
            tile,
            k_first: d.k_first,
            k_end: d.k_end,
            parts: parts as u32,
            tiles: tiles as u32,
            cap: sp.cap,
            vflags: lane_walk_flags(gpu, lane_group(gpu, tile)),
            parts_total: parts as u32,
            ..*qp
        });
        debug_assert_eq!(out.grids[i] as u64, tiles * parts);
        let input = Gpu::binding(input.buffer(), d.window_lo, d.window_len);
        dispatch_counting(
            gpu,
            encoder,
            &count,
            [(0, params.as_entire_binding()), (1, input), (SCALAR_TEXEL_BINDING, texels.binding())],
            out,
            i,
        );
    }

    Ok(())
}

/// The counting pass through a vec4 view (`count_vec4`), which also counts each
/// segment's non-NaN values into `valid`; `staged`: the view's texels where the caller
/// staged them already (for the sample too).
pub(super) fn record_count_vec4(
    ctx: &Ctx,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    qp: &SelectParams,
    sp: &SamplePlan,
    (cv, staged): (&CountView, Option<&TexelSource>),
    out: &CountOutputs,
) -> Result<()> {
    let gpu = ctx.gpu;
    let (view, by_segment, plan) = (cv.view, cv.by_segment, &cv.plan);
    let vflags = lane_walk_flags(gpu, lane_group(gpu, plan.tile_width));
    for (i, d) in plan.dispatches.iter().enumerate() {
        if d.k_end <= d.k_first {
            continue;
        }
        // The texels staged for the sample hold this (only) window already.
        let own;
        let texels = match staged {
            Some(t) => t,
            None => {
                own = gpu.stage_texels(encoder, input.buffer(), 16 * d.window_lo, d.window_len, TexelSlot::Kernel)?;
                &own
            }
        };
        let pipeline = |ties: bool| {
            let constants = [
                ("COUNT_BRACKETS", qp.ub.max(1) as f64),
                ("COUNT_COLUMNS", by_segment as u32 as f64),
                ("COUNT_AFFINE", (view.inner_div == 1) as u32 as f64),
                ("COUNT_TIES", ties as u32 as f64),
                texels.constant(),
            ];
            gpu.pipeline_with(Shader::Select, "count_vec4", &constants)
        };
        let params = gpu.uniform(&SelectParams {
            seg: view.into(),
            window_lo: d.window_lo as u32,
            seg_first: d.seg_first,
            seg_end: d.seg_end,
            tile: plan.tile_width,
            k_first: d.k_first,
            k_end: d.k_end,
            parts: d.parts,
            tiles: d.tiles,
            cap: sp.cap,
            vflags,
            comp_end: ctx.seg.count,
            part_offset: d.part_offset,
            parts_total: plan.parts_total,
            ..*qp
        });
        let input = Gpu::binding(input.buffer(), 4 * d.window_lo, 4 * d.window_len);
        dispatch_counting(
            gpu,
            encoder,
            &pipeline,
            [(0, params.as_entire_binding()), (1, input), (TEXEL_BINDING, texels.binding())],
            out,
            i,
        );
    }
    Ok(())
}
