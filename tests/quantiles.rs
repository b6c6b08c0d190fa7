//! Exact quantiles (radix select) against the float64 twin (`reference::quantiles`), on
//! every segment layout, on adversarial data and across chunk boundaries.
//!
//! Two paths are checked on every input:
//! - `quantiles` (read back the order statistics, interpolate in float64 on the host)
//!   must equal the reference exactly;
//! - `record_quantiles` (interpolated in float32 on the GPU) must be exact when the
//!   interpolation weight is 0 and within 2 ulp of max(|lo|, |hi|) otherwise, lo and hi
//!   being the reference's order statistics.

mod common;

use common::{gpu, own_gpu, sprinkle_nan, Rng};
use gpunorm::kernels::moments::record_moments;
use gpunorm::kernels::select::{
    counting_pass_counts_ties, input_passes, quantiles, record_quantiles, whole_segment_selections,
};
use gpunorm::reference::quantiles::{quantile_sorted, rank};
use gpunorm::{reference, Error, Gpu, GpuTensor, Grouping};

const MANY_Q: [f64; 9] = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0];

/// Every segment layout, at roughly `n` elements per segment.
fn layouts(n: usize) -> Vec<Grouping> {
    let mut v = vec![
        Grouping::Columns { rows: n, cols: 3 },
        Grouping::Columns { rows: n, cols: 1 },
        Grouping::Rows { rows: 3, len: n },
    ];
    for cl in [false, true] {
        v.push(Grouping::Channels { n: 2, c: 3, spatial: n.div_ceil(2), channels_last: cl });
        v.push(Grouping::Groups { n: 2, c: 4, spatial: n.div_ceil(2), groups: 2, channels_last: cl });
        v.push(Grouping::Instances { n: 2, c: 2, spatial: n, channels_last: cl });
    }
    v
}

