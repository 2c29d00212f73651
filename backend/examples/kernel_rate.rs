//! Throughput of the CPU kernels (`flow_backend::kernels`) at a small
//! transformer's shapes: GFLOP/s of [`Dense`] products (bias fused) and
//! nanoseconds per element of softmax and GELU.
//!
//! `cargo run --release -p flow-backend --example kernel_rate [ROWS]`

use std::time::Instant;

use flow_backend::kernels::{gelu, softmax, Dense};

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3000);
    for (inp, out) in [(384, 1152), (384, 384), (384, 1536), (1536, 384)] {
        let w: Vec<f32> = (0..inp * out)
            .map(|i| ((i % 97) as f32 - 48.0) * 1e-3)
            .collect();
        let layer = Dense::new(w, None, inp, out);
        let x: Vec<f32> = (0..rows * inp)
            .map(|i| ((i % 89) as f32 - 44.0) * 1e-2)
            .collect();
        let mut y = vec![0.0f32; rows * out];
        layer.forward(&x, rows, &mut y);
        let reps = 10;
        let start = Instant::now();
        for _ in 0..reps {
            layer.forward(&x, rows, &mut y);
        }
        let secs = start.elapsed().as_secs_f64();
        let gflop = 2.0 * (rows * inp * out * reps) as f64 / 1e9;
        println!("dense {rows}x{inp}x{out}: {:.1} GFLOP/s", gflop / secs);
    }
    let width = 91;
    let mut x: Vec<f32> = (0..width * 20_000)
        .map(|i| ((i % 37) as f32 - 18.0) * 0.3)
        .collect();
    let start = Instant::now();
    softmax(&mut x, width);
    let per = start.elapsed().as_secs_f64() * 1e9 / x.len() as f64;
    println!("softmax (rows of {width}): {per:.2} ns/element");
    let start = Instant::now();
    gelu(&mut x);
    let per = start.elapsed().as_secs_f64() * 1e9 / x.len() as f64;
    println!("gelu: {per:.2} ns/element");
}
