//! `gpunorm scale` through the built binary: every scikit-learn golden case
//! (tests/golden/scalers.json, except the partial_fit ones) with its params file and
//! inverse; output shapes and formats; every exit-code path with the atomic-write
//! guarantees (spec/cli.md, "Files" and "Exit codes"); log1p/expm1 accuracy.

mod cli_common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use cli_common::{golden, gpunorm, nums, nums_f32, write_csv, write_npy, write_npy_i64, TmpDir};
use gpunorm::verify::F32_EPS;
use serde_json::Value;

/// float32's unit roundoff, 2^-24.
const U: f64 = F32_EPS;

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// A golden array: shape, float32 data (the exact inputs) and float64 data (the
/// references); NaN for null.
#[derive(Clone, Debug)]
struct Arr {
    shape: Vec<usize>,
    f32s: Vec<f32>,
    f64s: Vec<f64>,
}

impl Arr {
    fn of(v: &Value) -> Arr {
        let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        Arr { shape, f32s: nums_f32(&v["data"]), f64s: nums(&v["data"]) }
    }

    fn cols(&self) -> usize {
        match self.shape.as_slice() {
            [_] => 1,
            [_, c] => *c,
            s => panic!("golden shape {s:?}"),
        }
    }

    /// Same shape and the same values, bit for bit (NaN equals NaN).
    fn same(&self, other: &Arr) -> bool {
        self.shape == other.shape
            && self.f32s.iter().zip(&other.f32s).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
    }
}

/// A non-partial-fit golden case.
#[derive(Clone, Debug)]
struct Case {
    index: usize,
    name: String,
    method: String,
    options: Value,
    fit: Arr,
    transform: Arr,
    transformed: Arr,
    inverse: Arr,
    params: Value,
}

fn cases() -> Vec<Case> {
    let all = golden("scalers.json");
    let all = all.as_array().expect("a list of cases");
    let cases: Vec<Case> = all
        .iter()
        .filter(|c| !c["fit"].is_null())
        .enumerate()
        .map(|(index, c)| Case {
            index,
            name: c["name"].as_str().unwrap().to_string(),
            method: c["method"].as_str().unwrap().to_string(),
            options: c["options"].clone(),
            fit: Arr::of(&c["fit"]),
            transform: Arr::of(&c["transform"]),
            transformed: Arr::of(&c["expected"]["transformed"]),
            inverse: Arr::of(&c["expected"]["inverse"]),
            params: c["expected"]["params"].clone(),
        })
        .collect();
    // The golden file holds 61 cases, 9 of them partial_fit.
    assert_eq!(all.len(), 61, "golden cases");
    assert_eq!(cases.len(), 52, "non-partial-fit golden cases");
    cases
}

fn case(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no golden case {name}"))
}

fn opt_bool(c: &Case, key: &str) -> bool {
    c.options[key].as_bool().unwrap_or_else(|| panic!("{}: option {key}", c.name))
}

fn opt_pair(c: &Case, key: &str) -> (f64, f64) {
    let v = nums(&c.options[key]);
    (v[0], v[1])
}

/// The command-line flags for a case's options. `variant` picks between the two
/// spellings of valued options (`--x A,B` / `--x=A,B`) and whether defaults are
/// spelled out.
fn option_flags(c: &Case, variant: usize) -> Vec<String> {
    let mut f = Vec::new();
    let pair = |f: &mut Vec<String>, name: &str, (a, b): (f64, f64)| {
        if variant.is_multiple_of(2) {
            f.push(format!("--{name}"));
            f.push(format!("{a},{b}"));
        } else {
            f.push(format!("--{name}={a},{b}"));
        }
    };
    match c.method.as_str() {
        "standard" => {
            if !opt_bool(c, "with_mean") {
                f.push("--no-center".into());
            }
            if !opt_bool(c, "with_std") {
                f.push("--no-scale".into());
            }
        }
        "minmax" => {
            let range = opt_pair(c, "feature_range");
            if range != (0.0, 1.0) || variant % 3 == 1 {
                pair(&mut f, "feature-range", range);
            }
            if opt_bool(c, "clip") {
                f.push("--clip".into());
            }
        }
        "robust" => {
            if !opt_bool(c, "with_centering") {
                f.push("--no-center".into());
            }
            if !opt_bool(c, "with_scaling") {
                f.push("--no-scale".into());
            }
            let q = opt_pair(c, "quantile_range");
            if q != (25.0, 75.0) || variant % 3 == 1 {
                pair(&mut f, "quantile-range", q);
            }
            if opt_bool(c, "unit_variance") {
                f.push("--unit-variance".into());
            }
        }
        "maxabs" | "log" => {}
        m => panic!("{}: method {m}", c.name),
    }
    f
}

/// A per-feature statistic from scikit-learn's params (key with the trailing
/// underscore), or `None` where scikit-learn has `None`.
fn sk_param(c: &Case, key: &str) -> Option<Vec<f64>> {
    let v = &c.params[key];
    (!v.is_null()).then(|| nums(v))
}

/// Per feature: the center subtracted and the factor multiplied by in scikit-learn's
/// transform (`(x - c) * m`), NaN statistics (all-NaN column) replaced by 0 and 1.
fn center_and_factor(c: &Case) -> (Vec<f64>, Vec<f64>) {
    let n = c.transform.cols();
    let (mut center, mut factor) = (vec![0.0; n], vec![1.0; n]);
    let inv = |v: Vec<f64>| v.into_iter().map(|s| 1.0 / s).collect::<Vec<_>>();
    match c.method.as_str() {
        "standard" => {
            if opt_bool(c, "with_mean") {
                center = sk_param(c, "mean_").unwrap();
            }
            if opt_bool(c, "with_std") {
                factor = inv(sk_param(c, "scale_").unwrap());
            }
        }
        "minmax" => {
            center = sk_param(c, "data_min_").unwrap();
            factor = sk_param(c, "scale_").unwrap();
        }
        "maxabs" => factor = inv(sk_param(c, "scale_").unwrap()),
        "robust" => {
            if opt_bool(c, "with_centering") {
                center = sk_param(c, "center_").unwrap();
            }
            if opt_bool(c, "with_scaling") {
                factor = inv(sk_param(c, "scale_").unwrap());
            }
        }
        _ => {}
    }
    let clean = |v: Vec<f64>, d: f64| v.into_iter().map(|x| if x.is_nan() { d } else { x }).collect();
    (clean(center, 0.0), clean(factor, 1.0))
}

/// `got` within `bound` of `want`; NaN only where `want` is NaN.
fn close(got: f64, want: f64, bound: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    (got - want).abs() <= bound
}

/// Error bound of the float32 transform against scikit-learn's float64 (the bound of
/// tests/scalers.rs): the statistics of a few hundred float32 values are good to
/// ~32u relative to the result, the affine step on `x - c` adds 8u of
/// `(|x| + |c|) * |m|`; a tiny floor for exact zeros.
fn transform_bound(want: f64, x: f64, c: f64, m: f64) -> f64 {
    8.0 * U * (x.abs() + c.abs()) * m.abs() + 32.0 * U * want.abs() + 1e-6 * U
}

