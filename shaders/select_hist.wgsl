// Exact quantiles, part of the select module (see select.wgsl): the radix passes'
// histograms (hist_main and its vec4 and marked variants).

@group(0) @binding(1) var<storage, read> h_x: array<f32>;
@group(0) @binding(2) var<storage, read> h_hdr: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> h_gprefix: array<u32>;
@group(0) @binding(4) var<storage, read_write> h_hist: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> h_limit: array<u32>;

var<workgroup> lh: array<atomic<u32>, LBINS>;
var<workgroup> sh_gp: array<u32, GPCAP>;
var<workgroup> sh_ng: array<u32, WG>;
var<workgroup> sh_active: u32;
// With many groups past level 1 (HIST_FILTER): a bit per hash of the tile's group
// prefixes, so that most keys of no group skip the search (a software adapter runs its
// loop while any lane of a SIMD batch still searches). At level 1 most keys lie in
// some group, and the filter only costs.
var<workgroup> sh_bits: array<atomic<u32>, 128>;

fn prefix_hash(hi: u32) -> u32 {
    return (hi * 0x9e3779b1u) >> 20u;
}

// What one lane needs to bin a key: its segment's groups (prefixes in sh_gp from
// gbase, ascending) and where its histogram rows are.
struct HistLane {
    level: u32,
    lane_s: u32,
    gbase: u32,
    ng: u32,
    first: u32,  // smallest and largest group prefix
    last: u32,
    hs: u32,     // shift of the prefix (shift + bits)
    shift: u32,
    mask: u32,
    nb: u32,
    gl: u32,
    hrow: u32,   // the segment's first global histogram row
    // Every `stride`-th group prefix in registers, sixteen at most (NOKEY past the
    // last): a lane with at most sixteen groups (stride 1) finds its group without
    // reading workgroup memory; with more, the registers narrow the search in
    // workgroup memory to `stride` groups.
    stride: u32,
    pa: vec4<u32>,
    pb: vec4<u32>,
    pc: vec4<u32>,
    pd: vec4<u32>,
}

// Where a (non-NaN) key counts: the bin of the histogram of the group whose prefix it
// has (at level 0 there is one group, the empty prefix), LOCAL_BIN plus the bin for a
// workgroup-local one, or NOKEY where it has no group.
const LOCAL_BIN: u32 = 0x80000000u;

fn hist_bin(key: u32, l: HistLane) -> u32 {
    var g = 0u;
    if (HIST_PREFIX && !HIST_MANY_GROUPS) {
        // Without a branch: a software adapter would run every path anyway (the
        // sample's level 1 over 1e7 × 1: 0.62 → 0.56 ms, alternating runs).
        let pl = prefix_lookup(key >> l.hs, l);
        return select(NOKEY, group_bin(key, pl.below - 1u, l), pl.hit);
    }
    if (HIST_TABLE) {
        // A prefix's group from the lane's table (see HIST_TABLE).
        g = atomicLoad(&lh[l.lane_s * table_size() + (key >> l.hs)]);
        if (g == NOKEY) {
            return NOKEY;
        }
    } else if (HIST_PREFIX) {
        // More than sixteen groups (HIST_MANY_GROUPS): the registers hold every
        // stride-th prefix.
        let hi = key >> l.hs;
        if (hi < l.first || hi > l.last) {
            return NOKEY;
        }
        if (HIST_FILTER) {
            let hb = prefix_hash(hi);
            if ((atomicLoad(&sh_bits[hb >> 5u]) & (1u << (hb & 31u))) == 0u) {
                return NOKEY;
            }
        }
        // The last group of the block whose prefix is <= hi.
        g = (prefix_lookup(hi, l).below - 1u) * l.stride;
        var n = min(l.stride, l.ng - g);
        while (n > 1u) {
            let half = n / 2u;
            if (sh_gp[l.gbase + g + half] <= hi) {
                g += half;
            }
            n -= half;
        }
        if (sh_gp[l.gbase + g] != hi) {
            return NOKEY;
        }
    }
    return group_bin(key, g, l);
}

// The bin of `key`'s digit in group g's histogram: the workgroup's (LOCAL_BIN plus its
// index) for the groups that have one, else the global one.
fn group_bin(key: u32, g: u32, l: HistLane) -> u32 {
    let d = (key >> l.shift) & l.mask;
    let global = (l.hrow + g) * l.nb + d;
    if (HIST_GLOBAL) {
        return global;
    }
    return select(global, LOCAL_BIN | ((l.lane_s * l.gl + g) * l.nb + d), g < l.gl);
}

