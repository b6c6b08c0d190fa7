//! Host side of `shaders/select.wgsl`: exact per-segment quantiles by radix select.
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
//! Everything stays on the GPU between passes: [`record_quantiles`] records the work
//! into the caller's encoder and returns a buffer of `num_segments × qs.len()` f32
//! (row-major by segment), interpolated in float32. [`quantiles`] is the convenience
//! on top: one readback of the two order statistics per (segment, q), interpolated in
//! float64 on the host exactly as [`crate::reference::quantiles()`] does.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::{read_buffer, Gpu, GpuTensor, Shader, TexelSlot, TexelSource, SCALAR_TEXEL_BINDING, TEXEL_BINDING};
use crate::kernels::copy::record_transpose;
use crate::kernels::moments::{check_input, record_moments, MOMENTS_BYTES};
use crate::kernels::network::{network_size, record_network, NetworkBuffers, NETWORK_MAX_LEN};
use crate::kernels::{lane_group, lane_walk_flags, plan, unit_plan_limits, vec4_view, SegmentsGpu};
use crate::reference::quantiles::{lerp, rank};
use crate::segments::{Grouping, Segments, Vec4Parts};

/// Workgroup-local histogram bins (`LBINS` in select.wgsl).
const LOCAL_BINS: u32 = 4096;
/// Group prefixes a workgroup holds (`GPCAP` in select.wgsl).
const GROUP_CAP: u32 = 1024;
/// Unique quantiles resolved in one set of passes (slots = 2 × this <= GROUP_CAP / 4).
const MAX_BATCH_Q: usize = 128;
/// Most histogram bins of one segment batch (u32 each: 16 MiB).
const HIST_CAP: u64 = 1 << 22;
/// Most segments of a histogram batch whose scan takes a workgroup each (`scan_wide`):
/// on a GPU, where one thread's walk over up to 2048 bins is a chain of dependent
/// loads (not measured: no GPU yet). Not on a software adapter: there the walk is
/// cheap and the workgroup is not (six scans of 1e7 × 1's quartiles: 0.31 → 0.45 ms).
const SCAN_WIDE: u64 = 256;
const SCAN_WIDE_SOFTWARE: u64 = 0;
/// Widest radix digit.
const MAX_BITS: u32 = 11;
/// Elements a thread should at least get before another workgroup is added.
const MIN_PER_THREAD: u64 = 32;
const WG: u32 = 256;
/// The fast path's limit on unique q per call (brackets per segment, `MAXB` in
/// select.wgsl).
const MAX_BRACKETS: usize = 16;
/// Segments of one counting workgroup (its counts: 2048 / (4 · MAX_BRACKETS) rows).
const COUNT_SEGMENTS: u32 = 2048 / (4 * MAX_BRACKETS as u32);
/// Segments of one `count_vec4` workgroup (its rows hold four brackets' counts: `VCOUNT`
/// in select.wgsl), so that wide layouts (100 columns) count through the vec4 view.
const COUNT_VEC4_SEGMENTS: u32 = 2048 / (4 * 4);
/// Shortest segment for the fast path (its sample, at most len / 8, has at least 1024
/// elements).
const SAMPLE_MIN_LEN: u64 = 1 << 13;
/// Longest segment ranked by counting (one thread per segment, len² compares).
const SMALL_LEN: u32 = 64;
/// Loop rounds a lane group of a counting pass takes in a row (`CHUNK` in select.wgsl).
const COUNT_CHUNK: u64 = 64;
/// Bytes of one segment's brackets (`BRK` vec4 in select.wgsl).
const BRK_BYTES: u64 = (1 + 3 * MAX_BRACKETS as u64 / 4) * 16;

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

