//! `asr`'s integration tests, one binary: each file below was a test
//! binary of its own, and each compiled its own copy of burn's generic
//! models at opt-level 3 (minutes per binary on 2 cores). Run one file's
//! tests with a filter: `cargo test --workspace --test asr_tests -- half::`.

mod common;
mod half;
mod hf;
mod kernels;
mod mel;
mod reference;
mod vulkan;
mod windows;