/// Distance from |x| to the next float32 away from zero (the gap below at f32::MAX).
fn ulp32(x: f64) -> f64 {
    let a = (x as f32).abs();
    if a == f32::MAX {
        (a - f32::from_bits(a.to_bits() - 1)) as f64
    } else {
        (f32::from_bits(a.to_bits() + 1) - a) as f64
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Sorted non-NaN values of each segment.
fn sorted_segments(data: &[f32], g: &Grouping) -> Vec<Vec<f64>> {
    let seg = g.segments();
    (0..g.num_segments())
        .map(|s| {
            let mut v: Vec<f64> =
                (0..g.segment_len()).map(|k| data[seg.offset(s, k)] as f64).filter(|x| !x.is_nan()).collect();
            v.sort_by(f64::total_cmp);
            v
        })
        .collect()
}

/// The GPU-resident path with the caller's moments (the counts they carry), recorded
/// into one encoder, f32 results. (`quantiles`, the other path checked, counts itself.)
fn run_recorded(gpu: &Gpu, t: &GpuTensor, g: &Grouping, qs: &[f64]) -> Vec<f32> {
    let mut enc = gpu.encoder();
    let m = record_moments(gpu, &mut enc, t, g).unwrap();
    let out = record_quantiles(gpu, &mut enc, t, g, Some(&m), qs).unwrap();
    gpu.submit_and_wait(enc).unwrap();
    gpunorm::gpu::read_values(gpu, &out, 0, (g.num_segments() * qs.len() * 4) as u64).unwrap()
}

/// Check both paths against the reference; panics with the first mismatch.
fn check_on(gpu: &Gpu, what: &str, g: &Grouping, data: &[f32], qs: &[f64]) {
    assert_eq!(data.len(), g.numel());
    let t = GpuTensor::from_slice(gpu, data, &[g.numel()]).unwrap();
    let want = reference::quantiles(data, g, qs);
    let got = quantiles(gpu, &t, g, qs).unwrap();
    assert_eq!(got.len(), want.len(), "{what} {g:?}: segments");
    for (s, (a, b)) in got.iter().zip(&want).enumerate() {
        for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
            assert!(same(x, y), "{what} {g:?} segment {s} q={}: gpu {x:e} vs reference {y:e}", qs[j]);
        }
    }
    let got32 = run_recorded(gpu, &t, g, qs);
    let sorted = sorted_segments(data, g);
    for (s, v) in sorted.iter().enumerate() {
        for (j, &q) in qs.iter().enumerate() {
            let x = got32[s * qs.len() + j] as f64;
            let ctx = format!("{what} {g:?} segment {s} q={q} (float32 path)");
            if v.is_empty() {
                assert!(x.is_nan(), "{ctx}: all-NaN segment gave {x}");
                continue;
            }
            let (lo, hi, frac) = rank(q, v.len());
            let y = quantile_sorted(v, q);
            assert!(same(y, want[s][j]), "{ctx}: the two references disagree");
            if !y.is_finite() {
                // Interpolation at or across ±inf: inf, or NaN (inf − inf) as in numpy.
                assert!(same(x, y), "{ctx}: {x:e} vs {y:e}");
            } else if frac == 0.0 {
                assert_eq!(x, v[lo], "{ctx}: weight 0 must give the order statistic exactly");
            } else {
                let tol = 2.0 * ulp32(v[lo].abs().max(v[hi].abs()));
                assert!((x - y).abs() <= tol, "{ctx}: {x:e} vs {y:e}, error {:e} > {tol:e}", (x - y).abs());
            }
        }
    }
}

fn check(what: &str, g: &Grouping, data: &[f32], qs: &[f64]) {
    check_on(gpu(), what, g, data, qs)
}

#[test]
fn random_data_every_layout_and_size() {
    let mut rng = Rng::new(11);
    for n in [1, 2, 3, 4, 255, 256, 257, 1000, 4097] {
        for g in layouts(n) {
            let mut data = rng.normals(g.numel(), 3.0, 2.0);
            sprinkle_nan(&mut data, 0.1, &mut rng);
            check(&format!("random n={n}"), &g, &data, &MANY_Q);
        }
    }
}

#[test]
fn one_and_two_elements_odd_and_even() {
    let mut rng = Rng::new(12);
    for n in [1, 2, 5, 6] {
        for g in [Grouping::Columns { rows: n, cols: 4 }, Grouping::Rows { rows: 5, len: n }] {
            let data = rng.normals(g.numel(), 0.0, 1.0);
            check(&format!("n={n}"), &g, &data, &[0.0, 0.25, 0.5, 0.75, 1.0, 0.3, 0.999]);
        }
    }
}

#[test]
fn ties_and_constant_segments() {
    let mut rng = Rng::new(13);
    for g in layouts(301) {
        let data: Vec<f32> = (0..g.numel()).map(|_| [1.5f32, -2.0, 7.0][rng.below(3)]).collect();
        check("three values", &g, &data, &MANY_Q);
        let data = vec![0.1f32; g.numel()];
        check("constant", &g, &data, &MANY_Q);
        let mut data = vec![-4.25f32; g.numel()];
        sprinkle_nan(&mut data, 0.3, &mut rng);
        check("constant with NaN", &g, &data, &MANY_Q);
    }
}

#[test]
fn signed_zeros_subnormals_and_extremes() {
    let specials = [
        -0.0f32,
        0.0,
        1e-45,
        -1e-45,
        1e-40,
        -f32::from_bits(0x007f_ffff), // the largest subnormal
        f32::MIN_POSITIVE,
        3e38,
        -3e38,
        f32::MAX,
        -f32::MAX,
        1.0,
        -1.0,
    ];
    let mut rng = Rng::new(14);
    for g in layouts(97) {
        let data: Vec<f32> = (0..g.numel()).map(|_| specials[rng.below(specials.len())]).collect();
        check("specials", &g, &data, &MANY_Q);
    }
    // Segments that hold only the two zeros, only subnormals, or only ±3e38.
    for set in [&[-0.0f32, 0.0][..], &[1e-45, 2e-45, -1e-45, 5e-44, 1e-40][..], &[-3e38, 3e38][..]] {
        for n in [2, 3, 10, 257] {
            let g = Grouping::Columns { rows: n, cols: 2 };
            let data: Vec<f32> = (0..g.numel()).map(|_| set[rng.below(set.len())]).collect();
            check("special set", &g, &data, &[0.0, 0.1, 0.3, 0.5, 0.5000001, 0.7, 0.9, 1.0]);
        }
    }
    // -3e38 and 3e38 with the weight everywhere in (0, 1): b − a overflows float32.
    let g = Grouping::Rows { rows: 1, len: 2 };
    let qs: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    check("±3e38", &g, &[3e38, -3e38], &qs);
    check("±max", &g, &[f32::MAX, -f32::MAX], &qs);
}

#[test]
fn nan_mixed_in_and_all_nan_segments() {
    let mut rng = Rng::new(15);
    for g in layouts(300) {
        let mut data = rng.normals(g.numel(), -1.0, 5.0);
        sprinkle_nan(&mut data, 0.4, &mut rng);
        let seg = g.segments();
        for k in 0..g.segment_len() {
            data[seg.offset(0, k)] = f32::NAN;
        }
        // Segment 1 keeps a single value.
        for k in 1..g.segment_len() {
            data[seg.offset(1, k)] = f32::NAN;
        }
        check("nan", &g, &data, &MANY_Q);
        let out = quantiles(gpu(), &GpuTensor::from_slice(gpu(), &data, &[data.len()]).unwrap(), &g, &MANY_Q).unwrap();
        assert!(out[0].iter().all(|x| x.is_nan()), "{g:?}: all-NaN segment");
    }
    // Negative-payload and signalling NaNs are NaN too.
    let g = Grouping::Rows { rows: 2, len: 6 };
    let odd_nans = [f32::from_bits(0xffc0_0001), f32::from_bits(0x7f80_0001), f32::from_bits(0xff80_0001)];
    let mut data = vec![1.0f32, 2.0, 3.0, odd_nans[0], odd_nans[1], odd_nans[2]];
    data.extend_from_slice(&odd_nans);
    data.extend_from_slice(&odd_nans);
    check("odd NaNs", &g, &data, &MANY_Q);
}

#[test]
fn adversarial_distributions() {
    let mut rng = Rng::new(16);
    for n in [255, 256, 257, 5000] {
        for g in [
            Grouping::Columns { rows: n, cols: 3 },
            Grouping::Rows { rows: 2, len: n },
            Grouping::Instances { n: 2, c: 3, spatial: n, channels_last: true },
        ] {
            // All keys in one bucket of every pass but the last: consecutive floats.
            let base = 1.0f32.to_bits();
            let data: Vec<f32> = (0..g.numel()).map(|_| f32::from_bits(base + rng.below(64) as u32)).collect();
            check("consecutive floats", &g, &data, &MANY_Q);
            // Values that differ only in the last bit, negative.
            let base = (-1234.5f32).to_bits();
            let data: Vec<f32> = (0..g.numel()).map(|_| f32::from_bits(base + rng.below(2) as u32)).collect();
            check("last bit", &g, &data, &MANY_Q);
            // One bucket in the first pass, spread in the low bits: [1, 1 + 2^-12).
            let data: Vec<f32> =
                (0..g.numel()).map(|_| f32::from_bits(1.0f32.to_bits() + rng.below(1 << 11) as u32)).collect();
            check("one top bucket", &g, &data, &MANY_Q);
            // Heavy tails: most values tiny, a few huge, both signs.
            let data: Vec<f32> = (0..g.numel())
                .map(|_| {
                    let x = rng.normal();
                    (x * 10f64.powi((rng.below(60) as i32) - 30)) as f32
                })
                .collect();
            check("heavy tails", &g, &data, &MANY_Q);
            // Sorted and reverse-sorted input.
            let mut data = rng.normals(g.numel(), 0.0, 1.0);
            data.sort_by(f32::total_cmp);
            check("sorted", &g, &data, &MANY_Q);
            data.reverse();
            check("reversed", &g, &data, &MANY_Q);
        }
    }
}

/// Distinct integers in random order: the result reveals the rank the GPU chose, so
/// floor(q·(n−1)) must round exactly as float64 does (q = 0.7, n = 11 gives 7.0, not 6.99…),
/// and a wrong neighbour would be off by a whole gap.
#[test]
fn ranks_round_as_float64() {
    let mut rng = Rng::new(17);
    let mut qs =
        vec![0.7, 0.1, 0.3, 0.29, 0.57, 0.58, 1.0 / 3.0, 2.0 / 3.0, 0.49999999999999994, 0.5, 0.9999999999999999];
    qs.extend((0..20).map(|_| rng.uniform()));
    qs.push(1e-300);
    qs.push(5e-324);
    qs.push(1e-17);
    for n in (1..=64).chain([99, 100, 101, 255, 256, 257, 1000, 1001, 4097, 65537]) {
        let g = Grouping::Rows { rows: 1, len: n };
        let mut data: Vec<f32> = (0..n).map(|i| (i * i) as f32 * 0.25 - 100.0).collect();
        for i in (1..n).rev() {
            data.swap(i, rng.below(i + 1));
        }
        check(&format!("ranks n={n}"), &g, &data, &qs);
    }
}

#[test]
fn interpolation_points_with_gaps() {
    // Values with gaps between neighbours, ranks just below, at and above integers.
    let mut rng = Rng::new(18);
    let n = 1001;
    let g = Grouping::Columns { rows: n, cols: 2 };
    let mut data: Vec<f32> =
        (0..g.numel()).map(|i| ((i / 2) as f32).powi(2) * if i % 2 == 0 { 1.0 } else { -3.0 }).collect();
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        data.swap(2 * i, 2 * j);
    }
    let mut qs = Vec::new();
    for k in [1usize, 2, 250, 499, 500, 501, 998, 999] {
        let r = k as f64 / 1000.0;
        qs.extend([r, r - 1e-7, r + 1e-7, r - 1e-12, r + 1e-12, r + 0.0005]);
    }
    qs.retain(|q| (0.0..=1.0).contains(q));
    check("gaps", &g, &data, &qs);
}

