//! all-MiniLM-L6-v2 in burn against sentence-transformers' vectors
//! (`../shared/reference/text/minilm_reference.json`).

use crate::common;

use std::path::Path;

use flow_engine::device::DeviceId;
use flow_text::{Embedder, Pooling};

fn reference() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/text/minilm_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn every_reference_vector_matches_sentence_transformers() {
    // The fused CPU kernels (what runs on the CPU).
    matches_the_reference(&Embedder::load(&common::minilm_dir(), DeviceId::Cpu).unwrap());
}

#[test]
fn burns_implementation_matches_sentence_transformers_too() {
    // The code CUDA runs, here on burn's CPU backend.
    matches_the_reference(&Embedder::load_burn(&common::minilm_dir(), DeviceId::Cpu).unwrap());
}

#[test]
fn burn_on_vulkan_matches_sentence_transformers() {
    // burn's wgpu backend on a real Vulkan adapter (lavapipe in CI).
    let test = "burn_on_vulkan_matches_sentence_transformers";
    let Some(device) = flow_backend::testing::vulkan_or_skip(test) else {
        return;
    };
    matches_the_reference(&Embedder::load(&common::minilm_dir(), device).unwrap());
}

fn matches_the_reference(embedder: &Embedder) {
    let reference = reference();
    let items = reference["items"].as_array().unwrap();
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    let settings = embedder.settings();
    assert_eq!(settings.pooling, Pooling::Mean);
    assert!(settings.normalize);
    assert_eq!(settings.max_tokens, 256);
    assert_eq!(embedder.dim(), 384);

    // Batched (grouped by length) and one at a time must agree with
    // the reference alike.
    let batched = embedder.embed(&texts, 16).unwrap();
    let mut worst = (1.0f64, "");
    for (i, item) in items.iter().enumerate() {
        let want: Vec<f32> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got = &batched[i * 384..(i + 1) * 384];
        let c = cosine(got, &want);
        if c < worst.0 {
            worst = (c, texts[i]);
        }
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not normalised: {norm}");
    }
    eprintln!(
        "{} texts, worst cosine {:.6} ({:?})",
        texts.len(),
        worst.0,
        worst.1
    );
    assert!(
        worst.0 >= 0.9999,
        "worst cosine {} for {:?}",
        worst.0,
        worst.1
    );

    let single: Vec<f32> = texts
        .iter()
        .flat_map(|t| embedder.embed(&[t], 1).unwrap())
        .collect();
    let drift = batched
        .chunks(384)
        .zip(single.chunks(384))
        .map(|(a, b)| cosine(a, b))
        .fold(1.0f64, f64::min);
    assert!(
        drift >= 0.99999,
        "batching changed a vector: cosine {drift}"
    );
}

#[test]
fn the_reference_covers_unicode_a_single_character_and_truncation() {
    let reference = reference();
    let texts: Vec<String> = reference["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_string())
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let embedder = Embedder::load(&common::minilm_dir(), DeviceId::Cpu).unwrap();
    let counts = embedder.token_counts(&refs).unwrap();
    assert!(texts.iter().any(|t| t.chars().count() == 1));
    assert!(texts.iter().any(|t| !t.is_ascii()));
    assert!(
        counts.contains(&256),
        "no text reaches the limit: {counts:?}"
    );
    assert!(counts.iter().all(|&n| n <= 256));
}
