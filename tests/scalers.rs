//! The scalers against scikit-learn's own numbers (tests/golden/scalers.json, made by
//! tools/golden/make_scalers.py), every method and option; plus round trips.

mod common;

use common::{close, golden_matrix, golden_vec, gpu, load_golden, Rng};
use gpunorm::scale::{FittedScaler, MaxAbsScaler, MinMaxScaler, RobustScaler, Scaler, StandardScaler};
use gpunorm::verify::F32_EPS;
use gpunorm::Error;
use ndarray::{Array2, Axis};

const U: f64 = F32_EPS;

/// Error bound of a float32 transform against scikit-learn's float64: the statistics
/// of at most a few hundred float32 values are good to ~32u (relative to |μ| + σ for
/// the mean), the affine step adds 6u; the data's magnitude carries the center's error.
fn transform_ok(got: f32, want: f64, x: f64, c: f64, inv_g: f64) -> bool {
    let abs = 8.0 * U * (x.abs() + c.abs()) * inv_g.abs() + 32.0 * U * want.abs() + 1e-6 * U;
    close(got as f64, want, abs, 0.0)
}

fn scaler_of(case: &serde_json::Value) -> Scaler {
    Scaler::from_json(case["method"].as_str().unwrap(), &case["options"]).unwrap()
}

fn assert_matrix(what: &str, got: &Array2<f32>, want: &Array2<f32>, x: &Array2<f32>, fitted: &FittedScaler) {
    assert_eq!(got.dim(), want.dim(), "{what}: shape");
    let (c, inv) = fitted.center_inv_scale().unwrap_or((vec![0.0; got.ncols()], vec![1.0; got.ncols()]));
    let g = match fitted.scaler {
        Scaler::MinMax(o) => o.feature_range.1 - o.feature_range.0,
        _ => 1.0,
    };
    for ((i, j), &w) in want.indexed_iter() {
        let cj = if c[j].is_nan() { 0.0 } else { c[j] };
        let ij = if inv[j].is_nan() { 1.0 } else { inv[j] };
        assert!(
            transform_ok(got[[i, j]], w as f64, x[[i, j]] as f64, cj, ij * g),
            "{what}: element ({i}, {j}): got {}, scikit-learn {w}",
            got[[i, j]]
        );
    }
}

fn assert_params(what: &str, fitted: &FittedScaler, want: &serde_json::Value) {
    let json: serde_json::Value = serde_json::from_str(&fitted.to_json()).unwrap();
    for (key, want_v) in want.as_object().unwrap() {
        if want_v.is_null() {
            continue;
        }
        let ours = key.trim_end_matches('_');
        let got = golden_vec(&json[ours]);
        let want = golden_vec(want_v);
        assert_eq!(got.len(), want.len(), "{what}: {key} length");
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            let tol = 32.0 * U * w.abs() + 1e-30;
            // The mean of values around |μ| carries ~u·|μ| absolute error.
            assert!(close(*g, *w, tol, 0.0), "{what}: {key}[{j}] = {g}, scikit-learn {w}");
        }
    }
}

#[test]
fn every_scikit_learn_case() {
    let cases = load_golden("scalers.json");
    assert!(cases.len() >= 50);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let scaler = scaler_of(case);
        let fitted = if case["fit"].is_null() {
            let batches: Vec<Array2<f32>> = case["batches"].as_array().unwrap().iter().map(golden_matrix).collect();
            let mut f = scaler.fit(gpu(), batches[0].view()).unwrap();
            for b in &batches[1..] {
                f.partial_fit(gpu(), b.view()).unwrap();
            }
            f
        } else {
            scaler.fit(gpu(), golden_matrix(&case["fit"]).view()).unwrap()
        };
        assert_params(name, &fitted, &case["expected"]["params"]);
        let x = golden_matrix(&case["transform"]);
        let y = fitted.transform(gpu(), x.view()).unwrap();
        assert_matrix(name, &y, &golden_matrix(&case["expected"]["transformed"]), &x, &fitted);
        let back = fitted.inverse_transform(gpu(), y.view()).unwrap();
        let want_back = golden_matrix(&case["expected"]["inverse"]);
        for ((i, j), &w) in want_back.indexed_iter() {
            let tol = 64.0 * U * (w.abs() as f64 + fitted_scale_of(&fitted, j) * 4.0) + 1e-30;
            assert!(
                close(back[[i, j]] as f64, w as f64, tol, 0.0),
                "{name}: inverse ({i},{j}) {} vs {w}",
                back[[i, j]]
            );
        }
        // The params file reproduces the transform exactly.
        let loaded = FittedScaler::from_json(&fitted.to_json()).unwrap();
        let again = loaded.transform(gpu(), x.view()).unwrap();
        for (a, b) in again.iter().zip(y.iter()) {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{name}: params round trip {a} vs {b}");
        }
    }
}