#[test]
fn many_quantiles_unsorted_and_repeated() {
    let mut rng = Rng::new(19);
    let g = Grouping::Columns { rows: 3001, cols: 2 };
    let data = rng.normals(g.numel(), 1.0, 2.0);
    let qs = [0.9, 0.1, 0.5, 0.1, 1.0, 0.0, 0.5, -0.0, 0.25];
    check("unsorted", &g, &data, &qs);
    // More unique q than one batch of passes (128) resolves.
    let qs: Vec<f64> = (0..300).map(|_| rng.uniform()).chain([0.0, 1.0]).collect();
    check("300 q", &g, &data, &qs);
    let g = Grouping::Rows { rows: 3, len: 50 };
    let data = rng.normals(g.numel(), 1.0, 2.0);
    let qs: Vec<f64> = (0..=1000).map(|i| i as f64 / 1000.0).collect();
    check("1001 q on 50 values", &g, &data, &qs);
}

#[test]
fn forced_tiny_chunks_cross_many_boundaries() {
    let gpu = own_gpu();
    let mut rng = Rng::new(20);
    for span in [64, 100, 1000] {
        gpu.set_max_chunk_elements(Some(span));
        for g in layouts(523) {
            let mut data = rng.normals(g.numel(), 10.0, 3.0);
            sprinkle_nan(&mut data, 0.05, &mut rng);
            check_on(&gpu, &format!("chunk {span}"), &g, &data, &MANY_Q);
        }
    }
}

#[test]
fn many_short_segments() {
    // Short segments: narrow digits, many segments per workgroup, several histogram batches.
    let mut rng = Rng::new(21);
    for g in [
        Grouping::Rows { rows: 20_000, len: 50 },
        Grouping::Columns { rows: 7, cols: 3000 },
        Grouping::Instances { n: 100, c: 64, spatial: 9, channels_last: true },
        Grouping::Rows { rows: 70_000, len: 1 },
    ] {
        let mut data = rng.normals(g.numel(), 0.0, 1.0);
        sprinkle_nan(&mut data, 0.05, &mut rng);
        check("short segments", &g, &data, &MANY_Q);
    }
    // Several histogram batches with wide digits too (the sample-and-bracket path: its
    // dense candidate keys map back through each batch's scan).
    let g = Grouping::Columns { rows: 20_000, cols: 600 };
    let data = rng.normals(g.numel(), 0.0, 1.0);
    check("600 columns", &g, &data, &[0.25, 0.5, 0.75]);
    let t = GpuTensor::from_slice(gpu(), &data, &[g.numel()]).unwrap();
    assert_eq!(whole_segment_selections(gpu(), &t, &g, &[0.25, 0.5, 0.75]).unwrap(), 0);
}

#[test]
fn large_segments() {
    let mut rng = Rng::new(22);
    let g = Grouping::Columns { rows: 1_100_000, cols: 1 };
    let mut data = rng.normals(g.numel(), 5.0, 2.0);
    sprinkle_nan(&mut data, 0.01, &mut rng);
    check("1.1e6", &g, &data, &MANY_Q);
    // The percentiles take the radix passes over the whole input; over 2^20 keys a
    // segment's level 0 counts into workgroup histograms on a software adapter too.
    let percentiles: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    check("1.1e6 percentiles", &g, &data, &percentiles);
    let g = Grouping::Columns { rows: 200_000, cols: 10 };
    let data = rng.normals(g.numel(), -5.0, 20.0);
    check("2e5 x 10", &g, &data, &MANY_Q);
}

