//! The norm layers against PyTorch (tests/golden/norms.json), against their float64
//! twin (under `Verify::Always`, with the documented tolerances), against finite
//! differences, on random and adversarial data, across chunk boundaries, and across
//! several devices whose statistics merge.

mod common;

use common::{assert_close, gpu, own_gpu, Rng};
use gpunorm::norm::{
    sync, BatchNorm, BatchNormConfig, Grads, GroupNorm, GroupNormConfig, InstanceNorm, InstanceNormConfig, LayerNorm,
    LayerNormConfig, SavedStats,
};
use gpunorm::reference::norms as twin;
use gpunorm::verify::F32_EPS;
use gpunorm::{Error, Gpu, GpuTensor, Grouping, Verify};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde_json::Value;

// ------------------------------------------------------------------ helpers

/// A context that checks every operation against the float64 twin.
fn verifying_gpu() -> Gpu {
    let mut g = own_gpu();
    g.set_verify(Verify::Always);
    g
}

/// Any of the four layers, driven the same way.
#[allow(clippy::enum_variant_names)]
enum Layer {
    Batch(BatchNorm),
    Layer(LayerNorm),
    Group(GroupNorm),
    Instance(InstanceNorm),
}

impl Layer {
    fn forward_saved(&mut self, gpu: &Gpu, x: ArrayViewD<f32>) -> gpunorm::Result<(ArrayD<f32>, SavedStats)> {
        match self {
            Layer::Batch(l) => l.forward_saved(gpu, x),
            Layer::Layer(l) => l.forward_saved(gpu, x),
            Layer::Group(l) => l.forward_saved(gpu, x),
            Layer::Instance(l) => l.forward_saved(gpu, x),
        }
    }
    fn backward(&self, gpu: &Gpu, x: ArrayViewD<f32>, dy: ArrayViewD<f32>, s: &SavedStats) -> gpunorm::Result<Grads> {
        match self {
            Layer::Batch(l) => l.backward(gpu, x, dy, s),
            Layer::Layer(l) => l.backward(gpu, x, dy, s),
            Layer::Group(l) => l.backward(gpu, x, dy, s),
            Layer::Instance(l) => l.backward(gpu, x, dy, s),
        }
    }
    fn set_gamma_beta(&mut self, gpu: &Gpu, g: &[f32], b: &[f32]) -> gpunorm::Result<()> {
        match self {
            Layer::Batch(l) => l.set_gamma_beta(gpu, g, b),
            Layer::Layer(l) => l.set_gamma_beta(gpu, g, b),
            Layer::Group(l) => l.set_gamma_beta(gpu, g, b),
            Layer::Instance(l) => l.set_gamma_beta(gpu, g, b),
        }
    }
    fn running(&self, gpu: &Gpu) -> Option<(Vec<f32>, Vec<f32>)> {
        match self {
            Layer::Batch(l) => l.running_mean(gpu).unwrap().zip(l.running_var(gpu).unwrap()),
            Layer::Instance(l) => l.running_mean(gpu).unwrap().zip(l.running_var(gpu).unwrap()),
            _ => None,
        }
    }
}

fn arr(shape: &[usize], data: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// ------------------------------------------------------------------ golden

struct GArray {
    shape: Vec<usize>,
    data: Vec<f64>,
}

fn garray(v: &Value) -> Option<GArray> {
    if v.is_null() {
        return None;
    }
    let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap_or(f64::NAN)).collect();
    Some(GArray { shape, data })
}

fn f32s(a: &GArray) -> Vec<f32> {
    a.data.iter().map(|&x| x as f32).collect()
}

fn golden_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/norms.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v.as_array().unwrap().clone()
}

fn build_layer(gpu: &Gpu, case: &Value) -> Layer {
    let o = &case["options"];
    let eps = o["eps"].as_f64().unwrap();
    let momentum = o["momentum"].as_f64();
    let affine = o["affine"].as_bool().unwrap();
    let cl = o["channels_last"].as_bool().unwrap();
    let track = o["track_running_stats"].as_bool().unwrap();
    let eval = o["eval"].as_bool().unwrap();
    let shape = garray(&case["input"]).unwrap().shape;
    let c = shape[1];
    let mut layer = match case["kind"].as_str().unwrap() {
        "batch" => {
            let cfg = BatchNormConfig::default()
                .eps(eps)
                .momentum(momentum)
                .affine(affine)
                .track_running_stats(track)
                .channels_last(cl);
            let mut l = BatchNorm::new(gpu, c, cfg).unwrap();
            l.set_training(!eval);
            Layer::Batch(l)
        }
        "layer" => {
            let k = o["normalized_dims"].as_u64().unwrap() as usize;
            let cfg = LayerNormConfig::default().eps(eps).elementwise_affine(affine);
            Layer::Layer(LayerNorm::new(gpu, &shape[shape.len() - k..], cfg).unwrap())
        }
        "group" => {
            let groups = o["groups"].as_u64().unwrap() as usize;
            let cfg = GroupNormConfig::default().eps(eps).affine(affine).channels_last(cl);
            Layer::Group(GroupNorm::new(gpu, groups, c, cfg).unwrap())
        }
        "instance" => {
            let cfg =
                InstanceNormConfig::default().eps(eps).affine(affine).channels_last(cl).track_running_stats(track);
            let mut l = InstanceNorm::new(gpu, c, cfg).unwrap();
            l.set_training(!eval);
            Layer::Instance(l)
        }
        k => panic!("unknown kind {k}"),
    };
    if let (Some(g), Some(b)) = (garray(&case["gamma"]), garray(&case["beta"])) {
        layer.set_gamma_beta(gpu, &f32s(&g), &f32s(&b)).unwrap();
    }
    let rm = garray(&case["running_mean"]);
    let rv = garray(&case["running_var"]);
    if rm.is_some() || rv.is_some() {
        let m = rm.map_or(vec![0.0; c], |a| f32s(&a));
        let v = rv.map_or(vec![1.0; c], |a| f32s(&a));
        match &mut layer {
            Layer::Batch(l) => l.set_running_stats(gpu, &m, &v).unwrap(),
            Layer::Instance(l) => l.set_running_stats(gpu, &m, &v).unwrap(),
            _ => panic!("running stats on a layer without them"),
        }
    }
    layer
}

/// Running mean and variance read back.
type Running = (Vec<f32>, Vec<f32>);

/// Run a golden case: steps − 1 forwards, then forward + backward. Returns (output,
/// grads, running) in the layout of the input the layer saw.
fn run_golden(gpu: &Gpu, case: &Value) -> (ArrayD<f32>, Grads, Option<Running>) {
    let cl = case["options"]["channels_last"].as_bool().unwrap();
    let input = garray(if cl { &case["input_channels_last"] } else { &case["input"] }).unwrap();
    let dy = garray(if cl { &case["expected"]["grad_output_channels_last"] } else { &case["expected"]["grad_output"] })
        .unwrap();
    let x = arr(&input.shape, f32s(&input));
    let dy = arr(&dy.shape, f32s(&dy));
    let mut layer = build_layer(gpu, case);
    for _ in 1..case["steps"].as_u64().unwrap() {
        layer.forward_saved(gpu, x.view()).unwrap();
    }
    let (y, saved) = layer.forward_saved(gpu, x.view()).unwrap();
    let grads = layer.backward(gpu, x.view(), dy.view(), &saved).unwrap();
    let running = layer.running(gpu);
    (y, grads, running)
}

