//! `gpunorm norm` through the built binary: the PyTorch golden cases
//! (tests/golden/norms.json) run as a user would (several steps by feeding
//! `--running-out` back into `--running-mean/--running-var`), CSV in and out, and
//! every error path with its exit code and the atomic-write guarantees.

mod cli_common;
mod common;

use std::path::Path;

use cli_common::{golden, gpunorm, nums, write_csv, write_npy, TmpDir};
use common::assert_close;
use gpunorm::verify::F32_EPS;
use serde_json::Value;

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let a = gpunorm::io::parse_npy(&bytes, path).unwrap();
    (a.shape().to_vec(), a.iter().map(|&v| v as f32).collect())
}

fn shape_of(v: &Value) -> Vec<usize> {
    v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    nums(&v["data"]).iter().map(|&x| x as f32).collect()
}

/// Every golden case the command line can express: all but the batch case that
/// evaluates without tracked statistics (its train-mode twin covers the same output).
#[test]
fn golden_cases_through_the_cli() {
    let cases = golden("norms.json");
    let mut ran = 0;
    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let o = &case["options"];
        let e = &case["expected"];
        let kind = case["kind"].as_str().unwrap();
        let eval = o["eval"].as_bool().unwrap();
        let track = o["track_running_stats"].as_bool().unwrap();
        if kind == "batch" && eval && !track {
            continue;
        }
        let cl = o["channels_last"].as_bool().unwrap();
        let dir = TmpDir::new("norm-golden");
        let input = if cl { &case["input_channels_last"] } else { &case["input"] };
        let x = dir.file("x.npy");
        write_npy(&x, &shape_of(input), &f32s(input));
        let mut base = vec![
            "norm".to_string(),
            "--kind".into(),
            kind.into(),
            s(&x),
            "--eps".into(),
            format!("{}", o["eps"].as_f64().unwrap()),
            "--verify".into(),
        ];
        if cl {
            base.push("--channels-last".into());
        }
        if let Some(g) = o["groups"].as_u64() {
            base.extend(["--groups".into(), g.to_string()]);
        }
        if let Some(k) = o["normalized_dims"].as_u64() {
            base.extend(["--normalized-dims".into(), k.to_string()]);
        }
        for (key, file) in [("gamma", "g.npy"), ("beta", "b.npy")] {
            if !case[key].is_null() {
                write_npy(&dir.file(file), &shape_of(&case[key]), &f32s(&case[key]));
                base.extend([format!("--{key}"), s(&dir.file(file))]);
            }
        }
        // Start values of the running stats.
        let c = shape_of(&case["input"])[1];
        let rm0 = if case["running_mean"].is_null() { vec![0.0; c] } else { f32s(&case["running_mean"]) };
        let rv0 = if case["running_var"].is_null() { vec![1.0; c] } else { f32s(&case["running_var"]) };
        let steps = case["steps"].as_u64().unwrap();
        let y = dir.file("y.npy");
        let batch = kind == "batch";
        if batch {
            write_npy(&dir.file("rm.npy"), &[c], &rm0);
            write_npy(&dir.file("rv.npy"), &[c], &rv0);
        }
        for step in 1..=steps {
            let mut args = base.clone();
            args.extend(["-o".into(), s(&y)]);
            if batch {
                let rs = dir.file(&format!("rs{step}"));
                args.extend([
                    "--running-mean".into(),
                    s(&dir.file("rm.npy")),
                    "--running-var".into(),
                    s(&dir.file("rv.npy")),
                ]);
                args.extend(["--running-out".into(), s(&rs)]);
                let m = o["momentum"].as_f64().unwrap_or(1.0 / step as f64);
                args.extend(["--momentum".into(), format!("{m}")]);
                if eval {
                    args.push("--eval".into());
                }
                gpunorm(&args).expect_code(0);
                std::fs::copy(rs.join("running_mean.npy"), dir.file("rm.npy")).unwrap();
                std::fs::copy(rs.join("running_var.npy"), dir.file("rv.npy")).unwrap();
            } else {
                gpunorm(&args).expect_code(0);
            }
        }
        let want = if cl { &e["output_channels_last"] } else { &e["output"] };
        let (shape, got) = read_npy(&y);
        assert_eq!(shape, shape_of(want), "{name}: output shape");
        let max_x = nums(&input["data"]).iter().filter(|v| v.is_finite()).fold(0.0f64, |m, v| m.max(v.abs()));
        let max_g = if case["gamma"].is_null() {
            1.0
        } else {
            nums(&case["gamma"]["data"]).iter().fold(1.0f64, |m, v| m.max(v.abs()))
        };
        let max_y = nums(&want["data"]).iter().filter(|v| v.is_finite()).fold(1.0f64, |m, v| m.max(v.abs()));
        let abs = 1e-4 + 16.0 * F32_EPS * max_x * max_g * (max_y + 1.0);
        assert_close(&format!("{name} output"), &got, &nums(&want["data"]), abs, 1e-4);
        if batch && !e["running_mean"].is_null() {
            let (_, rm) = read_npy(&dir.file("rm.npy"));
            let (_, rv) = read_npy(&dir.file("rv.npy"));
            assert_close(&format!("{name} running_mean"), &rm, &nums(&e["running_mean"]["data"]), abs, 1e-4);
            assert_close(&format!("{name} running_var"), &rv, &nums(&e["running_var"]["data"]), abs * 10.0, 1e-4);
        }
        ran += 1;
    }
    assert_eq!(ran, 38);
}

