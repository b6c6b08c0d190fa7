// Per-segment count, NaN count, mean, M2, min and max.
//
// Pass 1 (`partials`): workgroup w handles a tile of `tile_width` segments and one
// part of their elements. Thread t takes segment lane t % tile_width and element
// lane t / tile_width, so consecutive threads read consecutive memory whether the
// segments are interleaved (columns of a row-major matrix) or contiguous (rows).
// Each thread runs Welford on values shifted by the first value it sees, then the
// workgroup merges lanes in a tree (Chan) and writes one partial per segment.
// Pass 2 (`merge`): one thread per segment merges its partials in order.

struct ReduceParams {
    seg: Segments,
    window_lo: u32,      // flat offset of the bound window's first element
    seg_first: u32,      // first segment of this dispatch
    seg_end: u32,        // one past the last segment of this dispatch
    tile_width: u32,     // segments per workgroup (power of two dividing WG)
    k_first: u32,        // first element index (within each segment) of this dispatch
    k_end: u32,          // one past the last element index of this dispatch
    parts: u32,          // workgroups along the elements in this dispatch
    part_offset: u32,    // this dispatch's first part in the partials of a segment
    parts_total: u32,    // partials per segment
    tiles: u32,          // workgroups along the segments in this dispatch
    flags: u32,          // 1: multiply each segment's values by prescale[s] (huge or tiny magnitudes);
                         // 2: each element lane takes a contiguous block (software adapters);
                         // 4: (partials_vec4) a vec4's components are four segments;
                         // 8: each lane writes its own partial (parts_total counts lanes), no
                         //    tree: a software adapter pays for every barrier of every workgroup
                         // 32: (partials_grid, one part) the partials are the final states
    comp_end: u32,       // (flag 4) one past the last segment
}

@group(0) @binding(0) var<uniform> p: ReduceParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;

// Element i of the input: from the buffer, or its staged scalar texels (TEXEL_INPUT).
fn x_at(i: u32) -> f32 {
    if (TEXEL_INPUT) {
        return scalar_texel(i);
    }
    return x[i];
}
@group(0) @binding(2) var<storage, read_write> partials: array<Moments>;
// A power of two per segment that brings values near 3e38 (whose squares and
// differences overflow float32) down, or values near 1e-25 (whose squared deviations
// underflow) up, to a safe range; min and max stay unscaled.
@group(0) @binding(3) var<storage, read> prescale: array<f32>;

var<workgroup> sh_count: array<u32, WG>;
var<workgroup> sh_nan: array<u32, WG>;
var<workgroup> sh_mean: array<f32, WG>;
var<workgroup> sh_m2: array<f32, WG>;
var<workgroup> sh_min: array<f32, WG>;
var<workgroup> sh_max: array<f32, WG>;

var<workgroup> sh_shift: array<f32, WG>;

fn load_shared(i: u32) -> Moments {
    return Moments(sh_count[i], sh_nan[i], sh_shift[i], sh_mean[i], sh_m2[i], sh_min[i], sh_max[i], 0u);
}

fn store_shared(i: u32, m: Moments) {
    sh_count[i] = m.count;
    sh_nan[i] = m.nan_count;
    sh_shift[i] = m.shift;
    sh_mean[i] = m.mean;
    sh_m2[i] = m.m2;
    sh_min[i] = m.min;
    sh_max[i] = m.max;
}

// Merge the states in shared slots [off + lane_s + j * tile_width], j < lanes, into
// the slot of lane 0, in two levels (at most 16 states per thread and level): three
// barriers, where a tree would take log2(lanes) (a software adapter pays dearly for
// each). Every thread of the workgroup must call this; the result is read from slot
// off + lane_s after it returns.
fn merge_lanes(off: u32, lane_s: u32, lane_k: u32, lanes: u32, tile_width: u32) {
    let g = min(lanes, 16u);
    var acc = empty_moments();
    if (lane_k < g) {
        acc = load_shared(off + lane_s + lane_k * tile_width);
        for (var j = lane_k + g; j < lanes; j += g) {
            acc = merge_moments(acc, load_shared(off + lane_s + j * tile_width));
        }
    }
    workgroupBarrier();
    if (lane_k < g) {
        store_shared(off + lane_s + lane_k * tile_width, acc);
    }
    workgroupBarrier();
    if (lane_k == 0u) {
        for (var j = 1u; j < g; j++) {
            acc = merge_moments(acc, load_shared(off + lane_s + j * tile_width));
        }
        store_shared(off + lane_s, acc);
    }
}

