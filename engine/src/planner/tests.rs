use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::memory::cuda::CudaProbe;
use crate::memory::host::HostMemory;
use crate::memory::inventory::Inventory;
use crate::memory::{calibration::Calibrations, footprint::footprints};
use crate::plan::PlanNode;
use crate::registry::{BuildContext, ConfigProblem, Ports, Resources, Stage};
use crate::spec::{load, LoadOptions};

const GIB: u64 = 1 << 30;

/// A kind that only declares ports; planning never builds stages.
struct Model;

impl crate::registry::StageKind for Model {
    fn name(&self) -> &'static str {
        "model"
    }
    fn summary(&self) -> &'static str {
        "a model stage"
    }
    fn version(&self) -> u32 {
        1
    }
    fn config_schema(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn check(&self, _: &serde_json::Value) -> Vec<ConfigProblem> {
        Vec::new()
    }
    fn ports(&self, _: &serde_json::Value) -> Ports {
        Ports::default()
    }
    fn resources(&self) -> Resources {
        Resources {
            accelerator: true,
            ..Default::default()
        }
    }
    fn build(&self, _: &BuildContext<'_>, _: &serde_json::Value) -> Result<Arc<dyn Stage>, String> {
        Err("not in planner tests".into())
    }
}

/// The seed scenario: ASR 3 GiB, speaker encoder 0.5 GiB, diarizer 3 GiB and
/// an `auto` text embedder 3 GiB, each with batch buffers.
fn seed(devices: &str, asr_device: &str) -> String {
    format!(
        r#"name: seed
inputs: {{ items: [a] }}
devices: {{ {devices} }}
models: {{ whisper: {{ path: w }}, ge2e: {{ path: g }}, diar: {{ path: d }}, minilm: {{ path: m }} }}
stages:
  asr: {{ uses: model, device: {asr_device}, model: whisper, memory: {{ model: 3GiB, per_item: 512MiB }}, batch: {{ min: 1, max: 8 }} }}
  speaker: {{ uses: model, device: {asr_device}, model: ge2e, needs: [asr], memory: {{ model: 512MiB, per_item: 256MiB }}, batch: {{ max: 16 }} }}
  diarize: {{ uses: model, device: {asr_device}, model: diar, needs: [speaker], memory: {{ model: 3GiB, per_item: 1GiB }}, batch: {{ max: 4 }} }}
  embed: {{ uses: model, device: auto, model: minilm, needs: [diarize], memory: {{ model: 3GiB, per_item: 128MiB }}, batch: {{ max: 32 }} }}
"#
    )
}

fn plan_of(yaml: &str, items: usize) -> Result<(Plan, crate::graph::Workflow), Vec<PlanError>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut registry = crate::registry::Registry::new();
    registry.register(Model);
    let workflow = load(&path, &LoadOptions::default(), &registry).unwrap();
    let host = HostMemory {
        total: 64 * GIB,
        available: 60 * GIB,
    };
    let probe = CudaProbe::Unavailable {
        reason: "none".into(),
    };
    let no_vulkan = crate::memory::vulkan::VulkanProbe::Unavailable {
        reason: "none".into(),
    };
    let inventory = Inventory::build(&workflow.spec.devices, host, probe, no_vulkan);
    let fps = footprints(&workflow, &Calibrations::default());
    plan(&workflow, &inventory, &fps, items).map(|p| (p, workflow))
}

fn loads_of(plan: &Plan, device: DeviceId) -> usize {
    plan.device(device).map_or(0, |d| {
        d.first
            .iter()
            .filter(|s| matches!(s.node, PlanNode::Load { .. }))
            .count()
    })
}

#[test]
fn sixteen_gib_keeps_all_four_models_resident() {
    let (plan, _) = plan_of(&seed("sim:0: { capacity: 16GiB }", "sim:0"), 100).unwrap();
    let sim = plan.device(DeviceId::Sim(0)).unwrap();
    assert!(sim.all_resident);
    assert!(sim.peak <= sim.budget, "{} > {}", sim.peak, sim.budget);
    assert_eq!(plan.placements[3].device, DeviceId::Sim(0));
    assert_eq!(plan.loads, 4);
    assert_eq!(plan.naive_loads, 400);
    assert_eq!(plan.wave_size, None);
    // Batches fill what the resident models leave (14.4 GiB - 9.5 GiB).
    assert_eq!(plan.placements[0].batch, 8);
    assert_eq!(plan.placements[2].batch, 4);
}

#[test]
fn ten_gib_puts_the_auto_embedder_on_the_cpu() {
    let (plan, _) = plan_of(&seed("sim:0: { capacity: 10GiB }", "sim:0"), 100).unwrap();
    assert_eq!(plan.placements[3].device, DeviceId::Cpu);
    assert!(
        plan.placements[3].why.contains("auto"),
        "{}",
        plan.placements[3].why
    );
    let sim = plan.device(DeviceId::Sim(0)).unwrap();
    assert!(sim.all_resident && sim.peak <= sim.budget);
    assert_eq!(loads_of(&plan, DeviceId::Sim(0)), 3);
}

#[test]
fn models_that_cannot_all_stay_swap_in_waves_by_belady() {
    let yaml = seed("sim:0: { capacity: 8GiB }", "sim:0").replace("device: auto", "device: sim:0");
    let (plan, _) = plan_of(&yaml, 1000).unwrap();
    let sim = plan.device(DeviceId::Sim(0)).unwrap();
    assert!(!sim.all_resident);
    assert!(sim.peak <= sim.budget, "{} > {}", sim.peak, sim.budget);
    for step in sim.first.iter().chain(&sim.repeat) {
        assert!(step.peak <= sim.budget, "{step:?}");
    }
    let wave = plan.wave_size.unwrap();
    assert!(wave >= 32);
    // Every wave after the first reloads fewer models than per-item loading.
    assert!(
        plan.loads < plan.naive_loads / 10,
        "{} vs {}",
        plan.loads,
        plan.naive_loads
    );
    assert!(sim.loads_repeat <= 4);
    // Something is evicted and the cache cleared before a load.
    assert!(sim
        .repeat
        .iter()
        .any(|s| matches!(s.node, PlanNode::Unload { .. })));
    assert!(sim
        .repeat
        .iter()
        .any(|s| matches!(s.node, PlanNode::ClearCache { .. })));
}

#[test]
fn a_stage_that_fits_nowhere_is_rejected_with_the_numbers() {
    let yaml = seed("sim:0: { capacity: 3GiB }", "sim:0");
    let Err(errors) = plan_of(&yaml, 1) else {
        panic!("expected plan errors")
    };
    let asr = errors.iter().find(|e| e.stage == "asr").unwrap();
    assert!(asr.message.contains("3.0 GiB weights"), "{}", asr.message);
    assert!(asr.message.contains("budget is 2.0 GiB"), "{}", asr.message);
    assert!(asr.help.contains("device: auto"), "{}", asr.help);
}

#[test]
fn cuda_without_a_card_says_how_to_plan_for_one() {
    let yaml = seed("", "cuda");
    let Err(errors) = plan_of(&yaml, 1) else {
        panic!("expected plan errors")
    };
    assert!(
        errors[0].help.contains("--device cuda:0=16GiB"),
        "{:?}",
        errors[0]
    );
    let (plan, _) = plan_of(&seed("cuda:0: { capacity: 16GiB }", "cuda"), 1).unwrap();
    assert_eq!(plan.placements[0].device, DeviceId::Cuda(0));
    let _ = BTreeMap::<u8, u8>::new();
}
