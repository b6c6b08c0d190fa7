//! The benchmark behind `gpunorm bench` (and `benches/kernels.rs`): every operation
//! timed on data already on the GPU, reported as a fraction of a plain compute copy
//! kernel's bandwidth measured in the same run (DESIGN.md §7).
//!
//! For each size and operation: the median device time over several runs (each run
//! records the operation into a fresh encoder, submits it and waits; nothing is
//! uploaded or read back inside the timed region), the bytes the operation must
//! move, the effective bandwidth, `ratio_to_copy = gbps / copy_gbps` with the copy
//! kernel ([`crate::kernels::copy`], 8 B per element) timed at the same size, its runs
//! alternating with the operation's (`copy_gbps` per operation; the top-level
//! `copy_gbps` is the copy kernel's own row at the largest size), the
//! time of the float64 CPU reference twin ([`crate::reference`], run once) and, for
//! the statistics and scalers, the time of a multi-threaded float32 plain-Rust
//! baseline ([`baseline`]).
//!
//! Bytes per element (DESIGN.md §7): fit 4 (one read), transform 8 (read + write),
//! fused fit + transform and batch-norm train forward 12, batch-norm backward 20.
//! Quantile and robust ops are counted as 4 B per element for each pass over the
//! data (`passes`: the moments pass that counts the values, one per radix digit,
//! and 2 for the transform's read and write).
//!
//! Device time comes from timestamp queries written before and after the recorded
//! work when the device has `TIMESTAMP_QUERY` (and they agree with the wall clock),
//! else from the wall clock around submit + wait.
//!
//! ```no_run
//! let gpu = gpunorm::Gpu::new()?;
//! let report = gpunorm::bench::run(&gpu, &gpunorm::bench::BenchOptions::quick(), &mut |_| {})?;
//! println!("copy: {:.2} GB/s", report.copy_gbps);
//! # Ok::<(), gpunorm::Error>(())
//! ```

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::gpu::{read_values, Gpu, GpuTensor};
use crate::kernels::copy::{record_copy, record_copy_with, CopyWidth};
use crate::kernels::derive::{record_derive, DeriveRule};
use crate::kernels::moments::{moments, record_moments};
use crate::kernels::select::{input_passes, record_quantiles, record_quantiles_counted};
use crate::norm::{
    BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig, InstanceNorm, InstanceNormConfig, LayerNorm,
    LayerNormConfig, SavedStats,
};
use crate::reference;
use crate::scale::{
    FitState, FittedScaler, InputDtype, LogScaler, MaxAbsScaler, MinMaxScaler, RobustScaler, Scaler, StandardScaler,
};
use crate::segments::Grouping;

/// Every operation of the benchmark, in report order. The names are stable (scripts
/// read them; see the CLI contract). `copy` is the roofline itself.
pub const OPS: [&str; 17] = [
    "copy",
    "stats",
    "quantiles3",
    "standard_fit",
    "standard_transform",
    "standard_fit_transform",
    "minmax_fit_transform",
    "maxabs_fit_transform",
    "robust_fit",
    "robust_fit_transform",
    "log_transform",
    "batch_train_forward",
    "batch_eval_forward",
    "batch_backward",
    "layer_forward",
    "group_forward",
    "instance_forward",
];

/// Element counts of `--quick`.
pub const QUICK_SIZES: [usize; 2] = [1_000_000, 10_000_000];
/// Element counts of a full run.
pub const FULL_SIZES: [usize; 3] = [1_000_000, 10_000_000, 30_000_000];

/// The quantiles of `quantiles3` and the robust scaler's (25, 50, 75).
const QS: [f64; 3] = [0.25, 0.5, 0.75];
/// Features of the scalers' `(n / FEATURES, FEATURES)` matrix.
const FEATURES: usize = 16;
/// Norm layers: `(N, C, H, W)` with C = 40 and H·W = 50·50; N = n / 100 000.
const CHANNELS: usize = 40;
const HW: (usize, usize) = (50, 50);
const GROUPS: usize = 8;
/// Layer norm: `(n / ROW, ROW)` normalized over the last dim.
const ROW: usize = 1000;

/// What to run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchOptions {
    /// Element counts; each is rounded down to the shapes' multiples.
    pub sizes: Vec<usize>,
    /// Timed runs per operation and size (after one untimed warm-up run).
    pub runs: usize,
    /// Run the float64 reference twin only at sizes up to this (`None`: always).
    pub cpu_reference_max: Option<usize>,
    /// Time the multi-threaded float32 CPU baseline of the statistics and scalers.
    pub cpu_baseline: bool,
    /// Only these operations (names of [`OPS`]); `None`: all. `copy` always runs.
    pub ops: Option<Vec<String>>,
}

impl BenchOptions {
    /// `gpunorm bench --quick`: 1e6 and 1e7 elements, 11 runs, the reference twin at
    /// both (about 20 s in all on a 2-core software adapter).
    pub fn quick() -> Self {
        BenchOptions { sizes: QUICK_SIZES.to_vec(), runs: 11, cpu_reference_max: None, cpu_baseline: true, ops: None }
    }

