//! NumPy `.npy` files: reading (format versions 1.0, 2.0 and 3.0; `float32`,
//! `float64`, `int32`, `int64` in either byte order; C or Fortran order) and
//! writing (`float32`, little-endian, C order, version 1.0 header laid out
//! byte for byte as `numpy.save` writes it).

use std::io::Write;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};

use crate::error::{Error, Result};

/// The first six bytes of every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Headers (with the preamble) are padded so that the data starts at a multiple
/// of this, as numpy does.
const ALIGN: usize = 64;

/// numpy leaves this many digits of room for the growth axis in the header.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Nesting limit of the header literal (a real header nests at most 2 deep).
const MAX_DEPTH: usize = 16;

const SUPPORTED: &str = "supported dtypes are float32, float64, int32 and int64 in either byte order \
     ('<f4', '>f4', '<f8', '>f8', '<i4', '>i4', '<i8', '>i8')";

/// An element type this reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    F4,
    F8,
    I4,
    I8,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::F4 | Kind::I4 => 4,
            Kind::F8 | Kind::I8 => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::F4 => "float32",
            Kind::F8 => "float64",
            Kind::I4 => "int32",
            Kind::I8 => "int64",
        }
    }
}

/// Serializes `data` as a `.npy` file: `float32` little-endian (`'<f4'`), C order,
/// exactly `data`'s shape (a 0-d view gives a 0-d file).
///
/// The header is the one `numpy.save` writes (format version 1.0, or 2.0 if the
/// header would not fit in 64 KiB): the dict literal, numpy's spare room for the
/// growth axis, then spaces so that the data starts at a multiple of 64 bytes,
/// the last header byte being `\n`.
pub fn npy_bytes(data: ArrayViewD<f32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + data.len() * 4);
    write_npy(&mut out, data).expect("writing to a Vec");
    out
}

/// [`npy_bytes`] written to `w`: the header, then the values, straight from the view's
/// memory where it is in C order (no copy), else a block at a time.
pub fn write_npy(w: &mut dyn Write, data: ArrayViewD<f32>) -> std::io::Result<()> {
    w.write_all(&npy_header(data.shape()))?;
    match data.as_slice() {
        Some(values) if cfg!(target_endian = "little") => w.write_all(bytemuck::cast_slice(values)),
        _ => {
            // `iter` walks the logical C order whatever the view's memory layout.
            let mut block = Vec::with_capacity(1 << 16);
            for v in data.iter() {
                block.extend_from_slice(&v.to_le_bytes());
                if block.len() >= 1 << 16 {
                    w.write_all(&block)?;
                    block.clear();
                }
            }
            w.write_all(&block)
        }
    }
}

/// The header of a `.npy` file of float32 values of `shape` (see [`npy_bytes`]).
fn npy_header(shape: &[usize]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}", py_shape(shape));
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // numpy: padlen = ALIGN - ((len(magic) + len(length field) + hlen) % ALIGN),
    // hlen counting the final '\n'; an already aligned header still gets ALIGN spaces.
    let hlen = dict.len() + 1;
    let pad_for = |prefix: usize| ALIGN - (prefix + hlen) % ALIGN;
    let mut out = Vec::with_capacity(12 + hlen + ALIGN);
    out.extend_from_slice(MAGIC);
    let pad1 = pad_for(MAGIC.len() + 2 + 2);
    if let Ok(len) = u16::try_from(hlen + pad1) {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out.resize(out.len() + pad1, b' ');
    } else {
        let pad2 = pad_for(MAGIC.len() + 2 + 4);
        let len = u32::try_from(hlen + pad2).expect(".npy header longer than 4 GiB");
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out.resize(out.len() + pad2, b' ');
    }
    out.push(b'\n');
    debug_assert_eq!(out.len() % ALIGN, 0);
    out
}

/// Parses the bytes of a `.npy` file into a C-order `f64` array of the file's
/// shape (a Fortran-order file is reordered; integers convert exactly, except
/// `int64` values beyond ±2^53, which round to the nearest `f64`).
///
/// `path` is only used in error messages. Errors: [`Error::Parse`] for anything
/// that is not a well-formed `.npy` file of a supported dtype (the message names
/// the problem: the magic, the version, the header, the dtype, or how many data
/// bytes were expected and found); [`Error::Shape`] for a 0-d array.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<ArrayD<f64>> {
    parse_npy_typed(bytes, path).map(|(array, _)| array)
}

