// Shared by every kernel (prepended at build and run time; see build.rs).
//
// A segment is a group of elements reduced together (a column, a channel, a row,
// a group, an instance). Segment s = (s / seg_div, s % seg_div), element k of it
// = (k / inner_div, k % inner_div); its flat offset is the dot product with the strides.
struct Segments {
    count: u32,
    len: u32,
    seg_div: u32,
    seg_stride_hi: u32,
    seg_stride_lo: u32,
    inner_div: u32,
    elem_stride_hi: u32,
    elem_stride_lo: u32,
}

// Flat element index -> segment or parameter index:
// ((e / d1) % m1) * s1 + ((e % m2) / d2) * s2
struct IndexMap {
    d1: u32,
    m1: u32,
    s1: u32,
    m2: u32,
    d2: u32,
    s2: u32,
    _pad0: u32, // 32 bytes: uniform structs nest at 16-byte alignment
    _pad1: u32,
}

// One segment's running statistics (Welford / Chan). The mean of the non-NaN values
// is `shift + mean`: every state keeps the first value it saw as its shift, so the
// accumulated mean and M2 stay small and exact-ish even for data like 1e4 + N(0, 1);
// merges subtract shifts (exact for nearby floats) before anything is rounded.
struct Moments {
    count: u32,
    nan_count: u32,
    shift: f32,
    mean: f32,
    m2: f32,
    min: f32,
    max: f32,
    _pad: u32,
}

const WG: u32 = 256u;

fn segment_base(seg: Segments, s: u32) -> u32 {
    return (s / seg.seg_div) * seg.seg_stride_hi + (s % seg.seg_div) * seg.seg_stride_lo;
}

fn element_offset(seg: Segments, k: u32) -> u32 {
    return (k / seg.inner_div) * seg.elem_stride_hi + (k % seg.inner_div) * seg.elem_stride_lo;
}

fn map_index(m: IndexMap, e: u32) -> u32 {
    return ((e / m.d1) % m.m1) * m.s1 + ((e % m.m2) / m.d2) * m.s2;
}

fn nan_f32() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}

fn inf_f32() -> f32 {
    return bitcast<f32>(0x7f800000u);
}

