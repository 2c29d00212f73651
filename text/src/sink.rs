//! `sink.embeddings`: every item's `embeddings` rows appended, as they
//! arrive, to safetensors shards in one folder (see [`crate::shards`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flow_engine::registry::{
    port, BuildContext, ConfigProblem, Output, Ports, Resources, Settings, Stage, StageError,
    StageInput, StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::shards::ShardWriter;

/// Settings of `sink.embeddings`.
///
/// ```yaml
/// with: { dir: out/embeddings, shard_rows: 10000 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsSinkConfig {
    /// The folder of shards, relative to the workflow file. A later run
    /// (or a resumed one) appends to it.
    pub dir: PathBuf,
    /// Rows per safetensors shard (default 10 000). At most one shard of
    /// rows is ever held in memory, when it is sealed.
    #[serde(default = "default_shard_rows")]
    pub shard_rows: u64,
}

fn default_shard_rows() -> u64 {
    10_000
}

/// The `sink.embeddings` kind.
pub struct EmbeddingsSinkKind;

impl Settings for EmbeddingsSinkConfig {}

impl TypedKind for EmbeddingsSinkKind {
    type Config = EmbeddingsSinkConfig;

    fn name(&self) -> &'static str {
        "sink.embeddings"
    }

    fn summary(&self) -> &'static str {
        "Append each item's embedding rows to safetensors shards with a manifest of row ids, committed as they arrive"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, c: &EmbeddingsSinkConfig) -> Vec<ConfigProblem> {
        if c.shard_rows == 0 {
            return vec![ConfigProblem::new(
                &["shard_rows"],
                "`shard_rows` must be at least 1",
            )];
        }
        Vec::new()
    }

    fn ports(&self, _config: &EmbeddingsSinkConfig) -> Ports {
        Ports {
            inputs: vec![port::EMBEDDINGS.to_string()],
            outputs: Vec::new(),
        }
    }

    fn resources(&self) -> Resources {
        Resources::default()
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: EmbeddingsSinkConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        Ok(Arc::new(EmbeddingsSink {
            dir: ctx.workflow_dir.join(&config.dir),
            shard_rows: config.shard_rows,
            writer: Mutex::new(None),
        }))
    }
}

struct EmbeddingsSink {
    dir: PathBuf,
    shard_rows: u64,
    writer: Mutex<Option<ShardWriter>>,
}

fn read_f32(path: &std::path::Path) -> Result<Vec<f32>, StageError> {
    let bytes = std::fs::read(path)
        .map_err(|e| StageError::failed(format!("cannot read `{}`: {e}", path.display())))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

impl Stage for EmbeddingsSink {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let out = input.find(port::EMBEDDINGS).next().ok_or_else(|| {
            StageError::failed("no `embeddings` input: wire a text.embed stage into `needs`")
        })?;
        let value = out.value.clone().unwrap_or_default();
        let dim = value["dim"].as_u64().unwrap_or(0) as usize;
        let model = value["model"].as_str().unwrap_or("").to_string();
        let vectors = match out.files.first() {
            Some(f) => read_f32(f)?,
            None => Vec::new(),
        };
        let mut slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            if dim == 0 {
                return Err(StageError::failed("the `embeddings` input has no `dim`"));
            }
            *slot = Some(
                ShardWriter::open(&self.dir, dim, self.shard_rows, &model)
                    .map_err(StageError::failed)?,
            );
        }
        let writer = slot
            .as_mut()
            .ok_or_else(|| StageError::failed("no writer"))?;
        let m = writer.manifest();
        if !m.model.is_empty() && !model.is_empty() && m.model != model {
            return Err(StageError::failed(format!(
                "`{}` holds vectors of `{}`, not of `{model}`: write them to another folder",
                self.dir.display(),
                m.model
            )));
        }
        let id = &input.item.id;
        // The item in this version (files: size and time; rows: content).
        let key = format!("{id}\u{0}{}", input.item.fingerprint);
        let rows = vectors.len() / dim.max(1);
        let (first_row, appended, commit) = match writer.committed(&key) {
            Some(first) => (first, false, None),
            None => {
                let first = writer
                    .append_pending(id, &key, &vectors)
                    .map_err(StageError::failed)?;
                (
                    first,
                    true,
                    Some(writer.commit_job().map_err(StageError::failed)?),
                )
            }
        };
        // Committed without the writer: items appending meanwhile share
        // this commit's sync (or a later one covers this item's rows). The
        // item is reported done only once its rows are durable.
        drop(slot);
        if let Some(job) = commit {
            job.run().map_err(StageError::failed)?;
        }
        Ok(StageOutput {
            outputs: vec![Output {
                port: "written".to_string(),
                files: Vec::new(),
                value: Some(serde_json::json!({
                    "dir": self.dir.display().to_string(),
                    "first_row": (rows > 0).then_some(first_row),
                    "rows": rows,
                    "appended": appended,
                })),
            }],
        })
    }

    fn finish(&self) -> Result<(), String> {
        let mut slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some(w) => w.seal(),
            None => Ok(()),
        }
    }
}
