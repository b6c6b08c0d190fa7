//! The one error type of the crate.
//!
//! Every bad input is a typed error whose message says what is wrong and where
//! (file, row, column, shape). The CLI maps the variants onto its exit codes:
//! [`Error::VerifyMismatch`] → 3, [`Error::NoAdapter`] → 4, [`Error::Gpu`] → 1,
//! everything else → 2 (bad input or usage).

use std::path::PathBuf;

use crate::verify::Mismatch;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No adapter could be found for the requested backends.
    #[error(
        "no GPU adapter found (backends tried: {tried}). gpunorm runs on any Vulkan, Metal, DX12 or GL \
         adapter; on a machine without a GPU install a software adapter: \
         `apt-get install mesa-vulkan-drivers` (Mesa's lavapipe Vulkan driver), or Mesa's EGL/GL \
         packages (`libegl1 libegl-mesa0 libgl1-mesa-dri`) and set GPUNORM_BACKEND=gl"
    )]
    NoAdapter { tried: String },

    /// The adapter was found but the device could not be created, or the GPU
    /// reported an error (validation, out of memory, lost device).
    #[error("GPU error: {0}")]
    Gpu(String),

    /// An array has the wrong shape or rank for the operation.
    #[error("shape error: {0}")]
    Shape(String),

    /// An option or parameter is out of its domain (e.g. `feature_range` with MIN >= MAX).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),

    /// A non-finite value where only finite values (or NaN as missing) are allowed.
    #[error("{what} at row {row}, column {col}: {value} (only finite values, or NaN as missing, are allowed)")]
    NonFinite { what: &'static str, row: usize, col: usize, value: f64 },

    /// A value outside an operation's domain (e.g. log1p of a value <= -1).
    #[error("value {value} at row {row}, column {col} is outside the domain of {op}: {why}")]
    Domain { op: &'static str, row: usize, col: usize, value: f64, why: &'static str },

    /// A file could not be parsed; `line` is the 1-based line for text formats.
    #[error("{}: {msg}", location(path, *line))]
    Parse { path: PathBuf, line: Option<usize>, msg: String },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// `Verify` found a GPU result outside the documented tolerance.
    #[error("GPU result outside tolerance: {0}")]
    VerifyMismatch(Box<Mismatch>),

    /// An input is larger than this implementation supports (e.g. more than 2^32 elements).
    #[error("too large: {0}")]
    TooLarge(String),
}

fn location(path: &std::path::Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}