/// scikit-learn's float64 view of one column: its non-NaN values sorted, their mean
/// and population std.
struct Column {
    sorted: Vec<f64>,
    mean: f64,
    std: f64,
}

impl Column {
    fn of<'a>(values: impl IntoIterator<Item = &'a f32>) -> Self {
        Column::of64(values.into_iter().map(|&v| v as f64))
    }

    fn of64(values: impl IntoIterator<Item = f64>) -> Self {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        // Summed around the median: a plain float64 sum of 2000 values near 1 loses
        // ~1e-13 of the mean, 4e-5 of a spread of 3e-9.
        let mid = sorted[sorted.len() / 2];
        let mean = mid + sorted.iter().map(|v| v - mid).sum::<f64>() / n;
        let std = (sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        Column { sorted, mean, std }
    }

    /// numpy's linear quantile.
    fn quantile(&self, q: f64) -> f64 {
        let s = &self.sorted;
        let r = q * (s.len() - 1) as f64;
        let (i, t) = (r.floor() as usize, r - r.floor());
        if t == 0.0 {
            s[i]
        } else {
            s[i] + (s[i + 1] - s[i]) * t
        }
    }

    /// The scaler's (center, scale) before scikit-learn's zero-scale rule (min-max:
    /// min and range, its feature range left to the caller).
    fn center_scale(&self, s: &Scaler) -> (f64, f64) {
        let (lo, hi) = (self.sorted[0], self.sorted[self.sorted.len() - 1]);
        match s {
            Scaler::Standard(_) => (self.mean, self.std),
            Scaler::MinMax(_) => (lo, hi - lo),
            Scaler::MaxAbs(_) => (0.0, lo.abs().max(hi.abs())),
            _ => (self.quantile(0.5), self.quantile(0.75) - self.quantile(0.25)),
        }
    }
}

/// scikit-learn's zero-scale rules on features whose spread is about 1e-7: min-max and
/// max-abs take a range (max |x|) below 10·eps of the input's dtype as 1 (float32:
/// 1.19e-6, float64 and integers: 2.2e-15); standard scaling has only its
/// constant-feature rule; robust scaling uses float64's 10·eps whatever the dtype.
#[test]
fn zero_scale_threshold_follows_the_input_dtype() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    let x32 = Array2::from_shape_fn((40, 2), |_| (1e-7 * rng.normal()) as f32);
    let x64 = x32.mapv(|v| v as f64);
    for s in [
        Scaler::from(MinMaxScaler::new()),
        MaxAbsScaler::default().into(),
        StandardScaler::new().into(),
        RobustScaler::new().into(),
    ] {
        let fits = [(s.fit(gpu, x32.view()).unwrap(), true), (s.fit(gpu, x64.view()).unwrap(), false)];
        for (f, float32) in fits {
            let (_, inv) = f.center_inv_scale().unwrap();
            for (j, inv_j) in inv.into_iter().enumerate() {
                let (_, spread) = Column::of(x32.column(j)).center_scale(&s);
                assert!(spread > 1e-9 && spread < 1e-6, "test data: spread {spread}");
                let zeroed = float32 && matches!(s, Scaler::MinMax(_) | Scaler::MaxAbs(_));
                let want = if zeroed { 1.0 } else { 1.0 / spread };
                assert!(
                    close(inv_j, want, 0.0, 1e-5),
                    "{} fitted on {} [{j}]: inverse scale {inv_j}, scikit-learn's {want}",
                    s.method(),
                    if float32 { "float32" } else { "float64" }
                );
            }
        }
    }
}

