// Shader validation shared by build.rs and tests/shader_validation.rs (included, not a module).

use std::path::Path;

/// naga's report quotes the assembled source, whose line numbers include the prelude.
fn combined_label(kernel: &Path) -> String {
    format!("common.wgsl + {} (assembled; lines counted from the start of common.wgsl)", kernel.display())
}

/// Parse and validate; on error return `file:line:col: message` plus naga's full report.
fn validate(source: &str, common: &Path, kernel: &Path, prelude_lines: usize) -> Result<(), String> {
    let locate = |loc: Option<naga::SourceLocation>| match loc {
        Some(l) if (l.line_number as usize) < prelude_lines => {
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
    let info = validator.validate(&module).map_err(|e| {
        let loc = e.spans().next().map(|(span, _)| span.location(source));
        format!(
            "{}: {}\n{}",
            locate(loc),
            e.as_inner(),
            e.emit_to_string_with_path(source, &combined_label(kernel))
        )
    })?;
    write_spirv(&module, &info, kernel)
}

/// Write every entry point to SPIR-V, its overrides at their defaults, as wgpu's Vulkan
/// backend does when it creates a pipeline. naga's writer can fail, or panic, on a
/// module that validates: a pointer to a struct member through a pointer parameter
/// (`&(*w).walk`) made it panic with "Expression [..] is not cached!", which would
/// otherwise have been a panic at run time, in the first call that built that pipeline.
fn write_spirv(module: &naga::Module, info: &naga::valid::ModuleInfo, kernel: &Path) -> Result<(), String> {
    for ep in &module.entry_points {
        let write = || -> Result<(), String> {
            let constants = naga::back::PipelineConstants::default();
            let (module, info) =
                naga::back::pipeline_constants::process_overrides(module, info, Some((ep.stage, &ep.name)), &constants)
                    .map_err(|e| e.to_string())?;
            let options = naga::back::spv::Options { lang_version: (1, 3), ..Default::default() };
            let pipeline = naga::back::spv::PipelineOptions { shader_stage: ep.stage, entry_point: ep.name.clone() };
            naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline)).map(|_| ()).map_err(|e| e.to_string())
        };
        let failed = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(write)) {
            Ok(result) => result.err(),
            Err(panic) => Some(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .map_or_else(|| "naga's SPIR-V writer panicked".to_string(), |m| format!("naga's SPIR-V writer panicked: {m}")),
            ),
        };
        if let Some(e) = failed {
            return Err(format!("{}: entry point `{}` does not translate to SPIR-V: {e}", kernel.display(), ep.name));
        }
    }
    Ok(())
}
