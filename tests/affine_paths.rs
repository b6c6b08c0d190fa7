//! The elementwise (affine) kernel's specialised paths — runs, rows and columns grids,
//! fixed, uniform, mod, div and general index maps, vec4 body and scalar tail, forward,
//! inverse, clip, log1p, expm1 — against the float64 twin, on every layout, across chunk
//! boundaries that do not fall on run or vec4-period boundaries.

mod common;

use common::{gpu, own_gpu, sprinkle_nan, Rng};
use gpunorm::kernels::affine::{record_affine, AffineArgs, AffineMode};
use gpunorm::verify::{affine_tolerance, expm1_tolerance, inverse_affine_tolerance, log1p_tolerance, Tolerance};
use gpunorm::{reference, Gpu, GpuTensor, Grouping};

fn groupings() -> Vec<Grouping> {
    let mut v = vec![
        Grouping::Columns { rows: 1001, cols: 16 }, // fixed
        Grouping::Columns { rows: 333, cols: 7 },   // mod
        Grouping::Columns { rows: 333, cols: 3 },   // general
        Grouping::Columns { rows: 257, cols: 10 },  // mod, tail
        Grouping::Columns { rows: 37, cols: 40 },   // columns grid: 3 threads, 2 vec4s in the last
        Grouping::Columns { rows: 29, cols: 1000 }, // columns grid: 4 vec4s a thread, 2 in the last
        Grouping::Columns { rows: 5, cols: 4100 },  // columns grid wider than 4 vec4s a thread
        Grouping::Columns { rows: 23, cols: 13 },   // columns grid, a grid row of 4 matrix rows, a partial one
        Grouping::Columns { rows: 37, cols: 10 },   // columns grid, a grid row of 4 rows (40 elements)
        Grouping::Columns { rows: 9, cols: 1001 },  // columns grid, 4 rows a grid row, wider than 4·WG vec4s
        Grouping::Rows { rows: 5, len: 1000 },      // uniform + mod γ/β (rows: 4 vec4s a thread, 2 in the last)
        Grouping::Rows { rows: 4, len: 1024 },      // rows: 4 vec4s in every thread
        Grouping::Rows { rows: 3, len: 4104 },      // rows wider than 4 vec4s a thread: a vec4 each
        Grouping::Rows { rows: 3, len: 1025 },      // div + mod γ/β, tail
        Grouping::Rows { rows: 3, len: 4096 },      // runs without γ/β
    ];
    for cl in [false, true] {
        v.push(Grouping::Channels { n: 3, c: 5, spatial: 1024, channels_last: cl }); // runs / mod
        v.push(Grouping::Channels { n: 3, c: 16, spatial: 49, channels_last: cl }); // div / fixed
        v.push(Grouping::Channels { n: 5, c: 3, spatial: 8, channels_last: cl }); // uniform / general
        v.push(Grouping::Groups { n: 2, c: 6, spatial: 1024, groups: 3, channels_last: cl });
        v.push(Grouping::Groups { n: 2, c: 8, spatial: 9, groups: 2, channels_last: cl });
        v.push(Grouping::Instances { n: 2, c: 3, spatial: 2048, channels_last: cl });
        v.push(Grouping::Instances { n: 3, c: 12, spatial: 10, channels_last: cl });
    }
    // Channels-last layers with many channels: the columns grid with γ/β, one set of
    // column parameters (batch norm) or one per sample (instance norm: sample·C + q;
    // group norm: sample·G + q / (C/G)).
    v.push(Grouping::Channels { n: 3, c: 104, spatial: 7, channels_last: true });
    v.push(Grouping::Instances { n: 3, c: 40, spatial: 7, channels_last: true });
    v.push(Grouping::Groups { n: 4, c: 48, spatial: 5, groups: 4, channels_last: true });
    v
}

fn upload(gpu: &Gpu, v: &[f64]) -> GpuTensor {
    let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    GpuTensor::from_slice(gpu, &f, &[f.len()]).unwrap()
}

/// Rounded to f32 and back: the parameters the GPU sees.
fn f32s(v: &[f64]) -> Vec<f64> {
    v.iter().map(|&x| x as f32 as f64).collect()
}

