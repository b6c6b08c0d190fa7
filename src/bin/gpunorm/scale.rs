//! `gpunorm scale`: scikit-learn's scalers, fitted on INPUT (or `--fit TRAIN`, or a
//! saved `--params-in` file) and applied to INPUT; the output and `--params-out`
//! are written together, atomically, or not at all.

use gpunorm::scale::{FitState, FittedScaler, Scaler};
use ndarray::ArrayView2;

use crate::args::{CommandSpec, OptSpec, Parsed, BACKEND, OUTPUT, VERIFY};
use crate::common::{gpu_options, load_matrix, open_gpu, Infinity, Matrix};
use crate::error::CliError;

pub const SPEC: CommandSpec = CommandSpec {
    name: "scale",
    usage: "gpunorm scale --method <standard|minmax|maxabs|robust|log> INPUT -o OUTPUT [options]",
    help: "\
Scale each feature (column) of INPUT as scikit-learn's scalers do and write the
result to OUTPUT (.npy float32 of INPUT's shape, or .csv).

options:
  --method NAME            standard, minmax, maxabs, robust or log
  -o, --output FILE        the output file (required)
  --fit TRAIN              fit on TRAIN, transform INPUT (default: fit on INPUT)
  --params-in P.json       use saved parameters instead of fitting
  --params-out P.json      save the fitted parameters
  --inverse                inverse-transform INPUT (needs --params-in or --fit)
  --feature-range MIN,MAX  minmax: the target range (default 0,1)
  --clip                   minmax: clip the result into [MIN, MAX]
  --quantile-range LO,HI   robust: percentiles (default 25,75)
  --unit-variance          robust: scale to unit variance for normal data
  --no-center              standard, robust: do not subtract the center
  --no-scale               standard, robust: do not divide by the scale
  --verify                 check against the float64 CPU reference (exit 3 on a mismatch)
  --backend NAME           auto, vulkan, metal, dx12 or gl
  -h, --help               show this help

exit codes: 0 done, 2 bad input or usage, 3 --verify mismatch, 4 no GPU adapter
",
    options: &[&[
        OptSpec::value("method"),
        OUTPUT,
        OptSpec::value("fit"),
        OptSpec::value("params-in"),
        OptSpec::value("params-out"),
        OptSpec::flag("inverse"),
        OptSpec::value("feature-range"),
        OptSpec::flag("clip"),
        OptSpec::value("quantile-range"),
        OptSpec::flag("unit-variance"),
        OptSpec::flag("no-center"),
        OptSpec::flag("no-scale"),
        VERIFY,
        BACKEND,
    ]],
    positionals: &["INPUT"],
};

pub fn run(args: &Parsed) -> Result<(), CliError> {
    // Every usage error first, then the inputs, then the GPU.
    let input = args.input();
    let output = args.required_path("output")?;
    let fit_path = args.path("fit")?;
    let params_in = args.path("params-in")?;
    let params_out = args.path("params-out")?;
    let inverse = args.flag("inverse");
    let opts = gpu_options(args)?;
    if params_out.as_deref().is_some_and(|p| same_file(p, &output)) {
        return Err(SPEC.usage_error("--params-out and -o name the same file"));
    }

    let (scaler, loaded) = match &params_in {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| CliError::BadInput(format!("{}: cannot read the params file: {e}", p.display())))?;
            let fitted = FittedScaler::from_json(&text).map_err(|e| CliError::in_file(e, p))?;
            check_against_file(args, &fitted.scaler, p)?;
            (fitted.scaler, Some(fitted))
        }
        None => (scaler_from_args(args)?, None),
    };
    let stateless = matches!(scaler, Scaler::Log(_));
    if loaded.is_some() && fit_path.is_some() && !stateless {
        return Err(SPEC.usage_error("--fit and --params-in both say where the parameters come from: give one"));
    }
    if inverse && loaded.is_none() && fit_path.is_none() && !stateless {
        return Err(SPEC.usage_error("--inverse needs fitted parameters: give --params-in or --fit"));
    }

    let x = load_matrix(&input, Infinity::Reject)?;
    // log is stateless: `--fit TRAIN` changes nothing, so TRAIN is not read.
    let train = match &fit_path {
        Some(p) if loaded.is_none() && !stateless => Some(load_matrix(p, Infinity::Reject)?),
        _ => None,
    };
    let gpu = open_gpu(opts)?;
    let progress = Progress::new(x.data.len());
    progress.say(&format!("{} on {}", scaler.method(), gpu.adapter_info().name));
    let in_input = |e| x.error(e);

    progress.say(if inverse { "inverse-transforming" } else { "fitting and transforming" });
    let (fitted, y) = match (loaded, &train) {
        (Some(f), _) => {
            let y = if inverse { f.inverse_transform(&gpu, x.data.view()) } else { f.transform(&gpu, x.data.view()) };
            (f, y.map_err(in_input)?)
        }
        (None, _) if stateless => {
            // log1p and expm1 need no fit (and expm1 takes any finite value).
            let f = FittedScaler {
                scaler,
                n_features: Some(x.data.ncols()),
                state: FitState::Stateless,
                input_dtype: x.dtype,
            };
            let y = if inverse { f.inverse_transform(&gpu, x.data.view()) } else { f.transform(&gpu, x.data.view()) };
            (f, y.map_err(in_input)?)
        }
        (None, Some(t)) => {
            let f = scaler.fit_as(&gpu, t.data.view(), t.dtype).map_err(|e| t.error(e))?;
            let y = if inverse { f.inverse_transform(&gpu, x.data.view()) } else { f.transform(&gpu, x.data.view()) };
            (f, y.map_err(in_input)?)
        }
        (None, None) => scaler.fit_transform_as(&gpu, x.data.view(), x.dtype).map_err(in_input)?,
    };

    // The output and the params file appear together or not at all.
    let mut files = vec![(output.clone(), output_bytes(&output, y.view(), &x)?)];
    if let Some(p) = params_out {
        files.push((p, format!("{}\n", fitted.to_json()).into_bytes()));
    }
    progress.say(&format!("writing {}", output.display()));
    gpunorm::io::write_atomic_all(&files)?;
    progress.say("done");
    Ok(())
}