    /// `gpunorm bench`: 1e6, 1e7 and 3e7 elements, 9 runs, the reference everywhere.
    pub fn full() -> Self {
        BenchOptions { sizes: FULL_SIZES.to_vec(), runs: 9, cpu_reference_max: None, cpu_baseline: true, ops: None }
    }

    fn wants(&self, op: &str) -> bool {
        op == "copy" || self.ops.as_ref().is_none_or(|v| v.iter().any(|o| o == op))
    }
}

/// The adapter the benchmark ran on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub driver: String,
}

/// One operation at one size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpResult {
    pub op: String,
    pub shape: Vec<usize>,
    /// Bytes the operation must read and write (DESIGN.md §7).
    pub bytes: u64,
    /// Median device time of the runs, seconds.
    pub median_s: f64,
    /// `bytes / median_s / 1e9`.
    pub gbps: f64,
    /// `gbps / copy_gbps` (the report's: the copy kernel at the largest size).
    pub ratio_to_copy: f64,
    /// The float64 reference twin, once; `None` when skipped (size above the limit, or
    /// no twin: `copy`).
    pub cpu_reference_s: Option<f64>,
    /// Passes over the data (quantile and robust ops; `bytes = 4 · numel · passes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passes: Option<u32>,
    /// The multi-threaded float32 plain-Rust baseline (statistics and scalers), median.
    pub cpu_baseline_s: Option<f64>,
    /// Timed runs.
    pub runs: usize,
    /// Where the time came from: `"timestamp"` (GPU timestamp queries) or `"wall"`.
    pub timer: &'static str,
}

/// The whole benchmark: what `gpunorm bench --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    pub adapter: AdapterReport,
    /// The copy kernel's bandwidth at the largest size (its `copy` row).
    pub copy_gbps: f64,
    pub ops: Vec<OpResult>,
    /// On a software adapter, the copy kernel with its source read as every kernel
    /// reads its input there (through a staging texture, `gpu/texels.rs`), at the
    /// largest size: the figure to hold ratios above 1 against. Not in the JSON (its
    /// shape is the CLI contract's).
    #[serde(skip)]
    pub copy_texels_gbps: Option<f64>,
}

/// One timed run.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Between the timestamps around the recorded work, if the device has them.
    pub device: Option<Duration>,
    /// Around submit + wait.
    pub wall: Duration,
}

impl Sample {
    /// The device time when the timestamps look sane (positive, not above the wall
    /// clock), else the wall clock.
    pub fn best(&self) -> (Duration, &'static str) {
        match self.device {
            Some(d) if !d.is_zero() && d <= self.wall + Duration::from_micros(50) => (d, "timestamp"),
            _ => (self.wall, "wall"),
        }
    }
}

/// Times recorded GPU work: timestamps around it when the device has them.
pub struct GpuTimer {
    query: Option<(wgpu::QuerySet, wgpu::Buffer)>,
    period_ns: f64,
}

impl GpuTimer {
    pub fn new(gpu: &Gpu) -> Self {
        let query = gpu.features().contains(wgpu::Features::TIMESTAMP_QUERY).then(|| {
            let set = gpu.device().create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("gpunorm bench timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = gpu.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("gpunorm bench timestamps"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (set, resolve)
        });
        GpuTimer { query, period_ns: gpu.queue().get_timestamp_period() as f64 }
    }

    fn stamp(encoder: &mut wgpu::CommandEncoder, set: &wgpu::QuerySet, index: u32) {
        let writes = wgpu::ComputePassTimestampWrites {
            query_set: set,
            beginning_of_pass_write_index: (index == 0).then_some(0),
            end_of_pass_write_index: (index == 1).then_some(1),
        };
        let pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("gpunorm bench timestamp"),
            timestamp_writes: Some(writes),
        });
        drop(pass);
    }

    /// Record with `record` into a fresh encoder (not timed), then submit, wait and
    /// time that.
    pub fn time(&self, gpu: &Gpu, record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>) -> Result<Sample> {
        let mut encoder = gpu.encoder();
        if let Some((set, _)) = &self.query {
            Self::stamp(&mut encoder, set, 0);
        }
        record(&mut encoder)?;
        if let Some((set, resolve)) = &self.query {
            Self::stamp(&mut encoder, set, 1);
            encoder.resolve_query_set(set, 0..2, resolve, 0);
        }
        let t0 = Instant::now();
        gpu.submit_and_wait(encoder)?;
        let wall = t0.elapsed();
        let device = match &self.query {
            Some((_, resolve)) => {
                let t: Vec<u64> = read_values(gpu, resolve, 0, 16)?;
                let ticks = t[1].checked_sub(t[0]);
                ticks.map(|d| Duration::from_nanos((d as f64 * self.period_ns) as u64))
            }
            None => None,
        };
        Ok(Sample { device, wall })
    }

    /// One untimed warm-up run, then the median of `runs` timed runs (at most 3 when
    /// the warm-up took more than a second), and the timer used.
    pub fn median(
        &self,
        gpu: &Gpu,
        runs: usize,
        record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<(Duration, &'static str, usize)> {
        let warm = self.time(gpu, record)?;
        let runs = if warm.wall > Duration::from_secs(1) { runs.clamp(1, 3) } else { runs.max(1) };
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            samples.push(self.time(gpu, record)?.best());
        }
        let timer = if samples.iter().all(|s| s.1 == "timestamp") { "timestamp" } else { "wall" };
        let mut d: Vec<Duration> = samples.iter().map(|s| s.0).collect();
        d.sort();
        Ok((median(&d), timer, runs))
    }

    /// Like [`GpuTimer::median`] for an operation and the copy kernel, their runs
    /// alternating (`record(encoder, true)` records the operation, `false` the copy), so
    /// that both see the same load on a shared machine. Returns the operation's median
    /// and the copy's times.
    pub fn median_with_copy(
        &self,
        gpu: &Gpu,
        runs: usize,
        record: &mut dyn FnMut(&mut wgpu::CommandEncoder, bool) -> Result<()>,
    ) -> Result<(Duration, Vec<Duration>, &'static str, usize)> {
        let warm = self.time(gpu, &mut |e| record(e, true))?;
        self.time(gpu, &mut |e| record(e, false))?;
        let runs = if warm.wall > Duration::from_secs(1) { runs.clamp(1, 3) } else { runs.max(1) };
        let (mut op, mut copy, mut kinds) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let a = self.time(gpu, &mut |e| record(e, true))?.best();
            let b = self.time(gpu, &mut |e| record(e, false))?.best();
            op.push(a.0);
            copy.push(b.0);
            kinds.extend([a.1, b.1]);
        }
        let timer = if kinds.iter().all(|&k| k == "timestamp") { "timestamp" } else { "wall" };
        op.sort();
        Ok((median(&op), copy, timer, runs))
    }
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

