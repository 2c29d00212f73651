//! `flow status`: where a run stands, per stage, with every failure's reason.

use serde::Serialize;

use crate::report::Event;
use crate::state::{ItemStage, RunRecord, Store};

/// Counts of one stage in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StageCounts {
    /// The stage id.
    pub stage: String,
    /// Items done (computed or reused).
    pub done: usize,
    /// Of those, reused from the cache.
    pub cached: usize,
    /// Items that failed here.
    pub failed: usize,
    /// Items not run because an upstream stage failed.
    pub blocked: usize,
    /// Items this stage gave up on, carried on by its `fallback`.
    pub degraded: usize,
    /// Items for which this fallback target was not needed.
    pub standby: usize,
    /// Items not yet through this stage.
    pub pending: usize,
}

/// A failed item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The item id.
    pub item: String,
    /// The stage where it failed.
    pub stage: String,
    /// Why.
    pub reason: String,
}

/// Where one item stands in every stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemStatus {
    /// The item id.
    pub item: String,
    /// Stage id → `done`, `cached`, `failed`, `blocked` or `pending`.
    pub stages: std::collections::BTreeMap<String, &'static str>,
}

/// The status of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatusReport {
    /// The run.
    pub run: RunRecord,
    /// Per stage, in plan order.
    pub stages: Vec<StageCounts>,
    /// Every failure, by item.
    pub failures: Vec<Failure>,
    /// Every item a stage gave up on and its fallback carried on.
    pub degraded: Vec<Failure>,
    /// Memory events: out-of-memory recoveries, batch size changes,
    /// warnings and leaks, in order.
    pub memory: Vec<Event>,
    /// Per item, per stage (only when asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemStatus>,
}

/// The id of a run's `index`-th item (`#index` if it is not stored).
fn item_id(store: &Store, run: u64, index: usize) -> String {
    store
        .item(run, index)
        .map_or_else(|| format!("#{index}"), |i| i.id)
}

/// Builds the status of `run`; `per_item` adds every item's state per stage.
pub fn report(store: &Store, run: RunRecord, per_item: bool) -> RunStatusReport {
    let items = run.items;
    let mut stages: Vec<StageCounts> = run
        .stages
        .iter()
        .map(|s| StageCounts {
            stage: s.clone(),
            pending: items,
            ..Default::default()
        })
        .collect();
    let mut failures = Vec::new();
    let mut degraded = Vec::new();
    let mut per_items: Vec<ItemStatus> = if per_item {
        store
            .items(run.id)
            .iter()
            .map(|i| ItemStatus {
                item: i.id.clone(),
                stages: run.stages.iter().map(|s| (s.clone(), "pending")).collect(),
            })
            .collect()
    } else {
        Vec::new()
    };
    for (item, stage, state) in store.item_stages(run.id) {
        let Some(counts) = stages.get_mut(stage) else {
            continue;
        };
        if let Some(entry) = per_items.get_mut(item) {
            let word = match &state {
                ItemStage::Done { cached: true, .. } => "cached",
                ItemStage::Done { .. } => "done",
                ItemStage::Failed { .. } => "failed",
                ItemStage::Blocked { .. } => "blocked",
                ItemStage::Degraded { .. } => "degraded",
                ItemStage::Standby => "standby",
            };
            entry.stages.insert(counts.stage.clone(), word);
        }
        counts.pending = counts.pending.saturating_sub(1);
        match state {
            ItemStage::Done { cached, .. } => {
                counts.done += 1;
                counts.cached += usize::from(cached);
            }
            ItemStage::Failed { reason, .. } => {
                counts.failed += 1;
                failures.push(Failure {
                    item: item_id(store, run.id, item),
                    stage: counts.stage.clone(),
                    reason,
                });
            }
            ItemStage::Blocked { .. } => counts.blocked += 1,
            ItemStage::Degraded { reason, via } => {
                counts.degraded += 1;
                degraded.push(Failure {
                    item: item_id(store, run.id, item),
                    stage: counts.stage.clone(),
                    reason: format!("{reason} (fallback: {via})"),
                });
            }
            ItemStage::Standby => counts.standby += 1,
        }
    }
    failures.sort_by(|a, b| a.item.cmp(&b.item));
    degraded.sort_by(|a, b| a.item.cmp(&b.item));
    let memory = store
        .events::<Event>(run.id)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::Oom { .. }
                    | Event::BatchSize { .. }
                    | Event::MemoryWarning { .. }
                    | Event::MemoryLeak { .. }
            )
        })
        .collect();
    RunStatusReport {
        run,
        stages,
        failures,
        degraded,
        memory,
        items: per_items,
    }
}