/// Stage-by-stage progress on stderr, only for long runs and only when stderr is a terminal.
struct Progress {
    start: Option<std::time::Instant>,
}

impl Progress {
    /// Inputs below this many values finish too fast to be worth reporting.
    const LONG_RUN: usize = 10_000_000;

    fn new(values: usize) -> Self {
        use std::io::IsTerminal;
        let on = values >= Self::LONG_RUN && std::io::stderr().is_terminal();
        Progress { start: on.then(std::time::Instant::now) }
    }

    fn say(&self, what: &str) {
        if let Some(t) = self.start {
            eprintln!("gpunorm scale: [{:>7.2}s] {what}", t.elapsed().as_secs_f64());
        }
    }
}

/// Whether two paths name the same file (also when it does not exist yet).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    let canon = |p: &std::path::Path| {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        dir.canonicalize().ok().map(|d| d.join(p.file_name().unwrap_or_default()))
    };
    a == b || (canon(a).is_some() && canon(a) == canon(b))
}

/// The scaler the command line describes (no params file).
fn scaler_from_args(args: &Parsed) -> Result<Scaler, CliError> {
    let method = args.choice("method", METHODS)?.ok_or_else(|| args.missing("method"))?;
    let mut scaler = Scaler::from_method(method)?;
    reject_foreign_options(args, method)?;
    match &mut scaler {
        Scaler::Standard(o) => {
            o.with_mean = !args.flag("no-center");
            o.with_std = !args.flag("no-scale");
        }
        Scaler::MinMax(o) => {
            if let Some((lo, hi)) = args.pair("feature-range")? {
                o.feature_range = (lo, hi);
            }
            o.clip = args.flag("clip");
        }
        Scaler::Robust(o) => {
            o.with_centering = !args.flag("no-center");
            o.with_scaling = !args.flag("no-scale");
            if let Some((lo, hi)) = args.pair("quantile-range")? {
                o.quantile_range = (lo, hi);
            }
            o.unit_variance = args.flag("unit-variance");
        }
        Scaler::MaxAbs(_) | Scaler::Log(_) => {}
    }
    scaler.validate().map_err(|e| match e {
        gpunorm::Error::InvalidParameter(m) => CliError::BadInput(m),
        other => other.into(),
    })?;
    Ok(scaler)
}

