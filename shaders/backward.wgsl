// The norm layers' backward pass, and the small per-segment steps of their forward.
//
// With x̂ = ((x − mean[t]) − mean_lo[t]) · invstd[t] (t = the statistics segment of the
// element, the forward's saved statistics; mean_lo is what rounding the mean to float32
// lost, so that x − mean is exact near the mean however large it is) and g = γ[p] · dy
// (p = its γ/β index), the gradient of a normalization over N elements per statistics
// segment is
//
//   dx = invstd[t] · (g − Σg/N − x̂ · Σ(g·x̂)/N)      (train: batch statistics)
//   dx = invstd[t] · g                                (eval: running statistics)
//   dγ[p] = Σ dy·x̂,  dβ[p] = Σ dy                    (over the elements of p)
//
// Entry points, in the order the host records them:
//   sums_main / sums_merge_main  one fused reduction over (dy, x): per reduction
//                                segment Σw·dy and Σw·dy·x̂ (w = γ[p] or 1), cut into
//                                dispatches and parts exactly as moments.wgsl
//   coeffs_main                  per statistics segment Σg/N and Σg·x̂/N from the sums of
//                                its reduction segments (several for group norm)
//   param_grads_main             dγ and dβ per parameter: a strided sum of the sums
//   dx_main                      the elementwise pass
// and two helpers of the forward pass:
//   poison_main                  NaN in a segment makes its mean and M2 NaN, ±inf its
//                                mean ±inf (or NaN) and M2 NaN, as PyTorch's sum / n
//                                (the moments kernel skips NaN)
//   instance_running_main        instance norm's running stats: the mean over samples
//                                of each instance's momentum update

// ---------------------------------------------------------------- index cursors
//
// A thread visits e, e + step, e + 2·step, ...; evaluating an IndexMap (or a segment's
// element offsets) at each costs integer divisions, which a software adapter runs one
// lane at a time. A cursor keeps the quotients and remainders instead and advances
// them with adds and compares; `MapStep` holds the step's own quotients (host side:
// `kernels::backward::MapStepGpu`). Valid when m2 is a multiple of d2 and d1, m2 <= 2^31
// (the host falls back to `map_index` otherwise).

struct MapStep {
    b1: u32,   // step % d1
    am1: u32,  // (step / d1) % m1
    bu: u32,   // (step % m2) / d2
    bw: u32,   // (step % m2) % d2
    um: u32,   // m2 / d2
    ok: u32,   // 1: cursors valid for this map
    _pad0: u32,
    _pad1: u32,
}

struct Cursor {
    r1: u32,  // e % d1
    qm: u32,  // (e / d1) % m1
    u2: u32,  // (e % m2) / d2
    w2: u32,  // (e % m2) % d2
}

fn cursor_at(m: IndexMap, e: u32) -> Cursor {
    let r2 = e % m.m2;
    return Cursor(e % m.d1, (e / m.d1) % m.m1, r2 / m.d2, r2 % m.d2);
}

fn cursor_value(m: IndexMap, c: Cursor) -> u32 {
    return c.qm * m.s1 + c.u2 * m.s2;
}

fn cursor_next(m: IndexMap, st: MapStep, c: Cursor) -> Cursor {
    var n = c;
    n.r1 += st.b1;
    var carry = 0u;
    if (n.r1 >= m.d1) {
        n.r1 -= m.d1;
        carry = 1u;
    }
    n.qm += st.am1 + carry;
    if (n.qm >= m.m1) {
        n.qm -= m.m1;
    }
    n.w2 += st.bw;
    n.u2 += st.bu;
    if (n.w2 >= m.d2) {
        n.w2 -= m.d2;
        n.u2 += 1u;
    }
    if (n.u2 >= st.um) {
        n.u2 -= st.um;
    }
    return n;
}

// ---------------------------------------------------------------- reduction

struct SumsParams {
    seg: Segments,       // the reduction segments
    elem_map: IndexMap,  // element k of a segment -> offset from the segment's base
    elem_step: MapStep,  // cursor step of elem_map (lanes elements)
    stat_map: IndexMap,  // flat index -> statistics segment (when not per segment)
    param_map: IndexMap, // flat index -> gamma index (weighted)
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
    flags: u32,          // 1: statistics segment = s / stat_div; 2: weight by gamma;
                         // sums_vec4: 4 software adapter (lane groups of flags >> 16),
                         // 8 each lane writes its own partial (parts_total counts lanes),
                         // 32 the components are four segments (columns) whose element k
                         // has statistics segment k (a row: layer norm's dγ, dβ)
    stat_div: u32,
    comp_end: u32,       // flag 32: one past the last segment
    _pad0: u32,
}

