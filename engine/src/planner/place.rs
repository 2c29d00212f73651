//! Placement: which device each stage runs on.

use std::collections::{BTreeMap, BTreeSet};

use super::{batch_bounds, need_text, PlanError};
use crate::device::{DeviceId, DeviceRequest};
use crate::graph::Workflow;
use crate::memory::{human, Footprint, Inventory};
use crate::plan::Placement;

/// What is pinned to one GPU so far: weights and the largest batch buffer
/// at minimum batch size.
#[derive(Default, Clone, Copy)]
struct Pinned {
    weights: u64,
    work: u64,
}

/// Places every stage; batch sizes are filled in by residency planning.
pub(super) fn place(
    workflow: &Workflow,
    inventory: &Inventory,
    footprints: &[Footprint],
    standby: &BTreeSet<usize>,
) -> Result<Vec<Placement>, Vec<PlanError>> {
    let mut errors = Vec::new();
    let mut chosen: Vec<Option<(DeviceId, String)>> = Vec::new();
    let mut pinned: BTreeMap<DeviceId, Pinned> = BTreeMap::new();
    for (i, stage) in workflow.stages.iter().enumerate() {
        let fp = &footprints[i];
        let (min, _, _) = batch_bounds(workflow, i);
        let place = match stage.spec.device_request() {
            DeviceRequest::Exact(d) if inventory.get(d).is_some() => {
                Some((d, "as written".to_string()))
            }
            DeviceRequest::Exact(d) => {
                errors.push(missing(workflow, i, d, inventory));
                None
            }
            DeviceRequest::AnyCuda => match inventory
                .accelerators()
                .find(|d| matches!(d.id, DeviceId::Cuda(_)))
            {
                Some(d) => Some((d.id, "the first CUDA device".to_string())),
                None => {
                    errors.push(missing(workflow, i, DeviceId::Cuda(0), inventory));
                    None
                }
            },
            DeviceRequest::Auto => {
                chosen.push(None);
                continue;
            }
        };
        if let Some((d, _)) = &place {
            if d.is_accelerator() && !standby.contains(&i) {
                let p = pinned.entry(*d).or_default();
                p.weights += fp.weights;
                p.work = p.work.max(fp.work(min));
            }
        }
        chosen.push(place);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Stages left for `auto` to place (the rest were pinned above).
    let auto: Vec<bool> = chosen.iter().map(Option::is_none).collect();
    for (i, stage) in workflow.stages.iter().enumerate() {
        if chosen[i].is_some() {
            continue;
        }
        let fp = &footprints[i];
        let (min, _, _) = batch_bounds(workflow, i);
        let wants_gpu =
            stage.kind.resources().accelerator || stage.spec.model.is_some() || fp.weights > 0;
        let mut why = if wants_gpu {
            "auto: no GPU here".to_string()
        } else {
            "auto: the stage kind runs on the CPU".to_string()
        };
        let mut place = (DeviceId::Cpu, String::new());
        if wants_gpu {
            for gpu in inventory.accelerators().filter(|d| d.auto) {
                let p = pinned.get(&gpu.id).copied().unwrap_or_default();
                let need = p.weights + fp.weights + p.work.max(fp.work(min));
                if need <= gpu.budget {
                    place = (
                        gpu.id,
                        format!("auto: fits on {} beside what stays there", gpu.id),
                    );
                    if !standby.contains(&i) {
                        let e = pinned.entry(gpu.id).or_default();
                        e.weights += fp.weights;
                        e.work = e.work.max(fp.work(min));
                    }
                    break;
                }
                why = format!(
                    "auto: needs {} on {} beside {} of resident models, over its {} budget",
                    need_text(fp, min),
                    gpu.id,
                    human(p.weights),
                    human(gpu.budget)
                );
            }
        }
        if place.1.is_empty() {
            place.1 = why;
        }
        chosen[i] = Some(place);
    }
    Ok(chosen
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (device, why) = c.unwrap_or((DeviceId::Cpu, String::new()));
            let auto = auto[i];
            let (min, _, _) = batch_bounds(workflow, i);
            Placement {
                device,
                batch: min,
                min_batch: min,
                footprint: footprints[i],
                why,
                auto,
                standby: standby.contains(&i),
            }
        })
        .collect())
}

fn missing(
    workflow: &Workflow,
    stage: usize,
    device: DeviceId,
    inventory: &Inventory,
) -> PlanError {
    let id = workflow.stages[stage].id.to_string();
    let (message, help) = match device {
        DeviceId::Cuda(_) => {
            let why = match &inventory.cuda {
                crate::memory::cuda::CudaProbe::Unavailable { reason } => reason.clone(),
                crate::memory::cuda::CudaProbe::Available { devices, .. } => {
                    format!("this machine has {} CUDA device(s)", devices.len())
                }
            };
            (
                format!("stage `{id}` asks for `{device}`, which is not here ({why})"),
                format!(
                    "write `device: auto` to use a GPU when there is one and the CPU otherwise, or plan for a card with `--device {device}=16GiB`"
                ),
            )
        }
        DeviceId::Vulkan(n) => {
            let why = inventory
                .vulkan
                .unusable(n)
                .unwrap_or_else(|| "it is not usable".into());
            (
                format!("stage `{id}` asks for `{device}`, which is not here ({why})"),
                format!(
                    "`flow doctor` lists the Vulkan adapters; write `device: auto` to use a GPU when there is one, or plan for a card with `--device {device}=16GiB`"
                ),
            )
        }
        _ => (
            format!("stage `{id}` asks for `{device}`, which is not declared"),
            format!("declare it: `devices: {{ {device}: {{ capacity: 16GiB }} }}` or `--device {device}=16GiB`"),
        ),
    };
    PlanError {
        stage: id,
        device,
        message,
        help,
        key: "device",
    }
}
