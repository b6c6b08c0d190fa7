// The entry points of `shaders/network.wgsl`, generated: one per network size (each in
// its own module), each a sorting network written out compare by compare. Shared by build.rs (which validates
// the assembled module) and src/gpu/shaders.rs (which assembles it); included, not a
// module.
//
// Why written out: a software adapter (lavapipe) keeps an array that a loop indexes in
// scratch memory and reads it lane by lane; named values stay in SIMD registers, and a
// compare-exchange is a min and a max. 100 × 100000 medians: 310 ms with loops over an
// array, 20–26 ms written out (lavapipe, 2 cores).

/// Network sizes (powers of two): a segment of n values goes to the smallest that holds
/// it. Each costs its compile once a process where it is used (lavapipe: ~4 ms at 16,
/// ~30 ms at 64, ~100 ms at 128; 256 would take ~460 ms).
const NETWORK_SIZES: [usize; 4] = [16, 32, 64, 128];

/// Batcher's odd–even merge sort on `n` (a power of two) keys: the compare-exchanges
/// (i, j), i < j, in order; each leaves the smaller key at i.
fn odd_even_merge_sort(n: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < n {
                for i in 0..k.min(n - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        out.push((i + j, i + j + k));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    out
}

/// WGSL of `a{index}` for a runtime `index` < n: a tree of selects on its bits.
fn select_tree(out: &mut String, name: &str, index: &str, n: usize) {
    let mut level: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
    let mut bit = 0;
    while level.len() > 1 {
        let next: Vec<String> = (0..level.len() / 2).map(|i| format!("{name}{bit}_{i}")).collect();
        for (i, pair) in level.chunks(2).enumerate() {
            out.push_str(&format!(
                "        let {} = select({}, {}, ({index} & {}u) != 0u);\n",
                next[i],
                pair[0],
                pair[1],
                1u32 << bit
            ));
        }
        level = next;
        bit += 1;
    }
    out.push_str(&format!("        let {name} = {};\n", level[0]));
}

/// The entry point `network_{n}`: one thread per segment of at most n values (see
/// network.wgsl for the functions it calls).
fn network_entry_point(n: usize) -> String {
    let mut s = format!(
        "\n@compute @workgroup_size(256)\nfn network_{n}(\n    @builtin(workgroup_id) wid: vec3<u32>,\n    \
         @builtin(num_workgroups) nwg: vec3<u32>,\n    @builtin(local_invocation_index) lid: u32,\n) {{\n    \
         let s = net_segment(wid, nwg, lid);\n    if (s >= np.seg_end) {{\n        return;\n    }}\n    \
         var w = net_start(s);\n"
    );
    // Every value a name of its own (no `var`s to load and store): position i holds
    // `cur[i]`; the sorted keys end as a0 … a{n-1}.
    let mut cur: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    for i in 0..n {
        s.push_str(&format!("    let k{i} = net_key(&w, {i}u);\n"));
    }
    for (c, (i, j)) in odd_even_merge_sort(n).into_iter().enumerate() {
        s.push_str(&format!("    let l{c} = min({}, {});\n    let h{c} = max({}, {});\n", cur[i], cur[j], cur[i], cur[j]));
        cur[i] = format!("l{c}");
        cur[j] = format!("h{c}");
    }
    for (i, name) in cur.iter().enumerate() {
        s.push_str(&format!("    let a{i} = {name};\n"));
    }
    s.push_str("    for (var j = 0u; j < np.nq; j++) {\n        let r = net_rank(j, w.valid);\n");
    select_tree(&mut s, "ka", "r.lo", n);
    select_tree(&mut s, "kb", "r.hi", n);
    s.push_str("        net_store(s, j, w.valid, r, ka, kb);\n    }\n    net_count(s, w.valid);\n}\n");
    s
}

/// The generated part of the module of size `n`'s network. One module a size: naga
/// parses and validates a module whole when it is created (~60 ms for all four sizes).
fn sorting_network(n: usize) -> String {
    network_entry_point(n)
}
