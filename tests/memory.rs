//! The memory planner and the out-of-memory ladder, end to end through the
//! `flow` binary, on `workflows/seed.yaml`: the seed pipeline's four models
//! on a simulated GPU.

mod common;

use std::path::{Path, PathBuf};

use common::{flow, run_in, text};
use serde_json::Value;

const GIB: u64 = 1 << 30;

fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/seed.yaml")
}

fn plan_json(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    let mut all = vec!["plan", seed.to_str().unwrap(), "--format", "json"];
    all.extend_from_slice(args);
    let output = run_in(dir.path(), &all);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn device<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == id)
        .unwrap_or_else(|| panic!("no {id} in {plan}"))
}

#[test]
fn the_seed_scenario_fits_16_gib_with_fewer_loads_than_unloading_after_every_stage() {
    let plan = plan_json(&[]);
    let sim = device(&plan, "sim:0");
    assert_eq!(sim["total"], 16 * GIB);
    let (peak, budget) = (
        sim["peak"].as_u64().unwrap(),
        sim["budget"].as_u64().unwrap(),
    );
    assert!(peak <= budget, "peak {peak} over budget {budget}");
    assert!(budget <= 16 * GIB - 16 * GIB / 10);
    for step in sim["first"].as_array().unwrap() {
        assert!(step["peak"].as_u64().unwrap() <= budget, "{step}");
    }
    // All four models stay resident: 4 loads for the 3 example clips,
    // against 12 when every model is loaded and unloaded per clip.
    assert_eq!(plan["loads"], 4);
    assert_eq!(plan["naive_loads"], 12);
    let embed = &plan["placements"][3];
    assert_eq!(embed["device"], "sim:0");
}

#[test]
fn with_10_gib_the_auto_embedder_goes_to_the_cpu() {
    let plan = plan_json(&["--device", "sim:0=10GiB"]);
    let embed = &plan["placements"][3];
    assert_eq!(embed["device"], "cpu", "{embed}");
    assert!(
        embed["why"]
            .as_str()
            .unwrap()
            .contains("over its 9.0 GiB budget"),
        "{embed}"
    );
    let sim = device(&plan, "sim:0");
    assert!(sim["peak"].as_u64().unwrap() <= sim["budget"].as_u64().unwrap());
    assert_eq!(sim["all_resident"], true);
}