/// GPU results against PyTorch, on a verifying context (so each op also passed its
/// derived-tolerance check against the twin). The direct tolerance here is float32's
/// error scaled by the data: `1e-4 + 16·u·max|x|·max σ⁻¹·max|γ|` (the mean of data
/// far from zero is only as exact as float32 at that magnitude), and the same for the
/// gradients with `max|dy|`.
#[test]
fn golden_pytorch_cases() {
    let gpu = verifying_gpu();
    let cases = golden_cases();
    assert_eq!(cases.len(), 39);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let cl = case["options"]["channels_last"].as_bool().unwrap();
        let e = &case["expected"];
        let pick = |k: &str| garray(if cl { &e[format!("{k}_channels_last")] } else { &e[k] }).unwrap();
        let (y, grads, running) = run_golden(&gpu, case);
        let input = garray(&case["input"]).unwrap();
        let out = pick("output");
        let max_x = input.data.iter().filter(|v| v.is_finite()).fold(0.0f64, |m, v| m.max(v.abs()));
        let max_y = out.data.iter().filter(|v| v.is_finite()).fold(1.0f64, |m, v| m.max(v.abs()));
        let max_g = garray(&case["gamma"]).map_or(1.0, |g| g.data.iter().fold(1.0f64, |m, v| m.max(v.abs())));
        // σ⁻¹ ≤ 1/sqrt(eps); use the data's spread where finite.
        let scale = 16.0 * F32_EPS * max_x * max_g * (max_y + 1.0) + 1e-4;
        assert_eq!(y.shape(), out.shape.as_slice(), "{name}: output shape");
        assert_close(&format!("{name} output"), y.as_slice().unwrap(), &out.data, scale, 1e-4);
        if let Some(rm) = garray(&e["running_mean"]) {
            let (m, v) = running.clone().expect("running stats");
            assert_close(&format!("{name} running_mean"), &m, &rm.data, scale, 1e-4);
            let rv = garray(&e["running_var"]).unwrap();
            assert_close(&format!("{name} running_var"), &v, &rv.data, scale * 10.0, 1e-4);
        }
        let gi = pick("grad_input");
        let max_dy = pick("grad_output").data.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        assert_close(
            &format!("{name} grad_input"),
            grads.grad_input.as_slice().unwrap(),
            &gi.data,
            scale * max_dy * 4.0,
            1e-4,
        );
        match (garray(&e["grad_gamma"]), &grads.grad_gamma) {
            (Some(want), Some(got)) => {
                assert_eq!(got.shape(), want.shape.as_slice(), "{name}: grad_gamma shape");
                let n = input.data.len() as f64;
                assert_close(
                    &format!("{name} grad_gamma"),
                    got.as_slice().unwrap(),
                    &want.data,
                    scale * max_dy * n.sqrt(),
                    1e-4,
                );
                let want_b = garray(&e["grad_beta"]).unwrap();
                let got_b = grads.grad_beta.as_ref().unwrap();
                assert_close(
                    &format!("{name} grad_beta"),
                    got_b.as_slice().unwrap(),
                    &want_b.data,
                    1e-5 * max_dy * n.sqrt(),
                    1e-5,
                );
            }
            (None, None) => {}
            (w, g) => panic!("{name}: grad_gamma presence differs: golden {} vs ours {}", w.is_some(), g.is_some()),
        }
    }
}

/// The float64 twin against PyTorch (float64 both): agreement to ~1e-10.
#[test]
fn golden_twin_agrees() {
    for case in &golden_cases() {
        let name = case["name"].as_str().unwrap();
        let o = &case["options"];
        let e = &case["expected"];
        let eps = o["eps"].as_f64().unwrap();
        let input = garray(&case["input"]).unwrap();
        let shape = &input.shape;
        let x: Vec<f64> = input.data.iter().map(|&v| v as f32 as f64).collect();
        let dy = garray(&e["grad_output"]).unwrap().data;
        let gamma = garray(&case["gamma"]).map(|a| a.data);
        let beta = garray(&case["beta"]).map(|a| a.data);
        let (n, c) = (shape[0], shape[1]);
        let spatial: usize = shape[2..].iter().product();
        let g = match case["kind"].as_str().unwrap() {
            "batch" => Grouping::Channels { n, c, spatial, channels_last: false },
            "instance" => Grouping::Instances { n, c, spatial, channels_last: false },
            "group" => {
                Grouping::Groups { n, c, spatial, groups: o["groups"].as_u64().unwrap() as usize, channels_last: false }
            }
            _ => {
                let k = o["normalized_dims"].as_u64().unwrap() as usize;
                let len: usize = shape[shape.len() - k..].iter().product();
                Grouping::Rows { rows: x.len() / len, len }
            }
        };
        let eval = o["eval"].as_bool().unwrap() && o["track_running_stats"].as_bool().unwrap();
        let (y, grads, running) = if eval {
            let rm = garray(&case["running_mean"]).unwrap().data;
            let rv = garray(&case["running_var"]).unwrap().data;
            let y = twin::normalize(&x, &g, &rm, &rv, eps, gamma.as_deref(), beta.as_deref());
            (y, twin::backward_eval(&x, &dy, &g, eps, &rm, &rv, gamma.as_deref()), Some((rm, rv)))
        } else {
            let st = twin::norm_stats(&x, &g);
            let y = twin::normalize(&x, &g, &st.mean, &st.var, eps, gamma.as_deref(), beta.as_deref());
            let mut running = None;
            if o["track_running_stats"].as_bool().unwrap() {
                let mut rm = garray(&case["running_mean"]).map_or(vec![0.0; c], |a| a.data);
                let mut rv = garray(&case["running_var"]).map_or(vec![1.0; c], |a| a.data);
                for step in 1..=case["steps"].as_u64().unwrap() {
                    let f = o["momentum"].as_f64().unwrap_or(1.0 / step as f64);
                    twin::update_running(&mut rm, &st.mean, f);
                    twin::update_running(&mut rv, &st.var_unbiased, f);
                }
                running = Some((rm, rv));
            }
            (y, twin::backward_train(&x, &dy, &g, eps, gamma.as_deref()), running)
        };
        let close = |what: &str, got: &[f64], want: &[f64]| {
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!(
                    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                    "{name} {what}[{i}]: twin {a} vs torch {b}"
                );
            }
        };
        close("output", &y, &garray(&e["output"]).unwrap().data);
        close("grad_input", &grads.grad_input, &garray(&e["grad_input"]).unwrap().data);
        if let Some(want) = garray(&e["grad_gamma"]) {
            close("grad_gamma", &grads.grad_gamma, &want.data);
            close("grad_beta", &grads.grad_beta, &garray(&e["grad_beta"]).unwrap().data);
        }
        if let (Some((rm, rv)), Some(want)) = (running, garray(&e["running_mean"])) {
            close("running_mean", &rm, &want.data);
            close("running_var", &rv, &garray(&e["running_var"]).unwrap().data);
        }
    }
}

// ------------------------------------------------------------------ examples and semantics

#[test]
fn brief_example_one_channel() {
    let gpu = verifying_gpu();
    let mut bn = BatchNorm::new(&gpu, 1, BatchNormConfig::default()).unwrap();
    bn.set_gamma_beta(&gpu, &[2.0], &[3.0]).unwrap();
    let x = arr(&[5, 1], vec![10.0, 20.0, 30.0, 40.0, 50.0]);
    let (y, saved) = bn.forward_saved(&gpu, x.view()).unwrap();
    let inv = 1.0 / (200.0f64 + 1e-5).sqrt();
    let want: Vec<f64> = [-20.0, -10.0, 0.0, 10.0, 20.0].iter().map(|d| 2.0 * d * inv + 3.0).collect();
    assert_close("brief output", y.as_slice().unwrap(), &want, 1e-6, 1e-6);
    assert_close("running_mean", &bn.running_mean(&gpu).unwrap().unwrap(), &[3.0], 1e-6, 0.0);
    assert_close("running_var", &bn.running_var(&gpu).unwrap().unwrap(), &[25.9], 1e-5, 0.0);
    assert_eq!(bn.num_batches_tracked(), 1);
    assert_close("saved mean", &saved.mean(&gpu).unwrap(), &[30.0], 1e-5, 0.0);
    assert_close("saved invstd", &saved.invstd(&gpu).unwrap(), &[inv], 0.0, 1e-6);
    // dy = 1 everywhere: dβ = 5, dγ = Σx̂ = 0, dx = 0.
    let dy = arr(&[5, 1], vec![1.0; 5]);
    let g = bn.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
    assert_close("dbeta", g.grad_beta.unwrap().as_slice().unwrap(), &[5.0], 1e-6, 0.0);
    assert_close("dgamma", g.grad_gamma.unwrap().as_slice().unwrap(), &[0.0], 1e-5, 0.0);
    assert_close("dx", g.grad_input.as_slice().unwrap(), &[0.0; 5], 1e-6, 0.0);
}

