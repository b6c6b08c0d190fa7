//! PyTorch's normalization layers on the GPU: [`BatchNorm`], [`LayerNorm`],
//! [`GroupNorm`], [`InstanceNorm`], forward and backward.
//!
//! All four are the one mechanism of the crate: statistics per segment
//! ([`crate::kernels::moments`]), then `(x − mean) · invstd · γ + β` per element
//! ([`crate::kernels::affine`]); they differ only in the [`Grouping`] of the input
//! (a channel over batch and space, a row, a group of channels of one sample, one
//! channel of one sample). The backward pass is one fused reduction over `(dy, x)`
//! and one elementwise pass ([`crate::kernels::backward`]).
//!
//! Two ways in:
//! - ndarray: `forward(gpu, x.view())` → `ArrayD<f32>`; `forward_saved` also returns
//!   the [`SavedStats`] that `backward(gpu, x, dy, &saved)` needs. These submit, wait
//!   and read back; under [`crate::Verify::Always`] each checks itself against the
//!   float64 twin ([`crate::reference::norms`]) and returns
//!   [`crate::Error::VerifyMismatch`] naming the worst element.
//! - GPU: `forward_gpu(gpu, &mut encoder, &tensor)` records into the caller's encoder
//!   and returns the output tensor and the saved statistics as GPU buffers; nothing is
//!   read back, and running statistics are updated in place in the layer's GPU buffers.
//!
//! Layouts are `(N, C, *)`, or `(N, *, C)` with `channels_last` (batch, group and
//! instance norm). Layer norm normalizes over the last K dims.
//!
//! ```no_run
//! use gpunorm::norm::{BatchNorm, BatchNormConfig};
//! use ndarray::ArrayD;
//! let gpu = gpunorm::Gpu::new()?;
//! let mut bn = BatchNorm::new(&gpu, 1, BatchNormConfig::default())?;
//! bn.set_gamma_beta(&gpu, &[2.0], &[3.0])?;
//! let x = ArrayD::from_shape_vec(vec![5, 1], vec![10.0f32, 20.0, 30.0, 40.0, 50.0]).unwrap();
//! let y = bn.forward(&gpu, x.view())?;
//! assert!((y[[0, 0]] - (3.0 - 2.0 * 20.0 / 200f32.sqrt())).abs() < 1e-5);
//! assert_eq!(bn.running_mean(&gpu)?.unwrap(), vec![3.0]);
//! # Ok::<(), gpunorm::Error>(())
//! ```
//!
//! Statistics merge across devices ([`sync`]): per-channel [`crate::Moments`] from
//! several shards merge exactly into the statistics of all the data, and
//! [`BatchNorm::forward_with_moments`] normalizes with them (SyncBatchNorm).

mod batch;
mod check;
mod core;
mod group;
mod instance;
mod layer;
pub mod sync;

pub use batch::{BatchNorm, BatchNormConfig};
pub use check::{backward_tolerances, forward_tolerance};
pub use group::{GroupNorm, GroupNormConfig};
pub use instance::{InstanceNorm, InstanceNormConfig};
pub use layer::{LayerNorm, LayerNormConfig};

use ndarray::ArrayD;

use crate::error::{Error, Result};
use crate::gpu::{read_values, Gpu, GpuTensor};
use crate::segments::Grouping;

/// What a forward pass keeps for its backward: the per-segment mean and `1/sqrt(var + eps)`
/// it normalized with (GPU buffers of f32), and how the input was grouped.
#[derive(Clone, Debug)]
pub struct SavedStats {
    pub(crate) grouping: Grouping,
    pub(crate) mean: wgpu::Buffer,
    /// What rounding the mean to float32 lost (see `kernels::backward::SavedCenter`).
    pub(crate) mean_lo: wgpu::Buffer,
    pub(crate) invstd: wgpu::Buffer,
    pub(crate) batch_stats: bool,
    pub(crate) eps: f64,
    pub(crate) shape: Vec<usize>,
    /// Eval: the running stats the statistics came from (for verification).
    pub(crate) running: Option<(wgpu::Buffer, wgpu::Buffer)>,
}

