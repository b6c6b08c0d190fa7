// Elementwise step of every scaler and norm layer, over a window of a C-order tensor:
//
//   mode 0 (forward):  y = ((x - center[s]) - center_lo[s]) * inv_scale[s] * gamma[p] + beta[p]
//   mode 1 (inverse):  y = (((x - beta[p]) / gamma[p]) / inv_scale[s] + center_lo[s]) + center[s]
//   mode 2:            y = log1p(x)
//   mode 3:            y = expm1(x)
//
// s = segment of the element, p = its parameter (gamma/beta) index, both from index
// maps of the flat index. Never folded into one x * a + b: that cancels when
// |center| >> scale. The center is a float32 pair, center + center_lo (the rounding
// error of the mean): x - center is exact when x lies within a factor 2 of it, so an
// offset-dominated segment (1e4 + N(0, 0.1)) keeps float32's relative accuracy. NaN passes through; clip (flag 1) leaves NaN alone.

struct AffineParams {
    seg_map: IndexMap,
    param_map: IndexMap,
    window_lo: u32,     // flat index of the window's first element
    count: u32,         // affine_main: one past the last element; vec4 kernels: vec4s in the window
    per_wg: u32,        // items (elements, vec4s or run pieces) per workgroup
    mode: u32,
    flags: u32,         // 1: clip, 2: gamma/beta present
    clip_lo: f32,       // vec4 kernels: -inf without clipping
    clip_hi: f32,       // vec4 kernels: +inf without clipping
    first: u32,         // affine_main: first element of the window to transform
    run_len: u32,       // runs kernels: both maps are constant on aligned runs of this many elements
    run_split: u32,     // runs kernels: pieces per run
    piece_len: u32,     // runs kernels: elements per piece (multiple of 4)
    pieces: u32,        // runs kernels: pieces overlapping the window
    group: u32,         // vec4 kernels: threads that stride together (see copy.wgsl)
    param_stride: u32,  // rows kernels with TEXEL_INPUT: texels between the stacked row parameters
    block_rows: u32,    // columns kernels: rows of a sample (0: one set of column parameters)
    block_seg: u32,     // columns kernels: segments of a sample (its first is sample · block_seg)
    col_div: u32,       // columns kernels: segment of column q within a sample is (q % col_mod) / col_div
    col_mod: u32,       // columns kernels: matrix columns (a row of the grid holds run_len / col_mod rows)
    _pad2: u32,
    _pad3: u32,
}

const FLAG_CLIP: u32 = 1u;
const FLAG_GAMMA_BETA: u32 = 2u;

@group(0) @binding(0) var<uniform> ap: AffineParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> center: array<f32>;
@group(0) @binding(4) var<storage, read> inv_scale: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;
@group(0) @binding(7) var<storage, read> center_lo: array<f32>;

// log1p with relative accuracy for tiny |x| (WGSL has none): log(1 + x) loses
// everything below 2^-24. Near zero, log1p(x) = 2 atanh(z) with z = x / (2 + x),
// |z| <= 1/3 for -0.5 < x < 1, summed to z^13 (next term < 2^-26 relative). 2z is
// computed as 2x / (2 + x), not 2 · (x / (2 + x)): x / 2 of the smallest subnormal
// rounds to 0.
fn log1p_accurate(v: f32) -> f32 {
    if (v > -0.5 && v < 1.0) {
        let z2x = (v + v) / (2.0 + v);
        let z2 = 0.25 * z2x * z2x;
        let poly = 1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0
            + z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0))))));
        return z2x * poly;
    }
    return log(1.0 + v);
}

// expm1 with relative accuracy for tiny |x|: Taylor to x^11/11! for |x| < 0.5
// (next term < 2^-30 relative), exp(x) - 1 beyond, where exp(x) - 1 does not cancel.
fn expm1_accurate(v: f32) -> f32 {
    if (abs(v) < 0.5) {
        var t = 1.0;
        for (var i = 11; i >= 2; i--) {
            t = 1.0 + t * v / f32(i);
        }
        return v * t;
    }
    return exp(v) - 1.0;
}

