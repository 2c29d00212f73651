//! `flow`: a declarative workflow engine for GPU media jobs.

#![deny(unsafe_op_in_unsafe_fn)]

mod cli;
mod commands;
mod errors;
mod locate;
mod progress;

use clap::Parser;

/// jemalloc: it returns freed memory and fragments less under many threads
/// than glibc's malloc, so a long run's memory stays flat
/// (`docs/benchmarks.md`).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Restores the default action of SIGPIPE (Rust ignores it), so that
/// `flow schema | head` ends quietly instead of panicking on a closed pipe.
#[cfg(unix)]
fn default_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: resetting a signal to its default disposition at start-up,
    // before any thread exists.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn default_sigpipe() {}

fn main() {
    default_sigpipe();
    // Device workers read and clear burn's real memory pools, and treat
    // cubecl's allocation panics as out of memory.
    flow_backend::install_pools();
    let cli = cli::Cli::parse();
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(error) => errors::report(error),
    };
    std::process::exit(code);
}
