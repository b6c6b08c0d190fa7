//! Twin of `shaders/affine.wgsl`, in float64.

use crate::segments::Grouping;

/// The same arguments as the GPU pass, as host vectors.
pub struct AffineSpec<'a> {
    pub mode: crate::kernels::affine::AffineMode,
    pub center: &'a [f64],
    pub inv_scale: &'a [f64],
    pub gamma_beta: Option<(&'a [f64], &'a [f64])>,
    pub clip: Option<(f64, f64)>,
}

pub fn log1p(x: f64) -> f64 {
    x.ln_1p()
}

pub fn expm1(x: f64) -> f64 {
    x.exp_m1()
}

/// The elementwise pass over `data` (C order) grouped by `grouping`.
pub fn affine(data: &[f32], grouping: &Grouping, spec: &AffineSpec) -> Vec<f64> {
    use crate::kernels::affine::AffineMode::*;
    let (seg_map, param_map) = (grouping.segment_map(), grouping.param_map());
    data.iter()
        .enumerate()
        .map(|(e, &v)| {
            let v = v as f64;
            let out = match spec.mode {
                Log1p => return log1p(v),
                Expm1 => return expm1(v),
                Forward | Inverse => {
                    let s = seg_map.apply(e);
                    let (g, b) = match spec.gamma_beta {
                        Some((g, b)) => {
                            let q = param_map.apply(e);
                            (g[q], b[q])
                        }
                        None => (1.0, 0.0),
                    };
                    if spec.mode == Forward {
                        (v - spec.center[s]) * spec.inv_scale[s] * g + b
                    } else {
                        ((v - b) / g) / spec.inv_scale[s] + spec.center[s]
                    }
                }
            };
            match spec.clip {
                Some((lo, hi)) if !out.is_nan() => out.clamp(lo, hi),
                _ => out,
            }
        })
        .collect()
}
