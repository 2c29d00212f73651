//! `flow search "QUERY" --workflow FILE`: nearest transcript segments.

use std::path::PathBuf;

use clap::Args;

use crate::errors::CliError;

/// `flow search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The question or phrase to look for.
    pub query: String,
    /// The workflow whose database and embedding model to use.
    #[arg(long)]
    pub workflow: PathBuf,
    /// How many segments to print.
    #[arg(short, default_value_t = 5)]
    pub k: usize,
}

/// Prints the nearest segments.
pub fn search(args: SearchArgs) -> Result<i32, CliError> {
    Err(CliError::Message(format!(
        "cannot search for {:?}: the search index is not built yet",
        args.query
    )))
}
