//! `gpunorm bench`: every operation timed against a plain compute copy kernel in the
//! same run (the measurement itself is [`gpunorm::bench`]).

use std::io::{IsTerminal, Write};

use gpunorm::bench::{self, BenchOptions, OpResult, Progress};

use crate::args::{CommandSpec, OptSpec, Parsed, BACKEND};
use crate::common::{gpu_options, json_text, open_gpu, py_shape};
use crate::error::CliError;

pub const SPEC: CommandSpec = CommandSpec {
    name: "bench",
    usage: "gpunorm bench [--json] [--quick] [--backend auto|vulkan|metal|dx12|gl]",
    help: "\
Time every operation at several sizes: median time, effective bandwidth (the
bytes the operation must read and write, over time), that bandwidth as a
fraction of a plain copy kernel's, and the CPU reference time.

Data is on the GPU before timing; each run records the operation, submits it
and waits (device time from timestamp queries where the adapter has them).
Bytes per element: fit 4, transform 8, fused fit+transform and batch-norm
train forward 12, batch-norm backward 20; quantile and robust ops 4 per pass
over the data (\"passes\"). The copy kernel runs alternate with every
operation's (so that both see the same load on a shared machine); its row is
the median of them all. ratio = GB/s over the copy's GB/s at the same size
(JSON: ratio_to_copy = gbps / copy_gbps, the copy at the largest size).
cpu ref: the float64 reference twin, once
(--quick: at 1e6 only);
cpu mt: a multi-threaded float32 plain-Rust baseline (statistics, scalers).

options:
  --json           print one JSON document instead of a table:
                   {\"adapter\": {\"name\", \"backend\", \"driver\"}, \"copy_gbps\": G,
                    \"ops\": [{\"op\", \"shape\", \"bytes\", \"median_s\", \"gbps\",
                    \"ratio_to_copy\", \"cpu_reference_s\",
                    \"passes\"?, \"cpu_baseline_s\", \"runs\", \"timer\"}]}
  --quick          1e6 and 1e7 elements, 11 runs (under two minutes on a
                   software adapter); default 1e6, 1e7 and 3e7, 9 runs
  --backend NAME   auto, vulkan, metal, dx12 or gl (default: the
                   GPUNORM_BACKEND or WGPU_BACKEND environment variable, else
                   auto)
  -h, --help       show this help

environment: GPUNORM_BENCH_OPS=op,op,... runs only those operations (and copy).

exit codes: 0 done, 2 usage, 4 no GPU adapter
",
    options: &[&[OptSpec::flag("json"), OptSpec::flag("quick"), BACKEND]],
    positionals: &[],
};

fn ms(s: f64) -> String {
    format!("{:.3}", s * 1e3)
}

fn row(r: &OpResult) -> String {
    let opt_ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), ms);
    format!(
        "{:<24}{:>18}{:>12}{:>9.2}{:>7.2}{:>12}{:>10}\n",
        r.op,
        py_shape(&r.shape),
        ms(r.median_s),
        r.gbps,
        r.ratio_to_copy,
        opt_ms(r.cpu_reference_s),
        opt_ms(r.cpu_baseline_s),
    )
}

pub fn run(args: &Parsed) -> Result<(), CliError> {
    let opts = gpu_options(args)?;
    let mut bench_opts = if args.flag("quick") { BenchOptions::quick() } else { BenchOptions::full() };
    if let Ok(list) = std::env::var("GPUNORM_BENCH_OPS") {
        let ops: Vec<String> = list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if let Some(bad) = ops.iter().find(|o| !bench::OPS.contains(&o.as_str())) {
            return Err(CliError::BadInput(format!(
                "environment variable GPUNORM_BENCH_OPS: unknown operation '{bad}' (known: {})",
                bench::OPS.join(", ")
            )));
        }
        bench_opts.ops = Some(ops);
    }
    let gpu = open_gpu(opts)?;
    let json = args.flag("json");
    let mut out = std::io::stdout();
    let mut stream_err = None;
    let live = std::io::stderr().is_terminal();
    if !json {
        let info = gpu.adapter_info();
        let head = format!(
            "adapter: {} ({}, driver {} {})\n{:<24}{:>18}{:>12}{:>9}{:>7}{:>12}{:>10}\n",
            info.name,
            info.backend.to_str(),
            info.driver,
            info.driver_info,
            "op",
            "shape",
            "median ms",
            "GB/s",
            "ratio",
            "cpu ref ms",
            "cpu mt ms"
        );
        crate::common::print_stdout(&head)?;
    }
    let report = bench::run(&gpu, &bench_opts, &mut |p| match p {
        Progress::Measuring { op, shape } => {
            if live {
                eprint!("\r\x1b[Kmeasuring {op} {}", py_shape(shape));
            }
        }
        Progress::Size(rows) => {
            if live {
                eprint!("\r\x1b[K");
            }
            if !json && stream_err.is_none() {
                let text: String = rows.iter().map(row).collect();
                if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                    stream_err = Some(e);
                }
            }
        }
    })?;
    if let Some(e) = stream_err {
        return Err(CliError::Internal(format!("writing to stdout: {e}")));
    }
    if json {
        crate::common::print_stdout(&json_text(&report)?)
    } else {
        let mut text = format!(
            "copy kernel at the largest size: {:.2} GB/s (ratio: over the copy's GB/s at the same size)\n",
            report.copy_gbps
        );
        if let Some(t) = report.copy_texels_gbps {
            text.push_str(&format!(
                "copy kernel reading its source through staged texels, as every kernel reads its input on this \
                 software adapter: {t:.2} GB/s (ratios above 1 beat the plain copy this way)\n"
            ));
        }
        crate::common::print_stdout(&text)
    }
}