/// [`parse_npy`], plus whether the file's dtype was float32 (scikit-learn keeps float32
/// data in float32 and converts every other dtype to float64).
pub fn parse_npy_typed(bytes: &[u8], path: &Path) -> Result<(ArrayD<f64>, bool)> {
    let l = layout(bytes, path)?;
    let data = &bytes[l.data_start..];
    let big_endian = l.big_endian;
    let values: Vec<f64> = match l.kind {
        Kind::F4 => decode::<4, f64>(data, |b| f32_from(b, big_endian) as f64),
        Kind::F8 => decode::<8, f64>(data, |b| if big_endian { f64::from_be_bytes(b) } else { f64::from_le_bytes(b) }),
        Kind::I4 => {
            decode::<4, f64>(data, |b| (if big_endian { i32::from_be_bytes(b) } else { i32::from_le_bytes(b) }) as f64)
        }
        Kind::I8 => {
            decode::<8, f64>(data, |b| (if big_endian { i64::from_be_bytes(b) } else { i64::from_le_bytes(b) }) as f64)
        }
    };
    Ok((l.array(values, path)?, matches!(l.kind, Kind::F4)))
}

/// A float32 `.npy` as float32, with no float64 copy on the way (half the memory, and
/// nothing to round); `None` for any other dtype. Errors as [`parse_npy`].
pub fn parse_npy_f32(bytes: &[u8], path: &Path) -> Result<Option<ArrayD<f32>>> {
    let l = layout(bytes, path)?;
    if !matches!(l.kind, Kind::F4) {
        return Ok(None);
    }
    let big_endian = l.big_endian;
    let data = &bytes[l.data_start..];
    let values = decode::<4, f32>(data, |b| f32_from(b, big_endian));
    l.array(values, path).map(Some)
}

/// Where a `.npy` file's data lie and how: dtype, byte order, shape and order, all
/// checked against the file's length.
struct Layout {
    kind: Kind,
    big_endian: bool,
    shape: Vec<usize>,
    fortran_order: bool,
    data_start: usize,
}

impl Layout {
    /// The decoded values (in the file's order) as a C-order array of its shape.
    fn array<T: Clone>(&self, values: Vec<T>, path: &Path) -> Result<ArrayD<T>> {
        let err = |e: ndarray::ShapeError| Error::Parse {
            path: path.to_path_buf(),
            line: None,
            msg: format!("internal error building the array: {e}"),
        };
        let dim = IxDyn(&self.shape);
        Ok(if self.fortran_order {
            // The file holds the array in column-major order: view it so, then copy
            // into row-major (logical order is unchanged).
            ArrayD::from_shape_vec(dim.f(), values).map_err(err)?.as_standard_layout().into_owned()
        } else {
            ArrayD::from_shape_vec(dim, values).map_err(err)?
        })
    }
}

/// Parse and check the header of a `.npy` file.
fn layout(bytes: &[u8], path: &Path) -> Result<Layout> {
    let err = |msg: String| Error::Parse { path: path.to_path_buf(), line: None, msg };

    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(err("not a .npy file: it does not start with the .npy magic string \\x93NUMPY".into()));
    }
    if bytes.len() < 8 {
        return Err(err(format!("truncated .npy file: {} bytes, too short for the format version", bytes.len())));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let len_size = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(err(format!("unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"))),
    };
    let start = 8 + len_size;
    if bytes.len() < start {
        return Err(err(format!(
            "truncated .npy file: {} bytes, too short for the header length of a version {major}.0 file",
            bytes.len()
        )));
    }
    let hlen = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let data_start = start + hlen;
    if bytes.len() < data_start {
        return Err(err(format!("truncated .npy header: expected {hlen} header bytes, found {}", bytes.len() - start)));
    }
    let text = std::str::from_utf8(&bytes[start..data_start])
        .map_err(|_| err("malformed .npy header: it is not ASCII/UTF-8 text".into()))?;
    let header =
        parse_header(text).map_err(|m| err(format!("malformed .npy header: {m} (header: {})", text.trim_end())))?;

    let (kind, big_endian) = dtype(&header.descr).map_err(err)?;
    if header.shape.is_empty() {
        return Err(Error::Shape(format!(
            "{}: 0-d array (shape ()): expected an array with at least one dimension",
            path.display()
        )));
    }
    let count =
        header.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).and_then(|n| n.checked_mul(kind.size()));
    let Some(nbytes) = count else {
        return Err(err(format!("shape {} is too large", py_shape(&header.shape))));
    };
    let data = &bytes[data_start..];
    if data.len() != nbytes {
        let what =
            if data.len() < nbytes { "truncated .npy data" } else { "the .npy data is longer than its header says" };
        return Err(err(format!(
            "{what}: expected {nbytes} bytes of data for shape {} of {} ('{}'), found {}",
            py_shape(&header.shape),
            kind.name(),
            header.descr_text(),
            data.len()
        )));
    }
    Ok(Layout { kind, big_endian, fortran_order: header.fortran_order, shape: header.shape, data_start })
}

