// The WGSL modules and the files of `shaders/` each is assembled from, shared by
// build.rs, src/gpu/shaders.rs and tests/shader_validation.rs (included, not a module).
// Every module starts with `common.wgsl`; the last file names the module. The sorting
// networks of `network.wgsl` are generated (build/sorting_network.rs) and come last.

/// `(module, files after common.wgsl)`.
const SHADER_MODULES: &[(&str, &[&str])] = &[
    ("moments.wgsl", &["moments.wgsl"]),
    ("affine.wgsl", &["affine.wgsl"]),
    ("derive.wgsl", &["derive.wgsl"]),
    ("select.wgsl", &["order.wgsl", "select.wgsl"]),
    ("network.wgsl", &["order.wgsl", "network.wgsl"]),
    ("copy.wgsl", &["copy.wgsl"]),
    ("backward.wgsl", &["backward.wgsl"]),
    ("fused.wgsl", &["fused.wgsl"]),
];

/// The module whose generated part is the sorting networks.
const NETWORK_MODULE: &str = "network.wgsl";