// A prefix `hi` against the lane's registers of group prefixes (ascending): how many
// are <= hi (less one: its group, or with a stride the block of groups it lies in),
// and whether one is hi. Only the vec4s of prefixes the batch can fill
// (HIST_PREFIX_VECS).
struct PrefixLookup {
    below: u32,
    hit: bool,
}

fn prefix_lookup(hi: u32, l: HistLane) -> PrefixLookup {
    let h = vec4<u32>(hi);
    var below = count1(l.pa <= h);
    var hit = l.pa == h;
    if (HIST_PREFIX_VECS > 1u) {
        below += count1(l.pb <= h);
        hit |= l.pb == h;
    }
    if (HIST_PREFIX_VECS > 2u) {
        below += count1(l.pc <= h);
        hit |= l.pc == h;
    }
    if (HIST_PREFIX_VECS > 3u) {
        below += count1(l.pd <= h);
        hit |= l.pd == h;
    }
    return PrefixLookup(below.x + below.y + below.z + below.w, any(hit));
}

// One count into the bin `hist_bin` gave (not NOKEY).
fn hist_bump(bin: u32) {
    if (!HIST_GLOBAL && bin >= LOCAL_BIN) {
        atomicAdd(&lh[bin & ~LOCAL_BIN], 1u);
    } else {
        atomicAdd(&h_hist[bin], 1u);
    }
}

// Whether a pass has group prefixes to look up (level > 0), and more than sixteen
// (more than eight q in its batch; see `HistLane`): constants, so that a pass drops the
// lookup it does not need (a software adapter would run it for every key).
override HIST_PREFIX: bool = true;
override HIST_MANY_GROUPS: bool = true;
// How many of a lane's four vec4s of group prefixes (`HistLane`) a pass compares: the
// batch's slots over four, at most 4 (sixteen groups or strides of them).
override HIST_PREFIX_VECS: u32 = 4u;
override HIST_FILTER: bool = false;
// With more than sixteen groups, where the histograms are global (lh unused) and the
// tile's prefixes are short: lh holds a table from every prefix to its group (NOKEY:
// none), `table_size()` entries a segment of the tile. One load a key instead of a
// search in workgroup memory, a loop that a software adapter runs at least once a key
// (99 percentiles, level 1: 1e7 × 1 66–68 → 54 ms, 1e6 × 10 39–42 → 27 ms, 1e5 × 100
// 35 → 24 ms; alternating runs on lavapipe).
override HIST_TABLE: bool = false;

// Entries of a segment's prefix table: every prefix that the pass's digits leave above
// them (32 − shift − bits bits).
fn table_size() -> u32 {
    return 1u << (32u - (p.shift + p.bits));
}
// Whether every key goes straight to the global histograms (no workgroup-local ones,
// gl = 0): a constant, so that the local atomic's branch folds away (a software
// adapter would run it masked for every key).
override HIST_GLOBAL: bool = false;
// Whether the source holds keys (candidate lists, `use_limit`) rather than floats: a
// constant, so that a pass makes only the one conversion it needs.
override HIST_KEYS: bool = false;

// A lane's share of a histogram pass: its lane (with `busy` false, nothing to bin)
// and its walk over the source (in the source's units): elements lw.x, lw.x + lw.z,
// ... below lw.y (`lane_walk`).
struct HistTask {
    busy: bool,
    lane: HistLane,
    s0: u32,
    lw: vec3<u32>,
    walk: ElementWalk,
}

