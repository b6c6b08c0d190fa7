//! Statistics and scalers on the GPU against a plain compute copy, in the same run
//! (DESIGN.md §7). `cargo bench --bench kernels -- --quick` finishes in a few minutes
//! on a software adapter.
//!
//! - `copy` (8 B/element): the compute copy kernel, the roofline.
//! - `stats` (4 B/element): per-column moments of a `(n / 16, 16)` matrix;
//!   `stats_wide` the same of `(n / 1000, 1000)` (from 1e6 elements).
//! - per scaler (standard, minmax, maxabs, robust, log): `fit` (4 B/element; robust:
//!   4 B per pass over the data), `transform` (8 B) and `fit_transform` (12 B; robust:
//!   its passes plus 8 B), all GPU-resident (`fit_transform_gpu`, `transform_gpu`,
//!   `record_moments` + `record_derive`, `record_quantiles`).
//!
//! Each iteration records into a fresh encoder (not timed), submits and waits; the time
//! is the device's (timestamp queries where the adapter has them, else the wall clock
//! around submit + wait). Throughput is the bytes the operation must move, so an
//! operation's GB/s over the copy's GB/s at the same size is its ratio to copy.
//! Sizes: 1e4, 1e5, 1e6 and 1e7 elements (`GPUNORM_BENCH_SIZES=10000,...,100000000`
//! to choose; 1e8 where the device's memory allows); the scalers run at the sizes up to
//! `GPUNORM_BENCH_SCALER_MAX` (default 1e7).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use gpunorm::bench::{test_data, GpuTimer};
use gpunorm::kernels::copy::record_copy;
use gpunorm::kernels::derive::{record_derive, DeriveRule};
use gpunorm::kernels::moments::{moments, record_moments};
use gpunorm::kernels::select::{input_passes, record_quantiles_counted};
use gpunorm::scale::{
    FitState, FittedScaler, InputDtype, LogScaler, MaxAbsScaler, MinMaxScaler, RobustScaler, Scaler, StandardScaler,
};
use gpunorm::{Gpu, GpuTensor, Grouping, Result};

const FEATURES: usize = 16;
const WIDE_FEATURES: usize = 1000;

fn env_sizes(name: &str, default: Vec<usize>) -> Vec<usize> {
    match std::env::var(name) {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => default,
    }
}

