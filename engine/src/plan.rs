//! Plans: the DAG with every stage placed on a device, a batch size, and
//! explicit `Load` / `Unload` / `ClearCache` nodes. The executor runs plans,
//! never raw DAGs.
//!
//! This planner is deliberately simple: each model is loaded before the
//! first stage that uses it and unloaded (with the device cache cleared)
//! after the last one. The memory planner replaces it with residency,
//! placement and batch sizes computed against device budgets.

use serde::Serialize;

use crate::device::{DeviceId, DeviceRequest};
use crate::graph::Workflow;
use crate::spec::BatchSize;

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
    /// Run a stage over the items.
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

/// Where and how one stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The device.
    pub device: DeviceId,
    /// Items per batch.
    pub batch: u32,
}

/// A runnable plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The steps, in order.
    pub nodes: Vec<PlanNode>,
    /// Per stage (topological order): its device and batch size.
    pub placements: Vec<Placement>,
}

impl Plan {
    /// The naive plan of `workflow`: load before first use, unload after last.
    pub fn naive(workflow: &Workflow) -> Self {
        let placements: Vec<Placement> = workflow
            .stages
            .iter()
            .map(|s| {
                let device = match s.spec.device_request() {
                    DeviceRequest::Exact(d) => d,
                    DeviceRequest::AnyCuda => DeviceId::Cuda(0),
                    DeviceRequest::Auto => DeviceId::Cpu,
                };
                let batch = match s.spec.batch.as_ref().map(|b| (b.size, b.max)) {
                    Some((BatchSize::Fixed(n), _)) => n,
                    Some((BatchSize::Auto, max)) => max,
                    None => 1,
                };
                Placement { device, batch }
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, stage) in workflow.stages.iter().enumerate() {
            let device = placements[i].device;
            if let Some(model) = &stage.spec.model {
                nodes.push(PlanNode::Load {
                    model: model.to_string(),
                    stage: i,
                    device,
                });
            }
            nodes.push(PlanNode::Run {
                stage: i,
                device,
                batch: placements[i].batch,
            });
            if let Some(model) = &stage.spec.model {
                nodes.push(PlanNode::Unload {
                    model: model.to_string(),
                    stage: i,
                    device,
                });
                if device.is_accelerator() {
                    nodes.push(PlanNode::ClearCache { device });
                }
            }
        }
        Self { nodes, placements }
    }

    /// The memory nodes that follow the `Run` of `stage` (run once every
    /// item has passed it).
    pub fn after(&self, stage: usize) -> &[PlanNode] {
        let Some(run) = self
            .nodes
            .iter()
            .position(|n| matches!(n, PlanNode::Run { stage: s, .. } if *s == stage))
        else {
            return &[];
        };
        let end = self.nodes[run + 1..]
            .iter()
            .position(|n| matches!(n, PlanNode::Run { .. } | PlanNode::Load { .. }))
            .map_or(self.nodes.len(), |p| run + 1 + p);
        &self.nodes[run + 1..end]
    }

    /// The `Load` nodes that precede the `Run` of `stage`.
    pub fn before(&self, stage: usize) -> Vec<&PlanNode> {
        let Some(run) = self
            .nodes
            .iter()
            .position(|n| matches!(n, PlanNode::Run { stage: s, .. } if *s == stage))
        else {
            return Vec::new();
        };
        self.nodes[..run]
            .iter()
            .rev()
            .take_while(|n| matches!(n, PlanNode::Load { .. }))
            .collect()
    }
}
