//! `gpunorm info`: the adapter the library picks, as text and as JSON.

mod cli_common;

use cli_common::gpunorm;
use gpunorm::{Gpu, GpuOptions};

/// The adapter a library caller gets under the same environment.
fn library_adapter() -> wgpu::AdapterInfo {
    let gpu = Gpu::with_options(GpuOptions::from_env().unwrap()).expect("a GPU or software adapter");
    gpu.adapter_info().clone()
}

#[test]
fn info_prints_adapter_name_and_backend() {
    let want = library_adapter();
    let r = gpunorm(&["info"]);
    r.expect_code(0);
    let line = |key: &str| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no '{key}' line:\n{}", r.stdout))
            .to_string()
    };
    assert_eq!(line("adapter:"), want.name);
    assert_eq!(line("backend:"), want.backend.to_str());
    assert!(!line("device type:").is_empty());
    for k in ["driver:", "features:", "limits:", "max_storage_buffer_binding_size", "SUBGROUP", "TIMESTAMP_QUERY"] {
        assert!(r.stdout.contains(k), "no {k}:\n{}", r.stdout);
    }
}

#[test]
fn info_json() {
    let want = library_adapter();
    let r = gpunorm(&["info", "--json"]);
    r.expect_code(0);
    let doc = r.json();
    assert_eq!(doc["name"], want.name.as_str());
    assert_eq!(doc["backend"], want.backend.to_str());
    assert_eq!(doc["driver"], want.driver.as_str());
    assert!(doc["limits"]["max_storage_buffer_binding_size"].as_u64().unwrap() > 0);
    assert!(doc["limits"]["max_compute_workgroup_size_x"].as_u64().unwrap() >= 64);
    assert!(doc["features"]["SUBGROUP"]["supported"].is_boolean());
}

#[test]
fn info_backend_option_picks_that_backend() {
    let want = library_adapter();
    let r = gpunorm(&["info", "--json", &format!("--backend={}", want.backend.to_str())]);
    r.expect_code(0);
    assert_eq!(r.json()["backend"], want.backend.to_str());
}