#[test]
fn models_that_cannot_all_stay_are_swapped_in_waves_and_the_run_follows_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("items")).unwrap();
    for i in 0..300 {
        std::fs::write(
            dir.path().join(format!("items/{i:03}.txt")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    let seed = seed();
    let seed = seed.to_str().unwrap();
    let state = dir.path().join("state");
    let args = [
        "--device",
        "sim:0=8GiB",
        "--inputs",
        "items/*.txt",
        "--set",
        "stages.speaker.batch.max=8",
    ];
    let mut plan_args = vec!["plan", seed, "--format", "json"];
    plan_args.extend_from_slice(&args);
    let output = run_in(dir.path(), &plan_args);
    assert!(output.status.success(), "{:?}", text(&output));
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(device(&plan, "sim:0")["all_resident"], false);
    let wave = plan["wave_size"].as_u64().unwrap();
    assert!(wave < 300, "{wave}");
    let predicted = plan["loads"].as_u64().unwrap();

    let mut run_args = vec!["run", seed, "--state-dir", state.to_str().unwrap()];
    run_args.extend_from_slice(&args);
    let output = run_in(dir.path(), &run_args);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("300 succeeded"), "{stderr}");
    let events = std::fs::read_to_string(state.join("runs/1/events.jsonl")).unwrap();
    let loads = events
        .lines()
        .filter(|l| l.contains(r#""event":"plan_node""#) && l.contains(r#""node":"load "#))
        .count() as u64;
    assert_eq!(
        loads, predicted,
        "the run loaded models as the plan predicted"
    );
    assert!(
        loads < 300,
        "loads are amortised over waves, not paid per item"
    );
    // The ledger never went over the simulated card.
    for line in events.lines().filter(|l| l.contains(r#""event":"memory""#)) {
        let e: Value = serde_json::from_str(line).unwrap();
        if e["device"] == "sim:0" {
            assert!(e["reserved"].as_u64().unwrap() <= 8 * GIB, "{line}");
        }
    }
}

#[test]
fn a_workflow_that_cannot_fit_is_rejected_before_the_run_with_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    let output = run_in(
        dir.path(),
        &["run", seed.to_str().unwrap(), "--device", "sim:0=3GiB"],
    );
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("stage `asr` needs 3.0 GiB weights + 512 MiB × 1 item"),
        "{stderr}"
    );
    assert!(stderr.contains("budget is 2.0 GiB"), "{stderr}");
    assert!(
        stderr.contains("seed.yaml:"),
        "points into the file: {stderr}"
    );
    assert!(stderr.contains("device: auto"), "{stderr}");
    assert!(!dir.path().join(".flow").exists());
}

#[test]
fn plan_prints_steps_and_draws_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed();
    let chart = dir.path().join("seed.svg");
    let output = run_in(
        dir.path(),
        &[
            "plan",
            seed.to_str().unwrap(),
            "--device",
            "sim:0=8GiB",
            "--chart",
            chart.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("unload  speaker"), "{stdout}");
    assert!(stdout.contains("each later wave"), "{stdout}");
    assert!(stdout.contains("model loads:"), "{stdout}");
    let svg = std::fs::read_to_string(chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(
        svg.contains("sim:0") && svg.contains("budget 7.0 GiB"),
        "{svg}"
    );
}

#[test]
fn doctor_reports_the_host_cuda_and_declared_devices() {
    let output = flow().arg("doctor").output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("host:") && stdout.contains("CUDA:"),
        "{stdout}"
    );
    assert!(stdout.contains("cpu"), "{stdout}");
    let seed = seed();
    let output = flow()
        .args(["doctor", seed.to_str().unwrap(), "--device", "sim:0=10GiB"])
        .output()
        .unwrap();
    let (stdout, _) = text(&output);
    assert!(
        stdout.contains("sim:0") && stdout.contains("10.0 GiB"),
        "{stdout}"
    );
    assert!(stdout.contains("budget   9.0 GiB"), "{stdout}");
}

#[test]
fn calibration_is_stored_and_used_by_later_plans() {
    let dir = tempfile::tempdir().unwrap();
    common::make_items(
        dir.path(),
        &["a.txt".into(), "b.txt".into(), "c.txt".into()],
    );
    std::fs::create_dir_all(dir.path().join("weights")).unwrap();
    std::fs::write(dir.path().join("weights/model.pt"), vec![0u8; 4096]).unwrap();
    let yaml = "name: cal\ninputs: { files: \"items/*.txt\" }\ndevices: { sim:0: { capacity: 4GiB } }\nmodels: { m: { path: weights } }\nstages:\n  s:\n    uses: exec\n    device: sim:0\n    model: m\n    batch: { max: 4 }\n    with: { command: [cp, '{input}', '{out}/x.txt'] }\n";
    std::fs::write(dir.path().join("cal.yaml"), yaml).unwrap();
    let before = run_in(dir.path(), &["plan", "cal.yaml", "--format", "json"]);
    let before: Value = serde_json::from_slice(&before.stdout).unwrap();
    let fp = &before["placements"][0]["footprint"];
    assert_eq!(fp["weights_from"], "weight_files", "{fp}");
    assert_eq!(fp["weights"], 4096);
    assert_eq!(fp["work_from"], "unknown");

    let output = run_in(dir.path(), &["calibrate", "cal.yaml"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("calibrated memory"), "{stdout}");
    assert!(stdout.contains("  s "), "{stdout}");
    let events = std::fs::read_to_string(dir.path().join(".flow/runs/1/events.jsonl")).unwrap();
    assert!(events.contains(r#""event":"calibrated""#), "{events}");

    let after = run_in(dir.path(), &["plan", "cal.yaml", "--format", "json"]);
    let after: Value = serde_json::from_slice(&after.stdout).unwrap();
    let fp = &after["placements"][0]["footprint"];
    assert_eq!(fp["work_from"], "calibrated", "{fp}");
    assert_eq!(fp["weights_from"], "calibrated", "{fp}");
}
