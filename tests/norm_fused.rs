//! The fused norm forward (`shaders/fused.wgsl`: statistics, derive and affine in one
//! pass per segment, taken on software adapters reading buffers) against the float64
//! twin under `Verify::Always`, and against the moments, derive and affine passes it
//! replaces, on adversarial segments: NaN, ±inf, both infinities, constant, all-NaN,
//! huge offsets, an outlying head (the second read of its variance), sorted values,
//! rows past the last full thread, and the backward pass from its saved statistics.

mod common;

use common::{own_gpu, Rng};
use gpunorm::kernels::fused::fused_layout;
use gpunorm::norm::{
    GroupNorm, GroupNormConfig, InstanceNorm, InstanceNormConfig, LayerNorm, LayerNormConfig, SavedStats,
};
use gpunorm::{Gpu, Grouping, Verify};
use ndarray::{ArrayD, IxDyn};

/// A verifying context that reads buffers directly (so the fused pass applies whatever
/// the CPU), or through staged texels (`fused: false`: the passes it replaces).
fn context(fused: bool) -> Gpu {
    let mut gpu = own_gpu();
    gpu.set_verify(Verify::Always);
    gpu.set_texel_reads_disabled(fused);
    gpu
}

/// Enough segments for the fused pass on this machine (a workgroup per core).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn arr(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
}

/// Segment `s` of `len` values made adversarial by its index; the rest N(-2, 3).
fn adversarial(segments: usize, len: usize, rng: &mut Rng) -> Vec<f32> {
    let mut x = rng.normals(segments * len, -2.0, 3.0);
    for (s, seg) in x.chunks_mut(len).enumerate() {
        match s % 16 {
            1 => seg[len / 2] = f32::NAN,
            2 => seg[len - 1] = f32::INFINITY,
            3 => seg[0] = f32::NEG_INFINITY,
            4 => {
                seg[1] = f32::INFINITY;
                seg[len - 2] = f32::NEG_INFINITY;
            }
            5 => seg.fill(7.25),
            6 => seg.fill(f32::NAN),
            7 => seg.iter_mut().for_each(|v| *v = 1.0e6 + (*v + 2.0) / 3.0),
            // An outlying head: the shift lands far from the mean, so M2 takes the second read.
            8 => seg.iter_mut().take(16).for_each(|v| *v = 1.0e4),
            9 => seg.iter_mut().enumerate().for_each(|(k, v)| *v = k as f32 * 0.5 - 100.0),
            10 => seg.iter_mut().for_each(|v| *v *= 1.0e-3),
            11 => seg.iter_mut().for_each(|v| *v *= 1.0e12),
            _ => {}
        }
    }
    x
}

/// NaN exactly in the segments that hold NaN or ±inf (constant and finite ones stay finite).
fn assert_poison_placement(y: &ArrayD<f32>, x: &[f32], len: usize) {
    for (s, (ys, xs)) in y.as_slice().unwrap().chunks(len).zip(x.chunks(len)).enumerate() {
        let poisoned = xs.iter().any(|v| !v.is_finite());
        assert!(ys.iter().all(|v| v.is_nan() == poisoned), "segment {s}: poisoned {poisoned}, got {:?}", &ys[..4]);
    }
}

/// The same forward through the fused pass and through the passes: each is verified
/// against the twin; the two agree within their tolerances' sum (a loose 1e-4 here).
fn both_ways(run: impl Fn(&Gpu) -> (ArrayD<f32>, SavedStats)) -> ArrayD<f32> {
    let (fused, _) = run(&context(true));
    let (passes, _) = run(&context(false));
    for (i, (a, b)) in fused.iter().zip(passes.iter()).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-4 * (1.0 + b.abs());
        assert!(ok, "element {i}: fused {a}, passes {b}");
    }
    fused
}

