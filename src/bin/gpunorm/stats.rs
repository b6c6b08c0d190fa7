//! `gpunorm stats`: per-feature statistics as JSON.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::args::{CommandSpec, OptSpec, Parsed, BACKEND, OUTPUT, VERIFY};
use crate::common::{emit, gpu_options, json_num, json_text, load_matrix, open_gpu, Infinity};
use crate::error::CliError;

pub const SPEC: CommandSpec = CommandSpec {
    name: "stats",
    usage: "gpunorm stats INPUT [--quantiles Q,Q,...] [-o STATS.json] [--verify] [--backend auto|vulkan|metal|dx12|gl]",
    help: "\
Per-feature (column) statistics of INPUT (.npy or .csv; a 1-D array is one
feature), printed as JSON on stdout:

  {\"n_samples\": N, \"n_features\": F, \"features\": [{\"count\", \"nan_count\",
   \"mean\", \"var\", \"var_sample\", \"std\", \"min\", \"max\",
   \"quantiles\": {\"0.25\": v, ...}}, ...]}

var and std are population figures (ddof 0), var_sample uses ddof 1 (null for
a count below 2). NaN is missing: it is counted in nan_count and ignored
otherwise; a statistic that is NaN is written as null. ±inf is bad input.
Quantiles are exact order statistics with linear interpolation (numpy's
default method).

options:
  --quantiles Q,Q,...   quantiles in [0, 1] (default 0.25,0.5,0.75); the JSON
                        keys are their shortest decimal forms (0.1, 1, ...)
  -o, --output FILE     write the JSON to FILE (atomically) instead of stdout
  --verify              check the GPU results against the float64 CPU reference
                        (exit 3 on a mismatch)
  --backend NAME        auto, vulkan, metal, dx12 or gl (default: the
                        GPUNORM_BACKEND or WGPU_BACKEND environment variable,
                        else auto)
  -h, --help            show this help

exit codes: 0 done, 2 bad input or usage, 3 --verify mismatch, 4 no GPU adapter
",
    options: &[&[OptSpec::value("quantiles"), OUTPUT, VERIFY, BACKEND]],
    positionals: &["INPUT"],
};

/// The default `--quantiles`.
const DEFAULT_QUANTILES: [f64; 3] = [0.25, 0.5, 0.75];

/// The whole document.
#[derive(serde::Serialize)]
struct Report {
    n_samples: usize,
    n_features: usize,
    features: Vec<Feature>,
}

/// One feature, in the spec's field order.
#[derive(serde::Serialize)]
struct Feature {
    count: u64,
    nan_count: u64,
    mean: Option<f64>,
    var: Option<f64>,
    var_sample: Option<f64>,
    std: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    quantiles: Quantiles,
}

/// Quantile key → value, in the order asked.
struct Quantiles(Vec<(String, Option<f64>)>);

impl Serialize for Quantiles {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The JSON key of a quantile: its shortest decimal form (`0.25`, `0.1`, `1`, `0`).
pub fn quantile_key(q: f64) -> String {
    // `+ 0.0` turns -0 into 0.
    format!("{}", q + 0.0)
}

/// The requested quantiles: parsed, checked to lie in [0, 1], duplicates dropped
/// (first occurrence kept).
fn requested_quantiles(args: &Parsed) -> Result<Vec<f64>, CliError> {
    let qs = args.list("quantiles")?.unwrap_or_else(|| DEFAULT_QUANTILES.to_vec());
    let mut out: Vec<f64> = Vec::with_capacity(qs.len());
    for q in qs {
        if !(0.0..=1.0).contains(&q) {
            let raw = args.value("quantiles").unwrap_or_default();
            return Err(args.bad_value("quantiles", raw, &format!("quantile {q} is outside [0, 1]")));
        }
        if !out.contains(&q) {
            out.push(q);
        }
    }
    Ok(out)
}

pub fn run(args: &Parsed) -> Result<(), CliError> {
    // Every usage error first, then the input, then the GPU.
    let qs = requested_quantiles(args)?;
    let input = args.input();
    let output = args.path("output")?;
    let opts = gpu_options(args)?;
    let m = load_matrix(&input, Infinity::Reject)?;
    let gpu = open_gpu(opts)?;
    let (rows, cols) = m.data.dim();
    let features = if rows == 0 || cols == 0 {
        // Nothing to compute: every statistic of an empty column is NaN.
        (0..cols).map(|_| empty_feature(&qs)).collect()
    } else {
        let stats = gpunorm::stats::describe(&gpu, m.data.view(), &qs).map_err(|e| CliError::in_file(e, &input))?;
        stats
            .into_iter()
            .map(|s| Feature {
                count: s.count,
                nan_count: s.nan_count,
                mean: json_num(s.mean),
                var: json_num(s.var),
                var_sample: s.var_sample.and_then(json_num),
                std: json_num(s.std),
                min: json_num(s.min),
                max: json_num(s.max),
                quantiles: Quantiles(
                    qs.iter().zip(&s.quantiles).map(|(&q, &v)| (quantile_key(q), json_num(v))).collect(),
                ),
            })
            .collect()
    };
    let report = Report { n_samples: rows, n_features: cols, features };
    emit(output.as_deref(), &json_text(&report)?)
}

fn empty_feature(qs: &[f64]) -> Feature {
    Feature {
        count: 0,
        nan_count: 0,
        mean: None,
        var: None,
        var_sample: None,
        std: None,
        min: None,
        max: None,
        quantiles: Quantiles(qs.iter().map(|&q| (quantile_key(q), None)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shortest_decimal_forms() {
        let keys: Vec<String> = [0.25, 0.1, 1.0, 0.0, -0.0, 0.5, 0.333].iter().map(|&q| quantile_key(q)).collect();
        assert_eq!(keys, ["0.25", "0.1", "1", "0", "0", "0.5", "0.333"]);
        let parsed: f64 = "0.10".parse().unwrap();
        assert_eq!(quantile_key(parsed), "0.1");
    }
}
