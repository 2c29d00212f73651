//! The `asr.whisper` stage kind: an item's `audio` → its `transcript`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flow_backend::burn::tensor::DType;
use flow_backend::Compute;
use flow_engine::device::DeviceId;
use flow_engine::memory::MemoryEstimate;
use flow_engine::registry::{
    port, BuildContext, ConfigProblem, MemoryUsage, Output, Ports, Resources, Settings, Stage,
    StageError, StageInput, StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cpu::CpuWhisper;
#[cfg(any(feature = "cuda", feature = "vulkan"))]
use crate::model::Whisper;
use crate::transcribe::{Options, Segment, Transcriber};

/// Settings of `asr.whisper`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhisperConfig {
    /// Language of the speech (multilingual models; English-only models
    /// ignore it). Default `en`.
    #[serde(default = "default_language")]
    pub language: String,
    /// Prompt each 30 s window with the text decoded so far (Whisper's
    /// default; keeps names and style consistent). Default `true`.
    #[serde(default = "yes")]
    pub condition_on_previous_text: bool,
    /// A window whose no-speech probability is above this, and whose mean
    /// token log-probability is below `log_prob_threshold`, is dropped as
    /// silence. Default 0.6.
    #[serde(default = "default_no_speech")]
    pub no_speech_threshold: f64,
    /// See `no_speech_threshold`; a window whose mean token
    /// log-probability is below this is also decoded again at the next of
    /// `temperatures`. Default -1.0.
    #[serde(default = "default_log_prob")]
    pub log_prob_threshold: f64,
    /// Temperatures tried in turn for each 30 s window: 0 is greedy; a
    /// window whose text is too repetitive (`compression_ratio_threshold`)
    /// or too unlikely (`log_prob_threshold`) is decoded again at the next,
    /// sampling `best_of` candidates. `[0]` turns the fallback off. Default
    /// `[0, 0.2, 0.4, 0.6, 0.8, 1.0]` (faster-whisper's).
    #[serde(default = "default_temperatures")]
    pub temperatures: Vec<f64>,
    /// A window whose text compresses better than this (zlib: length over
    /// compressed length) is repetitive and falls back. Default 2.4.
    #[serde(default = "default_compression")]
    pub compression_ratio_threshold: f64,
    /// Candidates sampled per window at a temperature above 0; the likeliest
    /// is kept. Default 5.
    #[serde(default = "default_best_of")]
    pub best_of: usize,
    /// Windows decoded together, at most, per forward pass. When the stage
    /// also needs a `vad.silero` stage (a `speech_regions` input), speech
    /// regions are merged into chunks of up to 30 s and the chunks of all
    /// items in a batch are decoded together (WhisperX's approach; no
    /// prompt from earlier text). Without one, the items of a batch go
    /// through the 30 s seek loop side by side: each round encodes one
    /// window of each item together and decodes together the windows whose
    /// prompts have the same length. Default 8.
    #[serde(default = "default_max_windows")]
    pub max_windows: usize,
    /// The float type of the model on a CUDA device: `auto` (f16 where the
    /// card computes in it, else f32), `f16` (an error on a card that does
    /// not) or `f32`. Layer norms and the decoding arithmetic stay in f32.
    /// The CPU always computes in f32. Default `auto`.
    #[serde(default)]
    pub precision: Precision,
}

/// The float type `asr.whisper` computes in on a GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f16 where the device computes in it, f32 elsewhere.
    #[default]
    Auto,
    /// Half precision (CUDA only).
    F16,
    /// Single precision.
    F32,
}

fn default_temperatures() -> Vec<f64> {
    vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
}
fn default_compression() -> f64 {
    2.4
}
fn default_best_of() -> usize {
    5
}
fn default_max_windows() -> usize {
    8
}

fn default_language() -> String {
    "en".into()
}
fn yes() -> bool {
    true
}
fn default_no_speech() -> f64 {
    0.6
}
fn default_log_prob() -> f64 {
    -1.0
}

impl WhisperConfig {
    fn options(&self) -> Options {
        Options {
            language: self.language.clone(),
            condition_on_previous_text: self.condition_on_previous_text,
            no_speech_threshold: Some(self.no_speech_threshold),
            log_prob_threshold: Some(self.log_prob_threshold),
            temperatures: self.temperatures.clone(),
            compression_ratio_threshold: Some(self.compression_ratio_threshold),
            best_of: self.best_of,
            ..Options::default()
        }
    }
}

/// The `asr.whisper` kind.
pub struct WhisperKind;

/// `max_windows` only groups windows into forward passes: the same
/// windows give the same text, so it never enters the cache key.
impl Settings for WhisperConfig {
    const OPERATIONAL: &'static [&'static str] = &["max_windows"];
}

impl TypedKind for WhisperKind {
    type Config = WhisperConfig;

