//! The statistics kernel against its float64 twin, on every segment layout, on random
//! and adversarial data, across chunk and dispatch boundaries.

mod common;

use common::{gpu, own_gpu, sprinkle_nan, Rng};
use gpunorm::kernels::moments::{download_moments, moments, record_moments_into, MOMENTS_BYTES};
use gpunorm::verify::{mean_tolerance, var_tolerance, Tolerance};
use gpunorm::{reference, Gpu, GpuTensor, Grouping, Moments};

/// Every segment layout, at a given element count per segment (roughly).
fn layouts(n: usize) -> Vec<Grouping> {
    let mut v = vec![
        Grouping::Columns { rows: n, cols: 3 },
        Grouping::Columns { rows: n, cols: 1 },
        // Widths that are multiples of 4: the vec4 path, four columns per load.
        Grouping::Columns { rows: n, cols: 8 },
        Grouping::Rows { rows: 3, len: n },
        // Lengths that are multiples of 4: the vec4 path, four elements per load.
        Grouping::Rows { rows: 3, len: 4 * n },
        Grouping::Channels { n: 2, c: 8, spatial: n.div_ceil(2), channels_last: true },
        Grouping::Channels { n: 3, c: 2, spatial: 4 * n, channels_last: false },
    ];
    for cl in [false, true] {
        v.push(Grouping::Channels { n: 2, c: 3, spatial: n.div_ceil(2), channels_last: cl });
        v.push(Grouping::Groups { n: 2, c: 4, spatial: n.div_ceil(2), groups: 2, channels_last: cl });
        v.push(Grouping::Instances { n: 2, c: 2, spatial: n, channels_last: cl });
    }
    v
}

/// Compare GPU moments with the reference within the documented tolerances.
fn assert_moments_match(what: &str, g: &Grouping, data: &[f32], got: &[Moments]) {
    let want = reference::moments(data, g);
    assert_eq!(got.len(), want.len(), "{what}: segment count");
    let n = g.segment_len();
    for (s, (a, b)) in got.iter().zip(&want).enumerate() {
        let ctx = format!("{what} {g:?} segment {s}: gpu {a:?} vs reference {b:?}");
        assert_eq!(a.count, b.count, "{ctx}");
        assert_eq!(a.nan_count, b.nan_count, "{ctx}");
        if b.count == 0 {
            assert!(a.mean.is_nan() && a.m2.is_nan() && a.min.is_nan() && a.max.is_nan(), "{ctx}");
            continue;
        }
        // min and max are exact (they are input values).
        assert_eq!(a.min, b.min, "{ctx}");
        assert_eq!(a.max, b.max, "{ctx}");
        let std = b.std();
        let chain = n; // worst case: one thread runs the whole segment
        let tm = mean_tolerance(n, chain.min(4096), b.mean.abs(), std);
        assert!(
            tm.accepts(a.mean, b.mean),
            "{ctx}: mean off by {:e} > {:e}",
            (a.mean - b.mean).abs(),
            tm.bound(b.mean)
        );
        let tv = var_tolerance(n, chain.min(4096), b.mean.abs(), std);
        assert!(
            tv.accepts(a.var(), b.var()),
            "{ctx}: var off by {:e} > {:e}",
            (a.var() - b.var()).abs(),
            tv.bound(b.var())
        );
    }
}

fn run(gpu: &Gpu, g: &Grouping, data: &[f32]) -> Vec<Moments> {
    let t = GpuTensor::from_slice(gpu, data, &[g.numel()]).unwrap();
    moments(gpu, &t, g).unwrap()
}

#[test]
fn random_data_every_layout_and_size() {
    let mut rng = Rng::new(1);
    for n in [1, 2, 255, 256, 257, 1000, 4097] {
        for g in layouts(n) {
            let data = rng.normals(g.numel(), 3.0, 2.0);
            assert_moments_match("random", &g, &data, &run(gpu(), &g, &data));
        }
    }
}

#[test]
fn nan_mixed_in_and_all_nan_segments() {
    let mut rng = Rng::new(2);
    for g in layouts(300) {
        let mut data = rng.normals(g.numel(), -1.0, 5.0);
        sprinkle_nan(&mut data, 0.2, &mut rng);
        // Make segment 0 entirely NaN.
        let seg = g.segments();
        for k in 0..g.segment_len() {
            data[seg.offset(0, k)] = f32::NAN;
        }
        let got = run(gpu(), &g, &data);
        assert_eq!(got[0].count, 0);
        assert_eq!(got[0].nan_count as usize, g.segment_len());
        assert_moments_match("nan", &g, &data, &got);
    }
}

