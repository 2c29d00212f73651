//! `sink.subtitles` and `sink.jsonl`: the files a user opens.

mod common;

use common::{speakers, transcript, Sink};
use flow_store::jsonl::JsonlSinkKind;
use flow_store::subtitles::SubtitlesSinkKind;
use serde_json::json;

fn dialogue() -> flow_engine::registry::Upstream {
    speakers(
        &[
            (1.5, 4.25, "Hello there.", Some("chaffee")),
            (4.25, 3661.0, "Is <this> & that fine?", Some("SPEAKER_1")),
            (3661.0, 3662.0, "   ", Some("chaffee")),
            (3662.0, 3663.5, "Unknown voice.", None),
        ],
        "diarized",
    )
}

/// Checks `HH:MM:SS<sep>mmm --> HH:MM:SS<sep>mmm`.
fn is_timing(line: &str, sep: char) -> bool {
    let stamp = |s: &str| {
        let b = s.as_bytes();
        s.len() == 12
            && [2, 5].iter().all(|&i| b[i] == b':')
            && b[8] == sep as u8
            && s.chars()
                .enumerate()
                .all(|(i, c)| [2, 5, 8].contains(&i) || c.is_ascii_digit())
    };
    line.split_once(" --> ")
        .is_some_and(|(a, b)| stamp(a) && stamp(b))
}

#[test]
fn srt_and_vtt_have_valid_cues_with_speakers() {
    let sink = Sink::new(&SubtitlesSinkKind, json!({ "dir": "subs" }));
    let written = sink.ok("media/talk.v2.mp4", vec![dialogue()]);
    assert_eq!(written["cues"], 3, "the blank segment is left out");

    let srt = std::fs::read_to_string(sink.path("subs/media/talk.v2.srt")).unwrap();
    assert_eq!(
        srt,
        "1\n00:00:01,500 --> 00:00:04,250\n[chaffee] Hello there.\n\n\
         2\n00:00:04,250 --> 01:01:01,000\n[SPEAKER_1] Is <this> & that fine?\n\n\
         3\n01:01:02,000 --> 01:01:03,500\nUnknown voice.\n\n"
    );
    let blocks: Vec<&str> = srt.trim_end().split("\n\n").collect();
    for (n, block) in blocks.iter().enumerate() {
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines[0], (n + 1).to_string());
        assert!(is_timing(lines[1], ','), "{}", lines[1]);
    }

    let vtt = std::fs::read_to_string(sink.path("subs/media/talk.v2.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    assert!(vtt.contains(
        "00:00:04.250 --> 01:01:01.000\n<v SPEAKER_1>Is &lt;this&gt; &amp; that fine?\n"
    ));
    assert!(vtt.contains("00:00:01.500 --> 00:00:04.250\n<v chaffee>Hello there.\n"));
    assert!(vtt.contains("01:01:02.000 --> 01:01:03.500\nUnknown voice.\n"));
    let timings: Vec<&str> = vtt.lines().filter(|l| l.contains("-->")).collect();
    assert_eq!(timings.len(), 3);
    assert!(timings.iter().all(|l| is_timing(l, '.')));
}

#[test]
fn subtitles_fall_back_to_the_transcript_and_obey_the_settings() {
    let sink = Sink::new(
        &SubtitlesSinkKind,
        json!({ "formats": ["vtt"], "speakers": false }),
    );
    let t = transcript(&[(0.0, 2.0, "Plain words.")]);
    sink.ok("a.wav", vec![t.clone()]);
    let vtt = std::fs::read_to_string(sink.path("out/subtitles/a.vtt")).unwrap();
    assert_eq!(
        vtt,
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nPlain words.\n\n"
    );
    assert!(!sink.path("out/subtitles/a.srt").exists());
    // Speakers win over the transcript; labels stay off when asked.
    sink.ok("a.wav", vec![t, dialogue()]);
    let vtt = std::fs::read_to_string(sink.path("out/subtitles/a.vtt")).unwrap();
    assert!(
        vtt.contains("\nHello there.\n") && !vtt.contains("<v"),
        "{vtt}"
    );

    // Two items that would write the same files: the second fails.
    let error = sink.run("a.mp3", vec![dialogue()]).unwrap_err();
    assert!(
        error.message.contains("`a.wav` and `a.mp3`"),
        "{}",
        error.message
    );
}

fn lines(sink: &Sink) -> Vec<serde_json::Value> {
    std::fs::read_to_string(sink.path("out/segments.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn jsonl_lines_are_replaced_per_item_across_runs() {
    let config = json!({ "path": "out/segments.jsonl" });
    let mut sink = Sink::new(&JsonlSinkKind, config.clone());
    sink.ok("a.wav", vec![dialogue()]);
    sink.ok("b.wav", vec![transcript(&[(0.0, 1.0, "Bee.")])]);
    sink.next_run(&JsonlSinkKind, config.clone());
    let first = lines(&sink);
    assert_eq!(first.len(), 5);
    let line = &first[1];
    assert_eq!(line["item"], "a.wav");
    assert_eq!(line["segment"], 1);
    assert_eq!(line["start"], 4.25);
    assert_eq!(line["speaker"], "SPEAKER_1");
    assert_eq!(line["text"], "Is <this> & that fine?");
    assert_eq!(line["avg_logprob"], -0.25);
    assert_eq!(line["language"], serde_json::Value::Null);

    // The same items again: the same lines, not twice as many.
    sink.ok("a.wav", vec![dialogue()]);
    sink.ok("b.wav", vec![transcript(&[(0.0, 1.0, "Bee.")])]);
    sink.next_run(&JsonlSinkKind, config.clone());
    assert_eq!(lines(&sink), first);

    // A run that sees only `b.wav`, now longer: `a.wav`'s lines stay.
    sink.ok(
        "b.wav",
        vec![transcript(&[(0.0, 1.0, "Bee."), (1.0, 2.0, "Two.")])],
    );
    sink.finish();
    let now = lines(&sink);
    assert_eq!(now.len(), 6);
    assert_eq!(now.iter().filter(|l| l["item"] == "a.wav").count(), 4);
    assert_eq!(now.iter().filter(|l| l["item"] == "b.wav").count(), 2);
    assert!(!sink.path("out/segments.jsonl.run").exists());
}
