// Exact quantiles, part of the select module (see select.wgsl): short segments,
// ranked by one thread each (small_main), and the radix passes' tail (tail_main).

// Short segments (a few dozen elements): one thread per segment ranks every element
// by counting (stable: ties broken by position) and writes the keys whose rank is
// wanted. No histograms, no passes.

@group(0) @binding(1) var<storage, read> q_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> q_slots: array<Slot>;
@group(0) @binding(3) var<storage, read_write> q_hdr: array<vec4<u32>>;

const SMALL_LEN: u32 = 64u;

@compute @workgroup_size(256)
fn small_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = p.seg_first + flat_id(wid, nwg, lid);
    if (s >= p.seg_end) {
        return;
    }
    let h = s * p.nqb + p.qb;
    let hv = q_hdr[h];
    let ns = hv.x;
    if (hv.y == 0u) {
        return;
    }
    let base = segment_base(p.seg, s) - p.window_lo;
    let sbase = s * p.r_total + p.r0;
    let len = min(p.seg.len, SMALL_LEN);
    var keys: array<u32, SMALL_LEN>;
    var walk = element_walk(p.seg, base, 0u, 1u);
    for (var k = 0u; k < len; k++) {
        let b = bitcast<u32>(q_x[walk_offset(walk)]);
        walk_next(&walk);
        // NaN: no key (0 is no value's key).
        keys[k] = select(key_of(b), 0u, is_nan(bitcast<f32>(b)));
    }
    for (var i = 0u; i < len; i++) {
        let ki = keys[i];
        if (ki == 0u) {
            continue;
        }
        var r = 0u;
        for (var j = 0u; j < len; j++) {
            let kj = keys[j];
            r += select(0u, 1u, kj != 0u && (kj < ki || (kj == ki && j < i)));
        }
        // The wanted ranks ascend with the slot: binary search.
        var lo = 0u;
        var n = ns;
        while (n > 1u) {
            let half = n / 2u;
            if (q_slots[sbase + lo + half].rank <= r) {
                lo += half;
            }
            n -= half;
        }
        if (q_slots[sbase + lo].rank == r) {
            q_slots[sbase + lo].prefix = ki;
            q_slots[sbase + lo].done = 1u;
        }
    }
    q_hdr[h] = vec4<u32>(ns, 0u, 0u, 0u);
}

// ---------------------------------------------------------------------------------
// The radix passes' tail for short segments on a software adapter (`tail_main`): once
// the digits so far leave each open group few keys (`p.shift`: the bits still to
// resolve), one thread per segment walks its keys once and keeps those of its groups,
// the TAIL_K smallest, sorted in named registers (an insertion chain of min/max pairs,
// no memory). Each open slot's key is then its group's keys below it plus its rank
// within the group: the slot is done and the segment leaves the passes still to come
// (no groups). A segment with more keys in its groups than TAIL_K keeps its slots
// open for those passes. On lavapipe, the last passes of short segments cost ~10 ns a
// key (atomics lane by lane, per-segment scans of every bin); this walk a few.

@group(0) @binding(1) var<storage, read> t_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> t_slots: array<Slot>;
@group(0) @binding(3) var<storage, read_write> t_hdr: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> t_gprefix: array<u32>;

const TAIL_K: u32 = 32u;

// One step of the insertion chain: the smaller of m and x stays in m, the larger moves on.
fn tail_step(m: ptr<function, u32>, x: ptr<function, u32>) {
    let a = *m;
    let b = *x;
    *m = min(a, b);
    *x = max(a, b);
}