    fn name(&self) -> &'static str {
        "asr.whisper"
    }

    fn summary(&self) -> &'static str {
        "Transcribe an item's audio with a Whisper model (CTranslate2 folder) in burn: timed segments with token ids and quality figures"
    }

    fn version(&self) -> u32 {
        2
    }

    fn validate(&self, c: &WhisperConfig) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        if !(0.0..=1.0).contains(&c.no_speech_threshold) {
            problems.push(ConfigProblem::new(
                &["no_speech_threshold"],
                "`no_speech_threshold` is a probability, between 0 and 1",
            ));
        }
        if let Some(i) = c.temperatures.iter().position(|t| !(0.0..=2.0).contains(t)) {
            problems.push(ConfigProblem::new(
                &["temperatures", &i.to_string()],
                "every temperature must be between 0 and 2",
            ));
        }
        for (name, value) in [("best_of", c.best_of), ("max_windows", c.max_windows)] {
            if value == 0 {
                problems.push(ConfigProblem::new(&[name], "must be at least 1"));
            }
        }
        problems
    }

    fn ports(&self, _config: &WhisperConfig) -> Ports {
        Ports {
            inputs: vec![port::AUDIO.to_string()],
            outputs: vec![port::TRANSCRIPT.to_string()],
        }
    }

    fn resources(&self) -> Resources {
        Resources {
            accelerator: true,
            ..Default::default()
        }
    }

    fn memory_estimate(&self, _config: &WhisperConfig) -> MemoryEstimate {
        // One 30 s window: the encoder's activations and attention scores
        // (6 heads × 1500² for tiny, more for larger models) dominate.
        MemoryEstimate {
            weights: 160 << 20,
            per_item: 256 << 20,
            fixed: 64 << 20,
            compute_bytes: 4,
        }
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: WhisperConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        let model_dir = ctx.model_dir.clone().ok_or_else(|| {
            format!(
                "stage `{}` needs a Whisper model: add `model:` naming one under `models:`",
                ctx.stage_id
            )
        })?;
        Ok(Arc::new(WhisperStage {
            config,
            model_dir,
            loaded: Mutex::new(None),
        }))
    }
}

/// A model loaded on one backend.
enum Loaded {
    Cpu(Box<Transcriber<CpuWhisper>>),
    #[cfg(feature = "cuda")]
    Gpu(Box<Transcriber<Whisper<flow_backend::Gpu>>>),
    #[cfg(feature = "vulkan")]
    Vulkan(Box<Transcriber<Whisper<flow_backend::Vk>>>),
}

struct Model {
    device: DeviceId,
    compute: Compute,
    loaded: Loaded,
}

/// A configured `asr.whisper` stage.
struct WhisperStage {
    config: WhisperConfig,
    model_dir: PathBuf,
    loaded: Mutex<Option<Arc<Model>>>,
}

impl WhisperStage {
    fn model(&self, device: DeviceId) -> Result<Arc<Model>, StageError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = slot
            .as_ref()
            .filter(|m| m.device == device && m.compute.is_current())
        {
            return Ok(m.clone());
        }
        let compute = Compute::for_device(device).map_err(|e| StageError::failed(e.to_string()))?;
        let dir = &self.model_dir;
        let loaded = match &compute {
            Compute::Cpu(_) => {
                Loaded::Cpu(Box::new(crate::load_cpu(dir).map_err(StageError::failed)?))
            }
            #[cfg(feature = "cuda")]
            Compute::Cuda(dev) => {
                let dtype = gpu_dtype(self.config.precision, compute.supports_f16())?;
                Loaded::Gpu(Box::new(
                    crate::load::<flow_backend::Gpu>(dir, dev, false, dtype)
                        .map_err(StageError::failed)?,
                ))
            }
            #[cfg(feature = "vulkan")]
            Compute::Vulkan(_, dev) => {
                let dtype = gpu_dtype(self.config.precision, compute.supports_f16())?;
                Loaded::Vulkan(Box::new(
                    crate::load::<flow_backend::Vk>(dir, dev, false, dtype)
                        .map_err(StageError::failed)?,
                ))
            }
        };
        let model = Arc::new(Model {
            device,
            compute,
            loaded,
        });
        *slot = Some(model.clone());
        Ok(model)
    }
}

/// The float type for a GPU that does (or does not) compute in f16.
#[cfg_attr(not(any(feature = "cuda", feature = "vulkan")), allow(dead_code))]
fn gpu_dtype(precision: Precision, f16_ok: bool) -> Result<DType, StageError> {
    match (precision, f16_ok) {
        (Precision::F32, _) | (Precision::Auto, false) => Ok(DType::F32),
        (Precision::Auto | Precision::F16, true) => Ok(DType::F16),
        (Precision::F16, false) => Err(StageError::failed(
            "`precision: f16` was asked for, and this device does not compute in f16 (use `auto` or `f32`)",
        )),
    }
}

/// One item's decoded audio and, when a VAD stage is wired in, its speech
/// regions.
struct Prepared {
    samples: Vec<f32>,
    regions: Option<Vec<(f64, f64)>>,
}