#[test]
fn constant_segments_have_zero_variance() {
    for g in layouts(777) {
        let data = vec![0.1f32; g.numel()];
        let got = run(gpu(), &g, &data);
        for m in &got {
            assert_eq!(m.m2, 0.0, "{g:?}: constant segment must have M2 exactly 0, got {m:?}");
            assert_eq!(m.mean, 0.1f32 as f64);
        }
        assert_moments_match("constant", &g, &data, &got);
    }
}

#[test]
fn huge_offset_keeps_variance() {
    // 1e4 + N(0,1): E[x²] − E[x]² would lose every digit in float32.
    let mut rng = Rng::new(3);
    for g in [
        Grouping::Columns { rows: 100_000, cols: 2 },
        Grouping::Columns { rows: 100_000, cols: 4 },
        Grouping::Rows { rows: 2, len: 100_000 },
        Grouping::Rows { rows: 2, len: 100_001 },
    ] {
        let data = rng.normals(g.numel(), 1e4, 1.0);
        let got = run(gpu(), &g, &data);
        assert_moments_match("offset", &g, &data, &got);
        for m in &got {
            assert!((m.var() - 1.0).abs() < 0.05, "variance of 1e4 + N(0,1) came out {}", m.var());
        }
    }
}

#[test]
fn outlier_first_and_sorted_segments() {
    // A segment whose first value is far from the rest (a state's shift must not stay
    // there), and sorted data (each block's mean far from the running mean).
    let mut rng = Rng::new(9);
    for g in layouts(5000) {
        let seg = g.segments();
        let mut data = rng.normals(g.numel(), 0.0, 1.0);
        for s in 0..seg.count as usize {
            data[seg.offset(s, 0)] = 1e6;
        }
        assert_moments_match("outlier first", &g, &data, &run(gpu(), &g, &data));
        for s in 0..seg.count as usize {
            for k in 0..g.segment_len() {
                data[seg.offset(s, k)] = 1e3 + k as f32 * 0.37;
            }
        }
        assert_moments_match("sorted", &g, &data, &run(gpu(), &g, &data));
    }
}

#[test]
fn one_element_segments() {
    for g in [
        Grouping::Columns { rows: 1, cols: 5 },
        Grouping::Columns { rows: 1, cols: 8 },
        Grouping::Rows { rows: 7, len: 1 },
    ] {
        let data: Vec<f32> = (0..g.numel()).map(|i| i as f32 - 2.5).collect();
        let got = run(gpu(), &g, &data);
        for (i, m) in got.iter().enumerate() {
            assert_eq!((m.count, m.m2, m.mean), (1, 0.0, data[g.segments().offset(i, 0)] as f64));
        }
    }
}

#[test]
fn forced_tiny_chunks_cross_many_boundaries() {
    let gpu = own_gpu();
    let mut rng = Rng::new(4);
    for span in [64, 100, 1000] {
        gpu.set_max_chunk_elements(Some(span));
        for g in layouts(523) {
            let mut data = rng.normals(g.numel(), 10.0, 3.0);
            sprinkle_nan(&mut data, 0.05, &mut rng);
            assert_moments_match(&format!("chunk {span}"), &g, &data, &run(&gpu, &g, &data));
        }
    }
}

#[test]
fn many_segments_share_workgroups() {
    // 280_000 short rows: a thread per segment, not a workgroup per segment.
    let g = Grouping::Rows { rows: 70_000 * 4, len: 3 };
    let mut rng = Rng::new(5);
    let data = rng.normals(g.numel(), 0.0, 1.0);
    assert_moments_match("many segments", &g, &data, &run(gpu(), &g, &data));
}

#[test]
fn dispatches_beyond_one_row_of_workgroups() {
    // With the per-dimension limit forced down to 64, every pass with more than 64
    // workgroups is spread over x and y and must still cover every segment once.
    let gpu = own_gpu();
    gpu.set_max_workgroups_per_dim(Some(64));
    let mut rng = Rng::new(15);
    for g in layouts(3000).into_iter().chain([Grouping::Rows { rows: 5000, len: 700 }]) {
        let data = rng.normals(g.numel(), -2.0, 0.5);
        assert_moments_match("2-D dispatch", &g, &data, &run(&gpu, &g, &data));
    }
}

