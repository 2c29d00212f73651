//! Building a profile from recordings: find the speech, embed it in
//! windows (as `speaker.embed` does for an item), average the windows.
//!
//! The voice models are passed in as functions, so this module does not
//! depend on a backend: `flow enroll` gives it the Silero VAD and the GE2E
//! encoder; tests may give it anything.

use super::{ModelIdentity, ProfileError, ProfileSource, VoiceProfile};
use crate::diarize::Span;

/// The least speech (after trimming silence) a profile is built from.
pub const MIN_SPEECH_SECONDS: f64 = 3.0;

/// Sample rate of the clips.
const RATE: f64 = 16_000.0;

/// One decoded recording of the speaker.
#[derive(Debug, Clone)]
pub struct Clip {
    /// The path as the user gave it (recorded in the profile).
    pub path: String,
    /// Mono samples at 16 kHz.
    pub samples: Vec<f32>,
}

/// Finds the speech regions (seconds) of 16 kHz samples.
pub type SpeechFn<'a> = dyn FnMut(&[f32]) -> Result<Vec<Span>, String> + 'a;
/// Embeds the windows of 16 kHz samples inside speech regions.
pub type EmbedFn<'a> = dyn FnMut(&[f32], &[Span]) -> Result<Vec<Vec<f32>>, String> + 'a;

/// Enrolment settings.
#[derive(Debug, Clone, Copy)]
pub struct EnrollOptions {
    /// Least speech, in seconds, over all clips.
    pub min_speech_seconds: f64,
    /// Least number of encoder windows over all clips.
    pub min_windows: usize,
}

impl Default for EnrollOptions {
    fn default() -> Self {
        Self {
            min_speech_seconds: MIN_SPEECH_SECONDS,
            min_windows: 3,
        }
    }
}

/// Builds the profile `name` from `clips`: `speech` finds the speech regions
/// of a clip (seconds), `embed` turns a clip and its speech regions into
/// per-window vectors (silence is left out); the profile's centroid is the
/// normalised mean of all windows of all clips.
///
/// # Errors
/// [`ProfileError::TooLittleSpeech`] when a clip has no speech or all of
/// them together have less than `min_speech_seconds`;
/// [`ProfileError::BadName`]; a model failure as [`ProfileError::Invalid`]
/// naming the clip.
pub fn enroll(
    name: &str,
    clips: &[Clip],
    model: ModelIdentity,
    options: &EnrollOptions,
    speech: &mut SpeechFn<'_>,
    embed: &mut EmbedFn<'_>,
) -> Result<VoiceProfile, ProfileError> {
    super::check_name(name)?;
    let mut windows = Vec::new();
    let mut sources = Vec::new();
    for clip in clips {
        let failed = |reason: String| ProfileError::Invalid {
            path: clip.path.clone().into(),
            reason,
        };
        let seconds = clip.samples.len() as f64 / RATE;
        let regions: Vec<Span> = speech(&clip.samples)
            .map_err(failed)?
            .into_iter()
            .map(|r| Span::new(r.start.max(0.0), r.end.min(seconds)))
            .filter(|r| r.end > r.start)
            .collect();
        let speech_seconds: f64 = regions.iter().map(|r| r.end - r.start).sum();
        if regions.is_empty() {
            return Err(ProfileError::TooLittleSpeech {
                name: name.to_string(),
                found: format!("no speech in `{}`", clip.path),
                needed: options.min_speech_seconds,
            });
        }
        let vectors = embed(&clip.samples, &regions).map_err(failed)?;
        sources.push(ProfileSource {
            path: clip.path.clone(),
            seconds,
            speech_seconds,
            windows: vectors.len(),
        });
        windows.extend(vectors.into_iter().filter(|v| v.len() == model.dim));
    }
    let total: f64 = sources.iter().map(|s| s.speech_seconds).sum();
    if total < options.min_speech_seconds {
        return Err(ProfileError::TooLittleSpeech {
            name: name.to_string(),
            found: format!("{total:.1} s of speech in {} file(s)", clips.len()),
            needed: options.min_speech_seconds,
        });
    }
    VoiceProfile::from_windows(name, model, &windows, sources, options.min_windows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelIdentity {
        ModelIdentity {
            encoder: "ge2e".into(),
            dim: 2,
            weights: "test".into(),
        }
    }

    fn clip(seconds: f64) -> Clip {
        Clip {
            path: "a.wav".into(),
            samples: vec![0.1; (seconds * RATE) as usize],
        }
    }

    #[test]
    fn embeds_the_speech_and_averages_the_windows() {
        let mut seen = 0usize;
        let profile = enroll(
            "host",
            &[clip(10.0)],
            model(),
            &EnrollOptions::default(),
            &mut |_| Ok(vec![Span::new(1.0, 3.0), Span::new(5.0, 8.0)]),
            &mut |_, regions| {
                seen = regions.len();
                Ok(vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]])
            },
        )
        .unwrap();
        assert_eq!(seen, 2);
        assert_eq!(profile.count, 3);
        assert!((profile.centroid[0] - profile.centroid[1]).abs() < 1e-6);
        assert!((profile.speech_seconds - 5.0).abs() < 1e-9);
        assert!(profile.spread.min < profile.spread.mean);
    }

    #[test]
    fn refuses_a_clip_without_speech_and_too_little_speech() {
        let err = enroll(
            "host",
            &[clip(5.0)],
            model(),
            &EnrollOptions::default(),
            &mut |_| Ok(Vec::new()),
            &mut |_, _| Ok(vec![vec![1.0, 0.0]]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no speech in `a.wav`"), "{err}");
        let err = enroll(
            "host",
            &[clip(5.0)],
            model(),
            &EnrollOptions::default(),
            &mut |_| Ok(vec![Span::new(0.0, 1.0)]),
            &mut |_, _| Ok(vec![vec![1.0, 0.0]]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("too little speech"), "{err}");
    }
}