const STAT_PER_SEGMENT: u32 = 1u;
const WEIGHTED: u32 = 2u;

@group(0) @binding(0) var<uniform> sp: SumsParams;
@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read> sdy: array<f32>;
@group(0) @binding(3) var<storage, read> s_mean: array<f32>;
@group(0) @binding(4) var<storage, read> s_inv: array<f32>;
@group(0) @binding(5) var<storage, read> s_gamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> s_partials: array<vec2<f32>>;
@group(0) @binding(7) var<storage, read> s_mean_lo: array<f32>;

var<workgroup> sh_sums: array<vec2<f32>, WG>;

@compute @workgroup_size(256)
fn sums_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= sp.tiles * sp.parts) {
        return;
    }
    let task = lane_task(w, lid, sp.tile_width, sp.parts, sp.seg_first, sp.k_first, sp.k_end);
    let s = task.s;

    var acc = vec2<f32>(0.0, 0.0);
    if (s < sp.seg_end) {
        let seg_base = segment_base(sp.seg, s);
        let base = seg_base - sp.window_lo;
        if ((sp.flags & STAT_PER_SEGMENT) != 0u && (sp.flags & WEIGHTED) == 0u) {
            // Batch, instance and group norm: one statistics segment, no weight.
            let t = s / sp.stat_div;
            let mu = s_mean[t];
            let lo = s_mean_lo[t];
            let inv = s_inv[t];
            if (sp.seg.inner_div >= task.lanes && sp.seg.elem_stride_lo == 1u) {
                // Contiguous runs (NCHW): block by block, consecutive lanes on consecutive floats.
                var k0 = task.k_lo;
                while (k0 < task.k_hi) {
                    let blk = k0 / sp.seg.inner_div;
                    let blk_end = min((blk + 1u) * sp.seg.inner_div, task.k_hi);
                    let off0 = base + blk * sp.seg.elem_stride_hi + (k0 - blk * sp.seg.inner_div);
                    let n = blk_end - k0;
                    for (var j = task.lane_k; j < n; j += task.lanes) {
                        let d = sdy[off0 + j];
                        acc += vec2<f32>(d, d * (((sx[off0 + j] - mu) - lo) * inv));
                    }
                    k0 = blk_end;
                }
            } else if (sp.elem_step.ok != 0u) {
                var cur = cursor_at(sp.elem_map, task.k_lo + task.lane_k);
                for (var k = task.k_lo + task.lane_k; k < task.k_hi; k += task.lanes) {
                    let i = base + cursor_value(sp.elem_map, cur);
                    cur = cursor_next(sp.elem_map, sp.elem_step, cur);
                    let d = sdy[i];
                    acc += vec2<f32>(d, d * (((sx[i] - mu) - lo) * inv));
                }
            } else {
                for (var k = task.k_lo + task.lane_k; k < task.k_hi; k += task.lanes) {
                    let i = base + element_offset(sp.seg, k);
                    let d = sdy[i];
                    acc += vec2<f32>(d, d * (((sx[i] - mu) - lo) * inv));
                }
            }
        } else {
            // Layer norm: rows weighted by gamma[position], or columns whose
            // elements each belong to another row's statistics.
            for (var k = task.k_lo + task.lane_k; k < task.k_hi; k += task.lanes) {
                let off = element_offset(sp.seg, k);
                let i = base + off;
                let e = seg_base + off;
                var t: u32;
                if ((sp.flags & STAT_PER_SEGMENT) != 0u) {
                    t = s / sp.stat_div;
                } else {
                    t = map_index(sp.stat_map, e);
                }
                var d = sdy[i];
                if ((sp.flags & WEIGHTED) != 0u) {
                    d *= s_gamma[map_index(sp.param_map, e)];
                }
                acc += vec2<f32>(d, d * (((sx[i] - s_mean[t]) - s_mean_lo[t]) * s_inv[t]));
            }
        }
    }
    sh_sums[lid] = acc;
    workgroupBarrier();
    for (var stride = task.lanes / 2u; stride > 0u; stride /= 2u) {
        if (task.lane_k < stride) {
            sh_sums[lid] += sh_sums[lid + stride * sp.tile_width];
        }
        workgroupBarrier();
    }
    if (task.lane_k == 0u && s < sp.seg_end) {
        s_partials[s * sp.parts_total + sp.part_offset + task.part] = sh_sums[lid];
    }
}

