//! Shared helpers of the CLI tests: running the built binary, temporary
//! directories, writing `.npy`/`.csv` inputs, loading the golden JSON.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

/// The `gpunorm` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_gpunorm");

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panic with the whole run shown unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit code {code}; got {self:#?}");
        self
    }

    /// Panic unless stderr contains every one of `parts`.
    #[track_caller]
    pub fn stderr_has(&self, parts: &[&str]) -> &Self {
        for p in parts {
            assert!(self.stderr.contains(p), "stderr lacks {p:?}:\n{}", self.stderr);
        }
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

/// Run `gpunorm ARGS...` (the environment, e.g. GPUNORM_BACKEND, is inherited).
pub fn gpunorm<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    gpunorm_with_env(args, &[])
}

/// [`gpunorm`] with some environment variables set.
pub fn gpunorm_with_env<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, &str)]) -> Run {
    let out = Command::new(BIN).args(args).envs(env.iter().copied()).output().expect("run the gpunorm binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TmpDir(pub PathBuf);

impl TmpDir {
    pub fn new(tag: &str) -> TmpDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "gpunorm-cli-test-{}-{tag}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TmpDir(dir)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Every file name in the directory, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Write a float32 `.npy` of `shape` (C order) through the library's writer.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) {
    let a = ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).expect("data fits the shape");
    std::fs::write(path, gpunorm::io::npy_bytes(a.view())).unwrap();
}

/// Write a 2-D little-endian float64 `.npy` (C order).
pub fn write_npy_f64(path: &Path, (rows, cols): (usize, usize), data: &[f64]) {
    let body: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_raw_npy(path, "<f8", &format!("({rows}, {cols})"), &body);
}

/// Write a 1-D little-endian int64 `.npy` (the reader converts it to float32).
pub fn write_npy_i64(path: &Path, data: &[i64]) {
    let body: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_raw_npy(path, "<i8", &format!("({},)", data.len()), &body);
}

/// A version 1.0 `.npy` of dtype `descr` and shape `shape` (numpy's spelling) around
/// the C-order bytes `body`.
fn write_raw_npy(path: &Path, descr: &str, shape: &str, body: &[u8]) {
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(body);
    std::fs::write(path, bytes).unwrap();
}

/// Write a 2-D `.csv` with an optional header; NaN is written as `nan` (or as an
/// empty field when `nan_empty`), numbers in their shortest float32 form.
pub fn write_csv(path: &Path, cols: usize, data: &[f32], header: Option<&[&str]>, nan_empty: bool) {
    let mut s = String::new();
    if let Some(h) = header {
        s.push_str(&h.join(","));
        s.push('\n');
    }
    for row in data.chunks(cols) {
        let fields: Vec<String> = row
            .iter()
            .map(|v| {
                if v.is_nan() {
                    if nan_empty {
                        String::new()
                    } else {
                        "nan".into()
                    }
                } else {
                    format!("{v}")
                }
            })
            .collect();
        s.push_str(&fields.join(","));
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// A golden file from `tests/golden/`.
pub fn golden(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON number, or NaN for `null`.
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Null => f64::NAN,
        v => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

/// A JSON list of numbers (null = NaN).
pub fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(num).collect()
}

/// A JSON list of numbers (null = NaN) as float32.
pub fn nums_f32(v: &Value) -> Vec<f32> {
    nums(v).into_iter().map(|x| x as f32).collect()
}
