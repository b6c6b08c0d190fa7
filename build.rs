//! Validates every WGSL shader at build time with naga, so that a shader error is a
//! build error with `file.wgsl:line:column`, not a runtime panic.
//!
//! Each kernel file is compiled after `shaders/common.wgsl` (the shared structs and
//! helpers), exactly as `src/gpu/shaders.rs` assembles it at run time; error
//! positions are mapped back to the file they came from.

use std::path::PathBuf;

include!("build/wgsl_check.rs");

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-changed=build/wgsl_check.rs");
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

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
