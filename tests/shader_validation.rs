//! The build-time shader check: every shader validates, and a broken one is reported
//! at its own file and line (build.rs runs this same code and panics, failing the build).

include!("../build/wgsl_check.rs");

fn shaders() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders")
}

fn check(kernel_name: &str, kernel_source: &str) -> Result<(), String> {
    let common_path = shaders().join("common.wgsl");
    let common = std::fs::read_to_string(&common_path).unwrap();
    let source = format!("{common}\n{kernel_source}");
    validate(&source, &common_path, &shaders().join(kernel_name), common.lines().count() + 1)
}

#[test]
fn every_shader_validates() {
    for entry in std::fs::read_dir(shaders()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".wgsl") && name != "common.wgsl" {
            let src = std::fs::read_to_string(&path).unwrap();
            check(&name, &src).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
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
    let kernel = std::fs::read_to_string(shaders().join("affine.wgsl")).unwrap();
    let source = format!("{common}\n{kernel}");
    let err = validate(&source, &common_path, &shaders().join("affine.wgsl"), common.lines().count() + 1).unwrap_err();
    assert!(err.contains(&format!("common.wgsl:{line}:")), "expected common.wgsl:{line} in:\n{err}");
}

#[test]
fn a_shader_that_validates_but_does_not_translate_to_spirv_is_reported() {
    // count_offset in select.wgsl once stepped its member walk through a pointer to it;
    // the module validated, and naga's SPIR-V writer panicked when wgpu built the
    // pipeline. The check writes every entry point, so this is a build error now.
    let src = std::fs::read_to_string(shaders().join("select.wgsl")).unwrap();
    let good = "    var walk = (*w).walk;
    let o = walk_offset(walk);
    walk_next(&walk);
    (*w).walk = walk;
    return o;";
    assert!(src.contains(good), "count_offset changed: update this test");
    let broken = src.replace(good, "    let o = walk_offset((*w).walk);\n    walk_next(&(*w).walk);\n    return o;");
    let err = check("select.wgsl", &broken).expect_err("the SPIR-V writer must refuse this module");
    assert!(
        err.contains("select.wgsl") && err.contains("SPIR-V"),
        "expected a SPIR-V error naming select.wgsl:\n{err}"
    );
    assert!(err.contains("count_vec4"), "expected the entry point in:\n{err}");
}
