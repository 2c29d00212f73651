//! `flow`: a declarative workflow engine for GPU media jobs.

mod cli;
mod commands;
mod errors;
mod locate;
mod progress;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(error) => errors::report(error),
    };
    std::process::exit(code);
}
