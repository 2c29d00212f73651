//! Whisper tiny.en in burn on a real Vulkan adapter (lavapipe in CI), as
//! `asr.whisper` runs it on `vulkan:N`, against faster-whisper on the four
//! reference clips: token-identical segments (≥ 95 %) and the same words;
//! and in f16 where the adapter computes in it.

use crate::common;

use flow_asr::{Options, Segment};
use flow_backend::burn::tensor::DType;
use flow_backend::testing::vulkan_or_skip;
use flow_backend::{Compute, Vk};

const CLIPS: [&str; 4] = [
    "solo_us.16k.wav",
    "solo_gb.16k.wav",
    "enroll_us.16k.wav",
    "interview.16k.wav",
];

fn transcribe(
    device: &flow_backend::burn::backend::wgpu::WgpuDevice,
    dtype: DType,
    clips: &[&str],
) -> Vec<(String, Vec<Segment>)> {
    let t = flow_asr::load::<Vk>(&common::model_dir(), device, false, dtype).unwrap();
    let started = std::time::Instant::now();
    let out: Vec<(String, Vec<Segment>)> = clips
        .iter()
        .map(|clip| {
            let samples = common::wav(&common::reference(clip));
            (
                clip.to_string(),
                t.transcribe(&samples, &Options::greedy()).unwrap(),
            )
        })
        .collect();
    eprintln!(
        "vulkan {dtype:?}: {} clips in {:.1} s",
        clips.len(),
        started.elapsed().as_secs_f64()
    );
    out
}

fn wgpu_device() -> Option<flow_backend::burn::backend::wgpu::WgpuDevice> {
    let device = vulkan_or_skip("whisper on vulkan")?;
    match Compute::for_device(device).unwrap() {
        Compute::Vulkan(_, d) => Some(d),
        other => panic!("vulkan:0 opened as {}", other.describe()),
    }
}

#[test]
#[ignore = "Whisper on lavapipe runs for over 10 minutes on 2 cores: scripts/gpu-check.sh runs it (cargo test -- --include-ignored)"]
fn whisper_on_vulkan_matches_faster_whisper() {
    let Some(device) = wgpu_device() else {
        return;
    };
    let a = common::agreement(&transcribe(&device, DType::F32, &CLIPS));
    assert!(
        a.same as f64 >= 0.95 * a.total as f64,
        "identical token ids in {} of {} segments",
        a.same,
        a.total
    );
    assert_eq!(a.wer, 0.0, "word error rate {:.2} %", a.wer * 100.0);
}

#[test]
#[ignore = "Whisper on lavapipe runs for minutes on 2 cores: scripts/gpu-check.sh runs it (cargo test -- --include-ignored)"]
fn whisper_in_f16_on_vulkan_keeps_the_words() {
    let Some(device) = wgpu_device() else {
        return;
    };
    let compute = Compute::for_device(flow_engine::device::DeviceId::Vulkan(0)).unwrap();
    if !compute.supports_f16() {
        eprintln!("SKIPPED whisper_in_f16_on_vulkan: vulkan:0 does not compute in f16");
        return;
    }
    let a = common::agreement(&transcribe(&device, DType::F16, &CLIPS[..1]));
    assert!(a.wer <= 0.02, "word error rate {:.2} %", a.wer * 100.0);
}
