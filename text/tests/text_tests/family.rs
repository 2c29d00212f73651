//! Another member of the BERT family than all-MiniLM-L6-v2: a small BERT
//! (hidden 32, 4 heads, 2 layers) stored under a `bert.` prefix, pooled
//! from the CLS token, not normalised, truncated at 16 word pieces —
//! sized, pooled and truncated from its folder's files alone — against
//! sentence-transformers on the same weights
//! (`tests/fixtures/bert_family_reference.json`, made by
//! `scripts/bert_family_reference.py`, which documents the weights'
//! formula).

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use flow_engine::device::DeviceId;
use flow_text::{Embedder, Pooling};
use safetensors::tensor::{Dtype, TensorView};

fn reference() -> serde_json::Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert_family_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn fnv1a(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The weights' formula (the script's `values`).
fn values(name: &str, n: usize) -> Vec<f32> {
    (0..n as u64)
        .map(|j| {
            let u = (u64::from(fnv1a(name)) + j * 2_654_435_761) % (1 << 32);
            let v = (u as f64 / 4_294_967_296.0 - 0.5) * 0.2;
            let v = if name.ends_with("LayerNorm.weight") {
                v + 1.0
            } else {
                v
            };
            v as f32
        })
        .collect()
}

/// HF BertModel's tensor names and shapes for these sizes.
fn shapes(vocab: usize, h: usize, layers: usize, inner: usize) -> Vec<(String, Vec<usize>)> {
    let mut all = vec![
        (
            "embeddings.word_embeddings.weight".to_string(),
            vec![vocab, h],
        ),
        ("embeddings.position_embeddings.weight".into(), vec![512, h]),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for i in 0..layers {
        let l = format!("encoder.layer.{i}");
        for (name, shape) in [
            ("attention.self.query", vec![h, h]),
            ("attention.self.key", vec![h, h]),
            ("attention.self.value", vec![h, h]),
            ("attention.output.dense", vec![h, h]),
            ("intermediate.dense", vec![inner, h]),
            ("output.dense", vec![h, inner]),
        ] {
            all.push((format!("{l}.{name}.bias"), vec![shape[0]]));
            all.push((format!("{l}.{name}.weight"), shape));
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            all.push((format!("{l}.{norm}.weight"), vec![h]));
            all.push((format!("{l}.{norm}.bias"), vec![h]));
        }
    }
    all
}

/// The model folder, as the script writes it but with every tensor under
/// `bert.` (as `BertForMaskedLM` and others save them).
fn write_folder(dir: &Path, reference: &serde_json::Value) {
    let minilm = common::minilm_dir();
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    ] {
        std::fs::copy(minilm.join(f), dir.join(f)).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(minilm.join("config.json")).unwrap())
            .unwrap();
    for (k, v) in reference["sizes"].as_object().unwrap() {
        config[k] = v.clone();
    }
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::create_dir(dir.join("1_Pooling")).unwrap();
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        r#"{"word_embedding_dimension": 32, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 16}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("modules.json"),
        r#"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]"#,
    )
    .unwrap();
    let n = |k: &str| config[k].as_u64().unwrap() as usize;
    let tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = shapes(
        n("vocab_size"),
        n("hidden_size"),
        n("num_hidden_layers"),
        n("intermediate_size"),
    )
    .into_iter()
    .map(|(name, shape)| {
        let bytes = values(&name, shape.iter().product())
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        (format!("bert.{name}"), (shape, bytes))
    })
    .collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, (shape, bytes))| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

#[test]
fn a_cls_pooled_unnormalised_bert_matches_sentence_transformers() {
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path(), &reference);
    let items = reference["items"].as_array().unwrap();
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    // The CPU kernels (what runs on the CPU) and burn (what runs on CUDA).
    for embedder in [
        Embedder::load(dir.path(), DeviceId::Cpu).unwrap(),
        Embedder::load_burn(dir.path(), DeviceId::Cpu).unwrap(),
    ] {
        let settings = embedder.settings();
        assert_eq!(settings.pooling, Pooling::Cls);
        assert!(!settings.normalize);
        assert_eq!(settings.max_tokens, 16);
        assert_eq!(embedder.dim(), 32);
        let got = embedder.embed(&texts, 4).unwrap();
        for (item, ours) in items.iter().zip(got.chunks(32)) {
            let want: Vec<f32> = item["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let diff = ours
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                diff < 1e-4,
                "{:?}: differs by {diff}\n{ours:?}\n{want:?}",
                item["text"]
            );
        }
    }
}