/// A float32 from its bytes in the file's byte order.
fn f32_from(b: [u8; 4], big_endian: bool) -> f32 {
    if big_endian {
        f32::from_be_bytes(b)
    } else {
        f32::from_le_bytes(b)
    }
}

fn decode<const N: usize, T>(data: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N).map(|c| f(c.try_into().expect("chunk of N bytes"))).collect()
}

/// Python's `repr` of a shape tuple: `()`, `(3,)`, `(2, 3)`.
pub(crate) fn py_shape(shape: &[usize]) -> String {
    match shape {
        [] => "()".into(),
        [n] => format!("({n},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// The three keys of a `.npy` header.
struct Header {
    descr: Py,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    fn descr_text(&self) -> String {
        match &self.descr {
            Py::Str(s) => s.clone(),
            other => other.repr(),
        }
    }
}

/// Checks the `descr` of a header against the supported dtypes.
fn dtype(descr: &Py) -> std::result::Result<(Kind, bool), String> {
    let Py::Str(s) = descr else {
        return Err(format!("unsupported dtype {} (a structured dtype): {SUPPORTED}", descr.repr()));
    };
    let (order, code) = match s.as_bytes().first() {
        Some(b'<' | b'>' | b'|' | b'=') => s.split_at(1),
        _ => ("", s.as_str()),
    };
    let kind = match code {
        "f4" => Some(Kind::F4),
        "f8" => Some(Kind::F8),
        "i4" => Some(Kind::I4),
        "i8" => Some(Kind::I8),
        _ => None,
    };
    match (kind, order) {
        (Some(k), "<") => Ok((k, false)),
        (Some(k), ">") => Ok((k, true)),
        (Some(k), _) => {
            Err(format!("unsupported dtype '{s}' ({} without an explicit byte order): {SUPPORTED}", k.name()))
        }
        (None, _) => Err(format!("unsupported dtype '{s}' ({}): {SUPPORTED}", describe_dtype(code))),
    }
}

/// A person's name for a numpy type code such as `f2`, `b1`, `U3`.
fn describe_dtype(code: &str) -> String {
    let mut chars = code.chars();
    let kind = chars.next();
    let size: Option<usize> = chars.as_str().parse().ok();
    let bits = |prefix: &str| match size {
        Some(n) => format!("{prefix}{}", n * 8),
        None => prefix.to_string(),
    };
    match kind {
        Some('f') => bits("float"),
        Some('i') => bits("int"),
        Some('u') => bits("uint"),
        Some('c') => bits("complex"),
        Some('b') if size == Some(1) => "bool".into(),
        Some('?') => "bool".into(),
        Some('U') => "unicode string".into(),
        Some('S' | 'a') => "byte string".into(),
        Some('O') => "Python object".into(),
        Some('V') => "raw bytes / structured".into(),
        Some('M') => "datetime64".into(),
        Some('m') => "timedelta64".into(),
        _ => "unknown type".into(),
    }
}

/// Parses the header text, a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` followed by
/// spaces and `\n`.
fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let mut p = Lit { s: text.as_bytes(), i: 0 };
    p.ws();
    let value = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text after the header dict at byte {}", p.i));
    }
    let Py::Dict(entries) = value else {
        return Err("the header is not a dict".into());
    };
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| matches!(k, Py::Str(s) if s == key))
            .map(|(_, v)| v)
            .ok_or_else(|| format!("the header has no '{key}' key"))
    };
    let descr = get("descr")?.clone();
    let fortran_order = match get("fortran_order")? {
        Py::Bool(b) => *b,
        other => return Err(format!("'fortran_order' is {}, not True or False", other.repr())),
    };
    let shape = match get("shape")? {
        Py::Seq(items) => items
            .iter()
            .map(|v| match v {
                Py::Int(n) => usize::try_from(*n).map_err(|_| format!("shape dimension {n} is not a valid size")),
                other => Err(format!("shape dimension {} is not an integer", other.repr())),
            })
            .collect::<std::result::Result<Vec<usize>, String>>()?,
        Py::Int(n) => {
            vec![usize::try_from(*n).map_err(|_| format!("shape {n} is not a valid size"))?]
        }
        other => return Err(format!("'shape' is {}, not a tuple of integers", other.repr())),
    };
    Ok(Header { descr, fortran_order, shape })
}

