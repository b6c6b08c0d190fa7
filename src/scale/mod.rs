//! scikit-learn's scalers on the GPU: standard, min-max, max-abs, robust and log.
//!
//! A [`Scaler`] (options) is fitted into a [`FittedScaler`] (options + per-feature
//! statistics), which transforms and inverse-transforms any data with the same number
//! of features — "the same scaler instance" for train and test data. Every scaler is
//! the same two GPU steps: per-column statistics (the moments kernel, or exact
//! quantiles for robust), then the affine kernel `(x − center)·inv_scale·γ + β`.
//!
//! ```no_run
//! use gpunorm::scale::{MinMaxScaler, Scaler};
//! use ndarray::array;
//! let gpu = gpunorm::Gpu::new()?;
//! let train = array![[10.0f32], [200.0], [3000.0], [40000.0], [500000.0]];
//! let fitted = Scaler::from(MinMaxScaler::new()).fit(&gpu, train.view())?;
//! let scaled = fitted.transform(&gpu, train.view())?;
//! assert_eq!(scaled[[4, 0]], 1.0);
//! # Ok::<(), gpunorm::Error>(())
//! ```

pub(crate) mod offsets;
mod options;
mod params;

use ndarray::{Array2, ArrayView2};

pub use options::{normal_ppf, LogScaler, MaxAbsScaler, MinMaxScaler, RobustScaler, Scaler, StandardScaler};

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::kernels::affine::{record_affine, AffineArgs, AffineMode};
use crate::kernels::derive::{record_derive, DeriveRule};
use crate::kernels::moments::{moments_prescaled, record_moments};
use crate::kernels::select;
use crate::reference;
use crate::segments::Grouping;
use crate::stats::{column_ranges, prescale_of, verify_moments, Moments};
use crate::verify::{self, Verify};

/// What a fit learned, per feature.
#[derive(Clone, Debug, PartialEq)]
pub enum FitState {
    /// Mergeable statistics (standard, min-max, max-abs).
    Moments(Vec<Moments>),
    /// scikit-learn's `center_` and `scale_` (robust; zero scales already 1).
    Robust { center: Vec<f64>, scale: Vec<f64> },
    /// Nothing (log).
    Stateless,
}

/// A fitted scaler: options, feature count and per-feature statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct FittedScaler {
    pub scaler: Scaler,
    /// The width it was fitted on (`None` only for a log scaler loaded from a file
    /// without one); the stateless log scaler accepts any width.
    pub n_features: Option<usize>,
    pub state: FitState,
    /// The dtype of the data it was fitted on: scikit-learn's zero-scale threshold
    /// for min-max and max-abs is 10·eps of it.
    pub input_dtype: InputDtype,
}

/// The dtype of a fit's input, as scikit-learn sees it: float32 stays float32, anything
/// else (float64, integers) is float64. It decides when a min-max range or a max-abs
/// maximum counts as zero (scale 1): below 1.19e-6 for float32, 2.2e-15 for float64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InputDtype {
    #[default]
    Float32,
    Float64,
}

impl InputDtype {
    /// scikit-learn's `_handle_zeros_in_scale` threshold for this dtype.
    pub fn zero_scale_threshold(self) -> f64 {
        crate::kernels::derive::zero_scale_threshold(self == InputDtype::Float32)
    }

    pub fn name(self) -> &'static str {
        match self {
            InputDtype::Float32 => "float32",
            InputDtype::Float64 => "float64",
        }
    }
}