// The part of a histogram pass before its loop: the workgroup's active groups, its
// histograms cleared, its prefixes in workgroup memory, and the lane's task. `per`:
// source elements per key (4 through a vec4 view, whose units the dispatch counts in).
// Workgroup-uniform: returns with `busy` false for every lane when the tile has
// nothing to count (all its segments resolved, in another mode, or all NaN).
fn hist_begin(w: u32, lid: u32, per: u32) -> HistTask {
    let task = lane_task(w, lid, p.tile, p.parts, p.seg_first, p.k_first, p.k_end);
    let s0 = task.s0;
    let s = task.s;
    let nb = 1u << p.bits;
    let none = HistTask(false, HistLane(p.level, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u, 1u, vec4<u32>(NOKEY),
                                        vec4<u32>(NOKEY), vec4<u32>(NOKEY), vec4<u32>(NOKEY)), s0, vec3<u32>(0u, 0u, 1u),
                        element_walk(p.seg, 0u, 0u, 1u));
    if (w >= p.tiles * p.parts) {
        // A workgroup past the dispatch's (the grid is rounded up): nothing to count.
        if (lid == 0u) {
            sh_active = 0u;
        }
        return none;
    }
    if (lid < p.tile) {
        let ss = s0 + lid;
        var ng = 0u;
        if (ss < p.seg_end) {
            let hv = h_hdr[ss * p.nqb + p.qb];
            ng = select(0u, hv.y, hv.z == p.mode);
        }
        sh_ng[lid] = ng;
    }
    if (HIST_FILTER) {
        for (var i = lid; i < 128u; i += WG) {
            atomicStore(&sh_bits[i], 0u);
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        var groups = 0u;
        for (var i = 0u; i < p.tile; i++) {
            groups |= sh_ng[i];
        }
        sh_active = groups;
    }
    if (workgroupUniformLoad(&sh_active) == 0u) {
        return none;
    }
    for (var i = lid; i < p.tile * p.gl * nb; i += WG) {
        atomicStore(&lh[i], 0u);
    }
    if (p.level > 0u) {
        for (var i = lid; i < p.tile * p.rb; i += WG) {
            let ss = s0 + i / p.rb;
            var v = 0u;
            if (ss < p.seg_end) {
                v = h_gprefix[ss * p.r_total + p.r0 + i % p.rb];
            }
            sh_gp[i] = v;
            if (HIST_FILTER) {
                let hb = prefix_hash(v);
                atomicOr(&sh_bits[hb >> 5u], 1u << (hb & 31u));
            }
        }
    }
    if (HIST_TABLE) {
        for (var i = lid; i < p.tile * table_size(); i += WG) {
            atomicStore(&lh[i], NOKEY);
        }
    }
    workgroupBarrier();
    if (HIST_TABLE) {
        // Each group's prefix to its group.
        for (var i = lid; i < p.tile * p.rb; i += WG) {
            if (i % p.rb < sh_ng[i / p.rb]) {
                atomicStore(&lh[(i / p.rb) * table_size() + sh_gp[i]], i % p.rb);
            }
        }
        workgroupBarrier();
    }

    var k_hi = task.k_hi;
    let ng = sh_ng[task.lane_s];
    if (s >= p.seg_end || ng == 0u) {
        return none;
    }
    if (p.use_limit != 0u) {
        k_hi = min(k_hi, (h_limit[s] + per - 1u) / per);
    }
    var lane = HistLane(p.level, task.lane_s, task.lane_s * p.rb, ng, 0u, 0u, p.shift + p.bits, p.shift, nb - 1u, nb,
                        p.gl, (s - p.sb0) * p.rb, 1u, vec4<u32>(NOKEY), vec4<u32>(NOKEY), vec4<u32>(NOKEY),
                        vec4<u32>(NOKEY));
    if (p.level > 0u) {
        lane.first = sh_gp[lane.gbase];
        lane.last = sh_gp[lane.gbase + ng - 1u];
        lane.stride = (ng + 15u) / 16u;
        for (var j = 0u; j * lane.stride < ng; j++) {
            let v = sh_gp[lane.gbase + j * lane.stride];
            switch (j / 4u) {
                case 0u: {
                    lane.pa[j % 4u] = v;
                }
                case 1u: {
                    lane.pb[j % 4u] = v;
                }
                case 2u: {
                    lane.pc[j % 4u] = v;
                }
                default: {
                    lane.pd[j % 4u] = v;
                }
            }
        }
    }
    let lw = lane_walk(task.k_lo, k_hi, task.lane_k, task.lanes, (p.vflags & 2u) != 0u, p.vflags >> 16u);
    return HistTask(true, lane, s0, lw, element_walk(p.seg, segment_base(p.seg, s) - p.window_lo, lw.x, lw.z));
}

// Four keys (or floats) into the lane's histograms: NaN and, in candidate lists (keys),
// the free slots' 0 left out, as the components `inside` says, and keys of no group.
fn hist_add4(bv: vec4<u32>, inside: vec4<bool>, lane: HistLane) {
    let kv = hist_keys4(bv, inside);
    let k = kv.keys;
    let bins = vec4<u32>(hist_bin(k.x, lane), hist_bin(k.y, lane), hist_bin(k.z, lane), hist_bin(k.w, lane));
    let ok = kv.ok & (bins != vec4<u32>(NOKEY));
    if (ok.x) {
        hist_bump(bins.x);
    }
    if (ok.y) {
        hist_bump(bins.y);
    }
    if (ok.z) {
        hist_bump(bins.z);
    }
    if (ok.w) {
        hist_bump(bins.w);
    }
}

// Four values as keys, and which of them count (not NaN, not a free slot, `inside`).
struct Keys4 {
    keys: vec4<u32>,
    ok: vec4<bool>,
}

fn hist_keys4(bv: vec4<u32>, inside: vec4<bool>) -> Keys4 {
    if (HIST_KEYS) {
        return Keys4(bv, inside & (bv != vec4<u32>(0u)));
    }
    return Keys4(keys4(bv), inside & !nan_bits4(bv));
}

// Where few keys have a group (the marked passes): past level 0 in candidate lists, whose
// dense keys spread each bracket over many bins of level 0 (1e7 × 1 quartiles: ~750
// of ~450000 keys), and past level 1 in raw keys. A software adapter runs the body of
// every `if` whatever its lanes say (an atomic: a loop over the lanes), so the pass's
// loop there only marks the rounds with a key of some group (`hist_any4`), and reads
// them again at the end of a block of rounds: no atomic in the loop (on lavapipe, the
// candidates' level 1 of 1e7 × 1 quartiles: 2.0 → 1.5 ms; levels 2 and 3 of 5000 ×
// 2000, after a transpose: 45.4 → 39.4 ms, alternating runs). Not at level 1 of raw keys:
// a binade shares a bin of level 0, so many keys have a group there (a bump a quad
// and marked rounds for the rest: the sample's level 1 took 0.6 → 1.0 ms). With more
// than sixteen groups only where the tile's bitmap of hashed prefixes has few bits
// set (see the host's choice). Entry points `hist_main_marked` and `hist_vec4_marked`.
const HIST_BLOCK: u32 = 32u; // rounds of a block: a bit each of its marks

// Rounds of the block that starts at element k0 of a walk that stops at k_stop and
// moves `step` a round. (The block loops themselves stay two, in hist_main_marked and
// hist_vec4_marked: their binding 1 is an array of f32 in one and of vec4 in the
// other, and a function that read both would bind both to each.)
fn block_rounds(k0: u32, k_stop: u32, step: u32) -> u32 {
    return min((k_stop - k0 + step - 1u) / step, HIST_BLOCK);
}

// The lowest marked round, taken off.
fn take_mark(marks: ptr<function, u32>) -> u32 {
    let r = firstTrailingBit(*marks);
    *marks &= *marks - 1u;
    return r;
}

// Whether a key of the quad may have a group: the lane's prefixes (all of them, with at
// most sixteen groups) against the four keys at once (`kv.ok`: those that count at
// all); with more, the hashed prefixes' bitmap (a few false marks, which the second
// read finds out).
fn hist_any4(kv: Keys4, lane: HistLane) -> bool {
    let hi = kv.keys >> vec4<u32>(lane.hs);
    if (HIST_MANY_GROUPS) {
        // More than sixteen groups (with HIST_FILTER): the workgroup's bitmap of their
        // hashed prefixes, for the keys between the first and the last prefix.
        let ok = kv.ok & (hi >= vec4<u32>(lane.first)) & (hi <= vec4<u32>(lane.last));
        let hb = vec4<u32>(prefix_hash(hi.x), prefix_hash(hi.y), prefix_hash(hi.z), prefix_hash(hi.w));
        let bit = vec4<u32>(1u) << (hb & vec4<u32>(31u));
        let words = vec4<u32>(atomicLoad(&sh_bits[hb.x >> 5u]), atomicLoad(&sh_bits[hb.y >> 5u]),
                              atomicLoad(&sh_bits[hb.z >> 5u]), atomicLoad(&sh_bits[hb.w >> 5u]));
        return any(ok & ((words & bit) != vec4<u32>(0u)));
    }
    var hit = prefix_hits(hi, lane.pa);
    if (HIST_PREFIX_VECS > 1u) {
        hit |= prefix_hits(hi, lane.pb);
    }
    if (HIST_PREFIX_VECS > 2u) {
        hit |= prefix_hits(hi, lane.pc);
    }
    if (HIST_PREFIX_VECS > 3u) {
        hit |= prefix_hits(hi, lane.pd);
    }
    return any(kv.ok & hit);
}

// Which of the four `hi` are one of the four prefixes `pv`.
fn prefix_hits(hi: vec4<u32>, pv: vec4<u32>) -> vec4<bool> {
    return (hi == vec4<u32>(pv.x)) | (hi == vec4<u32>(pv.y)) | (hi == vec4<u32>(pv.z)) | (hi == vec4<u32>(pv.w));
}

// The workgroup's histograms into the global ones (none where its tile had nothing
// to count: then they were not even cleared).
fn hist_end(lid: u32, s0: u32) {
    if (workgroupUniformLoad(&sh_active) == 0u) {
        return;
    }
    let nb = 1u << p.bits;
    for (var i = lid; i < p.tile * p.gl * nb; i += WG) {
        let c = atomicLoad(&lh[i]);
        if (c != 0u) {
            let ls = i / (p.gl * nb);
            let g = (i / nb) % p.gl;
            atomicAdd(&h_hist[((s0 + ls - p.sb0) * p.rb + g) * nb + (i & (nb - 1u))], c);
        }
    }
}

@compute @workgroup_size(256)
fn hist_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ht = hist_begin(wid.x + wid.y * nwg.x, lid, 1u);
    if (ht.busy) {
        // Four of the lane's elements per iteration.
        var walk = ht.walk;
        for (var k = ht.lw.x; k < ht.lw.y; k += 4u * ht.lw.z) {
            let q = walk_quad(&walk, k, ht.lw.z, ht.lw.y);
            hist_add4(h_quad(q.offsets), q.inside, ht.lane);
        }
    }
    hist_end(lid, ht.s0);
}

