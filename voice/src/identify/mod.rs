//! `speaker.identify`: which transcript segments the enrolled target
//! speaker says.
//!
//! Each segment's voice is the normalised mean of the encoder windows
//! centred in it (or, for a segment shorter than a window, the window that
//! overlaps it most), scored by its cosine to the target's profile. When
//! every scored segment reaches `threshold`, the item is a *monologue*: all
//! segments are the target and `speaker.diarize` downstream passes the
//! result through. Otherwise (*identified*) a segment is the target when it
//! reaches `threshold` and is closer to the profile than to the item's other
//! voices (the mean of the segments below `threshold`) by `margin`; other
//! segments get `speaker: null` (`speaker.diarize` names them).
//!
//! Errors: a missing, unreadable or incompatible profile, or an item with no
//! voice embeddings in its speech, gives a `degraded` result (every
//! `speaker` null, `reason` saying why): the item goes on, never labelled as
//! the target. A missing `transcript` or damaged `voice.f32` fails the item.

use std::sync::Arc;

use flow_engine::registry::{
    port, BuildContext, ConfigProblem, Output, Ports, Resources, Settings, Stage, StageError,
    StageInput, StageOutput, TypedKind,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diarize::inputs::{segments, speech_regions, Segment, VoiceWindows};
use crate::diarize::speakers::{labelled, round3, turns_of_segments, Mode, Speakers};
use crate::diarize::{select, Span};
use crate::profile::{cosine, mean_direction, resolve, VoiceProfile};

/// Default least cosine of a segment's voice to the target's profile.
pub const DEFAULT_THRESHOLD: f64 = 0.85;
/// Default margin by which a target segment is closer to the profile than
/// to the item's other voices.
pub const DEFAULT_MARGIN: f64 = 0.05;

/// Settings of `speaker.identify`.
///
/// ```yaml
/// with: { target: chaffee, threshold: 0.85, margin: 0.05 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentifyConfig {
    /// The enrolled speaker: a name (`chaffee` reads `voices/chaffee.json`
    /// beside the workflow file) or a path to a profile, relative to the
    /// workflow file (`voices/chaffee.json`). Make one with
    /// `flow enroll NAME AUDIO...`.
    pub target: String,
    /// Least cosine similarity (−1 to 1) of a segment's voice to the
    /// profile for it to be the target. Default 0.85.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// How much closer (in cosine) to the profile than to the item's other
    /// voices a segment must be to be the target. Default 0.05.
    #[serde(default = "default_margin")]
    pub margin: f64,
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}
fn default_margin() -> f64 {
    DEFAULT_MARGIN
}

/// Identification settings, for library use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdentifyOptions {
    /// See [`IdentifyConfig::threshold`].
    pub threshold: f32,
    /// See [`IdentifyConfig::margin`].
    pub margin: f32,
}

impl Default for IdentifyOptions {
    fn default() -> Self {
        Self {
            threshold: DEFAULT_THRESHOLD as f32,
            margin: DEFAULT_MARGIN as f32,
        }
    }
}

/// Labels `segments` as `profile`'s speaker or not, from the item's voice
/// windows (inside `speech` when given). See the module documentation.
pub fn identify(
    profile: &VoiceProfile,
    voice: &VoiceWindows,
    speech: Option<&[Span]>,
    segments: &[Segment],
    opts: &IdentifyOptions,
) -> Speakers {
    let target = Some(profile.name.clone());
    if let Err(e) = profile.check_compatible(voice.dim, voice.model.as_deref()) {
        return Speakers::degraded(target, e.to_string(), segments);
    }
    let chosen = select(voice, speech);
    if chosen.is_empty() {
        let reason = "no voice embeddings in this item's speech (no speech found, or it is shorter than one encoder window)";
        return Speakers::degraded(target, reason.to_string(), segments);
    }
    let members: Vec<Vec<usize>> = segments
        .iter()
        .map(|s| members(voice, &chosen, s))
        .collect();
    let vectors: Vec<Option<Vec<f32>>> = members
        .iter()
        .map(|m| mean_direction(m.iter().map(|&i| voice.vectors[i].as_slice())))
        .collect();
    let scores: Vec<Option<f32>> = vectors
        .iter()
        .map(|v| v.as_ref().map(|v| profile.score(v)))
        .collect();
    let whole = mean_direction(chosen.iter().map(|&i| voice.vectors[i].as_slice()))
        .map_or(0.0, |v| profile.score(&v));
    let scored: Vec<f32> = scores.iter().flatten().copied().collect();
    let monologue = if scored.is_empty() {
        whole >= opts.threshold
    } else {
        scored.iter().all(|s| *s >= opts.threshold)
    };
    let labels: Vec<(Option<&str>, Option<f32>)> = if monologue {
        scores
            .iter()
            .map(|s| (Some(profile.name.as_str()), Some(s.unwrap_or(whole))))
            .collect()
    } else {
        let others = mean_direction(
            members
                .iter()
                .zip(&scores)
                .filter(|(_, s)| s.is_some_and(|s| s < opts.threshold))
                .flat_map(|(m, _)| m.iter().map(|&i| voice.vectors[i].as_slice())),
        );
        vectors
            .iter()
            .zip(&scores)
            .map(|(v, s)| match (v, s) {
                (Some(v), Some(s)) if *s >= opts.threshold => {
                    let other = others.as_ref().map_or(-1.0, |o| cosine(v, o));
                    if s - other >= opts.margin {
                        (Some(profile.name.as_str()), Some(*s))
                    } else {
                        (None, None)
                    }
                }
                _ => (None, None),
            })
            .collect()
    };
    let out: Vec<serde_json::Map<String, serde_json::Value>> = segments
        .iter()
        .zip(&labels)
        .zip(&scores)
        .map(|((seg, (speaker, confidence)), score)| {
            let mut fields = labelled(&seg.fields, *speaker, *confidence);
            fields.insert(
                "target_score".into(),
                score.map_or(serde_json::Value::Null, |s| round3(s).into()),
            );
            fields
        })
        .collect();
    let runs: Vec<(f64, f64, Option<String>, f32)> = segments
        .iter()
        .zip(&labels)
        .map(|(s, (sp, c))| (s.start, s.end, sp.map(str::to_string), c.unwrap_or(0.0)))
        .collect();
    Speakers {
        target,
        mode: if monologue {
            Mode::Monologue
        } else {
            Mode::Identified
        },
        reason: None,
        turns: turns_of_segments(&runs),
        segments: out,
    }
}

