//! Stage kinds: what a stage can be, its typed ports, and how it runs.
//!
//! A kind (`exec`, `asr.whisper`, ...) is registered once; each stage in a
//! workflow names a kind with `uses:` and configures it with `with:`.
//! [`StageKind::build`] turns that configuration into a runnable [`Stage`]
//! (config types apart from runtime types, as Vector does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::device::DeviceId;
use crate::items::Item;
use crate::spec::StageSpec;

mod typed;
pub use typed::{semantic, Settings, TypedKind};

/// Port types that built-in kinds use. Any string is a valid port type;
/// these are the ones shared between kinds.
pub mod port {
    /// Files written by a stage (the `exec` kind's output).
    pub const FILES: &str = "files";
    /// 16 kHz mono audio.
    pub const AUDIO: &str = "audio";
    /// Speech regions from voice activity detection.
    pub const SPEECH_REGIONS: &str = "speech_regions";
    /// Timed transcript segments.
    pub const TRANSCRIPT: &str = "transcript";
    /// Speaker-encoder vectors over windows of an item's audio.
    pub const VOICE_EMBEDDINGS: &str = "voice_embeddings";
    /// Speaker labels.
    pub const SPEAKERS: &str = "speakers";
    /// Text chunks.
    pub const CHUNKS: &str = "chunks";
    /// Embedding vectors.
    pub const EMBEDDINGS: &str = "embeddings";
}

/// The typed ports of a configured stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ports {
    /// Input port types this stage requires from its `needs`. A name equal to
    /// one of the stage's `needs` ids refers to that stage's output directly.
    pub inputs: Vec<String>,
    /// Output port types this stage produces.
    pub outputs: Vec<String>,
}

/// What a stage needs to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// The kind can run on an accelerator (a device worker batches for it).
    pub accelerator: bool,
    /// The work per item is tiny: run it on the executor's own threads
    /// instead of the blocking pool.
    pub inline: bool,
    /// Run even when a cached result exists (sinks: their output lives
    /// outside the state directory and must be rewritten if it is gone).
    pub always_run: bool,
}

/// A problem in a stage's `with:` settings, at a path inside `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Keys and indices below `with`, outermost first.
    pub path: Vec<String>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: Option<String>,
}

impl ConfigProblem {
    /// A problem at `path` inside `with`.
    pub fn new(path: &[&str], message: impl Into<String>) -> Self {
        Self {
            path: path.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
            help: None,
        }
    }

    /// Adds a hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Deserializes a kind's `with:` settings into `T`, reporting the exact key
/// that is wrong. `null` (no `with:`) reads as an empty mapping.
///
/// # Errors
/// A [`ConfigProblem`] at the failing key.
pub fn parse_config<T: DeserializeOwned>(config: &serde_json::Value) -> Result<T, ConfigProblem> {
    let empty = serde_json::Value::Object(Default::default());
    let value = if config.is_null() { &empty } else { config };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                _ => None,
            })
            .collect();
        ConfigProblem {
            path,
            message: e.into_inner().to_string(),
            help: None,
        }
    })
}

/// What a kind gets when it builds a runnable stage.
pub struct BuildContext<'a> {
    /// The stage's id.
    pub stage_id: &'a str,
    /// The stage as written.
    pub spec: &'a StageSpec,
    /// The folder of the workflow file: relative paths in `with:` start here.
    pub workflow_dir: &'a Path,
    /// The state directory of the run (for stages that keep their own files).
    pub state_dir: &'a Path,
    /// The folder (or file) of the stage's `model:` weights, resolved from
    /// the workflow's `models:` (a pip source under the model cache, or a
    /// `path:` relative to the workflow); `None` when the stage names no
    /// model. `flow run` fetches it before any stage is built.
    pub model_dir: Option<PathBuf>,
}

/// A stage kind. Implement it to add a kind; register it in a [`Registry`].
pub trait StageKind: Send + Sync + 'static {
    /// The name used in `uses:`, for example `exec`.
    fn name(&self) -> &'static str;
    /// One line for `flow stages`.
    fn summary(&self) -> &'static str;
    /// The implementation version. Bump it when results would change: it is
    /// part of every cache key, so old results are recomputed.
    fn version(&self) -> u32;
    /// JSON Schema of the `with:` settings.
    fn config_schema(&self) -> serde_json::Value;
    /// Checks `with:` and returns every problem (empty when valid).
    fn check(&self, config: &serde_json::Value) -> Vec<ConfigProblem>;
    /// The ports of a stage with these (valid) settings.
    fn ports(&self, config: &serde_json::Value) -> Ports;
    /// What the stage needs to run.
    fn resources(&self) -> Resources {
        Resources::default()
    }
    /// The stage's memory on its device, estimated from its settings: weights
    /// (used only when the model's files cannot be read), working memory per
    /// batch element and per batch, and the compute dtype's size. Default:
    /// nothing known. `memory:` in the workflow overrides it.
    fn memory_estimate(&self, _config: &serde_json::Value) -> crate::memory::MemoryEstimate {
        crate::memory::MemoryEstimate::default()
    }
    /// The settings that change results (part of the cache key). Default:
    /// all of them. Leave out settings such as log verbosity.
    fn semantic_params(&self, config: &serde_json::Value) -> serde_json::Value {
        config.clone()
    }
    /// Builds the runnable stage.
    ///
    /// # Errors
    /// A message when the stage cannot be built (a missing program, say).
    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: &serde_json::Value,
    ) -> Result<Arc<dyn Stage>, String>;
}

