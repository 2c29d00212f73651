//! Speech recognition for `flow`: the `asr.whisper` stage kind, Whisper in
//! burn (any size, CTranslate2 or Hugging Face weights), its log-mel front
//! end, tokenizer and greedy decoding with timestamp rules, faithful to
//! faster-whisper. See `docs/asr.md`.

pub mod cpu;
pub mod decode;
pub mod fallback;
pub mod hf;
pub mod load;
pub mod mel;
pub mod model;
pub mod network;
pub mod regions;
pub mod stage;
pub mod tokens;
pub mod transcribe;

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::DType;
use flow_backend::{burn, Weights};
use flow_engine::Registry;

pub use cpu::CpuWhisper;
pub use decode::Rules;
pub use model::Whisper;
pub use network::Network;
pub use regions::merge_regions;
pub use transcribe::{Options, Segment, Transcriber};

/// Adds this crate's stage kinds to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(stage::WhisperKind);
}

/// The decoding rules from the model folder's `config.json`
/// (`suppress_ids`, `suppress_ids_begin`; Hugging Face: `suppress_tokens`,
/// `begin_suppress_tokens`), plus the task tokens.
fn rules(dir: &Path, vocab: &tokens::Vocabulary) -> Result<Rules, String> {
    let path = dir.join("config.json");
    let config: serde_json::Value = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| format!("cannot parse `{}`: {e}", path.display()))?,
        Err(_) => serde_json::Value::Null,
    };
    let ids = |key: &str| -> Vec<u32> {
        let hf_key = match key {
            "suppress_ids" => "suppress_tokens",
            _ => "begin_suppress_tokens",
        };
        config[key]
            .as_array()
            .or_else(|| config[hf_key].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_u64())
                    .map(|v| v as u32)
                    .collect()
            })
            .unwrap_or_default()
    };
    let s = vocab.specials.clone();
    let mut suppress = ids("suppress_ids");
    suppress.extend([
        s.transcribe,
        s.translate,
        s.sot,
        s.sot_prev,
        s.sot_lm,
        s.no_speech,
    ]);
    let mut suppress_begin = ids("suppress_ids_begin");
    if suppress_begin.is_empty() {
        suppress_begin = vec![220, s.eot];
    }
    Ok(Rules {
        specials: s,
        suppress,
        suppress_begin,
        max_initial_timestamp: Some(50),
    })
}

/// The weights of the model in `dir`: a CTranslate2 `model.bin` folder,
/// or a Hugging Face `model.safetensors` + `config.json` one (renamed into
/// CTranslate2's names).
fn weights(dir: &Path) -> Result<Weights, String> {
    match hf::is_hf(dir) {
        true => hf::read(dir),
        false => Weights::read(&dir.join("model.bin")),
    }
    .map_err(|e| e.to_string())
}

/// `model` with the tokenizer and rules of `dir`.
fn transcriber<N: Network>(dir: &Path, model: N) -> Result<Transcriber<N>, String> {
    let vocab = tokens::Vocabulary::load(dir, model.dims().vocab)?;
    let rules = rules(dir, &vocab)?;
    Ok(Transcriber::new(model, vocab, rules))
}

/// Loads the Whisper model in `dir` (see [`weights`]) in burn on `device`,
/// in `dtype` (`F32`; `F16` where the backend computes in it), with its
/// tokenizer and rules. `host_logits`: see [`load::whisper`] (true on the
/// CPU backend).
///
/// # Errors
/// A message naming the file that is missing or wrong.
pub fn load<B: Backend>(
    dir: &Path,
    device: &B::Device,
    host_logits: bool,
    dtype: DType,
) -> Result<Transcriber<Whisper<B>>, String> {
    let model = load::whisper::<B>(&weights(dir)?, device, host_logits, dtype)
        .map_err(|e| e.to_string())?;
    transcriber(dir, model)
}

/// Loads the Whisper model in `dir` on the CPU kernels ([`CpuWhisper`]),
/// with its tokenizer and rules: what `asr.whisper` runs on the CPU.
///
/// # Errors
/// A message naming the file that is missing or wrong.
pub fn load_cpu(dir: &Path) -> Result<Transcriber<CpuWhisper>, String> {
    let model = CpuWhisper::new(&weights(dir)?).map_err(|e| e.to_string())?;
    transcriber(dir, model)
}
