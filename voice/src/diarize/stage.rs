//! The `speaker.diarize` stage kind.
//!
//! Errors: an item without voice embeddings in its speech gives a
//! `degraded` result (every `speaker` null, `reason` saying why). A target
//! profile that is missing, unreadable or made by another encoder does not
//! stop diarization: the speakers are all `SPEAKER_N` (never the target) and
//! `reason` says why the target could not be named. A missing `transcript`
//! or damaged `voice.f32` fails the item.

use std::sync::Arc;

use flow_engine::registry::{
    port, BuildContext, ConfigProblem, Output, Ports, Resources, Settings, Stage, StageError,
    StageInput, StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::assign::assign;
use super::inputs::{parse_segments, segments, speech_regions, upstream_speakers, VoiceWindows};
use super::naming::{name_clusters, speakers_of, TargetMatch};
use super::speakers::{Mode, Speakers};
use super::{diarize, DiarizeOptions, Span};
use crate::identify::{DEFAULT_MARGIN, DEFAULT_THRESHOLD};
use crate::profile::{resolve, VoiceProfile};

/// Settings of `speaker.diarize`.
///
/// ```yaml
/// with: { target: chaffee, threshold: 0.3 }   # or { speakers: 2 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiarizeConfig {
    /// The number of speakers, when known. Without it the number is found
    /// by `threshold`.
    #[serde(default)]
    pub speakers: Option<usize>,
    /// Clusters of voice windows merge while their average cosine distance
    /// (1 − cosine) is at most this. Lower finds more speakers. Default 0.3.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// A speaker needs at least this much speech (seconds); smaller clusters
    /// join the nearest larger one. Ignored with `speakers`. Default 2.0.
    #[serde(default = "default_min_speaker")]
    pub min_speaker_seconds: f64,
    /// Pauses up to this long (seconds) between two stretches of one
    /// speaker belong to the same turn. Default 1.0.
    #[serde(default = "default_fill_gap")]
    pub fill_gap: f64,
    /// The enrolled speaker to name (a profile name or path, as in
    /// `speaker.identify`). Without it, the target of an upstream
    /// `speaker.identify` is named from the segments it labelled.
    #[serde(default)]
    pub target: Option<String>,
    /// Least cosine of a cluster's mean voice to the `target` profile for it
    /// to be the target. Default 0.85.
    #[serde(default = "default_target_threshold")]
    pub target_threshold: f64,
    /// How much nearer the profile the target's cluster must be than any
    /// other cluster (cosine). Default 0.05.
    #[serde(default = "default_margin")]
    pub margin: f64,
}

fn default_threshold() -> f64 {
    0.3
}
fn default_min_speaker() -> f64 {
    2.0
}
fn default_fill_gap() -> f64 {
    1.0
}
fn default_target_threshold() -> f64 {
    DEFAULT_THRESHOLD
}
fn default_margin() -> f64 {
    DEFAULT_MARGIN
}

impl DiarizeConfig {
    /// The clustering settings.
    pub fn options(&self) -> DiarizeOptions {
        DiarizeOptions {
            threshold: self.threshold as f32,
            speakers: self.speakers,
            min_speaker_seconds: self.min_speaker_seconds,
            fill_gap: self.fill_gap,
        }
    }
}

/// The `speaker.diarize` kind.
pub struct DiarizeKind;

impl Settings for DiarizeConfig {}

impl TypedKind for DiarizeKind {
    type Config = DiarizeConfig;

