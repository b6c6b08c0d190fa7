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

    // Split every line first (quote-aware), remembering its 1-based line number.
    let mut rows: Vec<(usize, Vec<Field>)> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let fields = split_line(line).map_err(|m| err(Some(i + 1), m))?;
        rows.push((i + 1, fields));
    }

    // With several columns, blank lines at the end are not rows; with one, they are
    // NaN (the first line decides how many columns there are).
    if rows[0].1.len() > 1 {
        while rows.last().is_some_and(|(line, _)| lines[line - 1].trim().is_empty()) {
            rows.pop();
        }
    }

    let has_header = rows[0].1.iter().any(|f| parse_number(&f.text).is_none());
    let (header, data_rows) = if has_header {
        let names: Vec<String> = rows[0].1.iter().map(|f| f.text.clone()).collect();
        (Some(names), &rows[1..])
    } else {
        (None, &rows[..])
    };
    if data_rows.is_empty() {
        return Err(err(None, "no data rows: the file has only a header line".into()));
    }

    let cols = rows[0].1.len();
    let expected_from = if has_header { " (as in the header)" } else { " (as in row 0)" };
    let mut data = Vec::with_capacity(data_rows.len() * cols);
    for (row, (line, fields)) in data_rows.iter().enumerate() {
        if fields.len() != cols {
            let blank = if lines[line - 1].trim().is_empty() { "; the line is blank" } else { "" };
            return Err(err(
                Some(*line),
                format!(
                    "row {row} has {} field{}, expected {cols}{expected_from}{blank}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" },
                ),
            ));
        }
        for (col, field) in fields.iter().enumerate() {
            match parse_number(&field.text) {
                Some(v) => data.push(v),
                None => {
                    let name = match &header {
                        Some(h) => format!(" ('{}')", h[col]),
                        None => String::new(),
                    };
                    return Err(err(
                        Some(*line),
                        format!("row {row}, column {col}{name}: '{}' is not a number", field.text),
                    ));
                }
            }
        }
    }
    let array = Array2::from_shape_vec((data_rows.len(), cols), data).expect("rows * cols values").into_dyn();
    Ok(Table { data: array, first_data_line: Some(data_rows[0].0), header, float32: false })
}

/// One field of a line: its text with surrounding spaces and quotes removed.
struct Field {
    text: String,
}

/// Splits one line (without its line ending) into fields at the commas outside
/// double quotes.
///
/// A field is quoted when its first non-blank character is `"`; it then runs to
/// the matching closing quote, `""` inside standing for one `"`, and may contain
/// commas. Anywhere else a `"` is an ordinary character. Spaces and tabs around
/// a field are dropped (inside quotes they are kept).
fn split_line(line: &str) -> std::result::Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        // One field.
        while matches!(chars.peek(), Some(' ' | '\t')) {
            chars.next();
        }
        let mut text = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "unterminated double quote in column {} (a quoted field must end on the same line)",
                            fields.len()
                        ))
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        text.push('"');
                    }
                    Some('"') => break,
                    Some(c) => text.push(c),
                }
            }
            // Text between the closing quote and the comma is kept as written.
            let mut rest = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                rest.push(c);
                chars.next();
            }
            text.push_str(rest.trim_end_matches([' ', '\t']));
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                text.push(c);
                chars.next();
            }
            text.truncate(text.trim_end_matches([' ', '\t']).len());
        }
        fields.push(Field { text });
        match chars.next() {
            Some(',') => continue,
            None => return Ok(fields),
            Some(_) => unreachable!("a field ends at a comma or the end of the line"),
        }
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