fn transform(e: u32, v: f32) -> f32 {
    switch ap.mode {
        case 2u: {
            return log1p_accurate(v);
        }
        case 3u: {
            return expm1_accurate(v);
        }
        default: {}
    }
    let s = map_index(ap.seg_map, e);
    var g = 1.0;
    var b = 0.0;
    if ((ap.flags & FLAG_GAMMA_BETA) != 0u) {
        let q = map_index(ap.param_map, e);
        g = gamma[q];
        b = beta[q];
    }
    var out: f32;
    if (ap.mode == 1u) {
        out = (((v - b) / g) / inv_scale[s] + center_lo[s]) + center[s];
    } else {
        out = ((v - center[s]) - center_lo[s]) * inv_scale[s] * g + b;
    }
    if ((ap.flags & FLAG_CLIP) != 0u && !is_nan(out)) {
        out = clamp(out, ap.clip_lo, ap.clip_hi);
    }
    return out;
}

@compute @workgroup_size(256)
fn affine_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    let start = ap.first + w * ap.per_wg;
    let end = min(start + ap.per_wg, ap.count);
    for (var i = start + lid; i < end; i += WG) {
        y[i] = transform(ap.window_lo + i, x[i]);
    }
}

// ---- vec4 paths ------------------------------------------------------------------
//
// Integer division per element is what a software adapter (and many GPUs) pay most
// for, and a software adapter runs both sides of every branch inside a loop. So the
// vec4 kernels find segment and parameter indices without dividing per element, and
// every combination below is its own entry point calling a generic body with constant
// arguments, so that the compiler drops the branches not taken. Clipping is a select
// (no clip: bounds ±inf, the identity) and log1p/expm1 compute both of their formulas
// and select one. The arithmetic per element is the scalar path's, in the same order.
//
// Runs (`affine4_runs_*`): when both maps are constant on aligned runs of `run_len`
// elements (NCHW channels, groups, instances: a run is one H·W plane), each group of
// `group` threads of a workgroup takes whole pieces of runs, reads the run's
// parameters once (the same address in every thread of the group) and streams the
// piece.
//
// Lanes (`affine4_<mode>_<segment>_<parameters>`): as in copy.wgsl, workgroup w owns
// a contiguous run of vec4s, split into one chunk per group of `group` threads; thread
// t takes the vec4s chunk_start + t % group, then every `group` further (elements
// 4i .. 4i + 3). Each thread splits its first index once and then advances the split
// with carries (`map_add`); how a vec4's 4 indices follow from it depends on the map's
// kind (chosen on the host, see src/kernels/affine.rs):
//   MAP_FIXED:   each lane keeps its index across iterations (columns of a matrix
//                whose width divides 4·group): parameters are loaded once;
//   MAP_UNIFORM: the 4 elements share one index;
//   MAP_MOD:     e % m, m >= 4: consecutive indices, wrapped at m;
//   MAP_DIV:     ((e / d) % m)·s, d >= 4: the quotient steps at most once in a vec4;
//   MAP_GENERAL: each element's split is stepped from the previous one's.
// γ/β use the segment's indices (P_SAME: the maps are equal), none (P_NONE: γ = 1,
// β = 0), or their own map of one of the kinds above.

const MAP_GENERAL: u32 = 0u;
const MAP_UNIFORM: u32 = 1u;
const MAP_MOD: u32 = 2u;
const MAP_FIXED: u32 = 3u;
const MAP_DIV: u32 = 6u;
const P_NONE: u32 = 4u;
const P_SAME: u32 = 5u;

// A flat index split for an IndexMap: e % d1, (e / d1) % m1, (e % m2) % d2, (e % m2) / d2.
struct MapSplit {
    r1: u32,
    q1: u32,
    r2: u32,
    q2: u32,
}

fn map_split(m: IndexMap, e: u32) -> MapSplit {
    let b = e % m.m2;
    return MapSplit(e % m.d1, (e / m.d1) % m.m1, b % m.d2, b / m.d2);
}

fn map_value(m: IndexMap, s: MapSplit) -> u32 {
    return s.q1 * m.s1 + s.q2 * m.s2;
}

