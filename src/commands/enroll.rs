//! `flow enroll NAME AUDIO...`: build a voice profile.

use std::path::PathBuf;

use clap::Args;

use crate::errors::CliError;

/// `flow enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The speaker's name (the profile is saved as `voices/NAME.json`).
    pub name: String,
    /// Recordings of the speaker alone.
    #[arg(required = true)]
    pub audio: Vec<PathBuf>,
}

/// Builds and saves the profile.
pub fn enroll(args: EnrollArgs) -> Result<i32, CliError> {
    Err(CliError::Message(format!(
        "cannot enroll {}: voice profiles are not built yet",
        args.name
    )))
}
