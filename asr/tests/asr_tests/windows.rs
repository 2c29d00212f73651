//! Transcription batched across clips — over VAD speech regions, and with
//! the seek loop — and the temperature fallback.

use crate::common;

use flow_asr::{Options, Segment};

const CLIPS: [&str; 4] = [
    "solo_us.16k.wav",
    "solo_gb.16k.wav",
    "enroll_us.16k.wav",
    "interview.16k.wav",
];

fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(common::reference(name)).unwrap()).unwrap()
}

#[test]
fn speech_regions_of_all_clips_decode_together_with_the_reference_words() {
    let asr = json("asr_reference.json");
    let voice = json("voice_reference.json");
    type Clip = (Vec<f32>, Vec<(f64, f64)>);
    let clips: Vec<Clip> = CLIPS
        .iter()
        .map(|clip| {
            let regions = voice[clip]["speech"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r[0].as_f64().unwrap(), r[1].as_f64().unwrap()))
                .collect();
            (common::wav(&common::reference(clip)), regions)
        })
        .collect();
    let items: Vec<flow_asr::regions::RegionItem<'_>> = clips
        .iter()
        .map(|(s, r)| (s.as_slice(), r.clone()))
        .collect();
    let dir = common::model_dir();
    let t = flow_asr::load_cpu(&dir).unwrap();
    let all: Vec<Vec<Segment>> = t.transcribe_regions(&items, &Options::greedy(), 4).unwrap();
    assert_eq!(all.len(), CLIPS.len(), "one transcript per clip");
    let (mut errors, mut total) = (0, 0);
    for ((clip, segments), (_, regions)) in CLIPS.iter().zip(&all).zip(&clips) {
        assert!(!segments.is_empty(), "{clip}");
        let first = regions.first().unwrap().0;
        let last = regions.last().unwrap().1;
        for (i, s) in segments.iter().enumerate() {
            assert_eq!(s.id, i, "{clip}: ids in order");
            assert!(s.end > s.start, "{clip}: {s:?}");
            assert!(
                s.start >= first - 0.05 && s.end <= last + 0.5,
                "{clip}: {s:?} outside the speech {first}..{last}"
            );
        }
        let text: String = segments.iter().map(|s| s.text.as_str()).collect();
        let want = common::words(asr[clip]["text"].as_str().unwrap());
        let e = common::edits(&want, &common::words(&text));
        eprintln!("{clip}: {e} word errors in {}: {text}", want.len());
        errors += e;
        total += want.len();
    }
    let wer = errors as f64 / total as f64;
    // Chunks are decoded without the text before them and cut at VAD
    // boundaries, so a few words may differ from the seek loop's.
    assert!(wer <= 0.05, "word error rate {:.2} %", wer * 100.0);
}

#[test]
fn the_seek_loop_batched_across_items_gives_each_item_its_own_transcript() {
    let clip = |name: &str| common::wav(&common::reference(name));
    let joined = |names: &[&str]| names.iter().flat_map(|n| clip(n)).collect::<Vec<f32>>();
    // The first two over 30 s, so they take several windows and their
    // prompts (the text so far) soon differ in length; the third finishes
    // first.
    let items = [
        joined(&["solo_us.16k.wav", "interview.16k.wav"]),
        joined(&["solo_gb.16k.wav", "enroll_us.16k.wav", "solo_us.16k.wav"]),
        clip("interview.16k.wav"),
    ];
    let t = flow_asr::load_cpu(&common::model_dir()).unwrap();
    let opts = Options::greedy();
    let refs: Vec<&[f32]> = items.iter().map(Vec::as_slice).collect();
    let together = t.transcribe_many(&refs, &opts, 3).unwrap();
    assert_eq!(together.len(), items.len());
    for (i, (samples, batched)) in items.iter().zip(&together).enumerate() {
        let alone = t.transcribe(samples, &opts).unwrap();
        assert!(alone.len() >= 3, "item {i}: {alone:#?}");
        if i < 2 {
            assert!(alone.last().unwrap().end > 30.0, "item {i} spans windows");
        }
        assert_eq!(batched, &alone, "item {i}");
    }
    // Two windows at a time: the items rotate through the rounds.
    assert_eq!(t.transcribe_many(&refs, &opts, 2).unwrap(), together);
}

#[test]
fn fallback_keeps_the_likeliest_decoding_and_is_reproducible() {
    let dir = common::model_dir();
    let mut samples = common::wav(&common::reference("solo_us.16k.wav"));
    samples.truncate(16_000 * 6);
    let forced = Options {
        // Every window falls back: no mean log-probability is above 0.
        log_prob_threshold: Some(0.0),
        no_speech_threshold: None,
        temperatures: vec![0.0, 1.0],
        best_of: 2,
        seed: 7,
        ..Options::default()
    };
    let t = flow_asr::load_cpu(&dir).unwrap();
    let greedy = t.transcribe(&samples, &Options::greedy()).unwrap();
    let a = t.transcribe(&samples, &forced).unwrap();
    let b = t.transcribe(&samples, &forced).unwrap();
    assert_eq!(a, b, "the same seed gives the same transcript");
    assert!(!a.is_empty());
    assert!(a
        .iter()
        .all(|s| forced.temperatures.contains(&s.temperature)));
    // The first window's kept decoding is at least as likely as greedy's
    // (greedy's is one of the candidates).
    assert!(
        a[0].avg_logprob >= greedy[0].avg_logprob - 1e-9,
        "kept {} < greedy {}",
        a[0].avg_logprob,
        greedy[0].avg_logprob
    );
}