@compute @workgroup_size(256)
fn partials_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= p.tiles * p.parts) {
        return;
    }
    let task = lane_task(w, lid, p.tile_width, p.parts, p.seg_first, p.k_first, p.k_end);
    let s = task.s;

    // This part's element range.

    var n = 0u;
    var nans = 0u;
    var shift = 0.0;
    var mean = 0.0; // of (x - shift)
    var m2 = 0.0;
    var lo = inf_f32();
    var hi = -inf_f32();
    if (s < p.seg_end) {
        let base = segment_base(p.seg, s) - p.window_lo;
        var scale = 1.0;
        if ((p.flags & 1u) != 0u) {
            scale = prescale[s];
        }
        // The lane's elements (`lane_walk`: interleaved on a GPU, a contiguous block
        // per lane on a software adapter, flag 2), four at a time from an
        // `ElementWalk`; the four values form a block (mean and M2 around the block
        // mean, two passes in registers) that is merged into the lane's state (Chan),
        // one division per block. No branches in the loop: a NaN or a slot past the end
        // is masked out.
        let lw = lane_walk(task.k_lo, task.k_hi, task.lane_k, task.lanes, (p.flags & 2u) != 0u, p.flags >> 16u);
        let stride = lw.z;
        var walk = element_walk(p.seg, base, lw.x, stride);
        for (var k = lw.x; k < lw.y; k += 4u * stride) {
            let q = walk_quad(&walk, k, stride, lw.y);
            let inside = q.inside;
            let v = vec4<f32>(x_at(q.offsets.x), x_at(q.offsets.y), x_at(q.offsets.z), x_at(q.offsets.w));
            let nan = is_nan4(v);
            let ok = inside & !nan;
            nans += dot(select(vec4<u32>(0u), vec4<u32>(1u), inside & nan), vec4<u32>(1u));
            let nb = dot(select(vec4<u32>(0u), vec4<u32>(1u), ok), vec4<u32>(1u));
            lo = min(lo, min(min(select(inf_f32(), v.x, ok.x), select(inf_f32(), v.y, ok.y)),
                             min(select(inf_f32(), v.z, ok.z), select(inf_f32(), v.w, ok.w))));
            hi = max(hi, max(max(select(-inf_f32(), v.x, ok.x), select(-inf_f32(), v.y, ok.y)),
                             max(select(-inf_f32(), v.z, ok.z), select(-inf_f32(), v.w, ok.w))));
            let w = v * scale;
            // The state's shift is the first value it sees.
            let first = select(select(select(w.w, w.z, ok.z), w.y, ok.y), w.x, ok.x);
            shift = select(shift, first, n == 0u && nb > 0u);
            let y = select(vec4<f32>(0.0), w - shift, ok);
            let fb = f32(max(nb, 1u));
            let mb = (y.x + y.y + y.z + y.w) / fb;
            let dy = select(vec4<f32>(0.0), y - mb, ok);
            let m2b = dot(dy, dy);
            let total = n + nb;
            let d = mb - mean;
            let frac = f32(nb) / f32(max(total, 1u));
            mean += d * frac;
            m2 += m2b + d * d * f32(n) * frac;
            n = total;
        }
    }
    if ((p.flags & 8u) != 0u) {
        // Every lane its own partial: no barrier at all (see `flags`).
        if (s < p.seg_end) {
            partials[s * p.parts_total + (p.part_offset + task.part) * task.lanes + task.lane_k] =
                Moments(n, nans, shift, mean, m2, lo, hi, 0u);
        }
        return;
    }
    store_shared(lid, Moments(n, nans, shift, mean, m2, lo, hi, 0u));
    workgroupBarrier();
    merge_lanes(0u, task.lane_s, task.lane_k, task.lanes, p.tile_width);
    if (task.lane_k == 0u && s < p.seg_end) {
        partials[s * p.parts_total + p.part_offset + task.part] = load_shared(lid);
    }
}

