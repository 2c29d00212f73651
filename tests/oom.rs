//! The out-of-memory ladder under injected faults (`FLOW_FAULTS`): a run of
//! 100 items with OOMs at every GPU stage ends with every item done,
//! degraded or failed with a reason, and batch sizes recover.

mod common;

use std::path::Path;

use common::{flow, text};
use serde_json::Value;

#[test]
fn a_hundred_items_survive_ooms_at_every_gpu_stage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("items")).unwrap();
    for i in 0..100 {
        std::fs::write(
            dir.path().join(format!("items/{i:03}.txt")),
            format!("{i}\n"),
        )
        .unwrap();
    }
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/seed.yaml");
    let faults = [
        // asr: a batch and its retry after clearing the cache fail: the
        // batch is bisected, then the size climbs back.
        "oom:asr@2-3",
        // speaker: one failure, cured by clearing the cache.
        "oom:speaker@2",
        // diarize: every attempt fails: `fallback: skip` carries items on.
        "oom:diarize@*",
        // embed: every attempt on the GPU fails: the ladder goes down to
        // batch 1, then `on_oom: cpu` runs the items on the CPU.
        "oom:embed@*",
    ]
    .join(",");
    let output = flow()
        .current_dir(dir.path())
        .env("FLOW_FAULTS", &faults)
        .args(["run", seed.to_str().unwrap(), "--inputs", "items/*.txt"])
        .args(["--state-dir", "state"])
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(
        matches!(output.status.code(), Some(0 | 2)),
        "exited abnormally: {:?}\n{stderr}",
        output.status
    );
    assert!(stderr.contains("100 succeeded (100 degraded)"), "{stderr}");

    let state = dir.path().join("state");
    let output = flow()
        .args([
            "status",
            "--state-dir",
            state.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    for stage in report["stages"].as_array().unwrap() {
        let sum: u64 = ["done", "degraded", "failed", "blocked"]
            .iter()
            .map(|k| stage[k].as_u64().unwrap())
            .sum();
        assert_eq!(sum, 100, "every item accounted for in {stage}");
    }
    let diarize = &report["stages"][2];
    assert_eq!(diarize["degraded"], 100);
    for d in report["degraded"].as_array().unwrap() {
        assert!(
            d["reason"].as_str().unwrap().contains("out of memory"),
            "{d}"
        );
    }
    let memory = report["memory"].as_array().unwrap();
    let steps = |stage: &str, step: &str| {
        memory
            .iter()
            .filter(|e| e["stage"] == stage && e["step"] == step)
            .count()
    };
    assert!(steps("asr", "clear_cache") >= 1);
    assert!(steps("asr", "shrink_batch") >= 1);
    assert!(steps("speaker", "clear_cache") >= 1);
    assert_eq!(steps("speaker", "shrink_batch"), 0);
    assert!(steps("embed", "device") >= 1, "embed moved to the CPU");
    // asr's batch size went down and came back to the planned 8.
    let sizes: Vec<u64> = memory
        .iter()
        .filter(|e| e["event"] == "batch_size" && e["stage"] == "asr")
        .map(|e| e["to"].as_u64().unwrap())
        .collect();
    assert!(sizes.iter().any(|&s| s < 8), "{sizes:?}");
    assert_eq!(sizes.last(), Some(&8), "{sizes:?}");

    let output = flow()
        .args(["status", "--state-dir", state.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, _) = text(&output);
    assert!(stdout.contains("memory events:"), "{stdout}");
    assert!(stdout.contains("degraded items"), "{stdout}");
}
