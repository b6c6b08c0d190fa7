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
    for (module, _) in SHADER_MODULES {
        let texts: Vec<(PathBuf, String)> =
            module_files(module).into_iter().map(|f| (dir.join(f), read(&dir.join(f)))).collect();
        for &n in module_builds(module) {
            let generated = generated_part(module, n);
            let mut parts: Vec<Part> =
                texts.iter().map(|(p, t)| Part { origin: p.display().to_string(), text: t }).collect();
            if let Some(text) = &generated {
                parts.push(Part { origin: format!("build/sorting_network.rs (generated, network_{n})"), text });
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

/// The builds of `module`: one per network size for the network module (each a module
/// of its own: naga parses and validates a module whole when it is created, ~60 ms for
/// all four sizes at once), one (size 0, unused) for the others.
fn module_builds(module: &str) -> &'static [usize] {
    if module == NETWORK_MODULE {
        &NETWORK_SIZES
    } else {
        &[0]
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