// The same pass over a vec4 view of the input: a software adapter loads a vec4 for
// much less than four floats, a GPU makes one 128-bit load. `p.seg` describes the view
// in vec4 units, and the four components of a load are either four neighbouring
// segments at one element (flag 4: columns of a row-major matrix, channels-last) or
// four neighbouring elements of one segment (contiguous runs). Each thread keeps one
// state per component. Values accumulate as shifted sums over blocks of up to 16
// loads (a few operations per value, no division), about the state's running mean, and
// each block is folded into the state with Chan's formula; a state without a value yet
// folds after every load, so that its first value becomes its shift.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;

// vec4 i of the input: from the buffer, or its staged texels (TEXEL_INPUT).
fn x4_at(i: u32) -> vec4<f32> {
    if (TEXEL_INPUT) {
        return input_texel(i);
    }
    return x4[i];
}

struct Moments4 {
    n: vec4<u32>,
    nans: vec4<u32>,
    shift: vec4<f32>,
    mean: vec4<f32>, // of (x - shift)
    m2: vec4<f32>,
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// One block: loads, count and sums of (x·scale − reference).
struct Block4 {
    loads: u32,
    n: vec4<u32>,
    s1: vec4<f32>,
    s2: vec4<f32>,
}

// Component c of the states. A switch, not m.n[c]: a variable index would keep the
// whole state in scratch memory, loop included.
fn component(m: Moments4, c: u32) -> Moments {
    switch c {
        case 0u: { return Moments(m.n.x, m.nans.x, m.shift.x, m.mean.x, m.m2.x, m.lo.x, m.hi.x, 0u); }
        case 1u: { return Moments(m.n.y, m.nans.y, m.shift.y, m.mean.y, m.m2.y, m.lo.y, m.hi.y, 0u); }
        case 2u: { return Moments(m.n.z, m.nans.z, m.shift.z, m.mean.z, m.m2.z, m.lo.z, m.hi.z, 0u); }
        default: { return Moments(m.n.w, m.nans.w, m.shift.w, m.mean.w, m.m2.w, m.lo.w, m.hi.w, 0u); }
    }
}

fn add4(st: ptr<function, Moments4>, b: ptr<function, Block4>, v: vec4<f32>, reference: vec4<f32>, scale: vec4<f32>) {
    let nan = is_nan4(v);
    (*b).loads += 1u;
    (*b).n += select(vec4<u32>(1u), vec4<u32>(0u), nan);
    (*st).lo = min((*st).lo, select(v, vec4<f32>(inf_f32()), nan));
    (*st).hi = max((*st).hi, select(v, vec4<f32>(-inf_f32()), nan));
    let y = select(v * scale - reference, vec4<f32>(0.0), nan);
    (*b).s1 += y;
    (*b).s2 += y * y;
}

// Fold a block into the states; returns the next block's reference (the running mean).
fn fold4(st: ptr<function, Moments4>, b: Block4, reference: vec4<f32>) -> vec4<f32> {
    // NaN: the loads that did not count.
    (*st).nans += vec4<u32>(b.loads) - b.n;
    let fb = vec4<f32>(max(b.n, vec4<u32>(1u)));
    let mb = b.s1 / fb;
    let m2b = max(b.s2 - b.s1 * mb, vec4<f32>(0.0));
    // An empty state takes the block's mean as its shift (its mean and M2 are 0).
    (*st).shift = select((*st).shift, reference + mb, (*st).n == vec4<u32>(0u));
    let total = (*st).n + b.n;
    let d = (reference - (*st).shift) + (mb - (*st).mean);
    let frac = vec4<f32>(b.n) / vec4<f32>(max(total, vec4<u32>(1u)));
    (*st).mean += d * frac;
    (*st).m2 += m2b + d * d * vec4<f32>((*st).n) * frac;
    (*st).n = total;
    // Rebase a shift far from the running mean (see `rebase`); the running mean is the
    // next block's reference.
    let t = opaque4((*st).shift + (*st).mean, (*st).n);
    let residual = select(((*st).shift - t) + (*st).mean, ((*st).mean - t) + (*st).shift,
                          abs((*st).mean) > abs((*st).shift));
    let far = abs((*st).mean) > abs(t) & abs(t) <= vec4<f32>(3.0e38);
    (*st).mean = select((*st).mean, residual, far);
    (*st).shift = select((*st).shift, t, far);
    return select(reference, t, total > vec4<u32>(0u));
}

// The prescale factors of the four segments whose vec4 view segment is s (flag 1), or 1.
fn scale4(s: u32) -> vec4<f32> {
    if ((p.flags & 1u) == 0u) {
        return vec4<f32>(1.0);
    }
    return vec4<f32>(prescale[4u * s], prescale[4u * s + 1u], prescale[4u * s + 2u], prescale[4u * s + 3u]);
}

fn block_len(st: Moments4) -> u32 {
    return select(16u, 1u, any(st.n == vec4<u32>(0u)));
}

// Accumulate the elements k, k + stride, ... below k_stop of a lane whose offsets are
// affine in k (one add per load), in blocks folded into the states (see partials_vec4).
fn walk_affine(st: ptr<function, Moments4>, reference: ptr<function, vec4<f32>>, o: ptr<function, u32>,
               k: ptr<function, u32>, k_stop: u32, stride: u32, step: u32, scale: vec4<f32>) {
    while (*k < k_stop) {
        var b = Block4(0u, vec4<u32>(0u), vec4<f32>(0.0), vec4<f32>(0.0));
        let kb = min(*k + block_len(*st) * stride, k_stop);
        for (; *k < kb; *k += stride) {
            add4(st, &b, x4_at(*o), *reference, scale);
            *o += step;
        }
        *reference = fold4(st, b, *reference);
    }
}

// Each component of the states its own segment's partial in `slot` (vec4 components
// that are four segments, past the last one dropped).
fn write_components(s: u32, slot: u32, st: Moments4) {
    for (var c = 0u; c < 4u; c++) {
        let sc = 4u * s + c;
        if (sc < p.comp_end) {
            var m = component(st, c);
            if ((p.flags & 32u) != 0u) {
                m = finished(m);
            }
            partials[sc * p.parts_total + slot] = m;
        }
    }
}

@compute @workgroup_size(256)
fn partials_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= p.tiles * p.parts) {
        return;
    }
    let by_segment = (p.flags & 4u) != 0u;
    let task = lane_task(w, lid, p.tile_width, p.parts, p.seg_first, p.k_first, p.k_end);
    let s = task.s; // in the view's units

    var st = Moments4(vec4<u32>(0u), vec4<u32>(0u), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0),
                      vec4<f32>(inf_f32()), vec4<f32>(-inf_f32()));
    if (s < p.seg_end) {
        let base = segment_base(p.seg, s) - p.window_lo;
        var scale = scale4(s);
        if (!by_segment && (p.flags & 1u) != 0u) {
            scale = vec4<f32>(prescale[s]);
        }
        // The lane's elements (see `lane_walk`; flag 2: software adapter, its SIMD
        // group in flags >> 16).
        let lw = lane_walk(task.k_lo, task.k_hi, task.lane_k, task.lanes, (p.flags & 2u) != 0u, p.flags >> 16u);
        var k = lw.x;
        let k_stop = lw.y;
        let stride = lw.z;
        let esh = p.seg.elem_stride_hi;
        var reference = vec4<f32>(0.0);
        if (p.seg.inner_div == 1u) {
            // Offsets affine in k: one add per load.
            var o = base + k * esh;
            walk_affine(&st, &reference, &o, &k, k_stop, stride, stride * esh, scale);
        } else {
            var walk = element_walk(p.seg, base, k, stride);
            while (k < k_stop) {
                var b = Block4(0u, vec4<u32>(0u), vec4<f32>(0.0), vec4<f32>(0.0));
                let kb = min(k + block_len(st) * stride, k_stop);
                for (; k < kb; k += stride) {
                    add4(&st, &b, x4_at(walk_offset(walk)), reference, scale);
                    walk_next(&walk);
                }
                reference = fold4(&st, b, reference);
            }
        }
    }

    if ((p.flags & 8u) != 0u) {
        // Every lane its own partial(s): no barrier.
        if (s < p.seg_end) {
            let slot = (p.part_offset + task.part) * task.lanes + task.lane_k;
            if (by_segment) {
                write_components(s, slot, st);
            } else {
                var m = component(st, 0u);
                m = merge_moments(m, component(st, 1u));
                m = merge_moments(m, component(st, 2u));
                m = merge_moments(m, component(st, 3u));
                partials[s * p.parts_total + slot] = m;
            }
        }
        return;
    }
    if (by_segment) {
        // Four segments per thread: one merge over the lanes per component.
        for (var c = 0u; c < 4u; c++) {
            store_shared(lid, component(st, c));
            workgroupBarrier();
            merge_lanes(0u, task.lane_s, task.lane_k, task.lanes, p.tile_width);
            let sc = 4u * s + c;
            if (task.lane_k == 0u && s < p.seg_end && sc < p.comp_end) {
                partials[sc * p.parts_total + p.part_offset + task.part] = load_shared(lid);
            }
            workgroupBarrier();
        }
        return;
    }
    var m = component(st, 0u);
    m = merge_moments(m, component(st, 1u));
    m = merge_moments(m, component(st, 2u));
    m = merge_moments(m, component(st, 3u));
    store_shared(lid, m);
    workgroupBarrier();
    merge_lanes(0u, task.lane_s, task.lane_k, task.lanes, p.tile_width);
    if (task.lane_k == 0u && s < p.seg_end) {
        partials[s * p.parts_total + p.part_offset + task.part] = load_shared(lid);
    }
}

