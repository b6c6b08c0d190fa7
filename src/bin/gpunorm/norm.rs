//! `gpunorm norm`: PyTorch's normalization layers (batch, layer, group, instance)
//! on INPUT; the output and, with `--running-out`, the running statistics are
//! written together, atomically, or not at all.
//!
//! Every usage error is reported before any file is read, every bad input (shapes
//! of INPUT, gamma, beta and the running stats; `C % G`; K above the rank) before
//! the GPU is opened.

use std::path::{Path, PathBuf};

use gpunorm::norm::{
    BatchNorm, BatchNormConfig, GroupNorm, GroupNormConfig, InstanceNorm, InstanceNormConfig, LayerNorm,
    LayerNormConfig,
};
use gpunorm::Gpu;
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::args::{CommandSpec, OptSpec, Parsed, BACKEND, OUTPUT, VERIFY};
use crate::common::{gpu_options, load_tensor, open_gpu, py_shape, Infinity, Tensor};
use crate::error::CliError;

pub const SPEC: CommandSpec = CommandSpec {
    name: "norm",
    usage: "gpunorm norm --kind <batch|layer|group|instance> INPUT -o OUTPUT [options]",
    help: "\
Normalize INPUT as PyTorch's normalization layers do (channels on axis 1,
(N, C, *), unless --channels-last) and write the result to OUTPUT.

options:
  --kind NAME              batch, layer, group or instance
  -o, --output FILE        the output file (required)
  --gamma G.npy            scale (default 1)
  --beta B.npy             shift (default 0)
  --eps E                  added to the variance (default 1e-5)
  --groups G               group: number of groups
  --normalized-dims K      layer: normalize over the last K dims (default 1)
  --channels-last          batch, group, instance: channels on the last axis
  --momentum M             batch, train mode: running-stat momentum (default 0.1)
  --running-mean RM.npy    batch: start values (train) or the stats to use (eval)
  --running-var RV.npy     batch: as --running-mean
  --eval                   batch: normalize with the running stats
  --running-out DIR        batch: write running_mean.npy and running_var.npy to DIR
  --verify                 check against the float64 CPU reference (exit 3 on a mismatch)
  --backend NAME           auto, vulkan, metal, dx12 or gl
  -h, --help               show this help

exit codes: 0 done, 2 bad input or usage, 3 --verify mismatch, 4 no GPU adapter
",
    options: &[&[
        OptSpec::value("kind"),
        OUTPUT,
        OptSpec::value("gamma"),
        OptSpec::value("beta"),
        OptSpec::value("eps"),
        OptSpec::value("groups"),
        OptSpec::value("normalized-dims"),
        OptSpec::flag("channels-last"),
        OptSpec::value("momentum"),
        OptSpec::value("running-mean"),
        OptSpec::value("running-var"),
        OptSpec::flag("eval"),
        OptSpec::value("running-out"),
        VERIFY,
        BACKEND,
    ]],
    positionals: &["INPUT"],
};

const KINDS: &[&str] = &["batch", "layer", "group", "instance"];

/// What the command line asks for, checked before any file is read.
struct Request {
    kind: &'static str,
    input: PathBuf,
    output: PathBuf,
    eps: f64,
    momentum: f64,
    groups: usize,
    normalized_dims: usize,
    channels_last: bool,
    eval: bool,
    gamma: Option<PathBuf>,
    beta: Option<PathBuf>,
    running_mean: Option<PathBuf>,
    running_var: Option<PathBuf>,
    running_out: Option<PathBuf>,
}

pub fn run(args: &Parsed) -> Result<(), CliError> {
    // Usage errors first, then the inputs, then the GPU.
    let req = request(args)?;
    let opts = gpu_options(args)?;
    let x = load_tensor(&req.input, Infinity::Allow)?;
    let shape = x.data.shape().to_vec();
    let params_shape = check_input_shape(&req, &shape)?;
    let load_param = |path: &Option<PathBuf>, what: &str, want: &[usize]| -> Result<Option<Vec<f32>>, CliError> {
        match path {
            None => Ok(None),
            Some(p) => load_vector(p, what, want, &req.input, &shape).map(Some),
        }
    };
    let gamma = load_param(&req.gamma, "gamma", &params_shape)?;
    let beta = load_param(&req.beta, "beta", &params_shape)?;
    let channels = [params_shape.iter().product::<usize>()];
    let running_mean = load_param(&req.running_mean, "running mean", &channels)?;
    let running_var = load_param(&req.running_var, "running var", &channels)?;
    let affine = match (gamma, beta) {
        (None, None) => None,
        (g, b) => {
            let n = channels[0];
            Some((g.unwrap_or_else(|| vec![1.0; n]), b.unwrap_or_else(|| vec![0.0; n])))
        }
    };

    let gpu = open_gpu(opts)?;
    let in_input = |e| CliError::in_file(e, &req.input);
    let (y, running) = normalize(&gpu, &req, x.data.view(), affine, running_mean, running_var).map_err(in_input)?;

    // The output and the running stats appear together or not at all.
    let mut files = vec![(req.output.clone(), output_bytes(&req.output, y.view(), &x)?)];
    // A directory made here goes again if the writes fail (nothing left behind).
    let mut made = None;
    if let (Some(dir), Some((m, v))) = (&req.running_out, running) {
        made = Some(gpunorm::io::create_dirs(dir).map_err(|e| CliError::BadInput(e.to_string()))?);
        let npy = |v: Vec<f32>| gpunorm::io::npy_bytes(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).unwrap().view());
        files.push((dir.join("running_mean.npy"), npy(m)));
        files.push((dir.join("running_var.npy"), npy(v)));
    }
    gpunorm::io::write_atomic_all(&files)?;
    if let Some(dirs) = made {
        dirs.keep();
    }
    Ok(())
}