/// Digit widths of the radix passes for `segments` segments of `len` elements and
/// `slots` wanted ranks: wide digits (few passes over the input) for long segments,
/// narrow ones for short segments, whose histograms (a bucket row per slot group, up
/// to `slots` of them after the first pass) would otherwise outweigh their data; and
/// narrow enough, where 4 bits are, that one batch of histograms (`HIST_CAP` bins)
/// holds every segment: each further batch reads the input again.
fn digit_schedule(len: u64, slots: usize, segments: u64) -> Vec<u32> {
    let one_batch = (HIST_CAP / (slots.max(1) as u64 * segments.max(1))).max(1).ilog2().max(4);
    let want = (4 * len / slots.max(1) as u64).max(2).ilog2().clamp(4, MAX_BITS).min(one_batch);
    let passes = 32u32.div_ceil(want);
    (0..passes).map(|i| 32 / passes + u32::from(i < 32 % passes)).collect()
}

/// The distinct q, ascending (−0.0 taken as +0.0).
fn unique_ascending(qs: &[f64]) -> Vec<f64> {
    let mut uq: Vec<f64> = qs.iter().map(|&q| q + 0.0).collect();
    uq.sort_by(f64::total_cmp);
    uq.dedup();
    uq
}

fn prev_pow2(x: u32) -> u32 {
    if x == 0 {
        1
    } else {
        1 << x.ilog2()
    }
}

/// Segments per workgroup that the layout would like: neighbouring segments for
/// interleaved layouts, several short segments at once for short contiguous ones.
fn preferred_tile(seg: &Segments) -> u32 {
    if seg.segments_interleaved() {
        seg.count.min(seg.seg_div).next_power_of_two().min(64)
    } else {
        prev_pow2((WG * 16 / seg.len.max(1)).clamp(1, WG))
    }
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
    if plan::plan_reduction(&seg, &plan_limits(gpu)).is_ok_and(|plan| network_size(gpu, &seg, &plan).is_some()) {
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
    let bytes = read_buffer(gpu, &headers, 0, headers.size())?;
    let rows: Vec<[u32; 4]> = bytemuck::pod_collect_to_vec(&bytes);
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
    let words: Vec<u32> = bytemuck::pod_collect_to_vec(&read_buffer(gpu, &copy, 0, 32)?);
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

/// The buffers and fixed parameters shared by the kernels of one selection.
struct Ctx<'a> {
    gpu: &'a Gpu,
    seg: Segments,
    base: SelectParams,
    slots: wgpu::Buffer,
    hdr: wgpu::Buffer,
    gprefix: wgpu::Buffer,
}

/// One element source of a histogram pass: a buffer of f32 with its segment
/// description and window plan in units of `unit` floats (see [`hist_layout`]), the
/// segments' mode it serves, and for candidate lists (which hold dense keys, 0 in a
/// free slot) each segment's extent and the brackets that made the keys dense.
struct Source<'a> {
    buffer: &'a wgpu::Buffer,
    seg: Segments,
    plan: &'a plan::ReducePlan,
    unit: u64,
    mode: u32,
    limit: Option<&'a wgpu::Buffer>,
    brackets: Option<&'a wgpu::Buffer>,
}

/// How the histogram passes read a source of layout `seg` (window plan `plan`):
/// through a vec4 view where four neighbouring elements of a segment make one (the
/// sample, candidate lists, rows, a single column; `hist_vec4`, one load a quad), else
/// float by float. Returns the layout, its plan and its unit in floats.
fn hist_layout(gpu: &Gpu, seg: Segments, plan: plan::ReducePlan) -> (Segments, plan::ReducePlan, u64) {
    let view = vec4_view(gpu, &seg)
        .filter(|&(_, parts)| parts == Vec4Parts::Elements)
        .and_then(|(view, _)| Some((view, plan::plan_reduction(&view, &plan_limits_in(gpu, 4)).ok()?)));
    match view {
        Some((view, view_plan)) => (view, view_plan, 4),
        None => (seg, plan, 1),
    }
}

/// Workgroup shape of an element pass over `seg`: segments per workgroup (`tile`),
/// and how many workgroups split the elements of one dispatch.
fn shape(target_workgroups: u32, seg: &Segments, tile_cap: u32, segs: u64, k: u64) -> (u32, u64, u64) {
    shape_with_tile(target_workgroups, prev_pow2(preferred_tile(seg).min(tile_cap.max(1))), segs, k)
}

