//! `audio.decode`: a media file to mono `f32` samples at a fixed rate.
//!
//! The file is recognised from its first bytes ([`sniff`]), decoded packet
//! by packet with symphonia ([`decode`]) or, for what symphonia cannot read,
//! by `ffmpeg` ([`ffmpeg`]), downmixed and resampled as it goes
//! ([`resample`]) and written to `audio.f32` ([`artifact`]).

pub mod artifact;
mod decode;
mod ffmpeg;
mod resample;
mod sniff;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flow_engine::registry::{
    port, BuildContext, ConfigProblem, Output, Ports, Settings, Stage, StageError, StageInput,
    StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use artifact::{ArtifactWriter, AUDIO_FILE};
use decode::{Decoded, Failure};
use sniff::{Container, Sniffed};

/// Settings of an `audio.decode` stage.
///
/// ```yaml
/// with: { sample_rate: 16000 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioDecodeConfig {
    /// The sample rate of the output in Hz (default 16000, what speech
    /// models expect). Sources at another rate are resampled; a source
    /// already at this rate is copied sample for sample.
    #[serde(default = "default_sample_rate")]
    pub sample_rate: u32,
}

fn default_sample_rate() -> u32 {
    16_000
}

/// Lowest and highest `sample_rate` accepted.
const RATES: std::ops::RangeInclusive<u32> = 1_000..=384_000;

/// The `audio.decode` stage kind.
pub struct AudioDecodeKind;

impl Settings for AudioDecodeConfig {}

impl TypedKind for AudioDecodeKind {
    type Config = AudioDecodeConfig;

    fn name(&self) -> &'static str {
        "audio.decode"
    }

    fn summary(&self) -> &'static str {
        "Decode a media file (the item, or an upstream `media` output) to mono f32 audio at one sample rate"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, config: &AudioDecodeConfig) -> Vec<ConfigProblem> {
        if RATES.contains(&config.sample_rate) {
            return Vec::new();
        }
        vec![ConfigProblem::new(
            &["sample_rate"],
            format!(
                "`sample_rate` is {} Hz, outside {} to {} Hz",
                config.sample_rate,
                RATES.start(),
                RATES.end()
            ),
        )
        .help("speech models expect 16000")]
    }

    fn ports(&self, _config: &AudioDecodeConfig) -> Ports {
        // No required input: the stage reads the item itself, or the
        // `media` output of a `media.fetch` stage among its `needs`.
        Ports {
            inputs: Vec::new(),
            outputs: vec![port::AUDIO.to_string()],
        }
    }

    fn build(
        &self,
        _ctx: &BuildContext<'_>,
        config: AudioDecodeConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        Ok(Arc::new(AudioDecode {
            rate: config.sample_rate,
        }))
    }
}

/// A built `audio.decode` stage.
struct AudioDecode {
    rate: u32,
}

impl Stage for AudioDecode {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let path = source_path(input)?;
        let name = if path.as_os_str() == input.item.source.as_str() {
            input.item.id.clone()
        } else {
            path.display().to_string()
        };
        let sniffed = sniff::sniff_file(&path)
            .map_err(|e| StageError::failed(format!("cannot read `{name}`: {e}")))?;
        let (container, label) = match &sniffed {
            Sniffed::Empty => {
                return Err(StageError::failed(format!(
                    "empty file (0 bytes): `{name}`"
                )))
            }
            Sniffed::Other(what) => {
                return Err(StageError::failed(format!(
                    "not a media file: `{name}` is {what}"
                )))
            }
            Sniffed::Media { container, .. } => (*container, sniffed.media_label()),
        };
        let out = input
            .create_out_dir()
            .map_err(|e| StageError::failed(format!("cannot create the output folder: {e}")))?
            .join(AUDIO_FILE);
        let writer = || {
            ArtifactWriter::create(&out)
                .map_err(|e| StageError::failed(format!("cannot create `{AUDIO_FILE}`: {e}")))
        };
        let why = match symphonia_reads(&sniffed) {
            Err(why) => why,
            Ok(()) => match decode::decode(&path, container, self.rate, writer()?) {
                Ok(decoded) => return Ok(self.output(decoded)),
                Err(Failure::Failed(reason)) => return Err(StageError::failed(reason)),
                Err(Failure::Unsupported(why)) => why,
            },
        };
        let decoded = ffmpeg::decode(
            &path,
            container,
            &label,
            &why,
            self.rate,
            writer()?,
            input.timeout,
        )?;
        Ok(self.output(decoded))
    }
}

impl AudioDecode {
    fn output(&self, decoded: Decoded) -> StageOutput {
        let value = serde_json::json!({
            "sample_rate": self.rate,
            "samples": decoded.samples,
            "seconds": decoded.samples as f64 / f64::from(self.rate),
            "source_format": decoded.source_format,
            "source_sample_rate": decoded.source_sample_rate,
            "source_channels": decoded.source_channels,
        });
        StageOutput {
            outputs: vec![Output {
                port: port::AUDIO.to_string(),
                files: vec![AUDIO_FILE.to_string()],
                value: Some(value),
            }],
        }
    }
}

/// Whether symphonia (with this crate's features) may read the file;
/// otherwise why not, for the ffmpeg fallback's messages.
fn symphonia_reads(sniffed: &Sniffed) -> Result<(), String> {
    let Sniffed::Media { container, codec } = sniffed else {
        return Err("not media".to_string());
    };
    if let Some(codec @ ("opus" | "speex")) = codec {
        return Err(format!("symphonia has no {codec} decoder"));
    }
    match container {
        Container::Wav
        | Container::Aiff
        | Container::Flac
        | Container::Mp3
        | Container::Adts
        | Container::Ogg
        | Container::Mp4
        | Container::Matroska
        | Container::WebM => Ok(()),
        other => Err(format!("symphonia has no reader for {}", other.label())),
    }
}

/// The file to decode: the first file (or the `path` value) of an upstream
/// `media` output, else the item itself.
fn source_path(input: &StageInput) -> Result<PathBuf, StageError> {
    if let Some(media) = input.find(crate::port::MEDIA).next() {
        if let Some(file) = media.files.first() {
            return Ok(file.clone());
        }
        if let Some(path) = media.value.as_ref().and_then(|v| v["path"].as_str()) {
            return Ok(PathBuf::from(path));
        }
        return Err(StageError::failed(
            "the upstream `media` output has neither a file nor a `path` value",
        ));
    }
    let source = &input.item.source;
    if source.contains("://") {
        return Err(StageError::failed(format!(
            "`{}` is a URL: add a `media.fetch` stage to this stage's `needs` to download it",
            crate::fetch::url::redact(source)
        )));
    }
    Ok(Path::new(source).to_path_buf())
}