/// Running stats over several steps: momentum 0.1 and the cumulative average, against the twin.
#[test]
fn running_stats_over_steps() {
    let gpu = verifying_gpu();
    let mut rng = Rng::new(7);
    for momentum in [Some(0.1), None, Some(0.0), Some(1.0)] {
        let mut bn = BatchNorm::new(&gpu, 3, BatchNormConfig::default().momentum(momentum)).unwrap();
        let (mut rm, mut rv) = (vec![0.0; 3], vec![1.0; 3]);
        for step in 1..=5u64 {
            let data = rng.normals(4 * 3 * 7, step as f64, 1.0 + step as f64);
            let x = arr(&[4, 3, 7], data.clone());
            bn.forward(&gpu, x.view()).unwrap();
            let st =
                twin::norm_stats(&f64s(&data), &Grouping::Channels { n: 4, c: 3, spatial: 7, channels_last: false });
            let f = momentum.unwrap_or(1.0 / step as f64);
            twin::update_running(&mut rm, &st.mean, f);
            twin::update_running(&mut rv, &st.var_unbiased, f);
        }
        assert_eq!(bn.num_batches_tracked(), 5);
        assert_close("rm", &bn.running_mean(&gpu).unwrap().unwrap(), &rm, 1e-5, 1e-5);
        assert_close("rv", &bn.running_var(&gpu).unwrap().unwrap(), &rv, 1e-5, 1e-5);
        // Eval uses them and leaves them alone.
        bn.set_training(false);
        let x = arr(&[2, 3, 7], rng.normals(42, 0.0, 1.0));
        let y = bn.forward(&gpu, x.view()).unwrap();
        let want = twin::normalize(
            &f64s(x.as_slice().unwrap()),
            &Grouping::Channels { n: 2, c: 3, spatial: 7, channels_last: false },
            &rm,
            &rv,
            1e-5,
            Some(&[1.0; 3]),
            Some(&[0.0; 3]),
        );
        assert_close("eval output", y.as_slice().unwrap(), &want, 1e-5, 1e-5);
        assert_eq!(bn.num_batches_tracked(), 5);
        assert_close("rm unchanged", &bn.running_mean(&gpu).unwrap().unwrap(), &rm, 1e-5, 1e-5);
    }
}

#[test]
fn no_running_stats_means_batch_stats_in_eval() {
    let gpu = verifying_gpu();
    let mut bn = BatchNorm::new(&gpu, 2, BatchNormConfig::default().track_running_stats(false)).unwrap();
    bn.set_training(false);
    assert!(bn.running_mean(&gpu).unwrap().is_none());
    let x = arr(&[3, 2, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 13.0]);
    let (y, saved) = bn.forward_saved(&gpu, x.view()).unwrap();
    assert!(saved.uses_batch_stats());
    let g = Grouping::Channels { n: 3, c: 2, spatial: 2, channels_last: false };
    let xs = f64s(x.as_slice().unwrap());
    let st = twin::norm_stats(&xs, &g);
    let want = twin::normalize(&xs, &g, &st.mean, &st.var, 1e-5, None, None);
    assert_close("eval, untracked", y.as_slice().unwrap(), &want, 1e-5, 1e-5);
    let dy = arr(&[3, 2, 2], (0..12).map(|i| (i as f32 * 0.7).sin()).collect());
    bn.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
    assert_eq!(bn.num_batches_tracked(), 0);
}

#[test]
fn instance_norm_with_running_stats() {
    let gpu = verifying_gpu();
    let mut rng = Rng::new(8);
    for cl in [false, true] {
        let cfg = InstanceNormConfig::default().track_running_stats(true).affine(true).channels_last(cl);
        let mut inn = InstanceNorm::new(&gpu, 3, cfg).unwrap();
        inn.set_gamma_beta(&gpu, &[0.5, 1.5, -1.0], &[0.1, 0.2, 0.3]).unwrap();
        let (n, c, sp) = (4, 3, 10);
        let shape = if cl { [n, sp, c] } else { [n, c, sp] };
        let g = Grouping::Instances { n, c, spatial: sp, channels_last: cl };
        let (mut rm, mut rv) = (vec![0.0; 3], vec![1.0; 3]);
        for _ in 0..3 {
            let data = rng.normals(n * c * sp, 2.0, 3.0);
            let x = arr(&shape, data.clone());
            let (_, saved) = inn.forward_saved(&gpu, x.view()).unwrap();
            let dy = arr(&shape, rng.normals(n * c * sp, 0.0, 1.0));
            inn.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
            let st = twin::norm_stats(&f64s(&data), &g);
            twin::update_running_instance(&mut rm, &mut rv, &st, n, c, 0.1);
        }
        assert_close("instance rm", &inn.running_mean(&gpu).unwrap().unwrap(), &rm, 1e-5, 1e-5);
        assert_close("instance rv", &inn.running_var(&gpu).unwrap().unwrap(), &rv, 1e-5, 1e-5);
        // Eval: per-channel running stats, eval backward (verified against the twin).
        inn.set_training(false);
        let x = arr(&shape, rng.normals(n * c * sp, 1.0, 2.0));
        let (_, saved) = inn.forward_saved(&gpu, x.view()).unwrap();
        assert!(!saved.uses_batch_stats());
        let dy = arr(&shape, rng.normals(n * c * sp, 0.0, 1.0));
        inn.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
    }
}

// ------------------------------------------------------------------ finite differences

/// Loss `Σ w·y` of the float64 reference forward (train, batch statistics).
fn reference_loss(x: &[f64], w: &[f64], g: &Grouping, eps: f64, gamma: &[f64], beta: &[f64]) -> f64 {
    let st = twin::norm_stats(x, g);
    let y = twin::normalize(x, g, &st.mean, &st.var, eps, Some(gamma), Some(beta));
    y.iter().zip(w).map(|(a, b)| a * b).sum()
}

