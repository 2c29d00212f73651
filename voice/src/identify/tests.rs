use super::*;
use crate::profile::ModelIdentity;

fn model(dim: usize) -> ModelIdentity {
    ModelIdentity {
        encoder: "ge2e".into(),
        dim,
        weights: "pip:resemblyzer==0.1.4#resemblyzer/pretrained.pt".into(),
    }
}

fn host() -> VoiceProfile {
    VoiceProfile::from_windows("host", model(2), &[vec![1.0, 0.0]], vec![], 1).unwrap()
}

/// Windows every 0.8 s, 1.6 s long, at these angles (radians).
fn voice(angles: &[f32]) -> VoiceWindows {
    VoiceWindows {
        dim: 2,
        vectors: angles.iter().map(|a| vec![a.cos(), a.sin()]).collect(),
        windows: (0..angles.len())
            .map(|i| Span::new(i as f64 * 0.8, i as f64 * 0.8 + 1.6))
            .collect(),
        model: None,
    }
}

fn seg(id: usize, start: f64, end: f64) -> Segment {
    let v = serde_json::json!({ "id": id, "start": start, "end": end, "text": " x" });
    Segment {
        start,
        end,
        fields: v.as_object().unwrap().clone(),
    }
}

#[test]
fn a_whole_item_of_the_target_is_a_monologue() {
    let v = voice(&[0.1, 0.2, 0.15, 0.1, 0.2, 0.1]);
    let segs = [seg(0, 0.0, 2.5), seg(1, 2.5, 5.6)];
    let s = identify(&host(), &v, None, &segs, &IdentifyOptions::default());
    assert_eq!(s.mode, Mode::Monologue);
    assert!(s.segments.iter().all(|x| x["speaker"] == "host"));
    assert_eq!(s.turns.len(), 1);
    assert_eq!(s.target.as_deref(), Some("host"));
}

#[test]
fn labels_only_the_target_segments_of_a_conversation() {
    let v = voice(&[0.1, 0.1, 0.1, 1.2, 1.2, 0.1, 0.1, 0.1]);
    let segs = [seg(0, 0.0, 2.4), seg(1, 2.4, 4.8), seg(2, 4.8, 7.2)];
    let s = identify(&host(), &v, None, &segs, &IdentifyOptions::default());
    assert_eq!(s.mode, Mode::Identified);
    let speakers: Vec<_> = s.segments.iter().map(|x| x["speaker"].clone()).collect();
    assert_eq!(
        speakers,
        vec!["host".into(), serde_json::Value::Null, "host".into()]
    );
    assert!(s.segments[1]["target_score"].as_f64().unwrap() < 0.75);
    assert_eq!(s.turns.len(), 2);
}

#[test]
fn another_voice_is_not_the_target() {
    let v = voice(&[1.3, 1.25, 1.3, 1.35]);
    let s = identify(
        &host(),
        &v,
        None,
        &[seg(0, 0.0, 4.0)],
        &IdentifyOptions::default(),
    );
    assert_eq!(s.mode, Mode::Identified);
    assert!(s.segments[0]["speaker"].is_null());
    assert!(s.turns.is_empty());
}

#[test]
fn an_incompatible_profile_or_no_speech_degrades_and_labels_no_one() {
    let segs = [seg(0, 0.0, 2.0)];
    let wide =
        VoiceProfile::from_windows("host", model(3), &[vec![1.0, 0.0, 0.0]], vec![], 1).unwrap();
    let s = identify(
        &wide,
        &voice(&[0.0, 0.0]),
        None,
        &segs,
        &IdentifyOptions::default(),
    );
    assert_eq!(s.mode, Mode::Degraded);
    assert!(s.reason.as_deref().unwrap().contains("enroll `host` again"));
    assert!(s.segments[0]["speaker"].is_null());
    let s = identify(
        &host(),
        &voice(&[]),
        None,
        &segs,
        &IdentifyOptions::default(),
    );
    assert_eq!(s.mode, Mode::Degraded);
    assert!(s.segments[0]["speaker"].is_null());
    let outside = [Span::new(10.0, 12.0)];
    let s = identify(
        &host(),
        &voice(&[0.0, 0.0]),
        Some(&outside),
        &segs,
        &IdentifyOptions::default(),
    );
    assert_eq!(s.mode, Mode::Degraded);
}

/// Runs a stage kind on synthetic upstream results: a transcript of two
/// segments and voice windows at `angles` written to `voice.f32`.
mod stage {
    use std::sync::Arc;

    use flow_engine::device::DeviceId;
    use flow_engine::items::Item;
    use flow_engine::registry::{BuildContext, ResolvedOutput, StageInput, StageKind, Upstream};
    use flow_engine::spec::StageSpec;
    use serde_json::{json, Value};

    use crate::diarize::DiarizeKind;
    use crate::identify::IdentifyKind;
    use crate::profile::{ModelIdentity, VoiceProfile};

