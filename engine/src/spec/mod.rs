//! Workflow files: types, parsing with spans, and validation that reports
//! every problem at once.

mod keys;
mod overrides;
mod semantic;
pub mod typed;
mod types;
pub mod yaml;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

pub use types::*;

use crate::diag::{ConfigError, ConfigErrors, Sources};
use crate::graph::{self, GraphStage, Workflow};
use crate::ident::Ident;
use crate::registry::Registry;
use typed::{key_at, node_at, typed};

/// How to read a workflow file: overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--set PATH=VALUE` overrides, applied before validation.
    pub overrides: Vec<String>,
    /// `--inputs GLOB`: replaces `inputs:` with this glob (relative to the
    /// current directory, or absolute).
    pub inputs: Option<String>,
    /// `--device DEVICE=SIZE`: declares (or caps) a device's capacity, as
    /// `devices: { DEVICE: { capacity: SIZE } }` would.
    pub devices: Vec<String>,
}

/// The JSON Schema of workflow files, generated from the types.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(WorkflowSpec)).unwrap_or_default()
}

/// Reads, overrides and validates a workflow file.
///
/// # Errors
/// [`ConfigErrors`] with every problem found, each pointing into the YAML.
pub fn load(
    path: &Path,
    options: &LoadOptions,
    registry: &Registry,
) -> Result<Workflow, ConfigErrors> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigErrors::single(
            &path,
            ConfigError::new("flow::io", format!("cannot read `{}`: {e}", path.display()))
                .help("check the path; `flow validate` takes workflow files such as `workflows/demo.yaml`"),
        )
    })?;
    let mut sources = Sources::new(&path, text.clone());
    let mut errors = Vec::new();
    let mut root = match yaml::parse(&text, 0) {
        Ok(root) => root,
        Err(e) => {
            let error = ConfigError::new("flow::yaml", format!("YAML syntax error: {}", e.message))
                .at(e.span, "here")
                .help("check indentation, colons and closing brackets near this line");
            return Err(ConfigErrors::new(&path, vec![error], &sources));
        }
    };
    if !matches!(root.value, yaml::Value::Map(_)) {
        let error = ConfigError::new(
            "flow::yaml",
            "a workflow file must be a mapping with `name`, `inputs` and `stages`",
        )
        .at(root.span, "not a mapping");
        return Err(ConfigErrors::new(&path, vec![error], &sources));
    }
    let mut overrides = options.overrides.clone();
    for device in &options.devices {
        match device.split_once('=') {
            Some((name, size)) => overrides.push(format!("devices.{name}.capacity={size}")),
            None => errors.push(
                ConfigError::new(
                    "flow::invalid_value",
                    format!("`--device {device}` has no size"),
                )
                .help("write `--device sim:0=16GiB` or `--device cuda:0=24GiB`"),
            ),
        }
    }
    overrides::apply(&mut root, &overrides, &mut sources, &mut errors);
    if let Some(glob) = &options.inputs {
        override_inputs(&mut root, glob, &mut sources);
    }
    let schema = schema();
    let defs = schema.get("$defs").cloned().unwrap_or_default();
    keys::check_keys(&mut root, &schema, &defs, &mut Vec::new(), &mut errors);

    let parts = read_parts(&root, &mut errors);
    let parts = semantic::Parts {
        root: &root,
        ..parts
    };
    semantic::check(&parts, registry, &mut errors);
    let graph_stages: Vec<GraphStage<'_>> = parts
        .stages
        .iter()
        .map(|(id, stage)| GraphStage {
            id: id.as_str(),
            needs: stage.needs.iter().map(Ident::as_str).collect(),
            ports: registry
                .get(&stage.uses)
                .map(|kind| kind.ports(&stage.config)),
        })
        .collect();
    graph::check(&graph_stages, &root, &mut errors);

    if errors.is_empty() {
        if let Some(spec) = typed::<WorkflowSpec>(&root, &[], &mut errors) {
            return Ok(Workflow::new(spec, path, registry));
        }
    }
    Err(ConfigErrors::new(&path, errors, &sources))
}

