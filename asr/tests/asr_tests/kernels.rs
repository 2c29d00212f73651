//! The CPU kernels' Whisper ([`flow_asr::CpuWhisper`], what `asr.whisper`
//! runs on the CPU) against the burn implementation (what it runs on CUDA)
//! on the same weights: the same encoder output and logits, two windows
//! batched, and the same tokens decoded.

use crate::common;

use flow_asr::{Network, Options};
use flow_backend::burn::tensor::DType;
use flow_backend::{with_backend, Compute};
use flow_engine::device::DeviceId;

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn cpu_kernels_compute_what_burn_computes() {
    let dir = common::model_dir();
    let cpu = flow_asr::load_cpu(&dir).unwrap();
    let samples = common::wav(&common::reference("interview.16k.wav"));
    let mel = cpu.mel(&samples);
    // Two different windows in one batch.
    let mut input = mel.window(0, 3000);
    input.extend(mel.window(1000, 3000));
    let sot = cpu.vocab.sot_sequence("en").unwrap();
    let prompt = vec![sot.clone(), sot];
    let next = vec![vec![50363u32], vec![50363u32]];

    let audio = cpu.model.encode(input.clone(), 2);
    let mut state = cpu.model.start(audio.clone());
    let first = cpu.model.step(&mut state, &prompt);
    let second = cpu.model.step(&mut state, &next);

    let compute = Compute::for_device(DeviceId::Cpu).unwrap();
    let (b_audio, b_first, b_second, b_segments) = with_backend!(&compute, |B, device| {
        let t = flow_asr::load::<B>(&dir, &device, true, DType::F32).unwrap();
        let audio = Network::encode(&t.model, input.clone(), 2);
        let flat: Vec<f32> = audio.clone().into_data().to_vec().unwrap();
        let mut state = Network::start(&t.model, audio);
        let first = Network::step(&t.model, &mut state, &prompt);
        let second = Network::step(&t.model, &mut state, &next);
        let segments = t.transcribe(&samples, &Options::greedy()).unwrap();
        (flat, first, second, segments)
    });

    let ours: Vec<f32> = audio.iter().flat_map(|w| w.iter().copied()).collect();
    let d = max_diff(&ours, &b_audio);
    assert!(d < 2e-3, "encoder outputs differ by {d}");
    let d = max_diff(&first, &b_first);
    assert!(d < 2e-3, "first-step logits differ by {d}");
    let d = max_diff(&second, &b_second);
    assert!(d < 2e-3, "second-step logits differ by {d}");
    // The rows are the two windows, not one twice.
    assert!(max_diff(&first[..first.len() / 2], &first[first.len() / 2..]) > 0.1);

    let segments = cpu.transcribe(&samples, &Options::greedy()).unwrap();
    let tokens =
        |s: &[flow_asr::Segment]| s.iter().flat_map(|s| s.tokens.clone()).collect::<Vec<_>>();
    assert!(!segments.is_empty());
    assert_eq!(tokens(&segments), tokens(&b_segments));
}
