//! Voice activity detection with Silero VAD v6 (16 kHz) in burn, and the
//! `vad.silero` stage kind.
//!
//! ```ignore
//! use flow_voice::vad::{SpeechParams, Vad};
//! let vad = Vad::<flow_backend::Cpu>::load(&model_path, &Default::default())?;
//! let probs = vad.probabilities(&samples)?;          // one per 512 samples
//! let regions = vad.speech_regions(&samples, &SpeechParams::default())?;
//! ```
//!
//! [`AnyVad`] does the same on the backend a [`flow_backend::Compute`]
//! names. See `docs/voice.md`.

mod any;
mod detector;
pub mod frames;
pub mod model;
mod onnx;
mod stage;
pub mod timestamps;

use flow_engine::Registry;

pub use any::AnyVad;
pub use detector::{
    read_weights, weights_file, Vad, VadError, CHUNK_FRAMES, ONNX_FILE, SAFETENSORS_FILE,
};
pub use model::SileroVad;
pub use stage::{SileroKind, SileroStage};
pub use timestamps::{speech_regions, speech_samples, Region, SampleRegion, SpeechParams};

/// Adds `vad.silero` to `registry`.
pub(crate) fn register(registry: &mut Registry) {
    registry.register(SileroKind);
}
