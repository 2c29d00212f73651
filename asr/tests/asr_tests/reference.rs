//! Whisper tiny.en on the CPU kernels (what `asr.whisper` runs on the CPU)
//! against faster-whisper (CTranslate2, float32,
//! greedy) on the reference clips: the same token ids per segment and the
//! same words.

use crate::common;

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
    let a = common::agreement(transcribe_all());
    assert!(
        a.same as f64 >= 0.95 * a.total as f64,
        "identical token ids in {} of {} segments",
        a.same,
        a.total
    );
    assert!(a.wer <= 0.02, "word error rate {:.2} %", a.wer * 100.0);
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
