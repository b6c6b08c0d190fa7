//! The GPU context: adapter choice, device and queue, limits, cached pipelines.
//!
//! Built once and shared (`Gpu` is `Send + Sync`); every compute pipeline is created
//! on first use and cached for the life of the context, so no shader is compiled
//! twice. Callers who own a device pass it in with [`Gpu::from_device`].

mod profile;
mod readback;
mod shaders;
mod tensor;
mod texels;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use profile::DispatchTime;
pub use readback::{read_buffer, read_values};
pub use shaders::{network_sizes, Shader};
pub use tensor::GpuTensor;
pub use texels::{TexelSlot, TexelSource, SCALAR_TEXEL_BINDING, SECOND_TEXEL_BINDING, TEXEL_BINDING};

use crate::error::{Error, Result};
use crate::verify::Verify;

/// Options for [`Gpu::with_options`]. `Default` reads nothing from the environment;
/// [`GpuOptions::from_env`] honours `GPUNORM_BACKEND` / `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Restrict to these backends (`None`: all).
    pub backends: Option<wgpu::Backends>,
    /// Choose the first adapter whose name contains this (case-insensitive).
    pub adapter_name: Option<String>,
    /// Check every operation against the CPU reference.
    pub verify: Verify,
}

impl GpuOptions {
    /// Options from `GPUNORM_BACKEND` (or `WGPU_BACKEND`) and `WGPU_ADAPTER_NAME`.
    pub fn from_env() -> Result<Self> {
        let backend = std::env::var("GPUNORM_BACKEND").or_else(|_| std::env::var("WGPU_BACKEND")).ok();
        let backends = match backend {
            Some(b) => parse_backends(&b)?,
            None => None,
        };
        let adapter_name = std::env::var("WGPU_ADAPTER_NAME").ok().filter(|s| !s.is_empty());
        Ok(GpuOptions { backends, adapter_name, verify: Verify::Never })
    }
}

/// Parse a backend name list (`auto`, `vulkan`, `metal`, `dx12`, `gl`, comma-separated).
/// `auto` (or empty) means all backends.
pub fn parse_backends(s: &str) -> Result<Option<wgpu::Backends>> {
    let mut out = wgpu::Backends::empty();
    for name in s.split(',').map(|x| x.trim().to_ascii_lowercase()) {
        out |= match name.as_str() {
            "" | "auto" | "all" => return Ok(None),
            "vulkan" | "vk" => wgpu::Backends::VULKAN,
            "metal" | "mtl" => wgpu::Backends::METAL,
            "dx12" | "d3d12" => wgpu::Backends::DX12,
            "gl" | "gles" | "opengl" => wgpu::Backends::GL,
            other => {
                return Err(Error::InvalidParameter(format!(
                    "unknown backend '{other}': expected auto, vulkan, metal, dx12 or gl"
                )))
            }
        };
    }
    Ok(Some(out))
}

/// A cached pipeline: shader, entry point and pipeline constants (`name=value,...`).
type PipelineKey = (Shader, &'static str, String);

/// A GPU device with gpunorm's pipelines.
pub struct Gpu {
    /// Unique per context in this process: what tensors and layers check they belong to.
    id: u64,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    errors: Arc<Mutex<Vec<String>>>,
    max_chunk_elements: Mutex<Option<u64>>,
    max_workgroups_per_dim: Mutex<Option<u32>>,
    candidate_slots: Mutex<Option<u32>>,
    count_ties: Mutex<Option<bool>>,
    networks: Mutex<Option<bool>>,
    software_paths: Mutex<Option<bool>>,
    profiler: Mutex<Option<profile::Profiler>>,
    /// Staging textures of kernel inputs by slot, and the stand-in (see texels.rs).
    texels: Mutex<Vec<Option<Arc<wgpu::Texture>>>>,
    stand_in: Mutex<Option<wgpu::TextureView>>,
    texel_reads_off: Mutex<bool>,
    verify: Verify,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu").field("adapter", &self.info.name).field("backend", &self.info.backend).finish()
    }
}

/// Adapter preference: hardware first, then software; Vulkan before GL among equals.
fn adapter_rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (kind, backend)
}

fn backend_names(b: wgpu::Backends) -> String {
    let mut v = Vec::new();
    for (flag, name) in [
        (wgpu::Backends::VULKAN, "vulkan"),
        (wgpu::Backends::METAL, "metal"),
        (wgpu::Backends::DX12, "dx12"),
        (wgpu::Backends::GL, "gl"),
    ] {
        if b.contains(flag) {
            v.push(name);
        }
    }
    v.join(", ")
}

