//! The WGSL sources, each assembled as `common.wgsl` + the module's files (see
//! `build/shader_modules.rs`) + for `network.wgsl` its generated sorting networks,
//! exactly as `build.rs` validates them.

include!("../../build/shader_modules.rs");
include!("../../build/sorting_network.rs");

/// One WGSL module (named by its main file in `shaders/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Moments,
    Affine,
    Derive,
    Select,
    /// The sorting network of `size` values for the quantiles of short segments (entry
    /// point `network_{size}`; sizes: [`network_sizes`]).
    Network {
        size: u16,
    },
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
            Shader::Network { .. } => "network.wgsl",
            Shader::Copy => "copy.wgsl",
            Shader::Backward => "backward.wgsl",
            Shader::Fused => "fused.wgsl",
        }
    }

    /// The full source: the common prelude, the module's files, and the generated part.
    pub fn source(self) -> String {
        let mut src = module_files(self.name()).into_iter().map(file).collect::<Vec<_>>().join("\n");
        let size = if let Shader::Network { size } = self { size as usize } else { 0 };
        if let Some(generated) = generated_part(self.name(), size) {
            src.push('\n');
            src.push_str(&generated);
        }
        src
    }
}

/// The network sizes, ascending (the entry point of size n is `network_{n}`).
pub const fn network_sizes() -> &'static [usize] {
    &NETWORK_SIZES
}

fn file(name: &str) -> &'static str {
    match name {
        "common.wgsl" => include_str!("../../shaders/common.wgsl"),
        "order.wgsl" => include_str!("../../shaders/order.wgsl"),
        "moments.wgsl" => include_str!("../../shaders/moments.wgsl"),
        "affine.wgsl" => include_str!("../../shaders/affine.wgsl"),
        "derive.wgsl" => include_str!("../../shaders/derive.wgsl"),
        "select.wgsl" => include_str!("../../shaders/select.wgsl"),
        "select_hist.wgsl" => include_str!("../../shaders/select_hist.wgsl"),
        "select_bracket.wgsl" => include_str!("../../shaders/select_bracket.wgsl"),
        "select_short.wgsl" => include_str!("../../shaders/select_short.wgsl"),
        "network.wgsl" => include_str!("../../shaders/network.wgsl"),
        "copy.wgsl" => include_str!("../../shaders/copy.wgsl"),
        "backward.wgsl" => include_str!("../../shaders/backward.wgsl"),
        "fused.wgsl" => include_str!("../../shaders/fused.wgsl"),
        other => panic!("shaders/{other} is not included in src/gpu/shaders.rs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_file_is_included() {
        for (module, _) in SHADER_MODULES {
            for f in module_files(module) {
                assert!(!file(f).is_empty(), "{f}");
            }
        }
    }

    /// The 0–1 principle: a network that sorts every sequence of 0s and 1s sorts
    /// everything. All of them for 16; for the larger ones, random 0–1 sequences and
    /// random keys.
    #[test]
    fn the_networks_sort() {
        let apply = |n: usize, v: &mut [u32]| {
            for (i, j) in odd_even_merge_sort(n) {
                assert!(i < j && j < n);
                if v[i] > v[j] {
                    v.swap(i, j);
                }
            }
        };
        for bits in 0u32..1 << 16 {
            let mut v: Vec<u32> = (0..16).map(|i| (bits >> i) & 1).collect();
            apply(16, &mut v);
            assert!(v.windows(2).all(|w| w[0] <= w[1]), "{bits:#x}");
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for &n in &NETWORK_SIZES {
            for round in 0..2000 {
                let mut v: Vec<u32> =
                    (0..n).map(|_| if round % 2 == 0 { (next() & 1) as u32 } else { next() as u32 }).collect();
                let mut want = v.clone();
                want.sort_unstable();
                apply(n, &mut v);
                assert_eq!(v, want, "n = {n}");
            }
        }
    }
}
