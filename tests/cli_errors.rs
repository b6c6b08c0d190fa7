//! Exit codes and error messages of the `gpunorm` binary.

mod cli_common;

use cli_common::{gpunorm, write_npy, TmpDir};

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// A small valid input.
fn good_input(dir: &TmpDir) -> std::path::PathBuf {
    let p = dir.file("good.npy");
    write_npy(&p, &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    p
}

#[test]
fn usage_errors_exit_2_and_name_the_culprit() {
    let dir = TmpDir::new("usage");
    let input = good_input(&dir);
    let i = s(&input);
    gpunorm(&["frobnicate"]).expect_code(2).stderr_has(&["gpunorm: error:", "unknown command 'frobnicate'"]);
    gpunorm::<&str>(&[]).expect_code(2).stderr_has(&["no command"]);
    gpunorm(&["--frob"]).expect_code(2).stderr_has(&["'--frob'"]);
    gpunorm(&["stats", i, "--frob"]).expect_code(2).stderr_has(&["unknown option '--frob'", "usage: gpunorm stats"]);
    gpunorm(&["stats", i, "-x"]).expect_code(2).stderr_has(&["'-x'"]);
    gpunorm(&["stats", i, "--quantiles"]).expect_code(2).stderr_has(&["--quantiles needs a value"]);
    gpunorm(&["stats", i, "--quantiles", "--verify"]).expect_code(2).stderr_has(&["--quantiles needs a value"]);
    gpunorm(&["stats", i, "-o"]).expect_code(2).stderr_has(&["-o needs a value"]);
    gpunorm(&["stats", i, "--verify=yes"]).expect_code(2).stderr_has(&["--verify takes no value"]);
    gpunorm(&["stats", i, "--verify", "--verify"]).expect_code(2).stderr_has(&["--verify given more than once"]);
    gpunorm(&["stats", i, "--quantiles=0.5", "--quantiles", "0.5"])
        .expect_code(2)
        .stderr_has(&["--quantiles given more than once"]);
    gpunorm(&["stats", i, i]).expect_code(2).stderr_has(&["unexpected argument"]);
    gpunorm(&["stats"]).expect_code(2).stderr_has(&["missing INPUT"]);
    gpunorm(&["info", "extra"]).expect_code(2).stderr_has(&["unexpected argument 'extra'"]);
    gpunorm(&["info", "--verify"]).expect_code(2).stderr_has(&["unknown option '--verify'"]);
}

#[test]
fn help_and_version_exit_0() {
    let r = gpunorm(&["--help"]);
    r.expect_code(0);
    for c in ["scale", "stats", "norm", "bench", "info"] {
        assert!(r.stdout.contains(c), "{}", r.stdout);
        let h = gpunorm(&[c, "--help"]);
        h.expect_code(0);
        assert!(h.stdout.starts_with(&format!("usage: gpunorm {c}")), "{}", h.stdout);
        gpunorm(&[c, "-h"]).expect_code(0);
        gpunorm(&["help", c]).expect_code(0);
    }
    let v = gpunorm(&["--version"]);
    v.expect_code(0);
    assert_eq!(v.stdout.trim(), format!("gpunorm {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn missing_input_file_names_it() {
    let dir = TmpDir::new("missing");
    let p = dir.file("no-such-file.npy");
    gpunorm(&["stats", s(&p)]).expect_code(2).stderr_has(&["no-such-file.npy"]);
    let p = dir.file("data.txt");
    std::fs::write(&p, "1,2\n").unwrap();
    gpunorm(&["stats", s(&p)]).expect_code(2).stderr_has(&["data.txt", ".npy", ".csv"]);
}

#[test]
fn ragged_csv_names_line_and_row() {
    let dir = TmpDir::new("ragged");
    let p = dir.file("ragged.csv");
    std::fs::write(&p, "a,b,c\n1,2,3\n4,5,6\n7,8\n").unwrap();
    gpunorm(&["stats", s(&p)]).expect_code(2).stderr_has(&["ragged.csv:4", "row 2"]);
    let p = dir.file("word.csv");
    std::fs::write(&p, "1,2\n3,x\n").unwrap();
    gpunorm(&["stats", s(&p)]).expect_code(2).stderr_has(&["word.csv:2", "row 1, column 1"]);
}

#[test]
fn infinity_names_file_row_and_column() {
    let dir = TmpDir::new("inf");
    let p = dir.file("inf.csv");
    std::fs::write(&p, "a,b\n1,2\n3,4\n5,-inf\n").unwrap();
    gpunorm(&["stats", s(&p)]).expect_code(2).stderr_has(&["inf.csv:4", "row 2, column 1"]);
    let p = dir.file("inf.npy");
    write_npy(&p, &[2, 3], &[1.0, 2.0, 3.0, 4.0, f32::INFINITY, 6.0]);
    gpunorm(&["stats", s(&p)]).expect_code(2).stderr_has(&["inf.npy", "row 1, column 1"]);
    let p = dir.file("inf1d.npy");
    write_npy(&p, &[4], &[1.0, 2.0, 3.0, f32::NEG_INFINITY]);
    gpunorm(&["stats", s(&p)]).expect_code(2).stderr_has(&["inf1d.npy", "row 3, column 0"]);
}

#[test]
fn bad_quantiles_exit_2() {
    let dir = TmpDir::new("quantiles");
    let input = good_input(&dir);
    let i = s(&input);
    gpunorm(&["stats", i, "--quantiles", "1.5"]).expect_code(2).stderr_has(&["1.5", "[0, 1]"]);
    gpunorm(&["stats", i, "--quantiles", "0.5,1.5"]).expect_code(2).stderr_has(&["1.5"]);
    // A negative value is read as the option's value in both spellings.
    gpunorm(&["stats", i, "--quantiles", "-0.5"]).expect_code(2).stderr_has(&["-0.5", "[0, 1]"]);
    gpunorm(&["stats", i, "--quantiles=-0.5"]).expect_code(2).stderr_has(&["-0.5", "[0, 1]"]);
    gpunorm(&["stats", i, "--quantiles", "abc"]).expect_code(2).stderr_has(&["--quantiles", "abc"]);
    gpunorm(&["stats", i, "--quantiles", "0.5,,1"]).expect_code(2).stderr_has(&["--quantiles"]);
    gpunorm(&["stats", i, "--quantiles", "nan"]).expect_code(2).stderr_has(&["--quantiles"]);
}

#[test]
fn rank_3_input_names_the_shape() {
    let dir = TmpDir::new("rank3");
    let p = dir.file("cube.npy");
    write_npy(&p, &[2, 3, 4], &[0.5; 24]);
    gpunorm(&["stats", s(&p)]).expect_code(2).stderr_has(&["cube.npy", "(2, 3, 4)"]);
}

#[test]
fn output_untouched_on_error() {
    let dir = TmpDir::new("atomic");
    let bad = dir.file("bad.npy");
    write_npy(&bad, &[2, 2], &[1.0, f32::INFINITY, 3.0, 4.0]);
    let fresh = dir.file("fresh.json");
    gpunorm(&["stats", s(&bad), "-o", s(&fresh)]).expect_code(2);
    assert!(!fresh.exists(), "output created on error");
    let existing = dir.file("existing.json");
    std::fs::write(&existing, b"keep me").unwrap();
    gpunorm(&["stats", s(&bad), "-o", s(&existing)]).expect_code(2);
    gpunorm(&["stats", s(&dir.file("nope.npy")), "-o", s(&existing)]).expect_code(2);
    gpunorm(&["stats", s(&bad), "--quantiles", "2", "-o", s(&existing)]).expect_code(2);
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    // No temporary file left behind.
    assert_eq!(dir.names(), ["bad.npy", "existing.json"]);

    // An output in a directory that does not exist: exit 2 naming it, nothing created.
    let good = good_input(&dir);
    let nowhere = dir.file("no/such/dir/out.json");
    gpunorm(&["stats", s(&good), "-o", s(&nowhere)]).expect_code(2).stderr_has(&["out.json"]);
    assert_eq!(dir.names(), ["bad.npy", "existing.json", "good.npy"]);
}

#[test]
fn bad_backend_exit_2() {
    let dir = TmpDir::new("backend");
    let input = good_input(&dir);
    gpunorm(&["stats", s(&input), "--backend", "nonsense"]).expect_code(2).stderr_has(&["nonsense", "--backend"]);
    gpunorm(&["info", "--backend=nonsense"]).expect_code(2).stderr_has(&["nonsense"]);
    // A bad GPUNORM_BACKEND is bad input too, naming the variable; --backend overrides it.
    let out =
        std::process::Command::new(cli_common::BIN).args(["info"]).env("GPUNORM_BACKEND", "bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GPUNORM_BACKEND"));
    let out = std::process::Command::new(cli_common::BIN)
        .args(["stats", s(&input), "--backend", "auto"])
        .env("GPUNORM_BACKEND", "bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Metal does not exist on Linux: no adapter, exit 4, with the install hint.
#[cfg(target_os = "linux")]
#[test]
fn no_adapter_exit_4() {
    let dir = TmpDir::new("noadapter");
    let input = good_input(&dir);
    let out = dir.file("out.json");
    gpunorm(&["stats", s(&input), "--backend", "metal", "-o", s(&out)])
        .expect_code(4)
        .stderr_has(&["no GPU adapter", "mesa-vulkan-drivers"]);
    assert!(!out.exists());
    gpunorm(&["info", "--backend", "dx12"]).expect_code(4).stderr_has(&["mesa-vulkan-drivers"]);
    // The environment variable works the same way.
    let r =
        std::process::Command::new(cli_common::BIN).args(["info"]).env("GPUNORM_BACKEND", "metal").output().unwrap();
    assert_eq!(r.status.code(), Some(4));
}

/// Exit 3: `--verify` finding a GPU result outside tolerance. No kernel is off, so the
/// strict diagnostic (exact equality, `GPUNORM_VERIFY_STRICT=1`) stands in for one: the
/// message names the worst element, and no output appears (nor is an existing one
/// touched).
#[test]
fn verify_mismatch_exits_3_naming_the_worst_element() {
    let dir = TmpDir::new("verify3");
    // Real decimals (small integers can come out exact even in float32).
    let input = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/wine.csv");
    let out = dir.file("out.npy");
    let strict = [("GPUNORM_VERIFY_STRICT", "1")];
    let run =
        cli_common::gpunorm_with_env(&["scale", "--method", "standard", s(&input), "-o", s(&out), "--verify"], &strict);
    run.expect_code(3);
    assert!(run.stderr.contains("worst at index") && run.stderr.contains("reference"), "{}", run.stderr);
    assert!(!out.exists(), "no output on a verify failure");
    std::fs::write(&out, b"keep me").unwrap();
    let run = cli_common::gpunorm_with_env(&["stats", s(&input), "-o", s(&out), "--verify"], &strict);
    run.expect_code(3);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    // Without the diagnostic the same runs pass their checks.
    cli_common::gpunorm(&["scale", "--method", "standard", s(&input), "-o", s(&out), "--verify"]).expect_code(0);
}
