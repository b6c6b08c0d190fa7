//! Host side of the select module (`shaders/select*.wgsl`): exact per-segment quantiles
//! by radix select.
//!
//! numpy's default (linear) method over the non-NaN values of each segment: rank
//! `q·(n−1)` (its float64 rounding reproduced exactly on the GPU with integer
//! arithmetic), linear interpolation between the order statistics at `floor` and
//! `floor + 1`; an all-NaN segment gives NaN. The count `n` comes from the caller's
//! moments, or from the sample-and-bracket path's counting pass, or from a moments pass
//! recorded here. The order statistics are exact: values map to
//! order-preserving u32 keys, and every wanted rank of a segment (the floor and the
//! next rank of every q, deduplicated) is resolved in the same passes. Three paths:
//!
//! - **radix select** (the general one): passes of up to 11-bit digits, each building
//!   per-(segment, group) histograms with u32 atomics in workgroup memory, added into
//!   a global histogram (so windows of inputs beyond one binding add up), then a scan
//!   that picks every rank's digit. Narrower digits for shorter segments.
//! - **sample and bracket** (long segments, at most 16 distinct q, input within one
//!   binding): the radix select on a stratified sample gives, per q, a key bracket that
//!   very likely holds the wanted ranks; one pass over the input counts the keys below,
//!   at and inside each bracket and keeps those strictly inside; the radix select then
//!   reads only those candidates (each thread of the counting pass writes its own
//!   slots of the list: no atomic per value). A rank on a bracket's end is resolved from
//!   the counts (ties); a rank outside every bracket, or a thread with more candidates
//!   than slots, sends that segment to the radix passes over the whole input. The
//!   result is exact either way. The counting pass also counts each segment's values,
//!   so that no moments pass is needed: one pass over the input in all. Where the layout has a vec4 view and there
//!   are at most 4 distinct q, it reads four values per load (`count_vec4`).
//! - **counting** (segments of at most 64 elements): one thread per segment ranks
//!   every element by comparison.
//!
//! This module holds the entry points and `record_select`, which picks the path and
//! records the ranks (`init_main`) and the interpolation (`finish_main`); `radix`
//! records the histogram passes and scans, `sampling` the sample-and-bracket front end,
//! `short` the transpose of many short columns, the ranking of the shortest segments
//! and the radix passes' tail. (The sorting networks of short segments on a software
//! adapter are `kernels::network`.)
//!
//! Everything stays on the GPU between passes: [`record_quantiles`] records the work
//! into the caller's encoder and returns a buffer of `num_segments × qs.len()` f32
//! (row-major by segment), interpolated in float32. [`quantiles`] is the convenience
//! on top: one readback of the two order statistics per (segment, q), interpolated in
//! float64 on the host exactly as [`crate::reference::quantiles()`] does.

mod radix;
mod sampling;
mod short;

use crate::error::{Error, Result};
use crate::gpu::{read_values, Gpu, GpuTensor, Shader};
use crate::kernels::moments::{check_input, record_moments, MOMENTS_BYTES};
use crate::kernels::network::{network_size, record_network, NetworkBuffers};
use crate::kernels::{plan, SegmentsGpu};
use crate::reference::quantiles::{lerp, rank};
use crate::segments::{Grouping, Segments};
use radix::{digit_schedule, hist_layout, Ctx, Source, HIST_CAP};
use sampling::{record_brackets, sampling_plan, Counting};
use short::{
    record_segment_threads, transposed_columns, transposes, SMALL_LEN, TAIL_MAX_LEN, TAIL_MIN_BITS, TAIL_MIN_ELEMENTS,
};

/// Unique quantiles resolved in one set of passes (slots = 2 × this <= GROUP_CAP / 4).
const MAX_BATCH_Q: usize = 128;

const WG: u32 = 256;

