//! Exact quantiles (radix select) against the moments pass and a CPU sort.
//!
//! On one input uploaded once: the fit of three quantiles (0.25, 0.5, 0.75; it counts
//! the non-NaN values itself, no moments pass), the moments (mean/var) pass alone, and a
//! CPU baseline that sorts a copy of each column and interpolates. (Quantiles at 1e4 to
//! 1e8 elements, as the robust scaler's fit: `--bench kernels`.) GPU time is record +
//! submit + wait + readback of the small result; the upload is outside the timed loop.
//!
//! `cargo bench --bench quantiles -- --quick`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use gpunorm::gpu::read_buffer;
use gpunorm::kernels::moments::{download_moments, record_moments};
use gpunorm::kernels::select::record_quantiles;
use gpunorm::reference::quantiles::quantile_sorted;
use gpunorm::{Gpu, GpuTensor, Grouping};

const QS: [f64; 3] = [0.25, 0.5, 0.75];

/// Normal(5, 2) data from a seeded xorshift (Box–Muller).
fn normals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (uniform().max(1e-300), uniform());
            (5.0 + 2.0 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU or software adapter");
    eprintln!("adapter: {} ({:?})", gpu.adapter_info().name, gpu.adapter_info().backend);
    // Long columns (sample and bracket), and many short ones (sorting networks on a
    // software adapter, radix passes elsewhere).
    for (rows, cols) in [(10_000_000, 1), (1_000_000, 10), (100, 100_000)] {
        let g = Grouping::Columns { rows, cols };
        let data = normals(rows * cols, 42);
        let t = GpuTensor::from_slice(&gpu, &data, &[rows, cols]).unwrap();
        gpu.submit_and_wait(gpu.encoder()).unwrap();

        let mut group = c.benchmark_group(format!("fit_{rows}x{cols}"));
        group.sample_size(10);
        group.bench_function("moments", |b| {
            b.iter(|| {
                let mut enc = gpu.encoder();
                let m = record_moments(&gpu, &mut enc, &t, &g).unwrap();
                gpu.submit_and_wait(enc).unwrap();
                black_box(download_moments(&gpu, &m, cols).unwrap())
            })
        });
        group.bench_function("quantiles3", |b| {
            b.iter(|| {
                // The quantile fit counts for itself: no moments pass.
                let mut enc = gpu.encoder();
                let q = record_quantiles(&gpu, &mut enc, &t, &g, None, &QS).unwrap();
                gpu.submit_and_wait(enc).unwrap();
                black_box(read_buffer(&gpu, &q, 0, (cols * QS.len() * 4) as u64).unwrap())
            })
        });
        group.bench_function("cpu_sort", |b| {
            b.iter(|| {
                let out: Vec<Vec<f64>> = (0..cols)
                    .map(|j| {
                        let mut v: Vec<f64> =
                            data.iter().skip(j).step_by(cols).map(|&x| x as f64).filter(|x| !x.is_nan()).collect();
                        v.sort_unstable_by(f64::total_cmp);
                        QS.iter().map(|&q| quantile_sorted(&v, q)).collect()
                    })
                    .collect();
                black_box(out)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
