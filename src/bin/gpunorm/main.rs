//! `gpunorm`: the command line (see the CLI contract, `spec/cli.md`).
//!
//! One file per subcommand (`scale.rs`, `stats.rs`, `norm.rs`, `bench.rs`,
//! `info.rs`), each with a `SPEC: CommandSpec` (options, positionals, help) and
//! `run(&Parsed) -> Result<(), CliError>`; shared helpers in `common.rs`, the
//! argument parser in `args.rs`, errors and exit codes in `error.rs`.

// Some helpers are for the subcommands still to be written (scale, norm, bench).
#[allow(dead_code)]
mod args;
mod bench;
#[allow(dead_code)]
mod common;
mod error;
mod info;
mod norm;
mod scale;
mod stats;

use std::process::ExitCode;

use args::{CommandSpec, Parsed};
use error::CliError;

/// A subcommand: its spec and its entry point.
struct Command {
    spec: &'static CommandSpec,
    run: fn(&Parsed) -> Result<(), CliError>,
}

const COMMANDS: [Command; 5] = [
    Command { spec: &scale::SPEC, run: scale::run },
    Command { spec: &stats::SPEC, run: stats::run },
    Command { spec: &norm::SPEC, run: norm::run },
    Command { spec: &bench::SPEC, run: bench::run },
    Command { spec: &info::SPEC, run: info::run },
];

const ABOUT: &str = "\
gpunorm: data scaling and normalization on the GPU (WGSL compute kernels on
wgpu), checked against a float64 CPU reference.";

fn global_usage() -> String {
    let mut s = format!("{ABOUT}\n\nusage: gpunorm <command> [options]\n\ncommands:\n");
    for (name, what) in [
        ("scale", "scikit-learn's scalers: standard, minmax, maxabs, robust, log"),
        ("stats", "per-feature statistics and quantiles as JSON"),
        ("norm", "PyTorch's batch, layer, group and instance norm"),
        ("bench", "kernel timings and bandwidth against a copy kernel"),
        ("info", "the GPU adapter, its features and limits"),
    ] {
        s.push_str(&format!("  {name:<7}{what}\n"));
    }
    s.push_str(
        "\nRun 'gpunorm <command> --help' for a command's options.\n\
         \n\
         options:\n  -h, --help     show this help\n  -V, --version  show the version\n\
         \n\
         environment: GPUNORM_BACKEND (or WGPU_BACKEND) picks the backend when\n\
         --backend is not given; WGPU_ADAPTER_NAME picks an adapter by name;\n\
         GPUNORM_VERIFY_STRICT=1 makes --verify demand exact equality (a diagnostic:\n\
         exit 3 names the element farthest from the float64 reference).\n\
         \n\
         exit codes: 0 done, 2 bad input or usage, 3 --verify found a mismatch,\n\
         4 no GPU adapter, 1 other failures\n",
    );
    s
}

fn version() -> String {
    format!("gpunorm {}\n", env!("CARGO_PKG_VERSION"))
}

fn global_error(msg: String) -> CliError {
    CliError::Usage { msg, usage: Some("gpunorm <command> [options]"), command: None }
}

fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.spec.name == name)
}

fn dispatch(argv: &[String]) -> Result<(), CliError> {
    let Some(first) = argv.first() else {
        return Err(global_error("no command given (expected scale, stats, norm, bench or info)".into()));
    };
    match first.as_str() {
        "-h" | "--help" => return common::print_stdout(&global_usage()),
        "-V" | "--version" => return common::print_stdout(&version()),
        "help" => {
            return match argv.get(1) {
                None => common::print_stdout(&global_usage()),
                Some(name) => match find(name) {
                    Some(c) => common::print_stdout(&format!("{}\n", c.spec.help_text())),
                    None => Err(global_error(format!("unknown command '{name}'"))),
                },
            }
        }
        _ => {}
    }
    let Some(cmd) = find(first) else {
        if first.starts_with('-') {
            return Err(global_error(format!("unknown option '{first}' (expected a command first)")));
        }
        return Err(global_error(format!("unknown command '{first}' (expected scale, stats, norm, bench or info)")));
    };
    let parsed = args::parse(cmd.spec, &argv[1..])?;
    if parsed.help {
        return common::print_stdout(&format!("{}\n", cmd.spec.help_text()));
    }
    (cmd.run)(&parsed)
}

fn main() -> ExitCode {
    let argv: Vec<String> = match std::env::args_os().skip(1).map(|a| a.into_string()).collect() {
        Ok(v) => v,
        Err(bad) => {
            let e = global_error(format!("argument {bad:?} is not valid UTF-8"));
            eprintln!("{}", e.report());
            return ExitCode::from(2);
        }
    };
    match dispatch(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.report());
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