// The split of e + delta from the splits of e and of delta (`p2` = m2 / d2; the host
// only takes this path when d2 divides m2).
fn map_add(m: IndexMap, s: MapSplit, d: MapSplit, p2: u32) -> MapSplit {
    let r1 = s.r1 + d.r1;
    let c1 = select(0u, 1u, r1 >= m.d1);
    let q1 = s.q1 + d.q1 + c1;
    let r2 = s.r2 + d.r2;
    let c2 = select(0u, 1u, r2 >= m.d2);
    let q2 = s.q2 + d.q2 + c2;
    return MapSplit(r1 - c1 * m.d1, select(q1, q1 - m.m1, q1 >= m.m1), r2 - c2 * m.d2, select(q2, q2 - p2, q2 >= p2));
}

// The running split of one thread and the splits of its two step sizes.
struct Cursor {
    at: MapSplit,
    one: MapSplit,
    step: MapSplit,
    p2: u32,
}

fn cursor(m: IndexMap, e: u32) -> Cursor {
    return Cursor(map_split(m, e), map_split(m, 1u), map_split(m, 4u * ap.group), m.m2 / m.d2);
}

// The indices of the 4 elements at the cursor.
fn indices4(m: IndexMap, kind: u32, c: Cursor) -> vec4<u32> {
    let v = map_value(m, c.at);
    if (kind == MAP_UNIFORM) {
        return vec4<u32>(v);
    }
    let j = vec4<u32>(0u, 1u, 2u, 3u);
    if (kind == MAP_MOD) {
        let i = vec4<u32>(v) + j;
        return select(i, i - vec4<u32>(m.m2), i >= vec4<u32>(m.m2));
    }
    if (kind == MAP_DIV) {
        let q = vec4<u32>(c.at.q1) + select(vec4<u32>(0u), vec4<u32>(1u), vec4<u32>(c.at.r1) + j >= vec4<u32>(m.d1));
        let qw = select(q, q - vec4<u32>(m.m1), q >= vec4<u32>(m.m1));
        return qw * m.s1 + vec4<u32>(c.at.q2 * m.s2);
    }
    let s1 = map_add(m, c.at, c.one, c.p2);
    let s2 = map_add(m, s1, c.one, c.p2);
    let s3 = map_add(m, s2, c.one, c.p2);
    return vec4<u32>(v, map_value(m, s1), map_value(m, s2), map_value(m, s3));
}

fn center4(i: vec4<u32>, uniform: bool) -> vec4<f32> {
    if (uniform) {
        return vec4<f32>(center[i.x]);
    }
    return vec4<f32>(center[i.x], center[i.y], center[i.z], center[i.w]);
}

fn center_lo4(i: vec4<u32>, uniform: bool) -> vec4<f32> {
    if (uniform) {
        return vec4<f32>(center_lo[i.x]);
    }
    return vec4<f32>(center_lo[i.x], center_lo[i.y], center_lo[i.z], center_lo[i.w]);
}

fn inv_scale4(i: vec4<u32>, uniform: bool) -> vec4<f32> {
    if (uniform) {
        return vec4<f32>(inv_scale[i.x]);
    }
    return vec4<f32>(inv_scale[i.x], inv_scale[i.y], inv_scale[i.z], inv_scale[i.w]);
}

fn gamma4(i: vec4<u32>, uniform: bool) -> vec4<f32> {
    if (uniform) {
        return vec4<f32>(gamma[i.x]);
    }
    return vec4<f32>(gamma[i.x], gamma[i.y], gamma[i.z], gamma[i.w]);
}

fn beta4(i: vec4<u32>, uniform: bool) -> vec4<f32> {
    if (uniform) {
        return vec4<f32>(beta[i.x]);
    }
    return vec4<f32>(beta[i.x], beta[i.y], beta[i.z], beta[i.w]);
}

@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;

// vec4 i of the input: from the buffer, or its staged texels (TEXEL_INPUT).
fn x4_at(i: u32) -> vec4<f32> {
    if (TEXEL_INPUT) {
        return input_texel(i);
    }
    return x4[i];
}

// The affine step of one vec4, clipped (NaN left alone; bounds ±inf without clipping).
fn apply4(v: vec4<f32>, inverse: bool, c: vec4<f32>, cl: vec4<f32>, inv: vec4<f32>, g: vec4<f32>,
          b: vec4<f32>) -> vec4<f32> {
    var out: vec4<f32>;
    if (inverse) {
        out = (((v - b) / g) / inv + cl) + c;
    } else {
        out = ((v - c) - cl) * inv * g + b;
    }
    let nan = is_nan4(out);
    return select(clamp(out, vec4<f32>(ap.clip_lo), vec4<f32>(ap.clip_hi)), out, nan);
}

