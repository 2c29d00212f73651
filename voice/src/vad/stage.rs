//! The `vad.silero` stage kind: an item's `audio` → its `speech_regions`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flow_backend::Compute;
use flow_engine::device::DeviceId;
use flow_engine::memory::MemoryEstimate;
use flow_engine::registry::{
    port, BuildContext, ConfigProblem, MemoryUsage, Output, Ports, Resources, Settings, Stage,
    StageError, StageInput, StageOutput, TypedKind,
};

use super::any::AnyVad;
use super::timestamps::{speech_regions, SpeechParams, SAMPLE_RATE};

/// The `vad.silero` kind. Its `with:` settings are [`SpeechParams`].
pub struct SileroKind;

/// Problems in valid-typed settings.
fn problems(p: &SpeechParams) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    if !(p.threshold > 0.0 && p.threshold < 1.0) {
        out.push(ConfigProblem::new(
            &["threshold"],
            "`threshold` is a probability, between 0 and 1 (exclusive)",
        ));
    }
    if let Some(neg) = p.neg_threshold {
        if !(0.0..=p.threshold).contains(&neg) {
            out.push(
                ConfigProblem::new(
                    &["neg_threshold"],
                    format!(
                        "`neg_threshold` ({neg}) must be between 0 and `threshold` ({})",
                        p.threshold
                    ),
                )
                .help("leave it out for silero's default, `threshold - 0.15`"),
            );
        }
    }
    if let Some(max) = p.max_speech_duration_s {
        if !(max.is_finite() && max > 0.0) {
            out.push(
                ConfigProblem::new(
                    &["max_speech_duration_s"],
                    "`max_speech_duration_s` must be a positive number of seconds",
                )
                .help("leave it out for no limit"),
            );
        }
    }
    out
}

/// Every setting changes the regions; `neg_threshold` keys with its
/// default (`threshold - 0.15`) written out.
impl Settings for SpeechParams {
    fn normalized(mut self) -> Self {
        self.neg_threshold = Some(self.neg_threshold());
        self
    }
}

impl TypedKind for SileroKind {
    type Config = SpeechParams;

    fn name(&self) -> &'static str {
        "vad.silero"
    }

    fn summary(&self) -> &'static str {
        "Find speech in an item's audio with Silero VAD v6 in burn: speech regions as silero's get_speech_timestamps"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, params: &SpeechParams) -> Vec<ConfigProblem> {
        problems(params)
    }

    fn ports(&self, _config: &SpeechParams) -> Ports {
        Ports {
            inputs: vec![port::AUDIO.to_string()],
            outputs: vec![port::SPEECH_REGIONS.to_string()],
        }
    }

    fn resources(&self) -> Resources {
        Resources {
            accelerator: true,
            ..Resources::default()
        }
    }

    fn memory_estimate(&self, _config: &SpeechParams) -> MemoryEstimate {
        // The weights file is 1.2 MB; the convolutions unrolled into dense
        // matrices make 2.8 MB on the device (`fixed` covers the extra).
        // Working memory is bounded by the chunk of 1024 frames encoded at
        // once: ~20 KB of activations per frame.
        MemoryEstimate {
            weights: 3 << 20,
            per_item: 32 << 20,
            fixed: 8 << 20,
            compute_bytes: 4,
        }
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        params: SpeechParams,
    ) -> Result<Arc<dyn Stage>, String> {
        if let Some(p) = problems(&params).into_iter().next() {
            return Err(p.message);
        }
        let model_dir = ctx.model_dir.clone().ok_or_else(|| {
            format!(
                "stage `{}` needs the Silero VAD model: add `model:` naming one under `models:`, \
                 e.g. `source: \"pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k_op15.onnx\"`",
                ctx.stage_id
            )
        })?;
        Ok(Arc::new(SileroStage::new(params, model_dir)))
    }
}

struct Model {
    device: DeviceId,
    compute: Compute,
    vad: AnyVad,
}

