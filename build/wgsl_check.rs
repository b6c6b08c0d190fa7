// Shader validation shared by build.rs and tests/shader_validation.rs (included, not a module).

/// One part of an assembled module: where it comes from (a file of `shaders/`, or a
/// label for generated code) and its text.
struct Part<'a> {
    origin: String,
    text: &'a str,
}

/// The assembled source (the parts joined by newlines) and each part's first line.
fn assemble(parts: &[Part]) -> (String, Vec<usize>) {
    let mut source = String::new();
    let mut starts = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            source.push('\n');
        }
        starts.push(source.matches('\n').count() + 1);
        source.push_str(part.text);
    }
    (source, starts)
}

/// Parse and validate the module made of `parts`; on error return `origin:line:col:
/// message` (the line counted within the part it falls in) plus naga's full report.
fn validate(parts: &[Part]) -> Result<(), String> {
    let (source, starts) = assemble(parts);
    let name = parts.last().map_or_else(String::new, |p| p.origin.clone());
    // Where a line of the assembled source comes from: `origin:line`.
    let origin_of = |line: usize| {
        let i = starts.iter().rposition(|&s| s <= line).unwrap_or(0);
        format!("{}:{}", parts[i].origin, line - starts[i] + 1)
    };
    let label = format!(
        "{} (assembled; lines counted from the start of {})",
        parts.iter().map(|p| p.origin.as_str()).collect::<Vec<_>>().join(" + "),
        parts.first().map_or("", |p| p.origin.as_str())
    );
    let locate = |loc: Option<naga::SourceLocation>| match loc {
        Some(l) => format!("{}:{}", origin_of(l.line_number as usize), l.line_position),
        None => name.clone(),
    };
    let module = naga::front::wgsl::parse_str(&source).map_err(|e| {
        format!("{}: {}\n{}", locate(e.location(&source)), e.message(), e.emit_to_string_with_path(&source, &label))
    })?;
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    let info = validator.validate(&module).map_err(|e| {
        let loc = e.spans().next().map(|(span, _)| span.location(&source));
        format!("{}: {}\n{}", locate(loc), e.as_inner(), e.emit_to_string_with_path(&source, &label))
    })?;
    // An entry point that does not translate is reported at the line that declares it.
    let entry_at = |entry: &str| {
        let at = source.find(&format!("fn {entry}(")).map(|i| source[..i].matches('\n').count() + 1);
        at.map_or_else(|| name.clone(), origin_of)
    };
    write_spirv(&module, &info, entry_at)
}

/// Write every entry point to SPIR-V, its overrides at their defaults, as wgpu's Vulkan
/// backend does when it creates a pipeline. naga's writer can fail, or panic, on a
/// module that validates: a pointer to a struct member through a pointer parameter
/// (`&(*w).walk`) made it panic with "Expression [..] is not cached!", which would
/// otherwise have been a panic at run time, in the first call that built that pipeline.
fn write_spirv(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    entry_at: impl Fn(&str) -> String,
) -> Result<(), String> {
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
            return Err(format!("{}: entry point `{}` does not translate to SPIR-V: {e}", entry_at(&ep.name), ep.name));
        }
    }
    Ok(())
}