fn affine4(w: u32, lid: u32, inverse: bool, seg_kind: u32, param_kind: u32) {
    let chunk = ap.per_wg / (WG / ap.group);
    let start = w * ap.per_wg + (lid / ap.group) * chunk;
    let end = min(start + chunk, ap.count);
    let i0 = start + lid % ap.group;
    if (i0 >= end) {
        return;
    }
    let e0 = ap.window_lo + 4u * i0;
    let own_params = param_kind != P_NONE && param_kind != P_SAME;
    var sc = cursor(ap.seg_map, e0);
    var pc = sc;
    if (own_params) {
        pc = cursor(ap.param_map, e0);
    }
    var c4 = vec4<f32>(0.0);
    var l4 = vec4<f32>(0.0);
    var i4 = vec4<f32>(1.0);
    var g4 = vec4<f32>(1.0);
    var b4 = vec4<f32>(0.0);
    if (seg_kind == MAP_FIXED) {
        let si = indices4(ap.seg_map, MAP_GENERAL, sc);
        c4 = center4(si, false);
        l4 = center_lo4(si, false);
        i4 = inv_scale4(si, false);
        if (param_kind == P_SAME) {
            g4 = gamma4(si, false);
            b4 = beta4(si, false);
        }
    }
    if (param_kind == MAP_FIXED) {
        let pi = indices4(ap.param_map, MAP_GENERAL, pc);
        g4 = gamma4(pi, false);
        b4 = beta4(pi, false);
    }
    for (var i = i0; i < end; i += ap.group) {
        if (seg_kind != MAP_FIXED) {
            let si = indices4(ap.seg_map, seg_kind, sc);
            let u = seg_kind == MAP_UNIFORM;
            c4 = center4(si, u);
            l4 = center_lo4(si, u);
            i4 = inv_scale4(si, u);
            if (param_kind == P_SAME) {
                g4 = gamma4(si, u);
                b4 = beta4(si, u);
            }
            sc.at = map_add(ap.seg_map, sc.at, sc.step, sc.p2);
        }
        if (own_params && param_kind != MAP_FIXED) {
            let pi = indices4(ap.param_map, param_kind, pc);
            g4 = gamma4(pi, param_kind == MAP_UNIFORM);
            b4 = beta4(pi, param_kind == MAP_UNIFORM);
            pc.at = map_add(ap.param_map, pc.at, pc.step, pc.p2);
        }
        y4[i] = apply4(x4_at(i), inverse, c4, l4, i4, g4, b4);
    }
}

fn affine4_runs(w: u32, lid: u32, inverse: bool, has_params: bool) {
    let groups = WG / ap.group;
    let p_end = min(w * ap.per_wg + ap.per_wg, ap.pieces);
    let run0 = ap.window_lo / ap.run_len;
    let win_hi = ap.window_lo + 4u * ap.count;
    let lane = lid % ap.group;
    for (var p = w * ap.per_wg + lid / ap.group; p < p_end; p += groups) {
        let run_lo = (run0 + p / ap.run_split) * ap.run_len;
        let piece_lo = run_lo + (p % ap.run_split) * ap.piece_len;
        let e_lo = max(piece_lo, ap.window_lo);
        let e_hi = min(min(piece_lo + ap.piece_len, run_lo + ap.run_len), win_hi);
        // The same address in every thread of the group.
        let s = map_index(ap.seg_map, e_lo);
        let c4 = vec4<f32>(center[s]);
        let l4 = vec4<f32>(center_lo[s]);
        let i4 = vec4<f32>(inv_scale[s]);
        var g4 = vec4<f32>(1.0);
        var b4 = vec4<f32>(0.0);
        if (has_params) {
            let q = map_index(ap.param_map, e_lo);
            g4 = vec4<f32>(gamma[q]);
            b4 = vec4<f32>(beta[q]);
        }
        let i_hi = (e_hi - ap.window_lo) / 4u;
        for (var i = (e_lo - ap.window_lo) / 4u + lane; i < i_hi; i += ap.group) {
            y4[i] = apply4(x4_at(i), inverse, c4, l4, i4, g4, b4);
        }
    }
}

