//! Plans: every stage placed on a device with a batch size, and per device
//! the ordered steps (`Load`, `Run`, `Unload`, `ClearCache`) with predicted
//! memory before and after each. The executor runs plans, never raw DAGs.
//! [`crate::planner`] makes them.

use serde::Serialize;

use crate::device::DeviceId;
use crate::memory::{Footprint, Origin};

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum PlanNode {
    /// Load `model` (used by `stage`) onto `device`.
    Load {
        /// The model name.
        model: String,
        /// The stage (index in topological order) whose weights they are.
        stage: usize,
        /// Where.
        device: DeviceId,
    },
    /// Run a stage over the items of a wave.
    Run {
        /// The stage index.
        stage: usize,
        /// Where it runs.
        device: DeviceId,
        /// Items per batch on that device.
        batch: u32,
    },
    /// Free `model` from `device`.
    Unload {
        /// The model name.
        model: String,
        /// The stage whose weights they are.
        stage: usize,
        /// Where.
        device: DeviceId,
    },
    /// Release the device's cached memory.
    ClearCache {
        /// Which device.
        device: DeviceId,
    },
}

/// A plan node with its predicted memory on its device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The node.
    #[serde(flatten)]
    pub node: PlanNode,
    /// Bytes reserved on the device before the node (weights plus cache).
    pub before: u64,
    /// Highest bytes reserved while it runs.
    pub peak: u64,
    /// Bytes reserved after it.
    pub after: u64,
}

/// Where and how one stage runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The device.
    pub device: DeviceId,
    /// Items per batch.
    pub batch: u32,
    /// The smallest batch the out-of-memory ladder may cut to.
    pub min_batch: u32,
    /// The stage's memory needs.
    pub footprint: Footprint,
    /// Why it was placed there, for `flow plan`.
    pub why: String,
    /// `device: auto` chose the device (rather than the workflow pinning it).
    #[serde(skip)]
    pub auto: bool,
    /// A fallback target: it runs only for items whose primary stage gave
    /// up, so it has no `Run` node of its own.
    pub standby: bool,
}

/// The plan of one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevicePlan {
    /// The device.
    pub device: DeviceId,
    /// Its name.
    pub name: String,
    /// How it became known.
    pub origin: Origin,
    /// Its total memory.
    pub total: u64,
    /// The budget planned against.
    pub budget: u64,
    /// Whether every model placed here stays resident for the whole run.
    pub all_resident: bool,
    /// The steps of the first wave.
    pub first: Vec<Step>,
    /// The steps of every later wave (empty with one wave).
    pub repeat: Vec<Step>,
    /// The predicted peak.
    pub peak: u64,
    /// Model loads in the first wave.
    pub loads_first: u32,
    /// Model loads in each later wave.
    pub loads_repeat: u32,
}

/// A runnable plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Per stage (topological order): its device and batch size.
    pub placements: Vec<Placement>,
    /// Per device with stages: its steps. `cpu` first.
    pub devices: Vec<DevicePlan>,
    /// Items per wave; `None` when all items go through in one wave.
    pub wave_size: Option<usize>,
    /// The items the prediction is for.
    pub items: usize,
    /// Predicted model loads for those items.
    pub loads: u64,
    /// Model loads when every model is loaded and unloaded for every item,
    /// as hand-written pipelines do.
    pub naive_loads: u64,
}

impl Plan {
    /// The plan of `device`.
    pub fn device(&self, device: DeviceId) -> Option<&DevicePlan> {
        self.devices.iter().find(|d| d.device == device)
    }

    /// The name of the weights `stage` loads: its `model:`, or the stage id
    /// when only `memory.model` declares weights; `None` without weights.
    pub fn model_name(&self, workflow: &crate::graph::Workflow, stage: usize) -> Option<String> {
        let node = workflow.stages.get(stage)?;
        match &node.spec.model {
            Some(m) => Some(m.to_string()),
            None if self.placements.get(stage)?.footprint.weights > 0 => Some(node.id.to_string()),
            None => None,
        }
    }

    /// Number of waves for the planned items.
    pub fn waves(&self) -> usize {
        match self.wave_size {
            Some(w) if w > 0 => self.items.div_ceil(w).max(1),
            _ => 1,
        }
    }
}