// hist_main in blocks of marked rounds (see "Where few keys have a group"), a quad a
// round. An entry point of its own, so that the plain passes' pipelines do not carry
// (and compile) its code.
@compute @workgroup_size(256)
fn hist_main_marked(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ht = hist_begin(wid.x + wid.y * nwg.x, lid, 1u);
    if (ht.busy) {
        let step = 4u * ht.lw.z;
        var walk = ht.walk;
        for (var k0 = ht.lw.x; k0 < ht.lw.y; k0 += HIST_BLOCK * step) {
            var marks = 0u;
            let rounds = block_rounds(k0, ht.lw.y, step);
            for (var r = 0u; r < rounds; r++) {
                let q = walk_quad(&walk, k0 + r * step, ht.lw.z, ht.lw.y);
                marks |= select(0u, 1u << r, hist_any4(hist_keys4(h_quad(q.offsets), q.inside), ht.lane));
            }
            while (marks != 0u) {
                let r = take_mark(&marks);
                var again = element_walk(p.seg, ht.walk.base, k0 + r * step, ht.lw.z);
                let q = walk_quad(&again, k0 + r * step, ht.lw.z, ht.lw.y);
                hist_add4(h_quad(q.offsets), q.inside, ht.lane);
            }
        }
    }
    hist_end(lid, ht.s0);
}