/// Deterministic test data: about 5 + 2·N(0, 1) (a sum of four uniforms), no NaN.
pub fn test_data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64*
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|_| {
            let u = next() + next() + next() + next() - 2.0;
            5.0 + 2.0 * 3f32.sqrt() * u
        })
        .collect()
}

/// The data and layers of one size.
struct Work<'a> {
    gpu: &'a Gpu,
    n: usize,
    rows: usize,
    x: GpuTensor,
    out: GpuTensor,
    dy: GpuTensor,
    data: Vec<f32>,
    dy_data: Vec<f32>,
    norm_shape: Vec<usize>,
    layer_shape: Vec<usize>,
    fitted_standard: FittedScaler,
    bn_train: BatchNorm,
    bn_eval: BatchNorm,
    saved: SavedStats,
    ln: LayerNorm,
    gn: GroupNorm,
    inorm: InstanceNorm,
}

impl<'a> Work<'a> {
    fn new(gpu: &'a Gpu, n: usize) -> Result<Self> {
        let per_sample = CHANNELS * HW.0 * HW.1;
        let n = (n / per_sample).max(2) * per_sample;
        let rows = n / FEATURES;
        let data = test_data(n, 1);
        let dy_data = test_data(n, 2);
        let x = GpuTensor::from_slice(gpu, &data, &[rows, FEATURES])?;
        let dy = GpuTensor::from_slice(gpu, &dy_data, &[n / per_sample, CHANNELS, HW.0, HW.1])?;
        let out = GpuTensor::empty(gpu, &[rows, FEATURES])?;
        let norm_shape = vec![n / per_sample, CHANNELS, HW.0, HW.1];
        let layer_shape = vec![n / ROW, ROW];
        let m = moments(gpu, &x, &Grouping::Columns { rows, cols: FEATURES })?;
        let fitted_standard = FittedScaler {
            scaler: StandardScaler::new().into(),
            n_features: Some(FEATURES),
            state: FitState::Moments(m),
            input_dtype: InputDtype::Float32,
        };
        let mut bn_train = BatchNorm::new(gpu, CHANNELS, BatchNormConfig::default())?;
        let mut bn_eval = BatchNorm::new(gpu, CHANNELS, BatchNormConfig::default())?;
        bn_eval.set_training(false);
        let xn = x.reshaped(&norm_shape)?;
        let mut enc = gpu.encoder();
        let (_, saved) = bn_train.forward_gpu(gpu, &mut enc, &xn)?;
        gpu.submit_and_wait(enc)?;
        Ok(Work {
            gpu,
            n,
            rows,
            x,
            out,
            dy,
            data,
            dy_data,
            norm_shape,
            layer_shape,
            fitted_standard,
            bn_train,
            bn_eval,
            saved,
            ln: LayerNorm::new(gpu, &[ROW], LayerNormConfig::default())?,
            gn: GroupNorm::new(gpu, GROUPS, CHANNELS, GroupNormConfig::default())?,
            inorm: InstanceNorm::new(gpu, CHANNELS, InstanceNormConfig::default())?,
        })
    }

    fn columns(&self) -> Grouping {
        Grouping::Columns { rows: self.rows, cols: FEATURES }
    }

    fn shape(&self, op: &str) -> Vec<usize> {
        match op {
            "layer_forward" => self.layer_shape.clone(),
            o if o.starts_with("batch_") || o.starts_with("group_") || o.starts_with("instance_") => {
                self.norm_shape.clone()
            }
            _ => vec![self.rows, FEATURES],
        }
    }