#[test]
fn output_buffer_prefilled_with_sentinel_is_overwritten() {
    // Record into an encoder, then check every state was written: count must equal
    // the segment length and no field may hold the sentinel bit pattern.
    let g = Grouping::Columns { rows: 513, cols: 7 };
    let mut rng = Rng::new(6);
    let data = rng.normals(g.numel(), 1.0, 1.0);
    let t = GpuTensor::from_slice(gpu(), &data, &[513, 7]).unwrap();
    let buf = gpu().storage_buffer("sentinel", 7 * MOMENTS_BYTES).unwrap();
    gpu().queue().write_buffer(&buf, 0, &vec![0xA5u8; 7 * MOMENTS_BYTES as usize]);
    let mut enc = gpu().encoder();
    record_moments_into(gpu(), &mut enc, &t, &g, &buf, None).unwrap();
    gpu().submit_and_wait(enc).unwrap();
    let got = download_moments(gpu(), &buf, 7).unwrap();
    assert_moments_match("sentinel", &g, &data, &got);
}

#[test]
fn input_above_one_binding() {
    // A real input above lavapipe's 128 MiB max_storage_buffer_binding_size.
    let limit = gpu().limits().max_storage_buffer_binding_size as usize;
    let rows = limit / 4 / 2 + 1_000_003;
    let g = Grouping::Columns { rows, cols: 2 };
    let mut rng = Rng::new(7);
    let data = rng.normals(g.numel(), 5.0, 2.0);
    assert!(data.len() * 4 > limit);
    assert_moments_match("big", &g, &data, &run(gpu(), &g, &data));
}

#[test]
fn readback_larger_than_its_staging_buffer() {
    // Reads above 64 MiB go through one staging buffer in steps (gpu/readback.rs): the
    // whole tensor and reads that start and end off a step's edges come back exact.
    let n = (64 << 20) / 4 + 1_234_567;
    let data: Vec<f32> = (0..n as u32).map(|i| f32::from_bits(0x3f80_0000 + i)).collect();
    let t = GpuTensor::from_slice(gpu(), &data, &[n]).unwrap();
    let back = t.to_vec(gpu()).unwrap();
    assert_eq!(back.len(), n);
    if let Some(i) = back.iter().zip(&data).position(|(a, b)| a.to_bits() != b.to_bits()) {
        panic!("element {i}: {} != {}", back[i], data[i]);
    }
    for (first, len) in [(1, n - 1), (n - 5, 5), ((16 << 20) - 3, 7)] {
        let part: Vec<u32> = gpunorm::gpu::read_values(gpu(), t.buffer(), first as u64 * 4, len as u64 * 4).unwrap();
        let want: Vec<u32> = data[first..first + len].iter().map(|v| v.to_bits()).collect();
        assert!(part == want, "read of {len} values from {first}");
    }
}

#[test]
fn merged_shard_states_equal_one_pass() {
    let g = Grouping::Columns { rows: 3000, cols: 4 };
    let mut rng = Rng::new(8);
    let data = rng.normals(g.numel(), 2.0, 3.0);
    let whole = run(gpu(), &g, &data);
    let (a, b) = data.split_at(1000 * 4);
    let ga = Grouping::Columns { rows: 1000, cols: 4 };
    let gb = Grouping::Columns { rows: 2000, cols: 4 };
    let merged = gpunorm::stats::merge_all(&run(gpu(), &ga, a), &run(gpu(), &gb, b));
    for (m, w) in merged.iter().zip(&whole) {
        assert_eq!(m.count, w.count);
        assert!(Tolerance::new(1e-5, 1e-5).accepts(m.mean, w.mean));
        assert!(Tolerance::new(1e-4, 1e-5).accepts(m.var(), w.var()));
    }
}