/// Elements that can be scaled: converted to float32 on upload (float64 columns
/// centred on the host first, see `offsets.rs`).
pub trait Element: Copy {
    /// The dtype scikit-learn would fit this element type in.
    const DTYPE: InputDtype;
    /// Every value is a float32: nothing to centre on the host.
    const EXACT_IN_F32: bool;
    fn to_f32(self) -> f32;
    fn to_f64(self) -> f64;
}
impl Element for f32 {
    const DTYPE: InputDtype = InputDtype::Float32;
    const EXACT_IN_F32: bool = true;
    fn to_f32(self) -> f32 {
        self
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}
impl Element for f64 {
    const DTYPE: InputDtype = InputDtype::Float64;
    const EXACT_IN_F32: bool = false;
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn to_f64(self) -> f64 {
        self
    }
}

fn to_f32<T: Element>(x: ArrayView2<T>) -> Array2<f32> {
    x.mapv(Element::to_f32)
}

fn upload(gpu: &Gpu, x: ArrayView2<f32>) -> Result<GpuTensor> {
    GpuTensor::from_array(gpu, x.into_dyn())
}

/// Vectors of f32 as GPU buffers.
fn upload_vec(gpu: &Gpu, v: &[f64]) -> Result<GpuTensor> {
    let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    GpuTensor::from_slice(gpu, &f, &[f.len()])
}

/// Values that log1p cannot take: x <= -1 (and ±inf, which every scaler rejects).
fn check_log_domain(x: ArrayView2<f32>) -> Result<()> {
    for ((row, col), &v) in x.indexed_iter() {
        if v <= -1.0 {
            return Err(Error::Domain { op: "log1p", row, col, value: v as f64, why: "log1p needs x > -1" });
        }
    }
    Ok(())
}

/// The quantiles a robust scaler needs, as fractions: `[lo, 0.5, hi]`.
fn robust_quantiles(o: &RobustScaler) -> [f64; 3] {
    [o.quantile_range.0 / 100.0, 0.5, o.quantile_range.1 / 100.0]
}

fn robust_unit(o: &RobustScaler) -> f64 {
    if o.unit_variance {
        normal_ppf(o.quantile_range.1 / 100.0) - normal_ppf(o.quantile_range.0 / 100.0)
    } else {
        1.0
    }
}

impl Scaler {
    fn derive_rule(&self, dtype: InputDtype) -> Option<DeriveRule> {
        let tiny = dtype.zero_scale_threshold();
        Some(match *self {
            Scaler::Standard(o) => DeriveRule::Standard { with_mean: o.with_mean, with_std: o.with_std },
            Scaler::MinMax(_) => DeriveRule::MinMax { tiny },
            Scaler::MaxAbs(_) => DeriveRule::MaxAbs { tiny },
            Scaler::Robust(o) => DeriveRule::Robust {
                with_centering: o.with_centering,
                with_scaling: o.with_scaling,
                unit: robust_unit(&o),
            },
            Scaler::Log(_) => return None,
        })
    }

    /// Check a fit/transform input: 2-D, no ±inf, in the log domain for log. Returns
    /// each column's (min, max), found in the same pass.
    fn check_input(&self, x: ArrayView2<f32>) -> Result<Vec<(f64, f64)>> {
        self.validate()?;
        let ranges = column_ranges(x)?;
        if let Scaler::Log(_) = self {
            check_log_domain(x)?;
        }
        Ok(ranges)
    }

    /// Fit to `x` (`n_samples × n_features`; NaN is missing).
    pub fn fit<T: Element>(&self, gpu: &Gpu, x: ArrayView2<T>) -> Result<FittedScaler> {
        self.fit_as(gpu, x, T::DTYPE)
    }

    /// [`Scaler::fit`] of values that stand for data of `dtype` (e.g. float32 data
    /// stored as float64, or float64 data already read as float32): `dtype` sets the
    /// zero-scale threshold.
    pub fn fit_as<T: Element>(&self, gpu: &Gpu, x: ArrayView2<T>, dtype: InputDtype) -> Result<FittedScaler> {
        let (x, offsets) = self.fit_input(x);
        let ranges = self.check_input(x.view())?;
        let tensor = upload(gpu, x.view())?;
        let fitted = self.fit_tensor(gpu, &tensor, x.dim(), &ranges, dtype)?;
        Ok(fitted.shifted_by(offsets.as_deref()))
    }

    /// The float32 matrix the GPU fits for `x` and the per-column offsets taken off it
    /// on the host (float64 input; log1p is not shift-invariant, so log takes none).
    fn fit_input<T: Element>(&self, x: ArrayView2<T>) -> (Array2<f32>, Option<Vec<f64>>) {
        offsets::host_input(x, !matches!(self, Scaler::Log(_)))
    }

    /// Whether the transform takes a fitted center off each value: only then do the
    /// residuals of a host-centred input help it (max-abs, say, divides x itself, and
    /// would only add `x − c` and `c` back in float32).
    fn subtracts_center(&self) -> bool {
        match *self {
            Scaler::Standard(o) => o.with_mean,
            Scaler::MinMax(_) => true,
            Scaler::Robust(o) => o.with_centering,
            Scaler::MaxAbs(_) | Scaler::Log(_) => false,
        }
    }