/// [`shape`] for a given tile.
fn shape_with_tile(target_workgroups: u32, tile: u32, segs: u64, k: u64) -> (u32, u64, u64) {
    let tiles = segs.div_ceil(tile as u64);
    let lanes = (WG / tile) as u64;
    let want = (target_workgroups as u64 / tiles).max(1);
    let useful = k.div_ceil(lanes * MIN_PER_THREAD).max(1);
    (tile, tiles, want.min(useful).min(1 << 16))
}

impl Ctx<'_> {
    /// One radix pass (histograms of the digit `bits` at `shift`) over `sources` for the
    /// segments `[sb0, sb1)` of q batch `qp`, then the scan that picks every slot's digit.
    #[allow(clippy::too_many_arguments)]
    fn radix_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        qp: &SelectParams,
        hist: &wgpu::Buffer,
        (sb0, sb1): (u64, u64),
        level: u32,
        (shift, bits): (u32, u32),
        sources: &[Source],
    ) -> Result<()> {
        let gpu = self.gpu;
        let nb = 1u32 << bits;
        let rb = qp.rb;
        encoder.clear_buffer(hist, 0, Some((sb1 - sb0) * rb as u64 * nb as u64 * 4));
        let groups_cap = if level == 0 { 1 } else { rb };
        let tile_cap = (LOCAL_BINS / (groups_cap * nb)).max(1).min(GROUP_CAP / rb);
        let flag = |on: bool| f64::from(u8::from(on));
        for src in sources {
            let (seg, unit) = (src.seg, src.unit);
            for d in &src.plan.dispatches {
                let first = (d.seg_first as u64).max(sb0);
                let end = (d.seg_end as u64).min(sb1);
                if first >= end || d.k_end <= d.k_first {
                    continue;
                }
                // A workgroup histogram pays where a workgroup bins many keys a bin on a
                // GPU (contention on the global one). Elsewhere the keys go straight to
                // the global histograms: segments too short to fill one (fewer than 16
                // keys a bin), the whole-input fallback of the sampling path (mode 1:
                // most often no segment at all, whose workgroups then only look), and
                // everything on a software adapter, which pays little for contention
                // but much for every barrier of every workgroup: there many segments go
                // to a workgroup and a long run of keys to a lane. Except at level 0 of
                // a segment of a million keys or more: the workgroups that share it run
                // on every core and hit its few hot bins from all of them (101
                // percentiles of 1e7 × 1: 160 ms global, 85 ms in workgroup memory). The
                // sample of 1e7 × 1 (60,800 keys) would gain too (0.4–0.6 → 0.24–0.31
                // ms), but as one more pipeline variant that a process compiles (~15 ms).
                // Candidate lists have no such bins: their dense keys spread the
                // brackets' values over all bins (1e7 × 1 quartiles, every histogram
                // pass together, alternating runs: 6.1 → 5.75 ms at best, 6.6 → 5.9 median).
                let per_segment = (d.k_end - d.k_first) as u64 * unit;
                let software = gpu.is_software();
                let shared_hot_bins = level == 0 && per_segment >= 1 << 20 && src.limit.is_none();
                let global =
                    (software && !shared_hot_bins) || src.mode == 1 || per_segment < 16 * (nb * groups_cap) as u64;
                let global_cap = (GROUP_CAP / rb).min(WG);
                let units = per_segment / unit;
                // The whole-input fallback (mode 1) most often finds no segment to count,
                // and on a software adapter each workgroup costs ~20 µs just to look: one
                // per core there (a pass that does find work still fills every core).
                // Candidate lists are short: a quarter of the workgroups there (1e7 × 1
                // quartiles, the candidates' passes: 2.19 → 2.08 ms at level 0, 1.49 →
                // 1.23 ms past it; 625000 × 16 and 1e6 × 10 unchanged, alternating runs).
                let target = if software && src.mode == 1 {
                    (gpu.reduce_workgroups() / 8).max(2)
                } else if software && src.limit.is_some() {
                    (gpu.reduce_workgroups() / 4).max(2)
                } else {
                    gpu.reduce_workgroups()
                };
                let (tile, tiles, parts) = if global && software && !seg.segments_interleaved() {
                    let tile = (WG as u64 * 256 / per_segment.max(1)).clamp(1, global_cap as u64);
                    shape_with_tile(target, prev_pow2(tile as u32), end - first, units)
                } else {
                    let cap = if global { global_cap } else { tile_cap };
                    shape(target, &seg, cap, end - first, units)
                };
                let constants = [
                    ("HIST_PREFIX", flag(level > 0)),
                    ("HIST_MANY_GROUPS", flag(rb > 16)),
                    ("HIST_PREFIX_VECS", f64::from(rb.min(16).div_ceil(4).max(1))),
                    ("HIST_FILTER", flag(rb > 16 && level > 1)),
                    ("HIST_GLOBAL", flag(global)),
                    ("HIST_KEYS", flag(src.limit.is_some())),
                    // A prefix table in the idle workgroup histogram (see HIST_TABLE).
                    (
                        "HIST_TABLE",
                        flag(
                            global
                                && level > 0
                                && rb > 16
                                && u64::from(tile) << (32 - shift - bits) <= LOCAL_BINS as u64,
                        ),
                    ),
                ];
                // Few keys with a group (see the marked passes in select.wgsl): no more
                // than sixteen groups, which the lanes' registers then hold, or past level
                // 1 a bitmap of the tile's hashed prefixes with few bits set (99
                // percentiles, level 2: 1e7 × 1 43–48 → 32–43 ms, 1e6 × 10 44 → 32 ms;
                // 1000 × 10000 deciles, with 576 bits, 471 → 502–516 ms: not there).
                // Each pipeline costs its compile once a process (lavapipe: 15–25 ms for
                // a histogram pass), so marks only where they replace the plain pass
                // (every candidate pass past level 0) or where a pass is long enough to
                // pay for one more (raw keys: a million keys or more; not the whole-input
                // fallback, which most often finds nothing to count). `gpunorm stats` of
                // a 178 × 13 CSV took 0.13 → 0.18 s with one more.
                let keys_in_pass = per_segment * (end - first);
                let marked = (rb <= 16 || (level > 1 && tile * rb <= 256))
                    && if src.limit.is_some() {
                        level > 0 && keys_in_pass >= 1 << 16
                    } else {
                        level > 1 && src.mode == 0 && keys_in_pass >= 1 << 20
                    };
                let entry = match (unit == 4, marked) {
                    (true, false) => "hist_vec4",
                    (true, true) => "hist_vec4_marked",
                    (false, false) => "hist_main",
                    (false, true) => "hist_main_marked",
                };
                let pipeline = gpu.pipeline_with(Shader::Select, entry, &constants);
                let params = gpu.uniform(&SelectParams {
                    seg: seg.into(),
                    window_lo: d.window_lo as u32,
                    seg_first: first as u32,
                    seg_end: end as u32,
                    tile,
                    k_first: d.k_first,
                    k_end: d.k_end,
                    parts: parts as u32,
                    tiles: tiles as u32,
                    sb0: sb0 as u32,
                    shift,
                    bits,
                    level,
                    gl: if global { 0 } else { groups_cap.min(LOCAL_BINS / (tile * nb)) },
                    mode: src.mode,
                    use_limit: src.limit.is_some() as u32,
                    vflags: lane_walk_flags(gpu, lane_group(gpu, tile)),
                    ..*qp
                });
                gpu.dispatch(
                    encoder,
                    &pipeline,
                    &[
                        params.as_entire_binding(),
                        Gpu::binding(src.buffer, unit * d.window_lo, unit * d.window_len),
                        self.hdr.as_entire_binding(),
                        self.gprefix.as_entire_binding(),
                        hist.as_entire_binding(),
                        src.limit.unwrap_or(&self.hdr).as_entire_binding(),
                    ],
                    workgroups(tiles * parts)?,
                )?;
            }
        }
        // Candidate lists resolve their slots once the digits have reached their dense
        // keys' low end (see `BRK` in select.wgsl).
        let brackets = sources.iter().find_map(|s| s.brackets);
        let params = gpu.uniform(&SelectParams {
            seg_first: sb0 as u32,
            seg_end: sb1 as u32,
            sb0: sb0 as u32,
            shift,
            bits,
            level,
            use_limit: brackets.is_some() as u32,
            ..*qp
        });
        // A few segments: a workgroup each (`scan_wide`, runs of bins summed in parallel
        // before the walk), else a thread each.
        let wide = sb1 - sb0 <= if gpu.is_software() { SCAN_WIDE_SOFTWARE } else { SCAN_WIDE };
        let (entry, workgroups) =
            if wide { ("scan_wide", workgroups(sb1 - sb0)?) } else { ("scan_main", per_item(sb1 - sb0)?) };
        gpu.dispatch(
            encoder,
            &gpu.pipeline(Shader::Select, entry),
            &[
                params.as_entire_binding(),
                hist.as_entire_binding(),
                self.slots.as_entire_binding(),
                self.hdr.as_entire_binding(),
                self.gprefix.as_entire_binding(),
                brackets.unwrap_or(hist).as_entire_binding(),
            ],
            workgroups,
        )
    }
}

