// Exact per-segment quantiles by radix select (numpy's linear method, NaN ignored).
//
// Values map to order-preserving u32 keys (positives: flip the sign bit; negatives:
// flip all bits; NaN has no key and is skipped, as the pass that gives the count — a
// moments pass, or the counting pass below — skips it). For each segment the host asks for a sorted set of unique q; each q
// needs the order statistics at ranks lo = floor(q·(n−1)) and min(lo+1, n−1). The
// distinct ranks of a segment are its "slots", sorted; slots whose keys agree on the
// bits resolved so far form a "group" (consecutive slots, sorted by prefix).
//
//   init_main    one thread per segment: ranks and interpolation weights from the
//                count (float64 rounding of q·(n−1) emulated with integers),
//                unique sorted slots, one group with the empty prefix.
//   hist_main    per radix pass and input window: each element whose key starts with
//                a group's prefix adds one to that group's bucket of the next digit.
//                Histograms live in workgroup memory (u32 atomics) while a workgroup
//                runs through thousands of elements, then add into the global
//                per-(segment, group) histogram, so windows (chunks) add up exactly.
//   scan_main    one thread per segment: walks each group's histogram once for all its
//                slots (ranks ascending), appends the digit to each slot's prefix,
//                makes the rank relative to the bucket, and regroups the slots.
//   finish_main  one thread per (segment, requested q): the two keys, back to values,
//                interpolated in float32 as numpy's _lerp; also the raw keys and count.
//
// Two more front ends feed the same slots (see the sections below): sample_main,
// bracket_main, count_main and resolve_main (long segments, a few q: the radix passes
// then read only candidate lists, mode 0, or the whole input for the segments whose
// bracket missed, mode 1), and small_main (short segments: ranks by counting).

struct SelectParams {
    seg: Segments,
    window_lo: u32,   // flat offset of the bound window's first element
    seg_first: u32,   // first segment of this dispatch
    seg_end: u32,     // one past the last segment of this dispatch
    tile: u32,        // segments per workgroup (power of two dividing WG)
    k_first: u32,     // first element index (within each segment) of this dispatch
    k_end: u32,       // one past the last element index of this dispatch
    parts: u32,       // workgroups along the elements
    tiles: u32,       // workgroups along the segments
    r_total: u32,     // slots per segment, all q batches together (2 · unique q)
    r0: u32,          // this q batch's first slot
    rb: u32,          // slots of this q batch (2 · its unique q)
    nqb: u32,         // number of q batches
    qb: u32,          // this q batch
    sb0: u32,         // first segment of this histogram batch
    shift: u32,       // the digit is (key >> shift) & (2^bits − 1)
    bits: u32,
    level: u32,       // pass index (0: no prefix yet)
    gl: u32,          // groups per segment with a workgroup-local histogram
    u_total: u32,     // unique q, all batches
    u0: u32,          // this q batch's first unique q
    ub: u32,          // unique q of this q batch
    nq: u32,          // requested q (output columns)
    mode: u32,        // hist_main: only segments in this mode (0: input/candidates, 1: fallback)
    use_limit: u32,   // hist_main: the input is candidate lists (dense keys, 0 in a free
                      // slot): segment s has only limit[s] elements; scan_main: mode 0's
                      // keys are dense (see BRK)
    sample_m: u32,    // sample_main: sample elements per segment
    cap: u32,         // candidate capacity per segment
    seed: u32,        // sample_main: random stream
    vflags: u32,      // element passes: 2 software adapter (lane groups of vflags >> 16)
    comp_end: u32,    // count_vec4 (COUNT_COLUMNS): one past the last segment
    part_offset: u32, // counting passes: the dispatch's first part (candidate writers)
    parts_total: u32, // counting passes: parts per segment, all dispatches
    sample_frac: u32, // sample_main: (len mod m) · 2^32 / m, the strata's fractional width
    floor_only: u32,  // init_main: only the floor rank of each q (a sample's brackets need no neighbour)
    ties: u32,        // bracket_main: 0 ties at the brackets' ends from the sample, 1 always, 2 never (tests)
    ties_min: u32,    // bracket_main: sample values sharing an end's key that make ties
    _pad3: u32,
}

// One wanted rank of a segment: the rank within the current prefix, the key bits
// resolved so far (the whole key after the last pass), and the slot's group.
struct Slot {
    rank: u32,
    prefix: u32,
    group: u32,
    done: u32, // 1: prefix already holds the whole key (resolved from bracket counts)
}

// Per (segment, unique q): interpolation weight t = th + tl (or 1 − t when flag = 1,
// as numpy's lerp switches at t >= 0.5), the non-NaN count, and the two slots.
struct Frac {
    th: f32,
    tl: f32,
    flag: u32,
    count: u32,
    lo_rank: u32,
    lo_slot: u32,
    hi_slot: u32,
    _pad: u32,
}

const LBINS: u32 = 4096u; // workgroup-local histogram bins (16 KiB)
const GPCAP: u32 = 1024u; // group prefixes of a workgroup's tile (tile · rb <= GPCAP)

@group(0) @binding(0) var<uniform> p: SelectParams;

// The keys of four values as signed integers (key ^ 0x80000000), NaN's i32's min: the
// counting passes compare them with one signed compare each (x86 SIMD, which software
// adapters run on, has no unsigned compare).
fn skeys4(bv: vec4<u32>, nan: vec4<bool>) -> vec4<i32> {
    let b = bitcast<vec4<i32>>(bv);
    return select(b ^ ((b >> vec4<u32>(31u)) & vec4<i32>(0x7fffffff)), vec4<i32>(i32(-2147483647 - 1)), nan);
}

// Keys to signed keys and back.
fn skey4(k: vec4<u32>) -> vec4<i32> {
    return bitcast<vec4<i32>>(k ^ vec4<u32>(0x80000000u));
}

fn ukey4(sk: vec4<i32>) -> vec4<u32> {
    return bitcast<vec4<u32>>(sk) ^ vec4<u32>(0x80000000u);
}

// key_of for four values, NaN's key 0 (below every value's key).
fn keys4(bv: vec4<u32>) -> vec4<u32> {
    return ukey4(skeys4(bv, nan_bits4(bv)));
}

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

// ---------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> i_moments: array<Moments>;
@group(0) @binding(2) var<storage, read> i_qinfo: array<QInfo>;
@group(0) @binding(3) var<storage, read_write> i_slots: array<Slot>;
@group(0) @binding(4) var<storage, read_write> i_fracs: array<Frac>;
@group(0) @binding(5) var<storage, read_write> i_hdr: array<vec4<u32>>; // (slots, groups, mode, 0)
@group(0) @binding(6) var<storage, read_write> i_gprefix: array<u32>;