impl Gpu {
    /// The best adapter under the environment's choices (`GPUNORM_BACKEND`, `WGPU_BACKEND`,
    /// `WGPU_ADAPTER_NAME`): a hardware GPU if there is one, else a software adapter.
    pub fn new() -> Result<Self> {
        Self::with_options(GpuOptions::from_env()?)
    }

    /// The best adapter under explicit options.
    pub fn with_options(opts: GpuOptions) -> Result<Self> {
        pollster::block_on(Self::with_options_async(opts))
    }

    async fn with_options_async(opts: GpuOptions) -> Result<Self> {
        let backends = opts.backends.unwrap_or(wgpu::Backends::all());
        // GL is asked only when Vulkan/Metal/DX12 offer no hardware adapter: its EGL
        // probing is slow and noisy, and a hardware GPU is found without it.
        let primary = backends - wgpu::Backends::GL;
        let mut adapters = Self::adapters(primary, &opts).await;
        let has_hardware = adapters.first().is_some_and(|a| a.get_info().device_type != wgpu::DeviceType::Cpu);
        if !has_hardware && backends.contains(wgpu::Backends::GL) {
            adapters.extend(Self::adapters(wgpu::Backends::GL, &opts).await);
            adapters.sort_by_key(|a| adapter_rank(&a.get_info()));
        }
        let mut last_err = None;
        for adapter in adapters {
            match Self::from_adapter(&adapter, opts.verify).await {
                Ok(gpu) => return Ok(gpu),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            let mut tried = backend_names(backends);
            if let Some(n) = &opts.adapter_name {
                tried.push_str(&format!("; adapter name containing '{n}'"));
            }
            Error::NoAdapter { tried }
        }))
    }

    /// The adapters of some backends that match the name filter, best first.
    async fn adapters(backends: wgpu::Backends, opts: &GpuOptions) -> Vec<wgpu::Adapter> {
        if backends.is_empty() {
            return Vec::new();
        }
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let mut adapters = instance.enumerate_adapters(backends).await;
        if let Some(name) = &opts.adapter_name {
            let name = name.to_lowercase();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&name));
        }
        adapters.sort_by_key(|a| adapter_rank(&a.get_info()));
        adapters
    }

    async fn from_adapter(adapter: &wgpu::Adapter, verify: Verify) -> Result<Self> {
        // Ask for everything the adapter offers: larger bindings mean fewer chunks.
        let limits = adapter.limits();
        let wanted = wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY;
        let features = adapter.features() & wanted;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("gpunorm"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("could not create a device on '{}': {e}", adapter.get_info().name)))?;
        let mut gpu = Self::from_device(device, queue, adapter.get_info());
        gpu.verify = verify;
        Ok(gpu)
    }

    /// Wrap a device and queue that the caller owns. gpunorm records its work into the
    /// caller's command encoders and buffers; nothing is read back unless asked.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(e.to_string());
        }));
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Gpu {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            limits: device.limits(),
            features: device.features(),
            device,
            queue,
            info,
            modules: Mutex::default(),
            pipelines: Mutex::default(),
            errors,
            max_chunk_elements: Mutex::new(None),
            candidate_slots: Mutex::new(None),
            count_ties: Mutex::new(None),
            networks: Mutex::new(None),
            max_workgroups_per_dim: Mutex::new(None),
            software_paths: Mutex::new(None),
            profiler: Mutex::new(None),
            texels: Mutex::default(),
            stand_in: Mutex::default(),
            texel_reads_off: Mutex::new(texel_reads_off_by_default()),
            verify: Verify::Never,
        }
    }

    /// Check every operation against the float64 CPU reference from now on (or not).
    pub fn set_verify(&mut self, verify: Verify) {
        self.verify = verify;
    }

    pub fn verify(&self) -> Verify {
        self.verify
    }

    /// This context's identity (unique in the process). Tensors made with a `Gpu`, and
    /// norm layers, belong to it: using them with another context is an error, not a
    /// wgpu panic (two contexts may even number their resources alike).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Check that something made with the context `owner` is used with this one.
    pub fn check_owner(&self, owner: Option<u64>, what: &str) -> Result<()> {
        match owner {
            Some(id) if id != self.id => Err(Error::InvalidParameter(format!(
                "{what} was created with another Gpu context than the one passed in; use each tensor and layer \
                 with the Gpu that made it"
            ))),
            _ => Ok(()),
        }
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    pub fn features(&self) -> wgpu::Features {
        self.features
    }

    /// Whether the adapter is a software rasterizer (lavapipe, llvmpipe, WARP).
    /// Whether the adapter runs on the CPU (lavapipe, llvmpipe, WARP): the kernels then
    /// take their software-adapter paths. [`Gpu::set_software_paths`] overrides it.
    pub fn is_software(&self) -> bool {
        let forced = *self.software_paths.lock().unwrap_or_else(|p| p.into_inner());
        forced.unwrap_or(self.info.device_type == wgpu::DeviceType::Cpu)
    }

    /// Take the software-adapter paths (`Some(true)`), the GPU paths (`Some(false)`: lane
    /// interleaving, workgroup trees, many workgroups) or whichever fits the adapter
    /// (`None`), so that tests on a software adapter reach the GPU paths too.
    pub fn set_software_paths(&self, paths: Option<bool>) {
        *self.software_paths.lock().unwrap_or_else(|p| p.into_inner()) = paths;
    }

    /// Workgroups a reduction aims to launch: a software adapter wants few with much
    /// work each (its barriers are expensive); a GPU wants enough to fill every core.
    /// Workgroups a statistics pass should spread over: few on a software adapter (eight
    /// per core of this process, which the adapter's threads run on), where each
    /// workgroup's start and its partial results cost more than more parallelism is worth.
    pub fn reduce_workgroups(&self) -> u32 {
        if self.is_software() {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
            (8 * cores).clamp(8, 256)
        } else {
            self.target_workgroups()
        }
    }

    pub fn target_workgroups(&self) -> u32 {
        if self.is_software() {
            64
        } else {
            2048
        }
    }

    /// The most elements one binding window may span: the adapter's
    /// `max_storage_buffer_binding_size` (less the offset alignment), or the
    /// override of [`Gpu::set_max_chunk_elements`].
    pub fn max_chunk_elements(&self) -> u64 {
        let align = self.limits.min_storage_buffer_offset_alignment as u64;
        let hw = (self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size) - align) / 4;
        match *self.max_chunk_elements.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(n) => n.clamp(1, hw),
            None => hw,
        }
    }

    /// Force a smaller binding window, so that tests can cross many chunk boundaries
    /// with small inputs. `None` restores the adapter's limit.
    pub fn set_max_chunk_elements(&self, n: Option<u64>) {
        *self.max_chunk_elements.lock().unwrap_or_else(|p| p.into_inner()) = n;
    }

    /// Give each thread of the quantiles' counting passes `n` candidate slots
    /// instead of what its share needs, so that tests reach the path where a thread
    /// runs out of slots (its segment then goes to the radix passes over the whole
    /// input). `None` restores the computed share; `Some(0)` counts as 1.
    pub fn set_candidate_slots(&self, n: Option<u32>) {
        *self.candidate_slots.lock().unwrap_or_else(|p| p.into_inner()) = n;
    }

    /// Force the quantile counting pass that counts ties at the brackets' ends
    /// (`Some(true)`) or the one that takes them as candidates (`Some(false)`), instead
    /// of letting the sample's ties choose (`None`), so that tests reach both on any
    /// data. Results stay exact either way (a full candidate list falls back).
    #[doc(hidden)]
    pub fn set_count_ties(&self, ties: Option<bool>) {
        *self.count_ties.lock().unwrap_or_else(|p| p.into_inner()) = ties;
    }

    /// The override of [`Gpu::set_count_ties`], if any.
    pub(crate) fn count_ties(&self) -> Option<bool> {
        *self.count_ties.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send short segments' quantiles through a sorting network wherever one applies
    /// (`Some(true)`: a software adapter, segments of at most 256 values), and end the
    /// radix passes of segments up to 1,536 values in one walk (`tail_main`, an
    /// insertion network), or never (`Some(false)`), instead of only where the input is
    /// large enough to pay for their compile or they are compiled already (`None`), so
    /// that tests reach every path on small data. Results are the same either way.
    #[doc(hidden)]
    pub fn set_networks(&self, networks: Option<bool>) {
        *self.networks.lock().unwrap_or_else(|p| p.into_inner()) = networks;
    }

    /// The override of [`Gpu::set_networks`], if any.
    pub(crate) fn networks(&self) -> Option<bool> {
        *self.networks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The override of [`Gpu::set_candidate_slots`], if any.
    pub fn candidate_slots(&self) -> Option<u32> {
        *self.candidate_slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pretend the adapter allows at most `n` workgroups per dispatch dimension, so that
    /// tests reach the two-dimensional dispatch path with small inputs. `None` restores it.
    pub fn set_max_workgroups_per_dim(&self, n: Option<u32>) {
        *self.max_workgroups_per_dim.lock().unwrap_or_else(|p| p.into_inner()) = n;
    }

    /// Storage-binding offsets must be multiples of this many f32 elements.
    pub fn offset_alignment_elements(&self) -> u64 {
        (self.limits.min_storage_buffer_offset_alignment as u64 / 4).max(1)
    }

    /// The cached pipeline for an entry point of a shader (created on first use).
    pub fn pipeline(&self, shader: Shader, entry: &'static str) -> Arc<wgpu::ComputePipeline> {
        self.pipeline_with(shader, entry, &[])
    }

    /// Whether this `Gpu` has created the pipeline of `entry` (no constants) already.
    pub(crate) fn has_pipeline(&self, shader: Shader, entry: &'static str) -> bool {
        let pipelines = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        pipelines.contains_key(&(shader, entry, String::new()))
    }

    /// [`Gpu::pipeline`] with values for the shader's pipeline-overridable constants
    /// (WGSL `override`): one kernel specialized per value, its branches on them folded
    /// away by the driver's compiler (a software adapter would run them all).
    pub fn pipeline_with(
        &self,
        shader: Shader,
        entry: &'static str,
        constants: &[(&str, f64)],
    ) -> Arc<wgpu::ComputePipeline> {
        let key = (shader, entry, constants.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(","));
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = pipelines.get(&key) {
            return p.clone();
        }
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        let module = modules.entry(shader).or_insert_with(|| {
            self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.name()),
                source: wgpu::ShaderSource::Wgsl(shader.source().into()),
            })
        });
        let pipeline = Arc::new(self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module,
            entry_point: Some(entry),
            // Every kernel writes the workgroup memory it reads (each thread its own
            // slot, or a clearing loop before a barrier), so the zero-fill wgpu would
            // add is pure cost: on GL, where it is a polyfill in the shader, it took
            // ~50 ms per radix histogram dispatch on llvmpipe.
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        }));
        pipelines.insert(key, pipeline.clone());
        pipeline
    }

    /// The entry point of a cached pipeline (for profiles).
    fn entry_name(&self, pipeline: &wgpu::ComputePipeline) -> String {
        let pipelines = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        pipelines.iter().find(|(_, p)| std::ptr::eq(p.as_ref(), pipeline)).map_or_else(
            || "?".to_string(),
            |((_, entry, constants), _)| {
                if constants.is_empty() {
                    entry.to_string()
                } else {
                    format!("{entry}[{constants}]")
                }
            },
        )
    }

    /// A storage buffer of `size` bytes (at least 4).
    pub fn storage_buffer(&self, label: &str, size: u64) -> Result<wgpu::Buffer> {
        let size = size.max(4).next_multiple_of(4);
        if size > self.limits.max_buffer_size {
            return Err(Error::TooLarge(format!(
                "a buffer of {size} bytes exceeds this adapter's max_buffer_size ({} bytes)",
                self.limits.max_buffer_size
            )));
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A storage buffer of `words` that dispatches can also read their grids from
    /// ([`Gpu::dispatch_indirect_numbered`]).
    pub fn indirect_buffer(&self, label: &str, words: &[u32]) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(words),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::INDIRECT | wgpu::BufferUsages::COPY_SRC,
        })
    }

    /// A uniform buffer holding `value`.
    pub fn uniform<T: bytemuck::Pod>(&self, value: &T) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("gpunorm params"),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    /// Submit an encoder and wait for the device to finish it.
    pub fn submit_and_wait(&self, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.queue.submit(Some(encoder.finish()));
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device: {e}")))?;
        self.check_errors()
    }

    /// Turn errors that the device reported since the last check into `Error::Gpu`.
    pub fn check_errors(&self) -> Result<()> {
        let mut errs = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errs.is_empty() {
            return Ok(());
        }
        let msg = errs.join("; ");
        errs.clear();
        Err(Error::Gpu(msg))
    }

    pub fn encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gpunorm") })
    }

    /// A window `[offset, offset + len)` of f32 elements of a buffer, as a binding.
    pub fn binding(buffer: &wgpu::Buffer, offset_elems: u64, len_elems: u64) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer,
            offset: offset_elems * 4,
            size: std::num::NonZeroU64::new(len_elems.max(1) * 4),
        })
    }

    /// Record one dispatch of `workgroups` workgroups (spread over x and y when more
    /// than 65535) with the given bindings, in order, at group 0.
    pub fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bindings: &[wgpu::BindingResource<'_>],
        workgroups: u32,
    ) -> Result<()> {
        let numbered: Vec<(u32, wgpu::BindingResource)> =
            bindings.iter().enumerate().map(|(i, r)| (i as u32, r.clone())).collect();
        self.dispatch_numbered(encoder, pipeline, &numbered, workgroups)
    }

    /// [`Gpu::dispatch`] with explicit binding numbers (for an entry point that leaves
    /// some of its shader's bindings unused).
    pub fn dispatch_numbered(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bindings: &[(u32, wgpu::BindingResource<'_>)],
        workgroups: u32,
    ) -> Result<()> {
        if workgroups == 0 {
            return Ok(());
        }
        let (x, y) = self.grid(workgroups)?;
        self.record_pass(encoder, pipeline, bindings, workgroups, |pass| pass.dispatch_workgroups(x, y, 1));
        Ok(())
    }

    /// [`Gpu::dispatch_numbered`] with its grid read from `args` at `offset` when the
    /// pass runs (three u32: x, y, z; x = 0 runs nothing), so that an earlier kernel can
    /// choose between passes without a readback. `workgroups`: its grid's size when it
    /// runs, for the profiler.
    pub fn dispatch_indirect_numbered(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bindings: &[(u32, wgpu::BindingResource<'_>)],
        (args, offset): (&wgpu::Buffer, u64),
        workgroups: u32,
    ) {
        self.record_pass(encoder, pipeline, bindings, workgroups, |pass| {
            pass.dispatch_workgroups_indirect(args, offset)
        });
    }

    /// The grid of a dispatch of `workgroups` workgroups: rows of x workgroups, y rows
    /// (the kernels flatten it; the last row may run past).
    pub fn grid(&self, workgroups: u32) -> Result<(u32, u32)> {
        let hw = self.limits.max_compute_workgroups_per_dimension;
        let forced = *self.max_workgroups_per_dim.lock().unwrap_or_else(|p| p.into_inner());
        let max = forced.map_or(hw, |f| f.min(hw)).max(1);
        let x = workgroups.clamp(1, max);
        let y = workgroups.div_ceil(x);
        if y > max {
            return Err(Error::TooLarge(format!("{workgroups} workgroups exceed this adapter's dispatch limits")));
        }
        Ok((x, y))
    }

    /// One compute pass: the pipeline, its bind group, and the dispatch `record` makes
    /// (timed when a profile is open).
    fn record_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        bindings: &[(u32, wgpu::BindingResource<'_>)],
        workgroups: u32,
        record: impl FnOnce(&mut wgpu::ComputePass<'_>),
    ) {
        let entries: Vec<wgpu::BindGroupEntry> =
            bindings.iter().map(|(i, r)| wgpu::BindGroupEntry { binding: *i, resource: r.clone() }).collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut profiler = self.profiler.lock().unwrap_or_else(|p| p.into_inner());
        let timestamp_writes = match profiler.as_mut() {
            Some(p) => p.next(&self.entry_name(pipeline), workgroups),
            None => None,
        };
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        record(&mut pass);
    }
}

/// Whether a software adapter reads its kernels' storage buffers directly rather than
/// through staged texels (`gpu/texels.rs`). `GPUNORM_TEXEL_READS=off` or `on` decides;
/// otherwise the host CPU does, since a software adapter's compiled shaders run on it.
/// Mesa's JIT loads a storage buffer lane by lane, inserting each value into its
/// vector at a variable position: with AVX-512 that is a masked broadcast, without it
/// a trip through the stack and a store-forwarding stall per float. Measured on
/// lavapipe (Mesa 22.3.6) on an AMD EPYC with AVX-512: buffer reads up to 2x faster than
/// texels on most streaming ops and slower on none (a transform of 1e7 floats 23 -> 15
/// ms); the same
/// machine with its AVX-512 and AVX2 hidden from Mesa (`GALLIUM_OVERRIDE_CPU_CAPS=avx`)
/// took 3x longer through buffers than through texels (stats 32 vs 11 ms).
fn texel_reads_off_by_default() -> bool {
    match std::env::var("GPUNORM_TEXEL_READS").as_deref() {
        Ok("off" | "0") => true,
        Ok("on" | "1") => false,
        _ => host_has_avx512(),
    }
}

#[cfg(target_arch = "x86_64")]
fn host_has_avx512() -> bool {
    // Mesa's own override only ever takes features away.
    std::env::var_os("GALLIUM_OVERRIDE_CPU_CAPS").is_none()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

#[cfg(not(target_arch = "x86_64"))]
fn host_has_avx512() -> bool {
    false
}