/// Error bound of inverse(transform(x)) against scikit-learn's inverse of its own
/// transform (tests/scalers.rs): 64u of the result and of the feature's magnitude
/// `|c| + 1/|m|` (the transform's error times the scale). For log the transform's
/// output error (≤ 17u|y|) is multiplied by expm1's derivative `1 + w`.
fn inverse_bound(c: &Case, want: f64, y: f64, center: f64, factor: f64) -> f64 {
    match c.method.as_str() {
        "log" => 64.0 * U * (want.abs() + 4.0) + 17.0 * U * y.abs() * (1.0 + want.abs()),
        "minmax" => {
            let (lo, hi) = opt_pair(c, "feature_range");
            64.0 * U * (want.abs() + 4.0 * (center.abs() + (hi - lo) / factor.abs())) + 1e-30
        }
        _ => 64.0 * U * (want.abs() + 4.0 * (center.abs() + 1.0 / factor.abs())) + 1e-30,
    }
}

/// An output file read back: shape, values, header.
struct Out {
    shape: Vec<usize>,
    data: Vec<f64>,
    header: Option<Vec<String>>,
}

fn read_out(path: &Path) -> Out {
    let t = gpunorm::io::read_array(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Out { shape: t.data.shape().to_vec(), data: t.data.iter().copied().collect(), header: t.header }
}

/// Compare an output with a golden array element by element.
#[track_caller]
fn check_values(what: &str, got: &Out, want: &Arr, bound: impl Fn(usize, usize, f64) -> f64) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    let cols = want.cols();
    let mut worst: Option<String> = None;
    let mut bad = 0;
    for (k, (&g, &w)) in got.data.iter().zip(&want.f64s).enumerate() {
        let (i, j) = (k / cols, k % cols);
        let b = bound(i, j, w);
        if !close(g, w, b) {
            bad += 1;
            if worst.is_none() {
                worst = Some(format!("({i}, {j}): got {g}, scikit-learn {w}, error {:e} > {b:e}", (g - w).abs()));
            }
        }
    }
    assert!(bad == 0, "{what}: {bad} element(s) out of tolerance, first {}", worst.unwrap());
}

/// The params file against scikit-learn's fitted attributes.
#[track_caller]
fn check_params(c: &Case, doc: &Value) {
    let name = &c.name;
    assert_eq!(doc["method"], Value::from(c.method.as_str()), "{name}: params method");
    assert_eq!(doc["options"], c.options, "{name}: params options");
    let obj = doc.as_object().unwrap_or_else(|| panic!("{name}: params file is not an object"));
    assert!(obj.contains_key("n_features"), "{name}: params file lacks n_features: {doc}");
    let n = c.transform.cols();
    if c.method == "log" {
        // Stateless: nothing fitted; n_features may be null.
        assert!(doc["n_features"].is_null() || doc["n_features"] == n, "{name}: n_features");
        return;
    }
    assert_eq!(doc["n_features"], Value::from(n), "{name}: n_features");
    let required: &[&str] = match c.method.as_str() {
        "standard" => &["mean_", "var_", "scale_", "n_samples_seen_"],
        "minmax" => &["data_min_", "data_max_", "data_range_", "scale_", "min_", "n_samples_seen_"],
        "maxabs" => &["max_abs_", "scale_", "n_samples_seen_"],
        "robust" => &["center_", "scale_"],
        m => panic!("{name}: method {m}"),
    };
    let golden_keys: Vec<&String> = c.params.as_object().unwrap().keys().collect();
    assert_eq!(golden_keys.len(), required.len(), "{name}: golden params {golden_keys:?}");
    for key in required {
        let want_v = &c.params[*key];
        if want_v.is_null() {
            // scikit-learn's None (e.g. var_ without with_std): the format is ours.
            continue;
        }
        let ours = key.trim_end_matches('_');
        let got_v = &doc[ours];
        assert!(got_v.is_array(), "{name}: params file lacks '{ours}' (scikit-learn's {key}): {doc}");
        if *key == "n_samples_seen_" {
            assert_eq!(got_v, want_v, "{name}: {ours}");
            continue;
        }
        let (got, want) = (nums(got_v), nums(want_v));
        assert_eq!(got.len(), n, "{name}: {ours} length");
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            // Statistics of float32 data: ~32u relative (tests/scalers.rs).
            assert!(close(*g, *w, 32.0 * U * w.abs() + 1e-30), "{name}: {ours}[{j}] = {g}, scikit-learn {w}");
        }
    }
}

/// Write a golden array as .npy, or as .csv with a header row.
fn write_input(path: &Path, a: &Arr, header: Option<&[&str]>, nan_empty: bool) {
    if path.extension().is_some_and(|e| e == "csv") {
        write_csv(path, a.cols(), &a.f32s, header, nan_empty);
    } else {
        write_npy(path, &a.shape, &a.f32s);
    }
}

/// Cases also run with .csv inputs and outputs: (name, header, NaN as an empty field).
const CSV_CASES: &[(&str, &[&str], bool)] = &[
    ("standard_brief_example", &["value"], false),
    ("minmax_nan_const_allnan", &["a", "\"b, const\"", "c", "d"], true),
    ("robust_synth_fit_other_transform", &["w", "x", "y", "z"], false),
    ("maxabs_nan_const_allnan", &["a", "b", "c", "d"], false),
    ("log_brief_example", &["v"], false),
];