/// GPU gradients of every layer against central differences of the CPU reference.
#[test]
fn backward_matches_finite_differences() {
    let gpu = verifying_gpu();
    let mut rng = Rng::new(11);
    let eps = 1e-3;
    let shapes: Vec<(Grouping, Vec<usize>)> = vec![
        (Grouping::Channels { n: 4, c: 3, spatial: 5, channels_last: false }, vec![4, 3, 5]),
        (Grouping::Channels { n: 4, c: 3, spatial: 5, channels_last: true }, vec![4, 5, 3]),
        (Grouping::Rows { rows: 6, len: 10 }, vec![2, 3, 2, 5]),
        (Grouping::Groups { n: 3, c: 6, spatial: 4, groups: 2, channels_last: false }, vec![3, 6, 4]),
        (Grouping::Groups { n: 3, c: 6, spatial: 4, groups: 3, channels_last: true }, vec![3, 2, 2, 6]),
        (Grouping::Instances { n: 3, c: 2, spatial: 6, channels_last: false }, vec![3, 2, 6]),
        (Grouping::Instances { n: 3, c: 2, spatial: 6, channels_last: true }, vec![3, 6, 2]),
    ];
    for (g, shape) in shapes {
        let l = twin::layout(&g);
        let x32 = rng.normals(g.numel(), 0.5, 2.0);
        let w32 = rng.normals(g.numel(), 0.0, 1.0);
        let gamma32: Vec<f32> = rng.normals(l.params, 1.0, 0.5);
        let beta32: Vec<f32> = rng.normals(l.params, 0.0, 0.5);
        let (x, w, gamma, beta) = (f64s(&x32), f64s(&w32), f64s(&gamma32), f64s(&beta32));
        let mut layer = match g {
            Grouping::Channels { c, channels_last, .. } => Layer::Batch(
                BatchNorm::new(&gpu, c, BatchNormConfig::default().eps(eps).channels_last(channels_last)).unwrap(),
            ),
            Grouping::Rows { .. } => {
                Layer::Layer(LayerNorm::new(&gpu, &[2, 5], LayerNormConfig::default().eps(eps)).unwrap())
            }
            Grouping::Groups { c, groups, channels_last, .. } => Layer::Group(
                GroupNorm::new(&gpu, groups, c, GroupNormConfig::default().eps(eps).channels_last(channels_last))
                    .unwrap(),
            ),
            Grouping::Instances { c, channels_last, .. } => Layer::Instance(
                InstanceNorm::new(
                    &gpu,
                    c,
                    InstanceNormConfig::default().eps(eps).affine(true).channels_last(channels_last),
                )
                .unwrap(),
            ),
            _ => unreachable!(),
        };
        layer.set_gamma_beta(&gpu, &gamma32, &beta32).unwrap();
        let xa = arr(&shape, x32.clone());
        let (_, saved) = layer.forward_saved(&gpu, xa.view()).unwrap();
        let grads = layer.backward(&gpu, xa.view(), arr(&shape, w32.clone()).view(), &saved).unwrap();
        let h = 1e-5;
        let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
        let dx: Vec<f64> = (0..x.len())
            .map(|i| {
                fd(&|d| {
                    let mut xp = x.clone();
                    xp[i] += d;
                    reference_loss(&xp, &w, &g, eps, &gamma, &beta)
                })
            })
            .collect();
        let dgamma: Vec<f64> = (0..l.params)
            .map(|p| {
                fd(&|d| {
                    let mut gp = gamma.clone();
                    gp[p] += d;
                    reference_loss(&x, &w, &g, eps, &gp, &beta)
                })
            })
            .collect();
        let dbeta: Vec<f64> = (0..l.params)
            .map(|p| {
                fd(&|d| {
                    let mut bp = beta.clone();
                    bp[p] += d;
                    reference_loss(&x, &w, &g, eps, &gamma, &bp)
                })
            })
            .collect();
        let what = format!("{g:?}");
        assert_close(&format!("{what} dx"), grads.grad_input.as_slice().unwrap(), &dx, 2e-4, 2e-4);
        assert_close(&format!("{what} dgamma"), grads.grad_gamma.unwrap().as_slice().unwrap(), &dgamma, 2e-4, 2e-4);
        assert_close(&format!("{what} dbeta"), grads.grad_beta.unwrap().as_slice().unwrap(), &dbeta, 2e-4, 2e-4);
    }
}

// ------------------------------------------------------------------ random and adversarial

/// Random data, every layer and layout, sizes around and off multiples of 256, all
/// verified against the twin by the layers themselves.
#[test]
fn random_every_layer_verified() {
    every_layer_forward_and_backward(&verifying_gpu(), 21);
}

/// The backward kernels read x and dy through two staged textures on a software
/// adapter without AVX-512, and the storage buffers elsewhere (see `gpu/texels.rs`):
/// the path this machine does not take by default is verified too.
#[test]
fn backward_other_read_path_verified() {
    let gpu = verifying_gpu();
    gpu.set_texel_reads_disabled(gpu.reads_through_texels());
    every_layer_forward_and_backward(&gpu, 22);
}

/// Every layer's forward and backward on random data, both layouts, runs of 2 to 4099
/// (4099: three rows of texels), each result checked by the context's verification.
fn every_layer_forward_and_backward(gpu: &Gpu, seed: u64) {
    let mut rng = Rng::new(seed);
    for per in [2usize, 4, 12, 255, 257, 1000, 4099] {
        for cl in [false, true] {
            let (n, c) = (3, 4);
            let shape = if cl { vec![n, per, c] } else { vec![n, c, per] };
            let numel = n * c * per;
            let x = arr(&shape, rng.normals(numel, -2.0, 3.0));
            let dy = arr(&shape, rng.normals(numel, 0.5, 1.0));
            let gamma: Vec<f32> = rng.normals(c, 1.0, 0.5);
            let beta: Vec<f32> = rng.normals(c, 0.0, 0.5);
            let mut layers = [
                Layer::Batch(BatchNorm::new(gpu, c, BatchNormConfig::default().channels_last(cl)).unwrap()),
                Layer::Group(GroupNorm::new(gpu, 2, c, GroupNormConfig::default().channels_last(cl)).unwrap()),
                Layer::Instance(
                    InstanceNorm::new(gpu, c, InstanceNormConfig::default().affine(true).channels_last(cl)).unwrap(),
                ),
            ];
            for l in layers.iter_mut() {
                l.set_gamma_beta(gpu, &gamma, &beta).unwrap();
                let (_, saved) = l.forward_saved(gpu, x.view()).unwrap();
                l.backward(gpu, x.view(), dy.view(), &saved).unwrap();
            }
            let mut bn = BatchNorm::new(gpu, c, BatchNormConfig::default().channels_last(cl).affine(false)).unwrap();
            bn.set_training(false);
            bn.set_running_stats(gpu, &[0.5, -1.0, 2.0, 0.0], &[1.0, 4.0, 0.25, 9.0]).unwrap();
            let (_, saved) = bn.forward_saved(gpu, x.view()).unwrap();
            bn.backward(gpu, x.view(), dy.view(), &saved).unwrap();
        }
        let ln = LayerNorm::new(gpu, &[per], LayerNormConfig::default()).unwrap();
        let x = arr(&[5, per], rng.normals(5 * per, 1.0, 2.0));
        let dy = arr(&[5, per], rng.normals(5 * per, 0.0, 1.0));
        let (_, saved) = ln.forward_saved(gpu, x.view()).unwrap();
        ln.backward(gpu, x.view(), dy.view(), &saved).unwrap();
    }
}