// sums_main over a vec4 view of x and dy, at the cost of four floats' loads per vec4
// on a software adapter. `sp.seg` is the view. Either four neighbouring elements of one
// segment per load, for one statistics segment per reduction segment: batch, instance
// and group norm with H·W a multiple of 4, and layer norm's rows weighted by γ at the
// position in the row (flag 2, `gamma4`). Or (flag 32) four neighbouring columns of
// rows whose statistics are per row: layer norm's dγ and dβ.
@group(0) @binding(1) var<storage, read> sx4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> sdy4: array<vec4<f32>>;
// γ as vec4s, by vec4 position in a row (sums_vec4 and dx_vec4 with γ per element).
@group(0) @binding(9) var<storage, read> gamma4: array<vec4<f32>>;

// vec4 i of x and of dy (sums_vec4 and dx_vec4): from the buffers, or their staged
// texels (TEXEL_INPUT).
fn x4_at(i: u32) -> vec4<f32> {
    if (TEXEL_INPUT) {
        return input_texel(i);
    }
    return sx4[i];
}

fn dy4_at(i: u32) -> vec4<f32> {
    if (TEXEL_INPUT) {
        return second_texel(i);
    }
    return sdy4[i];
}

const COLUMNS_BY_ROW: u32 = 32u;
// The same two choices (flags 2 and 32) as pipeline constants, which fold the loop's
// branches away: a software adapter would run the loads of both every iteration.
override SUMS_WEIGHTED: bool = false;
override SUMS_BY_ROW: bool = false;
// The components are four segments, each with its own statistics segment (channels-last).
const COMPONENT_SEGMENTS: u32 = 64u;

@compute @workgroup_size(256)
fn sums_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= sp.tiles * sp.parts) {
        return;
    }
    let task = lane_task(w, lid, sp.tile_width, sp.parts, sp.seg_first, sp.k_first, sp.k_end);
    let s = task.s;
    let weighted = SUMS_WEIGHTED;
    let by_row = SUMS_BY_ROW;
    let components = by_row || (sp.flags & COMPONENT_SEGMENTS) != 0u;

    var sum_dy = vec4<f32>(0.0);
    var sum_dyx = vec4<f32>(0.0);
    if (s < sp.seg_end) {
        let base = segment_base(sp.seg, s) - sp.window_lo;
        // One statistics segment for the whole segment, one per component (its four
        // segments), or (by_row) one per element.
        var mu = vec4<f32>(0.0);
        var lo = vec4<f32>(0.0);
        var inv = vec4<f32>(0.0);
        for (var c = 0u; c < 4u; c++) {
            let t = select(select(s, min(4u * s + c, sp.comp_end - 1u), components) / sp.stat_div, 0u, by_row);
            mu[c] = s_mean[t];
            lo[c] = s_mean_lo[t];
            inv[c] = s_inv[t];
        }
        let lw = lane_walk(task.k_lo, task.k_hi, task.lane_k, task.lanes, (sp.flags & 4u) != 0u, sp.flags >> 16u);
        var walk = element_walk(sp.seg, base, lw.x, lw.z);
        for (var k = lw.x; k < lw.y; k += lw.z) {
            let i = walk_offset(walk);
            walk_next(&walk);
            var d = dy4_at(i);
            if (weighted) {
                d *= gamma4[k];
            }
            if (by_row) {
                mu = vec4<f32>(s_mean[k]);
                lo = vec4<f32>(s_mean_lo[k]);
                inv = vec4<f32>(s_inv[k]);
            }
            sum_dy += d;
            sum_dyx += d * (((x4_at(i) - mu) - lo) * inv);
        }
    }
    if (components) {
        // Each component its own segment's sums.
        for (var c = 0u; c < 4u; c++) {
            let sc = 4u * s + c;
            let acc = vec2<f32>(sum_dy[c], sum_dyx[c]);
            if ((sp.flags & 8u) != 0u) {
                if (s < sp.seg_end && sc < sp.comp_end) {
                    s_partials[sc * sp.parts_total + (sp.part_offset + task.part) * task.lanes + task.lane_k] = acc;
                }
            } else {
                sum_lanes(lid, task, acc, sc, s < sp.seg_end && sc < sp.comp_end);
            }
        }
        return;
    }
    let acc = vec2<f32>(dot(sum_dy, vec4<f32>(1.0)), dot(sum_dyx, vec4<f32>(1.0)));
    if ((sp.flags & 8u) != 0u) {
        if (s < sp.seg_end) {
            s_partials[s * sp.parts_total + (sp.part_offset + task.part) * task.lanes + task.lane_k] = acc;
        }
        return;
    }
    sum_lanes(lid, task, acc, s, s < sp.seg_end);
}