    /// The float32 matrix the GPU transforms for `x`, and the offsets taken off it.
    fn transform_input<T: Element>(&self, x: ArrayView2<T>) -> (Array2<f32>, Option<Vec<f64>>) {
        offsets::host_input(x, self.subtracts_center())
    }

    /// Fit the uploaded `(rows, cols)` matrix whose column ranges `check_input` found.
    fn fit_tensor(
        &self,
        gpu: &Gpu,
        tensor: &GpuTensor,
        (rows, cols): (usize, usize),
        ranges: &[(f64, f64)],
        dtype: InputDtype,
    ) -> Result<FittedScaler> {
        if rows == 0 {
            return Err(Error::Shape(format!("cannot fit on 0 samples (input shape ({rows}, {cols}))")));
        }
        if cols == 0 && !matches!(self, Scaler::Log(_)) {
            // scikit-learn: "Found array with 0 feature(s)".
            return Err(Error::Shape(format!("cannot fit on 0 features (input shape ({rows}, {cols}))")));
        }
        let g = Grouping::Columns { rows, cols };
        let state = match self {
            Scaler::Log(_) => FitState::Stateless,
            Scaler::Robust(o) => {
                let q = select::quantiles(gpu, tensor, &g, &robust_quantiles(o))?;
                if gpu.verify() == Verify::Always {
                    let data = tensor.to_vec(gpu)?;
                    let want = reference::quantiles(&data, &g, &robust_quantiles(o));
                    let flat = |v: &[Vec<f64>]| v.iter().flatten().copied().collect::<Vec<_>>();
                    verify::compare(
                        "robust fit quantiles",
                        &[cols, 3],
                        &flat(&q),
                        &flat(&want),
                        crate::stats::quantile_tolerance(),
                    )
                    .map_err(Error::VerifyMismatch)?;
                }
                let (center, inv) = reference::derive::derive(
                    self.derive_rule(dtype).unwrap(),
                    &vec![Moments::EMPTY; cols],
                    Some(&q),
                    None,
                );
                FitState::Robust { center, scale: inv.iter().map(|i| 1.0 / i).collect() }
            }
            _ => {
                let m = moments_prescaled(gpu, tensor, &g, &prescale_of(ranges))?;
                if gpu.verify() == Verify::Always {
                    verify_moments(&format!("{} fit", self.method()), &tensor.to_vec(gpu)?, &g, &m)?;
                }
                FitState::Moments(m)
            }
        };
        Ok(FittedScaler { scaler: *self, n_features: Some(cols), state, input_dtype: dtype })
    }

    /// Fit and transform the same data, uploading it once.
    pub fn fit_transform<T: Element>(&self, gpu: &Gpu, x: ArrayView2<T>) -> Result<(FittedScaler, Array2<f32>)> {
        self.fit_transform_as(gpu, x, T::DTYPE)
    }

    /// [`Scaler::fit_transform`] of values that stand for data of `dtype`.
    pub fn fit_transform_as<T: Element>(
        &self,
        gpu: &Gpu,
        x: ArrayView2<T>,
        dtype: InputDtype,
    ) -> Result<(FittedScaler, Array2<f32>)> {
        let (r, offsets) = self.fit_input(x);
        let ranges = self.check_input(r.view())?;
        let tensor = upload(gpu, r.view())?;
        let fitted = self.fit_tensor(gpu, &tensor, r.dim(), &ranges, dtype)?.shifted_by(offsets.as_deref());
        if offsets.is_none() || self.subtracts_center() {
            // The data just fitted, uploaded once.
            let out = fitted.apply(gpu, r.view(), &tensor, false, &ranges, offsets.as_deref())?;
            return Ok((fitted, out));
        }
        let out = fitted.transform(gpu, x)?;
        Ok((fitted, out))
    }

