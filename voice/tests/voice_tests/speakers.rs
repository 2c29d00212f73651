//! Speaker identification and diarization on the reference recordings,
//! through the stage kinds as a workflow runs them: `audio.decode` →
//! `vad.silero` → `speaker.embed` → `speaker.identify` → `speaker.diarize`,
//! with the transcript taken from `asr_reference.json` (Whisper's segments)
//! and the host enrolled from `enroll_us.16k.wav` as `flow enroll` does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use flow_engine::device::DeviceId;
use flow_engine::items::Item;
use flow_engine::registry::{BuildContext, ResolvedOutput, Stage, StageInput, StageKind, Upstream};
use flow_engine::spec::StageSpec;
use flow_voice::diarize::{diarization_error, DiarizeKind};
use flow_voice::identify::IdentifyKind;
use flow_voice::profile::{
    decode, EnrollOptions, Enroller, ProfileError, VoiceProfile, ENCODER_SOURCE, VAD_SOURCE,
};
use serde_json::{json, Value};

use crate::common::model;

const HOST: &str = "en-us";
const FILES: [&str; 3] = ["interview.16k.wav", "solo_us.16k.wav", "solo_gb.16k.wav"];

fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/audio")
        .join(name)
}

fn json_file(name: &str) -> Value {
    let text = std::fs::read_to_string(reference(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Everything computed once: the host's profile (in `dir/voices/host.json`)
/// and each reference file's upstream results.
struct Fixture {
    dir: tempfile::TempDir,
    profile: VoiceProfile,
    upstream: HashMap<&'static str, Vec<Upstream>>,
    /// The interview's transcript and voice windows over the whole audio
    /// (no `vad.silero`: windows straddle the speaker changes).
    without_vad: Vec<Upstream>,
}

fn build(
    kind: &dyn StageKind,
    config: Value,
    model_dir: Option<PathBuf>,
    dir: &Path,
) -> Arc<dyn Stage> {
    assert!(kind.check(&config).is_empty(), "{} {config}", kind.name());
    let spec: StageSpec = serde_json::from_value(json!({ "uses": kind.name() })).unwrap();
    let ctx = BuildContext {
        stage_id: kind.name(),
        spec: &spec,
        workflow_dir: dir,
        state_dir: &dir.join(".flow"),
        model_dir,
    };
    kind.build(&ctx, &config).unwrap()
}

fn input(file: &str, upstream: Vec<Upstream>, out_dir: PathBuf) -> StageInput {
    let path = reference(file).to_string_lossy().into_owned();
    StageInput {
        item: Arc::new(Item {
            id: file.to_string(),
            source: path,
            fingerprint: "test".into(),
            error: None,
            row: None,
        }),
        upstream,
        out_dir,
        device: DeviceId::Cpu,
        timeout: None,
    }
}

/// Runs `stage` on `file`; its result as an upstream of later stages.
fn run(stage: &dyn Stage, id: &str, file: &str, upstream: Vec<Upstream>, out: PathBuf) -> Upstream {
    let result = stage.run(&input(file, upstream, out.clone())).unwrap();
    Upstream {
        stage: id.to_string(),
        outputs: result
            .outputs
            .into_iter()
            .map(|o| ResolvedOutput {
                port: o.port,
                files: o.files.iter().map(|f| out.join(f)).collect(),
                value: o.value,
            })
            .collect(),
    }
}

fn transcript(file: &str) -> Upstream {
    let asr = json_file("asr_reference.json");
    let segments: Vec<Value> = asr[file]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, s)| json!({ "id": i, "start": s["start"], "end": s["end"], "text": format!(" {}", s["text"].as_str().unwrap()) }))
        .collect();
    Upstream {
        stage: "asr".into(),
        outputs: vec![ResolvedOutput {
            port: "transcript".into(),
            files: Vec::new(),
            value: Some(json!({ "language": "en", "model": "tiny.en", "segments": segments })),
        }],
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (vad_dir, ge2e_dir) = (model(VAD_SOURCE), model(ENCODER_SOURCE));
        let enroller = Enroller::load(&vad_dir, &ge2e_dir, ENCODER_SOURCE, DeviceId::Cpu).unwrap();
        let clip = decode(&reference("enroll_us.16k.wav")).unwrap();
        let profile = enroller
            .enroll("host", &[clip], &EnrollOptions::default())
            .unwrap();
        profile.save(&dir.path().join("voices/host.json")).unwrap();

        let p = dir.path();
        let decode = build(&flow_media::AudioDecodeKind, json!({}), None, p);
        let vad = build(&flow_voice::vad::SileroKind, json!({}), Some(vad_dir), p);
        let embed = build(
            &flow_voice::ge2e::SpeakerEmbedKind,
            json!({}),
            Some(ge2e_dir),
            p,
        );
        let mut upstream = HashMap::new();
        let mut without_vad = Vec::new();
        for file in FILES {
            let out = |s: &str| p.join(file).join(s);
            let audio = run(decode.as_ref(), "decode", file, vec![], out("decode"));
            let speech = run(vad.as_ref(), "vad", file, vec![audio.clone()], out("vad"));
            let voice = run(
                embed.as_ref(),
                "embed",
                file,
                vec![audio.clone(), speech.clone()],
                out("embed"),
            );
            upstream.insert(file, vec![transcript(file), speech, voice]);
            if file == "interview.16k.wav" {
                let plain = run(embed.as_ref(), "embed", file, vec![audio], out("plain"));
                without_vad = vec![transcript(file), plain];
            }
        }
        Fixture {
            dir,
            profile,
            upstream,
            without_vad,
        }
    })
}

