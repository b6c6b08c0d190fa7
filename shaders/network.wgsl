// Exact per-segment quantiles of short segments by sorting networks, on a software
// adapter: one thread per segment keeps its keys as named values (SIMD registers there:
// a lane a segment), sorts them with a network of min/max pairs, and picks the two
// order statistics of each q from them (numpy's linear method, NaN ignored, as
// select.wgsl). No histograms, no passes, no counts from a moments pass: the thread
// counts the non-NaN keys itself.
//
// The entry points `network_16` … `network_256` are generated (build/sorting_network.rs)
// and appended to this file, one a module; each calls the functions below. Up to 128
// values one network sorts the segment; 256 sorts its two halves and finds each rank
// by a merge-path search between them.

struct NetParams {
    seg: Segments,
    window_lo: u32,    // flat offset of the bound window's first element
    seg_first: u32,    // first segment of this dispatch
    seg_end: u32,      // one past the last segment of this dispatch
    nq: u32,           // requested q (output columns)
    write_counts: u32, // 1: also each segment's counts into n_counts
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> np: NetParams;
@group(0) @binding(1) var<storage, read> n_x: array<f32>;
@group(0) @binding(2) var<storage, read> n_qinfo: array<QInfo>; // the unique q, ascending
@group(0) @binding(3) var<storage, read> n_qmap: array<u32>;    // requested q -> its unique q
@group(0) @binding(4) var<storage, read_write> n_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> n_os: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read_write> n_counts: array<Moments>;

// Above every value's key (the largest is +inf's, 0xff800000): NaN and the places past
// the segment's end sort last.
const NET_NONE: u32 = 0xffffffffu;

fn net_segment(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return np.seg_first + (wid.x + wid.y * nwg.x) * WG + lid;
}

// A thread's walk through its segment, and the non-NaN values it has met.
struct NetWalk {
    walk: ElementWalk,
    valid: u32,
}

fn net_start(s: u32) -> NetWalk {
    return NetWalk(element_walk(np.seg, segment_base(np.seg, s) - np.window_lo, 0u, 1u), 0u);
}

// The key of element k (the walk's next), NET_NONE for NaN or past the segment's end.
fn net_key(w: ptr<function, NetWalk>, k: u32) -> u32 {
    if (k >= np.seg.len) {
        return NET_NONE;
    }
    var walk = (*w).walk;
    let b = bitcast<u32>(n_x[walk_offset(walk)]);
    walk_next(&walk);
    (*w).walk = walk;
    let nan = is_nan(bitcast<f32>(b));
    (*w).valid += select(1u, 0u, nan);
    return select(key_of(b), NET_NONE, nan);
}

// Requested q j's two ranks among `valid` sorted keys (lo, and hi = min(lo + 1,
// valid − 1)) and its interpolation weight.
struct NetRank {
    lo: u32,
    hi: u32,
    th: f32,
    tl: f32,
    flag: u32,
}

fn net_rank(j: u32, valid: u32) -> NetRank {
    let nm1 = max(valid, 1u) - 1u;
    let r = rank_of(n_qinfo[n_qmap[j]], nm1);
    return NetRank(r.lo, min(r.lo + 1u, nm1), r.th, r.tl, r.flag);
}

// Quantile j of segment s from its two order statistics' keys, as finish_main writes it.
fn net_store(s: u32, j: u32, valid: u32, r: NetRank, ka: u32, kb: u32) {
    let o = s * np.nq + j;
    if (valid == 0u) {
        n_out[o] = nan_f32();
        n_os[o] = vec4<u32>(0u);
        return;
    }
    n_out[o] = lerp_numpy(value_of(ka), value_of(kb), r.th, r.tl, r.flag);
    n_os[o] = vec4<u32>(ka, kb, valid, 0u);
}

// The segment's counts as a moments state (count and NaN count only).
fn net_count(s: u32, valid: u32) {
    if (np.write_counts != 0u) {
        var m = empty_moments();
        m.count = valid;
        m.nan_count = np.seg.len - valid;
        n_counts[s] = m;
    }
}
