//! The CLI's error type and its exit codes.
//!
//! | exit | cause |
//! | --- | --- |
//! | 1 | GPU failure ([`gpunorm::Error::Gpu`]), not implemented yet, internal errors |
//! | 2 | usage errors and bad input (every other library error) |
//! | 3 | `--verify` found a result outside tolerance ([`gpunorm::Error::VerifyMismatch`]) |
//! | 4 | no GPU adapter ([`gpunorm::Error::NoAdapter`]) |
//!
//! Every error is printed on stderr as `gpunorm: error: MESSAGE`; usage errors
//! are followed by the subcommand's usage line and a pointer to `--help`.

use std::fmt;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the CLI.
#[derive(Debug)]
pub enum CliError {
    /// Bad command line (exit 2). `usage` is the subcommand's synopsis, shown
    /// after the message; `command` the subcommand's name (for the `--help` hint).
    Usage { msg: String, usage: Option<&'static str>, command: Option<&'static str> },
    /// An error from the library; `file` names the file it is about when the
    /// library's message does not already (e.g. a non-finite value's row and
    /// column in INPUT).
    Lib { source: gpunorm::Error, file: Option<PathBuf>, line: Option<usize> },
    /// Bad input found by the CLI itself (exit 2), e.g. a rank the subcommand
    /// does not take. The message should name the file and what is wrong.
    BadInput(String),
    /// Writing to stdout or another unexpected failure (exit 1).
    Internal(String),
}

impl CliError {
    /// A library error about the file `path` (shown as `PATH: message` unless the
    /// library's message already names a file).
    pub fn in_file(source: gpunorm::Error, path: &Path) -> Self {
        CliError::Lib { source, file: Some(path.to_path_buf()), line: None }
    }

    /// A library error about the CSV or `.npy` file `path` whose data row 0 is on file
    /// line `first_data_line` (CSV): an error about one value (its row and column) also
    /// gets that value's line, as `PATH:LINE: message`.
    pub fn in_data_file(source: gpunorm::Error, path: &Path, first_data_line: Option<usize>) -> Self {
        use gpunorm::Error as E;
        let row = match &source {
            E::NonFinite { row, .. } | E::Domain { row, .. } => Some(*row),
            _ => None,
        };
        let line = first_data_line.zip(row).map(|(first, row)| first + row);
        CliError::Lib { source, file: Some(path.to_path_buf()), line }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage { .. } | CliError::BadInput(_) => 2,
            CliError::Lib { source, .. } => lib_exit_code(source),
            CliError::Internal(_) => 1,
        }
    }

    /// What `main` prints on stderr.
    pub fn report(&self) -> String {
        let mut s = format!("gpunorm: error: {self}");
        if let CliError::Usage { usage, command, .. } = self {
            if let Some(u) = usage {
                s.push_str(&format!("\nusage: {u}"));
            }
            match command {
                Some(c) => s.push_str(&format!("\nTry 'gpunorm {c} --help' for more information.")),
                None => s.push_str("\nTry 'gpunorm --help' for more information."),
            }
        }
        s
    }
}

/// Exit code of a library error: VerifyMismatch → 3, NoAdapter → 4, Gpu → 1,
/// everything else (bad input) → 2.
pub fn lib_exit_code(e: &gpunorm::Error) -> i32 {
    use gpunorm::Error as E;
    match e {
        E::VerifyMismatch(_) => 3,
        E::NoAdapter { .. } => 4,
        E::Gpu(_) => 1,
        _ => 2,
    }
}

/// Whether the library's message for `e` already names a file.
fn names_a_file(e: &gpunorm::Error) -> bool {
    use gpunorm::Error as E;
    matches!(e, E::Parse { .. } | E::Io { .. } | E::NoAdapter { .. } | E::Gpu(_) | E::VerifyMismatch(_))
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage { msg, .. } => f.write_str(msg),
            CliError::Lib { source, file: Some(p), line: Some(l) } if !names_a_file(source) => {
                write!(f, "{}:{l}: {source}", p.display())
            }
            CliError::Lib { source, file: Some(p), .. } if !names_a_file(source) => {
                write!(f, "{}: {source}", p.display())
            }
            CliError::Lib { source, .. } => write!(f, "{source}"),
            CliError::BadInput(m) | CliError::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

impl From<gpunorm::Error> for CliError {
    fn from(source: gpunorm::Error) -> Self {
        CliError::Lib { source, file: None, line: None }
    }
}
