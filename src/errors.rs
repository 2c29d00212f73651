//! Turning errors into what the user reads, and exit codes.

use flow_engine::{ConfigErrors, EXIT_CONFIG};
use miette::{GraphicalReportHandler, GraphicalTheme};

/// Exit code when some items failed.
pub const EXIT_ITEMS_FAILED: i32 = 2;

/// Errors a command can end with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The workflow is invalid.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// Anything else, already phrased for the user.
    #[error("{0}")]
    Message(String),
}

impl From<flow_engine::ExecError> for CliError {
    fn from(e: flow_engine::ExecError) -> Self {
        CliError::Message(e.to_string())
    }
}

impl From<flow_engine::state::StateError> for CliError {
    fn from(e: flow_engine::state::StateError) -> Self {
        CliError::Message(e.to_string())
    }
}

/// Prints `error` to stderr and returns the exit code.
pub fn report(error: CliError) -> i32 {
    match error {
        CliError::Config(errors) => {
            print_config_errors(&errors);
            EXIT_CONFIG
        }
        CliError::Message(message) => {
            eprintln!("error: {message}");
            1
        }
    }
}

/// Prints every diagnostic of a workflow file, then a one-line summary.
pub fn print_config_errors(errors: &ConfigErrors) {
    let theme = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    for error in &errors.errors {
        let mut out = String::new();
        if handler.render_report(&mut out, error).is_ok() {
            eprintln!("{out}");
        } else {
            eprintln!("error[{}]: {}", error.code, error.message);
        }
    }
    eprintln!("error: {errors}");
}