/// Runs `kind` with `config` on `file`'s upstream results (plus `extra`).
fn speakers(kind: &dyn StageKind, config: Value, file: &str, extra: Vec<Upstream>) -> Value {
    let mut upstream = fixture().upstream[file].clone();
    upstream.extend(extra);
    speakers_from(kind, config, file, upstream)
}

/// Runs `kind` with `config` on `file` with these upstream results.
fn speakers_from(
    kind: &dyn StageKind,
    config: Value,
    file: &str,
    upstream: Vec<Upstream>,
) -> Value {
    let f = fixture();
    let stage = build(kind, config, None, f.dir.path());
    let out = f.dir.path().join(file).join(kind.name());
    let result = run(stage.as_ref(), kind.name(), file, upstream, out);
    result.outputs[0].value.clone().unwrap()
}

fn as_upstream(id: &str, value: &Value) -> Upstream {
    Upstream {
        stage: id.into(),
        outputs: vec![ResolvedOutput {
            port: "speakers".into(),
            files: Vec::new(),
            value: Some(value.clone()),
        }],
    }
}

/// truth.json's turns of `file` (without `.16k`) as (start, end, voice).
fn truth(file: &str) -> Vec<(f64, f64, String)> {
    let t = json_file("truth.json");
    t[file.replace(".16k", "")]["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x[0].as_f64().unwrap(),
                x[1].as_f64().unwrap(),
                x[2].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The reference voice speaking most during `[start, end]`.
fn voice_at(turns: &[(f64, f64, String)], start: f64, end: f64) -> &str {
    let overlap = |t: &(f64, f64, String)| (end.min(t.1) - start.max(t.0)).max(0.0);
    let best = turns
        .iter()
        .max_by(|a, b| overlap(a).total_cmp(&overlap(b)))
        .unwrap();
    &best.2
}

fn hypothesis(speakers: &Value) -> Vec<(f64, f64, String)> {
    speakers["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["start"].as_f64().unwrap(),
                t["end"].as_f64().unwrap(),
                t["speaker"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_enrolled_profile_is_the_host_voice() {
    let p = &fixture().profile;
    eprintln!(
        "profile: {} windows, {:.1} s speech, spread {:?}",
        p.count, p.speech_seconds, p.spread
    );
    assert_eq!(p.centroid.len(), 256);
    assert!(
        p.count >= 8 && p.speech_seconds > 8.0,
        "{} windows, {} s",
        p.count,
        p.speech_seconds
    );
    assert!(p.spread.mean > 0.8, "{:?}", p.spread);
}

/// Diarizes the interview with `config`; asserts DER ≤ 10 % (0.25 s
/// collar) and two speakers.
fn check_der(config: Value, upstream: Vec<Upstream>, what: &str) {
    let file = "interview.16k.wav";
    let d = speakers_from(&DiarizeKind, config, file, upstream);
    let hyp = hypothesis(&d);
    let der = diarization_error(&truth(file), &hyp, 0.25);
    eprintln!("{what}: turns {hyp:?}");
    eprintln!(
        "{what}: DER {:.2} % (missed {:.2} s, false alarm {:.2} s, confusion {:.2} s of {:.2} s)",
        der.rate() * 100.0,
        der.missed,
        der.false_alarm,
        der.confusion,
        der.scored
    );
    assert_eq!(d["mode"], "diarized");
    assert!(der.rate() <= 0.10, "{what}: {der:?}");
    let names: std::collections::BTreeSet<&str> = hyp.iter().map(|t| t.2.as_str()).collect();
    assert_eq!(names.len(), 2, "{what}: {names:?}");
}

#[test]
fn diarizes_the_interview_within_ten_percent_der() {
    let f = fixture();
    let upstream = f.upstream["interview.16k.wav"].clone();
    check_der(json!({}), upstream.clone(), "threshold");
    check_der(json!({ "speakers": 2 }), upstream, "speakers: 2");
    check_der(json!({}), f.without_vad.clone(), "without VAD");
}

#[test]
fn identifies_every_host_turn_and_no_guest_turn() {
    let file = "interview.16k.wav";
    let reference = truth(file);
    let id = speakers(&IdentifyKind, json!({ "target": "host" }), file, vec![]);
    assert_eq!(id["mode"], "identified", "{id}");
    for s in id["segments"].as_array().unwrap() {
        let voice = voice_at(
            &reference,
            s["start"].as_f64().unwrap(),
            s["end"].as_f64().unwrap(),
        );
        eprintln!(
            "identify {:>5}–{:>5} {voice:8} → {} (score {})",
            s["start"], s["end"], s["speaker"], s["target_score"]
        );
        assert_eq!(s["speaker"] == "host", voice == HOST, "{s}");
    }
    // Downstream, diarization names the host's cluster from these labels,
    // and with the profile itself.
    let from_identify = speakers(
        &DiarizeKind,
        json!({}),
        file,
        vec![as_upstream("identify", &id)],
    );
    let from_profile = speakers(
        &DiarizeKind,
        json!({ "target": "voices/host.json" }),
        file,
        vec![],
    );
    for d in [from_identify, from_profile] {
        assert_eq!(d["target"], "host");
        for t in hypothesis(&d) {
            assert_eq!(
                t.2 == "host",
                voice_at(&reference, t.0, t.1) == HOST,
                "{t:?}"
            );
        }
        for s in d["segments"].as_array().unwrap() {
            let voice = voice_at(
                &reference,
                s["start"].as_f64().unwrap(),
                s["end"].as_f64().unwrap(),
            );
            assert_eq!(s["speaker"] == "host", voice == HOST, "{s}");
            assert!(s["speaker"].is_string(), "{s}");
        }
    }
}

#[test]
fn the_host_alone_is_a_monologue_and_diarize_passes_it_through() {
    let file = "solo_us.16k.wav";
    let id = speakers(&IdentifyKind, json!({ "target": "host" }), file, vec![]);
    for s in id["segments"].as_array().unwrap() {
        eprintln!(
            "solo_us {}–{} score {}",
            s["start"], s["end"], s["target_score"]
        );
    }
    assert_eq!(id["mode"], "monologue", "{id}");
    assert!(id["segments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["speaker"] == "host"));
    let d = speakers(
        &DiarizeKind,
        json!({}),
        file,
        vec![as_upstream("identify", &id)],
    );
    assert_eq!(d, id);
}

#[test]
fn another_voice_alone_is_not_the_host() {
    let file = "solo_gb.16k.wav";
    let id = speakers(&IdentifyKind, json!({ "target": "host" }), file, vec![]);
    for s in id["segments"].as_array().unwrap() {
        eprintln!(
            "solo_gb {}–{} score {}",
            s["start"], s["end"], s["target_score"]
        );
    }
    assert_eq!(id["mode"], "identified", "{id}");
    assert!(id["segments"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["speaker"].is_null()));
    let d = speakers(&DiarizeKind, json!({ "target": "host" }), file, vec![]);
    assert!(hypothesis(&d).iter().all(|t| t.2 != "host"), "{d}");
}

#[test]
fn a_missing_or_incompatible_profile_degrades_and_labels_no_one() {
    let f = fixture();
    let file = "interview.16k.wav";
    let missing = speakers(&IdentifyKind, json!({ "target": "nobody" }), file, vec![]);
    assert_eq!(missing["mode"], "degraded");
    assert!(
        missing["reason"]
            .as_str()
            .unwrap()
            .contains("flow enroll nobody"),
        "{missing}"
    );
    let mut other = f.profile.clone();
    other.model.weights = "pip:some-encoder==1.0#enc/weights.pt".into();
    other.save(&f.dir.path().join("voices/other.json")).unwrap();
    let incompatible = speakers(
        &IdentifyKind,
        json!({ "target": "voices/other.json" }),
        file,
        vec![],
    );
    assert_eq!(incompatible["mode"], "degraded");
    assert!(
        incompatible["reason"]
            .as_str()
            .unwrap()
            .contains("enroll `host` again"),
        "{incompatible}"
    );
    for v in [&missing, &incompatible] {
        let segs = v["segments"].as_array().unwrap();
        assert_eq!(segs.len(), 6);
        assert!(segs
            .iter()
            .all(|s| s["speaker"].is_null() && s["text"].is_string()));
    }
    // Diarization still runs, but never names the target.
    let d = speakers(
        &DiarizeKind,
        json!({}),
        file,
        vec![as_upstream("identify", &missing)],
    );
    assert_eq!(d["mode"], "diarized");
    assert!(
        d["reason"].as_str().unwrap().contains("target not named"),
        "{d}"
    );
    assert!(hypothesis(&d).iter().all(|t| t.2.starts_with("SPEAKER_")));
}

#[test]
fn enrolment_refuses_too_little_speech_and_unreadable_audio() {
    let f = fixture();
    let text = f.dir.path().join("notes.wav");
    std::fs::write(&text, "not audio at all").unwrap();
    let err = decode(&text).unwrap_err();
    assert!(
        err.contains("cannot decode") && err.contains("notes.wav"),
        "{err}"
    );
    let mut clip = decode(&reference("enroll_us.16k.wav")).unwrap();
    clip.samples.truncate(16_000 * 2);
    let enroller = Enroller::load(
        &model(VAD_SOURCE),
        &model(ENCODER_SOURCE),
        ENCODER_SOURCE,
        DeviceId::Cpu,
    )
    .unwrap();
    let err = enroller
        .enroll("host", &[clip], &EnrollOptions::default())
        .unwrap_err();
    assert!(matches!(err, ProfileError::TooLittleSpeech { .. }), "{err}");
    assert!(err.to_string().contains("at least 3 s"), "{err}");
}
