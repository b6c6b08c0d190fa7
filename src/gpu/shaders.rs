//! The WGSL sources, each assembled as `common.wgsl` + the kernel file, exactly as
//! `build.rs` validates them.

const COMMON: &str = include_str!("../../shaders/common.wgsl");

/// One kernel file of `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Moments,
    Affine,
    Derive,
    Select,
    Copy,
    Backward,
    Fused,
}

impl Shader {
    pub fn name(self) -> &'static str {
        match self {
            Shader::Moments => "moments.wgsl",
            Shader::Affine => "affine.wgsl",
            Shader::Derive => "derive.wgsl",
            Shader::Select => "select.wgsl",
            Shader::Copy => "copy.wgsl",
            Shader::Backward => "backward.wgsl",
            Shader::Fused => "fused.wgsl",
        }
    }

    fn body(self) -> &'static str {
        match self {
            Shader::Moments => include_str!("../../shaders/moments.wgsl"),
            Shader::Affine => include_str!("../../shaders/affine.wgsl"),
            Shader::Derive => include_str!("../../shaders/derive.wgsl"),
            Shader::Select => include_str!("../../shaders/select.wgsl"),
            Shader::Copy => include_str!("../../shaders/copy.wgsl"),
            Shader::Backward => include_str!("../../shaders/backward.wgsl"),
            Shader::Fused => include_str!("../../shaders/fused.wgsl"),
        }
    }

    /// The full source: the common prelude, then the kernel.
    pub fn source(self) -> String {
        format!("{COMMON}\n{}", self.body())
    }
}
