//! The `speaker.embed` stage kind: an item's `audio` (and, optionally, its
//! `speech_regions`) → `voice_embeddings`, GE2E vectors over windows.

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

use super::encoder::{SpeakerEncoder, DIM};
use super::mel::SAMPLE_RATE;
use super::partials::normalize_volume;
use super::windows::{item_audio, plan_windows, speech_spans};

/// How `speaker.embed` cuts an item into windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmbedWindows {
    /// Windows of `window` seconds every `hop` seconds inside each speech
    /// region (the whole audio when no `speech_regions` are wired). For
    /// diarization: speaker changes inside a region are seen.
    #[default]
    Fixed,
    /// One window per speech region (needs `speech_regions`): each region's
    /// utterance embedding, the mean of its 1.6 s partials.
    Regions,
}

/// Settings of `speaker.embed`.
///
/// ```yaml
/// speaker_windows:
///   uses: speaker.embed
///   needs: [audio, vad]
///   model: speaker
///   with: { windows: fixed, window: 1.6, hop: 0.8 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeakerEmbedConfig {
    /// `fixed` (default): windows of `window` seconds every `hop` seconds
    /// inside speech; `regions`: one embedding per speech region.
    #[serde(default)]
    pub windows: EmbedWindows,
    /// Length of a fixed window, seconds. Default 1.6: exactly one GE2E
    /// partial (the length the encoder was trained on). A region shorter
    /// than this is one window of its own length.
    #[serde(default = "default_window")]
    pub window: f64,
    /// Step between fixed windows, seconds. Default 0.8 (half a window).
    #[serde(default = "default_hop")]
    pub hop: f64,
    /// Speech shorter than this (seconds) is not embedded: too little voice
    /// for a reliable vector. Default 0.3.
    #[serde(default = "default_min_duration")]
    pub min_duration: f64,
}

fn default_window() -> f64 {
    1.6
}
fn default_hop() -> f64 {
    0.8
}
fn default_min_duration() -> f64 {
    0.3
}

impl Default for SpeakerEmbedConfig {
    fn default() -> Self {
        Self {
            windows: EmbedWindows::Fixed,
            window: default_window(),
            hop: default_hop(),
            min_duration: default_min_duration(),
        }
    }
}

fn problems(c: &SpeakerEmbedConfig) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !(positive(c.window) && c.window <= 60.0) {
        out.push(
            ConfigProblem::new(&["window"], "`window` must be between 0 and 60 seconds")
                .help("1.6 s is one GE2E partial"),
        );
    }
    if !positive(c.hop) {
        out.push(ConfigProblem::new(
            &["hop"],
            "`hop` must be a positive number of seconds",
        ));
    }
    if !(c.min_duration.is_finite() && c.min_duration >= 0.0) {
        out.push(ConfigProblem::new(
            &["min_duration"],
            "`min_duration` must be zero or more seconds",
        ));
    }
    out
}

/// The `speaker.embed` kind.
pub struct SpeakerEmbedKind;

impl Settings for SpeakerEmbedConfig {}

impl TypedKind for SpeakerEmbedKind {
    type Config = SpeakerEmbedConfig;

    fn name(&self) -> &'static str {
        "speaker.embed"
    }

    fn summary(&self) -> &'static str {
        "Embed an item's voice with the GE2E speaker encoder (Resemblyzer) in burn: 256-d vectors over fixed windows or speech regions"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, config: &SpeakerEmbedConfig) -> Vec<ConfigProblem> {
        problems(config)
    }

    fn ports(&self, config: &SpeakerEmbedConfig) -> Ports {
        let windows = config.windows;
        let mut inputs = vec![port::AUDIO.to_string()];
        if windows == EmbedWindows::Regions {
            inputs.push(port::SPEECH_REGIONS.to_string());
        }
        Ports {
            inputs,
            outputs: vec![port::VOICE_EMBEDDINGS.to_string()],
        }
    }

    fn resources(&self) -> Resources {
        Resources {
            accelerator: true,
            ..Resources::default()
        }
    }

    fn memory_estimate(&self, _config: &SpeakerEmbedConfig) -> MemoryEstimate {
        // 1.4 M weights. A pass holds up to 256 partials: the input
        // projection (160 × 256 × 1024 f32, 168 MB), a layer's outputs
        // (42 MB) and per-step temporaries. Per item: its mel frames and
        // windows on the host side, small on the device.
        MemoryEstimate {
            weights: 6 << 20,
            per_item: 16 << 20,
            fixed: 320 << 20,
            compute_bytes: 4,
        }
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: SpeakerEmbedConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        if let Some(p) = problems(&config).into_iter().next() {
            return Err(p.message);
        }
        let model_dir = ctx.model_dir.clone().ok_or_else(|| {
            format!(
                "stage `{}` needs the GE2E speaker encoder: add `model:` naming one under `models:`, \
                 e.g. `source: \"pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt\"`",
                ctx.stage_id
            )
        })?;
        Ok(Arc::new(SpeakerEmbedStage::new(config, model_dir)))
    }
}

/// A configured `speaker.embed` stage.
pub struct SpeakerEmbedStage {
    config: SpeakerEmbedConfig,
    model_dir: PathBuf,
    loaded: Mutex<Option<Arc<SpeakerEncoder>>>,
}

/// One item's audio and its windows, ready to embed.
struct Planned {
    audio: Vec<f32>,
    windows: Vec<(f64, f64)>,
}