/// The WGSL `SelectParams` struct.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct SelectParams {
    seg: SegmentsGpu,
    window_lo: u32,
    seg_first: u32,
    seg_end: u32,
    tile: u32,
    k_first: u32,
    k_end: u32,
    parts: u32,
    tiles: u32,
    r_total: u32,
    r0: u32,
    rb: u32,
    nqb: u32,
    qb: u32,
    sb0: u32,
    shift: u32,
    bits: u32,
    level: u32,
    gl: u32,
    u_total: u32,
    u0: u32,
    ub: u32,
    nq: u32,
    mode: u32,
    use_limit: u32,
    sample_m: u32,
    cap: u32,
    seed: u32,
    vflags: u32,
    comp_end: u32,
    part_offset: u32,
    parts_total: u32,
    sample_frac: u32,
    floor_only: u32,
    ties: u32,
    ties_min: u32,
    _pad: u32,
}

/// The WGSL `QInfo` struct: q = m · 2^-e, m = m_hi · 2^32 + m_lo.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct QInfo {
    m_hi: u32,
    m_lo: u32,
    e: u32,
    qf: f32,
}

fn encode_q(q: f64) -> QInfo {
    if q == 0.0 {
        return QInfo { m_hi: 0, m_lo: 0, e: 52, qf: 0.0 };
    }
    let bits = q.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as u32;
    let frac = bits & ((1u64 << 52) - 1);
    let (m, e) = if exp == 0 { (frac, 1074) } else { (frac | (1u64 << 52), 1075 - exp) };
    QInfo { m_hi: (m >> 32) as u32, m_lo: m as u32, e, qf: q as f32 }
}

/// Check that every q is a number in [0, 1].
pub fn check_qs(qs: &[f64]) -> Result<()> {
    match qs.iter().find(|q| !(0.0..=1.0).contains(*q)) {
        Some(q) => Err(Error::InvalidParameter(format!("quantile {q} is outside [0, 1]"))),
        None => Ok(()),
    }
}

/// The distinct q, ascending (−0.0 taken as +0.0).
fn unique_ascending(qs: &[f64]) -> Vec<f64> {
    let mut uq: Vec<f64> = qs.iter().map(|&q| q + 0.0).collect();
    uq.sort_by(f64::total_cmp);
    uq.dedup();
    uq
}

/// The results of one selection: f32 quantiles and, per (segment, q), the two keys and
/// the count as `[key_lo, key_hi, count, ties]` (ties: see finish_main).
struct Selected {
    values: wgpu::Buffer,
    order_stats: wgpu::Buffer,
    /// Per segment a moments state whose count is set.
    counts: wgpu::Buffer,
    /// Per segment and batch of q, (slots, groups, mode, 0): mode 1 where the radix
    /// passes went over the whole segment (`None` where nothing was selected).
    headers: Option<wgpu::Buffer>,
    /// The sampling path's counting grids (the last batch of q's), see `count_args`.
    count_args: Option<wgpu::Buffer>,
}

/// Record the quantiles `qs` of every segment of `input` into `encoder`. `moments`, if
/// given, is the buffer that [`record_moments`] filled for the same input and grouping
/// (its counts are reused); without it the counts come from the selection's own
/// counting pass, or from a moments pass it records. Returns a buffer of
/// `num_segments × qs.len()` f32, row-major by segment; an all-NaN segment gives NaN.
pub fn record_quantiles(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    grouping: &Grouping,
    moments: Option<&wgpu::Buffer>,
    qs: &[f64],
) -> Result<wgpu::Buffer> {
    Ok(record_select(gpu, encoder, input, grouping, moments, qs, Purpose::Quantiles)?.values)
}