/// Long segments with a few q take the sample-and-bracket path: ranks are resolved from
/// bracket counts (ties at a bracket's ends), from the candidates strictly inside, or
/// by the radix passes over the whole segment when the sample misses.
#[test]
fn long_segments_few_quantiles() {
    let mut rng = Rng::new(23);
    // Up to 3, 4, 8, 12 and 16 distinct q: each counting entry point; 17: the radix passes.
    let deciles: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
    let sixteen: Vec<f64> = (1..=16).map(|i| i as f64 / 17.0).collect();
    let seventeen: Vec<f64> = (0..=16).map(|i| i as f64 / 16.0).collect();
    let qsets: [&[f64]; 8] = [
        &[0.25, 0.5, 0.75],
        &[0.0, 1.0],
        &[0.5],
        &[0.0, 0.001, 0.1, 0.5, 0.5, 0.9, 0.999, 1.0],
        &[0.1, 0.2, 0.3, 0.4],
        &deciles,
        &sixteen,
        &seventeen,
    ];
    let rows = 70_001;
    // Three columns: float loads; four: the vec4 counting pass, four columns per load.
    for cols in [3, 4] {
        let g = Grouping::Columns { rows, cols };
        let mut normal = rng.normals(g.numel(), 3.0, 2.0);
        sprinkle_nan(&mut normal, 0.05, &mut rng);
        let ties: Vec<f32> = (0..g.numel()).map(|_| [1.5f32, -2.0, 7.0, 0.0][rng.below(4)]).collect();
        // Half the values on one number, the rest spread: the median sits in a tie.
        let lumpy: Vec<f32> =
            (0..g.numel()).map(|i| if i % 2 == 0 { 4.0 } else { rng.normal() as f32 * 10.0 }).collect();
        let mut sorted = rng.normals(g.numel(), 0.0, 1.0);
        sorted.sort_by(f32::total_cmp);
        let constant = vec![-0.5f32; g.numel()];
        // Candidate keys are made dense (offsets per bracket, shifted to the top bits):
        // brackets over the whole float range (their widths sum to nearly 2^32), and
        // values a few ulps apart (the first radix pass already leaves no bit).
        let extremes: Vec<f32> = (0..g.numel())
            .map(|_| match rng.below(6) {
                0 => [3e38f32, -3e38, f32::MAX, f32::MIN][rng.below(4)],
                1 => f32::from_bits(rng.below(1 << 23) as u32) * if rng.below(2) == 0 { 1.0 } else { -1.0 },
                2 => [0.0f32, -0.0][rng.below(2)],
                _ => rng.normal() as f32 * 10f32.powi(rng.below(60) as i32 - 30),
            })
            .collect();
        let last_bits: Vec<f32> =
            (0..g.numel()).map(|_| f32::from_bits(1.0f32.to_bits() + rng.below(1500) as u32)).collect();
        for (what, data) in [
            ("normal", &normal),
            ("ties", &ties),
            ("lumpy", &lumpy),
            ("sorted", &sorted),
            ("constant", &constant),
            ("extremes", &extremes),
            ("last bits", &last_bits),
        ] {
            for qs in qsets {
                check(what, &g, data, qs);
            }
            // The dense keys' radix passes ran (no fallback hides them).
            let t = GpuTensor::from_slice(gpu(), data, &[g.numel()]).unwrap();
            let fell_back = whole_segment_selections(gpu(), &t, &g, &[0.25, 0.5, 0.75]).unwrap();
            assert_eq!(fell_back, 0, "{what} {g:?}");
        }
    }
    // More segments than one counting workgroup holds (67 columns: float loads; 68
    // rows: vec4 loads).
    for g in [Grouping::Columns { rows: 1 << 16, cols: 67 }, Grouping::Rows { rows: 68, len: 1 << 16 }] {
        let data = rng.normals(g.numel(), -1.0, 3.0);
        for qs in [&[0.25, 0.5, 0.75][..], &deciles] {
            assert_eq!(input_passes(gpu(), &g, qs), 1, "{g:?} takes the one-pass path");
            check("many long segments", &g, &data, qs);
        }
    }
    // Per segment: sparse values among NaN (the sample sees few or none of them: the
    // whole-segment fallback), spread values (candidates), an all-NaN segment, and a
    // segment with ties, in one call.
    let g = Grouping::Rows { rows: 4, len: 100_000 };
    let mut data = vec![f32::NAN; g.numel()];
    for (i, x) in data[..100_000].iter_mut().enumerate() {
        if i % 20_011 == 7 {
            *x = i as f32;
        }
    }
    for x in data[100_000..200_000].iter_mut() {
        *x = rng.normal() as f32;
    }
    for x in data[300_000..].iter_mut() {
        *x = [3.0f32, 1.0, 2.0][rng.below(3)];
    }
    for qs in qsets {
        check("mixed paths", &g, &data, qs);
    }
    // Heavy tails and values spread over the whole float range.
    let g = Grouping::Columns { rows: 1 << 17, cols: 2 };
    let data: Vec<f32> =
        (0..g.numel()).map(|_| (rng.normal() * 10f64.powi(rng.below(70) as i32 - 35)) as f32).collect();
    for qs in qsets {
        check("heavy tails", &g, &data, qs);
    }
    // The counting passes compare keys as signed integers: values on both sides of the
    // sign (±0.0, subnormals, neighbours one bit apart, ±3e38, ±inf) with NaN mixed in,
    // and a distribution centred on zero so that brackets straddle it.
    let specials = [
        -0.0f32,
        0.0,
        f32::from_bits(1),
        -f32::from_bits(1),
        1e-40,
        -1e-40,
        1.0,
        f32::from_bits(1.0f32.to_bits() + 1),
        3e38,
        -3e38,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    for cols in [3, 4] {
        let g = Grouping::Columns { rows: 70_001, cols };
        let mut data: Vec<f32> = (0..g.numel())
            .map(|_| if rng.below(3) == 0 { specials[rng.below(specials.len())] } else { rng.normal() as f32 * 1e-38 })
            .collect();
        sprinkle_nan(&mut data, 0.02, &mut rng);
        for qs in qsets {
            check("signed specials", &g, &data, qs);
        }
    }
}

/// Segments from 8192 values take the sample-and-bracket path too, with a small sample
/// (wide brackets, many candidates): every layout, NaN mixed in, ties and sorted.
#[test]
fn medium_segments_few_quantiles() {
    let mut rng = Rng::new(37);
    let deciles: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
    for n in [8192, 10_007] {
        for g in layouts(n) {
            let mut normal = rng.normals(g.numel(), 3.0, 2.0);
            sprinkle_nan(&mut normal, 0.05, &mut rng);
            let ties: Vec<f32> = (0..g.numel()).map(|_| [1.5f32, -2.0, 7.0][rng.below(3)]).collect();
            let mut sorted = rng.normals(g.numel(), 0.0, 1.0);
            sorted.sort_by(f32::total_cmp);
            for (what, data) in [("normal", &normal), ("ties", &ties), ("sorted", &sorted)] {
                for qs in [&[0.25, 0.5, 0.75][..], &deciles] {
                    assert_eq!(input_passes(gpu(), &g, qs), 1, "{g:?} takes the one-pass path");
                    check(&format!("{what} n={n}"), &g, data, qs);
                    let t = GpuTensor::from_slice(gpu(), data, &[g.numel()]).unwrap();
                    let fell_back = whole_segment_selections(gpu(), &t, &g, qs).unwrap();
                    assert_eq!(fell_back, 0, "{g:?} {what} {qs:?}: no segment falls back to the whole-segment passes");
                }
            }
        }
    }
}

/// Many columns (a multiple of four) count through the vec4 pass with up to 128
/// columns to a workgroup: each component of a load its own column, every column its
/// own row of the workgroup's counts and its own candidate list. Also with slots that
/// run out in every column or in some. The results are exact even when a column's
/// counts go wrong (its bracket then misses and it falls back to the whole-column radix
/// passes), so the test also asserts that no column falls back with enough slots.
#[test]
fn wide_columns_count_through_vec4() {
    let gpu = own_gpu();
    let mut rng = Rng::new(41);
    // 520 columns: 130 vec4 columns, in tiles of 32 (a workgroup counts at most 128 segments).
    for g in [
        Grouping::Columns { rows: 8192, cols: 100 },
        Grouping::Columns { rows: 9001, cols: 36 },
        Grouping::Columns { rows: 8192, cols: 520 },
    ] {
        let mut normal = rng.normals(g.numel(), 3.0, 2.0);
        sprinkle_nan(&mut normal, 0.03, &mut rng);
        let Grouping::Columns { rows, cols } = g else { unreachable!() };
        // Column c: an offset of its own, and every third column sorted.
        let mut mixed = rng.normals(g.numel(), 0.0, 1.0);
        for c in 0..cols {
            let mut col: Vec<f32> = (0..rows).map(|r| mixed[r * cols + c] + c as f32).collect();
            if c % 3 == 0 {
                col.sort_by(f32::total_cmp);
            }
            for (r, v) in col.into_iter().enumerate() {
                mixed[r * cols + c] = v;
            }
        }
        for slots in [None, Some(12), Some(100)] {
            gpu.set_candidate_slots(slots);
            for (what, data) in [("normal", &normal), ("mixed", &mixed)] {
                for qs in [&[0.25, 0.5, 0.75][..], &[0.1, 0.5, 0.9, 0.99]] {
                    assert_eq!(input_passes(&gpu, &g, qs), 1, "{g:?} takes the one-pass path");
                    check_on(&gpu, &format!("{what}, {slots:?} slots"), &g, data, qs);
                    let t = GpuTensor::from_slice(&gpu, data, &[g.numel()]).unwrap();
                    let fell_back = whole_segment_selections(&gpu, &t, &g, qs).unwrap();
                    // Enough slots: every bracket holds, no column falls back; 12: all
                    // do; 100: some do, on 100 columns.
                    match slots {
                        None => assert_eq!(fell_back, 0, "{g:?} {what}: a counting pass that counts right"),
                        Some(12) => assert_eq!(fell_back, cols, "{g:?} {what}: every column out of slots"),
                        _ => {}
                    }
                }
            }
        }
    }
    gpu.set_candidate_slots(None);
}

/// The counting passes give each of their threads candidate slots of its own; a
/// thread that finds more candidates than slots sends its segment to the radix passes
/// over the whole input. Forced here with a few slots (every thread runs out, or only
/// some do), through the vec4 pass on four columns (one segment per component) and on
/// rows (four values of one segment per load), and through the float pass on three
/// columns, random and sorted.
#[test]
fn candidate_slots_run_out() {
    let gpu = own_gpu();
    let mut rng = Rng::new(31);
    let deciles: Vec<f64> = (0..=10).map(|i| i as f64 / 10.0).collect();
    for g in [
        Grouping::Columns { rows: 70_001, cols: 4 },
        Grouping::Rows { rows: 2, len: 100_000 },
        Grouping::Columns { rows: 70_001, cols: 3 },
    ] {
        let normal = rng.normals(g.numel(), 3.0, 2.0);
        let mut sorted = normal.clone();
        sorted.sort_by(f32::total_cmp);
        for slots in [1, 3, 40] {
            gpu.set_candidate_slots(Some(slots));
            for (what, data) in [("normal", &normal), ("sorted", &sorted)] {
                for qs in [&[0.25, 0.5, 0.75][..], &[0.5], &deciles] {
                    check_on(&gpu, &format!("{what}, {slots} slots"), &g, data, qs);
                    if slots == 1 {
                        // A thread's single slot stays free (see write_candidates): every
                        // segment with a candidate falls back.
                        let t = GpuTensor::from_slice(&gpu, data, &[g.numel()]).unwrap();
                        let fell_back = whole_segment_selections(&gpu, &t, &g, qs).unwrap();
                        assert_eq!(fell_back, g.num_segments(), "{g:?} {what} {qs:?}");
                    }
                }
            }
        }
    }
    gpu.set_candidate_slots(None);
}

/// The counting pass comes in two kinds: one counts the keys equal to a bracket's ends
/// (four counts a bracket), the other takes them as candidates (two counts, ~10 %
/// faster). Heavy ties in the sample at a bracket's end (a value that, as candidates,
/// could fill the lists) pick the first for the whole call.
/// Checked: the pick (ties in one column of four are enough), both kinds forced on
/// every kind of data (the two-count pass on heavy ties fills its lists and falls back,
/// still exact), the float pass (three columns) and the vec4 passes (one segment per
/// component, four values of one segment per load), q at the edges (0 and 1: brackets
/// to the ends of the key range).
#[test]
fn counting_pass_follows_the_samples_ties() {
    let gpu = own_gpu();
    let mut rng = Rng::new(41);
    let rows = 70_001;
    let qsets: [&[f64]; 4] = [&[0.25, 0.5, 0.75], &[0.0, 1.0], &[0.0, 0.5, 1.0], &[0.1, 0.2, 0.3, 0.4]];
    for g in [
        Grouping::Columns { rows, cols: 3 },
        Grouping::Columns { rows, cols: 4 },
        Grouping::Rows { rows: 2, len: 100_000 },
    ] {
        let n = g.numel();
        let normal = rng.normals(n, 3.0, 2.0);
        let mut sorted = normal.clone();
        sorted.sort_by(f32::total_cmp);
        // Small integers: every quantile sits in a tie.
        let ints: Vec<f32> = (0..n).map(|_| rng.below(5) as f32).collect();
        // Segment 0 (column 0, or row 0) integers, the others normal.
        let seg = g.segments();
        let mut mixed = normal.clone();
        for k in 0..g.segment_len() {
            mixed[seg.offset(0, k)] = rng.below(3) as f32;
        }
        // Five values a few ulps apart: heavy ties at every bracket's end.
        let last_bits: Vec<f32> = (0..n).map(|_| f32::from_bits(1.0f32.to_bits() + rng.below(5) as u32)).collect();
        // Rounded to hundredths: the sample sees a few values twice, but each stands for
        // few inputs (the two-count pass stays).
        let rounded: Vec<f32> = normal.iter().map(|&x| (x * 100.0).round() / 100.0).collect();
        for (what, data, ties) in [
            ("normal", &normal, false),
            ("sorted", &sorted, false),
            ("rounded", &rounded, false),
            ("integers", &ints, true),
            ("one integer segment", &mixed, true),
            ("last bits", &last_bits, true),
        ] {
            let t = GpuTensor::from_slice(&gpu, data, &[n]).unwrap();
            for qs in qsets {
                gpu.set_count_ties(None);
                let picked = counting_pass_counts_ties(&gpu, &t, &g, qs).unwrap();
                assert_eq!(picked, Some(ties), "{what} {g:?} {qs:?}: the counting pass picked");
                assert_eq!(whole_segment_selections(&gpu, &t, &g, qs).unwrap(), 0, "{what} {g:?} {qs:?}");
                check_on(&gpu, what, &g, data, qs);
                for forced in [false, true] {
                    gpu.set_count_ties(Some(forced));
                    assert_eq!(counting_pass_counts_ties(&gpu, &t, &g, qs).unwrap(), Some(forced));
                    check_on(&gpu, &format!("{what}, ties counted: {forced}"), &g, data, qs);
                    let fell_back = whole_segment_selections(&gpu, &t, &g, qs).unwrap();
                    if forced || !ties {
                        assert_eq!(fell_back, 0, "{what} {g:?} {qs:?}, ties counted: {forced}");
                    }
                }
            }
        }
        // The two-count pass really takes the ends as candidates: with a few slots per
        // thread, heavy ties at the quartiles' brackets (on the integers) fill them,
        // where the four-count pass stores nothing.
        gpu.set_candidate_slots(Some(40));
        let t = GpuTensor::from_slice(&gpu, &ints, &[n]).unwrap();
        for (forced, fallbacks) in [(false, g.num_segments()), (true, 0)] {
            gpu.set_count_ties(Some(forced));
            let fell_back = whole_segment_selections(&gpu, &t, &g, &[0.25, 0.5, 0.75]).unwrap();
            assert_eq!(fell_back, fallbacks, "{g:?}: integers, 40 slots, ties counted: {forced}");
        }
        gpu.set_candidate_slots(None);
        // Grids of more than one row (x, y; eight workgroups a row): the indirect
        // arguments carry both.
        gpu.set_max_workgroups_per_dim(Some(8));
        for (what, data, ties) in [("normal", &normal, false), ("integers", &ints, true)] {
            gpu.set_count_ties(None);
            let t = GpuTensor::from_slice(&gpu, data, &[n]).unwrap();
            assert_eq!(counting_pass_counts_ties(&gpu, &t, &g, &[0.25, 0.5, 0.75]).unwrap(), Some(ties));
            check_on(&gpu, &format!("{what}, eight workgroups a row"), &g, data, &[0.25, 0.5, 0.75]);
        }
        gpu.set_max_workgroups_per_dim(None);
    }
    gpu.set_count_ties(None);
}

#[test]
fn invalid_and_empty_requests() {
    let g = Grouping::Columns { rows: 4, cols: 2 };
    let t = GpuTensor::from_slice(gpu(), &[1.0; 8], &[4, 2]).unwrap();
    for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert!(matches!(quantiles(gpu(), &t, &g, &[0.5, bad]), Err(Error::InvalidParameter(_))), "{bad}");
        let mut enc = gpu().encoder();
        let m = record_moments(gpu(), &mut enc, &t, &g).unwrap();
        assert!(matches!(record_quantiles(gpu(), &mut enc, &t, &g, Some(&m), &[bad]), Err(Error::InvalidParameter(_))));
    }
    assert_eq!(quantiles(gpu(), &t, &g, &[]).unwrap(), vec![Vec::<f64>::new(); 2]);
    let wrong = Grouping::Columns { rows: 3, cols: 2 };
    assert!(matches!(quantiles(gpu(), &t, &wrong, &[0.5]), Err(Error::Shape(_))));
}