@compute @workgroup_size(256)
fn init_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = p.seg_first + flat_id(wid, nwg, lid);
    if (s >= p.seg_end) {
        return;
    }
    let n = i_moments[s].count;
    let fbase = s * p.u_total + p.u0;
    let sbase = s * p.r_total + p.r0;
    let h = s * p.nqb + p.qb;
    if (n == 0u) {
        for (var u = 0u; u < p.ub; u++) {
            i_fracs[fbase + u] = Frac(0.0, 0.0, 0u, 0u, 0u, p.r0, p.r0, 0u);
        }
        i_hdr[h] = vec4<u32>(0u);
        return;
    }
    let nm1 = n - 1u;
    for (var u = 0u; u < p.ub; u++) {
        let r = rank_of(i_qinfo[p.u0 + u], nm1);
        i_fracs[fbase + u] = Frac(r.th, r.tl, r.flag, n, r.lo, 0u, 0u, 0u);
    }
    // Merge the sorted lists lo_u and hi_u = min(lo_u + 1, n − 1) into unique slots.
    var i = 0u;
    var j = 0u;
    var ns = 0u;
    var last = 0u;
    loop {
        if (i >= p.ub && j >= p.ub) {
            break;
        }
        let lo_i = select(0xffffffffu, i_fracs[fbase + min(i, p.ub - 1u)].lo_rank, i < p.ub);
        let next = select(1u, 0u, p.floor_only != 0u);
        let hi_j = select(0xffffffffu, min(i_fracs[fbase + min(j, p.ub - 1u)].lo_rank + next, nm1), j < p.ub);
        let take_lo = lo_i <= hi_j;
        let v = select(hi_j, lo_i, take_lo);
        if (ns == 0u || v != last) {
            i_slots[sbase + ns] = Slot(v, 0u, 0u, 0u);
            ns += 1u;
            last = v;
        }
        if (take_lo) {
            i_fracs[fbase + i].lo_slot = p.r0 + ns - 1u;
            i += 1u;
        } else {
            i_fracs[fbase + j].hi_slot = p.r0 + ns - 1u;
            j += 1u;
        }
    }
    i_hdr[h] = vec4<u32>(ns, 1u, 0u, 0u);
    i_gprefix[sbase] = 0u;
}

// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> c_hist: array<u32>;
@group(0) @binding(2) var<storage, read_write> c_slots: array<Slot>;
@group(0) @binding(3) var<storage, read_write> c_hdr: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> c_gprefix: array<u32>;
// With candidate lists (use_limit), the brackets that made their keys dense (see BRK).
@group(0) @binding(5) var<storage, read> c_brk: array<vec4<u32>>;

@compute @workgroup_size(256)
fn scan_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = p.seg_first + flat_id(wid, nwg, lid);
    if (s < p.seg_end) {
        scan_segment(s, false);
    }
}

// Per group of a segment (the first SCAN_GROUPS), the sums of WG runs of its bins
// (scan_wide).
const SCAN_GROUPS: u32 = 16u;
var<workgroup> sc_part: array<u32, 4096>; // SCAN_GROUPS · WG

// scan_main for a few segments, one workgroup each: the threads first sum runs of the
// bins (nb / WG each), so that the walk to a rank skips whole runs. A single thread
// walking up to 2048 bins one load at a time is a chain of dependent loads on a GPU.
@compute @workgroup_size(256)
fn scan_wide(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = p.seg_first + wid.x + wid.y * nwg.x;
    if (s >= p.seg_end) {
        return;
    }
    let ng = min(c_hdr[s * p.nqb + p.qb].y, SCAN_GROUPS);
    let nb = 1u << p.bits;
    let per = max(nb / WG, 1u);
    if (lid * per < nb) {
        for (var g = 0u; g < ng; g++) {
            let row = ((s - p.sb0) * p.rb + g) * nb + lid * per;
            var sum = 0u;
            for (var i = 0u; i < per; i++) {
                sum += c_hist[row + i];
            }
            sc_part[g * WG + lid] = sum;
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        scan_segment(s, true);
    }
}

// Every slot of segment s still open: the digit its rank falls in, from the group's
// histogram, and the slot's rank within that digit; the new group prefixes. `runs`:
// sc_part holds the sums of the first SCAN_GROUPS groups' runs of bins (scan_wide).
fn scan_segment(s: u32, runs: bool) {
    let h = s * p.nqb + p.qb;
    let hv = c_hdr[h];
    let ns = hv.x;
    let ng = hv.y;
    if (ng == 0u) {
        return;
    }
    let base = s * p.r_total + p.r0;
    let nb = 1u << p.bits;
    let per = max(nb / WG, 1u);
    let nruns = nb / per;
    // Dense candidate keys (mode 0 of the sampling path) are whole once no bit is left
    // above their shift.
    let dense = p.use_limit != 0u && hv.z == 0u;
    var whole = false;
    var dshift = 0u;
    if (dense) {
        dshift = c_brk[s * BRK].y;
        whole = p.shift <= dshift;
    }
    var newg = 0u;
    var last = 0u;
    var g = 0xffffffffu;
    var row = 0u;
    var d = 0u;
    var cum = 0u;
    var c = 0u;
    for (var r = 0u; r < ns; r++) {
        var sl = c_slots[base + r];
        if (sl.done != 0u) {
            continue;
        }
        if (sl.group != g) {
            // The slots of a group are consecutive (ranks ascend): walk its histogram once.
            g = sl.group;
            row = ((s - p.sb0) * p.rb + g) * nb;
            d = 0u;
            cum = 0u;
            c = c_hist[row];
        }
        let skip = runs && g < SCAN_GROUPS;
        loop {
            if (d + 1u >= nb) {
                break;
            }
            // At the start of a run that lies wholly at or below the rank: past it.
            if (skip && d % per == 0u && d / per + 1u < nruns) {
                let sum = sc_part[g * WG + d / per];
                if (cum + sum <= sl.rank) {
                    cum += sum;
                    d += per;
                    c = c_hist[row + d];
                    continue;
                }
            }
            if (cum + c > sl.rank) {
                break;
            }
            cum += c;
            d += 1u;
            c = c_hist[row + d];
        }
        let np = (sl.prefix << p.bits) | d;
        if (whole) {
            sl.prefix = sparse_key(s, (np << p.shift) >> dshift);
            sl.done = 1u;
            c_slots[base + r] = sl;
            continue;
        }
        if (newg == 0u || np != last) {
            c_gprefix[base + newg] = np;
            newg += 1u;
            last = np;
        }
        sl.rank -= cum;
        sl.prefix = np;
        // After the last digit, the group is the key's count (ties; see finish_main).
        sl.group = select(newg - 1u, c, p.shift == 0u);
        c_slots[base + r] = sl;
    }
    c_hdr[h] = vec4<u32>(ns, newg, hv.z, 0u);
}

// A dense candidate key (shifted back) of segment s as the key it stands for: that of
// the bracket whose offset o_j = d_j + lo_j is the last below it.
fn sparse_key(s: u32, dk: u32) -> u32 {
    let o = s * BRK;
    // o_j = d_j + lo_j, less one where the ends were candidates too (see bracket_main).
    let inclusive = c_brk[o].z;
    var key = 0u;
    for (var j = 0u; j < c_brk[o].x; j++) {
        let d = c_brk[o + OFF + j / 4u][j % 4u];
        if (d + c_brk[o + 1u + j / 4u][j % 4u] - inclusive < dk) {
            key = dk - d;
        }
    }
    return key;
}

// ---------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> f_slots: array<Slot>;
@group(0) @binding(2) var<storage, read> f_fracs: array<Frac>;
@group(0) @binding(3) var<storage, read> f_qmap: array<u32>;
@group(0) @binding(4) var<storage, read_write> f_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_os: array<vec4<u32>>;

@compute @workgroup_size(256)
fn finish_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_id(wid, nwg, lid);
    let s = p.seg_first + i / p.nq;
    if (s >= p.seg_end) {
        return;
    }
    let j = i % p.nq;
    let o = s * p.nq + j;
    let fr = f_fracs[s * p.u_total + f_qmap[j]];
    if (fr.count == 0u) {
        f_out[o] = nan_f32();
        f_os[o] = vec4<u32>(0u, 0u, 0u, 0u);
        return;
    }
    let lo = f_slots[s * p.r_total + fr.lo_slot];
    let ka = lo.prefix;
    let kb = f_slots[s * p.r_total + fr.hi_slot].prefix;
    f_out[o] = lerp_numpy(value_of(ka), value_of(kb), fr.th, fr.tl, fr.flag);
    // w: how many values have key ka, where the radix passes reached its last digit
    // (a sample's, for bracket_main's tie test; meaningless where a slot was resolved
    // before).
    f_os[o] = vec4<u32>(ka, kb, fr.count, lo.group);
}

