//! The `asr.whisper` stage kind: an item's `audio` → its `transcript`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use flow_backend::{with_backend, Compute};
use flow_engine::device::DeviceId;
use flow_engine::memory::MemoryEstimate;
use flow_engine::registry::{
    parse_config, port, BuildContext, ConfigProblem, MemoryUsage, Output, Ports, Stage, StageError,
    StageInput, StageKind, StageOutput,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// See `no_speech_threshold`. Default -1.0.
    #[serde(default = "default_log_prob")]
    pub log_prob_threshold: f64,
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
        }
    }
}

/// The `asr.whisper` kind.
pub struct WhisperKind;

impl StageKind for WhisperKind {
    fn name(&self) -> &'static str {
        "asr.whisper"
    }

    fn summary(&self) -> &'static str {
        "Transcribe an item's audio with a Whisper model (CTranslate2 folder) in burn: timed segments with token ids and quality figures"
    }

    fn version(&self) -> u32 {
        1
    }

    fn config_schema(&self) -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(WhisperConfig)).unwrap_or_default()
    }

    fn check(&self, config: &serde_json::Value) -> Vec<ConfigProblem> {
        match parse_config::<WhisperConfig>(config) {
            Ok(c) if !(0.0..=1.0).contains(&c.no_speech_threshold) => vec![ConfigProblem::new(
                &["no_speech_threshold"],
                "`no_speech_threshold` is a probability, between 0 and 1",
            )],
            Ok(_) => Vec::new(),
            Err(p) => vec![p.help(
                "`asr.whisper` takes language, condition_on_previous_text, no_speech_threshold, log_prob_threshold",
            )],
        }
    }

    fn ports(&self, _config: &serde_json::Value) -> Ports {
        Ports {
            inputs: vec![port::AUDIO.to_string()],
            outputs: vec![port::TRANSCRIPT.to_string()],
        }
    }

    fn resources(&self) -> flow_engine::registry::Resources {
        flow_engine::registry::Resources {
            accelerator: true,
            ..Default::default()
        }
    }

    fn memory_estimate(&self, _config: &serde_json::Value) -> MemoryEstimate {
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
        config: &serde_json::Value,
    ) -> Result<Arc<dyn Stage>, String> {
        let config: WhisperConfig = parse_config(config).map_err(|p| p.message)?;
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
    Cpu(Transcriber<flow_backend::Cpu>),
    #[cfg(feature = "cuda")]
    Gpu(Transcriber<flow_backend::Gpu>),
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
        if let Some(m) = slot.as_ref().filter(|m| m.device == device) {
            return Ok(m.clone());
        }
        let compute = Compute::for_device(device).map_err(|e| StageError::failed(e.to_string()))?;
        let dir = &self.model_dir;
        let loaded = with_backend!(&compute, |B, dev| {
            let host = matches!(compute, Compute::Cpu(_));
            let t = crate::load::<B>(dir, &dev, host).map_err(StageError::failed)?;
            wrap(t)
        });
        let model = Arc::new(Model {
            device,
            compute,
            loaded,
        });
        *slot = Some(model.clone());
        Ok(model)
    }
}

trait Wrap {
    fn wrap(self) -> Loaded;
}
impl Wrap for Transcriber<flow_backend::Cpu> {
    fn wrap(self) -> Loaded {
        Loaded::Cpu(self)
    }
}
#[cfg(feature = "cuda")]
impl Wrap for Transcriber<flow_backend::Gpu> {
    fn wrap(self) -> Loaded {
        Loaded::Gpu(self)
    }
}
fn wrap<T: Wrap>(t: T) -> Loaded {
    t.wrap()
}

impl Stage for WhisperStage {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let audio = input
            .find(port::AUDIO)
            .next()
            .and_then(|o| o.files.first())
            .ok_or_else(|| StageError::failed("no `audio` input (wire an audio.decode stage)"))?;
        let samples = flow_media::read_audio(audio)
            .map_err(|e| StageError::failed(format!("cannot read `{}`: {e}", audio.display())))?;
        let model = self.model(input.device)?;
        let opts = self.config.options();
        let segments: Vec<Segment> = match &model.loaded {
            Loaded::Cpu(t) => t.transcribe(&samples, &opts),
            #[cfg(feature = "cuda")]
            Loaded::Gpu(t) => t.transcribe(&samples, &opts),
        }
        .map_err(StageError::failed)?;
        let value = serde_json::json!({
            "language": self.config.language,
            "model": self.model_dir.display().to_string(),
            "seconds": samples.len() as f64 / crate::mel::SAMPLE_RATE as f64,
            "segments": segments,
        });
        Ok(StageOutput {
            outputs: vec![Output {
                port: port::TRANSCRIPT.to_string(),
                files: Vec::new(),
                value: Some(value),
            }],
        })
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