// Grids (`affine4_rows_*`, `affine4_cols_*`): a window of rows of `run_len` elements
// (a multiple of 4). Rows: layer norm's layout — segment = e / run_len (a row), γ/β
// index = e % run_len (the position in the row). Columns: the scalers' layout and
// channels-last batch norm's — segment (and γ/β, when present) = e % run_len. Either
// way the parameters of a position are loaded once per thread (a per-element load of
// them costs a software adapter, which loads lane by lane, three times the input's):
// thread t takes the vec4 columns t, t + WG, ... of the workgroup's rows and walks
// down the rows, loading per step only a row's center and scale (rows).
// The parameters of vec4 column c (clamped to the last column): γ/β, and (columns) the
// center, its low part and the inverse scale.
struct ColParams {
    c: vec4<f32>,
    lo: vec4<f32>,
    inv: vec4<f32>,
    g: vec4<f32>,
    b: vec4<f32>,
}

fn col_params(c: u32, cols4: u32, columns: bool, seg0: u32) -> ColParams {
    let q = 4u * min(c, cols4 - 1u);
    var cp = ColParams(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(1.0), vec4<f32>(1.0), vec4<f32>(0.0));
    // Rows: γ/β at the position in the row. Columns: a grid row may hold several matrix
    // rows (col_mod columns each), so the column of position q is q % col_mod.
    var qm = vec4<u32>(q) + vec4<u32>(0u, 1u, 2u, 3u);
    if (columns) {
        qm = qm % vec4<u32>(ap.col_mod);
    }
    if ((ap.flags & FLAG_GAMMA_BETA) != 0u) {
        cp.g = vec4<f32>(gamma[qm.x], gamma[qm.y], gamma[qm.z], gamma[qm.w]);
        cp.b = vec4<f32>(beta[qm.x], beta[qm.y], beta[qm.z], beta[qm.w]);
    }
    if (columns) {
        // The segments of those columns in the sample whose first segment is seg0.
        let s = vec4<u32>(seg0) + qm / vec4<u32>(ap.col_div);
        cp.c = vec4<f32>(center[s.x], center[s.y], center[s.z], center[s.w]);
        cp.lo = vec4<f32>(center_lo[s.x], center_lo[s.y], center_lo[s.z], center_lo[s.w]);
        cp.inv = vec4<f32>(inv_scale[s.x], inv_scale[s.y], inv_scale[s.z], inv_scale[s.w]);
    }
    return cp;
}

// The first segment of row r's sample (columns kernels; 0 without samples).
fn sample_seg(r: u32) -> u32 {
    if (ap.block_rows == 0u) {
        return 0u;
    }
    return (r / ap.block_rows) * ap.block_seg;
}

// Row r's center, center_lo and inv_scale as vec4s: from the buffers, or (TEXEL_INPUT)
// from the scalar texels they are stacked in, `ap.param_stride` apart. Every lane of a
// SIMD batch reads the same row: a software adapter loads a buffer lane by lane, but a
// texel fetch for all of them at once.
struct RowParams {
    c: vec4<f32>,
    lo: vec4<f32>,
    inv: vec4<f32>,
}

fn row_params(r: u32) -> RowParams {
    if (TEXEL_INPUT) {
        return RowParams(vec4<f32>(scalar_texel(r)), vec4<f32>(scalar_texel(ap.param_stride + r)),
                         vec4<f32>(scalar_texel(2u * ap.param_stride + r)));
    }
    return RowParams(vec4<f32>(center[r]), vec4<f32>(center_lo[r]), vec4<f32>(inv_scale[r]));
}

// The affine step of vec4 column cp in row r (rp: that row's parameters, rows only).
fn apply_grid(v: vec4<f32>, inverse: bool, columns: bool, rp: RowParams, cp: ColParams) -> vec4<f32> {
    if (columns) {
        return apply4(v, inverse, cp.c, cp.lo, cp.inv, cp.g, cp.b);
    }
    return apply4(v, inverse, rp.c, rp.lo, rp.inv, cp.g, cp.b);
}

