//! The build-time shader check: every shader validates, and a broken one is reported
//! at its own file and line (build.rs runs this same code and panics, failing the build).

use std::path::Path;

include!("../build/wgsl_check.rs");
include!("../build/shader_modules.rs");
include!("../build/sorting_network.rs");

fn shaders() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders")
}

/// Validate module `module` as build.rs assembles it, with file `file` replaced by
/// `text` (`common.wgsl` included).
fn check_with(module: &str, file: &str, text: &str) -> Result<(), String> {
    let texts: Vec<(String, String)> = module_files(module)
        .into_iter()
        .map(|f| {
            let t = if f == file { text.to_string() } else { std::fs::read_to_string(shaders().join(f)).unwrap() };
            (shaders().join(f).display().to_string(), t)
        })
        .collect();
    // The network module with its largest network's generated entry point.
    let generated = generated_part(module, NETWORK_SIZES[NETWORK_SIZES.len() - 1]);
    let mut parts: Vec<Part> = texts.iter().map(|(o, t)| Part { origin: o.clone(), text: t }).collect();
    if let Some(text) = &generated {
        parts.push(Part { origin: "build/sorting_network.rs (generated)".into(), text });
    }
    validate(&parts)
}

/// Module `kernel_name` with its own file's text replaced.
fn check(kernel_name: &str, kernel_source: &str) -> Result<(), String> {
    check_with(kernel_name, kernel_name, kernel_source)
}

#[test]
fn every_shader_validates() {
    for (module, _) in SHADER_MODULES {
        let src = std::fs::read_to_string(shaders().join(module)).unwrap();
        check(module, &src).unwrap_or_else(|e| panic!("{module}: {e}"));
    }
}

#[test]
fn every_shader_file_is_in_a_module() {
    for entry in std::fs::read_dir(shaders()).unwrap() {
        let name = entry.unwrap().file_name().to_str().unwrap().to_string();
        if name.ends_with(".wgsl") && name != "common.wgsl" {
            assert!(SHADER_MODULES.iter().any(|(_, fs)| fs.contains(&name.as_str())), "{name} is in no module");
        }
    }
}

#[test]
fn an_error_in_a_shared_file_names_that_file_and_its_own_line() {
    // order.wgsl comes between common.wgsl and select.wgsl: its lines count from 1.
    let src = std::fs::read_to_string(shaders().join("order.wgsl")).unwrap();
    let line = src.lines().position(|l| l.starts_with("fn value_of(")).unwrap() + 1;
    let broken = src.replace("fn value_of(k: u32) -> f32 {", "fn value_of(k: u32) -> f31 {");
    for module in ["select.wgsl", "network.wgsl"] {
        let err = check_with(module, "order.wgsl", &broken).expect_err("a broken shared file must fail");
        assert!(err.contains(&format!("order.wgsl:{line}:")), "expected order.wgsl:{line} in:\n{err}");
    }
}

#[test]
fn a_broken_shader_is_reported_at_its_file_and_line() {
    let src = std::fs::read_to_string(shaders().join("affine.wgsl")).unwrap();
    // Break the line that declares `transform`: a type that does not exist.
    let line = src.lines().position(|l| l.starts_with("fn transform(")).expect("fn transform") + 1;
    let broken = src.replace("fn transform(e: u32, v: f32) -> f32 {", "fn transform(e: u32, v: f33) -> f32 {");
    let err = check("affine.wgsl", &broken).expect_err("a broken shader must fail");
    let want = format!("affine.wgsl:{line}:");
    assert!(err.contains(&want), "expected the error to name {want}, got:\n{err}");

    // A validation (not parse) error: writing to a read-only binding.
    let broken = src.replace("y[i] = transform(ap.window_lo + i, x[i]);", "x[i] = transform(ap.window_lo + i, x[i]);");
    let line = src.lines().position(|l| l.contains("y[i] = transform(")).unwrap() + 1;
    let err = check("affine.wgsl", &broken).expect_err("writing a read-only buffer must fail");
    assert!(err.contains("affine.wgsl:"), "expected affine.wgsl in:\n{err}");
    let _ = line;
}

#[test]
fn an_error_in_the_common_prelude_names_common_wgsl() {
    let common_path = shaders().join("common.wgsl");
    let common =
        std::fs::read_to_string(&common_path).unwrap().replace("fn nan_f32() -> f32 {", "fn nan_f32() -> f3 {");
    let line = common.lines().position(|l| l.starts_with("fn nan_f32(")).unwrap() + 1;
    let err = check_with("affine.wgsl", "common.wgsl", &common).unwrap_err();
    assert!(err.contains(&format!("common.wgsl:{line}:")), "expected common.wgsl:{line} in:\n{err}");
}

#[test]
fn a_shader_that_validates_but_does_not_translate_to_spirv_is_reported() {
    // count_offset (select_bracket.wgsl, a file of the select module) once stepped its
    // member walk through a pointer to it;
    // the module validated, and naga's SPIR-V writer panicked when wgpu built the
    // pipeline. The check writes every entry point, so this is a build error now.
    let src = std::fs::read_to_string(shaders().join("select_bracket.wgsl")).unwrap();
    let good = "    var walk = (*w).walk;
    let o = walk_offset(walk);
    walk_next(&walk);
    (*w).walk = walk;
    return o;";
    assert!(src.contains(good), "count_offset changed: update this test");
    let broken = src.replace(good, "    let o = walk_offset((*w).walk);\n    walk_next(&(*w).walk);\n    return o;");
    let err = check_with("select.wgsl", "select_bracket.wgsl", &broken)
        .expect_err("the SPIR-V writer must refuse this module");
    // Reported at the entry point's declaration, in the file that holds it.
    let line = broken.lines().position(|l| l.starts_with("fn count_vec4(")).unwrap() + 1;
    assert!(
        err.contains(&format!("select_bracket.wgsl:{line}:")) && err.contains("SPIR-V"),
        "expected a SPIR-V error at select_bracket.wgsl:{line}:\n{err}"
    );
    assert!(err.contains("count_vec4"), "expected the entry point in:\n{err}");
}
