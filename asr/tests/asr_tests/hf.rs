//! The Hugging Face Whisper layout: a random checkpoint the test writes
//! loads with the sizes of its config and its projections fused as
//! CTranslate2 fuses them, and tiny.en rewritten in that layout transcribes
//! exactly as the CTranslate2 original.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use flow_asr::Options;
use flow_backend::burn::tensor::DType;
use flow_backend::{with_backend, Compute, RawTensor, Weights};
use flow_engine::device::DeviceId;

/// Writes `tensors` (f32) as `dir/model.safetensors`.
fn write_safetensors(dir: &Path, tensors: &BTreeMap<String, RawTensor>) {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| {
            let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.clone(), b, t.shape.clone())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(name, b, shape)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

/// A Hugging Face `config.json` for the given sizes.
fn write_config(dir: &Path, d: usize, heads: usize, enc: usize, dec: usize, vocab: usize) {
    let config = serde_json::json!({
        "architectures": ["WhisperForConditionalGeneration"],
        "d_model": d,
        "encoder_attention_heads": heads,
        "decoder_attention_heads": heads,
        "encoder_layers": enc,
        "decoder_layers": dec,
        "num_mel_bins": 80,
        "vocab_size": vocab,
        "max_source_positions": 1500,
        "max_target_positions": 448,
        "suppress_tokens": [1, 2, 7],
        "begin_suppress_tokens": [220, 50256],
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

fn put(map: &mut BTreeMap<String, RawTensor>, name: String, shape: Vec<usize>, data: Vec<f32>) {
    assert_eq!(shape.iter().product::<usize>(), data.len(), "{name}");
    map.insert(name, RawTensor { shape, data });
}

/// Rows `from..to` of a matrix (or a vector).
fn rows(t: &RawTensor, from: usize, to: usize) -> (Vec<usize>, Vec<f32>) {
    let width: usize = t.shape[1..].iter().product();
    let mut shape = t.shape.clone();
    shape[0] = to - from;
    (shape, t.data[from * width..to * width].to_vec())
}

/// tiny.en's CTranslate2 tensors under Hugging Face names (the inverse of
/// what `flow_asr::hf` does, written out independently here).
fn to_hf(ct2: &Weights) -> BTreeMap<String, RawTensor> {
    let mut hf = BTreeMap::new();
    let get = |name: &str| ct2.tensors[name].clone();
    let copy = |hf: &mut BTreeMap<String, RawTensor>, from: &str, to: String| {
        let t = get(from);
        put(hf, to, t.shape, t.data);
    };
    let d = ct2.tensors["decoder/embeddings/weight"].shape[1];
    for side in ["encoder", "decoder"] {
        let layers = (0..)
            .take_while(|i| {
                ct2.tensors
                    .contains_key(&format!("{side}/layer_{i}/ffn/linear_0/weight"))
            })
            .count();
        for i in 0..layers {
            let c = format!("{side}/layer_{i}");
            let h = format!("model.{side}.layers.{i}");
            let qkv_w = get(&format!("{c}/self_attention/linear_0/weight"));
            let qkv_b = get(&format!("{c}/self_attention/linear_0/bias"));
            for (k, part) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                let (shape, data) = rows(&qkv_w, k * d, (k + 1) * d);
                put(&mut hf, format!("{h}.self_attn.{part}.weight"), shape, data);
                if *part != "k_proj" {
                    let (shape, data) = rows(&qkv_b, k * d, (k + 1) * d);
                    put(&mut hf, format!("{h}.self_attn.{part}.bias"), shape, data);
                }
            }
            for (from, to) in [
                ("self_attention/linear_1", "self_attn.out_proj"),
                ("ffn/linear_0", "fc1"),
                ("ffn/linear_1", "fc2"),
            ] {
                copy(
                    &mut hf,
                    &format!("{c}/{from}/weight"),
                    format!("{h}.{to}.weight"),
                );
                copy(
                    &mut hf,
                    &format!("{c}/{from}/bias"),
                    format!("{h}.{to}.bias"),
                );
            }
            let mut norms = vec![
                ("self_attention/layer_norm", "self_attn_layer_norm"),
                ("ffn/layer_norm", "final_layer_norm"),
            ];
            if side == "decoder" {
                norms.push(("attention/layer_norm", "encoder_attn_layer_norm"));
                for (from, to) in [
                    ("attention/linear_0", "encoder_attn.q_proj"),
                    ("attention/linear_2", "encoder_attn.out_proj"),
                ] {
                    copy(
                        &mut hf,
                        &format!("{c}/{from}/weight"),
                        format!("{h}.{to}.weight"),
                    );
                    copy(
                        &mut hf,
                        &format!("{c}/{from}/bias"),
                        format!("{h}.{to}.bias"),
                    );
                }
                let kv_w = get(&format!("{c}/attention/linear_1/weight"));
                let kv_b = get(&format!("{c}/attention/linear_1/bias"));
                for (k, part) in ["k_proj", "v_proj"].iter().enumerate() {
                    let (shape, data) = rows(&kv_w, k * d, (k + 1) * d);
                    put(
                        &mut hf,
                        format!("{h}.encoder_attn.{part}.weight"),
                        shape,
                        data,
                    );
                    if *part == "v_proj" {
                        let (shape, data) = rows(&kv_b, k * d, (k + 1) * d);
                        put(
                            &mut hf,
                            format!("{h}.encoder_attn.{part}.bias"),
                            shape,
                            data,
                        );
                    }
                }
            }
            for (from, to) in norms {
                copy(
                    &mut hf,
                    &format!("{c}/{from}/gamma"),
                    format!("{h}.{to}.weight"),
                );
                copy(
                    &mut hf,
                    &format!("{c}/{from}/beta"),
                    format!("{h}.{to}.bias"),
                );
            }
        }
        copy(
            &mut hf,
            &format!("{side}/layer_norm/gamma"),
            format!("model.{side}.layer_norm.weight"),
        );
        copy(
            &mut hf,
            &format!("{side}/layer_norm/beta"),
            format!("model.{side}.layer_norm.bias"),
        );
        copy(
            &mut hf,
            &format!("{side}/position_encodings/encodings"),
            format!("model.{side}.embed_positions.weight"),
        );
    }
    for conv in ["conv1", "conv2"] {
        for p in ["weight", "bias"] {
            copy(
                &mut hf,
                &format!("encoder/{conv}/{p}"),
                format!("model.encoder.{conv}.{p}"),
            );
        }
    }
    copy(
        &mut hf,
        "decoder/embeddings/weight",
        "model.decoder.embed_tokens.weight".into(),
    );
    hf
}

#[test]
fn tiny_en_in_the_hugging_face_layout_transcribes_like_the_original() {
    let ct2_dir = common::model_dir();
    let ct2 = Weights::read(&ct2_dir.join("model.bin")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_safetensors(dir.path(), &to_hf(&ct2));
    std::fs::copy(
        ct2_dir.join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    // The CTranslate2 config's suppression lists, under the Hugging Face keys.
    let c2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ct2_dir.join("config.json")).unwrap())
            .unwrap();
    let config = serde_json::json!({
        "encoder_attention_heads": 6,
        "decoder_attention_heads": 6,
        "suppress_tokens": c2["suppress_ids"],
        "begin_suppress_tokens": c2["suppress_ids_begin"],
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    assert!(flow_asr::hf::is_hf(dir.path()));

    let samples = common::wav(&common::reference("enroll_us.16k.wav"));
    let run = |d: &Path| {
        let t = flow_asr::load_cpu(d).unwrap();
        t.transcribe(&samples, &Options::greedy()).unwrap()
    };
    let (original, converted) = (run(&ct2_dir), run(dir.path()));
    assert!(!original.is_empty());
    assert_eq!(original, converted);
}

/// A deterministic pseudo-random value in [-0.1, 0.1).
fn noise(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
}

#[test]
fn a_small_random_checkpoint_maps_onto_the_model() {
    let (d, heads, enc, dec, vocab, ff) = (32, 4, 2, 1, 51864, 64);
    let mut seed = 7u64;
    let mut hf = BTreeMap::new();
    let mut random = |hf: &mut BTreeMap<String, RawTensor>, name: String, shape: Vec<usize>| {
        let n = shape.iter().product();
        let data = (0..n).map(|_| noise(&mut seed)).collect();
        put(hf, name, shape, data);
    };
    random(&mut hf, "model.encoder.conv1.weight".into(), vec![d, 80, 3]);
    random(&mut hf, "model.encoder.conv1.bias".into(), vec![d]);
    random(&mut hf, "model.encoder.conv2.weight".into(), vec![d, d, 3]);
    random(&mut hf, "model.encoder.conv2.bias".into(), vec![d]);
    random(
        &mut hf,
        "model.encoder.embed_positions.weight".into(),
        vec![1500, d],
    );
    random(
        &mut hf,
        "model.decoder.embed_positions.weight".into(),
        vec![448, d],
    );
    random(
        &mut hf,
        "model.decoder.embed_tokens.weight".into(),
        vec![vocab, d],
    );
    for (side, layers) in [("encoder", enc), ("decoder", dec)] {
        random(&mut hf, format!("model.{side}.layer_norm.weight"), vec![d]);
        random(&mut hf, format!("model.{side}.layer_norm.bias"), vec![d]);
        for i in 0..layers {
            let p = format!("model.{side}.layers.{i}");
            let mut attns = vec!["self_attn"];
            if side == "decoder" {
                attns.push("encoder_attn");
            }
            for a in attns {
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    random(&mut hf, format!("{p}.{a}.{proj}.weight"), vec![d, d]);
                    if proj != "k_proj" {
                        random(&mut hf, format!("{p}.{a}.{proj}.bias"), vec![d]);
                    }
                }
                random(&mut hf, format!("{p}.{a}_layer_norm.weight"), vec![d]);
                random(&mut hf, format!("{p}.{a}_layer_norm.bias"), vec![d]);
            }
            random(&mut hf, format!("{p}.fc1.weight"), vec![ff, d]);
            random(&mut hf, format!("{p}.fc1.bias"), vec![ff]);
            random(&mut hf, format!("{p}.fc2.weight"), vec![d, ff]);
            random(&mut hf, format!("{p}.fc2.bias"), vec![d]);
            random(&mut hf, format!("{p}.final_layer_norm.weight"), vec![d]);
            random(&mut hf, format!("{p}.final_layer_norm.bias"), vec![d]);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write_safetensors(dir.path(), &hf);
    write_config(dir.path(), d, heads, enc, dec, vocab);
    std::fs::copy(
        common::model_dir().join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();

    // The renamed tensors: q, k, v stacked in that order, k's bias zero.
    let w = flow_asr::hf::read(dir.path()).unwrap();
    let fused = &w.tensors["encoder/layer_1/self_attention/linear_0/weight"];
    assert_eq!(fused.shape, vec![3 * d, d]);
    let q = &hf["model.encoder.layers.1.self_attn.q_proj.weight"].data;
    let v = &hf["model.encoder.layers.1.self_attn.v_proj.weight"].data;
    assert_eq!(&fused.data[..d * d], &q[..]);
    assert_eq!(&fused.data[2 * d * d..], &v[..]);
    let bias = &w.tensors["encoder/layer_1/self_attention/linear_0/bias"].data;
    assert!(bias[d..2 * d].iter().all(|&b| b == 0.0));
    let cross = &w.tensors["decoder/layer_0/attention/linear_1/weight"];
    assert_eq!(cross.shape, vec![2 * d, d]);
    assert!(!w
        .tensors
        .contains_key("decoder/layer_0/attention/linear_1/weight_scale"));

    // It loads with the config's sizes and runs end to end.
    let compute = Compute::for_device(DeviceId::Cpu).unwrap();
    let samples = common::wav(&common::reference("enroll_us.16k.wav"));
    let (dims, burn_out) = with_backend!(&compute, |B, device| {
        let t = flow_asr::load::<B>(dir.path(), &device, true, DType::F32).unwrap();
        let out = t.transcribe(&samples[..16_000 * 3], &Options::greedy());
        assert!(out.is_ok(), "{out:?}");
        (t.model.dims, out.unwrap())
    });
    // The CPU kernels load it too, and decode the same tokens.
    let t = flow_asr::load_cpu(dir.path()).unwrap();
    let cpu_out = t
        .transcribe(&samples[..16_000 * 3], &Options::greedy())
        .unwrap();
    let tokens =
        |s: &[flow_asr::Segment]| s.iter().flat_map(|s| s.tokens.clone()).collect::<Vec<_>>();
    assert_eq!(tokens(&cpu_out), tokens(&burn_out));
    assert_eq!(
        (
            dims.d_model,
            dims.heads,
            dims.encoder_layers,
            dims.decoder_layers,
            dims.vocab
        ),
        (d, heads, enc, dec, vocab)
    );

    // A missing tensor is named in the error.
    hf.remove("model.decoder.layers.0.fc2.weight");
    write_safetensors(dir.path(), &hf);
    let err = flow_asr::hf::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("model.decoder.layers.0.fc2.weight"), "{err}");
}
