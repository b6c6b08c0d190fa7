//! `gpunorm norm`: PyTorch's normalization layers (not implemented yet).
//!
//! To implement: load INPUT with [`crate::common::load_tensor`]`(&path,
//! Infinity::Allow)` (NaN and inf propagate as in PyTorch), open the GPU with
//! [`crate::common::open_gpu`], write the output with
//! [`crate::common::write_tensor`], and the running stats with
//! `gpunorm::io::write_atomic_all` (both files or neither).

use crate::args::{CommandSpec, OptSpec, Parsed, BACKEND, OUTPUT, VERIFY};
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

pub fn run(_args: &Parsed) -> Result<(), CliError> {
    Err(CliError::NotImplemented("gpunorm norm".into()))
}