/// Read and check the options.
fn request(args: &Parsed) -> Result<Request, CliError> {
    let input = args.input();
    let output = args.required_path("output")?;
    let kind = args.choice("kind", KINDS)?.ok_or_else(|| args.missing("kind"))?;
    reject_foreign_options(args, kind)?;
    let eps = args.f64("eps")?.unwrap_or(1e-5);
    if eps < 0.0 {
        return Err(args.bad_value("eps", args.value("eps").unwrap_or(""), "eps must be >= 0"));
    }
    let momentum = args.f64("momentum")?.unwrap_or(0.1);
    if !(0.0..=1.0).contains(&momentum) {
        return Err(args.bad_value("momentum", args.value("momentum").unwrap_or(""), "momentum must lie in [0, 1]"));
    }
    let groups = match (kind, args.usize("groups")?) {
        ("group", None) => return Err(SPEC.usage_error("--kind group needs --groups G")),
        ("group", Some(0)) => return Err(args.bad_value("groups", "0", "the number of groups must be at least 1")),
        (_, g) => g.unwrap_or(1),
    };
    let normalized_dims = args.usize("normalized-dims")?.unwrap_or(1);
    if normalized_dims == 0 {
        return Err(args.bad_value("normalized-dims", "0", "K must be at least 1"));
    }
    let eval = args.flag("eval");
    let (running_mean, running_var) = (args.path("running-mean")?, args.path("running-var")?);
    if kind == "batch" && eval && (running_mean.is_none() || running_var.is_none()) {
        return Err(SPEC
            .usage_error("--eval normalizes with the running statistics: give both --running-mean and --running-var"));
    }
    Ok(Request {
        kind,
        input,
        output,
        eps,
        momentum,
        groups,
        normalized_dims,
        channels_last: args.flag("channels-last"),
        eval,
        gamma: args.path("gamma")?,
        beta: args.path("beta")?,
        running_mean,
        running_var,
        running_out: args.path("running-out")?,
    })
}

/// Options that belong to other kinds are usage errors, not silently ignored.
fn reject_foreign_options(args: &Parsed, kind: &str) -> Result<(), CliError> {
    let owners: [(&str, &[&str]); 7] = [
        ("groups", &["group"]),
        ("normalized-dims", &["layer"]),
        ("channels-last", &["batch", "group", "instance"]),
        ("momentum", &["batch"]),
        ("running-mean", &["batch"]),
        ("running-var", &["batch"]),
        ("running-out", &["batch"]),
    ];
    for (opt, kinds) in owners {
        if args.given(opt) && !kinds.contains(&kind) {
            return Err(SPEC.usage_error(format!("--{opt} applies to --kind {} only, not {kind}", kinds.join(", "))));
        }
    }
    Ok(())
}

/// Check INPUT's shape for the kind; returns the shape gamma and beta must have.
fn check_input_shape(req: &Request, shape: &[usize]) -> Result<Vec<usize>, CliError> {
    let bad = |why: String| CliError::BadInput(format!("{}: {why}", req.input.display()));
    if shape.contains(&0) {
        return Err(bad(format!("the input of shape {} has no elements", py_shape(shape))));
    }
    if req.kind == "layer" {
        let k = req.normalized_dims;
        if k > shape.len() {
            return Err(bad(format!(
                "--normalized-dims {k} is larger than the input's rank: shape {} has {} dims",
                py_shape(shape),
                shape.len()
            )));
        }
        return Ok(shape[shape.len() - k..].to_vec());
    }
    if shape.len() < 2 {
        return Err(bad(format!(
            "{} norm expects an input of shape {} with at least 2 dims, got shape {}",
            req.kind,
            if req.channels_last { "(N, *, C)" } else { "(N, C, *)" },
            py_shape(shape)
        )));
    }
    let c = if req.channels_last { shape[shape.len() - 1] } else { shape[1] };
    if req.kind == "group" && c % req.groups != 0 {
        return Err(bad(format!(
            "the number of channels ({c}, shape {}) is not divisible by --groups {}",
            py_shape(shape),
            req.groups
        )));
    }
    Ok(vec![c])
}

