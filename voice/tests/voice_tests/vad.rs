//! `vad.silero` against silero-vad 6.2: frame probabilities and speech
//! regions on the reference clips, silero's own region algorithm on many
//! parameter sets, batching, and the stage through the `Stage` trait.

use crate::common;

use std::path::PathBuf;
use std::sync::Arc;

use flow_backend::Cpu;
use flow_engine::device::DeviceId;
use flow_engine::items::Item;
use flow_engine::registry::{BuildContext, ResolvedOutput, StageInput, StageKind, Upstream};
use flow_engine::spec::StageSpec;
use flow_voice::vad::{speech_samples, SileroKind, SpeechParams, Vad};

/// The weights silero-vad 6.2 runs (its ONNX export; the JIT agrees).
const SILERO: &str = "pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k_op15.onnx";
/// The wheel's safetensors (for its tinygrad model): other weights.
const SAFETENSORS: &str = "pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k.safetensors";
const CLIPS: [&str; 4] = [
    "enroll_us.16k.wav",
    "interview.16k.wav",
    "solo_gb.16k.wav",
    "solo_us.16k.wav",
];

fn vad() -> Vad<Cpu> {
    Vad::load(&common::model(SILERO), &Default::default()).unwrap()
}

/// `tests/fixtures/silero_timestamps.json`: silero's own region code run
/// on many inputs (see its `about`).
fn fixture() -> serde_json::Value {
    let path = common::fixture("silero_timestamps.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn probabilities_and_regions_match_silero_on_every_reference_clip() {
    let vad = vad();
    let reference = common::voice_reference();
    let pipeline: std::collections::BTreeMap<String, Vec<[i64; 2]>> = fixture()["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let clip = c["clip"].as_str().unwrap().to_string();
            (clip, serde_json::from_value(c["expected"].clone()).unwrap())
        })
        .collect();
    let (mut worst_prob, mut worst_edge) = (0.0f64, 0.0f64);
    for clip in CLIPS {
        let samples = common::wav(&common::reference(clip));
        let probs = vad.probabilities(&samples).unwrap();
        let expected = common::floats(&reference[clip]["vad_probs_512"]);
        // The reference lists whole frames; silero also scores the padded
        // last one (ours too).
        assert_eq!(probs.len(), samples.len().div_ceil(512), "{clip}");
        assert_eq!(expected.len(), samples.len() / 512, "{clip}");
        for (i, (&p, &e)) in probs.iter().zip(&expected).enumerate() {
            let d = (f64::from(p) - e).abs();
            worst_prob = worst_prob.max(d);
            assert!(d <= 0.01, "{clip} frame {i}: {p} vs silero {e}");
        }

        // In samples: exactly silero's (its ONNX model run by onnxruntime,
        // then `get_speech_timestamps`).
        let ours: Vec<[i64; 2]> = speech_samples(&probs, samples.len(), &SpeechParams::default())
            .iter()
            .map(|r| [r.start, r.end])
            .collect();
        assert_eq!(ours, pipeline[clip], "{clip}");

        let regions = vad
            .speech_regions(&samples, &SpeechParams::default())
            .unwrap();
        let speech = reference[clip]["speech"].as_array().unwrap();
        assert_eq!(regions.len(), speech.len(), "{clip}: {regions:?}");
        for (r, s) in regions.iter().zip(speech) {
            let s = common::floats(s);
            for (ours, theirs) in [(r.start, s[0]), (r.end, s[1])] {
                let d = (ours - theirs).abs();
                worst_edge = worst_edge.max(d);
                assert!(d <= 0.1, "{clip}: region {r:?} vs silero {s:?}");
                // silero rounds to 0.1 s (`return_seconds=True`).
                let rounded = (ours * 10.0).round() / 10.0;
                assert!((rounded - theirs).abs() < 1e-9, "{clip}: {r:?} vs {s:?}");
            }
        }
    }
    eprintln!("max |p - silero| = {worst_prob:.5}; max region edge difference = {worst_edge:.4} s");
}

#[test]
fn the_wheels_safetensors_load_as_tinygrad_model_py_defines_them() {
    // The same network with the safetensors weights: the first frames of
    // `enroll_us` as a direct evaluation of `tinygrad_model.py`'s forward
    // (plain Python loops over the same file) gives them. They are not the
    // weights silero runs (its probabilities: 0.0515, 0.1771, 0.9754).
    let vad = Vad::<Cpu>::load(&common::model(SAFETENSORS), &Default::default()).unwrap();
    let samples = common::wav(&common::reference("enroll_us.16k.wav"));
    let probs = vad.probabilities(&samples[..3 * 512]).unwrap();
    for (p, e) in probs
        .iter()
        .zip([0.091_490_92_f32, 0.474_860_44, 0.973_710_5])
    {
        assert!((p - e).abs() < 1e-5, "{probs:?}");
    }
}

