// Exact per-segment quantiles by radix select (numpy's linear method, NaN ignored).
//
// Values map to order-preserving u32 keys (positives: flip the sign bit; negatives:
// flip all bits; NaN has no key and is skipped, as the moments pass that gives the
// count skips it). For each segment the host asks for a sorted set of unique q; each q
// needs the order statistics at ranks lo = floor(q·(n−1)) and min(lo+1, n−1). The
// distinct ranks of a segment are its "slots", sorted; slots whose keys agree on the
// bits resolved so far form a "group" (consecutive slots, sorted by prefix).
//
//   init_main    one thread per segment: ranks and interpolation weights from the
//                moments count (float64 rounding of q·(n−1) emulated with integers),
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
    _pad0: u32,
    _pad1: u32,
}

// A q in (0, 1] as m · 2^-e with m = m_hi · 2^32 + m_lo < 2^53 (its float64 bits);
// qf is q rounded to float32 (for e > 90, where only a tiny fraction is left).
struct QInfo {
    m_hi: u32,
    m_lo: u32,
    e: u32,
    qf: f32,
}

// One wanted rank of a segment: the rank within the current prefix, the key bits
// resolved so far (the whole key after the last pass), and the slot's group.
struct Slot {
    rank: u32,
    prefix: u32,
    group: u32,
    _pad: u32,
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

fn key_of(b: u32) -> u32 {
    return select(b ^ 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn value_of(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k ^ 0x80000000u, (k & 0x80000000u) != 0u));
}

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * WG + lid;
}

// ---------------------------------------------------------------------------------
// 96-bit unsigned integers as vec3<u32> (x = lowest limb), for exact ranks.

fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (p00 & 0xffffu) | (mid << 16u);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

fn shr3(v: vec3<u32>, s: u32) -> vec3<u32> {
    var a = v;
    var t = s;
    if (t >= 64u) {
        a = vec3<u32>(a.z, 0u, 0u);
        t -= 64u;
    } else if (t >= 32u) {
        a = vec3<u32>(a.y, a.z, 0u);
        t -= 32u;
    }
    if (t == 0u) {
        return a;
    }
    return vec3<u32>((a.x >> t) | (a.y << (32u - t)), (a.y >> t) | (a.z << (32u - t)), a.z >> t);
}

fn shl3(v: vec3<u32>, s: u32) -> vec3<u32> {
    var a = v;
    var t = s;
    if (t >= 64u) {
        a = vec3<u32>(0u, 0u, a.x);
        t -= 64u;
    } else if (t >= 32u) {
        a = vec3<u32>(0u, a.x, a.y);
        t -= 32u;
    }
    if (t == 0u) {
        return a;
    }
    return vec3<u32>(a.x << t, (a.y << t) | (a.x >> (32u - t)), (a.z << t) | (a.y >> (32u - t)));
}

fn add3(a: vec3<u32>, b: vec3<u32>) -> vec3<u32> {
    let x = a.x + b.x;
    let c0 = select(0u, 1u, x < a.x);
    let y1 = a.y + b.y;
    let c1 = select(0u, 1u, y1 < a.y);
    let y = y1 + c0;
    let c2 = select(0u, 1u, y < y1);
    return vec3<u32>(x, y, a.z + b.z + c1 + c2);
}

// a − b for a >= b.
fn sub3(a: vec3<u32>, b: vec3<u32>) -> vec3<u32> {
    let x = a.x - b.x;
    let b0 = select(0u, 1u, a.x < b.x);
    let y1 = a.y - b.y;
    let b1 = select(0u, 1u, a.y < b.y);
    let y = y1 - b0;
    let b2 = select(0u, 1u, y1 < b0);
    return vec3<u32>(x, y, a.z - b.z - b1 - b2);
}

fn lt3(a: vec3<u32>, b: vec3<u32>) -> bool {
    if (a.z != b.z) {
        return a.z < b.z;
    }
    if (a.y != b.y) {
        return a.y < b.y;
    }
    return a.x < b.x;
}

fn bitlen3(v: vec3<u32>) -> u32 {
    if (v.z != 0u) {
        return 96u - countLeadingZeros(v.z);
    }
    if (v.y != 0u) {
        return 64u - countLeadingZeros(v.y);
    }
    if (v.x != 0u) {
        return 32u - countLeadingZeros(v.x);
    }
    return 0u;
}

// v · 2^-e (v < 2^e <= 2^90) as a float32 pair hi + lo carrying 48 bits.
fn split_f32(v: vec3<u32>, e: u32) -> vec2<f32> {
    let bl = bitlen3(v);
    let sh = select(0u, bl - 24u, bl > 24u);
    let top = shr3(v, sh).x;
    let rem = sub3(v, shl3(vec3<u32>(top, 0u, 0u), sh));
    let bl2 = bitlen3(rem);
    let sh2 = select(0u, bl2 - 24u, bl2 > 24u);
    let top2 = shr3(rem, sh2).x;
    return vec2<f32>(ldexp(f32(top), i32(sh) - i32(e)), ldexp(f32(top2), i32(sh2) - i32(e)));
}

