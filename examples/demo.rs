//! The main job: scale a real dataset whose features live on wildly different scales
//! with all five scalers on the GPU, each result checked against the float64 CPU
//! reference (`Verify::Always`), and print what happened.
//!
//! cargo run --release --example demo

use std::path::Path;
use std::time::Instant;

use gpunorm::scale::{MaxAbsScaler, MinMaxScaler, RobustScaler, Scaler, StandardScaler};
use gpunorm::{Gpu, GpuOptions, Verify};
use ndarray::{Array2, Axis};

fn scalers() -> [(&'static str, Scaler); 5] {
    [
        ("standard", StandardScaler::new().into()),
        ("minmax", MinMaxScaler::new().into()),
        ("maxabs", MaxAbsScaler::default().into()),
        ("robust", RobustScaler::new().into()),
        ("log", Scaler::from_method("log").expect("log")),
    ]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut gpu = Gpu::with_options(GpuOptions::from_env()?)?;
    gpu.set_verify(Verify::Always);
    let info = gpu.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?}), every result verified against the float64 CPU reference\n",
        info.name, info.backend, info.device_type
    );

    // The brief's example: one feature over five orders of magnitude.
    let brief = Array2::from_shape_vec((5, 1), vec![10.0f32, 200.0, 3000.0, 40000.0, 500000.0])?;
    println!("brief example x = [10, 200, 3000, 40000, 500000]");
    println!("{:>10} {:>10} {:>10} {:>10} {:>10} {:>10}", "x", "standard", "minmax", "maxabs", "robust", "log");
    let outs: Vec<Array2<f32>> =
        scalers().iter().map(|(_, s)| s.fit_transform(&gpu, brief.view()).map(|r| r.1)).collect::<Result<_, _>>()?;
    for i in 0..5 {
        print!("{:>10}", brief[[i, 0]]);
        for o in &outs {
            print!(" {:>10.4}", o[[i, 0]]);
        }
        println!();
    }

    // A real dataset: UCI wine (178 × 13); proline in the hundreds next to hue near 1.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/wine.csv");
    let table = gpunorm::io::read_array(&path)?;
    let header = table.header.clone().unwrap_or_default();
    let x: Array2<f32> = table.data.mapv(|v| v as f32).into_dimensionality()?;
    let (lo, hi) = column_ranges(&x);
    let widest = (0..x.ncols()).max_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b]))).unwrap_or(0);
    let narrowest = (0..x.ncols()).min_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b]))).unwrap_or(0);
    println!(
        "\n{} ({} rows × {} features): feature ranges span {:.3} ('{}') to {:.0} ('{}')",
        path.display(),
        x.nrows(),
        x.ncols(),
        hi[narrowest] - lo[narrowest],
        header.get(narrowest).map_or("", |s| s.as_str()),
        hi[widest] - lo[widest],
        header.get(widest).map_or("", |s| s.as_str())
    );
    println!(
        "{:>9}  {:>22}  {:>22}  {:>12}  {:>9}",
        "method",
        format!("'{}' after", short(&header, widest)),
        format!("'{}' after", short(&header, narrowest)),
        "max |x'| all",
        "time"
    );
    for (name, s) in scalers() {
        let t = Instant::now();
        let (fitted, y) = s.fit_transform(&gpu, x.view())?;
        let back = fitted.inverse_transform(&gpu, y.view())?;
        let elapsed = t.elapsed();
        let round_trip =
            back.iter().zip(x.iter()).map(|(a, b)| ((a - b) / b.abs().max(1.0)).abs()).fold(0.0f32, f32::max);
        assert!(round_trip < 1e-4, "{name}: inverse_transform round trip error {round_trip}");
        let (ylo, yhi) = column_ranges(&y);
        let maxabs = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        println!(
            "{:>9}  {:>22}  {:>22}  {:>12.4}  {:>7.1}ms",
            name,
            format!("[{:.3}, {:.3}]", ylo[widest], yhi[widest]),
            format!("[{:.3}, {:.3}]", ylo[narrowest], yhi[narrowest]),
            maxabs,
            elapsed.as_secs_f64() * 1e3
        );
    }
    println!("\nall {} scalers verified: GPU results within tolerance of the float64 reference; inverse round trips exact to 1e-4", scalers().len());
    Ok(())
}

fn short(header: &[String], j: usize) -> String {
    header.get(j).map(|s| s.chars().take(12).collect()).unwrap_or_else(|| format!("x{j}"))
}

fn column_ranges(x: &Array2<f32>) -> (Vec<f32>, Vec<f32>) {
    let lo = x.map_axis(Axis(0), |c| c.fold(f32::INFINITY, |m, &v| m.min(v))).to_vec();
    let hi = x.map_axis(Axis(0), |c| c.fold(f32::NEG_INFINITY, |m, &v| m.max(v))).to_vec();
    (lo, hi)
}
