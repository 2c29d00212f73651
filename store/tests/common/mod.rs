//! Helpers for the sink tests: a sink built as the executor builds it, run
//! on items with upstream results made by hand in the shapes of
//! `docs/data-contracts.md`.

#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flow_engine::device::DeviceId;
use flow_engine::items::Item;
use flow_engine::registry::{
    BuildContext, ResolvedOutput, StageError, StageInput, StageKind, StageOutput, Upstream,
};
use flow_engine::spec::StageSpec;
use flow_engine::Stage;
use serde_json::json;

/// One sink stage in a workflow folder of its own.
pub struct Sink {
    /// The workflow folder.
    pub dir: tempfile::TempDir,
    stage: Arc<dyn Stage>,
    runs: std::sync::atomic::AtomicU32,
}

fn build(kind: &dyn StageKind, config: &serde_json::Value, dir: &Path) -> Arc<dyn Stage> {
    let problems = kind.check(config);
    assert!(
        problems.is_empty(),
        "invalid settings {config}: {problems:?}"
    );
    let spec: StageSpec = serde_json::from_value(json!({ "uses": kind.name() })).unwrap();
    let ctx = BuildContext {
        stage_id: "sink",
        spec: &spec,
        workflow_dir: dir,
        state_dir: &dir.join(".flow"),
        model_dir: None,
    };
    kind.build(&ctx, config).unwrap()
}

impl Sink {
    /// Builds `kind` with `config` (its `with:`).
    pub fn new(kind: &dyn StageKind, config: serde_json::Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stage = build(kind, &config, dir.path());
        Self {
            dir,
            stage,
            runs: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Ends the run (as the executor does) and builds the stage again, as
    /// the next `flow run` would.
    pub fn next_run(&mut self, kind: &dyn StageKind, config: serde_json::Value) {
        self.finish();
        self.stage = build(kind, &config, self.dir.path());
    }

    /// The path `rel` in the workflow folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs the sink on item `id` with `upstream`.
    pub fn run(&self, id: &str, upstream: Vec<Upstream>) -> Result<StageOutput, StageError> {
        self.run_item(item(id), upstream)
    }

    /// Runs the sink on `item` with `upstream`.
    pub fn run_item(&self, item: Item, upstream: Vec<Upstream>) -> Result<StageOutput, StageError> {
        let n = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let input = StageInput {
            item: Arc::new(item),
            upstream,
            out_dir: self.dir.path().join(format!("scratch{n}")),
            device: DeviceId::Cpu,
            timeout: None,
        };
        self.stage.run(&input)
    }

    /// Runs the sink and fails the test when it fails.
    pub fn ok(&self, id: &str, upstream: Vec<Upstream>) -> serde_json::Value {
        let out = self
            .run(id, upstream)
            .unwrap_or_else(|e| panic!("the sink failed on `{id}`: {}", e.message));
        out.outputs
            .first()
            .and_then(|o| o.value.clone())
            .unwrap_or_default()
    }

    /// Ends the run.
    pub fn finish(&self) {
        self.stage.finish().unwrap();
    }
}

/// An item as `inputs: { files: "media/*.wav" }` makes it.
pub fn item(id: &str) -> Item {
    Item {
        id: id.to_string(),
        source: format!("/data/{id}"),
        fingerprint: "test".to_string(),
        error: None,
        row: None,
    }
}

fn upstream(stage: &str, port: &str, files: Vec<PathBuf>, value: serde_json::Value) -> Upstream {
    Upstream {
        stage: stage.to_string(),
        outputs: vec![ResolvedOutput {
            port: port.to_string(),
            files,
            value: Some(value),
        }],
    }
}

/// `audio.decode`'s value for `seconds` of audio.
pub fn audio(seconds: f64) -> Upstream {
    upstream(
        "decode",
        "audio",
        Vec::new(),
        json!({ "sample_rate": 16000, "samples": (seconds * 16000.0) as u64, "seconds": seconds }),
    )
}

/// A Whisper segment (text with Whisper's leading space).
pub fn segment(id: usize, start: f64, end: f64, text: &str) -> serde_json::Value {
    json!({
        "id": id, "start": start, "end": end, "text": format!(" {text}"),
        "tokens": [50363, 1002], "avg_logprob": -0.25, "no_speech_prob": 0.02,
        "compression_ratio": 1.4, "temperature": 0.0,
    })
}

/// `asr.whisper`'s transcript of `(start, end, text)` segments.
pub fn transcript(segments: &[(f64, f64, &str)]) -> Upstream {
    let list: Vec<_> = segments
        .iter()
        .enumerate()
        .map(|(i, (s, e, t))| segment(i, *s, *e, t))
        .collect();
    let seconds = segments.last().map_or(0.0, |s| s.1);
    upstream(
        "asr",
        "transcript",
        Vec::new(),
        json!({ "language": "en", "model": "whisper-tiny", "seconds": seconds, "segments": list }),
    )
}

/// `speaker.identify`'s output: segments with speakers (`None`: unknown).
pub fn speakers(segments: &[(f64, f64, &str, Option<&str>)], mode: &str) -> Upstream {
    let list: Vec<_> = segments
        .iter()
        .enumerate()
        .map(|(i, (s, e, t, who))| {
            let mut v = segment(i, *s, *e, t);
            v["speaker"] = json!(who);
            v["speaker_confidence"] = json!(who.map(|_| 0.9));
            v
        })
        .collect();
    let reason = (mode == "degraded").then_some("no voice profile `chaffee`");
    upstream(
        "speakers",
        "speakers",
        Vec::new(),
        json!({ "target": "chaffee", "mode": mode, "reason": reason, "turns": [], "segments": list }),
    )
}

/// One chunk: start, end, text, speakers, segment ids.
pub type ChunkSpec<'a> = (f64, f64, &'a str, &'a [&'a str], &'a [usize]);

/// `text.chunk`'s output.
pub fn chunks(list: &[ChunkSpec<'_>]) -> Upstream {
    let chunks: Vec<_> = list
        .iter()
        .enumerate()
        .map(|(i, (s, e, t, who, segs))| {
            json!({ "id": i, "start": s, "end": e, "text": t, "speakers": who, "segments": segs })
        })
        .collect();
    upstream("chunk", "chunks", Vec::new(), json!({ "chunks": chunks }))
}

/// `text.embed`'s output: `rows` written as `embeddings.f32` under `dir`.
pub fn embeddings(dir: &Path, name: &str, of: &str, rows: &[Vec<f32>]) -> Upstream {
    let folder = dir.join(format!("embed-{name}"));
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("embeddings.f32");
    let bytes: Vec<u8> = rows
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&file, bytes).unwrap();
    let dim = rows.first().map_or(0, Vec::len);
    upstream(
        "embed",
        "embeddings",
        vec![file],
        json!({ "model": "minilm", "dim": dim, "count": rows.len(), "normalized": false, "of": of }),
    )
}
