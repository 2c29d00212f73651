//! One file per command.

mod explain;
mod graph;
mod plan;
mod run;
mod schema;
mod stages;
mod status;
mod validate;

use flow_engine::{LoadOptions, Registry, Workflow};

use crate::cli::{Command, Tuning};
use crate::errors::CliError;

/// Runs the command; returns the exit code.
pub fn dispatch(cli: crate::cli::Cli) -> Result<i32, CliError> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Resume(args) => run::resume(args),
        Command::Validate(args) => validate::validate(args),
        Command::Schema => schema::schema(),
        Command::Graph(args) => graph::graph(args),
        Command::Plan(args) => plan::plan(args),
        Command::Stages(args) => stages::stages(args),
        Command::Status(args) => status::status(args),
        Command::Explain(args) => explain::explain(args),
    }
}

/// The registry of every stage kind this binary knows.
pub fn registry() -> Registry {
    flow_stages::registry()
}

/// Loads and validates a workflow with command-line tuning.
pub fn load(path: &std::path::Path, tuning: &Tuning) -> Result<Workflow, CliError> {
    let options = LoadOptions {
        overrides: tuning.overrides.clone(),
        inputs: tuning.inputs.clone(),
    };
    Ok(flow_engine::load(path, &options, &registry())?)
}