// Add the element lanes' sums of each segment lane in a workgroup tree and write the
// total as segment `out_s`'s partial (where `live`). Every thread must call it.
fn sum_lanes(lid: u32, task: LaneTask, acc: vec2<f32>, out_s: u32, live: bool) {
    sh_sums[lid] = acc;
    workgroupBarrier();
    for (var stride = task.lanes / 2u; stride > 0u; stride /= 2u) {
        if (task.lane_k < stride) {
            sh_sums[lid] += sh_sums[lid + stride * sp.tile_width];
        }
        workgroupBarrier();
    }
    if (task.lane_k == 0u && live) {
        s_partials[out_s * sp.parts_total + sp.part_offset + task.part] = sh_sums[lid];
    }
    workgroupBarrier();
}

// Layer norm's dγ and dβ over a (rows, cols) input, cols a multiple of 4, in one
// binding: per column Σdy and Σdy·x̂ with each row's own statistics, as sums_vec4 with
// flag 32 computes them, but laid out as the affine kernel's grid: workgroup (tile,
// part) takes 4·WG vec4 columns and a block of rows, each thread four neighbouring
// vec4 columns down the block (so a row's statistics are loaded once per four vec4s
// and each SIMD batch reads 512 contiguous bytes of a row per step); one partial per
// (column, part), merged by sums_merge_main.
struct GridSumsParams {
    rows: u32,
    cols4: u32,
    parts: u32,      // row blocks (partials per column)
    rows_per: u32,   // rows of a block
    tiles: u32,      // column tiles of 4·WG vec4s
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> gsp: GridSumsParams;

// Σdy and Σdy·x̂ of vec4 i in row r.
fn grid_term(i: u32, mu: vec4<f32>, lo: vec4<f32>, inv: vec4<f32>, a: ptr<function, vec4<f32>>,
             b: ptr<function, vec4<f32>>) {
    let d = dy4_at(i);
    *a += d;
    *b += d * (((x4_at(i) - mu) - lo) * inv);
}

@compute @workgroup_size(256)
fn colsums_grid(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= gsp.tiles * gsp.parts) {
        return;
    }
    let part = w % gsp.parts;
    let c0 = (w / gsp.parts) * 4u * WG + 4u * lid;
    if (c0 >= gsp.cols4) {
        return;
    }
    let n = min(gsp.cols4 - c0, 4u);
    let r0 = part * gsp.rows_per;
    let r1 = min(r0 + gsp.rows_per, gsp.rows);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var i = r0 * gsp.cols4 + c0;
    for (var r = r0; r < r1; r++) {
        let mu = vec4<f32>(s_mean[r]);
        let lo = vec4<f32>(s_mean_lo[r]);
        let inv = vec4<f32>(s_inv[r]);
        grid_term(i, mu, lo, inv, &a0, &b0);
        if (n > 1u) {
            grid_term(i + 1u, mu, lo, inv, &a1, &b1);
        }
        if (n > 2u) {
            grid_term(i + 2u, mu, lo, inv, &a2, &b2);
        }
        if (n > 3u) {
            grid_term(i + 3u, mu, lo, inv, &a3, &b3);
        }
        i += gsp.cols4;
    }
    let a = array<vec4<f32>, 4>(a0, a1, a2, a3);
    let b = array<vec4<f32>, 4>(b0, b1, b2, b3);
    for (var j = 0u; j < n; j++) {
        for (var c = 0u; c < 4u; c++) {
            s_partials[(4u * (c0 + j) + c) * gsp.parts + part] = vec2<f32>(a[j][c], b[j][c]);
        }
    }
}