/// Offset-dominated segments (1e4 + N(0, 0.1), 1e6 + N(0, 1)): the mean's float32
/// rounding (up to ulp(1e4) / 2 / 0.1 ≈ 5e-3 in the output) is carried as the
/// center's low part, so every layer stays within float32 accuracy of the float64
/// twin (PyTorch's own float32 CPU kernels are off by ~1e-2 here).
#[test]
fn offset_dominated_segments_keep_float32_accuracy() {
    let gpu = gpu();
    let mut rng = Rng::new(33);
    for (offset, spread) in [(1e4, 0.1), (1e6, 1.0)] {
        let shape = [8usize, 4, 5, 5];
        let numel: usize = shape.iter().product();
        let data: Vec<f32> = (0..numel).map(|_| (offset + spread * rng.normal()) as f32).collect();
        let x = arr(&shape, data.clone());
        let layers: Vec<(&str, Layer, Grouping)> = vec![
            {
                let l = BatchNorm::new(gpu, 4, BatchNormConfig::default().affine(false)).unwrap();
                let g = l.grouping(&shape).unwrap();
                ("batch", Layer::Batch(l), g)
            },
            {
                let l = LayerNorm::new(gpu, &[4, 5, 5], LayerNormConfig::default().elementwise_affine(false)).unwrap();
                let g = l.grouping(&shape).unwrap();
                ("layer", Layer::Layer(l), g)
            },
            {
                let l = GroupNorm::new(gpu, 2, 4, GroupNormConfig::default().affine(false)).unwrap();
                let g = l.grouping(&shape).unwrap();
                ("group", Layer::Group(l), g)
            },
            {
                let l = InstanceNorm::new(gpu, 4, InstanceNormConfig::default()).unwrap();
                let g = l.grouping(&shape).unwrap();
                ("instance", Layer::Instance(l), g)
            },
        ];
        let dy_data = rng.normals(numel, 0.0, 1.0);
        let dy = arr(&shape, dy_data.clone());
        for (name, mut layer, g) in layers {
            let (y, saved) = layer.forward_saved(gpu, x.view()).unwrap();
            let xs = f64s(&data);
            let st = twin::norm_stats(&xs, &g);
            let want = twin::normalize(&xs, &g, &st.mean, &st.var, 1e-5, None, None);
            for (e, (&got, &w)) in y.iter().zip(&want).enumerate() {
                assert!(
                    (got as f64 - w).abs() <= 4e-6 * (1.0 + w.abs()),
                    "{name} norm of {offset} + N(0, {spread}), element {e}: {got} vs float64 {w}"
                );
            }
            // The backward's x̂ takes the same float32 pair: a rounded mean alone moved
            // dx by ~1e-3 of its scale here.
            let grads = layer.backward(gpu, x.view(), dy.view(), &saved).unwrap();
            let want = twin::backward_train(&xs, &f64s(&dy_data), &g, 1e-5, None).grad_input;
            let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
            for (e, (&got, &w)) in grads.grad_input.iter().zip(&want).enumerate() {
                assert!(
                    (got as f64 - w).abs() <= 1e-5 * scale,
                    "{name} backward of {offset} + N(0, {spread}), element {e}: dx {got} vs float64 {w} (scale {scale})"
                );
            }
        }
    }
}

/// Tiny binding windows: every reduction and elementwise pass crosses many chunks.
#[test]
fn forced_tiny_chunks() {
    let mut gpu = own_gpu();
    gpu.set_verify(Verify::Always);
    let mut rng = Rng::new(31);
    for (chunk, max_wg) in [(64u64, Some(3)), (100, None), (1000, Some(2))] {
        gpu.set_max_chunk_elements(Some(chunk));
        // Few workgroups per dimension: dispatches spread over x and y.
        gpu.set_max_workgroups_per_dim(max_wg);
        // Short runs (cursors) and runs longer than a workgroup (contiguous blocks).
        for sp in [37usize, 8, 300] {
            let (n, c) = (5, 6);
            for cl in [false, true] {
                let shape = if cl { vec![n, sp, c] } else { vec![n, c, sp] };
                let x = arr(&shape, rng.normals(n * c * sp, 3.0, 2.0));
                let dy = arr(&shape, rng.normals(n * c * sp, 0.0, 1.0));
                let mut layers = [
                    Layer::Batch(BatchNorm::new(&gpu, c, BatchNormConfig::default().channels_last(cl)).unwrap()),
                    Layer::Group(GroupNorm::new(&gpu, 3, c, GroupNormConfig::default().channels_last(cl)).unwrap()),
                    Layer::Instance(
                        InstanceNorm::new(&gpu, c, InstanceNormConfig::default().affine(true).channels_last(cl))
                            .unwrap(),
                    ),
                ];
                for l in layers.iter_mut() {
                    let gamma: Vec<f32> = rng.normals(c, 1.0, 0.5);
                    l.set_gamma_beta(&gpu, &gamma, &vec![0.25; c]).unwrap();
                    let (_, saved) = l.forward_saved(&gpu, x.view()).unwrap();
                    l.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
                }
            }
        }
        let (n, c, sp) = (5, 6, 37);
        let mut ln = LayerNorm::new(&gpu, &[c, sp], LayerNormConfig::default()).unwrap();
        let gamma: Vec<f32> = rng.normals(c * sp, 1.0, 0.5);
        ln.set_gamma_beta(&gpu, &gamma, &vec![0.5; c * sp]).unwrap();
        let x = arr(&[n, c, sp], rng.normals(n * c * sp, 3.0, 2.0));
        let dy = arr(&[n, c, sp], rng.normals(n * c * sp, 0.0, 1.0));
        let (_, saved) = ln.forward_saved(&gpu, x.view()).unwrap();
        ln.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
    }
}

#[test]
fn nan_propagates_through_its_segment_only() {
    let gpu = verifying_gpu();
    let mut rng = Rng::new(41);
    // Batch norm: channel 1 gets a NaN.
    let mut bn = BatchNorm::new(&gpu, 3, BatchNormConfig::default()).unwrap();
    let mut data = rng.normals(4 * 3 * 5, 0.0, 1.0);
    data[5 + 2] = f32::NAN; // sample 0, channel 1
    let x = arr(&[4, 3, 5], data);
    let (y, saved) = bn.forward_saved(&gpu, x.view()).unwrap();
    for (i, v) in y.iter().enumerate() {
        assert_eq!(v.is_nan(), (i / 5) % 3 == 1, "element {i}: {v}");
    }
    let rm = bn.running_mean(&gpu).unwrap().unwrap();
    assert!(rm[1].is_nan() && !rm[0].is_nan() && !rm[2].is_nan());
    let dy = arr(&[4, 3, 5], rng.normals(60, 0.0, 1.0));
    let g = bn.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
    let (dg, db) = (g.grad_gamma.unwrap(), g.grad_beta.unwrap());
    assert!(dg[1].is_nan() && !dg[0].is_nan());
    assert!(db.iter().all(|v| v.is_finite()));
    // Eval: dx = γ·dy/sqrt(running_var + eps) does not see x, so it stays finite.
    let mut fresh = BatchNorm::new(&gpu, 3, BatchNormConfig::default()).unwrap();
    fresh.set_training(false);
    let (_, saved) = fresh.forward_saved(&gpu, x.view()).unwrap();
    let g = fresh.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
    assert!(g.grad_input.iter().all(|v| v.is_finite()));
    // Layer norm: one row.
    let ln = LayerNorm::new(&gpu, &[8], LayerNormConfig::default()).unwrap();
    let mut data = rng.normals(3 * 8, 0.0, 1.0);
    data[8 + 3] = f32::NAN;
    let y = ln.forward(&gpu, arr(&[3, 8], data).view()).unwrap();
    for (i, v) in y.iter().enumerate() {
        assert_eq!(v.is_nan(), i / 8 == 1);
    }
    // Infinity: the channel becomes NaN, the running mean inf (PyTorch).
    let mut bn = BatchNorm::new(&gpu, 2, BatchNormConfig::default()).unwrap();
    let x = arr(&[3, 2], vec![1.0, 2.0, f32::INFINITY, 3.0, 4.0, 5.0]);
    let y = bn.forward(&gpu, x.view()).unwrap();
    assert!(y[[0, 0]].is_nan() && y[[0, 1]].is_finite());
    assert_eq!(bn.running_mean(&gpu).unwrap().unwrap()[0], f32::INFINITY);
}