    /// Fit and transform a GPU tensor `(n_samples, n_features)` entirely on the GPU,
    /// recorded into the caller's encoder: statistics, parameters and the transform
    /// never leave the device. Returns the output tensor and the per-feature center
    /// and inverse scale buffers.
    ///
    /// Unlike [`Scaler::fit`], which scales each column by a power of two on the host
    /// when its magnitudes approach float32's limit, this path cannot look at the data:
    /// a standard-scaled column whose values spread beyond about 1.8e19 (its variance
    /// overflows float32), or a min-max column whose range overflows, comes out NaN,
    /// never silently wrong.
    pub fn fit_transform_gpu(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuTensor,
    ) -> Result<(GpuTensor, Option<crate::kernels::derive::Derived>)> {
        self.validate()?;
        let (rows, cols) = matrix_shape(input.shape())?;
        let g = Grouping::Columns { rows, cols };
        let output = GpuTensor::empty(gpu, input.shape())?;
        let Some(rule) = self.derive_rule(InputDtype::Float32) else {
            let args = AffineArgs {
                mode: AffineMode::Log1p,
                center: None,
                center_lo: None,
                inv_scale: None,
                gamma_beta: None,
                clip: None,
            };
            record_affine(gpu, encoder, input, &output, &g, &args)?;
            return Ok((output, None));
        };
        // Robust scaling needs only the quantiles (and the counts they come with).
        let (moments, quant) = match self {
            Scaler::Robust(o) => {
                let (q, counts) = select::record_quantiles_counted(gpu, encoder, input, &g, &robust_quantiles(o))?;
                (counts, Some(q))
            }
            _ => (record_moments(gpu, encoder, input, &g)?, None),
        };
        let derived = record_derive(gpu, encoder, &moments, cols, rule, quant.as_ref(), None)?;
        let gb = self.gamma_beta(cols).map(|(g, b)| (upload_vec(gpu, &g), upload_vec(gpu, &b)));
        let gb = match gb {
            Some((g, b)) => Some((g?, b?)),
            None => None,
        };
        let args = AffineArgs {
            mode: AffineMode::Forward,
            center: Some(&derived.center),
            center_lo: Some(&derived.center_lo),
            inv_scale: Some(&derived.inv_scale),
            gamma_beta: gb.as_ref().map(|(g, b)| (g.buffer(), b.buffer())),
            clip: self.clip_range(),
        };
        record_affine(gpu, encoder, input, &output, &g, &args)?;
        Ok((output, Some(derived)))
    }

    /// γ and β of the affine step (min-max's `MAX − MIN` and `MIN`).
    fn gamma_beta(&self, cols: usize) -> Option<GammaBeta> {
        match self {
            Scaler::MinMax(o) => {
                let (lo, hi) = o.feature_range;
                Some((vec![hi - lo; cols], vec![lo; cols]))
            }
            _ => None,
        }
    }

    fn clip_range(&self) -> Option<(f32, f32)> {
        match self {
            Scaler::MinMax(o) if o.clip => Some((o.feature_range.0 as f32, o.feature_range.1 as f32)),
            _ => None,
        }
    }
}

/// A float64 center as the float32 pair the affine kernel takes: the center rounded,
/// and the rest rounded (zero where the center is not finite).
fn center_split(center: &[f64]) -> (Vec<f64>, Vec<f64>) {
    center
        .iter()
        .map(|&c| {
            let hi = c as f32 as f64;
            let lo = if c.is_finite() && hi.is_finite() { (c - hi) as f32 as f64 } else { 0.0 };
            (hi, lo)
        })
        .unzip()
}

/// Per-feature γ and β of the affine step.
type GammaBeta = (Vec<f64>, Vec<f64>);

fn matrix_shape(shape: &[usize]) -> Result<(usize, usize)> {
    match *shape {
        [n] => Ok((n, 1)),
        [n, f] => Ok((n, f)),
        _ => Err(Error::Shape(format!("scalers take a 1-D or 2-D (n_samples, n_features) input, got shape {shape:?}"))),
    }
}

impl FittedScaler {
    /// The statistics of data `offsets` higher than those it was fitted on (a fit of
    /// the host's residuals, see `offsets.rs`): means, min, max and robust centers move
    /// by each column's offset; variances and scales stay.
    fn shifted_by(mut self, offsets: Option<&[f64]>) -> Self {
        let Some(off) = offsets else { return self };
        match (&mut self.state, self.scaler) {
            (FitState::Moments(m), _) => {
                for (s, &c) in m.iter_mut().zip(off) {
                    *s = s.shifted(c);
                }
            }
            (FitState::Robust { center, .. }, Scaler::Robust(o)) if o.with_centering => {
                for (x, &c) in center.iter_mut().zip(off) {
                    *x += c;
                }
            }
            _ => {}
        }
        self
    }

