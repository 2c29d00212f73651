//! The typed pass: each section and each stage is deserialized on its own,
//! so one bad stage does not hide the problems of the others.

use serde::de::DeserializeOwned;

use super::yaml::{Node, Value};
use crate::diag::ConfigError;

/// The node at `path` below `root`, or the deepest one that exists.
pub fn node_at<'a>(root: &'a Node, path: &[String]) -> &'a Node {
    let mut node = root;
    for seg in path {
        let next = match &node.value {
            Value::Map(_) => node.get(seg),
            Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node
}

/// The key node of the entry at `path` (for errors about a key itself).
pub fn key_at<'a>(root: &'a Node, path: &[String]) -> Option<&'a Node> {
    let (last, parent) = path.split_last()?;
    node_at(root, parent).entry(last).map(|(k, _)| k)
}

/// Deserializes `node` (found at `path`) into `T`, or records an error
/// pointing at the exact key that failed.
pub fn typed<T: DeserializeOwned>(
    root: &Node,
    path: &[String],
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let node = node_at(root, path);
    match serde_path_to_error::deserialize::<_, T>(node.to_serde()) {
        Ok(value) => Some(value),
        Err(err) => {
            let mut full: Vec<String> = path.to_vec();
            for seg in err.path().iter() {
                match seg {
                    serde_path_to_error::Segment::Map { key } => full.push(key.clone()),
                    serde_path_to_error::Segment::Seq { index } => full.push(index.to_string()),
                    _ => {}
                }
            }
            let message = err.into_inner().to_string();
            errors.push(value_error(root, &full, &message));
            None
        }
    }
}

/// An error about the value at `path`, classified by its message.
pub fn value_error(root: &Node, path: &[String], message: &str) -> ConfigError {
    let node = node_at(root, path);
    let message = strip_location(message);
    let where_ = path.join(".");
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        return ConfigError::new(
            "flow::missing_key",
            format!("`{where_}` is missing the key `{field}`"),
        )
        .at(node.span, format!("`{field}` is required here"))
        .help(format!("add `{field}:` (see schemas/workflow.schema.json)"));
    }
    let is_size = message.contains("size unit")
        || message.contains("is not a size")
        || message.contains("has no unit");
    let error = if is_size {
        ConfigError::new(
            "flow::bad_size",
            format!("bad size at `{where_}`: {message}"),
        )
        .help("a size is a number and a unit: `512MiB`, `14GiB`, `1.5GB`")
    } else {
        ConfigError::new(
            "flow::invalid_value",
            format!("invalid value at `{where_}`: {message}"),
        )
    };
    error.at(node.span, "this value")
}

/// serde_yaml appends " at line L column C" to some messages; flow shows the
/// place itself.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
