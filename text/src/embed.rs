//! `text.embed`: sentence vectors for an item's chunks (or transcript
//! segments), written as one `embeddings.f32` file per item.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flow_engine::device::DeviceId;
use flow_engine::memory::MemoryEstimate;
use flow_engine::registry::{
    port, BuildContext, ConfigProblem, MemoryUsage, Output, Ports, Resources, Settings, Stage,
    StageError, StageInput, StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::chunk::segments;
use crate::Embedder;

/// Settings of `text.embed`.
///
/// ```yaml
/// with: { of: chunks, max_batch: 32 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedConfig {
    /// What to embed: `chunks` (a `text.chunk` output) or `segments` (of a
    /// `speakers` or `transcript` output). Default: chunks when an upstream
    /// stage produces them, else segments; items of `inputs: { rows: … }`
    /// with no such upstream embed the row's text.
    #[serde(default)]
    pub of: Option<String>,
    /// Most texts encoded in one forward pass; texts of similar length are
    /// grouped so padding is small. Default 32.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

fn default_max_batch() -> usize {
    32
}

/// The `text.embed` kind.
pub struct EmbedKind;

/// `max_batch` only groups texts into forward passes.
impl Settings for EmbedConfig {
    const OPERATIONAL: &'static [&'static str] = &["max_batch"];
}

impl TypedKind for EmbedKind {
    type Config = EmbedConfig;

    fn name(&self) -> &'static str {
        "text.embed"
    }

    fn summary(&self) -> &'static str {
        "Embed an item's chunks or segments with a BERT-family sentence-transformers model in burn"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, c: &EmbedConfig) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if c.max_batch == 0 {
            problems.push(ConfigProblem::new(
                &["max_batch"],
                "`max_batch` must be at least 1",
            ));
        }
        if c.of
            .as_deref()
            .is_some_and(|o| o != "chunks" && o != "segments")
        {
            problems.push(ConfigProblem::new(
                &["of"],
                "`of` is `chunks` or `segments`",
            ));
        }
        problems
    }

    fn ports(&self, config: &EmbedConfig) -> Ports {
        Ports {
            inputs: match config.of.as_deref() {
                Some("chunks") => vec![port::CHUNKS.to_string()],
                _ => Vec::new(),
            },
            outputs: vec![port::EMBEDDINGS.to_string()],
        }
    }

    fn resources(&self) -> Resources {
        Resources {
            accelerator: true,
            ..Resources::default()
        }
    }

    fn memory_estimate(&self, config: &EmbedConfig) -> MemoryEstimate {
        let batch = config.max_batch as u64;
        // MiniLM-sized weights; activations of `max_batch` texts of up to
        // 256 tokens (12 heads × 256² scores dominate).
        MemoryEstimate {
            weights: 96 << 20,
            per_item: 8 << 20,
            fixed: (batch * 4) << 20,
            compute_bytes: 4,
        }
    }

    fn build(&self, ctx: &BuildContext<'_>, config: EmbedConfig) -> Result<Arc<dyn Stage>, String> {
        let model_dir = ctx.model_dir.clone().ok_or_else(|| {
            format!(
                "stage `{}` needs an embedding model: add `model:` naming one under `models:`",
                ctx.stage_id
            )
        })?;
        Ok(Arc::new(EmbedStage {
            config,
            model_dir,
            loaded: Mutex::new(None),
        }))
    }
}

struct Loaded {
    device: DeviceId,
    embedder: Arc<Embedder>,
}

struct EmbedStage {
    config: EmbedConfig,
    model_dir: PathBuf,
    loaded: Mutex<Option<Loaded>>,
}