// ---------------------------------------------------------------------------------
// Sample-and-bracket fast path for long segments (a few q):
//
//   sample_main   a stratified random sample of each segment (one element per stratum);
//                 its quantiles q ∓ δ (found by the passes above, on the sample) give
//                 a key bracket per q that very likely holds the wanted ranks.
//   bracket_main  one thread per segment: the brackets, overlapping ones merged.
//   count_main    one pass over the input: per bracket the counts of keys < lo, <= lo,
//                 < hi, <= hi (vector compares, no atomics per element), and the
//                 values strictly inside a bracket written to the thread's own slots
//                 of the segment's candidate list (count_vec4: the same through a
//                 vec4 view).
//   resolve_main  one thread per segment: a rank that falls on a bracket's end is that
//                 end's key; a rank inside becomes a rank among the candidates, which
//                 the radix passes then resolve (reading only the candidates); a rank
//                 outside every bracket, or candidates beyond capacity, sends the
//                 segment to the radix passes over the whole input (mode 1).

fn hash_u32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

@group(0) @binding(1) var<storage, read> sm_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sm_out: array<f32>;
// Per segment, its sample's values that are not NaN: m to begin with, one off per NaN
// drawn (the sample's counts, with no moments pass; NaN is rare, and a software
// adapter skips the atomic of a lane that is not NaN).
@group(0) @binding(3) var<storage, read_write> sm_valid: array<atomic<u32>>;

// Whether the call has one segment (`sample_main`).
override SAMPLE_ONE_SEGMENT: bool = false;

@compute @workgroup_size(256)
fn sample_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // A few workgroups, each thread many samples (a software adapter pays for every
    // workgroup), and no integer division per sample (a software adapter divides lane
    // by lane): the stratum offset comes from a high multiply.
    // Stratum j is [⌊j·len/m⌋, ⌊(j+1)·len/m⌋): the strata cover the whole segment
    // (sorted input: a tail left out would shift every sample quantile), their bounds
    // from len/m as a 32.32 fixed-point step.
    let threads = nwg.x * nwg.y * WG;
    let step = p.seg.len / p.sample_m;
    let hs = hash_u32(p.seed);
    if (SAMPLE_ONE_SEGMENT) {
        // One segment: no loop over segments, and the thread's NaN counted once at
        // its end (a software adapter runs a loop's body, and an atomic's loop over
        // the lanes, for every sample).
        var nans = 0u;
        let base = segment_base(p.seg, p.seg_first) - p.window_lo;
        for (var j = flat_id(wid, nwg, lid); j < p.sample_m; j += threads) {
            let v = sample_at(base + stratum_offset(j, step, hs));
            sm_out[j] = v;
            nans += u32(is_nan(v));
        }
        if (nans != 0u) {
            atomicSub(&sm_valid[0], nans);
        }
        return;
    }
    for (var j = flat_id(wid, nwg, lid); j < p.sample_m; j += threads) {
        // The same stratum offset in every segment, segment after segment: neighbouring
        // segments (columns) share the cache lines of their samples.
        let off = stratum_offset(j, step, hs);
        for (var s = p.seg_first; s < p.seg_end; s++) {
            let v = sample_at(segment_base(p.seg, s) - p.window_lo + off);
            sm_out[(s - p.seg_first) * p.sample_m + j] = v;
            if (is_nan(v)) {
                atomicSub(&sm_valid[s - p.seg_first], 1u);
            }
        }
    }
}

// Sample j's offset within a segment: a random element of stratum j,
// [⌊j·len/m⌋, ⌊(j+1)·len/m⌋), its bounds from len/m as a 32.32 fixed-point step
// (`step` = ⌊len/m⌋, with `p.sample_frac`); `hs`: the hashed seed.
fn stratum_offset(j: u32, step: u32, hs: u32) -> u32 {
    let start = j * step + mul_wide(j, p.sample_frac).y;
    let end = (j + 1u) * step + mul_wide(j + 1u, p.sample_frac).y;
    let k = start + mul_wide(hash_u32(hs ^ j), end - start).y;
    if (p.seg.inner_div == 1u) {
        return k * p.seg.elem_stride_hi;
    }
    return element_offset(p.seg, k);
}

// Element e of the input: from the buffer, or from the texels the counting pass reads
// too (TEXEL_INPUT; staged once for both), four elements a texel.
fn sample_at(e: u32) -> f32 {
    if (TEXEL_INPUT) {
        let t = input_texel(e >> 2u);
        // Picked by selects: indexing a vector by a variable costs a trip through memory.
        let c = e & 3u;
        return select(select(t.x, t.y, c == 1u), select(t.z, t.w, c == 3u), c >= 2u);
    }
    return sm_x[e];
}

// Brackets of a segment: BRK vec4 per segment: (count, shift, 0, 0), lo in MAXB / 4
// vec4, then hi and the offsets in as many each; unused brackets are [MAX, MAX]
// (nothing inside, never reached).
//
// The candidates are written as dense keys, so that their radix passes can stop early:
// bracket j's inside (lo_j, hi_j) maps to (o_j, o_j + hi_j − lo_j) with o_j the widths
// of the brackets below (key + d_j, d_j = o_j − lo_j, wrapping), and the sum of the
// widths, shifted left by `shift` (its leading zeros), fills the high bits. Where the
// ends may be candidates too (a segment without heavy ties, flag `inclusive` in the
// header's z), [lo_j, hi_j] maps to [o_j + 1, o_j + 1 + hi_j − lo_j], each width one
// more. Order is kept, no candidate is 0 (a free slot), and once a radix pass leaves
// only bits below `shift` the prefix is the whole key (see `scan_main`, which maps it
// back). Header: (count, shift, inclusive, 0).
const MAXB: u32 = 16u; // brackets per segment (MAX_BRACKETS)
const BRK: u32 = 1u + 3u * MAXB / 4u;
const HI: u32 = 1u + MAXB / 4u; // the first hi vec4
const OFF: u32 = 1u + MAXB / 2u; // the first d vec4
const NOKEY: u32 = 0xffffffffu;

@group(0) @binding(1) var<storage, read> b_os: array<vec4<u32>>; // sample order statistics
@group(0) @binding(2) var<storage, read> b_edge: array<u32>;     // 1: the bracket q is 0 (lo) or 1 (hi)
@group(0) @binding(3) var<storage, read_write> b_brk: array<vec4<u32>>;
// The counting dispatches' indirect arguments, eight words each: the pass that takes
// a bracket's ends as candidates (COUNT_TIES off) x, y, z, the pass that counts ties
// at the ends (COUNT_TIES on) x, y, z, then x for the second, and a spare word. The
// first runs unless some segment's sample has heavy ties at a bracket's end (a value
// that could fill the candidate lists): then the second runs instead.
@group(0) @binding(4) var<storage, read_write> b_args: array<atomic<u32>>;