/// How many times [`record_quantiles`] without moments reads the whole input: one
/// counting pass on the sample-and-bracket path, else a moments pass and the radix
/// passes (after a transpose, for many short columns; or the ranking of short
/// segments). A segment whose bracket misses adds the radix passes over it.
pub fn input_passes(gpu: &Gpu, grouping: &Grouping, qs: &[f64]) -> u32 {
    let seg = grouping.segments();
    let uq = unique_ascending(qs);
    if uq.is_empty() || seg.count == 0 {
        return 0;
    }
    if uq.len() <= MAX_BATCH_Q && sampling_plan(gpu, &seg, grouping.numel() as u64, &uq).is_some() {
        return 1;
    }
    if takes_network(gpu, &seg) {
        return 1;
    }
    if seg.len <= SMALL_LEN {
        return 2;
    }
    let batches = uq.len().div_ceil(MAX_BATCH_Q);
    // A transpose first reads the input once more.
    let transpose = u32::from(transposes(gpu, grouping, uq.len()).is_some());
    1 + transpose
        + (0..batches)
            .map(|b| {
                let ub = (uq.len() - b * MAX_BATCH_Q).min(MAX_BATCH_Q);
                digit_schedule(seg.len as u64, 2 * ub, seg.count as u64).len() as u32
            })
            .sum::<u32>()
}

/// How many segments of a [`quantiles`] call on the sample-and-bracket path fell back
/// to the radix passes over the whole segment (a bracket missed, or a thread of the
/// counting pass ran out of candidate slots); 0 on the other paths. For tests: the
/// results are exact either way, so only this shows a counting pass that counts wrong.
#[doc(hidden)]
pub fn whole_segment_selections(gpu: &Gpu, input: &GpuTensor, grouping: &Grouping, qs: &[f64]) -> Result<usize> {
    let mut encoder = gpu.encoder();
    let sel = record_select(gpu, &mut encoder, input, grouping, None, qs, Purpose::Quantiles)?;
    gpu.submit_and_wait(encoder)?;
    let Some(headers) = sel.headers else { return Ok(0) };
    let rows: Vec<[u32; 4]> = read_values(gpu, &headers, 0, headers.size())?;
    Ok(rows.iter().filter(|h| h[2] == 1).count())
}

/// Which counting pass a [`quantiles`] call on the sample-and-bracket path ran: the one
/// that counts the keys equal to a bracket's ends (`Some(true)`, chosen when the sample
/// holds a bracket's end more than once) or the one that takes them as candidates
/// (`Some(false)`); `None` on the other paths. For tests.
#[doc(hidden)]
pub fn counting_pass_counts_ties(
    gpu: &Gpu,
    input: &GpuTensor,
    grouping: &Grouping,
    qs: &[f64],
) -> Result<Option<bool>> {
    let mut encoder = gpu.encoder();
    let sel = record_select(gpu, &mut encoder, input, grouping, None, qs, Purpose::Quantiles)?;
    let Some(args) = sel.count_args else {
        gpu.submit_and_wait(encoder)?;
        return Ok(None);
    };
    // The grids aren't mappable: through a copy.
    let copy = gpu.storage_buffer("quantile counting grids (copy)", 32)?;
    encoder.copy_buffer_to_buffer(&args, 0, &copy, 0, 32);
    gpu.submit_and_wait(encoder)?;
    let words: Vec<u32> = read_values(gpu, &copy, 0, 32)?;
    Ok(Some(words[3] != 0))
}

/// [`record_quantiles`], also returning a buffer of `num_segments` [`MomentsGpu`] whose
/// counts (non-NaN values per segment) are set (the other fields are set only when
/// `moments` was given, then it is that buffer's copy).
///
/// [`MomentsGpu`]: crate::kernels::moments::MomentsGpu
pub fn record_quantiles_counted(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    grouping: &Grouping,
    qs: &[f64],
) -> Result<(wgpu::Buffer, wgpu::Buffer)> {
    let sel = record_select(gpu, encoder, input, grouping, None, qs, Purpose::Quantiles)?;
    Ok((sel.values, sel.counts))
}

/// Whether a sorting network takes the quantiles of `seg` (see [`network_size`]), for
/// callers that have no plan of the input at hand.
fn takes_network(gpu: &Gpu, seg: &Segments) -> bool {
    plan::plan_reduction(seg, &plan_limits(gpu)).is_ok_and(|plan| network_size(gpu, seg, &plan).is_some())
}