impl SpeakerEmbedStage {
    /// A stage with `config` whose weights are at `model_dir`
    /// (`pretrained.pt` or a folder holding it); the model loads on first use.
    pub fn new(config: SpeakerEmbedConfig, model_dir: PathBuf) -> Self {
        Self {
            config,
            model_dir,
            loaded: Mutex::new(None),
        }
    }

    fn encoder(&self, device: DeviceId) -> Result<Arc<SpeakerEncoder>, StageError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = slot
            .as_ref()
            .filter(|e| e.device() == device && e.compute().is_current())
        {
            return Ok(e.clone());
        }
        let encoder =
            Arc::new(SpeakerEncoder::load(&self.model_dir, &device).map_err(StageError::failed)?);
        *slot = Some(encoder.clone());
        Ok(encoder)
    }

    fn plan(&self, input: &StageInput) -> Result<Planned, StageError> {
        let audio = item_audio(input).map_err(StageError::failed)?;
        let seconds = audio.len() as f64 / SAMPLE_RATE as f64;
        let speech = speech_spans(input).map_err(StageError::failed)?;
        let windows = match (self.config.windows, speech) {
            (EmbedWindows::Regions, None) => return Err(StageError::failed(
                "`windows: regions` needs `speech_regions`: wire a vad.silero stage into `needs`",
            )),
            (EmbedWindows::Regions, Some(regions)) => regions
                .into_iter()
                .filter(|(s, e)| e - s >= self.config.min_duration)
                .collect(),
            (EmbedWindows::Fixed, spans) => {
                let spans = spans.unwrap_or_else(|| vec![(0.0, seconds)]);
                plan_windows(
                    &spans,
                    self.config.window,
                    self.config.hop,
                    self.config.min_duration,
                )
            }
        };
        Ok(Planned { audio, windows })
    }

    fn write(
        &self,
        input: &StageInput,
        windows: &[(f64, f64)],
        vectors: &[Vec<f32>],
    ) -> Result<StageOutput, StageError> {
        let dir = input
            .create_out_dir()
            .map_err(|e| StageError::failed(format!("cannot create the output folder: {e}")))?;
        let path = dir.join("voice.f32");
        let bytes: Vec<u8> = vectors
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .map_err(|e| StageError::failed(format!("cannot write `{}`: {e}", path.display())))?;
        let windows: Vec<serde_json::Value> = windows
            .iter()
            .map(|&(s, e)| serde_json::json!({ "start": round_ms(s), "end": round_ms(e) }))
            .collect();
        Ok(StageOutput {
            outputs: vec![Output {
                port: port::VOICE_EMBEDDINGS.to_string(),
                files: vec!["voice.f32".to_string()],
                value: Some(serde_json::json!({
                    "dim": DIM,
                    "count": vectors.len(),
                    "windows": windows,
                    "model": self.model_dir.display().to_string(),
                })),
            }],
        })
    }
}

/// Seconds to the millisecond (windows are cut at sample precision).
fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

impl Stage for SpeakerEmbedStage {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        self.run_batch(std::slice::from_ref(input))
            .pop()
            .unwrap_or_else(|| Err(StageError::failed("no result")))
    }

    /// Embeds every window of every item in the batch together, then splits
    /// the vectors back per item. Each item's audio is volume-normalised
    /// once as a whole (Resemblyzer's preprocessing).
    fn run_batch(&self, inputs: &[StageInput]) -> Vec<Result<StageOutput, StageError>> {
        let Some(first) = inputs.first() else {
            return Vec::new();
        };
        let encoder = match self.encoder(first.device) {
            Ok(e) => e,
            Err(e) => return inputs.iter().map(|_| Err(e.clone())).collect(),
        };
        let planned: Vec<Result<Planned, StageError>> = inputs
            .iter()
            .map(|i| {
                self.plan(i).map(|p| Planned {
                    audio: normalize_volume(&p.audio),
                    windows: p.windows,
                })
            })
            .collect();
        let rate = SAMPLE_RATE as f64;
        let clips: Vec<&[f32]> = planned
            .iter()
            .flatten()
            .flat_map(|p| {
                p.windows.iter().map(|&(s, e)| {
                    let a = ((s.max(0.0) * rate).round() as usize).min(p.audio.len());
                    let b = ((e * rate).round() as usize).clamp(a, p.audio.len());
                    &p.audio[a..b]
                })
            })
            .collect();
        let vectors = match encoder.embed_prepared(&clips) {
            Ok(v) => v,
            Err(e) => {
                return inputs
                    .iter()
                    .map(|_| Err(StageError::failed(e.clone())))
                    .collect()
            }
        };
        let mut at = 0;
        inputs
            .iter()
            .zip(planned)
            .map(|(input, p)| {
                let p = p?;
                let rows = &vectors[at..at + p.windows.len()];
                at += p.windows.len();
                self.write(input, &p.windows, rows)
            })
            .collect()
    }

    fn load(&self, device: DeviceId) -> Result<(), StageError> {
        self.encoder(device).map(|_| ())
    }

    fn unload(&self) {
        let encoder = self.loaded.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(e) = encoder {
            let compute = e.compute().clone();
            drop(e);
            compute.clear_cache();
        }
    }

    fn memory_usage(&self) -> Option<MemoryUsage> {
        let slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().and_then(|e| e.compute().memory_usage())
    }
}
