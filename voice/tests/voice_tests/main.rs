//! `voice`'s integration tests, one binary: each file below was a test
//! binary of its own, and each compiled its own copy of burn's generic
//! models at opt-level 3 (minutes per binary on 2 cores). Run one file's
//! tests with a filter: `cargo test --workspace --test voice_tests -- ge2e::`.

mod common;
mod ge2e;
mod speakers;
mod vad;
mod vulkan;
