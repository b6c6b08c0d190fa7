//! File input/output for the CLI (the spec's "Files" section): `.npy` and `.csv`
//! arrays in, `.npy` (`float32`) or `.csv` out, every write atomic.
//!
//! - [`read_array`] reads `.npy` (`float32`, `float64`, `int32`, `int64`, either
//!   byte order, C or Fortran order; versions 1.0, 2.0, 3.0) or `.csv` (numbers
//!   with an optional header row) into a [`Table`] of `f64`.
//! - [`write_array`] writes `float32` data as `.npy` (exactly the data's shape)
//!   or, when the name ends in `.csv`, as CSV (header kept, NaN as `nan`).
//! - [`write_atomic`] / [`write_atomic_all`] write through a temporary file beside
//!   the target and a rename, so that a failed write leaves nothing behind.
//!
//! Errors: [`Error::Parse`] for bad file content (with the 1-based line for CSV),
//! [`Error::Io`] for operating-system errors, [`Error::Shape`] for a shape that
//! cannot be read or written.

mod atomic;
mod csv;
mod npy;

use std::path::Path;

use ndarray::{ArrayD, ArrayViewD};

use crate::error::{Error, Result};

pub use atomic::{write_atomic, write_atomic_all};
pub use csv::{csv_bytes, parse_csv};
pub use npy::{npy_bytes, parse_npy};

/// An array read from a file: data in C order as f64, its shape (1-D stays 1-D),
/// and the CSV header if any.
///
/// A `.npy` file keeps its shape (a 1-D file gives a 1-D array) and has no
/// header; a `.csv` file is always 2-D `(rows, columns)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub data: ArrayD<f64>,
    pub header: Option<Vec<String>>,
}

/// The file's extension, lower-cased.
fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

/// Reads an array from a `.npy` or `.csv` file (the extension decides, in any
/// case). Any other extension is an [`Error::Parse`] listing the supported
/// formats.
pub fn read_array(path: &Path) -> Result<Table> {
    let read = || {
        std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
    };
    match extension(path).as_deref() {
        Some("npy") => Ok(Table { data: parse_npy(&read()?, path)?, header: None }),
        Some("csv") => parse_csv(&read()?, path),
        ext => Err(Error::Parse {
            path: path.to_path_buf(),
            line: None,
            msg: format!(
                "unsupported input format ({}): inputs must be .npy (NumPy float32, float64, int32 \
                 or int64) or .csv (comma-separated numbers, optional header row)",
                match ext {
                    Some(e) => format!("extension .{e}"),
                    None => "no file extension".into(),
                }
            ),
        }),
    }
}

/// Writes `data` atomically: as CSV if the file name ends in `.csv` (in any
/// case; `header` becomes the first line), else as `.npy` `float32`
/// (little-endian, C order, exactly `data`'s shape; `header` is not used).
///
/// Errors: [`Error::Shape`] (naming the file) for CSV data that is not 1-D or 2-D
/// or a header of the wrong length; [`Error::Io`] when writing fails, in which
/// case the target is left as it was.
pub fn write_array(path: &Path, data: ArrayViewD<f32>, header: Option<&[String]>) -> Result<()> {
    let bytes = if extension(path).as_deref() == Some("csv") {
        csv_bytes(data, header).map_err(|e| match e {
            Error::Shape(msg) => Error::Shape(format!("{}: {msg}", path.display())),
            other => other,
        })?
    } else {
        npy_bytes(data)
    };
    write_atomic(path, &bytes)
}

