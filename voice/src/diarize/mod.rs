//! `speaker.diarize`: who speaks when, and which transcript segment is
//! whose.
//!
//! The item's GE2E window embeddings (from `speaker.embed`) that lie in its
//! speech (`speech_regions` from `vad.silero`, when wired) are clustered
//! ([`cluster`]: cosine distance, average linkage, cut at `threshold` or at
//! `speakers` clusters); clusters with less than `min_speaker_seconds` of
//! speech join the nearest larger one. Windows become turns ([`turns`]),
//! turns are matched to the transcript's segments ([`assign`]). The cluster
//! of the enrolled target (a `target` profile, or the segments an upstream
//! `speaker.identify` labelled) is named after the target; the others are
//! `SPEAKER_1`, `SPEAKER_2`, … in order of first appearance.
//!
//! An upstream `speaker.identify` result in mode `monologue` is passed
//! through unchanged (no clustering).

pub mod assign;
pub mod cluster;
pub mod der;
mod diarizer;
pub mod inputs;
mod naming;
pub mod speakers;
mod stage;
pub mod turns;

use serde::{Deserialize, Serialize};

pub(crate) use self::diarizer::select;
pub use self::diarizer::{diarize, Diarization, DiarizeOptions};
pub use der::{diarization_error, DerReport};
pub use inputs::{Segment, VoiceWindows};
pub use naming::{name_clusters, speakers_of, TargetMatch};
pub use speakers::{Mode, Speakers, Turn};
pub use stage::{DiarizeConfig, DiarizeKind};

/// A stretch of time, seconds from the start of the item's audio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

impl Span {
    /// `[start, end]`.
    pub fn new(start: f64, end: f64) -> Self {
        Self { start, end }
    }

    /// The middle.
    pub fn center(&self) -> f64 {
        (self.start + self.end) / 2.0
    }

    /// Whether `t` is in `[start, end)`.
    pub fn contains(&self, t: f64) -> bool {
        self.start <= t && t < self.end
    }

    /// Seconds shared with `other`.
    pub fn overlap(&self, other: &Span) -> f64 {
        (self.end.min(other.end) - self.start.max(other.start)).max(0.0)
    }

    /// A `{ "start": s, "end": s }` value.
    pub fn from_value(v: &serde_json::Value) -> Option<Self> {
        Some(Self::new(v["start"].as_f64()?, v["end"].as_f64()?))
    }
}

/// Adds `speaker.diarize` to `registry`.
pub(crate) fn register(registry: &mut flow_engine::Registry) {
    registry.register(DiarizeKind);
}
