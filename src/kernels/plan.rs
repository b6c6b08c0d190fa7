//! How a segmented reduction is cut into dispatches.
//!
//! A storage binding can span at most `max_storage_buffer_binding_size` bytes
//! (128 MiB on lavapipe) and a dispatch at most 65535 workgroups per dimension, so a
//! large input is reduced in several dispatches, each over a window of the buffer.
//! Every dispatch writes one partial state per (segment, part); the merge pass folds
//! a segment's partials in order. The windows are cut, in order of preference:
//!
//! - A: all segments, a range of whole `k_hi` blocks (rows of a matrix, samples of NCHW);
//! - B: a range of whole `s_hi` blocks, all elements (rows of layer norm, samples of group norm);
//! - C: one `s_hi` block, a range of `k_hi` blocks;
//! - D: one segment, a piece of one `k_hi` block (always fits).
//!
//! The plan is pure arithmetic, tested on the CPU.

use crate::error::{Error, Result};
use crate::segments::Segments;

/// One dispatch of the partials kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReduceDispatch {
    /// Bound window, in f32 elements of the input buffer.
    pub window_lo: u64,
    pub window_len: u64,
    pub seg_first: u32,
    pub seg_end: u32,
    pub k_first: u32,
    pub k_end: u32,
    pub parts: u32,
    pub part_offset: u32,
    pub tiles: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReducePlan {
    pub tile_width: u32,
    pub parts_total: u32,
    pub dispatches: Vec<ReduceDispatch>,
}

impl ReducePlan {
    /// Whether every dispatch holds whole segments of `len` elements (no segment is
    /// split between windows).
    pub fn whole_segments(&self, len: u32) -> bool {
        self.dispatches.iter().all(|d| d.k_first == 0 && d.k_end == len)
    }
}

/// Limits that shape a plan.
#[derive(Clone, Copy, Debug)]
pub struct PlanLimits {
    /// Most elements one window may span.
    pub max_span: u64,
    /// Window offsets are multiples of this many elements.
    pub align: u64,
    /// Workgroups the whole reduction aims for.
    pub target_workgroups: u32,
    /// Most partial states the partials buffer may hold.
    pub max_partials: u64,
    /// Most elements a thread should at least get before another part is added.
    pub min_per_thread: u32,
    /// Most segments a workgroup may take (a kernel's per-workgroup rows of counts).
    pub max_tile: u32,
}

const WG: u32 = 256;

/// Segments per workgroup: spread threads across segments when segments are
/// neighbours in memory, else along each segment.
/// Short segments share a workgroup too (a thread each, when they are very short),
/// so that a million rows of layer norm are not a million workgroups.
pub fn tile_width(seg: &Segments) -> u32 {
    let interleaved =
        if seg.segments_interleaved() { (seg.count.min(seg.seg_div)).next_power_of_two().min(64) } else { 1 };
    // Element lanes such that each thread gets at least 16 elements.
    let lanes = seg.len.div_ceil(16).next_power_of_two().clamp(1, WG);
    let short = WG / lanes;
    interleaved.max(short).min(seg.count.next_power_of_two()).max(1)
}

/// Segments per workgroup when there are many segments: as many as leave each
/// segment its share of the `target` workgroups' threads (a power of two), so that a
/// device that wants few, long-running workgroups (a software adapter: its barriers are
/// expensive) gets about `target` of them instead of one or more per segment.
pub fn tile_for_target(seg: &Segments, target: u32) -> u32 {
    let threads = (target as u64 * WG as u64) / (seg.count as u64).max(1);
    let lanes = 1u32 << threads.clamp(1, WG as u64).ilog2();
    (WG / lanes).min(seg.count.next_power_of_two()).max(1)
}

struct Chunk {
    lo: u64,
    hi: u64,
    seg_first: u32,
    seg_end: u32,
    k_first: u32,
    k_end: u32,
    /// Index of this chunk's element range among the ranges of one segment.
    k_slot: usize,
}