fn grid_row(r: u32, columns: bool) -> RowParams {
    if (columns) {
        return RowParams(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(1.0));
    }
    return row_params(r);
}

fn affine4_grid(w: u32, lid: u32, inverse: bool, columns: bool) {
    let cols4 = ap.run_len / 4u;
    let row0 = ap.window_lo / ap.run_len;
    let r_first = row0 + w * ap.per_wg;
    let r_end = row0 + min(w * ap.per_wg + ap.per_wg, ap.pieces);
    let win_hi = ap.window_lo + 4u * ap.count;
    if (r_first * ap.run_len >= ap.window_lo && r_end * ap.run_len <= win_hi && cols4 <= 4u * WG) {
        // Whole rows of the window, at most 4·WG vec4s wide: each thread takes four
        // neighbouring vec4 columns, so that a row's center and scale are loaded once per
        // four vec4s and each SIMD batch reads 512 contiguous bytes of a row per step.
        let c0 = 4u * lid;
        if (c0 >= cols4) {
            return;
        }
        let n = min(cols4 - c0, 4u);
        // Columns past the row's end (the last thread's) read the last one's parameters
        // and are not written. Columns kernels with samples (channels-last instance and
        // group norm) take the rows a sample at a time, its parameters loaded at its start.
        var i = (r_first * ap.run_len - ap.window_lo) / 4u + c0;
        var r = r_first;
        while (r < r_end) {
            var r_stop = r_end;
            if (columns && ap.block_rows != 0u) {
                r_stop = min(r_end, (r / ap.block_rows + 1u) * ap.block_rows);
            }
            let seg0 = select(0u, sample_seg(r), columns);
            let p0 = col_params(c0, cols4, columns, seg0);
            let p1 = col_params(c0 + 1u, cols4, columns, seg0);
            let p2 = col_params(c0 + 2u, cols4, columns, seg0);
            let p3 = col_params(c0 + 3u, cols4, columns, seg0);
            for (; r < r_stop; r++) {
                let rp = grid_row(r, columns);
                y4[i] = apply_grid(x4_at(i), inverse, columns, rp, p0);
                if (n > 1u) {
                    y4[i + 1u] = apply_grid(x4_at(i + 1u), inverse, columns, rp, p1);
                }
                if (n > 2u) {
                    y4[i + 2u] = apply_grid(x4_at(i + 2u), inverse, columns, rp, p2);
                }
                if (n > 3u) {
                    y4[i + 3u] = apply_grid(x4_at(i + 3u), inverse, columns, rp, p3);
                }
                i += cols4;
            }
        }
        return;
    }
    // Rows wider than 4·WG vec4s, or a window that cuts rows: the rows one after the
    // other, each group of `ap.group` lanes streaming a contiguous stretch of the row (as
    // the copy kernel walks), the row's parameters loaded once, γ/β (and the columns'
    // parameters) per vec4.
    let groups = WG / ap.group;
    let lane = lid % ap.group;
    let stretch = (cols4 + groups - 1u) / groups;
    let c_lo = (lid / ap.group) * stretch;
    let c_hi = min(c_lo + stretch, cols4);
    let win_lo4 = ap.window_lo / 4u;
    let win_hi4 = win_hi / 4u;
    for (var r = r_first; r < r_end; r++) {
        let rp = grid_row(r, columns);
        let seg0 = sample_seg(r);
        let row4 = r * cols4;
        let v_end = min(row4 + c_hi, win_hi4);
        for (var v = max(row4 + c_lo, win_lo4) + lane; v < v_end; v += ap.group) {
            let i = v - win_lo4;
            y4[i] = apply_grid(x4_at(i), inverse, columns, rp, col_params(v - row4, cols4, columns, seg0));
        }
    }
}

// log1p_accurate and expm1_accurate on a vec4, both formulas computed and selected.
fn log1p4(v: vec4<f32>) -> vec4<f32> {
    let z2x = (v + v) / (2.0 + v);
    let z2 = 0.25 * z2x * z2x;
    let poly = 1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0
        + z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0))))));
    let near = v > vec4<f32>(-0.5) & v < vec4<f32>(1.0);
    return select(log(1.0 + v), z2x * poly, near);
}

