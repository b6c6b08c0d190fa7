//! Batch normalization (PyTorch's `BatchNorm1d/2d/3d`).

use ndarray::{ArrayD, ArrayViewD};

use super::core::{self, Plan, StatsMode};
use super::{channel_dims, GpuGrads, Grads, LayerState, SavedStats};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::segments::Grouping;
use crate::stats::Moments;

/// Options of [`BatchNorm`], PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance inside the square root (default 1e-5).
    pub eps: f64,
    /// Running-stat factor (default `Some(0.1)`); `None` is a cumulative average
    /// (factor `1 / num_batches_tracked`).
    pub momentum: Option<f64>,
    /// Learnable γ (init 1) and β (init 0) per channel (default true).
    pub affine: bool,
    /// Keep running mean/var (default true); without, eval mode uses batch statistics.
    pub track_running_stats: bool,
    /// Input is `(N, *, C)` instead of `(N, C, *)` (default false).
    pub channels_last: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
            channels_last: false,
        }
    }
}

impl BatchNormConfig {
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    pub fn momentum(mut self, momentum: Option<f64>) -> Self {
        self.momentum = momentum;
        self
    }
    pub fn affine(mut self, affine: bool) -> Self {
        self.affine = affine;
        self
    }
    pub fn track_running_stats(mut self, track: bool) -> Self {
        self.track_running_stats = track;
        self
    }
    pub fn channels_last(mut self, channels_last: bool) -> Self {
        self.channels_last = channels_last;
        self
    }
}

/// Batch normalization over `(N, C, *)` (or channels-last `(N, *, C)`) input: per
/// channel, the batch's mean and biased variance in training (running stats updated
/// with the unbiased variance), the running stats in eval.
#[derive(Debug)]
pub struct BatchNorm {
    config: BatchNormConfig,
    num_features: usize,
    state: LayerState,
    num_batches_tracked: u64,
    training: bool,
}

impl BatchNorm {
    /// A layer for `num_features` channels whose parameters live on `gpu`, in training mode.
    pub fn new(gpu: &Gpu, num_features: usize, config: BatchNormConfig) -> Result<Self> {
        check_config(config.eps, config.momentum)?;
        let running = config.track_running_stats.then_some(num_features);
        Ok(BatchNorm {
            config,
            num_features,
            state: LayerState::new(gpu, num_features, config.affine, running)?,
            num_batches_tracked: 0,
            training: true,
        })
    }

    pub fn config(&self) -> &BatchNormConfig {
        &self.config
    }

    pub fn num_features(&self) -> usize {
        self.num_features
    }

    pub fn training(&self) -> bool {
        self.training
    }

    /// Training (batch statistics, running stats updated) or eval (running statistics).
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Forward calls in training mode so far (with running stats tracked).
    pub fn num_batches_tracked(&self) -> u64 {
        self.num_batches_tracked
    }

    pub fn set_num_batches_tracked(&mut self, n: u64) {
        self.num_batches_tracked = n;
    }

    /// Set γ and β (`num_features` each); an error without `affine`.
    pub fn set_gamma_beta(&mut self, gpu: &Gpu, gamma: &[f32], beta: &[f32]) -> Result<()> {
        self.state.set_affine(gpu, gamma, beta)
    }

