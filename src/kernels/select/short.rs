//! Short segments on the radix path: many short columns transposed first, one thread
//! per segment to rank the shortest (`small_main`), and the radix passes' tail in one
//! walk (`tail_main`; `select_short.wgsl`).

use super::radix::Ctx;
use super::sampling::{MAX_BRACKETS, SAMPLE_MIN_LEN};
use super::{per_item, takes_network, SelectParams};
use crate::error::Result;
use crate::gpu::{Gpu, GpuTensor, Shader};
use crate::kernels::copy::record_transpose;
use crate::kernels::network::NETWORK_MAX_LEN;
use crate::kernels::plan;
use crate::segments::Grouping;

/// Longest segment ranked by counting (one thread per segment, len² compares).
pub(super) const SMALL_LEN: u32 = 64;

/// Many short columns of a row-major matrix (too short to sample, too long to rank by
/// counting), on a software adapter: transposed first, so that the radix passes read
/// each column as a contiguous run (segment c of the `Rows` grouping returned is column
/// c). Three quantiles of 5000 × 2000 took 357 ms on lavapipe through the columns,
/// whose histogram passes read 16 columns of every row ~8 KB apart.
pub(super) fn transposed_columns(
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
pub(super) fn transposes(gpu: &Gpu, grouping: &Grouping, unique_q: usize) -> Option<(usize, usize)> {
    let Grouping::Columns { rows, cols } = *grouping else { return None };
    let short = (rows as u64) < SAMPLE_MIN_LEN;
    let radix = short || unique_q > MAX_BRACKETS;
    let transposes = gpu.is_software()
        && (cols >= 64 || (!short && cols >= 2))
        && rows > SMALL_LEN as usize
        && radix
        && (rows * cols) as u64 <= gpu.max_chunk_elements();
    // Columns that a sorting network takes as they are (see network.rs) need none.
    let network = || rows <= NETWORK_MAX_LEN && takes_network(gpu, &grouping.segments());
    (transposes && !network()).then_some((rows, cols))
}

/// A kernel with one thread per segment over the whole input, per window (every window
/// holds whole segments: the caller checks): `small_main` (short segments: rank by
/// counting) or `tail_main` (the radix passes' tail with `shift` bits left, which also
/// reads the group prefixes).
#[allow(clippy::too_many_arguments)]
pub(super) fn record_segment_threads(
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
pub(super) const TAIL_MAX_LEN: u32 = 1536;

pub(super) const TAIL_MIN_BITS: u32 = 14;

pub(super) const TAIL_MIN_ELEMENTS: u64 = 1 << 20;