/// Run one golden case through the CLI: fit (on TRAIN when the golden fit set
/// differs), transform, params file, inverse through the params file.
fn run_case(c: &Case, csv: Option<(&[&str], bool)>) {
    let name = &c.name;
    let ext = if csv.is_some() { "csv" } else { "npy" };
    let dir = TmpDir::new(&format!("scale-{}-{ext}", c.index));
    let (header, nan_empty) = match csv {
        Some((h, e)) => (Some(h), e),
        None => (None, false),
    };
    let input = dir.file(&format!("x.{ext}"));
    write_input(&input, &c.transform, header, nan_empty);
    let mut files = vec![format!("x.{ext}")];
    let separate_fit = !c.fit.same(&c.transform);
    // Some fit == transform cases also go through --fit (a copy of INPUT).
    let fit_path = (separate_fit || c.index % 5 == 4).then(|| {
        let p = dir.file(&format!("train.{ext}"));
        write_input(&p, &c.fit, header, nan_empty);
        files.push(format!("train.{ext}"));
        p
    });
    let out = dir.file(&format!("out.{ext}"));
    let params = dir.file("params.json");
    let mut args: Vec<String> = vec!["scale".into(), "--method".into(), c.method.clone()];
    args.extend(option_flags(c, c.index));
    args.push(s(&input));
    args.extend(["-o".into(), s(&out), "--params-out".into(), s(&params)]);
    if let Some(p) = &fit_path {
        args.extend(["--fit".into(), s(p)]);
    }
    gpunorm(&args).expect_code(0);
    files.extend([format!("out.{ext}"), "params.json".into()]);

    let (center, factor) = center_and_factor(c);
    let x = &c.transform.f64s;
    let cols = c.transform.cols();
    let got = read_out(&out);
    check_values(&format!("{name} ({ext}) transformed"), &got, &c.transformed, |i, j, w| {
        transform_bound(w, x[i * cols + j], center[j], factor[j])
    });
    let in_header = gpunorm::io::read_array(&input).unwrap().header;
    assert_eq!(got.header, in_header, "{name}: the output keeps INPUT's header");
    if csv.is_some() {
        assert!(got.header.is_some(), "{name}: the CSV header was lost");
    }

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&params).unwrap())
        .unwrap_or_else(|e| panic!("{name}: params file is not JSON: {e}"));
    check_params(c, &doc);

    // Inverse through the params file; --method and the fitting options may be
    // repeated when they equal the file's.
    let back = dir.file(&format!("back.{ext}"));
    let mut args: Vec<String> = vec!["scale".into()];
    match c.index % 3 {
        0 => {}
        1 => args.extend(["--method".into(), c.method.clone()]),
        _ => {
            args.extend(["--method".into(), c.method.clone()]);
            args.extend(option_flags(c, c.index + 1));
        }
    }
    args.extend(["--params-in".into(), s(&params), "--inverse".into(), s(&out), "-o".into(), s(&back)]);
    gpunorm(&args).expect_code(0);
    files.push(format!("back.{ext}"));
    let y = &got.data;
    check_values(&format!("{name} ({ext}) inverse"), &read_out(&back), &c.inverse, |i, j, w| {
        inverse_bound(c, w, y[i * cols + j], center[j], factor[j])
    });

    // Transforming again through the params file gives the same output, bit for bit.
    let again = dir.file(&format!("again.{ext}"));
    gpunorm(&["scale".into(), "--params-in".into(), s(&params), s(&input), "-o".into(), s(&again)]).expect_code(0);
    files.push(format!("again.{ext}"));
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap(), "{name}: --params-in transform differs");

    // Nothing else in the directory: no temporary file.
    files.sort();
    assert_eq!(dir.names(), files, "{name}: files left");
}

/// Run `f` on every item on a few threads; return the failures' messages.
fn run_all<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(2, 6);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(k) else { break };
                if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item))) {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a case failed".into());
                    failed.lock().unwrap().push(msg);
                }
            });
        }
    });
    failed.into_inner().unwrap()
}

#[test]
fn every_golden_case_through_the_cli() {
    let all = cases();
    let failed = run_all(&all, |c| run_case(c, None));
    assert!(failed.is_empty(), "{} golden case(s) failed:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn golden_cases_through_csv_files() {
    let list: Vec<(Case, &[&str], bool)> = CSV_CASES.iter().map(|(n, h, e)| (case(n), *h, *e)).collect();
    let failed = run_all(&list, |(c, h, e)| run_case(c, Some((h, *e))));
    assert!(failed.is_empty(), "{} CSV case(s) failed:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn every_method_and_option_is_covered() {
    let all = cases();
    for m in ["standard", "minmax", "maxabs", "robust", "log"] {
        assert!(all.iter().any(|c| c.method == m), "no golden case for {m}");
        assert!(all.iter().any(|c| c.method == m && !c.fit.same(&c.transform)) || m == "log", "no fit/other for {m}");
    }
    let flags: Vec<String> = all.iter().flat_map(|c| option_flags(c, c.index)).collect();
    for f in ["--no-center", "--no-scale", "--clip", "--unit-variance", "--feature-range", "--quantile-range"] {
        assert!(flags.iter().any(|g| g == f), "{f} (separate value) never used");
    }
    for f in ["--feature-range=-1,1", "--quantile-range=", "--feature-range="] {
        assert!(flags.iter().any(|g| g.starts_with(f)), "{f} never used");
    }
    assert!(flags.windows(2).any(|w| w[0] == "--feature-range" && w[1] == "-1,1"), "--feature-range -1,1 never used");
}

// ---------------------------------------------------------------- shapes, formats

#[test]
fn one_d_input_gives_one_d_output() {
    let dir = TmpDir::new("scale-1d");
    let x = [3.0f32, -0.5, f32::NAN, 4.0, 2.0];
    let input = dir.file("v.npy");
    write_npy(&input, &[5], &x);
    for method in ["standard", "minmax", "maxabs", "robust", "log"] {
        let out = dir.file(&format!("{method}.npy"));
        let params = dir.file(&format!("{method}.json"));
        gpunorm(&["scale", "--method", method, &s(&input), "-o", &s(&out), "--params-out", &s(&params)]).expect_code(0);
        let got = read_out(&out);
        assert_eq!(got.shape, [5], "{method}: a 1-D input stays 1-D");
        assert!(got.data[2].is_nan(), "{method}: NaN passes through");
        assert!(got.data.iter().enumerate().all(|(i, v)| i == 2 || v.is_finite()), "{method}: {:?}", got.data);
        let back = dir.file(&format!("{method}-back.npy"));
        gpunorm(&["scale", "--params-in", &s(&params), "--inverse", &s(&out), "-o", &s(&back)]).expect_code(0);
        let b = read_out(&back);
        assert_eq!(b.shape, [5], "{method}: inverse of 1-D stays 1-D");
        for (g, w) in b.data.iter().zip(x) {
            assert!(close(*g, w as f64, 1e-5 * (1.0 + w.abs() as f64)), "{method}: round trip {g} vs {w}");
        }
        if method != "log" {
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(&params).unwrap()).unwrap();
            assert_eq!(doc["n_features"], 1, "{method}: a 1-D input is one feature");
        }
    }
    // Standard on 3, -0.5, 4, 2 (NaN ignored): mean 2.125, population var 2.796875.
    let got = read_out(&dir.file("standard.npy"));
    let sd = 2.796875f64.sqrt();
    for (g, x) in got.data.iter().zip([3.0, -0.5, f64::NAN, 4.0, 2.0]) {
        let want = (x - 2.125) / sd;
        assert!(close(*g, want, 1e-6), "standard 1-D: {g} vs {want}");
    }
}

#[test]
fn csv_input_keeps_header_and_writes_nan() {
    let dir = TmpDir::new("scale-csv");
    let input = dir.file("in.csv");
    std::fs::write(&input, "alpha,\"beta, b\",gamma\n1,2,nan\n3,,5\r\n5,6,NaN\n").unwrap();
    let out = dir.file("out.csv");
    gpunorm(&["scale", "--method", "minmax", &s(&input), "-o", &s(&out)]).expect_code(0);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "alpha,\"beta, b\",gamma", "header kept:\n{text}");
    // minmax: alpha 0, 0.5, 1; beta 0, NaN, 1; gamma NaN, 5 (constant: 0), NaN.
    assert_eq!(lines[1..], ["0,0,nan", "0.5,nan,0", "1,1,nan"], "{text}");
    let t = read_out(&out);
    assert_eq!(t.shape, [3, 3]);
    assert_eq!(t.header, Some(vec!["alpha".to_string(), "beta, b".into(), "gamma".into()]));

    // A CSV input without a header gives a CSV output without one.
    let plain = dir.file("plain.csv");
    std::fs::write(&plain, "1,2\n3,4\n").unwrap();
    let out2 = dir.file("plain-out.csv");
    gpunorm(&["scale", "--method", "maxabs", &s(&plain), "-o", &s(&out2)]).expect_code(0);
    assert_eq!(std::fs::read_to_string(&out2).unwrap(), "0.33333334,0.5\n1,1\n");

    // A .csv input written to .npy: float32 of the input's shape.
    let out3 = dir.file("from-csv.npy");
    gpunorm(&["scale", "--method", "maxabs", &s(&input), "-o", &s(&out3)]).expect_code(0);
    let t = read_out(&out3);
    assert_eq!(t.shape, [3, 3]);
    assert_eq!(t.header, None);
    let bytes = std::fs::read(&out3).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..bytes.len().min(128)]).contains("'<f4'"), "not float32 .npy");
}

