//! The `speakers` value that `speaker.identify` and `speaker.diarize`
//! produce (see `docs/data-contracts.md`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::inputs::Segment;

/// How an item's speakers were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The whole item is the target speaker (diarization skipped).
    Monologue,
    /// Speakers were clustered; the target's cluster (if found) is named.
    Diarized,
    /// Each segment was compared with the target's profile.
    Identified,
    /// Identification could not be done (`reason` says why); every
    /// `speaker` is null.
    Degraded,
}

/// A stretch of time one speaker talks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The speaker's label.
    pub speaker: String,
    /// How sure the label is, 0 to 1.
    pub confidence: f64,
}

impl Turn {
    /// A turn, its times rounded to the millisecond and its confidence to
    /// 3 decimals (what the JSON needs).
    pub fn new(start: f64, end: f64, speaker: String, confidence: f32) -> Self {
        let ms = |t: f64| (t * 1000.0).round() / 1000.0;
        Self {
            start: ms(start),
            end: ms(end),
            speaker,
            confidence: round3(confidence),
        }
    }
}

/// The `speakers` value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speakers {
    /// The enrolled speaker looked for, if any.
    pub target: Option<String>,
    /// How the labels were found.
    pub mode: Mode,
    /// Why the result is degraded or incomplete; `null` otherwise.
    pub reason: Option<String>,
    /// Speaker turns, in time order.
    pub turns: Vec<Turn>,
    /// The transcript's segments with `speaker` and `speaker_confidence`.
    pub segments: Vec<Map<String, Value>>,
}

impl Speakers {
    /// A degraded result: every segment passed through with `speaker: null`.
    pub fn degraded(target: Option<String>, reason: String, segments: &[Segment]) -> Self {
        Self {
            target,
            mode: Mode::Degraded,
            reason: Some(reason),
            turns: Vec::new(),
            segments: segments
                .iter()
                .map(|s| labelled(&s.fields, None, None))
                .collect(),
        }
    }

    /// The value, as the `speakers` output carries it.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `fields` with `speaker` and `speaker_confidence` set.
pub fn labelled(
    fields: &Map<String, Value>,
    speaker: Option<&str>,
    confidence: Option<f32>,
) -> Map<String, Value> {
    let mut out = fields.clone();
    out.insert("speaker".into(), speaker.map_or(Value::Null, Value::from));
    out.insert(
        "speaker_confidence".into(),
        confidence.map_or(Value::Null, |c| Value::from(round3(c))),
    );
    out
}

/// `x` rounded to 3 decimals (scores in JSON need no more).
pub fn round3(x: f32) -> f64 {
    (f64::from(x) * 1000.0).round() / 1000.0
}

/// Turns from consecutive segments with the same (non-null) speaker; the
/// confidence is the duration-weighted mean of the segments'.
pub fn turns_of_segments(segments: &[(f64, f64, Option<String>, f32)]) -> Vec<Turn> {
    // (start, end, speaker, confidence × seconds, seconds)
    let mut runs: Vec<(f64, f64, &str, f64, f64)> = Vec::new();
    let mut broken = true;
    for (start, end, speaker, confidence) in segments {
        let Some(speaker) = speaker else {
            broken = true;
            continue;
        };
        let weight = (end - start).max(1e-3);
        let weighted = f64::from(*confidence) * weight;
        match runs.last_mut() {
            Some(run) if !broken && run.2 == speaker.as_str() => {
                run.1 = run.1.max(*end);
                run.3 += weighted;
                run.4 += weight;
            }
            _ => runs.push((*start, *end, speaker.as_str(), weighted, weight)),
        }
        broken = false;
    }
    runs.into_iter()
        .map(|(start, end, speaker, weighted, weight)| {
            Turn::new(start, end, speaker.to_string(), (weighted / weight) as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_results_label_no_one() {
        let seg = Segment {
            start: 0.0,
            end: 1.0,
            fields: serde_json::from_value(serde_json::json!({"id": 0, "text": " Hi"})).unwrap(),
        };
        let v = Speakers::degraded(Some("host".into()), "no profile".into(), &[seg]).to_value();
        assert_eq!(v["mode"], "degraded");
        assert_eq!(v["reason"], "no profile");
        assert_eq!(v["target"], "host");
        assert!(v["segments"][0]["speaker"].is_null());
        assert_eq!(v["segments"][0]["text"], " Hi");
    }

    #[test]
    fn merges_runs_of_one_speaker_into_turns() {
        let a = Some("a".to_string());
        let t = turns_of_segments(&[
            (0.0, 1.0, a.clone(), 1.0),
            (1.0, 3.0, a.clone(), 0.7),
            (3.0, 4.0, None, 0.0),
            (4.0, 5.0, a, 0.9),
        ]);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].start, t[0].end), (0.0, 3.0));
        assert!((t[0].confidence - 0.8).abs() < 1e-4);
    }
}