fn storage_with(gpu: &Gpu, label: &str, data: &[u8]) -> Result<wgpu::Buffer> {
    let buf = gpu.storage_buffer(label, data.len() as u64)?;
    if !data.is_empty() {
        gpu.queue().write_buffer(&buf, 0, data);
    }
    Ok(buf)
}

fn workgroups(n: u64) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::TooLarge(format!("{n} workgroups in one dispatch")))
}

/// Threads over `n` items, 256 per workgroup.
fn per_item(n: u64) -> Result<u32> {
    workgroups(n.div_ceil(WG as u64))
}

fn plan_limits(gpu: &Gpu) -> plan::PlanLimits {
    plan_limits_in(gpu, 1)
}

/// [`plan_limits`] in units of `unit` floats (4 for a vec4 view).
fn plan_limits_in(gpu: &Gpu, unit: u64) -> plan::PlanLimits {
    plan::PlanLimits {
        max_span: gpu.max_chunk_elements() / unit,
        align: gpu.offset_alignment_elements() / unit,
        target_workgroups: gpu.target_workgroups(),
        max_partials: u64::MAX,
        min_per_thread: 1,
        max_tile: WG,
    }
}

/// What a selection is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Quantiles: both order statistics of each q (the sample-and-bracket path where it
    /// applies).
    Quantiles,
    /// A sample's brackets: the order statistic at each q's floor rank only (half the
    /// slots, so the radix passes keep fewer histograms), by the radix passes (sampling
    /// the sample in turn was measured slower: its brackets are many and wide).
    SampleBrackets,
}

