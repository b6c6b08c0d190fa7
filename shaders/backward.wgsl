// The norm layers' backward pass, and the small per-segment steps of their forward.
//
// With x̂ = (x − mean[t]) · invstd[t] (t = the statistics segment of the element, the
// forward's saved statistics) and g = γ[p] · dy (p = its γ/β index), the gradient of
// a normalization over N elements per statistics segment is
//
//   dx = invstd[t] · (g − Σg/N − x̂ · Σ(g·x̂)/N)      (train: batch statistics)
//   dx = invstd[t] · g                                (eval: running statistics)
//   dγ[p] = Σ dy·x̂,  dβ[p] = Σ dy                    (over the elements of p)
//
// Entry points, in the order the host records them:
//   sums_main / sums_merge_main  one fused reduction over (dy, x): per reduction
//                                segment Σw·dy and Σw·dy·x̂ (w = γ[p] or 1), cut into
//                                dispatches and parts exactly as moments.wgsl
//   coeffs_main                  per statistics segment Σg/N and Σg·x̂/N from the sums of
//                                its reduction segments (several for group norm)
//   param_grads_main             dγ and dβ per parameter: a strided sum of the sums
//   dx_main                      the elementwise pass
// and two helpers of the forward pass:
//   poison_main                  NaN in a segment makes its mean and M2 NaN (PyTorch
//                                propagates NaN; the moments kernel skips it)
//   instance_running_main        instance norm's running stats: the mean over samples
//                                of each instance's momentum update

// ---------------------------------------------------------------- reduction

struct SumsParams {
    seg: Segments,       // the reduction segments
    stat_map: IndexMap,  // flat index -> statistics segment (when not per segment)
    param_map: IndexMap, // flat index -> gamma index (weighted)
    window_lo: u32,
    seg_first: u32,
    seg_end: u32,
    tile_width: u32,
    k_first: u32,
    k_end: u32,
    parts: u32,
    part_offset: u32,
    parts_total: u32,
    tiles: u32,
    flags: u32,          // 1: statistics segment = s / stat_div; 2: weight by gamma
    stat_div: u32,
    _pad0: u32,
    _pad1: u32,
}

const STAT_PER_SEGMENT: u32 = 1u;
const WEIGHTED: u32 = 2u;

@group(0) @binding(0) var<uniform> sp: SumsParams;
@group(0) @binding(1) var<storage, read> sx: array<f32>;
@group(0) @binding(2) var<storage, read> sdy: array<f32>;
@group(0) @binding(3) var<storage, read> s_mean: array<f32>;
@group(0) @binding(4) var<storage, read> s_inv: array<f32>;
@group(0) @binding(5) var<storage, read> s_gamma: array<f32>;
@group(0) @binding(6) var<storage, read_write> s_partials: array<vec2<f32>>;

var<workgroup> sh_sums: array<vec2<f32>, WG>;