@compute @workgroup_size(256)
fn bracket_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = p.seg_first + flat_id(wid, nwg, lid);
    if (s >= p.seg_end) {
        return;
    }
    let row = s * 2u * p.ub;
    let sampled = b_os[row].z > 0u;
    // Ties: a bracket's end (not an edge) whose key ties_min or more sample values share
    // (so many in the input that, as candidates, they could fill the lists).
    var ties = p.ties == 1u;
    if (p.ties == 0u && sampled) {
        for (var e = 0u; e < 2u * p.ub; e++) {
            ties = ties || (b_edge[e] == 0u && b_os[row + e].w >= p.ties_min);
        }
    }
    if (ties) {
        for (var i = 0u; i < arrayLength(&b_args) / 8u; i++) {
            atomicStore(&b_args[8u * i], 0u);
            atomicStore(&b_args[8u * i + 3u], atomicLoad(&b_args[8u * i + 6u]));
        }
    }
    // Dense candidate keys (see above). Without ties of its own, a segment's candidates
    // may include its brackets' ends (whichever counting pass runs): bracket j's
    // [lo_j, hi_j] maps to [o_j + 1, o_j + 1 + hi_j − lo_j] (d_j = o_j + 1 − lo_j), and
    // the disjoint brackets' hi − lo + 1 add up to at most 2^32 − 1. With ties, only the
    // insides: (lo_j, hi_j) to (o_j, o_j + hi_j − lo_j), touching brackets allowed.
    // Each bracket goes straight to b_brk once the next does not merge with it: private
    // arrays indexed at run time took lavapipe ~25 ms to compile (this pass, per
    // process), 2.5–3 ms this way.
    let inclusive = !ties;
    let o = s * BRK;
    var nbr = 0u;
    var width = 0u; // o_j of the next bracket
    var lo = NOKEY;
    var hi = NOKEY;
    if (sampled) {
        for (var u = 0u; u < p.ub; u++) {
            // lo = 1 is "everything": every value's key is above 1 (NaN's is taken as 0).
            let l = select(b_os[row + 2u * u].x, 1u, b_edge[2u * u] != 0u);
            let h = select(b_os[row + 2u * u + 1u].x, NOKEY, b_edge[2u * u + 1u] != 0u);
            // Merge overlapping brackets. Touching ones may stay apart where ties are
            // counted (their insides, strictly between the ends, are disjoint), not where
            // the ends are candidates of both.
            if (nbr > 0u && (l < hi || (!ties && l == hi))) {
                hi = max(hi, h);
            } else {
                if (nbr > 0u) {
                    put_bracket(o, nbr - 1u, vec3<u32>(lo, hi, width - lo + u32(inclusive)));
                    width += hi - lo + u32(inclusive);
                }
                lo = l;
                hi = h;
                nbr += 1u;
            }
        }
        if (nbr > 0u) {
            put_bracket(o, nbr - 1u, vec3<u32>(lo, hi, width - lo + u32(inclusive)));
            width += hi - lo + u32(inclusive);
        }
    }
    // The rest: [MAX, MAX], nothing inside.
    for (var j = nbr; j < MAXB; j++) {
        put_bracket(o, j, vec3<u32>(NOKEY, NOKEY, width - NOKEY + u32(inclusive)));
    }
    b_brk[o] = vec4<u32>(nbr, min(countLeadingZeros(width), 31u), u32(inclusive), 0u);
}

// Bracket j of the segment at b_brk[o]: its lo, hi and dense offset d (`v`).
fn put_bracket(o: u32, j: u32, v: vec3<u32>) {
    b_brk[o + 1u + j / 4u][j % 4u] = v.x;
    b_brk[o + HI + j / 4u][j % 4u] = v.y;
    b_brk[o + OFF + j / 4u][j % 4u] = v.z;
}

// Bracket counts per segment: 4 · MAXB u32, [kind * MAXB + bracket] with kinds
// 0: key < lo, 1: key <= lo, 2: key < hi, 3: key <= hi.
const NCOUNT: u32 = 4u * MAXB;

@group(0) @binding(1) var<storage, read> k_x: array<f32>;

// Element i of count_main's input: from the buffer, or its staged scalar texels
// (TEXEL_INPUT).
fn k_x_at(i: u32) -> f32 {
    if (TEXEL_INPUT) {
        return scalar_texel(i);
    }
    return k_x[i];
}
@group(0) @binding(2) var<storage, read> k_brk: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> k_bcount: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> k_ccount: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> k_cand: array<u32>; // keys
// Per segment, its values that are not NaN (so that no moments pass is needed).
@group(0) @binding(6) var<storage, read_write> k_valid: array<atomic<u32>>;

var<workgroup> sh_bc: array<atomic<u32>, 2048>; // segments of a workgroup × NCOUNT (count_vec4: VCOUNT)

// The counting passes (count_main, and count_vec4 below) hold no atomic in their
// loops: a software adapter runs the body of every `if` whatever the lanes say, so a
// rare atomic append cost as much as a common one (it nearly doubled the pass). Every
// bracket's four counts are compares, and each thread writes its candidates (as keys)
// into slots of its own: writer w's j-th candidate of a segment goes to slot j · W + w
// of the segment's list (W writers per segment, `ct` slots each), so the lists stay
// dense from the front. Slots are zero before the pass (no candidate has key 0: it
// lies above some lo >= 1), and `k_ccount` gets the list's extent, or cap + 1 when a
// writer ran out of slots (the segment then goes to the fallback). The lanes take
// chunks of CHUNK loads in turns (see `chunk_walk`), so that values that lie together
// (sorted input) spread over the writers. Both also count each segment's values that
// are not NaN (`k_valid`), so that no moments pass is needed.
// Loads of a lane group before the next group's turn (COUNT_CHUNK); at most 64 (a round
// a bit of `redo`, two words). Long chunks: the re-read loop at a chunk's end runs at
// least once, and as often as the busiest lane of a SIMD batch needs, which longer
// chunks even out (on lavapipe, 16 → 32: count_vec4 ~5–8 % faster; 32 → 64: ~4 % over
// 625000 × 16 and 1e6 × 10, no change over 1e7 × 1).
const CHUNK: u32 = 64u;

// A chunk's rounds to read again, a bit each (64: two words).
fn redo_mark(redo: ptr<function, vec2<u32>>, round: u32, on: bool) {
    let bit = select(0u, 1u << (round & 31u), on);
    *redo |= select(vec2<u32>(bit, 0u), vec2<u32>(0u, bit), round >= 32u);
}

// The lowest round still to read again, taken off.
fn redo_next(redo: ptr<function, vec2<u32>>) -> u32 {
    let low = (*redo).x != 0u;
    let w = select((*redo).y, (*redo).x, low);
    let rest = w & (w - 1u);
    *redo = select(vec2<u32>((*redo).x, rest), vec2<u32>(rest, (*redo).y), low);
    return firstTrailingBit(w) + select(32u, 0u, low);
}

fn count1(v: vec4<bool>) -> vec4<u32> {
    return select(vec4<u32>(0u), vec4<u32>(1u), v);
}

