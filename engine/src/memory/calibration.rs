//! Calibration: memory measured by a profiling pass (`flow calibrate`),
//! stored per (model, stage kind and version, device kind) in the state
//! database, and preferred by later plans over the kinds' estimates.
//!
//! The pass runs each accelerator stage once with a batch of 1 and once
//! with a batch of 2 and reads the device's peak after each. The difference
//! is the per-item working memory; the rest of the first peak, above the
//! weights, is the fixed overhead per batch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::device::DeviceId;
use crate::graph::{StageNode, Workflow};
use crate::state::Store;

/// One stage's measured memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calibration {
    /// Weights resident after the load, bytes.
    pub weights: u64,
    /// Working memory per batch element, bytes.
    pub per_item: u64,
    /// Working memory per batch, bytes.
    pub fixed: u64,
    /// Peak working memory with a batch of 1.
    pub peak1: u64,
    /// Peak working memory with a batch of 2.
    pub peak2: u64,
    /// When it was measured (Unix milliseconds).
    pub measured_at: u64,
}

impl Calibration {
    /// Derives the figures from the weights and the two peaks of working
    /// memory (batch 1 and batch 2).
    pub fn from_peaks(weights: u64, peak1: u64, peak2: u64, measured_at: u64) -> Self {
        let per_item = peak2.saturating_sub(peak1);
        Self {
            weights,
            per_item,
            fixed: peak1.saturating_sub(per_item),
            peak1,
            peak2,
            measured_at,
        }
    }
}

/// Every stored calibration, by key.
#[derive(Debug, Clone, Default)]
pub struct Calibrations {
    records: BTreeMap<String, Calibration>,
}

/// The kind of a device, as calibrations are keyed: `cuda`, `sim`, `cpu`.
pub fn device_kind(device: DeviceId) -> &'static str {
    match device {
        DeviceId::Cpu => "cpu",
        DeviceId::Cuda(_) => "cuda",
        DeviceId::Vulkan(_) => "vulkan",
        DeviceId::Sim(_) => "sim",
    }
}

/// The calibration key of `stage` on a device of kind `device_kind`.
pub fn key(workflow: &Workflow, stage: &StageNode, device_kind: &str) -> String {
    let model = stage
        .spec
        .model
        .as_ref()
        .and_then(|m| workflow.spec.models.get(m))
        .map(|m| {
            m.source.clone().unwrap_or_else(|| {
                m.path
                    .as_ref()
                    .map(|p| workflow.dir.join(p).display().to_string())
                    .unwrap_or_default()
            })
        })
        .unwrap_or_else(|| "-".into());
    format!(
        "{model}|{}@{}|{device_kind}",
        stage.kind.name(),
        stage.kind.version()
    )
}

impl Calibrations {
    /// Reads every calibration from `store`.
    pub fn load(store: &Store) -> Self {
        Self {
            records: store.calibrations().into_iter().collect(),
        }
    }

    /// Reads the calibrations of the state directory `dir`, if it exists and
    /// is not in use (an empty set otherwise).
    pub fn load_dir(dir: &std::path::Path) -> Self {
        if !dir.join("db").exists() {
            return Self::default();
        }
        Store::open(dir).map(|s| Self::load(&s)).unwrap_or_default()
    }

    /// The calibration of `stage`, preferring one measured on CUDA.
    pub fn for_stage(&self, workflow: &Workflow, stage: &StageNode) -> Option<Calibration> {
        ["cuda", "sim"]
            .iter()
            .find_map(|kind| self.records.get(&key(workflow, stage, kind)).copied())
    }

    /// How many are stored.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether none are stored.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_peaks_give_per_item_and_fixed() {
        let c = Calibration::from_peaks(100, 30, 50, 0);
        assert_eq!((c.per_item, c.fixed), (20, 10));
    }
}
