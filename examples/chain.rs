//! gpunorm inside a caller's own GPU pipeline: the caller owns the device, the queue,
//! the input buffer and a compute pass of its own; gpunorm's standard scaler is
//! recorded into the same command encoder, between the caller's passes, with no
//! readback until the caller decides to read its final result.
//!
//! cargo run --release --example chain

use std::sync::Arc;

use gpunorm::scale::{Scaler, StandardScaler};
use gpunorm::{Gpu, GpuTensor};
use wgpu::util::DeviceExt;

/// The caller's own kernel: y = x * x (say, a feature it squares after scaling).
const SQUARE: &str = r#"
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x < arrayLength(&y)) { y[id.x] = x[id.x] * x[id.x]; }
}
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The caller's device, created the caller's way.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;
    println!("caller's adapter: {}", adapter.get_info().name);

    // The caller's data: 4 samples × 2 features, already in a GPU buffer it owns.
    let data: [f32; 8] = [1.0, 100.0, 2.0, 200.0, 3.0, 300.0, 4.0, 400.0];
    let input = Arc::new(device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("caller input"),
        contents: bytemuck::cast_slice(&data),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    }));

    // gpunorm on the caller's device.
    let gpu = Gpu::from_device(device.clone(), queue.clone(), adapter.get_info());
    let x = GpuTensor::from_buffer(input, &[4, 2])?;

    let mut encoder = device.create_command_encoder(&Default::default());
    // 1. gpunorm: fit and transform, recorded into the caller's encoder.
    let (scaled, _params) = Scaler::from(StandardScaler::new()).fit_transform_gpu(&gpu, &mut encoder, &x)?;
    // 2. The caller's own compute pass reads gpunorm's output buffer directly.
    let squared = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("caller output"),
        size: 32,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("square"),
        source: wgpu::ShaderSource::Wgsl(SQUARE.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("square"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: scaled.buffer().as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: squared.as_entire_binding() },
        ],
    });
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    queue.submit(Some(encoder.finish()));

    // Only now does anything come back to the host.
    let out: Vec<f32> = gpunorm::gpu::read_values(&gpu, &squared, 0, 32)?;
    println!("standardized, then squared by the caller's kernel: {out:?}");
    // z-scores of 1,2,3,4 are ±1.342, ±0.447: squares 1.8, 0.2, 0.2, 1.8 in both columns.
    for (i, v) in out.iter().enumerate() {
        let want = if i / 2 == 0 || i / 2 == 3 { 1.8 } else { 0.2 };
        assert!((v - want).abs() < 1e-5, "element {i}: {v} vs {want}");
    }
    println!("ok: both columns give 1.8, 0.2, 0.2, 1.8");
    Ok(())
}
