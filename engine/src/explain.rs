//! `flow explain ITEM STAGE`: what a result's cache key is made of, and what
//! changed since the result that is stored.

use serde::Serialize;

use crate::cache_key;
use crate::graph::Workflow;
use crate::items::Item;
use crate::state::Store;

/// The explanation of one item-stage.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The item id.
    pub item: String,
    /// The stage id.
    pub stage: String,
    /// The key the result has now.
    pub key: String,
    /// What went into it.
    pub components: serde_json::Value,
    /// A stored result matches the key: the run that produced it.
    pub cached_by_run: Option<u64>,
    /// The key of the latest stored result, when it differs.
    pub previous_key: Option<String>,
    /// What differs from that result, `path: old → new`.
    pub changes: Vec<String>,
}

/// Explains `stage` for `item`.
///
/// # Errors
/// A message when the stage is unknown.
pub fn explain(
    workflow: &Workflow,
    store: &Store,
    item: &Item,
    stage: &str,
) -> Result<Explanation, String> {
    let target = workflow.stage_index(stage).ok_or_else(|| {
        let ids: Vec<&str> = workflow.stages.iter().map(|s| s.id.as_str()).collect();
        format!(
            "there is no stage `{stage}`; {}",
            crate::diag::suggestion(stage, &ids, "stage")
        )
    })?;
    let mut keys: Vec<String> = Vec::new();
    let mut components = serde_json::Value::Null;
    for (i, node) in workflow.stages.iter().enumerate().take(target + 1) {
        let upstream: Vec<&str> = node.needs.iter().map(|&j| keys[j].as_str()).collect();
        let c = cache_key::components(workflow, node, item, &upstream);
        keys.push(cache_key::key(&c));
        if i == target {
            components = c;
        }
    }
    let key = keys[target].clone();
    let cached_by_run = store.result(stage, &item.id, &key).map(|r| r.run);
    let (previous_key, changes) = match store.latest_result(stage, &item.id) {
        Some(previous) if previous.key != key => {
            let changes = cache_key::diff(&previous.components, &components);
            (Some(previous.key), changes)
        }
        _ => (None, Vec::new()),
    };
    Ok(Explanation {
        item: item.id.clone(),
        stage: stage.to_string(),
        key,
        components,
        cached_by_run,
        previous_key,
        changes,
    })
}