    /// (bytes per element, passes) of an operation.
    fn traffic(&self, op: &str) -> (u64, Option<u32>) {
        let qp = input_passes(self.gpu, &self.columns(), &QS) as u64;
        match op {
            "copy" | "standard_transform" | "log_transform" | "batch_eval_forward" => (8, None),
            "stats" | "standard_fit" => (4, None),
            "quantiles3" | "robust_fit" => (4 * qp, Some(qp as u32)),
            // The fit's passes, then the transform's read and write.
            "robust_fit_transform" => (4 * (qp + 2), Some(qp as u32 + 2)),
            "batch_backward" => (20, None),
            _ => (12, None),
        }
    }

    /// Record one run of `op` into `enc`.
    fn record(&mut self, op: &str, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        let gpu = self.gpu;
        let g = self.columns();
        let cols = FEATURES;
        let fit_transform =
            |s: Scaler, enc: &mut wgpu::CommandEncoder| s.fit_transform_gpu(gpu, enc, &self.x).map(drop);
        match op {
            "copy" => record_copy(gpu, enc, &self.x, &self.out),
            "stats" => record_moments(gpu, enc, &self.x, &g).map(drop),
            // The quantile fit needs no mean or variance: its counts come from its own
            // counting pass.
            "quantiles3" => record_quantiles(gpu, enc, &self.x, &g, None, &QS).map(drop),
            "standard_fit" => {
                let m = record_moments(gpu, enc, &self.x, &g)?;
                let rule = DeriveRule::Standard { with_mean: true, with_std: true };
                record_derive(gpu, enc, &m, cols, rule, None, None).map(drop)
            }
            "standard_transform" => self.fitted_standard.transform_gpu(gpu, enc, &self.x, false).map(drop),
            "standard_fit_transform" => fit_transform(StandardScaler::new().into(), enc),
            "minmax_fit_transform" => fit_transform(MinMaxScaler::new().into(), enc),
            "maxabs_fit_transform" => fit_transform(MaxAbsScaler::default().into(), enc),
            "robust_fit" => {
                let (q, counts) = record_quantiles_counted(gpu, enc, &self.x, &g, &QS)?;
                let rule = DeriveRule::Robust { with_centering: true, with_scaling: true, unit: 1.0 };
                record_derive(gpu, enc, &counts, cols, rule, Some(&q), None).map(drop)
            }
            "robust_fit_transform" => fit_transform(RobustScaler::new().into(), enc),
            "log_transform" => {
                let f = FittedScaler {
                    scaler: LogScaler::default().into(),
                    n_features: None,
                    state: FitState::Stateless,
                    input_dtype: InputDtype::Float32,
                };
                f.transform_gpu(gpu, enc, &self.x, false).map(drop)
            }
            "batch_train_forward" => {
                let x = self.x.reshaped(&self.norm_shape)?;
                self.bn_train.forward_gpu(gpu, enc, &x).map(drop)
            }
            "batch_eval_forward" => {
                let x = self.x.reshaped(&self.norm_shape)?;
                self.bn_eval.forward_gpu(gpu, enc, &x).map(drop)
            }
            "batch_backward" => {
                let x = self.x.reshaped(&self.norm_shape)?;
                self.bn_train.backward_gpu(gpu, enc, &x, &self.dy, &self.saved).map(drop)
            }
            "layer_forward" => {
                let x = self.x.reshaped(&self.layer_shape)?;
                self.ln.forward_gpu(gpu, enc, &x).map(drop)
            }
            "group_forward" => {
                let x = self.x.reshaped(&self.norm_shape)?;
                self.gn.forward_gpu(gpu, enc, &x).map(drop)
            }
            "instance_forward" => {
                let x = self.x.reshaped(&self.norm_shape)?;
                self.inorm.forward_gpu(gpu, enc, &x).map(drop)
            }
            other => Err(Error::InvalidParameter(format!("unknown benchmark operation '{other}'"))),
        }
    }