struct Rank {
    lo: u32,
    th: f32,
    tl: f32,
    flag: u32,
}

// floor and fraction of float64(q · nm1), rounded to nearest even exactly as the
// reference's `q * (n - 1) as f64`, for any nm1 < 2^32.
fn rank_of(q: QInfo, nm1: u32) -> Rank {
    if (q.e > 90u) {
        // q < 2^-37: the product is far below 1 (lo = 0, a tiny weight below 0.5).
        return Rank(0u, q.qf * f32(nm1), 0.0, 0u);
    }
    let t = mul_wide(nm1, q.m_lo);
    let u = mul_wide(nm1, q.m_hi);
    let mid = t.y + u.x;
    let carry = select(0u, 1u, mid < t.y);
    var prod = vec3<u32>(t.x, mid, u.y + carry);
    let bl = bitlen3(prod);
    if (bl > 53u) {
        let d = bl - 53u;
        var kept = shr3(prod, d);
        let rem = sub3(prod, shl3(kept, d));
        let half = shl3(vec3<u32>(1u, 0u, 0u), d - 1u);
        if (lt3(half, rem) || (all(rem == half) && (kept.x & 1u) == 1u)) {
            kept = add3(kept, vec3<u32>(1u, 0u, 0u));
        }
        prod = shl3(kept, d);
    }
    let lo3 = shr3(prod, q.e);
    let fb = sub3(prod, shl3(lo3, q.e));
    if (all(fb == vec3<u32>(0u))) {
        return Rank(lo3.x, 0.0, 0.0, 0u);
    }
    if (lt3(fb, shl3(vec3<u32>(1u, 0u, 0u), q.e - 1u))) {
        let f = split_f32(fb, q.e);
        return Rank(lo3.x, f.x, f.y, 0u);
    }
    let f = split_f32(sub3(shl3(vec3<u32>(1u, 0u, 0u), q.e), fb), q.e);
    return Rank(lo3.x, f.x, f.y, 1u);
}

// ---------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> i_moments: array<Moments>;
@group(0) @binding(2) var<storage, read> i_qinfo: array<QInfo>;
@group(0) @binding(3) var<storage, read_write> i_slots: array<Slot>;
@group(0) @binding(4) var<storage, read_write> i_fracs: array<Frac>;
@group(0) @binding(5) var<storage, read_write> i_hdr: array<vec2<u32>>; // (slots, groups)
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
        i_hdr[h] = vec2<u32>(0u, 0u);
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
        let hi_j = select(0xffffffffu, min(i_fracs[fbase + min(j, p.ub - 1u)].lo_rank + 1u, nm1), j < p.ub);
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
    i_hdr[h] = vec2<u32>(ns, 1u);
    i_gprefix[sbase] = 0u;
}

// ---------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> h_x: array<f32>;
@group(0) @binding(2) var<storage, read> h_hdr: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> h_gprefix: array<u32>;
@group(0) @binding(4) var<storage, read_write> h_hist: array<atomic<u32>>;

var<workgroup> lh: array<atomic<u32>, LBINS>;
var<workgroup> sh_gp: array<u32, GPCAP>;
var<workgroup> sh_ng: array<u32, WG>;

@compute @workgroup_size(256)
fn hist_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= p.tiles * p.parts) {
        return;
    }
    let tile = w / p.parts;
    let part = w % p.parts;
    let lanes = WG / p.tile;
    let lane_s = lid % p.tile;
    let lane_k = lid / p.tile;
    let s0 = p.seg_first + tile * p.tile;
    let s = s0 + lane_s;
    let nb = 1u << p.bits;
    let mask = nb - 1u;
    let nloc = p.tile * p.gl * nb;

    for (var i = lid; i < nloc; i += WG) {
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
        }
    }
    if (lid < p.tile) {
        let ss = s0 + lid;
        var ng = 0u;
        if (ss < p.seg_end) {
            ng = h_hdr[ss * p.nqb + p.qb].y;
        }
        sh_ng[lid] = ng;
    }
    workgroupBarrier();

    let k_count = p.k_end - p.k_first;
    let per_part = (k_count + p.parts - 1u) / p.parts;
    let k_lo = p.k_first + part * per_part;
    let k_hi = min(k_lo + per_part, p.k_end);
    let ng = sh_ng[lane_s];
    if (s < p.seg_end && ng > 0u) {
        let base = segment_base(p.seg, s) - p.window_lo;
        let hrow = (s - p.sb0) * p.rb;
        if (p.level == 0u) {
            // One group (the empty prefix): every non-NaN element counts.
            let lbase = lane_s * p.gl * nb;
            for (var k = k_lo + lane_k; k < k_hi; k += lanes) {
                let b = bitcast<u32>(h_x[base + element_offset(p.seg, k)]);
                if ((b & 0x7fffffffu) > 0x7f800000u) {
                    continue;
                }
                let d = (key_of(b) >> p.shift) & mask;
                if (p.gl > 0u) {
                    atomicAdd(&lh[lbase + d], 1u);
                } else {
                    atomicAdd(&h_hist[hrow * nb + d], 1u);
                }
            }
        } else {
            let gbase = lane_s * p.rb;
            let hs = p.shift + p.bits;
            let first = sh_gp[gbase];
            let last = sh_gp[gbase + ng - 1u];
            for (var k = k_lo + lane_k; k < k_hi; k += lanes) {
                let b = bitcast<u32>(h_x[base + element_offset(p.seg, k)]);
                if ((b & 0x7fffffffu) > 0x7f800000u) {
                    continue;
                }
                let key = key_of(b);
                let hi = key >> hs;
                if (hi < first || hi > last) {
                    continue;
                }
                // The last group whose prefix is <= hi (prefixes ascend).
                var g = 0u;
                var n = ng;
                while (n > 1u) {
                    let half = n / 2u;
                    if (sh_gp[gbase + g + half] <= hi) {
                        g += half;
                    }
                    n -= half;
                }
                if (sh_gp[gbase + g] != hi) {
                    continue;
                }
                let d = (key >> p.shift) & mask;
                if (g < p.gl) {
                    atomicAdd(&lh[(lane_s * p.gl + g) * nb + d], 1u);
                } else {
                    atomicAdd(&h_hist[(hrow + g) * nb + d], 1u);
                }
            }
        }
    }
    workgroupBarrier();

    for (var i = lid; i < nloc; i += WG) {
        let c = atomicLoad(&lh[i]);
        if (c != 0u) {
            let ls = i / (p.gl * nb);
            let g = (i / nb) % p.gl;
            atomicAdd(&h_hist[((s0 + ls - p.sb0) * p.rb + g) * nb + (i & mask)], c);
        }
    }
}

