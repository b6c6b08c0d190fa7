//! Instance normalization (PyTorch's `InstanceNorm1d/2d/3d`).

use ndarray::{ArrayD, ArrayViewD};

use super::batch::check_config;
use super::core::{self, Plan, StatsMode};
use super::{channel_dims, GpuGrads, Grads, LayerState, SavedStats};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::segments::Grouping;

/// Options of [`InstanceNorm`], PyTorch's defaults (no affine, no running stats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InstanceNormConfig {
    /// Added to the variance inside the square root (default 1e-5).
    pub eps: f64,
    /// Running-stat factor (default `Some(0.1)`); `None` is a cumulative average.
    pub momentum: Option<f64>,
    /// Learnable γ (init 1) and β (init 0) per channel (default false).
    pub affine: bool,
    /// Keep per-channel running mean/var, used in eval (default false).
    pub track_running_stats: bool,
    /// Input is `(N, *, C)` instead of `(N, C, *)` (default false).
    pub channels_last: bool,
}

impl Default for InstanceNormConfig {
    fn default() -> Self {
        InstanceNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: false,
            track_running_stats: false,
            channels_last: false,
        }
    }
}

impl InstanceNormConfig {
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

/// Instance normalization: per sample and channel over the spatial dims. With
/// `track_running_stats`, training updates per-channel running stats (the mean over
/// samples of each instance's update, as PyTorch) and eval normalizes with them.
#[derive(Debug)]
pub struct InstanceNorm {
    config: InstanceNormConfig,
    num_features: usize,
    state: LayerState,
    num_batches_tracked: u64,
    training: bool,
}

impl InstanceNorm {
    pub fn new(gpu: &Gpu, num_features: usize, config: InstanceNormConfig) -> Result<Self> {
        check_config(config.eps, config.momentum)?;
        let running = config.track_running_stats.then_some(num_features);
        Ok(InstanceNorm {
            config,
            num_features,
            state: LayerState::new(gpu, num_features, config.affine, running)?,
            num_batches_tracked: 0,
            training: true,
        })
    }

    pub fn config(&self) -> &InstanceNormConfig {
        &self.config
    }

    pub fn num_features(&self) -> usize {
        self.num_features
    }

    pub fn training(&self) -> bool {
        self.training
    }

    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    pub fn num_batches_tracked(&self) -> u64 {
        self.num_batches_tracked
    }

    pub fn set_gamma_beta(&mut self, gpu: &Gpu, gamma: &[f32], beta: &[f32]) -> Result<()> {
        self.state.set_affine(gpu, gamma, beta)
    }

    pub fn gamma_beta(&self, gpu: &Gpu) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        self.state.affine_host(gpu)
    }

    pub fn gamma_beta_buffers(&self) -> Option<(&wgpu::Buffer, &wgpu::Buffer)> {
        self.state.affine.as_ref().map(|(g, b)| (g, b))
    }

    pub fn set_running_stats(&mut self, gpu: &Gpu, mean: &[f32], var: &[f32]) -> Result<()> {
        self.state.set_running(gpu, mean, var)
    }

    pub fn running_mean(&self, gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        Ok(self.state.running_host(gpu)?.map(|r| r.0))
    }

    pub fn running_var(&self, gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        Ok(self.state.running_host(gpu)?.map(|r| r.1))
    }

    pub fn running_buffers(&self) -> Option<(&wgpu::Buffer, &wgpu::Buffer)> {
        self.state.running.as_ref().map(|(m, v)| (m, v))
    }

    /// The grouping (`Instances`) of an input shape, checking its channel count.
    pub fn grouping(&self, shape: &[usize]) -> Result<Grouping> {
        let (n, c, spatial) = channel_dims(shape, self.config.channels_last, "instance norm")?;
        if c != self.num_features {
            return Err(Error::Shape(format!(
                "instance norm: input of shape {shape:?} has {c} channels, the layer has {}",
                self.num_features
            )));
        }
        Ok(Grouping::Instances { n, c, spatial, channels_last: self.config.channels_last })
    }

    fn plan(&self, shape: &[usize]) -> Result<(Plan, u64)> {
        let grouping = self.grouping(shape)?;
        let use_input_stats = self.training || !self.config.track_running_stats;
        let mut tracked = self.num_batches_tracked;
        let stats = if use_input_stats {
            if self.training && grouping.segment_len() <= 1 {
                return Err(Error::Shape(format!(
                    "expected more than 1 spatial element when training, got input size {shape:?}"
                )));
            }
            let update = if self.training && self.config.track_running_stats {
                tracked += 1;
                Some(self.config.momentum.unwrap_or(1.0 / tracked as f64))
            } else {
                None
            };
            StatsMode::Instance { update }
        } else {
            let Grouping::Instances { n, c, spatial, channels_last } = grouping else { unreachable!() };
            StatsMode::Running { grouping: Grouping::Channels { n, c, spatial, channels_last } }
        };
        let plan = Plan { what: "instance norm", shape: shape.to_vec(), grouping, eps: self.config.eps, stats };
        Ok((plan, tracked))
    }

    pub fn forward(&mut self, gpu: &Gpu, x: ArrayViewD<f32>) -> Result<ArrayD<f32>> {
        Ok(self.forward_saved(gpu, x)?.0)
    }

    pub fn forward_saved(&mut self, gpu: &Gpu, x: ArrayViewD<f32>) -> Result<(ArrayD<f32>, SavedStats)> {
        let (plan, tracked) = self.plan(x.shape())?;
        let out = core::forward_host(gpu, &plan, &self.state, x, None)?;
        self.num_batches_tracked = tracked;
        Ok(out)
    }

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

    pub fn backward(
        &self,
        gpu: &Gpu,
        x: ArrayViewD<f32>,
        grad_output: ArrayViewD<f32>,
        saved: &SavedStats,
    ) -> Result<Grads> {
        core::backward_host(gpu, &self.state, x, grad_output, saved, None)
    }

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