#[test]
fn constant_channels_and_offsets() {
    let gpu = verifying_gpu();
    let mut rng = Rng::new(51);
    // A constant channel normalizes to β (var 0, eps keeps it finite); its dx is
    // γ/sqrt(eps)·(dy − mean dy), large but finite (checked against the twin).
    let mut bn = BatchNorm::new(&gpu, 2, BatchNormConfig::default()).unwrap();
    bn.set_gamma_beta(&gpu, &[2.0, 3.0], &[0.5, -0.5]).unwrap();
    let mut data = rng.normals(10 * 2, 0.0, 1.0);
    for i in 0..10 {
        data[i * 2] = 7.25;
    }
    let x = arr(&[10, 2], data);
    let (y, saved) = bn.forward_saved(&gpu, x.view()).unwrap();
    for i in 0..10 {
        assert_eq!(y[[i, 0]], 0.5);
    }
    let dy = arr(&[10, 2], rng.normals(20, 0.0, 1.0));
    let g = bn.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
    assert!(g.grad_input.iter().all(|v| v.is_finite()));
    // 1e4 + N(0, 1): standardizes correctly (verified), the output has unit spread.
    for (mean, std) in [(1e4, 1.0), (-3e4, 0.5), (1e6, 100.0)] {
        let mut bn = BatchNorm::new(&gpu, 3, BatchNormConfig::default().affine(false)).unwrap();
        let x = arr(&[500, 3], rng.normals(1500, mean, std));
        let (y, saved) = bn.forward_saved(&gpu, x.view()).unwrap();
        let col: Vec<f64> = (0..500).map(|i| y[[i, 1]] as f64).collect();
        let m = col.iter().sum::<f64>() / 500.0;
        let v = col.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / 500.0;
        assert!(m.abs() < 0.05 && (v - 1.0).abs() < 0.05, "offset {mean}: mean {m}, var {v}");
        let dy = arr(&[500, 3], rng.normals(1500, 0.0, 1.0));
        bn.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
        let ln = LayerNorm::new(&gpu, &[3], LayerNormConfig::default()).unwrap();
        let (_, saved) = ln.forward_saved(&gpu, x.view()).unwrap();
        ln.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
    }
}

#[test]
fn errors_are_typed() {
    let gpu = gpu();
    // One value per channel in training.
    let mut bn = BatchNorm::new(gpu, 3, BatchNormConfig::default()).unwrap();
    let e = bn.forward(gpu, arr(&[1, 3], vec![1.0, 2.0, 3.0]).view()).unwrap_err();
    assert!(matches!(e, Error::Shape(ref m) if m.contains("expected more than 1 value per channel")), "{e}");
    assert!(e.to_string().contains("[1, 3]"));
    let e = bn.forward(gpu, arr(&[1, 3, 1, 1], vec![1.0, 2.0, 3.0]).view()).unwrap_err();
    assert!(matches!(e, Error::Shape(_)));
    assert_eq!(bn.num_batches_tracked(), 0);
    // ... but fine in eval.
    bn.set_training(false);
    bn.forward(gpu, arr(&[1, 3], vec![1.0, 2.0, 3.0]).view()).unwrap();
    // Wrong channel count, rank, parameter sizes.
    assert!(matches!(bn.forward(gpu, arr(&[2, 4], vec![0.0; 8]).view()), Err(Error::Shape(_))));
    assert!(matches!(bn.forward(gpu, arr(&[6], vec![0.0; 6]).view()), Err(Error::Shape(_))));
    assert!(matches!(bn.set_gamma_beta(gpu, &[1.0; 2], &[0.0; 3]), Err(Error::Shape(_))));
    assert!(matches!(bn.set_running_stats(gpu, &[1.0; 3], &[0.0; 4]), Err(Error::Shape(_))));
    let mut no_affine =
        BatchNorm::new(gpu, 3, BatchNormConfig::default().affine(false).track_running_stats(false)).unwrap();
    assert!(matches!(no_affine.set_gamma_beta(gpu, &[1.0; 3], &[0.0; 3]), Err(Error::InvalidParameter(_))));
    assert!(matches!(no_affine.set_running_stats(gpu, &[1.0; 3], &[0.0; 3]), Err(Error::InvalidParameter(_))));
    assert!(matches!(BatchNorm::new(gpu, 3, BatchNormConfig::default().eps(-1.0)), Err(Error::InvalidParameter(_))));
    assert!(matches!(
        BatchNorm::new(gpu, 3, BatchNormConfig::default().momentum(Some(1.5))),
        Err(Error::InvalidParameter(_))
    ));
    // Group norm: C % G.
    let e = GroupNorm::new(gpu, 4, 6, GroupNormConfig::default()).unwrap_err();
    assert!(matches!(e, Error::InvalidParameter(ref m) if m.contains("divisible")));
    // Layer norm: trailing dims.
    let ln = LayerNorm::new(gpu, &[4, 5], LayerNormConfig::default()).unwrap();
    assert!(matches!(ln.forward(gpu, arr(&[2, 5, 4], vec![0.0; 40]).view()), Err(Error::Shape(_))));
    assert!(matches!(ln.forward(gpu, arr(&[5], vec![0.0; 5]).view()), Err(Error::Shape(_))));
    // Instance norm: one spatial element in training.
    let mut inn = InstanceNorm::new(gpu, 2, InstanceNormConfig::default()).unwrap();
    let e = inn.forward(gpu, arr(&[3, 2, 1], vec![0.0; 6]).view()).unwrap_err();
    assert!(matches!(e, Error::Shape(ref m) if m.contains("more than 1 spatial element")));
    // Backward with mismatched shapes.
    let mut bn = BatchNorm::new(gpu, 2, BatchNormConfig::default()).unwrap();
    let x = arr(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 7.0]);
    let (_, saved) = bn.forward_saved(gpu, x.view()).unwrap();
    assert!(matches!(bn.backward(gpu, x.view(), arr(&[2, 2], vec![0.0; 4]).view(), &saved), Err(Error::Shape(_))));
}

// ------------------------------------------------------------------ GPU path and devices

/// Forward and backward recorded into one caller-owned encoder, no readback in between.
#[test]
fn gpu_path_records_into_callers_encoder() {
    let gpu = gpu();
    let mut rng = Rng::new(61);
    let (n, c, sp) = (6, 4, 33);
    let data = rng.normals(n * c * sp, 1.0, 2.0);
    let dyv = rng.normals(n * c * sp, 0.0, 1.0);
    let mut bn = BatchNorm::new(gpu, c, BatchNormConfig::default()).unwrap();
    bn.set_gamma_beta(gpu, &[1.0, 2.0, 0.5, -1.0], &[0.0, 1.0, 2.0, 3.0]).unwrap();
    let x = GpuTensor::from_slice(gpu, &data, &[n, c, sp]).unwrap();
    let dy = GpuTensor::from_slice(gpu, &dyv, &[n, c, sp]).unwrap();
    let mut encoder = gpu.encoder();
    let (y, saved) = bn.forward_gpu(gpu, &mut encoder, &x).unwrap();
    // Chain a second layer on the output, on the GPU.
    let ln = LayerNorm::new(gpu, &[sp], LayerNormConfig::default()).unwrap();
    let (z, _) = ln.forward_gpu(gpu, &mut encoder, &y).unwrap();
    let grads = bn.backward_gpu(gpu, &mut encoder, &x, &dy, &saved).unwrap();
    gpu.submit_and_wait(encoder).unwrap();
    let g = Grouping::Channels { n, c, spatial: sp, channels_last: false };
    let xs = f64s(&data);
    let st = twin::norm_stats(&xs, &g);
    let gamma = [1.0, 2.0, 0.5, -1.0];
    let want = twin::normalize(&xs, &g, &st.mean, &st.var, 1e-5, Some(&gamma), Some(&[0.0, 1.0, 2.0, 3.0]));
    assert_close("gpu path y", &y.to_vec(gpu).unwrap(), &want, 1e-4, 1e-4);
    let yz = twin::norm_stats(&want, &Grouping::Rows { rows: n * c, len: sp });
    let wz = twin::normalize(&want, &Grouping::Rows { rows: n * c, len: sp }, &yz.mean, &yz.var, 1e-5, None, None);
    assert_close("gpu path z", &z.to_vec(gpu).unwrap(), &wz, 1e-3, 1e-3);
    let wg = twin::backward_train(&xs, &f64s(&dyv), &g, 1e-5, Some(&gamma));
    let host = grads.to_host(gpu).unwrap();
    assert_close("gpu path dx", host.grad_input.as_slice().unwrap(), &wg.grad_input, 1e-4, 1e-4);
    assert_close("gpu path dgamma", host.grad_gamma.unwrap().as_slice().unwrap(), &wg.grad_gamma, 1e-3, 1e-4);
    let (rm, _) = bn.running_buffers().unwrap();
    assert_eq!(rm.size(), 16);
}

