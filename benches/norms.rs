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

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use gpunorm::kernels::copy::{record_copy, record_copy_with, CopyWidth};
use gpunorm::norm::{
    BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig, InstanceNorm, InstanceNormConfig, LayerNorm,
    LayerNormConfig, SavedStats,
};
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

/// Time `record` as `name`: each iteration records into a fresh encoder, submits and
/// waits; throughput is `bytes` per element.
fn time<T>(
    group: &mut BenchmarkGroup<WallTime>,
    gpu: &Gpu,
    name: &str,
    numel: usize,
    bytes: u64,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> T,
) {
    group.throughput(Throughput::Bytes(bytes * numel as u64));
    group.bench_function(BenchmarkId::new(name, numel), |b| {
        b.iter(|| {
            let mut enc = gpu.encoder();
            let out = record(&mut enc);
            gpu.submit_and_wait(enc).unwrap();
            out
        })
    });
}

/// Run a layer's forward once and return what its backward needs.
fn saved_of(gpu: &Gpu, forward: impl FnOnce(&mut wgpu::CommandEncoder) -> (GpuTensor, SavedStats)) -> SavedStats {
    let mut enc = gpu.encoder();
    let (_, saved) = forward(&mut enc);
    gpu.submit_and_wait(enc).unwrap();
    saved
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
        let g = &mut group;

        time(g, &gpu, "copy", numel, 8, |enc| record_copy(&gpu, enc, &x, &dst).unwrap());
        time(g, &gpu, "copy_scalar", numel, 8, |enc| record_copy_with(&gpu, enc, &x, &dst, CopyWidth::Scalar).unwrap());
        time(g, &gpu, "copy_b2b", numel, 8, |enc| {
            enc.copy_buffer_to_buffer(x.buffer(), 0, dst.buffer(), 0, numel as u64 * 4)
        });

        let mut bn = BatchNorm::new(&gpu, channels, BatchNormConfig::default()).unwrap();
        time(g, &gpu, "batch_train_forward", numel, 12, |enc| bn.forward_gpu(&gpu, enc, &x).unwrap());
        let saved = saved_of(&gpu, |enc| bn.forward_gpu(&gpu, enc, &x).unwrap());
        time(g, &gpu, "batch_backward", numel, 20, |enc| bn.backward_gpu(&gpu, enc, &x, &dy, &saved).unwrap());
        let mut eval = BatchNorm::new(&gpu, channels, BatchNormConfig::default()).unwrap();
        eval.set_training(false);
        time(g, &gpu, "batch_eval_forward", numel, 8, |enc| eval.forward_gpu(&gpu, enc, &x).unwrap());

        // Layer norm over each sample's (C, S), group norm with 4 groups, instance norm
        // with γ/β: forward (12 B/element) and backward (20 B/element) each.
        let ln = LayerNorm::new(&gpu, &shape[1..], LayerNormConfig::default()).unwrap();
        time(g, &gpu, "layer_forward", numel, 12, |enc| ln.forward_gpu(&gpu, enc, &x).unwrap());
        let saved = saved_of(&gpu, |enc| ln.forward_gpu(&gpu, enc, &x).unwrap());
        time(g, &gpu, "layer_backward", numel, 20, |enc| ln.backward_gpu(&gpu, enc, &x, &dy, &saved).unwrap());

        let gn = GroupNorm::new(&gpu, 4, channels, GroupNormConfig::default()).unwrap();
        time(g, &gpu, "group_forward", numel, 12, |enc| gn.forward_gpu(&gpu, enc, &x).unwrap());
        let saved = saved_of(&gpu, |enc| gn.forward_gpu(&gpu, enc, &x).unwrap());
        time(g, &gpu, "group_backward", numel, 20, |enc| gn.backward_gpu(&gpu, enc, &x, &dy, &saved).unwrap());

        let mut inorm = InstanceNorm::new(&gpu, channels, InstanceNormConfig::default().affine(true)).unwrap();
        time(g, &gpu, "instance_forward", numel, 12, |enc| inorm.forward_gpu(&gpu, enc, &x).unwrap());
        let saved = saved_of(&gpu, |enc| inorm.forward_gpu(&gpu, enc, &x).unwrap());
        time(g, &gpu, "instance_backward", numel, 20, |enc| inorm.backward_gpu(&gpu, enc, &x, &dy, &saved).unwrap());
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