#[test]
fn npy_input_to_csv_output() {
    let dir = TmpDir::new("scale-npy-csv");
    let input = dir.file("in.npy");
    write_npy(&input, &[3, 2], &[1.0, f32::NAN, 2.0, 4.0, 3.0, 8.0]);
    for name in ["out.csv", "OUT.CSV"] {
        let out = dir.file(name);
        gpunorm(&["scale", "--method", "maxabs", &s(&input), "-o", &s(&out)]).expect_code(0);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, "0.33333334,nan\n0.6666667,0.5\n1,1\n", "{name}");
    }
    // A 1-D .npy to CSV: one column.
    let v = dir.file("v.npy");
    write_npy(&v, &[3], &[-2.0, 0.0, 4.0]);
    let out = dir.file("v.csv");
    gpunorm(&["scale", "--method", "maxabs", &s(&v), "-o", &s(&out)]).expect_code(0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "-0.5\n0\n1\n");
}

#[test]
fn fit_on_train_transforms_input() {
    // --fit TRAIN: statistics from TRAIN only, applied to INPUT.
    let dir = TmpDir::new("scale-fit");
    let train = dir.file("train.npy");
    write_npy(&train, &[4, 1], &[0.0, 2.0, 4.0, 6.0]);
    let input = dir.file("in.npy");
    write_npy(&input, &[3, 1], &[3.0, 9.0, -3.0]);
    let out = dir.file("out.npy");
    gpunorm(&["scale", "--method", "minmax", "--feature-range=-1,1", &s(&input), "--fit", &s(&train), "-o", &s(&out)])
        .expect_code(0);
    assert_eq!(read_out(&out).data, [0.0, 2.0, -2.0]);
    // --inverse with --fit: the inverse of TRAIN's transform.
    gpunorm(
        &["scale", "--method", "minmax", "--feature-range", "-1,1", "--inverse", &s(&out), "--fit", &s(&train)]
            .iter()
            .map(|a| a.to_string())
            .chain(["-o".into(), s(&dir.file("back.npy"))])
            .collect::<Vec<_>>(),
    )
    .expect_code(0);
    assert_eq!(read_out(&dir.file("back.npy")).data, [3.0, 9.0, -3.0]);
}

#[test]
fn verify_exits_0_for_every_method() {
    let c = case("standard_nan_const_allnan");
    let dir = TmpDir::new("scale-verify");
    let input = dir.file("x.npy");
    write_npy(&input, &c.transform.shape, &c.transform.f32s);
    let pos = dir.file("pos.npy");
    let nonneg: Vec<f32> = c.transform.f32s.iter().map(|v| v.abs()).collect();
    write_npy(&pos, &c.transform.shape, &nonneg);
    for (method, extra) in [
        ("standard", vec![]),
        ("minmax", vec!["--feature-range=-1,1", "--clip"]),
        ("maxabs", vec![]),
        ("robust", vec!["--unit-variance", "--quantile-range", "10,90"]),
        ("log", vec![]),
    ] {
        let x = if method == "log" { &pos } else { &input };
        let out = dir.file(&format!("{method}.npy"));
        let params = dir.file(&format!("{method}.json"));
        let mut args = vec!["scale", "--method", method, "--verify"];
        args.extend(extra);
        let (xs, os, ps) = (s(x), s(&out), s(&params));
        args.extend([xs.as_str(), "-o", os.as_str(), "--params-out", ps.as_str()]);
        gpunorm(&args).expect_code(0);
        assert!(out.exists() && params.exists(), "{method}: --verify wrote nothing");
        let back = dir.file(&format!("{method}-back.npy"));
        gpunorm(&["scale", "--verify", "--params-in", &ps, "--inverse", &os, "-o", &s(&back)]).expect_code(0);
    }
    // The verified standard result is the golden one.
    let (center, factor) = center_and_factor(&c);
    let cols = c.transform.cols();
    check_values("verify standard", &read_out(&dir.file("standard.npy")), &c.transformed, |i, j, w| {
        transform_bound(w, c.transform.f64s[i * cols + j], center[j], factor[j])
    });
}

#[test]
fn edge_cases_that_are_valid() {
    let dir = TmpDir::new("scale-edge");
    let input = dir.file("a.npy");
    write_npy(&input, &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // LO == HI is a valid quantile range (scikit-learn's 0 <= LO <= HI <= 100): the
    // scale is 0, so 1.
    let out = dir.file("q.npy");
    gpunorm(&["scale", "--method", "robust", "--quantile-range", "50,50", &s(&input), "-o", &s(&out)]).expect_code(0);
    assert_eq!(read_out(&out).data, [-2.0, -2.0, 0.0, 0.0, 2.0, 2.0]);
    // The extreme ranges 0,100 and spaces around the numbers.
    let out = dir.file("q2.npy");
    gpunorm(&["scale", "--method", "robust", "--quantile-range= 0 , 100", &s(&input), "-o", &s(&out)]).expect_code(0);
    assert_eq!(read_out(&out).data, [-0.5, -0.5, 0.0, 0.0, 0.5, 0.5]);
    // Output over the input itself (atomic rename).
    let same = dir.file("same.npy");
    std::fs::copy(&input, &same).unwrap();
    gpunorm(&["scale", "--method", "maxabs", &s(&same), "-o", &s(&same)]).expect_code(0);
    assert_eq!(read_out(&same).data, [0.2, 2.0 / 6.0, 0.6, 4.0 / 6.0, 1.0, 1.0].map(|x: f64| x as f32 as f64));
    // An int64 .npy input is converted to float32.
    let ints = dir.file("ints.npy");
    write_npy_i64(&ints, &[4, -2, 10, 0]);
    let out = dir.file("ints-out.npy");
    gpunorm(&["scale", "--method", "minmax", &s(&ints), "-o", &s(&out)]).expect_code(0);
    let got = read_out(&out);
    assert_eq!(got.shape, [4]);
    assert_eq!(got.data, [0.5, 0.0, 1.0, 2.0 / 12.0].map(|x: f64| x as f32 as f64));
    let mut names = dir.names();
    names.sort();
    assert_eq!(names, ["a.npy", "ints-out.npy", "ints.npy", "q.npy", "q2.npy", "same.npy"]);
}

// ---------------------------------------------------------------- log

#[test]
fn log_keeps_relative_accuracy_for_tiny_values() {
    let dir = TmpDir::new("scale-log");
    let xs = [1e-10f32, -1e-7, 3e-5, -3e-5, 1e-30, -1e-30, 0.3, -0.4, 5.0, 1e6, 0.0];
    let input = dir.file("x.npy");
    write_npy(&input, &[xs.len(), 1], &xs);
    let out = dir.file("y.npy");
    let params = dir.file("log.json");
    gpunorm(&["scale", "--method", "log", &s(&input), "-o", &s(&out), "--params-out", &s(&params)]).expect_code(0);
    let y = read_out(&out);
    assert_eq!(y.shape, [xs.len(), 1]);
    for (v, got) in xs.iter().zip(&y.data) {
        let want = (*v as f64).ln_1p();
        let tol = 16.0 * U * want.abs() + f32::MIN_POSITIVE as f64;
        assert!(
            (got - want).abs() <= tol,
            "log1p({v:e}) = {got:e}, want {want:e} (relative error {:e})",
            (got - want).abs() / want.abs()
        );
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&params).unwrap()).unwrap();
    assert_eq!(doc["method"], "log");
    assert_eq!(doc["options"], serde_json::json!({}));
    assert!(doc.as_object().unwrap().contains_key("n_features"), "{doc}");

    // expm1 keeps relative accuracy too, with or without the params file.
    for (tag, extra) in
        [("plain", vec!["--method".to_string(), "log".into()]), ("params", vec!["--params-in".into(), s(&params)])]
    {
        let back = dir.file(&format!("back-{tag}.npy"));
        let mut args = vec!["scale".to_string(), "--inverse".into(), s(&out), "-o".into(), s(&back)];
        args.extend(extra);
        gpunorm(&args).expect_code(0);
        for ((v, yv), got) in xs.iter().zip(&y.data).zip(&read_out(&back).data) {
            let want = yv.exp_m1();
            let tol = 64.0 * U * want.abs() + f32::MIN_POSITIVE as f64;
            assert!((got - want).abs() <= tol, "{tag}: expm1({yv:e}) = {got:e}, want {want:e} (x = {v:e})");
        }
    }
}

