//! The memory planner: turns a validated workflow, the device inventory and
//! every stage's footprint into a [`Plan`] whose predicted peak on every
//! device stays under its budget — or says, before anything runs, which
//! stage does not fit where and what to change.
//!
//! 1. Placement ([`place`]): stages with an explicit device stay there;
//!    `device: auto` goes to the first GPU where it fits beside the models
//!    pinned there without forcing any swapping, else to the CPU.
//! 2. Residency ([`residency`]): per GPU, keep every model resident when
//!    they fit together; otherwise process items in waves and, within a
//!    wave, evict the resident model whose next use is farthest away
//!    (Belady), inserting `Unload` and `ClearCache` nodes.
//! 3. Batch: the largest size in `batch.min..=batch.max` that fits beside
//!    the models resident at that point.

pub mod chart;
mod place;
mod report;
mod residency;

pub use report::diagnostics;

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::device::DeviceId;
use crate::graph::Workflow;
use crate::memory::{human, Footprint, Inventory};
use crate::plan::{DevicePlan, Plan};
use crate::spec::{BatchSize, Fallback};

/// Why a workflow cannot run on these devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanError {
    /// The stage.
    pub stage: String,
    /// The device.
    pub device: DeviceId,
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub help: String,
    /// The YAML key to point at, below `stages.<id>`.
    pub key: &'static str,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The batch bounds of a stage: (min, max, auto).
pub(crate) fn batch_bounds(workflow: &Workflow, stage: usize) -> (u32, u32, bool) {
    match workflow.stages[stage].spec.batch.as_ref() {
        Some(b) => match b.size {
            BatchSize::Fixed(n) => (n, n, false),
            BatchSize::Auto => (b.min.max(1), b.max.max(b.min.max(1)), true),
        },
        None => (1, 1, false),
    }
}

/// The batch range of stage `stage`: (min, max).
pub fn batch_range(workflow: &Workflow, stage: usize) -> (u32, u32) {
    let (min, max, _) = batch_bounds(workflow, stage);
    (min, max)
}

/// Stages that only run as another stage's `fallback`.
pub fn standby_stages(workflow: &Workflow) -> BTreeSet<usize> {
    workflow
        .stages
        .iter()
        .filter_map(|s| match &s.spec.fallback {
            Some(Fallback::Stage(id)) => workflow.stage_index(id.as_str()),
            _ => None,
        })
        .collect()
}

/// Plans `workflow` for `items` items on `inventory`'s devices.
///
/// # Errors
/// Every stage that cannot be placed or does not fit, with what to change.
pub fn plan(
    workflow: &Workflow,
    inventory: &Inventory,
    footprints: &[Footprint],
    items: usize,
) -> Result<Plan, Vec<PlanError>> {
    let standby = standby_stages(workflow);
    let mut placements = place::place(workflow, inventory, footprints, &standby)?;
    let mut devices: Vec<DevicePlan> = Vec::new();
    let mut errors = Vec::new();
    let mut wave_size: Option<usize> = None;
    for info in &inventory.devices {
        let stages: Vec<usize> = (0..placements.len())
            .filter(|&i| placements[i].device == info.id && !standby.contains(&i))
            .collect();
        if stages.is_empty() {
            continue;
        }
        match residency::schedule(workflow, info, &stages, &mut placements) {
            Ok((plan, wave)) => {
                if let Some(w) = wave {
                    wave_size = Some(wave_size.map_or(w, |v| v.max(w)));
                }
                devices.push(plan);
            }
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut plan = Plan {
        placements,
        devices,
        wave_size,
        items,
        loads: 0,
        naive_loads: 0,
    };
    let waves = plan.waves() as u64;
    plan.loads = plan
        .devices
        .iter()
        .map(|d| u64::from(d.loads_first) + (waves - 1) * u64::from(d.loads_repeat))
        .sum();
    plan.naive_loads = (0..plan.placements.len())
        .filter(|&i| {
            (workflow.stages[i].spec.model.is_some() || plan.placements[i].footprint.weights > 0)
                && !standby.contains(&i)
        })
        .count() as u64
        * items as u64;
    Ok(plan)
}

/// Plans `workflow` for `items` items on this machine's devices (and the
/// ones it declares), using the calibrations stored in `state_dir`.
///
/// # Errors
/// The stages that cannot be placed or do not fit, as diagnostics pointing
/// into the workflow file.
pub fn plan_here(
    workflow: &Workflow,
    state_dir: &std::path::Path,
    items: usize,
) -> Result<(Plan, Inventory), crate::diag::ConfigErrors> {
    let inventory = Inventory::detect(&workflow.spec.devices);
    let calibrations = crate::memory::calibration::Calibrations::load_dir(state_dir);
    let footprints = crate::memory::footprint::footprints(workflow, &calibrations);
    let plan =
        plan(workflow, &inventory, &footprints, items).map_err(|e| diagnostics(workflow, &e))?;
    Ok((plan, inventory))
}

/// "3.0 GiB weights + 0.5 GiB × 4 items": what a stage needs at `batch`.
pub(crate) fn need_text(fp: &Footprint, batch: u32) -> String {
    let mut parts = Vec::new();
    if fp.weights > 0 {
        parts.push(format!("{} weights", human(fp.weights)));
    }
    if fp.per_item > 0 {
        parts.push(format!(
            "{} × {batch} item{}",
            human(fp.per_item),
            if batch == 1 { "" } else { "s" }
        ));
    }
    if fp.fixed > 0 {
        parts.push(format!("{} per batch", human(fp.fixed)));
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(" + ")
    }
}

#[cfg(test)]
mod tests;
