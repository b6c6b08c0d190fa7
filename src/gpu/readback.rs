//! The one readback path of the crate: copy to a mappable staging buffer, wait, read.

use super::Gpu;
use crate::error::{Error, Result};

/// Bytes of one readback step: a large read goes through one staging buffer of this
/// size, reused, rather than one as large as the read, whose fresh pages a software
/// adapter's host memory faults in (and the kernel zeroes) one by one: reading back
/// 1e8 floats on lavapipe (a VM's pages) took ~0.5 s more that way.
const STAGING_BYTES: u64 = 64 << 20;

/// Read `size` bytes at `offset` of a buffer (which needs `COPY_SRC`) back to the host.
pub fn read_buffer(gpu: &Gpu, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
    read_values(gpu, buffer, offset, size)
}

/// [`read_buffer`] as values of `T` (`size` a multiple of their size), copied once,
/// from the mapped staging memory into the vector returned.
pub fn read_values<T: bytemuck::Pod>(gpu: &Gpu, buffer: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<T>> {
    let elem = std::mem::size_of::<T>() as u64;
    debug_assert_eq!(size % elem, 0, "a readback of whole values");
    if size == 0 {
        return Ok(Vec::new());
    }
    // Steps of whole values and whole copy units.
    let unit = elem * wgpu::COPY_BUFFER_ALIGNMENT / gcd(elem, wgpu::COPY_BUFFER_ALIGNMENT);
    let step = (STAGING_BYTES / unit * unit).max(unit).min(size.next_multiple_of(unit));
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("gpunorm readback"),
        size: step,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut out: Vec<T> = Vec::with_capacity((size / elem) as usize);
    let mut done = 0;
    while done < size {
        let n = (size - done).min(step);
        let padded = n.next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        let mut encoder = gpu.encoder();
        encoder.copy_buffer_to_buffer(buffer, offset + done, &staging, 0, padded);
        gpu.queue.submit(Some(encoder.finish()));
        let slice = staging.slice(..padded);
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
        let bytes = &view[..n as usize];
        match bytemuck::try_cast_slice::<u8, T>(bytes) {
            Ok(values) => out.extend_from_slice(values),
            Err(_) => out.extend(bytes.chunks_exact(elem as usize).map(bytemuck::pod_read_unaligned::<T>)),
        }
        drop(view);
        staging.unmap();
        done += n;
    }
    Ok(out)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
