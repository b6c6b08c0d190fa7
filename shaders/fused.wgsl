// A norm layer's forward in one pass over memory, for contiguous segments short enough
// to stay in a CPU core's cache (software adapters: layer norm's rows, instance and
// group norm's planes in NCHW). One thread per segment reads it twice, rarely three
// times: the count, NaN count, min, max and the shifted sums (see segment_moments);
// then, with those turned into center and inverse scale exactly as `poison_main` and
// `derive_main` (rule 4) turn a moments pass's states, y = ((x − c) − c_lo)·inv·γ + β,
// as `affine4_*` computes it. Only the first read comes from memory. The twin is the
// reference's moments, derive and affine steps, as for the passes it replaces.
//
// γ/β of element k of segment s: by position in the row (layer norm, norm_fused_rows),
// or index (s % pm)·ps + k / run (norm_fused_runs: one per segment for instance norm,
// per channel of `run` elements for group norm). The host takes this path only where
// the segment length and the run are multiples of 4, so that every vec4 lies in one run.

struct FusedParams {
    count: u32,   // segments
    len4: u32,    // vec4s per segment
    run4: u32,    // norm_fused_runs: vec4s per γ/β run
    pm: u32,      // γ/β index: (s % pm) · ps + k / run
    ps: u32,
    _pad0: u32,
    eps: f32,
    _pad1: u32,
}

const FUSED_WG: u32 = 64u;

@group(0) @binding(0) var<uniform> fp: FusedParams;
@group(0) @binding(1) var<storage, read> fx4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> fy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> f_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> f_beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> f_center: array<f32>;
@group(0) @binding(6) var<storage, read_write> f_center_lo: array<f32>;
@group(0) @binding(7) var<storage, read_write> f_inv: array<f32>;
@group(0) @binding(8) var<storage, read_write> f_moments: array<Moments>;
// norm_fused_rows: γ and β as vec4s (the row length is a multiple of 4).
@group(0) @binding(9) var<storage, read> f_gamma4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read> f_beta4: array<vec4<f32>>;

// The statistics of the segment at vec4 `base` as a moments state, poisoned where NaN
// or ±inf occur. The sums run over d = x − shift, shift the mean of the first (up to)
// 16 values, so that M2 = Σd² − n·mean(d)² loses little: where the shift lies within
// one standard deviation of the mean (n·mean(d)² <= M2; nearly always, as 16 values
// place it within σ/4 on average), the relative error of M2 is at most about 4·L·u
// (L = len / 4 additions per accumulator); elsewhere (sorted or trending data, an
// outlier among the first values) a second read sums (d − mean(d)) and its square, as
// the corrected two-pass algorithm does.
fn segment_moments(base: u32) -> Moments {
    let head = min(fp.len4, 4u);
    var first = vec4<f32>(0.0);
    for (var i = 0u; i < head; i++) {
        first += fx4[base + i];
    }
    let guess = ((first.x + first.y) + (first.z + first.w)) / f32(4u * head);
    let shift = select(0.0, guess, abs(guess) <= 3.4028235e38);
    // The common case first: no NaN or ±inf (which would make the sums non-finite).
    var sum = vec4<f32>(0.0);
    var sq = vec4<f32>(0.0);
    for (var i = 0u; i < fp.len4; i++) {
        let d = fx4[base + i] - shift;
        sum += d;
        sq += d * d;
    }
    var nans = vec4<u32>(0u);
    var lo = vec4<f32>(inf_f32());
    var hi = vec4<f32>(-inf_f32());
    let finite = abs((sum.x + sum.y) + (sum.z + sum.w)) <= 3.4028235e38 && ((sq.x + sq.y) + (sq.z + sq.w)) <= 3.4028235e38;
    if (finite) {
        // min and max only matter for ±inf (poisoned); the state still gets them.
        lo = vec4<f32>(0.0);
        hi = vec4<f32>(0.0);
    } else {
        sum = vec4<f32>(0.0);
        sq = vec4<f32>(0.0);
        for (var i = 0u; i < fp.len4; i++) {
            let v = fx4[base + i];
            let nan = is_nan4(v);
            let d = select(v - shift, vec4<f32>(0.0), nan);
            sum += d;
            sq += d * d;
            nans += select(vec4<u32>(0u), vec4<u32>(1u), nan);
            lo = min(lo, select(v, vec4<f32>(inf_f32()), nan));
            hi = max(hi, select(v, vec4<f32>(-inf_f32()), nan));
        }
    }
    let nan_count = nans.x + nans.y + nans.z + nans.w;
    let count = 4u * fp.len4 - nan_count;
    let n = f32(max(count, 1u));
    let total = (sum.x + sum.y) + (sum.z + sum.w);
    let mean = total / n;
    var correction = 0.0;
    var m2 = max(((sq.x + sq.y) + (sq.z + sq.w)) - mean * total, 0.0);
    if (!(n * mean * mean <= m2)) {
        // The corrected two-pass algorithm: the residuals' sum also corrects the mean,
        // whose first sum was rounded at the far shift's magnitude.
        var rv = vec4<f32>(0.0);
        var m2v = vec4<f32>(0.0);
        for (var i = 0u; i < fp.len4; i++) {
            let v = fx4[base + i];
            let nan = is_nan4(v);
            let d = select((v - shift) - mean, vec4<f32>(0.0), nan);
            rv += d;
            m2v += d * d;
        }
        let r = (rv.x + rv.y) + (rv.z + rv.w);
        m2 = max(((m2v.x + m2v.y) + (m2v.z + m2v.w)) - r * r / n, 0.0);
        correction = r / n;
    }
    // The shift moves to the mean where it lay far from it (`rebase`), before the
    // correction, which is below the far shift's rounding, joins the mean's low part.
    var m = rebase(Moments(count, nan_count, shift, mean, m2, min(min(lo.x, lo.y), min(lo.z, lo.w)),
                           max(max(hi.x, hi.y), max(hi.z, hi.w)), 0u));
    m.mean += correction;
    return poisoned(m);
}