#[test]
fn huge_magnitudes_with_prescale() {
    // ±3e38: differences and squares overflow float32; a power-of-two prescale per
    // segment keeps mean and variance finite and right (min and max stay raw).
    use gpunorm::kernels::moments::{moments_prescaled, prescale_for};
    let g = Grouping::Columns { rows: 5, cols: 3 };
    let data: Vec<f32> = vec![
        3e38, 1.0, -3e38, //
        -3e38, 2.0, 3e38, //
        3e38, 3.0, 1e38, //
        3e38, 4.0, -1e38, //
        -3e38, 5.0, 0.0,
    ];
    let want = gpunorm::reference::moments(&data, &g);
    let prescale: Vec<f32> =
        (0..3).map(|j| prescale_for((0..5).map(|i| data[i * 3 + j].abs() as f64).fold(0.0, f64::max))).collect();
    assert_eq!(prescale[1], 1.0, "ordinary data is left alone");
    let t = GpuTensor::from_slice(gpu(), &data, &[5, 3]).unwrap();
    let got = moments_prescaled(gpu(), &t, &g, &prescale).unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert_eq!((a.min, a.max), (b.min, b.max));
        assert!(Tolerance::new(1e-6 * b.std(), 1e-6).accepts(a.mean, b.mean), "{a:?} vs {b:?}");
        assert!(Tolerance::new(0.0, 1e-5).accepts(a.var(), b.var()), "{a:?} vs {b:?}");
    }
    // The same columns and one more, four wide (the vec4 path), each on many rows.
    let rows = 1001;
    let g4 = Grouping::Columns { rows, cols: 4 };
    let data4: Vec<f32> =
        (0..rows * 4).map(|i| if i % 4 == 3 { (i % 7) as f32 } else { data[(i / 4 % 5) * 3 + i % 4] }).collect();
    let want = gpunorm::reference::moments(&data4, &g4);
    let prescale: Vec<f32> =
        (0..4).map(|j| prescale_for((0..rows).map(|i| data4[i * 4 + j].abs() as f64).fold(0.0, f64::max))).collect();
    let t = GpuTensor::from_slice(gpu(), &data4, &[rows, 4]).unwrap();
    let got = moments_prescaled(gpu(), &t, &g4, &prescale).unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert_eq!((a.min, a.max), (b.min, b.max));
        assert!(Tolerance::new(1e-6 * b.std(), 1e-5).accepts(a.mean, b.mean), "{a:?} vs {b:?}");
        assert!(Tolerance::new(0.0, 1e-4).accepts(a.var(), b.var()), "{a:?} vs {b:?}");
    }
}

#[test]
fn tiny_magnitudes_with_prescale() {
    // A spread of 1e-25: squared deviations (1e-50) underflow float32 to zero, which
    // read such a column as constant. Scaled up by a power of two, the moments match.
    use gpunorm::kernels::moments::{moments_prescaled, prescale_for};
    let mut rng = Rng::new(77);
    for (rows, cols) in [(1000, 1), (1001, 4), (999, 3)] {
        let g = Grouping::Columns { rows, cols };
        let data: Vec<f32> = (0..rows * cols)
            .map(|i| match i % cols {
                0 => rng.normal() as f32 * 1e-25,
                1 => 3e-30 + rng.normal() as f32 * 1e-35,
                2 => (i % 5) as f32 * 1e-38,
                _ => rng.normal() as f32,
            })
            .collect();
        let want = reference::moments(&data, &g);
        let prescale: Vec<f32> = (0..cols)
            .map(|j| prescale_for((0..rows).map(|i| data[i * cols + j].abs() as f64).fold(0.0, f64::max)))
            .collect();
        if cols > 3 {
            assert_eq!(prescale[3], 1.0, "ordinary data is left alone");
        }
        let t = GpuTensor::from_slice(gpu(), &data, &[rows, cols]).unwrap();
        let got = moments_prescaled(gpu(), &t, &g, &prescale).unwrap();
        for (j, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(b.var() > 0.0);
            assert_eq!((a.min, a.max), (b.min, b.max));
            assert!(Tolerance::new(1e-5 * b.std(), 1e-6).accepts(a.mean, b.mean), "column {j}: {a:?} vs {b:?}");
            assert!(Tolerance::new(0.0, 1e-4).accepts(a.var(), b.var()), "column {j}: {a:?} vs {b:?}");
        }
    }
}

