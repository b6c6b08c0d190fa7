//! Validates every WGSL module at build time with naga, so that a shader error is a
//! build error with `file.wgsl:line:column`, not a runtime panic.
//!
//! Each module is assembled from `shaders/common.wgsl` and its files (and, for the
//! sorting networks, its generated part) exactly as `src/gpu/shaders.rs` assembles it
//! at run time; error positions are mapped back to the part they came from.

use std::path::{Path, PathBuf};

include!("build/wgsl_check.rs");
include!("build/shader_modules.rs");
include!("build/sorting_network.rs");

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-changed=build");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("shaders/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    // A file no module uses would never be checked (nor run).
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name != "common.wgsl" && !SHADER_MODULES.iter().any(|(_, fs)| fs.contains(&name)) {
            failures.push(format!("{}: in no module of build/shader_modules.rs", path.display()));
        }
    }
    for (module, module_files) in SHADER_MODULES {
        let texts: Vec<(PathBuf, String)> = std::iter::once(&"common.wgsl")
            .chain(module_files.iter())
            .map(|f| (dir.join(f), read(&dir.join(f))))
            .collect();
        let parts: Vec<Part> = texts.iter().map(|(p, t)| Part { origin: p.display().to_string(), text: t }).collect();
        // The network module once per size, each with its generated entry point.
        let sizes: &[usize] = if *module == NETWORK_MODULE { &NETWORK_SIZES } else { &[0] };
        for &n in sizes {
            let generated = if n > 0 { sorting_network(n) } else { String::new() };
            let mut parts: Vec<Part> = parts.iter().map(|p| Part { origin: p.origin.clone(), text: p.text }).collect();
            if n > 0 {
                parts.push(Part {
                    origin: format!("build/sorting_network.rs (generated, network_{n})"),
                    text: &generated,
                });
            }
            if let Err(msg) = validate(&parts) {
                failures.push(msg);
            }
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