fn record_select(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    grouping: &Grouping,
    moments: Option<&wgpu::Buffer>,
    qs: &[f64],
    purpose: Purpose,
) -> Result<Selected> {
    check_qs(qs)?;
    check_input(gpu, input, grouping)?;
    let seg = grouping.segments();
    let s_count = seg.count as u64;
    let nq = qs.len() as u64;
    if let Some(m) = moments.filter(|m| m.size() < s_count * MOMENTS_BYTES) {
        return Err(Error::Shape(format!("moments buffer of {} bytes is too small for {s_count} segments", m.size())));
    }
    // Unique q, ascending: then the ranks of a segment ascend with the slot index.
    let uq = unique_ascending(qs);
    if let Some((t, rows_grouping)) = transposed_columns(gpu, encoder, input, grouping, uq.len())? {
        return record_select(gpu, encoder, &t, &rows_grouping, moments, qs, purpose);
    }
    let binding = gpu.limits().max_storage_buffer_binding_size.min(gpu.limits().max_buffer_size);
    let check_size = |what: &str, bytes: u64| {
        if bytes > binding {
            Err(Error::TooLarge(format!(
                "{what} of {bytes} bytes ({s_count} segments × {nq} quantiles) exceeds one storage binding; \
                 ask for fewer quantiles or segments per call"
            )))
        } else {
            Ok(())
        }
    };
    check_size("the quantile order statistics", s_count * nq * 16)?;
    let values = gpu.storage_buffer("quantiles", s_count * nq * 4)?;
    let order_stats = gpu.storage_buffer("quantile order statistics", s_count * nq * 16)?;
    if nq == 0 || s_count == 0 {
        let counts = gpu.storage_buffer("quantile counts", s_count * MOMENTS_BYTES)?;
        return Ok(Selected { values, order_stats, counts, headers: None, count_args: None });
    }

    let qmap: Vec<u32> = qs.iter().map(|&q| uq.partition_point(|&x| x < q + 0.0) as u32).collect();
    let u_total = uq.len() as u64;
    let r_total = 2 * u_total;
    check_size("the quantile slots", s_count * r_total * 16)?;
    check_size("the quantile weights", s_count * u_total * 32)?;
    let qinfo: Vec<QInfo> = uq.iter().map(|&q| encode_q(q)).collect();
    let qinfo = storage_with(gpu, "quantile q", bytemuck::cast_slice(&qinfo))?;
    let qmap = storage_with(gpu, "quantile map", bytemuck::cast_slice(&qmap))?;
    let plan = plan::plan_reduction(&seg, &plan_limits(gpu))?;
    // Short segments on a software adapter: a sorting network, one dispatch, which
    // counts for itself.
    if let Some(size) = network_size(gpu, &seg, &plan).filter(|_| purpose == Purpose::Quantiles) {
        let counts = match moments {
            Some(m) => m.clone(),
            None => gpu.storage_buffer("quantile counts", s_count * MOMENTS_BYTES)?,
        };
        let out = NetworkBuffers {
            qinfo: &qinfo,
            qmap: &qmap,
            values: &values,
            order_stats: &order_stats,
            counts: moments.is_none().then_some(&counts),
        };
        record_network(gpu, encoder, input, (&seg, &plan), size, nq as u32, &out)?;
        return Ok(Selected { values, order_stats, counts, headers: None, count_args: None });
    }
    let fracs = gpu.storage_buffer("quantile weights", s_count * u_total * 32)?;
    let nqb = u_total.div_ceil(MAX_BATCH_Q as u64);
    let ctx = Ctx {
        gpu,
        seg,
        base: SelectParams {
            seg: seg.into(),
            r_total: r_total as u32,
            nqb: nqb as u32,
            u_total: u_total as u32,
            nq: nq as u32,
            floor_only: u32::from(purpose == Purpose::SampleBrackets),
            ..bytemuck::Zeroable::zeroed()
        },
        slots: gpu.storage_buffer("quantile slots", s_count * r_total * 16)?,
        hdr: gpu.storage_buffer("quantile groups", s_count * nqb * 16)?,
        gprefix: gpu.storage_buffer("quantile prefixes", s_count * r_total * 4)?,
    };
    let init = gpu.pipeline(Shader::Select, "init_main");
    // Short segments, each whole inside one window: rank by counting.
    let whole_segments = plan.whole_segments(seg.len);
    let small = seg.len <= SMALL_LEN && whole_segments;
    // The radix passes' tail in one walk (see `tail_main`); its groups live in registers
    // (at most 16: `rb`).
    // Only where it pays for its compile (~25 ms) in a one-shot process, or is compiled
    // already (`Gpu::set_networks` forces either way): 178 × 13 (the wine data) saves
    // ~1 ms of passes, and its `gpunorm stats` took 0.15 → 0.18 s with the tail.
    let tail_pays = || input.numel() as u64 >= TAIL_MIN_ELEMENTS || gpu.has_pipeline(Shader::Select, "tail_main");
    let tail = gpu.is_software()
        && purpose == Purpose::Quantiles
        && seg.len <= TAIL_MAX_LEN
        && whole_segments
        && gpu.networks().unwrap_or_else(tail_pays);
    let (sampling, vec4_count) =
        match (purpose == Purpose::Quantiles).then(|| sampling_plan(gpu, &seg, input.numel() as u64, &uq)) {
            Some(Some((sp, cv))) => (Some(sp), cv),
            _ => (None, None),
        };
    // The counts: the caller's moments, else the counting pass's (vec4 counting, which
    // counts them), else a moments pass of our own.
    let counts = match moments {
        Some(m) => m.clone(),
        None if sampling.is_some() => gpu.storage_buffer("quantile counts", s_count * MOMENTS_BYTES)?,
        None => record_moments(gpu, encoder, input, grouping)?,
    };
    let counted = moments.is_none() && sampling.is_some();
    // The input as the histogram passes read it (the same for every batch of q).
    let whole_layout = hist_layout(gpu, seg, plan.clone());

    let mut count_args = None;
    for qb in 0..nqb {
        let u0 = qb * MAX_BATCH_Q as u64;
        let ub = (u_total - u0).min(MAX_BATCH_Q as u64);
        // Slots (and so groups) a segment can have in this batch: a q's two ranks, or
        // only its floor rank (a sample's brackets).
        let rb = if purpose == Purpose::SampleBrackets { ub } else { 2 * ub };
        let sched = digit_schedule(seg.len as u64, rb as usize, s_count);
        let b_max = 1u64 << sched.iter().max().copied().unwrap_or(4);
        let s_batch = (HIST_CAP / (rb * b_max)).clamp(1, s_count);
        let hist = gpu.storage_buffer("quantile histograms", s_batch * rb * b_max * 4)?;
        let qp = SelectParams {
            r0: (2 * u0) as u32,
            rb: rb as u32,
            qb: qb as u32,
            u0: u0 as u32,
            ub: ub as u32,
            ..ctx.base
        };
        // Ranks and slots of segments [sb0, sb1) from the counts (the sampling path
        // records it after its counting pass, which may be what fills the counts).
        let record_init = |encoder: &mut wgpu::CommandEncoder, (sb0, sb1): (u64, u64)| -> Result<()> {
            let params =
                gpu.uniform(&SelectParams { sb0: sb0 as u32, seg_first: sb0 as u32, seg_end: sb1 as u32, ..qp });
            gpu.dispatch(
                encoder,
                &init,
                &[
                    params.as_entire_binding(),
                    counts.as_entire_binding(),
                    qinfo.as_entire_binding(),
                    ctx.slots.as_entire_binding(),
                    fracs.as_entire_binding(),
                    ctx.hdr.as_entire_binding(),
                    ctx.gprefix.as_entire_binding(),
                ],
                per_item(sb1 - sb0)?,
            )
        };
        // The sampling path: sample, brackets, one counting pass and the resolution of
        // every segment at once; only its radix passes over the candidates go by
        // histogram batch.
        let sampled = match sampling.as_ref() {
            Some(sp) => {
                let counting = Counting { view: vec4_count.as_ref(), counts: counted.then_some(&counts) };
                let init_all = |encoder: &mut wgpu::CommandEncoder| record_init(encoder, (0, s_count));
                let (cand, ccount, brk, args) =
                    record_brackets(&ctx, encoder, input, &plan, &qp, sp, &counting, &init_all)?;
                count_args = Some(args);
                let cand_seg = Grouping::Rows { rows: s_count as usize, len: sp.cap as usize }.segments();
                let cand_plan = plan::plan_reduction(&cand_seg, &plan_limits(gpu))?;
                Some((cand, ccount, brk, hist_layout(gpu, cand_seg, cand_plan)))
            }
            None => None,
        };
        let mut sb0 = 0;
        while sb0 < s_count {
            let sb1 = (sb0 + s_batch).min(s_count);
            let passes = |encoder: &mut wgpu::CommandEncoder, sources: &[Source]| -> Result<()> {
                let mut consumed = 0;
                let mut tail = tail && rb <= 16;
                for (level, &bits) in sched.iter().enumerate() {
                    consumed += bits;
                    ctx.radix_pass(encoder, &qp, &hist, (sb0, sb1), level as u32, (32 - consumed, bits), sources)?;
                    // Short segments on a software adapter: the rest in one walk.
                    if tail && consumed >= TAIL_MIN_BITS && level + 1 < sched.len() {
                        let shift = 32 - consumed;
                        record_segment_threads(&ctx, encoder, input, &plan, &qp, (sb0, sb1), "tail_main", shift)?;
                        tail = false;
                    }
                }
                Ok(())
            };
            let whole = Source {
                buffer: input.buffer(),
                seg: whole_layout.0,
                plan: &whole_layout.1,
                unit: whole_layout.2,
                mode: 0,
                limit: None,
                brackets: None,
            };
            if small {
                record_init(encoder, (sb0, sb1))?;
                record_segment_threads(&ctx, encoder, input, &plan, &qp, (sb0, sb1), "small_main", 0)?;
                sb0 = sb1;
                continue;
            }
            match &sampled {
                None => {
                    record_init(encoder, (sb0, sb1))?;
                    passes(encoder, &[whole])?
                }
                Some((cand, ccount, brk, (cand_seg, cand_plan, cand_unit))) => {
                    let candidates = Source {
                        buffer: cand,
                        seg: *cand_seg,
                        plan: cand_plan,
                        unit: *cand_unit,
                        mode: 0,
                        limit: Some(ccount),
                        brackets: Some(brk),
                    };
                    passes(encoder, &[candidates, Source { mode: 1, ..whole }])?;
                }
            }
            sb0 = sb1;
        }
    }

    let params = gpu.uniform(&SelectParams { seg_first: 0, seg_end: s_count as u32, ..ctx.base });
    gpu.dispatch(
        encoder,
        &gpu.pipeline(Shader::Select, "finish_main"),
        &[
            params.as_entire_binding(),
            ctx.slots.as_entire_binding(),
            fracs.as_entire_binding(),
            qmap.as_entire_binding(),
            values.as_entire_binding(),
            order_stats.as_entire_binding(),
        ],
        per_item(s_count * nq)?,
    )?;
    Ok(Selected { values, order_stats, counts, headers: Some(ctx.hdr), count_args })
}