/// The GPU paths (interleaved lanes, many workgroups, a workgroup per segment's scan),
/// forced on this software adapter: what a hardware GPU runs, through the radix and
/// the sample-and-bracket paths.
#[test]
fn gpu_paths_match_too() {
    let gpu = own_gpu();
    gpu.set_software_paths(Some(false));
    let mut rng = Rng::new(43);
    for g in [Grouping::Columns { rows: 70_001, cols: 4 }, Grouping::Columns { rows: 70_001, cols: 3 }] {
        let mut data = rng.normals(g.numel(), 3.0, 2.0);
        sprinkle_nan(&mut data, 0.05, &mut rng);
        // MANY_Q: more groups than `scan_wide` sums runs for (SCAN_GROUPS).
        for qs in [&[0.25, 0.5, 0.75][..], &[0.0, 0.001, 0.1, 0.5, 0.9, 0.999, 1.0][..], &MANY_Q[..]] {
            check_on(&gpu, "gpu paths", &g, &data, qs);
        }
    }
    for g in layouts(300) {
        let data = rng.normals(g.numel(), 0.0, 1.0);
        check_on(&gpu, "gpu paths", &g, &data, &[0.1, 0.5, 0.9]);
    }
}

/// The GPU paths again through GL (llvmpipe) where this machine has it, whatever
/// backend the suite runs on: Vulkan's bounds checks clamp an out-of-range atomic
/// silently, GL llvmpipe's don't (a histogram pass once bumped bin `NOKEY` for keys of
/// no group: the results stayed right on Vulkan, GL crashed). Skipped, saying so,
/// without a GL adapter.
#[test]
fn gpu_paths_on_gl_too() {
    let opts = gpunorm::GpuOptions { backends: Some(wgpu::Backends::GL), ..gpunorm::GpuOptions::from_env().unwrap() };
    let gpu = match Gpu::with_options(opts) {
        Ok(gpu) => gpu,
        Err(e) => {
            eprintln!("gpu_paths_on_gl_too: no GL adapter here, skipped ({e})");
            return;
        }
    };
    let mut rng = Rng::new(45);
    for software_paths in [false, true] {
        gpu.set_software_paths(Some(software_paths));
        for g in [Grouping::Columns { rows: 70_001, cols: 4 }, Grouping::Rows { rows: 2, len: 100_000 }] {
            let mut data = rng.normals(g.numel(), 3.0, 2.0);
            sprinkle_nan(&mut data, 0.05, &mut rng);
            for qs in [&[0.25, 0.5, 0.75][..], &MANY_Q[..]] {
                check_on(&gpu, &format!("GL, software paths {software_paths}"), &g, &data, qs);
            }
        }
    }
    // The sorting networks (software paths) through GL's shader compiler too.
    gpu.set_software_paths(Some(true));
    gpu.set_networks(Some(true));
    for g in [Grouping::Columns { rows: 100, cols: 40 }, Grouping::Rows { rows: 30, len: 20 }] {
        let mut data = rng.normals(g.numel(), 3.0, 2.0);
        sprinkle_nan(&mut data, 0.05, &mut rng);
        check_on(&gpu, "GL, sorting networks", &g, &data, &MANY_Q);
    }
}

