//! The norm layers on the GPU against a plain copy, in the same run (DESIGN.md §7).
//!
//! - `copy` (8 B/element): the compute copy kernel `kernels::copy::record_copy` (vec4),
//!   `copy_scalar` (one f32 per thread, the access pattern of the elementwise passes),
//!   and `copy_b2b`, `encoder.copy_buffer_to_buffer` (a memcpy on a software adapter:
//!   not a fair roofline for a compute kernel, shown for reference).
//! - `batch_train_forward` (12 B/element: statistics read x, the affine pass reads x
//!   and writes y), running stats updated, γ/β on.
//! - `batch_backward` (20 B/element: the fused reduction reads dy and x, the
//!   elementwise pass reads dy and x and writes dx), dγ/dβ on.
//! - `batch_eval_forward` (8 B/element: running statistics, one affine pass).
//! - `layer_*` (over each sample's (C, H·W)), `group_*` (4 groups) and `instance_*`
//!   (γ/β on): forward (12 B/element) and backward (20 B/element).
//!
//! Every iteration records into a fresh encoder, submits and waits; inputs are
//! `(N, 16, H·W)` NCHW. Throughput is the bytes the operation must move over time, so
//! criterion's GB/s of an operation over the copy's GB/s is the ratio to copy.
//! `GPUNORM_BENCH_SIZES=1000000` limits the sizes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gpunorm::kernels::copy::{record_copy, record_copy_with, CopyWidth};
use gpunorm::norm::{
    BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig, InstanceNorm, InstanceNormConfig, LayerNorm,
    LayerNormConfig, SavedStats,
};

/// One layer's recorded forward pass.
type Step<'a> = dyn FnMut(&mut wgpu::CommandEncoder) -> gpunorm::Result<(GpuTensor, SavedStats)> + 'a;
use gpunorm::{Gpu, GpuTensor};

fn sizes() -> Vec<usize> {
    match std::env::var("GPUNORM_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![10_000, 1_000_000, 10_000_000],
    }
}

fn data(n: usize) -> Vec<f32> {
    // Deterministic, roughly N(1, 2)-spread values.
    (0..n).map(|i| ((i.wrapping_mul(2_654_435_761) % 10_007) as f32 / 10_007.0 - 0.5) * 7.0 + 1.0).collect()
}

fn bench(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU or software adapter");
    eprintln!("adapter: {} ({:?})", gpu.adapter_info().name, gpu.adapter_info().backend);
    let channels = 16;
    let mut group = c.benchmark_group("norms");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_millis(500));
    group.measurement_time(std::time::Duration::from_secs(3));
    for n in sizes() {
        let spatial = (n / channels / 10).max(1);
        let shape = [n / channels / spatial, channels, spatial];
        let numel: usize = shape.iter().product();
        let x = GpuTensor::from_slice(&gpu, &data(numel), &shape).unwrap();
        let dy = GpuTensor::from_slice(&gpu, &data(numel).iter().rev().copied().collect::<Vec<_>>(), &shape).unwrap();
        let dst = GpuTensor::empty(&gpu, &shape).unwrap();

        group.throughput(Throughput::Bytes(8 * numel as u64));
        group.bench_function(BenchmarkId::new("copy", numel), |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                record_copy(&gpu, &mut enc, &x, &dst).unwrap();
                gpu.submit_and_wait(enc).unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("copy_scalar", numel), |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                record_copy_with(&gpu, &mut enc, &x, &dst, CopyWidth::Scalar).unwrap();
                gpu.submit_and_wait(enc).unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("copy_b2b", numel), |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                enc.copy_buffer_to_buffer(x.buffer(), 0, dst.buffer(), 0, numel as u64 * 4);
                gpu.submit_and_wait(enc).unwrap();
            })
        });

        let mut bn = BatchNorm::new(&gpu, channels, BatchNormConfig::default()).unwrap();
        group.throughput(Throughput::Bytes(12 * numel as u64));
        group.bench_function(BenchmarkId::new("batch_train_forward", numel), |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                let out = bn.forward_gpu(&gpu, &mut enc, &x).unwrap();
                gpu.submit_and_wait(enc).unwrap();
                out
            })
        });

        let mut enc = gpu.encoder();
        let (_, saved) = bn.forward_gpu(&gpu, &mut enc, &x).unwrap();
        gpu.submit_and_wait(enc).unwrap();
        group.throughput(Throughput::Bytes(20 * numel as u64));
        group.bench_function(BenchmarkId::new("batch_backward", numel), |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                let grads = bn.backward_gpu(&gpu, &mut enc, &x, &dy, &saved).unwrap();
                gpu.submit_and_wait(enc).unwrap();
                grads
            })
        });

        let mut eval = BatchNorm::new(&gpu, channels, BatchNormConfig::default()).unwrap();
        eval.set_training(false);
        group.throughput(Throughput::Bytes(8 * numel as u64));
        group.bench_function(BenchmarkId::new("batch_eval_forward", numel), |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                let out = eval.forward_gpu(&gpu, &mut enc, &x).unwrap();
                gpu.submit_and_wait(enc).unwrap();
                out
            })
        });

        // Layer norm over each sample's (C, S), group norm with 4 groups, instance norm
        // with γ/β: forward (12 B/element) and backward (20 B/element) each.
        let ln = LayerNorm::new(&gpu, &shape[1..], LayerNormConfig::default()).unwrap();
        let gn = GroupNorm::new(&gpu, 4, channels, GroupNormConfig::default()).unwrap();
        let mut inorm = InstanceNorm::new(&gpu, channels, InstanceNormConfig::default().affine(true)).unwrap();
        let mut layers: [(&str, Box<Step>); 3] = [
            ("layer", Box::new(|enc: &mut wgpu::CommandEncoder| ln.forward_gpu(&gpu, enc, &x))),
            ("group", Box::new(|enc: &mut wgpu::CommandEncoder| gn.forward_gpu(&gpu, enc, &x))),
            ("instance", Box::new(|enc: &mut wgpu::CommandEncoder| inorm.forward_gpu(&gpu, enc, &x))),
        ];
        let mut saved_of = Vec::new();
        for (name, forward) in layers.iter_mut() {
            group.throughput(Throughput::Bytes(12 * numel as u64));
            group.bench_function(BenchmarkId::new(format!("{name}_forward"), numel), |b| {
                b.iter(|| {
                    let mut enc = gpu.encoder();
                    let out = forward(&mut enc).unwrap();
                    gpu.submit_and_wait(enc).unwrap();
                    out
                })
            });
            let mut enc = gpu.encoder();
            let (_, saved) = forward(&mut enc).unwrap();
            gpu.submit_and_wait(enc).unwrap();
            saved_of.push(saved);
        }
        drop(layers);
        group.throughput(Throughput::Bytes(20 * numel as u64));
        group.bench_function(BenchmarkId::new("layer_backward", numel), |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                let grads = ln.backward_gpu(&gpu, &mut enc, &x, &dy, &saved_of[0]).unwrap();
                gpu.submit_and_wait(enc).unwrap();
                grads
            })
        });
        group.bench_function(BenchmarkId::new("group_backward", numel), |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                let grads = gn.backward_gpu(&gpu, &mut enc, &x, &dy, &saved_of[1]).unwrap();
                gpu.submit_and_wait(enc).unwrap();
                grads
            })
        });
        group.bench_function(BenchmarkId::new("instance_backward", numel), |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                let grads = inorm.backward_gpu(&gpu, &mut enc, &x, &dy, &saved_of[2]).unwrap();
                gpu.submit_and_wait(enc).unwrap();
                grads
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