    /// Run the float64 reference twin of `op` once; its time, or `None` if there is none.
    fn cpu_reference(&self, op: &str) -> Option<Duration> {
        use crate::kernels::affine::AffineMode;
        use crate::reference::norms;
        let g = self.columns();
        let data = &self.data;
        let affine = |center: &[f64], inv: &[f64], gb: Option<(&[f64], &[f64])>, mode| {
            let spec = reference::AffineSpec { mode, center, inv_scale: inv, gamma_beta: gb, clip: None };
            std::hint::black_box(reference::affine(data, &g, &spec));
        };
        let derive = |rule, m: &[crate::Moments], q: Option<&[Vec<f64>]>| reference::derive::derive(rule, m, q, None);
        let standard = DeriveRule::Standard { with_mean: true, with_std: true };
        let robust = DeriveRule::Robust { with_centering: true, with_scaling: true, unit: 1.0 };
        let norm_grouping = |op: &str| {
            let (n, c, spatial) = (self.norm_shape[0], CHANNELS, HW.0 * HW.1);
            match op {
                "group_forward" => Grouping::Groups { n, c, spatial, groups: GROUPS, channels_last: false },
                "instance_forward" => Grouping::Instances { n, c, spatial, channels_last: false },
                "layer_forward" => Grouping::Rows { rows: self.layer_shape[0], len: ROW },
                _ => Grouping::Channels { n, c, spatial, channels_last: false },
            }
        };
        // Widening for the norm twins (they take f64) is not part of their time.
        let wide: Vec<f64> = if op.contains("forward") || op.contains("backward") {
            data.iter().map(|&v| v as f64).collect()
        } else {
            Vec::new()
        };
        let wide_dy: Vec<f64> =
            if op == "batch_backward" { self.dy_data.iter().map(|&v| v as f64).collect() } else { Vec::new() };
        let t0 = Instant::now();
        match op {
            "copy" => return None,
            "stats" => {
                std::hint::black_box(reference::moments(data, &g));
            }
            "quantiles3" => {
                std::hint::black_box(reference::quantiles(data, &g, &QS));
            }
            "standard_fit" => {
                std::hint::black_box(derive(standard, &reference::moments(data, &g), None));
            }
            "standard_transform" => {
                let FitState::Moments(m) = &self.fitted_standard.state else { return None };
                let (c, i) = derive(standard, m, None);
                let t0 = Instant::now();
                affine(&c, &i, None, AffineMode::Forward);
                return Some(t0.elapsed());
            }
            "standard_fit_transform" | "minmax_fit_transform" | "maxabs_fit_transform" => {
                let rule = match op {
                    "standard_fit_transform" => standard,
                    "minmax_fit_transform" => DeriveRule::MinMax { tiny: InputDtype::Float32.zero_scale_threshold() },
                    _ => DeriveRule::MaxAbs { tiny: InputDtype::Float32.zero_scale_threshold() },
                };
                let (c, i) = derive(rule, &reference::moments(data, &g), None);
                let (ones, zeros) = (vec![1.0; FEATURES], vec![0.0; FEATURES]);
                let gb = (op == "minmax_fit_transform").then_some((ones.as_slice(), zeros.as_slice()));
                affine(&c, &i, gb, AffineMode::Forward);
            }
            "robust_fit" | "robust_fit_transform" => {
                let q = reference::quantiles(data, &g, &QS);
                let (c, i) = derive(robust, &vec![crate::Moments::EMPTY; FEATURES], Some(&q));
                if op == "robust_fit_transform" {
                    affine(&c, &i, None, AffineMode::Forward);
                }
            }
            "log_transform" => affine(&[], &[], None, AffineMode::Log1p),
            "batch_train_forward" | "layer_forward" | "group_forward" | "instance_forward" => {
                let ng = norm_grouping(op);
                let st = norms::norm_stats(&wide, &ng);
                std::hint::black_box(norms::normalize(&wide, &ng, &st.mean, &st.var, 1e-5, None, None));
            }
            "batch_eval_forward" => {
                let ng = norm_grouping(op);
                let (m, v) = (vec![0.0; CHANNELS], vec![1.0; CHANNELS]);
                std::hint::black_box(norms::normalize(&wide, &ng, &m, &v, 1e-5, None, None));
            }
            "batch_backward" => {
                let ng = norm_grouping(op);
                let gamma = vec![1.0; CHANNELS];
                std::hint::black_box(norms::backward_train(&wide, &wide_dy, &ng, 1e-5, Some(&gamma)));
            }
            _ => return None,
        }
        Some(t0.elapsed())
    }

    /// The multi-threaded float32 baseline of `op` (statistics and scalers), median of `runs`.
    fn cpu_baseline(&self, op: &str, runs: usize) -> Option<Duration> {
        let (rows, cols) = (self.rows, FEATURES);
        let data = &self.data;
        let mut out = vec![0.0f32; data.len()];
        let mut once = || -> Option<()> {
            match op {
                "stats" | "standard_fit" => {
                    std::hint::black_box(baseline::column_moments(data, rows, cols));
                }
                "standard_transform" => baseline::transform(data, cols, &vec![5.0; cols], &vec![0.5; cols], &mut out),
                "standard_fit_transform" => {
                    let m = baseline::column_moments(data, rows, cols);
                    let c: Vec<f32> = m.iter().map(|s| s.mean as f32).collect();
                    let i: Vec<f32> = m.iter().map(|s| baseline::inverse((s.m2 / s.count as f64).sqrt())).collect();
                    baseline::transform(data, cols, &c, &i, &mut out);
                }
                "minmax_fit_transform" | "maxabs_fit_transform" => {
                    let mm = baseline::column_min_max(data, rows, cols);
                    let (c, i): (Vec<f32>, Vec<f32>) = mm
                        .iter()
                        .map(|&(lo, hi)| {
                            if op == "minmax_fit_transform" {
                                (lo, baseline::inverse((hi - lo) as f64))
                            } else {
                                (0.0, baseline::inverse(lo.abs().max(hi.abs()) as f64))
                            }
                        })
                        .unzip();
                    baseline::transform(data, cols, &c, &i, &mut out);
                }
                "quantiles3" | "robust_fit" | "robust_fit_transform" => {
                    let q = baseline::column_quantiles(data, rows, cols, &QS);
                    if op == "robust_fit_transform" {
                        let c: Vec<f32> = q.iter().map(|q| q[1]).collect();
                        let i: Vec<f32> = q.iter().map(|q| baseline::inverse((q[2] - q[0]) as f64)).collect();
                        baseline::transform(data, cols, &c, &i, &mut out);
                    } else {
                        std::hint::black_box(q);
                    }
                }
                "log_transform" => baseline::log1p(data, &mut out),
                _ => return None,
            }
            Some(())
        };
        let mut d = Vec::new();
        for _ in 0..runs.max(1) {
            let t0 = Instant::now();
            once()?;
            d.push(t0.elapsed());
        }
        std::hint::black_box(&out);
        d.sort();
        Some(median(&d))
    }
}

