//! Reading a kernel's input through a texture on software adapters.
//!
//! lavapipe and GL llvmpipe (Mesa 22.3) load a storage buffer one lane and one
//! component at a time, each value inserted into its vector through the stack: a
//! store-forwarding stall per float (profiled with `perf`: ~80 % of a streaming pass).
//! A texel fetch goes through their texture path, a real vector gather: summing 1e7
//! floats took 35 ms from a storage buffer and 3.5 ms from an `Rgba32Float` texture.
//! So on a software adapter a kernel's vec4 view of its input (or, without one, its
//! floats, one a texel) is first copied into a texture (a memcpy there, ~4.5 ms per
//! 40 MB) and read with `textureLoad`; on a GPU the kernels read the buffer directly
//! and nothing here runs. That stall is the JIT's, on a CPU without AVX-512: with it,
//! the lane-by-lane loads are masked broadcasts and the buffer is the faster source, so
//! there texel reads are off by default (`texel_reads_off_by_default` in gpu/mod.rs;
//! `GPUNORM_TEXEL_READS=on|off` decides either way).
//!
//! The texture is `TEXEL_ROW` texels wide: vec4 `i` of the window is texel
//! `(i % TEXEL_ROW, i / TEXEL_ROW)` (`input_texel` in common.wgsl). One texture per
//! slot is kept and reused (grown as needed): a fresh one per call costs its page
//! faults. Work recorded into one encoder runs in order, so reusing the slot for the
//! next input after a kernel's dispatches is safe.

use std::sync::Arc;

use super::Gpu;
use crate::error::Result;

/// Texels per row of the staging texture (`1 << TEXEL_ROW_LOG2` in common.wgsl).
pub const TEXEL_ROW: u32 = 4096;

/// The pipeline constant that switches a kernel's input loads to the texture.
pub const TEXEL_INPUT: &str = "TEXEL_INPUT";

/// Where a kernel reads an input from: the texture view to bind at the input's texture
/// binding (the staged copy, or a 1×1 stand-in when the kernel reads the buffer), and
/// the pipeline constant's value.
pub struct TexelSource {
    pub view: wgpu::TextureView,
    pub staged: bool,
}

impl TexelSource {
    /// The texture binding.
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::TextureView(&self.view)
    }

    /// The pipeline constant for a kernel reading from this source.
    pub fn constant(&self) -> (&'static str, f64) {
        (TEXEL_INPUT, if self.staged { 1.0 } else { 0.0 })
    }
}

/// Which staging texture a copy goes to. A kernel stages its input right before its
/// own dispatches (`Kernel`); the quantiles' sampling path stages its input once for
/// two passes with other kernels' work in between (the sample's moments and radix
/// passes, which stage the sample), so that copy keeps a texture of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TexelSlot {
    Kernel = 0,
    HeldAcross = 1,
    /// A kernel's second input (dy beside x in the backward pass).
    KernelSecond = 2,
    /// A scalar kernel's input, one float a texel (`R32Float`, see
    /// [`Gpu::stage_scalar_texels`]).
    KernelScalar = 3,
}

impl TexelSlot {
    /// The texture format of the slot: four floats a texel, or one for scalar loads.
    fn format(self) -> wgpu::TextureFormat {
        match self {
            TexelSlot::KernelScalar => wgpu::TextureFormat::R32Float,
            _ => wgpu::TextureFormat::Rgba32Float,
        }
    }

    /// Bytes of one texel of the slot's format.
    fn texel_bytes(self) -> u64 {
        match self {
            TexelSlot::KernelScalar => 4,
            _ => 16,
        }
    }
}

/// The binding number of the texture in every shader (`input_texels` in common.wgsl).
pub const TEXEL_BINDING: u32 = 15;

/// The binding number of a kernel's second input texture (`second_texels`).
pub const SECOND_TEXEL_BINDING: u32 = 14;

/// The binding number of a scalar kernel's input texture (`scalar_texels`).
pub const SCALAR_TEXEL_BINDING: u32 = 13;

impl Gpu {
    /// Whether kernels read their vec4 inputs through a staging texture here.
    pub fn reads_through_texels(&self) -> bool {
        self.is_software() && !self.texel_reads_disabled()
    }