/// The counting pass reading its input from the other source than this machine's
/// default (staged texels or the storage buffer, see `gpu/texels.rs`), through the
/// sample-and-bracket path.
#[test]
fn other_read_path_matches_too() {
    let gpu = own_gpu();
    gpu.set_texel_reads_disabled(gpu.reads_through_texels());
    let mut rng = Rng::new(44);
    for g in [Grouping::Columns { rows: 70_001, cols: 4 }, Grouping::Rows { rows: 2, len: 100_000 }] {
        let mut data = rng.normals(g.numel(), 3.0, 2.0);
        sprinkle_nan(&mut data, 0.05, &mut rng);
        check_on(&gpu, "other read path", &g, &data, &[0.25, 0.5, 0.75]);
    }
}

/// Long columns with more distinct q than the counting pass brackets take the radix
/// passes over the whole input; on a software adapter through a transpose first (one
/// more pass), on a GPU's paths through the columns. Both against the sort.
#[test]
fn long_columns_many_q_through_a_transpose() {
    let mut rng = Rng::new(32);
    let qs: Vec<f64> = (0..=20).map(|i| i as f64 / 20.0).collect();
    let gpu = own_gpu();
    for (rows, cols) in [(8300usize, 64usize), (9001, 3)] {
        let g = Grouping::Columns { rows, cols };
        let as_rows = Grouping::Rows { rows: cols, len: rows };
        let mut data = rng.normals(rows * cols, -1.0, 3.0);
        sprinkle_nan(&mut data, 0.02, &mut rng);
        for i in 0..rows {
            data[i * cols + 1] = (i % 7) as f32; // ties
        }
        for software_paths in [true, false] {
            gpu.set_software_paths(Some(software_paths));
            let what = format!("{rows} x {cols}, 21 q, software paths {software_paths}");
            let transposed = u32::from(software_paths);
            assert_eq!(input_passes(&gpu, &g, &qs), input_passes(&gpu, &as_rows, &qs) + transposed, "{what}");
            check_on(&gpu, &what, &g, &data, &qs);
        }
    }
}

