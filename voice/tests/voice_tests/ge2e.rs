//! The GE2E speaker encoder against Resemblyzer 0.1.4: utterance
//! embeddings of the reference clips (with webrtcvad's and with Silero's
//! silence trimming), speaker separation, batching, the mel front end, and
//! the `speaker.embed` stage through the `Stage` trait.

use crate::common;

use std::path::PathBuf;
use std::sync::Arc;

use flow_backend::Cpu;
use flow_engine::device::DeviceId;
use flow_engine::items::Item;
use flow_engine::registry::{port, BuildContext, ResolvedOutput, StageInput, StageKind, Upstream};
use flow_engine::spec::StageSpec;
use flow_voice::ge2e::{
    cosine, normalize_volume, partial_slices, preprocess, trim_long_silences, SpeakerEmbedKind,
    SpeakerEncoder,
};
use flow_voice::vad::{SpeechParams, Vad};

const GE2E: &str = "pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt";
const SILERO: &str = "pip:silero-vad==6.2.3#silero_vad/data/silero_vad_16k_op15.onnx";
const CLIPS: [&str; 4] = [
    "enroll_us.16k.wav",
    "interview.16k.wav",
    "solo_gb.16k.wav",
    "solo_us.16k.wav",
];

fn encoder() -> SpeakerEncoder {
    SpeakerEncoder::load(&common::model(GE2E), &DeviceId::Cpu).unwrap()
}

fn audio(clip: &str) -> Vec<f32> {
    common::wav(&common::reference(clip))
}