#[test]
fn log_accepts_fit_and_params_in_and_they_change_nothing() {
    let dir = TmpDir::new("scale-log-fit");
    let c = case("log_tiny_and_large");
    let input = dir.file("x.npy");
    write_npy(&input, &c.transform.shape, &c.transform.f32s);
    // TRAIN of another shape and other values: log needs no fit.
    let train = dir.file("train.npy");
    write_npy(&train, &[2, 5], &[100.0, 7.0, 0.5, 3.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let plain = dir.file("plain.npy");
    let params = dir.file("p.json");
    gpunorm(&["scale", "--method", "log", &s(&input), "-o", &s(&plain), "--params-out", &s(&params)]).expect_code(0);
    let with_fit = dir.file("fit.npy");
    gpunorm(&["scale", "--method", "log", &s(&input), "--fit", &s(&train), "-o", &s(&with_fit)]).expect_code(0);
    let with_params = dir.file("params.npy");
    gpunorm(&["scale", &s(&input), "--params-in", &s(&params), "-o", &s(&with_params)]).expect_code(0);
    let with_both = dir.file("both.npy");
    gpunorm(&[
        "scale",
        "--method",
        "log",
        &s(&input),
        "--params-in",
        &s(&params),
        "--fit",
        &s(&train),
        "-o",
        &s(&with_both),
    ])
    .expect_code(0);
    let want = std::fs::read(&plain).unwrap();
    for p in [&with_fit, &with_params, &with_both] {
        assert_eq!(std::fs::read(p).unwrap(), want, "{}: differs from the plain log transform", p.display());
    }
    // A params file from a log fit on a 1-column input applies to 3 columns.
    let v = dir.file("v.npy");
    write_npy(&v, &[2], &[1.0, 2.0]);
    let p1 = dir.file("p1.json");
    gpunorm(&["scale", "--method", "log", &s(&v), "-o", &s(&dir.file("v-out.npy")), "--params-out", &s(&p1)])
        .expect_code(0);
    let other = dir.file("other.npy");
    gpunorm(&["scale", &s(&input), "--params-in", &s(&p1), "-o", &s(&other)]).expect_code(0);
    assert_eq!(std::fs::read(&other).unwrap(), want);
}

#[test]
fn log_inverse_needs_no_params() {
    let dir = TmpDir::new("scale-log-inv");
    let input = dir.file("y.npy");
    // expm1 takes any finite value, -1 and below included (log1p's domain is not
    // expm1's).
    let ys = [0.0f32, 1.0, -1e-7, -1.0, -5.0];
    write_npy(&input, &[ys.len()], &ys);
    let out = dir.file("x.npy");
    gpunorm(&["scale", "--method", "log", "--inverse", &s(&input), "-o", &s(&out)]).expect_code(0);
    let got = read_out(&out);
    assert_eq!(got.shape, [ys.len()]);
    for (g, y) in got.data.iter().zip(ys.map(f64::from)) {
        assert!(close(*g, y.exp_m1(), 16.0 * U * y.exp_m1().abs()), "expm1({y}) = {g}");
    }
}

/// scikit-learn fits a float32 `.npy` in float32 and CSV text (or float64, integer
/// `.npy`) in float64: a min-max range of ~4e-7 is zero (scale 1) for the first, a
/// range for the second. The params file keeps which, and loads back the same.
#[test]
fn zero_range_threshold_follows_the_file_dtype() {
    let dir = TmpDir::new("scale-dtype");
    let mut rng = 0x9e37_79b9_u64;
    let xs: Vec<f32> = (0..30)
        .map(|_| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((rng >> 40) as f64 / (1u64 << 24) as f64 * 4e-7) as f32
        })
        .collect();
    let (lo, hi) = xs.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v as f64), b.max(v as f64)));
    assert!(hi - lo > 1e-7 && hi - lo < 1.19e-6, "test data: range {}", hi - lo);
    let npy = dir.file("x.npy");
    write_npy(&npy, &[xs.len(), 1], &xs);
    let csv = dir.file("x.csv");
    write_csv(&csv, 1, &xs, None, false);
    for (input, range) in [(&npy, 1.0), (&csv, hi - lo)] {
        let out = dir.file("y.npy");
        let params = dir.file("p.json");
        gpunorm(&["scale", "--method", "minmax", &s(input), "-o", &s(&out), "--params-out", &s(&params)])
            .expect_code(0);
        let got = read_out(&out);
        for (g, &x) in got.data.iter().zip(&xs) {
            let want = (x as f64 - lo) / range;
            assert!(
                close(*g, want, 1e-5 * want.abs().max(1e-6)),
                "{}: {x} scaled to {g}, want {want}",
                input.display()
            );
        }
        let again = dir.file("y2.npy");
        gpunorm(&["scale", "--params-in", &s(&params), &s(input), "-o", &s(&again)]).expect_code(0);
        assert_eq!(
            std::fs::read(&again).unwrap(),
            std::fs::read(&out).unwrap(),
            "{}: params round trip",
            input.display()
        );
    }
}

