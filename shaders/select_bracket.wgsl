// Exact quantiles, part of the select module (see select.wgsl): the sample-and-bracket
// front end for long segments.

// Sample-and-bracket fast path for long segments (a few q):
//
//   sample_main   a stratified random sample of each segment (one element per stratum);
//                 its quantiles q ∓ δ (found by the radix passes, on the sample) give
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
