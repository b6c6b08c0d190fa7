//! Layer normalization (PyTorch's `LayerNorm`).

use ndarray::{ArrayD, ArrayViewD};

use super::batch::check_config;
use super::core::{self, Plan, StatsMode};
use super::{GpuGrads, Grads, LayerState, SavedStats};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::segments::Grouping;

/// Options of [`LayerNorm`], PyTorch's defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormConfig {
    /// Added to the variance inside the square root (default 1e-5).
    pub eps: f64,
    /// Learnable γ (init 1) and β (init 0) of the normalized shape (default true).
    pub elementwise_affine: bool,
}

impl Default for LayerNormConfig {
    fn default() -> Self {
        LayerNormConfig { eps: 1e-5, elementwise_affine: true }
    }
}

impl LayerNormConfig {
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    pub fn elementwise_affine(mut self, affine: bool) -> Self {
        self.elementwise_affine = affine;
        self
    }
}

/// Layer normalization over the last dims of the input (`normalized_shape`), with
/// per-element γ and β of that shape. Same computation in training and eval.
#[derive(Debug)]
pub struct LayerNorm {
    config: LayerNormConfig,
    normalized_shape: Vec<usize>,
    state: LayerState,
}

impl LayerNorm {
    /// A layer normalizing over trailing dims equal to `normalized_shape`.
    pub fn new(gpu: &Gpu, normalized_shape: &[usize], config: LayerNormConfig) -> Result<Self> {
        check_config(config.eps, None)?;
        let len: usize = normalized_shape.iter().product();
        if normalized_shape.is_empty() || len == 0 {
            return Err(Error::Shape(format!("layer norm: normalized shape {normalized_shape:?} must be non-empty")));
        }
        Ok(LayerNorm {
            config,
            normalized_shape: normalized_shape.to_vec(),
            state: LayerState::new(gpu, len, config.elementwise_affine, None)?,
        })
    }

    pub fn config(&self) -> &LayerNormConfig {
        &self.config
    }

    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }

    /// Set γ and β (flattened, `normalized_shape`'s element count each).
    pub fn set_gamma_beta(&mut self, gpu: &Gpu, gamma: &[f32], beta: &[f32]) -> Result<()> {
        self.state.set_affine(gpu, gamma, beta)
    }

    pub fn gamma_beta(&self, gpu: &Gpu) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        self.state.affine_host(gpu)
    }

    pub fn gamma_beta_buffers(&self) -> Option<(&wgpu::Buffer, &wgpu::Buffer)> {
        self.state.affine.as_ref().map(|(g, b)| (g, b))
    }

    /// The grouping (`Rows`) of an input shape, checking its trailing dims.
    pub fn grouping(&self, shape: &[usize]) -> Result<Grouping> {
        let k = self.normalized_shape.len();
        if shape.len() < k || shape[shape.len() - k..] != self.normalized_shape[..] {
            return Err(Error::Shape(format!(
                "layer norm: input of shape {shape:?} does not end with the normalized shape {:?}",
                self.normalized_shape
            )));
        }
        let len: usize = self.normalized_shape.iter().product();
        let rows: usize = shape[..shape.len() - k].iter().product();
        if rows == 0 {
            return Err(Error::Shape(format!("layer norm: input of shape {shape:?} has no elements")));
        }
        Ok(Grouping::Rows { rows, len })
    }

    fn plan(&self, shape: &[usize]) -> Result<Plan> {
        let grouping = self.grouping(shape)?;
        Ok(Plan {
            what: "layer norm",
            shape: shape.to_vec(),
            grouping,
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
        let mut g = core::backward_host(gpu, &self.state, x, grad_output, saved, None)?;
        // dγ/dβ have the normalized shape.
        for t in [&mut g.grad_gamma, &mut g.grad_beta].into_iter().flatten() {
            *t = t
                .clone()
                .into_shape_with_order(self.normalized_shape.clone())
                .map_err(|e| Error::Shape(e.to_string()))?;
        }
        Ok(g)
    }

    pub fn backward_gpu(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        x: &GpuTensor,
        grad_output: &GpuTensor,
        saved: &SavedStats,
    ) -> Result<GpuGrads> {
        let mut g = core::record_backward(gpu, encoder, &self.state, x, grad_output, saved, None)?;
        for t in [&mut g.grad_gamma, &mut g.grad_beta].into_iter().flatten() {
            *t = t.reshaped(&self.normalized_shape)?;
        }
        Ok(g)
    }
}
