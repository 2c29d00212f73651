//! `sink.jsonl`: one JSON line per transcript segment, in one file.
//!
//! Idempotent by rewriting: during a run each item's lines go to
//! `PATH.run`; when the run ends ([`Stage::finish`]) the file is rebuilt
//! from the lines of the items this run did not see (kept from the old
//! file) followed by this run's lines, and renamed into place. A repeated
//! or resumed run therefore never duplicates an item's lines, and a crash
//! leaves the previous file untouched.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flow_engine::registry::{
    BuildContext, ConfigProblem, Output, Ports, Resources, Settings, Stage, StageError, StageInput,
    StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::record::ItemRecord;

/// Settings of `sink.jsonl`.
///
/// ```yaml
/// lines:
///   uses: sink.jsonl
///   needs: [speakers]
///   with: { path: out/segments.jsonl }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlSinkConfig {
    /// The file, relative to the workflow file. It is rewritten when the
    /// run ends: items of this run replace their old lines, lines of other
    /// items are kept. Default `out/<stage id>.jsonl`.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// The `sink.jsonl` kind.
pub struct JsonlSinkKind;

impl Settings for JsonlSinkConfig {}

impl TypedKind for JsonlSinkKind {
    type Config = JsonlSinkConfig;

    fn name(&self) -> &'static str {
        "sink.jsonl"
    }

    fn summary(&self) -> &'static str {
        "Write one JSON line per transcript segment (item, times, speaker, text, quality) to a file"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, c: &JsonlSinkConfig) -> Vec<ConfigProblem> {
        if c.path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return vec![ConfigProblem::new(&["path"], "`path` is empty")
                .help("name a file, like `out/segments.jsonl`")];
        }
        Vec::new()
    }

    fn ports(&self, _config: &JsonlSinkConfig) -> Ports {
        Ports::default()
    }

    fn resources(&self) -> Resources {
        Resources {
            always_run: true,
            ..Resources::default()
        }
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: JsonlSinkConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        let path = match config.path {
            Some(p) => ctx.workflow_dir.join(p),
            None => ctx
                .workflow_dir
                .join("out")
                .join(format!("{}.jsonl", ctx.stage_id)),
        };
        Ok(Arc::new(JsonlSink {
            path,
            run: Mutex::new(None),
        }))
    }
}

/// This run's lines so far.
struct RunFile {
    writer: BufWriter<File>,
    items: HashSet<String>,
}

struct JsonlSink {
    path: PathBuf,
    run: Mutex<Option<RunFile>>,
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The JSON lines of an item, one per segment, each ending in `\n`.
pub fn lines(record: &ItemRecord) -> String {
    let mut out = String::new();
    for s in &record.segments {
        let line = serde_json::json!({
            "item": record.item,
            "title": record.title,
            "segment": s.index,
            "start": s.start,
            "end": s.end,
            "speaker": s.speaker,
            "speaker_confidence": s.speaker_confidence,
            "text": s.text,
            "language": record.language,
            "avg_logprob": s.avg_logprob,
            "no_speech_prob": s.no_speech_prob,
            "compression_ratio": s.compression_ratio,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

impl JsonlSink {
    fn io(&self, what: &str, path: &Path, e: std::io::Error) -> String {
        format!("cannot {what} `{}`: {e}", path.display())
    }

    /// Rebuilds the file: old lines of items not in `items`, then `run`.
    fn merge(&self, run_path: &Path, items: &HashSet<String>) -> Result<(), String> {
        let temp = suffixed(&self.path, ".partial");
        let mut out = BufWriter::new(File::create(&temp).map_err(|e| self.io("create", &temp, e))?);
        if let Ok(old) = File::open(&self.path) {
            for line in BufReader::new(old).lines() {
                let line = line.map_err(|e| self.io("read", &self.path, e))?;
                let item = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["item"].as_str().map(String::from));
                if item.is_some_and(|i| items.contains(&i)) {
                    continue;
                }
                writeln!(out, "{line}").map_err(|e| self.io("write", &temp, e))?;
            }
        }
        let mut fresh = File::open(run_path).map_err(|e| self.io("read", run_path, e))?;
        std::io::copy(&mut fresh, &mut out).map_err(|e| self.io("write", &temp, e))?;
        let file = out
            .into_inner()
            .map_err(|e| self.io("write", &temp, e.into_error()))?;
        file.sync_all().map_err(|e| self.io("write", &temp, e))?;
        std::fs::rename(&temp, &self.path).map_err(|e| self.io("write", &self.path, e))?;
        let _ = std::fs::remove_file(run_path);
        Ok(())
    }
}

impl Stage for JsonlSink {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let record = ItemRecord::read(input)?;
        let text = lines(&record);
        let mut slot = self.run.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            if let Some(parent) = self.path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StageError::failed(self.io("create", parent, e)))?;
            }
            // A `.run` file left by a crashed run is replaced: its items
            // are written again by this run.
            let run_path = suffixed(&self.path, ".run");
            let file = File::create(&run_path)
                .map_err(|e| StageError::failed(self.io("create", &run_path, e)))?;
            *slot = Some(RunFile {
                writer: BufWriter::new(file),
                items: HashSet::new(),
            });
        }
        let run = slot
            .as_mut()
            .ok_or_else(|| StageError::failed("the line file is not open"))?;
        run.writer
            .write_all(text.as_bytes())
            .and_then(|()| run.writer.flush())
            .map_err(|e| StageError::failed(self.io("write", &self.path, e)))?;
        run.items.insert(record.item.clone());
        Ok(StageOutput {
            outputs: vec![Output {
                port: "written".to_string(),
                files: Vec::new(),
                value: Some(serde_json::json!({
                    "path": self.path.display().to_string(),
                    "lines": record.segments.len(),
                })),
            }],
        })
    }

    fn finish(&self) -> Result<(), String> {
        let run = self.run.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut run) = run else {
            return Ok(());
        };
        let run_path = suffixed(&self.path, ".run");
        run.writer
            .flush()
            .map_err(|e| self.io("write", &run_path, e))?;
        drop(run.writer);
        self.merge(&run_path, &run.items)
    }
}