    /// Per-feature (center, inverse scale) in float64.
    pub fn center_inv_scale(&self) -> Option<(Vec<f64>, Vec<f64>)> {
        match &self.state {
            FitState::Moments(m) => {
                Some(reference::derive::derive(self.scaler.derive_rule(self.input_dtype)?, m, None, None))
            }
            FitState::Robust { center, scale } => Some((center.clone(), scale.iter().map(|s| 1.0 / s).collect())),
            FitState::Stateless => None,
        }
    }

    /// The affine step's per-feature float64 parameters for a transform: center, inverse
    /// scale and, where the scaler has them or a feature needs them, γ and β.
    ///
    /// The kernel computes `(x − center)·inv_scale·γ + β` in float32. A feature whose
    /// values lie farther than float32's largest value from its center (a range beyond
    /// ±3.4e38, e.g. min-max over [−3e38, 3e38]) would overflow in `x − center`, and its
    /// inverse scale may be below float32's normal range (flushed to 0 by most GPUs).
    /// Such a feature is centred on its midpoint instead, with β taking up the shift, and
    /// its inverse scale moved up by 2^32 with γ down by 2^−32: the same affine map,
    /// with every intermediate finite and normal.
    ///
    /// The center goes to the kernel as a float32 pair ([`center_split`]), so a center
    /// far larger than the scale (1e4 + N(0, 0.1)) does not move the output by its
    /// float32 rounding (~5e-3 there).
    ///
    /// `ranges` is each feature's (min, max) over the values the forward map will see
    /// (a transform's input); without it, the fitted min and max where the state has
    /// them (the inverse map's output range).
    ///
    /// `offsets`: what the host took off each column of the input (see `offsets.rs`);
    /// the kernel then takes `center − offset` off the residuals.
    fn affine_params(
        &self,
        cols: usize,
        ranges: Option<&[(f64, f64)]>,
        offsets: Option<&[f64]>,
    ) -> Option<(Vec<f64>, Vec<f64>, Option<GammaBeta>)> {
        let (mut center, mut inv) = self.center_inv_scale()?;
        if let Some(off) = offsets {
            for (c, o) in center.iter_mut().zip(off) {
                *c -= o;
            }
        }
        let mut gb = self.scaler.gamma_beta(cols);
        let fitted: Vec<(f64, f64)>;
        let ranges = match (ranges, &self.state) {
            (Some(r), _) => Some(r),
            (None, FitState::Moments(m)) => {
                fitted = m.iter().map(|s| (s.min, s.max)).collect();
                Some(fitted.as_slice())
            }
            _ => None,
        };
        // The midpoint a wide feature is centred on.
        let midpoint = |j: usize| -> Option<f64> {
            let c = center[j];
            if !(c.is_finite() && inv[j].is_finite()) {
                return None;
            }
            let &(lo, hi) = ranges.and_then(|r| r.get(j))?;
            (lo.is_finite() && hi.is_finite() && (hi - c > f32::MAX as f64 || c - lo > f32::MAX as f64))
                .then_some((lo * 0.5 + hi * 0.5) as f32 as f64)
        };
        let wide: Vec<(usize, f64)> = (0..cols.min(center.len())).filter_map(|j| midpoint(j).map(|c| (j, c))).collect();
        if wide.is_empty() {
            return Some((center, inv, gb));
        }
        let (gamma, beta) = gb.get_or_insert_with(|| (vec![1.0; cols], vec![0.0; cols]));
        for (j, c) in wide {
            beta[j] += gamma[j] * (c - center[j]) * inv[j];
            center[j] = c;
            let inv32 = inv[j] as f32;
            if inv[j] != 0.0 && (inv32 == 0.0 || inv32.is_subnormal()) {
                inv[j] *= 2f64.powi(32);
                gamma[j] *= 2f64.powi(-32);
            }
        }
        Some((center, inv, gb))
    }

    fn check_width(&self, cols: usize) -> Result<()> {
        match self.n_features {
            Some(f) if f != cols && !matches!(self.scaler, Scaler::Log(_)) => Err(Error::Shape(format!(
                "the scaler was fitted on {f} features but the input has {cols} (shape (n, {cols}))"
            ))),
            _ => Ok(()),
        }
    }

