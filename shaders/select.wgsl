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
// This file holds the parameters, the shared helpers and init, scan and finish; the
// module's other files (build/shader_modules.rs lists them):
//   select_hist.wgsl     the histogram passes.
//   select_bracket.wgsl  a front end for long segments that feeds the same slots:
//                        sample_main, bracket_main, count_main and resolve_main (a few
//                        q: the radix passes then read only candidate lists, mode 0, or
//                        the whole input for the segments whose bracket missed, mode 1).
//   select_short.wgsl    small_main (short segments: ranks by counting) and tail_main
//                        (the radix passes' last bits of short segments in one walk).

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
