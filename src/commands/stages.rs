//! `flow stages [KIND]`

use super::registry;
use crate::errors::CliError;

/// Lists stage kinds with their ports, or prints one kind's settings.
pub fn stages(args: crate::cli::StagesArgs) -> Result<i32, CliError> {
    let registry = registry();
    if let Some(name) = args.kind {
        let kind = registry.get(&name).ok_or_else(|| {
            CliError::Message(format!(
                "unknown stage kind `{name}`; {}",
                flow_engine::diag::suggestion(&name, &registry.names(), "stage kind")
            ))
        })?;
        println!(
            "{} (version {}): {}",
            kind.name(),
            kind.version(),
            kind.summary()
        );
        println!("settings (`with:`), as JSON Schema:");
        println!(
            "{}",
            serde_json::to_string_pretty(&kind.config_schema()).unwrap_or_default()
        );
        return Ok(0);
    }
    for kind in registry.kinds() {
        let ports = kind.ports(&serde_json::Value::Null);
        let inputs = if ports.inputs.is_empty() {
            "any".to_string()
        } else {
            ports.inputs.join(", ")
        };
        let outputs = if ports.outputs.is_empty() {
            "-".to_string()
        } else {
            ports.outputs.join(", ")
        };
        println!("{:<14} {}", kind.name(), kind.summary());
        println!("{:<14} in: {inputs}  out: {outputs}", "");
    }
    Ok(0)
}