@compute @workgroup_size(256)
fn sums_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    if (w >= sp.tiles * sp.parts) {
        return;
    }
    let tile = w / sp.parts;
    let part = w % sp.parts;
    let lanes = WG / sp.tile_width;
    let lane_s = lid % sp.tile_width;
    let lane_k = lid / sp.tile_width;
    let s = sp.seg_first + tile * sp.tile_width + lane_s;

    let k_count = sp.k_end - sp.k_first;
    let per_part = (k_count + sp.parts - 1u) / sp.parts;
    let k_lo = sp.k_first + part * per_part;
    let k_hi = min(k_lo + per_part, sp.k_end);

    var acc = vec2<f32>(0.0, 0.0);
    if (s < sp.seg_end) {
        let seg_base = segment_base(sp.seg, s);
        let base = seg_base - sp.window_lo;
        if ((sp.flags & STAT_PER_SEGMENT) != 0u && (sp.flags & WEIGHTED) == 0u) {
            // Batch, instance and group norm: one statistics segment, no weight.
            let t = s / sp.stat_div;
            let mu = s_mean[t];
            let inv = s_inv[t];
            for (var k = k_lo + lane_k; k < k_hi; k += lanes) {
                let i = base + element_offset(sp.seg, k);
                let d = sdy[i];
                acc += vec2<f32>(d, d * ((sx[i] - mu) * inv));
            }
        } else {
            // Layer norm: rows weighted by gamma[position], or columns whose
            // elements each belong to another row's statistics.
            for (var k = k_lo + lane_k; k < k_hi; k += lanes) {
                let off = element_offset(sp.seg, k);
                let i = base + off;
                let e = seg_base + off;
                var t: u32;
                if ((sp.flags & STAT_PER_SEGMENT) != 0u) {
                    t = s / sp.stat_div;
                } else {
                    t = map_index(sp.stat_map, e);
                }
                var d = sdy[i];
                if ((sp.flags & WEIGHTED) != 0u) {
                    d *= s_gamma[map_index(sp.param_map, e)];
                }
                acc += vec2<f32>(d, d * ((sx[i] - s_mean[t]) * s_inv[t]));
            }
        }
    }
    sh_sums[lid] = acc;
    workgroupBarrier();
    for (var stride = lanes / 2u; stride > 0u; stride /= 2u) {
        if (lane_k < stride) {
            sh_sums[lid] += sh_sums[lid + stride * sp.tile_width];
        }
        workgroupBarrier();
    }
    if (lane_k == 0u && s < sp.seg_end) {
        s_partials[s * sp.parts_total + sp.part_offset + part] = sh_sums[lid];
    }
}

struct SumsMergeParams {
    count: u32,
    parts_total: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> smp: SumsMergeParams;
@group(0) @binding(1) var<storage, read> sm_in: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> sm_out: array<vec2<f32>>;

@compute @workgroup_size(256)
fn sums_merge_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = (wid.x + wid.y * nwg.x) * WG + lid;
    if (s >= smp.count) {
        return;
    }
    var acc = vec2<f32>(0.0, 0.0);
    for (var i = 0u; i < smp.parts_total; i++) {
        acc += sm_in[s * smp.parts_total + i];
    }
    sm_out[s] = acc;
}

// ---------------------------------------------------------------- coefficients

struct CoeffParams {
    count: u32,     // statistics segments
    sub: u32,       // reduction segments per statistics segment (C/G for group norm, else 1)
    channels: u32,  // gamma index of reduction segment r is r % channels
    flags: u32,     // 1: multiply by gamma (the sums are unweighted)
    inv_n: f32,     // 1 / elements per statistics segment
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const APPLY_GAMMA: u32 = 1u;

@group(0) @binding(0) var<uniform> cp: CoeffParams;
@group(0) @binding(1) var<storage, read> c_sums: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> c_gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> c_coef: array<vec2<f32>>;

@compute @workgroup_size(256)
fn coeffs_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = (wid.x + wid.y * nwg.x) * WG + lid;
    if (t >= cp.count) {
        return;
    }
    var acc = vec2<f32>(0.0, 0.0);
    for (var j = 0u; j < cp.sub; j++) {
        let r = t * cp.sub + j;
        var v = c_sums[r];
        if ((cp.flags & APPLY_GAMMA) != 0u) {
            v *= c_gamma[r % cp.channels];
        }
        acc += v;
    }
    c_coef[t] = acc * cp.inv_n;
}

// ---------------------------------------------------------------- dγ, dβ

struct ParamGradParams {
    count: u32,   // parameters
    loops: u32,   // sums per parameter (samples for group/instance norm)
    stride: u32,  // distance between them
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> pgp: ParamGradParams;
@group(0) @binding(1) var<storage, read> pg_sums: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> pg_dgamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> pg_dbeta: array<f32>;

@compute @workgroup_size(256)
fn param_grads_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = (wid.x + wid.y * nwg.x) * WG + lid;
    if (p >= pgp.count) {
        return;
    }
    var acc = vec2<f32>(0.0, 0.0);
    for (var i = 0u; i < pgp.loops; i++) {
        acc += pg_sums[i * pgp.stride + p];
    }
    pg_dbeta[p] = acc.x;
    pg_dgamma[p] = acc.y;
}