#[test]
fn regions_follow_silero_on_every_parameter_set() {
    let fixture = fixture();
    let reference = common::voice_reference();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 50);
    for (k, case) in cases.iter().enumerate() {
        let probs: Vec<f32> = match case["clip"].as_str() {
            Some(clip) => common::floats(&reference[clip]["vad_probs_512"]),
            None => common::floats(&case["probs"]),
        }
        .into_iter()
        .map(|p| p as f32)
        .collect();
        let params: SpeechParams = serde_json::from_value(case["params"].clone()).unwrap();
        let samples = case["samples"].as_u64().unwrap() as usize;
        let ours: Vec<[i64; 2]> = speech_samples(&probs, samples, &params)
            .iter()
            .map(|r| [r.start, r.end])
            .collect();
        let expected: Vec<[i64; 2]> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| [r[0].as_i64().unwrap(), r[1].as_i64().unwrap()])
            .collect();
        assert_eq!(ours, expected, "case {k}: {}", case["params"]);
    }
}

#[test]
fn a_batch_on_the_device_path_equals_streams_one_by_one() {
    let host = vad();
    let device = vad().host_recurrence(false);
    let a = common::wav(&common::reference("solo_us.16k.wav"));
    let b = common::wav(&common::reference("interview.16k.wav"));
    // 3.0 s and 1.7 s (the second ends mid-frame).
    let (a, b) = (&a[..48_000], &b[..27_500]);
    let batch = device.probabilities_batch(&[a, b, &[]]).unwrap();
    assert_eq!(batch[2], Vec::<f32>::new());
    for (stream, got) in [a, b].into_iter().zip(&batch) {
        let alone = host.probabilities(stream).unwrap();
        assert_eq!(got.len(), alone.len());
        let worst = got
            .iter()
            .zip(&alone)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "device recurrence differs by {worst}");
    }
}

#[test]
fn the_stage_turns_audio_into_speech_regions() {
    let kind = SileroKind;
    assert!(kind.check(&serde_json::Value::Null).is_empty());
    let bad = kind.check(&serde_json::json!({ "threshold": 1.5, "max_speech_duration_s": -1.0 }));
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].path, ["threshold"]);
    let typo = kind.check(&serde_json::json!({ "treshold": 0.5 }));
    assert!(typo[0].message.contains("treshold"), "{typo:?}");

    let dir = tempfile::tempdir().unwrap();
    let spec: StageSpec =
        serde_json::from_value(serde_json::json!({ "uses": "vad.silero" })).unwrap();
    let build = |model_dir: Option<PathBuf>| {
        let ctx = BuildContext {
            stage_id: "vad",
            spec: &spec,
            workflow_dir: dir.path(),
            state_dir: &dir.path().join(".flow"),
            model_dir,
        };
        kind.build(&ctx, &serde_json::Value::Null)
    };
    let err = build(None).err().unwrap();
    assert!(err.contains("add `model:`"), "{err}");
    let stage = build(Some(common::model(SILERO))).unwrap();

    let input = |clip: &str, rate: u64| {
        let samples = common::wav(&common::reference(clip));
        let file = dir.path().join(format!("{clip}.f32"));
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(&file, bytes).unwrap();
        StageInput {
            item: Arc::new(Item {
                id: clip.to_string(),
                source: clip.to_string(),
                fingerprint: "test".to_string(),
                error: None,
                row: None,
            }),
            upstream: vec![Upstream {
                stage: "decode".to_string(),
                outputs: vec![ResolvedOutput {
                    port: "audio".to_string(),
                    files: vec![file],
                    value: Some(serde_json::json!({ "sample_rate": rate })),
                }],
            }],
            out_dir: dir.path().join(clip),
            device: DeviceId::Cpu,
            timeout: None,
        }
    };
    let reference = common::voice_reference();
    let inputs = [
        input("solo_gb.16k.wav", 16_000),
        input("enroll_us.16k.wav", 22_050),
        input("solo_us.16k.wav", 16_000),
    ];
    let results = stage.run_batch(&inputs);
    assert_eq!(results.len(), 3);
    let err = results[1].as_ref().unwrap_err();
    assert!(
        err.message.contains("sample_rate: 16000"),
        "{}",
        err.message
    );
    for (k, clip) in [(0, "solo_gb.16k.wav"), (2, "solo_us.16k.wav")] {
        let out = results[k].as_ref().unwrap();
        assert_eq!(out.outputs[0].port, "speech_regions");
        let value = out.outputs[0].value.as_ref().unwrap();
        let seconds = value["seconds"].as_f64().unwrap();
        let samples = common::wav(&common::reference(clip)).len();
        assert!((seconds - samples as f64 / 16_000.0).abs() < 1e-9);
        let regions = value["regions"].as_array().unwrap();
        let speech = reference[clip]["speech"].as_array().unwrap();
        assert_eq!(regions.len(), speech.len(), "{clip}: {value}");
        for (r, s) in regions.iter().zip(speech) {
            assert!((r["start"].as_f64().unwrap() - s[0].as_f64().unwrap()).abs() <= 0.1);
            assert!((r["end"].as_f64().unwrap() - s[1].as_f64().unwrap()).abs() <= 0.1);
        }
    }
    let alone = stage.run(&inputs[0]).unwrap();
    assert_eq!(&alone, results[0].as_ref().unwrap());
}