/// SyncBatchNorm: k devices each hold a shard of the batch; their per-channel moments
/// merge into the statistics of the whole batch, and normalizing each shard with them
/// gives exactly what one device computes over all the data.
#[test]
fn shards_on_several_devices_merge() {
    let mut rng = Rng::new(71);
    let (c, sp) = (3, 11);
    let sizes = [5usize, 1, 9, 3];
    let shards: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.normals(n * c * sp, 4.0, 3.0)).collect();
    let all: Vec<f32> = shards.iter().flatten().copied().collect();
    let total: usize = sizes.iter().sum();
    let devices: Vec<Gpu> = sizes.iter().map(|_| verifying_gpu()).collect();
    let parts: Vec<_> = devices
        .iter()
        .zip(&shards)
        .zip(&sizes)
        .map(|((gpu, s), &n)| sync::channel_moments(gpu, arr(&[n, c, sp], s.clone()).view(), false).unwrap())
        .collect();
    let merged = sync::merge_shards(&parts).unwrap();
    // One device over everything.
    let single = verifying_gpu();
    let mut bn_all = BatchNorm::new(&single, c, BatchNormConfig::default()).unwrap();
    let y_all = bn_all.forward(&single, arr(&[total, c, sp], all.clone()).view()).unwrap();
    let g = Grouping::Channels { n: total, c, spatial: sp, channels_last: false };
    let st = twin::norm_stats(&f64s(&all), &g);
    for (ch, m) in merged.iter().enumerate() {
        assert_eq!(m.count as usize, total * sp);
        assert!((m.mean - st.mean[ch]).abs() < 1e-5 * (1.0 + st.mean[ch].abs()));
        assert!((m.var() - st.var[ch]).abs() < 1e-4 * st.var[ch]);
    }
    let mut offset = 0;
    for ((gpu, s), &n) in devices.iter().zip(&shards).zip(&sizes) {
        let mut bn = BatchNorm::new(gpu, c, BatchNormConfig::default()).unwrap();
        let (y, _) = bn.forward_with_moments(gpu, arr(&[n, c, sp], s.clone()).view(), &merged).unwrap();
        let want: Vec<f64> = y_all.as_slice().unwrap()[offset..offset + n * c * sp].iter().map(|&v| v as f64).collect();
        assert_close("shard output vs single device", y.as_slice().unwrap(), &want, 2e-5, 2e-5);
        offset += n * c * sp;
        // Every shard's running stats equal the single device's.
        let rm_all = f64s(&bn_all.running_mean(&single).unwrap().unwrap());
        let rv_all = f64s(&bn_all.running_var(&single).unwrap().unwrap());
        assert_close("shard running_mean", &bn.running_mean(gpu).unwrap().unwrap(), &rm_all, 1e-5, 1e-5);
        assert_close("shard running_var", &bn.running_var(gpu).unwrap().unwrap(), &rv_all, 1e-5, 1e-5);
    }
    assert!(matches!(sync::merge_shards(&[]), Err(Error::InvalidParameter(_))));
    assert!(matches!(sync::merge_shards(&[parts[0].clone(), parts[1][..2].to_vec()]), Err(Error::Shape(_))));
}

/// SyncBatchNorm backward: each shard's gradient sums merge into the whole batch's, and
/// each shard's backward with them gives its slice of the gradient one device computes
/// over all the data, and the whole batch's dγ and dβ.
#[test]
fn shards_backward_matches_one_device() {
    let gpu = gpu();
    let mut rng = Rng::new(73);
    let (c, sp) = (3, 11);
    let sizes = [5usize, 1, 9, 3];
    let total: usize = sizes.iter().sum();
    let xs: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.normals(n * c * sp, 4.0, 3.0)).collect();
    let dys: Vec<Vec<f32>> = sizes.iter().map(|&n| rng.normals(n * c * sp, 0.5, 1.0)).collect();
    let (gamma, beta) = (vec![1.5f32, -0.5, 2.0], vec![0.1f32, 0.2, -0.3]);
    let shard = |i: usize, v: &[Vec<f32>]| arr(&[sizes[i], c, sp], v[i].clone());
    let parts: Vec<_> =
        (0..sizes.len()).map(|i| sync::channel_moments(gpu, shard(i, &xs).view(), false).unwrap()).collect();
    let merged = sync::merge_shards(&parts).unwrap();
    let mut layers = Vec::new();
    let mut grad_parts = Vec::new();
    for i in 0..sizes.len() {
        let mut bn = BatchNorm::new(gpu, c, BatchNormConfig::default()).unwrap();
        bn.set_gamma_beta(gpu, &gamma, &beta).unwrap();
        let (_, saved) = bn.forward_with_moments(gpu, shard(i, &xs).view(), &merged).unwrap();
        grad_parts.push(sync::channel_grad_sums(gpu, shard(i, &xs).view(), shard(i, &dys).view(), &saved).unwrap());
        layers.push((bn, saved));
    }
    let sums = sync::merge_grad_sums(&grad_parts).unwrap();
    assert!(sums.iter().all(|s| s.count as usize == total * sp));
    // The float64 twin over the whole batch.
    let all_x: Vec<f32> = xs.iter().flatten().copied().collect();
    let all_dy: Vec<f32> = dys.iter().flatten().copied().collect();
    let g = Grouping::Channels { n: total, c, spatial: sp, channels_last: false };
    let want = twin::backward_train(&f64s(&all_x), &f64s(&all_dy), &g, 1e-5, Some(&f64s(&gamma)));
    let scale = want.grad_input.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let mut offset = 0;
    for (i, (bn, saved)) in layers.iter().enumerate() {
        let grads = bn.backward_with_sums(gpu, shard(i, &xs).view(), shard(i, &dys).view(), saved, &sums).unwrap();
        let len = sizes[i] * c * sp;
        for (e, (&got, &w)) in grads.grad_input.iter().zip(&want.grad_input[offset..offset + len]).enumerate() {
            assert!((got as f64 - w).abs() <= 1e-5 * scale, "shard {i} dx[{e}]: {got} vs float64 {w}");
        }
        offset += len;
        assert_close("shard dgamma", grads.grad_gamma.unwrap().as_slice().unwrap(), &want.grad_gamma, 1e-4, 1e-4);
        assert_close("shard dbeta", grads.grad_beta.unwrap().as_slice().unwrap(), &want.grad_beta, 1e-4, 1e-4);
    }
    // Sums of another layer width, or counting different values per channel, are refused.
    let (bn, saved) = &layers[0];
    let x0 = shard(0, &xs);
    let dy0 = shard(0, &dys);
    assert!(matches!(bn.backward_with_sums(gpu, x0.view(), dy0.view(), saved, &sums[..2]), Err(Error::Shape(_))));
    let mut uneven = sums.clone();
    uneven[1].count += 1;
    assert!(matches!(
        bn.backward_with_sums(gpu, x0.view(), dy0.view(), saved, &uneven),
        Err(Error::InvalidParameter(_))
    ));
    assert!(matches!(sync::merge_grad_sums(&[]), Err(Error::InvalidParameter(_))));
    assert!(matches!(sync::merge_grad_sums(&[sums.clone(), sums[..1].to_vec()]), Err(Error::Shape(_))));
}

