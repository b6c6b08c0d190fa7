//! Helpers shared by the subcommands: opening the GPU from the command line's
//! options, loading inputs, writing outputs and JSON atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use gpunorm::gpu::parse_backends;
use gpunorm::io::{read_array, read_array_keep_f32, write_array, write_atomic, Loaded, Table};
use gpunorm::scale::InputDtype;
use gpunorm::verify::unravel;
use gpunorm::{Gpu, GpuOptions, Verify};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Ix2};

use crate::args::Parsed;
use crate::error::CliError;

/// The GPU options the command line asks for: `--backend` (which overrides
/// `GPUNORM_BACKEND` / `WGPU_BACKEND`; those are honoured otherwise),
/// `WGPU_ADAPTER_NAME`, and `--verify` (if the subcommand has it).
pub fn gpu_options(args: &Parsed) -> Result<GpuOptions, CliError> {
    let backends = match args.value("backend") {
        Some(b) => parse_backends(b).map_err(|e| args.bad_value("backend", b, &strip_kind(&e)))?,
        None => {
            let env = std::env::var("GPUNORM_BACKEND").map(|v| ("GPUNORM_BACKEND", v));
            match env.or_else(|_| std::env::var("WGPU_BACKEND").map(|v| ("WGPU_BACKEND", v))) {
                Ok((name, v)) => parse_backends(&v).map_err(|e| {
                    CliError::BadInput(format!("environment variable {name}={v:?}: {}", strip_kind(&e)))
                })?,
                Err(_) => None,
            }
        }
    };
    let adapter_name = std::env::var("WGPU_ADAPTER_NAME").ok().filter(|s| !s.is_empty());
    let verify = if args.flag("verify") { Verify::Always } else { Verify::Never };
    Ok(GpuOptions { backends, adapter_name, verify })
}