struct MergeParams {
    count: u32,
    parts_total: u32,
    seg_stride: u32,  // segment s's partial i is merge_in[s · seg_stride + i · part_stride]
    part_stride: u32,
}

@group(0) @binding(0) var<uniform> mp: MergeParams;
@group(0) @binding(1) var<storage, read> merge_in: array<Moments>;
@group(0) @binding(2) var<storage, read_write> merge_out: array<Moments>;

@compute @workgroup_size(256)
fn merge_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = (wid.x + wid.y * nwg.x) * WG + lid;
    if (s >= mp.count) {
        return;
    }
    var m = empty_moments();
    for (var i = 0u; i < mp.parts_total; i++) {
        m = merge_moments(m, merge_in[s * mp.seg_stride + i * mp.part_stride]);
    }
    merge_out[s] = finished(m);
}

// A segment's final state: all NaN (or empty) gives NaN statistics, as numpy's
// nanmean/nanvar.
fn finished(state: Moments) -> Moments {
    var m = state;
    if (m.count == 0u) {
        m.shift = 0.0;
        m.mean = nan_f32();
        m.m2 = nan_f32();
        m.min = nan_f32();
        m.max = nan_f32();
    }
    return m;
}

// Wide row-major layouts through the vec4 view (the components four neighbouring
// columns), on a software adapter: the same accumulation as partials_vec4, each
// element lane a contiguous block of rows, but the workgroup steps through its blocks
// WIDE_STEP rows at a time with a barrier after each. Such an adapter runs one SIMD
// batch of threads (eight neighbouring vec4 columns) up to the next barrier before the
// next batch. Without the barriers each batch walks its 128-byte strip down every row
// of its block, rows 800 bytes or more apart, which the CPU's prefetchers do not follow
// (200 columns and more were 4x slower than 100); with them the batches read a step's
// rows front to back, strip after strip.
const WIDE_STEP: u32 = 16u;