@compute @workgroup_size(256)
fn tail_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = p.seg_first + flat_id(wid, nwg, lid);
    if (s >= p.seg_end) {
        return;
    }
    let h = s * p.nqb + p.qb;
    let hv = t_hdr[h];
    let ng = hv.y;
    if (ng == 0u || ng > 16u || hv.z != 0u) {
        return;
    }
    let sbase = s * p.r_total + p.r0;
    // The open groups' prefixes (at most 16; the rest a prefix no key has).
    var gp = array<vec4<u32>, 4>(vec4<u32>(NOKEY), vec4<u32>(NOKEY), vec4<u32>(NOKEY), vec4<u32>(NOKEY));
    for (var g = 0u; g < ng; g++) {
        gp[g / 4u][g % 4u] = t_gprefix[sbase + g];
    }
    let g0 = gp[0];
    let g1 = gp[1];
    let g2 = gp[2];
    let g3 = gp[3];
    var m0 = NOKEY; var m1 = NOKEY; var m2 = NOKEY; var m3 = NOKEY;
    var m4 = NOKEY; var m5 = NOKEY; var m6 = NOKEY; var m7 = NOKEY;
    var m8 = NOKEY; var m9 = NOKEY; var m10 = NOKEY; var m11 = NOKEY;
    var m12 = NOKEY; var m13 = NOKEY; var m14 = NOKEY; var m15 = NOKEY;
    var m16 = NOKEY; var m17 = NOKEY; var m18 = NOKEY; var m19 = NOKEY;
    var m20 = NOKEY; var m21 = NOKEY; var m22 = NOKEY; var m23 = NOKEY;
    var m24 = NOKEY; var m25 = NOKEY; var m26 = NOKEY; var m27 = NOKEY;
    var m28 = NOKEY; var m29 = NOKEY; var m30 = NOKEY; var m31 = NOKEY;
    var members = 0u;
    var walk = element_walk(p.seg, segment_base(p.seg, s) - p.window_lo, 0u, 1u);
    for (var k = 0u; k < p.seg.len; k++) {
        let b = bitcast<u32>(t_x[walk_offset(walk)]);
        walk_next(&walk);
        let key = key_of(b);
        let hi = vec4<u32>(key >> p.shift);
        let member = !is_nan(bitcast<f32>(b))
            && any((hi == g0) | (hi == g1) | (hi == g2) | (hi == g3));
        members += select(0u, 1u, member);
        // NOKEY (above every key of a group: those are no NaN) for the others.
        var x = select(NOKEY, key, member);
        tail_step(&m0, &x); tail_step(&m1, &x); tail_step(&m2, &x); tail_step(&m3, &x);
        tail_step(&m4, &x); tail_step(&m5, &x); tail_step(&m6, &x); tail_step(&m7, &x);
        tail_step(&m8, &x); tail_step(&m9, &x); tail_step(&m10, &x); tail_step(&m11, &x);
        tail_step(&m12, &x); tail_step(&m13, &x); tail_step(&m14, &x); tail_step(&m15, &x);
        tail_step(&m16, &x); tail_step(&m17, &x); tail_step(&m18, &x); tail_step(&m19, &x);
        tail_step(&m20, &x); tail_step(&m21, &x); tail_step(&m22, &x); tail_step(&m23, &x);
        tail_step(&m24, &x); tail_step(&m25, &x); tail_step(&m26, &x); tail_step(&m27, &x);
        tail_step(&m28, &x); tail_step(&m29, &x); tail_step(&m30, &x); tail_step(&m31, &x);
    }
    if (members > TAIL_K) {
        return;
    }
    let kept = array<vec4<u32>, 8>(vec4<u32>(m0, m1, m2, m3), vec4<u32>(m4, m5, m6, m7), vec4<u32>(m8, m9, m10, m11),
                                   vec4<u32>(m12, m13, m14, m15), vec4<u32>(m16, m17, m18, m19),
                                   vec4<u32>(m20, m21, m22, m23), vec4<u32>(m24, m25, m26, m27),
                                   vec4<u32>(m28, m29, m30, m31));
    for (var r = 0u; r < hv.x; r++) {
        var sl = t_slots[sbase + r];
        if (sl.done != 0u) {
            continue;
        }
        // The keys of the groups below this slot's: those below its prefix's first key.
        let first = t_gprefix[sbase + sl.group] << p.shift;
        var below = 0u;
        for (var i = 0u; i < 8u; i++) {
            below += dot(select(vec4<u32>(0u), vec4<u32>(1u), kept[i] < vec4<u32>(first)), vec4<u32>(1u));
        }
        let at = below + sl.rank;
        sl.prefix = kept[at / 4u][at % 4u];
        sl.done = 1u;
        t_slots[sbase + r] = sl;
    }
    t_hdr[h] = vec4<u32>(hv.x, 0u, hv.z, 0u);
}