/// Per segment, the requested quantiles (numpy's linear method, NaN ignored;
/// NaN for an all-NaN segment). `result[s][j]` is quantile `qs[j]` of segment `s`.
///
/// Records the moments pass (for the counts) and the selection, reads back the two
/// order statistics of every (segment, q) once, and interpolates them in float64.
pub fn quantiles(gpu: &Gpu, input: &GpuTensor, grouping: &Grouping, qs: &[f64]) -> Result<Vec<Vec<f64>>> {
    check_qs(qs)?;
    check_input(gpu, input, grouping)?;
    let s_count = grouping.num_segments();
    if qs.is_empty() || s_count == 0 {
        return Ok(vec![Vec::new(); s_count]);
    }
    let mut encoder = gpu.encoder();
    let sel = record_select(gpu, &mut encoder, input, grouping, None, qs, Purpose::Quantiles)?;
    gpu.submit_and_wait(encoder)?;
    let raw: Vec<[u32; 4]> = read_values(gpu, &sel.order_stats, 0, (s_count * qs.len() * 16) as u64)?;
    Ok(raw
        .chunks(qs.len())
        .map(|row| {
            row.iter()
                .zip(qs)
                .map(|(&[ka, kb, n, _], &q)| {
                    if n == 0 {
                        return f64::NAN;
                    }
                    let (_, _, frac) = rank(q, n as usize);
                    lerp(value_of(ka) as f64, value_of(kb) as f64, frac)
                })
                .collect()
        })
        .collect())
}

/// The order-preserving key of a non-NaN f32 (the map select.wgsl uses).
pub fn key_of(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b ^ 0x8000_0000
    }
}

/// The f32 of a key.
pub fn value_of(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 { k ^ 0x8000_0000 } else { !k })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order() {
        let xs = [f32::NEG_INFINITY, -3e38, -1.0, -1e-45, -0.0, 0.0, 1e-45, 1.0, 3e38, f32::INFINITY];
        for w in xs.windows(2) {
            assert!(key_of(w[0]) < key_of(w[1]), "{} {}", w[0], w[1]);
        }
        for x in xs {
            assert_eq!(value_of(key_of(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn q_encoding_is_exact() {
        for q in [0.0, 1.0, 0.5, 0.1, 0.7, 1e-300, 5e-324, 0.999_999_999_999_999_9] {
            let i = encode_q(q);
            let m = ((i.m_hi as u64) << 32 | i.m_lo as u64) as f64;
            assert_eq!(m * 2f64.powi(-(i.e as i32)), q, "{q}");
        }
    }
}