@compute @workgroup_size(256)
fn partials_wide(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= p.tiles * p.parts) {
        return;
    }
    let task = lane_task(w, lid, p.tile_width, p.parts, p.seg_first, p.k_first, p.k_end);
    let s = task.s; // in the view's units
    // The lane's block of rows; the steps over it from the workgroup alone (uniform:
    // the barriers need it), the same count for every lane.
    let lw = lane_walk(task.k_lo, task.k_hi, task.lane_k, task.lanes, true, 1u);
    let lanes = WG / p.tile_width;
    let per_part = (p.k_end - p.k_first + p.parts - 1u) / p.parts;
    let span = (per_part + lanes - 1u) / lanes;
    let live = s < p.seg_end;
    var st = Moments4(vec4<u32>(0u), vec4<u32>(0u), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0),
                      vec4<f32>(inf_f32()), vec4<f32>(-inf_f32()));
    var scale = vec4<f32>(1.0);
    var o = 0u;
    if (live) {
        scale = scale4(s);
        o = segment_base(p.seg, s) - p.window_lo + lw.x * p.seg.elem_stride_hi;
    }
    let esh = p.seg.elem_stride_hi;
    var reference = vec4<f32>(0.0);
    var k = lw.x;
    for (var step = 0u; step < span; step += WIDE_STEP) {
        if (live) {
            walk_affine(&st, &reference, &o, &k, min(lw.x + step + WIDE_STEP, lw.y), 1u, esh, scale);
        }
        workgroupBarrier();
    }
    if (live) {
        write_components(s, (p.part_offset + task.part) * task.lanes + task.lane_k, st);
    }
}