    /// γ and β read back; `None` without `affine`.
    pub fn gamma_beta(&self, gpu: &Gpu) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        self.state.affine_host(gpu)
    }

    /// γ and β as GPU buffers.
    pub fn gamma_beta_buffers(&self) -> Option<(&wgpu::Buffer, &wgpu::Buffer)> {
        self.state.affine.as_ref().map(|(g, b)| (g, b))
    }

    /// Set the running mean and variance; an error without `track_running_stats`.
    pub fn set_running_stats(&mut self, gpu: &Gpu, mean: &[f32], var: &[f32]) -> Result<()> {
        self.state.set_running(gpu, mean, var)
    }

    /// The running mean, read back; `None` without `track_running_stats`.
    pub fn running_mean(&self, gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        Ok(self.state.running_host(gpu)?.map(|r| r.0))
    }

    /// The running variance (unbiased), read back; `None` without `track_running_stats`.
    pub fn running_var(&self, gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        Ok(self.state.running_host(gpu)?.map(|r| r.1))
    }

    /// The running mean and variance as GPU buffers (updated in place by training forwards).
    pub fn running_buffers(&self) -> Option<(&wgpu::Buffer, &wgpu::Buffer)> {
        self.state.running.as_ref().map(|(m, v)| (m, v))
    }

    /// The grouping of an input shape, checking its channel count.
    pub fn grouping(&self, shape: &[usize]) -> Result<Grouping> {
        let (n, c, spatial) = channel_dims(shape, self.config.channels_last, "batch norm")?;
        if c != self.num_features {
            return Err(Error::Shape(format!(
                "batch norm: input of shape {shape:?} has {c} channels, the layer has {}",
                self.num_features
            )));
        }
        Ok(Grouping::Channels { n, c, spatial, channels_last: self.config.channels_last })
    }

    /// The plan of the next forward, and the batch counter it leaves.
    fn plan(&self, shape: &[usize]) -> Result<(Plan, u64)> {
        let grouping = self.grouping(shape)?;
        let use_batch = self.training || !self.config.track_running_stats;
        let mut tracked = self.num_batches_tracked;
        let stats = if use_batch {
            // PyTorch's F.batch_norm refuses this too: a constant channel would give 0/0.
            if self.config.eps <= 0.0 {
                return Err(Error::InvalidParameter(format!(
                    "batch norm eps must be positive when it normalizes with batch statistics (training), got {}",
                    self.config.eps
                )));
            }
            if self.training && grouping.segment_len() <= 1 {
                return Err(Error::Shape(format!(
                    "expected more than 1 value per channel when training, got input size {shape:?}"
                )));
            }
            let update = if self.training && self.config.track_running_stats {
                tracked += 1;
                Some(self.config.momentum.unwrap_or(1.0 / tracked as f64))
            } else {
                None
            };
            StatsMode::Batch { update }
        } else {
            StatsMode::Running { grouping }
        };
        Ok((Plan { what: "batch norm", shape: shape.to_vec(), grouping, eps: self.config.eps, stats }, tracked))
    }

    /// Normalize `x` (ndarray in, ndarray out); updates the running stats in training.
    pub fn forward(&mut self, gpu: &Gpu, x: ArrayViewD<f32>) -> Result<ArrayD<f32>> {
        Ok(self.forward_saved(gpu, x)?.0)
    }

    /// [`BatchNorm::forward`], also returning the statistics that [`BatchNorm::backward`] needs.
    pub fn forward_saved(&mut self, gpu: &Gpu, x: ArrayViewD<f32>) -> Result<(ArrayD<f32>, SavedStats)> {
        let (plan, tracked) = self.plan(x.shape())?;
        let out = core::forward_host(gpu, &plan, &self.state, x, None)?;
        self.num_batches_tracked = tracked;
        Ok(out)
    }

    /// Record the forward pass into `encoder` (no readback). The running stats in the
    /// layer's GPU buffers are updated when the encoder runs.
    pub fn forward_gpu(
        &mut self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        x: &GpuTensor,
    ) -> Result<(GpuTensor, SavedStats)> {
        let (plan, tracked) = self.plan(x.shape())?;
        let out = core::record_forward(gpu, encoder, &plan, &self.state, x, None)?;
        self.num_batches_tracked = tracked;
        Ok(out)
    }

    /// Normalize with given per-channel statistics (e.g. merged from shards on several
    /// devices, [`super::sync`]) instead of this batch's own: SyncBatchNorm. In training
    /// the running stats are updated with them. `moments` has one state per channel.
    pub fn forward_with_moments(
        &mut self,
        gpu: &Gpu,
        x: ArrayViewD<f32>,
        moments: &[Moments],
    ) -> Result<(ArrayD<f32>, SavedStats)> {
        let (plan, tracked) = self.sync_plan(x.shape(), moments)?;
        let out = core::forward_host(gpu, &plan, &self.state, x, Some(moments))?;
        self.num_batches_tracked = tracked;
        Ok(out)
    }

    /// [`BatchNorm::forward_with_moments`] recorded into `encoder`.
    pub fn forward_gpu_with_moments(
        &mut self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        x: &GpuTensor,
        moments: &[Moments],
    ) -> Result<(GpuTensor, SavedStats)> {
        let (plan, tracked) = self.sync_plan(x.shape(), moments)?;
        let buf = core::upload_moments(gpu, moments)?;
        let out = core::record_forward(gpu, encoder, &plan, &self.state, x, Some(&buf))?;
        self.num_batches_tracked = tracked;
        Ok(out)
    }

    fn sync_plan(&self, shape: &[usize], moments: &[Moments]) -> Result<(Plan, u64)> {
        if moments.len() != self.num_features {
            return Err(Error::Shape(format!(
                "{} channel statistics given, the layer has {} channels",
                moments.len(),
                self.num_features
            )));
        }
        let grouping = self.grouping(shape)?;
        if self.training && moments.iter().any(|m| m.count + m.nan_count <= 1) {
            return Err(Error::Shape(
                "expected more than 1 value per channel when training, got merged statistics of 1 value".into(),
            ));
        }
        let mut tracked = self.num_batches_tracked;
        let update = if self.training && self.config.track_running_stats {
            tracked += 1;
            Some(self.config.momentum.unwrap_or(1.0 / tracked as f64))
        } else {
            None
        };
        let plan = Plan {
            what: "batch norm",
            shape: shape.to_vec(),
            grouping,
            eps: self.config.eps,
            stats: StatsMode::Batch { update },
        };
        Ok((plan, tracked))
    }

    /// Gradients from the forward's input `x`, the output's gradient `grad_output` and
    /// the saved statistics (train or eval formula, as the forward ran).
    pub fn backward(
        &self,
        gpu: &Gpu,
        x: ArrayViewD<f32>,
        grad_output: ArrayViewD<f32>,
        saved: &SavedStats,
    ) -> Result<Grads> {
        core::backward_host(gpu, &self.state, x, grad_output, saved, None)
    }

    /// The backward of a batch split across shards (SyncBatchNorm, see [`super::sync`]):
    /// this shard's `x`, `grad_output` and `saved` (from
    /// [`BatchNorm::forward_with_moments`] in training) with the whole batch's merged
    /// gradient sums. Gives this shard's part of the gradient one device would compute
    /// over the whole batch, and the whole batch's dγ and dβ.
    pub fn backward_with_sums(
        &self,
        gpu: &Gpu,
        x: ArrayViewD<f32>,
        grad_output: ArrayViewD<f32>,
        saved: &SavedStats,
        sums: &[super::sync::GradSums],
    ) -> Result<Grads> {
        if sums.len() != self.num_features {
            return Err(Error::Shape(format!(
                "{} channels of gradient sums given, the layer has {} channels",
                sums.len(),
                self.num_features
            )));
        }
        let count = sums.first().map_or(0, |s| s.count);
        if count == 0 || sums.iter().any(|s| s.count != count) {
            return Err(Error::InvalidParameter(format!(
                "merged gradient sums must count the same positive number of values in every channel, got {:?}",
                sums.iter().map(|s| s.count).collect::<Vec<_>>()
            )));
        }
        let flat: Vec<f32> = sums.iter().flat_map(|s| [s.sum_dy as f32, s.sum_dy_xhat as f32]).collect();
        let buf = gpu.storage_buffer("merged gradient sums", flat.len() as u64 * 4)?;
        gpu.queue().write_buffer(&buf, 0, bytemuck::cast_slice(&flat));
        let merged = core::MergedSums { sums: buf, count: count as usize };
        core::backward_host(gpu, &self.state, x, grad_output, saved, Some(&merged))
    }

    /// Record the backward pass into `encoder`.
    pub fn backward_gpu(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        x: &GpuTensor,
        grad_output: &GpuTensor,
        saved: &SavedStats,
    ) -> Result<GpuGrads> {
        core::record_backward(gpu, encoder, &self.state, x, grad_output, saved, None)
    }
}

/// `eps >= 0` and finite; momentum in `[0, 1]`.
pub(crate) fn check_config(eps: f64, momentum: Option<f64>) -> Result<()> {
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(Error::InvalidParameter(format!("eps must be a finite value >= 0, got {eps}")));
    }
    if let Some(m) = momentum {
        if !(0.0..=1.0).contains(&m) {
            return Err(Error::InvalidParameter(format!("momentum must lie in [0, 1], got {m}")));
        }
    }
    Ok(())
}