// ---------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> c_hist: array<u32>;
@group(0) @binding(2) var<storage, read_write> c_slots: array<Slot>;
@group(0) @binding(3) var<storage, read_write> c_hdr: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read_write> c_gprefix: array<u32>;

@compute @workgroup_size(256)
fn scan_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = p.seg_first + flat_id(wid, nwg, lid);
    if (s >= p.seg_end) {
        return;
    }
    let h = s * p.nqb + p.qb;
    let hv = c_hdr[h];
    let ns = hv.x;
    let ng = hv.y;
    if (ng == 0u) {
        return;
    }
    let base = s * p.r_total + p.r0;
    let nb = 1u << p.bits;
    var newg = 0u;
    var last = 0u;
    var r = 0u;
    for (var g = 0u; g < ng; g++) {
        let row = ((s - p.sb0) * p.rb + g) * nb;
        var d = 0u;
        var cum = 0u;
        var c = c_hist[row];
        loop {
            if (r >= ns) {
                break;
            }
            var sl = c_slots[base + r];
            if (sl.group != g) {
                break;
            }
            while (d + 1u < nb && cum + c <= sl.rank) {
                cum += c;
                d += 1u;
                c = c_hist[row + d];
            }
            let np = (sl.prefix << p.bits) | d;
            if (newg == 0u || np != last) {
                c_gprefix[base + newg] = np;
                newg += 1u;
                last = np;
            }
            sl.rank -= cum;
            sl.prefix = np;
            sl.group = newg - 1u;
            c_slots[base + r] = sl;
            r += 1u;
        }
    }
    c_hdr[h] = vec2<u32>(ns, newg);
}

// ---------------------------------------------------------------------------------

@group(0) @binding(1) var<storage, read> f_slots: array<Slot>;
@group(0) @binding(2) var<storage, read> f_fracs: array<Frac>;
@group(0) @binding(3) var<storage, read> f_qmap: array<u32>;
@group(0) @binding(4) var<storage, read_write> f_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_os: array<vec4<u32>>;

fn is_inf(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

// numpy's _lerp: a + (b − a)·t, or b − (b − a)·(1 − t) for t >= 0.5; w = th + tl is
// t or 1 − t. b − a is kept exactly as d + e (TwoSum) and w to 48 bits, so that only
// the last two roundings remain.
fn lerp_numpy(a: f32, b: f32, th: f32, tl: f32, flag: u32) -> f32 {
    let d = b - a;
    if (is_inf(d)) {
        // |b − a| beyond float32: the product (b − a)·w (w <= 1/2) is not.
        let m = 2.0 * ((b * 0.5 - a * 0.5) * (th + tl));
        return select(a + m, b - m, flag != 0u);
    }
    let na = -a;
    let bv = d - na;
    let av = d - bv;
    let e = (b - bv) + (na - av);
    let m = fma(d, th, d * tl + e * th);
    return select(a + m, b - m, flag != 0u);
}

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
    let ka = f_slots[s * p.r_total + fr.lo_slot].prefix;
    let kb = f_slots[s * p.r_total + fr.hi_slot].prefix;
    f_out[o] = lerp_numpy(value_of(ka), value_of(kb), fr.th, fr.tl, fr.flag);
    f_os[o] = vec4<u32>(ka, kb, fr.count, 0u);
}