// ---------------------------------------------------------------- dx

struct DxParams {
    seg_map: IndexMap,    // flat index -> statistics segment
    param_map: IndexMap,  // flat index -> gamma index
    window_lo: u32,
    count: u32,
    per_wg: u32,
    flags: u32,           // 1: train (use the coefficients), 2: gamma present
}

const DX_TRAIN: u32 = 1u;
const DX_GAMMA: u32 = 2u;

@group(0) @binding(0) var<uniform> xp: DxParams;
@group(0) @binding(1) var<storage, read> dx_x: array<f32>;
@group(0) @binding(2) var<storage, read> dx_dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx_out: array<f32>;
@group(0) @binding(4) var<storage, read> dx_mean: array<f32>;
@group(0) @binding(5) var<storage, read> dx_inv: array<f32>;
@group(0) @binding(6) var<storage, read> dx_gamma: array<f32>;
@group(0) @binding(7) var<storage, read> dx_coef: array<vec2<f32>>;

@compute @workgroup_size(256)
fn dx_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    let start = w * xp.per_wg;
    let end = min(start + xp.per_wg, xp.count);
    for (var i = start + lid; i < end; i += WG) {
        let e = xp.window_lo + i;
        let t = map_index(xp.seg_map, e);
        var g = dx_dy[i];
        if ((xp.flags & DX_GAMMA) != 0u) {
            g *= dx_gamma[map_index(xp.param_map, e)];
        }
        let inv = dx_inv[t];
        if ((xp.flags & DX_TRAIN) != 0u) {
            let c = dx_coef[t];
            let xh = (dx_x[i] - dx_mean[t]) * inv;
            dx_out[i] = inv * ((g - c.x) - xh * c.y);
        } else {
            dx_out[i] = inv * g;
        }
    }
}

// ---------------------------------------------------------------- forward helpers

struct CountParams {
    count: u32,
    n: u32,        // instance_running_main: samples
    c: u32,        // instance_running_main: channels
    _pad0: u32,
    momentum: f32, // instance_running_main: the update factor
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

@group(0) @binding(0) var<uniform> pp: CountParams;
@group(0) @binding(1) var<storage, read_write> p_moments: array<Moments>;

@compute @workgroup_size(256)
fn poison_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = (wid.x + wid.y * nwg.x) * WG + lid;
    if (s >= pp.count) {
        return;
    }
    var m = p_moments[s];
    if (m.nan_count > 0u) {
        m.mean = nan_f32();
        m.m2 = nan_f32();
        p_moments[s] = m;
    }
}

@group(0) @binding(0) var<uniform> ip: CountParams;
@group(0) @binding(1) var<storage, read> i_moments: array<Moments>;
@group(0) @binding(2) var<storage, read_write> i_running_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> i_running_var: array<f32>;

@compute @workgroup_size(256)
fn instance_running_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let ch = (wid.x + wid.y * nwg.x) * WG + lid;
    if (ch >= ip.c) {
        return;
    }
    var mean_sum = 0.0;
    var var_sum = 0.0;
    for (var b = 0u; b < ip.n; b++) {
        let m = i_moments[b * ip.c + ch];
        mean_sum += m.mean;
        var_sum += m.m2 / max(f32(m.count) - 1.0, 1.0);
    }
    let inv_n = 1.0 / f32(ip.n);
    let f = ip.momentum;
    i_running_mean[ch] = (1.0 - f) * i_running_mean[ch] + f * (mean_sum * inv_n);
    i_running_var[ch] = (1.0 - f) * i_running_var[ch] + f * (var_sum * inv_n);
}
