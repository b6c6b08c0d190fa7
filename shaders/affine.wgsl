// Elementwise step of every scaler and norm layer, over a window of a C-order tensor:
//
//   mode 0 (forward):  y = (x - center[s]) * inv_scale[s] * gamma[p] + beta[p]
//   mode 1 (inverse):  y = ((x - beta[p]) / gamma[p]) / inv_scale[s] + center[s]
//   mode 2:            y = log1p(x)
//   mode 3:            y = expm1(x)
//
// s = segment of the element, p = its parameter (gamma/beta) index, both from index
// maps of the flat index. Never folded into one x * a + b: that cancels when
// |center| >> scale. NaN passes through; clip (flag 1) leaves NaN alone.

struct AffineParams {
    seg_map: IndexMap,
    param_map: IndexMap,
    window_lo: u32,     // flat index of the window's first element
    count: u32,         // affine_main: one past the last element; affine_vec4: vec4s in the window
    per_wg: u32,        // items per workgroup (multiple of WG)
    mode: u32,
    flags: u32,         // 1: clip, 2: gamma/beta present
    clip_lo: f32,
    clip_hi: f32,
    first: u32,         // affine_main: first element of the window to transform
    seg_class: u32,     // affine_vec4: MAP_* class of seg_map
    param_class: u32,   // affine_vec4: MAP_* class of param_map
    _pad0: u32,
    _pad1: u32,
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

// log1p with relative accuracy for tiny |x| (WGSL has none): log(1 + x) loses
// everything below 2^-24. Near zero, log1p(x) = 2 atanh(z) with z = x / (2 + x),
// |z| <= 1/3 for -0.5 < x < 1, summed to z^13 (next term < 2^-26 relative).
fn log1p_accurate(v: f32) -> f32 {
    if (v > -0.5 && v < 1.0) {
        let z = v / (2.0 + v);
        let z2 = z * z;
        let poly = 1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0
            + z2 * (1.0 / 11.0 + z2 * (1.0 / 13.0))))));
        return 2.0 * z * poly;
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
        out = ((v - b) / g) / inv_scale[s] + center[s];
    } else {
        out = (v - center[s]) * inv_scale[s] * g + b;
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

// ---- vec4 path -------------------------------------------------------------------
//
// Thread t of workgroup w transforms the vec4s start + t, start + t + WG, ... of the
// window (elements 4i .. 4i + 3), so a thread's element index advances by 4·WG per
// iteration. Integer division per element is what a software adapter (and many GPUs)
// pay most for, so the segment and parameter indices are not recomputed from the flat
// index: each thread splits its first index once and then advances the split form
// with carries (`map_add`). How much even that is needed depends on the map's class
// (chosen on the host, see src/kernels/affine.rs):
//   MAP_FIXED:   each of the 4 lanes keeps its index across iterations (columns of
//                a matrix whose width divides 4·WG): parameters are loaded once;
//   MAP_UNIFORM: the 4 elements of a vec4 share one index (NCHW channels, rows);
//   MAP_CONSEC:  the 4 elements have consecutive indices (layer norm's γ/β);
//   MAP_GENERAL: each element's index is stepped from the previous one's.
// The arithmetic per element is the scalar path's, in the same order.

const MAP_GENERAL: u32 = 0u;
const MAP_UNIFORM: u32 = 1u;
const MAP_CONSEC: u32 = 2u;
const MAP_FIXED: u32 = 3u;

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
    return Cursor(map_split(m, e), map_split(m, 1u), map_split(m, 4u * WG), m.m2 / m.d2);
}

// The indices of the 4 elements at the cursor.
fn indices4(m: IndexMap, kind: u32, c: Cursor) -> vec4<u32> {
    let v = map_value(m, c.at);
    if (kind == MAP_UNIFORM) {
        return vec4<u32>(v);
    }
    if (kind == MAP_CONSEC) {
        return vec4<u32>(v, v + 1u, v + 2u, v + 3u);
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

@compute @workgroup_size(256)
fn affine_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    let start = w * ap.per_wg;
    let end = min(start + ap.per_wg, ap.count);
    let i0 = start + lid;
    if (ap.mode == 2u) {
        for (var i = i0; i < end; i += WG) {
            let v = x4[i];
            y4[i] = vec4<f32>(log1p_accurate(v.x), log1p_accurate(v.y), log1p_accurate(v.z), log1p_accurate(v.w));
        }
        return;
    }
    if (ap.mode == 3u) {
        for (var i = i0; i < end; i += WG) {
            let v = x4[i];
            y4[i] = vec4<f32>(expm1_accurate(v.x), expm1_accurate(v.y), expm1_accurate(v.z), expm1_accurate(v.w));
        }
        return;
    }
    if (i0 >= end) {
        return;
    }
    let e0 = ap.window_lo + 4u * i0;
    let has_gb = (ap.flags & FLAG_GAMMA_BETA) != 0u;
    let clip = (ap.flags & FLAG_CLIP) != 0u;
    var sc = cursor(ap.seg_map, e0);
    var pc = sc;
    var c4 = vec4<f32>(0.0);
    var i4 = vec4<f32>(1.0);
    var g4 = vec4<f32>(1.0);
    var b4 = vec4<f32>(0.0);
    if (ap.seg_class == MAP_FIXED) {
        let si = indices4(ap.seg_map, MAP_GENERAL, sc);
        c4 = center4(si, false);
        i4 = inv_scale4(si, false);
    }
    if (has_gb) {
        pc = cursor(ap.param_map, e0);
        if (ap.param_class == MAP_FIXED) {
            let pi = indices4(ap.param_map, MAP_GENERAL, pc);
            g4 = gamma4(pi, false);
            b4 = beta4(pi, false);
        }
    }
    for (var i = i0; i < end; i += WG) {
        if (ap.seg_class != MAP_FIXED) {
            let si = indices4(ap.seg_map, ap.seg_class, sc);
            c4 = center4(si, ap.seg_class == MAP_UNIFORM);
            i4 = inv_scale4(si, ap.seg_class == MAP_UNIFORM);
            sc.at = map_add(ap.seg_map, sc.at, sc.step, sc.p2);
        }
        if (has_gb && ap.param_class != MAP_FIXED) {
            let pi = indices4(ap.param_map, ap.param_class, pc);
            g4 = gamma4(pi, ap.param_class == MAP_UNIFORM);
            b4 = beta4(pi, ap.param_class == MAP_UNIFORM);
            pc.at = map_add(ap.param_map, pc.at, pc.step, pc.p2);
        }
        let v = x4[i];
        var out: vec4<f32>;
        if (ap.mode == 1u) {
            out = ((v - b4) / g4) / i4 + c4;
        } else {
            out = (v - c4) * i4 * g4 + b4;
        }
        if (clip) {
            let nan = (bitcast<vec4<u32>>(out) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
            out = select(clamp(out, vec4<f32>(ap.clip_lo), vec4<f32>(ap.clip_hi)), out, nan);
        }
        y4[i] = out;
    }
}
