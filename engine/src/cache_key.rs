//! Cache keys: what a result depends on, hashed.
//!
//! A key covers the stage id, its kind and implementation version, the
//! kind's semantic parameters, the model's identity, the item's identity and
//! the keys of the upstream results. It never covers batch size or device:
//! an out-of-memory backoff or a CPU fallback must not invalidate work.

use serde_json::{json, Value};

use crate::graph::{StageNode, Workflow};
use crate::items::Item;

/// What went into the key of `stage` for `item`, given upstream keys (in the
/// order of the stage's `needs`).
pub fn components(workflow: &Workflow, stage: &StageNode, item: &Item, upstream: &[&str]) -> Value {
    let model = stage
        .spec
        .model
        .as_ref()
        .and_then(|name| workflow.spec.models.get(name))
        .map_or(
            Value::Null,
            |m| json!({ "source": m.source, "path": m.path }),
        );
    let upstream: serde_json::Map<String, Value> = stage
        .needs
        .iter()
        .zip(upstream)
        .map(|(&i, key)| {
            (
                workflow.stages[i].id.to_string(),
                Value::String(key.to_string()),
            )
        })
        .collect();
    json!({
        "stage": stage.id.as_str(),
        "kind": stage.kind.name(),
        "version": stage.kind.version(),
        "params": stage.kind.semantic_params(&stage.spec.config),
        "model": model,
        "item": { "id": item.id, "fingerprint": item.fingerprint },
        "upstream": upstream,
    })
}

/// The key of `components`: a BLAKE3 hash of their canonical JSON.
pub fn key(components: &Value) -> String {
    // serde_json's maps are sorted, so the text is canonical.
    let bytes = serde_json::to_vec(components).unwrap_or_default();
    blake3::hash(&bytes).to_hex().to_string()
}

/// The differences between an old and a new set of components, one line
/// each, as `path: old → new`.
pub fn diff(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff_at("", old, new, &mut out);
    out
}

fn diff_at(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let null = Value::Null;
                diff_at(
                    &sub,
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if old != new => out.push(format!("{path}: {old} → {new}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_order_independent_and_diff_names_paths() {
        let a = json!({ "params": { "x": 1, "y": 2 }, "kind": "exec" });
        let b = json!({ "kind": "exec", "params": { "y": 2, "x": 1 } });
        assert_eq!(key(&a), key(&b));
        let c = json!({ "kind": "exec", "params": { "y": 3, "x": 1 } });
        assert_ne!(key(&a), key(&c));
        assert_eq!(diff(&a, &c), ["params.y: 2 → 3"]);
    }
}