fn reference_embedding(clip: &str) -> Vec<f32> {
    common::voice_reference()[clip]["ge2e_utterance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn slices(samples: &[Vec<f32>]) -> Vec<&[f32]> {
    samples.iter().map(Vec::as_slice).collect()
}

#[test]
fn utterance_embeddings_match_resemblyzer_on_every_reference_clip() {
    let encoder = encoder();
    let vad = Vad::<Cpu>::load(&common::model(SILERO), &Default::default()).unwrap();
    let raw: Vec<Vec<f32>> = CLIPS.iter().map(|c| audio(c)).collect();
    // Resemblyzer's own preprocessing: webrtcvad's decisions.
    let webrtc: Vec<Vec<f32>> = CLIPS
        .iter()
        .zip(&raw)
        .map(|(c, a)| trim_long_silences(&normalize_volume(a), &common::webrtcvad_flags(c)))
        .collect();
    // Ours: Silero VAD's speech regions.
    let silero: Vec<Vec<f32>> = raw
        .iter()
        .map(|a| {
            let regions: Vec<(f64, f64)> = vad
                .speech_regions(a, &SpeechParams::default())
                .unwrap()
                .iter()
                .map(|r| (r.start, r.end))
                .collect();
            preprocess(a, Some(&regions))
        })
        .collect();
    let mut all = slices(&webrtc);
    all.extend(slices(&silero));
    let vectors = encoder.embed_many(&all).unwrap();
    let n = CLIPS.len();
    for (k, clip) in CLIPS.iter().enumerate() {
        let expected = reference_embedding(clip);
        let (exact, ours) = (&vectors[k], &vectors[n + k]);
        assert_eq!(ours.len(), SpeakerEncoder::DIM);
        let norm: f32 = ours.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{clip}: norm {norm}");
        let (e, s) = (cosine(exact, &expected), cosine(ours, &expected));
        println!(
            "{clip}: cosine {e:.7} (webrtcvad trim, {:.2} s kept), {s:.6} (Silero trim, \
             {:.2} s kept) of {:.2} s",
            webrtc[k].len() as f64 / 16_000.0,
            silero[k].len() as f64 / 16_000.0,
            raw[k].len() as f64 / 16_000.0,
        );
        assert!(e >= 0.9999, "{clip}: {e} with webrtcvad's trimming");
        assert!(s >= 0.99, "{clip}: {s} with Silero's trimming");
    }
}

#[test]
fn the_same_voice_scores_higher_than_another_voice() {
    let encoder = encoder();
    let interview = audio("interview.16k.wav");
    let turn =
        |s: f64, e: f64| interview[(s * 16_000.0) as usize..(e * 16_000.0) as usize].to_vec();
    // truth.json: host (en-us) 0–4.9 s and 10.691–13.838 s, guest
    // (en-us+f3) 5.3–10.291 s and 14.238–18.646 s.
    let clips = [
        audio("solo_us.16k.wav"),
        audio("enroll_us.16k.wav"),
        turn(0.0, 4.9),
        turn(10.691, 13.838),
        turn(5.3, 10.291),
        turn(14.238, 18.646),
    ];
    let v = encoder.embed_many(&slices(&clips)).unwrap();
    let same = cosine(&v[0], &v[1]);
    let host = cosine(&v[0], &v[2]).min(cosine(&v[0], &v[3]));
    let guest = cosine(&v[0], &v[4]).max(cosine(&v[0], &v[5]));
    let guest_turns = cosine(&v[4], &v[5]);
    println!("solo_us vs enroll_us {same:.3}; vs host turns ≥ {host:.3}; vs guest turns ≤ {guest:.3}; guest vs guest {guest_turns:.3}");
    assert!(same > 0.9, "solo_us vs enroll_us: {same}");
    assert!(host > 0.85, "solo_us vs the host's turns: {host}");
    assert!(guest < host - 0.1, "guest {guest} vs host {host}");
    assert!(guest_turns > guest, "guest turns {guest_turns} vs {guest}");
}

#[test]
fn batches_give_the_vectors_of_single_clips_and_partials_their_times() {
    let encoder = encoder().with_max_batch(3);
    let solo = audio("solo_gb.16k.wav");
    let clips = [
        solo[..40_000].to_vec(),
        solo[40_000..56_000].to_vec(),
        Vec::new(),
    ];
    let together = encoder.embed_many(&slices(&clips)).unwrap();
    for (clip, batched) in clips.iter().zip(&together) {
        let alone = encoder.embed_utterance(clip).unwrap();
        let d = alone
            .iter()
            .zip(batched)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "batched vs alone: {d}");
    }
    // 2.5 s: two partials (0–1.6 s, 0.77–2.37 s); the mean of their
    // vectors is the utterance embedding.
    let (partials, times) = encoder.embed_partials(&clips[0]).unwrap();
    assert_eq!(partials.len(), partial_slices(40_000).len());
    assert_eq!(times, vec![(0.0, 1.6), (0.77, 2.37)]);
    let mean: Vec<f32> = (0..256).map(|i| partials[0][i] + partials[1][i]).collect();
    assert!(cosine(&mean, &together[0]) > 0.99999);
    // Windows of one stream are cut after normalising the whole stream.
    let w = encoder
        .embed_windows(&solo, &[(0.0, 2.5), (2.5, 3.5)])
        .unwrap();
    assert_eq!(w.len(), 2);
    assert!(
        cosine(&w[0], &together[0]) > 0.999,
        "same audio, gain differs only"
    );
}

#[test]
fn mel_front_end_frames_and_silence() {
    let encoder = encoder();
    let solo = audio("solo_us.16k.wav");
    let mel = encoder.front_end().compute(&solo);
    assert_eq!(mel.frames, 1 + solo.len() / 160);
    assert_eq!(mel.data.len(), mel.frames * 40);
    assert!(mel.data.iter().all(|v| v.is_finite() && *v >= 0.0));
    // Digital silence has no energy; speech (1–2 s) has energy in every
    // band and the most below 1 kHz (bands 0–14), as speech does.
    let silent = encoder.front_end().compute(&vec![0.0; 1600]);
    assert!(silent.data.iter().all(|&v| v == 0.0));
    let band = |b: usize| (100..200).map(|t| mel.frame(t)[b]).sum::<f32>();
    assert!((0..40).all(|b| band(b) > 0.0));
    let low: f32 = (0..15).map(band).sum();
    let high: f32 = (25..40).map(band).sum();
    assert!(low > high, "{low} vs {high}");
}