// One bracket against four keys at a time: its ends as signed keys (per component),
// the offset that makes a key inside it dense (see `BRK`), and its counts per
// component (key < lo, key <= lo, key < hi, key <= hi), NaN included (taken off at
// the end).
struct Bracket4 {
    lo: vec4<i32>,
    hi: vec4<i32>,
    d: vec4<u32>,
    lt_lo: vec4<u32>,
    le_lo: vec4<u32>,
    lt_hi: vec4<u32>,
    le_hi: vec4<u32>,
}

fn bracket4(lo: vec4<u32>, hi: vec4<u32>, d: vec4<u32>) -> Bracket4 {
    let zero = vec4<u32>(0u);
    return Bracket4(skey4(lo), skey4(hi), d, zero, zero, zero, zero);
}

// Count four keys against a bracket; true where a key is a candidate (strictly inside,
// or with COUNT_TIES off inside or on an end), and there `d` gets the bracket's
// offset.
fn count_bracket(b: ptr<function, Bracket4>, sk: vec4<i32>, d: ptr<function, vec4<u32>>) -> vec4<bool> {
    (*b).lt_lo += count1(sk < (*b).lo);
    (*b).le_hi += count1(sk <= (*b).hi);
    if (COUNT_TIES) {
        (*b).le_lo += count1(sk <= (*b).lo);
        (*b).lt_hi += count1(sk < (*b).hi);
    }
    return in_bracket(*b, sk, d);
}

// Which of the four keys are candidates of bracket b (their dense offset into `d`),
// without counting them.
fn in_bracket(b: Bracket4, sk: vec4<i32>, d: ptr<function, vec4<u32>>) -> vec4<bool> {
    var inside = !(sk < b.lo) & (sk <= b.hi);
    if (COUNT_TIES) {
        inside = !(sk <= b.lo) & (sk < b.hi);
    }
    *d = select(*d, b.d, inside);
    return inside;
}

// count_bracket over brackets 0 to 3, as many as the pass counts (COUNT_BRACKETS: the
// compares past them fold away).
fn count_first4(b0: ptr<function, Bracket4>, b1: ptr<function, Bracket4>, b2: ptr<function, Bracket4>,
                b3: ptr<function, Bracket4>, sk: vec4<i32>, d: ptr<function, vec4<u32>>) -> vec4<bool> {
    var inside = count_bracket(b0, sk, d);
    if (COUNT_BRACKETS > 1u) {
        inside |= count_bracket(b1, sk, d);
    }
    if (COUNT_BRACKETS > 2u) {
        inside |= count_bracket(b2, sk, d);
    }
    if (COUNT_BRACKETS > 3u) {
        inside |= count_bracket(b3, sk, d);
    }
    return inside;
}

// in_bracket over brackets 0 to 3, as count_first4.
fn in_first4(b0: Bracket4, b1: Bracket4, b2: Bracket4, b3: Bracket4, sk: vec4<i32>, d: ptr<function, vec4<u32>>)
    -> vec4<bool> {
    var inside = in_bracket(b0, sk, d);
    if (COUNT_BRACKETS > 1u) {
        inside |= in_bracket(b1, sk, d);
    }
    if (COUNT_BRACKETS > 2u) {
        inside |= in_bracket(b2, sk, d);
    }
    if (COUNT_BRACKETS > 3u) {
        inside |= in_bracket(b3, sk, d);
    }
    return inside;
}

// The lane's share of a counting dispatch's elements [k_first, k_end): the lanes walk
// in groups of r (all of a part's lanes on a GPU; a SIMD batch on a software adapter,
// as `lane_walk`), each group a chunk of `span` elements at a time, the groups of every
// part taking turns. Returns (first chunk's start, the turn's step, r); chunk c0's
// elements are k_first + c0 + lane % r + i·r.
fn chunk_walk(task: LaneTask, span: u32) -> vec3<u32> {
    let r = select(task.lanes, clamp(p.vflags >> 16u, 1u, task.lanes), (p.vflags & 2u) != 0u);
    let groups_per_part = task.lanes / r;
    let first = (task.part * groups_per_part + task.lane_k / r) * r * span;
    return vec3<u32>(first, p.parts * groups_per_part * r * span, r);
}

// A writer's share of its segment's candidate list: the list's extent (its `found`
// candidates' slots times the writers), or cap + 1 when they filled its slots (the
// last one must stay free, see `write_first`).
fn flush_candidates(s: u32, found: u32, ct: u32, writers: u32) {
    atomicMax(&k_ccount[s], select(found * writers, p.cap + 1u, found >= ct));
}

// Candidate writes. The keys `kv` that lie inside a bracket go to the writer's slots,
// the components in order: component i goes to list `list[i]`, at the writer's running
// count `found[i]` (with `one_list`, the components share one list and every component
// of `found` counts them all). Past its slots a writer overwrites its last one; its
// segment then goes to the fallback (see `flush_candidates`, which keeps that last
// slot free for the 0s).
//
// A software adapter runs the body of every `if` and of every loop at least once,
// paying for each store in it whether its lanes store or not (a loop over the lanes).
// So a counting round stores once (`write_first`: the first key inside, or else a 0
// into the next free slot of component x's list) and only marks a round with more
// keys inside; the chunk's marked rounds are read again at its end and their other
// keys written by `write_rest`. A loop per round cost 16 % of the counting pass.

// The keys still `left` after `write_first`, one round each.
fn write_rest(list: vec4<u32>, found: ptr<function, vec4<u32>>, left: ptr<function, vec4<bool>>, kv: vec4<u32>,
              ct: u32, writers: u32, one_list: bool) {
    while (any(*left)) {
        write_first(list, found, left, kv, ct, writers, one_list);
    }
}

// One store: the first key `left` (taken off it), or a 0 into the
// next free slot of component x's list when none is left.
fn write_first(list: vec4<u32>, found: ptr<function, vec4<u32>>, left: ptr<function, vec4<bool>>, kv: vec4<u32>,
               ct: u32, writers: u32, one_list: bool) {
    let l = *left;
    let this_one = l & !vec4<bool>(false, l.x, l.x | l.y, l.x | l.y | l.z);
    let at = list + min(*found, vec4<u32>(ct - 1u)) * writers;
    // Picked by selects: indexing a vector by a variable costs a trip through memory.
    let pick = select(select(select(select(vec2<u32>(at.x, 0u), vec2<u32>(at.w, kv.w), l.w), vec2<u32>(at.z, kv.z), l.z),
                             vec2<u32>(at.y, kv.y), l.y), vec2<u32>(at.x, kv.x), l.x);
    k_cand[pick.x] = pick.y;
    *found += select(count1(this_one), vec4<u32>(1u), one_list & any(l));
    *left = l & !this_one;
}

// Pipeline constants of the counting passes (`Gpu::pipeline_with`): the brackets a call
// counts at most (1 to 4, 8, 12 or MAXB), and for count_vec4 whether a vec4's components
// are four segments. Constants, so that the compares of the brackets past them fold
// away (a software adapter would run them all).
override COUNT_BRACKETS: u32 = 16u;
override COUNT_COLUMNS: bool = false;
// Whether the counting pass counts the keys equal to a bracket's ends (four counts a
// bracket, the insides as candidates), or takes the ends as candidates too (two counts:
// key < lo, key <= hi, stored as kinds 0 and 1, and 2 and 3). The two-count pass is
// ~10 % faster on lavapipe, but a value that many keys share, at a bracket's end,
// would fill the candidate lists: bracket_main picks the pass (indirect dispatch) from
// the sample's ties.
override COUNT_TIES: bool = true;
// count_vec4: whether the view's offsets are affine in the element index (inner_div
// 1). Then the pass steps an offset by one add a load instead of an `ElementWalk`,
// whose start divides once a chunk (lane by lane on a software adapter): the pass over
// 1e7 floats took ~10 % less on lavapipe. (count_main's quads of offsets gained
// nothing that way.)
override COUNT_AFFINE: bool = false;