    fn run(
        kind: &dyn StageKind,
        config: Value,
        dir: &std::path::Path,
        extra: Vec<Upstream>,
    ) -> Value {
        assert!(kind.check(&config).is_empty(), "{config}");
        let spec: StageSpec = serde_json::from_value(json!({ "uses": kind.name() })).unwrap();
        let ctx = BuildContext {
            stage_id: "s",
            spec: &spec,
            workflow_dir: dir,
            state_dir: dir,
            model_dir: None,
        };
        let stage = kind.build(&ctx, &config).unwrap();
        let file = dir.join("voice.f32");
        let angles = [0.0f32, 0.0, 0.1, 0.0];
        let bytes: Vec<u8> = angles
            .iter()
            .flat_map(|a| [a.cos(), a.sin()])
            .flat_map(f32::to_le_bytes)
            .collect();
        std::fs::write(&file, bytes).unwrap();
        let windows: Vec<Value> = (0..4)
            .map(|i| json!({ "start": i as f64 * 0.8, "end": i as f64 * 0.8 + 1.6 }))
            .collect();
        let output = |port: &str, files: Vec<std::path::PathBuf>, value: Value| Upstream {
            stage: port.into(),
            outputs: vec![ResolvedOutput {
                port: port.into(),
                files,
                value: Some(value),
            }],
        };
        let mut upstream = vec![
            output(
                "transcript",
                vec![],
                json!({ "segments": [{ "id": 0, "start": 0.0, "end": 2.0, "text": " a" },
                                     { "id": 1, "start": 2.0, "end": 4.0, "text": " b" }] }),
            ),
            output(
                "voice_embeddings",
                vec![file],
                json!({ "dim": 2, "count": 4, "windows": windows }),
            ),
        ];
        upstream.extend(extra);
        let input = StageInput {
            item: Arc::new(Item {
                id: "a.wav".into(),
                source: "a.wav".into(),
                fingerprint: String::new(),
                error: None,
                row: None,
            }),
            upstream,
            out_dir: dir.join("out"),
            device: DeviceId::Cpu,
            timeout: None,
        };
        let out = stage.run(&input).unwrap();
        out.outputs[0].value.clone().unwrap()
    }

    fn save(dir: &std::path::Path, name: &str, dim: usize) {
        let model = ModelIdentity {
            encoder: "ge2e".into(),
            dim,
            weights: "w.pt".into(),
        };
        let mut v = vec![0.0; dim];
        v[0] = 1.0;
        let p = VoiceProfile::from_windows(name, model, &[v], vec![], 1).unwrap();
        p.save(&dir.join(format!("voices/{name}.json"))).unwrap();
    }

    fn assert_degraded(v: &Value, why: &str) {
        assert_eq!(v["mode"], "degraded", "{v}");
        assert!(v["reason"].as_str().unwrap().contains(why), "{v}");
        let segments = v["segments"].as_array().unwrap();
        assert_eq!(segments.len(), 2);
        assert!(segments.iter().all(|s| s["speaker"].is_null()), "{v}");
    }

    #[test]
    fn a_missing_profile_degrades_and_names_no_one() {
        let dir = tempfile::tempdir().unwrap();
        let v = run(
            &IdentifyKind,
            json!({ "target": "chaffee" }),
            dir.path(),
            vec![],
        );
        assert_degraded(&v, "run `flow enroll chaffee AUDIO...`");
        assert_eq!(v["target"], "chaffee");
    }

    #[test]
    fn an_incompatible_profile_degrades_and_names_no_one() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), "wide", 3);
        let v = run(
            &IdentifyKind,
            json!({ "target": "wide" }),
            dir.path(),
            vec![],
        );
        assert_degraded(&v, "enroll `wide` again");
        std::fs::write(dir.path().join("voices/bad.json"), "{}").unwrap();
        let v = run(
            &IdentifyKind,
            json!({ "target": "voices/bad.json" }),
            dir.path(),
            vec![],
        );
        assert_degraded(&v, "not a valid voice profile");
    }

    #[test]
    fn a_monologue_passes_through_diarize_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), "host", 2);
        let id = run(
            &IdentifyKind,
            json!({ "target": "host" }),
            dir.path(),
            vec![],
        );
        assert_eq!(id["mode"], "monologue", "{id}");
        let up = Upstream {
            stage: "identify".into(),
            outputs: vec![ResolvedOutput {
                port: "speakers".into(),
                files: vec![],
                value: Some(id.clone()),
            }],
        };
        let d = run(&DiarizeKind, json!({}), dir.path(), vec![up]);
        assert_eq!(d, id);
        let d = run(
            &DiarizeKind,
            json!({ "target": "host" }),
            dir.path(),
            vec![],
        );
        assert_eq!(d["mode"], "diarized");
        assert!(
            d["segments"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["speaker"] == "host"),
            "{d}"
        );
        let d = run(
            &DiarizeKind,
            json!({ "target": "nobody" }),
            dir.path(),
            vec![],
        );
        assert!(
            d["reason"].as_str().unwrap().contains("target not named"),
            "{d}"
        );
        assert!(
            d["segments"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["speaker"] == "SPEAKER_1"),
            "{d}"
        );
    }
}
