//! Finding the state directory of a workflow or of the current directory.

use std::path::{Path, PathBuf};

use crate::cli::Place;
use crate::errors::CliError;

/// The default state directory of a workflow: `.flow/` beside it.
pub fn state_dir_of(workflow: &Path) -> PathBuf {
    let absolute = std::path::absolute(workflow).unwrap_or_else(|_| workflow.to_path_buf());
    absolute
        .parent()
        .map_or_else(|| PathBuf::from(".flow"), |d| d.join(".flow"))
}

/// The state directory a command writes: `--state-dir` (made absolute, since
/// stages run in the workflow's folder) or `.flow/` beside the workflow.
pub fn state_dir_for(given: Option<PathBuf>, workflow: &Path) -> PathBuf {
    given
        .map(|d| std::path::absolute(&d).unwrap_or(d))
        .unwrap_or_else(|| state_dir_of(workflow))
}

/// The state directory a command should read: `--state-dir`, the workflow's,
/// or the one `.flow/` found in the current directory or one level below.
///
/// # Errors
/// When none or several are found.
pub fn find(place: &Place) -> Result<PathBuf, CliError> {
    if let Some(dir) = &place.state_dir {
        return Ok(dir.clone());
    }
    if let Some(workflow) = &place.workflow {
        return Ok(state_dir_of(workflow));
    }
    let mut found = Vec::new();
    if Path::new(".flow/db").exists() {
        found.push(PathBuf::from(".flow"));
    }
    if let Ok(entries) = std::fs::read_dir(".") {
        for entry in entries.flatten() {
            let candidate = entry.path().join(".flow");
            if candidate.join("db").exists() {
                found.push(candidate);
            }
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(CliError::Message(
            "no state directory here: pass `--workflow FILE` or `--state-dir DIR` (runs keep state in `.flow/` beside the workflow)".into(),
        )),
        _ => Err(CliError::Message(format!(
            "several state directories here ({}): pass `--workflow FILE` or `--state-dir DIR`",
            found.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
        ))),
    }
}
