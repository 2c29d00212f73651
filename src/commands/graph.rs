//! `flow graph FILE --format dot|mermaid`

use super::load;
use crate::cli::{GraphArgs, GraphFormat, Tuning};
use crate::errors::CliError;

/// Prints the stage graph.
pub fn graph(args: GraphArgs) -> Result<i32, CliError> {
    let workflow = load(
        &args.workflow,
        &Tuning {
            overrides: Vec::new(),
            inputs: None,
            devices: Vec::new(),
        },
    )?;
    let text = match args.format {
        GraphFormat::Dot => flow_engine::render::dot(&workflow),
        GraphFormat::Mermaid => flow_engine::render::mermaid(&workflow),
    };
    print!("{text}");
    Ok(0)
}
