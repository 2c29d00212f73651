//! Text stage kinds for `flow`: `text.chunk` (transcript segments into
//! chunks), `text.embed` (BERT-family sentence embeddings in burn) and
//! `sink.embeddings` (vectors streamed into safetensors shards). See
//! `docs/text.md`.

pub mod bert;
mod checkpoint;
pub mod chunk;
pub mod cpu_bert;
pub mod embed;
pub mod embedder;
mod key_index;
pub mod shards;
pub mod sink;

use flow_engine::Registry;

pub use embedder::{EmbedSettings, Embedder, Pooling};

/// Adds this crate's stage kinds to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(chunk::ChunkKind);
    registry.register(embed::EmbedKind);
    registry.register(sink::EmbeddingsSinkKind);
}
