//! Host side of `shaders/select.wgsl`: exact per-segment quantiles by radix select.
//! (Placeholder until the radix-select kernel lands: computes on the CPU twin.)

use crate::error::Result;
use crate::gpu::{Gpu, GpuTensor};
use crate::segments::Grouping;

/// Per segment, the requested quantiles (numpy's linear method, NaN ignored;
/// NaN for an all-NaN segment). `result[s][j]` is quantile `qs[j]` of segment `s`.
pub fn quantiles(gpu: &Gpu, input: &GpuTensor, grouping: &Grouping, qs: &[f64]) -> Result<Vec<Vec<f64>>> {
    let data = input.to_vec(gpu)?;
    Ok(crate::reference::quantiles(&data, grouping, qs))
}
