//! Enrolment with the real models: any audio file decoded by flow-media,
//! speech found by Silero VAD, windows embedded by the GE2E encoder exactly
//! as `speaker.embed` embeds an item (its default windows).

use std::path::Path;
use std::sync::Arc;

use flow_backend::Compute;
use flow_engine::device::DeviceId;
use flow_engine::items::Item;
use flow_engine::registry::{BuildContext, StageInput, StageKind};
use flow_engine::spec::StageSpec;

use super::enroll::{enroll, Clip, EnrollOptions};
use super::{ModelIdentity, ProfileError, VoiceProfile};
use crate::diarize::Span;
use crate::ge2e::{plan_windows, SpeakerEmbedConfig, SpeakerEncoder, DIM};
use crate::vad::{AnyVad, SpeechParams};

/// Where `flow enroll` gets Silero VAD.
pub const VAD_SOURCE: &str = "pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k_op15.onnx";
/// Where `flow enroll` gets the GE2E speaker encoder (use the same `source:`
/// for the workflow's `speaker.embed` model).
pub const ENCODER_SOURCE: &str = "pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt";

/// The voice models enrolment runs.
pub struct Enroller {
    vad: AnyVad,
    encoder: SpeakerEncoder,
    model: ModelIdentity,
    windows: SpeakerEmbedConfig,
}

impl Enroller {
    /// Loads Silero VAD from `vad` and the GE2E encoder from `encoder` on
    /// `device`; `weights` names the encoder's weights in the profiles made
    /// (its `pip:` source, or the path as given).
    ///
    /// # Errors
    /// A message when a model cannot be loaded.
    pub fn load(
        vad: &Path,
        encoder: &Path,
        weights: &str,
        device: DeviceId,
    ) -> Result<Self, String> {
        let compute = Compute::for_device(device).map_err(|e| e.to_string())?;
        Ok(Self {
            vad: AnyVad::load(vad, &compute).map_err(|e| e.to_string())?,
            encoder: SpeakerEncoder::load(encoder, &device)?,
            model: ModelIdentity {
                encoder: "ge2e".into(),
                dim: DIM,
                weights: weights.to_string(),
            },
            windows: SpeakerEmbedConfig::default(),
        })
    }

    /// The speech regions of 16 kHz `samples` (silero's defaults).
    ///
    /// # Errors
    /// A message when the device fails.
    pub fn speech(&self, samples: &[f32]) -> Result<Vec<Span>, String> {
        let regions = self
            .vad
            .speech_regions(samples, &SpeechParams::default())
            .map_err(|e| e.to_string())?;
        Ok(regions.iter().map(|r| Span::new(r.start, r.end)).collect())
    }

    /// GE2E vectors of `speaker.embed`'s default windows (1.6 s every
    /// 0.8 s) inside `regions` of `samples`, with those windows.
    ///
    /// # Errors
    /// A message when the device fails.
    pub fn windows(
        &self,
        samples: &[f32],
        regions: &[Span],
    ) -> Result<(Vec<Vec<f32>>, Vec<Span>), String> {
        let spans: Vec<(f64, f64)> = regions.iter().map(|r| (r.start, r.end)).collect();
        let w = &self.windows;
        let windows = plan_windows(&spans, w.window, w.hop, w.min_duration);
        let vectors = self.encoder.embed_windows(samples, &windows)?;
        Ok((
            vectors,
            windows.iter().map(|&(s, e)| Span::new(s, e)).collect(),
        ))
    }

    /// Builds the profile `name` from `clips` (see [`enroll`]).
    ///
    /// # Errors
    /// See [`enroll`].
    pub fn enroll(
        &self,
        name: &str,
        clips: &[Clip],
        options: &EnrollOptions,
    ) -> Result<VoiceProfile, ProfileError> {
        enroll(
            name,
            clips,
            self.model.clone(),
            options,
            &mut |s| self.speech(s),
            &mut |s, r| self.windows(s, r).map(|w| w.0),
        )
    }
}

/// Decodes any audio (or video) file flow-media reads to 16 kHz mono.
///
/// # Errors
/// A message naming the file and what is wrong with it.
pub fn decode(path: &Path) -> Result<Clip, String> {
    let shown = path.display().to_string();
    let absolute = std::path::absolute(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let scratch = std::env::temp_dir().join(format!(
        "flow-enroll-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let result = decode_into(&absolute, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
        .map(|samples| Clip {
            path: shown.clone(),
            samples,
        })
        .map_err(|e| format!("cannot decode `{shown}`: {e}"))
}

fn decode_into(path: &Path, scratch: &Path) -> Result<Vec<f32>, String> {
    let kind = flow_media::AudioDecodeKind;
    let spec: StageSpec = serde_json::from_value(serde_json::json!({ "uses": kind.name() }))
        .map_err(|e| e.to_string())?;
    let ctx = BuildContext {
        stage_id: "decode",
        spec: &spec,
        workflow_dir: scratch,
        state_dir: scratch,
        model_dir: None,
    };
    let config = serde_json::json!({ "sample_rate": 16_000 });
    let stage = kind.build(&ctx, &config)?;
    let source = path.to_string_lossy().into_owned();
    let input = StageInput {
        item: Arc::new(Item {
            id: source.clone(),
            source,
            fingerprint: String::new(),
            error: None,
            row: None,
        }),
        upstream: Vec::new(),
        out_dir: scratch.join("out"),
        device: DeviceId::Cpu,
        timeout: None,
    };
    let output = stage.run(&input).map_err(|e| e.message)?;
    let file = output
        .outputs
        .first()
        .and_then(|o| o.files.first())
        .ok_or("the decoder wrote no audio")?;
    flow_media::read_audio(&input.out_dir.join(file)).map_err(|e| e.to_string())
}