const METHODS: &[&str] = &["standard", "minmax", "maxabs", "robust", "log"];

/// Options that belong to other methods are usage errors, not silently ignored.
fn reject_foreign_options(args: &Parsed, method: &str) -> Result<(), CliError> {
    let owners: [(&str, &[&str]); 6] = [
        ("feature-range", &["minmax"]),
        ("clip", &["minmax"]),
        ("quantile-range", &["robust"]),
        ("unit-variance", &["robust"]),
        ("no-center", &["standard", "robust"]),
        ("no-scale", &["standard", "robust"]),
    ];
    for (opt, methods) in owners {
        if args.given(opt) && !methods.contains(&method) {
            return Err(
                SPEC.usage_error(format!("--{opt} applies to --method {} only, not {method}", methods.join(" or ")))
            );
        }
    }
    Ok(())
}

/// With --params-in, --method and every fitting option given must equal the file's.
fn check_against_file(args: &Parsed, file: &Scaler, path: &std::path::Path) -> Result<(), CliError> {
    let mismatch = |what: String| {
        CliError::BadInput(format!("{}: {what} (method and options come from the params file)", path.display()))
    };
    if let Some(m) = args.choice("method", METHODS)? {
        if m != file.method() {
            return Err(mismatch(format!("--method {m} does not match the file's method '{}'", file.method())));
        }
    }
    reject_foreign_options(args, file.method())?;
    let flag_matches = |opt: &str, file_value: bool| -> Result<(), CliError> {
        if args.given(opt) && !file_value {
            return Err(mismatch(format!("--{opt} was given but the file was fitted without it")));
        }
        Ok(())
    };
    let pair_matches = |opt: &str, file_value: (f64, f64)| -> Result<(), CliError> {
        match args.pair(opt)? {
            Some(v) if v != file_value => Err(mismatch(format!(
                "--{opt} {},{} does not match the file's {},{}",
                v.0, v.1, file_value.0, file_value.1
            ))),
            _ => Ok(()),
        }
    };
    match file {
        Scaler::Standard(o) => {
            flag_matches("no-center", !o.with_mean)?;
            flag_matches("no-scale", !o.with_std)?;
        }
        Scaler::MinMax(o) => {
            pair_matches("feature-range", o.feature_range)?;
            flag_matches("clip", o.clip)?;
        }
        Scaler::Robust(o) => {
            flag_matches("no-center", !o.with_centering)?;
            flag_matches("no-scale", !o.with_scaling)?;
            pair_matches("quantile-range", o.quantile_range)?;
            flag_matches("unit-variance", o.unit_variance)?;
        }
        Scaler::MaxAbs(_) | Scaler::Log(_) => {}
    }
    Ok(())
}

/// The output file's bytes: INPUT's shape (1-D stays 1-D), CSV with INPUT's header.
fn output_bytes(path: &std::path::Path, y: ArrayView2<f32>, like: &Matrix) -> Result<Vec<u8>, CliError> {
    let header = like.header.as_deref().filter(|h| h.len() == y.ncols());
    let data = if like.was_1d {
        y.to_owned().into_shape_with_order(y.nrows()).expect("one column").into_dyn()
    } else {
        y.to_owned().into_dyn()
    };
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    Ok(if is_csv { gpunorm::io::csv_bytes(data.view(), header)? } else { gpunorm::io::npy_bytes(data.view()) })
}