/// The chosen windows that speak for `seg`: those centred in it, else the
/// one overlapping it most.
fn members(voice: &VoiceWindows, chosen: &[usize], seg: &Segment) -> Vec<usize> {
    let span = Span::new(seg.start, seg.end);
    let centred: Vec<usize> = chosen
        .iter()
        .copied()
        .filter(|&i| span.contains(voice.windows[i].center()))
        .collect();
    if !centred.is_empty() {
        return centred;
    }
    chosen
        .iter()
        .copied()
        .map(|i| (i, voice.windows[i].overlap(&span)))
        .filter(|(_, o)| *o > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| vec![i])
        .unwrap_or_default()
}

/// The `speaker.identify` kind.
pub struct IdentifyKind;

impl Settings for IdentifyConfig {}

impl TypedKind for IdentifyKind {
    type Config = IdentifyConfig;

    fn name(&self) -> &'static str {
        "speaker.identify"
    }

    fn summary(&self) -> &'static str {
        "Label transcript segments as an enrolled speaker (voices/NAME.json) or not, from GE2E voice embeddings; whole-item matches are monologues"
    }

    fn version(&self) -> u32 {
        1
    }

    fn validate(&self, c: &IdentifyConfig) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if !(-1.0..=1.0).contains(&c.threshold) {
            out.push(ConfigProblem::new(
                &["threshold"],
                "`threshold` is a cosine, between -1 and 1",
            ));
        }
        if !(0.0..=2.0).contains(&c.margin) {
            out.push(ConfigProblem::new(
                &["margin"],
                "`margin` is a cosine difference, between 0 and 2",
            ));
        }
        if c.target.trim().is_empty() {
            out.push(
                ConfigProblem::new(&["target"], "`target` is empty")
                    .help("name an enrolled speaker (`flow enroll NAME AUDIO...`)"),
            );
        }
        out
    }

    fn ports(&self, _config: &IdentifyConfig) -> Ports {
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
        config: IdentifyConfig,
    ) -> Result<Arc<dyn Stage>, String> {
        let path = resolve(&config.target, ctx.workflow_dir);
        let profile = VoiceProfile::load(&path).map_err(|e| e.to_string());
        let target = path
            .file_stem()
            .map_or(config.target.clone(), |s| s.to_string_lossy().into_owned());
        Ok(Arc::new(IdentifyStage {
            target,
            profile,
            opts: IdentifyOptions {
                threshold: config.threshold as f32,
                margin: config.margin as f32,
            },
        }))
    }
}

/// A built `speaker.identify` stage: the profile, read once.
struct IdentifyStage {
    target: String,
    profile: Result<VoiceProfile, String>,
    opts: IdentifyOptions,
}

impl Stage for IdentifyStage {
    fn run(&self, input: &StageInput) -> Result<StageOutput, StageError> {
        let segments = segments(input).map_err(StageError::failed)?;
        let speakers = match &self.profile {
            Err(reason) => Speakers::degraded(Some(self.target.clone()), reason.clone(), &segments),
            Ok(profile) => match VoiceWindows::find(input).map_err(StageError::failed)? {
                None => Speakers::degraded(
                    Some(profile.name.clone()),
                    "no `voice_embeddings` input: wire a speaker.embed stage into `needs`".into(),
                    &segments,
                ),
                Some(voice) => {
                    let speech = speech_regions(input).map_err(StageError::failed)?;
                    identify(profile, &voice, speech.as_deref(), &segments, &self.opts)
                }
            },
        };
        Ok(StageOutput {
            outputs: vec![Output {
                port: port::SPEAKERS.to_string(),
                files: Vec::new(),
                value: Some(speakers.to_value()),
            }],
        })
    }
}

/// Adds `speaker.identify` to `registry`.
pub(crate) fn register(registry: &mut flow_engine::Registry) {
    registry.register(IdentifyKind);
}

#[cfg(test)]
mod tests;