struct SumsMergeParams {
    count: u32,
    parts_total: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> smp: SumsMergeParams;
@group(0) @binding(1) var<storage, read> sm_in: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> sm_out: array<vec2<f32>>;

@compute @workgroup_size(256)
fn sums_merge_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = (wid.x + wid.y * nwg.x) * WG + lid;
    if (s >= smp.count) {
        return;
    }
    var acc = vec2<f32>(0.0, 0.0);
    for (var i = 0u; i < smp.parts_total; i++) {
        acc += sm_in[s * smp.parts_total + i];
    }
    sm_out[s] = acc;
}

// ---------------------------------------------------------------- coefficients

struct CoeffParams {
    count: u32,     // statistics segments
    sub: u32,       // reduction segments per statistics segment (C/G for group norm, else 1)
    channels: u32,  // gamma index of reduction segment r is r % channels
    flags: u32,     // 1: multiply by gamma (the sums are unweighted)
    inv_n: f32,     // 1 / elements per statistics segment
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const APPLY_GAMMA: u32 = 1u;

@group(0) @binding(0) var<uniform> cp: CoeffParams;
@group(0) @binding(1) var<storage, read> c_sums: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> c_gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> c_coef: array<vec2<f32>>;

@compute @workgroup_size(256)
fn coeffs_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = (wid.x + wid.y * nwg.x) * WG + lid;
    if (t >= cp.count) {
        return;
    }
    var acc = vec2<f32>(0.0, 0.0);
    for (var j = 0u; j < cp.sub; j++) {
        let r = t * cp.sub + j;
        var v = c_sums[r];
        if ((cp.flags & APPLY_GAMMA) != 0u) {
            v *= c_gamma[r % cp.channels];
        }
        acc += v;
    }
    c_coef[t] = acc * cp.inv_n;
}

// ---------------------------------------------------------------- dγ, dβ

struct ParamGradParams {
    count: u32,   // parameters
    loops: u32,   // sums per parameter (samples for group/instance norm)
    stride: u32,  // distance between them
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> pgp: ParamGradParams;
@group(0) @binding(1) var<storage, read> pg_sums: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> pg_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> pg_dbeta: array<f32>;

@compute @workgroup_size(256)
fn param_grads_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = (wid.x + wid.y * nwg.x) * WG + lid;
    if (p >= pgp.count) {
        return;
    }
    var acc = vec2<f32>(0.0, 0.0);
    for (var i = 0u; i < pgp.loops; i++) {
        acc += pg_sums[i * pgp.stride + p];
    }
    pg_dbeta[p] = acc.x;
    pg_dgamma[p] = acc.y;
}

// ---------------------------------------------------------------- dx

// Walks the elements segment by segment, as sums_main does (same plan, no barriers):
// each thread keeps one segment's mean, invstd, coefficients and γ in registers and
// streams x, dy and dx. Segments are the reduction's (group norm: the instances, so
// that γ is constant along a segment); layer norm takes γ per element (p = k).

struct DxParams {
    seg: Segments,
    elem_map: IndexMap,
    elem_step: MapStep,
    window_lo: u32,
    seg_first: u32,
    seg_end: u32,
    tile_width: u32,
    k_first: u32,
    k_end: u32,
    parts: u32,
    tiles: u32,
    flags: u32,      // 1: train (use the coefficients), 2: gamma present, 4: gamma per element;
                     // dx_vec4: 8 software adapter (lane groups of flags >> 16)
    stat_div: u32,   // statistics segment = s / stat_div
    channels: u32,   // gamma index = s % channels
    _pad0: u32,
}

const DX_TRAIN: u32 = 1u;
const DX_GAMMA: u32 = 2u;
const DX_GAMMA_PER_ELEMENT: u32 = 4u;
// dx_vec4: the components of a vec4 are four segments (channels-last), 32.
const DX_COMPONENTS: u32 = 32u;

@group(0) @binding(0) var<uniform> xp: DxParams;
@group(0) @binding(1) var<storage, read> dx_x: array<f32>;
@group(0) @binding(2) var<storage, read> dx_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx_out: array<f32>;
@group(0) @binding(4) var<storage, read> dx_mean: array<f32>;
@group(0) @binding(5) var<storage, read> dx_inv: array<f32>;
@group(0) @binding(6) var<storage, read> dx_gamma: array<f32>;
@group(0) @binding(7) var<storage, read> dx_coef: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read> dx_mean_lo: array<f32>;

