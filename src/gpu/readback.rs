//! The one readback path of the crate: copy to a mappable staging buffer, wait, read.

use super::Gpu;
use crate::error::{Error, Result};

/// Read `size` bytes at `offset` of a buffer (which needs `COPY_SRC`) back to the host.
pub fn read_buffer(gpu: &Gpu, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
    if size == 0 {
        return Ok(Vec::new());
    }
    let padded = size.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("gpunorm readback"),
        size: padded,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.encoder();
    encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, padded);
    gpu.queue.submit(Some(encoder.finish()));
    let slice = staging.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Gpu(format!("waiting for readback: {e}")))?;
    gpu.check_errors()?;
    rx.recv()
        .map_err(|_| Error::Gpu("readback callback was dropped".into()))?
        .map_err(|e| Error::Gpu(format!("mapping the readback buffer: {e}")))?;
    let view = slice.get_mapped_range().map_err(|e| Error::Gpu(format!("reading the mapped buffer: {e}")))?;
    let mut out = view[..size as usize].to_vec();
    drop(view);
    staging.unmap();
    out.truncate(size as usize);
    Ok(out)
}
