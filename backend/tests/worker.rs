//! The device worker on a real runtime (`vulkan:0`, lavapipe in CI): it
//! reads burn's memory pool at every plan node, sees the pool fall back
//! after `Unload` + `ClearCache`, reports a model that keeps a tensor after
//! its unload as a leak, and takes a real allocation failure of the runtime
//! (cubecl's device thread panics on it) down the out-of-memory ladder:
//! `clear_cache`, `shrink_batch`, and the CPU where the batch may not shrink.

use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::tensor::Tensor;
use flow_backend::testing::vulkan_or_skip;
use flow_backend::{burn, install_pools, with_backend, Compute, Vk};
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

/// One device, one pool: the tests of this file take turns.
static TURN: Mutex<()> = Mutex::new(());

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
            let _ = p.clone().narrow(0, 0, 1).into_scalar();
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

/// A test stage kind on an accelerator: `make` builds its stage.
struct Kind {
    name: &'static str,
    make: Box<dyn Fn() -> Arc<dyn Stage> + Send + Sync>,
}

impl StageKind for Kind {
    fn name(&self) -> &'static str {
        self.name
    }
    fn summary(&self) -> &'static str {
        "a test stage on the device"
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
        Ok((self.make)())
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
    let yaml = "name: held\ninputs: { files: \"items/*.txt\" }\nmodels: { held: { path: held.bin } }\nstages:\n  hold:\n    uses: test.held\n    model: held\n    device: vulkan:0\n    memory: { model: 32MiB, per_item: 1MiB }\n";
    let mut registry = Registry::new();
    registry.register(Kind {
        name: "test.held",
        make: Box::new(move || {
            Arc::new(Held {
                leaky,
                device: device.clone(),
                weights: Mutex::new(Vec::new()),
                forgotten: Mutex::new(Vec::new()),
            })
        }),
    });
    execute_yaml(dir, yaml, registry, 2).1
}

/// Runs `yaml` with the kinds of `registry` over `items` items; how the run
/// ended and its events.
fn execute_yaml(
    dir: &Path,
    yaml: &str,
    registry: Registry,
    items: usize,
) -> (flow_engine::exec::RunSummary, Vec<Event>) {
    std::fs::write(dir.join("held.bin"), vec![0u8; 1024]).unwrap();
    std::fs::create_dir_all(dir.join("items")).unwrap();
    for i in 0..items {
        std::fs::write(dir.join(format!("items/{i}.txt")), format!("{i}\n")).unwrap();
    }
    let path = dir.join("held.yaml");
    std::fs::write(&path, yaml).unwrap();
    let workflow = load(&path, &LoadOptions::default(), &registry).unwrap();
    let state_dir = dir.join("state");
    let (plan, _) = flow_engine::planner::plan_here(&workflow, &state_dir, items).unwrap();
    let events = Arc::new(Events::default());
    let summary = execute(RunRequest {
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
    (summary, out)
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
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
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

/// Floats each item of a `test.alloc` batch allocates, in one tensor with
/// the others: 3/8 of the adapter's largest buffer (cubecl's largest
/// allocation), so a batch of 4 cannot be allocated and a batch of 2 can.
fn item_floats() -> usize {
    let largest = flow_backend::vulkan_probe().adapters()[0].max_buffer as usize;
    largest * 3 / 8 / 4
}

/// A stage whose batch needs one tensor of `ITEM_FLOATS` per item on its
/// device: the runtime, not flow, decides whether it fits.
struct Alloc;

impl Stage for Alloc {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        self.run_batch(std::slice::from_ref(input)).remove(0)
    }

    fn run_batch(&self, inputs: &[StageInput]) -> Vec<Result<StageOutput, StageError>> {
        let compute = match Compute::for_device(inputs[0].device) {
            Ok(c) => c,
            Err(e) => return vec![Err(StageError::failed(e.to_string())); inputs.len()],
        };
        let n = inputs.len();
        let floats = n * item_floats();
        let sum: f32 = with_backend!(&compute, |B, dev| {
            Tensor::<B, 1>::ones([floats], &dev)
                .narrow(0, 0, 4)
                .sum()
                .into_scalar()
        });
        if sum != 4.0 {
            // A dead device reads back zeros: the worker does not trust
            // the batch (its runtime failed under it).
            return vec![Err(StageError::failed(format!("read {sum}"))); n];
        }
        inputs.iter().map(|_| Ok(StageOutput::default())).collect()
    }
}

fn oom_steps(events: &[Event]) -> Vec<(String, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Oom { step, batch, .. } => Some((step.clone(), *batch)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_real_allocation_failure_goes_down_the_ladder_and_every_item_is_done() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    if wgpu_device().is_none() {
        return;
    }
    let workflow = |min: u32| {
        format!(
            "name: alloc\ninputs: {{ files: \"items/*.txt\" }}\nstages:\n  alloc:\n    uses: test.alloc\n    device: vulkan:0\n    memory: {{ per_item: 1MiB }}\n    batch: {{ size: auto, min: {min}, max: 4 }}\n    on_oom: [clear_cache, shrink_batch, cpu]\n"
        )
    };
    let registry = || {
        let mut r = Registry::new();
        r.register(Kind {
            name: "test.alloc",
            make: Box::new(|| Arc::new(Alloc)),
        });
        r
    };

    // The batch may shrink: 4 items fail in the runtime, clearing the cache
    // does not help, 2 fit.
    let dir = tempfile::tempdir().unwrap();
    let (summary, events) = execute_yaml(dir.path(), &workflow(1), registry(), 4);
    let steps = oom_steps(&events);
    eprintln!("shrinkable batch: {summary:?}; ladder {steps:?}");
    for e in &events {
        if let Event::Oom { detail, step, .. } = e {
            eprintln!("  {step}: {detail}");
        }
    }
    assert_eq!((summary.succeeded, summary.failed), (4, 0), "{events:?}");
    assert!(
        steps.iter().any(|(s, b)| s == "clear_cache" && *b == 4),
        "{steps:?}"
    );
    assert!(steps.iter().any(|(s, _)| s == "shrink_batch"), "{steps:?}");
    assert!(
        !steps.iter().any(|(s, _)| s == "device"),
        "no item needed the CPU: {steps:?}"
    );

    // The batch may not shrink: the items go to the CPU and are done.
    let dir = tempfile::tempdir().unwrap();
    let (summary, events) = execute_yaml(dir.path(), &workflow(4), registry(), 4);
    let steps = oom_steps(&events);
    eprintln!("batch of at least 4: {summary:?}; ladder {steps:?}");
    assert_eq!(summary.failed, 0, "{events:?}");
    assert_eq!(summary.succeeded, 4, "{events:?}");
    assert!(
        steps.iter().any(|(s, _)| s == "device"),
        "moved to the CPU: {steps:?}"
    );
}