// One segment's constants of dx: mean (a float32 pair) and invstd of its statistics
// segment, the coefficients (train; else 0) and γ (per segment; else 1).
struct DxConstants {
    mu: f32,
    lo: f32,
    inv: f32,
    c: vec2<f32>,
    gm: f32,
    gi: f32, // γ·invstd
    cx: f32, // Σg/N·invstd
    cy: f32, // Σg·x̂/N·invstd
}

fn dx_constants(s: u32) -> DxConstants {
    let t = s / xp.stat_div;
    var c = vec2<f32>(0.0, 0.0);
    if ((xp.flags & DX_TRAIN) != 0u) {
        c = dx_coef[t];
    }
    var gm = 1.0;
    if ((xp.flags & DX_GAMMA) != 0u) {
        gm = dx_gamma[s % xp.channels];
    }
    let inv = dx_inv[t];
    return DxConstants(dx_mean[t], dx_mean_lo[t], inv, c, gm, gm * inv, c.x * inv, c.y * inv);
}

@compute @workgroup_size(256)
fn dx_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= xp.tiles * xp.parts) {
        return;
    }
    let task = lane_task(w, lid, xp.tile_width, xp.parts, xp.seg_first, xp.k_first, xp.k_end);
    let s = task.s;
    if (s >= xp.seg_end) {
        return;
    }

    let base = segment_base(xp.seg, s) - xp.window_lo;
    let dc = dx_constants(s);
    let mu = dc.mu;
    let lo = dc.lo;
    let inv = dc.inv;
    let c = dc.c;
    let gm = dc.gm;
    let per_element = (xp.flags & (DX_GAMMA | DX_GAMMA_PER_ELEMENT)) == (DX_GAMMA | DX_GAMMA_PER_ELEMENT);
    let train = (xp.flags & DX_TRAIN) != 0u;
    let gi = dc.gi;
    let cx = dc.cx;
    let cy = dc.cy;
    if (!per_element && train && xp.seg.inner_div >= task.lanes && xp.seg.elem_stride_lo == 1u) {
        // Contiguous runs (NCHW): block by block, consecutive lanes on consecutive floats.
        var k0 = task.k_lo;
        while (k0 < task.k_hi) {
            let blk = k0 / xp.seg.inner_div;
            let blk_end = min((blk + 1u) * xp.seg.inner_div, task.k_hi);
            let off0 = base + blk * xp.seg.elem_stride_hi + (k0 - blk * xp.seg.inner_div);
            let n = blk_end - k0;
            for (var j = task.lane_k; j < n; j += task.lanes) {
                let i = off0 + j;
                dx_out[i] = (gi * dx_dy[i] - cx) - (((dx_x[i] - mu) - lo) * inv) * cy;
            }
            k0 = blk_end;
        }
        return;
    }
    if (xp.elem_step.ok != 0u && !per_element && train) {
        // The common case (batch, instance and group norm in training), branch-free.
        var cur = cursor_at(xp.elem_map, task.k_lo + task.lane_k);
        for (var k = task.k_lo + task.lane_k; k < task.k_hi; k += task.lanes) {
            let i = base + cursor_value(xp.elem_map, cur);
            cur = cursor_next(xp.elem_map, xp.elem_step, cur);
            dx_out[i] = (gi * dx_dy[i] - cx) - (((dx_x[i] - mu) - lo) * inv) * cy;
        }
        return;
    }
    var cur = cursor_at(xp.elem_map, task.k_lo + task.lane_k);
    for (var k = task.k_lo + task.lane_k; k < task.k_hi; k += task.lanes) {
        var i: u32;
        if (xp.elem_step.ok != 0u) {
            i = base + cursor_value(xp.elem_map, cur);
            cur = cursor_next(xp.elem_map, xp.elem_step, cur);
        } else {
            i = base + element_offset(xp.seg, k);
        }
        var g = dx_dy[i];
        if (per_element) {
            g *= dx_gamma[k];
        } else {
            g *= gm;
        }
        if (train) {
            let xh = ((dx_x[i] - mu) - lo) * inv;
            dx_out[i] = inv * ((g - c.x) - xh * c.y);
        } else {
            dx_out[i] = inv * g;
        }
    }
}