/// What [`run`] reports while it works.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// About to measure `op` at `shape`.
    Measuring { op: &'a str, shape: &'a [usize] },
    /// The results of one size, final (ratios against that size's copy).
    Size(&'a [OpResult]),
}

/// Run the benchmark on `gpu`; `progress` hears what is measured and every size's results.
///
/// At each size the copy kernel is timed on its own and again with every operation,
/// its runs alternating with the operation's (so that copy and operations see the same
/// load on a shared machine): the `copy` row is the median of all those copy runs.
/// `copy_gbps` is that row's bandwidth at the largest size, and every operation's
/// `ratio_to_copy` is `gbps / copy_gbps`.
pub fn run(gpu: &Gpu, opts: &BenchOptions, progress: &mut dyn FnMut(Progress)) -> Result<BenchReport> {
    if let Some(bad) = opts.ops.iter().flatten().find(|o| !OPS.contains(&o.as_str())) {
        return Err(Error::InvalidParameter(format!(
            "unknown benchmark operation '{bad}' (known: {})",
            OPS.join(", ")
        )));
    }
    let info = gpu.adapter_info();
    let adapter = AdapterReport {
        name: info.name.clone(),
        backend: info.backend.to_str().to_string(),
        driver: info.driver.clone(),
    };
    let timer = GpuTimer::new(gpu);
    let mut ops = Vec::new();
    let mut copy_gbps = f64::NAN;
    let mut copy_texels_gbps = None;
    for &size in &opts.sizes {
        let mut work = Work::new(gpu, size)?;
        let mut rows: Vec<OpResult> = Vec::new();
        let mut copy_times = Vec::new();
        for op in OPS.iter().copied().filter(|op| opts.wants(op)) {
            progress(Progress::Measuring { op, shape: &work.shape(op) });
            let (time, timer_kind, runs) = if op == "copy" {
                let (t, k, r) = timer.median(gpu, opts.runs, &mut |enc| work.record(op, enc))?;
                copy_times.push(t);
                (t, k, r)
            } else {
                let (t, copies, k, r) = timer.median_with_copy(gpu, opts.runs, &mut |enc, this| {
                    work.record(if this { op } else { "copy" }, enc)
                })?;
                copy_times.extend(copies);
                (t, k, r)
            };
            if std::env::var_os("GPUNORM_PROFILE").is_some() {
                print_profile(gpu, op, &mut |enc| work.record(op, enc))?;
            }
            let (per_elem, passes) = work.traffic(op);
            let bytes = per_elem * work.n as u64;
            let secs = time.as_secs_f64();
            let gbps = bytes as f64 / secs / 1e9;
            let reference_ok = opts.cpu_reference_max.is_none_or(|m| work.n <= m);
            let cpu_reference_s = if reference_ok { work.cpu_reference(op).map(|d| d.as_secs_f64()) } else { None };
            let cpu_baseline_s =
                if opts.cpu_baseline { work.cpu_baseline(op, opts.runs.min(3)).map(|d| d.as_secs_f64()) } else { None };
            rows.push(OpResult {
                op: op.to_string(),
                shape: work.shape(op),
                bytes,
                median_s: secs,
                gbps,
                ratio_to_copy: f64::NAN, // set once the copy's bandwidth is known
                cpu_reference_s,
                passes,
                cpu_baseline_s,
                runs,
                timer: timer_kind,
            });
        }
        // The copy row: the median of every copy run at this size.
        copy_times.sort();
        if let Some(c) = rows.iter_mut().find(|r| r.op == "copy") {
            c.median_s = median(&copy_times).as_secs_f64();
            c.gbps = c.bytes as f64 / c.median_s / 1e9;
            c.runs = copy_times.len();
            copy_gbps = c.gbps;
        }
        // At the last (largest) size only, as the report's copy_gbps.
        if gpu.reads_through_texels() && Some(&size) == opts.sizes.last() {
            let (t, _, _) = timer
                .median(gpu, opts.runs, &mut |enc| record_copy_with(gpu, enc, &work.x, &work.out, CopyWidth::Texels))?;
            copy_texels_gbps = Some(8.0 * work.n as f64 / t.as_secs_f64() / 1e9);
        }
        let size_copy = copy_gbps;
        for r in rows.iter_mut() {
            r.ratio_to_copy = r.gbps / size_copy;
        }
        progress(Progress::Size(&rows));
        ops.extend(rows);
    }
    // Every ratio against the largest size's copy (the report's `copy_gbps`).
    for r in ops.iter_mut() {
        r.ratio_to_copy = r.gbps / copy_gbps;
    }
    Ok(BenchReport { adapter, copy_gbps, ops, copy_texels_gbps })
}

