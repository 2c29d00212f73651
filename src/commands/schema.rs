//! `flow schema`

use crate::errors::CliError;

/// Prints the JSON Schema of workflow files.
pub fn schema() -> Result<i32, CliError> {
    let schema = flow_engine::spec::schema();
    let text =
        serde_json::to_string_pretty(&schema).map_err(|e| CliError::Message(e.to_string()))?;
    println!("{text}");
    Ok(0)
}