/// `Verify::Always` reports a wrong GPU result with the worst element: here the
/// backward is handed the statistics of another input, which the twin does not use.
#[test]
fn verify_reports_the_worst_element() {
    let gpu = verifying_gpu();
    let mut rng = Rng::new(81);
    let mut bn = BatchNorm::new(&gpu, 2, BatchNormConfig::default()).unwrap();
    let x = arr(&[8, 2], rng.normals(16, 0.0, 1.0));
    let other = arr(&[8, 2], rng.normals(16, 5.0, 3.0));
    let (_, saved_other) = bn.forward_saved(&gpu, other.view()).unwrap();
    let dy = arr(&[8, 2], rng.normals(16, 0.0, 1.0));
    match bn.backward(&gpu, x.view(), dy.view(), &saved_other) {
        Err(Error::VerifyMismatch(m)) => {
            assert!(m.what.contains("batch norm grad_input"), "{m}");
            assert_eq!(m.position.len(), 2);
            assert!(m.error > m.tolerance);
        }
        other => panic!("expected a verify mismatch, got {other:?}"),
    }
}

/// A layer or tensor used with another `Gpu` context than the one that made it: a typed
/// error (wgpu itself would panic: two contexts can number their resources alike).
#[test]
fn another_context_is_a_typed_error() {
    let other = own_gpu();
    let mut bn = BatchNorm::new(&other, 2, BatchNormConfig::default()).unwrap();
    let x = arr(&[3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 7.0]);
    assert!(matches!(bn.forward(gpu(), x.view()), Err(Error::InvalidParameter(_))));
    assert!(matches!(bn.set_gamma_beta(gpu(), &[1.0, 1.0], &[0.0, 0.0]), Err(Error::InvalidParameter(_))));
    // The layer still works with its own context.
    assert!(bn.forward(&other, x.view()).is_ok());
    let t = gpunorm::GpuTensor::from_slice(&other, &[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let g = gpunorm::Grouping::Columns { rows: 2, cols: 2 };
    assert!(matches!(gpunorm::kernels::moments::moments(gpu(), &t, &g), Err(Error::InvalidParameter(_))));
    assert!(matches!(t.to_vec(gpu()), Err(Error::InvalidParameter(_))));
    assert_eq!(t.to_vec(&other).unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
}

/// The GPU paths (interleaved lanes, workgroup trees, many workgroups), forced on this
/// software adapter, every layer forward and backward, verified against the reference.
#[test]
fn gpu_paths_verified_too() {
    let gpu = verifying_gpu();
    gpu.set_software_paths(Some(false));
    let mut rng = Rng::new(47);
    for per in [257usize, 1000] {
        let (n, c) = (3, 4);
        let shape = vec![n, c, per];
        let x = arr(&shape, rng.normals(n * c * per, -2.0, 3.0));
        let dy = arr(&shape, rng.normals(n * c * per, 0.5, 1.0));
        let mut layers = [
            Layer::Batch(BatchNorm::new(&gpu, c, BatchNormConfig::default()).unwrap()),
            Layer::Group(GroupNorm::new(&gpu, 2, c, GroupNormConfig::default()).unwrap()),
            Layer::Instance(InstanceNorm::new(&gpu, c, InstanceNormConfig::default().affine(true)).unwrap()),
        ];
        for l in layers.iter_mut() {
            let (_, saved) = l.forward_saved(&gpu, x.view()).unwrap();
            l.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
        }
        let ln = LayerNorm::new(&gpu, &[c, per], LayerNormConfig::default()).unwrap();
        let (_, saved) = ln.forward_saved(&gpu, x.view()).unwrap();
        ln.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
    }
}

/// Layer norm's backward through its vec4 kernels: rows weighted by γ at each position,
/// dx with γ per element, and dγ/dβ by the column grid (`colsums_grid`: blocks of 256
/// rows, tiles of 4,096 columns, a last thread with two vec4 columns), verified against
/// the twin with random γ and an offset row, through buffers and through texels, on
/// the criterion bench's shape of few long rows too; then a NaN row's reach.
#[test]
fn layer_backward_grid_verified() {
    let mut rng = Rng::new(77);
    for (rows, len) in [(300usize, 4104usize), (3, 1 << 16)] {
        let mut data = rng.normals(rows * len, 0.5, 2.0);
        data[2 * len..3 * len].iter_mut().for_each(|v| *v += 1.0e4);
        let dy = arr(&[rows, len], rng.normals(rows * len, 0.0, 1.0));
        let gamma = rng.normals(len, 1.0, 0.5);
        let beta = rng.normals(len, 0.0, 1.0);
        let mut with_nan = data.clone();
        with_nan[len + 7] = f32::NAN;
        for texels in [false, true] {
            let gpu = verifying_gpu();
            gpu.set_texel_reads_disabled(!texels);
            let mut ln = LayerNorm::new(&gpu, &[len], LayerNormConfig::default()).unwrap();
            ln.set_gamma_beta(&gpu, &gamma, &beta).unwrap();
            for (x, nan) in [(arr(&[rows, len], data.clone()), false), (arr(&[rows, len], with_nan.clone()), true)] {
                let (_, saved) = ln.forward_saved(&gpu, x.view()).unwrap();
                let g = ln.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
                let dg = g.grad_gamma.as_ref().unwrap();
                // A NaN row makes every dγ NaN (and its own dx), leaving dβ finite.
                assert!(dg.iter().all(|v| v.is_nan() == nan), "texels {texels}, NaN row {nan}");
                assert!(g.grad_beta.as_ref().unwrap().iter().all(|v| v.is_finite()));
                let dx = g.grad_input.as_slice().unwrap();
                assert!(dx[len..2 * len].iter().all(|v| v.is_nan() == nan) && dx[..len].iter().all(|v| v.is_finite()));
            }
        }
    }
}

/// Channels-last instance and group norm with many channels: the affine pass reloads its
/// columns' parameters at each sample's first row (and the backward reads four channels
/// a vec4), verified against the twin with random γ through both read paths.
#[test]
fn channels_last_many_channels_verified() {
    let mut rng = Rng::new(78);
    let (n, spatial, c) = (5, 37, 48);
    let x = arr(&[n, spatial, c], rng.normals(n * spatial * c, 1.0, 2.0));
    let dy = arr(&[n, spatial, c], rng.normals(n * spatial * c, 0.0, 1.0));
    let gamma = rng.normals(c, 1.0, 0.5);
    let beta = rng.normals(c, 0.0, 1.0);
    for texels in [false, true] {
        let gpu = verifying_gpu();
        gpu.set_texel_reads_disabled(!texels);
        let mut layers = [
            Layer::Instance(
                InstanceNorm::new(&gpu, c, InstanceNormConfig::default().affine(true).channels_last(true)).unwrap(),
            ),
            Layer::Group(GroupNorm::new(&gpu, 4, c, GroupNormConfig::default().channels_last(true)).unwrap()),
            Layer::Batch(BatchNorm::new(&gpu, c, BatchNormConfig::default().channels_last(true)).unwrap()),
        ];
        for l in layers.iter_mut() {
            l.set_gamma_beta(&gpu, &gamma, &beta).unwrap();
            let (y, saved) = l.forward_saved(&gpu, x.view()).unwrap();
            assert!(y.iter().all(|v| v.is_finite()));
            l.backward(&gpu, x.view(), dy.view(), &saved).unwrap();
        }
    }
}
