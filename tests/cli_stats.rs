//! `gpunorm stats` against the golden numbers (numpy, float64 over the float32
//! data) in tests/golden/stats.json, run through the built binary.

mod cli_common;

use cli_common::{golden, gpunorm, nums, nums_f32, write_csv, write_npy, write_npy_f64, write_npy_i64, TmpDir};
use gpunorm::verify::{mean_tolerance, var_tolerance, F32_EPS};
use serde_json::Value;

/// A golden case, unpacked.
struct Case {
    name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
    keys: Vec<String>,
    expected: Value,
}

fn cases() -> Vec<Case> {
    golden("stats.json")
        .as_array()
        .expect("a list of cases")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            shape: c["input"]["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect(),
            data: nums_f32(&c["input"]["data"]),
            keys: c["quantile_keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect(),
            expected: c["expected"].clone(),
        })
        .collect()
}

fn case(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no golden case {name}"))
}

/// Values below float32's normal range may be flushed to zero by a GPU (the
/// golden's subnormal case says so): allow that much absolute error everywhere.
const FLUSH: f64 = f32::MIN_POSITIVE as f64;

/// One ulp of float32 at `x`.
fn ulp32(x: f32) -> f64 {
    let a = x.abs();
    if a.is_infinite() {
        return f64::INFINITY;
    }
    (f32::from_bits(a.to_bits() + 1) as f64) - a as f64
}

/// `got` equals `want` rounded to float32 within 4 ulp (NaN must be null/NaN on
/// both sides).
fn exact32(what: &str, got: f64, want: f64) {
    if want.is_nan() || got.is_nan() {
        assert!(want.is_nan() && got.is_nan(), "{what}: got {got}, want {want}");
        return;
    }
    let w = want as f32;
    let err = (got - w as f64).abs();
    assert!(err <= 4.0 * ulp32(w) + FLUSH, "{what}: got {got}, want {want} (float32 {w}), error {err:e}");
}

/// `|got - want| <= bound` (NaN must match NaN).
fn within(what: &str, got: f64, want: f64, bound: f64) {
    if want.is_nan() || got.is_nan() {
        assert!(want.is_nan() && got.is_nan(), "{what}: got {got}, want {want}");
        return;
    }
    let err = (got - want).abs();
    assert!(err <= bound, "{what}: got {got}, want {want}, error {err:e} > tolerance {bound:e}");
}

/// Compare the CLI's JSON document with a golden case.
fn check(c: &Case, doc: &Value) {
    let name = &c.name;
    let (rows, cols) = match c.shape.as_slice() {
        [n] => (*n, 1),
        [n, f] => (*n, *f),
        s => panic!("{name}: golden shape {s:?}"),
    };
    assert_eq!(doc["n_samples"], Value::from(rows), "{name}: n_samples");
    assert_eq!(doc["n_features"], Value::from(cols), "{name}: n_features");
    let features = doc["features"].as_array().unwrap_or_else(|| panic!("{name}: no features list"));
    assert_eq!(features.len(), cols, "{name}: features");
    let e = &c.expected;
    let (count, nan_count) = (nums(&e["count"]), nums(&e["nan_count"]));
    let (mean, var, var_sample, std) = (nums(&e["mean"]), nums(&e["var"]), nums(&e["var_sample"]), nums(&e["std"]));
    let (min, max) = (nums(&e["min"]), nums(&e["max"]));
    let quantiles: Vec<Vec<f64>> = e["quantiles"].as_array().unwrap().iter().map(nums).collect();
    assert_eq!(quantiles.len(), c.keys.len(), "{name}: golden quantiles");

    for (j, f) in features.iter().enumerate() {
        let at = |field: &str| format!("{name}: feature {j} {field}");
        let obj = f.as_object().unwrap_or_else(|| panic!("{}", at("is not an object")));
        let mut fields: Vec<&str> = obj.keys().map(String::as_str).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            ["count", "max", "mean", "min", "nan_count", "quantiles", "std", "var", "var_sample"],
            "{}",
            at("fields")
        );
        let n = count[j] as usize;
        assert_eq!(f["count"].as_u64(), Some(n as u64), "{}", at("count"));
        assert_eq!(f["nan_count"].as_u64(), Some(nan_count[j] as u64), "{}", at("nan_count"));
        let g = |k: &str| cli_common::num(&f[k]);

        // Statistics of an empty (all-NaN) feature are null.
        if n == 0 {
            for k in ["mean", "var", "var_sample", "std", "min", "max"] {
                assert!(f[k].is_null(), "{}", at(k));
            }
        }
        let mt = mean_tolerance(n, n, mean[j].abs(), std[j]);
        within(&at("mean"), g("mean"), mean[j], mt.bound(mean[j]) + FLUSH);
        let vt = var_tolerance(n, n, mean[j].abs(), std[j]);
        let vb = vt.bound(var[j]) + FLUSH * FLUSH;
        within(&at("var"), g("var"), var[j], vb);
        // std² = var: |Δstd| = |Δvar| / (std + std').
        within(&at("std"), g("std"), std[j], vb / (std[j] + vb.sqrt()) + FLUSH);
        if n < 2 {
            assert!(f["var_sample"].is_null(), "{}: {}", at("var_sample (count < 2)"), f["var_sample"]);
        } else {
            let k = n as f64 / (n - 1) as f64;
            within(&at("var_sample"), g("var_sample"), var_sample[j], vb * k * (1.0 + 4.0 * F32_EPS));
        }
        exact32(&at("min"), g("min"), min[j]);
        exact32(&at("max"), g("max"), max[j]);

        let q = f["quantiles"].as_object().unwrap_or_else(|| panic!("{}", at("quantiles")));
        let keys: Vec<&str> = q.keys().map(String::as_str).collect();
        let mut want_keys: Vec<&str> = c.keys.iter().map(String::as_str).collect();
        want_keys.sort_unstable();
        let mut got_keys = keys.clone();
        got_keys.sort_unstable();
        assert_eq!(got_keys, want_keys, "{}", at("quantile keys"));
        for (i, key) in c.keys.iter().enumerate() {
            exact32(&at(&format!("quantile {key}")), cli_common::num(&q[key.as_str()]), quantiles[i][j]);
        }
    }
}