#[test]
fn layer_norm_rows_fused_and_verified() {
    let gpu = context(true);
    let mut rng = Rng::new(91);
    // Rows past the last thread of four: the count is not a multiple of 4.
    for (rows, len, affine) in [(256 * cores() + 3, 256, true), (256 * cores() + 1, 1000, false)] {
        let grouping = Grouping::Rows { rows, len };
        if gpu.is_software() {
            assert!(fused_layout(&gpu, &grouping).is_some(), "{rows}x{len}: the fused pass applies");
        }
        let x = adversarial(rows, len, &mut rng);
        let gamma = rng.normals(len, 1.0, 0.5);
        let beta = rng.normals(len, 0.0, 2.0);
        let dy = arr(&[rows, len], rng.normals(rows * len, 0.0, 1.0));
        let xa = arr(&[rows, len], x.clone());
        let y = both_ways(|g| {
            let mut ln = LayerNorm::new(g, &[len], LayerNormConfig::default().elementwise_affine(affine)).unwrap();
            if affine {
                ln.set_gamma_beta(g, &gamma, &beta).unwrap();
            }
            let (y, saved) = ln.forward_saved(g, xa.view()).unwrap();
            // The backward from the fused pass's saved statistics, verified too.
            ln.backward(g, xa.view(), dy.view(), &saved).unwrap();
            (y, saved)
        });
        assert_poison_placement(&y, &x, len);
    }
}

#[test]
fn instance_norm_planes_fused_with_running_stats() {
    let gpu = context(true);
    let mut rng = Rng::new(92);
    let (n, c, h, w) = (32 * cores() + 1, 4, 6, 8);
    let grouping = Grouping::Instances { n, c, spatial: h * w, channels_last: false };
    if gpu.is_software() {
        assert!(fused_layout(&gpu, &grouping).is_some());
    }
    let x = adversarial(n * c, h * w, &mut rng);
    let xa = arr(&[n, c, h, w], x.clone());
    let gamma = rng.normals(c, 1.0, 0.5);
    let beta = rng.normals(c, 0.0, 2.0);
    let dy = arr(&[n, c, h, w], rng.normals(n * c * h * w, 0.0, 1.0));
    let y = both_ways(|g| {
        let config = InstanceNormConfig::default().affine(true).track_running_stats(true);
        let mut l = InstanceNorm::new(g, c, config).unwrap();
        l.set_gamma_beta(g, &gamma, &beta).unwrap();
        // The running update reads the fused pass's moments (verified by the forward).
        let (y, saved) = l.forward_saved(g, xa.view()).unwrap();
        l.backward(g, xa.view(), dy.view(), &saved).unwrap();
        (y, saved)
    });
    assert_poison_placement(&y, &x, h * w);
}

#[test]
fn group_norm_fused_per_channel_runs() {
    let gpu = context(true);
    let mut rng = Rng::new(93);
    let (n, c, groups, spatial) = (64 * cores() + 1, 6, 3, 12);
    let grouping = Grouping::Groups { n, c, spatial, groups, channels_last: false };
    if gpu.is_software() {
        assert!(fused_layout(&gpu, &grouping).is_some());
    }
    let len = (c / groups) * spatial;
    let x = adversarial(n * groups, len, &mut rng);
    let xa = arr(&[n, c, spatial], x.clone());
    let gamma = rng.normals(c, 1.0, 0.5);
    let beta = rng.normals(c, 0.0, 2.0);
    let y = both_ways(|g| {
        let mut l = GroupNorm::new(g, groups, c, GroupNormConfig::default()).unwrap();
        l.set_gamma_beta(g, &gamma, &beta).unwrap();
        l.forward_saved(g, xa.view()).unwrap()
    });
    assert_poison_placement(&y, &x, len);
    // γ/β by channel inside a group: a finite element's output is its x̂·γ + β.
    let ys = y.as_slice().unwrap();
    let seg = &x[..len];
    let (mean, var) = {
        let m = seg.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
        (m, seg.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / len as f64)
    };
    for k in 0..len {
        let ch = k / spatial;
        let want = (seg[k] as f64 - mean) / (var + 1e-5).sqrt() * gamma[ch] as f64 + beta[ch] as f64;
        assert!((ys[k] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()), "element {k}: {} vs {want}", ys[k]);
    }
}

