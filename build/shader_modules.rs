// The WGSL modules and the files of `shaders/` each is assembled from, shared by
// build.rs, src/gpu/shaders.rs and tests/shader_validation.rs (included, not a module).
// Every module starts with `common.wgsl`; a module is named by its main file. The sorting
// networks of `network.wgsl` are generated (build/sorting_network.rs) and come last.

/// `(module, files after common.wgsl)`.
const SHADER_MODULES: &[(&str, &[&str])] = &[
    ("moments.wgsl", &["moments.wgsl"]),
    ("affine.wgsl", &["affine.wgsl"]),
    ("derive.wgsl", &["derive.wgsl"]),
    ("select.wgsl", &["order.wgsl", "select.wgsl", "select_hist.wgsl", "select_bracket.wgsl", "select_short.wgsl"]),
    ("network.wgsl", &["order.wgsl", "network.wgsl"]),
    ("copy.wgsl", &["copy.wgsl"]),
    ("backward.wgsl", &["backward.wgsl"]),
    ("fused.wgsl", &["fused.wgsl"]),
];

/// The module whose generated part is the sorting networks.
const NETWORK_MODULE: &str = "network.wgsl";

/// The files of `shaders/` that make `module`, in order: common.wgsl, then its own.
fn module_files(module: &str) -> Vec<&'static str> {
    let (_, files) =
        SHADER_MODULES.iter().find(|(m, _)| *m == module).unwrap_or_else(|| panic!("{module}: not a listed module"));
    std::iter::once("common.wgsl").chain(files.iter().copied()).collect()
}

/// The generated part of `module` built for network `size`, which follows its files:
/// the network's entry point (build/sorting_network.rs) for the network module, none
/// for the others.
fn generated_part(module: &str, size: usize) -> Option<String> {
    (module == NETWORK_MODULE).then(|| network_entry_point(size))
}