// dx_main over vec4 views of x, dy and dx (four neighbouring elements of one segment
// per load; γ per segment, or by position in a row, `gamma4`): same walk and
// arithmetic, a vec4 at a time.
// x and dy at bindings 1 and 2 as in sums_vec4 (read through x4_at and dy4_at).
@group(0) @binding(3) var<storage, read_write> dx_out4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn dx_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= xp.tiles * xp.parts) {
        return;
    }
    let task = lane_task(w, lid, xp.tile_width, xp.parts, xp.seg_first, xp.k_first, xp.k_end);
    let s = task.s;
    if (s >= xp.seg_end) {
        return;
    }

    let base = segment_base(xp.seg, s) - xp.window_lo;
    // The constants of the vec4's segment, or (DX_COMPONENTS) of the four segments its
    // components are (channels-last: four neighbouring channels).
    var gm = vec4<f32>(0.0);
    var gi = vec4<f32>(0.0);
    var cx = vec4<f32>(0.0);
    var cy = vec4<f32>(0.0);
    var mu4 = vec4<f32>(0.0);
    var lo4 = vec4<f32>(0.0);
    var inv4 = vec4<f32>(0.0);
    let components = (xp.flags & DX_COMPONENTS) != 0u;
    for (var c = 0u; c < 4u; c++) {
        let dc = dx_constants(select(s, 4u * s + c, components));
        gm[c] = dc.gm;
        gi[c] = dc.gi;
        cx[c] = dc.cx;
        cy[c] = dc.cy;
        mu4[c] = dc.mu;
        lo4[c] = dc.lo;
        inv4[c] = dc.inv;
    }
    let train = (xp.flags & DX_TRAIN) != 0u;
    let per_element = (xp.flags & (DX_GAMMA | DX_GAMMA_PER_ELEMENT)) == (DX_GAMMA | DX_GAMMA_PER_ELEMENT);
    let lw = lane_walk(task.k_lo, task.k_hi, task.lane_k, task.lanes, (xp.flags & 8u) != 0u, xp.flags >> 16u);
    var walk = element_walk(xp.seg, base, lw.x, lw.z);
    if (train && per_element) {
        // Layer norm: γ by vec4 position in the row.
        for (var k = lw.x; k < lw.y; k += lw.z) {
            let i = walk_offset(walk);
            walk_next(&walk);
            dx_out4[i] = (inv4 * gamma4[k] * dy4_at(i) - cx) - (((x4_at(i) - mu4) - lo4) * inv4) * cy;
        }
    } else if (train) {
        for (var k = lw.x; k < lw.y; k += lw.z) {
            let i = walk_offset(walk);
            walk_next(&walk);
            dx_out4[i] = (gi * dy4_at(i) - cx) - (((x4_at(i) - mu4) - lo4) * inv4) * cy;
        }
    } else {
        for (var k = lw.x; k < lw.y; k += lw.z) {
            let i = walk_offset(walk);
            walk_next(&walk);
            dx_out4[i] = inv4 * (gm * dy4_at(i));
        }
    }
}

// ---------------------------------------------------------------- forward helpers

struct CountParams {
    count: u32,
    n: u32,        // instance_running_main: samples
    c: u32,        // instance_running_main: channels
    _pad0: u32,
    momentum: f32, // instance_running_main: the update factor
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> pp: CountParams;
@group(0) @binding(1) var<storage, read_write> p_moments: array<Moments>;

@compute @workgroup_size(256)
fn poison_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = (wid.x + wid.y * nwg.x) * WG + lid;
    if (s >= pp.count) {
        return;
    }
    p_moments[s] = poisoned(p_moments[s]);
}

@group(0) @binding(2) var<storage, read_write> p_running_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> p_running_var: array<f32>;

@compute @workgroup_size(256)
fn instance_running_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ch = (wid.x + wid.y * nwg.x) * WG + lid;
    if (ch >= pp.c) {
        return;
    }
    var mean_sum = 0.0;
    var var_sum = 0.0;
    for (var b = 0u; b < pp.n; b++) {
        let m = p_moments[b * pp.c + ch];
        mean_sum += moments_mean(m);
        var_sum += m.m2 / max(f32(m.count) - 1.0, 1.0);
    }
    let inv_n = 1.0 / f32(pp.n);
    let f = pp.momentum;
    p_running_mean[ch] = (1.0 - f) * p_running_mean[ch] + f * (mean_sum * inv_n);
    p_running_var[ch] = (1.0 - f) * p_running_var[ch] + f * (var_sum * inv_n);
}