#[allow(clippy::too_many_arguments)]
fn check(
    gpu: &Gpu,
    g: &Grouping,
    data: &[f32],
    mode: AffineMode,
    gb: bool,
    clip: Option<(f32, f32)>,
    rng: &mut Rng,
    what: &str,
) {
    let segs = g.num_segments();
    let params = g.num_params();
    let center = f32s(&(0..segs).map(|_| rng.normal() * 3.0).collect::<Vec<_>>());
    // The center's low part: below float32's resolution of the center, as derive writes.
    let center_lo = f32s(&center.iter().map(|c| c * 1e-8 * rng.normal()).collect::<Vec<_>>());
    let center_full: Vec<f64> = center.iter().zip(&center_lo).map(|(c, l)| c + l).collect();
    let inv = f32s(&(0..segs).map(|_| 0.2 + rng.uniform() * 2.0).collect::<Vec<_>>());
    let gamma = f32s(&(0..params).map(|_| 0.5 + rng.uniform()).collect::<Vec<_>>());
    let beta = f32s(&(0..params).map(|_| rng.normal()).collect::<Vec<_>>());
    let (c_buf, i_buf, g_buf, b_buf) =
        (upload(gpu, &center), upload(gpu, &inv), upload(gpu, &gamma), upload(gpu, &beta));
    let lo_buf = upload(gpu, &center_lo);
    let x = GpuTensor::from_slice(gpu, data, &[data.len()]).unwrap();
    let y = GpuTensor::empty(gpu, &[data.len()]).unwrap();
    let args = AffineArgs {
        mode,
        center: Some(c_buf.buffer()),
        center_lo: Some(lo_buf.buffer()),
        inv_scale: Some(i_buf.buffer()),
        gamma_beta: gb.then(|| (g_buf.buffer(), b_buf.buffer())),
        clip,
    };
    let mut enc = gpu.encoder();
    record_affine(gpu, &mut enc, &x, &y, g, &args).unwrap();
    gpu.submit_and_wait(enc).unwrap();
    let got = y.to_vec(gpu).unwrap();
    let spec = reference::AffineSpec {
        mode,
        center: &center_full,
        inv_scale: &inv,
        gamma_beta: gb.then_some((gamma.as_slice(), beta.as_slice())),
        clip: clip.map(|(a, b)| (a as f64, b as f64)),
    };
    let want = reference::affine(data, g, &spec);
    let (seg_map, param_map) = (g.segment_map(), g.param_map());
    for (e, (&a, &b)) in got.iter().zip(&want).enumerate() {
        let ctx =
            || format!("{what}: {g:?} {mode:?} gb={gb} clip={clip:?} element {e}: x {} gpu {a} reference {b}", data[e]);
        if b.is_nan() {
            assert!(a.is_nan(), "{}", ctx());
            continue;
        }
        let (s, p) = (seg_map.apply(e), param_map.apply(e));
        let (gg, bb) = if gb { (gamma[p], beta[p]) } else { (1.0, 0.0) };
        let tol: Tolerance = match mode {
            AffineMode::Forward => affine_tolerance(data[e] as f64, center_full[s], inv[s], gg, bb),
            AffineMode::Inverse => inverse_affine_tolerance(data[e] as f64, center_full[s], inv[s], gg, bb),
            AffineMode::Log1p => log1p_tolerance(),
            AffineMode::Expm1 => expm1_tolerance(data[e] as f64),
        };
        assert!(tol.accepts(a as f64, b), "{}", ctx());
    }
}

fn every_mode(gpu: &Gpu, what: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    for g in groupings() {
        let mut data = rng.normals(g.numel(), 0.5, 2.0);
        sprinkle_nan(&mut data, 0.05, &mut rng);
        check(gpu, &g, &data, AffineMode::Forward, false, None, &mut rng, what);
        check(gpu, &g, &data, AffineMode::Forward, true, None, &mut rng, what);
        check(gpu, &g, &data, AffineMode::Forward, true, Some((-1.0, 1.5)), &mut rng, what);
        check(gpu, &g, &data, AffineMode::Inverse, false, None, &mut rng, what);
        check(gpu, &g, &data, AffineMode::Inverse, true, None, &mut rng, what);
        let small: Vec<f32> = data.iter().map(|v| (v * 0.3).max(-0.9)).collect();
        check(gpu, &g, &small, AffineMode::Log1p, false, None, &mut rng, what);
        check(gpu, &g, &small, AffineMode::Expm1, false, None, &mut rng, what);
    }
}

#[test]
fn every_path_matches_the_twin() {
    every_mode(gpu(), "one window", 1);
}

#[test]
fn windows_that_cut_runs_and_vec4_periods() {
    // Window starts at multiples of 1000 (and 4104) elements: not multiples of any run
    // length or of the 1024-element thread period.
    for chunk in [1000, 4104] {
        let gpu = own_gpu();
        gpu.set_max_chunk_elements(Some(chunk));
        every_mode(&gpu, &format!("windows of {chunk}"), 2);
    }
}

/// The GPU paths (whole workgroups striding together, many workgroups), forced on this
/// software adapter: what a hardware GPU runs.
#[test]
fn gpu_paths_match_the_twin() {
    let gpu = own_gpu();
    gpu.set_software_paths(Some(false));
    every_mode(&gpu, "gpu paths", 3);
}

/// The software walk through the other source of its input than this machine's default
/// (staged texels or the storage buffer, see `gpu/texels.rs`), so that both are
/// checked wherever the suite runs.
#[test]
fn other_read_path_matches_the_twin() {
    let gpu = own_gpu();
    gpu.set_texel_reads_disabled(gpu.reads_through_texels());
    every_mode(&gpu, "other read path", 4);
}
