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
