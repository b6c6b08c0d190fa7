//! Host side of `shaders/derive.wgsl`: per-segment center and inverse scale from the
//! statistics, on the GPU (no readback between fit and transform).

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Shader};

/// Which rule turns statistics into (center, inverse scale). The float64 twin is
/// [`crate::reference::derive`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DeriveRule {
    /// scikit-learn StandardScaler: mean, 1/std (constant feature → 1).
    Standard { with_mean: bool, with_std: bool },
    /// scikit-learn MinMaxScaler: min, 1/(max − min) (a range below `tiny` → 1; scikit-learn's
    /// `tiny` is 10·eps of the input's dtype, see [`zero_scale_threshold`]).
    MinMax { tiny: f64 },
    /// scikit-learn MaxAbsScaler: 0, 1/max|x| (below `tiny` → 1).
    MaxAbs { tiny: f64 },
    /// scikit-learn RobustScaler from quantiles `[lo, median, hi]` per segment:
    /// median, `unit`/(q_hi − q_lo) (below [`ROBUST_TINY`] → 1). `unit` is 1, or
    /// `Φ⁻¹(hi) − Φ⁻¹(lo)` with unit_variance.
    Robust { with_centering: bool, with_scaling: bool, unit: f64 },
    /// PyTorch norm layers, batch statistics: mean, 1/sqrt(var + eps); when `momentum`
    /// is given, running stats are updated with it (unbiased variance).
    Norm { eps: f64, momentum: Option<f64> },
    /// PyTorch norm layers, eval: running_mean, 1/sqrt(running_var + eps).
    NormEval { eps: f64 },
}

/// scikit-learn's `_handle_zeros_in_scale` threshold, `10·eps` of the fitted data's
/// dtype (float32 data: 1.19e-6; float64 and integer data, which scikit-learn converts
/// to float64: 2.2e-15). Min-max and max-abs use it.
pub fn zero_scale_threshold(float32_input: bool) -> f64 {
    if float32_input {
        10.0 * f32::EPSILON as f64
    } else {
        10.0 * f64::EPSILON
    }
}

/// The robust scaler's threshold: scikit-learn computes its percentiles in float64
/// whatever the input's dtype, so 10·eps of float64.
pub const ROBUST_TINY: f64 = 10.0 * f64::EPSILON;

/// Per-segment center and inverse scale, as GPU buffers of f32.
pub struct Derived {
    pub center: wgpu::Buffer,
    pub inv_scale: wgpu::Buffer,
    /// What rounding the mean to float32 in `center` lost (standard and norm rules;
    /// zero for the others): the affine pass subtracts it after `center`.
    pub center_lo: wgpu::Buffer,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct DeriveParams {
    count: u32,
    mode: u32,
    flags: u32,
    n_quantiles: u32,
    eps: f32,
    momentum: f32,
    unit: f32,
    tiny: f32,
}

/// Record the derive pass. `moments` holds `count` states (from
/// [`crate::kernels::moments::record_moments`]); `quantiles` (robust) holds 3 values per
/// segment; `running` (norms) holds running mean and var, read (eval) or updated (train).
pub fn record_derive(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    moments: &wgpu::Buffer,
    count: usize,
    rule: DeriveRule,
    quantiles: Option<&wgpu::Buffer>,
    running: Option<(&wgpu::Buffer, &wgpu::Buffer)>,
) -> Result<Derived> {
    let (mode, mut flags, eps, momentum, unit, tiny) = match rule {
        DeriveRule::Standard { with_mean, with_std } => {
            (0, (with_mean as u32) | (with_std as u32) << 1, 0.0, 0.0, 1.0, 0.0)
        }
        DeriveRule::MinMax { tiny } => (1, 3, 0.0, 0.0, 1.0, tiny),
        DeriveRule::MaxAbs { tiny } => (2, 3, 0.0, 0.0, 1.0, tiny),
        DeriveRule::Robust { with_centering, with_scaling, unit } => {
            (3, (with_centering as u32) | (with_scaling as u32) << 1, 0.0, 0.0, unit, ROBUST_TINY)
        }
        DeriveRule::Norm { eps, momentum } => (4, 3, eps, momentum.unwrap_or(0.0), 1.0, 0.0),
        DeriveRule::NormEval { eps } => (5, 3, eps, 0.0, 1.0, 0.0),
    };
    if matches!(rule, DeriveRule::Robust { .. }) && quantiles.is_none() {
        return Err(Error::InvalidParameter("the robust rule needs the quantiles buffer".into()));
    }
    let needs_running = matches!(rule, DeriveRule::NormEval { .. } | DeriveRule::Norm { momentum: Some(_), .. });
    if needs_running && running.is_none() {
        return Err(Error::InvalidParameter("running statistics buffers are required".into()));
    }
    if matches!(rule, DeriveRule::Norm { momentum: Some(_), .. }) {
        flags |= 4;
    }
    let center = gpu.storage_buffer("center", count as u64 * 4)?;
    let inv_scale = gpu.storage_buffer("inv_scale", count as u64 * 4)?;
    let center_lo = gpu.storage_buffer("center_lo", count as u64 * 4)?;
    // Unused bindings still need distinct buffers: a buffer bound read-only and
    // read-write in one dispatch is a usage conflict.
    let unused = |label| gpu.storage_buffer(label, 4);
    let (dummy_q, dummy_rm, dummy_rv) =
        (unused("unused quantiles")?, unused("unused running mean")?, unused("unused running var")?);
    let (rm, rv) = running.unwrap_or((&dummy_rm, &dummy_rv));
    let params = gpu.uniform(&DeriveParams {
        count: count as u32,
        mode,
        flags,
        n_quantiles: 3,
        eps: eps as f32,
        momentum: momentum as f32,
        unit: unit as f32,
        tiny: tiny as f32,
    });
    let quant = quantiles.unwrap_or(&dummy_q);
    let pipeline = gpu.pipeline(Shader::Derive, "derive_main");
    gpu.dispatch(
        encoder,
        &pipeline,
        &[
            params.as_entire_binding(),
            moments.as_entire_binding(),
            quant.as_entire_binding(),
            center.as_entire_binding(),
            inv_scale.as_entire_binding(),
            rm.as_entire_binding(),
            rv.as_entire_binding(),
            center_lo.as_entire_binding(),
        ],
        (count as u32).div_ceil(256),
    )?;
    Ok(Derived { center, inv_scale, center_lo })
}