/// The texts of one item and what they are: its chunks, its transcript
/// segments, or (an item of `inputs: { rows: … }` with neither upstream)
/// the row's own text.
fn texts(input: &StageInput, of: Option<&str>) -> Result<(Vec<String>, &'static str), StageError> {
    let upstream_text = [port::CHUNKS, port::SPEAKERS, port::TRANSCRIPT]
        .iter()
        .any(|p| input.find(p).next().is_some());
    if input.item.row.is_some() && !upstream_text {
        let text = flow_engine::items::row_text(&input.item).map_err(StageError::failed)?;
        return Ok((vec![text], "rows"));
    }
    let chunks = input
        .find(port::CHUNKS)
        .find_map(|o| o.value.as_ref())
        .and_then(|v| v["chunks"].as_array());
    let (list, what) = match (of, chunks) {
        (Some("chunks") | None, Some(c)) => (c.clone(), "chunks"),
        (Some("chunks"), None) => {
            return Err(StageError::failed(
                "no `chunks` input: wire a text.chunk stage into `needs`",
            ))
        }
        _ => (segments(input, None)?, "segments"),
    };
    let texts = list
        .iter()
        .map(|c| c["text"].as_str().unwrap_or("").trim().to_string())
        .collect();
    Ok((texts, what))
}

impl EmbedStage {
    fn embedder(&self, device: DeviceId) -> Result<Arc<Embedder>, StageError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = slot
            .as_ref()
            .filter(|l| l.device == device && l.embedder.compute.is_current())
        {
            return Ok(l.embedder.clone());
        }
        let embedder =
            Arc::new(Embedder::load(&self.model_dir, device).map_err(StageError::failed)?);
        *slot = Some(Loaded {
            device,
            embedder: embedder.clone(),
        });
        Ok(embedder)
    }

    fn write(
        &self,
        input: &StageInput,
        vectors: &[f32],
        count: usize,
        dim: usize,
        normalized: bool,
        of: &str,
    ) -> Result<StageOutput, StageError> {
        let dir = input
            .create_out_dir()
            .map_err(|e| StageError::failed(format!("cannot create the output folder: {e}")))?;
        let path = dir.join("embeddings.f32");
        let bytes: Vec<u8> = vectors.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(|e| StageError::failed(format!("cannot write `{}`: {e}", path.display())))?;
        Ok(StageOutput {
            outputs: vec![Output {
                port: port::EMBEDDINGS.to_string(),
                files: vec!["embeddings.f32".to_string()],
                value: Some(serde_json::json!({
                    "model": self.model_dir.display().to_string(),
                    "dim": dim,
                    "count": count,
                    "normalized": normalized,
                    "of": of,
                })),
            }],
        })
    }
}

impl Stage for EmbedStage {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        self.run_batch(std::slice::from_ref(input))
            .pop()
            .unwrap_or_else(|| Err(StageError::failed("no result")))
    }

    /// Embeds every text of every item in the batch together (grouped by
    /// length across items), then splits the vectors back per item.
    fn run_batch(&self, inputs: &[StageInput]) -> Vec<Result<StageOutput, StageError>> {
        let Some(first) = inputs.first() else {
            return Vec::new();
        };
        let embedder = match self.embedder(first.device) {
            Ok(e) => e,
            Err(e) => return inputs.iter().map(|_| Err(e.clone())).collect(),
        };
        let per_item: Vec<Result<(Vec<String>, &str), StageError>> = inputs
            .iter()
            .map(|i| texts(i, self.config.of.as_deref()))
            .collect();
        let all: Vec<&str> = per_item
            .iter()
            .flat_map(|r| r.iter().flat_map(|(t, _)| t.iter().map(String::as_str)))
            .collect();
        let vectors = match embedder.embed(&all, self.config.max_batch) {
            Ok(v) => v,
            Err(e) => {
                return inputs
                    .iter()
                    .map(|_| Err(StageError::failed(e.clone())))
                    .collect()
            }
        };
        let dim = embedder.dim();
        let normalized = embedder.settings().normalize;
        let mut at = 0;
        inputs
            .iter()
            .zip(per_item)
            .map(|(input, r)| {
                let (t, of) = r?;
                let rows = &vectors[at * dim..(at + t.len()) * dim];
                at += t.len();
                self.write(input, rows, t.len(), dim, normalized, of)
            })
            .collect()
    }

    fn load(&self, device: DeviceId) -> Result<(), StageError> {
        self.embedder(device).map(|_| ())
    }

    fn unload(&self) {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(l) = loaded {
            let compute = l.embedder.compute.clone();
            drop(l);
            compute.clear_cache();
        }
    }

    fn memory_usage(&self) -> Option<MemoryUsage> {
        let slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .and_then(|l| l.embedder.compute.memory_usage())
    }
}