// count_vec4's walk over elements k, k + stride, ...: an offset and its step
// (COUNT_AFFINE), else an `ElementWalk`.
struct CountWalk {
    offset: u32,
    step: u32,
    walk: ElementWalk,
}

fn count_walk(base: u32, k: u32, stride: u32) -> CountWalk {
    let esh = p.seg.elem_stride_hi;
    if (COUNT_AFFINE) {
        return CountWalk(base + k * esh, stride * esh, ElementWalk(0u, 0u, 0u, 0u, 0u, 1u, 0u, 0u));
    }
    return CountWalk(0u, 0u, element_walk(p.seg, base, k, stride));
}

// The walk's current offset; the walk moves on. (The member walk goes through a local
// copy: a pointer to it, for `walk_next`, made naga 30's SPIR-V writer panic with
// "Expression is not cached".)
fn count_offset(w: ptr<function, CountWalk>) -> u32 {
    if (COUNT_AFFINE) {
        let o = (*w).offset;
        (*w).offset += (*w).step;
        return o;
    }
    var walk = (*w).walk;
    let o = walk_offset(walk);
    walk_next(&walk);
    (*w).walk = walk;
    return o;
}

// count_main: one segment per lane, four of its values per iteration (scalar loads,
// any layout), up to COUNT_BRACKETS brackets. The brackets live in sixteen variables,
// not an array: indexed in the loop, an array would stay in memory.
@compute @workgroup_size(256)
fn count_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    count_main_body(wid.x + wid.y * nwg.x, lid, COUNT_BRACKETS);
}

fn count_main_body(w: u32, lid: u32, nb: u32) {
    if (w >= p.tiles * p.parts) {
        return;
    }
    let task = lane_task(w, lid, p.tile, p.parts, p.seg_first, p.k_first, p.k_end);
    let s0 = task.s0;
    let s = task.s;
    for (var i = lid; i < p.tile * NCOUNT; i += WG) {
        atomicStore(&sh_bc[i], 0u);
    }
    workgroupBarrier();

    // A segment without brackets (its sample held no value) is still walked: its values
    // are counted (`k_valid`), and it goes to the radix passes over the whole input.
    if (s < p.seg_end) {
        let q0 = brackets_of(s, 0u);
        let q1 = brackets_of(s, 1u);
        let q2 = brackets_of(s, 2u);
        let q3 = brackets_of(s, 3u);
        let dense = vec4<u32>(dense_shift(s));
        // Every bracket against the four keys of an iteration (its ends splat).
        var b0 = bracket_across(q0, q0, q0, q0, 0u);
        var b1 = bracket_across(q0, q0, q0, q0, 1u);
        var b2 = bracket_across(q0, q0, q0, q0, 2u);
        var b3 = bracket_across(q0, q0, q0, q0, 3u);
        var b4 = bracket_across(q1, q1, q1, q1, 0u);
        var b5 = bracket_across(q1, q1, q1, q1, 1u);
        var b6 = bracket_across(q1, q1, q1, q1, 2u);
        var b7 = bracket_across(q1, q1, q1, q1, 3u);
        var b8 = bracket_across(q2, q2, q2, q2, 0u);
        var b9 = bracket_across(q2, q2, q2, q2, 1u);
        var b10 = bracket_across(q2, q2, q2, q2, 2u);
        var b11 = bracket_across(q2, q2, q2, q2, 3u);
        var b12 = bracket_across(q3, q3, q3, q3, 0u);
        var b13 = bracket_across(q3, q3, q3, q3, 1u);
        var b14 = bracket_across(q3, q3, q3, q3, 2u);
        var b15 = bracket_across(q3, q3, q3, q3, 3u);
        let writers = p.parts_total * task.lanes;
        let wr = (p.part_offset + task.part) * task.lanes + task.lane_k;
        let ct = p.cap / writers;
        let list = vec4<u32>(s * p.cap + wr);
        var found = vec4<u32>(0u);
        var nans = 0u;
        var valid = 0u;
        let base = segment_base(p.seg, s) - p.window_lo;
        let one = vec4<u32>(1u);
        // Four elements (k, k + r, ...) per iteration, from an `ElementWalk`. A slot past
        // the chunk reads its first element again and is masked out like a NaN (the
        // lowest key, below every bracket).
        let cw = chunk_walk(task, 4u * CHUNK);
        let n = p.k_end - p.k_first;
        for (var c0 = cw.x; c0 < n; c0 += cw.y) {
            let k0 = p.k_first + c0 + task.lane_k % cw.z;
            let k_stop = min(p.k_first + c0 + cw.z * 4u * CHUNK, p.k_end);
            var walk = element_walk(p.seg, base, k0, cw.z);
            // As in count_vec4: one store per round, the rounds with more keys inside
            // (bit r: round r) read again at the end of the chunk.
            var redo = vec2<u32>(0u);
            var round = 0u;
            for (var k = k0; k < k_stop; k += 4u * cw.z) {
                let q = walk_quad(&walk, k, cw.z, k_stop);
                let o = q.offsets;
                let bv = vec4<u32>(bitcast<u32>(k_x_at(o.x)), bitcast<u32>(k_x_at(o.y)), bitcast<u32>(k_x_at(o.z)),
                                   bitcast<u32>(k_x_at(o.w)));
                let ok = q.inside & !nan_bits4(bv);
                let n_ok = dot(count1(ok), one);
                nans += 4u - n_ok;
                valid += n_ok;
                let sk = skeys4(bv, !ok);
                var d = vec4<u32>(0u);
                var inside = count_first4(&b0, &b1, &b2, &b3, sk, &d);
                if (nb > 4u) {
                    inside |= count_bracket(&b4, sk, &d) | count_bracket(&b5, sk, &d) | count_bracket(&b6, sk, &d) |
                        count_bracket(&b7, sk, &d);
                }
                if (nb > 8u) {
                    inside |= count_bracket(&b8, sk, &d) | count_bracket(&b9, sk, &d) |
                        count_bracket(&b10, sk, &d) | count_bracket(&b11, sk, &d);
                }
                if (nb > 12u) {
                    inside |= count_bracket(&b12, sk, &d) | count_bracket(&b13, sk, &d) |
                        count_bracket(&b14, sk, &d) | count_bracket(&b15, sk, &d);
                }
                var left = inside;
                write_first(list, &found, &left, (ukey4(sk) + d) << dense, ct, writers, true);
                redo_mark(&redo, round, any(left));
                round += 1u;
            }
            while (any(redo != vec2<u32>(0u))) {
                let r = redo_next(&redo);
                let k = k0 + 4u * r * cw.z;
                var w = element_walk(p.seg, base, k, cw.z);
                let q = walk_quad(&w, k, cw.z, k_stop);
                let o = q.offsets;
                let bv = vec4<u32>(bitcast<u32>(k_x_at(o.x)), bitcast<u32>(k_x_at(o.y)), bitcast<u32>(k_x_at(o.z)),
                                   bitcast<u32>(k_x_at(o.w)));
                let sk = skeys4(bv, !(q.inside & !nan_bits4(bv)));
                var d = vec4<u32>(0u);
                var inside = in_first4(b0, b1, b2, b3, sk, &d);
                if (nb > 4u) {
                    inside |= in_bracket(b4, sk, &d) | in_bracket(b5, sk, &d) | in_bracket(b6, sk, &d) |
                        in_bracket(b7, sk, &d);
                }
                if (nb > 8u) {
                    inside |= in_bracket(b8, sk, &d) | in_bracket(b9, sk, &d) | in_bracket(b10, sk, &d) |
                        in_bracket(b11, sk, &d);
                }
                if (nb > 12u) {
                    inside |= in_bracket(b12, sk, &d) | in_bracket(b13, sk, &d) | in_bracket(b14, sk, &d) |
                        in_bracket(b15, sk, &d);
                }
                var left = inside & vec4<bool>(false, inside.x, inside.x | inside.y, inside.x | inside.y | inside.z);
                write_rest(list, &found, &left, (ukey4(sk) + d) << dense, ct, writers, true);
            }
        }
        flush_candidates(s, found.x, ct, writers);
        atomicAdd(&k_valid[s], valid);
        // Per bracket, its four counts (summed over the four keys of each iteration).
        let all = array<Bracket4, MAXB>(b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15);
        for (var j = 0u; j < nb; j++) {
            flush_bracket(task.lane_s * NCOUNT + j, MAXB, all[j], vec4<u32>(1u), nans);
        }
    }
    workgroupBarrier();

    for (var i = lid; i < p.tile * NCOUNT; i += WG) {
        let v = atomicLoad(&sh_bc[i]);
        if (v != 0u) {
            atomicAdd(&k_bcount[(s0 + i / NCOUNT) * NCOUNT + i % NCOUNT], v);
        }
    }
}