#[test]
fn layouts_the_fused_pass_leaves_to_the_passes() {
    let gpu = context(true);
    let big = 1024 * cores();
    // Odd lengths (no vec4 rows), runs not a multiple of 4, channels-last, long rows, and
    // too few segments for the cores: the passes, still verified.
    let cases = [
        Grouping::Rows { rows: big, len: 258 },
        Grouping::Instances { n: big, c: 2, spatial: 10, channels_last: false },
        Grouping::Groups { n: big, c: 4, spatial: 6, groups: 2, channels_last: false },
        Grouping::Instances { n: big, c: 2, spatial: 16, channels_last: true },
        Grouping::Rows { rows: big, len: 16388 },
        Grouping::Rows { rows: 8, len: 1024 },
    ];
    for g in cases {
        assert!(fused_layout(&gpu, &g).is_none(), "{g:?}");
    }
    // And none at all where kernels read staged texels.
    assert!(fused_layout(&context(false), &Grouping::Rows { rows: big, len: 256 }).is_none());
    let mut rng = Rng::new(94);
    let (rows, len) = (big, 258);
    let x = arr(&[rows, len], adversarial(rows, len, &mut rng));
    let ln = LayerNorm::new(&gpu, &[len], LayerNormConfig::default()).unwrap();
    let y = ln.forward(&gpu, x.view()).unwrap();
    assert_poison_placement(&y, x.as_slice().unwrap(), len);
}

/// The fused pass's statistics, read back, against float64 with a tight bound (2e-5 of
/// the variance, where the verify tolerance allows the worst case of a long chain): the
/// rows whose shift lies far from their mean (an outlying head, sorted values) need the
/// second read of M2; without it their variance is off by ~1e-3.
#[test]
fn fused_statistics_match_float64_closely() {
    use gpunorm::kernels::fused::{record_norm_fused, FusedLayout};
    use gpunorm::kernels::moments::download_moments;
    let gpu = context(true);
    let mut rng = Rng::new(95);
    for len in [4usize, 1000, 8192] {
        let rows = 24;
        let mut x = rng.normals(rows * len, 0.0, 1.0);
        for (s, seg) in x.chunks_mut(len).enumerate() {
            match s % 4 {
                1 => seg.iter_mut().take(16).for_each(|v| *v += 1.0e4),
                2 => seg.iter_mut().enumerate().for_each(|(k, v)| *v = k as f32 - 3.0e3),
                3 => seg.iter_mut().for_each(|v| *v += 1.0e6),
                _ => {}
            }
        }
        let t = gpunorm::GpuTensor::from_slice(&gpu, &x, &[rows, len]).unwrap();
        let layout = FusedLayout { segments: rows, len, run: 1, pm: 1, ps: 0 };
        let mut enc = gpu.encoder();
        let f = record_norm_fused(&gpu, &mut enc, &t, &layout, 1e-5, None).unwrap();
        gpu.submit_and_wait(enc).unwrap();
        let m = download_moments(&gpu, &f.moments, rows).unwrap();
        for (s, seg) in x.chunks(len).enumerate() {
            let mean = seg.iter().map(|&v| v as f64).sum::<f64>() / len as f64;
            let var = seg.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / len as f64;
            let (gm, gv) = (m[s].mean, m[s].m2 / m[s].count as f64);
            assert_eq!(m[s].count, len as u64);
            assert!((gm - mean).abs() <= 1e-6 * (mean.abs() + var.sqrt()), "len {len} row {s}: mean {gm} vs {mean}");
            assert!((gv - var).abs() <= 2e-5 * var + 1e-30, "len {len} row {s}: var {gv} vs {var}");
        }
    }
}