fn item_input(
    dir: &std::path::Path,
    name: &str,
    samples: &[f32],
    regions: Option<&serde_json::Value>,
) -> StageInput {
    let file = dir.join(format!("{name}.f32"));
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&file, bytes).unwrap();
    let mut upstream = vec![Upstream {
        stage: "decode".to_string(),
        outputs: vec![ResolvedOutput {
            port: port::AUDIO.to_string(),
            files: vec![file],
            value: Some(serde_json::json!({ "sample_rate": 16000 })),
        }],
    }];
    if let Some(r) = regions {
        upstream.push(Upstream {
            stage: "vad".to_string(),
            outputs: vec![ResolvedOutput {
                port: port::SPEECH_REGIONS.to_string(),
                files: Vec::new(),
                value: Some(serde_json::json!({ "regions": r })),
            }],
        });
    }
    StageInput {
        item: Arc::new(Item {
            id: name.to_string(),
            source: name.to_string(),
            fingerprint: "test".to_string(),
            error: None,
            row: None,
        }),
        upstream,
        out_dir: dir.join(name),
        device: DeviceId::Cpu,
        timeout: None,
    }
}

/// `voice.f32` and the windows of a `voice_embeddings` output.
fn read_output(
    out: &flow_engine::registry::StageOutput,
    dir: &std::path::Path,
    name: &str,
) -> (Vec<Vec<f32>>, Vec<(f64, f64)>) {
    let o = &out.outputs[0];
    assert_eq!(o.port, port::VOICE_EMBEDDINGS);
    assert_eq!(o.files, vec!["voice.f32".to_string()]);
    let value = o.value.as_ref().unwrap();
    assert_eq!(value["dim"], 256);
    let bytes = std::fs::read(dir.join(name).join("voice.f32")).unwrap();
    let count = value["count"].as_u64().unwrap() as usize;
    assert_eq!(bytes.len(), count * 256 * 4);
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let windows: Vec<(f64, f64)> = value["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap()))
        .collect();
    assert_eq!(windows.len(), count);
    (floats.chunks(256).map(<[f32]>::to_vec).collect(), windows)
}

#[test]
fn the_stage_embeds_fixed_windows_inside_speech_and_whole_regions() {
    let kind = SpeakerEmbedKind;
    assert!(kind.check(&serde_json::Value::Null).is_empty());
    let bad = kind.check(&serde_json::json!({ "window": 0, "hop": -1 }));
    assert_eq!(bad.len(), 2, "{bad:?}");
    let typo = kind.check(&serde_json::json!({ "windws": "fixed" }));
    assert!(typo[0].message.contains("windws"), "{typo:?}");
    let ports = kind.ports(&serde_json::json!({ "windows": "regions" }));
    assert_eq!(ports.inputs, vec!["audio", "speech_regions"]);
    assert_eq!(ports.outputs, vec!["voice_embeddings"]);
    assert!(kind.resources().accelerator);

    let dir = tempfile::tempdir().unwrap();
    let spec: StageSpec =
        serde_json::from_value(serde_json::json!({ "uses": "speaker.embed" })).unwrap();
    let build = |model_dir: Option<PathBuf>, with: serde_json::Value| {
        let ctx = BuildContext {
            stage_id: "voices",
            spec: &spec,
            workflow_dir: dir.path(),
            state_dir: &dir.path().join(".flow"),
            model_dir,
        };
        kind.build(&ctx, &with)
    };
    let err = build(None, serde_json::Value::Null).err().unwrap();
    assert!(err.contains("add `model:`"), "{err}");

    let interview = audio("interview.16k.wav");
    let speech = common::voice_reference()["interview.16k.wav"]["speech"].clone();
    let regions = serde_json::Value::Array(
        speech
            .as_array()
            .unwrap()
            .iter()
            .map(|r| serde_json::json!({ "start": r[0], "end": r[1] }))
            .collect(),
    );
    let fixed = build(Some(common::model(GE2E)), serde_json::Value::Null).unwrap();
    let inputs = [
        item_input(dir.path(), "interview", &interview, Some(&regions)),
        item_input(dir.path(), "short", &interview[..8000], None),
    ];
    let results = fixed.run_batch(&inputs);
    let (vectors, windows) = read_output(results[0].as_ref().unwrap(), dir.path(), "interview");
    // Every window lies inside one speech region and is at most 1.6 s.
    let spans: Vec<(f64, f64)> = regions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["start"].as_f64().unwrap(), r["end"].as_f64().unwrap()))
        .collect();
    for &(s, e) in &windows {
        assert!(e - s <= 1.6 + 1e-9 && e - s >= 0.3, "({s}, {e})");
        assert!(
            spans.iter().any(|&(a, b)| a - 1e-9 <= s && e <= b + 1e-9),
            "({s}, {e})"
        );
    }
    assert!(windows.len() >= 25, "{}", windows.len());
    for v in &vectors {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    // Windows of the same speaker are closer than windows of the two
    // (truth.json's turns: start, end, whether the host speaks).
    const TURNS: [(f64, f64, bool); 6] = [
        (0.0, 4.9, true),
        (5.3, 10.291, false),
        (10.691, 13.838, true),
        (14.238, 18.646, false),
        (19.046, 22.218, true),
        (22.618, 27.392, false),
    ];
    let speaker = |&(s, e): &(f64, f64)| {
        TURNS
            .iter()
            .find(|t| t.0 - 0.2 <= s && e <= t.1 + 0.2)
            .map(|t| t.2)
    };
    let (mut same, mut other) = (Vec::new(), Vec::new());
    for i in 0..windows.len() {
        for j in i + 1..windows.len() {
            if let (Some(a), Some(b)) = (speaker(&windows[i]), speaker(&windows[j])) {
                let c = cosine(&vectors[i], &vectors[j]);
                if a == b {
                    same.push(c)
                } else {
                    other.push(c)
                }
            }
        }
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    println!(
        "fixed windows: {} ; same speaker {:.3}, different {:.3}",
        windows.len(),
        mean(&same),
        mean(&other)
    );
    assert!(mean(&same) > mean(&other) + 0.1);
    // Without speech regions: the whole (0.5 s) audio is one window.
    let (short, short_windows) = read_output(results[1].as_ref().unwrap(), dir.path(), "short");
    assert_eq!((short.len(), short_windows), (1, vec![(0.0, 0.5)]));

    // One vector per speech region.
    let per_region = build(
        Some(common::model(GE2E)),
        serde_json::json!({ "windows": "regions" }),
    )
    .unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let solo = audio("solo_gb.16k.wav");
    let solo_regions = serde_json::json!([
        { "start": 0.0, "end": 2.5 }, { "start": 2.8, "end": 4.3 }, { "start": 4.4, "end": 4.6 }
    ]);
    let out = per_region
        .run(&item_input(dir2.path(), "solo", &solo, Some(&solo_regions)))
        .unwrap();
    let (vectors, windows) = read_output(&out, dir2.path(), "solo");
    // The 0.2 s region is below `min_duration`.
    assert_eq!(windows, vec![(0.0, 2.5), (2.8, 4.3)]);
    assert!(cosine(&vectors[0], &vectors[1]) > 0.8);
    let missing = per_region
        .run(&item_input(dir2.path(), "bare", &interview[..8000], None))
        .unwrap_err();
    assert!(
        missing.message.contains("vad.silero"),
        "{}",
        missing.message
    );
}
