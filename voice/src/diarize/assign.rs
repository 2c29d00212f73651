//! Giving transcript segments the speakers of the turns they overlap.
//!
//! A segment gets the speaker who talks longest during it. Its text cannot
//! be split faithfully by time alone, so a segment is split only when it
//! carries word timings (`words: [{start, end, word}]`, as Whisper's word
//! timestamps give) and its words belong to more than one speaker: each
//! run of words of one speaker becomes a segment of its own (text joined
//! from the words, `tokens` dropped, `source_id` naming the original
//! segment, ids renumbered).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::inputs::Segment;
use super::speakers::{labelled, Turn};

/// Segments with no speech of any turn get the nearest turn's speaker when
/// it is at most this far (seconds), else no speaker.
const NEAREST: f64 = 1.0;

/// Labels `segments` with the speakers of `turns`.
pub fn assign(segments: &[Segment], turns: &[Turn]) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    let mut split = false;
    for seg in segments {
        match split_by_words(seg, turns) {
            Some(parts) => {
                split = true;
                out.extend(parts);
            }
            None => {
                let (speaker, confidence) = majority(seg.start, seg.end, turns);
                out.push(labelled(&seg.fields, speaker.as_deref(), confidence));
            }
        }
    }
    if split {
        for (i, s) in out.iter_mut().enumerate() {
            s.insert("id".into(), Value::from(i));
        }
    }
    out
}

/// The speaker talking longest in `[start, end]` and how sure that is (the
/// overlap-weighted confidence of their turns, times their share of it).
fn majority(start: f64, end: f64, turns: &[Turn]) -> (Option<String>, Option<f32>) {
    let mut by: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let mut total = 0.0;
    for t in turns {
        let o = (end.min(t.end) - start.max(t.start)).max(0.0);
        if o > 0.0 {
            let e = by.entry(&t.speaker).or_default();
            e.0 += o;
            e.1 += o * t.confidence;
            total += o;
        }
    }
    if let Some((speaker, (_, weighted))) = by
        .iter()
        .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .filter(|_| total > 0.0)
    {
        return (Some(speaker.to_string()), Some((weighted / total) as f32));
    }
    let gap = |t: &Turn| (t.start - end).max(start - t.end).max(0.0);
    let nearest = turns
        .iter()
        .min_by(|a, b| gap(a).total_cmp(&gap(b)))
        .filter(|t| gap(t) <= NEAREST);
    match nearest {
        Some(t) => (Some(t.speaker.clone()), Some(0.0)),
        None => (None, None),
    }
}

/// The parts of `seg` by speaker, when it has word timings that several
/// speakers share; `None` otherwise.
fn split_by_words(seg: &Segment, turns: &[Turn]) -> Option<Vec<Map<String, Value>>> {
    let words = seg.fields.get("words")?.as_array()?;
    let timed: Vec<(f64, f64, &Value)> = words
        .iter()
        .map(|w| Some((w["start"].as_f64()?, w["end"].as_f64()?, w)))
        .collect::<Option<_>>()?;
    let labels: Vec<(Option<String>, Option<f32>)> = timed
        .iter()
        .map(|(s, e, _)| majority(*s, *e, turns))
        .collect();
    let first = labels.first()?.0.clone();
    if labels.iter().all(|l| l.0 == first) {
        return None;
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < timed.len() {
        let mut j = i;
        while j + 1 < timed.len() && labels[j + 1].0 == labels[i].0 {
            j += 1;
        }
        let text: String = timed[i..=j]
            .iter()
            .map(|(_, _, w)| w["word"].as_str().or(w["text"].as_str()).unwrap_or(""))
            .collect();
        let confidence = labels[i..=j].iter().filter_map(|l| l.1).sum::<f32>() / (j - i + 1) as f32;
        let mut fields = seg.fields.clone();
        fields.remove("tokens");
        fields.insert(
            "source_id".into(),
            seg.fields.get("id").cloned().unwrap_or(Value::Null),
        );
        fields.insert("start".into(), Value::from(timed[i].0));
        fields.insert("end".into(), Value::from(timed[j].1));
        fields.insert("text".into(), Value::from(text));
        fields.insert(
            "words".into(),
            Value::Array(timed[i..=j].iter().map(|(_, _, w)| (*w).clone()).collect()),
        );
        let speaker = labels[i].0.as_deref();
        parts.push(labelled(&fields, speaker, speaker.map(|_| confidence)));
        i = j + 1;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(start: f64, end: f64, speaker: &str) -> Turn {
        Turn::new(start, end, speaker.into(), 1.0)
    }

    fn seg(value: Value) -> Segment {
        Segment {
            start: value["start"].as_f64().unwrap(),
            end: value["end"].as_f64().unwrap(),
            fields: value.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn gives_each_segment_its_majority_speaker() {
        let turns = [turn(0.0, 4.0, "host"), turn(4.4, 9.0, "SPEAKER_1")];
        let segs = [
            seg(serde_json::json!({"id": 0, "start": 0.0, "end": 5.0, "text": " a"})),
            seg(serde_json::json!({"id": 1, "start": 5.0, "end": 9.0, "text": " b"})),
            seg(serde_json::json!({"id": 2, "start": 9.5, "end": 9.8, "text": " c"})),
            seg(serde_json::json!({"id": 3, "start": 20.0, "end": 21.0, "text": " d"})),
        ];
        let out = assign(&segs, &turns);
        assert_eq!(out[0]["speaker"], "host");
        assert!((out[0]["speaker_confidence"].as_f64().unwrap() - 4.0 / 4.6).abs() < 1e-3);
        assert_eq!(out[1]["speaker"], "SPEAKER_1");
        assert_eq!(out[2]["speaker"], "SPEAKER_1");
        assert_eq!(out[2]["speaker_confidence"], 0.0);
        assert!(out[3]["speaker"].is_null());
        assert_eq!(out[3]["id"], 3);
    }

    #[test]
    fn splits_a_segment_with_word_timings_at_a_speaker_change() {
        let turns = [turn(0.0, 2.0, "host"), turn(2.2, 5.0, "SPEAKER_1")];
        let segs = [seg(serde_json::json!({"id": 0, "start": 0.0, "end": 5.0,
            "text": " Hi there. Hello.", "tokens": [1, 2],
            "words": [{"start": 0.0, "end": 0.8, "word": " Hi"},
                      {"start": 0.8, "end": 1.9, "word": " there."},
                      {"start": 2.3, "end": 4.0, "word": " Hello."}]}))];
        let out = assign(&segs, &turns);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["text"], " Hi there.");
        assert_eq!(out[0]["speaker"], "host");
        assert_eq!(out[1]["text"], " Hello.");
        assert_eq!(out[1]["speaker"], "SPEAKER_1");
        assert_eq!(
            (out[1]["id"].as_u64(), out[1]["source_id"].as_u64()),
            (Some(1), Some(0))
        );
        assert!(out[1].get("tokens").is_none());
    }
}
