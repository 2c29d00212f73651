#!/usr/bin/env bash
# f32 matrix products at the shapes of MiniLM's layers, through ndarray's
# `general_mat_mul` with the two kernels burn-ndarray can use:
# `matrixmultiply` (its default) and OpenBLAS (its `blas-openblas-system`
# feature). A throwaway crate outside the workspace; installs
# libopenblas-dev. Prints GFLOP/s per shape for each kernel.
#
#   bash scripts/bench-gemm.sh            # 2 threads
#   THREADS=4 bash scripts/bench-gemm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-2}
if [ ! -f /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] && ! ls /usr/lib/*/libopenblas.so >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev >/dev/null
fi
work=${CARGO_TARGET_DIR:-target}/bench-gemm
mkdir -p "$work/src"
cat > "$work/Cargo.toml" <<'EOF'
[package]
name = "bench-gemm"
version = "0.1.0"
edition = "2021"
[workspace]
[features]
blas = ["ndarray/blas", "blas-src", "openblas-src"]
[dependencies]
ndarray = { version = "=0.16.1", features = ["matrixmultiply-threading"] }
blas-src = { version = "0.10", features = ["openblas"], optional = true }
openblas-src = { version = "0.10", features = ["system", "cblas"], optional = true }
EOF
cat > "$work/src/main.rs" <<'EOF'
#[cfg(feature = "blas")]
extern crate blas_src;
use ndarray::Array2;
use std::time::Instant;
fn main() {
    // Fused QKV, FFN up, FFN down (2048 tokens of MiniLM), a Whisper-sized
    // projection, and a small attention-sized product.
    for (m, k, n) in [(2048usize, 384usize, 1152usize), (2048, 384, 1536), (2048, 1536, 384), (1500, 384, 384), (64, 64, 64)] {
        let a = Array2::<f32>::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.01);
        let b = Array2::<f32>::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.01);
        let mut c = Array2::<f32>::zeros((m, n));
        let reps = (2e10 / (2.0 * (m * k * n) as f64)).max(3.0) as usize;
        ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut c);
        let t = Instant::now();
        for _ in 0..reps {
            ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut c);
        }
        let s = t.elapsed().as_secs_f64();
        println!("  {m}x{k}x{n}: {:.1} GFLOP/s", 2.0 * (m * k * n * reps) as f64 / s / 1e9);
    }
}
EOF
export RAYON_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MATMUL_NUM_THREADS=$threads
cargo build --release -q --manifest-path "$work/Cargo.toml"
cp "$work/target/release/bench-gemm" "$work/gemm-matrixmultiply"
cargo build --release -q --manifest-path "$work/Cargo.toml" --features blas
cp "$work/target/release/bench-gemm" "$work/gemm-openblas"
echo "matrixmultiply, $threads threads:"
"$work/gemm-matrixmultiply"
echo "OpenBLAS, $threads threads:"
"$work/gemm-openblas"