// One bracket's four counts into its column `at` of a segment's row of the
// workgroup's counts: the components `pick` selects (1 each) summed, their `nans` NaN
// taken off (counted below every bracket).
fn flush_bracket(at: u32, width: u32, b: Bracket4, pick: vec4<u32>, nans: u32) {
    // Without COUNT_TIES, the ends count as inside: key <= lo is key < lo, and key < hi
    // is key <= hi (resolve_main then finds every rank in the bracket inside it).
    let le_lo = select(b.lt_lo, b.le_lo, COUNT_TIES);
    let lt_hi = select(b.le_hi, b.lt_hi, COUNT_TIES);
    atomicAdd(&sh_bc[at], dot(b.lt_lo, pick) - nans);
    atomicAdd(&sh_bc[at + width], dot(le_lo, pick) - nans);
    atomicAdd(&sh_bc[at + 2u * width], dot(lt_hi, pick) - nans);
    atomicAdd(&sh_bc[at + 3u * width], dot(b.le_hi, pick) - nans);
}

// count_main over a vec4 view of the input (see Segments::vec4_view on the host), for
// at most four brackets per segment: four neighbouring segments (COUNT_COLUMNS) or
// four neighbouring elements of one segment per load.
@group(0) @binding(1) var<storage, read> k_x4: array<vec4<f32>>;

// vec4 i of the input: from the buffer, or its staged texels (TEXEL_INPUT).
fn k_x4_at(i: u32) -> vec4<f32> {
    if (TEXEL_INPUT) {
        return input_texel(i);
    }
    return k_x4[i];
}

// A segment's row of the workgroup's counts here: four brackets' four counts (the
// global rows are NCOUNT wide), so that a workgroup can hold 128 segments.
const VCOUNT: u32 = 16u;

// Brackets 4q .. 4q + 3 of segment s (lo, hi, d), four as a vec4 each.
fn brackets_of(s: u32, q: u32) -> array<vec4<u32>, 3> {
    return array<vec4<u32>, 3>(k_brk[s * BRK + 1u + q], k_brk[s * BRK + HI + q], k_brk[s * BRK + OFF + q]);
}

// The shift of segment s's dense candidate keys (see BRK).
fn dense_shift(s: u32) -> u32 {
    return k_brk[s * BRK].y;
}

// Bracket i of four components' quads of brackets (`brackets_of`): four segments', or
// one segment's four times (its ends splat).
fn bracket_across(bx: array<vec4<u32>, 3>, by: array<vec4<u32>, 3>, bz: array<vec4<u32>, 3>, bw: array<vec4<u32>, 3>,
                  i: u32) -> Bracket4 {
    return bracket4(vec4<u32>(bx[0][i], by[0][i], bz[0][i], bw[0][i]), vec4<u32>(bx[1][i], by[1][i], bz[1][i], bw[1][i]),
                    vec4<u32>(bx[2][i], by[2][i], bz[2][i], bw[2][i]));
}

// Up to four brackets per segment (COUNT_BRACKETS), the components four segments or one
// (COUNT_COLUMNS).
@compute @workgroup_size(256)
fn count_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    count_vec4_body(wid.x + wid.y * nwg.x, lid, COUNT_COLUMNS);
}