impl SavedStats {
    /// The saved center and scale as the backward kernels take them.
    pub(crate) fn center(&self) -> crate::kernels::backward::SavedCenter<'_> {
        crate::kernels::backward::SavedCenter { mean: &self.mean, mean_lo: Some(&self.mean_lo), invstd: &self.invstd }
    }

    /// Check that the backward's `input` and `grad_output` have the forward's input
    /// shape (`what` opens the error message).
    pub(crate) fn check_shapes(&self, what: &str, input: &[usize], grad_output: &[usize]) -> Result<()> {
        for (name, shape) in [("input", input), ("grad_output", grad_output)] {
            if shape != self.shape.as_slice() {
                return Err(Error::Shape(format!(
                    "{what}: {name} of shape {shape:?} does not match the forward's input shape {:?}",
                    self.shape
                )));
            }
        }
        Ok(())
    }

    /// The grouping of the statistics (`Channels` for batch norm and for running statistics).
    pub fn grouping(&self) -> &Grouping {
        &self.grouping
    }

    /// Whether the forward used the batch's statistics (train-mode backward) rather than
    /// running statistics (eval-mode backward).
    pub fn uses_batch_stats(&self) -> bool {
        self.batch_stats
    }

    /// The shape of the forward's input.
    pub fn input_shape(&self) -> &[usize] {
        &self.shape
    }

    /// Per-segment mean, as a GPU buffer of f32.
    pub fn mean_buffer(&self) -> &wgpu::Buffer {
        &self.mean
    }

    /// Per-segment `1/sqrt(var + eps)`, as a GPU buffer of f32.
    pub fn invstd_buffer(&self) -> &wgpu::Buffer {
        &self.invstd
    }

    /// Read the per-segment means back.
    pub fn mean(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        download(gpu, &self.mean, self.grouping.num_segments())
    }

    /// Read the per-segment `1/sqrt(var + eps)` back.
    pub fn invstd(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        download(gpu, &self.invstd, self.grouping.num_segments())
    }
}

/// Gradients on the host. `grad_gamma`/`grad_beta` are `None` without an affine transform.
#[derive(Clone, Debug, PartialEq)]
pub struct Grads {
    pub grad_input: ArrayD<f32>,
    pub grad_gamma: Option<ArrayD<f32>>,
    pub grad_beta: Option<ArrayD<f32>>,
}

/// Gradients as GPU tensors (recorded, not yet computed until the encoder is submitted).
#[derive(Clone, Debug)]
pub struct GpuGrads {
    pub grad_input: GpuTensor,
    pub grad_gamma: Option<GpuTensor>,
    pub grad_beta: Option<GpuTensor>,
}

impl GpuGrads {
    /// Read every gradient back.
    pub fn to_host(&self, gpu: &Gpu) -> Result<Grads> {
        Ok(Grads {
            grad_input: self.grad_input.to_array(gpu)?,
            grad_gamma: self.grad_gamma.as_ref().map(|t| t.to_array(gpu)).transpose()?,
            grad_beta: self.grad_beta.as_ref().map(|t| t.to_array(gpu)).transpose()?,
        })
    }
}

/// A new storage buffer holding `data`.
pub(crate) fn upload(gpu: &Gpu, label: &str, data: &[f32]) -> Result<wgpu::Buffer> {
    let buf = gpu.storage_buffer(label, data.len() as u64 * 4)?;
    if !data.is_empty() {
        gpu.queue().write_buffer(&buf, 0, bytemuck::cast_slice(data));
    }
    Ok(buf)
}

/// Read `n` f32 of a buffer back.
pub(crate) fn download(gpu: &Gpu, buf: &wgpu::Buffer, n: usize) -> Result<Vec<f32>> {
    read_values(gpu, buf, 0, n as u64 * 4)
}

/// The learnable and running state of a layer, in GPU buffers of one device.
#[derive(Debug)]
pub(crate) struct LayerState {
    /// The [`Gpu::id`] of the context the buffers live on.
    gpu_id: u64,
    /// (γ, β), `n_params` each.
    pub(crate) affine: Option<(wgpu::Buffer, wgpu::Buffer)>,
    pub(crate) n_params: usize,
    /// (running mean, running var), `n_running` each.
    pub(crate) running: Option<(wgpu::Buffer, wgpu::Buffer)>,
    pub(crate) n_running: usize,
}