    fn name(&self) -> &'static str {
        "speaker.diarize"
    }

    fn summary(&self) -> &'static str {
        "Cluster GE2E voice windows into speaker turns and label transcript segments (the enrolled target by name, others SPEAKER_N)"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, c: &DiarizeConfig) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if c.speakers == Some(0) {
            out.push(
                ConfigProblem::new(&["speakers"], "`speakers` must be at least 1")
                    .help("leave it out to find the number from `threshold`"),
            );
        }
        if !(0.0..=2.0).contains(&c.threshold) {
            out.push(ConfigProblem::new(
                &["threshold"],
                "`threshold` is a cosine distance, between 0 and 2",
            ));
        }
        if !(-1.0..=1.0).contains(&c.target_threshold) {
            out.push(ConfigProblem::new(
                &["target_threshold"],
                "`target_threshold` is a cosine, between -1 and 1",
            ));
        }
        for (key, v) in [
            ("min_speaker_seconds", c.min_speaker_seconds),
            ("fill_gap", c.fill_gap),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                out.push(ConfigProblem::new(
                    &[key],
                    format!("`{key}` is a number of seconds, 0 or more"),
                ));
            }
        }
        out
    }

    fn ports(&self, _config: &DiarizeConfig) -> Ports {
        Ports {
            inputs: vec![
                port::TRANSCRIPT.to_string(),
                port::VOICE_EMBEDDINGS.to_string(),
            ],
            outputs: vec![port::SPEAKERS.to_string()],
        }
    }

    fn resources(&self) -> Resources {
        Resources {
            inline: true,
            ..Resources::default()
        }
    }

    fn build(
        &self,
        ctx: &BuildContext<'_>,
        config: DiarizeConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        let profile = config.target.as_ref().map(|t| {
            let path = resolve(t, ctx.workflow_dir);
            let name = path
                .file_stem()
                .map_or(t.clone(), |s| s.to_string_lossy().into_owned());
            (name, VoiceProfile::load(&path).map_err(|e| e.to_string()))
        });
        Ok(Arc::new(DiarizeStage { config, profile }))
    }
}

/// A built `speaker.diarize` stage.
struct DiarizeStage {
    config: DiarizeConfig,
    /// The target's name and profile (or why it cannot be read).
    profile: Option<(String, Result<VoiceProfile, String>)>,
}

impl DiarizeStage {
    fn speakers(&self, input: &StageInput) -> Result<serde_json::Value, StageError> {
        let upstream = upstream_speakers(input);
        if let Some(up) = upstream.filter(|u| u["mode"] == "monologue") {
            return Ok(up.clone());
        }
        let segments = segments(input).map_err(StageError::failed)?;
        let mut target = self.profile.as_ref().map(|p| p.0.clone());
        let mut reason = None;
        let mut matcher = None;
        let voice = VoiceWindows::find(input).map_err(StageError::failed)?;
        let Some(voice) = voice else {
            let why = "no `voice_embeddings` input: wire a speaker.embed stage into `needs`";
            return Ok(Speakers::degraded(target, why.into(), &segments).to_value());
        };
        match &self.profile {
            Some((_, Ok(p))) => match p.check_compatible(voice.dim, voice.model.as_deref()) {
                Ok(()) => {
                    matcher = Some(TargetMatch::Profile {
                        profile: p,
                        threshold: self.config.target_threshold as f32,
                        margin: self.config.margin as f32,
                    })
                }
                Err(e) => reason = Some(format!("target not named: {e}")),
            },
            Some((_, Err(e))) => reason = Some(format!("target not named: {e}")),
            None => match upstream {
                Some(up) if up["mode"] == "identified" => {
                    let name = up["target"].as_str().unwrap_or_default().to_string();
                    let spans = parse_segments(up)
                        .map_err(StageError::failed)?
                        .iter()
                        .filter(|s| s.fields.get("speaker").and_then(|v| v.as_str()) == Some(&name))
                        .map(|s| Span::new(s.start, s.end))
                        .collect();
                    target = Some(name.clone());
                    matcher = Some(TargetMatch::Segments { name, spans });
                }
                Some(up) => {
                    target = up["target"].as_str().map(str::to_string);
                    let why = up["reason"]
                        .as_str()
                        .unwrap_or("speaker.identify did not identify it");
                    reason = target.as_ref().map(|_| format!("target not named: {why}"));
                }
                None => {}
            },
        }
        let speech = speech_regions(input).map_err(StageError::failed)?;
        let d = diarize(&voice, speech.as_deref(), &self.config.options());
        if d.pieces.is_empty() {
            let why = "no voice embeddings in this item's speech (no speech found, or it is shorter than one encoder window)";
            return Ok(Speakers::degraded(target, why.into(), &segments).to_value());
        }
        let (names, _) = name_clusters(&d, matcher.as_ref());
        let turns = speakers_of(&d, &names);
        let segments = assign(&segments, &turns);
        Ok(Speakers {
            target,
            mode: Mode::Diarized,
            reason,
            turns,
            segments,
        }
        .to_value())
    }
}

impl Stage for DiarizeStage {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        Ok(StageOutput {
            outputs: vec![Output {
                port: port::SPEAKERS.to_string(),
                files: Vec::new(),
                value: Some(self.speakers(input)?),
            }],
        })
    }
}
