//! Resemblyzer's preprocessing around the network: volume normalisation,
//! silence trimming (over speech regions instead of webrtcvad), and the
//! 1.6 s partial windows an utterance is cut into.

use std::ops::Range;

use super::mel::{HOP, SAMPLE_RATE};

/// Mel frames in one partial utterance (1.6 s).
pub const PARTIAL_FRAMES: usize = 160;
/// Partial windows per second of audio (Resemblyzer's default `rate`).
pub const RATE: f64 = 1.3;
/// The last partial is kept when at least this share of it is audio
/// (Resemblyzer's default `min_coverage`).
pub const MIN_COVERAGE: f64 = 0.75;
/// Target loudness of [`normalize_volume`] (dBFS).
pub const TARGET_DBFS: f64 = -30.0;
/// Silence trimming decides per window of 30 ms (480 samples).
pub const VAD_WINDOW: usize = 480;
/// Windows averaged together to smooth the speech flags.
pub const MOVING_AVERAGE_WIDTH: usize = 8;
/// Longest run of silent windows kept (dilation of `2 × 3` windows).
pub const MAX_SILENCE_WINDOWS: usize = 6;

/// One partial utterance: its mel frames and the samples they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialSlice {
    /// Mel frames, always [`PARTIAL_FRAMES`] long.
    pub mel: Range<usize>,
    /// Samples (`mel × 160`); may run past the audio's end, which is then
    /// padded with zeros.
    pub wav: Range<usize>,
}

/// Resemblyzer's `compute_partial_slices(n_samples, rate=1.3,
/// min_coverage=0.75)`: 160-frame windows every 77 frames (0.77 s) over
/// `n_samples`; the last is dropped when less than 75 % of it is audio,
/// unless it is the only one. Never empty.
pub fn partial_slices(n_samples: usize) -> Vec<PartialSlice> {
    let n_frames = (n_samples + 1).div_ceil(HOP);
    let frame_step = ((SAMPLE_RATE as f64 / RATE) / HOP as f64).round() as usize;
    let steps = (n_frames + frame_step + 1)
        .saturating_sub(PARTIAL_FRAMES)
        .max(1);
    let mut slices: Vec<PartialSlice> = (0..steps)
        .step_by(frame_step)
        .map(|i| PartialSlice {
            mel: i..i + PARTIAL_FRAMES,
            wav: i * HOP..(i + PARTIAL_FRAMES) * HOP,
        })
        .collect();
    if let Some(last) = slices.last() {
        let coverage = (n_samples as f64 - last.wav.start as f64) / last.wav.len() as f64;
        if coverage < MIN_COVERAGE && slices.len() > 1 {
            slices.pop();
        }
    }
    slices
}

/// Resemblyzer's `normalize_volume(wav, -30, increase_only=True)`: scales
/// `samples` up so their RMS is -30 dBFS; louder audio (and digital
/// silence) is returned unchanged.
pub fn normalize_volume(samples: &[f32]) -> Vec<f32> {
    if samples.is_empty() {
        return Vec::new();
    }
    let mean_square = samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len() as f64;
    if mean_square <= 0.0 {
        return samples.to_vec();
    }
    // RMS in dBFS; Resemblyzer scales by 32767 and divides it out again.
    let dbfs = 10.0 * mean_square.log10();
    let change = TARGET_DBFS - dbfs;
    if change < 0.0 {
        return samples.to_vec();
    }
    let gain = 10f64.powf(change / 20.0) as f32;
    samples.iter().map(|&s| s * gain).collect()
}

/// Speech flags per 30 ms window of `n_samples` from speech regions
/// (seconds; e.g. Silero VAD's): a window is speech when its centre lies in
/// a region. Stands in for webrtcvad's per-window decisions.
pub fn voice_flags(regions: &[(f64, f64)], n_samples: usize) -> Vec<bool> {
    (0..n_samples / VAD_WINDOW)
        .map(|w| {
            let centre = (w * VAD_WINDOW + VAD_WINDOW / 2) as f64 / SAMPLE_RATE as f64;
            regions.iter().any(|&(s, e)| s <= centre && centre < e)
        })
        .collect()
}