/// The sample-and-bracket fast path's sizes for one call, when it applies.
struct SamplePlan {
    /// Sample elements per segment.
    m: u32,
    /// Per unique q: the sample quantiles q − δ and q + δ that bracket it.
    bq: Vec<f64>,
    /// 1 where a bracket q is 0 (its lower key is "everything") or 1 (upper).
    edges: Vec<u32>,
    /// Candidate capacity per segment.
    cap: u32,
    /// How often a bracket end's key must appear in the sample for the call to count
    /// ties (the four-count pass; see `bracket_main`).
    ties_min: u32,
}

/// Long segments and a few q: the sample-and-bracket plan, and the vec4 view its
/// counting pass reads through where the layout has one.
fn sampling_plan(gpu: &Gpu, seg: &Segments, numel: u64, uq: &[f64]) -> Option<(SamplePlan, Option<CountView>)> {
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
fn count_main_writers(gpu: &Gpu, seg: &Segments) -> Option<u64> {
    let plan = plan::plan_reduction(seg, &plan_limits(gpu)).ok()?;
    let mut writers = 1;
    for d in &plan.dispatches {
        if d.k_first != 0 || d.k_end != seg.len {
            return None;
        }
        let (tile, _, parts) = count_main_shape(gpu, seg, d);
        writers = writers.max(parts * (WG / tile) as u64);
    }
    Some(writers)
}

/// The workgroup shape of `count_main`'s dispatch `d` (its candidate writers follow
/// from it).
fn count_main_shape(gpu: &Gpu, seg: &Segments, d: &plan::ReduceDispatch) -> (u32, u64, u64) {
    let segs = (d.seg_end - d.seg_first) as u64;
    shape(gpu.reduce_workgroups(), seg, COUNT_SEGMENTS, segs, (d.k_end - d.k_first) as u64)
}

/// Long segments and a few q: sample, bracket, one counting pass, candidates only.
/// `writers`: how many threads of the counting pass share a segment's candidate list,
/// each with slots of its own, how many of a segment's values one of their loop rounds
/// reads, and how many rounds a segment takes.
fn sample_plan(
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
    // last slot that stays free (see `write_first` in select.wgsl).
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

/// Many short columns of a row-major matrix (too short to sample, too long to rank by
/// counting), on a software adapter: transposed first, so that the radix passes read
/// each column as a contiguous run (segment c of the `Rows` grouping returned is column
/// c). Three quantiles of 5000 × 2000 took 357 ms on lavapipe through the columns,
/// whose histogram passes read 16 columns of every row ~8 KB apart.
fn transposed_columns(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    grouping: &Grouping,
    unique_q: usize,
) -> Result<Option<(GpuTensor, Grouping)>> {
    let Some((rows, cols)) = transposes(gpu, grouping, unique_q) else { return Ok(None) };
    let t = record_transpose(gpu, encoder, &input.reshaped(&[rows, cols])?)?;
    Ok(Some((t, Grouping::Rows { rows: cols, len: rows })))
}

/// `(rows, cols)` where [`transposed_columns`] transposes, on a software adapter:
/// columns that take the radix passes over the whole input. Short ones (too short to
/// sample), 64 or more of them (fewer: 4000 × 16 2.2 → 2.4 ms); long ones with more
/// distinct q than the counting pass brackets, two or more (on lavapipe, 99
/// percentiles: 1e5 × 100 575–594 → 279 ms, 20000 × 500 708 → 466 ms, 1e6 × 10 151 →
/// 123 ms, 5e6 × 2 144 → 130 ms; alternating runs).
fn transposes(gpu: &Gpu, grouping: &Grouping, unique_q: usize) -> Option<(usize, usize)> {
    let Grouping::Columns { rows, cols } = *grouping else { return None };
    let short = (rows as u64) < SAMPLE_MIN_LEN;
    let radix = short || unique_q > MAX_BRACKETS;
    let transposes = gpu.is_software()
        && (cols >= 64 || (!short && cols >= 2))
        && rows > SMALL_LEN as usize
        && radix
        && (rows * cols) as u64 <= gpu.max_chunk_elements();
    // Columns that a sorting network takes as they are (see network.rs) need none.
    let network = || {
        let seg = grouping.segments();
        rows <= NETWORK_MAX_LEN
            && plan::plan_reduction(&seg, &plan_limits(gpu)).is_ok_and(|plan| network_size(gpu, &seg, &plan).is_some())
    };
    (transposes && !network()).then_some((rows, cols))
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
    let whole_segments = plan.dispatches.iter().all(|d| d.k_first == 0 && d.k_end == seg.len);
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

/// The counting pass's vec4 view, its plan and whether its components are segments:
/// when the layout has a vec4 view, there are at most 4 brackets per segment, and a
/// workgroup covers at most `COUNT_VEC4_SEGMENTS` segments (the rows of its counts,
/// `sh_bc`).
fn count_view(gpu: &Gpu, seg: &Segments, unique_q: usize) -> Option<CountView> {
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
struct CountView {
    view: Segments,
    by_segment: bool,
    plan: plan::ReducePlan,
    writers: u64,
}

/// How the sampling path counts: through a vec4 view (else `count_main`), and where it
/// leaves the non-NaN counts (when it must produce them; both passes count them).
struct Counting<'a> {
    view: Option<&'a CountView>,
    counts: Option<&'a wgpu::Buffer>,
}

/// A kernel with one thread per segment over the whole input, per window (every window
/// holds whole segments: the caller checks): `small_main` (short segments: rank by
/// counting) or `tail_main` (the radix passes' tail with `shift` bits left, which also
/// reads the group prefixes).
#[allow(clippy::too_many_arguments)]
fn record_segment_threads(
    ctx: &Ctx,
    encoder: &mut wgpu::CommandEncoder,
    input: &GpuTensor,
    plan: &plan::ReducePlan,
    qp: &SelectParams,
    (sb0, sb1): (u64, u64),
    entry: &'static str,
    shift: u32,
) -> Result<()> {
    let pipeline = ctx.gpu.pipeline(Shader::Select, entry);
    for d in &plan.dispatches {
        let first = (d.seg_first as u64).max(sb0);
        let end = (d.seg_end as u64).min(sb1);
        if first >= end {
            continue;
        }
        let params = ctx.gpu.uniform(&SelectParams {
            window_lo: d.window_lo as u32,
            seg_first: first as u32,
            seg_end: end as u32,
            shift,
            ..*qp
        });
        let mut bindings = vec![
            params.as_entire_binding(),
            Gpu::binding(input.buffer(), d.window_lo, d.window_len),
            ctx.slots.as_entire_binding(),
            ctx.hdr.as_entire_binding(),
        ];
        if entry == "tail_main" {
            bindings.push(ctx.gprefix.as_entire_binding());
        }
        ctx.gpu.dispatch(encoder, &pipeline, &bindings, per_item(end - first)?)?;
    }
    Ok(())
}

/// The longest segment whose radix passes end in `tail_main` (software adapters), and
/// the bits resolved before it: by then a group holds a few keys of such a segment
/// (the tail keeps 32 of them; more, and the passes go on for that segment). Lavapipe,
/// quartiles, GPU time, best of alternating runs: 257 × 40000 401 → 306 ms, 300 × 33333
/// 327 → 263 ms, 1000 × 10000 163–167 → 149–150 ms, 1500 × 6666 214–220 → 199 ms,
/// 300 × 300 5.1 → 3.9 ms; longer segments lost (2000 × 5000 133 → 161–192 ms,
/// 4096 × 2441 125–128 → 140–142 ms).
const TAIL_MAX_LEN: u32 = 1536;
const TAIL_MIN_BITS: u32 = 14;
const TAIL_MIN_ELEMENTS: u64 = 1 << 20;

/// The fast path's front half: sample, sample quantiles, brackets, the counting pass,
/// `init_main` (`record_init`, after the counts exist) and the resolution of every slot.
/// Returns the candidate lists (`cap` dense keys per segment), their lengths, the
/// brackets and the counting grids (`count_args`).
#[allow(clippy::too_many_arguments)]
fn record_brackets(
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
struct CountOutputs<'a> {
    brk: &'a wgpu::Buffer,
    bcount: &'a wgpu::Buffer,
    ccount: &'a wgpu::Buffer,
    cand: &'a wgpu::Buffer,
    valid: &'a wgpu::Buffer,
    args: &'a wgpu::Buffer,
    grids: &'a [u32],
}

/// Workgroups of each `count_vec4` dispatch of `plan` (0: none).
fn count_vec4_grids(plan: &plan::ReducePlan) -> Vec<u32> {
    plan.dispatches.iter().map(|d| if d.k_end <= d.k_first { 0 } else { d.tiles * d.parts }).collect()
}

/// Workgroups of each `count_main` dispatch of `plan` (0: none).
fn count_main_grids(gpu: &Gpu, seg: &Segments, plan: &plan::ReducePlan) -> Vec<u32> {
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
/// select.wgsl): the two-count pass's grid, the tie-counting pass's grid with x = 0,
/// and that x, which bracket_main moves over when the sample shows ties.
fn count_args(gpu: &Gpu, grids: &[u32]) -> Result<wgpu::Buffer> {
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
fn dispatch_counting(
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
fn record_valid_moments(
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
fn record_count(
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
fn record_count_vec4(
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
    let bytes = read_buffer(gpu, &sel.order_stats, 0, (s_count * qs.len() * 16) as u64)?;
    let raw: Vec<[u32; 4]> = bytemuck::pod_collect_to_vec(&bytes);
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

    #[test]
    fn schedules_cover_32_bits() {
        for len in [1, 10, 100, 1000, 100_000, 10_000_000] {
            for slots in [2, 6, 256] {
                for segments in [1, 1000, 1 << 20] {
                    let s = digit_schedule(len, slots, segments);
                    assert_eq!(s.iter().sum::<u32>(), 32);
                    assert!(s.iter().all(|&b| (4..=MAX_BITS).contains(&b)));
                    // One batch of histograms holds every segment where 4-bit digits let it.
                    let bins = (slots as u64 * segments) << s.iter().max().unwrap();
                    assert!(bins <= HIST_CAP || s.iter().all(|&b| b == 4), "{len} {slots} {segments}: {s:?}");
                }
            }
        }
    }
}