// Wide row-major layouts through the vec4 view, on a software adapter, laid out as the
// affine kernel's grid: workgroup (tile, part) takes 4·WG vec4 columns and the part's
// rows; each thread four neighbouring vec4 columns (sixteen matrix columns, a state
// each) down those rows, so that each SIMD batch reads 512 contiguous bytes of a row
// per step. One partial per (column, part).
@compute @workgroup_size(256)
fn partials_grid(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= p.tiles * p.parts) {
        return;
    }
    let part = w % p.parts;
    let c0 = p.seg_first + (w / p.parts) * 4u * WG + 4u * lid;
    if (c0 >= p.seg_end) {
        return;
    }
    let n = min(p.seg_end - c0, 4u);
    let per_part = (p.k_end - p.k_first + p.parts - 1u) / p.parts;
    var k = p.k_first + part * per_part;
    let k_hi = min(k + per_part, p.k_end);
    let esh = p.seg.elem_stride_hi;
    var o = segment_base(p.seg, c0) - p.window_lo + k * esh;
    let empty = Moments4(vec4<u32>(0u), vec4<u32>(0u), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0),
                         vec4<f32>(inf_f32()), vec4<f32>(-inf_f32()));
    var st0 = empty;
    var st1 = empty;
    var st2 = empty;
    var st3 = empty;
    var r0 = vec4<f32>(0.0);
    var r1 = vec4<f32>(0.0);
    var r2 = vec4<f32>(0.0);
    var r3 = vec4<f32>(0.0);
    let sc0 = scale4(c0);
    let sc1 = scale4(min(c0 + 1u, p.seg_end - 1u));
    let sc2 = scale4(min(c0 + 2u, p.seg_end - 1u));
    let sc3 = scale4(min(c0 + 3u, p.seg_end - 1u));
    while (k < k_hi) {
        let zero = Block4(0u, vec4<u32>(0u), vec4<f32>(0.0), vec4<f32>(0.0));
        var b0 = zero;
        var b1 = zero;
        var b2 = zero;
        var b3 = zero;
        // Blocks of 16 once every state in use has a value (see block_len).
        let len = min(min(block_len(st0), select(16u, block_len(st1), n > 1u)),
                      min(select(16u, block_len(st2), n > 2u), select(16u, block_len(st3), n > 3u)));
        let kb = min(k + len, k_hi);
        for (; k < kb; k++) {
            add4(&st0, &b0, x4_at(o), r0, sc0);
            if (n > 1u) {
                add4(&st1, &b1, x4_at(o + 1u), r1, sc1);
            }
            if (n > 2u) {
                add4(&st2, &b2, x4_at(o + 2u), r2, sc2);
            }
            if (n > 3u) {
                add4(&st3, &b3, x4_at(o + 3u), r3, sc3);
            }
            o += esh;
        }
        r0 = fold4(&st0, b0, r0);
        r1 = fold4(&st1, b1, r1);
        r2 = fold4(&st2, b2, r2);
        r3 = fold4(&st3, b3, r3);
    }
    let slot = p.part_offset + part;
    write_components(c0, slot, st0);
    if (n > 1u) {
        write_components(c0 + 1u, slot, st1);
    }
    if (n > 2u) {
        write_components(c0 + 2u, slot, st2);
    }
    if (n > 3u) {
        write_components(c0 + 3u, slot, st3);
    }
}