/// A Python literal value, as far as `.npy` headers use them.
#[derive(Clone, Debug, PartialEq)]
enum Py {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Seq(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

impl Py {
    fn repr(&self) -> String {
        match self {
            Py::Str(s) => format!("'{s}'"),
            Py::Int(n) => n.to_string(),
            Py::Bool(true) => "True".into(),
            Py::Bool(false) => "False".into(),
            Py::None => "None".into(),
            Py::Seq(items) => {
                let parts: Vec<String> = items.iter().map(Py::repr).collect();
                format!("({})", parts.join(", "))
            }
            Py::Dict(entries) => {
                let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{}: {}", k.repr(), v.repr())).collect();
                format!("{{{}}}", parts.join(", "))
            }
        }
    }
}

/// A small recursive-descent parser of Python literals.
struct Lit<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lit<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> std::result::Result<Py, String> {
        if depth > MAX_DEPTH {
            return Err("the header nests too deep".into());
        }
        self.ws();
        match self.peek() {
            None => Err("the header ends where a value was expected".into()),
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    self.ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Py::Dict(entries));
                    }
                    let key = self.value(depth + 1)?;
                    self.ws();
                    if self.peek() != Some(b':') {
                        return Err(format!("expected ':' after the key {} at byte {}", key.repr(), self.i));
                    }
                    self.i += 1;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.peek() == Some(close) {
                        self.i += 1;
                        return Ok(Py::Seq(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(c) if c == close => {}
                        _ => return Err(format!("expected ',' or '{}' at byte {}", close as char, self.i)),
                    }
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.peek() {
                        None => return Err("unterminated string in the header".into()),
                        Some(c) if c == q => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            self.i += 1;
                            match self.peek() {
                                None => return Err("unterminated string in the header".into()),
                                Some(c) => {
                                    out.push(c);
                                    self.i += 1;
                                }
                            }
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                String::from_utf8(out).map(Py::Str).map_err(|_| "a string in the header is not valid UTF-8".into())
            }
            Some(b'-' | b'+' | b'0'..=b'9') => {
                let begin = self.i;
                self.i += 1;
                while matches!(self.peek(), Some(b'0'..=b'9' | b'_')) {
                    self.i += 1;
                }
                let digits: String =
                    std::str::from_utf8(&self.s[begin..self.i]).expect("ASCII digits").replace('_', "");
                // Python 2 wrote long integers with an `L` suffix.
                if matches!(self.peek(), Some(b'L' | b'l')) {
                    self.i += 1;
                }
                digits.parse::<i128>().map(Py::Int).map_err(|_| format!("'{digits}' is not an integer"))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let begin = self.i;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
                    self.i += 1;
                }
                match &self.s[begin..self.i] {
                    b"True" => Ok(Py::Bool(true)),
                    b"False" => Ok(Py::Bool(false)),
                    b"None" => Ok(Py::None),
                    word => Err(format!("unexpected name '{}' in the header", String::from_utf8_lossy(word))),
                }
            }
            Some(c) => Err(format!("unexpected character '{}' at byte {}", c.escape_ascii(), self.i)),
        }
    }
}
