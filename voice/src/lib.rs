//! Voice stage kinds for `flow`: `vad.silero` (Silero VAD v6 in burn),
//! `speaker.embed` (the GE2E speaker encoder in burn), `speaker.identify`
//! (enrolled voice profiles) and `speaker.diarize` (clustering speaker
//! turns). See `docs/voice.md`.

pub mod diarize;
pub mod ge2e;
pub mod identify;
pub mod profile;
pub mod vad;

use flow_engine::Registry;

/// Adds this crate's stage kinds to `registry`.
pub fn register(registry: &mut Registry) {
    vad::register(registry);
    ge2e::register(registry);
    identify::register(registry);
    diarize::register(registry);
}
