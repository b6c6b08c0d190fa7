//! GPU tensors: a storage buffer of f32 in C order plus its shape.

use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::{read_values, Gpu};
use crate::error::{Error, Result};

/// A C-order f32 tensor in a GPU storage buffer. The buffer may be the caller's own
/// ([`GpuTensor::from_buffer`]); gpunorm only reads or writes its first `numel` floats.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    buffer: Arc<wgpu::Buffer>,
    shape: Vec<usize>,
    /// The `Gpu` context that made the buffer (`None`: the caller's own buffer).
    gpu_id: Option<u64>,
}

impl GpuTensor {
    /// Wrap a caller's buffer (needs `STORAGE`, and `COPY_SRC` to be downloaded) as a tensor
    /// of `shape`. Errors if the buffer is too small.
    pub fn from_buffer(buffer: Arc<wgpu::Buffer>, shape: &[usize]) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if (buffer.size() as usize) < numel * 4 {
            return Err(Error::Shape(format!(
                "buffer of {} bytes cannot hold a tensor of shape {shape:?} ({} bytes)",
                buffer.size(),
                numel * 4
            )));
        }
        if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::InvalidParameter("the buffer needs BufferUsages::STORAGE".into()));
        }
        Ok(GpuTensor { buffer, shape: shape.to_vec(), gpu_id: None })
    }

    /// A new, uninitialised tensor.
    pub fn empty(gpu: &Gpu, shape: &[usize]) -> Result<Self> {
        let numel: usize = shape.iter().product();
        let buffer = gpu.storage_buffer("gpunorm tensor", numel as u64 * 4)?;
        Ok(GpuTensor { buffer: Arc::new(buffer), shape: shape.to_vec(), gpu_id: Some(gpu.id()) })
    }

    /// Upload f32 data in C order.
    pub fn from_slice(gpu: &Gpu, data: &[f32], shape: &[usize]) -> Result<Self> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(Error::Shape(format!("{} values do not fill shape {shape:?}", data.len())));
        }
        let t = Self::empty(gpu, shape)?;
        if !data.is_empty() {
            gpu.queue.write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
        }
        Ok(t)
    }

    /// Upload an ndarray (any layout; copied to C order when needed).
    pub fn from_array(gpu: &Gpu, data: ArrayViewD<f32>) -> Result<Self> {
        let shape = data.shape().to_vec();
        match data.as_slice() {
            Some(s) => Self::from_slice(gpu, s, &shape),
            None => {
                let v: Vec<f32> = data.iter().copied().collect();
                Self::from_slice(gpu, &v, &shape)
            }
        }
    }

    /// Download to the host.
    pub fn to_vec(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.check_owner(self.gpu_id, "the tensor")?;
        read_values(gpu, &self.buffer, 0, self.numel() as u64 * 4)
    }

    /// Download to an ndarray of the tensor's shape.
    pub fn to_array(&self, gpu: &Gpu) -> Result<ArrayD<f32>> {
        let v = self.to_vec(gpu)?;
        ArrayD::from_shape_vec(IxDyn(&self.shape), v).map_err(|e| Error::Shape(e.to_string()))
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The [`Gpu::id`] of the context that made this tensor (`None` for a caller's buffer).
    pub fn gpu_id(&self) -> Option<u64> {
        self.gpu_id
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// The same buffer viewed with another shape of the same size.
    /// The first `shape.iter().product()` elements, as a tensor of `shape` on the same buffer.
    pub(crate) fn prefix(&self, shape: &[usize]) -> Result<Self> {
        if shape.iter().product::<usize>() > self.numel() {
            return Err(Error::Shape(format!("shape {shape:?} is larger than the tensor's {:?}", self.shape)));
        }
        Ok(GpuTensor { buffer: self.buffer.clone(), shape: shape.to_vec(), gpu_id: self.gpu_id })
    }

    pub fn reshaped(&self, shape: &[usize]) -> Result<Self> {
        if shape.iter().product::<usize>() != self.numel() {
            return Err(Error::Shape(format!("cannot view shape {:?} as {shape:?}", self.shape)));
        }
        Ok(GpuTensor { buffer: self.buffer.clone(), shape: shape.to_vec(), gpu_id: self.gpu_id })
    }
}