fn prepare(input: &StageInput) -> Result<Prepared, StageError> {
    let audio = input
        .find(port::AUDIO)
        .next()
        .and_then(|o| o.files.first())
        .ok_or_else(|| StageError::failed("no `audio` input (wire an audio.decode stage)"))?;
    let samples = flow_media::read_audio(audio)
        .map_err(|e| StageError::failed(format!("cannot read `{}`: {e}", audio.display())))?;
    let regions = match input.find(port::SPEECH_REGIONS).next() {
        None => None,
        Some(o) => {
            let list = o
                .value
                .as_ref()
                .and_then(|v| v["regions"].as_array())
                .ok_or_else(|| StageError::failed("the `speech_regions` input has no `regions`"))?;
            Some(
                list.iter()
                    .filter_map(|r| Some((r["start"].as_f64()?, r["end"].as_f64()?)))
                    .collect(),
            )
        }
    };
    Ok(Prepared { samples, regions })
}

impl WhisperStage {
    fn output(&self, p: &Prepared, segments: Vec<Segment>) -> StageOutput {
        let value = serde_json::json!({
            "language": self.config.language,
            "model": self.model_dir.display().to_string(),
            "seconds": p.samples.len() as f64 / crate::mel::SAMPLE_RATE as f64,
            "chunking": if p.regions.is_some() { "vad" } else { "seek" },
            "segments": segments,
        });
        StageOutput {
            outputs: vec![Output {
                port: port::TRANSCRIPT.to_string(),
                files: Vec::new(),
                value: Some(value),
            }],
        }
    }

    /// Items with speech regions are decoded together, chunk by chunk; the
    /// others together with the seek loop (their windows batched, see
    /// `Transcriber::transcribe_many`).
    fn transcribe(
        &self,
        device: DeviceId,
        prepared: &[&Prepared],
    ) -> Result<Vec<Vec<Segment>>, StageError> {
        let model = self.model(device)?;
        let opts = self.config.options();
        let regional: Vec<crate::regions::RegionItem<'_>> = prepared
            .iter()
            .filter_map(|p| Some((p.samples.as_slice(), p.regions.clone()?)))
            .collect();
        let seeking: Vec<&[f32]> = prepared
            .iter()
            .filter(|p| p.regions.is_none())
            .map(|p| p.samples.as_slice())
            .collect();
        let max = self.config.max_windows;
        let (regions, seeks) = match &model.loaded {
            Loaded::Cpu(t) => (
                t.transcribe_regions(&regional, &opts, max),
                t.transcribe_many(&seeking, &opts, max),
            ),
            #[cfg(feature = "cuda")]
            Loaded::Gpu(t) => (
                t.transcribe_regions(&regional, &opts, max),
                t.transcribe_many(&seeking, &opts, max),
            ),
            #[cfg(feature = "vulkan")]
            Loaded::Vulkan(t) => (
                t.transcribe_regions(&regional, &opts, max),
                t.transcribe_many(&seeking, &opts, max),
            ),
        };
        let mut regions = regions.map_err(StageError::failed)?.into_iter();
        let mut seeks = seeks.map_err(StageError::failed)?.into_iter();
        Ok(prepared
            .iter()
            .map(|p| match p.regions {
                Some(_) => regions.next().unwrap_or_default(),
                None => seeks.next().unwrap_or_default(),
            })
            .collect())
    }
}

impl Stage for WhisperStage {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let p = prepare(input)?;
        let mut segments = self.transcribe(input.device, &[&p])?;
        Ok(self.output(&p, segments.pop().unwrap_or_default()))
    }

    fn run_batch(&self, inputs: &[StageInput]) -> Vec<Result<StageOutput, StageError>> {
        let prepared: Vec<Result<Prepared, StageError>> = inputs.iter().map(prepare).collect();
        let ok: Vec<&Prepared> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
        let device = inputs.first().map_or(DeviceId::Cpu, |i| i.device);
        let mut results = match self.transcribe(device, &ok) {
            Ok(all) => all.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e); ok.len()],
        }
        .into_iter();
        prepared
            .iter()
            .map(|p| match p {
                Err(e) => Err(e.clone()),
                Ok(p) => match results.next() {
                    Some(Ok(segments)) => Ok(self.output(p, segments)),
                    Some(Err(e)) => Err(e),
                    None => Err(StageError::failed("internal: a batch result is missing")),
                },
            })
            .collect()
    }

    fn load(&self, device: DeviceId) -> Result<(), StageError> {
        self.model(device).map(|_| ())
    }

    fn unload(&self) {
        let model = self.loaded.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(m) = model {
            let compute = m.compute.clone();
            drop(m);
            compute.clear_cache();
        }
    }

    fn memory_usage(&self) -> Option<MemoryUsage> {
        let slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().and_then(|m| m.compute.memory_usage())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_picks_f16_only_where_the_device_computes_in_it() {
        assert_eq!(gpu_dtype(Precision::Auto, true).unwrap(), DType::F16);
        assert_eq!(gpu_dtype(Precision::Auto, false).unwrap(), DType::F32);
        assert_eq!(gpu_dtype(Precision::F32, true).unwrap(), DType::F32);
        assert_eq!(gpu_dtype(Precision::F16, true).unwrap(), DType::F16);
        let err = gpu_dtype(Precision::F16, false).unwrap_err();
        assert!(err.to_string().contains("does not compute in f16"), "{err}");
    }
}
