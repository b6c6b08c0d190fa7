//! Batch-norm statistics across devices (SyncBatchNorm).
//!
//! Each shard of a batch (on its own device, or machine) computes per-channel
//! [`Moments`] with [`channel_moments`]; the states merge exactly
//! ([`Moments::merge`], Chan et al.) with [`merge_shards`] — the step a distributed
//! runtime's all-reduce would carry — and every shard then normalizes its own data
//! with the merged statistics through [`super::BatchNorm::forward_with_moments`],
//! which gives the output one device would compute over all the data.
//!
//! ```no_run
//! use gpunorm::norm::{sync, BatchNorm, BatchNormConfig};
//! # fn shards() -> Vec<(gpunorm::Gpu, ndarray::ArrayD<f32>)> { unimplemented!() }
//! let shards = shards(); // (device, its part of the batch)
//! let parts: Vec<_> = shards.iter().map(|(gpu, x)| sync::channel_moments(gpu, x.view(), false)).collect::<Result<_, _>>()?;
//! let merged = sync::merge_shards(&parts)?;
//! for (gpu, x) in &shards {
//!     let mut bn = BatchNorm::new(gpu, merged.len(), BatchNormConfig::default())?;
//!     let (y, _saved) = bn.forward_with_moments(gpu, x.view(), &merged)?;
//! }
//! # Ok::<(), gpunorm::Error>(())
//! ```
//!
//! The backward goes the same way: each shard reads back its per-channel gradient sums
//! ([`channel_grad_sums`]: its values, Σdy and Σdy·x̂), the sums add up over the shards
//! ([`merge_grad_sums`], the second all-reduce), and each shard's
//! [`super::BatchNorm::backward_with_sums`] gives its part of the gradient one device
//! would compute over the whole batch, and the whole batch's dγ and dβ.

use ndarray::ArrayViewD;

use super::{channel_dims, SavedStats};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuTensor};
use crate::kernels::backward::{record_sums, StatIndex};
use crate::kernels::moments::{download_moments, record_moments};
use crate::segments::Grouping;
use crate::stats::{merge_all, verify_moments, Moments};
use crate::verify::Verify;

/// The per-channel grouping of an `(N, C, *)` (or channels-last `(N, *, C)`) shape.
pub fn channel_grouping(shape: &[usize], channels_last: bool) -> Result<Grouping> {
    let (n, c, spatial) = channel_dims(shape, channels_last, "batch norm statistics")?;
    Ok(Grouping::Channels { n, c, spatial, channels_last })
}

/// Per-channel statistics of one shard, read back as mergeable float64 states.
/// NaN is counted in `nan_count` (a channel with NaN normalizes to NaN after merging).
pub fn channel_moments(gpu: &Gpu, x: ArrayViewD<f32>, channels_last: bool) -> Result<Vec<Moments>> {
    let g = channel_grouping(x.shape(), channels_last)?;
    let t = GpuTensor::from_array(gpu, x.view())?;
    let mut encoder = gpu.encoder();
    let buf = record_moments(gpu, &mut encoder, &t, &g)?;
    gpu.submit_and_wait(encoder)?;
    let m = download_moments(gpu, &buf, g.num_segments())?;
    if gpu.verify() == Verify::Always {
        let data: Vec<f32> = x.iter().copied().collect();
        verify_moments("batch norm shard statistics", &data, &g, &m)?;
    }
    Ok(m)
}

/// Record the per-channel statistics of a GPU tensor (a buffer of
/// [`crate::kernels::moments::MomentsGpu`], one per channel), for callers that carry
/// the states themselves.
pub fn record_channel_moments(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    x: &GpuTensor,
    channels_last: bool,
) -> Result<wgpu::Buffer> {
    let g = channel_grouping(x.shape(), channels_last)?;
    record_moments(gpu, encoder, x, &g)
}

/// Merge the per-channel states of several shards (in order; exact up to rounding).
pub fn merge_shards(shards: &[Vec<Moments>]) -> Result<Vec<Moments>> {
    fold_shards(shards, "statistics", merge_all)
}

/// Fold the per-channel lists of several shards in order with `merge`, after checking
/// that they all have as many channels (`what` names the lists in errors).
fn fold_shards<T: Clone>(shards: &[Vec<T>], what: &str, merge: impl Fn(&[T], &[T]) -> Vec<T>) -> Result<Vec<T>> {
    let Some(first) = shards.first() else {
        return Err(Error::InvalidParameter(format!("no shard {what} to merge")));
    };
    let mut merged = first.clone();
    for (i, s) in shards.iter().enumerate().skip(1) {
        if s.len() != merged.len() {
            return Err(Error::Shape(format!(
                "shard {i} has {what} for {} channels, shard 0 for {}",
                s.len(),
                merged.len()
            )));
        }
        merged = merge(&merged, s);
    }
    Ok(merged)
}

/// One shard's (or, merged, a whole batch's) gradient sums of one channel for a
/// synchronized batch-norm backward.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradSums {
    /// Values of the channel.
    pub count: u64,
    /// Σ dy.
    pub sum_dy: f64,
    /// Σ dy·x̂, x̂ from the forward's (merged) statistics.
    pub sum_dy_xhat: f64,
}

/// Per-channel gradient sums of one shard: `x` and `grad_output` of its part of the
/// batch, `saved` from its [`super::BatchNorm::forward_with_moments`] in training.
pub fn channel_grad_sums(
    gpu: &Gpu,
    x: ArrayViewD<f32>,
    grad_output: ArrayViewD<f32>,
    saved: &SavedStats,
) -> Result<Vec<GradSums>> {
    let g = saved.grouping;
    let Grouping::Channels { n, spatial, .. } = g else {
        return Err(Error::InvalidParameter("gradient sums: statistics of a batch-norm forward expected".into()));
    };
    if !saved.batch_stats {
        return Err(Error::InvalidParameter(
            "gradient sums: the forward used running statistics; a synchronized backward needs batch statistics".into(),
        ));
    }
    saved.check_shapes("gradient sums", x.shape(), grad_output.shape())?;
    let xt = GpuTensor::from_array(gpu, x)?;
    let dyt = GpuTensor::from_array(gpu, grad_output)?;
    let mut encoder = gpu.encoder();
    let sums = record_sums(gpu, &mut encoder, &xt, &dyt, &g, StatIndex::PerSegment { div: 1 }, saved.center(), None)?;
    gpu.submit_and_wait(encoder)?;
    let raw = super::download(gpu, &sums, 2 * g.num_segments())?;
    Ok(raw
        .chunks(2)
        .map(|s| GradSums { count: (n * spatial) as u64, sum_dy: s[0] as f64, sum_dy_xhat: s[1] as f64 })
        .collect())
}

/// Add the per-channel gradient sums of several shards.
pub fn merge_grad_sums(shards: &[Vec<GradSums>]) -> Result<Vec<GradSums>> {
    fold_shards(shards, "gradient sums", |a, b| {
        a.iter()
            .zip(b)
            .map(|(a, b)| GradSums {
                count: a.count + b.count,
                sum_dy: a.sum_dy + b.sum_dy,
                sum_dy_xhat: a.sum_dy_xhat + b.sum_dy_xhat,
            })
            .collect()
    })
}