fn expm14(v: vec4<f32>) -> vec4<f32> {
    var t = vec4<f32>(1.0);
    for (var i = 11; i >= 2; i--) {
        t = 1.0 + t * v / f32(i);
    }
    return select(exp(v) - 1.0, v * t, abs(v) < vec4<f32>(0.5));
}

fn elementwise4(w: u32, lid: u32, mode: u32) {
    let chunk = ap.per_wg / (WG / ap.group);
    let start = w * ap.per_wg + (lid / ap.group) * chunk;
    let end = min(start + chunk, ap.count);
    for (var i = start + lid % ap.group; i < end; i += ap.group) {
        if (mode == 2u) {
            y4[i] = log1p4(x4_at(i));
        } else {
            y4[i] = expm14(x4_at(i));
        }
    }
}

fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// ---- entry points (generated: see the list in src/kernels/affine.rs) ----
@compute @workgroup_size(256)
fn affine4_log1p(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    elementwise4(wg_index(wid, nwg), lid, 2u);
}
@compute @workgroup_size(256)
fn affine4_expm1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    elementwise4(wg_index(wid, nwg), lid, 3u);
}
@compute @workgroup_size(256)
fn affine4_rows_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4_grid(wg_index(wid, nwg), lid, false, false);
}
@compute @workgroup_size(256)
fn affine4_rows_inv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4_grid(wg_index(wid, nwg), lid, true, false);
}
@compute @workgroup_size(256)
fn affine4_cols_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4_grid(wg_index(wid, nwg), lid, false, true);
}
@compute @workgroup_size(256)
fn affine4_cols_inv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4_grid(wg_index(wid, nwg), lid, true, true);
}
@compute @workgroup_size(256)
fn affine4_runs_fwd_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4_runs(wg_index(wid, nwg), lid, false, false);
}
@compute @workgroup_size(256)
fn affine4_runs_fwd_own(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4_runs(wg_index(wid, nwg), lid, false, true);
}
@compute @workgroup_size(256)
fn affine4_fwd_fixed_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_FIXED, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_fwd_fixed_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_FIXED, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_fwd_uniform_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_UNIFORM, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_fwd_uniform_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_UNIFORM, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_fwd_uniform_uniform(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_UNIFORM, MAP_UNIFORM);
}
@compute @workgroup_size(256)
fn affine4_fwd_uniform_mod(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_UNIFORM, MAP_MOD);
}
@compute @workgroup_size(256)
fn affine4_fwd_mod_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_MOD, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_fwd_mod_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_MOD, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_fwd_div_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_DIV, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_fwd_div_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_DIV, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_fwd_div_div(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_DIV, MAP_DIV);
}
@compute @workgroup_size(256)
fn affine4_fwd_general_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_GENERAL, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_fwd_general_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_GENERAL, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_fwd_general_general(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, false, MAP_GENERAL, MAP_GENERAL);
}
@compute @workgroup_size(256)
fn affine4_runs_inv_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4_runs(wg_index(wid, nwg), lid, true, false);
}
@compute @workgroup_size(256)
fn affine4_runs_inv_own(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4_runs(wg_index(wid, nwg), lid, true, true);
}
@compute @workgroup_size(256)
fn affine4_inv_fixed_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_FIXED, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_inv_fixed_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_FIXED, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_inv_uniform_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_UNIFORM, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_inv_uniform_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_UNIFORM, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_inv_uniform_uniform(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_UNIFORM, MAP_UNIFORM);
}
@compute @workgroup_size(256)
fn affine4_inv_uniform_mod(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_UNIFORM, MAP_MOD);
}
@compute @workgroup_size(256)
fn affine4_inv_mod_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_MOD, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_inv_mod_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_MOD, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_inv_div_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_DIV, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_inv_div_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_DIV, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_inv_div_div(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_DIV, MAP_DIV);
}
@compute @workgroup_size(256)
fn affine4_inv_general_none(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_GENERAL, P_NONE);
}
@compute @workgroup_size(256)
fn affine4_inv_general_same(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_GENERAL, P_SAME);
}
@compute @workgroup_size(256)
fn affine4_inv_general_general(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    affine4(wg_index(wid, nwg), lid, true, MAP_GENERAL, MAP_GENERAL);
}