    fn texel_reads_disabled(&self) -> bool {
        *self.texel_reads_off.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Turn the texture path off (`true`) or back on, for tests and benchmarks that
    /// compare the two (it is only ever on for software adapters).
    pub fn set_texel_reads_disabled(&self, off: bool) {
        *self.texel_reads_off.lock().unwrap_or_else(|p| p.into_inner()) = off;
    }

    /// Record a copy of `len` texels of the slot's format (vec4, or one float for
    /// `KernelScalar`) starting at byte `offset` of `buffer` into the staging texture of
    /// `slot`, and return it as a source; or, where the texture path is off or cannot
    /// take this window, the stand-in (the kernel then reads the buffer).
    pub fn stage_texels(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        offset: u64,
        len: u64,
        slot: TexelSlot,
    ) -> Result<TexelSource> {
        let rows = len.div_ceil(TEXEL_ROW as u64);
        if !self.stageable(buffer, offset, len, slot, rows) {
            return Ok(self.unstaged_texels());
        }
        let texture = self.texels_for(slot, rows as u32);
        self.record_texel_copy(encoder, buffer, offset, len, (&texture, slot, 0));
        Ok(TexelSource { view: texture.create_view(&wgpu::TextureViewDescriptor::default()), staged: true })
    }

    /// Stack the first `len` floats of each buffer into the scalar slot, each from a
    /// texel row of its own: buffer j's float i is texel `j·stride + i`. Returns the
    /// source and `stride` (a multiple of TEXEL_ROW), or the stand-in where one of
    /// them cannot be staged.
    pub fn stage_scalar_stack(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        buffers: &[&wgpu::Buffer],
        len: u64,
    ) -> Result<(TexelSource, u32)> {
        let slot = TexelSlot::KernelScalar;
        let rows_each = len.div_ceil(TEXEL_ROW as u64).max(1);
        let rows = rows_each * buffers.len() as u64;
        if buffers.iter().any(|b| !self.stageable(b, 0, len, slot, rows)) {
            return Ok((self.unstaged_texels(), 0));
        }
        let texture = self.texels_for(slot, rows as u32);
        for (j, b) in buffers.iter().enumerate() {
            self.record_texel_copy(encoder, b, 0, len, (&texture, slot, j as u32 * rows_each as u32));
        }
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        Ok((TexelSource { view, staged: true }, (rows_each * TEXEL_ROW as u64) as u32))
    }

    /// Whether `len` texels of the slot's format from byte `offset` of `buffer` can be
    /// staged into a texture `rows` rows high.
    fn stageable(&self, buffer: &wgpu::Buffer, offset: u64, len: u64, slot: TexelSlot, rows: u64) -> bool {
        self.reads_through_texels()
            && len > 0
            && rows <= self.limits.max_texture_dimension_2d as u64
            && offset.is_multiple_of(slot.texel_bytes())
            && offset + len * slot.texel_bytes() <= buffer.size()
    }

    /// Record the copy of `len` texels from byte `offset` of `buffer` into `texture`
    /// (of `slot`'s format) from texel row `row0` on.
    fn record_texel_copy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        offset: u64,
        len: u64,
        (texture, slot, row0): (&wgpu::Texture, TexelSlot, u32),
    ) {
        let full = (len / TEXEL_ROW as u64) as u32;
        let rest = (len % TEXEL_ROW as u64) as u32;
        let row_bytes = TEXEL_ROW as u64 * slot.texel_bytes();
        let copy = |encoder: &mut wgpu::CommandEncoder, at: u64, row: u32, width: u32, height: u32| {
            encoder.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: at,
                        bytes_per_row: Some(row_bytes as u32),
                        rows_per_image: Some(height),
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d { x: 0, y: row0 + row, z: 0 },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            );
        };
        if full > 0 {
            copy(encoder, offset, 0, TEXEL_ROW, full);
        }
        if rest > 0 {
            copy(encoder, offset + full as u64 * row_bytes, full, rest, 1);
        }
    }

    /// [`Gpu::stage_texels`] of `len` floats into the scalar slot (`R32Float`), for a
    /// kernel without a vec4 view of its input (`scalar_texel` in common.wgsl).
    pub fn stage_scalar_texels(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        buffer: &wgpu::Buffer,
        offset: u64,
        len: u64,
    ) -> Result<TexelSource> {
        self.stage_texels(encoder, buffer, offset, len, TexelSlot::KernelScalar)
    }

    /// Stage the same window of two buffers (a kernel's two inputs: slots `Kernel` and
    /// `KernelSecond`): both staged, or, where either cannot be, neither (the kernel
    /// has one switch for both).
    pub fn stage_texel_pair(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        (first, second): (&wgpu::Buffer, &wgpu::Buffer),
        offset: u64,
        len: u64,
    ) -> Result<(TexelSource, TexelSource)> {
        let rows = len.div_ceil(TEXEL_ROW as u64);
        let both = [(first, TexelSlot::Kernel), (second, TexelSlot::KernelSecond)];
        if both.iter().any(|&(b, slot)| !self.stageable(b, offset, len, slot, rows)) {
            return Ok((self.unstaged_texels(), self.unstaged_texels()));
        }
        Ok((
            self.stage_texels(encoder, first, offset, len, TexelSlot::Kernel)?,
            self.stage_texels(encoder, second, offset, len, TexelSlot::KernelSecond)?,
        ))
    }

    /// The source of a kernel that reads its buffer: the stand-in fills the binding.
    pub fn unstaged_texels(&self) -> TexelSource {
        TexelSource { view: self.stand_in_texels(), staged: false }
    }

    /// The texture of a slot, at least `rows` rows high (heights grow by powers of two).
    fn texels_for(&self, slot: TexelSlot, rows: u32) -> Arc<wgpu::Texture> {
        let mut cache = self.texels.lock().unwrap_or_else(|p| p.into_inner());
        let index = slot as usize;
        if cache.len() <= index {
            cache.resize(index + 1, None);
        }
        if let Some(t) = &cache[index] {
            if t.height() >= rows {
                return t.clone();
            }
        }
        let height = rows.next_power_of_two().min(self.limits.max_texture_dimension_2d).max(rows);
        let texture = Arc::new(self.texture(TEXEL_ROW, height, slot.format()));
        cache[index] = Some(texture.clone());
        texture
    }

    fn texture(&self, width: u32, height: u32, format: wgpu::TextureFormat) -> wgpu::Texture {
        self.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("gpunorm input texels"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        })
    }

    /// A 1×1 texture for kernels that read their buffer (the binding must be filled).
    fn stand_in_texels(&self) -> wgpu::TextureView {
        let mut cache = self.stand_in.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get_or_insert_with(|| {
                self.texture(1, 1, wgpu::TextureFormat::Rgba32Float)
                    .create_view(&wgpu::TextureViewDescriptor::default())
            })
            .clone()
    }
}