    /// Transform `x` with the fitted statistics.
    pub fn transform<T: Element>(&self, gpu: &Gpu, x: ArrayView2<T>) -> Result<Array2<f32>> {
        let (x, offsets) = self.scaler.transform_input(x);
        let ranges = self.scaler.check_input(x.view())?;
        self.check_width(x.ncols())?;
        let tensor = upload(gpu, x.view())?;
        self.apply(gpu, x.view(), &tensor, false, &ranges, offsets.as_deref())
    }

    /// Undo [`FittedScaler::transform`] (`expm1` for log).
    pub fn inverse_transform<T: Element>(&self, gpu: &Gpu, x: ArrayView2<T>) -> Result<Array2<f32>> {
        let x = to_f32(x);
        let ranges = column_ranges(x.view())?;
        self.check_width(x.ncols())?;
        let tensor = upload(gpu, x.view())?;
        self.apply(gpu, x.view(), &tensor, true, &ranges, None)
    }

    /// Fold another batch into the statistics (standard, min-max, max-abs), as
    /// scikit-learn's `partial_fit`: the result equals one fit over all batches.
    pub fn partial_fit<T: Element>(&mut self, gpu: &Gpu, x: ArrayView2<T>) -> Result<()> {
        let FitState::Moments(m) = &self.state else {
            return Err(Error::InvalidParameter(format!("the {} scaler has no partial_fit", self.scaler.method())));
        };
        self.check_width(x.ncols())?;
        let more = self.scaler.fit(gpu, x)?;
        let FitState::Moments(b) = more.state else { unreachable!("same scaler, same state kind") };
        self.state = FitState::Moments(crate::stats::merge_all(m, &b));
        Ok(())
    }

    /// Record the transform (or inverse) of a GPU tensor into the caller's encoder.
    pub fn transform_gpu(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuTensor,
        inverse: bool,
    ) -> Result<GpuTensor> {
        self.record_apply(gpu, encoder, input, inverse, None, None)
    }

    /// [`FittedScaler::transform_gpu`], with the input's per-feature (min, max) when the
    /// host knows them (see [`FittedScaler::affine_params`]).
    fn record_apply(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuTensor,
        inverse: bool,
        ranges: Option<&[(f64, f64)]>,
        offsets: Option<&[f64]>,
    ) -> Result<GpuTensor> {
        let (rows, cols) = matrix_shape(input.shape())?;
        self.check_width(cols)?;
        let g = Grouping::Columns { rows, cols };
        let output = GpuTensor::empty(gpu, input.shape())?;
        let Some((center, inv, gb)) = self.affine_params(cols, ranges, offsets) else {
            let mode = if inverse { AffineMode::Expm1 } else { AffineMode::Log1p };
            let args =
                AffineArgs { mode, center: None, center_lo: None, inv_scale: None, gamma_beta: None, clip: None };
            record_affine(gpu, encoder, input, &output, &g, &args)?;
            return Ok(output);
        };
        let (hi, lo) = center_split(&center);
        let (c, c_lo, i) = (upload_vec(gpu, &hi)?, upload_vec(gpu, &lo)?, upload_vec(gpu, &inv)?);
        let gb = match gb {
            Some((g, b)) => Some((upload_vec(gpu, &g)?, upload_vec(gpu, &b)?)),
            None => None,
        };
        let args = AffineArgs {
            mode: if inverse { AffineMode::Inverse } else { AffineMode::Forward },
            center: Some(c.buffer()),
            center_lo: Some(c_lo.buffer()),
            inv_scale: Some(i.buffer()),
            gamma_beta: gb.as_ref().map(|(g, b)| (g.buffer(), b.buffer())),
            clip: if inverse { None } else { self.scaler.clip_range() },
        };
        record_affine(gpu, encoder, input, &output, &g, &args)?;
        Ok(output)
    }

    /// Where the inverse map sends each feature's (min, max), in float64.
    fn inverse_image(&self, ranges: &[(f64, f64)]) -> Option<Vec<(f64, f64)>> {
        let (center, inv) = self.center_inv_scale()?;
        let gb = self.scaler.gamma_beta(center.len());
        let back = |j: usize, v: f64| match &gb {
            Some((g, b)) => (v - b[j]) / g[j] / inv[j] + center[j],
            None => v / inv[j] + center[j],
        };
        Some(
            ranges
                .iter()
                .enumerate()
                .map(|(j, &(lo, hi))| {
                    let (a, b) = (back(j, lo), back(j, hi));
                    (a.min(b), a.max(b))
                })
                .collect(),
        )
    }

