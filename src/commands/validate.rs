//! `flow validate FILE...`

use flow_engine::EXIT_CONFIG;

use super::load;
use crate::cli::ValidateArgs;
use crate::errors::{print_config_errors, CliError};

/// Validates every file; exit 78 if any has errors.
pub fn validate(args: ValidateArgs) -> Result<i32, CliError> {
    let mut code = 0;
    for path in &args.workflows {
        match load(path, &args.tuning) {
            Ok(workflow) => println!(
                "{}: valid ({} stages)",
                path.display(),
                workflow.stages.len()
            ),
            Err(CliError::Config(errors)) => {
                print_config_errors(&errors);
                code = EXIT_CONFIG;
            }
            Err(other) => return Err(other),
        }
    }
    Ok(code)
}