/// No features: scikit-learn refuses to fit ("Found array with 0 feature(s)").
#[test]
fn zero_features_exit_2() {
    let dir = TmpDir::new("scale-zero-features");
    let x = dir.file("x.npy");
    write_npy(&x, &[3, 0], &[]);
    let out = dir.file("y.npy");
    for m in ["standard", "minmax", "maxabs", "robust"] {
        gpunorm(&["scale", "--method", m, &s(&x), "-o", &s(&out)]).expect_code(2).stderr_has(&["x.npy", "0 features"]);
        assert!(!out.exists());
    }
}

/// An infinite fitted scale (robust, `--unit-variance` over an empty quantile range, as
/// scikit-learn) is written as "inf" and loads back as inf: the same output again.
#[test]
fn infinite_fitted_scale_survives_the_params_file() {
    let dir = TmpDir::new("scale-inf-params");
    let x = dir.file("x.npy");
    write_npy(&x, &[5, 2], &[1.0, -2.0, 3.0, 0.5, 2.0, 7.0, -4.0, 1.5, 0.0, 2.5]);
    let (out, again, params) = (dir.file("y.npy"), dir.file("y2.npy"), dir.file("p.json"));
    gpunorm(&[
        "scale",
        "--method",
        "robust",
        "--unit-variance",
        "--quantile-range=30,30",
        &s(&x),
        "-o",
        &s(&out),
        "--params-out",
        &s(&params),
    ])
    .expect_code(0);
    let text = std::fs::read_to_string(&params).unwrap();
    assert!(text.contains("\"inf\""), "params file: {text}");
    gpunorm(&["scale", "--params-in", &s(&params), &s(&x), "-o", &s(&again)]).expect_code(0);
    let got = read_out(&again);
    assert!(got.data.iter().all(|v| *v == 0.0), "x / inf after the round trip: {:?}", got.data);
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap());
}

// ---------------------------------------------------------------- errors

/// Files every error test starts with.
struct ErrorDir {
    dir: TmpDir,
    /// 4x2, fine for every method.
    good: PathBuf,
    /// 4x3.
    wide: PathBuf,
    /// Params files fitted on `good`: standard, minmax (default options), robust,
    /// log; all with default options.
    standard: PathBuf,
    minmax: PathBuf,
    robust: PathBuf,
    log: PathBuf,
}

const KEEP_OUT: &[u8] = b"an existing output: keep me";
const KEEP_PARAMS: &[u8] = b"{\"an existing params file\": \"keep me\"}";

impl ErrorDir {
    fn new(tag: &str) -> ErrorDir {
        let dir = TmpDir::new(tag);
        let good = dir.file("good.npy");
        write_npy(&good, &[4, 2], &[1.0, -0.5, 3.0, 4.0, 5.0, 6.0, 7.5, 0.25]);
        let wide = dir.file("wide.npy");
        write_npy(&wide, &[4, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1.5, 2.5, 3.5]);
        let mut params = Vec::new();
        for m in ["standard", "minmax", "robust", "log"] {
            let p = dir.file(&format!("{m}.json"));
            let o = dir.file("fit-out.npy");
            gpunorm(&["scale", "--method", m, &s(&good), "-o", &s(&o), "--params-out", &s(&p)]).expect_code(0);
            std::fs::remove_file(&o).unwrap();
            params.push(p);
        }
        std::fs::write(dir.file("existing.npy"), KEEP_OUT).unwrap();
        std::fs::write(dir.file("existing.csv"), KEEP_OUT).unwrap();
        std::fs::write(dir.file("existing.json"), KEEP_PARAMS).unwrap();
        let [standard, minmax, robust, log] = params.try_into().unwrap();
        ErrorDir { dir, good, wide, standard, minmax, robust, log }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.file(name)
    }

    /// Run `args(OUT, PARAMS_OUT)` three ways: to fresh paths (.npy and .csv
    /// outputs), and over existing files. Each run must exit `code` with stderr
    /// naming `parts`; no output or params file is created, existing ones keep their
    /// bytes, and no other file (temporary or backup) appears.
    #[track_caller]
    fn fails(&self, code: i32, parts: &[&str], args: impl Fn(&str, &str) -> Vec<String>) {
        let before = self.dir.names();
        for (out, params) in [
            ("fresh.npy", "fresh.json"),
            ("fresh.csv", "fresh.json"),
            ("existing.npy", "existing.json"),
            ("existing.csv", "existing.json"),
        ] {
            let a = args(&s(&self.file(out)), &s(&self.file(params)));
            let run = gpunorm(&a);
            assert_eq!(run.code, code, "gpunorm {}: expected exit {code}; got {run:#?}", a.join(" "));
            assert!(run.stderr.contains("gpunorm: error:"), "gpunorm {}: {}", a.join(" "), run.stderr);
            for p in parts {
                assert!(run.stderr.contains(p), "gpunorm {}: stderr lacks {p:?}:\n{}", a.join(" "), run.stderr);
            }
            assert_eq!(self.dir.names(), before, "gpunorm {}: files created or removed", a.join(" "));
            for f in ["existing.npy", "existing.csv"] {
                assert_eq!(std::fs::read(self.file(f)).unwrap(), KEEP_OUT, "gpunorm {}: {f} changed", a.join(" "));
            }
            assert_eq!(
                std::fs::read(self.file("existing.json")).unwrap(),
                KEEP_PARAMS,
                "gpunorm {}: params changed",
                a.join(" ")
            );
        }
    }
}

/// The checks of [`ErrorDir::fails`] catch a created output, a changed existing
/// file and a left-over temporary file (each simulated here beside a failing run).
#[test]
fn error_checks_catch_what_they_must() {
    type Sabotage = (&'static str, fn(&Path));
    let sabotage: [Sabotage; 4] = [
        ("created output", |dir| std::fs::write(dir.join("fresh.npy"), b"x").unwrap()),
        ("created params", |dir| std::fs::write(dir.join("fresh.json"), b"{}").unwrap()),
        ("changed output", |dir| std::fs::write(dir.join("existing.npy"), b"changed").unwrap()),
        ("temporary file", |dir| std::fs::write(dir.join(".existing.npy.tmp-1-0"), b"x").unwrap()),
    ];
    for (what, act) in sabotage {
        let d = ErrorDir::new("scale-meta");
        let g = s(&d.good);
        let root = d.dir.0.clone();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            d.fails(2, &[], |o, p| {
                act(&root);
                v(&["--method", "frobnicate", &g, "-o", o, "--params-out", p])
            })
        }));
        assert!(caught.is_err(), "ErrorDir::fails missed a {what}");
    }
}

/// `["scale", a, b, ...]` as owned strings.
fn v(parts: &[&str]) -> Vec<String> {
    std::iter::once("scale").chain(parts.iter().copied()).map(String::from).collect()
}