/// A center far larger than the scale (1e4 + N(0, 0.1), 1e6 + N(0, 1)): rounded to
/// float32 as is, it would move every output by up to ulp(center) / 2 / scale (5e-3
/// here); with the center passed as a float32 pair, the output stays within a few
/// float32 ulps of scikit-learn's float64 answer.
#[test]
fn huge_offsets_keep_float32_accuracy() {
    let gpu = gpu();
    let mut rng = Rng::new(21);
    let (rows, cols) = (1000, 2);
    let x = Array2::from_shape_fn((rows, cols), |(_, j)| {
        if j == 0 {
            (1e4 + 0.1 * rng.normal()) as f32
        } else {
            (1e6 + rng.normal()) as f32
        }
    });
    for s in [Scaler::from(StandardScaler::new()), RobustScaler::new().into(), MinMaxScaler::new().into()] {
        let (_, y) = s.fit_transform(gpu, x.view()).unwrap();
        for j in 0..cols {
            let (center, scale) = Column::of(x.column(j)).center_scale(&s);
            for i in 0..rows {
                let want = (x[[i, j]] as f64 - center) / scale;
                let got = y[[i, j]] as f64;
                assert!(
                    (got - want).abs() <= 2e-5 * (1.0 + want.abs()),
                    "{} [{i}, {j}]: {got} vs scikit-learn's {want}",
                    s.method()
                );
            }
        }
    }
}

/// A magnitude scale for a feature's inverse error (|center| + scale).
fn fitted_scale_of(f: &FittedScaler, j: usize) -> f64 {
    match f.center_inv_scale() {
        Some((c, inv)) => {
            let v = c[j].abs() + 1.0 / inv[j].abs();
            if v.is_nan() {
                0.0
            } else {
                v
            }
        }
        None => 1.0,
    }
}

#[test]
fn verify_always_accepts_every_method() {
    let mut gpu = common::own_gpu();
    gpu.set_verify(gpunorm::Verify::Always);
    let mut rng = Rng::new(11);
    let mut x = Array2::from_shape_vec((1000, 3), rng.normals(3000, 50.0, 7.0)).unwrap();
    x[[3, 1]] = f32::NAN;
    for s in [
        Scaler::from(StandardScaler::new()),
        MinMaxScaler::new().feature_range(-1.0, 1.0).clip(true).into(),
        MaxAbsScaler::default().into(),
        RobustScaler::new().unit_variance(true).into(),
        Scaler::from_method("log").unwrap(),
    ] {
        let (f, y) = s.fit_transform(&gpu, x.view()).unwrap();
        f.inverse_transform(&gpu, y.view()).unwrap();
    }
}

#[test]
fn partial_fit_equals_one_fit() {
    let mut rng = Rng::new(12);
    let x = Array2::from_shape_vec((900, 4), rng.normals(3600, 1e3, 10.0)).unwrap();
    for s in [Scaler::from(StandardScaler::new()), MinMaxScaler::new().into(), MaxAbsScaler::default().into()] {
        let whole = s.fit(gpu(), x.view()).unwrap();
        let mut parts = s.fit(gpu(), x.slice(ndarray::s![..300, ..])).unwrap();
        for chunk in x.slice(ndarray::s![300.., ..]).axis_chunks_iter(Axis(0), 200) {
            parts.partial_fit(gpu(), chunk).unwrap();
        }
        let (a, b) = (whole.transform(gpu(), x.view()).unwrap(), parts.transform(gpu(), x.view()).unwrap());
        for (p, q) in a.iter().zip(b.iter()) {
            assert!((p - q).abs() <= 1e-4 * (1.0 + p.abs()), "{}: {p} vs {q}", s.method());
        }
    }
}

#[test]
fn bad_inputs_are_typed_errors_naming_row_and_column() {
    let mut x = Array2::<f32>::zeros((4, 3));
    x[[2, 1]] = f32::INFINITY;
    match Scaler::from(StandardScaler::new()).fit(gpu(), x.view()) {
        Err(Error::NonFinite { row: 2, col: 1, .. }) => {}
        other => panic!("expected NonFinite at (2,1), got {other:?}"),
    }
    let mut x = Array2::<f32>::zeros((4, 3));
    x[[3, 2]] = -1.0;
    match Scaler::from_method("log").unwrap().fit_transform(gpu(), x.view()) {
        Err(Error::Domain { row: 3, col: 2, .. }) => {}
        other => panic!("expected Domain at (3,2), got {other:?}"),
    }
    let fitted = Scaler::from(StandardScaler::new()).fit(gpu(), Array2::<f32>::zeros((4, 3)).view()).unwrap();
    assert!(matches!(fitted.transform(gpu(), Array2::<f32>::zeros((4, 2)).view()), Err(Error::Shape(_))));
    assert!(matches!(
        Scaler::from(MinMaxScaler::new().feature_range(2.0, 1.0)).fit(gpu(), Array2::<f32>::zeros((2, 1)).view()),
        Err(Error::InvalidParameter(_))
    ));
}

