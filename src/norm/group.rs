//! Group normalization (PyTorch's `GroupNorm`).

use ndarray::{ArrayD, ArrayViewD};

use super::batch::check_config;
use super::core::{self, Plan, StatsMode};
use super::{channel_dims, GpuGrads, Grads, LayerState, SavedStats};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::segments::Grouping;

/// Options of [`GroupNorm`], PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupNormConfig {
    /// Added to the variance inside the square root (default 1e-5).
    pub eps: f64,
    /// Learnable γ (init 1) and β (init 0) per channel (default true).
    pub affine: bool,
    /// Input is `(N, *, C)` instead of `(N, C, *)` (default false).
    pub channels_last: bool,
}

impl Default for GroupNormConfig {
    fn default() -> Self {
        GroupNormConfig { eps: 1e-5, affine: true, channels_last: false }
    }
}

impl GroupNormConfig {
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    pub fn affine(mut self, affine: bool) -> Self {
        self.affine = affine;
        self
    }
    pub fn channels_last(mut self, channels_last: bool) -> Self {
        self.channels_last = channels_last;
        self
    }
}

/// Group normalization: per sample and group of `C / G` channels; γ/β per channel.
/// Same computation in training and eval.
#[derive(Debug)]
pub struct GroupNorm {
    config: GroupNormConfig,
    num_groups: usize,
    num_channels: usize,
    state: LayerState,
}

impl GroupNorm {
    /// `num_channels` must be divisible by `num_groups`.
    pub fn new(gpu: &Gpu, num_groups: usize, num_channels: usize, config: GroupNormConfig) -> Result<Self> {
        check_config(config.eps, None)?;
        if num_groups == 0 || !num_channels.is_multiple_of(num_groups) {
            return Err(Error::InvalidParameter(format!(
                "group norm: the number of channels ({num_channels}) must be divisible by the number of groups ({num_groups})"
            )));
        }
        Ok(GroupNorm {
            config,
            num_groups,
            num_channels,
            state: LayerState::new(gpu, num_channels, config.affine, None)?,
        })
    }

    pub fn config(&self) -> &GroupNormConfig {
        &self.config
    }

    pub fn num_groups(&self) -> usize {
        self.num_groups
    }

    pub fn num_channels(&self) -> usize {
        self.num_channels
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

    /// The grouping of an input shape, checking its channel count.
    pub fn grouping(&self, shape: &[usize]) -> Result<Grouping> {
        let (n, c, spatial) = channel_dims(shape, self.config.channels_last, "group norm")?;
        if c != self.num_channels {
            return Err(Error::Shape(format!(
                "group norm: input of shape {shape:?} has {c} channels, the layer has {}",
                self.num_channels
            )));
        }
        Ok(Grouping::Groups { n, c, spatial, groups: self.num_groups, channels_last: self.config.channels_last })
    }

    fn plan(&self, shape: &[usize]) -> Result<Plan> {
        Ok(Plan {
            what: "group norm",
            shape: shape.to_vec(),
            grouping: self.grouping(shape)?,
            eps: self.config.eps,
            stats: StatsMode::Batch { update: None },
        })
    }

    pub fn forward(&self, gpu: &Gpu, x: ArrayViewD<f32>) -> Result<ArrayD<f32>> {
        Ok(self.forward_saved(gpu, x)?.0)
    }

    pub fn forward_saved(&self, gpu: &Gpu, x: ArrayViewD<f32>) -> Result<(ArrayD<f32>, SavedStats)> {
        core::forward_host(gpu, &self.plan(x.shape())?, &self.state, x, None)
    }

    pub fn forward_gpu(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        x: &GpuTensor,
    ) -> Result<(GpuTensor, SavedStats)> {
        core::record_forward(gpu, encoder, &self.plan(x.shape())?, &self.state, x, None)
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