#[test]
fn usage_errors_exit_2() {
    let d = ErrorDir::new("scale-usage");
    let g = s(&d.good);
    d.fails(2, &["frobnicate", "--method"], |o, p| v(&["--method", "frobnicate", &g, "-o", o, "--params-out", p]));
    d.fails(2, &["--method"], |o, p| v(&[&g, "-o", o, "--params-out", p]));
    // No -o at all (the params file must not be written either).
    d.fails(2, &["-o"], |_, p| v(&["--method", "standard", &g, "--params-out", p]));
    d.fails(2, &["INPUT"], |o, p| v(&["--method", "standard", "-o", o, "--params-out", p]));
    d.fails(2, &["--frob"], |o, p| v(&["--method", "standard", &g, "-o", o, "--params-out", p, "--frob"]));
    // --fit and --params-in together (not log).
    let st = s(&d.standard);
    d.fails(2, &["--fit", "--params-in"], |o, p| v(&["--params-in", &st, "--fit", &g, &g, "-o", o, "--params-out", p]));
}

#[test]
fn bad_option_values_exit_2() {
    let d = ErrorDir::new("scale-optvalues");
    let g = s(&d.good);
    for range in [["--feature-range", "1,1"], ["--feature-range", "2,1"], ["--feature-range", "-1,-1"]] {
        d.fails(2, &["range"], |o, p| v(&["--method", "minmax", range[0], range[1], &g, "-o", o, "--params-out", p]));
    }
    d.fails(2, &["range"], |o, p| v(&["--method", "minmax", "--feature-range=1,1", &g, "-o", o, "--params-out", p]));
    d.fails(2, &["--feature-range"], |o, p| {
        v(&["--method", "minmax", "--feature-range", "0", &g, "-o", o, "--params-out", p])
    });
    d.fails(2, &["--feature-range"], |o, p| {
        v(&["--method", "minmax", "--feature-range", "a,b", &g, "-o", o, "--params-out", p])
    });
    for q in ["80,20", "-5,50", "50,101", "nan,50"] {
        d.fails(2, &["range"], |o, p| {
            v(&["--method", "robust", "--quantile-range", q, &g, "-o", o, "--params-out", p])
        });
        let eq = format!("--quantile-range={q}");
        d.fails(2, &["range"], |o, p| v(&["--method", "robust", &eq, &g, "-o", o, "--params-out", p]));
    }
}

#[test]
fn options_of_another_method_exit_2() {
    let d = ErrorDir::new("scale-foreign");
    let g = s(&d.good);
    for (method, opt) in [
        ("standard", &["--clip"][..]),
        ("standard", &["--feature-range", "0,2"]),
        ("standard", &["--quantile-range", "10,90"]),
        ("standard", &["--unit-variance"]),
        ("robust", &["--feature-range=-1,1"]),
        ("robust", &["--clip"]),
        ("minmax", &["--quantile-range", "10,90"]),
        ("minmax", &["--no-center"]),
        ("minmax", &["--no-scale"]),
        ("minmax", &["--unit-variance"]),
        ("maxabs", &["--no-scale"]),
        ("maxabs", &["--clip"]),
        ("log", &["--no-center"]),
        ("log", &["--feature-range", "0,2"]),
    ] {
        let name = opt[0].split('=').next().unwrap();
        d.fails(2, &[name], |o, p| {
            let mut a = v(&["--method", method]);
            a.extend(opt.iter().map(|x| x.to_string()));
            a.extend([g.clone(), "-o".into(), o.into(), "--params-out".into(), p.into()]);
            a
        });
    }
    // The same with the method from a params file.
    let st = s(&d.standard);
    d.fails(2, &["--clip"], |o, p| v(&["--params-in", &st, "--clip", &g, "-o", o, "--params-out", p]));
}

#[test]
fn non_finite_and_out_of_domain_input_exit_2_naming_row_and_column() {
    let d = ErrorDir::new("scale-inf");
    let g = s(&d.good);
    let inf = d.file("inf.npy");
    write_npy(&inf, &[3, 2], &[1.0, 2.0, 3.0, f32::INFINITY, 5.0, 6.0]);
    let ninf_csv = d.file("ninf.csv");
    std::fs::write(&ninf_csv, "a,b\n1,2\n3,4\n5,-inf\n").unwrap();
    let i = s(&inf);
    let nc = s(&ninf_csv);
    for m in ["standard", "minmax", "maxabs", "robust", "log"] {
        d.fails(2, &["inf.npy", "row 1, column 1"], |o, p| v(&["--method", m, &i, "-o", o, "--params-out", p]));
        d.fails(2, &["ninf.csv:4", "row 2, column 1"], |o, p| v(&["--method", m, &nc, "-o", o, "--params-out", p]));
    }
    // In TRAIN, and in INPUT with a params file.
    d.fails(2, &["inf.npy", "row 1, column 1"], |o, p| {
        v(&["--method", "standard", &g, "--fit", &i, "-o", o, "--params-out", p])
    });
    let st = s(&d.standard);
    d.fails(2, &["inf.npy", "row 1, column 1"], |o, p| v(&["--params-in", &st, &i, "-o", o, "--params-out", p]));
    d.fails(2, &["inf.npy", "row 1, column 1"], |o, p| {
        v(&["--params-in", &st, "--inverse", &i, "-o", o, "--params-out", p])
    });

    // log: a value <= -1 is bad input.
    let neg = d.file("neg.npy");
    write_npy(&neg, &[3, 2], &[1.0, 2.0, 3.0, 4.0, -1.0, 6.0]);
    let below = d.file("below.npy");
    write_npy(&below, &[2, 3], &[0.5, -0.5, 0.0, 1.0, 2.0, -7.0]);
    let (n, b) = (s(&neg), s(&below));
    d.fails(2, &["neg.npy", "row 2, column 0"], |o, p| v(&["--method", "log", &n, "-o", o, "--params-out", p]));
    d.fails(2, &["below.npy", "row 1, column 2"], |o, p| v(&["--method", "log", &b, "-o", o, "--params-out", p]));
    let lg = s(&d.log);
    d.fails(2, &["neg.npy", "row 2, column 0"], |o, p| v(&["--params-in", &lg, &n, "-o", o, "--params-out", p]));
    // In a CSV file, the value's line too.
    let neg_csv = d.file("neg.csv");
    std::fs::write(&neg_csv, "a,b\n1,2\n-3,4\n").unwrap();
    let nc = s(&neg_csv);
    d.fails(2, &["neg.csv:3", "row 1, column 0"], |o, p| v(&["--method", "log", &nc, "-o", o, "--params-out", p]));
}

#[test]
fn inverse_without_params_exit_2_except_log() {
    let d = ErrorDir::new("scale-inverse");
    let g = s(&d.good);
    for m in ["standard", "minmax", "maxabs", "robust"] {
        d.fails(2, &["--inverse"], |o, p| v(&["--method", m, "--inverse", &g, "-o", o, "--params-out", p]));
    }
    let out = d.file("log-inverse.npy");
    gpunorm(&v(&["--method", "log", "--inverse", &g, "-o", &s(&out)])).expect_code(0);
    let got = read_out(&out);
    for (g, x) in got.data.iter().zip([1.0f64, -0.5, 3.0, 4.0, 5.0, 6.0, 7.5, 0.25]) {
        assert!(close(*g, x.exp_m1(), 16.0 * U * x.exp_m1().abs()), "expm1({x}) = {g}");
    }
}