#[test]
fn brief_example_csv_in_and_out() {
    let dir = TmpDir::new("norm-csv");
    let x = dir.file("x.csv");
    write_csv(&x, 1, &[10.0, 20.0, 30.0, 40.0, 50.0], Some(&["value"]), false);
    write_npy(&dir.file("g.npy"), &[1], &[2.0]);
    write_npy(&dir.file("b.npy"), &[1], &[3.0]);
    let y = dir.file("y.csv");
    let rs = dir.file("stats/nested");
    gpunorm(&[
        "norm",
        "--kind",
        "batch",
        &s(&x),
        "-o",
        &s(&y),
        "--gamma",
        &s(&dir.file("g.npy")),
        "--beta",
        &s(&dir.file("b.npy")),
        "--running-out",
        &s(&rs),
    ])
    .expect_code(0);
    let text = std::fs::read_to_string(&y).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("value"));
    let got: Vec<f32> = lines.map(|l| l.parse().unwrap()).collect();
    let inv = 1.0 / (200.0f64 + 1e-5).sqrt();
    let want: Vec<f64> = [-20.0, -10.0, 0.0, 10.0, 20.0].iter().map(|d| 2.0 * d * inv + 3.0).collect();
    assert_close("brief csv", &got, &want, 1e-5, 1e-5);
    let (shape, rm) = read_npy(&rs.join("running_mean.npy"));
    assert_eq!(shape, vec![1]);
    assert_close("rm", &rm, &[3.0], 1e-5, 0.0);
    let (_, rv) = read_npy(&rs.join("running_var.npy"));
    assert_close("rv", &rv, &[25.9], 1e-4, 0.0);
}

/// Eval writes the running stats unchanged; gamma alone (beta 0), beta alone (gamma 1).
#[test]
fn eval_and_partial_affine() {
    let dir = TmpDir::new("norm-eval");
    let x = dir.file("x.npy");
    write_npy(&x, &[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    write_npy(&dir.file("rm.npy"), &[2], &[1.0, -1.0]);
    write_npy(&dir.file("rv.npy"), &[2], &[4.0, 0.25]);
    write_npy(&dir.file("g.npy"), &[2], &[2.0, 3.0]);
    let y = dir.file("y.npy");
    let rs = dir.file("rs");
    let common = [
        "norm",
        "--kind",
        "batch",
        &s(&x),
        "-o",
        &s(&y),
        "--running-mean",
        &s(&dir.file("rm.npy")),
        "--running-var",
        &s(&dir.file("rv.npy")),
    ]
    .map(String::from);
    let mut args = common.to_vec();
    args.extend(["--eval", "--running-out", &s(&rs), "--gamma", &s(&dir.file("g.npy")), "--verify"].map(String::from));
    gpunorm(&args).expect_code(0);
    let (_, got) = read_npy(&y);
    let want: Vec<f64> = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let ch = (i / 2) % 2;
            let (m, var, g) = [(1.0, 4.0, 2.0), (-1.0, 0.25, 3.0)][ch];
            (v - m) / (var + 1e-5f64).sqrt() * g
        })
        .collect();
    assert_close("eval", &got, &want, 1e-5, 1e-5);
    assert_eq!(read_npy(&rs.join("running_mean.npy")).1, vec![1.0, -1.0]);
    assert_eq!(read_npy(&rs.join("running_var.npy")).1, vec![4.0, 0.25]);
    // beta alone: gamma 1.
    write_npy(&dir.file("b.npy"), &[2], &[10.0, 20.0]);
    let mut args = common.to_vec();
    args.extend(["--eval", "--beta", &s(&dir.file("b.npy"))].map(String::from));
    gpunorm(&args).expect_code(0);
    let (_, got2) = read_npy(&y);
    for (i, v) in got2.iter().enumerate() {
        let ch = (i / 2) % 2;
        let base = want[i] / [2.0, 3.0][ch];
        assert!((*v as f64 - (base + [10.0, 20.0][ch])).abs() < 1e-4);
    }
}

