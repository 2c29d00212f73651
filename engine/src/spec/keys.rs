//! Structural checks driven by the JSON Schema: unknown keys (with "did you
//! mean") and repeated keys, reported everywhere in the file at once.

use serde_json::Value as Json;

use super::yaml::{Node, Value};
use crate::diag::{suggestion, ConfigError};

/// Walks `node` against `schema`, reporting unknown and repeated keys, and
/// removes them so the typed pass does not report them a second time.
pub fn check_keys(
    node: &mut Node,
    schema: &Json,
    defs: &Json,
    path: &mut Vec<String>,
    errors: &mut Vec<ConfigError>,
) {
    let schema = resolve(schema, defs);
    match &mut node.value {
        Value::Map(entries) => {
            report_duplicates(entries, path, errors);
            let props = schema.get("properties").and_then(Json::as_object);
            let closed = schema.get("additionalProperties") == Some(&Json::Bool(false));
            let values_schema = schema
                .get("additionalProperties")
                .filter(|s| s.is_object())
                .or_else(|| {
                    schema
                        .get("patternProperties")?
                        .as_object()?
                        .values()
                        .next()
                });
            entries.retain_mut(|(key, value)| {
                let name = key.as_str().map(String::from).unwrap_or_default();
                let sub = match (props, values_schema) {
                    (Some(props), _) => match props.get(&name) {
                        Some(sub) => Some(sub),
                        None if closed => {
                            let known: Vec<&str> = props.keys().map(String::as_str).collect();
                            errors.push(
                                ConfigError::new(
                                    "flow::unknown_key",
                                    format!("unknown key `{name}` {}", place(path)),
                                )
                                .at(key.span, "not a known key")
                                .help(suggestion(&name, &known, "key")),
                            );
                            return false;
                        }
                        None => None,
                    },
                    (None, Some(values)) => Some(values),
                    (None, None) => None,
                };
                if let Some(sub) = sub {
                    path.push(name);
                    check_keys(value, sub, defs, path, errors);
                    path.pop();
                }
                true
            });
        }
        Value::Seq(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(i.to_string());
                    check_keys(item, item_schema, defs, path, errors);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

/// Where a key sits, for messages: "in stage `asr`", "at the top level".
pub fn place(path: &[String]) -> String {
    match path {
        [] => "at the top level".to_string(),
        [section, id] if section == "stages" => format!("in stage `{id}`"),
        [section, id] if section == "models" => format!("in model `{id}`"),
        [section, id] if section == "devices" => format!("in device `{id}`"),
        [section, id, rest @ ..] if section == "stages" => {
            format!("in `{}` of stage `{id}`", rest.join("."))
        }
        _ => format!("in `{}`", path.join(".")),
    }
}

fn report_duplicates(
    entries: &mut Vec<(Node, Node)>,
    path: &[String],
    errors: &mut Vec<ConfigError>,
) {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut index = 0;
    entries.retain(|(key, _)| {
        let name = key.as_str().map(String::from).unwrap_or_default();
        let first = seen.iter().find(|(n, _)| *n == name).map(|(_, line)| *line);
        index += 1;
        match first {
            Some(_) => {
                let (code, what) = match path {
                    [s] if s == "stages" => ("flow::duplicate_id", "stage id"),
                    [s] if s == "models" => ("flow::duplicate_id", "model name"),
                    _ => ("flow::duplicate_key", "key"),
                };
                errors.push(
                    ConfigError::new(code, format!("duplicate {what} `{name}` {}", place(path)))
                        .at(key.span, "defined again here")
                        .help(format!(
                            "each {what} may appear once; rename or remove one of them"
                        )),
                );
                false
            }
            None => {
                seen.push((name, index));
                true
            }
        }
    });
}

/// Follows `$ref` and picks the object branch of `anyOf`/`oneOf`.
fn resolve<'a>(schema: &'a Json, defs: &'a Json) -> &'a Json {
    if let Some(name) = schema.get("$ref").and_then(Json::as_str) {
        let name = name.rsplit('/').next().unwrap_or_default();
        if let Some(def) = defs.get(name) {
            return resolve(def, defs);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(branches) = schema.get(key).and_then(Json::as_array) {
            for branch in branches {
                let resolved = resolve(branch, defs);
                if resolved.get("properties").is_some()
                    || resolved
                        .get("additionalProperties")
                        .is_some_and(Json::is_object)
                    || resolved.get("patternProperties").is_some()
                {
                    return resolved;
                }
            }
        }
    }
    schema
}