/// A configured `vad.silero` stage.
pub struct SileroStage {
    params: SpeechParams,
    model_dir: PathBuf,
    loaded: Mutex<Option<Arc<Model>>>,
}

impl SileroStage {
    /// A stage with `params` whose weights are at `model_dir` (an `.onnx`
    /// or `.safetensors` file, or a folder: see [`super::weights_file`]);
    /// the model loads on first use.
    pub fn new(params: SpeechParams, model_dir: PathBuf) -> Self {
        Self {
            params,
            model_dir,
            loaded: Mutex::new(None),
        }
    }

    fn model(&self, device: DeviceId) -> Result<Arc<Model>, StageError> {
        let mut slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = slot
            .as_ref()
            .filter(|m| m.device == device && m.compute.is_current())
        {
            return Ok(m.clone());
        }
        let compute = Compute::for_device(device).map_err(|e| StageError::failed(e.to_string()))?;
        let vad = AnyVad::load(&self.model_dir, &compute)
            .map_err(|e| StageError::failed(e.to_string()))?;
        let model = Arc::new(Model {
            device,
            compute,
            vad,
        });
        *slot = Some(model.clone());
        Ok(model)
    }

    fn output(&self, probs: &[f32], samples: usize) -> StageOutput {
        let regions = speech_regions(probs, samples, &self.params);
        let value = serde_json::json!({
            "seconds": samples as f64 / f64::from(SAMPLE_RATE),
            "regions": regions,
        });
        StageOutput {
            outputs: vec![Output {
                port: port::SPEECH_REGIONS.to_string(),
                files: Vec::new(),
                value: Some(value),
            }],
        }
    }
}

/// The item's 16 kHz samples from its `audio` input.
fn audio(input: &StageInput) -> Result<Vec<f32>, StageError> {
    let output = input
        .find(port::AUDIO)
        .next()
        .ok_or_else(|| StageError::failed("no `audio` input (wire an audio.decode stage)"))?;
    if let Some(rate) = output
        .value
        .as_ref()
        .and_then(|v| v["sample_rate"].as_u64())
    {
        if rate != u64::from(SAMPLE_RATE) {
            return Err(StageError::failed(format!(
                "the audio is at {rate} Hz; Silero VAD needs 16000 Hz: set `sample_rate: 16000` on the audio.decode stage"
            )));
        }
    }
    let path: &Path = output.files.first().ok_or_else(|| {
        StageError::failed("the `audio` input has no file (wire an audio.decode stage)")
    })?;
    flow_media::read_audio(path)
        .map_err(|e| StageError::failed(format!("cannot read `{}`: {e}", path.display())))
}

impl Stage for SileroStage {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        self.run_batch(std::slice::from_ref(input))
            .pop()
            .unwrap_or_else(|| Err(StageError::failed("no result")))
    }

    fn run_batch(&self, inputs: &[StageInput]) -> Vec<Result<StageOutput, StageError>> {
        let audios: Vec<Result<Vec<f32>, StageError>> = inputs.iter().map(audio).collect();
        let Some(first) = inputs.first() else {
            return Vec::new();
        };
        let model = match self.model(first.device) {
            Ok(m) => m,
            Err(e) => return inputs.iter().map(|_| Err(e.clone())).collect(),
        };
        let streams: Vec<&[f32]> = audios
            .iter()
            .filter_map(|a| a.as_ref().ok().map(Vec::as_slice))
            .collect();
        let mut probs = match model.vad.probabilities_batch(&streams) {
            Ok(p) => p.into_iter(),
            Err(e) => {
                let e = StageError::failed(e.to_string());
                return inputs.iter().map(|_| Err(e.clone())).collect();
            }
        };
        audios
            .into_iter()
            .map(|a| {
                let samples = a?;
                let p = probs.next().unwrap_or_default();
                Ok(self.output(&p, samples.len()))
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