fn override_inputs(root: &mut yaml::Node, glob: &str, sources: &mut Sources) {
    let index = sources.add("--inputs".into(), glob.to_string());
    let span = yaml::Span {
        source: index,
        offset: 0,
        len: glob.len().max(1),
    };
    let absolute: PathBuf = std::path::absolute(glob).unwrap_or_else(|_| PathBuf::from(glob));
    let value = yaml::Node {
        value: yaml::Value::Map(vec![(
            yaml::Node {
                value: yaml::Value::Str("files".into()),
                span,
            },
            yaml::Node {
                value: yaml::Value::Str(absolute.to_string_lossy().into_owned()),
                span,
            },
        )]),
        span,
    };
    if let yaml::Value::Map(entries) = &mut root.value {
        entries.retain(|(k, _)| k.as_str() != Some("inputs"));
        entries.push((
            yaml::Node {
                value: yaml::Value::Str("inputs".into()),
                span,
            },
            value,
        ));
    }
}

/// The typed pass over each section and each stage separately.
fn read_parts<'a>(root: &'a yaml::Node, errors: &mut Vec<ConfigError>) -> semantic::Parts<'a> {
    let s = |x: &str| vec![x.to_string()];
    for required in ["name", "inputs", "stages"] {
        if root.get(required).is_none() {
            errors.push(
                ConfigError::new(
                    "flow::missing_key",
                    format!("the workflow has no `{required}`"),
                )
                .at(
                    yaml::Span {
                        len: 1,
                        ..root.span
                    },
                    "workflow starts here",
                )
                .help(format!("add a top-level `{required}:` key")),
            );
        }
    }
    if root.get("name").is_some() {
        typed::<String>(root, &s("name"), errors);
    }
    if root.get("description").is_some() {
        typed::<String>(root, &s("description"), errors);
    }
    let inputs = root
        .get("inputs")
        .and_then(|_| typed::<InputsSpec>(root, &s("inputs"), errors));
    let mut devices = Default::default();
    if let Some(node) = root.get("devices") {
        let mut keys_ok = true;
        for (key, _) in node.entries() {
            let text = key.as_str().unwrap_or_default();
            if let Err(e) = text.parse::<crate::device::DeviceId>() {
                keys_ok = false;
                errors.push(
                    ConfigError::new("flow::unknown_device", e.to_string())
                        .at(key.span, "not a device")
                        .help("declare `cpu`, `cuda:N` or `sim:N`"),
                );
            }
        }
        if keys_ok {
            devices = typed(root, &s("devices"), errors).unwrap_or_default();
        }
    }
    let mut models = IndexMap::new();
    for (key, _) in root
        .get("models")
        .map(yaml::Node::entries)
        .unwrap_or_default()
    {
        let name = key.as_str().unwrap_or_default();
        match name.parse::<Ident>() {
            Ok(id) => {
                if let Some(model) =
                    typed::<ModelSpec>(root, &["models".into(), name.into()], errors)
                {
                    models.insert(id, model);
                }
            }
            Err(e) => errors.push(
                ConfigError::new("flow::invalid_value", e.to_string())
                    .at(key.span, "not a valid model name"),
            ),
        }
    }
    let mut stage_ids = Vec::new();
    let mut stages = Vec::new();
    match root.get("stages") {
        Some(node) if !matches!(node.value, yaml::Value::Map(_)) => errors.push(
            ConfigError::new(
                "flow::invalid_value",
                "`stages` must be a mapping of stage id to stage",
            )
            .at(node.span, "not a mapping"),
        ),
        Some(node) => {
            for (key, _) in node.entries() {
                let name = key.as_str().unwrap_or_default().to_string();
                stage_ids.push(name.clone());
                let path = vec!["stages".to_string(), name.clone()];
                match name.parse::<Ident>() {
                    Err(e) => {
                        errors.push(ConfigError::new("flow::invalid_value", e.to_string()).at(
                            key_at(root, &path).map_or(key.span, |k| k.span),
                            "not a valid stage id",
                        ))
                    }
                    Ok(id) => {
                        if let Some(stage) = typed::<StageSpec>(root, &path, errors) {
                            stages.push((id, stage));
                        }
                    }
                }
            }
            if node.entries().is_empty() {
                errors.push(
                    ConfigError::new("flow::invalid_value", "the workflow has no stages")
                        .at(node_at(root, &s("stages")).span, "empty"),
                );
            }
        }
        None => {}
    }
    semantic::Parts {
        root,
        inputs,
        devices,
        models,
        stage_ids,
        stages,
    }
}