/// A run that must fail: exit code, stderr parts, and no output (an existing output
/// file keeps its content; no temporary files or running-stat files appear).
fn must_fail(dir: &TmpDir, args: &[String], code: i32, parts: &[&str]) {
    let y = dir.file("y.npy");
    std::fs::write(&y, b"old").unwrap();
    let before = dir.names();
    gpunorm(args).expect_code(code).stderr_has(parts);
    assert_eq!(std::fs::read(&y).unwrap(), b"old", "the output was touched: {args:?}");
    assert_eq!(dir.names(), before, "files appeared: {args:?}");
}

#[test]
fn error_paths() {
    let dir = TmpDir::new("norm-errors");
    let x = dir.file("x.npy");
    write_npy(&x, &[4, 6, 5], &(0..120).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>());
    write_npy(&dir.file("c6.npy"), &[6], &[1.0; 6]);
    write_npy(&dir.file("c5.npy"), &[5], &[1.0; 5]);
    write_npy(&dir.file("one.npy"), &[1, 6], &[1.0; 6]);
    write_npy(&dir.file("v1.npy"), &[7], &[1.0; 7]);
    let y = s(&dir.file("y.npy"));
    let xs = s(&x);
    let f = |name: &str| s(&dir.file(name));
    let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Usage errors (exit 2).
    must_fail(&dir, &a(&["norm", &xs, "-o", &y]), 2, &["--kind"]);
    // PyTorch's F.batch_norm refuses eps 0 with batch statistics; eval and the other
    // norms take it.
    must_fail(&dir, &a(&["norm", "--kind", "batch", "--eps", "0", &xs, "-o", &y]), 2, &["eps must be positive"]);
    for ok in [
        a(&[
            "norm",
            "--kind",
            "batch",
            "--eval",
            "--eps",
            "0",
            "--running-mean",
            &f("c6.npy"),
            "--running-var",
            &f("c6.npy"),
        ]),
        a(&["norm", "--kind", "layer", "--eps", "0"]),
        a(&["norm", "--kind", "instance", "--eps", "0"]),
    ] {
        let mut args = ok.clone();
        args.extend(a(&[&xs, "-o", &y]));
        gpunorm(&args).expect_code(0);
    }
    must_fail(&dir, &a(&["norm", "--kind", "cheese", &xs, "-o", &y]), 2, &["--kind", "batch, layer, group, instance"]);
    must_fail(&dir, &a(&["norm", "--kind", "batch", &xs]), 2, &["-o/--output"]);
    must_fail(&dir, &a(&["norm", "--kind", "group", &xs, "-o", &y]), 2, &["--groups"]);
    must_fail(&dir, &a(&["norm", "--kind", "group", "--groups", "0", &xs, "-o", &y]), 2, &["--groups"]);
    must_fail(
        &dir,
        &a(&["norm", "--kind", "batch", "--groups", "2", &xs, "-o", &y]),
        2,
        &["--groups applies to --kind group"],
    );
    must_fail(&dir, &a(&["norm", "--kind", "layer", "--channels-last", &xs, "-o", &y]), 2, &["--channels-last"]);
    must_fail(&dir, &a(&["norm", "--kind", "layer", "--momentum", "0.2", &xs, "-o", &y]), 2, &["--momentum"]);
    must_fail(
        &dir,
        &a(&["norm", "--kind", "instance", "--running-out", &f("rs"), &xs, "-o", &y]),
        2,
        &["--running-out"],
    );
    must_fail(
        &dir,
        &a(&["norm", "--kind", "batch", "--normalized-dims", "2", &xs, "-o", &y]),
        2,
        &["--normalized-dims"],
    );
    must_fail(&dir, &a(&["norm", "--kind", "batch", "--eps", "-1", &xs, "-o", &y]), 2, &["--eps"]);
    must_fail(&dir, &a(&["norm", "--kind", "batch", "--eps", "abc", &xs, "-o", &y]), 2, &["--eps"]);
    must_fail(&dir, &a(&["norm", "--kind", "batch", "--momentum", "1.5", &xs, "-o", &y]), 2, &["--momentum"]);
    must_fail(
        &dir,
        &a(&["norm", "--kind", "layer", "--normalized-dims", "0", &xs, "-o", &y]),
        2,
        &["--normalized-dims"],
    );
    // --eval without running stats (both needed).
    must_fail(&dir, &a(&["norm", "--kind", "batch", "--eval", &xs, "-o", &y]), 2, &["--running-mean", "--running-var"]);
    must_fail(
        &dir,
        &a(&["norm", "--kind", "batch", "--eval", "--running-mean", &f("c6.npy"), &xs, "-o", &y]),
        2,
        &["--running-var"],
    );
    // Bad input (exit 2): shapes, C % G, K above the rank, one value per channel.
    must_fail(
        &dir,
        &a(&["norm", "--kind", "group", "--groups", "4", &xs, "-o", &y]),
        2,
        &["x.npy", "divisible", "(4, 6, 5)"],
    );
    must_fail(&dir, &a(&["norm", "--kind", "layer", "--normalized-dims", "4", &xs, "-o", &y]), 2, &["x.npy", "rank"]);
    must_fail(
        &dir,
        &a(&["norm", "--kind", "batch", "--gamma", &f("c5.npy"), &xs, "-o", &y]),
        2,
        &["c5.npy", "gamma", "(5,)", "(6,)"],
    );
    must_fail(
        &dir,
        &a(&["norm", "--kind", "batch", "--beta", &f("one.npy"), &xs, "-o", &y]),
        2,
        &["one.npy", "(1, 6)"],
    );
    must_fail(
        &dir,
        &a(&["norm", "--kind", "batch", "--running-mean", &f("c6.npy"), "--running-var", &f("v1.npy"), &xs, "-o", &y]),
        2,
        &["v1.npy", "running var", "(7,)"],
    );
    must_fail(
        &dir,
        &a(&["norm", "--kind", "layer", "--normalized-dims", "2", "--gamma", &f("c6.npy"), &xs, "-o", &y]),
        2,
        &["(6, 5)"],
    );
    must_fail(
        &dir,
        &a(&["norm", "--kind", "instance", "--channels-last", "--gamma", &f("c6.npy"), &xs, "-o", &y]),
        2,
        &["(5,)"],
    );
    write_npy(&dir.file("single.npy"), &[1, 3], &[1.0, 2.0, 3.0]);
    must_fail(
        &dir,
        &a(&["norm", "--kind", "batch", &f("single.npy"), "-o", &y, "--running-out", &f("rs")]),
        2,
        &["single.npy", "expected more than 1 value per channel", "[1, 3]"],
    );
    write_npy(&dir.file("flat.npy"), &[6], &[1.0; 6]);
    must_fail(&dir, &a(&["norm", "--kind", "batch", &f("flat.npy"), "-o", &y]), 2, &["flat.npy", "(6,)"]);
    write_npy(&dir.file("inst1.npy"), &[2, 3, 1], &[1.0; 6]);
    must_fail(
        &dir,
        &a(&["norm", "--kind", "instance", &f("inst1.npy"), "-o", &y]),
        2,
        &["more than 1 spatial element"],
    );
    must_fail(&dir, &a(&["norm", "--kind", "batch", &f("missing.npy"), "-o", &y]), 2, &["missing.npy"]);
    // A 3-D result cannot be written as CSV: nothing is written.
    let ycsv = f("y.csv");
    let before = dir.names();
    gpunorm(&a(&["norm", "--kind", "batch", &xs, "-o", &ycsv, "--running-out", &f("rs")]))
        .expect_code(2)
        .stderr_has(&["CSV"]);
    assert_eq!(dir.names(), before);
    // An output that cannot be written (a directory of that name) fails after the
    // running stats' directories were made: they go again, nested ones too.
    std::fs::create_dir(dir.file("taken.npy")).unwrap();
    let before = dir.names();
    gpunorm(&a(&["norm", "--kind", "batch", &xs, "-o", &f("taken.npy"), "--running-out", &f("new/rs")]))
        .expect_code(2)
        .stderr_has(&["taken.npy"]);
    assert_eq!(dir.names(), before);
    // And the good run: both running files appear.
    gpunorm(&a(&["norm", "--kind", "batch", &xs, "-o", &y, "--running-out", &f("rs"), "--verify"])).expect_code(0);
    let mut names: Vec<String> = std::fs::read_dir(dir.file("rs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["running_mean.npy", "running_var.npy"]);
}

/// NaN and inf propagate to the output and the running stats, as in PyTorch.
#[test]
fn nan_and_inf_propagate() {
    let dir = TmpDir::new("norm-nan");
    let x = dir.file("x.npy");
    write_npy(&x, &[3, 3], &[1.0, f32::NAN, 2.0, 3.0, 4.0, f32::INFINITY, 5.0, 6.0, 7.0]);
    let y = dir.file("y.npy");
    gpunorm(&["norm", "--kind", "batch", &s(&x), "-o", &s(&y), "--running-out", &s(&dir.file("rs")), "--verify"])
        .expect_code(0);
    let (_, got) = read_npy(&y);
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v.is_nan(), i % 3 != 0, "element {i}: {v}");
    }
    let (_, rm) = read_npy(&dir.file("rs/running_mean.npy"));
    assert!(rm[0].is_finite() && rm[1].is_nan() && rm[2] == f32::INFINITY, "{rm:?}");
}