/// One upstream stage's result, as a stage sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    /// The upstream stage's id.
    pub stage: String,
    /// Its outputs, with files as absolute paths.
    pub outputs: Vec<ResolvedOutput>,
}

/// An output with its files resolved to absolute paths.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedOutput {
    /// The port type.
    pub port: String,
    /// The files, absolute.
    pub files: Vec<PathBuf>,
    /// A JSON value, for outputs that are data rather than files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// Everything a stage gets to process one item.
#[derive(Debug, Clone)]
pub struct StageInput {
    /// The item.
    pub item: Arc<Item>,
    /// Results of the stage's `needs`, in the order of `needs`.
    pub upstream: Vec<Upstream>,
    /// The folder for the files this result writes. It does not exist until
    /// [`StageInput::create_out_dir`] makes it, so stages that write no
    /// files cost no file-system work.
    pub out_dir: PathBuf,
    /// The device the stage runs on.
    pub device: DeviceId,
    /// The stage's `timeout`, if any.
    pub timeout: Option<std::time::Duration>,
}

impl StageInput {
    /// Creates the (empty) output folder and returns it. Files written there
    /// become the result's files, made durable atomically when the stage
    /// succeeds.
    ///
    /// # Errors
    /// I/O errors creating the folder.
    pub fn create_out_dir(&self) -> std::io::Result<&Path> {
        std::fs::create_dir_all(&self.out_dir)?;
        Ok(&self.out_dir)
    }

    /// Outputs of upstream stages whose port type or stage id is `name`.
    pub fn find<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ResolvedOutput> + 'a {
        self.upstream.iter().flat_map(move |up| {
            up.outputs
                .iter()
                .filter(move |o| up.stage == name || o.port == name)
        })
    }
}

/// One output of a result: files in the output folder and/or a JSON value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// The port type.
    pub port: String,
    /// File names relative to the output folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// A JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// What a stage produced for one item.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageOutput {
    /// The outputs, one per port.
    pub outputs: Vec<Output>,
}

/// Why a stage failed for an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The reason, for `flow status`.
    pub message: String,
}

/// Kinds of stage failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The stage failed on this item.
    Failed,
    /// The stage ran out of device memory.
    OutOfMemory,
    /// The stage took longer than its `timeout`.
    Timeout,
}

impl StageError {
    /// A plain failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Failed,
            message: message.into(),
        }
    }

    /// Out of device memory.
    pub fn out_of_memory(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::OutOfMemory,
            message: message.into(),
        }
    }

    /// A timeout.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Timeout,
            message: message.into(),
        }
    }
}

/// A runnable stage, built from its settings.
pub trait Stage: Send + Sync {
    /// Processes one item.
    ///
    /// # Errors
    /// A [`StageError`]; it fails this item only.
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError>;

    /// Processes a batch of items on a device worker. The default runs them
    /// one by one; model stages override it to batch on the device.
    fn run_batch(&self, inputs: &[StageInput]) -> Vec<Result<StageOutput, StageError>> {
        inputs.iter().map(|input| self.run(input)).collect()
    }

    /// Loads the stage's model onto `device` (a plan `Load` node).
    ///
    /// # Errors
    /// A [`StageError`] when the weights cannot be loaded.
    fn load(&self, _device: DeviceId) -> Result<(), StageError> {
        Ok(())
    }

    /// Frees the stage's model (a plan `Unload` node).
    fn unload(&self) {}

    /// Called once after every item of the run was processed, before the
    /// run ends (not after a crash): sinks seal what they keep open.
    ///
    /// # Errors
    /// A message; the run reports it and still ends normally.
    fn finish(&self) -> Result<(), String> {
        Ok(())
    }

    /// Working memory this item needs in a batch, from its actual input (for
    /// example seconds of audio), when the stage can tell. `None`: the
    /// plan's per-item figure. Simulated devices charge this.
    fn item_memory(&self, _input: &StageInput) -> Option<u64> {
        None
    }

    /// The stage's own reading of its device memory (for burn stages, the
    /// memory pool), when it has one.
    fn memory_usage(&self) -> Option<MemoryUsage> {
        None
    }
}

/// A stage's reading of the device memory it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryUsage {
    /// Bytes in live tensors.
    pub in_use: u64,
    /// Bytes the stage's allocator holds (in use plus cached).
    pub reserved: u64,
}

/// The stage kinds a workflow may use.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn StageKind>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind; a later kind with the same name replaces the earlier one.
    pub fn register(&mut self, kind: impl StageKind) -> &mut Self {
        self.kinds.insert(kind.name(), Arc::new(kind));
        self
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn StageKind>> {
        self.kinds.get(name)
    }

    /// Every kind, by name.
    pub fn kinds(&self) -> impl Iterator<Item = &Arc<dyn StageKind>> {
        self.kinds.values()
    }

    /// Every kind's name.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}