#[test]
fn log_keeps_relative_accuracy_for_tiny_values() {
    // Down to the smallest subnormal, which x / 2 would round to 0 (hardware that
    // flushes subnormals may give 0 there; a software adapter keeps them).
    let xs = [1e-10f32, -1e-7, 3e-5, 0.3, -0.4, 0.7, 5.0, 1e6, 1e-40, f32::from_bits(1), -f32::from_bits(1)];
    let flushes = gpu().adapter_info().device_type != wgpu::DeviceType::Cpu;
    let x = Array2::from_shape_vec((xs.len(), 1), xs.to_vec()).unwrap();
    let (f, y) = Scaler::from_method("log").unwrap().fit_transform(gpu(), x.view()).unwrap();
    for (v, got) in xs.iter().zip(y.iter()) {
        let want = (*v as f64).ln_1p();
        let flushed = flushes && v.is_subnormal() && *got == 0.0;
        assert!(
            flushed || ((*got as f64) - want).abs() <= 16.0 * U * want.abs(),
            "log1p({v:e}) = {got:e}, want {want:e}"
        );
    }
    let back = f.inverse_transform(gpu(), y.view()).unwrap();
    for (v, got) in y.iter().zip(back.iter()) {
        let want = (*v as f64).exp_m1();
        assert!(((*got as f64) - want).abs() <= 64.0 * U * want.abs(), "expm1({v}) = {got}, want {want}");
    }
}

/// `Scaler::fit_transform_gpu` of `x`: recorded, submitted and read back.
fn fit_transform_on_gpu(s: &Scaler, x: &Array2<f32>) -> Vec<f32> {
    let t = gpunorm::GpuTensor::from_array(gpu(), x.view().into_dyn()).unwrap();
    let mut enc = gpu().encoder();
    let (out, _) = s.fit_transform_gpu(gpu(), &mut enc, &t).unwrap();
    gpu().submit_and_wait(enc).unwrap();
    out.to_vec(gpu()).unwrap()
}

#[test]
fn gpu_resident_fit_transform_matches_ndarray_path() {
    let mut rng = Rng::new(13);
    let x = Array2::from_shape_vec((3000, 5), rng.normals(15000, 4.0, 2.0)).unwrap();
    for s in [
        Scaler::from(StandardScaler::new()),
        MinMaxScaler::new().feature_range(-1.0, 1.0).into(),
        MaxAbsScaler::default().into(),
        RobustScaler::new().into(),
        Scaler::from_method("log").unwrap(),
    ] {
        let xs = if s.method() == "log" { x.mapv(f32::abs) } else { x.clone() };
        let got = fit_transform_on_gpu(&s, &xs);
        let (_, want) = s.fit_transform(gpu(), xs.view()).unwrap();
        for (a, b) in got.iter().zip(want.iter()) {
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{}: {a} vs {b}", s.method());
        }
    }
}

/// The GPU-resident fit cannot prescale: a column whose variance (standard) or range
/// (min-max) overflows float32 comes out NaN, not zeros; ordinary columns beside it
/// are unaffected (and the host path, which prescales, standard-scales it right).
#[test]
fn gpu_resident_fit_overflow_is_nan_not_wrong() {
    let x = ndarray::arr2(&[[3e38f32, 1.0], [-3e38, 2.0], [1e38, 4.0], [-2e38, 8.0]]);
    for s in [Scaler::from(StandardScaler::new()), MinMaxScaler::new().into()] {
        let got = fit_transform_on_gpu(&s, &x);
        let (_, want) = s.fit_transform(gpu(), x.view()).unwrap();
        for (i, (a, b)) in got.iter().zip(want.iter()).enumerate() {
            if s.method() == "standard" {
                assert!(b.is_finite(), "host path {b}");
            }
            if i % 2 == 0 {
                assert!(a.is_nan(), "{}: overflowing column gave {a}", s.method());
            } else {
                assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{}: {a} vs {b}", s.method());
            }
        }
    }
}