/// Resemblyzer's `trim_long_silences`, with its speech decisions given as
/// `flags` (one per 30 ms window, see [`voice_flags`]): the audio is cut to
/// whole windows, the flags smoothed by a moving average over 8 windows
/// (a window stays speech when more than half are), then widened by 3
/// windows each side; only the samples of speech windows are kept. Pauses
/// longer than ~180 ms shrink to ~180 ms; leading and trailing silence
/// goes.
pub fn trim_long_silences(samples: &[f32], flags: &[bool]) -> Vec<f32> {
    let windows = (samples.len() / VAD_WINDOW).min(flags.len());
    let w = MOVING_AVERAGE_WIDTH;
    let before = (w - 1) / 2;
    // The moving average over flags[j-3..=j+4] rounds (half to even) to
    // true only when more than half the 8 are speech.
    let smoothed: Vec<bool> = (0..windows)
        .map(|j| {
            let lo = j.saturating_sub(before);
            let hi = (j + w - before).min(windows);
            let count = flags[lo..hi].iter().filter(|&&f| f).count();
            2 * count > w
        })
        .collect();
    let reach = MAX_SILENCE_WINDOWS / 2;
    let mut out = Vec::with_capacity(samples.len());
    for j in 0..windows {
        let lo = j.saturating_sub(reach);
        let hi = (j + reach + 1).min(windows);
        if smoothed[lo..hi].iter().any(|&f| f) {
            out.extend_from_slice(&samples[j * VAD_WINDOW..(j + 1) * VAD_WINDOW]);
        }
    }
    out
}

/// Resemblyzer's `preprocess_wav` for 16 kHz audio: [`normalize_volume`],
/// then [`trim_long_silences`] over `speech` regions (seconds) when given.
pub fn preprocess(samples: &[f32], speech: Option<&[(f64, f64)]>) -> Vec<f32> {
    let loud = normalize_volume(samples);
    match speech {
        Some(regions) => trim_long_silences(&loud, &voice_flags(regions, loud.len())),
        None => loud,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_resemblyzer() {
        // 1.6 s exactly: one window, no padding.
        let s = partial_slices(25_600);
        assert_eq!(
            s,
            vec![PartialSlice {
                mel: 0..160,
                wav: 0..25_600
            }]
        );
        // Short audio: still one window.
        assert_eq!(partial_slices(1000).len(), 1);
        // 10 s: n_frames 1001, steps 919 → starts 0, 77, …, 847 (12);
        // the last covers (160000 - 135520) / 25600 = 0.96.
        let s = partial_slices(160_000);
        assert_eq!(s.len(), 12);
        assert_eq!(s[11].mel, 847..1007);
        // 3 s: starts 0, 77, 154; the last covers 0.91: kept.
        assert_eq!(partial_slices(48_000).len(), 3);
        // 2.5 s: starts 0, 77, 154; the last covers 0.6: dropped.
        assert_eq!(partial_slices(40_000).len(), 2);
    }

    #[test]
    fn volume_rises_to_minus_30_dbfs_only() {
        let quiet = vec![0.001f32; 100];
        let loud = normalize_volume(&quiet);
        let rms = (loud.iter().map(|s| s * s).sum::<f32>() / 100.0).sqrt();
        assert!((20.0 * rms.log10() + 30.0).abs() < 1e-3);
        let already = vec![0.5f32; 10];
        assert_eq!(normalize_volume(&already), already);
        assert_eq!(normalize_volume(&[0.0; 4]), vec![0.0; 4]);
    }

    #[test]
    fn trimming_shortens_long_pauses_and_keeps_short_ones() {
        // 1 s speech, 1 s silence, 1 s speech, in 30 ms windows.
        let n = 100 * VAD_WINDOW;
        let samples = vec![0.1f32; n];
        let flags: Vec<bool> = (0..100).map(|w| !(33..66).contains(&w)).collect();
        let kept = trim_long_silences(&samples, &flags).len() / VAD_WINDOW;
        // Smoothing widens the pause by one window; dilation gives 3 back
        // at each edge: 5 of its 33 windows (150 ms) stay.
        assert_eq!(kept, 67 + 5);
        // A 120 ms pause (4 windows) survives whole.
        let flags: Vec<bool> = (0..100).map(|w| !(50..54).contains(&w)).collect();
        assert_eq!(trim_long_silences(&samples, &flags).len(), n);
    }

    #[test]
    fn region_flags_use_window_centres() {
        let f = voice_flags(&[(0.0, 0.045)], 4 * VAD_WINDOW);
        assert_eq!(f, vec![true, false, false, false]);
    }
}
