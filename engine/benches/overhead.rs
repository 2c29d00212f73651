//! Engine overhead: 10 000 items through 5 trivial stages with durable
//! state, then the same run again fully cached. Prints numbers; asserts
//! nothing about time.
//!
//! `[FIRST_ONLY=1] cargo bench -p flow-engine --bench overhead [-- ITEMS]`

use std::sync::Arc;
use std::time::Instant;

use flow_engine::registry::{
    BuildContext, ConfigProblem, Output, Ports, Resources, Stage, StageError, StageInput,
    StageKind, StageOutput,
};
use flow_engine::{execute, load, LoadOptions, Registry, RunRequest};

/// The allocator of the `flow` binary, so peak RSS is what a run sees.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A stage that does almost nothing: it passes a counter downstream.
struct PassKind;

impl StageKind for PassKind {
    fn name(&self) -> &'static str {
        "pass"
    }
    fn summary(&self) -> &'static str {
        "Pass a counter on (benchmark)"
    }
    fn version(&self) -> u32 {
        1
    }
    fn config_schema(&self) -> serde_json::Value {
        serde_json::json!({ "type": "object" })
    }
    fn check(&self, _: &serde_json::Value) -> Vec<ConfigProblem> {
        Vec::new()
    }
    fn ports(&self, _: &serde_json::Value) -> Ports {
        Ports {
            inputs: Vec::new(),
            outputs: vec!["count".into()],
        }
    }
    fn resources(&self) -> Resources {
        Resources {
            inline: true,
            ..Resources::default()
        }
    }
    fn build(&self, _: &BuildContext<'_>, _: &serde_json::Value) -> Result<Arc<dyn Stage>, String> {
        Ok(Arc::new(Pass))
    }
}

struct Pass;

impl Stage for Pass {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let n = input
            .find("count")
            .filter_map(|o| o.value.as_ref()?.as_u64())
            .sum::<u64>()
            + 1;
        Ok(StageOutput {
            outputs: vec![Output {
                port: "count".into(),
                files: Vec::new(),
                value: Some(n.into()),
            }],
        })
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(String::from)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let items: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let stages = 5;
    let dir = tempfile::tempdir().expect("temp dir");
    let list: String = (0..items).map(|i| format!("mem://item/{i}\n")).collect();
    std::fs::write(dir.path().join("items.txt"), list).expect("write items");
    let mut yaml = String::from(
        "name: overhead\ninputs: { list: items.txt }\nstages:\n  s0: { uses: pass }\n",
    );
    for s in 1..stages {
        yaml.push_str(&format!("  s{s}: {{ uses: pass, needs: [s{}] }}\n", s - 1));
    }
    let path = dir.path().join("overhead.yaml");
    std::fs::write(&path, yaml).expect("write workflow");
    let mut registry = Registry::new();
    registry.register(PassKind);
    let workflow =
        Arc::new(load(&path, &LoadOptions::default(), &registry).expect("valid workflow"));

    let run = |label: &str| {
        let started = Instant::now();
        let summary = execute(RunRequest {
            workflow: workflow.clone(),
            plan: flow_engine::planner::plan_here(&workflow, &dir.path().join(".flow"), items)
                .expect("plan")
                .0,
            state_dir: dir.path().join(".flow"),
            args: Default::default(),
            resume: None,
            reporter: Arc::new(flow_engine::report::Silent),
            calibrate: false,
            max_items: None,
        })
        .expect("run");
        let seconds = started.elapsed().as_secs_f64();
        let transitions = items * stages;
        assert_eq!(summary.succeeded, items);
        println!(
            "{label:<14} {items} items x {stages} stages: {seconds:.3} s, {:.0} item-stage transitions/s ({} computed, {} cached), peak RSS {:.0} MiB",
            transitions as f64 / seconds,
            summary.computed,
            summary.cached,
            peak_rss_mib()
        );
    };
    run("first run");
    // `FIRST_ONLY=1`: the first run alone (its peak RSS is not mixed with
    // the rerun's, which also reads the database back at open).
    if std::env::var_os("FIRST_ONLY").is_none() {
        run("cached rerun");
    }
}