/// One more run of an operation with a timestamp around every dispatch, printed to
/// stderr (`GPUNORM_PROFILE=1 gpunorm bench`): where the time of an operation goes.
fn print_profile(gpu: &Gpu, op: &str, record: &mut dyn FnMut(&mut wgpu::CommandEncoder) -> Result<()>) -> Result<()> {
    gpu.start_profile()?;
    let mut encoder = gpu.encoder();
    record(&mut encoder)?;
    gpu.finish_profile(&mut encoder);
    gpu.submit_and_wait(encoder)?;
    let times = gpu.read_profile()?;
    let total: Duration = times.iter().map(|t| t.time).sum();
    eprintln!("profile of {op}: {} dispatches, {:.3} ms in them", times.len(), total.as_secs_f64() * 1e3);
    // The gap before a dispatch: what ran between it and the one before (buffer clears,
    // copies, the driver's scheduling).
    let mut end = Duration::ZERO;
    for t in &times {
        let gap = t.start.saturating_sub(end);
        eprintln!(
            "  {:<24} {:>8} wg {:>10.3} ms  (after a gap of {:.3} ms)",
            t.entry,
            t.workgroups,
            t.time.as_secs_f64() * 1e3,
            gap.as_secs_f64() * 1e3
        );
        end = t.start + t.time;
    }
    Ok(())
}

/// A well-made multi-threaded float32 CPU implementation of the scalers' two passes
/// (statistics, then the transform), the bar a GPU path has to clear to be worth it.
/// Threads split the rows (`std::thread::scope`); NaN is skipped as in the GPU path.
pub mod baseline {
    use std::thread;

