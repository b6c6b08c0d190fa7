//! Shared test helpers: one GPU context per test binary, a seeded generator, data makers.
#![allow(dead_code)]

use std::sync::OnceLock;

use gpunorm::{Gpu, GpuOptions};

/// The shared context (adapter from GPUNORM_BACKEND / WGPU_BACKEND, as users get it).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| Gpu::with_options(GpuOptions::from_env().unwrap()).expect("a GPU or software adapter"))
}

/// A fresh context, for tests that change its settings (e.g. a tiny chunk size).
pub fn own_gpu() -> Gpu {
    Gpu::with_options(GpuOptions::from_env().unwrap()).expect("a GPU or software adapter")
}

/// xorshift64* — small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn normals(&mut self, n: usize, mean: f64, std: f64) -> Vec<f32> {
        (0..n).map(|_| (mean + std * self.normal()) as f32).collect()
    }
}

/// Fill a NaN into roughly `fraction` of the values.
pub fn sprinkle_nan(v: &mut [f32], fraction: f64, rng: &mut Rng) {
    for x in v.iter_mut() {
        if rng.uniform() < fraction {
            *x = f32::NAN;
        }
    }
}

/// A golden array `{"shape": [...], "data": [... null = NaN]}`.
pub fn golden_array(v: &serde_json::Value) -> (Vec<usize>, Vec<f64>) {
    let shape = v["shape"].as_array().expect("shape").iter().map(|x| x.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().expect("data").iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect();
    (shape, data)
}

/// A golden array as a 2-D f32 matrix (1-D becomes one column).
pub fn golden_matrix(v: &serde_json::Value) -> ndarray::Array2<f32> {
    let (shape, data) = golden_array(v);
    let (r, c) = match shape[..] {
        [n] => (n, 1),
        [r, c] => (r, c),
        _ => panic!("not a matrix: {shape:?}"),
    };
    ndarray::Array2::from_shape_vec((r, c), data.iter().map(|&x| x as f32).collect()).unwrap()
}

/// A list of numbers with null = NaN.
pub fn golden_vec(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("list").iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

pub fn load_golden(name: &str) -> Vec<serde_json::Value> {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str::<serde_json::Value>(&text).unwrap().as_array().unwrap().clone()
}

/// Both NaN, or within `abs + rel·|want|`.
pub fn close(got: f64, want: f64, abs: f64, rel: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    (got - want).abs() <= abs + rel * want.abs()
}

/// Assert `got` is within `abs + rel·|want|` of `want`, NaN matching NaN.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], abs: f64, rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g as f64;
        if w.is_nan() || g.is_nan() {
            assert!(w.is_nan() && g.is_nan(), "{what}[{i}]: got {g}, want {w}");
            continue;
        }
        let tol = abs + rel * w.abs();
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}, error {:e} > {tol:e}", (g - w).abs());
    }
}