    /// Transform an uploaded matrix whose column ranges are `x_ranges`, download, and
    /// verify when asked. `offsets`: what the host took off the input's columns.
    fn apply(
        &self,
        gpu: &Gpu,
        x: ArrayView2<f32>,
        tensor: &GpuTensor,
        inverse: bool,
        x_ranges: &[(f64, f64)],
        offsets: Option<&[f64]>,
    ) -> Result<Array2<f32>> {
        // The forward map's input range (for an inverse, its output's) decides which
        // features need a midpoint center.
        let image;
        let ranges = match (&self.state, inverse) {
            (FitState::Stateless, _) => None,
            (_, false) => Some(x_ranges),
            (_, true) => {
                image = self.inverse_image(x_ranges);
                image.as_deref()
            }
        };
        let mut enc = gpu.encoder();
        let out = self.record_apply(gpu, &mut enc, tensor, inverse, ranges, offsets)?;
        gpu.submit_and_wait(enc)?;
        let y = out.to_vec(gpu)?;
        if gpu.verify() == Verify::Always {
            self.verify_apply(x, &y, inverse, ranges, offsets)?;
        }
        Array2::from_shape_vec(x.dim(), y).map_err(|e| Error::Shape(e.to_string()))
    }

    /// The reference twin of [`FittedScaler::apply`], with the same float32 parameters.
    fn verify_apply(
        &self,
        x: ArrayView2<f32>,
        y: &[f32],
        inverse: bool,
        ranges: Option<&[(f64, f64)]>,
        offsets: Option<&[f64]>,
    ) -> Result<()> {
        let (rows, cols) = x.dim();
        let g = Grouping::Columns { rows, cols };
        let data: Vec<f32> = x.iter().copied().collect();
        let gpu_out: Vec<f64> = y.iter().map(|&v| v as f64).collect();
        let what = format!("{} {}", self.scaler.method(), if inverse { "inverse_transform" } else { "transform" });
        let shape = [rows, cols];
        let Some((center, inv, gb)) = self.affine_params(cols, ranges, offsets) else {
            let (mode, f): (_, fn(f64) -> f64) =
                if inverse { (AffineMode::Expm1, reference::expm1) } else { (AffineMode::Log1p, reference::log1p) };
            let _ = mode;
            let want: Vec<f64> = data.iter().map(|&v| f(v as f64)).collect();
            return verify::compare_with(&what, &shape, &gpu_out, &want, |i| {
                if inverse {
                    verify::expm1_tolerance(data[i] as f64)
                } else {
                    verify::log1p_tolerance()
                }
            })
            .map_err(Error::VerifyMismatch);
        };
        let round = |v: &[f64]| v.iter().map(|&x| x as f32 as f64).collect::<Vec<_>>();
        // The float32 parameters the kernel got: the center as its pair (hi + lo).
        let (hi, lo) = center_split(&center);
        let center: Vec<f64> = hi.iter().zip(&lo).map(|(h, l)| h + l).collect();
        let inv = round(&inv);
        let gb = gb.map(|(g, b)| (round(&g), round(&b)));
        let spec = reference::AffineSpec {
            mode: if inverse { AffineMode::Inverse } else { AffineMode::Forward },
            center: &center,
            inv_scale: &inv,
            gamma_beta: gb.as_ref().map(|(g, b)| (g.as_slice(), b.as_slice())),
            clip: if inverse { None } else { self.scaler.clip_range().map(|(a, b)| (a as f64, b as f64)) },
        };
        let want = reference::affine(&data, &g, &spec);
        verify::compare_with(&what, &shape, &gpu_out, &want, |i| {
            let j = i % cols;
            let (gj, bj) = gb.as_ref().map(|(g, b)| (g[j], b[j])).unwrap_or((1.0, 0.0));
            if inverse {
                verify::inverse_affine_tolerance(data[i] as f64, center[j], inv[j], gj, bj)
            } else {
                verify::affine_tolerance(data[i] as f64, center[j], inv[j], gj, bj)
            }
        })
        .map_err(Error::VerifyMismatch)
    }
}
