//! The memory planner's run-time checks on a real runtime: a device worker
//! on `vulkan:0` (lavapipe in CI) reads burn's memory pool at every plan
//! node, sees the pool fall back after `Unload` + `ClearCache`, and reports
//! a model that keeps a tensor after its unload as a leak.

use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::tensor::Tensor;
use flow_backend::testing::vulkan_or_skip;
use flow_backend::{burn, install_pools, Vk};
use flow_engine::device::DeviceId;
use flow_engine::exec::{execute, RunRequest};
use flow_engine::registry::{
    BuildContext, ConfigProblem, Ports, Registry, Resources, Stage, StageError, StageInput,
    StageKind, StageOutput,
};
use flow_engine::report::{Event, Reporter};
use flow_engine::spec::{load, LoadOptions};
use flow_engine::state::RunArgs;

type Device = burn::backend::wgpu::WgpuDevice;

/// 32 MiB of f32.
const MODEL_FLOATS: usize = 8 << 20;

/// A "model" of 32 MiB on the Vulkan adapter; `leaky` keeps a quarter of
/// it when unloaded (a forgotten tensor).
struct Held {
    leaky: bool,
    device: Device,
    weights: Mutex<Vec<Tensor<Vk, 1>>>,
    forgotten: Mutex<Vec<Tensor<Vk, 1>>>,
}

impl Stage for Held {
    fn run(&self, _: &StageInput) -> Result<StageOutput, StageError> {
        let w = self.weights.lock().unwrap();
        let total: f32 = w.iter().map(|t| t.clone().sum().into_scalar()).sum();
        assert!(total > 0.0);
        Ok(StageOutput::default())
    }

    fn load(&self, _: DeviceId) -> Result<(), StageError> {
        let parts = (0..4)
            .map(|_| Tensor::<Vk, 1>::ones([MODEL_FLOATS / 4], &self.device))
            .collect::<Vec<_>>();
        // Force the allocation now (burn's fusion is lazy).
        for p in &parts {
            let _ = p.clone().slice([0..1]).into_scalar();
        }
        *self.weights.lock().unwrap() = parts;
        Ok(())
    }

    fn unload(&self) {
        let mut w = self.weights.lock().unwrap();
        if self.leaky {
            if let Some(t) = w.pop() {
                self.forgotten.lock().unwrap().push(t);
            }
        }
        w.clear();
    }
}

struct HeldKind {
    leaky: bool,
    device: Device,
}

impl StageKind for HeldKind {
    fn name(&self) -> &'static str {
        "test.held"
    }
    fn summary(&self) -> &'static str {
        "holds 32 MiB on the device"
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
        Ok(Arc::new(Held {
            leaky: self.leaky,
            device: self.device.clone(),
            weights: Mutex::new(Vec::new()),
            forgotten: Mutex::new(Vec::new()),
        }))
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<Event>>);

impl Reporter for Events {
    fn start(&self, _: &[String], _: usize) {}
    fn item_stage(&self, _: usize, _: bool, _: bool) {}
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
    fn finish(&self) {}
}

/// Runs a one-stage workflow of `test.held` on `vulkan:0`; its events.
fn run(dir: &Path, leaky: bool, device: Device) -> Vec<Event> {
    std::fs::write(dir.join("held.bin"), vec![0u8; 1024]).unwrap();
    let yaml = "name: held\ninputs: { items: [a, b] }\nmodels: { held: { path: held.bin } }\nstages:\n  hold:\n    uses: test.held\n    model: held\n    device: vulkan:0\n    memory: { model: 32MiB, per_item: 1MiB }\n";
    let path = dir.join("held.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut registry = Registry::new();
    registry.register(HeldKind { leaky, device });
    let workflow = load(&path, &LoadOptions::default(), &registry).unwrap();
    let state_dir = dir.join("state");
    let (plan, _) = flow_engine::planner::plan_here(&workflow, &state_dir, 2).unwrap();
    let events = Arc::new(Events::default());
    execute(RunRequest {
        workflow: Arc::new(workflow),
        plan,
        state_dir,
        args: RunArgs::default(),
        resume: None,
        reporter: events.clone(),
        calibrate: false,
        max_items: None,
    })
    .unwrap();
    let out = events.0.lock().unwrap().clone();
    out
}

fn wgpu_device() -> Option<Device> {
    let device = vulkan_or_skip("the memory checks on vulkan")?;
    install_pools();
    match flow_backend::Compute::for_device(device).unwrap() {
        flow_backend::Compute::Vulkan(_, d) => Some(d),
        other => panic!("vulkan:0 opened as {}", other.describe()),
    }
}

fn snapshots(events: &[Event]) -> Vec<(String, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Memory {
                node,
                in_use,
                reserved,
                device,
                ..
            } if device == "vulkan:0" => Some((node.clone(), *in_use, *reserved)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_pool_falls_back_after_unload_and_a_kept_tensor_is_a_leak() {
    let Some(device) = wgpu_device() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // A model that frees everything: the pool's snapshots around load and
    // unload, and no leak.
    let clean = run(dir.path(), false, device.clone());
    let snaps = snapshots(&clean);
    for (node, in_use, reserved) in &snaps {
        eprintln!("vulkan:0 pool at `{node}`: in use {in_use} B, reserved {reserved} B");
    }
    let at = |name: &str| {
        snaps
            .iter()
            .find(|(n, _, _)| n.starts_with(name))
            .unwrap_or_else(|| panic!("no snapshot at `{name}` in {snaps:?}"))
            .1
    };
    let loaded = at("load held");
    let unloaded = at("unload held");
    assert!(
        loaded >= 32 << 20,
        "the pool holds the 32 MiB model: {snaps:?}"
    );
    assert!(
        unloaded + (32 << 20) <= loaded + (1 << 20),
        "the pool fell back after the unload: {snaps:?}"
    );
    assert!(
        !clean.iter().any(|e| matches!(e, Event::MemoryLeak { .. })),
        "no leak: {clean:?}"
    );

    // A model that keeps a quarter of its weights: reported as a leak of
    // about 8 MiB.
    let dir = tempfile::tempdir().unwrap();
    let leaky = run(dir.path(), true, device);
    let leak = leaky.iter().find_map(|e| match e {
        Event::MemoryLeak {
            leaked,
            loaded,
            model,
            ..
        } => Some((*leaked, *loaded, model.clone())),
        _ => None,
    });
    let (leaked, took, model) = leak.unwrap_or_else(|| panic!("no leak reported: {leaky:?}"));
    eprintln!("leak reported: {leaked} B of {took} B kept by `{model}`");
    assert_eq!(model, "held");
    assert!((8 << 20..=9 << 20).contains(&leaked), "{leaked}");
}