/// The GPU paths (interleaved lanes, workgroup trees, many workgroups), forced on this
/// software adapter: what a hardware GPU runs.
#[test]
fn gpu_paths_match_too() {
    let gpu = own_gpu();
    gpu.set_software_paths(Some(false));
    let mut rng = Rng::new(41);
    for n in [1, 257, 4097] {
        for g in layouts(n) {
            let mut data = rng.normals(g.numel(), 1e3, 2.0);
            sprinkle_nan(&mut data, 0.05, &mut rng);
            assert_moments_match("gpu paths", &g, &data, &run(&gpu, &g, &data));
        }
    }
}

/// A software adapter reads a kernel's vec4 input through a staging texture (see
/// `gpu/texels.rs`): the dispatches say so, and with the texture path off the same walk
/// over the storage buffer matches the twin too.
#[test]
fn software_adapters_read_texels_and_buffers_alike() {
    let gpu = own_gpu();
    let software = gpu.adapter_info().device_type == wgpu::DeviceType::Cpu;
    // On by default only without AVX-512 (see `gpu/texels.rs`): turned on here.
    gpu.set_texel_reads_disabled(false);
    assert_eq!(gpu.reads_through_texels(), software);
    let g = Grouping::Columns { rows: 5000, cols: 8 }; // 10000 vec4: two full texel rows and a part
    let mut rng = Rng::new(47);
    let mut data = rng.normals(g.numel(), 1e3, 2.0);
    sprinkle_nan(&mut data, 0.05, &mut rng);
    if gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        gpu.start_profile().unwrap();
        let t = GpuTensor::from_slice(&gpu, &data, &[g.numel()]).unwrap();
        let mut enc = gpu.encoder();
        let out = gpunorm::kernels::moments::record_moments(&gpu, &mut enc, &t, &g).unwrap();
        gpu.finish_profile(&mut enc);
        gpu.submit_and_wait(enc).unwrap();
        let staged = gpu.read_profile().unwrap().iter().any(|d| d.entry.contains("TEXEL_INPUT=1"));
        assert_eq!(staged, software, "texel reads on a software adapter only");
        let got = download_moments(&gpu, &out, g.num_segments()).unwrap();
        assert_moments_match("texels", &g, &data, &got);
    }
    gpu.set_texel_reads_disabled(true);
    assert!(!gpu.reads_through_texels());
    for n in [1, 257, 4097] {
        for g in layouts(n) {
            let mut data = rng.normals(g.numel(), 1e3, 2.0);
            sprinkle_nan(&mut data, 0.05, &mut rng);
            assert_moments_match("buffer reads", &g, &data, &run(&gpu, &g, &data));
        }
    }
}

/// Wide matrices (tens to thousands of vec4 columns: on a software adapter the grid of
/// four vec4 columns a thread, or a thread per vec4 column with the workgroup stepping
/// through its rows together, `partials_wide`): random
/// data with NaN, an all-NaN, a constant, an offset, an outlier-first and a sorted
/// column, a lone outlier in the last column, row counts that are no multiple of the
/// step, tiny windows, prescale.
#[test]
fn wide_matrices_every_column_kind() {
    use gpunorm::kernels::moments::{moments_prescaled, prescale_for};
    let mut rng = Rng::new(21);
    let small = own_gpu();
    small.set_max_chunk_elements(Some(4096));
    // 256 to 2052 columns through the grid (`partials_grid`; up to 64 rows one part, its
    // states final), 4104 and 4100 of few rows too, 4100 of 1030 rows through
    // `partials_wide`, 100 through `partials_vec4`.
    for (rows, cols) in [(37, 256), (301, 1000), (19, 2052), (23, 4104), (700, 4100), (1030, 4100), (45, 100)] {
        let g = Grouping::Columns { rows, cols };
        let mut data = rng.normals(rows * cols, 3.0, 2.0);
        sprinkle_nan(&mut data, 0.01, &mut rng);
        for i in 0..rows {
            let row = &mut data[i * cols..(i + 1) * cols];
            row[1] = f32::NAN;
            row[2] = 7.5;
            row[3] = 1.0e6 + (i % 5) as f32;
            row[4] = if i == 0 { 1.0e5 } else { (i % 3) as f32 };
            row[5] = i as f32 * 0.25 - 20.0;
            row[cols - 1] = if i == rows / 2 { -4.0e4 } else { 1.0 };
        }
        assert_moments_match("wide", &g, &data, &run(gpu(), &g, &data));
        if cols <= 2052 {
            assert_moments_match("wide, tiny windows", &g, &data, &run(&small, &g, &data));
        }
        // Huge magnitudes with a prescale per column.
        let mut huge = data.clone();
        for i in 0..rows {
            huge[i * cols + 6] = if i % 2 == 0 { 3e38 } else { -3e38 };
        }
        let prescale: Vec<f32> = (0..cols)
            .map(|j| prescale_for((0..rows).map(|i| huge[i * cols + j].abs() as f64).fold(0.0, f64::max)))
            .collect();
        let t = GpuTensor::from_slice(gpu(), &huge, &[rows, cols]).unwrap();
        let got = moments_prescaled(gpu(), &t, &g, &prescale).unwrap();
        let want = reference::moments(&huge, &g);
        let (a, b) = (&got[6], &want[6]);
        assert_eq!((a.min, a.max), (b.min, b.max));
        assert!(Tolerance::new(1e-6 * b.std(), 1e-5).accepts(a.mean, b.mean), "{a:?} vs {b:?}");
        assert!(Tolerance::new(0.0, 1e-4).accepts(a.var(), b.var()), "{a:?} vs {b:?}");
    }
}

