// The bandwidth roofline of `gpunorm bench`: a plain compute copy, y = x, with the
// same workgroup shape and access pattern as the elementwise (affine) kernel:
// workgroup w owns the contiguous run [w * per_wg, (w + 1) * per_wg) of the window,
// split into WG / group contiguous chunks, one per group of `group` threads, whose
// threads read their chunk in coalesced strides of `group` items. On a GPU group = WG
// (the whole workgroup strides through its run); on a software adapter group is its
// SIMD width, so that each SIMD batch of threads, which such an adapter runs to the
// next barrier before the following batch starts, streams through memory of its own.
// `copy_vec4` moves vec4s over the first `count / 4 * 4` elements; `copy_main` moves
// single floats from `first` (the tail, or everything when the vec4 view cannot be bound).

struct CopyParams {
    first: u32,     // first element (copy_main) or vec4 (copy_vec4) to move
    count: u32,     // one past the last element (copy_main) or vec4 (copy_vec4)
    per_wg: u32,    // items per workgroup (multiple of WG)
    group: u32,     // threads that stride together (power of two dividing WG)
}

@group(0) @binding(0) var<uniform> cp: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn copy_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    let chunk = cp.per_wg / (WG / cp.group);
    let start = cp.first + w * cp.per_wg + (lid / cp.group) * chunk;
    let end = min(start + chunk, cp.count);
    for (var i = start + lid % cp.group; i < end; i += cp.group) {
        dst[i] = src[i];
    }
}

@group(0) @binding(0) var<uniform> cp4: CopyParams;
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

// vec4 i of the source: from the buffer, or its staged texels (TEXEL_INPUT: the way
// every kernel reads its input on a software adapter, see src/gpu/texels.rs).
fn src4_at(i: u32) -> vec4<f32> {
    if (TEXEL_INPUT) {
        return input_texel(i);
    }
    return src4[i];
}

@compute @workgroup_size(256)
fn copy_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    let chunk = cp4.per_wg / (WG / cp4.group);
    let start = cp4.first + w * cp4.per_wg + (lid / cp4.group) * chunk;
    let end = min(start + chunk, cp4.count);
    for (var i = start + lid % cp4.group; i < end; i += cp4.group) {
        dst4[i] = src4_at(i);
    }
}

// The transpose of a row-major (rows, cols) matrix into (cols, rows), for kernels that
// read each column as a contiguous run (the quantiles of many short columns on a
// software adapter). Thread (block, c) copies column c's rows [block·TR, block·TR + TR):
// the lanes of a SIMD batch read neighbouring columns of a row and each writes a
// contiguous run of its column.
struct TransposeParams {
    rows: u32,
    cols: u32,
    blocks: u32, // row blocks of TRANSPOSE_ROWS
    _pad: u32,
}

const TRANSPOSE_ROWS: u32 = 256u;

@group(0) @binding(0) var<uniform> tp: TransposeParams;
@group(0) @binding(1) var<storage, read> t_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> t_dst: array<f32>;

@compute @workgroup_size(256)
fn transpose_main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let id = (wid.x + wid.y * nwg.x) * WG + lid;
    let c = id % tp.cols;
    let block = id / tp.cols;
    if (block >= tp.blocks) {
        return;
    }
    let r0 = block * TRANSPOSE_ROWS;
    let r1 = min(r0 + TRANSPOSE_ROWS, tp.rows);
    var i = r0 * tp.cols + c;
    for (var r = r0; r < r1; r++) {
        t_dst[c * tp.rows + r] = t_src[i];
        i += tp.cols;
    }
}