/// A parameter file: its shape must be `want` (a CSV column of n values, `(n, 1)`,
/// counts as `(n,)`).
fn load_vector(
    path: &Path,
    what: &str,
    want: &[usize],
    input: &Path,
    input_shape: &[usize],
) -> Result<Vec<f32>, CliError> {
    let t = load_tensor(path, Infinity::Allow)?;
    let shape = t.data.shape();
    let column = want.len() == 1 && shape.len() == 2 && shape[1] == 1 && shape[0] == want[0];
    if shape != want && !column {
        return Err(CliError::BadInput(format!(
            "{}: {what} has shape {}, expected {} for INPUT {} of shape {}",
            path.display(),
            py_shape(shape),
            py_shape(want),
            input.display(),
            py_shape(input_shape)
        )));
    }
    Ok(t.data.iter().copied().collect())
}

type Running = Option<(Vec<f32>, Vec<f32>)>;

/// Run the layer on the GPU; returns the output and the running stats (batch norm).
fn normalize(
    gpu: &Gpu,
    req: &Request,
    x: ArrayViewD<f32>,
    affine: Option<(Vec<f32>, Vec<f32>)>,
    running_mean: Option<Vec<f32>>,
    running_var: Option<Vec<f32>>,
) -> gpunorm::Result<(ArrayD<f32>, Running)> {
    let shape = x.shape();
    let c = if req.channels_last { shape[shape.len() - 1] } else { shape.get(1).copied().unwrap_or(1) };
    match req.kind {
        "batch" => {
            let cfg = BatchNormConfig::default()
                .eps(req.eps)
                .momentum(Some(req.momentum))
                .affine(affine.is_some())
                .channels_last(req.channels_last);
            let mut bn = BatchNorm::new(gpu, c, cfg)?;
            if let Some((g, b)) = &affine {
                bn.set_gamma_beta(gpu, g, b)?;
            }
            let m = running_mean.unwrap_or_else(|| vec![0.0; c]);
            let v = running_var.unwrap_or_else(|| vec![1.0; c]);
            bn.set_running_stats(gpu, &m, &v)?;
            bn.set_training(!req.eval);
            let y = bn.forward(gpu, x)?;
            let running = bn.running_mean(gpu)?.zip(bn.running_var(gpu)?);
            Ok((y, running))
        }
        "layer" => {
            let k = req.normalized_dims;
            let cfg = LayerNormConfig::default().eps(req.eps).elementwise_affine(affine.is_some());
            let mut ln = LayerNorm::new(gpu, &shape[shape.len() - k..], cfg)?;
            if let Some((g, b)) = &affine {
                ln.set_gamma_beta(gpu, g, b)?;
            }
            Ok((ln.forward(gpu, x)?, None))
        }
        "group" => {
            let cfg = GroupNormConfig::default().eps(req.eps).affine(affine.is_some()).channels_last(req.channels_last);
            let mut gn = GroupNorm::new(gpu, req.groups, c, cfg)?;
            if let Some((g, b)) = &affine {
                gn.set_gamma_beta(gpu, g, b)?;
            }
            Ok((gn.forward(gpu, x)?, None))
        }
        _ => {
            let cfg =
                InstanceNormConfig::default().eps(req.eps).affine(affine.is_some()).channels_last(req.channels_last);
            let mut inn = InstanceNorm::new(gpu, c, cfg)?;
            if let Some((g, b)) = &affine {
                inn.set_gamma_beta(gpu, g, b)?;
            }
            Ok((inn.forward(gpu, x)?, None))
        }
    }
}

/// The output file's bytes: INPUT's shape; CSV (INPUT's header kept when the
/// column count matches) when OUTPUT ends in `.csv`, else `.npy` float32.
fn output_bytes(path: &Path, y: ArrayViewD<f32>, like: &Tensor) -> Result<Vec<u8>, CliError> {
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !is_csv {
        return Ok(gpunorm::io::npy_bytes(y));
    }
    let cols = match y.shape() {
        [_] => 1,
        [_, c] => *c,
        _ => 0,
    };
    let header = like.header.as_deref().filter(|h| h.len() == cols);
    gpunorm::io::csv_bytes(y, header).map_err(|e| CliError::in_file(e, path))
}
