//! What a stage needs on its device: resident weights, working memory per
//! batch element, and a fixed overhead per batch.
//!
//! Sources, strongest first: `memory:` in the workflow, a calibration stored
//! by `flow calibrate`, the weight files themselves (weights only), and the
//! stage kind's own estimate.

use serde::{Deserialize, Serialize};

use super::calibration::Calibrations;
use super::weights::{model_dir, weight_bytes};
use crate::graph::{StageNode, Workflow};

/// A stage kind's estimate of its memory, from its settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Weights when no weight files can be read (bytes).
    pub weights: u64,
    /// Working memory per batch element (bytes).
    pub per_item: u64,
    /// Working memory per batch, whatever its size (bytes).
    pub fixed: u64,
    /// Bytes per weight element at the compute dtype (4 for f32).
    pub compute_bytes: u64,
}

/// Where a figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `memory:` in the workflow.
    Workflow,
    /// Measured by `flow calibrate`.
    Calibrated,
    /// Read from the model's weight files.
    WeightFiles,
    /// The stage kind's estimate.
    Estimate,
    /// Nothing known: counted as zero.
    Unknown,
}

/// A stage's memory needs on its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    /// Resident weights, bytes (0 for stages without a model).
    pub weights: u64,
    /// Working memory per batch element, bytes.
    pub per_item: u64,
    /// Working memory per batch, bytes.
    pub fixed: u64,
    /// Where `weights` came from.
    pub weights_from: Source,
    /// Where `per_item` and `fixed` came from.
    pub work_from: Source,
}

impl Footprint {
    /// Working memory of a batch of `batch` elements.
    pub fn work(&self, batch: u32) -> u64 {
        self.fixed + self.per_item * u64::from(batch)
    }
}

/// Every stage's footprint, in stage order.
pub fn footprints(workflow: &Workflow, calibrations: &Calibrations) -> Vec<Footprint> {
    workflow
        .stages
        .iter()
        .map(|stage| footprint(workflow, stage, calibrations))
        .collect()
}

fn footprint(workflow: &Workflow, stage: &StageNode, calibrations: &Calibrations) -> Footprint {
    let estimate = stage.kind.memory_estimate(&stage.spec.config);
    let compute_bytes = if estimate.compute_bytes == 0 {
        4
    } else {
        estimate.compute_bytes
    };
    let calibrated = calibrations.for_stage(workflow, stage);
    let declared = stage.spec.memory.clone().unwrap_or_default();
    let files = stage
        .spec
        .model
        .as_ref()
        .and_then(|m| workflow.spec.models.get(m))
        .and_then(|m| model_dir(m, &workflow.dir))
        .and_then(|dir| weight_bytes(&dir, compute_bytes));

    let (weights, weights_from) = if let Some(b) = declared.model {
        (b.bytes(), Source::Workflow)
    } else if stage.spec.model.is_none() {
        (0, Source::Unknown)
    } else if let Some(c) = &calibrated {
        (c.weights, Source::Calibrated)
    } else if let Some(files) = files {
        (files.bytes, Source::WeightFiles)
    } else if estimate.weights > 0 {
        (estimate.weights, Source::Estimate)
    } else {
        (0, Source::Unknown)
    };
    let (per_item, fixed, work_from) = if let Some(b) = declared.per_item {
        (b.bytes(), 0, Source::Workflow)
    } else if let Some(c) = &calibrated {
        (c.per_item, c.fixed, Source::Calibrated)
    } else if estimate.per_item > 0 || estimate.fixed > 0 {
        (estimate.per_item, estimate.fixed, Source::Estimate)
    } else {
        (0, 0, Source::Unknown)
    };
    Footprint {
        weights,
        per_item,
        fixed,
        weights_from,
        work_from,
    }
}
