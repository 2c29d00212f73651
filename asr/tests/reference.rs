//! Whisper tiny.en on the CPU kernels (what `asr.whisper` runs on the CPU)
//! against faster-whisper (CTranslate2, float32,
//! greedy) on the reference clips: the same token ids per segment and the
//! same words.

mod common;

use flow_asr::{Options, Segment};

const CLIPS: [&str; 4] = [
    "solo_us.16k.wav",
    "solo_gb.16k.wav",
    "enroll_us.16k.wav",
    "interview.16k.wav",
];

/// Every clip transcribed once, shared by the tests of this file.
fn transcribe_all() -> &'static [(String, Vec<Segment>)] {
    static ALL: std::sync::OnceLock<Vec<(String, Vec<Segment>)>> = std::sync::OnceLock::new();
    ALL.get_or_init(transcribe_clips)
}

fn transcribe_clips() -> Vec<(String, Vec<Segment>)> {
    let t = flow_asr::load_cpu(&common::model_dir()).unwrap();
    CLIPS
        .iter()
        .map(|clip| {
            let samples = common::wav(&common::reference(clip));
            let segments = t.transcribe(&samples, &Options::greedy()).unwrap();
            (clip.to_string(), segments)
        })
        .collect()
}

#[test]
fn tokens_and_words_match_faster_whisper() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::reference("asr_reference.json")).unwrap(),
    )
    .unwrap();
    let ours = transcribe_all();
    let (mut same, mut total, mut errors, mut ref_words) = (0, 0, 0, 0);
    for (clip, segments) in ours {
        let expected = reference[clip]["segments"].as_array().unwrap();
        for (i, e) in expected.iter().enumerate() {
            let tokens: Vec<u32> = e["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap() as u32)
                .collect();
            total += 1;
            let got = segments.get(i).map(|s| &s.tokens);
            if got == Some(&tokens) {
                same += 1;
            } else {
                eprintln!("{clip} segment {i}:\n  expected {tokens:?}\n  got      {got:?}");
            }
        }
        let text: String = segments.iter().map(|s| s.text.as_str()).collect();
        let want = common::words(reference[clip]["text"].as_str().unwrap());
        let e = common::edits(&want, &common::words(&text));
        eprintln!("{clip}: {e} word errors in {}: {text}", want.len());
        errors += e;
        ref_words += want.len();
    }
    let share = same as f64 / total as f64;
    let wer = errors as f64 / ref_words as f64;
    eprintln!(
        "identical segments {same}/{total}, WER {:.2} %",
        wer * 100.0
    );
    assert!(
        share >= 0.95,
        "identical token ids in {same} of {total} segments"
    );
    assert!(wer <= 0.02, "word error rate {:.2} %", wer * 100.0);
}

#[test]
fn segments_are_timed_in_order_with_quality_fields() {
    for (clip, segments) in transcribe_all() {
        assert!(!segments.is_empty(), "{clip}");
        let mut last = 0.0;
        for s in segments {
            assert!(s.start >= last - 1e-9 && s.end > s.start, "{clip}: {s:?}");
            assert!(s.avg_logprob < 0.0 && s.avg_logprob > -1.5, "{clip}: {s:?}");
            assert!((0.0..=1.0).contains(&s.no_speech_prob));
            assert!(s.compression_ratio > 0.5 && s.compression_ratio < 2.4);
            last = s.end;
        }
    }
}