/// The message of a library error without its "invalid parameter: " prefix.
fn strip_kind(e: &gpunorm::Error) -> String {
    match e {
        gpunorm::Error::InvalidParameter(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Open the GPU with the options [`gpu_options`] read from the command line
/// (read them first, so that a bad `--backend` is reported before any input is
/// read). No adapter is [`gpunorm::Error::NoAdapter`] (exit 4).
pub fn open_gpu(opts: GpuOptions) -> Result<Gpu, CliError> {
    Ok(Gpu::with_options(opts)?)
}

/// What to do with ±inf in an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Infinity {
    /// ±inf is bad input (scale, stats): an error naming the file, row and column.
    Reject,
    /// ±inf passes through (norm).
    Allow,
}

/// A 1-D or 2-D input as a matrix of the values read (each fits in float32).
#[derive(Clone, Debug)]
pub struct Matrix {
    pub path: PathBuf,
    /// `(n_samples, n_features)`; a 1-D input of length n is `(n, 1)`.
    pub data: Array2<f64>,
    /// The file held a 1-D array: write outputs back 1-D.
    pub was_1d: bool,
    /// The CSV header, if any (kept in CSV outputs).
    pub header: Option<Vec<String>>,
    /// What scikit-learn would fit it as (float32 for a float32 `.npy`, else float64).
    pub dtype: InputDtype,
    /// CSV: the file line of data row 0 (for errors about a value).
    pub first_data_line: Option<usize>,
}

impl Matrix {
    /// A library error about this input (with the value's CSV line where it names one).
    pub fn error(&self, e: gpunorm::Error) -> CliError {
        CliError::in_data_file(e, &self.path, self.first_data_line)
    }
}

/// An input of any rank: as float32 for `norm`, as read (float64) on the way in.
#[derive(Clone, Debug)]
pub struct Tensor<T = f32> {
    pub path: PathBuf,
    pub data: ArrayD<T>,
    pub header: Option<Vec<String>>,
    pub dtype: InputDtype,
    pub first_data_line: Option<usize>,
}

/// `(2, 3, 4)`, as numpy writes a shape.
pub fn py_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// Read `path` (`.npy` or `.csv`) as float32 data of any rank.
///
/// A finite value too large for float32 is bad input (naming row and column,
/// i.e. the index into the data); with [`Infinity::Reject`] so is ±inf.
pub fn load_tensor(path: &Path, inf: Infinity) -> Result<Tensor, CliError> {
    let table = match read_array_keep_f32(path)? {
        // A float32 .npy stays float32: every value fits and nothing is rounded, and the
        // float64 copy would double the memory of a large input.
        Loaded::Float32(data) => {
            check_values(path, &data, None, inf)?;
            return Ok(Tensor {
                path: path.to_path_buf(),
                data,
                header: None,
                dtype: InputDtype::Float32,
                first_data_line: None,
            });
        }
        Loaded::Table(table) => table,
    };
    let t = checked(path, table, inf)?;
    let data = t.data.mapv(|v| v as f32);
    Ok(Tensor { path: t.path, data, header: t.header, dtype: t.dtype, first_data_line: t.first_data_line })
}

/// Read `path` and check every value as [`load_tensor`] says, keeping the values as
/// read (float64: the scalers and `stats` centre each column on the host before it
/// becomes float32).
fn load_checked(path: &Path, inf: Infinity) -> Result<Tensor<f64>, CliError> {
    checked(path, read_array(path)?, inf)
}

/// A table read from `path`, its values checked (see [`check_values`]).
fn checked(path: &Path, table: Table, inf: Infinity) -> Result<Tensor<f64>, CliError> {
    let Table { data, header, float32, first_data_line } = table;
    check_values(path, &data, first_data_line, inf)?;
    let dtype = if float32 { InputDtype::Float32 } else { InputDtype::Float64 };
    Ok(Tensor { path: path.to_path_buf(), data, header, dtype, first_data_line })
}

/// Bad input: a finite value too large for float32, and with [`Infinity::Reject`] ±inf,
/// named by row and column (and CSV line, `first_data_line`).
fn check_values<T: Copy + Into<f64>>(
    path: &Path,
    data: &ArrayD<T>,
    first_data_line: Option<usize>,
    inf: Infinity,
) -> Result<(), CliError> {
    let at_line = |row: usize| first_data_line.map(|l| format!(":{}", l + row)).unwrap_or_default();
    let shape = data.shape();
    // The arrays read are in C order: the flat index is the C-order index.
    for (flat, &v) in data.iter().enumerate() {
        let v: f64 = v.into();
        let idx = || unravel(flat, shape);
        if v.is_finite() && (v as f32).is_infinite() {
            return Err(CliError::BadInput(format!(
                "{}{}: value {v:e} at {} does not fit in float32 (largest magnitude {:e})",
                path.display(),
                at_line(row_col(&idx(), shape).0),
                where_is(&idx(), shape),
                f32::MAX
            )));
        }
        if inf == Infinity::Reject && v.is_infinite() {
            let (row, col) = row_col(&idx(), shape);
            return Err(CliError::in_data_file(
                gpunorm::Error::NonFinite { what: "infinite value", row, col, value: v },
                path,
                first_data_line,
            ));
        }
    }
    Ok(())
}

/// The (row, column) of a 1-D or 2-D index (a 1-D array is one column).
fn row_col(idx: &[usize], shape: &[usize]) -> (usize, usize) {
    match (idx, shape.len()) {
        ([r], _) => (*r, 0),
        ([r, c], _) => (*r, *c),
        _ => (idx.first().copied().unwrap_or(0), idx.get(1).copied().unwrap_or(0)),
    }
}

/// "row R, column C" for 1-D/2-D data, else "index [i, j, k]".
fn where_is(idx: &[usize], shape: &[usize]) -> String {
    if shape.len() <= 2 {
        let (r, c) = row_col(idx, shape);
        format!("row {r}, column {c}")
    } else {
        format!("index {idx:?}")
    }
}

/// Read a 1-D or 2-D input as an `(n_samples, n_features)` matrix, its values as
/// read (1-D: `(n, 1)`, remembered in [`Matrix::was_1d`]), checked as
/// [`load_tensor`] checks them. Any other rank is bad input naming the file and the
/// shape.
pub fn load_matrix(path: &Path, inf: Infinity) -> Result<Matrix, CliError> {
    let Tensor { data, header, dtype, first_data_line, .. } = load_checked(path, inf)?;
    let shape = data.shape().to_vec();
    let was_1d = shape.len() == 1;
    let data = match shape.len() {
        1 => data.into_shape_with_order((shape[0], 1)).expect("same size"),
        2 => data.into_dimensionality::<Ix2>().expect("2-D"),
        _ => {
            return Err(CliError::BadInput(format!(
                "{}: expected a 1-D or 2-D array (n_samples, n_features), got shape {} ({}-D)",
                path.display(),
                py_shape(&shape),
                shape.len()
            )))
        }
    };
    Ok(Matrix { path: path.to_path_buf(), data, was_1d, header, dtype, first_data_line })
}

/// Write a result the shape of `like` atomically to `path`: `.csv` (keeping the
/// input's header when the column count matches) or `.npy` float32; a 1-D input
/// gives a 1-D output.
pub fn write_matrix(path: &Path, data: ArrayView2<f32>, like: &Matrix) -> Result<(), CliError> {
    let header = like.header.as_deref().filter(|h| h.len() == data.ncols());
    if like.was_1d && data.ncols() == 1 {
        let flat = data.to_owned().into_shape_with_order(data.nrows()).expect("one column");
        write_array(path, flat.view().into_dyn(), header)?;
    } else {
        write_array(path, data.into_dyn(), header)?;
    }
    Ok(())
}

/// Write an array of any rank atomically (`.csv` for 1-D/2-D with an optional
/// header, else `.npy` float32).
pub fn write_tensor(path: &Path, data: ArrayViewD<f32>, header: Option<&[String]>) -> Result<(), CliError> {
    Ok(write_array(path, data, header)?)
}

/// A JSON document, pretty-printed with a final newline.
pub fn json_text<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| CliError::Internal(format!("JSON: {e}")))?;
    s.push('\n');
    Ok(s)
}

/// Write `text` atomically to `path`, or on stdout when `path` is `None`.
pub fn emit(path: Option<&Path>, text: &str) -> Result<(), CliError> {
    match path {
        Some(p) => Ok(write_atomic(p, text.as_bytes())?),
        None => print_stdout(text),
    }
}

/// Print on stdout; a closed pipe or full disk is an error (exit 1), not a panic.
pub fn print_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::Internal(format!("writing to stdout: {e}")))
}

/// A float for JSON: NaN (and ±inf) become `null`.
pub fn json_num(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}