fn count_vec4_body(w: u32, lid: u32, by_segment: bool) {
    if (w >= p.tiles * p.parts) {
        return;
    }
    let task = lane_task(w, lid, p.tile, p.parts, p.seg_first, p.k_first, p.k_end);
    let s0 = task.s0; // in the view's units
    let s = task.s;
    // Rows of the workgroup's counts: one per real segment.
    let per = select(1u, 4u, by_segment);
    for (var i = lid; i < per * p.tile * VCOUNT; i += WG) {
        atomicStore(&sh_bc[i], 0u);
    }
    workgroupBarrier();

    if (s < p.seg_end) {
        // Real segments of the components (a component past the last segment is
        // counted nowhere), and their brackets per component.
        var sc = vec4<u32>(s);
        var real = vec4<bool>(true);
        if (by_segment) {
            sc = vec4<u32>(4u * s) + vec4<u32>(0u, 1u, 2u, 3u);
            real = sc < vec4<u32>(p.comp_end);
            sc = min(sc, vec4<u32>(p.comp_end - 1u));
        }
        let bx = brackets_of(sc.x, 0u);
        let by = brackets_of(sc.y, 0u);
        let bz = brackets_of(sc.z, 0u);
        let bw = brackets_of(sc.w, 0u);
        // Bracket j's ends across the components.
        var b0 = bracket_across(bx, by, bz, bw, 0u);
        var b1 = bracket_across(bx, by, bz, bw, 1u);
        var b2 = bracket_across(bx, by, bz, bw, 2u);
        var b3 = bracket_across(bx, by, bz, bw, 3u);
        let dense = vec4<u32>(dense_shift(sc.x), dense_shift(sc.y), dense_shift(sc.z), dense_shift(sc.w));
        // This thread's candidate slots: writer `wr` of `writers`, `ct` slots each.
        let writers = p.parts_total * task.lanes;
        let wr = (p.part_offset + task.part) * task.lanes + task.lane_k;
        let ct = p.cap / writers;
        let list = sc * vec4<u32>(p.cap) + vec4<u32>(wr);
        // Candidates found per component; with one segment, one count (in every
        // component) and the components' candidates in order.
        var found = vec4<u32>(0u);
        var nans = vec4<u32>(0u);
        let base = segment_base(p.seg, s) - p.window_lo;
        let cw = chunk_walk(task, CHUNK);
        let n = p.k_end - p.k_first;
        var loads = 0u;
        for (var c0 = cw.x; c0 < n; c0 += cw.y) {
            let k0 = p.k_first + c0 + task.lane_k % cw.z;
            let k_stop = min(p.k_first + c0 + cw.z * CHUNK, p.k_end);
            var walk = count_walk(base, k0, cw.z);
            // Rounds of this chunk with a second key inside (bit r: round r).
            var redo = vec2<u32>(0u);
            var round = 0u;
            for (var k = k0; k < k_stop; k += cw.z) {
                let bv = bitcast<vec4<u32>>(k_x4_at(count_offset(&walk)));
                loads += 1u;
                let nan = nan_bits4(bv);
                nans += count1(nan);
                // NaN: the lowest key, below every bracket (taken off the counts at the end).
                let sk = skeys4(bv, nan);
                var d = vec4<u32>(0u);
                var inside = count_first4(&b0, &b1, &b2, &b3, sk, &d);
                var left = inside & real;
                // One store per round; the rest of its keys wait for the end of the chunk
                // (a loop here would run its body every round on a software adapter).
                write_first(list, &found, &left, (ukey4(sk) + d) << dense, ct, writers, !by_segment);
                redo_mark(&redo, round, any(left));
                round += 1u;
            }
            // The chunk's rounds with more than one key inside (rare, but every round of
            // sorted input inside a bracket): read again, their first key taken off.
            while (any(redo != vec2<u32>(0u))) {
                let r = redo_next(&redo);
                var again = count_walk(base, k0 + r * cw.z, cw.z);
                let bv = bitcast<vec4<u32>>(k_x4_at(count_offset(&again)));
                let sk = skeys4(bv, nan_bits4(bv));
                var d = vec4<u32>(0u);
                var inside = in_first4(b0, b1, b2, b3, sk, &d);
                inside &= real;
                var left = inside & vec4<bool>(false, inside.x, inside.x | inside.y, inside.x | inside.y | inside.z);
                write_rest(list, &found, &left, (ukey4(sk) + d) << dense, ct, writers, !by_segment);
            }
        }
        let b = array<Bracket4, 4>(b0, b1, b2, b3);
        if (by_segment) {
            // Each component its own segment's row.
            for (var j = 0u; j < 4u; j++) {
                if (real[j]) {
                    let pick = count1(vec4<u32>(j) == vec4<u32>(0u, 1u, 2u, 3u));
                    for (var i = 0u; i < min(COUNT_BRACKETS, 4u); i++) {
                        flush_bracket((4u * task.lane_s + j) * VCOUNT + i, 4u, b[i], pick, nans[j]);
                    }
                    flush_candidates(sc[j], found[j], ct, writers);
                    atomicAdd(&k_valid[sc[j]], loads - nans[j]);
                }
            }
        } else {
            // One segment: its components' counts add up.
            let nan_total = dot(nans, vec4<u32>(1u));
            for (var i = 0u; i < min(COUNT_BRACKETS, 4u); i++) {
                flush_bracket(task.lane_s * VCOUNT + i, 4u, b[i], vec4<u32>(1u), nan_total);
            }
            flush_candidates(s, found.x, ct, writers);
            atomicAdd(&k_valid[s], 4u * loads - nan_total);
        }
    }
    workgroupBarrier();

    let rows = per * p.tile;
    let first = per * s0;
    for (var i = lid; i < rows * VCOUNT; i += WG) {
        let v = atomicLoad(&sh_bc[i]);
        let seg = first + i / VCOUNT;
        let c = i % VCOUNT;
        if (v != 0u && seg < select(p.seg_end, p.comp_end, by_segment)) {
            atomicAdd(&k_bcount[seg * NCOUNT + (c / 4u) * MAXB + c % 4u], v);
        }
    }
}

// The counts of count_vec4 as moments states (count only), for init_main.
@group(0) @binding(1) var<storage, read> v_valid: array<u32>;
@group(0) @binding(2) var<storage, read_write> v_moments: array<Moments>;

@compute @workgroup_size(256)
fn valid_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = flat_id(wid, nwg, lid);
    if (s < p.seg_end) {
        var m = empty_moments();
        m.count = v_valid[s];
        v_moments[s] = m;
    }
}

@group(0) @binding(1) var<storage, read> r_brk: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> r_bcount: array<u32>;
@group(0) @binding(3) var<storage, read> r_ccount: array<u32>;
@group(0) @binding(4) var<storage, read_write> r_slots: array<Slot>;
@group(0) @binding(5) var<storage, read_write> r_hdr: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read_write> r_gprefix: array<u32>;

fn brk_key(s: u32, which: u32, g: u32) -> u32 {
    return r_brk[s * BRK + which + g / 4u][g % 4u];
}

@compute @workgroup_size(256)
fn resolve_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = p.seg_first + flat_id(wid, nwg, lid);
    if (s >= p.seg_end) {
        return;
    }
    let h = s * p.nqb + p.qb;
    let hv = r_hdr[h];
    let ns = hv.x;
    if (hv.y == 0u) {
        return; // all NaN
    }
    let nbr = r_brk[s * BRK].x;
    let overflow = r_ccount[s] > p.cap;
    let cb = s * NCOUNT;
    let base = s * p.r_total + p.r0;
    // Every rank must fall in some bracket, and a rank strictly inside needs the
    // candidates complete.
    var ok = nbr > 0u;
    for (var r = 0u; r < ns && ok; r++) {
        let rank = r_slots[base + r].rank;
        var found = false;
        for (var g = 0u; g < nbr; g++) {
            if (rank >= r_bcount[cb + g] && rank < r_bcount[cb + 3u * MAXB + g]) {
                found = true;
                let inner = rank >= r_bcount[cb + MAXB + g] && rank < r_bcount[cb + 2u * MAXB + g];
                if (inner && overflow) {
                    found = false;
                }
                break;
            }
        }
        ok = found;
    }
    if (!ok) {
        r_hdr[h] = vec4<u32>(ns, 1u, 1u, 0u);
        r_gprefix[base] = 0u;
        return;
    }
    var any_inner = false;
    for (var r = 0u; r < ns; r++) {
        var sl = r_slots[base + r];
        // Candidates below bracket g's inside values: the insides of the brackets below.
        var inside_below = 0u;
        for (var g = 0u; g < nbr; g++) {
            let lt_lo = r_bcount[cb + g];
            let le_lo = r_bcount[cb + MAXB + g];
            let lt_hi = r_bcount[cb + 2u * MAXB + g];
            let le_hi = r_bcount[cb + 3u * MAXB + g];
            if (sl.rank >= lt_lo && sl.rank < le_hi) {
                if (sl.rank < le_lo) {
                    sl.prefix = brk_key(s, 1u, g);
                    sl.done = 1u;
                } else if (sl.rank < lt_hi) {
                    sl.rank = sl.rank - le_lo + inside_below;
                    any_inner = true;
                } else {
                    sl.prefix = brk_key(s, HI, g);
                    sl.done = 1u;
                }
                break;
            }
            inside_below += select(0u, lt_hi - le_lo, lt_hi > le_lo);
        }
        r_slots[base + r] = sl;
    }
    r_hdr[h] = vec4<u32>(ns, select(0u, 1u, any_inner), 0u, 0u);
    r_gprefix[base] = 0u;
}

// ---------------------------------------------------------------------------------
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
