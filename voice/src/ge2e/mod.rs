//! The GE2E speaker encoder (Resemblyzer 0.1.4's `pretrained.pt`: a 3-layer
//! LSTM over 40-band mel frames, a linear layer, ReLU, L2 normalisation) in
//! burn, and the `speaker.embed` stage kind.
//!
//! ```ignore
//! use flow_voice::ge2e::SpeakerEncoder;
//! // `pretrained.pt`, or a folder holding it (`pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt`).
//! let encoder = SpeakerEncoder::load(&weights, &DeviceId::Cpu)?;
//! // 16 kHz mono samples → one 256-d unit vector (Resemblyzer's embed_utterance).
//! let voice: Vec<f32> = encoder.embed_utterance(&samples)?;
//! // One vector per clip (speech regions, fixed windows), all clips batched.
//! let per_clip: Vec<Vec<f32>> = encoder.embed_many(&[&samples[..24000], &samples[24000..]])?;
//! // The 1.6 s partial windows and their vectors.
//! let (partials, times) = encoder.embed_partials(&samples)?;
//! let score = flow_voice::ge2e::cosine(&voice, &per_clip[0]);
//! ```
//!
//! Every `embed_*` call raises the volume to -30 dBFS first (Resemblyzer's
//! `normalize_volume`, increase only). Resemblyzer's webrtcvad silence
//! trimming is replaced by [`trim_long_silences`] over speech regions (from
//! Silero VAD; see `docs/voice-ge2e.md` for what that changes).
//!
//! Submodules: [`mel`] (the librosa mel front end), [`partials`] (window
//! slicing, volume, trimming), [`model`] (the network), `encoder` (the
//! library entry point), `stage` (`speaker.embed`).

mod encoder;
pub mod mel;
pub mod model;
pub mod partials;
mod stage;
mod windows;

use flow_engine::Registry;

pub use encoder::{cosine, weights_file, Partials, SpeakerEncoder, DIM, WEIGHTS_FILE};
pub use partials::{
    normalize_volume, partial_slices, preprocess, trim_long_silences, voice_flags, PartialSlice,
};
pub use stage::{EmbedWindows, SpeakerEmbedConfig, SpeakerEmbedKind, SpeakerEmbedStage};
pub use windows::plan_windows;

/// Adds `speaker.embed` to `registry`.
pub(crate) fn register(registry: &mut Registry) {
    registry.register(SpeakerEmbedKind);
}