// Segment s's statistics, written for the backward pass (and instance norm's running
// update); returns (center, center_lo, inv) as the derive pass's norm rule makes them.
fn segment_params(s: u32, base: u32) -> vec3<f32> {
    let m = segment_moments(base);
    let pair = mean_pair(m);
    let inv = inverseSqrt(m.m2 / f32(m.count) + fp.eps);
    f_moments[s] = m;
    f_center[s] = pair.x;
    f_center_lo[s] = pair.y;
    f_inv[s] = inv;
    return vec3<f32>(pair, inv);
}

fn fused_segment(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * FUSED_WG + lid;
}

// Layer norm: γ/β by position in the row. A thread takes ROWS_PER_THREAD neighbouring
// rows, so that each γ/β load serves that many outputs.
const ROWS_PER_THREAD: u32 = 4u;

@compute @workgroup_size(64)
fn norm_fused_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s0 = fused_segment(wid, nwg, lid) * ROWS_PER_THREAD;
    if (s0 >= fp.count) {
        return;
    }
    let rows = min(fp.count - s0, ROWS_PER_THREAD);
    var c: array<vec4<f32>, ROWS_PER_THREAD>;
    var cl: array<vec4<f32>, ROWS_PER_THREAD>;
    var iv: array<vec4<f32>, ROWS_PER_THREAD>;
    for (var k = 0u; k < ROWS_PER_THREAD; k++) {
        // Rows past the end repeat the last one's parameters and are not written.
        let s = s0 + min(k, rows - 1u);
        let cp = segment_params(s, s * fp.len4);
        c[k] = vec4<f32>(cp.x);
        cl[k] = vec4<f32>(cp.y);
        iv[k] = vec4<f32>(cp.z);
    }
    let base = s0 * fp.len4;
    for (var i = 0u; i < fp.len4; i++) {
        let g = f_gamma4[i];
        let b = f_beta4[i];
        for (var k = 0u; k < ROWS_PER_THREAD; k++) {
            if (k < rows) {
                let j = base + k * fp.len4 + i;
                fy4[j] = ((fx4[j] - c[k]) - cl[k]) * iv[k] * g + b;
            }
        }
    }
}

// Instance and group norm (and any layer without γ/β, given γ = 1, β = 0 in one run):
// one γ/β per run of `run4` vec4s.
@compute @workgroup_size(64)
fn norm_fused_runs(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = fused_segment(wid, nwg, lid);
    if (s >= fp.count) {
        return;
    }
    let base = s * fp.len4;
    let cp = segment_params(s, base);
    let c = vec4<f32>(cp.x);
    let cl = vec4<f32>(cp.y);
    let iv = vec4<f32>(cp.z);
    let p0 = (s % fp.pm) * fp.ps;
    var i = 0u;
    for (var r = 0u; i < fp.len4; r++) {
        let g = vec4<f32>(f_gamma[p0 + r]);
        let b = vec4<f32>(f_beta[p0 + r]);
        let end = i + fp.run4;
        for (; i < end; i++) {
            fy4[base + i] = ((fx4[base + i] - c) - cl) * iv * g + b;
        }
    }
}
