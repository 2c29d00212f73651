//! One file per command.

mod calibrate;
mod doctor;
pub mod enroll;
mod explain;
mod graph;
mod models;
mod plan;
mod run;
mod schema;
pub mod search;
mod stages;
mod status;
mod validate;

use flow_engine::memory::Inventory;
use flow_engine::{planner, LoadOptions, Plan, Registry, Workflow};

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
        Command::Doctor(args) => doctor::doctor(args),
        Command::Calibrate(args) => calibrate::calibrate(args),
        Command::Models(args) => models::models(args),
        Command::Enroll(args) => enroll::enroll(args),
        Command::Search(args) => search::search(args),
    }
}

/// The registry of every stage kind this binary knows.
pub fn registry() -> Registry {
    let mut registry = flow_stages::registry();
    flow_media::register(&mut registry);
    flow_asr::register(&mut registry);
    flow_text::register(&mut registry);
    flow_voice::register(&mut registry);
    flow_store::register(&mut registry);
    registry
}

/// Loads and validates a workflow with command-line tuning.
pub fn load(path: &std::path::Path, tuning: &Tuning) -> Result<Workflow, CliError> {
    let options = LoadOptions {
        overrides: tuning.overrides.clone(),
        inputs: tuning.inputs.clone(),
        devices: tuning.devices.clone(),
    };
    Ok(flow_engine::load(path, &options, &registry())?)
}

/// Plans `workflow` for `items` items on this machine's devices (and those
/// it declares), with the calibrations stored in `state_dir`.
pub fn make_plan(
    workflow: &Workflow,
    state_dir: &std::path::Path,
    items: usize,
) -> Result<(Plan, Inventory), CliError> {
    Ok(planner::plan_here(workflow, state_dir, items)?)
}