#[test]
fn params_file_disagreeing_with_the_command_line_exit_2() {
    let d = ErrorDir::new("scale-params");
    let g = s(&d.good);
    let (st, mm, rb, lg) = (s(&d.standard), s(&d.minmax), s(&d.robust), s(&d.log));
    // Method differs.
    for (file, m) in [(&mm, "standard"), (&st, "minmax"), (&rb, "maxabs"), (&lg, "standard"), (&st, "log")] {
        d.fails(2, &[m], |o, p| v(&["--params-in", file, "--method", m, &g, "-o", o, "--params-out", p]));
    }
    // An option differs from the file's (fitted with the defaults).
    d.fails(2, &["minmax.json", "--feature-range"], |o, p| {
        v(&["--params-in", &mm, "--feature-range", "0,10", &g, "-o", o, "--params-out", p])
    });
    d.fails(2, &["--feature-range"], |o, p| {
        v(&["--params-in", &mm, "--feature-range=-1,1", &g, "-o", o, "--params-out", p])
    });
    d.fails(2, &["--clip"], |o, p| {
        v(&["--params-in", &mm, "--method", "minmax", "--clip", &g, "-o", o, "--params-out", p])
    });
    d.fails(2, &["--no-center"], |o, p| v(&["--params-in", &st, "--no-center", &g, "-o", o, "--params-out", p]));
    d.fails(2, &["--no-scale"], |o, p| {
        v(&["--params-in", &st, "--no-scale", "--inverse", &g, "-o", o, "--params-out", p])
    });
    d.fails(2, &["--quantile-range"], |o, p| {
        v(&["--params-in", &rb, "--quantile-range", "10,90", &g, "-o", o, "--params-out", p])
    });
    d.fails(2, &["--unit-variance"], |o, p| {
        v(&["--params-in", &rb, "--unit-variance", &g, "-o", o, "--params-out", p])
    });
    d.fails(2, &["--no-center"], |o, p| v(&["--params-in", &rb, "--no-center", &g, "-o", o, "--params-out", p]));

    // The same options as the file's are accepted.
    for (file, extra) in [
        (&mm, vec!["--feature-range", "0,1"]),
        (&mm, vec!["--method", "minmax"]),
        (&rb, vec!["--quantile-range=25,75"]),
    ] {
        let mut a = v(&["--params-in", file, &g, "-o", &s(&d.file("ok.npy"))]);
        a.extend(extra.iter().map(|x| x.to_string()));
        gpunorm(&a).expect_code(0);
        std::fs::remove_file(d.file("ok.npy")).unwrap();
    }

    // The file's feature count differs from INPUT's (2 vs 3): names INPUT and its shape.
    let w = s(&d.wide);
    for file in [&st, &mm, &rb] {
        d.fails(2, &["wide.npy", "3"], |o, p| v(&["--params-in", file, &w, "-o", o, "--params-out", p]));
        d.fails(2, &["wide.npy", "3"], |o, p| v(&["--params-in", file, "--inverse", &w, "-o", o, "--params-out", p]));
    }
    // TRAIN's feature count differs from INPUT's.
    d.fails(2, &["3"], |o, p| v(&["--method", "standard", "--fit", &w, &g, "-o", o, "--params-out", p]));
}

#[test]
fn bad_params_files_exit_2_naming_them() {
    let d = ErrorDir::new("scale-badparams");
    let g = s(&d.good);
    let bad = |name: &str, text: &str| {
        let p = d.file(name);
        std::fs::write(&p, text).unwrap();
        s(&p)
    };
    let files = [
        bad("truncated.json", "{\"method\": \"standard\", "),
        bad("notjson.json", "method = standard\n"),
        bad("empty.json", ""),
        bad("nomethod.json", "{\"options\": {}, \"n_features\": 2}"),
        bad("unknown.json", "{\"method\": \"zscore\", \"options\": {}, \"n_features\": 2}"),
        bad("nostats.json", "{\"method\": \"standard\", \"options\": {\"with_mean\": true, \"with_std\": true}, \"n_features\": 2}"),
        bad(
            "short.json",
            "{\"method\": \"robust\", \"options\": {}, \"n_features\": 2, \"center\": [1.0], \"scale\": [1.0]}",
        ),
        bad(
            "badrange.json",
            "{\"method\": \"minmax\", \"options\": {\"feature_range\": [1, 0]}, \"n_features\": 1, \"data_min\": [0], \"data_max\": [1]}",
        ),
    ];
    for f in &files {
        let name = Path::new(f).file_name().unwrap().to_str().unwrap().to_string();
        d.fails(2, &[&name], |o, p| v(&["--params-in", f, &g, "-o", o, "--params-out", p]));
    }
    // A params file that does not exist.
    let missing = s(&d.file("no-such-params.json"));
    d.fails(2, &["no-such-params.json"], |o, p| v(&["--params-in", &missing, &g, "-o", o, "--params-out", p]));
}

#[test]
fn missing_or_bad_input_files_exit_2_naming_them() {
    let d = ErrorDir::new("scale-files");
    let g = s(&d.good);
    let missing = s(&d.file("no-such-input.npy"));
    d.fails(2, &["no-such-input.npy"], |o, p| v(&["--method", "standard", &missing, "-o", o, "--params-out", p]));
    let missing_train = s(&d.file("no-such-train.csv"));
    d.fails(2, &["no-such-train.csv"], |o, p| {
        v(&["--method", "minmax", &g, "--fit", &missing_train, "-o", o, "--params-out", p])
    });
    let cube = d.file("cube.npy");
    write_npy(&cube, &[2, 2, 2], &[1.0; 8]);
    let c = s(&cube);
    d.fails(2, &["cube.npy", "(2, 2, 2)"], |o, p| v(&["--method", "maxabs", &c, "-o", o, "--params-out", p]));
    let ragged = d.file("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3\n").unwrap();
    let r = s(&ragged);
    d.fails(2, &["ragged.csv:3"], |o, p| v(&["--method", "robust", &r, "-o", o, "--params-out", p]));
    // An output or params file in a directory that does not exist: neither is written.
    let nowhere = s(&d.file("no/such/dir/out.npy"));
    d.fails(2, &["out.npy"], |_, p| v(&["--method", "standard", &g, "-o", &nowhere, "--params-out", p]));
    let nowhere_p = s(&d.file("no/such/dir/p.json"));
    d.fails(2, &["p.json"], |o, _| v(&["--method", "standard", &g, "-o", o, "--params-out", &nowhere_p]));
}

/// Metal does not exist on Linux: no adapter, exit 4, nothing written.
#[cfg(target_os = "linux")]
#[test]
fn no_adapter_exit_4() {
    let d = ErrorDir::new("scale-metal");
    let g = s(&d.good);
    d.fails(4, &["mesa-vulkan-drivers"], |o, p| {
        v(&["--method", "standard", &g, "--backend", "metal", "-o", o, "--params-out", p])
    });
    let mm = s(&d.minmax);
    d.fails(4, &["no GPU adapter"], |o, p| {
        v(&["--params-in", &mm, "--inverse", &g, "--backend=metal", "-o", o, "--params-out", p])
    });
}
