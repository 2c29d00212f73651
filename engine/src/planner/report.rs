//! Plan errors as diagnostics pointing into the workflow file.

use super::PlanError;
use crate::diag::{ConfigError, ConfigErrors, Sources};
use crate::graph::Workflow;
use crate::spec::typed::{key_at, node_at};
use crate::spec::yaml;

/// The plan errors of `workflow` as diagnostics at each stage's `device:`
/// (or the stage itself when it has none).
pub fn diagnostics(workflow: &Workflow, errors: &[PlanError]) -> ConfigErrors {
    let text = std::fs::read_to_string(&workflow.path).unwrap_or_default();
    let sources = Sources::new(&workflow.path, text.clone());
    let root = yaml::parse(&text, 0).ok();
    let list = errors
        .iter()
        .map(|e| {
            let mut error =
                ConfigError::new("flow::does_not_fit", e.message.clone()).help(e.help.clone());
            if let Some(root) = &root {
                let path: Vec<String> = ["stages", e.stage.as_str(), e.key]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                let span = key_at(root, &path)
                    .map(|k| k.span)
                    .or_else(|| key_at(root, &path[..2]).map(|k| k.span))
                    .unwrap_or_else(|| node_at(root, &path[..2]).span);
                error = error.at(span, format!("on {}", e.device));
            }
            error
        })
        .collect();
    ConfigErrors::new(&workflow.path, list, &sources)
}