// hist_main's four elements at `o`, as bits.
fn h_quad(o: vec4<u32>) -> vec4<u32> {
    return vec4<u32>(bitcast<u32>(h_x[o.x]), bitcast<u32>(h_x[o.y]), bitcast<u32>(h_x[o.z]), bitcast<u32>(h_x[o.w]));
}

// hist_main through a vec4 view whose components are four neighbouring elements of a
// segment (the sample, candidate lists, rows): one load a quad, where a software
// adapter loads the four floats of hist_main one lane and component at a time.
@group(0) @binding(1) var<storage, read> h_x4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn hist_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ht = hist_begin(wid.x + wid.y * nwg.x, lid, 4u);
    if (ht.busy) {
        var walk = ht.walk;
        for (var k = ht.lw.x; k < ht.lw.y; k += ht.lw.z) {
            hist_add4(bitcast<vec4<u32>>(h_x4[walk_offset(walk)]), vec4<bool>(true), ht.lane);
            walk_next(&walk);
        }
    }
    hist_end(lid, ht.s0);
}

// hist_vec4 in blocks of marked rounds: the rounds with a key of some group marked,
// then read again (see `hist_any4`).
@compute @workgroup_size(256)
fn hist_vec4_marked(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ht = hist_begin(wid.x + wid.y * nwg.x, lid, 4u);
    if (ht.busy) {
        let step = ht.lw.z;
        var walk = ht.walk;
        for (var k0 = ht.lw.x; k0 < ht.lw.y; k0 += HIST_BLOCK * step) {
            var marks = 0u;
            let rounds = block_rounds(k0, ht.lw.y, step);
            for (var r = 0u; r < rounds; r++) {
                let kv = hist_keys4(bitcast<vec4<u32>>(h_x4[walk_offset(walk)]), vec4<bool>(true));
                marks |= select(0u, 1u << r, hist_any4(kv, ht.lane));
                walk_next(&walk);
            }
            while (marks != 0u) {
                let r = take_mark(&marks);
                let again = element_walk(p.seg, ht.walk.base, k0 + r * step, step);
                hist_add4(bitcast<vec4<u32>>(h_x4[walk_offset(again)]), vec4<bool>(true), ht.lane);
            }
        }
    }
    hist_end(lid, ht.s0);
}