    /// Per-column state: count, mean, M2, min, max.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct ColumnMoments {
        pub count: u64,
        pub mean: f64,
        pub m2: f64,
        pub min: f32,
        pub max: f32,
    }

    impl ColumnMoments {
        fn merge(&mut self, n: u64, mean: f64, m2: f64, lo: f32, hi: f32) {
            if n == 0 {
                return;
            }
            let total = self.count + n;
            let d = mean - self.mean;
            self.mean += d * n as f64 / total as f64;
            self.m2 += m2 + d * d * self.count as f64 * n as f64 / total as f64;
            self.count = total;
            self.min = if self.count == n { lo } else { self.min.min(lo) };
            self.max = if self.count == n { hi } else { self.max.max(hi) };
        }
    }

    fn threads() -> usize {
        thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Row ranges of about equal size, one per thread.
    fn row_chunks(rows: usize) -> Vec<(usize, usize)> {
        let t = threads().min(rows.max(1));
        let per = rows.div_ceil(t);
        (0..t).map(|i| (i * per, ((i + 1) * per).min(rows))).filter(|(a, b)| a < b).collect()
    }

    /// Rows per block: a block is summed in f32 (two passes over it while it is in cache),
    /// then merged into the f64 running state (Chan).
    const BLOCK: usize = 256;

    /// Per-column count, mean, M2, min and max of a row-major `(rows, cols)` matrix.
    pub fn column_moments(data: &[f32], rows: usize, cols: usize) -> Vec<ColumnMoments> {
        let parts: Vec<Vec<ColumnMoments>> = thread::scope(|s| {
            let handles: Vec<_> = row_chunks(rows)
                .into_iter()
                .map(|(r0, r1)| s.spawn(move || chunk_moments(&data[r0 * cols..r1 * cols], cols)))
                .collect();
            handles.into_iter().map(|h| h.join().expect("baseline thread")).collect()
        });
        let mut total = vec![ColumnMoments::default(); cols];
        for p in parts {
            for (t, m) in total.iter_mut().zip(p) {
                t.merge(m.count, m.mean, m.m2, m.min, m.max);
            }
        }
        total
    }

    fn chunk_moments(data: &[f32], cols: usize) -> Vec<ColumnMoments> {
        let mut state = vec![ColumnMoments::default(); cols];
        let (mut n, mut sum, mut m2) = (vec![0u32; cols], vec![0f32; cols], vec![0f32; cols]);
        let (mut lo, mut hi) = (vec![0f32; cols], vec![0f32; cols]);
        for block in data.chunks(BLOCK * cols) {
            n.fill(0);
            sum.fill(0.0);
            m2.fill(0.0);
            lo.fill(f32::INFINITY);
            hi.fill(f32::NEG_INFINITY);
            for row in block.chunks_exact(cols) {
                for j in 0..cols {
                    let v = row[j];
                    let ok = !v.is_nan();
                    n[j] += ok as u32;
                    sum[j] += if ok { v } else { 0.0 };
                    lo[j] = lo[j].min(v);
                    hi[j] = hi[j].max(v);
                }
            }
            let mean: Vec<f32> = (0..cols).map(|j| if n[j] > 0 { sum[j] / n[j] as f32 } else { 0.0 }).collect();
            for row in block.chunks_exact(cols) {
                for j in 0..cols {
                    let d = row[j] - mean[j];
                    m2[j] += if row[j].is_nan() { 0.0 } else { d * d };
                }
            }
            for j in 0..cols {
                state[j].merge(n[j] as u64, mean[j] as f64, m2[j] as f64, lo[j], hi[j]);
            }
        }
        state
    }

    /// Per-column (min, max), NaN ignored.
    pub fn column_min_max(data: &[f32], rows: usize, cols: usize) -> Vec<(f32, f32)> {
        let parts: Vec<Vec<(f32, f32)>> = thread::scope(|s| {
            let handles: Vec<_> = row_chunks(rows)
                .into_iter()
                .map(|(r0, r1)| {
                    s.spawn(move || {
                        let mut acc = vec![(f32::INFINITY, f32::NEG_INFINITY); cols];
                        for row in data[r0 * cols..r1 * cols].chunks_exact(cols) {
                            for (a, &v) in acc.iter_mut().zip(row) {
                                a.0 = a.0.min(v);
                                a.1 = a.1.max(v);
                            }
                        }
                        acc
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("baseline thread")).collect()
        });
        let mut total = vec![(f32::INFINITY, f32::NEG_INFINITY); cols];
        for p in parts {
            for (t, m) in total.iter_mut().zip(p) {
                t.0 = t.0.min(m.0);
                t.1 = t.1.max(m.1);
            }
        }
        total
    }

    /// Per-column quantiles (numpy's linear method) by selection (`select_nth_unstable`),
    /// NaN ignored; threads split the columns.
    pub fn column_quantiles(data: &[f32], rows: usize, cols: usize, qs: &[f64]) -> Vec<Vec<f32>> {
        let t = threads().min(cols.max(1));
        let per = cols.div_ceil(t);
        thread::scope(|s| {
            let handles: Vec<_> = (0..t)
                .map(|i| {
                    s.spawn(move || {
                        ((i * per)..((i + 1) * per).min(cols))
                            .map(|j| {
                                let mut v: Vec<f32> =
                                    (0..rows).map(|r| data[r * cols + j]).filter(|v| !v.is_nan()).collect();
                                quantiles_of(&mut v, qs)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("baseline thread")).collect()
        })
    }

    fn quantiles_of(v: &mut [f32], qs: &[f64]) -> Vec<f32> {
        let n = v.len();
        qs.iter()
            .map(|&q| {
                if n == 0 {
                    return f32::NAN;
                }
                let rank = q * (n - 1) as f64;
                let lo = rank.floor() as usize;
                let frac = rank - lo as f64;
                let (_, &mut a, rest) = v.select_nth_unstable_by(lo, f32::total_cmp);
                let b = if lo + 1 < n { rest.iter().copied().fold(f32::INFINITY, f32::min) } else { a };
                (a as f64 + (b as f64 - a as f64) * frac) as f32
            })
            .collect()
    }

    /// `1 / scale`, 1 for a (near) zero scale.
    pub fn inverse(scale: f64) -> f32 {
        if scale < 10.0 * f32::EPSILON as f64 {
            1.0
        } else {
            (1.0 / scale) as f32
        }
    }

    /// `out = (x − center[j]) · inv[j]` over a row-major matrix with `cols` columns.
    pub fn transform(data: &[f32], cols: usize, center: &[f32], inv: &[f32], out: &mut [f32]) {
        let rows = data.len() / cols;
        let chunks = row_chunks(rows);
        thread::scope(|s| {
            let mut rest = &mut out[..];
            for (r0, r1) in chunks {
                let (mine, tail) = rest.split_at_mut((r1 - r0) * cols);
                rest = tail;
                let x = &data[r0 * cols..r1 * cols];
                s.spawn(move || {
                    for (yr, xr) in mine.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
                        for j in 0..cols {
                            yr[j] = (xr[j] - center[j]) * inv[j];
                        }
                    }
                });
            }
        });
    }

    /// `out = log1p(x)`.
    pub fn log1p(data: &[f32], out: &mut [f32]) {
        let per = data.len().div_ceil(threads()).max(1);
        thread::scope(|s| {
            for (y, x) in out.chunks_mut(per).zip(data.chunks(per)) {
                s.spawn(move || {
                    for (y, &x) in y.iter_mut().zip(x) {
                        *y = x.ln_1p();
                    }
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_moments_match_reference() {
        let (rows, cols) = (1000, 3);
        let mut data = test_data(rows * cols, 7);
        data[4] = f32::NAN;
        let got = baseline::column_moments(&data, rows, cols);
        let want = reference::moments(&data, &Grouping::Columns { rows, cols });
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.count, w.count);
            assert!((g.mean - w.mean).abs() < 1e-5 * w.mean.abs());
            assert!((g.m2 - w.m2).abs() < 1e-4 * w.m2);
            assert_eq!(g.min as f64, w.min);
            assert_eq!(g.max as f64, w.max);
        }
    }

    #[test]
    fn baseline_quantiles_match_reference() {
        let (rows, cols) = (101, 2);
        let data = test_data(rows * cols, 3);
        let got = baseline::column_quantiles(&data, rows, cols, &QS);
        let want = reference::quantiles(&data, &Grouping::Columns { rows, cols }, &QS);
        for (g, w) in got.iter().zip(&want) {
            for (a, b) in g.iter().zip(w) {
                assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }
}