/// Widths that are no multiple of 4 read their rows four at a time (a vec4 view of a
/// `(rows / 4, 4·cols)` matrix) plus the last `rows % 4` rows apart, the states merged:
/// every row count modulo 4, NaN and an all-NaN column, offsets, and a prescale for
/// ±3e38 (the factors repeated for each row of a quad).
#[test]
fn widths_not_a_multiple_of_four_read_four_rows_a_row() {
    use gpunorm::kernels::moments::{moments_prescaled, prescale_for};
    let mut rng = Rng::new(23);
    for cols in [1usize, 3, 10, 13] {
        for rows in [16usize, 17, 18, 19, 1003] {
            let g = Grouping::Columns { rows, cols };
            let mut data = rng.normals(rows * cols, 2.0, 3.0);
            sprinkle_nan(&mut data, 0.02, &mut rng);
            for i in 0..rows {
                data[i * cols] += 1.0e4;
                if cols > 2 {
                    data[i * cols + 1] = f32::NAN;
                    data[i * cols + 2] = if i % 2 == 0 { 3e38 } else { -3e38 };
                }
            }
            // The last row decides a column's max: the tail must be merged.
            data[(rows - 1) * cols] = 9.0e4;
            let got = run(gpu(), &g, &data);
            if cols > 2 {
                // ±3e38 overflows without a prescale; compare the other columns here.
                let keep: Vec<usize> = (0..cols).filter(|&j| j != 2).collect();
                let want = reference::moments(&data, &g);
                for &j in &keep {
                    let (a, b) = (&got[j], &want[j]);
                    assert_eq!((a.count, a.nan_count), (b.count, b.nan_count), "{rows}x{cols} column {j}");
                    if b.count > 0 {
                        assert_eq!((a.min, a.max), (b.min, b.max), "{rows}x{cols} column {j}");
                        let tm = mean_tolerance(rows, rows, b.mean.abs(), b.std());
                        assert!(tm.accepts(a.mean, b.mean), "{rows}x{cols} column {j}: {a:?} vs {b:?}");
                        let tv = var_tolerance(rows, rows, b.mean.abs(), b.std());
                        assert!(tv.accepts(a.var(), b.var()), "{rows}x{cols} column {j}: {a:?} vs {b:?}");
                    } else {
                        assert!(a.mean.is_nan() && a.min.is_nan(), "{rows}x{cols} column {j}");
                    }
                }
                let prescale: Vec<f32> = (0..cols)
                    .map(|j| prescale_for((0..rows).map(|i| data[i * cols + j].abs() as f64).fold(0.0, f64::max)))
                    .collect();
                let t = GpuTensor::from_slice(gpu(), &data, &[rows, cols]).unwrap();
                let scaled = moments_prescaled(gpu(), &t, &g, &prescale).unwrap();
                let (a, b) = (&scaled[2], &want[2]);
                assert_eq!((a.min, a.max), (b.min, b.max));
                assert!(Tolerance::new(1e-6 * b.std(), 1e-5).accepts(a.mean, b.mean), "{a:?} vs {b:?}");
                assert!(Tolerance::new(0.0, 1e-4).accepts(a.var(), b.var()), "{a:?} vs {b:?}");
            } else {
                assert_moments_match("quads", &g, &data, &got);
            }
        }
    }
}
