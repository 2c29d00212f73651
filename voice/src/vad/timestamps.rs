//! Speech regions from frame probabilities: a port of silero-vad 6.2's
//! `get_speech_timestamps_from_probs` (what `get_speech_timestamps` runs),
//! with its defaults, in samples at 16 kHz.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::FRAME;

/// The model's sample rate.
pub const SAMPLE_RATE: u32 = 16_000;

/// How frame probabilities become speech regions: the parameters of
/// silero's `get_speech_timestamps`, with its defaults.
///
/// ```yaml
/// with: { threshold: 0.5, min_silence_duration_ms: 100, speech_pad_ms: 30 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeechParams {
    /// A frame whose speech probability is at least this starts (or
    /// continues) speech. Default 0.5.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// While in speech, a frame below this counts as silence. Default
    /// `max(threshold - 0.15, 0.01)`.
    #[serde(default)]
    pub neg_threshold: Option<f64>,
    /// Regions shorter than this (before padding) are dropped. Default 250.
    #[serde(default = "default_min_speech")]
    pub min_speech_duration_ms: u32,
    /// Regions longer than this are split: at the longest silence of more
    /// than `min_silence_at_max_speech_ms` inside them if there is one,
    /// else just before the limit. Default: no limit.
    #[serde(default)]
    pub max_speech_duration_s: Option<f64>,
    /// Silence shorter than this does not end a region. Default 100.
    #[serde(default = "default_min_silence")]
    pub min_silence_duration_ms: u32,
    /// Each region is widened by this much on both sides (by half the gap
    /// when two regions are closer than twice this). Default 30.
    #[serde(default = "default_pad")]
    pub speech_pad_ms: u32,
    /// Only silences longer than this are split points when
    /// `max_speech_duration_s` is reached. Default 98.
    #[serde(default = "default_min_silence_at_max")]
    pub min_silence_at_max_speech_ms: u32,
    /// When `max_speech_duration_s` is reached, split at the longest
    /// silence seen in the region (`true`) or at the last one (`false`).
    /// Default `true`.
    #[serde(default = "yes")]
    pub use_max_poss_sil_at_max_speech: bool,
}

fn default_threshold() -> f64 {
    0.5
}
fn default_min_speech() -> u32 {
    250
}
fn default_min_silence() -> u32 {
    100
}
fn default_pad() -> u32 {
    30
}
fn default_min_silence_at_max() -> u32 {
    98
}
fn yes() -> bool {
    true
}

impl SpeechParams {
    /// `neg_threshold`, or silero's default: `threshold - 0.15`, at least
    /// 0.01.
    pub fn neg_threshold(&self) -> f64 {
        self.neg_threshold
            .unwrap_or((self.threshold - 0.15).max(0.01))
    }
}

impl Default for SpeechParams {
    fn default() -> Self {
        Self {
            threshold: default_threshold(),
            neg_threshold: None,
            min_speech_duration_ms: default_min_speech(),
            max_speech_duration_s: None,
            min_silence_duration_ms: default_min_silence(),
            speech_pad_ms: default_pad(),
            min_silence_at_max_speech_ms: default_min_silence_at_max(),
            use_max_poss_sil_at_max_speech: true,
        }
    }
}

/// One region of speech.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Region {
    /// Start, seconds from the start of the audio.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// A region in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRegion {
    /// First sample.
    pub start: i64,
    /// One past the last sample.
    pub end: i64,
}

impl SampleRegion {
    /// In seconds at 16 kHz.
    pub fn seconds(self) -> Region {
        let sr = f64::from(SAMPLE_RATE);
        Region {
            start: self.start as f64 / sr,
            end: self.end as f64 / sr,
        }
    }
}

