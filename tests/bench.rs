//! `gpunorm bench`'s report: the figures hang together as the CLI contract says.

mod common;

use common::gpu;
use gpunorm::bench::{run, BenchOptions, OPS};
use gpunorm::kernels::select::input_passes;
use gpunorm::Grouping;

#[test]
fn report_ratios_bytes_and_passes_are_consistent() {
    let opts = BenchOptions {
        sizes: vec![200_000, 400_000],
        runs: 1,
        cpu_reference_max: Some(0),
        cpu_baseline: false,
        ops: Some(vec!["stats".into(), "quantiles3".into(), "robust_fit_transform".into(), "batch_backward".into()]),
    };
    let report = run(gpu(), &opts, &mut |_| {}).unwrap();
    assert!(report.copy_gbps.is_finite() && report.copy_gbps > 0.0);
    // The report's copy bandwidth is the copy row's at the largest size.
    let copies: Vec<_> = report.ops.iter().filter(|r| r.op == "copy").collect();
    assert_eq!(copies.len(), 2);
    assert_eq!(copies[1].gbps, report.copy_gbps);
    for r in &report.ops {
        assert!(OPS.contains(&r.op.as_str()), "{}", r.op);
        let numel: usize = r.shape.iter().product();
        assert!((r.gbps - r.bytes as f64 / r.median_s / 1e9).abs() <= 1e-9 * r.gbps, "{}", r.op);
        assert!((r.ratio_to_copy - r.gbps / report.copy_gbps).abs() <= 1e-12, "{}", r.op);
        let per_elem = match r.op.as_str() {
            "copy" => 8,
            "stats" => 4,
            "batch_backward" => 20,
            "quantiles3" | "robust_fit_transform" => {
                let g = Grouping::Columns { rows: r.shape[0], cols: r.shape[1] };
                let passes = input_passes(gpu(), &g, &[0.25, 0.5, 0.75]);
                let passes = if r.op == "quantiles3" { passes } else { passes + 2 };
                assert_eq!(r.passes, Some(passes), "{}", r.op);
                4 * passes as u64
            }
            other => panic!("unexpected op {other}"),
        };
        assert_eq!(r.bytes, per_elem * numel as u64, "{} {:?}", r.op, r.shape);
    }
    let json = serde_json::to_value(&report).unwrap();
    for key in ["op", "shape", "bytes", "median_s", "gbps", "ratio_to_copy", "cpu_reference_s"] {
        assert!(json["ops"][0].get(key).is_some(), "missing {key}");
    }
    assert!(json["adapter"]["name"].is_string() && json["copy_gbps"].is_number());
}
