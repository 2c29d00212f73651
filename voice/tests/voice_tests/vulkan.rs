//! `vad.silero` and the GE2E speaker encoder in burn on a real Vulkan
//! adapter (lavapipe in CI), against the same references as on the CPU:
//! Silero's frame probabilities within 0.01 and its regions within 0.1 s,
//! GE2E's utterance embeddings within cosine 0.99 of Resemblyzer's.

use crate::common;

use flow_backend::testing::vulkan_or_skip;
use flow_backend::Compute;
use flow_voice::ge2e::{cosine, normalize_volume, trim_long_silences, SpeakerEncoder};
use flow_voice::vad::{speech_samples, AnyVad, SpeechParams};

const SILERO: &str = "pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k_op15.onnx";
const GE2E: &str = "pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt";
/// Two clips keep lavapipe's time small: a monologue and the interview.
const CLIPS: [&str; 2] = ["solo_gb.16k.wav", "interview.16k.wav"];

#[test]
fn silero_on_vulkan_matches_silero() {
    let Some(device) = vulkan_or_skip("silero_on_vulkan_matches_silero") else {
        return;
    };
    let compute = Compute::for_device(device).unwrap();
    let vad = AnyVad::load(&common::model(SILERO), &compute).unwrap();
    let reference = common::voice_reference();
    let samples: Vec<Vec<f32>> = CLIPS
        .iter()
        .map(|c| common::wav(&common::reference(c)))
        .collect();
    let streams: Vec<&[f32]> = samples.iter().map(Vec::as_slice).collect();
    let all = vad.probabilities_batch(&streams).unwrap();
    let (mut worst_prob, mut worst_edge) = (0.0f64, 0.0f64);
    for ((clip, samples), probs) in CLIPS.iter().zip(&samples).zip(&all) {
        let expected = common::floats(&reference[clip]["vad_probs_512"]);
        assert_eq!(probs.len(), samples.len().div_ceil(512), "{clip}");
        for (i, (&p, &e)) in probs.iter().zip(&expected).enumerate() {
            let d = (f64::from(p) - e).abs();
            worst_prob = worst_prob.max(d);
            assert!(d <= 0.01, "{clip} frame {i}: {p} vs silero {e}");
        }
        let regions = speech_samples(probs, samples.len(), &SpeechParams::default());
        let speech = reference[clip]["speech"].as_array().unwrap();
        assert_eq!(regions.len(), speech.len(), "{clip}: {regions:?}");
        for (r, s) in regions.iter().zip(speech) {
            let s = common::floats(s);
            for (ours, theirs) in [
                (r.start as f64 / 16_000.0, s[0]),
                (r.end as f64 / 16_000.0, s[1]),
            ] {
                worst_edge = worst_edge.max((ours - theirs).abs());
                assert!(
                    (ours - theirs).abs() <= 0.1,
                    "{clip}: {r:?} vs silero {s:?}"
                );
            }
        }
    }
    eprintln!(
        "vulkan: max |p - silero| = {worst_prob:.5}; max region edge difference = {worst_edge:.4} s"
    );
}

#[test]
fn ge2e_on_vulkan_matches_resemblyzer() {
    let Some(device) = vulkan_or_skip("ge2e_on_vulkan_matches_resemblyzer") else {
        return;
    };
    let encoder = SpeakerEncoder::load(&common::model(GE2E), &device).unwrap();
    let trimmed: Vec<Vec<f32>> = CLIPS
        .iter()
        .map(|c| {
            let raw = common::wav(&common::reference(c));
            trim_long_silences(&normalize_volume(&raw), &common::webrtcvad_flags(c))
        })
        .collect();
    let slices: Vec<&[f32]> = trimmed.iter().map(Vec::as_slice).collect();
    let vectors = encoder.embed_many(&slices).unwrap();
    for (clip, ours) in CLIPS.iter().zip(&vectors) {
        let expected: Vec<f32> = common::floats(&common::voice_reference()[clip]["ge2e_utterance"])
            .into_iter()
            .map(|x| x as f32)
            .collect();
        let c = cosine(ours, &expected);
        eprintln!("vulkan: {clip}: GE2E cosine {c:.6} to Resemblyzer");
        assert!(c >= 0.99, "{clip}: cosine {c}");
    }
}
