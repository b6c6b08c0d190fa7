//! Validates every WGSL shader at build time with naga, so that a shader error is a
//! build error with `file.wgsl:line:column`, not a runtime panic.
//!
//! Each kernel file is compiled after `shaders/common.wgsl` (the shared structs and
//! helpers), exactly as `src/gpu/shaders.rs` assembles it at run time; error
//! positions are mapped back to the file they came from.

use std::path::{Path, PathBuf};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    println!("cargo:rerun-if-changed=shaders");
    let common_path = dir.join("common.wgsl");
    let common = read(&common_path);
    let mut kernels: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("shaders/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl") && *p != common_path)
        .collect();
    kernels.sort();
    let mut failures = Vec::new();
    for path in &kernels {
        println!("cargo:rerun-if-changed={}", path.display());
        let source = format!("{common}\n{}", read(path));
        if let Err(msg) = validate(&source, &common_path, path, common.lines().count() + 1) {
            failures.push(msg);
        }
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("{f}");
        }
        // A panic (not a warning) so that `cargo build` stops here.
        panic!("{} WGSL shader(s) failed validation:\n{}", failures.len(), failures.join("\n"));
    }
}

/// naga's report quotes the assembled source, whose line numbers include the prelude.
fn combined_label(kernel: &Path) -> String {
    format!("common.wgsl + {} (assembled; lines counted from the start of common.wgsl)", kernel.display())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Parse and validate; on error return `file:line:col: message` plus naga's full report.
fn validate(source: &str, common: &Path, kernel: &Path, prelude_lines: usize) -> Result<(), String> {
    let locate = |loc: Option<naga::SourceLocation>| match loc {
        Some(l) if (l.line_number as usize) <= prelude_lines - 1 => {
            format!("{}:{}:{}", common.display(), l.line_number, l.line_position)
        }
        Some(l) => format!("{}:{}:{}", kernel.display(), l.line_number as usize - prelude_lines, l.line_position),
        None => kernel.display().to_string(),
    };
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        format!(
            "{}: {}\n{}",
            locate(e.location(source)),
            e.message(),
            e.emit_to_string_with_path(source, &combined_label(kernel))
        )
    })?;
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    validator.validate(&module).map_err(|e| {
        let loc = e.spans().next().map(|(span, _)| span.location(source));
        format!(
            "{}: {}\n{}",
            locate(loc),
            e.as_inner(),
            e.emit_to_string_with_path(source, &combined_label(kernel))
        )
    })?;
    Ok(())
}
