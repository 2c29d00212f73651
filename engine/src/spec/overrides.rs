//! `--set PATH=VALUE` overrides, applied to the YAML tree before validation
//! so they are checked exactly like the file.

use super::yaml::{parse, Node, Span, Value};
use crate::diag::{ConfigError, Sources};

/// Applies `overrides` (each `a.b.c=value`) to `root`. Each override is a
/// source of its own, so an invalid value is shown in the `--set` text.
pub fn apply(
    root: &mut Node,
    overrides: &[String],
    sources: &mut Sources,
    errors: &mut Vec<ConfigError>,
) {
    for text in overrides {
        let index = sources.add("--set".to_string(), text.clone());
        let whole = Span {
            source: index,
            offset: 0,
            len: text.len().max(1),
        };
        let Some((path, value_text)) = text.split_once('=') else {
            errors.push(
                ConfigError::new("flow::bad_override", format!("`--set {text}` has no `=`"))
                    .at(whole, "expected PATH=VALUE")
                    .help("write it as `--set stages.ID.KEY=VALUE`, e.g. `--set stages.embed.device=cpu`"),
            );
            continue;
        };
        let mut value = match parse(value_text, index) {
            Ok(v) => v,
            Err(e) => {
                errors.push(
                    ConfigError::new(
                        "flow::bad_override",
                        format!("`--set {text}`: {}", e.message),
                    )
                    .at(whole, "not a YAML value"),
                );
                continue;
            }
        };
        shift(&mut value, path.len() + 1);
        let keys: Vec<&str> = path.split('.').collect();
        let invented = match keys.as_slice() {
            [section @ ("stages" | "models"), id, ..] => root
                .get(section)
                .is_none_or(|s| s.get(id).is_none())
                .then(|| {
                    format!(
                        "there is no {} `{id}` in the workflow",
                        &section[..section.len() - 1]
                    )
                }),
            _ => None,
        };
        let result = match invented {
            Some(problem) => Err(format!("`--set {text}`: {problem}")),
            None => set(root, &keys, value, index, path.len()),
        };
        if let Err(message) = result {
            errors.push(
                ConfigError::new("flow::bad_override", message)
                    .at(
                        Span {
                            source: index,
                            offset: 0,
                            len: path.len().max(1),
                        },
                        "this path",
                    )
                    .help(
                        "paths look like `stages.ID.KEY`, `stages.ID.batch.max` or `inputs.files`",
                    ),
            );
        }
    }
}

fn shift(node: &mut Node, by: usize) {
    node.span.offset += by;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| shift(n, by)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            shift(k, by);
            shift(v, by);
        }),
        _ => {}
    }
}

fn set(
    node: &mut Node,
    keys: &[&str],
    value: Node,
    source: usize,
    path_len: usize,
) -> Result<(), String> {
    let Some((first, rest)) = keys.split_first() else {
        *node = value;
        return Ok(());
    };
    if first.is_empty() {
        return Err("empty key in `--set` path".to_string());
    }
    let key_span = Span {
        source,
        offset: 0,
        len: path_len.max(1),
    };
    if let Value::Seq(items) = &mut node.value {
        let len = items.len();
        let index: usize = first
            .parse()
            .map_err(|_| format!("`{first}` is not an index of a list (it has {len} entries)"))?;
        let child = items
            .get_mut(index)
            .ok_or_else(|| format!("index {index} is past the end of a list of {len} entries"))?;
        return set(child, rest, value, source, path_len);
    }
    let Value::Map(entries) = &mut node.value else {
        return Err(format!("cannot set `{first}`: its parent is not a mapping"));
    };
    if let Some((_, child)) = entries.iter_mut().find(|(k, _)| k.as_str() == Some(first)) {
        return set(child, rest, value, source, path_len);
    }
    let mut child = Node {
        value: Value::Map(Vec::new()),
        span: key_span,
    };
    set(&mut child, rest, value, source, path_len)?;
    entries.push((
        Node {
            value: Value::Str(first.to_string()),
            span: key_span,
        },
        child,
    ));
    Ok(())
}
