// Per-segment center and inverse scale from the statistics, on the GPU, so that a
// fit followed by a transform needs no readback. The float64 twin of each rule is
// in src/reference/derive.rs; the rules are scikit-learn's and PyTorch's.
//
//   0 standard:  center = mean,      inv = 1 / std      (constant feature: 1)
//   1 minmax:    center = min,       inv = 1 / (max - min) (below `tiny`: 1)
//   2 maxabs:    center = 0,         inv = 1 / max|x|   (below `tiny`: 1)
//   3 robust:    center = median,    inv = unit / (q_hi - q_lo) (below `tiny`: 1)
//   4 norm:      center = mean,      inv = 1 / sqrt(var + eps); optional running-stat update
//   5 norm eval: center = running_mean, inv = 1 / sqrt(running_var + eps)
//
// flags: 1 = use center (else 0), 2 = use scale (else inv 1), 4 = update running stats,
// 8 = cumulative average (momentum None: factor 1 / (batches seen)).

struct DeriveParams {
    count: u32,
    mode: u32,
    flags: u32,
    n_quantiles: u32,   // robust: quantiles per segment in `quant`, as [lo, median, hi]
    eps: f32,
    momentum: f32,      // or the cumulative factor
    unit: f32,          // robust: Phi^-1(hi) - Phi^-1(lo) with unit_variance, else 1
    tiny: f32,          // scikit-learn's zero-scale threshold, 10 * eps of the input's dtype
}

const USE_CENTER: u32 = 1u;
const USE_SCALE: u32 = 2u;
const UPDATE_RUNNING: u32 = 4u;

@group(0) @binding(0) var<uniform> dp: DeriveParams;
@group(0) @binding(1) var<storage, read> stats: array<Moments>;
@group(0) @binding(2) var<storage, read> quant: array<f32>;
@group(0) @binding(3) var<storage, read_write> center_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> inv_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(7) var<storage, read_write> center_lo_out: array<f32>;

// scikit-learn's _handle_zeros_in_scale: a scale below `tiny` is taken as 1. So is one
// whose inverse overflows float32 (a scale below ~2.9e-39, subnormal in float32).
fn safe_inverse(scale: f32, tiny: f32) -> f32 {
    let inv = 1.0 / scale;
    if (scale < tiny || inv > 3.4028235e38) {
        return 1.0;
    }
    return inv;
}

@compute @workgroup_size(256)
fn derive_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = (wid.x + wid.y * nwg.x) * WG + lid;
    if (s >= dp.count) {
        return;
    }
    let m = stats[s];
    let mean = moments_mean(m);
    let n = f32(m.count);
    let var_pop = m.m2 / n;
    var c = 0.0;
    var c_lo = 0.0;
    var inv = 1.0;
    switch dp.mode {
        case 0u: {
            let pair = mean_pair(m);
            c = pair.x;
            c_lo = pair.y;
            // scikit-learn's constant-feature rule (in float64 there):
            // var <= n*eps*var + (n*mean*eps)^2, eps = 2^-52.
            let eps64 = 2.220446e-16;
            let bound = n * eps64 * var_pop + (n * mean * eps64) * (n * mean * eps64);
            if (var_pop <= bound) {
                inv = 1.0;
            } else {
                inv = safe_inverse(sqrt(var_pop), 0.0);
            }
            // NaN, or a variance beyond float32 (values spread past ~1.8e19, which only
            // a prescale keeps: the host paths have one, this GPU-resident one has not):
            // NaN, never a silent 0.
            if (is_nan(var_pop) || var_pop > 3.4e38) {
                inv = nan_f32();
            }
        }
        case 1u: {
            c = m.min;
            inv = safe_inverse(m.max - m.min, dp.tiny);
            // A range beyond float32 (max − min overflows): NaN, as above.
            if (is_nan(m.max) || m.max - m.min > 3.4e38) {
                inv = nan_f32();
            }
        }
        case 2u: {
            let a = max(abs(m.min), abs(m.max));
            inv = safe_inverse(a, dp.tiny);
            if (is_nan(a)) {
                inv = nan_f32();
            }
        }
        case 3u: {
            let q = s * dp.n_quantiles;
            c = quant[q + 1u];
            let iqr = quant[q + 2u] - quant[q];
            inv = safe_inverse(iqr, dp.tiny) * dp.unit;
            if (is_nan(iqr)) {
                inv = nan_f32();
            }
        }
        case 4u: {
            let pair = mean_pair(m);
            c = pair.x;
            c_lo = pair.y;
            inv = inverseSqrt(var_pop + dp.eps);
            if ((dp.flags & UPDATE_RUNNING) != 0u) {
                let unbiased = m.m2 / max(n - 1.0, 1.0);
                running_mean[s] = (1.0 - dp.momentum) * running_mean[s] + dp.momentum * mean;
                running_var[s] = (1.0 - dp.momentum) * running_var[s] + dp.momentum * unbiased;
            }
        }
        default: {
            c = running_mean[s];
            inv = inverseSqrt(running_var[s] + dp.eps);
        }
    }
    if ((dp.flags & USE_CENTER) == 0u) {
        c = 0.0;
        c_lo = 0.0;
    }
    if ((dp.flags & USE_SCALE) == 0u) {
        inv = 1.0;
    }
    center_out[s] = c;
    center_lo_out[s] = c_lo;
    inv_out[s] = inv;
}
