//! Comma-separated text files: reading numbers (with an optional header row of
//! names) and writing 1-D or 2-D `float32` data.
//!
//! Reading rules (the CLI spec's "Files" section):
//! - fields are separated by `,`; a field may be double-quoted (`""` inside the
//!   quotes is one `"`), so a quoted name may contain commas; spaces and tabs
//!   around a field are ignored;
//! - the first row is a header when any of its fields is not a number (a number
//!   parses as `f64` after trimming, or is empty, or is `nan`/`inf`/`-inf`/
//!   `+inf`/`infinity` in any case);
//! - an empty field or `nan` (any case) is NaN; `inf`, `-inf` are infinities;
//! - lines end in `\n` or `\r\n`; the last newline is optional; with one column a
//!   blank line is a row whose one field is empty (NaN), wherever it is, as pandas
//!   writes NaN there (a file of blank lines only has no data); with more columns,
//!   blank lines at the end of the file are ignored (one in the middle is a row with
//!   one empty field: ragged);
//! - every row has the same number of fields, and there is at least one data row.
//!
//! The result is always 2-D `(rows, columns)`, even with one column.

use std::borrow::Cow;
use std::path::Path;

use ndarray::{Array2, ArrayViewD};

use crate::error::{Error, Result};

use super::npy::py_shape;
use super::Table;

/// Parses the bytes of a CSV file. `path` is only used in error messages.
///
/// Errors are [`Error::Parse`] with the 1-based file line (when a line is at
/// fault) and a message giving the 0-based data row (header excluded), column
/// and the offending text.
///
/// Each line is split and parsed in turn into the numbers, with no copy of its
/// fields (a quoted field aside): besides the file's bytes, memory holds a line
/// index and the values (an earlier version kept every field as a string until the
/// end: ~400 MB for a 40 MB file).
pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<Table> {
    let err = |line: Option<usize>, msg: String| Error::Parse { path: path.to_path_buf(), line, msg };

    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(err(Some(line), "the file is not valid UTF-8 text (is it really a CSV file?)".into()));
        }
    };
    // A byte-order mark, as some spreadsheet programs write, is not part of the data.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    let mut lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    // The last newline ends the last line; it does not start another.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.iter().all(|l| l.trim().is_empty()) {
        return Err(err(None, "no data rows: the file is empty".into()));
    }

    // The first line decides how many columns there are, and whether it is a header.
    let mut fields = Vec::new();
    split_line(lines[0], &mut fields).map_err(|m| err(Some(1), m))?;
    let cols = fields.len();
    let has_header = fields.iter().any(|f| parse_number(f).is_none());
    let header: Option<Vec<String>> = has_header.then(|| fields.iter().map(|f| f.to_string()).collect());

    // With several columns, blank lines at the end are not rows; with one, they are
    // NaN.
    let mut end = lines.len();
    if cols > 1 {
        while end > 0 && lines[end - 1].trim().is_empty() {
            end -= 1;
        }
    }
    let first = usize::from(has_header);
    if end <= first {
        return Err(err(None, "no data rows: the file has only a header line".into()));
    }

    let expected_from = if has_header { " (as in the header)" } else { " (as in row 0)" };
    let mut data = Vec::with_capacity((end - first) * cols);
    for (row, i) in (first..end).enumerate() {
        let line = i + 1;
        split_line(lines[i], &mut fields).map_err(|m| err(Some(line), m))?;
        if fields.len() != cols {
            let blank = if lines[i].trim().is_empty() { "; the line is blank" } else { "" };
            return Err(err(
                Some(line),
                format!(
                    "row {row} has {} field{}, expected {cols}{expected_from}{blank}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" },
                ),
            ));
        }
        for (col, field) in fields.iter().enumerate() {
            match parse_number(field) {
                Some(v) => data.push(v),
                None => {
                    let name = match &header {
                        Some(h) => format!(" ('{}')", h[col]),
                        None => String::new(),
                    };
                    return Err(err(Some(line), format!("row {row}, column {col}{name}: '{field}' is not a number")));
                }
            }
        }
    }
    let array = Array2::from_shape_vec((end - first, cols), data).expect("rows * cols values").into_dyn();
    Ok(Table { data: array, first_data_line: Some(first + 1), header, float32: false })
}