/// The radix passes that mark their rounds (`hist_main_marked`, `hist_vec4_marked`):
/// raw keys past level 1 in passes of a million keys or more, through the columns (the
/// GPU paths: no transpose) and through rows (a transpose on a software adapter).
#[test]
fn marked_radix_passes_over_a_million_keys() {
    let mut rng = Rng::new(33);
    let (rows, cols) = (8000usize, 160usize);
    let g = Grouping::Columns { rows, cols };
    let mut data = rng.normals(rows * cols, 2.0, 0.5);
    sprinkle_nan(&mut data, 0.01, &mut rng);
    let gpu = own_gpu();
    for software_paths in [false, true] {
        gpu.set_software_paths(Some(software_paths));
        for qs in [&[0.25, 0.5, 0.75][..], &[0.01, 0.3, 0.99]] {
            check_on(&gpu, &format!("8000 x 160, software paths {software_paths}"), &g, &data, qs);
        }
    }
}

/// The transpose that many short columns take first, bit for bit: row blocks of 256
/// crossed and cut short, one row, one column, widths that are no multiple of 4.
#[test]
fn transposes_exactly_every_shape() {
    use gpunorm::kernels::copy::record_transpose;
    for (rows, cols) in [(1usize, 1usize), (3, 5), (4, 4), (8, 12), (256, 4), (260, 8), (257, 4), (4, 257), (1024, 68)]
    {
        let data: Vec<f32> = (0..(rows * cols) as u32).map(|i| f32::from_bits(0x3f80_0000 + i)).collect();
        let t = GpuTensor::from_slice(gpu(), &data, &[rows, cols]).unwrap();
        let mut enc = gpu().encoder();
        let tt = record_transpose(gpu(), &mut enc, &t).unwrap();
        gpu().submit_and_wait(enc).unwrap();
        assert_eq!(tt.shape(), &[cols, rows]);
        let got = tt.to_vec(gpu()).unwrap();
        for c in 0..cols {
            for r in 0..rows {
                assert_eq!(got[c * rows + r].to_bits(), data[r * cols + c].to_bits(), "{rows} x {cols}: ({r}, {c})");
            }
        }
    }
}

/// Many short columns (too short to sample, too long to rank by counting) on a software
/// adapter: transposed first, then selected as rows. Against the sort with ties, ±0,
/// ±3e38, NaN, an all-NaN and a constant column, q = 0 and 1 and many q, a row count
/// that is no multiple of anything, the GPU paths too; and the counts it returns.
#[test]
fn many_short_columns_through_a_transpose() {
    let mut rng = Rng::new(31);
    for (rows, cols) in [(300usize, 70usize), (1001, 128), (257, 64), (100, 64)] {
        let g = Grouping::Columns { rows, cols };
        let mut data = rng.normals(rows * cols, 1.0, 2.0);
        sprinkle_nan(&mut data, 0.05, &mut rng);
        for i in 0..rows {
            let row = &mut data[i * cols..(i + 1) * cols];
            row[0] = f32::NAN;
            row[1] = 2.5;
            row[2] = (i % 3) as f32;
            row[3] = if i % 2 == 0 { 0.0 } else { -0.0 };
            row[4] = if i % 5 == 0 { 3e38 } else { -3e38 };
        }
        check("short columns", &g, &data, &[0.0, 0.25, 0.5, 0.75, 1.0]);
        check("short columns, many q", &g, &data, &MANY_Q);
        let other = own_gpu();
        other.set_software_paths(Some(false));
        check_on(&other, "short columns, GPU paths", &g, &data, &[0.1, 0.5, 0.9]);
        // The counts (non-NaN per column) of the selection.
        let t = GpuTensor::from_slice(gpu(), &data, &[rows, cols]).unwrap();
        let mut enc = gpu().encoder();
        let (_, counts) = gpunorm::kernels::select::record_quantiles_counted(gpu(), &mut enc, &t, &g, &[0.5]).unwrap();
        gpu().submit_and_wait(enc).unwrap();
        let m = gpunorm::kernels::moments::download_moments(gpu(), &counts, cols).unwrap();
        for (j, mj) in m.iter().enumerate() {
            let want = (0..rows).filter(|&i| !data[i * cols + j].is_nan()).count() as u64;
            assert_eq!(mj.count, want, "{rows}x{cols} column {j}");
        }
    }
}