/// Run `gpunorm stats INPUT --quantiles KEYS` and parse stdout.
fn stats_of(path: &std::path::Path, keys: &[String], extra: &[&str]) -> Value {
    let q = keys.join(",");
    let mut args = vec!["stats".to_string(), path.display().to_string(), "--quantiles".into(), q];
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = gpunorm(&args);
    run.expect_code(0);
    run.json()
}

#[test]
fn every_golden_case_from_npy() {
    // Every case runs; the failures are listed together at the end.
    let dir = TmpDir::new("stats-npy");
    let mut failed = Vec::new();
    for c in cases() {
        let path = dir.file(&format!("{}.npy", c.name));
        write_npy(&path, &c.shape, &c.data);
        let doc = stats_of(&path, &c.keys, &[]);
        if let Err(e) = std::panic::catch_unwind(|| check(&c, &doc)) {
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_else(|| format!("{}: failed", c.name));
            failed.push(msg);
        }
    }
    assert!(failed.is_empty(), "{} golden case(s) failed:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn golden_cases_from_csv() {
    let dir = TmpDir::new("stats-csv");
    for (name, header, nan_empty) in [
        ("n2_2x3", Some(&["a", "b", "\"c, third\""][..]), false),
        ("nan_mixed_and_all_nan_50x3", None, true),
        ("nan_mixed_and_all_nan_50x3", Some(&["x", "y", "z"][..]), false),
        ("wine", None, false),
    ] {
        let c = case(name);
        let path = dir.file(&format!("{name}.csv"));
        write_csv(&path, c.shape[1], &c.data, header, nan_empty);
        check(&c, &stats_of(&path, &c.keys, &[]));
    }
}

#[test]
fn verify_passes_on_golden_cases() {
    let dir = TmpDir::new("stats-verify");
    for name in ["normal_257x3", "nan_mixed_and_all_nan_50x3", "offset_1e4_1000x2", "ties_and_constant_64x3"] {
        let c = case(name);
        let path = dir.file(&format!("{name}.npy"));
        write_npy(&path, &c.shape, &c.data);
        check(&c, &stats_of(&path, &c.keys, &["--verify"]));
    }
}

#[test]
fn output_file_and_nothing_on_stdout() {
    let dir = TmpDir::new("stats-o");
    let c = case("normal_257x3");
    let input = dir.file("in.npy");
    write_npy(&input, &c.shape, &c.data);
    let out = dir.file("stats.json");
    let keys = c.keys.join(",");
    // Both spellings of -o / --output, and --quantiles=...
    for flag in [vec!["-o".to_string(), out.display().to_string()], vec![format!("--output={}", out.display())]] {
        let _ = std::fs::remove_file(&out);
        let mut args = vec!["stats".to_string(), input.display().to_string(), format!("--quantiles={keys}")];
        args.extend(flag);
        let run = gpunorm(&args);
        run.expect_code(0);
        assert_eq!(run.stdout, "", "stdout must be empty with -o");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        check(&c, &doc);
    }
    // Only the input and the output are left: no temporary file.
    assert_eq!(dir.names(), ["in.npy", "stats.json"]);
}

#[test]
fn default_quantiles_and_keys() {
    let dir = TmpDir::new("stats-default");
    let c = case("normal_257x3");
    assert_eq!(c.keys, ["0.25", "0.5", "0.75"]);
    let path = dir.file("x.npy");
    write_npy(&path, &c.shape, &c.data);
    let run = gpunorm(&["stats", path.to_str().unwrap()]);
    run.expect_code(0);
    check(&c, &run.json());

    // Keys are the shortest decimal forms, whatever the spelling asked.
    let run = gpunorm(&["stats", path.to_str().unwrap(), "--quantiles", "0.10,1.0,0,.5,0.250"]);
    run.expect_code(0);
    let doc = run.json();
    let q = doc["features"][0]["quantiles"].as_object().unwrap();
    let mut keys: Vec<&str> = q.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["0", "0.1", "0.25", "0.5", "1"]);
    assert_eq!(q["0"], doc["features"][0]["min"]);
    assert_eq!(q["1"], doc["features"][0]["max"]);
}

