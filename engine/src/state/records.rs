//! What the state database stores.

use serde::{Deserialize, Serialize};

use crate::registry::{FailureKind, Output};

/// A finished stage result for one item, found by its cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// The cache key (hex).
    pub key: String,
    /// The stage id.
    pub stage: String,
    /// The item id.
    pub item: String,
    /// The run that produced it.
    pub run: u64,
    /// What went into the key, for `flow explain`.
    pub components: serde_json::Value,
    /// The outputs; files live in the artifact folder of this key.
    pub outputs: Vec<Output>,
    /// Wall time of the stage on this item, in milliseconds.
    pub millis: u64,
    /// When it finished (Unix milliseconds).
    pub finished_at: u64,
}

/// The command a run was started with, so `flow resume` can repeat it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunArgs {
    /// `--set` overrides.
    pub overrides: Vec<String>,
    /// `--inputs`.
    pub inputs: Option<String>,
    /// `--device` declarations.
    #[serde(default)]
    pub devices: Vec<String>,
    /// `--fresh`: results from earlier runs were ignored.
    pub fresh: bool,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started and not finished (running now, or interrupted).
    Running,
    /// Every item finished; some may have failed.
    Finished,
}

/// One run of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run number.
    pub id: u64,
    /// The workflow file.
    pub workflow: String,
    /// How it was started.
    pub args: RunArgs,
    /// Stage ids in plan order.
    pub stages: Vec<String>,
    /// How many items.
    pub items: usize,
    /// Where it stands.
    pub status: RunStatus,
    /// When it started (Unix milliseconds).
    pub started_at: u64,
    /// When it finished.
    pub finished_at: Option<u64>,
    /// The run this one resumed, if any.
    pub resumed_from: Option<u64>,
}

/// The state of one item in one stage of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ItemStage {
    /// Done: the result is under `key`.
    Done {
        /// The result's cache key.
        key: String,
        /// Reused from an earlier run rather than computed.
        cached: bool,
    },
    /// Failed with a reason.
    Failed {
        /// What kind of failure.
        kind: FailureKind,
        /// Why.
        reason: String,
    },
    /// Not run because an upstream stage failed for this item.
    Blocked {
        /// The upstream stage that failed.
        by: String,
    },
    /// The stage gave up on the item and its `fallback` took over: `skip`
    /// (downstream stages ran without it) or another stage's result.
    Degraded {
        /// Why the stage gave up.
        reason: String,
        /// `skip` or the stage whose result stands in.
        via: String,
    },
    /// A fallback target: it runs only for items whose primary stage gave up.
    Standby,
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