pub fn plan_reduction(seg: &Segments, lim: &PlanLimits) -> Result<ReducePlan> {
    let (s_count, len) = (seg.count as u64, seg.len as u64);
    if s_count == 0 || len == 0 {
        return Ok(ReducePlan { tile_width: 1, parts_total: 1, dispatches: Vec::new() });
    }
    let seg_div = seg.seg_div as u64;
    let inner = seg.inner_div as u64;
    let (ssh, ssl, esh, esl) =
        (seg.seg_stride_hi as u64, seg.seg_stride_lo as u64, seg.elem_stride_hi as u64, seg.elem_stride_lo as u64);
    let g_blocks = s_count.div_ceil(seg_div);
    let h_blocks = len.div_ceil(inner);
    let maxlo = seg_div.min(s_count) - 1;
    let inner_eff = inner.min(len);
    // Span of g s_hi blocks and h k_hi blocks starting anywhere.
    let span = |g: u64, h: u64| (g - 1) * ssh + maxlo * ssl + (h - 1) * esh + (inner_eff - 1) * esl + 1;
    let fit = |base: u64, stride: u64, max_blocks: u64| -> u64 {
        if base > lim.max_span {
            return 0;
        }
        match (lim.max_span - base).checked_div(stride) {
            Some(q) => max_blocks.min(q + 1),
            None => max_blocks, // stride 0: every block starts at the same place
        }
    };

    let mut chunks = Vec::new();
    let mut tile = tile_width(seg).max(tile_for_target(seg, lim.target_workgroups)).min(lim.max_tile.max(1));
    let h_a = fit(span(g_blocks, 1), esh, h_blocks);
    let g_b = fit(span(1, h_blocks), ssh, g_blocks);
    let h_c = fit(span(1, 1), esh, h_blocks);
    let block_chunks = |g_step: u64, h_step: u64, chunks: &mut Vec<Chunk>| {
        let mut g0 = 0;
        while g0 < g_blocks {
            let g1 = (g0 + g_step).min(g_blocks);
            let (mut h0, mut slot) = (0, 0);
            while h0 < h_blocks {
                let h1 = (h0 + h_step).min(h_blocks);
                let lo = g0 * ssh + h0 * esh;
                chunks.push(Chunk {
                    lo,
                    hi: lo + span(g1 - g0, h1 - h0),
                    seg_first: (g0 * seg_div) as u32,
                    seg_end: (g1 * seg_div).min(s_count) as u32,
                    k_first: (h0 * inner) as u32,
                    k_end: (h1 * inner).min(len) as u32,
                    k_slot: slot,
                });
                h0 = h1;
                slot += 1;
            }
            g0 = g1;
        }
    };
    if h_a >= 1 {
        block_chunks(g_blocks, h_a, &mut chunks);
    } else if g_b >= 1 {
        block_chunks(g_b, h_blocks, &mut chunks);
    } else if h_c >= 1 {
        block_chunks(1, h_c, &mut chunks);
    } else {
        // D: one segment at a time, pieces of one k_hi block.
        tile = 1;
        let piece = (lim.max_span - 1).checked_div(esl).map_or(inner_eff, |q| (q + 1).min(inner_eff));
        for s in 0..s_count {
            let base = (s / seg_div) * ssh + (s % seg_div) * ssl;
            let mut slot = 0;
            for h in 0..h_blocks {
                let block_end = ((h + 1) * inner).min(len);
                let mut k0 = h * inner;
                while k0 < block_end {
                    let k1 = (k0 + piece).min(block_end);
                    let lo = base + h * esh + (k0 - h * inner) * esl;
                    let hi = base + h * esh + (k1 - 1 - h * inner) * esl + 1;
                    chunks.push(Chunk {
                        lo,
                        hi,
                        seg_first: s as u32,
                        seg_end: s as u32 + 1,
                        k_first: k0 as u32,
                        k_end: k1 as u32,
                        k_slot: slot,
                    });
                    slot += 1;
                    k0 = k1;
                }
            }
        }
    }

    // Parts: enough workgroups in all, at least `min_per_thread` elements per thread.
    let lanes = (WG / tile) as u64;
    let slots = chunks.iter().map(|c| c.k_slot).max().unwrap_or(0) + 1;
    let dispatches_per_slot = (chunks.len() / slots).max(1) as u64;
    let mut slot_parts = vec![1u32; slots];
    for c in chunks.iter().filter(|c| c.seg_first == 0) {
        let tiles = (c.seg_end - c.seg_first).div_ceil(tile) as u64;
        let k = (c.k_end - c.k_first) as u64;
        let want = (lim.target_workgroups as u64 / (tiles * dispatches_per_slot).max(1)).max(1);
        let useful = k.div_ceil(lanes * lim.min_per_thread as u64).max(1);
        slot_parts[c.k_slot] = want.min(useful).min(1 << 16) as u32;
    }
    // Keep the partial states within one binding.
    loop {
        let total: u64 = slot_parts.iter().map(|&p| p as u64).sum();
        if total * s_count <= lim.max_partials {
            break;
        }
        if slot_parts.iter().all(|&p| p == 1) {
            return Err(Error::TooLarge(format!(
                "{s_count} segments × {total} partial states exceed one storage binding; \
                 reduce the input or use fewer segments per call"
            )));
        }
        for p in slot_parts.iter_mut() {
            *p = (*p / 2).max(1);
        }
    }
    let mut offsets = vec![0u32; slots];
    for i in 1..slots {
        offsets[i] = offsets[i - 1] + slot_parts[i - 1];
    }
    let parts_total = offsets[slots - 1] + slot_parts[slots - 1];
    let dispatches = chunks
        .iter()
        .map(|c| {
            let window_lo = c.lo / lim.align * lim.align;
            ReduceDispatch {
                window_lo,
                window_len: c.hi - window_lo,
                seg_first: c.seg_first,
                seg_end: c.seg_end,
                k_first: c.k_first,
                k_end: c.k_end,
                parts: slot_parts[c.k_slot],
                part_offset: offsets[c.k_slot],
                tiles: (c.seg_end - c.seg_first).div_ceil(tile),
            }
        })
        .collect();
    Ok(ReducePlan { tile_width: tile, parts_total, dispatches })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::Grouping;

    fn limits(max_span: u64) -> PlanLimits {
        PlanLimits { max_span, align: 4, target_workgroups: 8, max_partials: 1 << 20, min_per_thread: 1, max_tile: WG }
    }

    /// Every (segment, element) pair must be covered by exactly one dispatch, inside
    /// its window, and the window must not exceed the span limit (plus alignment slack).
    fn check(g: Grouping, max_span: u64) {
        let seg = g.segments();
        let lim = limits(max_span);
        let plan = plan_reduction(&seg, &lim).unwrap();
        let mut covered = vec![0u32; g.numel()];
        for d in &plan.dispatches {
            assert!(d.window_len <= max_span + lim.align, "{g:?} span {max_span}: window {}", d.window_len);
            assert!(d.window_lo + d.window_len <= g.numel() as u64, "{g:?}: window past the end");
            assert!(d.parts >= 1 && d.part_offset + d.parts <= plan.parts_total);
            for s in d.seg_first..d.seg_end {
                for k in d.k_first..d.k_end {
                    let off = seg.offset(s as usize, k as usize) as u64;
                    assert!(off >= d.window_lo && off < d.window_lo + d.window_len, "{g:?}: ({s},{k}) outside window");
                    covered[off as usize] += 1;
                }
            }
        }
        assert!(covered.iter().all(|&c| c == 1), "{g:?} span {max_span}: coverage {covered:?}");
    }

    #[test]
    fn plans_cover_every_element_once() {
        let groupings = [
            Grouping::Columns { rows: 37, cols: 5 },
            Grouping::Columns { rows: 40, cols: 1 },
            Grouping::Rows { rows: 9, len: 13 },
            Grouping::Channels { n: 5, c: 3, spatial: 7, channels_last: false },
            Grouping::Channels { n: 5, c: 3, spatial: 7, channels_last: true },
            Grouping::Groups { n: 3, c: 6, spatial: 5, groups: 2, channels_last: false },
            Grouping::Groups { n: 3, c: 6, spatial: 5, groups: 3, channels_last: true },
            Grouping::Instances { n: 3, c: 4, spatial: 6, channels_last: false },
            Grouping::Instances { n: 3, c: 4, spatial: 6, channels_last: true },
        ];
        for g in groupings {
            for span in [1, 2, 3, 7, 16, 40, 100, 1000] {
                check(g, span);
            }
        }
    }
}
