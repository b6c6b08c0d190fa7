//! Float64 CPU twins of every GPU kernel, written independently of the kernels
//! (two-pass variance, sorting for quantiles), and named after the kernel they mirror.
//! They take the same float32 input the GPU sees, widened to f64.

pub mod affine;
pub mod derive;
pub mod moments;
pub mod norms;
pub mod quantiles;

pub use affine::{affine, expm1, log1p, AffineSpec};
pub use moments::moments;
pub use quantiles::quantiles;