#[test]
fn one_d_input_is_one_feature() {
    let dir = TmpDir::new("stats-1d");
    let path = dir.file("v.npy");
    write_npy(&path, &[5], &[3.0, 1.0, f32::NAN, 4.0, 2.0]);
    let run = gpunorm(&["stats", path.to_str().unwrap(), "--quantiles", "0,0.5,1"]);
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc["n_samples"], 5);
    assert_eq!(doc["n_features"], 1);
    let f = &doc["features"][0];
    assert_eq!(f["count"], 4);
    assert_eq!(f["nan_count"], 1);
    // float32 accumulation: within a few ulps of numpy's float64 figures.
    assert!((f["mean"].as_f64().unwrap() - 2.5).abs() < 1e-6, "{}", f["mean"]);
    assert!((f["var"].as_f64().unwrap() - 1.25).abs() < 1e-6, "{}", f["var"]);
    assert_eq!(f["min"], 1.0);
    assert_eq!(f["max"], 4.0);
    assert_eq!(f["quantiles"]["0.5"], 2.5);
}

#[test]
fn count_one_has_null_var_sample() {
    let dir = TmpDir::new("stats-n1");
    let path = dir.file("one.csv");
    std::fs::write(&path, "a,b\n7.5,nan\n").unwrap();
    let run = gpunorm(&["stats", path.to_str().unwrap()]);
    run.expect_code(0);
    let doc = run.json();
    let a = &doc["features"][0];
    assert_eq!(a["count"], 1);
    assert_eq!(a["var"], 0.0);
    assert!(a["var_sample"].is_null());
    assert_eq!(a["quantiles"]["0.25"], 7.5);
    let b = &doc["features"][1];
    assert_eq!(b["count"], 0);
    assert_eq!(b["nan_count"], 1);
    for k in ["mean", "var", "var_sample", "std", "min", "max"] {
        assert!(b[k].is_null(), "{k}: {}", b[k]);
    }
    assert!(b["quantiles"]["0.5"].is_null());
}

#[test]
fn integer_and_float64_npy_inputs() {
    // int64 and float64 files are read and converted to float32.
    let dir = TmpDir::new("stats-dtypes");
    let path = dir.file("ints.npy");
    write_npy_i64(&path, &[4, -2, 10, 0]);
    let run = gpunorm(&["stats", path.to_str().unwrap(), "--quantiles=0.5"]);
    run.expect_code(0);
    let doc = run.json();
    assert_eq!(doc["features"][0]["mean"], 3.0);
    assert_eq!(doc["features"][0]["min"], -2.0);
    assert_eq!(doc["features"][0]["quantiles"]["0.5"], 2.0);
}

/// float64 columns whose detail lies below float32's resolution at their magnitude
/// (1e6 plus noise of ~1; timestamps near 1.7e9, where float32 steps by 128 s) keep
/// their mean, quantiles, min and max to float64's figures (each column is centred on
/// the host before it becomes float32), and `--verify` passes.
#[test]
fn float64_columns_keep_their_detail() {
    let dir = TmpDir::new("stats-f64-detail");
    let rows = 1001;
    let mut state = 12345u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut data = Vec::with_capacity(rows * 2);
    for _ in 0..rows {
        data.push(1e6 + (next() + next() + next() - 1.5) * 2.0);
        data.push(1.7e9 + 86400.0 * next());
    }
    let path = dir.file("detail.npy");
    write_npy_f64(&path, (rows, 2), &data);
    let run = gpunorm(&["stats", path.to_str().unwrap(), "--quantiles", "0.1,0.5,0.9", "--verify"]);
    run.expect_code(0);
    let doc = run.json();
    for j in 0..2 {
        let mut col: Vec<f64> = (0..rows).map(|i| data[i * 2 + j]).collect();
        let mean = col.iter().sum::<f64>() / rows as f64;
        let std = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64).sqrt();
        col.sort_by(f64::total_cmp);
        let f = &doc["features"][j];
        let num = |k: &str| f[k].as_f64().unwrap();
        // float32 arithmetic on the residuals: a few ulp of the spread.
        let tol = 1e-6 * std;
        assert!((num("mean") - mean).abs() <= tol, "column {j} mean {} vs {mean}", num("mean"));
        assert!((num("std") / std - 1.0).abs() <= 1e-5, "column {j} std {} vs {std}", num("std"));
        assert!((num("min") - col[0]).abs() <= tol, "column {j} min");
        assert!((num("max") - col[rows - 1]).abs() <= tol, "column {j} max");
        for (key, rank) in [("0.1", 100), ("0.5", 500), ("0.9", 900)] {
            let q = f["quantiles"][key].as_f64().unwrap();
            assert!((q - col[rank]).abs() <= tol, "column {j} quantile {key}: {q} vs {}", col[rank]);
        }
    }
}
