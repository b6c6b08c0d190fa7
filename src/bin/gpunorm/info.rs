//! `gpunorm info`: the adapter gpunorm would use, with the features and limits
//! that matter to the library.

use gpunorm::Gpu;
use serde_json::{json, Map, Value};

use crate::args::{CommandSpec, OptSpec, Parsed, BACKEND};
use crate::common::{gpu_options, json_text, open_gpu, print_stdout};
use crate::error::CliError;

pub const SPEC: CommandSpec = CommandSpec {
    name: "info",
    usage: "gpunorm info [--json] [--backend auto|vulkan|metal|dx12|gl]",
    help: "\
The GPU adapter gpunorm picks (a hardware GPU if there is one, else a software
adapter such as lavapipe): its name, backend, device type, driver, the features
and limits that matter to the library.

options:
  --json           print one JSON object instead of text
  --backend NAME   auto, vulkan, metal, dx12 or gl (default: the
                   GPUNORM_BACKEND or WGPU_BACKEND environment variable, else
                   auto); WGPU_ADAPTER_NAME picks an adapter by name
  -h, --help       show this help

exit codes: 0 done, 2 usage, 4 no GPU adapter
",
    options: &[&[OptSpec::flag("json"), BACKEND]],
    positionals: &[],
};

/// The features worth reporting: (name, flag).
const FEATURES: [(&str, wgpu::Features); 6] = [
    ("SUBGROUP", wgpu::Features::SUBGROUP),
    ("SUBGROUP_BARRIER", wgpu::Features::SUBGROUP_BARRIER),
    ("TIMESTAMP_QUERY", wgpu::Features::TIMESTAMP_QUERY),
    ("SHADER_F16", wgpu::Features::SHADER_F16),
    ("SHADER_FLOAT32_ATOMIC", wgpu::Features::SHADER_FLOAT32_ATOMIC),
    ("SHADER_INT64", wgpu::Features::SHADER_INT64),
];

/// The limits worth reporting.
fn limits(l: &wgpu::Limits) -> Vec<(&'static str, u64)> {
    vec![
        ("max_storage_buffer_binding_size", l.max_storage_buffer_binding_size),
        ("max_buffer_size", l.max_buffer_size),
        ("max_storage_buffers_per_shader_stage", l.max_storage_buffers_per_shader_stage as u64),
        ("max_compute_workgroups_per_dimension", l.max_compute_workgroups_per_dimension as u64),
        ("max_compute_workgroup_size_x", l.max_compute_workgroup_size_x as u64),
        ("max_compute_invocations_per_workgroup", l.max_compute_invocations_per_workgroup as u64),
        ("max_compute_workgroup_storage_size", l.max_compute_workgroup_storage_size as u64),
        ("min_storage_buffer_offset_alignment", l.min_storage_buffer_offset_alignment as u64),
        ("min_uniform_buffer_offset_alignment", l.min_uniform_buffer_offset_alignment as u64),
    ]
}

fn device_type(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Cpu => "CPU (software adapter)",
        wgpu::DeviceType::Other => "other",
    }
}

/// The features the adapter itself offers (the device gpunorm opens enables
/// only those it uses). Found by enumerating the adapters again and matching
/// the one in use; `None` if it cannot be found.
fn adapter_features(gpu: &Gpu, backends: Option<wgpu::Backends>) -> Option<wgpu::Features> {
    let backends = backends.unwrap_or(wgpu::Backends::all());
    let info = gpu.adapter_info();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    adapters.into_iter().map(|a| (a.get_info(), a.features())).find_map(|(i, f)| {
        (i.name == info.name && i.backend == info.backend && i.device == info.device && i.vendor == info.vendor)
            .then_some(f)
    })
}

pub fn run(args: &Parsed) -> Result<(), CliError> {
    let opts = gpu_options(args)?;
    let backends = opts.backends;
    let gpu = open_gpu(opts)?;
    let info = gpu.adapter_info();
    let enabled = gpu.features();
    let offered = adapter_features(&gpu, backends).unwrap_or(enabled);
    let lim = limits(gpu.limits());
    let subgroups = (info.subgroup_min_size > 0 && info.subgroup_max_size > 0)
        .then_some((info.subgroup_min_size, info.subgroup_max_size));

    if args.flag("json") {
        let mut features = Map::new();
        for (name, f) in FEATURES {
            features
                .insert(name.to_string(), json!({"supported": offered.contains(f), "enabled": enabled.contains(f)}));
        }
        let mut limits = Map::new();
        for (name, v) in &lim {
            limits.insert(name.to_string(), Value::from(*v));
        }
        let doc = json!({
            "name": info.name,
            "backend": info.backend.to_str(),
            "device_type": device_type(info.device_type),
            "software": gpu.is_software(),
            "vendor": info.vendor,
            "device": info.device,
            "driver": info.driver,
            "driver_info": info.driver_info,
            "subgroup_min_size": subgroups.map(|s| s.0),
            "subgroup_max_size": subgroups.map(|s| s.1),
            "features": features,
            "limits": limits,
        });
        return print_stdout(&json_text(&doc)?);
    }

    let mut s = String::new();
    let line = |s: &mut String, k: &str, v: &str| s.push_str(&format!("{k:<16}{v}\n"));
    line(&mut s, "adapter:", &info.name);
    line(&mut s, "backend:", info.backend.to_str());
    line(&mut s, "device type:", device_type(info.device_type));
    line(&mut s, "vendor/device:", &format!("{:#06x}/{:#06x}", info.vendor, info.device));
    line(&mut s, "driver:", &info.driver);
    line(&mut s, "driver info:", &info.driver_info);
    match subgroups {
        Some((lo, hi)) if lo == hi => line(&mut s, "subgroup size:", &lo.to_string()),
        Some((lo, hi)) => line(&mut s, "subgroup size:", &format!("{lo}..{hi}")),
        None => line(&mut s, "subgroup size:", "unknown"),
    }
    s.push_str("features:\n");
    for (name, f) in FEATURES {
        let state = match (offered.contains(f), enabled.contains(f)) {
            (_, true) => "yes (used by gpunorm)",
            (true, false) => "yes",
            (false, false) => "no",
        };
        s.push_str(&format!("  {name:<38}{state}\n"));
    }
    s.push_str("limits:\n");
    for (name, v) in &lim {
        s.push_str(&format!("  {name:<38}{v}{}\n", human_bytes(name, *v)));
    }
    print_stdout(&s)
}

/// " (128 MiB)" after a size limit, else "".
fn human_bytes(name: &str, v: u64) -> String {
    if !(name.ends_with("_size") && v >= 1 << 20) || name.contains("workgroup_size") {
        return String::new();
    }
    let (unit, div) = if v >= 1 << 30 { ("GiB", (1u64 << 30) as f64) } else { ("MiB", (1u64 << 20) as f64) };
    let x = v as f64 / div;
    if x.fract() == 0.0 {
        format!(" ({x} {unit})")
    } else {
        format!(" ({x:.2} {unit})")
    }
}
