// The bandwidth roofline of `gpunorm bench`: a plain compute copy, y = x, with the
// same workgroup shape and access pattern as the elementwise (affine) kernel:
// workgroup w owns the contiguous run [w * per_wg, (w + 1) * per_wg) of the window,
// its threads read it in coalesced strides of WG items. `copy_vec4` moves vec4s over
// the first `count / 4 * 4` elements; `copy_main` moves single floats from `first`
// (the tail, or everything when the vec4 view cannot be bound).

struct CopyParams {
    first: u32,     // first element (copy_main) or vec4 (copy_vec4) to move
    count: u32,     // one past the last element (copy_main) or vec4 (copy_vec4)
    per_wg: u32,    // items per workgroup (multiple of WG)
    _pad: u32,
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
    let start = cp.first + w * cp.per_wg;
    let end = min(start + cp.per_wg, cp.count);
    for (var i = start + lid; i < end; i += WG) {
        dst[i] = src[i];
    }
}

@group(0) @binding(0) var<uniform> cp4: CopyParams;
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let w = wid.x + wid.y * nwg.x;
    let start = cp4.first + w * cp4.per_wg;
    let end = min(start + cp4.per_wg, cp4.count);
    for (var i = start + lid; i < end; i += WG) {
        dst4[i] = src4[i];
    }
}
