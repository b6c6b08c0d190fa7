//! # gpunorm
//!
//! GPU compute kernels (WGSL on `wgpu`) for data scaling and normalization, each
//! checked against a float64 CPU reference.
//!
//! ```no_run
//! use gpunorm::{Gpu, GpuTensor, Grouping};
//! let gpu = Gpu::new()?;
//! let x = GpuTensor::from_slice(&gpu, &[1.0, 10.0, 2.0, 20.0, 3.0, 30.0], &[3, 2])?;
//! let m = gpunorm::kernels::moments::moments(&gpu, &x, &Grouping::Columns { rows: 3, cols: 2 })?;
//! assert_eq!(m[1].mean, 20.0);
//! # Ok::<(), gpunorm::Error>(())
//! ```

pub mod bench;
pub mod error;
pub mod gpu;
pub mod io;
pub mod kernels;
pub mod norm;
pub mod reference;
pub mod scale;
pub mod segments;
pub mod stats;
pub mod verify;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions, GpuTensor};
pub use segments::Grouping;
pub use stats::Moments;
pub use verify::{Tolerance, Verify};
