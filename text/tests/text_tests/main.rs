//! `text`'s integration tests, one binary: each file below was a test
//! binary of its own, and each compiled its own copy of burn's generic
//! models at opt-level 3 (minutes per binary on 2 cores). Run one file's
//! tests with a filter: `cargo test --workspace --test text_tests -- family::`.

mod common;
mod family;
mod reference;
