//! Per-dispatch GPU time, for tuning: while a profile is open, every dispatch that
//! [`Gpu::dispatch`] records gets timestamps around its compute pass.

use std::time::Duration;

use super::{read_values, Gpu};
use crate::error::{Error, Result};

/// Dispatches one profile can time.
const CAPACITY: u32 = 2048;

pub(crate) struct Profiler {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    /// Entry point and workgroups of each timed dispatch, in recording order.
    entries: Vec<(String, u32)>,
}

/// One timed dispatch.
#[derive(Clone, Debug)]
pub struct DispatchTime {
    pub entry: String,
    pub workgroups: u32,
    pub time: Duration,
    /// When it began, after the profile's first dispatch began (gaps between
    /// dispatches show what runs outside them: clears, copies, scheduling).
    pub start: Duration,
}

impl Profiler {
    /// The timestamp writes for the next dispatch, if there is room.
    pub(crate) fn next(&mut self, entry: &str, workgroups: u32) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let i = self.entries.len() as u32;
        if i >= CAPACITY {
            return None;
        }
        self.entries.push((entry.to_string(), workgroups));
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        })
    }
}

impl Gpu {
    /// Start timing every dispatch (needs `TIMESTAMP_QUERY`). Close with
    /// [`Gpu::finish_profile`] on the encoder that holds the work, then submit it and
    /// call [`Gpu::read_profile`].
    pub fn start_profile(&self) -> Result<()> {
        if !self.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::Gpu(format!("adapter '{}' has no timestamp queries", self.info.name)));
        }
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("gpunorm profile"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * CAPACITY,
        });
        let resolve = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gpunorm profile"),
            size: 16 * CAPACITY as u64,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        *self.profiler.lock().unwrap_or_else(|p| p.into_inner()) = Some(Profiler { set, resolve, entries: Vec::new() });
        Ok(())
    }

    /// Resolve the open profile's timestamps into `encoder` (record this last).
    pub fn finish_profile(&self, encoder: &mut wgpu::CommandEncoder) {
        let guard = self.profiler.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = guard.as_ref() {
            let n = 2 * p.entries.len() as u32;
            if n > 0 {
                encoder.resolve_query_set(&p.set, 0..n, &p.resolve, 0);
            }
        }
    }

    /// Close the profile and read its times (after the encoder was submitted).
    pub fn read_profile(&self) -> Result<Vec<DispatchTime>> {
        let p = self.profiler.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(p) = p else { return Ok(Vec::new()) };
        if p.entries.is_empty() {
            return Ok(Vec::new());
        }
        let ticks: Vec<u64> = read_values(self, &p.resolve, 0, 16 * p.entries.len() as u64)?;
        let period = self.queue.get_timestamp_period() as f64;
        let t0 = ticks[0];
        Ok(p.entries
            .into_iter()
            .zip(ticks.chunks(2))
            .map(|((entry, workgroups), t)| DispatchTime {
                entry,
                workgroups,
                time: Duration::from_nanos((t[1].saturating_sub(t[0]) as f64 * period) as u64),
                start: Duration::from_nanos((t[0].saturating_sub(t0) as f64 * period) as u64),
            })
            .collect())
    }
}