/// Short segments on a software adapter go through a sorting network (one thread a
/// segment, `network.wgsl`; forced here, where the data is too small to pay for its
/// compile): every network size and its edges (1 … 256 values), every layout, with
/// NaN, all-NaN segments, ties, signed zeros, subnormals and ±3e38 mixed in, and the
/// counts the selection hands on.
#[test]
fn short_segments_through_sorting_networks() {
    let gpu = own_gpu();
    gpu.set_networks(Some(true));
    let mut rng = Rng::new(51);
    let qs = [0.0, 0.01, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9, 0.99, 1.0];
    for len in [1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200, 255, 256] {
        for g in layouts(len) {
            let mut data = rng.normals(g.numel(), 3.0, 2.0);
            sprinkle_nan(&mut data, 0.1, &mut rng);
            for (i, x) in data.iter_mut().enumerate() {
                match i % 23 {
                    0 => *x = 2.5,
                    1 => *x = -0.0,
                    2 => *x = 0.0,
                    3 => *x = 3e38,
                    4 => *x = -3e38,
                    5 => *x = f32::from_bits(3),
                    6 => *x = -f32::from_bits(7),
                    _ => {}
                }
            }
            check_on(&gpu, &format!("network, {len} values"), &g, &data, &qs);
            if gpu.is_software() {
                assert_eq!(input_passes(&gpu, &g, &qs), 1, "{len} values, {g:?}: not through a network");
            }
            let seg = g.segments();
            let t = GpuTensor::from_slice(&gpu, &data, &[g.numel()]).unwrap();
            let mut enc = gpu.encoder();
            let (_, counts) =
                gpunorm::kernels::select::record_quantiles_counted(&gpu, &mut enc, &t, &g, &[0.5]).unwrap();
            gpu.submit_and_wait(enc).unwrap();
            let m = gpunorm::kernels::moments::download_moments(&gpu, &counts, seg.count as usize).unwrap();
            let want = reference::moments::moments(&data, &g);
            for (s, (got, want)) in m.iter().zip(&want).enumerate() {
                assert_eq!(got.count, want.count, "{len} values, {g:?}, segment {s}");
            }
        }
    }
    let g = Grouping::Columns { rows: 100, cols: 33 };
    let mut data = rng.normals(g.numel(), 0.0, 1.0);
    for i in 0..100 {
        data[i * 33 + 5] = f32::NAN;
        data[i * 33 + 7] = if i == 42 { 1.0 } else { f32::NAN };
    }
    check_on(&gpu, "network, all-NaN and one-value columns", &g, &data, &qs);
    // Inputs cut into windows (a dispatch each, its segments at a window's offset);
    // where a window would cut a segment, the radix passes take it.
    gpu.set_max_chunk_elements(Some(4096));
    for g in [
        Grouping::Rows { rows: 500, len: 100 },
        Grouping::Rows { rows: 90, len: 250 },
        Grouping::Columns { rows: 100, cols: 300 },
        Grouping::Instances { n: 7, c: 40, spatial: 30, channels_last: false },
    ] {
        let mut data = rng.normals(g.numel(), 1.0, 3.0);
        sprinkle_nan(&mut data, 0.05, &mut rng);
        check_on(&gpu, "network, windows", &g, &data, &qs);
    }
}

/// Unforced, a network sorts short columns where the input pays for its compile (2M
/// elements at 128 values), and once compiled it sorts small inputs too.
#[test]
fn a_large_input_of_short_columns_takes_a_network_by_itself() {
    let gpu = own_gpu();
    let mut rng = Rng::new(52);
    let small = Grouping::Columns { rows: 100, cols: 300 };
    let large = Grouping::Columns { rows: 128, cols: 16384 };
    let qs = [0.25, 0.5, 0.75];
    let software = gpu.is_software();
    if software {
        assert!(input_passes(&gpu, &small, &qs) > 1, "a small input compiled a network");
    }
    let mut data = rng.normals(large.numel(), -1.0, 3.0);
    sprinkle_nan(&mut data, 0.02, &mut rng);
    check_on(&gpu, "large input, short columns", &large, &data, &qs);
    if software {
        assert_eq!(input_passes(&gpu, &large, &qs), 1);
        assert_eq!(input_passes(&gpu, &small, &qs), 1, "the compiled network goes unused");
    }
    let data = rng.normals(small.numel(), 0.0, 1.0);
    check_on(&gpu, "small input after a large one", &small, &data, &qs);
}

/// Short segments' radix passes end, on a software adapter, in one walk per segment
/// that keeps its groups' keys in registers (`tail_main`, up to 1536 values): every
/// layout, NaN, both ends and the middle, few and more q (up to 8 distinct: at most 16
/// groups), and segments whose groups hold more keys than the walk keeps (a bulk of
/// near-equal values, small integers), which go on through the passes, beside segments
/// the walk resolves.
#[test]
fn radix_tail_in_one_walk() {
    // Forced: these inputs are too small to pay for its compile by themselves.
    let gpu = own_gpu();
    gpu.set_networks(Some(true));
    let mut rng = Rng::new(61);
    let qsets: [&[f64]; 4] =
        [&[0.25, 0.5, 0.75], &[0.0, 0.1, 0.5, 0.9, 1.0], &[0.5], &[0.0, 0.01, 0.2, 0.4, 0.6, 0.8, 0.99, 1.0]];
    for g in [
        Grouping::Rows { rows: 40, len: 300 },
        Grouping::Columns { rows: 1000, cols: 70 },
        Grouping::Columns { rows: 257, cols: 9 },
        Grouping::Instances { n: 3, c: 4, spatial: 700, channels_last: true },
        Grouping::Rows { rows: 5, len: 1536 },
    ] {
        let seg = g.segments();
        let mut data = rng.normals(g.numel(), 3.0, 2.0);
        sprinkle_nan(&mut data, 0.03, &mut rng);
        for qs in qsets {
            check_on(&gpu, &format!("tail, {g:?}"), &g, &data, qs);
        }
        // Every third segment crowded into a few keys' neighbourhood or onto small
        // integers: more keys in its groups than the walk keeps.
        let mut crowded = data.clone();
        for s in (0..seg.count as usize).step_by(3) {
            for k in 0..seg.len as usize {
                let v = if s % 2 == 0 { 1000.0 + (k % 17) as f32 * 1e-4 } else { (k % 5) as f32 };
                crowded[seg.offset(s, k)] = v;
            }
        }
        for qs in qsets {
            check_on(&gpu, &format!("tail, crowded, {g:?}"), &g, &crowded, qs);
        }
    }
}
