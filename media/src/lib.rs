//! Media stage kinds for `flow`:
//!
//! - `media.fetch` makes an item's media available as a local file: local
//!   paths pass through, `http(s)` URLs are downloaded (with retries, resume
//!   and a checksum), video pages go through `yt-dlp`.
//! - `audio.decode` decodes a media file (symphonia, or `ffmpeg` for what
//!   symphonia cannot read), downmixes it to mono and resamples it, streaming,
//!   into a raw `f32` artifact that later stages read with [`read_audio`] or
//!   [`AudioReader`].
//!
//! Register both with [`register`]. See `docs/media.md`.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod audio;
pub mod fetch;
mod tools;

pub use audio::artifact::{read_audio, AudioReader, AUDIO_FILE};
pub use audio::{AudioDecodeConfig, AudioDecodeKind};
pub use fetch::{MediaFetchConfig, MediaFetchKind};

use flow_engine::Registry;

/// Port types introduced by this crate.
pub mod port {
    /// A media file made local by `media.fetch`: either one file in the
    /// result (a download) or, for a local item, no file and a value
    /// `{"path": "/abs/path"}`.
    pub const MEDIA: &str = "media";
    pub use flow_engine::registry::port::AUDIO;
}

/// Adds `audio.decode` and `media.fetch` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(AudioDecodeKind).register(MediaFetchKind);
}