/// The host path: a column whose values lie farther than float32's largest value from
/// its center (min-max over ±3e38; standard with the mean near one end) scales to the
/// float64 answer (scikit-learn on float64 input), not inf, through transform,
/// inverse_transform and `Verify::Always`; ordinary columns beside it are unaffected.
#[test]
fn host_path_range_beyond_float32_scales_right() {
    let mut gpu = common::own_gpu();
    gpu.set_verify(gpunorm::Verify::Always);
    let x = ndarray::arr2(&[
        [-3e38f32, 1.0, 5.0],
        [-3e38, 2.0, -1.0],
        [-3e38, 2.0, 0.5],
        [3e38, 3.0, f32::NAN],
        [1e38, 4.0, 2.0],
    ]);
    let scalers = [
        Scaler::from(StandardScaler::new()),
        MinMaxScaler::new().into(),
        MinMaxScaler::new().feature_range(-2.0, 3.0).into(),
        RobustScaler::new().into(),
    ];
    for s in scalers {
        let (f, y) = s.fit_transform(&gpu, x.view()).unwrap();
        for j in 0..x.ncols() {
            let (center, scale) = Column::of(x.column(j)).center_scale(&s);
            for i in 0..x.nrows() {
                let v = x[[i, j]] as f64;
                let want = match s {
                    Scaler::MinMax(o) => {
                        let (a, b) = o.feature_range;
                        (v - center) / scale * (b - a) + a
                    }
                    _ => (v - center) / scale,
                };
                let got = y[[i, j]] as f64;
                if v.is_nan() {
                    assert!(got.is_nan(), "{} [{i}, {j}]: NaN gave {got}", s.method());
                } else {
                    assert!(
                        (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                        "{} [{i}, {j}]: {got} vs {want}",
                        s.method()
                    );
                }
            }
        }
        let back = f.inverse_transform(&gpu, y.view()).unwrap();
        for ((i, j), &v) in x.indexed_iter() {
            let b = back[[i, j]];
            assert!(
                (v.is_nan() && b.is_nan()) || ((b as f64) - v as f64).abs() <= 1e-5 * (v as f64).abs().max(1.0),
                "{} inverse [{i}, {j}]: {b} vs {v}",
                s.method()
            );
        }
    }
}

/// Columns of tiny magnitude (a spread of 1e-25; a lone 1e-30 among zeros), whose
/// squared deviations underflow float32: standard scaling gives the float64 answer
/// (scikit-learn on the same data), not a constant column's, through transform,
/// inverse_transform and `Verify::Always`. (Min-max, max-abs and robust scaling take
/// ranges this small as zero, as scikit-learn does: see the zero-scale test above.)
#[test]
fn tiny_magnitudes_scale_right() {
    let mut gpu = common::own_gpu();
    gpu.set_verify(gpunorm::Verify::Always);
    let mut rng = Rng::new(12);
    let rows = 300;
    let x = Array2::from_shape_fn((rows, 3), |(i, j)| match j {
        0 => rng.normal() as f32 * 1e-25,
        1 => {
            if i == 7 {
                1e-30
            } else {
                0.0
            }
        }
        _ => 4e-21 + (i % 9) as f32 * 1e-27,
    });
    let s = Scaler::from(StandardScaler::new());
    let (f, y) = s.fit_transform(&gpu, x.view()).unwrap();
    for j in 0..x.ncols() {
        let (center, scale) = Column::of(x.column(j)).center_scale(&s);
        for i in 0..rows {
            let want = (x[[i, j]] as f64 - center) / scale;
            let got = y[[i, j]] as f64;
            assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "[{i}, {j}]: {got} vs {want}");
        }
    }
    let back = f.inverse_transform(&gpu, y.view()).unwrap();
    for ((i, j), &v) in x.indexed_iter() {
        let b = back[[i, j]] as f64;
        assert!((b - v as f64).abs() <= 1e-5 * (v as f64).abs().max(1e-30), "inverse [{i}, {j}]: {b} vs {v}");
    }
}

