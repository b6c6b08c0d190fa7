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

pub use atomic::{create_dirs, write_atomic, write_atomic_all, write_atomic_with, CreatedDirs};
pub use csv::{csv_bytes, parse_csv};
pub use npy::{npy_bytes, parse_npy, parse_npy_f32, parse_npy_typed, write_npy};

/// An array read from a file: data in C order as f64, its shape (1-D stays 1-D),
/// and the CSV header if any.
///
/// A `.npy` file keeps its shape (a 1-D file gives a 1-D array) and has no
/// header; a `.csv` file is always 2-D `(rows, columns)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub data: ArrayD<f64>,
    pub header: Option<Vec<String>>,
    /// The file held float32 (a `.npy` of dtype `<f4`/`>f4`); CSV text and every other
    /// dtype read as float64, as numpy would.
    pub float32: bool,
    /// CSV: the 1-based file line of data row 0 (data row r is on line this + r), for
    /// error messages about a value; `None` for `.npy`.
    pub first_data_line: Option<usize>,
}

/// The file's extension, lower-cased.
fn extension(path: &Path) -> Option<String> {
    path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase())
}

/// Reads an array from a `.npy` or `.csv` file (the extension decides, in any
/// case). Any other extension is an [`Error::Parse`] listing the supported
/// formats.
pub fn read_array(path: &Path) -> Result<Table> {
    match extension(path).as_deref() {
        Some("npy") => npy_table(&read_file(path)?, path),
        Some("csv") => parse_csv(&read_file(path)?, path),
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

/// What [`read_array_keep_f32`] read.
pub enum Loaded {
    /// A float32 `.npy`, as float32.
    Float32(ArrayD<f32>),
    /// Anything else, as [`read_array`] reads it.
    Table(Table),
}

/// [`read_array`], except that a float32 `.npy` stays float32 (no float64 copy: for
/// callers that round to float32 anyway, such as the norm layers).
pub fn read_array_keep_f32(path: &Path) -> Result<Loaded> {
    if extension(path).as_deref() != Some("npy") {
        return read_array(path).map(Loaded::Table);
    }
    let bytes = read_file(path)?;
    match parse_npy_f32(&bytes, path)? {
        Some(data) => Ok(Loaded::Float32(data)),
        None => npy_table(&bytes, path).map(Loaded::Table),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// A `.npy` file's bytes as a [`Table`].
fn npy_table(bytes: &[u8], path: &Path) -> Result<Table> {
    let (data, float32) = parse_npy_typed(bytes, path)?;
    Ok(Table { data, header: None, float32, first_data_line: None })
}

/// Writes `data` atomically: as CSV if the file name ends in `.csv` (in any
/// case; `header` becomes the first line), else as `.npy` `float32`
/// (little-endian, C order, exactly `data`'s shape; `header` is not used).
///
/// Errors: [`Error::Shape`] (naming the file) for CSV data that is not 1-D or 2-D
/// or a header of the wrong length; [`Error::Io`] when writing fails, in which
/// case the target is left as it was.
pub fn write_array(path: &Path, data: ArrayViewD<f32>, header: Option<&[String]>) -> Result<()> {
    if extension(path).as_deref() == Some("csv") {
        let bytes = csv_bytes(data, header).map_err(|e| match e {
            Error::Shape(msg) => Error::Shape(format!("{}: {msg}", path.display())),
            other => other,
        })?;
        write_atomic(path, &bytes)
    } else {
        // Straight from the array to the file: no copy of a large output in memory.
        write_atomic_with(path, |w| write_npy(w, data))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ndarray::{arr1, arr2, Array, ArrayD, IxDyn};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TmpDir(pub PathBuf);

    impl TmpDir {
        pub(crate) fn new(tag: &str) -> TmpDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "gpunorm-io-test-{}-{tag}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TmpDir(dir)
        }

        pub(crate) fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        /// Names of the hidden (temporary or backup) files left in the directory.
        pub(crate) fn leftovers(&self) -> Vec<String> {
            std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        }
    }

    impl Drop for TmpDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A `.npy` file with the given header dict text and raw data.
    fn npy_raw(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let mut out = b"\x93NUMPY".to_vec();
        out.extend_from_slice(&[version, 0]);
        let pre = if version == 1 { 10 } else { 12 };
        let mut header = dict.to_string();
        while !(pre + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        if version == 1 {
            out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn dict(descr: &str, fortran: bool, shape: &str) -> String {
        let f = if fortran { "True" } else { "False" };
        format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}")
    }

    fn parse(bytes: &[u8]) -> Result<ArrayD<f64>> {
        parse_npy(bytes, Path::new("x.npy"))
    }

    fn parse_msg(bytes: &[u8]) -> String {
        match parse(bytes) {
            Err(e @ Error::Parse { .. }) => e.to_string(),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    fn csv(text: &str) -> Result<Table> {
        parse_csv(text.as_bytes(), Path::new("in.csv"))
    }

    fn csv_err(text: &str) -> (Option<usize>, String, String) {
        match csv(text) {
            Err(e @ Error::Parse { .. }) => {
                let shown = e.to_string();
                let Error::Parse { line, msg, .. } = e else { unreachable!() };
                (line, msg, shown)
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    /// Element-wise equality where NaN equals NaN.
    fn same(a: &ArrayD<f64>, b: &ArrayD<f64>) -> bool {
        a.shape() == b.shape() && a.iter().zip(b.iter()).all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
    }

    // ---------------------------------------------------------------- npy

    #[test]
    fn npy_round_trip_1d_2d_3d() {
        let dir = TmpDir::new("npy-rt");
        let arrays: Vec<ArrayD<f32>> = vec![
            arr1(&[1.5f32, -0.1, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0]).into_dyn(),
            arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.5]]).into_dyn(),
            Array::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as f32 * 0.1),
            ArrayD::<f32>::zeros(IxDyn(&[0, 3])),
        ];
        for (k, a) in arrays.iter().enumerate() {
            let path = dir.file(&format!("a{k}.npy"));
            write_array(&path, a.view(), None).unwrap();
            let t = read_array(&path).unwrap();
            assert_eq!(t.header, None);
            assert_eq!(t.data.shape(), a.shape(), "array {k}");
            assert!(same(&t.data, &a.mapv(|v| v as f64)), "array {k}");
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
            let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + hlen) % 64, 0);
            assert_eq!(bytes[10 + hlen - 1], b'\n');
            assert_eq!(bytes.len(), 10 + hlen + 4 * a.len());
        }
        // A view not in C order goes out a block at a time (blocks of 64 KiB: this one
        // takes several), in logical C order.
        let a = Array::from_shape_fn((300, 301), |(i, j)| (i * 1000 + j) as f32);
        let path = dir.file("transposed.npy");
        write_array(&path, a.t().into_dyn(), None).unwrap();
        let t = read_array(&path).unwrap();
        assert!(same(&t.data, &a.t().mapv(|v| v as f64).into_dyn()));
        assert!(dir.leftovers().is_empty());
    }

    #[test]
    fn npy_bytes_is_what_numpy_writes() {
        // numpy.save(np.zeros(3, np.float32)) header, byte for byte.
        let bytes = npy_bytes(ArrayD::<f32>::zeros(IxDyn(&[3])).view());
        let mut expected = b"\x93NUMPY\x01\x00v\x00".to_vec();
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
        expected.extend_from_slice(dict.as_bytes());
        expected.resize(127, b' ');
        expected.push(b'\n');
        expected.extend_from_slice(&[0; 12]);
        assert_eq!(bytes, expected);

        let b = npy_bytes(ArrayD::<f32>::zeros(IxDyn(&[2, 3, 4])).view());
        let text = String::from_utf8_lossy(&b[10..128]);
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }"));
        // A non-standard-layout view is written in logical C order.
        let a = arr2(&[[1.0f32, 2.0], [3.0, 4.0]]);
        let t = a.t();
        let b = npy_bytes(t.into_dyn());
        let vals: Vec<f32> = b[128..].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(vals, vec![1.0, 3.0, 2.0, 4.0]);
    }

    #[test]
    fn npy_little_and_big_endian_f4_f8() {
        let vals = [1.0f64, -2.5, 1e300, f64::NAN];
        let be: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
        let a = parse(&npy_raw(1, &dict(">f8", false, "(2, 2)"), &be)).unwrap();
        assert_eq!(a.shape(), &[2, 2]);
        assert!(same(&a, &arr2(&[[1.0, -2.5], [1e300, f64::NAN]]).into_dyn()));

        let le: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy_raw(1, &dict("<f8", false, "(4,)"), &le)).unwrap();
        assert!(same(&a, &arr1(&vals).into_dyn()));

        let f: Vec<u8> = [0.1f32, -3.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let a = parse(&npy_raw(1, &dict(">f4", false, "(2,)"), &f)).unwrap();
        assert_eq!(a.as_slice().unwrap(), &[0.1f32 as f64, -3.0]);
        let f: Vec<u8> = [0.1f32, -3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy_raw(1, &dict("<f4", false, "(2,)"), &f)).unwrap();
        assert_eq!(a.as_slice().unwrap(), &[0.1f32 as f64, -3.0]);
    }

    #[test]
    fn npy_float32_kept_as_float32() {
        // Either byte order, C or Fortran order: the same values as parse_npy, in float32;
        // other dtypes are left to parse_npy (None), and a broken file is the same error.
        let path = Path::new("x.npy");
        let vals = [0.1f32, -3.0, f32::NAN, f32::INFINITY, 1e-45, 3e38];
        for (descr, bytes) in [
            ("<f4", vals.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()),
            (">f4", vals.iter().flat_map(|v| v.to_be_bytes()).collect()),
        ] {
            for fortran in [false, true] {
                let file = npy_raw(1, &dict(descr, fortran, "(2, 3)"), &bytes);
                let a = parse_npy_f32(&file, path).unwrap().expect("float32");
                assert!(a.is_standard_layout());
                assert!(same(&a.mapv(|v| v as f64), &parse(&file).unwrap()), "{descr} fortran={fortran}");
            }
        }
        let f8: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(parse_npy_f32(&npy_raw(1, &dict("<f8", false, "(2,)"), &f8), path).unwrap().is_none());
        let short = npy_raw(1, &dict("<f4", false, "(3,)"), &[0; 8]);
        let e = parse_npy_f32(&short, path).unwrap_err().to_string();
        assert_eq!(e, parse(&short).unwrap_err().to_string());
    }

    #[test]
    fn npy_fortran_order_i4_2x3() {
        // Logical [[1, 2, 3], [4, 5, 6]], stored column by column.
        let stored = [1i32, 4, 2, 5, 3, 6];
        let le: Vec<u8> = stored.iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy_raw(1, &dict("<i4", true, "(2, 3)"), &le)).unwrap();
        assert_eq!(a, arr2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn());
        assert!(a.is_standard_layout());
        assert_eq!(a.as_slice().unwrap(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

        let be: Vec<u8> = stored.iter().flat_map(|v| v.to_be_bytes()).collect();
        let b = parse(&npy_raw(1, &dict(">i4", true, "(2, 3)"), &be)).unwrap();
        assert_eq!(a, b);

        // 3-D: the value at [i, j, k] is its Fortran offset i + 2j + 6k.
        let stored: Vec<u8> = (0..12).flat_map(|v: i32| v.to_le_bytes()).collect();
        let a = parse(&npy_raw(1, &dict("<i4", true, "(2, 3, 2)"), &stored)).unwrap();
        assert_eq!(a.shape(), &[2, 3, 2]);
        for ((i, j, k), v) in a.clone().into_dimensionality::<ndarray::Ix3>().unwrap().indexed_iter() {
            assert_eq!(*v, (i + 2 * j + 6 * k) as f64);
        }
        assert!(a.is_standard_layout());
    }

    #[test]
    fn npy_i8_both_orders() {
        let vals = [0i64, -1, 1 << 40, i32::MIN as i64 - 7];
        let le: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy_raw(1, &dict("<i8", false, "(4,)"), &le)).unwrap();
        let expected: Vec<f64> = vals.iter().map(|&v| v as f64).collect();
        assert_eq!(a.as_slice().unwrap(), expected.as_slice());
        let be: Vec<u8> = vals.iter().flat_map(|v| v.to_be_bytes()).collect();
        let b = parse(&npy_raw(1, &dict(">i8", false, "(4,)"), &be)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn npy_version_2_and_3_headers() {
        let le: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        for version in [2u8, 3] {
            let a = parse(&npy_raw(version, &dict("<f4", false, "(2, 2)"), &le)).unwrap();
            assert_eq!(a, arr2(&[[1.0, 2.0], [3.0, 4.0]]).into_dyn());
        }
        // Old-style headers: double quotes, Python 2 longs, keys in another order.
        let d = "{\"shape\": (2L, 2L), \"fortran_order\": False, \"descr\": \"<f4\"}";
        let a = parse(&npy_raw(1, d, &le)).unwrap();
        assert_eq!(a.shape(), &[2, 2]);
        // Unsupported version.
        let mut bad = npy_raw(1, &dict("<f4", false, "(4,)"), &le);
        bad[6] = 4;
        assert!(parse_msg(&bad).contains("unsupported .npy format version 4.0"));
    }

    #[test]
    fn npy_rejected_dtypes_are_named() {
        for (descr, what) in [
            ("<f2", "float16"),
            ("|b1", "bool"),
            ("|u1", "uint8"),
            ("<c8", "complex64"),
            ("<U3", "unicode string"),
            ("|O", "Python object"),
            ("<u4", "uint32"),
            ("|i1", "int8"),
            ("|f4", "float32"),
        ] {
            let msg = parse_msg(&npy_raw(1, &dict(descr, false, "(2,)"), &[0; 64]));
            assert!(msg.contains(&format!("'{descr}'")), "{msg}");
            assert!(msg.contains(what), "{msg}");
            assert!(msg.contains("float32, float64, int32 and int64"), "{msg}");
            assert!(msg.starts_with("x.npy: unsupported dtype"), "{msg}");
        }
        let structured = "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }";
        let msg = parse_msg(&npy_raw(1, structured, &[0; 16]));
        assert!(msg.contains("structured"), "{msg}");
    }

    #[test]
    fn npy_truncated_and_malformed() {
        let le: Vec<u8> = (0..6).flat_map(|v: i32| (v as f32).to_le_bytes()).collect();
        let full = npy_raw(1, &dict("<f4", false, "(2, 3)"), &le);
        let msg = parse_msg(&full[..full.len() - 4]);
        assert!(msg.contains("truncated .npy data"), "{msg}");
        assert!(msg.contains("expected 24 bytes"), "{msg}");
        assert!(msg.contains("found 20"), "{msg}");
        assert!(msg.contains("(2, 3)"), "{msg}");

        let mut long = full.clone();
        long.extend_from_slice(&[0; 4]);
        assert!(parse_msg(&long).contains("found 28"));

        let msg = parse_msg(&full[..50]);
        assert!(msg.contains("truncated .npy header"), "{msg}");
        assert!(parse_msg(&full[..9]).contains("truncated"));
        assert!(parse_msg(b"hello world, not numpy").contains("not a .npy file"));
        assert!(parse_msg(b"").contains("not a .npy file"));

        let msg = parse_msg(&npy_raw(1, "{'descr': '<f4', 'fortran_order': False}", &le));
        assert!(msg.contains("malformed .npy header") && msg.contains("'shape'"), "{msg}");
        let msg = parse_msg(&npy_raw(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}", &le));
        assert!(msg.contains("fortran_order"), "{msg}");
        let msg = parse_msg(&npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", &le));
        assert!(msg.contains("-6"), "{msg}");
        let msg = parse_msg(&npy_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,", &le));
        assert!(msg.contains("malformed .npy header"), "{msg}");
    }

    #[test]
    fn npy_zero_d_is_a_shape_error() {
        let bytes = npy_raw(1, &dict("<f4", false, "()"), &1.0f32.to_le_bytes());
        match parse(&bytes) {
            Err(Error::Shape(msg)) => {
                assert!(msg.contains("0-d array") && msg.contains("x.npy"), "{msg}")
            }
            other => panic!("expected a shape error, got {other:?}"),
        }
        // What npy_bytes writes for a 0-d view is still a valid numpy file.
        let b = npy_bytes(ndarray::arr0(2.0f32).into_dyn().view());
        assert_eq!(b.len(), 128 + 4);
        assert!(matches!(parse(&b), Err(Error::Shape(_))));
    }

    // ---------------------------------------------------------------- csv

    #[test]
    fn csv_with_header_quotes_crlf_nan_inf() {
        let text =
            "a, \"b, the second\",\"say \"\"hi\"\"\"\r\n1,2,3\r\n4.5, nan ,NaN\r\n,inf,-inf\r\n+inf,Infinity,-1e3";
        let t = csv(text).unwrap();
        assert_eq!(t.header, Some(vec!["a".to_string(), "b, the second".into(), "say \"hi\"".into()]));
        assert_eq!(t.data.shape(), &[4, 3]);
        let expected = arr2(&[
            [1.0, 2.0, 3.0],
            [4.5, f64::NAN, f64::NAN],
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY],
            [f64::INFINITY, f64::INFINITY, -1000.0],
        ]);
        assert!(same(&t.data, &expected.into_dyn()));
    }

    #[test]
    fn csv_quoted_fields_unicode_and_text_after_the_quote() {
        // Multi-byte names inside and outside quotes, text between a closing quote and
        // the comma kept as written, quoted numbers, and where the data starts.
        let t = csv("\"é, ü\"x ,ß,\"\"\"\"\n\"1\", 2 ,3\n").unwrap();
        assert_eq!(t.header, Some(vec!["é, üx".to_string(), "ß".into(), "\"".into()]));
        assert!(same(&t.data, &arr2(&[[1.0, 2.0, 3.0]]).into_dyn()));
        assert_eq!(t.first_data_line, Some(2));
        assert_eq!(csv("1,2\n").unwrap().first_data_line, Some(1));
    }

    #[test]
    fn csv_without_header_one_column_is_2d() {
        // One column: a blank line is NaN, at the end too (pandas writes NaN so); the
        // last newline only ends the last line.
        let t = csv("1\n2\n\n3\n\n  \n\r\n").unwrap();
        assert_eq!(t.header, None);
        assert_eq!(t.data.shape(), &[7, 1]);
        let nan = f64::NAN;
        assert!(same(&t.data, &arr2(&[[1.0], [2.0], [nan], [3.0], [nan], [nan], [nan]]).into_dyn()));
        let t = csv("a\n\n\n").unwrap();
        assert_eq!(t.header, Some(vec!["a".to_string()]));
        assert!(same(&t.data, &arr2(&[[nan], [nan]]).into_dyn()));
        // Several columns: blank lines at the end are not rows.
        let t = csv("1,2\n3,4\n\n\r\n").unwrap();
        assert_eq!(t.data.shape(), &[2, 2]);
        // A first row of numbers, NaN and empties is data, not a header.
        let t = csv("nan,,INF\n1,2,3\n").unwrap();
        assert_eq!(t.header, None);
        assert_eq!(t.data.shape(), &[2, 3]);
        // One non-number in the first row makes it a header.
        let t = csv("1,x\n1,2").unwrap();
        assert_eq!(t.header, Some(vec!["1".to_string(), "x".into()]));
        assert_eq!(t.data.shape(), &[1, 2]);
        // A byte-order mark is ignored.
        let t = csv("\u{feff}name\n5\n").unwrap();
        assert_eq!(t.header, Some(vec!["name".to_string()]));
    }

    #[test]
    fn csv_ragged_row_names_line_and_row() {
        let (line, msg, shown) = csv_err("a,b,c\n1,2,3\n4,5,6\n7,8\n");
        assert_eq!(line, Some(4));
        assert!(msg.contains("row 2 has 2 fields, expected 3"), "{msg}");
        assert!(shown.starts_with("in.csv:4: "), "{shown}");
        let (line, msg, _) = csv_err("1,2\n3,4,5\n");
        assert_eq!(line, Some(2));
        assert!(msg.contains("row 1 has 3 fields, expected 2"), "{msg}");
        let (line, msg, _) = csv_err("1,2\n\n3,4\n");
        assert_eq!(line, Some(2));
        assert!(msg.contains("row 1 has 1 field, expected 2") && msg.contains("blank"), "{msg}");
    }

    #[test]
    fn csv_bad_field_names_row_column_and_text() {
        let (line, msg, shown) = csv_err("x,y,z\r\n1,2,3\r\n4,5,abc\r\n");
        assert_eq!(line, Some(3));
        assert!(msg.contains("row 1, column 2"), "{msg}");
        assert!(msg.contains("'abc'"), "{msg}");
        assert!(shown.starts_with("in.csv:3: "), "{shown}");
        let (line, msg, _) = csv_err("1,2\n3,4\n1.2.3,4\n");
        assert_eq!(line, Some(3));
        assert!(msg.contains("row 2, column 0") && msg.contains("1.2.3"), "{msg}");
        let (line, msg, _) = csv_err("1,\"2\n");
        assert_eq!(line, Some(1));
        assert!(msg.contains("unterminated"), "{msg}");
    }

    #[test]
    fn csv_no_data_rows() {
        for text in ["", "\n\n", "a,b\n", "a,b", "\"a\",b\r\n\r\n"] {
            let (_, msg, _) = csv_err(text);
            assert!(msg.contains("no data rows"), "{text:?}: {msg}");
        }
    }

    #[test]
    fn csv_round_trip_and_format() {
        let dir = TmpDir::new("csv-rt");
        let path = dir.file("out.csv");
        let header = vec!["plain".to_string(), "with, comma".into(), "with \"quote\"".into()];
        let a = arr2(&[[0.1f32, f32::NAN, f32::INFINITY], [1.0, -2.5e-8, f32::NEG_INFINITY]]);
        write_array(&path, a.view().into_dyn(), Some(&header)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "plain,\"with, comma\",\"with \"\"quote\"\"\"\n0.1,nan,inf\n1,-0.000000025,-inf\n");
        let t = read_array(&path).unwrap();
        assert_eq!(t.header.as_deref(), Some(header.as_slice()));
        assert!(same(&t.data.mapv(|v| v as f32 as f64), &a.mapv(|v| v as f64).into_dyn()));
        assert!(dir.leftovers().is_empty());

        // 1-D: one column, no header.
        let b = csv_bytes(arr1(&[1.5f32, f32::NAN, 3.0]).into_dyn().view(), None).unwrap();
        assert_eq!(String::from_utf8(b).unwrap(), "1.5\nnan\n3\n");
        // Upper-case extension is CSV too.
        let p2 = dir.file("OUT.CSV");
        write_array(&p2, arr1(&[2.0f32]).into_dyn().view(), None).unwrap();
        assert_eq!(std::fs::read_to_string(&p2).unwrap(), "2\n");
    }

    #[test]
    fn csv_bytes_writes_nan_as_nan() {
        let b = csv_bytes(arr2(&[[f32::NAN, -f32::NAN]]).into_dyn().view(), None).unwrap();
        assert_eq!(String::from_utf8(b).unwrap(), "nan,nan\n");
    }

    #[test]
    fn csv_bytes_shape_errors() {
        let a = ArrayD::<f32>::zeros(IxDyn(&[2, 2, 2]));
        assert!(matches!(csv_bytes(a.view(), None), Err(Error::Shape(m)) if m.contains("3-D")));
        let a = ArrayD::<f32>::zeros(IxDyn(&[2, 2]));
        let h = vec!["only one".to_string()];
        assert!(matches!(csv_bytes(a.view(), Some(&h)), Err(Error::Shape(_))));
        let dir = TmpDir::new("csv-shape");
        let p = dir.file("x.csv");
        let e = write_array(&p, ArrayD::<f32>::zeros(IxDyn(&[1, 1, 1])).view(), None).unwrap_err();
        assert!(matches!(&e, Error::Shape(m) if m.contains("x.csv")), "{e}");
        assert!(!p.exists());
        assert!(dir.leftovers().is_empty());
    }

    // ---------------------------------------------------------------- dispatch

    #[test]
    fn read_array_dispatch_and_errors() {
        let dir = TmpDir::new("dispatch");
        let p = dir.file("data.NPY");
        write_array(&p, arr1(&[1.0f32, 2.0]).into_dyn().view(), None).unwrap();
        assert_eq!(read_array(&p).unwrap().data, arr1(&[1.0, 2.0]).into_dyn());

        let txt = dir.file("data.txt");
        std::fs::write(&txt, "1,2\n").unwrap();
        let e = read_array(&txt).unwrap_err();
        assert!(matches!(e, Error::Parse { .. }));
        let m = e.to_string();
        assert!(m.contains(".txt") && m.contains(".npy") && m.contains(".csv"), "{m}");
        assert!(matches!(read_array(&dir.file("noext")), Err(Error::Parse { .. })));

        let missing = dir.file("missing.csv");
        match read_array(&missing) {
            Err(Error::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("expected an I/O error, got {other:?}"),
        }

        // Any other name is written as .npy.
        let other = dir.file("out.bin");
        write_array(&other, arr1(&[3.0f32]).into_dyn().view(), Some(&["h".to_string()])).unwrap();
        assert_eq!(parse_npy(&std::fs::read(&other).unwrap(), &other).unwrap(), arr1(&[3.0]).into_dyn());
    }

    // ---------------------------------------------------------------- atomic

    #[test]
    fn write_atomic_replaces_and_leaves_nothing() {
        let dir = TmpDir::new("atomic");
        let p = dir.file("t.npy");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        assert!(dir.leftovers().is_empty());
    }

    #[test]
    fn write_atomic_missing_directory_fails_cleanly() {
        let dir = TmpDir::new("atomic-missing");
        let p = dir.file("no/such/dir/t.npy");
        let e = write_atomic(&p, b"x").unwrap_err();
        match &e {
            Error::Io { path, source } => {
                assert_eq!(path, &p);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert!(e.to_string().contains("t.npy"), "{e}");
        assert!(!p.exists());
        assert!(dir.leftovers().is_empty());
        assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
    }

    #[test]
    fn write_atomic_over_a_directory_fails_and_leaves_it() {
        let dir = TmpDir::new("atomic-dir");
        let target = dir.file("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"keep").unwrap();
        assert!(write_atomic(&target, b"x").is_err());
        assert!(target.is_dir());
        assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"keep");
        assert!(dir.leftovers().is_empty());
    }

    #[test]
    fn write_atomic_all_is_all_or_none() {
        let dir = TmpDir::new("atomic-all");
        let good = dir.file("good.npy");
        let fresh = dir.file("fresh.npy");
        let bad = dir.file("missing/bad.npy");
        std::fs::write(&good, b"old").unwrap();
        let files = vec![
            (fresh.clone(), b"new fresh".to_vec()),
            (good.clone(), b"new good".to_vec()),
            (bad.clone(), b"never".to_vec()),
        ];
        let e = write_atomic_all(&files).unwrap_err();
        assert!(matches!(&e, Error::Io { path, .. } if *path == bad), "{e}");
        assert!(!fresh.exists(), "a good target was created");
        assert_eq!(std::fs::read(&good).unwrap(), b"old");
        assert!(dir.leftovers().is_empty(), "{:?}", dir.leftovers());

        // A target that is a directory also fails before anything is renamed.
        let sub = dir.file("sub");
        std::fs::create_dir(&sub).unwrap();
        let files = vec![(fresh.clone(), b"x".to_vec()), (sub.clone(), b"y".to_vec())];
        assert!(write_atomic_all(&files).is_err());
        assert!(!fresh.exists());
        assert!(sub.is_dir());
        assert!(dir.leftovers().is_empty());

        // All good: both written, nothing left over.
        let files = vec![(fresh.clone(), b"A".to_vec()), (good.clone(), b"B".to_vec())];
        write_atomic_all(&files).unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"A");
        assert_eq!(std::fs::read(&good).unwrap(), b"B");
        assert!(dir.leftovers().is_empty());
        write_atomic_all(&[]).unwrap();
    }
}
