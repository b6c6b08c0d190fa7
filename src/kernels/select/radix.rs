//! The radix passes of the quantile selection: per-(segment, group) histograms of one
//! digit over a source (the input, or the candidate lists of the sampling path), then
//! the scan that appends each wanted rank's digit (`select_hist.wgsl`, `scan_main`).

use super::{per_item, plan_limits_in, workgroups, SelectParams, WG};
use crate::error::Result;
use crate::gpu::{Gpu, Shader};
use crate::kernels::{lane_group, lane_walk_flags, plan, vec4_view};
use crate::segments::{Segments, Vec4Parts};

/// Workgroup-local histogram bins (`LBINS` in select.wgsl).
pub(super) const LOCAL_BINS: u32 = 4096;

/// Group prefixes a workgroup holds (`GPCAP` in select.wgsl).
pub(super) const GROUP_CAP: u32 = 1024;

/// Most histogram bins of one segment batch (u32 each: 16 MiB).
pub(super) const HIST_CAP: u64 = 1 << 22;

/// Most segments of a histogram batch whose scan takes a workgroup each (`scan_wide`):
/// on a GPU, where one thread's walk over up to 2048 bins is a chain of dependent
/// loads (not measured: no GPU yet). Not on a software adapter: there the walk is
/// cheap and the workgroup is not (six scans of 1e7 × 1's quartiles: 0.31 → 0.45 ms).
pub(super) const SCAN_WIDE: u64 = 256;

pub(super) const SCAN_WIDE_SOFTWARE: u64 = 0;

/// Widest radix digit.
pub(super) const MAX_BITS: u32 = 11;

/// Elements a thread should at least get before another workgroup is added.
pub(super) const MIN_PER_THREAD: u64 = 32;

/// Digit widths of the radix passes for `segments` segments of `len` elements and
/// `slots` wanted ranks: wide digits (few passes over the input) for long segments,
/// narrow ones for short segments, whose histograms (a bucket row per slot group, up
/// to `slots` of them after the first pass) would otherwise outweigh their data; and
/// narrow enough, where 4 bits are, that one batch of histograms (`HIST_CAP` bins)
/// holds every segment: each further batch reads the input again.
pub(super) fn digit_schedule(len: u64, slots: usize, segments: u64) -> Vec<u32> {
    let one_batch = (HIST_CAP / (slots.max(1) as u64 * segments.max(1))).max(1).ilog2().max(4);
    let want = (4 * len / slots.max(1) as u64).max(2).ilog2().clamp(4, MAX_BITS).min(one_batch);
    let passes = 32u32.div_ceil(want);
    (0..passes).map(|i| 32 / passes + u32::from(i < 32 % passes)).collect()
}

pub(super) fn prev_pow2(x: u32) -> u32 {
    if x == 0 {
        1
    } else {
        1 << x.ilog2()
    }
}

/// Segments per workgroup that the layout would like: neighbouring segments for
/// interleaved layouts, several short segments at once for short contiguous ones.
pub(super) fn preferred_tile(seg: &Segments) -> u32 {
    if seg.segments_interleaved() {
        seg.count.min(seg.seg_div).next_power_of_two().min(64)
    } else {
        prev_pow2((WG * 16 / seg.len.max(1)).clamp(1, WG))
    }
}

/// The buffers and fixed parameters shared by the kernels of one selection.
pub(super) struct Ctx<'a> {
    pub(super) gpu: &'a Gpu,
    pub(super) seg: Segments,
    pub(super) base: SelectParams,
    pub(super) slots: wgpu::Buffer,
    pub(super) hdr: wgpu::Buffer,
    pub(super) gprefix: wgpu::Buffer,
}

/// One element source of a histogram pass: a buffer of f32 with its segment
/// description and window plan in units of `unit` floats (see [`hist_layout`]), the
/// segments' mode it serves, and for candidate lists (which hold dense keys, 0 in a
/// free slot) each segment's extent and the brackets that made the keys dense.
pub(super) struct Source<'a> {
    pub(super) buffer: &'a wgpu::Buffer,
    pub(super) seg: Segments,
    pub(super) plan: &'a plan::ReducePlan,
    pub(super) unit: u64,
    pub(super) mode: u32,
    pub(super) limit: Option<&'a wgpu::Buffer>,
    pub(super) brackets: Option<&'a wgpu::Buffer>,
}

/// How the histogram passes read a source of layout `seg` (window plan `plan`):
/// through a vec4 view where four neighbouring elements of a segment make one (the
/// sample, candidate lists, rows, a single column; `hist_vec4`, one load a quad), else
/// float by float. Returns the layout, its plan and its unit in floats.
pub(super) fn hist_layout(gpu: &Gpu, seg: Segments, plan: plan::ReducePlan) -> (Segments, plan::ReducePlan, u64) {
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
pub(super) fn shape(target_workgroups: u32, seg: &Segments, tile_cap: u32, segs: u64, k: u64) -> (u32, u64, u64) {
    shape_with_tile(target_workgroups, prev_pow2(preferred_tile(seg).min(tile_cap.max(1))), segs, k)
}

/// [`shape`] for a given tile.
pub(super) fn shape_with_tile(target_workgroups: u32, tile: u32, segs: u64, k: u64) -> (u32, u64, u64) {
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
    pub(super) fn radix_pass(
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
                // Few keys with a group (see the marked passes in select_hist.wgsl): no more
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
        // keys' low end (see `BRK` in select_bracket.wgsl).
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

#[cfg(test)]
mod tests {
    use super::*;

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
