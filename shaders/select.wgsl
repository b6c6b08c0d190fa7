// placeholder: filled in by a later issue
@compute @workgroup_size(1)
fn select_placeholder() {}