/// Speech regions, in samples, of audio `samples` long whose 512-sample
/// frames have speech probabilities `probs`.
pub fn speech_samples(probs: &[f32], samples: usize, p: &SpeechParams) -> Vec<SampleRegion> {
    let sr = f64::from(SAMPLE_RATE);
    let window = FRAME as i64;
    let audio_len = samples as i64;
    let ms = |v: u32| sr * f64::from(v) / 1000.0;
    let min_speech = ms(p.min_speech_duration_ms);
    let pad = ms(p.speech_pad_ms);
    let max_speech = p
        .max_speech_duration_s
        .map_or(f64::INFINITY, |s| sr * s - window as f64 - 2.0 * pad);
    let min_silence = ms(p.min_silence_duration_ms);
    let min_silence_at_max = ms(p.min_silence_at_max_speech_ms);
    let threshold = p.threshold;
    let neg_threshold = p.neg_threshold();

    let mut triggered = false;
    let mut speeches: Vec<SampleRegion> = Vec::new();
    let mut start: Option<i64> = None;
    let mut temp_end: i64 = 0;
    let (mut prev_end, mut next_start): (i64, i64) = (0, 0);
    let mut possible_ends: Vec<(i64, i64)> = Vec::new();

    for (i, &prob) in probs.iter().enumerate() {
        let prob = f64::from(prob);
        let cur = window * i as i64;
        if prob >= threshold && temp_end != 0 {
            let sil = cur - temp_end;
            if sil as f64 > min_silence_at_max {
                possible_ends.push((temp_end, sil));
            }
            temp_end = 0;
            if next_start < prev_end {
                next_start = cur;
            }
        }
        if prob >= threshold && !triggered {
            triggered = true;
            start = Some(cur);
            continue;
        }
        let begun = start.unwrap_or(0);
        if triggered && (cur - begun) as f64 > max_speech {
            if p.use_max_poss_sil_at_max_speech && !possible_ends.is_empty() {
                // The longest silence; the first of equals, as Python's max.
                let (end, dur) = possible_ends
                    .iter()
                    .copied()
                    .fold(
                        possible_ends[0],
                        |best, e| if e.1 > best.1 { e } else { best },
                    );
                prev_end = end;
                speeches.push(SampleRegion { start: begun, end });
                start = None;
                next_start = prev_end + dur;
                if next_start < prev_end + cur {
                    start = Some(next_start);
                } else {
                    triggered = false;
                }
                (prev_end, next_start, temp_end) = (0, 0, 0);
                possible_ends.clear();
            } else if prev_end != 0 {
                speeches.push(SampleRegion {
                    start: begun,
                    end: prev_end,
                });
                start = None;
                if next_start < prev_end {
                    triggered = false;
                } else {
                    start = Some(next_start);
                }
                (prev_end, next_start, temp_end) = (0, 0, 0);
                possible_ends.clear();
            } else {
                speeches.push(SampleRegion {
                    start: begun,
                    end: cur,
                });
                start = None;
                (prev_end, next_start, temp_end) = (0, 0, 0);
                triggered = false;
                possible_ends.clear();
                continue;
            }
        }
        if prob < neg_threshold && triggered {
            if temp_end == 0 {
                temp_end = cur;
            }
            let sil_now = cur - temp_end;
            if !p.use_max_poss_sil_at_max_speech && sil_now as f64 > min_silence_at_max {
                prev_end = temp_end;
            }
            if (sil_now as f64) < min_silence {
                continue;
            }
            let begun = start.unwrap_or(0);
            if (temp_end - begun) as f64 > min_speech {
                speeches.push(SampleRegion {
                    start: begun,
                    end: temp_end,
                });
            }
            start = None;
            (prev_end, next_start, temp_end) = (0, 0, 0);
            triggered = false;
            possible_ends.clear();
        }
    }
    if let Some(begun) = start {
        if (audio_len - begun) as f64 > min_speech {
            speeches.push(SampleRegion {
                start: begun,
                end: audio_len,
            });
        }
    }
    pad_regions(&mut speeches, pad, audio_len);
    speeches
}

/// Widens each region by `pad` samples, splitting gaps narrower than
/// `2 · pad` between neighbours, as silero does.
fn pad_regions(speeches: &mut [SampleRegion], pad: f64, audio_len: i64) {
    let n = speeches.len();
    for i in 0..n {
        if i == 0 {
            speeches[0].start = (speeches[0].start as f64 - pad).max(0.0) as i64;
        }
        if i + 1 < n {
            let gap = speeches[i + 1].start - speeches[i].end;
            if (gap as f64) < 2.0 * pad {
                let half = gap.div_euclid(2);
                speeches[i].end += half;
                speeches[i + 1].start = (speeches[i + 1].start - half).max(0);
            } else {
                speeches[i].end = (audio_len as f64).min(speeches[i].end as f64 + pad) as i64;
                speeches[i + 1].start = (speeches[i + 1].start as f64 - pad).max(0.0) as i64;
            }
        } else {
            speeches[i].end = (audio_len as f64).min(speeches[i].end as f64 + pad) as i64;
        }
    }
}

/// Speech regions in seconds; see [`speech_samples`].
pub fn speech_regions(probs: &[f32], samples: usize, p: &SpeechParams) -> Vec<Region> {
    speech_samples(probs, samples, p)
        .into_iter()
        .map(SampleRegion::seconds)
        .collect()
}