// x != x is folded away by some compilers; test the bits instead. The compare is
// signed (the masked bits are never negative): x86 SIMD, which software adapters run
// on, has no unsigned compare, so one instruction instead of three.
fn is_nan(x: f32) -> bool {
    return bitcast<i32>(bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000i;
}

fn nan_bits4(bv: vec4<u32>) -> vec4<bool> {
    return bitcast<vec4<i32>>(bv & vec4<u32>(0x7fffffffu)) > vec4<i32>(0x7f800000i);
}

fn is_nan4(v: vec4<f32>) -> vec4<bool> {
    return nan_bits4(bitcast<vec4<u32>>(v));
}

fn empty_moments() -> Moments {
    return Moments(0u, 0u, 0.0, 0.0, 0.0, inf_f32(), -inf_f32(), 0u);
}

// The mean the state stands for.
fn moments_mean(m: Moments) -> f32 {
    return m.shift + m.mean;
}

// Chan-Golub-LeVeque merge: M2 = M2a + M2b + d^2 * na * nb / n, with the difference
// of the means taken shift to shift first. The result keeps a's shift.
fn merge_moments(a: Moments, b: Moments) -> Moments {
    var r = a;
    r.nan_count = a.nan_count + b.nan_count;
    if (b.count == 0u) {
        return r;
    }
    if (a.count == 0u) {
        r = b;
        r.nan_count = a.nan_count + b.nan_count;
        return r;
    }
    let n = a.count + b.count;
    let na = f32(a.count);
    let fb = f32(b.count) / f32(n);
    let d = (b.shift - a.shift) + (b.mean - a.mean);
    r.count = n;
    r.mean = a.mean + d * fb;
    r.m2 = a.m2 + b.m2 + d * d * na * fb;
    r.min = min(a.min, b.min);
    r.max = max(a.max, b.max);
    return rebase(r);
}

// When the shift is farther from the mean than the mean is from 0 (a segment whose
// first value is an outlier), move it to the mean (rounded), keeping the rounding
// error in `mean` (Fast2Sum): else every later update is rounded at the shift's
// magnitude. A shift near the mean stays (results exact where they can be).
// `v` in a form a compiler cannot see through (no count reaches 2^32 - 1): a software
// adapter's compiler reassociates float math, turning (a + b) - a into b, which zeroes
// the error term of an error-free sum.
fn opaque(v: f32, count: u32) -> f32 {
    return select(v, 0.0, count == 0xffffffffu);
}

fn opaque4(v: vec4<f32>, count: vec4<u32>) -> vec4<f32> {
    return select(v, vec4<f32>(0.0), count == vec4<u32>(0xffffffffu));
}

fn rebase(m: Moments) -> Moments {
    var r = m;
    let t = opaque(m.shift + m.mean, m.count);
    if (abs(m.mean) > abs(t) && abs(t) <= 3.0e38) {
        r.mean = select((m.shift - t) + m.mean, (m.mean - t) + m.shift, abs(m.mean) > abs(m.shift));
        r.shift = t;
    }
    return r;
}

// The elements a lane walks in its part's range [k_lo, k_hi): k, k + stride, ... below
// k_stop, returned as (k, k_stop, stride). On a GPU the lanes interleave (stride =
// lanes, neighbouring threads on neighbouring elements). On a software adapter
// (`blocks`), which runs one SIMD batch of threads to the end before the next, the
// lanes form groups of `group` (its SIMD width over the segments per workgroup): each
// group takes a contiguous block and its lanes stride through it together, as a copy
// loop does.
fn lane_walk(k_lo: u32, k_hi: u32, lane_k: u32, lanes: u32, blocks: bool, group: u32) -> vec3<u32> {
    let r = select(lanes, clamp(group, 1u, lanes), blocks);
    let groups = lanes / r;
    let span = (select(0u, k_hi - k_lo, k_hi > k_lo) + groups - 1u) / groups;
    let k = k_lo + (lane_k / r) * span + lane_k % r;
    let k_stop = min(k_lo + (lane_k / r + 1u) * span, k_hi);
    return vec3<u32>(k, k_stop, r);
}

// (k / inner, k % inner) of k + step, from those of k and of step, with one carry.
fn step_cursor(kh: u32, kl: u32, step_hi: u32, step_lo: u32, inner: u32) -> vec2<u32> {
    let l = kl + step_lo;
    let carry = l >= inner;
    return vec2<u32>(kh + step_hi + select(0u, 1u, carry), select(l, l - inner, carry));
}

// Where a thread of a reduction-shaped dispatch works (the chunk plan's layout, see
// src/kernels/plan.rs): workgroup w is (tile, part) = (w / parts, w % parts); its
// threads are `lanes` element lanes for each of the tile's `tile_width` segments
// (thread = lane_k · tile_width + lane_s), and the part's elements are [k_lo, k_hi).
struct LaneTask {
    part: u32,
    lanes: u32,
    lane_s: u32,
    lane_k: u32,
    s0: u32,     // the tile's first segment
    s: u32,      // the thread's segment
    k_lo: u32,
    k_hi: u32,
}

fn lane_task(w: u32, lid: u32, tile_width: u32, parts: u32, seg_first: u32, k_first: u32, k_end: u32) -> LaneTask {
    let tile = w / parts;
    let part = w % parts;
    let lane_s = lid % tile_width;
    let s0 = seg_first + tile * tile_width;
    let per_part = (k_end - k_first + parts - 1u) / parts;
    let k_lo = k_first + part * per_part;
    return LaneTask(part, WG / tile_width, lane_s, lid / tile_width, s0, s0 + lane_s, k_lo, min(k_lo + per_part, k_end));
}

// A lane's walk over one segment's elements k, k + stride, ... (see `lane_walk`): the
// window-relative offset of the current element from its split (k / inner_div,
// k % inner_div), advanced with one carry per step, no division per element. The
// segment's strides are copied out of the uniform once, before the loop.
struct ElementWalk {
    base: u32,    // the segment's first element, window-relative
    kh: u32,      // k / inner_div
    kl: u32,      // k % inner_div
    step_hi: u32, // stride / inner_div
    step_lo: u32, // stride % inner_div
    inner: u32,
    esh: u32,
    esl: u32,
}

fn element_walk(seg: Segments, base: u32, k: u32, stride: u32) -> ElementWalk {
    let inner = seg.inner_div;
    return ElementWalk(base, k / inner, k % inner, stride / inner, stride % inner, inner, seg.elem_stride_hi,
                       seg.elem_stride_lo);
}

fn walk_offset(w: ElementWalk) -> u32 {
    return w.base + w.kh * w.esh + w.kl * w.esl;
}

fn walk_next(w: ptr<function, ElementWalk>) {
    let c = step_cursor((*w).kh, (*w).kl, (*w).step_hi, (*w).step_lo, (*w).inner);
    (*w).kh = c.x;
    (*w).kl = c.y;
}

// The offsets of the walk's next four elements k, k + stride, k + 2·stride,
// k + 3·stride; those at or past k_stop (`inside` false) repeat the first, whose value
// the caller masks out. The walk moves on by four steps.
struct Quad {
    offsets: vec4<u32>,
    inside: vec4<bool>,
}

fn walk_quad(w: ptr<function, ElementWalk>, k: u32, stride: u32, k_stop: u32) -> Quad {
    let inside = vec4<bool>(true, k + stride < k_stop, k + 2u * stride < k_stop, k + 3u * stride < k_stop);
    let o0 = walk_offset(*w);
    walk_next(w);
    let o1 = select(o0, walk_offset(*w), inside.y);
    walk_next(w);
    let o2 = select(o0, walk_offset(*w), inside.z);
    walk_next(w);
    let o3 = select(o0, walk_offset(*w), inside.w);
    walk_next(w);
    return Quad(vec4<u32>(o0, o1, o2, o3), inside);
}

// A kernel's vec4 input as a texture (software adapters, see src/gpu/texels.rs): their
// storage-buffer loads go one lane and one float at a time, a texel fetch is a vector
// gather. With TEXEL_INPUT (a pipeline constant, so the other branch folds away) vec4 i
// of the bound window is texel (i % TEXEL_ROW, i / TEXEL_ROW).
override TEXEL_INPUT: bool = false;
const TEXEL_ROW_LOG2: u32 = 12u;
@group(0) @binding(15) var input_texels: texture_2d<f32>;

fn input_texel(i: u32) -> vec4<f32> {
    return textureLoad(input_texels, vec2<u32>(i & ((1u << TEXEL_ROW_LOG2) - 1u), i >> TEXEL_ROW_LOG2), 0);
}

// The second input of a kernel that reads two (x and dy in the backward pass), staged
// beside the first whenever the first is (the same TEXEL_INPUT).
@group(0) @binding(14) var second_texels: texture_2d<f32>;

fn second_texel(i: u32) -> vec4<f32> {
    return textureLoad(second_texels, vec2<u32>(i & ((1u << TEXEL_ROW_LOG2) - 1u), i >> TEXEL_ROW_LOG2), 0);
}

// A scalar kernel's input (no vec4 view of its layout), one float a texel (R32Float):
// element i of the bound window is texel (i % TEXEL_ROW, i / TEXEL_ROW).
@group(0) @binding(13) var scalar_texels: texture_2d<f32>;

fn scalar_texel(i: u32) -> f32 {
    return textureLoad(scalar_texels, vec2<u32>(i & ((1u << TEXEL_ROW_LOG2) - 1u), i >> TEXEL_ROW_LOG2), 0).x;
}

// The mean as a float32 pair: shift + mean rounded, and what the rounding lost
// (Fast2Sum, exact when |shift| >= |mean|, which holds for the offset-dominated
// segments it is for; otherwise the pair is still the rounded mean plus a correction).
fn mean_pair(m: Moments) -> vec2<f32> {
    let s = opaque(m.shift + m.mean, m.count);
    let lo = select(m.shift - (s - m.mean), m.mean - (s - m.shift), abs(m.shift) >= abs(m.mean));
    return vec2<f32>(s, select(lo, 0.0, is_nan(lo) || is_nan(s) || abs(lo) > abs(s)));
}

// A state whose segment holds NaN or ±inf, as the mean and variance of those values
// come out in float64 (PyTorch, numpy): NaN anywhere gives NaN; ±inf gives a mean of
// +inf or -inf when only one sign occurs, else NaN, and a NaN variance.
fn poisoned(state: Moments) -> Moments {
    var m = state;
    if (m.nan_count > 0u) {
        m.shift = nan_f32();
        m.mean = nan_f32();
        m.m2 = nan_f32();
    } else if (m.count > 0u && (m.max == inf_f32() || m.min == -inf_f32())) {
        if (m.max == inf_f32() && m.min == -inf_f32()) {
            m.shift = nan_f32();
        } else if (m.max == inf_f32()) {
            m.shift = inf_f32();
        } else {
            m.shift = -inf_f32();
        }
        m.mean = 0.0;
        m.m2 = nan_f32();
    }
    return m;
}