/// Time `iters` runs of recorded work on the device.
fn timed(
    gpu: &Gpu,
    timer: &GpuTimer,
    iters: u64,
    record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Duration {
    (0..iters).map(|_| timer.time(gpu, record).expect("benchmark run").best().0).sum()
}

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn run(
    group: &mut Group,
    gpu: &Gpu,
    timer: &GpuTimer,
    name: &str,
    numel: usize,
    bytes: u64,
    record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) {
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(BenchmarkId::new(name, numel), |b| b.iter_custom(|iters| timed(gpu, timer, iters, record)));
}

fn kernels(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU or software adapter");
    eprintln!("adapter: {} ({})", gpu.adapter_info().name, gpu.adapter_info().backend.to_str());
    let timer = GpuTimer::new(&gpu);
    let scaler_max = env_sizes("GPUNORM_BENCH_SCALER_MAX", vec![10_000_000])[0];
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(2));
    for n in env_sizes("GPUNORM_BENCH_SIZES", vec![10_000, 100_000, 1_000_000, 10_000_000]) {
        let rows = n / FEATURES;
        let numel = rows * FEATURES;
        let shape = [rows, FEATURES];
        let g = Grouping::Columns { rows, cols: FEATURES };
        let x = GpuTensor::from_slice(&gpu, &test_data(numel, 1), &shape).unwrap();
        let dst = GpuTensor::empty(&gpu, &shape).unwrap();
        let b = numel as u64;

        run(&mut group, &gpu, &timer, "copy", numel, 8 * b, &mut |enc| record_copy(&gpu, enc, &x, &dst));
        run(&mut group, &gpu, &timer, "stats", numel, 4 * b, &mut |enc| record_moments(&gpu, enc, &x, &g).map(drop));
        // The same elements as a wide matrix (1,000 columns: rows 4 KB apart).
        if numel >= 1_000_000 {
            let wide_rows = n / WIDE_FEATURES;
            let wide_g = Grouping::Columns { rows: wide_rows, cols: WIDE_FEATURES };
            let wide_numel = wide_rows * WIDE_FEATURES;
            let xw = GpuTensor::from_slice(&gpu, &test_data(wide_numel, 2), &[wide_rows, WIDE_FEATURES]).unwrap();
            run(&mut group, &gpu, &timer, "stats_wide", wide_numel, 4 * wide_numel as u64, &mut |enc| {
                record_moments(&gpu, enc, &xw, &wide_g).map(drop)
            });
        }
        if numel > scaler_max {
            continue;
        }

        let m = moments(&gpu, &x, &g).unwrap();
        let passes = input_passes(&gpu, &g, &[0.25, 0.5, 0.75]) as u64;
        let scalers: [(&str, Scaler); 5] = [
            ("standard", StandardScaler::new().into()),
            ("minmax", MinMaxScaler::new().into()),
            ("maxabs", MaxAbsScaler::default().into()),
            ("robust", RobustScaler::new().into()),
            ("log", LogScaler::default().into()),
        ];
        for (name, scaler) in scalers {
            let robust = matches!(scaler, Scaler::Robust(_));
            let fit_bytes = if robust { 4 * passes * b } else { 4 * b };
            let rule = match name {
                "standard" => Some(DeriveRule::Standard { with_mean: true, with_std: true }),
                "minmax" => Some(DeriveRule::MinMax { tiny: InputDtype::Float32.zero_scale_threshold() }),
                "maxabs" => Some(DeriveRule::MaxAbs { tiny: InputDtype::Float32.zero_scale_threshold() }),
                "robust" => Some(DeriveRule::Robust { with_centering: true, with_scaling: true, unit: 1.0 }),
                _ => None,
            };
            if let Some(rule) = rule {
                run(&mut group, &gpu, &timer, &format!("{name}_fit"), numel, fit_bytes, &mut |enc| {
                    // Robust scaling: the quantiles and their counts, no moments pass.
                    let (stats, q) = if robust {
                        let (q, counts) = record_quantiles_counted(&gpu, enc, &x, &g, &[0.25, 0.5, 0.75])?;
                        (counts, Some(q))
                    } else {
                        (record_moments(&gpu, enc, &x, &g)?, None)
                    };
                    record_derive(&gpu, enc, &stats, FEATURES, rule, q.as_ref(), None).map(drop)
                });
            }
            // Transform with statistics fitted once (robust: from the moments' min/max,
            // any center and scale will do for timing).
            let state = match scaler {
                Scaler::Log(_) => FitState::Stateless,
                Scaler::Robust(_) => {
                    FitState::Robust { center: m.iter().map(|s| s.mean).collect(), scale: vec![1.0; FEATURES] }
                }
                _ => FitState::Moments(m.clone()),
            };
            let n_features = (!matches!(scaler, Scaler::Log(_))).then_some(FEATURES);
            let fitted = FittedScaler { scaler, n_features, state, input_dtype: InputDtype::Float32 };
            run(&mut group, &gpu, &timer, &format!("{name}_transform"), numel, 8 * b, &mut |enc| {
                fitted.transform_gpu(&gpu, enc, &x, false).map(drop)
            });
            let ft_bytes = if robust {
                fit_bytes + 8 * b
            } else if rule.is_none() {
                8 * b
            } else {
                12 * b
            };
            run(&mut group, &gpu, &timer, &format!("{name}_fit_transform"), numel, ft_bytes, &mut |enc| {
                scaler.fit_transform_gpu(&gpu, enc, &x).map(drop)
            });
        }
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
