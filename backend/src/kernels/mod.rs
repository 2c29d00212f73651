//! CPU kernels for the models' hot loops.
//!
//! burn's NdArray backend runs every tensor operation as its own pass over
//! a freshly allocated array; a transformer layer on the CPU then spends
//! more time in bias adds, scalings, masks, GELU and layer norms than in
//! its matrix products. These kernels work in place on plain `f32`
//! buffers: [`Dense`] fuses the bias (and a residual) into the matrix
//! product, and the element-wise functions make one vectorised pass. The
//! models keep their burn implementation for CUDA, where burn fuses
//! kernels itself. See `docs/cpu-kernels.md`.

mod gemm;
mod math;
mod packed;

pub use gemm::{gemm, matmul, transpose, Dense, MatMut, MatRef};
pub use math::{attend_one, erf, exp, gelu, layer_norm, relu, softmax, softmax_columns};
pub use packed::{available as packed_available, Packed};