/// float64 input whose detail lies below float32's resolution at its magnitude
/// (1e6 + N(0, 1); Unix timestamps over a day, where float32 steps by 128 s; 45 +
/// N(0, 0.01) degrees; values 1e-9 apart near 1): each column is centred on the host
/// in float64 before it becomes float32, so fit_transform, transform and the fitted
/// statistics give scikit-learn's float64 answer (rounding the input to float32 first
/// was off by 0.035 for standard and 0.1 for robust scaling on the first column, and
/// took the last one's IQR for 0). A column beside them that spans zero is unaffected.
#[test]
fn float64_input_keeps_its_precision() {
    let mut gpu = common::own_gpu();
    gpu.set_verify(gpunorm::Verify::Always);
    let mut rng = Rng::new(5);
    let rows = 2000;
    let x = Array2::from_shape_fn((rows, 5), |(i, j)| match j {
        0 => 1e6 + rng.normal(),
        1 => 1.7e9 + 86400.0 * ((i * 7919) % rows) as f64 / rows as f64,
        2 => 45.0 + 0.01 * rng.normal(),
        3 => 1.0 + 1e-9 * (i % 10) as f64,
        _ => rng.normal() * 3.0,
    });
    let scalers = [
        Scaler::from(StandardScaler::new()),
        MinMaxScaler::new().feature_range(-1.0, 1.0).into(),
        RobustScaler::new().into(),
        MaxAbsScaler::default().into(),
    ];
    for s in scalers {
        let (f, y) = s.fit_transform(&gpu, x.view()).unwrap();
        let again = f.transform(&gpu, x.view()).unwrap();
        for j in 0..x.ncols() {
            let (center, scale) = Column::of64(x.column(j).iter().copied()).center_scale(&s);
            for i in 0..rows {
                let want = match s {
                    Scaler::MinMax(_) => (x[[i, j]] - center) / scale * 2.0 - 1.0,
                    _ => (x[[i, j]] - center) / scale,
                };
                for (what, got) in [("fit_transform", y[[i, j]]), ("transform", again[[i, j]])] {
                    let got = got as f64;
                    assert!(
                        (got - want).abs() <= 4e-6 * (1.0 + want.abs()),
                        "{} {what} [{i}, {j}]: {got} vs scikit-learn's {want}",
                        s.method()
                    );
                }
            }
        }
        // The fitted statistics are the float64 data's, not its float32 rounding's.
        let (center, inv) = f.center_inv_scale().unwrap();
        let (c0, s0) = Column::of64(x.column(0).iter().copied()).center_scale(&s);
        match s {
            Scaler::Standard(_) | Scaler::Robust(_) => {
                assert!((center[0] - c0).abs() <= 1e-6, "{} center {} vs {c0}", s.method(), center[0]);
                assert!((1.0 / inv[0] / s0 - 1.0).abs() <= 1e-5, "{} scale", s.method());
            }
            _ => {}
        }
    }
}

/// Robust scaling of short columns through the sorting networks (forced; a software
/// adapter takes them for large inputs by itself): under `Verify::Always`, with an
/// all-NaN, a constant and a NaN-sprinkled column, one network and two halves (100
/// and 200 rows); the GPU-resident fit too. The quantiles are exact either way, so
/// the results equal those of the radix passes bit for bit. (Robust scaling takes no
/// counts: an all-NaN column's quantiles are NaN. The counts the network hands on are
/// checked in tests/quantiles.rs.)
#[test]
fn robust_scaling_through_sorting_networks() {
    let mut rng = Rng::new(14);
    for rows in [100usize, 200] {
        let mut x = Array2::from_shape_vec((rows, 40), rng.normals(rows * 40, 5.0, 3.0)).unwrap();
        for i in 0..rows {
            x[[i, 0]] = f32::NAN;
            x[[i, 1]] = 2.5;
            if i % 7 == 0 {
                x[[i, 2]] = f32::NAN;
            }
        }
        let s = Scaler::from(RobustScaler::new().unit_variance(true));
        let mut results = Vec::new();
        for networks in [true, false] {
            let mut gpu = common::own_gpu();
            gpu.set_verify(gpunorm::Verify::Always);
            gpu.set_networks(Some(networks));
            let (_, y) = s.fit_transform(&gpu, x.view()).unwrap();
            let t = gpunorm::GpuTensor::from_array(&gpu, x.view().into_dyn()).unwrap();
            let mut enc = gpu.encoder();
            let (out, _) = s.fit_transform_gpu(&gpu, &mut enc, &t).unwrap();
            gpu.submit_and_wait(enc).unwrap();
            let resident = out.to_vec(&gpu).unwrap();
            for (a, b) in resident.iter().zip(y.iter()) {
                assert!(a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
            }
            assert!(y.column(0).iter().all(|v| v.is_nan()), "an all-NaN column scales to NaN");
            results.push(y);
        }
        let same = results[0].iter().zip(results[1].iter()).all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
        assert!(same, "{rows} rows: networks and radix passes disagree");
    }
}