impl LayerState {
    /// γ = 1, β = 0 when `affine`; running mean 0 and var 1 when `n_running` is given.
    pub(crate) fn new(gpu: &Gpu, n_params: usize, affine: bool, n_running: Option<usize>) -> Result<Self> {
        let affine = if affine {
            Some((upload(gpu, "gamma", &vec![1.0; n_params])?, upload(gpu, "beta", &vec![0.0; n_params])?))
        } else {
            None
        };
        let running = match n_running {
            Some(c) => Some((upload(gpu, "running_mean", &vec![0.0; c])?, upload(gpu, "running_var", &vec![1.0; c])?)),
            None => None,
        };
        Ok(LayerState { gpu_id: gpu.id(), affine, n_params, running, n_running: n_running.unwrap_or(0) })
    }

    /// Reject a `Gpu` other than the one the layer's buffers live on.
    pub(crate) fn check_device(&self, gpu: &Gpu) -> Result<()> {
        gpu.check_owner(Some(self.gpu_id), "this layer")
    }

    pub(crate) fn set_affine(&self, gpu: &Gpu, gamma: &[f32], beta: &[f32]) -> Result<()> {
        self.check_device(gpu)?;
        let Some((g, b)) = &self.affine else {
            return Err(Error::InvalidParameter(
                "the layer was built without an affine transform (affine = false)".into(),
            ));
        };
        for (name, v) in [("gamma", gamma), ("beta", beta)] {
            if v.len() != self.n_params {
                return Err(Error::Shape(format!("{name} has {} values, expected {}", v.len(), self.n_params)));
            }
        }
        gpu.queue().write_buffer(g, 0, bytemuck::cast_slice(gamma));
        gpu.queue().write_buffer(b, 0, bytemuck::cast_slice(beta));
        Ok(())
    }

    pub(crate) fn affine_host(&self, gpu: &Gpu) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        self.check_device(gpu)?;
        match &self.affine {
            Some((g, b)) => Ok(Some((download(gpu, g, self.n_params)?, download(gpu, b, self.n_params)?))),
            None => Ok(None),
        }
    }

    pub(crate) fn set_running(&self, gpu: &Gpu, mean: &[f32], var: &[f32]) -> Result<()> {
        self.check_device(gpu)?;
        let Some((m, v)) = &self.running else {
            return Err(Error::InvalidParameter(
                "the layer keeps no running statistics (track_running_stats = false)".into(),
            ));
        };
        for (name, x) in [("running_mean", mean), ("running_var", var)] {
            if x.len() != self.n_running {
                return Err(Error::Shape(format!("{name} has {} values, expected {}", x.len(), self.n_running)));
            }
        }
        gpu.queue().write_buffer(m, 0, bytemuck::cast_slice(mean));
        gpu.queue().write_buffer(v, 0, bytemuck::cast_slice(var));
        Ok(())
    }

    pub(crate) fn running_host(&self, gpu: &Gpu) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        self.check_device(gpu)?;
        match &self.running {
            Some((m, v)) => Ok(Some((download(gpu, m, self.n_running)?, download(gpu, v, self.n_running)?))),
            None => Ok(None),
        }
    }
}

/// `(n, c, spatial)` of an `(N, C, *)` or, channels-last, `(N, *, C)` shape.
pub(crate) fn channel_dims(shape: &[usize], channels_last: bool, what: &str) -> Result<(usize, usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::Shape(format!(
            "{what} expects an input of shape {} with at least 2 dims, got {shape:?}",
            if channels_last { "(N, *, C)" } else { "(N, C, *)" }
        )));
    }
    let (c, spatial) = if channels_last {
        (shape[shape.len() - 1], shape[1..shape.len() - 1].iter().product())
    } else {
        (shape[1], shape[2..].iter().product())
    };
    if shape.contains(&0) {
        return Err(Error::Shape(format!("{what}: input of shape {shape:?} has no elements")));
    }
    Ok((shape[0], c, spatial))
}