/// Splits one line (without its line ending) into `fields` (cleared first) at the
/// commas outside double quotes: each field's text with surrounding spaces and
/// quotes removed, borrowed from the line unless it was quoted.
///
/// A field is quoted when its first non-blank character is `"`; it then runs to
/// the matching closing quote, `""` inside standing for one `"`, and may contain
/// commas. Anywhere else a `"` is an ordinary character. Spaces and tabs around
/// a field are dropped (inside quotes they are kept).
fn split_line<'a>(line: &'a str, fields: &mut Vec<Cow<'a, str>>) -> std::result::Result<(), String> {
    fields.clear();
    let mut rest = line;
    loop {
        let start = rest.trim_start_matches([' ', '\t']);
        // The field's text, and what follows its comma (None: the line ends).
        let (text, next) = match start.strip_prefix('"') {
            Some(quoted) => {
                let mut text = String::new();
                let mut chars = quoted.char_indices().peekable();
                let after = loop {
                    match chars.next() {
                        None => {
                            return Err(format!(
                                "unterminated double quote in column {} (a quoted field must end on the same line)",
                                fields.len()
                            ))
                        }
                        Some((_, '"')) if chars.peek().is_some_and(|&(_, c)| c == '"') => {
                            chars.next();
                            text.push('"');
                        }
                        Some((i, '"')) => break i + 1,
                        Some((_, c)) => text.push(c),
                    }
                };
                // Text between the closing quote and the comma is kept as written.
                let (kept, next) = split_at_comma(&quoted[after..]);
                text.push_str(kept.trim_end_matches([' ', '\t']));
                (Cow::Owned(text), next)
            }
            None => {
                let (field, next) = split_at_comma(start);
                (Cow::Borrowed(field.trim_end_matches([' ', '\t'])), next)
            }
        };
        fields.push(text);
        match next {
            Some(n) => rest = n,
            None => return Ok(()),
        }
    }
}

/// `s` up to its first comma, and what follows that comma (None: no comma).
fn split_at_comma(s: &str) -> (&str, Option<&str>) {
    match s.find(',') {
        Some(k) => (&s[..k], Some(&s[k + 1..])),
        None => (s, None),
    }
}

/// A field's value: empty or `nan` (any case) is NaN, `inf`/`-inf`/`+inf`/
/// `infinity` (any case) are infinities, else whatever `f64` parses.
fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim_matches([' ', '\t']);
    if t.is_empty() {
        return Some(f64::NAN);
    }
    // Rust's `f64` parser accepts decimal and exponent forms, `inf`, `infinity`
    // and `nan` (case-insensitive, optionally signed) and nothing else.
    t.parse::<f64>().ok()
}

/// Serializes 1-D (one column) or 2-D (rows) data as CSV: an optional header line,
/// then one line per row, `\n` line endings (the last line too).
///
/// Values are written with Rust's shortest round-trip form of `f32` (`0.1`, `3`,
/// `-0.25`), NaN as `nan`, infinities as `inf` / `-inf`. A header name is quoted
/// only if it holds a comma or a double quote.
///
/// Errors: [`Error::Shape`] for data of rank 0 or above 2, or a header whose
/// length is not the number of columns.
pub fn csv_bytes(data: ArrayViewD<f32>, header: Option<&[String]>) -> Result<Vec<u8>> {
    let (rows, cols) = match data.shape() {
        [n] => (*n, 1),
        [r, c] => (*r, *c),
        shape => {
            return Err(Error::Shape(format!(
                "cannot write a {}-D array of shape {} as CSV: CSV holds 1-D or 2-D data (write .npy instead)",
                shape.len(),
                py_shape(shape)
            )))
        }
    };
    let mut out = String::new();
    if let Some(names) = header {
        if names.len() != cols {
            return Err(Error::Shape(format!(
                "the CSV header has {} name{} but the data has {cols} column{} (shape {})",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                if cols == 1 { "" } else { "s" },
                py_shape(data.shape())
            )));
        }
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if name.contains([',', '"']) {
                out.push('"');
                out.push_str(&name.replace('"', "\"\""));
                out.push('"');
            } else {
                out.push_str(name);
            }
        }
        out.push('\n');
    }
    // `iter` walks the logical C order, so consecutive `cols` values form a row.
    let mut col = 0;
    for &v in data.iter() {
        if col > 0 {
            out.push(',');
        }
        push_f32(&mut out, v);
        col += 1;
        if col == cols {
            out.push('\n');
            col = 0;
        }
    }
    debug_assert!(rows * cols == data.len());
    Ok(out.into_bytes())
}

fn push_f32(out: &mut String, v: f32) {
    use std::fmt::Write;
    if v.is_nan() {
        out.push_str("nan");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else {
        write!(out, "{v}").expect("writing to a String");
    }
}
