// The entry points of `shaders/network.wgsl`, generated: one per network size (each in
// its own module), each a sorting network written out compare by compare. Shared by
// build.rs (which validates the assembled module), src/gpu/shaders.rs (which assembles
// it) and tests/shader_validation.rs; included, not a module.
//
// Why written out: a software adapter (lavapipe) keeps an array that a loop indexes in
// scratch memory and reads it lane by lane; named values stay in SIMD registers, and a
// compare-exchange is a min and a max. 100 × 100000 medians: 310 ms with loops over an
// array, 20–26 ms written out (lavapipe, 2 cores).

/// Network sizes (powers of two): a segment of n values goes to the smallest that holds
/// it. Each costs its compile once a process where it is used. Up to 128 one network
/// sorts the segment (a 256 network would take ~660 ms to compile on lavapipe); 256 is
/// two 128 networks, one per half, and a merge-path search for each rank.
const NETWORK_SIZES: [usize; 5] = [16, 32, 64, 128, 256];

/// The largest network of one piece; larger sizes sort halves of this size.
const NETWORK_PIECE: usize = 128;

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

/// WGSL sorting keys `k{first}` … `k{first + n - 1}` into `{out}0` … `{out}{n - 1}`,
/// ascending: every value a name of its own (no `var`s to load and store).
fn sort_network(s: &mut String, first: usize, n: usize, out: &str) {
    let mut cur: Vec<String> = (0..n).map(|i| format!("k{}", first + i)).collect();
    for (c, (i, j)) in odd_even_merge_sort(n).into_iter().enumerate() {
        s.push_str(&format!(
            "    let {out}l{c} = min({}, {});\n    let {out}h{c} = max({}, {});\n",
            cur[i], cur[j], cur[i], cur[j]
        ));
        cur[i] = format!("{out}l{c}");
        cur[j] = format!("{out}h{c}");
    }
    for (i, name) in cur.iter().enumerate() {
        s.push_str(&format!("    let {out}{i} = {name};\n"));
    }
}

/// WGSL of `let {name} = {array}{index}` for a runtime `index` < n: a tree of selects on
/// its bits.
fn select_tree(out: &mut String, name: &str, array: &str, index: &str, n: usize) {
    let mut level: Vec<String> = (0..n).map(|i| format!("{array}{i}")).collect();
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
    for i in 0..n {
        s.push_str(&format!("    let k{i} = net_key(&w, {i}u);\n"));
    }
    s.push_str("    for (var j = 0u; j < np.nq; j++) {\n        let r = net_rank(j, w.valid);\n");
    if n <= NETWORK_PIECE {
        let mut sort = String::new();
        sort_network(&mut sort, 0, n, "a");
        s.insert_str(s.find("    for (var j").unwrap(), &sort);
        select_tree(&mut s, "ka", "a", "r.lo", n);
        select_tree(&mut s, "kb", "a", "r.hi", n);
    } else {
        // Two sorted halves a and b (NET_NONE past the values, so both hold `half`
        // keys): the key of merged rank t is found by a merge-path search for i, the
        // number of a's keys among the first t + 1 (a's first on ties): a[i] goes after
        // b[t − i]. Then it is the larger of a[i − 1] and b[t − i].
        let half = n / 2;
        let mut sort = String::new();
        sort_network(&mut sort, 0, half, "a");
        sort_network(&mut sort, half, half, "b");
        s.insert_str(s.find("    for (var j").unwrap(), &sort);
        s.push_str("        var ka = 0u;\n        var kb = 0u;\n        for (var e = 0u; e < 2u; e++) {\n");
        s.push_str("            let t = select(r.lo, r.hi, e == 1u);\n");
        s.push_str(&format!(
            "            var lo = max(t + 1u, {half}u) - {half}u;\n            var hi = min(t + 1u, {half}u);\n"
        ));
        s.push_str("            while (lo < hi) {\n                let mid = (lo + hi) / 2u;\n                let bi = t - mid;\n");
        select_tree(&mut s, "am", "a", "mid", half);
        select_tree(&mut s, "bm", "b", "bi", half);
        s.push_str("                hi = select(hi, mid, am > bm);\n                lo = select(mid + 1u, lo, am > bm);\n            }\n");
        // a[lo − 1] and b[t − lo], each 0 (below every key) where there is none.
        s.push_str("            let ia = lo - 1u;\n            let ib = t - lo;\n");
        select_tree(&mut s, "al", "a", "ia", half);
        select_tree(&mut s, "bl", "b", "ib", half);
        s.push_str("            let key = max(select(0u, al, lo > 0u), select(0u, bl, t + 1u > lo));\n");
        s.push_str("            ka = select(key, ka, e == 1u);\n            kb = select(kb, key, e == 1u);\n        }\n");
    }
    s.push_str("        net_store(s, j, w.valid, r, ka, kb);\n    }\n    net_count(s, w.valid);\n}\n");
    s
}
